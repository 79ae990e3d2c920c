//! The build tools on this machine, probed once: the default and nightly Rust toolchains,
//! which targets' std they have, and the zig / cargo-zigbuild pair kept in the tool cache.
//! Whatever a user's account can fetch by itself (rustup targets and components, zig and
//! cargo-zigbuild from PyPI) is fetched here, saying so; the rest gets an error that names
//! exactly what to install.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::{cmd, Shell};

use crate::build::cross::CrossTools;
use crate::build::emulator::Emulators;
use crate::project::config::ToolchainConfig;
pub use crate::tools::pip_install_command;
use crate::util::cmd::Cmd;
use crate::util::staging::Staging;

pub struct Toolchain {
    pub default: RustToolchain,
    /// rust-toolchain.toml's channel, which `default` is checked against.
    pub stable_name: Option<String>,
    pub nightly: Option<RustToolchain>,
    pub nightly_name: String,
    pub rustup: bool,
    pub cargo_home: Utf8PathBuf,
    /// Where rustup keeps toolchains, and the host triple in their folder names.
    pub rustup_home: Utf8PathBuf,
    pub host: String,
    pub zig: ZigTools,
    /// CARGO_NET_OFFLINE is set: nothing may be downloaded, so nothing is fetched.
    pub offline: bool,
    /// The builder image this runs in (its EXOTOOL_BUILDER_IMAGE), recorded in the manifest.
    pub builder_image: Option<String>,
    /// cross and the builder image, when `--backend cross` asks for them.
    pub cross: Option<CrossTools>,
    /// qemu-user for the run checks: on PATH, in the tool cache, or fetched by a plan step.
    pub emulators: Emulators,
    tools_dir: Utf8PathBuf,
}

/// Set by the builder image (docker/Dockerfile.builder) to its own name.
pub const BUILDER_IMAGE_ENV: &str = "EXOTOOL_BUILDER_IMAGE";

fn builder_image() -> Option<String> {
    std::env::var(BUILDER_IMAGE_ENV).ok().filter(|name| !name.is_empty())
}

/// Where fetched tools (zig, cargo-zigbuild) and remembered rustup refusals live: the
/// workspace's target dir, unless EXOTOOL_TOOLS_DIR names a folder that has them already
/// (the builder image's).
pub const TOOLS_DIR_ENV: &str = "EXOTOOL_TOOLS_DIR";

fn tools_dir(target_dir: &Utf8Path) -> Utf8PathBuf {
    match std::env::var(TOOLS_DIR_ENV) {
        Ok(dir) if !dir.is_empty() => dir.into(),
        _ => target_dir.join("xtask-tools"),
    }
}

/// Cargo's own switch (`CARGO_NET_OFFLINE=true`), which the xtask honours for its fetches too.
fn offline() -> bool {
    std::env::var("CARGO_NET_OFFLINE").is_ok_and(|v| v == "true" || v == "1")
}

pub struct RustToolchain {
    pub rustc_version: String,
    /// The triple rustc runs on (`rustc -vV`'s `host:`).
    pub host: String,
    pub sysroot: Utf8PathBuf,
    /// Targets whose std is installed in the sysroot.
    pub std_targets: Vec<String>,
    pub has_rust_src: bool,
    /// rustc's commit: std's prebuilt paths read `/rustc/<commit>/library/...`.
    pub commit_hash: Option<String>,
}

impl RustToolchain {
    fn probe(sh: &Shell, toolchain: Option<&str>) -> Result<RustToolchain> {
        let _env = toolchain.map(|name| sh.push_env("RUSTUP_TOOLCHAIN", name));
        // `rustc -vV`'s first line is `rustc -V`; the rest has the commit hash.
        let verbose = cmd!(sh, "rustc -vV").quiet().read()?;
        let rustc_version = verbose.lines().next().unwrap_or_default().to_string();
        let commit_hash = verbose
            .lines()
            .find_map(|line| line.strip_prefix("commit-hash: "))
            .filter(|hash| *hash != "unknown")
            .map(str::to_string);
        let host =
            verbose.lines().find_map(|line| line.strip_prefix("host: ")).unwrap_or_default().to_string();
        let sysroot = Utf8PathBuf::from(cmd!(sh, "rustc --print sysroot").quiet().read()?);
        let rustlib = sysroot.join("lib/rustlib");
        let std_targets = match rustlib.read_dir_utf8() {
            Ok(entries) => entries
                .flatten()
                .filter(|entry| entry.path().join("lib").is_dir())
                .map(|entry| entry.file_name().to_string())
                .collect(),
            Err(_) => Vec::new(),
        };
        let has_rust_src = rustlib.join("src/rust/library/std/Cargo.toml").is_file();
        Ok(RustToolchain { rustc_version, host, sysroot, std_targets, has_rust_src, commit_hash })
    }

