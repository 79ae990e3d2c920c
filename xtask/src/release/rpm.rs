//! rpm packages of a `PackageSpec` (release/package.rs), made with the `rpm` crate: the spec's
//! files (`/usr/bin/<binary>`, the unit as `/usr/lib/systemd/system/<binary>.service`, the
//! settings `/etc/default/<binary>` as `%config(noreplace)`), the system account as
//! `/usr/lib/sysusers.d/<binary>.conf` and the license as `%license`. Its scriptlets
//! (templates/rpm/) do what the systemd rpm macros do: account and first-install enable in
//! %post, stop and disable on erase in %preun, try-restart on upgrade in %postun, each step
//! skipped where systemd is not there.
//!
//! Reproducible: every time in the package (build time, file mtimes, changelog) is the
//! release's SOURCE_DATE_EPOCH, the build host is a fixed word, every file is root's, the
//! payload is in path order with SHA-256 file and payload digests, and zstd (rpm's own default
//! since 4.14) compresses it single-threaded; so the same binary and release give the same bytes.
//!
//! `dist` writes them unsigned; `repo` signs the copies it publishes with the repository key
//! (`sign`), as distributions sign at publication.

use std::io::Cursor;

use anyhow::{bail, Context, Result};

use crate::project::config::RpmConfig;
use crate::project::workspace::Release;
use crate::release::checksum;
use crate::release::layout;
use crate::release::manifest::RpmPackage;
use crate::release::package::{PackageFile, PackageSpec};
use crate::sign::openpgp::RepoKey;
use crate::util::template;

const POST: &str = include_str!("../../templates/rpm/post.in");
const PREUN: &str = include_str!("../../templates/rpm/preun.in");
const POSTUN: &str = include_str!("../../templates/rpm/postun.in");
/// zstd's level: Fedora's (`%_binary_payload w19.zstdio`); part of the bytes' identity.
const ZSTD_LEVEL: i32 = 19;
/// What rpm records as the build host: a fixed word, as Fedora's reproducible builds do.
const BUILD_HOST: &str = "reproducible";

/// The package's file name, known before anything is built (for plans).
pub fn file_name(release: &Release, config: &RpmConfig, rpm_arch: &str) -> String {
    layout::rpm_name(&release.name, &layout::rpm_version(&release.version), config.release, rpm_arch)
}

/// One installed file as rpm describes it: its path from `/`, and what rpm is told about it.
#[derive(Debug, PartialEq, Eq)]
struct RpmEntry {
    path: String,
    mode: u16,
    contents: Vec<u8>,
    kind: EntryKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Plain,
    /// `%config(noreplace)`: an edited file survives upgrades (the new one lands as `.rpmnew`).
    Config,
    License,
}

/// The package `spec` describes (its arch must have an rpm architecture), numbered by
/// `[rpm] release` rather than the spec's Debian revision.
pub fn build(spec: &PackageSpec, config: &RpmConfig) -> Result<(RpmPackage, Vec<u8>)> {
    let arch = spec.arch;
    let rpm_arch = arch.rpm_arch.with_context(|| format!("{} has no rpm package", arch.name))?;
    let epoch = u32::try_from(spec.source_date_epoch)
        .with_context(|| format!("source date {} does not fit rpm's 32-bit times", spec.source_date_epoch))?;
    let version = layout::rpm_version(&spec.upstream_version);
    let reproducible = rpm::BuildConfig::v4()
        .compression(rpm::CompressionWithLevel::Zstd(ZSTD_LEVEL))
        .source_date(rpm::Timestamp(epoch));
    let mut builder = rpm::PackageBuilder::new(&spec.name, &version, &spec.license, rpm_arch, &spec.summary);
    builder
        .using_config(reproducible)
        .release(config.release.to_string())
        .description(spec.description.join("\n"))
        .url(&spec.homepage)
        .group(&config.group)
        .vcs(format!("git+{}#{}", spec.homepage, spec.commit))
        .build_host(BUILD_HOST)
        .add_changelog_entry(
            format!("{} - {version}-{}", changelog_author(spec), config.release),
            format!("- Release {}, built from commit {}.", spec.upstream_version, spec.commit),
            rpm::Timestamp(epoch),
        );
    if !spec.maintainer.is_empty() {
        builder.packager(&spec.maintainer);
    }
    for entry in entries(spec) {
        let mut options = rpm::FileOptions::new(format!("/{}", entry.path))
            .mode(rpm::FileMode::regular(entry.mode))
            .user("root")
            .group("root");
        options = match entry.kind {
            EntryKind::Plain => options,
            EntryKind::Config => options.config().noreplace(),
            EntryKind::License => options.license(),
        };
        builder
            .with_file_contents(entry.contents, options)
            .with_context(|| format!("cannot add /{} to an rpm", entry.path))?;
    }
    for (name, text, add) in scriptlets() {
        let script = template::render(text, &[("package", spec.binary.clone())])
            .with_context(|| format!("cannot render templates/rpm/{name}.in"))?;
        add(&mut builder, script);
    }
    let package = builder.build().context("cannot build an rpm")?;
    let mut bytes = Vec::new();
    package.write(&mut bytes).context("cannot write an rpm")?;
    let info = RpmPackage {
        name: layout::rpm_name(&spec.name, &version, config.release, rpm_arch),
        architecture: rpm_arch.to_string(),
        size: bytes.len() as u64,
        sha256: checksum::sha256_hex(&bytes),
    };
    Ok((info, bytes))
}

