//! An rpm repository's metadata, as dnf, yum and zypper read it: `repodata/primary.xml.gz`
//! (each package's name, version, checksum, dependencies and key files), `filelists.xml.gz`
//! (every file), `other.xml.gz` (changelogs), and `repomd.xml` listing the three with their
//! sizes and SHA-256, as createrepo_c writes them (without its optional sqlite copies).
//!
//! Written by hand: no maintained Rust crate writes rpm repository metadata, and the formats are
//! a few XML elements per package. Each package's three fragments depend only on its own bytes
//! and where it lies, so adding a release re-reads the fragments already written instead of the
//! packages.

use std::io::Cursor;

use anyhow::{bail, Context, Result};
use rpm::{Dependency, DependencyFlags, FileType, PackageMetadata};

use crate::release::checksum;

/// The three metadata files, by the `type` repomd.xml names them with.
pub const KINDS: [MetadataKind; 3] = [MetadataKind::Primary, MetadataKind::Filelists, MetadataKind::Other];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MetadataKind {
    Primary,
    Filelists,
    Other,
}

impl MetadataKind {
    pub fn name(self) -> &'static str {
        match self {
            MetadataKind::Primary => "primary",
            MetadataKind::Filelists => "filelists",
            MetadataKind::Other => "other",
        }
    }

    /// The document's root element and namespaces.
    fn root(self) -> (&'static str, &'static str) {
        match self {
            MetadataKind::Primary => (
                "metadata",
                r#"xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm""#,
            ),
            MetadataKind::Filelists => ("filelists", r#"xmlns="http://linux.duke.edu/metadata/filelists""#),
            MetadataKind::Other => ("otherdata", r#"xmlns="http://linux.duke.edu/metadata/other""#),
        }
    }
}

/// One package's entries in the three metadata files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedRpm {
    /// The package's path from the repository's root (primary's `location href`).
    pub href: String,
    /// The SHA-256 of the package file: its `pkgid`.
    pub sha256: String,
    /// Its `<package>` element in primary, filelists and other, in `KINDS` order.
    pub fragments: [String; 3],
}

impl IndexedRpm {
    /// Reads the package's headers (`bytes` is the whole file, as it lies at `href`).
    pub fn of_package(bytes: &[u8], href: &str) -> Result<IndexedRpm> {
        let metadata = PackageMetadata::parse(&mut Cursor::new(bytes)).context("not an rpm package")?;
        let sha256 = checksum::sha256_hex(bytes);
        let head = PackageHead::read(&metadata)?;
        let fragments = [
            primary(&metadata, &head, &sha256, href, bytes.len())?,
            filelists(&metadata, &head, &sha256)?,
            other(&metadata, &head, &sha256)?,
        ];
        Ok(IndexedRpm { href: href.to_string(), sha256, fragments })
    }
}

/// What every fragment starts with.
struct PackageHead {
    name: String,
    arch: String,
    version: String,
}

impl PackageHead {
    fn read(metadata: &PackageMetadata) -> Result<PackageHead> {
        let epoch = metadata.get_epoch().unwrap_or(0);
        Ok(PackageHead {
            name: metadata.get_name().context("the package has no name")?.to_string(),
            arch: metadata.get_arch().context("the package has no architecture")?.to_string(),
            version: format!(
                r#"<version epoch="{epoch}" ver="{}" rel="{}"/>"#,
                escape(metadata.get_version().context("the package has no version")?),
                escape(metadata.get_release().context("the package has no release")?)
            ),
        })
    }