    /// Where rustup keeps this toolchain's standard library source (the rust-src component).
    pub fn rust_src(&self) -> Utf8PathBuf {
        self.sysroot.join("lib/rustlib/src/rust")
    }

    pub fn has_std_for(&self, target: &str) -> bool {
        self.std_targets.iter().any(|t| t == target)
    }
}

/// zig (the linker and musl libc for build-std targets) and cargo-zigbuild, pinned to the
/// versions in release.toml and installed from PyPI into the tool cache, so every machine
/// links with the same libc.
pub struct ZigTools {
    pub dir: Utf8PathBuf,
    pub zig_version: String,
    pub zigbuild_version: String,
    /// Both were found in `dir` when the toolchain was probed.
    pub present: bool,
}

impl ZigTools {
    fn new(tools_dir: &Utf8Path, config: &ToolchainConfig) -> ZigTools {
        let dir = tools_dir.join(format!("zig-{}-cargo-zigbuild-{}", config.zig, config.cargo_zigbuild));
        let present = dir.join("ziglang/zig").is_file() && dir.join("bin/cargo-zigbuild").is_file();
        ZigTools {
            dir,
            zig_version: config.zig.clone(),
            zigbuild_version: config.cargo_zigbuild.clone(),
            present,
        }
    }

    /// Directories to put in front of PATH so `zig` and `cargo-zigbuild` resolve to the cache.
    pub fn path_dirs(&self) -> Vec<Utf8PathBuf> {
        vec![self.dir.join("ziglang"), self.dir.join("bin")]
    }

    pub fn fetch_command(&self, into: &Utf8Path) -> Cmd {
        pip_install_command(
            into,
            &[format!("ziglang=={}", self.zig_version), format!("cargo-zigbuild=={}", self.zigbuild_version)],
        )
    }

    pub fn fetch(&self, sh: &Shell) -> Result<()> {
        if cmd!(sh, "python3 -m pip --version").quiet().ignore_stdout().ignore_stderr().run().is_err() {
            bail!(
                "zig and cargo-zigbuild are needed but python3 with pip is not available to fetch them; \
                 install them yourself (`pip install ziglang=={} cargo-zigbuild=={}`) or install python3-pip",
                self.zig_version,
                self.zigbuild_version
            );
        }
        // Fetched aside and renamed, so an interrupted fetch never looks installed.
        let staging = Staging::create(&self.dir, "ziglang")?;
        self.fetch_command(&staging.dir)
            .run_step(sh)
            .context("fetching zig and cargo-zigbuild from PyPI failed")?;
        staging.commit()?;
        Ok(())
    }
}

impl Toolchain {
    pub fn probe(sh: &Shell, target_dir: &Utf8Path, config: &ToolchainConfig) -> Result<Toolchain> {
        let default = RustToolchain::probe(sh, None).context("cannot run rustc; install Rust with rustup")?;
        if let Some(pin) = &config.stable {
            check_pinned(&default.rustc_version, pin)?;
        }
        let rustup = cmd!(sh, "rustup --version").quiet().ignore_stderr().read().is_ok();
        let nightly = if rustup {
            let installed = cmd!(sh, "rustup toolchain list").quiet().read().unwrap_or_default();
            let wanted = &config.nightly;
            if installed.lines().any(|line| line.starts_with(wanted.as_str())) {
                RustToolchain::probe(sh, Some(wanted)).ok()
            } else {
                None
            }
        } else {
            None
        };
        let host = host_triple(&default)?;
        let emulators = Emulators::probe(&tools_dir(target_dir), config, &host, offline());
        Ok(Toolchain {
            default,
            stable_name: config.stable.clone(),
            nightly,
            nightly_name: config.nightly.clone(),
            rustup,
            cargo_home: cargo_home()?,
            rustup_home: rustup_home()?,
            host,
            zig: ZigTools::new(&tools_dir(target_dir), config),
            offline: offline(),
            builder_image: builder_image(),
            cross: None,
            emulators,
            tools_dir: tools_dir(target_dir),
        })
    }