/// The package with a header signature by `key` made at `time`: Ed25519 signs the same header
/// with the same bytes, so signing a package twice gives one file.
pub fn sign(rpm_bytes: &[u8], key: &RepoKey, time: u64) -> Result<Vec<u8>> {
    let mut package = rpm::Package::parse(&mut Cursor::new(rpm_bytes)).context("not an rpm package")?;
    let header = package.header_bytes().context("cannot read the rpm header")?;
    package.apply_signature(key.binary_signature(&header, time)?).context("cannot add the signature")?;
    let mut signed = Vec::new();
    package.write(&mut signed).context("cannot write an rpm")?;
    Ok(signed)
}

type AddScriptlet = fn(&mut rpm::PackageBuilder, String);

/// Each scriptlet's template, and where it goes.
fn scriptlets() -> [(&'static str, &'static str, AddScriptlet); 3] {
    [
        ("post", POST, |b, s| {
            b.post_install_script(s);
        }),
        ("preun", PREUN, |b, s| {
            b.pre_uninstall_script(s);
        }),
        ("postun", POSTUN, |b, s| {
            b.post_uninstall_script(s);
        }),
    ]
}

/// The installed tree, in path order: the spec's files where rpm-based systems keep them,
/// the account's sysusers.d file and the license.
fn entries(spec: &PackageSpec) -> Vec<RpmEntry> {
    let name = &spec.binary;
    let mut entries: Vec<RpmEntry> = spec.files.iter().map(spec_entry).collect();
    entries.push(RpmEntry {
        path: format!("usr/lib/sysusers.d/{name}.conf"),
        mode: 0o644,
        contents: sysusers(name).into_bytes(),
        kind: EntryKind::Plain,
    });
    entries.push(RpmEntry {
        path: format!("usr/share/licenses/{name}/LICENSE"),
        mode: 0o644,
        contents: spec.license_text.clone().into_bytes(),
        kind: EntryKind::License,
    });
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries
}

fn spec_entry(file: &PackageFile) -> RpmEntry {
    RpmEntry {
        path: rpm_path(&file.path),
        mode: (file.mode & 0o7777) as u16,
        contents: file.contents.clone(),
        kind: if file.conffile { EntryKind::Config } else { EntryKind::Plain },
    }
}

/// rpm's changelog names a person; without `[deb] maintainer`, the project's developers.
fn changelog_author(spec: &PackageSpec) -> String {
    match spec.maintainer.is_empty() {
        true => format!("{} developers", spec.name),
        false => spec.maintainer.clone(),
    }
}

/// Fedora and its kin merged `/lib` into `/usr/lib`, and rpmlint expects packages to use the
/// latter; Debian's packages still ship units in `/lib`.
fn rpm_path(path: &str) -> String {
    match path.strip_prefix("lib/") {
        Some(rest) => format!("usr/lib/{rest}"),
        None => path.to_string(),
    }
}

/// The account the unit runs as (`User=`), for systemd-sysusers: a system user and its group,
/// home in the state folder, no login.
fn sysusers(name: &str) -> String {
    format!("u {name} - \"{name} daemon\" /var/lib/{name} /usr/sbin/nologin\n")
}

