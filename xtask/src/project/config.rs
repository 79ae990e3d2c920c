//! `release.toml`: what to build and publish, as data. Unknown keys and bad values are
//! rejected with the file, line and column, and the values that would be accepted.

use std::collections::BTreeMap;
use std::ops::Range;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;
use toml::Spanned;

use crate::project::matrix::{self, Arch, QemuPackage};

pub const CONFIG_FILE: &str = "release.toml";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub dist: DistConfig,
    pub image: ImageSection,
    pub toolchain: ToolchainConfig,
    pub sign: SignConfig,
    pub deb: DebConfig,
    pub rpm: RpmConfig,
    pub repo: RepoConfig,
    pub network: NetworkConfig,
}

/// `[network]`: how registry requests outlast a failing network (net/retry.rs). Unset keys
/// fall back to XTASK_NET_* and then net's defaults; flags override all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetworkConfig {
    /// Tries of one request in all (1 = no retries).
    pub attempts: Option<u32>,
    /// Seconds a request may go with no byte moving before it is given up (and retried).
    pub idle_timeout: Option<u32>,
}

/// `[repo]`: the package repositories `cargo xtask repo` writes (see commands/repo.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConfig {
    /// The armored OpenPGP secret key that signs them, relative to the workspace root
    /// (`--repo-key` overrides it; its passphrase: REPO_KEY_PASSPHRASE).
    pub key: Option<Utf8PathBuf>,
    /// Where users fetch the repository from: the URL in the `.sources` file users install.
    pub url: Option<String>,
    /// The apt suite (and codename): `dists/<suite>`.
    pub suite: String,
}

pub const DEFAULT_REPO_SUITE: &str = "stable";

/// `[deb]`: Debian packages of the binary with a systemd unit (see release/deb.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebConfig {
    pub enabled: bool,
    /// `Name <email>`, the control file's Maintainer.
    pub maintainer: String,
    /// The Debian revision: `<package>_<version>-<revision>_<arch>.deb`.
    pub revision: u32,
    pub section: String,
    /// The systemd unit shipped as `/lib/systemd/system/<binary>.service`, relative to the root.
    pub unit: Utf8PathBuf,
    /// The conffile shipped as `/etc/default/<binary>`, relative to the root.
    pub defaults: Utf8PathBuf,
}

/// `[rpm]`: rpm packages of the same binary, unit and settings as the `.deb` (release/rpm.rs);
/// the unit and settings files are `[deb]`'s `unit` and `defaults`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmConfig {
    pub enabled: bool,
    /// The rpm release: `<package>-<version>-<release>.<arch>.rpm`.
    pub release: u32,
    /// rpm's Group tag (Fedora dropped it; rpmlint and older tools still ask for one).
    pub group: String,
}

pub const DEFAULT_RPM_GROUP: &str = "System Environment/Daemons";

/// `[sign]`: the cosign private key that signs SHA256SUMS (its password: COSIGN_PASSWORD).
/// Neither set means unsigned releases (`dist --sign-key` still signs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignConfig {
    /// A key file, relative to the workspace root.
    pub key: Option<Utf8PathBuf>,
    /// An environment variable holding the key file's text (for CI secrets).
    pub key_env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistConfig {
    pub package: String,
    pub binary: String,
    /// In matrix order.
    pub arches: Vec<&'static Arch>,
    pub include: Vec<Utf8PathBuf>,
    /// May contain `{version}`.
    pub download_url: String,
    /// What the run check does after `--version`; `None`: `--version` only.
    pub smoke: Option<SmokeConfig>,
    pub run_check: RunCheckPolicy,
}

/// A short life of the daemon on its CPU class: started with `args` (`{data_dir}` is a fresh
/// empty folder, `{addr}` a free loopback address), every path in `get` must answer 200, then
/// SIGTERM must stop it with exit status 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeConfig {
    pub args: Vec<String>,
    pub get: Vec<String>,
}

/// The placeholders `dist.smoke.args` may use.
pub const SMOKE_PLACEHOLDERS: [&str; 2] = ["{data_dir}", "{addr}"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BaseKind {
    /// Docker Hub's busybox for the arch: a shell for debugging, ~1 MB.
    Busybox,
    /// Nothing but the binary.
    Scratch,
}

/// release.toml's `[image]` section, as written (with defaults). The image itself is
/// described by `project::image_spec::ImageSpec`, derived from this and the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSection {
    pub repository: String,
    /// May contain `{version}`.
    pub tags: Vec<String>,
    pub base: BaseKind,
    pub user: u32,
    /// The volume the binary keeps its state in, owned by `user`; none unless written.
    pub volume: Option<String>,
    /// The TCP port EXPOSEd; none unless written.
    pub port: Option<u16>,
    /// Default arguments after the entrypoint (the binary); empty: no CMD.
    pub command: Vec<String>,
    /// Arguments that make the binary check its own health, for HEALTHCHECK; empty (absent or
    /// `[]`): no HEALTHCHECK.
    pub healthcheck: Vec<String>,
    /// Extra labels, next to the `org.opencontainers.image.*` ones the tooling sets.
    pub labels: BTreeMap<String, String>,
    base_images: BTreeMap<String, String>,
}

/// The label keys the tooling sets itself (`org.opencontainers.image.` + these); `image.labels`
/// may not set them, so there is one source for each.
pub const DERIVED_LABELS: [&str; 8] =
    ["title", "description", "version", "revision", "created", "source", "licenses", "base.name"];

