//! Debian packages of a `PackageSpec` (release/package.rs), made by the xtask itself: an ar archive of `debian-binary`,
//! `control.tar.gz` and `data.tar.gz`, every tar entry owned by root with fixed modes and
//! SOURCE_DATE_EPOCH as mtime, ar members likewise, gzip with no name or time; so the same
//! binary and release give the same bytes, like the archives. dpkg-deb and lintian read them.
//!
//! The package holds the spec's files (`/usr/bin/<binary>`, the project's systemd unit
//! `/lib/systemd/system/<binary>.service` and its settings `/etc/default/<binary>`, a conffile)
//! and Debian's own: the copyright (machine-readable, with the project's license text), a
//! changelog and lintian's overrides. Its maintainer scripts (templates/deb/) create the system account,
//! enable and start the unit where systemd runs (as debhelper's snippets do), stop it on
//! remove, and delete the state directory on purge only.
//!
//! ar members are written with the `ar` crate; the control file, copyright and changelog are
//! a few lines of text each.

use std::io::Read as _;

use md5::Digest as _;

use anyhow::{bail, Context, Result};

use crate::project::config::DebConfig;
use crate::project::workspace::Release;
use crate::release::checksum;
use crate::release::layout;
use crate::release::manifest::DebPackage;
use crate::release::package::{self, PackageSpec};
use crate::util::tar_writer::{self, Entry};
use crate::util::template;

const POSTINST: &str = include_str!("../../templates/deb/postinst.in");
const PRERM: &str = include_str!("../../templates/deb/prerm.in");
const POSTRM: &str = include_str!("../../templates/deb/postrm.in");
/// Maximum compression, as lintian expects of changelogs; part of the bytes' identity.
const GZIP_LEVEL: u32 = 9;

/// The package's file name, known before anything is built (for plans).
pub fn file_name(release: &Release, config: &DebConfig, deb_arch: &str) -> String {
    layout::deb_name(&release.name, &package::version(&release.version, config.revision), deb_arch)
}

/// The package `spec` describes (its arch must have a Debian architecture).
pub fn build(spec: &PackageSpec) -> Result<(DebPackage, Vec<u8>)> {
    let arch = spec.arch;
    let deb_arch = arch.deb_arch.with_context(|| format!("{} has no Debian package", arch.name))?;
    let data = data_entries(spec)?;
    let conffiles: String =
        spec.files.iter().filter(|f| f.conffile).map(|f| format!("/{}\n", f.path)).collect();
    let md5sums = md5sums(&data, &conffiles);
    let control = control(spec, deb_arch, installed_size(&data));
    let scripts = [("postinst", POSTINST), ("prerm", PRERM), ("postrm", POSTRM)];
    let mut control_entries =
        vec![Entry::dir(".", 0o755), Entry::file("./conffiles", 0o644, conffiles.into_bytes())];
    control_entries.push(Entry::file("./control", 0o644, control.into_bytes()));
    control_entries.push(Entry::file("./md5sums", 0o644, md5sums.into_bytes()));
    for (name, text) in scripts {
        let script = template::render(text, &[("package", spec.binary.clone())])
            .with_context(|| format!("cannot render templates/deb/{name}.in"))?;
        control_entries.push(Entry::file(&format!("./{name}"), 0o755, script.into_bytes()));
    }
    let mtime = spec.source_date_epoch;
    let members = [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.gz", tar_writer::gzip(&tar_writer::tar(&control_entries, mtime)?, GZIP_LEVEL)?),
        ("data.tar.gz", tar_writer::gzip(&tar_writer::tar(&data, mtime)?, GZIP_LEVEL)?),
    ];
    let bytes = ar_archive(&members, mtime)?;
    let package = DebPackage {
        name: layout::deb_name(&spec.name, &spec.version(), deb_arch),
        architecture: deb_arch.to_string(),
        size: bytes.len() as u64,
        sha256: checksum::sha256_hex(&bytes),
    };
    Ok((package, bytes))
}

