//! The run check's emulators: qemu-user from PATH, or else Debian's qemu-user-static (or, for a
//! row that needs a newer qemu than bookworm's, trixie's qemu-user) fetched into the tool cache
//! by a toolchain step. apt runs with a private configuration in the tool
//! cache (its own sources list, lists and cache; no root, the system's apt untouched): it reads
//! the pinned suite's Release file, checked against Debian's archive keyring, and downloads the
//! package it lists. The version and the .deb's sha256 are pinned in release.toml
//! (`[toolchain.qemu-user-static]` and `[toolchain.qemu-user]`, per Debian host) and checked
//! again here. The package is
//! unpacked with `dpkg-deb -x` and each emulator run by path with the row's `-cpu`, so no binfmt
//! handler and no install are needed.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::project::config::{QemuPin, ToolchainConfig};
use crate::project::matrix::{Arch, QemuPackage, RunOn, MATRIX};
use crate::release::checksum::sha256_hex;
use crate::tools::which;
use crate::util::cmd::Cmd;
use crate::util::staging::Staging;

/// Debian's archive keys: the private apt checks the suite's signed Release file with them.
const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// Where a Debian host names its mirror (deb822 `URIs:`), which the private apt uses too.
const HOST_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// Where an emulator comes from on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// On PATH (an installed qemu-user-static).
    Path(Utf8PathBuf),
    /// In the tool cache, fetched by an earlier run.
    Cached(Utf8PathBuf),
    /// Not here yet: the plan's step for its package fetches it to this path.
    Fetched(Utf8PathBuf),
    /// Nothing here can provide it; the text says why and what to do.
    Unavailable(String),
}

impl Source {
    /// The program the run check starts, once the plan's steps have run.
    pub fn program(&self) -> Option<&Utf8Path> {
        match self {
            Source::Path(path) | Source::Cached(path) | Source::Fetched(path) => Some(path),
            Source::Unavailable(_) => None,
        }
    }
}

/// The qemu packages of this host, their pins and whether dist can fetch them, and where each
/// of the matrix's emulators comes from: probed once.
#[derive(Debug, Clone)]
pub struct Emulators {
    packages: Vec<Package>,
    sources: Vec<(&'static str, Source)>,
}

/// One pinned Debian package of emulators, as it is fetched on this host.
#[derive(Debug, Clone)]
struct Package {
    kind: QemuPackage,
    /// This host's pin, if release.toml (or the default) has one for its Debian architecture.
    pin: Option<QemuPin>,
    /// The unpacked package: `dir/usr/bin/qemu-*`.
    dir: Utf8PathBuf,
    apt: PrivateApt,
    /// Why it cannot be fetched here, if it cannot.
    unfetchable: Option<String>,
}

/// Debian's name for the architecture of a Rust host triple (the hosts a pin may name).
pub fn debian_host_arch(host_triple: &str) -> Option<&'static str> {
    match host_triple.split('-').next()? {
        "x86_64" => Some("amd64"),
        "aarch64" => Some("arm64"),
        _ => None,
    }
}

impl Package {
    fn probe(
        kind: QemuPackage,
        tools_dir: &Utf8Path,
        pins: &[QemuPin],
        host_triple: &str,
        offline: bool,
    ) -> Package {
        let name = kind.name();
        let host = debian_host_arch(host_triple);
        let pin = host.and_then(|host| pins.iter().find(|pin| pin.host == host)).cloned();
        let dir = match &pin {
            Some(pin) => tools_dir.join(format!("{name}-{}-{}", file_safe(&pin.version), pin.host)),
            None => tools_dir.join(name),
        };
        let apt = PrivateApt::new(tools_dir, pin.as_ref());
        let unfetchable = if pin.is_none() {
            Some(format!(
                "release.toml pins {name} for Debian hosts {} only, and this host is {host_triple}",
                pins.iter().map(|p| p.host.as_str()).collect::<Vec<_>>().join(" and ")
            ))
        } else if offline {
            Some("CARGO_NET_OFFLINE is set, so it cannot be downloaded".into())
        } else if let Some(missing) = ["apt-get", "dpkg-deb"].into_iter().find(|tool| which(tool).is_none()) {
            Some(format!("this host has no {missing} to fetch Debian's {name} with"))
        } else if !Utf8Path::new(DEBIAN_KEYRING).is_file() {
            Some(format!(
                "this host has no {DEBIAN_KEYRING} to check Debian's archive with (debian-archive-keyring)"
            ))
        } else {
            None
        };
        Package { kind, pin, dir, apt, unfetchable }
    }

