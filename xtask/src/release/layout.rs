//! The one place a dist folder's file names and file lists are spelled: the shared files, the
//! signatures, each archive's own files (`.sha256`, SBOM, packages) and the default folder.
//! It imports nothing of `release/`, so every writer, checker and engine can ask it without an
//! import circle (`dist_dir`, which checks a folder, needs the writers; the writers need names).

use camino::{Utf8Path, Utf8PathBuf};

use crate::project::workspace::Release;

/// `target/dist`, when no folder is named.
pub fn default_dir(target_dir: &Utf8Path) -> Utf8PathBuf {
    target_dir.join("dist")
}

pub const SUMS_FILE: &str = "SHA256SUMS";
pub const MANIFEST_FILE: &str = "dist-manifest.json";
pub const DOCKERFILE_RELEASE: &str = "Dockerfile.release";
pub const INSTALL_SH: &str = "install.sh";
pub const PROVENANCE_FILE: &str = "provenance.intoto.json";
/// The provenance signed by the key, as a DSSE envelope.
pub const ENVELOPE_FILE: &str = "provenance.intoto.dsse.json";
/// cosign's blob signature of SHA256SUMS, and the public key that checks it.
pub const SIGNATURE_FILE: &str = "SHA256SUMS.sig";
pub const PUBLIC_KEY_FILE: &str = "cosign.pub";
/// `--keyless`: cosign's Sigstore bundle over SHA256SUMS (certificate, signature, Rekor entry).
pub const KEYLESS_BUNDLE_FILE: &str = "SHA256SUMS.sigstore.json";

/// One of each per folder, regenerated from the manifest (by dist after the archives, by merge
/// anew), in the order the plans name them.
pub const SHARED_FILES: [&str; 5] =
    [MANIFEST_FILE, DOCKERFILE_RELEASE, INSTALL_SH, PROVENANCE_FILE, SUMS_FILE];
/// What signing writes: made again by whoever signs a folder, never copied from another.
pub const SIGNING_FILES: [&str; 4] = [SIGNATURE_FILE, PUBLIC_KEY_FILE, ENVELOPE_FILE, KEYLESS_BUNDLE_FILE];
/// The files SHA256SUMS does not list: itself, and the signatures over it.
pub const UNLISTED_FILES: [&str; 3] = [SUMS_FILE, SIGNATURE_FILE, KEYLESS_BUNDLE_FILE];

/// A file of the whole folder (shared or a signature) rather than of one archive.
pub fn is_folder_file(name: &str) -> bool {
    SHARED_FILES.contains(&name) || SIGNING_FILES.contains(&name)
}

pub const ARCHIVE_SUFFIX: &str = ".tar.gz";
/// `<archive>.sha256`: the one line of SHA256SUMS for that archive.
pub const SIDECAR_SUFFIX: &str = ".sha256";
/// `<archive>.cdx.json`: the archive's CycloneDX SBOM.
pub const SBOM_SUFFIX: &str = ".cdx.json";
const DEB_EXTENSION: &str = "deb";
const RPM_EXTENSION: &str = "rpm";

/// `exonode-0.1.0-x86_64-unknown-linux-musl`: the archive's stem and top-level folder.
pub fn archive_stem(release: &Release, target: &str) -> String {
    format!("{}-{}-{}", release.name, release.version, target)
}

pub fn archive_name(release: &Release, target: &str) -> String {
    format!("{}{ARCHIVE_SUFFIX}", archive_stem(release, target))
}

/// The binary's path inside its archive: `<stem>/<name>`.
pub fn binary_in_archive(release: &Release, target: &str) -> String {
    format!("{}/{}", archive_stem(release, target), release.name)
}

pub fn sidecar_name(archive: &str) -> String {
    format!("{archive}{SIDECAR_SUFFIX}")
}

pub fn sbom_name(archive: &str) -> String {
    format!("{archive}{SBOM_SUFFIX}")
}

/// `exonode_0.1.0-1_armhf.deb`: package, its full version and Debian architecture.
pub fn deb_name(package: &str, version: &str, deb_arch: &str) -> String {
    format!("{package}_{version}_{deb_arch}.{DEB_EXTENSION}")
}