impl ImageSection {
    pub fn base_image(&self, arch: &Arch) -> &str {
        self.base_images.get(arch.name).map(String::as_str).unwrap_or(arch.base_image)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolchainConfig {
    /// rust-toolchain.toml's channel (the workspace's pinned stable), if the file exists.
    pub stable: Option<String>,
    pub nightly: String,
    pub zig: String,
    pub cargo_zigbuild: String,
    /// cross, for `--backend cross`, installed with `cargo install cross --locked`.
    pub cross: String,
    /// Debian's qemu-user-static, pinned for each Debian host architecture dist can fetch it
    /// on (`[toolchain.qemu-user-static]`), sorted by host.
    pub qemu: Vec<QemuPin>,
    /// trixie's qemu-user, for the rows bookworm's qemu is too old for (`[toolchain.qemu-user]`).
    pub qemu_user: Vec<QemuPin>,
}

impl ToolchainConfig {
    /// The pins of one emulator package.
    pub fn qemu_pins(&self, package: QemuPackage) -> &[QemuPin] {
        match package {
            QemuPackage::BookwormStatic => &self.qemu,
            QemuPackage::TrixieUser => &self.qemu_user,
        }
    }
}

/// One pinned qemu-user-static package: what `apt-get download` must fetch on `host`, from
/// Debian's `suite`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuPin {
    /// Debian's architecture of the machine dist runs on (amd64, arm64).
    pub host: String,
    /// The Debian release it comes from (bookworm).
    pub suite: String,
    pub version: String,
    /// The .deb's SHA-256, as Debian's Packages index lists it.
    pub sha256: String,
}

/// The Debian hosts a qemu-user-static pin may be written for: the machines dist runs on.
pub const QEMU_HOSTS: [&str; 2] = ["amd64", "arm64"];

fn pin(suite: &str, host: &str, version: &str, sha256: &str) -> QemuPin {
    QemuPin { host: host.into(), suite: suite.into(), version: version.into(), sha256: sha256.into() }
}

/// bookworm's qemu-user-static (7.2), whose `-cpu` models the matrix names.
pub fn pinned_qemu() -> Vec<QemuPin> {
    let pin = |host: &str, version: &str, sha256: &str| {
        pin(QemuPackage::BookwormStatic.suite(), host, version, sha256)
    };
    vec![
        pin(
            "amd64",
            "1:7.2+dfsg-7+deb12u18+b3",
            "c3e3ba2bd87f8c5b9a5da5ef21b5a3b82d7c63b89dd448d9ddaa4eabc5b6e402",
        ),
        pin(
            "arm64",
            "1:7.2+dfsg-7+deb12u18+b3",
            "e420c417c12b42ca774795b62888d5388da0e08c1ef263dea1490e5ce4e32a0b",
        ),
    ]
}

/// trixie's qemu-user (10.0; static binaries, `qemu-loongarch64`): LoongArch's LSX needs 8.1.
pub fn pinned_qemu_user() -> Vec<QemuPin> {
    let pin =
        |host: &str, version: &str, sha256: &str| pin(QemuPackage::TrixieUser.suite(), host, version, sha256);
    vec![
        pin(
            "amd64",
            "1:10.0.13+ds-0+deb13u1",
            "ca6ede739327a20ae5a3498230c8a3a9a072c586e131bc6bcc1201eb1725e336",
        ),
        pin(
            "arm64",
            "1:10.0.13+ds-0+deb13u1",
            "c73711af02b97cd5e2667e735d9c06890c57165517110ca4e646c95a7083158d",
        ),
    ]
}

/// `dist.run-check`: whether a binary that cannot be started on its CPU class here (no
/// emulator to be had) stops the release or is packed unrun, saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunCheckPolicy {
    #[default]
    Required,
    Optional,
}