    /// PATH first (for the packages PATH's qemu can stand in for), then the tool cache, then
    /// the fetch step (when it can run here).
    fn find(&self, emulator: &str) -> Source {
        if self.kind.path_serves() {
            if let Some(path) = which(emulator) {
                return Source::Path(path);
            }
        }
        let cached = self.dir.join("usr/bin").join(emulator);
        if cached.is_file() {
            return Source::Cached(cached);
        }
        let name = self.kind.name();
        let not_on_path = if self.kind.path_serves() { "is not on PATH and " } else { "" };
        match &self.unfetchable {
            None => Source::Fetched(cached),
            Some(why) if self.kind.path_serves() => Source::Unavailable(format!(
                "{emulator} {not_on_path}dist cannot fetch it ({why}): install it with `sudo apt-get install {name}`"
            )),
            Some(why) => Source::Unavailable(format!(
                "{emulator} comes from Debian {}'s {name} (the qemu of this host's release is too old for it), \
                 which dist cannot fetch ({why})",
                self.kind.suite()
            )),
        }
    }

    /// The plan's command: the pinned package, downloaded into `into` by the private apt.
    fn download_command(&self, into: &Utf8Path) -> Cmd {
        let pin = self.pin.as_ref().expect("a fetch is planned only with a pin");
        self.apt.command("download").arg(format!("{}={}", self.kind.name(), pin.version)).current_dir(into)
    }

    /// Fetches, checks and unpacks the pinned package into the tool cache; an interrupted or
    /// failed fetch leaves nothing that looks fetched.
    fn fetch(&self, sh: &Shell) -> Result<()> {
        let name = self.kind.name();
        let pin = self.pin.as_ref().with_context(|| format!("no {name} pin for this host"))?;
        self.apt.update(sh)?;
        let staging = Staging::create(&self.dir, "usr")?;
        let download = staging.dir.join("download");
        std::fs::create_dir(&download).with_context(|| format!("cannot create {download}"))?;
        let (ok, output) = self.download_command(&download).output(sh)?;
        if !ok {
            let madison = self.apt.cache_command("madison").arg(name).read(sh).unwrap_or_default();
            bail!("{}", not_offered(self.kind, pin, &madison, &output));
        }
        let deb = only_deb(&download)?;
        let bytes = std::fs::read(&deb).with_context(|| format!("cannot read {deb}"))?;
        check_sha256(self.kind, pin, &sha256_hex(&bytes))?;
        Cmd::new("dpkg-deb")
            .args(["-x", deb.as_str(), staging.dir.as_str()])
            .read(sh)
            .with_context(|| format!("cannot unpack {deb}"))?;
        std::fs::remove_dir_all(&download).with_context(|| format!("cannot remove {download}"))?;
        staging.commit()?;
        Ok(())
    }
}