    fn open_tag(&self, sha256: &str) -> String {
        format!(r#"<package pkgid="{sha256}" name="{}" arch="{}">"#, escape(&self.name), escape(&self.arch))
    }
}

fn primary(
    metadata: &PackageMetadata,
    head: &PackageHead,
    sha256: &str,
    href: &str,
    size: usize,
) -> Result<String> {
    let text = |value: Result<&str, rpm::Error>| escape(value.unwrap_or(""));
    let build_time = metadata.get_build_time().context("the package has no build time")?;
    let offsets = metadata.get_package_segment_offsets();
    let mut out = format!(
        "<package type=\"rpm\">\n  <name>{}</name>\n  <arch>{}</arch>\n  {}\n  \
         <checksum type=\"sha256\" pkgid=\"YES\">{sha256}</checksum>\n  <summary>{}</summary>\n  \
         <description>{}</description>\n  <packager>{}</packager>\n  <url>{}</url>\n  \
         <time file=\"{build_time}\" build=\"{build_time}\"/>\n  \
         <size package=\"{size}\" installed=\"{}\" archive=\"0\"/>\n  <location href=\"{}\"/>\n  <format>\n    \
         <rpm:license>{}</rpm:license>\n    <rpm:vendor>{}</rpm:vendor>\n    <rpm:group>{}</rpm:group>\n    \
         <rpm:buildhost>{}</rpm:buildhost>\n    <rpm:sourcerpm>{}</rpm:sourcerpm>\n    \
         <rpm:header-range start=\"{}\" end=\"{}\"/>\n",
        escape(&head.name),
        escape(&head.arch),
        head.version,
        text(metadata.get_summary()),
        text(metadata.get_description()),
        text(metadata.get_packager()),
        text(metadata.get_url()),
        metadata.get_installed_size().unwrap_or(0),
        escape(href),
        text(metadata.get_license()),
        text(metadata.get_vendor()),
        text(metadata.get_group()),
        text(metadata.get_build_host()),
        text(metadata.get_source_rpm()),
        offsets.header,
        offsets.payload,
    );
    let provides = metadata.get_provides().unwrap_or_default();
    let provided: Vec<String> = provides.iter().map(dependency_entry).collect();
    // rpm's own features, and what the package provides itself, are no one's concern but rpm's.
    let requires: Vec<Dependency> = metadata
        .get_requires()
        .unwrap_or_default()
        .into_iter()
        .filter(|dependency| !dependency.name.starts_with("rpmlib("))
        .filter(|dependency| !provided.contains(&dependency_entry(dependency)))
        .collect();
    for (element, dependencies) in [
        ("provides", provides),
        ("requires", requires),
        ("conflicts", metadata.get_conflicts().unwrap_or_default()),
        ("obsoletes", metadata.get_obsoletes().unwrap_or_default()),
    ] {
        out.push_str(&dependency_list(element, &dependencies));
    }
    for (path, kind) in file_list(metadata)? {
        if is_primary_file(&path) {
            out.push_str(&format!("    {}\n", file_element(&path, kind)));
        }
    }
    out.push_str("  </format>\n</package>\n");
    Ok(out)
}

fn filelists(metadata: &PackageMetadata, head: &PackageHead, sha256: &str) -> Result<String> {
    let mut out = format!("{}\n  {}\n", head.open_tag(sha256), head.version);
    for (path, kind) in file_list(metadata)? {
        out.push_str(&format!("  {}\n", file_element(&path, kind)));
    }
    out.push_str("</package>\n");
    Ok(out)
}

fn other(metadata: &PackageMetadata, head: &PackageHead, sha256: &str) -> Result<String> {
    let mut out = format!("{}\n  {}\n", head.open_tag(sha256), head.version);
    for entry in metadata.get_changelog_entries().unwrap_or_default() {
        out.push_str(&format!(
            "  <changelog author=\"{}\" date=\"{}\">{}</changelog>\n",
            escape(&entry.name),
            entry.timestamp,
            escape(&entry.description)
        ));
    }
    out.push_str("</package>\n");
    Ok(out)
}

/// `<rpm:provides>` and the like; requires of a scriptlet carry `pre="1"`, and a dependency
/// listed twice is listed once, as createrepo_c does.
fn dependency_list(element: &str, dependencies: &[Dependency]) -> String {
    let mut entries: Vec<String> = Vec::new();
    for dependency in dependencies {
        let entry = dependency_entry(dependency);
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }
    if entries.is_empty() {
        return String::new();
    }
    let lines: String = entries.iter().map(|entry| format!("      {entry}\n")).collect();
    format!("    <rpm:{element}>\n{lines}    </rpm:{element}>\n")
}

fn dependency_entry(dependency: &Dependency) -> String {
    let flags = dependency.flags;
    let comparison = match (
        flags.contains(DependencyFlags::LESS),
        flags.contains(DependencyFlags::GREATER),
        flags.contains(DependencyFlags::EQUAL),
    ) {
        (true, false, true) => Some("LE"),
        (false, true, true) => Some("GE"),
        (false, false, true) => Some("EQ"),
        (true, false, false) => Some("LT"),
        (false, true, false) => Some("GT"),
        _ => None,
    };
    let mut entry = format!("<rpm:entry name=\"{}\"", escape(&dependency.name));
    if let Some(comparison) = comparison.filter(|_| !dependency.version.is_empty()) {
        let (epoch, rest) = dependency.version.split_once(':').unwrap_or(("0", &dependency.version));
        entry.push_str(&format!(" flags=\"{comparison}\" epoch=\"{}\"", escape(epoch)));
        match rest.rsplit_once('-') {
            Some((version, release)) => {
                entry.push_str(&format!(" ver=\"{}\" rel=\"{}\"", escape(version), escape(release)))
            }
            None => entry.push_str(&format!(" ver=\"{}\"", escape(rest))),
        }
    }
    let scriptlet = DependencyFlags::PREREQ | DependencyFlags::SCRIPT_PRE | DependencyFlags::SCRIPT_POST;
    if flags.intersects(scriptlet) {
        entry.push_str(" pre=\"1\"");
    }
    entry.push_str("/>");
    entry
}

/// Every path the package installs, with whether it is a folder.
fn file_list(metadata: &PackageMetadata) -> Result<Vec<(String, FileType)>> {
    let entries = metadata.get_file_entries().context("cannot read the package's file list")?;
    Ok(entries.iter().map(|entry| (entry.path().to_string_lossy().into_owned(), entry.file_type())).collect())
}

fn file_element(path: &str, kind: FileType) -> String {
    match kind {
        FileType::Dir => format!("<file type=\"dir\">{}</file>", escape(path)),
        _ => format!("<file>{}</file>", escape(path)),
    }
}

/// The files primary lists (so dependencies on them resolve without filelists), as
/// createrepo_c chooses them.
fn is_primary_file(path: &str) -> bool {
    path.starts_with("/etc/") || path.contains("bin/") || path == "/usr/lib/sendmail"
}

/// One metadata document of `packages`, in the order given.
pub fn render(kind: MetadataKind, packages: &[IndexedRpm]) -> String {
    let (root, namespaces) = kind.root();
    let index = KINDS.iter().position(|k| *k == kind).expect("every kind is listed");
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} {namespaces} packages=\"{}\">\n",
        packages.len()
    );
    for package in packages {
        out.push_str(&package.fragments[index]);
    }
    out.push_str(&format!("</{root}>\n"));
    out
}