impl RunCheckPolicy {
    pub const NAMES: [&'static str; 2] = ["required", "optional"];
}

/// `[toolchain]`'s defaults: dated and numbered, never a floating channel, so a release.toml
/// that leaves them out still gives the same bytes next month.
pub const PINNED_NIGHTLY: &str = "nightly-2026-05-20";
pub const PINNED_ZIG: &str = "0.17.1";
pub const PINNED_CARGO_ZIGBUILD: &str = "0.24.0";
pub const PINNED_CROSS: &str = "0.2.5";

/// `Name <email>`: some name, then one email address in angle brackets at the end.
fn is_maintainer(text: &str) -> bool {
    let Some((name, rest)) = text.split_once(" <") else { return false };
    let Some(email) = rest.strip_suffix('>') else { return false };
    !name.trim().is_empty() && email.contains('@') && !email.contains(['<', '>', ' '])
}

pub fn expand_version(template: &str, version: &str) -> String {
    template.replace("{version}", version)
}

// The file as written. `Spanned` keeps positions for errors found after parsing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    dist: RawDist,
    #[serde(default)]
    image: RawImage,
    #[serde(default)]
    toolchain: RawToolchain,
    #[serde(default)]
    sign: RawSign,
    #[serde(default)]
    deb: RawDeb,
    #[serde(default)]
    rpm: RawRpm,
    #[serde(default)]
    repo: RawRepo,
    #[serde(default)]
    network: RawNetwork,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNetwork {
    attempts: Option<Spanned<i64>>,
    idle_timeout: Option<Spanned<i64>>,
}

impl RawNetwork {
    fn parse(self, src: &Source) -> Result<NetworkConfig> {
        let attempts =
            self.attempts.map(|n| positive_number(src, Some(n), "network.attempts")).transpose()?;
        let idle_timeout =
            self.idle_timeout.map(|n| positive_number(src, Some(n), "network.idle-timeout")).transpose()?;
        Ok(NetworkConfig { attempts, idle_timeout })
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRepo {
    key: Option<Utf8PathBuf>,
    url: Option<Spanned<String>>,
    suite: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRpm {
    #[serde(default)]
    enabled: bool,
    release: Option<Spanned<i64>>,
    group: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDeb {
    #[serde(default)]
    enabled: bool,
    maintainer: Option<Spanned<String>>,
    revision: Option<Spanned<i64>>,
    section: Option<String>,
    unit: Option<Utf8PathBuf>,
    defaults: Option<Utf8PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSign {
    key: Option<Utf8PathBuf>,
    key_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDist {
    package: String,
    binary: Option<String>,
    arches: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    include: Vec<Utf8PathBuf>,
    download_url: Option<Spanned<String>>,
    smoke: Option<Spanned<RawSmoke>>,
    run_check: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSmoke {
    args: Vec<Spanned<String>>,
    #[serde(default)]
    get: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawImage {
    repository: Option<Spanned<String>>,
    tags: Option<Spanned<Vec<Spanned<String>>>>,
    base: Option<Spanned<String>>,
    user: Option<Spanned<i64>>,
    volume: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    command: Option<Vec<String>>,
    healthcheck: Option<Vec<String>>,
    #[serde(default)]
    labels: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    base_images: BTreeMap<Spanned<String>, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawToolchain {
    nightly: Option<String>,
    zig: Option<String>,
    cargo_zigbuild: Option<String>,
    cross: Option<String>,
    #[serde(default)]
    qemu_user_static: BTreeMap<Spanned<String>, Spanned<RawQemuPin>>,
    #[serde(default)]
    qemu_user: BTreeMap<Spanned<String>, Spanned<RawQemuPin>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQemuPin {
    version: String,
    sha256: Spanned<String>,
    suite: Option<String>,
}

/// release.toml's text, to point an error at the line and column of a value.
struct Source<'a> {
    text: &'a str,
    path: &'a Utf8Path,
}

impl Source<'_> {
    fn at(&self, span: Option<Range<usize>>) -> String {
        match span {
            Some(span) => {
                let (line, column) = line_column(self.text, span.start);
                format!("{}:{line}:{column}", self.path)
            }
            None => self.path.to_string(),
        }
    }

    fn fail(&self, span: Range<usize>, message: String) -> anyhow::Error {
        anyhow::anyhow!("{}: {message}", self.at(Some(span)))
    }
}

impl RawDist {
    fn parse(self, src: &Source) -> Result<DistConfig> {
        let arches = match self.arches {
            None => matrix::default_arches(),
            Some(list) => parse_arches(src, list)?,
        };
        let download_url = match self.download_url {
            None => String::new(),
            Some(url) => parse_download_url(src, url)?,
        };
        let smoke = self.smoke.map(|smoke| smoke_config(src, smoke)).transpose()?;
        let run_check = match self.run_check {
            None => RunCheckPolicy::default(),
            Some(value) => match value.get_ref().as_str() {
                "required" => RunCheckPolicy::Required,
                "optional" => RunCheckPolicy::Optional,
                other => {
                    return Err(src.fail(
                        value.span(),
                        format!(
                            "dist.run-check {other:?} is not one of: {}; \"optional\" packs a binary no \
                             emulator here can start, saying so",
                            RunCheckPolicy::NAMES.join(", ")
                        ),
                    ))
                }
            },
        };
        Ok(DistConfig {
            binary: self.binary.unwrap_or_else(|| self.package.clone()),
            package: self.package,
            arches,
            include: self.include,
            download_url,
            smoke,
            run_check,
        })
    }
}

/// `dist.arches`: known, each once, at least one; in matrix order whatever order they are written.
fn parse_arches(src: &Source, list: Spanned<Vec<Spanned<String>>>) -> Result<Vec<&'static Arch>> {
    if list.get_ref().is_empty() {
        return Err(src.fail(
            list.span(),
            format!("dist.arches is empty; list at least one of: {}", matrix::names().join(", ")),
        ));
    }
    let mut arches: Vec<&'static Arch> = Vec::new();
    for name in list.get_ref() {
        let arch = matrix::by_name(name.get_ref()).ok_or_else(|| {
            src.fail(
                name.span(),
                format!(
                    "unknown arch {:?} in dist.arches; accepted values: {}",
                    name.get_ref(),
                    matrix::names().join(", ")
                ),
            )
        })?;
        if arches.contains(&arch) {
            return Err(src.fail(name.span(), format!("arch {:?} is listed twice in dist.arches", arch.name)));
        }
        arches.push(arch);
    }
    arches.sort_by_key(|arch| matrix::rank(arch));
    Ok(arches)
}

fn parse_download_url(src: &Source, url: Spanned<String>) -> Result<String> {
    if url.get_ref().starts_with("https://") || url.get_ref().starts_with("http://") {
        return Ok(url.into_inner());
    }
    Err(src.fail(
        url.span(),
        format!("dist.download-url {:?} must start with https:// (or http://)", url.get_ref()),
    ))
}

/// `dist.smoke`: arguments that start the daemon, with known placeholders only, and URL paths
/// to ask, which need an address to ask them at.
fn smoke_config(src: &Source, smoke: Spanned<RawSmoke>) -> Result<SmokeConfig> {
    let span = smoke.span();
    let smoke = smoke.into_inner();
    if smoke.args.is_empty() {
        return Err(src.fail(
            span,
            "dist.smoke.args is empty; give the arguments that start the daemon, e.g. \
             [\"run\", \"--listen\", \"{addr}\"]"
                .into(),
        ));
    }
    if !smoke.args.iter().any(|a| a.get_ref().contains("{addr}")) && !smoke.get.is_empty() {
        return Err(src
            .fail(span, "dist.smoke.get needs an address to ask: put \"{addr}\" in dist.smoke.args".into()));
    }
    for arg in &smoke.args {
        if let Some(unknown) = unknown_placeholder(arg.get_ref()) {
            return Err(src.fail(
                arg.span(),
                format!(
                    "dist.smoke.args: unknown placeholder {unknown}; accepted: {}",
                    SMOKE_PLACEHOLDERS.join(", ")
                ),
            ));
        }
    }
    for path in &smoke.get {
        if !path.get_ref().starts_with('/') || path.get_ref().contains(char::is_whitespace) {
            return Err(src.fail(
                path.span(),
                format!(
                    "dist.smoke.get entry {:?} must be a URL path starting with / (e.g. \"/healthz\")",
                    path.get_ref()
                ),
            ));
        }
    }
    Ok(SmokeConfig {
        args: smoke.args.into_iter().map(Spanned::into_inner).collect(),
        get: smoke.get.into_iter().map(Spanned::into_inner).collect(),
    })
}

impl RawImage {
    /// `package`: the repository when none is written.
    fn parse(self, src: &Source, package: &str) -> Result<ImageSection> {
        let repository = match self.repository {
            Some(repo) => {
                validate_repository(repo.get_ref()).map_err(|why| {
                    src.fail(repo.span(), format!("image.repository {:?} {why}", repo.get_ref()))
                })?;
                repo.into_inner()
            }
            None => package.to_string(),
        };
        let tags = match self.tags {
            None => vec!["{version}".to_string()],
            Some(list) => parse_tags(src, list)?,
        };
        let base = match self.base {
            None => BaseKind::Busybox,
            Some(base) => parse_base(src, base)?,
        };
        let user = match self.user {
            None => 10001,
            Some(user) => parse_user(src, user)?,
        };
        // What a daemon needs (a state volume, a port, a command, a health check) is absent
        // unless written: another binary's image gets none of exonode's.
        let volume = self.volume.map(|volume| parse_volume(src, volume)).transpose()?;
        let port = self.port.map(|port| parse_port(src, port)).transpose()?;
        let base_images = parse_base_images(src, self.base_images)?;
        let labels = parse_labels(src, self.labels)?;
        Ok(ImageSection {
            repository,
            tags,
            base,
            user,
            volume,
            port,
            command: self.command.unwrap_or_default(),
            healthcheck: self.healthcheck.unwrap_or_default(),
            labels,
            base_images,
        })
    }
}

/// `image.tags`: at least one, each a valid tag once `{version}` is filled in.
fn parse_tags(src: &Source, list: Spanned<Vec<Spanned<String>>>) -> Result<Vec<String>> {
    if list.get_ref().is_empty() {
        return Err(src.fail(list.span(), "image.tags is empty; use for example [\"{version}\"]".into()));
    }
    let mut tags = Vec::new();
    for tag in list.into_inner() {
        validate_tag(&expand_version(tag.get_ref(), "0.0.0"))
            .map_err(|why| src.fail(tag.span(), format!("image.tags entry {:?} {why}", tag.get_ref())))?;
        tags.push(tag.into_inner());
    }
    Ok(tags)
}

fn parse_base(src: &Source, base: Spanned<String>) -> Result<BaseKind> {
    match base.get_ref().as_str() {
        "busybox" => Ok(BaseKind::Busybox),
        "scratch" => Ok(BaseKind::Scratch),
        other => Err(src.fail(
            base.span(),
            format!("image.base {other:?} is not supported; accepted values: busybox, scratch"),
        )),
    }
}

fn parse_user(src: &Source, user: Spanned<i64>) -> Result<u32> {
    match u32::try_from(*user.get_ref()) {
        Ok(uid) if (1..=2_147_483_647).contains(&uid) => Ok(uid),
        _ => Err(src.fail(
            user.span(),
            format!(
                "image.user {} must be a non-root uid between 1 and 2147483647 (e.g. 10001)",
                user.get_ref()
            ),
        )),
    }
}

fn parse_volume(src: &Source, volume: Spanned<String>) -> Result<String> {
    let ok = volume.get_ref().starts_with('/')
        && volume.get_ref().len() > 1
        && !volume.get_ref().contains(['"', '\\', ' ', '\'']);
    if !ok {
        return Err(src.fail(
            volume.span(),
            format!(
                "image.volume {:?} must be an absolute path without spaces or quotes (e.g. \"/data\")",
                volume.get_ref()
            ),
        ));
    }
    Ok(volume.into_inner())
}

fn parse_port(src: &Source, port: Spanned<i64>) -> Result<u16> {
    u16::try_from(*port.get_ref()).ok().filter(|p| *p > 0).ok_or_else(|| {
        src.fail(port.span(), format!("image.port {} must be between 1 and 65535", port.get_ref()))
    })
}

/// `image.base-images`: per-arch overrides of the matrix's base image, for known arches only.
fn parse_base_images(
    src: &Source,
    raw: BTreeMap<Spanned<String>, String>,
) -> Result<BTreeMap<String, String>> {
    let mut base_images = BTreeMap::new();
    for (name, image) in raw {
        if matrix::by_name(name.get_ref()).is_none() {
            return Err(src.fail(
                name.span(),
                format!(
                    "unknown arch {:?} in image.base-images; accepted values: {}",
                    name.get_ref(),
                    matrix::names().join(", ")
                ),
            ));
        }
        base_images.insert(name.into_inner(), image);
    }
    Ok(base_images)
}

/// `image.labels`: valid keys the tooling does not set itself, one-line values.
fn parse_labels(
    src: &Source,
    raw: BTreeMap<Spanned<String>, Spanned<String>>,
) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for (key, value) in raw {
        validate_label_key(key.get_ref())
            .map_err(|why| src.fail(key.span(), format!("image.labels key {:?} {why}", key.get_ref())))?;
        if value.get_ref().chars().any(char::is_control) {
            return Err(src.fail(
                value.span(),
                format!(
                    "image.labels.{:?} has a control character (e.g. a newline); a label value is one line",
                    key.get_ref()
                ),
            ));
        }
        labels.insert(key.into_inner(), value.into_inner());
    }
    Ok(labels)
}

impl RawToolchain {
    fn parse(self, src: &Source) -> Result<ToolchainConfig> {
        Ok(ToolchainConfig {
            stable: None,
            nightly: self.nightly.unwrap_or_else(|| PINNED_NIGHTLY.into()),
            zig: self.zig.unwrap_or_else(|| PINNED_ZIG.into()),
            cargo_zigbuild: self.cargo_zigbuild.unwrap_or_else(|| PINNED_CARGO_ZIGBUILD.into()),
            cross: self.cross.unwrap_or_else(|| PINNED_CROSS.into()),
            qemu: parse_qemu_pins(src, QemuPackage::BookwormStatic, self.qemu_user_static)?,
            qemu_user: parse_qemu_pins(src, QemuPackage::TrixieUser, self.qemu_user)?,
        })
    }
}

/// `[toolchain.qemu-user-static]` or `[toolchain.qemu-user]`: a pin per Debian host, each
/// replacing the built-in one.
fn parse_qemu_pins(
    src: &Source,
    package: QemuPackage,
    written: BTreeMap<Spanned<String>, Spanned<RawQemuPin>>,
) -> Result<Vec<QemuPin>> {
    let name = package.name();
    let mut pins = match package {
        QemuPackage::BookwormStatic => pinned_qemu(),
        QemuPackage::TrixieUser => pinned_qemu_user(),
    };
    for (host, pin) in written {
        if !QEMU_HOSTS.contains(&host.get_ref().as_str()) {
            return Err(src.fail(
                host.span(),
                format!(
                    "toolchain.{name}.{}: dist fetches {name} on Debian hosts {} only",
                    host.get_ref(),
                    QEMU_HOSTS.join(" and ")
                ),
            ));
        }
        let pin = pin.into_inner();
        let sha256 = pin.sha256.get_ref();
        if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) {
            return Err(src.fail(
                pin.sha256.span(),
                format!(
                    "toolchain.{name}.{}.sha256 {sha256:?} is not a SHA-256 (64 lowercase hex \
                     digits); copy the SHA256 line of `apt-cache show {name}={}`",
                    host.get_ref(),
                    pin.version
                ),
            ));
        }
        let host = host.into_inner();
        pins.retain(|p| p.host != host);
        pins.push(QemuPin {
            host,
            suite: pin.suite.unwrap_or_else(|| package.suite().into()),
            version: pin.version,
            sha256: pin.sha256.into_inner(),
        });
    }
    pins.sort_by(|a, b| a.host.cmp(&b.host));
    Ok(pins)
}

impl RawSign {
    fn parse(self) -> SignConfig {
        SignConfig { key: self.key, key_env: self.key_env }
    }
}

impl RawDeb {
    /// `binary` names the unit and defaults files when none are written.
    fn parse(self, src: &Source, binary: &str) -> Result<DebConfig> {
        let maintainer = match self.maintainer {
            Some(m) if is_maintainer(m.get_ref()) => m.into_inner(),
            Some(m) => {
                return Err(src.fail(
                    m.span(),
                    format!(
                        "deb.maintainer {:?} must read \"Name <email>\" (Debian's Maintainer field)",
                        m.get_ref()
                    ),
                ))
            }
            None if self.enabled => bail!(
                "{}: [deb] enabled = true needs maintainer = \"Name <email>\" (Debian's Maintainer field)",
                src.path
            ),
            None => String::new(),
        };
        Ok(DebConfig {
            enabled: self.enabled,
            maintainer,
            revision: positive_number(src, self.revision, "deb.revision")?,
            section: self.section.unwrap_or_else(|| "net".into()),
            unit: self.unit.unwrap_or_else(|| format!("packaging/deb/{binary}.service").into()),
            defaults: self.defaults.unwrap_or_else(|| format!("packaging/deb/{binary}.default").into()),
        })
    }
}

impl RawRpm {
    fn parse(self, src: &Source) -> Result<RpmConfig> {
        Ok(RpmConfig {
            enabled: self.enabled,
            release: positive_number(src, self.release, "rpm.release")?,
            group: self.group.unwrap_or_else(|| DEFAULT_RPM_GROUP.into()),
        })
    }
}

impl RawRepo {
    fn parse(self, src: &Source) -> Result<RepoConfig> {
        if let Some(url) = &self.url {
            if !(url.get_ref().starts_with("https://") || url.get_ref().starts_with("http://")) {
                return Err(src.fail(
                    url.span(),
                    format!("repo.url `{}` must be an http:// or https:// URL", url.get_ref()),
                ));
            }
        }
        let suite = match self.suite {
            None => DEFAULT_REPO_SUITE.to_string(),
            Some(suite) => {
                let name = suite.get_ref();
                let fine =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                if !fine {
                    return Err(src.fail(
                        suite.span(),
                        format!("repo.suite `{name}` must be a word of letters, digits, `-`, `_` and `.` (e.g. stable)"),
                    ));
                }
                suite.into_inner()
            }
        };
        Ok(RepoConfig {
            key: self.key,
            url: self.url.map(|url| url.into_inner().trim_end_matches('/').to_string()),
            suite,
        })
    }
}

/// A package revision or release: 1 when not written.
fn positive_number(src: &Source, value: Option<Spanned<i64>>, key: &str) -> Result<u32> {
    match value {
        None => Ok(1),
        Some(r) => u32::try_from(*r.get_ref()).ok().filter(|r| *r > 0).ok_or_else(|| {
            src.fail(r.span(), format!("{key} {} must be a positive number (e.g. 1)", r.get_ref()))
        }),
    }
}

impl Config {
    pub fn load(path: &Utf8Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
        Config::parse(&text, path)
    }

    /// Each section parses and checks itself (dist, image, deb: the order errors are found in),
    /// given what it depends on: the image repository defaults to the package, the .deb's files
    /// are named after the binary.
    pub fn parse(text: &str, path: &Utf8Path) -> Result<Config> {
        let src = Source { text, path };
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}: {}", src.at(e.span()), e.message().trim_end()))?;
        let dist = raw.dist.parse(&src)?;
        let image = raw.image.parse(&src, &dist.package)?;
        let deb = raw.deb.parse(&src, &dist.binary)?;
        let rpm = raw.rpm.parse(&src)?;
        let toolchain = raw.toolchain.parse(&src)?;
        let repo = raw.repo.parse(&src)?;
        let network = raw.network.parse(&src)?;
        Ok(Config { dist, image, toolchain, sign: raw.sign.parse(), deb, rpm, repo, network })
    }

    /// Resolves `--arch NAME` / `--target TRIPLE` selections; none means every configured arch.
    pub fn select_arches(&self, names: &[String], targets: &[String]) -> Result<Vec<&'static Arch>> {
        if names.is_empty() && targets.is_empty() {
            return Ok(self.dist.arches.clone());
        }
        let configured = || self.dist.arches.iter().map(|a| a.name).collect::<Vec<_>>().join(", ");
        let mut selected = Vec::new();
        for name in names {
            let Some(arch) = matrix::by_name(name) else {
                bail!("--arch {name:?} is not a known arch; accepted values: {}", matrix::names().join(", "))
            };
            selected.push(arch);
        }
        for target in targets {
            let Some(arch) = matrix::by_target(target) else {
                let known: Vec<_> = matrix::MATRIX.iter().map(|a| a.target).collect();
                bail!("--target {target:?} is not in the arch matrix; accepted values: {}", known.join(", "))
            };
            selected.push(arch);
        }
        for arch in &selected {
            if !self.dist.arches.contains(arch) {
                bail!(
                    "arch {} is not enabled in {CONFIG_FILE} (dist.arches = {}); add it there first",
                    arch.name,
                    configured()
                );
            }
        }
        selected.sort_by_key(|arch| matrix::rank(arch));
        selected.dedup();
        Ok(selected)
    }
}

/// The first `{...}` in `arg` that is not a smoke placeholder.
fn unknown_placeholder(arg: &str) -> Option<&str> {
    let mut rest = arg;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').map_or(rest.len(), |end| start + end + 1);
        let candidate = &rest[start..end];
        if !SMOKE_PLACEHOLDERS.contains(&candidate) {
            return Some(candidate);
        }
        rest = &rest[end..];
    }
    None
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A Docker image repository: lower-case path components, optionally behind a registry host.
pub fn validate_repository(repo: &str) -> std::result::Result<(), String> {
    let (host, path) = match repo.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (Some(first), rest),
        _ => (None, repo),
    };
    if let Some(host) = host {
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c)) {
            return Err("has an invalid registry host".into());
        }
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
    };
    if path.contains(':') || path.contains('@') {
        return Err("must not include a tag or digest".into());
    }
    if path.is_empty() || !path.split('/').all(component_ok) {
        return Err("is not a valid image repository: use lower-case letters, digits, '.', '_', '-' and '/' (e.g. ghcr.io/org/name)".into());
    }
    Ok(())
}

/// A label key: letters, digits, '.', '-', '_' and '/', starting with a letter or digit (Docker
/// takes more, but these need no quoting anywhere), and none the tooling sets itself.
pub fn validate_label_key(key: &str) -> std::result::Result<(), String> {
    let ok = key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    if !ok {
        return Err("is not a valid label key: use letters, digits, '.', '-', '_' and '/' (e.g. \"org.example.team\")".into());
    }
    if let Some(derived) =
        key.strip_prefix("org.opencontainers.image.").filter(|k| DERIVED_LABELS.contains(k))
    {
        return Err(format!(
            "is set by the tooling (org.opencontainers.image.{derived} comes from the release and Cargo.toml); remove it"
        ));
    }
    Ok(())
}

/// A Docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err("is not a valid tag: use letters, digits, '_', '.', '-' (at most 128, not starting with '.' or '-')".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Utf8Path::new("release.toml"))
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn deb_needs_a_maintainer_when_enabled_and_names_bad_values_where_they_are() {
        let base = "[dist]\npackage = \"exonode\"\n[deb]\n";
        let off = parse(base).unwrap().deb;
        assert!(!off.enabled);
        assert_eq!(off.unit, "packaging/deb/exonode.service");
        assert_eq!(off.defaults, "packaging/deb/exonode.default");
        let err = error(&format!("{base}enabled = true\n"));
        assert_eq!(err, "release.toml: [deb] enabled = true needs maintainer = \"Name <email>\" (Debian's Maintainer field)");
        for bad in ["\"nobody\"", "\"<a@b>\"", "\"A <ab>\"", "\"A <a@b> x\""] {
            let err = error(&format!("{base}maintainer = {bad}\n"));
            assert!(
                err.starts_with("release.toml:4:14: deb.maintainer") && err.contains("Name <email>"),
                "{bad}: {err}"
            );
        }
        let err = error(&format!("{base}maintainer = \"A <a@b.org>\"\nrevision = 0\n"));
        assert_eq!(err, "release.toml:5:12: deb.revision 0 must be a positive number (e.g. 1)");
        let on = parse(&format!("{base}enabled = true\nmaintainer = \"A B <a@b.org>\"\nrevision = 3\n"))
            .unwrap()
            .deb;
        assert_eq!((on.enabled, on.maintainer.as_str(), on.revision), (true, "A B <a@b.org>", 3));
        assert!(error(&format!("{base}enable = true\n")).contains("unknown field `enable`"));
    }

