//! How a target gets built: the choice of backend (a pure function of what the toolchain
//! has) and the exact cargo command for it.

use std::fmt;

use camino::Utf8PathBuf;

use crate::build::cross::CrossTools;
use crate::build::env_key;
use crate::util::cmd::Cmd;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendRequest {
    /// cargo + rust-lld when the target's std is installable, cargo zigbuild when C code is
    /// compiled, nightly -Zbuild-std + zig when rustup has no std for the target.
    Auto,
    /// Plain cargo linked by rust-lld; needs the target's std from rustup.
    Cargo,
    /// `cargo zigbuild`: zig as C compiler and linker; needs the target's std from rustup.
    Zigbuild,
    /// Nightly `-Zbuild-std` with zig: std compiled from rust-src, for targets rustup lacks.
    BuildStd,
    /// `cross build` (pinned, installed on demand) in the builder image for every target,
    /// with -Zbuild-std and the image's zig for targets rustup lacks; needs Docker and the
    /// builder image (`cargo xtask builder`).
    Cross,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Plain cargo, linked by rust-lld with the target's self-contained musl objects.
    Cargo,
    /// `cargo zigbuild`: zig as the C compiler and linker.
    Zigbuild,
    /// Nightly `-Zbuild-std` compiles std from source; zig supplies musl libc and crt objects.
    BuildStd,
    /// `cross build` in the builder image, linked by rust-lld.
    Cross,
    /// `cross build` in the builder image with nightly -Zbuild-std, linked by the image's zig.
    CrossBuildStd,
    /// Built elsewhere (`dist --prebuilt ARCH=PATH`); checked and packed, not built.
    Prebuilt,
}

impl Backend {
    pub fn id(self) -> &'static str {
        match self {
            Backend::Cargo => "cargo",
            Backend::Zigbuild => "zigbuild",
            Backend::BuildStd => "build-std",
            Backend::Cross => "cross",
            Backend::CrossBuildStd => "cross-build-std",
            Backend::Prebuilt => "prebuilt",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Backend::Cargo => "cargo + rust-lld",
            Backend::Zigbuild => "cargo zigbuild",
            Backend::BuildStd => "nightly -Zbuild-std + zig",
            Backend::Cross => "cross in the builder image",
            Backend::CrossBuildStd => "cross in the builder image, nightly -Zbuild-std + zig",
            Backend::Prebuilt => "prebuilt binary",
        }
    }

    pub fn needs_zig(self) -> bool {
        matches!(self, Backend::Zigbuild | Backend::BuildStd)
    }

    pub fn is_cross(self) -> bool {
        matches!(self, Backend::Cross | Backend::CrossBuildStd)
    }

    /// std is compiled from source with the pinned nightly.
    pub fn builds_std(self) -> bool {
        matches!(self, Backend::BuildStd | Backend::CrossBuildStd)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Whether the default toolchain can link the target with its own std.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdStatus {
    Installed,
    /// Not installed yet; `rustup target add` will be tried.
    Installable,
    /// rustup cannot provide it here (the reason is rustup's).
    Unavailable(String),
}

pub fn choose(
    request: BackendRequest,
    std: &StdStatus,
    needs_c: bool,
    target: &str,
) -> Result<Backend, String> {
    let std_ok = !matches!(std, StdStatus::Unavailable(_));
    match request {
        BackendRequest::Auto if !std_ok => Ok(Backend::BuildStd),
        BackendRequest::Auto if needs_c => Ok(Backend::Zigbuild),
        BackendRequest::Auto => Ok(Backend::Cargo),
        BackendRequest::Cargo | BackendRequest::Zigbuild if !std_ok => {
            let StdStatus::Unavailable(reason) = std else { unreachable!() };
            Err(format!(
                "--backend {} needs rust-std for {target}, which rustup cannot install here ({reason}); \
                 use --backend build-std (or auto)",
                if request == BackendRequest::Cargo { "cargo" } else { "zigbuild" }
            ))
        }
        BackendRequest::Cargo => Ok(Backend::Cargo),
        BackendRequest::Zigbuild => Ok(Backend::Zigbuild),
        BackendRequest::BuildStd => Ok(Backend::BuildStd),
        BackendRequest::Cross if !std_ok => Ok(Backend::CrossBuildStd),
        BackendRequest::Cross => Ok(Backend::Cross),
    }
}

/// Everything a build command depends on besides the backend.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    pub manifest_path: Utf8PathBuf,
    pub package: String,
    pub binary: String,
    pub target: String,
    /// Cargo's target dir for this build.
    pub target_dir: Utf8PathBuf,
    pub nightly: String,
    /// Local path → neutral path, so no machine path ends up in the binary.
    pub remaps: Vec<(Utf8PathBuf, String)>,
    /// Where zig and cargo-zigbuild live.
    pub zig_path: Vec<Utf8PathBuf>,
    /// Build facts for the binary: SOURCE_DATE_EPOCH, GIT_COMMIT.
    pub env: Vec<(String, String)>,
    /// cross and the builder image, for the cross backends.
    pub cross: Option<CrossTools>,
}

