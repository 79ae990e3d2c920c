//! The `cross` backend: cross (pinned in release.toml, installed on demand into the tool cache
//! like zig) runs cargo in the builder image (docker/Dockerfile.builder) for every target, so
//! the compiler is the image's pinned toolchain. cross 0.2.5 is configured entirely through its
//! environment, which the build command carries:
//! - `CROSS_TARGET_<T>_IMAGE`: the builder image;
//! - `CROSS_CUSTOM_TOOLCHAIN=1`: cross leaves the host's rustup alone (no rust-src or targets
//!   added behind our back: the image has the toolchains);
//! - `CROSS_BUILD_ENV_VOLUMES`: a folder mounted at its own path, which makes cross mount the
//!   workspace at its own path too, so `--manifest-path` and the path remaps are the host's;
//! - `CARGO_NET_OFFLINE`: the crates are fetched on the host first, the container compiles offline.
//!
//! Targets whose std rustup lacks build std from source with the image's nightly, linked by the
//! image's zig through cargo-zigbuild's `zig cc`, with the flags cargo-zigbuild gives it.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::build::env_key;
use crate::tools;
use crate::util::cmd::Cmd;

/// The zig target and CPU that cargo-zigbuild 0.24 passes `zig cc` for each target that builds
/// std from source (as its generated linker wrappers read). cargo-zigbuild derives them
/// internally and has no command that prints them, so they are written here; the end-to-end
/// test comparing a cross build with a build-std one catches a drift.
const ZIG_CC: [(&str, &str, &str); 3] = [
    ("armv7-unknown-linux-musleabihf", "arm-linux-musleabihf", "generic+v7a+vfp3-d32+thumb2-neon"),
    ("arm-unknown-linux-musleabihf", "arm-linux-musleabihf", "generic+v6+strict_align+vfp2-d32"),
    ("armv5te-unknown-linux-musleabi", "arm-linux-musleabi", "generic+v5te+soft_float+strict_align"),
];

/// Names the folder cross mounts at its own path (cross reads the path from this variable).
const MOUNT_ENV: &str = "EXOTOOL_CROSS_MOUNT";

#[derive(Debug, Clone)]
pub struct CrossTools {
    pub version: String,
    /// `cargo install --root`: the binary is `dir/bin/cross`.
    pub dir: Utf8PathBuf,
    /// The pinned cross was found in `dir`.
    pub present: bool,
    pub image: String,
    /// Mounted into the container at its own path: linker wrappers and zig's cache.
    pub mount_dir: Utf8PathBuf,
    /// The image's zig and cargo-zigbuild (its EXOTOOL_TOOLS_DIR/zig-…).
    pub image_zig_dir: Utf8PathBuf,
    pub zig_version: String,
    /// The workspace's Cargo.toml, whose crates are fetched on the host.
    pub manifest: Utf8PathBuf,
}

impl CrossTools {
    /// Where the pinned `version` lives under `tools_dir`, to build `manifest`'s workspace in
    /// `image`, whose zig tools are in `image_zig_dir`.
    pub fn new(
        tools_dir: &Utf8Path,
        version: &str,
        image: String,
        image_zig_dir: Utf8PathBuf,
        zig_version: &str,
        manifest: Utf8PathBuf,
    ) -> Self {
        let dir = tools_dir.join(format!("cross-{version}"));
        CrossTools {
            present: dir.join("bin/cross").is_file(),
            version: version.to_string(),
            mount_dir: tools_dir.join(format!("cross-{version}-mount")),
            dir,
            image,
            image_zig_dir,
            zig_version: zig_version.to_string(),
            manifest,
        }
    }

    pub fn program(&self) -> Utf8PathBuf {
        self.dir.join("bin/cross")
    }

    pub fn install_command(&self) -> Cmd {
        tools::cargo_install_into("cross", &self.version, &self.dir)
    }