/// The `<package>` elements of a metadata document this module wrote, keyed by `pkgid` (for
/// primary, the `pkgid="YES"` checksum). XML escapes `<` in text, so `</package>` ends an
/// element wherever it appears.
pub fn fragments(kind: MetadataKind, document: &str) -> Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    let mut rest = document;
    while let Some(start) = rest.find("<package ") {
        let Some(length) = rest[start..].find("</package>\n") else {
            bail!("a <package> element of {} has no end", kind.name());
        };
        let fragment = &rest[start..start + length + "</package>\n".len()];
        let pkgid = match kind {
            MetadataKind::Primary => between(fragment, "pkgid=\"YES\">", "</checksum>"),
            _ => between(fragment, "pkgid=\"", "\""),
        }
        .with_context(|| format!("a <package> element of {} has no pkgid", kind.name()))?;
        found.push((pkgid.to_string(), fragment.to_string()));
        rest = &rest[start + fragment.len()..];
    }
    Ok(found)
}

/// A primary fragment's `location href`, unescaped.
pub fn location(primary_fragment: &str) -> Option<String> {
    between(primary_fragment, "<location href=\"", "\"").map(unescape)
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let length = text[from..].find(end)?;
    Some(&text[from..from + length])
}

/// One file of repomd.xml: its kind, its gzip bytes and their uncompressed length and digest.
pub struct MetadataFile {
    pub kind: MetadataKind,
    /// Where it lies from the repository's root (`repodata/<sha256>-primary.xml.gz`).
    pub href: String,
    pub gz: Vec<u8>,
    pub open_sha256: String,
    pub open_size: usize,
}

impl MetadataFile {
    /// Named by its digest, as createrepo_c names them, so a client never mixes an old
    /// repomd.xml with new files.
    pub fn new(kind: MetadataKind, document: &str, gz: Vec<u8>) -> MetadataFile {
        let href = format!("repodata/{}-{}.xml.gz", checksum::sha256_hex(&gz), kind.name());
        MetadataFile {
            kind,
            href,
            gz,
            open_sha256: checksum::sha256_hex(document.as_bytes()),
            open_size: document.len(),
        }
    }
}

/// repomd.xml: the revision and every file's digests, dated `time` (the releases' commit time).
pub fn render_repomd(files: &[MetadataFile], time: u64) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" \
         xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n  <revision>{time}</revision>\n"
    );
    for file in files {
        out.push_str(&format!(
            "  <data type=\"{}\">\n    <checksum type=\"sha256\">{}</checksum>\n    \
             <open-checksum type=\"sha256\">{}</open-checksum>\n    <location href=\"{}\"/>\n    \
             <timestamp>{time}</timestamp>\n    <size>{}</size>\n    <open-size>{}</open-size>\n  </data>\n",
            file.kind.name(),
            checksum::sha256_hex(&file.gz),
            file.open_sha256,
            file.href,
            file.gz.len(),
            file.open_size
        ));
    }
    out.push_str("</repomd>\n");
    out
}