/// The build command, or `None` for a prebuilt binary.
pub fn build_command(backend: Backend, spec: &BuildSpec) -> Option<Cmd> {
    let cross = spec.cross.as_ref().filter(|_| backend.is_cross());
    let cross_program = cross.map(|cross| cross.program().to_string());
    let (program, subcommand) = match backend {
        Backend::Cargo => ("cargo", "build"),
        Backend::Zigbuild | Backend::BuildStd => ("cargo", "zigbuild"),
        Backend::Cross | Backend::CrossBuildStd => {
            (cross_program.as_deref().expect("a cross backend is planned with its tools"), "build")
        }
        Backend::Prebuilt => return None,
    };
    let mut cmd = Cmd::new(program).args([
        subcommand,
        "--release",
        "--locked",
        "--manifest-path",
        spec.manifest_path.as_str(),
        "--package",
        &spec.package,
        "--bin",
        &spec.binary,
        "--target",
        &spec.target,
        "--target-dir",
        spec.target_dir.as_str(),
    ]);
    let mut rustflags: Vec<String> =
        spec.remaps.iter().map(|(from, to)| format!("--remap-path-prefix={from}={to}")).collect();
    match backend {
        Backend::Cargo => {
            cmd = cmd.env(format!("CARGO_TARGET_{}_LINKER", env_key(&spec.target)), "rust-lld");
        }
        Backend::BuildStd | Backend::CrossBuildStd => {
            cmd = cmd.arg("-Zbuild-std=std,panic_abort").env("RUSTUP_TOOLCHAIN", &spec.nightly);
            // zig brings crt1.o and libc; rustc has no self-contained objects for this target.
            rustflags.extend(["-Clink-self-contained=no".to_string(), "-Alinker-messages".to_string()]);
        }
        Backend::Zigbuild | Backend::Cross | Backend::Prebuilt => {}
    }
    if let Some(cross) = cross {
        for (key, value) in cross.env(&spec.target, backend.builds_std(), &spec.nightly) {
            if key != "RUSTUP_TOOLCHAIN" {
                cmd = cmd.env(key, value);
            }
        }
    }
    if backend.needs_zig() {
        cmd = cmd.path_prepend(&spec.zig_path);
    }
    for (key, value) in &spec.env {
        cmd = cmd.env(key, value);
    }
    Some(if rustflags.iter().any(|flag| flag.contains(' ')) {
        cmd.env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\u{1f}"))
    } else {
        cmd.env("RUSTFLAGS", rustflags.join(" "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(target: &str) -> BuildSpec {
        BuildSpec {
            manifest_path: "/w/Cargo.toml".into(),
            package: "exonode".into(),
            binary: "exonode".into(),
            target: target.into(),
            target_dir: "/w/target/dist-build/x".into(),
            nightly: "nightly".into(),
            remaps: vec![("/w".into(), "/src".into())],
            zig_path: vec!["/cache/ziglang".into()],
            env: vec![("SOURCE_DATE_EPOCH".into(), "1".into())],
            cross: None,
        }
    }

    #[test]
    fn auto_picks_by_what_the_toolchain_has() {
        let t = "armv7-unknown-linux-musleabihf";
        let unavailable = StdStatus::Unavailable("404".into());
        assert_eq!(choose(BackendRequest::Auto, &StdStatus::Installed, false, t), Ok(Backend::Cargo));
        assert_eq!(choose(BackendRequest::Auto, &StdStatus::Installable, false, t), Ok(Backend::Cargo));
        assert_eq!(choose(BackendRequest::Auto, &StdStatus::Installed, true, t), Ok(Backend::Zigbuild));
        assert_eq!(choose(BackendRequest::Auto, &unavailable, true, t), Ok(Backend::BuildStd));
        assert_eq!(choose(BackendRequest::Cross, &StdStatus::Installed, false, t), Ok(Backend::Cross));
        assert_eq!(choose(BackendRequest::Cross, &unavailable, false, t), Ok(Backend::CrossBuildStd));
        let err = choose(BackendRequest::Cargo, &unavailable, false, t).unwrap_err();
        assert!(err.contains("--backend cargo needs rust-std for armv7") && err.contains("(404)"), "{err}");
    }

    #[test]
    fn cargo_backend_links_with_rust_lld() {
        let cmd = build_command(Backend::Cargo, &spec("aarch64-unknown-linux-musl")).unwrap();
        assert_eq!(
            cmd.to_string(),
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld SOURCE_DATE_EPOCH=1 \
             RUSTFLAGS=--remap-path-prefix=/w=/src cargo build --release --locked --manifest-path /w/Cargo.toml \
             --package exonode --bin exonode --target aarch64-unknown-linux-musl --target-dir /w/target/dist-build/x"
        );
    }

    #[test]
    fn build_std_uses_nightly_and_zig() {
        let cmd = build_command(Backend::BuildStd, &spec("armv5te-unknown-linux-musleabi")).unwrap();
        assert_eq!(cmd.args[0], "zigbuild");
        assert!(cmd.args.contains(&"-Zbuild-std=std,panic_abort".to_string()));
        assert!(cmd.env.contains(&("RUSTUP_TOOLCHAIN".into(), "nightly".into())));
        assert_eq!(cmd.path_prepend, vec![Utf8PathBuf::from("/cache/ziglang")]);
        let flags = &cmd.env.iter().find(|(k, _)| k == "RUSTFLAGS").unwrap().1;
        assert_eq!(flags, "--remap-path-prefix=/w=/src -Clink-self-contained=no -Alinker-messages");
    }

    #[test]
    fn paths_with_spaces_use_encoded_rustflags() {
        let mut spec = spec("i686-unknown-linux-musl");
        spec.remaps = vec![("/my work".into(), "/src".into())];
        let cmd = build_command(Backend::Zigbuild, &spec).unwrap();
        assert_eq!(build_command(Backend::Prebuilt, &spec), None);
        assert_eq!(cmd.program, "cargo");
        assert!(cmd
            .env
            .iter()
            .any(|(k, v)| k == "CARGO_ENCODED_RUSTFLAGS" && v == "--remap-path-prefix=/my work=/src"));
    }

    #[test]
    fn cross_builds_with_the_pinned_cross_and_build_std_targets_with_the_nightly() {
        let mut spec = spec("armv5te-unknown-linux-musleabi");
        spec.cross = Some(CrossTools::new(
            "/t".into(),
            "0.2.5",
            "img:pins".into(),
            "/opt/zig".into(),
            "0.17.1",
            "/w/Cargo.toml".into(),
        ));
        let cmd = build_command(Backend::CrossBuildStd, &spec).unwrap();
        assert_eq!(cmd.program, "/t/cross-0.2.5/bin/cross");
        assert!(
            cmd.args.starts_with(&["build".to_string()])
                && cmd.args.contains(&"-Zbuild-std=std,panic_abort".into())
        );
        let env =
            |key: &str| cmd.env.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect::<Vec<_>>();
        assert_eq!(env("RUSTUP_TOOLCHAIN"), ["nightly"]);
        assert_eq!(env("CROSS_TARGET_ARMV5TE_UNKNOWN_LINUX_MUSLEABI_IMAGE"), ["img:pins"]);
        let cmd = build_command(Backend::Cross, &spec).unwrap();
        assert!(!cmd.args.iter().any(|a| a.starts_with("-Zbuild-std")), "{cmd}");
        assert_eq!(cmd.env.iter().filter(|(k, _)| k == "RUSTUP_TOOLCHAIN").count(), 0);
    }
}