    #[test]
    fn rpm_is_off_by_default_and_its_release_is_positive() {
        let base = "[dist]\npackage = \"exonode\"\n";
        let off = parse(base).unwrap().rpm;
        assert_eq!(off, RpmConfig { enabled: false, release: 1, group: DEFAULT_RPM_GROUP.into() });
        let on =
            parse(&format!("{base}[rpm]\nenabled = true\nrelease = 4\ngroup = \"Applications/System\"\n"))
                .unwrap()
                .rpm;
        assert_eq!(on, RpmConfig { enabled: true, release: 4, group: "Applications/System".into() });
        let err = error(&format!("{base}[rpm]\nrelease = -1\n"));
        assert_eq!(err, "release.toml:4:11: rpm.release -1 must be a positive number (e.g. 1)");
        assert!(error(&format!("{base}[rpm]\nlicense = \"x\"\n")).contains("unknown field `license`"));
    }

    #[test]
    fn the_network_section_is_optional_and_its_numbers_are_positive() {
        let base = "[dist]\npackage = \"x\"\n";
        assert_eq!(parse(base).unwrap().network, NetworkConfig::default());
        let set = parse(&format!("{base}[network]\nattempts = 8\nidle-timeout = 120\n")).unwrap().network;
        assert_eq!(set, NetworkConfig { attempts: Some(8), idle_timeout: Some(120) });
        let err = error(&format!("{base}[network]\nidle-timeout = 0\n"));
        assert_eq!(err, "release.toml:4:16: network.idle-timeout 0 must be a positive number (e.g. 1)");
        assert!(error(&format!("{base}[network]\nretries = 3\n")).contains("unknown field `retries`"));
    }