/// repomd.xml's files: kind, location and the SHA-256 of the file as it lies.
pub fn repomd_files(repomd: &str) -> Result<Vec<(MetadataKind, String, String)>> {
    let mut files = Vec::new();
    for data in repomd.split("<data type=\"").skip(1) {
        let kind_name = data.split('"').next().unwrap_or("");
        let Some(kind) = KINDS.into_iter().find(|k| k.name() == kind_name) else {
            continue;
        };
        let href = between(data, "<location href=\"", "\"").context("a <data> element has no location")?;
        let sha256 = between(data, "<checksum type=\"sha256\">", "</checksum>")
            .context("a <data> element has no sha256 checksum")?;
        files.push((kind, href.to_string(), sha256.to_string()));
    }
    Ok(files)
}

/// repomd.xml's `<revision>`: `repo` writes the releases' commit time.
pub fn repomd_revision(repomd: &str) -> Option<u64> {
    between(repomd, "<revision>", "</revision>")?.parse().ok()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"").replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dependency(name: &str, flags: DependencyFlags, version: &str) -> Dependency {
        Dependency { name: name.to_string(), flags, version: version.to_string() }
    }

    #[test]
    fn dependencies_are_written_as_createrepo_c_writes_them() {
        let list = [
            dependency("/bin/sh", DependencyFlags::SCRIPT_PRE, ""),
            dependency("/bin/sh", DependencyFlags::SCRIPT_PRE, ""),
            dependency("exonode", DependencyFlags::EQUAL, "0.1.0-1"),
            dependency("libfoo", DependencyFlags::GE, "2:1.0"),
        ];
        assert_eq!(
            dependency_list("requires", &list),
            "    <rpm:requires>\n      <rpm:entry name=\"/bin/sh\" pre=\"1\"/>\n      \
             <rpm:entry name=\"exonode\" flags=\"EQ\" epoch=\"0\" ver=\"0.1.0\" rel=\"1\"/>\n      \
             <rpm:entry name=\"libfoo\" flags=\"GE\" epoch=\"2\" ver=\"1.0\"/>\n    </rpm:requires>\n"
        );
        assert_eq!(dependency_list("conflicts", &[]), "");
    }

    #[test]
    fn fragments_are_read_back_by_pkgid_and_location() {
        let package = |id: &str, href: &str| {
            IndexedRpm {
            href: href.to_string(),
            sha256: id.to_string(),
            fragments: [
                format!(
                    "<package type=\"rpm\">\n  <checksum type=\"sha256\" pkgid=\"YES\">{id}</checksum>\n  \
                     <description>a &lt;/package&gt; in text</description>\n  <location href=\"{}\"/>\n</package>\n",
                    escape(href)
                ),
                format!("<package pkgid=\"{id}\" name=\"n\" arch=\"a\">\n</package>\n"),
                format!("<package pkgid=\"{id}\" name=\"n\" arch=\"a\">\n</package>\n"),
            ],
        }
        };
        let packages = [package("aa", "Packages/e/a&b.rpm"), package("bb", "Packages/e/b.rpm")];
        for kind in KINDS {
            let document = render(kind, &packages);
            let read = fragments(kind, &document).unwrap();
            assert_eq!(read.len(), 2, "{document}");
            assert_eq!(read[1].0, "bb");
            assert_eq!(read[0].1, packages[0].fragments[KINDS.iter().position(|k| *k == kind).unwrap()]);
        }
        assert_eq!(location(&packages[0].fragments[0]).unwrap(), "Packages/e/a&b.rpm");
    }

    #[test]
    fn repomd_lists_each_file_and_is_read_back() {
        let file = MetadataFile::new(MetadataKind::Primary, "<metadata/>\n", b"gz".to_vec());
        assert!(file.href.starts_with("repodata/") && file.href.ends_with("-primary.xml.gz"));
        let repomd = render_repomd(&[file], 1_796_000_000);
        assert!(repomd.contains("<revision>1796000000</revision>"), "{repomd}");
        let files = repomd_files(&repomd).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, MetadataKind::Primary);
        assert_eq!(files[0].2, checksum::sha256_hex(b"gz"));
    }
}