/// One file of a package's installed tree (`usr/bin/exonode`), for verification.
pub fn read_file(rpm_bytes: &[u8], path: &str) -> Result<Vec<u8>> {
    let package = rpm::Package::parse(&mut Cursor::new(rpm_bytes)).context("not an rpm package")?;
    let wanted = std::path::Path::new("/").join(path);
    for file in package.files().context("cannot read the rpm's payload")? {
        let file = file.context("the rpm's payload is damaged")?;
        if file.metadata.path() == wanted {
            return file.into_content().with_context(|| format!("/{path} has no contents in the rpm"));
        }
    }
    bail!("the rpm has no /{path}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::project::config::DebConfig;
    use crate::project::matrix::by_name;
    use crate::release::package::{PackageFiles, PackageInputs};

    fn deb_config() -> DebConfig {
        DebConfig {
            enabled: false,
            maintainer: "ExoTool developers <dev@example.org>".into(),
            revision: 1,
            section: "net".into(),
            unit: "packaging/deb/exonode.service".into(),
            defaults: "packaging/deb/exonode.default".into(),
        }
    }

    fn files() -> PackageFiles {
        PackageFiles {
            unit: "[Service]\nExecStart=/usr/bin/exonode run\n".into(),
            defaults: "EXONODE_LISTEN=127.0.0.1:7070\n".into(),
            license_text: "MIT License\n\nCopyright (c) 2026 ExoTool developers\n".into(),
        }
    }

    fn spec(arch: &str, binary: &[u8]) -> PackageSpec {
        let (files, config) = (files(), deb_config());
        let inputs = PackageInputs {
            release: &fixtures::release(),
            config: &config,
            facts: &fixtures::facts(),
            binary: "exonode",
            files: &files,
        };
        PackageSpec::new(&inputs, by_name(arch).unwrap(), binary)
    }

    fn config(release: u32) -> RpmConfig {
        RpmConfig { enabled: true, release, group: "System Environment/Daemons".into() }
    }

    fn package(arch: &str, binary: &[u8]) -> (RpmPackage, Vec<u8>) {
        build(&spec(arch, binary), &config(1)).unwrap()
    }

    fn parse(bytes: &[u8]) -> rpm::Package {
        rpm::Package::parse(&mut Cursor::new(bytes)).unwrap()
    }

    #[test]
    fn the_package_is_named_for_its_arch_and_reproducible() {
        let (info, bytes) = package("arm32v6", b"\x7fELF binary");
        let version = fixtures::release().version;
        assert_eq!(info.name, format!("exonode-{}-1.armv6hl.rpm", layout::rpm_version(&version)));
        assert_eq!(info.architecture, "armv6hl");
        assert_eq!(info.sha256, checksum::sha256_hex(&bytes));
        assert_eq!(package("arm32v6", b"\x7fELF binary").1, bytes, "same input, same bytes");
        assert_ne!(package("arm32v6", b"\x7fELF other").1, bytes);
        assert_eq!(read_file(&bytes, "usr/bin/exonode").unwrap(), b"\x7fELF binary");
        assert!(read_file(&bytes, "usr/bin/other").is_err());
        assert!(read_file(b"not an rpm", "usr/bin/exonode").is_err());
        assert_eq!(file_name(&fixtures::release(), &config(1), "armv6hl"), info.name);
    }

    #[test]
    fn a_signed_package_verifies_with_the_key_only_and_is_signed_the_same_way_twice() {
        let key = RepoKey::parse(fixtures::REPO_KEY, None).unwrap();
        let (_, bytes) = package("amd64", b"\x7fELF binary");
        let signed = sign(&bytes, &key, 1_796_000_000).unwrap();
        assert_ne!(signed, bytes);
        assert_eq!(sign(&bytes, &key, 1_796_000_000).unwrap(), signed, "same key and time, same bytes");
        assert_eq!(
            sign(&signed, &key, 1_796_000_000).unwrap(),
            signed,
            "signing again replaces the signature"
        );
        let verifier = rpm::signature::pgp::Verifier::from_asc(&key.public_armored().unwrap()).unwrap();
        parse(&signed).verify_signature(&verifier).unwrap();
        assert!(parse(&bytes).verify_signature(&verifier).is_err(), "the dist's package is unsigned");
        assert_eq!(read_file(&signed, "usr/bin/exonode").unwrap(), b"\x7fELF binary");
    }

    #[test]
    fn every_time_is_the_source_date_and_every_digest_sha256() {
        let (_, bytes) = package("amd64", b"\x7fELF binary");
        let package = parse(&bytes);
        let epoch = fixtures::release().source_date_epoch;
        let meta = &package.metadata;
        assert_eq!(meta.get_build_time().unwrap(), epoch);
        assert_eq!(meta.get_build_host().unwrap(), BUILD_HOST);
        assert_eq!(meta.get_arch().unwrap(), "x86_64");
        assert_eq!(meta.get_file_digest_algorithm().unwrap(), rpm::DigestAlgorithm::Sha2_256);
        assert_eq!(package.payload_compression().unwrap(), rpm::CompressionType::Zstd);
        package.verify_digests().unwrap();
        for entry in meta.get_file_entries().unwrap() {
            assert_eq!(u64::from(u32::from(entry.modified_at())), epoch, "{:?}", entry.path());
            assert_eq!((entry.user(), entry.group()), ("root", "root"), "{:?}", entry.path());
        }
    }

    #[test]
    fn files_modes_and_config_flags() {
        let (_, bytes) = package("amd64", b"\x7fELF binary");
        let package = parse(&bytes);
        let listed: Vec<(String, u16, bool, bool)> = package
            .metadata
            .get_file_entries()
            .unwrap()
            .iter()
            .map(|e| {
                let flags = e.flags();
                (
                    e.path().display().to_string(),
                    e.mode().permissions(),
                    flags.contains(rpm::FileFlags::CONFIG | rpm::FileFlags::NOREPLACE),
                    flags.contains(rpm::FileFlags::LICENSE),
                )
            })
            .collect();
        let expected = [
            ("/etc/default/exonode", 0o644, true, false),
            ("/usr/bin/exonode", 0o755, false, false),
            ("/usr/lib/systemd/system/exonode.service", 0o644, false, false),
            ("/usr/lib/sysusers.d/exonode.conf", 0o644, false, false),
            ("/usr/share/licenses/exonode/LICENSE", 0o644, false, true),
        ]
        .map(|(p, m, c, l)| (p.to_string(), m, c, l));
        assert_eq!(listed, expected);
        let sysusers = read_file(&bytes, "usr/lib/sysusers.d/exonode.conf").unwrap();
        assert_eq!(
            String::from_utf8(sysusers).unwrap(),
            "u exonode - \"exonode daemon\" /var/lib/exonode /usr/sbin/nologin\n"
        );
        let provides: Vec<String> =
            package.metadata.get_provides().unwrap().into_iter().map(|d| d.name).collect();
        assert!(provides.contains(&"user(exonode)".to_string()), "{provides:?}");
    }

    #[test]
    fn scriptlets_enable_on_install_stop_on_erase_restart_on_upgrade_where_systemd_runs() {
        let (_, bytes) = package("amd64", b"x");
        let meta = parse(&bytes).metadata;
        let post = meta.get_post_install_script().unwrap().script;
        let preun = meta.get_pre_uninstall_script().unwrap().script;
        let postun = meta.get_post_uninstall_script().unwrap().script;
        assert!(post.contains("systemd-sysusers /usr/lib/sysusers.d/exonode.conf"), "{post}");
        assert!(post.contains("if [ \"$1\" -eq 1 ]") && post.contains("enable exonode.service"), "{post}");
        assert!(
            preun.contains("if [ \"$1\" -eq 0 ]") && preun.contains("disable exonode.service"),
            "{preun}"
        );
        assert!(postun.contains("if [ \"$1\" -ge 1 ]") && postun.contains("try-restart exonode.service"));
        for script in [&post, &preun, &postun] {
            assert!(!script.contains("{{"), "{script}");
            // Every start, stop and restart waits for a running systemd.
            for line in script.lines().filter(|l| l.contains("systemctl start") || l.contains("stop ")) {
                assert!(line.starts_with("\t\t"), "unguarded: {line}");
            }
            assert!(script.contains("[ -d /run/systemd/system ]"), "{script}");
        }
    }

    #[test]
    fn a_higher_release_and_a_pre_release_are_spelled_the_rpm_way() {
        let (info, bytes) = build(&spec("arm32v7", b"x"), &config(2)).unwrap();
        assert!(info.name.ends_with("-2.armv7hl.rpm"), "{}", info.name);
        let meta = parse(&bytes).metadata;
        assert_eq!(meta.get_release().unwrap(), "2");
        assert_eq!(meta.get_group().unwrap(), "System Environment/Daemons");
        let mut pre = spec("i386", b"x");
        pre.upstream_version = "1.2.0-rc.1".into();
        let (info, bytes) = build(&pre, &config(1)).unwrap();
        assert_eq!(info.name, "exonode-1.2.0~rc.1-1.i686.rpm");
        assert_eq!(parse(&bytes).metadata.get_version().unwrap(), "1.2.0~rc.1");
    }
}