    #[test]
    fn the_repo_section_defaults_to_the_stable_suite_and_checks_its_url_and_suite() {
        let base = "[dist]\npackage = \"x\"\n";
        let default = parse(base).unwrap().repo;
        assert_eq!(default, RepoConfig { key: None, url: None, suite: DEFAULT_REPO_SUITE.into() });
        let set = parse(&format!(
            "{base}[repo]\nkey = \"k.asc\"\nurl = \"https://x.example/apt/\"\nsuite = \"edge\"\n"
        ))
        .unwrap()
        .repo;
        let expected = RepoConfig {
            key: Some("k.asc".into()),
            url: Some("https://x.example/apt".into()),
            suite: "edge".into(),
        };
        assert_eq!(set, expected);
        assert_eq!(
            error(&format!("{base}[repo]\nurl = \"ftp://x\"\n")),
            "release.toml:4:7: repo.url `ftp://x` must be an http:// or https:// URL"
        );
        assert!(error(&format!("{base}[repo]\nsuite = \"a b\"\n"))
            .starts_with("release.toml:4:9: repo.suite `a b` must be a word"));
    }

    #[test]
    fn the_shipped_config_is_valid_and_selects_dockers_ten_arches() {
        let text = include_str!("../../../release.toml");
        let config = parse(text).unwrap();
        assert_eq!(config.dist.package, "exonode");
        assert_eq!(config.dist.arches, matrix::default_arches());
        assert_eq!(config.dist.arches.len(), 10);
        assert_eq!(config.image.user, 10001);
        assert_eq!(config.image.base, BaseKind::Busybox);
        assert_eq!(config.image.base_image(matrix::by_name("arm32v5").unwrap()), "arm32v5/busybox");
        assert_eq!(config.toolchain.qemu, pinned_qemu(), "release.toml repeats the built-in pins");
        assert_eq!(config.toolchain.qemu_user, pinned_qemu_user());
    }