/// A Debian package, by its file name.
pub fn is_deb(file: &Utf8Path) -> bool {
    file.extension() == Some(DEB_EXTENSION)
}

/// `exonode-1.2.0~rc.1-1.armv6hl.rpm`: package, rpm version (`rpm_version`), release and rpm
/// architecture.
pub fn rpm_name(package: &str, version: &str, release: u32, rpm_arch: &str) -> String {
    format!("{package}-{version}-{release}.{rpm_arch}.{RPM_EXTENSION}")
}

/// A release's version as rpm spells it: rpm versions have no `-`, and a semver pre-release
/// (`1.2.0-rc.1`) must sort before its release, which `~` does (`1.2.0~rc.1` < `1.2.0`). A `-`
/// inside the pre-release (`1.2.0-rc-1`) becomes `_`.
pub fn rpm_version(version: &str) -> String {
    match version.split_once('-') {
        Some((release, pre)) => format!("{release}~{}", pre.replace('-', "_")),
        None => version.to_string(),
    }
}

/// A file of one archive: the archive itself, a file named `<archive>.<something>` (its
/// `.sha256`, its SBOM...), or one of its packages (`.deb`, `.rpm`).
pub fn belongs_to(file: &str, archive: &str, packages: &[&str]) -> bool {
    file == archive
        || file.strip_prefix(archive).is_some_and(|rest| rest.starts_with('.'))
        || packages.contains(&file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Release {
        Release { name: "exonode".into(), version: "0.1.0".into(), commit: "c".into(), source_date_epoch: 0 }
    }

    #[test]
    fn archive_names_follow_the_release() {
        let release = release();
        let archive = archive_name(&release, "i686-unknown-linux-musl");
        assert_eq!(archive, "exonode-0.1.0-i686-unknown-linux-musl.tar.gz");
        assert_eq!(
            binary_in_archive(&release, "i686-unknown-linux-musl"),
            "exonode-0.1.0-i686-unknown-linux-musl/exonode"
        );
        assert_eq!(sidecar_name(&archive), format!("{archive}.sha256"));
        assert_eq!(sbom_name(&archive), format!("{archive}.cdx.json"));
        assert_eq!(deb_name("exonode", "0.1.0-1", "armhf"), "exonode_0.1.0-1_armhf.deb");
        assert!(is_deb(Utf8Path::new("/d/exonode_0.1.0-1_armhf.deb")));
        assert!(!is_deb(Utf8Path::new("/d/.deb")) && !is_deb(Utf8Path::new("/d/x.deb.sha256")));
    }

    #[test]
    fn rpm_names_spell_a_pre_release_with_a_tilde() {
        assert_eq!(rpm_version("0.1.0"), "0.1.0");
        assert_eq!(rpm_version("1.2.0-rc.1"), "1.2.0~rc.1");
        assert_eq!(rpm_version("1.2.0-rc-1"), "1.2.0~rc_1");
        assert_eq!(rpm_name("exonode", "1.2.0~rc.1", 1, "armv6hl"), "exonode-1.2.0~rc.1-1.armv6hl.rpm");
    }

    #[test]
    fn files_of_an_archive_are_named_after_it_or_are_its_package() {
        let packages = ["x_1-1_amd64.deb", "x-1-1.x86_64.rpm"];
        assert!(belongs_to("a.tar.gz", "a.tar.gz", &[]));
        assert!(belongs_to("a.tar.gz.sha256", "a.tar.gz", &[]));
        assert!(belongs_to("x_1-1_amd64.deb", "a.tar.gz", &packages));
        assert!(belongs_to("x-1-1.x86_64.rpm", "a.tar.gz", &packages));
        assert!(!belongs_to("a.tar.gzx", "a.tar.gz", &packages));
        assert!(!belongs_to("x_1-1_amd64.deb", "a.tar.gz", &[]));
        assert!(SIGNING_FILES.iter().chain(&SHARED_FILES).all(|name| is_folder_file(name)));
        assert!(!is_folder_file("a.tar.gz"));
    }
}