    /// `rustup target add` (the plan's command), reporting rustup's own reason on failure
    /// instead of failing.
    pub fn add_target(&self, sh: &Shell, add: &Cmd) -> Result<std::result::Result<(), String>> {
        let (ok, output) = add.output(sh)?;
        if ok {
            return Ok(Ok(()));
        }
        let reason = output
            .lines()
            .find(|l| l.contains("unsuccessful status") || l.starts_with("error"))
            .unwrap_or("rustup failed")
            .trim()
            .to_string();
        Ok(Err(reason))
    }

    fn std_failure_file(&self, target: &str) -> Utf8PathBuf {
        self.tools_dir.join("rustup-std-unavailable").join(target)
    }

    /// rustup's earlier refusal to install `target`'s std with this very rustc, if any: later
    /// runs (and dry runs) then plan the same backend without asking rustup again.
    pub fn remembered_std_failure(&self, target: &str) -> Option<String> {
        let file = self.std_failure_file(target);
        let text = std::fs::read_to_string(&file).ok()?;
        let (rustc, reason) = text.split_once('\n')?;
        (rustc == self.default.rustc_version)
            .then(|| format!("{}; remembered in {file}, delete it to ask rustup again", reason.trim()))
    }

    pub fn remember_std_failure(&self, target: &str, reason: &str) -> Result<()> {
        let file = self.std_failure_file(target);
        std::fs::create_dir_all(file.parent().expect("has a parent"))?;
        std::fs::write(&file, format!("{}\n{reason}\n", self.default.rustc_version))
            .with_context(|| format!("cannot write {file}"))
    }

    /// The tool cache: zig, cross, remembered rustup refusals.
    pub fn tools_dir(&self) -> &Utf8Path {
        &self.tools_dir
    }

    /// The nightly's sysroot: probed, or where rustup will install it (for the plan's remaps
    /// before the nightly exists).
    pub fn nightly_sysroot(&self) -> Utf8PathBuf {
        match &self.nightly {
            Some(nightly) => nightly.sysroot.clone(),
            None => self.rustup_home.join("toolchains").join(format!("{}-{}", self.nightly_name, self.host)),
        }
    }

    /// What names the compiler a build uses (std from source with the nightly, or the default
    /// toolchain), for build records; None while it is not installed: nothing is up to date.
    pub fn identity(&self, builds_std: bool) -> Option<String> {
        let rust = if builds_std { self.nightly.as_ref()? } else { &self.default };
        Some(format!(
            "{} {} {}",
            rust.rustc_version,
            rust.commit_hash.as_deref().unwrap_or("-"),
            rust.sysroot
        ))
    }

    /// Runs the plan's `rustup toolchain install` and probes what it installed.
    pub fn install_nightly(&mut self, sh: &Shell, install: &Cmd) -> Result<()> {
        install
            .run_step(sh)
            .with_context(|| format!("the build-std backend needs {}; run `{install}`", self.nightly_name))?;
        self.nightly = Some(RustToolchain::probe(sh, Some(&self.nightly_name))?);
        Ok(())
    }
}