    #[test]
    fn sign_and_toolchain_values_are_read_as_written() {
        let config = parse(
            "[dist]\npackage = \"x\"\n[sign]\nkey = \"k.key\"\nkey-env = \"KEY\"\n\
             [toolchain]\nnightly = \"nightly-2026-01-01\"\nzig = \"1\"\ncargo-zigbuild = \"2\"\ncross = \"3\"\n",
        )
        .unwrap();
        assert_eq!(config.sign, SignConfig { key: Some("k.key".into()), key_env: Some("KEY".into()) });
        let toolchain = (config.toolchain.nightly, config.toolchain.zig, config.toolchain.cargo_zigbuild);
        assert_eq!(toolchain, ("nightly-2026-01-01".into(), "1".into(), "2".into()));
        assert_eq!(config.toolchain.cross, "3");
    }

    #[test]
    fn the_run_check_policy_and_qemu_pins_are_checked_where_they_are_written() {
        let base = "[dist]\npackage = \"x\"\n";
        let config = parse(base).unwrap();
        assert_eq!(config.dist.run_check, RunCheckPolicy::Required);
        assert_eq!(config.toolchain.qemu, pinned_qemu());
        let optional = parse("[dist]\npackage = \"x\"\nrun-check = \"optional\"\n").unwrap();
        assert_eq!(optional.dist.run_check, RunCheckPolicy::Optional);
        assert_eq!(
            error("[dist]\npackage = \"x\"\nrun-check = \"sometimes\"\n"),
            "release.toml:3:13: dist.run-check \"sometimes\" is not one of: required, optional; \"optional\" \
             packs a binary no emulator here can start, saying so"
        );
        let pin = |host: &str, sha: &str| {
            format!("{base}[toolchain.qemu-user-static]\n{host} = {{ version = \"1:9.0\", sha256 = \"{sha}\" }}\n")
        };
        let arm64 = parse(&pin("arm64", &"ab".repeat(32))).unwrap().toolchain.qemu;
        assert_eq!(arm64[0], pinned_qemu()[0], "amd64 keeps its built-in pin");
        assert_eq!(
            (arm64[1].version.as_str(), arm64[1].sha256.as_str()),
            ("1:9.0", "ab".repeat(32).as_str())
        );
        let err = error(&pin("amd64", "ABC"));
        assert!(
            err.starts_with(
                "release.toml:4:39: toolchain.qemu-user-static.amd64.sha256 \"ABC\" is not a SHA-256"
            ) && err.contains("apt-cache show qemu-user-static=1:9.0"),
            "{err}"
        );
        let err = error(&pin("riscv64", &"ab".repeat(32)));
        assert!(
            err.starts_with("release.toml:4:1: toolchain.qemu-user-static.riscv64: dist fetches"),
            "{err}"
        );
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let config = parse("[dist]\npackage = \"tool\"\n").unwrap();
        assert_eq!(config.dist.binary, "tool");
        assert_eq!(config.image.repository, "tool");
        assert_eq!(config.image.tags, vec!["{version}"]);
        assert_eq!(config.dist.arches, matrix::default_arches());
    }