impl Emulators {
    /// `host_triple` is rustc's; `offline` is CARGO_NET_OFFLINE.
    pub fn probe(
        tools_dir: &Utf8Path,
        config: &ToolchainConfig,
        host_triple: &str,
        offline: bool,
    ) -> Emulators {
        let packages: Vec<Package> = QemuPackage::ALL
            .iter()
            .map(|&kind| Package::probe(kind, tools_dir, config.qemu_pins(kind), host_triple, offline))
            .collect();
        let mut sources: Vec<(&'static str, Source)> = Vec::new();
        for arch in MATRIX {
            if let RunOn::Qemu { emulator, package, .. } = arch.run_on {
                if !sources.iter().any(|(e, _)| *e == emulator) {
                    let package =
                        packages.iter().find(|p| p.kind == package).expect("every package is probed");
                    sources.push((emulator, package.find(emulator)));
                }
            }
        }
        Emulators { packages, sources }
    }

    fn package(&self, kind: QemuPackage) -> &Package {
        self.packages.iter().find(|p| p.kind == kind).expect("every package is probed")
    }

    /// Where `emulator` (e.g. `qemu-arm-static`) comes from.
    pub fn locate(&self, emulator: &str) -> Source {
        self.sources.iter().find(|(e, _)| *e == emulator).map_or_else(
            || Source::Unavailable(format!("{emulator} is no emulator of the arch matrix")),
            |(_, source)| source.clone(),
        )
    }

    /// The packages the plan must fetch for the run checks of `arches`, in a fixed order.
    pub fn to_fetch(&self, arches: &[&Arch]) -> Vec<QemuPackage> {
        QemuPackage::ALL
            .into_iter()
            .filter(|&kind| {
                arches.iter().any(|arch| match arch.run_on {
                    RunOn::Qemu { emulator, package, .. } => {
                        package == kind && matches!(self.locate(emulator), Source::Fetched(_))
                    }
                    RunOn::Host => false,
                })
            })
            .collect()
    }

    /// The plan's command for `kind`'s fetch step.
    pub fn download_command(&self, kind: QemuPackage) -> Cmd {
        let package = self.package(kind);
        package.download_command(&package.dir)
    }

    pub fn fetch(&self, sh: &Shell, kind: QemuPackage) -> Result<()> {
        self.package(kind).fetch(sh)
    }

    /// The folder `kind` is unpacked into.
    #[cfg(test)]
    pub fn dir(&self, kind: QemuPackage) -> &Utf8Path {
        &self.package(kind).dir
    }

    /// The suite `kind` comes from, as this host's pin says.
    pub fn suite(&self, kind: QemuPackage) -> &str {
        self.package(kind).pin.as_ref().map_or(kind.suite(), |pin| pin.suite.as_str())
    }
}

/// apt with a configuration of its own in the tool cache: one suite of Debian's main archive
/// for one architecture, signed by Debian's archive keys. Written by hand: no crate drives apt,
/// and the flags are the ones ci/setup-host.sh uses for its trixie fetches.
#[derive(Debug, Clone)]
struct PrivateApt {
    state: Utf8PathBuf,
    sources_line: String,
    suite: String,
    arch: String,
}

impl PrivateApt {
    fn new(tools_dir: &Utf8Path, pin: Option<&QemuPin>) -> PrivateApt {
        let (suite, arch) = pin.map_or(("none", "none"), |pin| (pin.suite.as_str(), pin.host.as_str()));
        let mirror = std::fs::read_to_string(HOST_SOURCES)
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("URIs:")?.split_whitespace().next().map(String::from))
            })
            .unwrap_or_else(|| DEFAULT_MIRROR.to_string());
        PrivateApt {
            state: tools_dir.join(format!("apt-{suite}-{arch}")),
            sources_line: format!("deb [signed-by={DEBIAN_KEYRING} arch={arch}] {mirror} {suite} main\n"),
            suite: suite.to_string(),
            arch: arch.to_string(),
        }
    }

    fn options(&self) -> Vec<String> {
        let state = &self.state;
        [
            format!("Dir::Etc::SourceList={state}/sources.list"),
            "Dir::Etc::SourceParts=/dev/null".to_string(),
            format!("Dir::State::Lists={state}/lists"),
            format!("Dir::Cache={state}/cache"),
            "APT::Sandbox::User=root".to_string(),
            format!("APT::Architectures={}", self.arch),
        ]
        .into_iter()
        .flat_map(|option| ["-o".to_string(), option])
        .collect()
    }

    fn command(&self, what: &str) -> Cmd {
        Cmd::new("apt-get").args(self.options()).arg(what)
    }

    fn cache_command(&self, what: &str) -> Cmd {
        Cmd::new("apt-cache").args(self.options()).arg(what)
    }

    /// Reads the suite's signed Release file and package lists afresh.
    fn update(&self, sh: &Shell) -> Result<()> {
        for dir in ["lists/partial", "cache/archives/partial"] {
            let dir = self.state.join(dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {dir}"))?;
        }
        let sources = self.state.join("sources.list");
        std::fs::write(&sources, &self.sources_line).with_context(|| format!("cannot write {sources}"))?;
        self.command("update").run_step(sh).with_context(|| {
            format!(
                "cannot read Debian {}'s package lists for {} (is the network up?)",
                self.suite, self.arch
            )
        })
    }
}

#[cfg(test)]
impl Emulators {
    /// A machine with every emulator at /usr/bin, trixie's in the tool cache (unit tests must
    /// not depend on the test host).
    pub fn fixture(tools_dir: &Utf8Path, config: &ToolchainConfig) -> Emulators {
        let mut emulators = Emulators::probe(tools_dir, config, "x86_64-unknown-linux-gnu", false);
        let trixie = emulators.dir(QemuPackage::TrixieUser).join("usr/bin");
        for (emulator, source) in &mut emulators.sources {
            *source = match emulator.ends_with("-static") {
                true => Source::Path(Utf8PathBuf::from("/usr/bin").join(*emulator)),
                false => Source::Cached(trixie.join(*emulator)),
            };
        }
        emulators
    }