    /// Succeeds when the builder image is in the local engine.
    pub fn image_check(&self) -> Cmd {
        Cmd::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &self.image])
    }

    pub fn linker_wrapper(&self, target: &str) -> Utf8PathBuf {
        self.mount_dir.join(format!("zigcc-{target}.sh"))
    }

    /// The linker of a build-std target inside the image: `zig cc` through cargo-zigbuild, as
    /// `cargo zigbuild` links it on a host.
    pub fn wrapper_script(&self, target: &str) -> Result<String> {
        let Some((_, zig_target, cpu)) = ZIG_CC.iter().find(|(t, _, _)| *t == target) else {
            bail!(
                "--backend cross has no zig flags for {target}, whose std rustup lacks; build it with \
                 --backend build-std"
            );
        };
        let zig = &self.image_zig_dir;
        Ok(format!(
            "#!/bin/sh\n\
             # Written by cargo xtask dist --backend cross: the linker of {target} in the builder image.\n\
             export CARGO_ZIGBUILD_ZIG_VERSION={version}\n\
             export CARGO_ZIGBUILD_ZIG_COMMAND={zig}/ziglang/zig\n\
             exec {zig}/bin/cargo-zigbuild zig cc -- -g '-fno-sanitize=all' '-mcpu={cpu}' -target {zig_target} \"$@\"\n",
            version = self.zig_version
        ))
    }

    /// Creates the mounted folder (and zig's cache in it), as the plan's step says.
    pub fn create_mount_dir(&self) -> Result<()> {
        std::fs::create_dir_all(self.mount_dir.join("zig-cache"))
            .with_context(|| format!("cannot create {}, the folder cross mounts", self.mount_dir))
    }

    /// Writes the linker wrappers of `targets` into the mounted folder (made by its plan step).
    pub fn write_wrappers(&self, targets: &[&str]) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for target in targets {
            let path = self.linker_wrapper(target);
            std::fs::write(&path, self.wrapper_script(target)?)
                .with_context(|| format!("cannot write {path}"))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {path} executable"))?;
        }
        Ok(())
    }

    /// cross's configuration for one build of `target`, as environment.
    pub fn env(&self, target: &str, build_std: bool, nightly: &str) -> Vec<(String, String)> {
        let key = env_key(target);
        let mut passthrough = vec!["SOURCE_DATE_EPOCH", "GIT_COMMIT"];
        let mut env = vec![
            (format!("CROSS_TARGET_{key}_IMAGE"), self.image.clone()),
            ("CROSS_CUSTOM_TOOLCHAIN".to_string(), "1".to_string()),
            ("CROSS_BUILD_ENV_VOLUMES".to_string(), MOUNT_ENV.to_string()),
            (MOUNT_ENV.to_string(), self.mount_dir.to_string()),
            ("CARGO_NET_OFFLINE".to_string(), "true".to_string()),
        ];
        if build_std {
            passthrough.extend(["RUSTUP_TOOLCHAIN", "ZIG_GLOBAL_CACHE_DIR"]);
            env.push(("RUSTUP_TOOLCHAIN".into(), nightly.into()));
            env.push(("ZIG_GLOBAL_CACHE_DIR".into(), self.mount_dir.join("zig-cache").to_string()));
            env.push((format!("CARGO_TARGET_{key}_LINKER"), self.linker_wrapper(target).to_string()));
        } else {
            env.push((format!("CARGO_TARGET_{key}_LINKER"), "rust-lld".into()));
        }
        env.push(("CROSS_BUILD_ENV_PASSTHROUGH".into(), passthrough.join(" ")));
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> CrossTools {
        CrossTools::new(
            "/t/tools".into(),
            "0.2.5",
            "b/builder:pins".into(),
            "/opt/tools/zig".into(),
            "0.17.1",
            "/w/Cargo.toml".into(),
        )
    }

    #[test]
    fn every_target_builds_in_the_builder_image_offline_with_the_workspace_at_its_own_path() {
        let env = tools().env("aarch64-unknown-linux-musl", false, "nightly-x");
        let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(get("CROSS_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_IMAGE"), Some("b/builder:pins"));
        assert_eq!(get("CROSS_CUSTOM_TOOLCHAIN"), Some("1"));
        assert_eq!(get("CARGO_NET_OFFLINE"), Some("true"));
        assert_eq!(get("CROSS_BUILD_ENV_VOLUMES"), Some(MOUNT_ENV));
        assert_eq!(get(MOUNT_ENV), Some("/t/tools/cross-0.2.5-mount"));
        assert_eq!(get("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER"), Some("rust-lld"));
        assert_eq!(get("CROSS_BUILD_ENV_PASSTHROUGH"), Some("SOURCE_DATE_EPOCH GIT_COMMIT"));
        assert_eq!(get("RUSTUP_TOOLCHAIN"), None);
    }

    #[test]
    fn build_std_targets_link_with_the_images_zig_and_use_the_pinned_nightly() {
        let tools = tools();
        let env = tools.env("armv5te-unknown-linux-musleabi", true, "nightly-2026-05-20");
        let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(get("RUSTUP_TOOLCHAIN"), Some("nightly-2026-05-20"));
        let wrapper = "/t/tools/cross-0.2.5-mount/zigcc-armv5te-unknown-linux-musleabi.sh";
        assert_eq!(get("CARGO_TARGET_ARMV5TE_UNKNOWN_LINUX_MUSLEABI_LINKER"), Some(wrapper));
        assert!(get("CROSS_BUILD_ENV_PASSTHROUGH").unwrap().contains("RUSTUP_TOOLCHAIN"));
        let script = tools.wrapper_script("armv5te-unknown-linux-musleabi").unwrap();
        assert!(script.contains("exec /opt/tools/zig/bin/cargo-zigbuild zig cc --"), "{script}");
        assert!(script.contains("-target arm-linux-musleabi \"$@\""), "{script}");
        let err = tools.wrapper_script("riscv64gc-unknown-linux-musl").unwrap_err().to_string();
        assert!(err.contains("riscv64gc") && err.contains("--backend build-std"), "{err}");
    }
}