/// The installed tree (the spec's files and Debian's docs), directories first along each path,
/// sorted.
fn data_entries(spec: &PackageSpec) -> Result<Vec<Entry>> {
    let name = &spec.binary;
    let doc = format!("./usr/share/doc/{name}");
    let mut files: Vec<(String, u32, Vec<u8>)> =
        spec.files.iter().map(|f| (format!("./{}", f.path), f.mode, f.contents.clone())).collect();
    files.extend([
        (
            format!("{doc}/changelog.Debian.gz"),
            0o644,
            tar_writer::gzip(changelog(spec).as_bytes(), GZIP_LEVEL)?,
        ),
        (format!("{doc}/copyright"), 0o644, copyright(spec).into_bytes()),
        (
            format!("./usr/share/lintian/overrides/{name}"),
            0o644,
            lintian_overrides(name, spec.binary_contents()).into_bytes(),
        ),
    ]);
    let mut dirs: Vec<String> = vec![".".into()];
    for (path, _, _) in &files {
        let mut at = path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            if parent != "." && !dirs.iter().any(|d| d == parent) {
                dirs.push(parent.to_string());
            }
            at = parent;
        }
    }
    let mut entries: Vec<(String, Entry)> =
        dirs.into_iter().map(|d| (format!("{d}/"), Entry::dir(&d, 0o755))).collect();
    entries.extend(
        files.into_iter().map(|(path, mode, contents)| (path.clone(), Entry::file(&path, mode, contents))),
    );
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries.into_iter().map(|(_, entry)| entry).collect())
}

/// `md5sums`: every installed file but the conffiles, as dpkg lists them.
fn md5sums(data: &[Entry], conffiles: &str) -> String {
    let mut out = String::new();
    for entry in data {
        if let tar_writer::Kind::File(contents) = &entry.kind {
            let path = entry.path.trim_start_matches("./");
            if !conffiles.lines().any(|c| c.trim_start_matches('/') == path) {
                out.push_str(&format!("{:x}  {path}\n", md5::Md5::digest(contents)));
            }
        }
    }
    out
}

/// Installed-Size in KiB, as dpkg-gencontrol counts it: each file rounded up, one per folder.
fn installed_size(data: &[Entry]) -> u64 {
    data.iter()
        .map(|e| match &e.kind {
            tar_writer::Kind::File(contents) => (contents.len() as u64).div_ceil(1024),
            tar_writer::Kind::Dir => 1,
        })
        .sum()
}

fn control(spec: &PackageSpec, deb_arch: &str, installed_kib: u64) -> String {
    let description: String = spec.description.iter().map(|line| format!(" {line}\n")).collect();
    format!(
        "Package: {}\nVersion: {}\nArchitecture: {deb_arch}\nMaintainer: {}\nInstalled-Size: {installed_kib}\n\
         Section: {}\nPriority: optional\nHomepage: {}\nDescription: {}\n{description}",
        spec.name,
        spec.version(),
        spec.maintainer,
        spec.section,
        spec.homepage,
        spec.summary,
    )
}

/// Machine-readable copyright (DEP-5) with the license's full text.
fn copyright(spec: &PackageSpec) -> String {
    let holder = spec
        .license_text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Copyright (c)").or_else(|| l.trim().strip_prefix("Copyright")))
        .map(str::trim)
        .unwrap_or("the authors")
        .to_string();
    let text: String = spec
        .license_text
        .lines()
        .skip_while(|l| l.trim().is_empty() || l.trim().ends_with("License") && !l.contains(' '))
        .map(|l| if l.trim().is_empty() { " .\n".to_string() } else { format!(" {}\n", l.trim_end()) })
        .collect();
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: {}\nSource: {}\n\nFiles: *\nCopyright: {holder}\nLicense: {}\n{text}",
        spec.name, spec.homepage, spec.license
    )
}

fn changelog(spec: &PackageSpec) -> String {
    format!(
        "{} ({}) unstable; urgency=medium\n\n  * Release {}, built from commit {}.\n\n -- {}  {}\n",
        spec.name,
        spec.version(),
        spec.upstream_version,
        spec.commit,
        spec.maintainer,
        rfc2822(spec.source_date_epoch)
    )
}