    /// The same machine where `emulator` comes from `source` instead.
    pub fn set(&mut self, emulator: &str, source: Source) {
        for (e, s) in &mut self.sources {
            if *e == emulator {
                *s = source.clone();
            }
        }
    }
}

/// Debian's versions carry `:` (the epoch), which a folder name had better not.
fn file_safe(version: &str) -> String {
    version.replace(':', "_")
}

fn only_deb(dir: &Utf8Path) -> Result<Utf8PathBuf> {
    let mut debs = Vec::new();
    for entry in dir.read_dir_utf8().with_context(|| format!("cannot read {dir}"))? {
        let path = entry?.path().to_path_buf();
        if path.extension() == Some("deb") {
            debs.push(path);
        }
    }
    match debs.as_slice() {
        [deb] => Ok(deb.clone()),
        _ => bail!("apt-get download left {} .deb files in {dir}, expected one", debs.len()),
    }
}

/// The downloaded package must be the pinned bytes, whatever apt's lists say.
pub fn check_sha256(kind: QemuPackage, pin: &QemuPin, actual: &str) -> Result<()> {
    let name = kind.name();
    if actual != pin.sha256 {
        bail!(
            "{name} {} for {} downloaded with sha256 {actual}, but release.toml pins {} \
             (toolchain.{name}.{}.sha256): if Debian rebuilt it, set that line to the SHA256 of \
             `apt-cache show {name}={}`; otherwise the download is not the pinned package",
            pin.version,
            pin.host,
            pin.sha256,
            pin.host,
            pin.version
        );
    }
    Ok(())
}