    #[test]
    fn absent_daemon_keys_mean_none_and_toolchain_pins_are_dated() {
        let image = parse("[dist]\npackage = \"tool\"\n").unwrap().image;
        assert_eq!((image.volume, image.port), (None, None));
        assert!(image.command.is_empty() && image.healthcheck.is_empty());
        let none = parse("[dist]\npackage = \"tool\"\n[image]\nhealthcheck = []\n").unwrap();
        assert!(none.image.healthcheck.is_empty());
        let toolchain = parse("[dist]\npackage = \"tool\"\n").unwrap().toolchain;
        assert_eq!(toolchain.nightly, PINNED_NIGHTLY);
        assert!(toolchain.nightly.starts_with("nightly-20"), "{}", toolchain.nightly);
        // Our release.toml writes exonode's values, and the pins the defaults repeat.
        let ours = parse(include_str!("../../../release.toml")).unwrap();
        assert_eq!((ours.image.volume.as_deref(), ours.image.port), (Some("/data"), Some(7070)));
        assert_eq!(
            (ours.image.command, ours.image.healthcheck),
            (vec!["run".into()], vec!["healthcheck".into()])
        );
        assert_eq!(ours.toolchain.nightly, PINNED_NIGHTLY);
    }

    #[test]
    fn arches_come_out_in_matrix_order() {
        let config = parse("[dist]\npackage = \"t\"\narches = [\"i386\", \"amd64\"]\n").unwrap();
        let names: Vec<_> = config.dist.arches.iter().map(|a| a.name).collect();
        assert_eq!(names, ["amd64", "i386"]);
    }