/// Tags lintian raises by design for this package, each with the reason. Which of the two
/// static-binary tags fires depends on the ELF type: a static-pie binary (ET_DYN) looks to
/// lintian like a library, a classic static one (ET_EXEC) like a static link mistake.
fn lintian_overrides(name: &str, binary: &[u8]) -> String {
    // e_type (2 = ET_EXEC, 3 = ET_DYN), in the byte order EI_DATA names (s390x is big-endian).
    let e_type = match (binary.get(5), binary.get(16..18)) {
        (Some(2), Some(&[a, b])) => u16::from_be_bytes([a, b]),
        (_, Some(&[a, b])) => u16::from_le_bytes([a, b]),
        _ => 0,
    };
    let static_pie = e_type == 3;
    let path = package::binary_path(name);
    let static_tag = match static_pie {
        true => {
            "# A static-pie executable (ELF type DYN, no interpreter, no libraries), not a library.\n\
                 {name}: shared-library-lacks-prerequisites [{path}]\n"
        }
        false => {
            "# Static by design (musl): the one binary runs on every distribution and release.\n\
                  {name}: statically-linked-binary [{path}]\n"
        }
    };
    format!(
        "# Released from the project's own repository, not uploaded to Debian: no ITP bug to close.\n\
         {name}: initial-upload-closes-no-bugs\n\
         # `{name} --help` documents every command and flag; there is no separate manual.\n\
         {name}: no-manual-page [{path}]\n\
         {}",
        static_tag.replace("{name}", name).replace("{path}", &path)
    )
}

/// `Thu, 01 Jan 1970 00:00:00 +0000`, the changelog's date format.
fn rfc2822(epoch: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    // rfc3339 is YYYY-MM-DDTHH:MM:SSZ.
    let stamp = crate::project::workspace::rfc3339(epoch);
    let (date, time) = stamp.trim_end_matches('Z').split_once('T').expect("RFC 3339");
    let mut parts = date.split('-');
    let (year, month, day) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let month = MONTHS[month.parse::<usize>().expect("a month") - 1];
    format!("{}, {day} {month} {year} {time} +0000", DAYS[(epoch / 86_400 % 7) as usize])
}

/// An ar archive with root-owned 0644 members dated `mtime`.
fn ar_archive(members: &[(&str, Vec<u8>)], mtime: u64) -> Result<Vec<u8>> {
    let mut builder = ar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let mut header = ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64);
        header.set_mtime(mtime);
        header.set_mode(0o100644);
        builder.append(&header, bytes.as_slice()).with_context(|| format!("cannot add {name} to a .deb"))?;
    }
    builder.into_inner().context("cannot finish a .deb")
}

/// One file of a package's installed tree (`usr/bin/exonode`), for verification.
pub fn read_data_file(deb: &[u8], path: &str) -> Result<Vec<u8>> {
    read_member_file(deb, "data.tar.gz", path)
}

/// The package's control file, as `dpkg-deb --field` reads it (for repository indexes).
pub fn read_control(deb: &[u8]) -> Result<String> {
    let control = read_member_file(deb, "control.tar.gz", "control")?;
    String::from_utf8(control).context("the control file is not UTF-8")
}