/// apt could not download the pin: name what the suite offers now (`apt-cache madison`'s
/// lines) and the lines of release.toml to change.
fn not_offered(kind: QemuPackage, pin: &QemuPin, madison: &str, apt_output: &str) -> String {
    let name = kind.name();
    let offered: Vec<String> =
        madison.lines().filter_map(|line| Some(line.split('|').nth(1)?.trim().to_string())).collect();
    let reason = apt_output.lines().rev().find(|l| l.starts_with("E:")).unwrap_or("apt-get download failed");
    match offered.first() {
        Some(now) if !offered.contains(&pin.version) => format!(
            "release.toml pins {name} {} for {}, which Debian {} no longer offers ({reason}); it now \
             offers {}: set toolchain.{name}.{}.version to \"{now}\" and its sha256 to that \
             version's SHA256 (`apt-cache show {name}={now}` on a {} host)",
            pin.version,
            pin.host,
            pin.suite,
            offered.join(", "),
            pin.host,
            pin.host
        ),
        _ => format!("`apt-get download {name}={}` from Debian {} failed: {reason}", pin.version, pin.suite),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::config::{pinned_qemu, pinned_qemu_user};

    const STATIC: QemuPackage = QemuPackage::BookwormStatic;
    const TRIXIE: QemuPackage = QemuPackage::TrixieUser;

    fn config() -> ToolchainConfig {
        ToolchainConfig {
            stable: None,
            nightly: "nightly".into(),
            zig: "0".into(),
            cargo_zigbuild: "0".into(),
            cross: "0".into(),
            qemu: pinned_qemu(),
            qemu_user: pinned_qemu_user(),
        }
    }

    #[test]
    fn the_pin_is_chosen_by_the_hosts_debian_architecture() {
        assert_eq!(debian_host_arch("x86_64-unknown-linux-gnu"), Some("amd64"));
        assert_eq!(debian_host_arch("aarch64-unknown-linux-gnu"), Some("arm64"));
        assert_eq!(debian_host_arch("riscv64gc-unknown-linux-gnu"), None);
        let tools = Utf8Path::new("/nonexistent/tools");
        let arm = Emulators::probe(tools, &config(), "aarch64-unknown-linux-gnu", false);
        assert_eq!(arm.package(STATIC).pin.as_ref().unwrap().version, "1:7.2+dfsg-7+deb12u18+b3");
        assert_eq!(arm.dir(STATIC), "/nonexistent/tools/qemu-user-static-1_7.2+dfsg-7+deb12u18+b3-arm64");
        assert_eq!(arm.dir(TRIXIE), "/nonexistent/tools/qemu-user-1_10.0.13+ds-0+deb13u1-arm64");
        let amd64 = Emulators::probe(tools, &config(), "x86_64-unknown-linux-gnu", false);
        let download = amd64.download_command(STATIC).to_string();
        let state = "/nonexistent/tools/apt-bookworm-amd64";
        assert!(download.starts_with(&format!(
            "cd /nonexistent/tools/qemu-user-static-1_7.2+dfsg-7+deb12u18+b3-amd64 && apt-get -o \
             Dir::Etc::SourceList={state}/sources.list"
        )));
        assert!(download.contains(&format!("-o Dir::State::Lists={state}/lists")), "{download}");
        assert!(download.ends_with(" download qemu-user-static=1:7.2+dfsg-7+deb12u18+b3"), "{download}");
        let trixie = amd64.download_command(TRIXIE).to_string();
        assert!(
            trixie.contains("/apt-trixie-amd64/lists")
                && trixie.ends_with(" download qemu-user=1:10.0.13+ds-0+deb13u1")
        );
        let line = &arm.package(STATIC).apt.sources_line;
        assert!(
            line.starts_with("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg arch=arm64] ")
        );
        assert!(line.ends_with(" bookworm main\n"), "{line}");
        assert!(arm.package(TRIXIE).apt.sources_line.ends_with(" trixie main\n"));
    }

    #[test]
    fn an_emulator_nothing_can_provide_says_why_and_what_to_install() {
        let tools = Utf8Path::new("/nonexistent/tools");
        for (host, offline, why) in [
            ("riscv64gc-unknown-linux-gnu", false, "for Debian hosts amd64 and arm64 only"),
            ("x86_64-unknown-linux-gnu", true, "CARGO_NET_OFFLINE is set"),
        ] {
            let emulators = Emulators::probe(tools, &config(), host, offline);
            let Source::Unavailable(text) = emulators.package(STATIC).find("qemu-none-such-static") else {
                panic!("{host} offline={offline}: available");
            };
            assert!(text.contains(why) && text.contains("apt-get install qemu-user-static"), "{text}");
            // Trixie's emulators are never taken from PATH: bookworm's qemu is too old for them.
            let Source::Unavailable(text) = emulators.locate("qemu-loongarch64") else { panic!("{host}") };
            assert!(text.contains("Debian trixie's qemu-user") && text.contains(why), "{text}");
        }
        let online = Emulators::probe(tools, &config(), "x86_64-unknown-linux-gnu", false);
        let Source::Fetched(path) = online.locate("qemu-loongarch64") else { panic!("not fetched") };
        assert_eq!(path, online.dir(TRIXIE).join("usr/bin/qemu-loongarch64"));
    }

    #[test]
    fn a_pin_debian_replaced_names_the_version_it_offers_now_and_the_line_to_change() {
        let pin = &pinned_qemu()[0];
        let madison = "qemu-user-static | 1:7.2+dfsg-7+deb12u19 | http://deb.debian.org/debian bookworm/main amd64 Packages\n";
        let apt = "Reading package lists...\nE: Version '1:7.2+dfsg-7+deb12u18+b3' for 'qemu-user-static' was not found\n";
        let text = not_offered(STATIC, pin, madison, apt);
        assert!(
            text.contains("which Debian bookworm no longer offers (E: Version")
                && text.contains("set toolchain.qemu-user-static.amd64.version to \"1:7.2+dfsg-7+deb12u19\""),
            "{text}"
        );
        let offered = format!(
            "qemu-user-static | {} | http://deb.debian.org/debian bookworm/main amd64 Packages\n",
            pin.version
        );
        assert!(
            not_offered(STATIC, pin, &offered, "E: 404  Not Found").ends_with("failed: E: 404  Not Found")
        );
    }

    #[test]
    fn a_download_with_other_bytes_is_refused_naming_the_line_to_change() {
        let pin = &pinned_qemu_user()[0];
        check_sha256(TRIXIE, pin, &pin.sha256).unwrap();
        let err = check_sha256(TRIXIE, pin, &"0".repeat(64)).unwrap_err().to_string();
        assert!(
            err.contains("toolchain.qemu-user.amd64.sha256")
                && err.contains(&pin.sha256)
                && err.contains("apt-cache show qemu-user=1:10.0"),
            "{err}"
        );
    }
}