#[cfg(test)]
impl Toolchain {
    /// A machine as the planner sees it, under /opt/rust: rustup with a stable toolchain that
    /// has std for `std_for`, and a nightly with rust-src when `nightly` (zig likewise).
    pub fn fixture(std_for: &[&str], nightly: bool, zig: bool) -> Toolchain {
        let rust = |channel: &str, version: &str, targets: &[&str]| RustToolchain {
            rustc_version: format!("rustc {version}"),
            host: "x86_64-unknown-linux-gnu".into(),
            sysroot: format!("/opt/rust/rustup/toolchains/{channel}-x86_64-unknown-linux-gnu").into(),
            std_targets: targets.iter().map(|t| t.to_string()).collect(),
            has_rust_src: channel == "nightly",
            commit_hash: Some(format!("{channel}0123456789")),
        };
        let config = ToolchainConfig {
            stable: Some("1.95.0".into()),
            nightly: "nightly".into(),
            zig: "0.17.1".into(),
            cargo_zigbuild: "0.24.0".into(),
            cross: "0.2.5".into(),
            qemu: crate::project::config::pinned_qemu(),
            qemu_user: crate::project::config::pinned_qemu_user(),
        };
        let tools_dir = Utf8PathBuf::from("/work/exotool/target/xtask-tools");
        let mut zig_tools = ZigTools::new(&tools_dir, &config);
        zig_tools.present = zig;
        let emulators = Emulators::fixture(&tools_dir, &config);
        Toolchain {
            default: rust("stable", "1.95.0 (59807616e 2026-04-14)", std_for),
            stable_name: Some("1.95.0".into()),
            nightly: nightly.then(|| rust("nightly", "1.97.0-nightly (0123456789 2026-05-19)", &[])),
            nightly_name: "nightly".into(),
            rustup: true,
            cargo_home: "/opt/rust/cargo".into(),
            rustup_home: "/opt/rust/rustup".into(),
            host: "x86_64-unknown-linux-gnu".into(),
            zig: zig_tools,
            offline: false,
            builder_image: None,
            cross: None,
            emulators,
            tools_dir,
        }
    }

    /// Where remembered rustup refusals are kept.
    pub fn set_tools_dir(&mut self, dir: &Utf8Path) {
        self.tools_dir = dir.to_path_buf();
    }
}

/// The pin is what makes two machines give the same bytes: a rustc other than the pinned one
/// (an override such as RUSTUP_TOOLCHAIN, or a Rust without rustup) is refused, not used.
fn check_pinned(rustc_version: &str, pin: &str) -> Result<()> {
    let numbered = pin.chars().next().is_some_and(|c| c.is_ascii_digit());
    let version = rustc_version.split_whitespace().nth(1).unwrap_or_default();
    let matches = version == pin || version.starts_with(&format!("{pin}."));
    if numbered && !matches {
        bail!(
            "rust-toolchain.toml pins Rust {pin} but `rustc -V` here is {rustc_version:?}; \
             unset RUSTUP_TOOLCHAIN (or any `rustup override`) so rustup runs the pinned toolchain, \
             or install it with `rustup toolchain install {pin}`"
        );
    }
    Ok(())
}

fn rustup_home() -> Result<Utf8PathBuf> {
    if let Ok(home) = std::env::var("RUSTUP_HOME") {
        return Ok(home.into());
    }
    let home = std::env::var("HOME").context("neither RUSTUP_HOME nor HOME is set")?;
    Ok(Utf8PathBuf::from(home).join(".rustup"))
}

/// The host triple, from the default toolchain's probe (no second `rustc -vV`).
fn host_triple(default: &RustToolchain) -> Result<String> {
    if default.host.is_empty() {
        bail!("`rustc -vV` names no host");
    }
    Ok(default.host.clone())
}

fn cargo_home() -> Result<Utf8PathBuf> {
    if let Ok(home) = std::env::var("CARGO_HOME") {
        return Ok(home.into());
    }
    let home = std::env::var("HOME").context("neither CARGO_HOME nor HOME is set")?;
    Ok(Utf8PathBuf::from(home).join(".cargo"))
}

#[cfg(test)]
mod tests {
    use super::check_pinned;

    #[test]
    fn a_rustc_other_than_the_pin_is_refused() {
        check_pinned("rustc 1.95.0 (59807616e 2026-04-14)", "1.95.0").unwrap();
        check_pinned("rustc 1.95.2 (0 2026-05-01)", "1.95").unwrap();
        check_pinned("rustc 1.97.0-nightly (e50aa6fba 2026-05-19)", "stable").unwrap();
        let err =
            check_pinned("rustc 1.97.0-nightly (e50aa6fba 2026-05-19)", "1.95.0").unwrap_err().to_string();
        assert!(
            err.contains("pins Rust 1.95.0")
                && err.contains("1.97.0-nightly")
                && err.contains("RUSTUP_TOOLCHAIN"),
            "{err}"
        );
        assert!(check_pinned("rustc 1.951.0 (0 2030-01-01)", "1.95").is_err());
    }
}