fn read_member_file(deb: &[u8], member_name: &str, path: &str) -> Result<Vec<u8>> {
    let mut archive = ar::Archive::new(deb);
    while let Some(member) = archive.next_entry() {
        let mut member = member.context("not an ar archive")?;
        if member.header().identifier() != member_name.as_bytes() {
            continue;
        }
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&mut member));
        for entry in tar.entries().with_context(|| format!("{member_name} is not a tar.gz"))? {
            let mut entry = entry.with_context(|| format!("{member_name} is damaged"))?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            if name.trim_start_matches("./") == path {
                let mut contents = Vec::new();
                entry.read_to_end(&mut contents).with_context(|| format!("cannot read {path}"))?;
                return Ok(contents);
            }
        }
        bail!("{member_name} has no {path}");
    }
    bail!("no {member_name} member")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::project::matrix::by_name;
    use crate::release::package::{PackageFiles, PackageInputs};

    #[test]
    fn the_static_binary_override_follows_the_elf_type_in_either_byte_order() {
        use crate::fixtures::ElfSpec;
        use crate::project::matrix::EM_S390;
        let mut big_pie = ElfSpec::elf64(EM_S390, true, 0).build();
        big_pie[16..18].copy_from_slice(&3u16.to_be_bytes());
        assert!(lintian_overrides("x", &big_pie).contains("x: shared-library-lacks-prerequisites"));
        let big_exec = ElfSpec::elf64(EM_S390, true, 0).build();
        assert!(lintian_overrides("x", &big_exec).contains("x: statically-linked-binary"));
        let mut little_pie = ElfSpec::elf64(62, false, 0).build();
        little_pie[16..18].copy_from_slice(&3u16.to_le_bytes());
        assert!(lintian_overrides("x", &little_pie).contains("x: shared-library-lacks-prerequisites"));
    }

    fn config() -> DebConfig {
        DebConfig {
            enabled: true,
            maintainer: "ExoTool developers <dev@example.org>".into(),
            revision: 1,
            section: "net".into(),
            unit: "packaging/deb/exonode.service".into(),
            defaults: "packaging/deb/exonode.default".into(),
        }
    }

    fn package(arch: &str, binary: &[u8]) -> (DebPackage, Vec<u8>) {
        let release = fixtures::release();
        let config = config();
        let facts = fixtures::facts();
        let files = PackageFiles {
            unit: "[Service]\nExecStart=/usr/bin/exonode run\n".into(),
            defaults: "EXONODE_LISTEN=127.0.0.1:7070\n".into(),
            license_text: "MIT License\n\nCopyright (c) 2026 ExoTool developers\n\nPermission is granted.\n"
                .into(),
        };
        let inputs = PackageInputs {
            release: &release,
            config: &config,
            facts: &facts,
            binary: "exonode",
            files: &files,
        };
        build(&PackageSpec::new(&inputs, by_name(arch).unwrap(), binary)).unwrap()
    }

    fn members(deb: &[u8]) -> Vec<(String, u64)> {
        let mut archive = ar::Archive::new(deb);
        let mut out = Vec::new();
        while let Some(member) = archive.next_entry() {
            let member = member.unwrap();
            out.push((
                String::from_utf8(member.header().identifier().to_vec()).unwrap(),
                member.header().mtime(),
            ));
        }
        out
    }

    #[test]
    fn the_package_is_an_ar_of_three_members_and_reproducible() {
        let (info, deb) = package("arm32v6", b"\x7fELF binary");
        assert_eq!(info.name, format!("exonode_{}-1_armhf.deb", fixtures::release().version));
        assert_eq!(info.architecture, "armhf");
        assert_eq!(info.sha256, checksum::sha256_hex(&deb));
        let epoch = fixtures::release().source_date_epoch;
        assert_eq!(
            members(&deb),
            [
                ("debian-binary".into(), epoch),
                ("control.tar.gz".into(), epoch),
                ("data.tar.gz".into(), epoch)
            ]
        );
        assert_eq!(package("arm32v6", b"\x7fELF binary").1, deb, "same input, same bytes");
        assert_ne!(package("arm32v6", b"\x7fELF other").1, deb);
        assert_eq!(read_data_file(&deb, "usr/bin/exonode").unwrap(), b"\x7fELF binary");
        assert!(read_data_file(&deb, "usr/bin/other").is_err());
    }

    #[test]
    fn arm32v7_has_no_package_and_armel_carries_arm32v5() {
        let release = fixtures::release();
        assert!(by_name("arm32v7").unwrap().deb_arch.is_none());
        assert_eq!(by_name("arm32v5").unwrap().deb_arch, Some("armel"));
        assert_eq!(
            file_name(&release, &config(), "armel"),
            format!("exonode_{}-1_armel.deb", release.version)
        );
    }

    #[test]
    fn texts_follow_debian_conventions() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 +0000");
        let files =
            PackageFiles { unit: String::new(), defaults: String::new(), license_text: String::new() };
        let inputs = PackageInputs {
            release: &fixtures::release(),
            config: &config(),
            facts: &fixtures::facts(),
            binary: "exonode",
            files: &files,
        };
        let data = data_entries(&PackageSpec::new(&inputs, by_name("amd64").unwrap(), b"x")).unwrap();
        let paths: Vec<&str> = data.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths[0], ".");
        assert!(
            paths.windows(2).all(|w| format!("{}/", w[0]) < format!("{}/", w[1]) || w[0] < w[1]),
            "{paths:?}"
        );
        let sums = md5sums(&data, "/etc/default/exonode\n");
        assert!(sums.contains("  usr/bin/exonode\n") && !sums.contains("etc/default"), "{sums}");
    }
}