    #[test]
    fn unknown_arch_names_position_and_accepted_values() {
        let err = error("[dist]\npackage = \"t\"\narches = [\"amd64\", \"arm7\"]\n");
        assert!(err.starts_with("release.toml:3:20: unknown arch \"arm7\""), "{err}");
        assert!(err.contains("accepted values: amd64, arm64v8, arm32v7, arm32v6, arm32v5, i386"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_position() {
        let err = error("[dist]\npackage = \"t\"\nbinaries = \"x\"\n");
        assert!(err.starts_with("release.toml:3:1:"), "{err}");
        assert!(err.contains("unknown field `binaries`") && err.contains("`binary`"), "{err}");
        let err = error("[dist]\npackage = \"t\"\n[imagee]\n");
        assert!(err.contains("release.toml:3:") && err.contains("imagee"), "{err}");
    }

    #[test]
    fn bad_values_are_rejected_with_the_fix() {
        let cases = [
            (
                "[image]\nbase = \"alpine\"\n",
                "release.toml:6:8: image.base \"alpine\" is not supported; accepted values: busybox, scratch",
            ),
            ("[image]\nuser = 0\n", "release.toml:6:8: image.user 0 must be a non-root uid"),
            ("[image]\nrepository = \"Ghcr.io/Org/Name:1\"\n", "release.toml:6:14: image.repository"),
            (
                "[image]\ntags = [\"-bad\"]\n",
                "release.toml:6:9: image.tags entry \"-bad\" is not a valid tag",
            ),
            (
                "[image.base-images]\narm32v9 = \"x\"\n",
                "release.toml:6:1: unknown arch \"arm32v9\" in image.base-images",
            ),
        ];
        for (tail, expected) in cases {
            let err = error(&format!(
                "[dist]\npackage = \"t\"\ndownload-url = \"https://x/{{version}}\"\n\n{tail}"
            ));
            assert!(err.starts_with(expected), "expected {expected:?}, got {err:?}");
        }
        let err = error("[dist]\npackage = \"t\"\ndownload-url = \"ftp://x\"\n");
        assert!(
            err.starts_with("release.toml:3:16: dist.download-url \"ftp://x\" must start with https://"),
            "{err}"
        );
        let err = error("[dist]\npackage = \"t\"\narches = []\n");
        assert!(err.contains("dist.arches is empty"), "{err}");
        let err = error("[dist]\npackage = \"t\"\narches = [\"i386\", \"i386\"]\n");
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn smoke_scenario_is_checked_for_placeholders_and_paths() {
        let base = "[dist]\npackage = \"t\"\n[dist.smoke]\n";
        let config =
            parse(&format!("{base}args = [\"run\", \"--listen\", \"{{addr}}\"]\nget = [\"/healthz\"]\n"))
                .unwrap();
        let smoke = config.dist.smoke.unwrap();
        assert_eq!((smoke.args.len(), smoke.get), (3, vec!["/healthz".to_string()]));
        assert_eq!(parse("[dist]\npackage = \"t\"\n").unwrap().dist.smoke, None);
        for (tail, expected) in [
            ("args = [\"run\", \"{port}\"]\n", "release.toml:4:16: dist.smoke.args: unknown placeholder {port}; accepted: {data_dir}, {addr}"),
            ("args = [\"{addr}\"]\nget = [\"healthz\"]\n", "release.toml:5:8: dist.smoke.get entry \"healthz\" must be a URL path"),
            ("args = []\n", "release.toml:3:1: dist.smoke.args is empty"),
            ("args = [\"run\"]\nget = [\"/healthz\"]\n", "release.toml:3:1: dist.smoke.get needs an address"),
            ("args = [\"x\"]\nstop = 1\n", "release.toml:5:1: unknown field `stop`"),
        ] {
            let err = error(&format!("{base}{tail}"));
            assert!(err.starts_with(expected), "expected {expected:?}, got {err:?}");
        }
        assert_eq!(unknown_placeholder("{addr}-{data_dir}"), None);
        assert_eq!(unknown_placeholder("x{oops"), Some("{oops"));
    }

    #[test]
    fn volumes_ports_and_repositories_at_their_edges() {
        let image = |tail: &str| parse(&format!("[dist]\npackage = \"t\"\n[image]\n{tail}\n"));
        for volume in ["\"/\"", "\"data\"", "\"/my data\"", "\"/it's\"", "'/a\"b'", "'/a\\b'"] {
            let err = format!("{:#}", image(&format!("volume = {volume}")).unwrap_err());
            assert!(err.contains("must be an absolute path without spaces or quotes"), "{volume}: {err}");
        }
        assert_eq!(image("volume = \"/v\"").unwrap().image.volume.as_deref(), Some("/v"));
        for port in ["0", "65536", "-1"] {
            let err = format!("{:#}", image(&format!("port = {port}")).unwrap_err());
            assert!(err.contains(&format!("image.port {port} must be between 1 and 65535")), "{err}");
        }
        assert_eq!(image("port = 1").unwrap().image.port, Some(1));
        assert_eq!(image("port = 65535").unwrap().image.port, Some(65535));
        assert_eq!(image("user = 2147483647").unwrap().image.user, 2_147_483_647);
        assert!(image("user = 2147483648").is_err());
        // `_` is fine in a path component but not in a host: the first component is a host
        // only when it looks like one.
        assert!(validate_repository("my_org/app").is_ok());
        assert!(validate_repository("org2/app-2.x").is_ok());
        for repo in ["ghcr.io/x/y:1.0", "x/y@sha256:abc", "x/y:1"] {
            assert_eq!(
                validate_repository(repo),
                Err("must not include a tag or digest".to_string()),
                "{repo}"
            );
        }
        assert_eq!(validate_repository("my_host.io/app"), Err("has an invalid registry host".to_string()));
        assert!(validate_repository("localhost/app").is_ok());
        assert!(validate_repository("ghcr.io/").is_err());
        assert!(validate_repository("org/-app").is_err());
        assert!(validate_repository("org/app-").is_err());
        assert!(validate_repository("org//app").is_err());
        assert!(validate_tag(&"a".repeat(128)).is_ok());
        assert!(validate_tag(&"a".repeat(129)).is_err());
        assert!(validate_tag("_x").is_ok());
        assert!(validate_tag("").is_err());
        assert!(validate_tag("a/b").is_err());
    }

    #[test]
    fn extra_labels_are_kept_and_derived_or_malformed_ones_refused() {
        let image = |tail: &str| parse(&format!("[dist]\npackage = \"t\"\n[image.labels]\n{tail}\n"));
        let config =
            image("\"org.example.team\" = \"edge \\\"$x\\\"\"\n\"com.example/x_y-z\" = \"\"").unwrap();
        assert_eq!(config.image.labels["org.example.team"], "edge \"$x\"");
        assert_eq!(config.image.labels["com.example/x_y-z"], "");
        assert!(parse("[dist]\npackage = \"t\"\n").unwrap().image.labels.is_empty());
        let err = format!("{:#}", image("\"org.opencontainers.image.version\" = \"1\"").unwrap_err());
        assert!(err.starts_with("release.toml:4:1: image.labels key \"org.opencontainers.image.version\" is set by the tooling"), "{err}");
        // Keys the tooling does not set are anyone's.
        assert!(image("\"org.opencontainers.image.url\" = \"https://x\"").is_ok());
        for key in ["\"a b\"", "\"-a\"", "\"a=b\"", "\"\""] {
            let err = format!("{:#}", image(&format!("{key} = \"v\"")).unwrap_err());
            assert!(err.contains("is not a valid label key"), "{key}: {err}");
        }
        let err = format!("{:#}", image("a = \"one\\ntwo\"").unwrap_err());
        assert!(err.starts_with("release.toml:4:5: image.labels.\"a\" has a control character"), "{err}");
    }

    #[test]
    fn syntax_errors_carry_position() {
        let err = error("[dist]\npackage = \n");
        assert!(err.starts_with("release.toml:2:"), "{err}");
    }

    #[test]
    fn selection_by_arch_or_target() {
        let config = parse("[dist]\npackage = \"t\"\narches = [\"amd64\", \"arm32v7\"]\n").unwrap();
        let picked = config.select_arches(&[], &["armv7-unknown-linux-musleabihf".into()]).unwrap();
        assert_eq!(picked[0].name, "arm32v7");
        let err = config.select_arches(&["i386".into()], &[]).unwrap_err().to_string();
        assert!(err.contains("not enabled in release.toml"), "{err}");
        let err = config.select_arches(&["x86".into()], &[]).unwrap_err().to_string();
        assert!(err.contains("--arch \"x86\"") && err.contains("amd64"), "{err}");
    }

    #[test]
    fn repository_and_tag_rules() {
        assert!(validate_repository("localhost:5000/x/exonode").is_ok());
        assert!(validate_repository("ghcr.io/exotool/exonode").is_ok());
        assert!(validate_repository("exonode").is_ok());
        assert!(validate_repository("Exonode").is_err());
        assert!(validate_repository("ghcr.io/x/y:tag").is_err());
        assert!(validate_tag("0.1.0-arm32v7").is_ok());
        assert!(validate_tag(".hidden").is_err());
    }
}
