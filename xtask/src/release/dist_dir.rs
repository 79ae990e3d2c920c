//! A dist folder: where it is (by default `layout::default_dir`), the paths of its files (named
//! by `layout`), its manifest and how it verifies: every archive re-hashed against SHA256SUMS, the manifest and
//! the `.sha256` sidecars; each archive's binary against the manifest and, by its ELF facts
//! alone, against its arch; each SBOM against its archive. dist writes one, merge combines
//! them, verify and image check them, bench measures their files.

use std::collections::BTreeSet;

use std::fmt;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::build::elf;
use crate::project::matrix;
use crate::project::workspace::{absolute, Workspace};
use crate::release::layout::{
    self, ENVELOPE_FILE, MANIFEST_FILE, PROVENANCE_FILE, PUBLIC_KEY_FILE, SIGNATURE_FILE, SUMS_FILE,
    UNLISTED_FILES,
};
use crate::release::manifest::{Artifact, Manifest};
use crate::release::{archive, checksum, deb, package, provenance, rpm, sbom};
use crate::sign::key as signing;

/// A public key the user pinned (`verify --key`): the folder must be signed, and by it.
pub struct PinnedKey {
    pub path: Utf8PathBuf,
    pub pem: String,
}

impl PinnedKey {
    pub fn read(path: &Utf8Path) -> Result<PinnedKey> {
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the public key {path}"))?;
        signing::fingerprint(&pem).with_context(|| format!("--key {path}"))?;
        Ok(PinnedKey { path: path.to_path_buf(), pem })
    }
}

/// Where a dist folder is; everything else about it is derived from that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistDir {
    path: Utf8PathBuf,
}

impl DistDir {
    /// The folder the user named (made absolute), or the default, target/dist.
    pub fn chosen(ws: &Workspace, given: Option<Utf8PathBuf>) -> Result<DistDir> {
        let path = given.unwrap_or_else(|| layout::default_dir(&ws.target_dir));
        Ok(DistDir { path: absolute(path)? })
    }

    pub fn at(path: impl Into<Utf8PathBuf>) -> DistDir {
        DistDir { path: path.into() }
    }

    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    pub fn manifest_path(&self) -> Utf8PathBuf {
        self.path.join(MANIFEST_FILE)
    }

    pub fn read_manifest(&self) -> Result<Manifest> {
        Manifest::read(&self.manifest_path())
    }

    pub fn archive(&self, artifact: &Artifact) -> Utf8PathBuf {
        self.path.join(&artifact.name)
    }

    /// The archive's `.sha256` file.
    pub fn sidecar(&self, artifact: &Artifact) -> Utf8PathBuf {
        self.path.join(layout::sidecar_name(&artifact.name))
    }

    /// The archive's CycloneDX SBOM.
    pub fn sbom(&self, artifact: &Artifact) -> Utf8PathBuf {
        self.path.join(&artifact.sbom)
    }

    /// One line per problem; an error only when the folder cannot be examined at all.
    pub fn problems(&self) -> Result<Vec<String>> {
        verify_dir(&self.path)
    }

    /// `problems`, and with a pinned key the folder must be signed by that key.
    pub fn problems_with_key(&self, key: Option<&PinnedKey>) -> Result<Vec<String>> {
        examine(&self.path, key).map(|(problems, _)| problems)
    }

    /// The manifest of a folder that verifies; otherwise an error listing every problem,
    /// saying what the folder was needed for.
    pub fn verified(&self, needed_for: &str) -> Result<Manifest> {
        match examine(&self.path, None)? {
            (problems, Some(manifest)) if problems.is_empty() => Ok(manifest),
            (problems, _) => {
                bail!("{self} does not verify, refusing {needed_for}:\n  {}", problems.join("\n  "))
            }
        }
    }
}

impl fmt::Display for DistDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.path.fmt(f)
    }
}

fn verify_dir(dir: &Utf8Path) -> Result<Vec<String>> {
    examine(dir, None).map(|(problems, _)| problems)
}

/// One line per problem, and the manifest when it could be read; an error only when the
/// folder cannot be examined at all.
fn examine(dir: &Utf8Path, pinned: Option<&PinnedKey>) -> Result<(Vec<String>, Option<Manifest>)> {
    if !dir.is_dir() {
        bail!("{dir} is not a folder; run `cargo xtask dist` first or pass the dist folder");
    }
    let mut problems = Vec::new();
    let sums_path = dir.join(SUMS_FILE);
    let sums = match std::fs::read_to_string(&sums_path) {
        Ok(text) => checksum::parse_sums(&text, sums_path.as_str())?,
        Err(err) => bail!("cannot read {sums_path}: {err}"),
    };

    let mut listed = BTreeSet::new();
    for entry in &sums {
        listed.insert(entry.name.clone());
        let path = dir.join(&entry.name);
        if !path.exists() {
            problems.push(format!("{}: missing (listed in {SUMS_FILE})", entry.name));
            continue;
        }
        let (actual, _) = checksum::sha256_file(&path)?;
        if actual != entry.sha256 {
            problems.push(format!(
                "{}: sha256 {actual} does not match {SUMS_FILE} ({})",
                entry.name, entry.sha256
            ));
        }
    }
    for entry in dir.read_dir_utf8()? {
        let name = entry?.file_name().to_string();
        // The signatures over SHA256SUMS cannot be listed in it.
        if !UNLISTED_FILES.contains(&name.as_str()) && !listed.contains(&name) {
            problems.push(format!("{name}: not listed in {SUMS_FILE}"));
        }
    }

    let manifest = match Manifest::read(&dir.join(MANIFEST_FILE)) {
        Ok(manifest) => manifest,
        Err(err) => {
            problems.push(format!("{MANIFEST_FILE}: {err:#}"));
            return Ok((problems, None));
        }
    };
    problems.extend(provenance_problem(dir, &manifest));
    problems.extend(signature_problems(dir, &manifest, pinned));
    for artifact in &manifest.artifacts {
        problems.extend(artifact_problems(dir, &manifest, artifact)?);
    }
    Ok((problems, Some(manifest)))
}

/// SHA256SUMS.sig against the pinned key, or else the folder's cosign.pub (whose fingerprint
/// the manifest records). Unsigned folders have no problem here unless a key was pinned.
fn signature_problems(dir: &Utf8Path, manifest: &Manifest, pinned: Option<&PinnedKey>) -> Vec<String> {
    let signature = std::fs::read_to_string(dir.join(SIGNATURE_FILE)).ok();
    let recorded = manifest.signature.as_ref();
    let Some(signature) = signature else {
        return match (pinned, recorded) {
            (Some(key), _) => vec![format!(
                "{SIGNATURE_FILE}: missing: this release is not signed, so the key {} cannot vouch for it",
                key.path
            )],
            (None, Some(_)) => {
                vec![format!("{SIGNATURE_FILE}: missing ({MANIFEST_FILE} says {SUMS_FILE} is signed)")]
            }
            (None, None) => Vec::new(),
        };
    };
    let mut problems = Vec::new();
    let Some(recorded) = recorded else {
        return vec![format!("{SIGNATURE_FILE}: present, but {MANIFEST_FILE} records no signature")];
    };
    let (pem, key_name) = match pinned {
        Some(key) => (key.pem.clone(), key.path.to_string()),
        None => match std::fs::read_to_string(dir.join(&recorded.public_key)) {
            Ok(pem) => (pem, recorded.public_key.clone()),
            Err(err) => {
                return vec![format!(
                    "{}: cannot read it ({err}); it checks {SIGNATURE_FILE}",
                    recorded.public_key
                )]
            }
        },
    };
    if pinned.is_none() {
        match signing::fingerprint(&pem) {
            Ok(fingerprint) if fingerprint == recorded.public_key_sha256 => {}
            Ok(fingerprint) => problems.push(format!(
                "{PUBLIC_KEY_FILE}: fingerprint {fingerprint} is not the one {MANIFEST_FILE} records ({})",
                recorded.public_key_sha256
            )),
            Err(err) => problems.push(format!("{PUBLIC_KEY_FILE}: {err:#}")),
        }
    }
    match std::fs::read(dir.join(SUMS_FILE)) {
        Ok(sums) => {
            if let Err(err) = signing::verify(&pem, &sums, &signature) {
                problems.push(format!(
                    "{SIGNATURE_FILE}: does not verify {SUMS_FILE} with the key {key_name}: {err:#}"
                ));
            }
        }
        Err(err) => problems.push(format!("{SUMS_FILE}: cannot read it: {err}")),
    }
    problems.extend(envelope_problem(dir, &pem, &key_name));
    problems
}

/// The provenance's subjects must be exactly the manifest's archives; each difference is named.
fn provenance_problem(dir: &Utf8Path, manifest: &Manifest) -> Option<String> {
    let statement = match std::fs::read(dir.join(PROVENANCE_FILE)) {
        Ok(bytes) => bytes,
        Err(err) => return Some(format!("{PROVENANCE_FILE}: cannot read it ({err})")),
    };
    let subjects = match provenance::subjects(&statement) {
        Ok(subjects) => subjects,
        Err(err) => return Some(format!("{PROVENANCE_FILE}: {err:#}")),
    };
    let mut differences = Vec::new();
    for artifact in &manifest.artifacts {
        match subjects.iter().find(|s| s.name == artifact.name) {
            None => differences.push(format!("{} is no subject", artifact.name)),
            Some(s) if s.digest.sha256 != artifact.sha256 => differences.push(format!(
                "{} has sha256 {} there, {} in {MANIFEST_FILE}",
                artifact.name, s.digest.sha256, artifact.sha256
            )),
            Some(_) => {}
        }
    }
    for subject in &subjects {
        if !manifest.artifacts.iter().any(|a| a.name == subject.name) {
            differences.push(format!("{} is a subject but no archive of {MANIFEST_FILE}", subject.name));
        }
    }
    (!differences.is_empty()).then(|| format!("{PROVENANCE_FILE}: {}", differences.join("; ")))
}

/// A signed release's provenance envelope must verify with the key and carry the provenance.
fn envelope_problem(dir: &Utf8Path, pem: &str, key_name: &str) -> Option<String> {
    let text = match std::fs::read_to_string(dir.join(ENVELOPE_FILE)) {
        Ok(text) => text,
        Err(err) => {
            return Some(format!("{ENVELOPE_FILE}: cannot read it ({err}); a signed release has one"))
        }
    };
    match provenance::verify_envelope(&text, pem) {
        Err(err) => Some(format!("{ENVELOPE_FILE}: does not verify with the key {key_name}: {err:#}")),
        Ok(payload) if std::fs::read(dir.join(PROVENANCE_FILE)).ok().as_ref() != Some(&payload) => {
            Some(format!("{ENVELOPE_FILE}: it signs another provenance than {PROVENANCE_FILE}"))
        }
        Ok(_) => None,
    }
}

/// Every way one artifact can disagree with the manifest: the archive's hash and size, its
/// SBOM, its `.sha256` sidecar, and the binary inside (hash, then ELF facts for its arch).
fn artifact_problems(dir: &Utf8Path, manifest: &Manifest, artifact: &Artifact) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let path = dir.join(&artifact.name);
    if !path.exists() {
        problems.push(format!("{}: missing (listed in {MANIFEST_FILE})", artifact.name));
        return Ok(problems);
    }
    let (sha256, size) = checksum::sha256_file(&path)?;
    if sha256 != artifact.sha256 || size != artifact.size {
        problems.push(format!(
            "{}: sha256 {sha256} ({size} bytes) does not match {MANIFEST_FILE} ({}, {} bytes)",
            artifact.name, artifact.sha256, artifact.size
        ));
        return Ok(problems);
    }
    problems.extend(sbom_problem(dir, manifest, artifact));
    problems.extend(sidecar_problem(dir, artifact, &sha256));
    match archive::read_entry(&path, &artifact.binary.path) {
        Ok(binary) => problems.extend(binary_problem(artifact, &binary)),
        Err(err) => problems.push(format!("{}: {err:#}", artifact.name)),
    }
    let arch = matrix::by_name(&artifact.arch);
    if let Some(p) = &artifact.deb {
        let format =
            PackageFormat { kind: "Debian", arch: arch.and_then(|a| a.deb_arch), read: deb::read_data_file };
        let listed = Listed { name: &p.name, architecture: &p.architecture, size: p.size, sha256: &p.sha256 };
        problems.extend(package_problem(dir, artifact, &listed, &format)?);
    }
    if let Some(p) = &artifact.rpm {
        let format = PackageFormat { kind: "rpm", arch: arch.and_then(|a| a.rpm_arch), read: rpm::read_file };
        let listed = Listed { name: &p.name, architecture: &p.architecture, size: p.size, sha256: &p.sha256 };
        problems.extend(package_problem(dir, artifact, &listed, &format)?);
    }
    Ok(problems)
}

/// What verify needs to know of a package format: its name in messages, the architecture the
/// artifact's arch has in it, and how to read one installed file out of a package.
struct PackageFormat {
    kind: &'static str,
    arch: Option<&'static str>,
    read: fn(&[u8], &str) -> Result<Vec<u8>>,
}

/// A package as the manifest lists it (a `.deb` or an `.rpm`).
struct Listed<'a> {
    name: &'a str,
    architecture: &'a str,
    size: u64,
    sha256: &'a str,
}

/// The package must be the manifest's, for the arch's package architecture, and hold the very
/// binary the archive holds.
fn package_problem(
    dir: &Utf8Path,
    artifact: &Artifact,
    package: &Listed,
    format: &PackageFormat,
) -> Result<Option<String>> {
    let path = dir.join(package.name);
    if !path.is_file() {
        return Ok(Some(format!(
            "{}: missing (the package of {} in {MANIFEST_FILE})",
            package.name, artifact.arch
        )));
    }
    if format.arch != Some(package.architecture) {
        return Ok(Some(format!(
            "{}: architecture {} is not the {} package architecture of {} ({})",
            package.name,
            package.architecture,
            format.kind,
            artifact.arch,
            format.arch.unwrap_or("none")
        )));
    }
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
    let sha256 = checksum::sha256_hex(&bytes);
    if sha256 != package.sha256 || bytes.len() as u64 != package.size {
        return Ok(Some(format!(
            "{}: sha256 {sha256} ({} bytes) does not match {MANIFEST_FILE} ({}, {} bytes)",
            package.name,
            bytes.len(),
            package.sha256,
            package.size
        )));
    }
    let binary_path = package::binary_path(artifact.binary.path.rsplit('/').next().unwrap_or_default());
    Ok(match (format.read)(&bytes, &binary_path) {
        Ok(binary) if checksum::sha256_hex(&binary) == artifact.binary.sha256 => None,
        Ok(binary) => Some(format!(
            "{}: /{binary_path} has sha256 {}, not the binary of {} ({})",
            package.name,
            checksum::sha256_hex(&binary),
            artifact.name,
            artifact.binary.sha256
        )),
        Err(err) => Some(format!("{}: {err:#}", package.name)),
    })
}

/// The SBOM must describe this very archive, target, commit and version: an SBOM swapped in
/// from another arch or release fails here even when SHA256SUMS was regenerated.
fn sbom_problem(dir: &Utf8Path, manifest: &Manifest, artifact: &Artifact) -> Option<String> {
    let path = dir.join(&artifact.sbom);
    if !path.is_file() {
        return Some(format!(
            "{}: missing (the SBOM of {} in {MANIFEST_FILE})",
            artifact.sbom, artifact.name
        ));
    }
    let found = match sbom::read_subject(&path) {
        Ok(subject) => subject,
        Err(err) => return Some(format!("{}: {err:#}", artifact.sbom)),
    };
    let expected = sbom::Subject {
        archive: artifact.name.clone(),
        target: artifact.target.clone(),
        commit: manifest.commit.clone(),
        version: manifest.version.clone(),
    };
    (found != expected).then(|| {
        format!(
            "{}: describes {} ({}, version {}, commit {}), not {} ({}, version {}, commit {})",
            artifact.sbom,
            found.archive,
            found.target,
            found.version,
            found.commit,
            expected.archive,
            expected.target,
            expected.version,
            expected.commit
        )
    })
}

fn sidecar_problem(dir: &Utf8Path, artifact: &Artifact, sha256: &str) -> Option<String> {
    let name = layout::sidecar_name(&artifact.name);
    let text = match std::fs::read_to_string(dir.join(&name)) {
        Ok(text) => text,
        Err(_) => return Some(format!("{name}: missing")),
    };
    match checksum::parse_sums(&text, &name) {
        Ok(lines) if lines.len() == 1 && lines[0].name == artifact.name && lines[0].sha256 == sha256 => None,
        Ok(_) => Some(format!("{name}: does not hold the checksum of {} ({sha256})", artifact.name)),
        Err(err) => Some(format!("{name}: {err:#}")),
    }
}

/// The binary must be the one the manifest names, and fit its arch by its ELF facts alone
/// (no emulator needed), so a repacked archive with a foreign binary is caught either way.
fn binary_problem(artifact: &Artifact, binary: &[u8]) -> Option<String> {
    let actual = checksum::sha256_hex(binary);
    if actual != artifact.binary.sha256 {
        return Some(format!(
            "{}: the binary {} has sha256 {actual}, the manifest says {}",
            artifact.name, artifact.binary.path, artifact.binary.sha256
        ));
    }
    let fit = || -> Result<()> {
        let arch = matrix::by_name(&artifact.arch).with_context(|| {
            format!("the manifest names arch {:?}, which is not in the matrix", artifact.arch)
        })?;
        anyhow::ensure!(
            arch.target == artifact.target,
            "the manifest pairs arch {} with target {}, but {} is {}",
            arch.name,
            artifact.target,
            arch.name,
            arch.target
        );
        elf::check(arch, &elf::inspect(binary)?)
    };
    fit().err().map(|err| {
        format!(
            "{}: the binary {} is not fit for {}: {err:#}",
            artifact.name, artifact.binary.path, artifact.arch
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, binary_for, repack, reseal, write_dist};
    use crate::project::matrix::EM_AARCH64;
    use crate::project::workspace::Release;
    use crate::release::layout::{DOCKERFILE_RELEASE, INSTALL_SH};

    fn fresh(name: &str) -> (camino::Utf8PathBuf, Manifest) {
        let dir = fixtures::scratch(name);
        let manifest = write_dist(&dir);
        (dir, manifest)
    }

    fn flip(path: &Utf8Path, at: usize) {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[at] ^= 0xff;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_folder_as_dist_writes_it_has_no_problem() {
        let (dir, _) = fresh("verify-clean");
        assert_eq!(verify_dir(&dir).unwrap(), Vec::<String>::new());
        assert_eq!(
            DistDir::at(&dir).verified("a test").unwrap(),
            write_dist(&fixtures::scratch("verify-again"))
        );
        std::fs::write(dir.join("extra.bin"), "x").unwrap();
        let err = DistDir::at(&dir).verified("a test").unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{dir} does not verify, refusing a test:\n  extra.bin: not listed in SHA256SUMS")
        );
    }

    #[test]
    fn a_changed_archive_fails_sums_and_manifest() {
        let (dir, manifest) = fresh("verify-archive");
        let archive = &manifest.artifacts[0];
        flip(&dir.join(&archive.name), 20);
        let (sha, size) = checksum::sha256_file(&dir.join(&archive.name)).unwrap();
        assert_eq!(
            verify_dir(&dir).unwrap(),
            [
                format!("{}: sha256 {sha} does not match SHA256SUMS ({})", archive.name, archive.sha256),
                format!(
                    "{}: sha256 {sha} ({size} bytes) does not match dist-manifest.json ({}, {} bytes)",
                    archive.name, archive.sha256, archive.size
                ),
            ]
        );
    }

    #[test]
    fn missing_stray_and_unlisted_files_are_named() {
        let (dir, manifest) = fresh("verify-files");
        std::fs::remove_file(dir.join("install.sh")).unwrap();
        std::fs::write(dir.join("extra.bin"), "x").unwrap();
        let sidecar = layout::sidecar_name(&manifest.artifacts[1].name);
        std::fs::remove_file(dir.join(&sidecar)).unwrap();
        let sbom = manifest.artifacts[1].sbom.clone();
        std::fs::remove_file(dir.join(&sbom)).unwrap();
        let problems = verify_dir(&dir).unwrap();
        assert_eq!(
            problems,
            [
                format!("{sbom}: missing (listed in SHA256SUMS)"),
                format!("{sidecar}: missing (listed in SHA256SUMS)"),
                "install.sh: missing (listed in SHA256SUMS)".to_string(),
                "extra.bin: not listed in SHA256SUMS".to_string(),
                format!("{sbom}: missing (the SBOM of {} in dist-manifest.json)", manifest.artifacts[1].name),
                format!("{sidecar}: missing"),
            ]
        );
    }

    #[test]
    fn an_archive_missing_from_the_folder_is_named_once_per_list() {
        let (dir, mut manifest) = fresh("verify-missing-archive");
        let name = manifest.artifacts[0].name.clone();
        std::fs::remove_file(dir.join(&name)).unwrap();
        // SHA256SUMS no longer lists it, but the manifest does.
        std::fs::write(dir.join(MANIFEST_FILE), manifest.to_json()).unwrap();
        release_files_sums(&dir);
        assert_eq!(verify_dir(&dir).unwrap(), [format!("{name}: missing (listed in dist-manifest.json)")]);
        manifest.artifacts.clear();
    }

    fn release_files_sums(dir: &Utf8Path) {
        crate::release::files::write_sums(dir).unwrap();
    }

    #[test]
    fn a_binary_swapped_at_the_same_path_is_caught_by_hash_then_by_elf_facts() {
        let (dir, mut manifest) = fresh("verify-binary");
        let amd64 = manifest.artifacts[0].clone();
        let foreign = binary_for("i386");
        repack(&dir, &amd64, &foreign);
        reseal(&dir, &mut manifest);
        assert_eq!(
            verify_dir(&dir).unwrap(),
            [format!(
                "{}: the binary {} has sha256 {}, the manifest says {}",
                amd64.name,
                amd64.binary.path,
                checksum::sha256_hex(&foreign),
                amd64.binary.sha256
            )]
        );
        manifest.artifacts[0].binary.sha256 = checksum::sha256_hex(&foreign);
        reseal(&dir, &mut manifest);
        assert_eq!(
            verify_dir(&dir).unwrap(),
            [format!(
                "{}: the binary {} is not fit for amd64: it is a Elf32 Intel 80386 binary, but amd64 needs Elf64 x86-64",
                amd64.name, amd64.binary.path
            )]
        );
        // An archive without the binary at the manifest's path.
        manifest.artifacts[0].binary.path = "elsewhere/exonode".into();
        reseal(&dir, &mut manifest);
        let problems = verify_dir(&dir).unwrap();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].ends_with("does not contain elsewhere/exonode"), "{problems:?}");
    }

    #[test]
    fn a_manifest_that_pairs_an_arch_with_another_target_or_no_known_arch_is_refused() {
        let (dir, mut manifest) = fresh("verify-arch");
        let aarch64 = fixtures::static_elf(true, EM_AARCH64);
        manifest.artifacts[0].arch = "arm64v8".into();
        let amd64 = manifest.artifacts[0].clone();
        repack(&dir, &amd64, &aarch64);
        manifest.artifacts[0].binary.sha256 = checksum::sha256_hex(&aarch64);
        reseal(&dir, &mut manifest);
        let problems = verify_dir(&dir).unwrap();
        assert_eq!(
            problems,
            [format!(
                "{}: the binary {} is not fit for arm64v8: the manifest pairs arch arm64v8 with target \
                 x86_64-unknown-linux-musl, but arm64v8 is aarch64-unknown-linux-musl",
                amd64.name, amd64.binary.path
            )]
        );
        manifest.artifacts[0].arch = "vax".into();
        reseal(&dir, &mut manifest);
        let problems = verify_dir(&dir).unwrap();
        assert!(
            problems[0]
                .ends_with("is not fit for vax: the manifest names arch \"vax\", which is not in the matrix"),
            "{problems:?}"
        );
    }

    #[test]
    fn an_sbom_or_sidecar_of_another_archive_is_named_even_with_new_sums() {
        let (dir, manifest) = fresh("verify-sbom");
        let (amd64, i386) = (&manifest.artifacts[0], &manifest.artifacts[1]);
        std::fs::copy(dir.join(&i386.sbom), dir.join(&amd64.sbom)).unwrap();
        let sidecar = layout::sidecar_name(&i386.name);
        std::fs::write(dir.join(&sidecar), format!("{}  {}\n", amd64.sha256, i386.name)).unwrap();
        release_files_sums(&dir);
        let release = fixtures::release();
        assert_eq!(
            verify_dir(&dir).unwrap(),
            [
                format!(
                    "{}: describes {} (i686-unknown-linux-musl, version 1.2.3, commit {c}), not {} \
                     (x86_64-unknown-linux-musl, version 1.2.3, commit {c})",
                    amd64.sbom,
                    i386.name,
                    amd64.name,
                    c = release.commit
                ),
                format!("{sidecar}: does not hold the checksum of {} ({})", i386.name, i386.sha256),
            ]
        );

        // Other version or commit; an SBOM that is not one; a sidecar that is not one.
        for (text, expected) in [
            (
                fixtures::sbom_text(
                    &Release { version: "9".into(), ..release.clone() },
                    &amd64.name,
                    &amd64.target,
                ),
                "version 9,",
            ),
            (
                fixtures::sbom_text(
                    &Release { commit: "ab".into(), ..release.clone() },
                    &amd64.name,
                    &amd64.target,
                ),
                "commit ab)",
            ),
            ("{}".to_string(), "has no metadata property exotool:archive"),
            ("not json".to_string(), "is not JSON"),
        ] {
            std::fs::write(dir.join(&amd64.sbom), text).unwrap();
            std::fs::write(dir.join(&sidecar), format!("{}  {}\n", i386.sha256, amd64.name)).unwrap();
            release_files_sums(&dir);
            let problems = verify_dir(&dir).unwrap();
            assert!(problems[0].starts_with(&amd64.sbom) && problems[0].contains(expected), "{problems:?}");
            assert_eq!(
                problems[1],
                format!("{sidecar}: does not hold the checksum of {} ({})", i386.name, i386.sha256)
            );
        }
        std::fs::write(dir.join(&sidecar), "garbage\n").unwrap();
        release_files_sums(&dir);
        let problems = verify_dir(&dir).unwrap();
        assert!(
            problems.iter().any(|p| p.starts_with(&format!("{sidecar}: {sidecar}:1: expected"))),
            "{problems:?}"
        );
    }

    #[test]
    fn a_damaged_manifest_is_a_problem_and_a_missing_folder_or_sums_an_error() {
        let (dir, _) = fresh("verify-manifest");
        std::fs::write(dir.join(MANIFEST_FILE), "{").unwrap();
        release_files_sums(&dir);
        let problems = verify_dir(&dir).unwrap();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("dist-manifest.json: ")
                && problems[0].contains("not a valid dist manifest"),
            "{problems:?}"
        );

        std::fs::remove_file(dir.join(SUMS_FILE)).unwrap();
        let err = verify_dir(&dir).unwrap_err().to_string();
        assert!(err.starts_with(&format!("cannot read {dir}/SHA256SUMS")), "{err}");
        let err = verify_dir(&dir.join("nope")).unwrap_err().to_string();
        assert!(err.contains("is not a folder; run `cargo xtask dist` first"), "{err}");
    }

    /// Every generated file of a dist folder, from fixed inputs (the fixture release and
    /// binaries, written by the real writers): a change in any of them shows in review.
    #[test]
    fn generated_files_from_fixed_inputs() {
        let dir = fixtures::scratch("snapshot-dist");
        fixtures::write_dist_of(&dir, &["amd64", "arm64v8", "arm32v7", "arm32v6", "arm32v5", "i386"]);
        for file in [SUMS_FILE, MANIFEST_FILE, DOCKERFILE_RELEASE, INSTALL_SH, PROVENANCE_FILE] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            insta::assert_snapshot!(file, text);
        }
    }

    #[test]
    fn a_provenance_that_names_other_archives_is_named() {
        let dir = fixtures::scratch("provenance-subjects");
        let manifest = fixtures::write_dist_of(&dir, &["amd64"]);
        let archive = &manifest.artifacts[0];
        let path = dir.join(PROVENANCE_FILE);
        let text = std::fs::read_to_string(&path).unwrap().replace(&archive.sha256, &"0".repeat(64));
        std::fs::write(&path, text.replace(&archive.name, "other.tar.gz")).unwrap();
        crate::release::files::write_sums(&dir).unwrap();
        assert_eq!(
            DistDir::at(&dir).problems().unwrap(),
            [format!(
                "{PROVENANCE_FILE}: {} is no subject; other.tar.gz is a subject but no archive of {MANIFEST_FILE}",
                archive.name
            )]
        );
    }

    mod signed {
        use super::super::*;
        use crate::fixtures::{key_pair, scratch, write_dist_signed_by};
        use crate::sign::key::tests::PUB;

        fn signed_dist(name: &str) -> Utf8PathBuf {
            let dir = scratch(name);
            write_dist_signed_by(&dir, &["amd64"], Some(&key_pair()));
            dir
        }

        fn pinned(pem: &str) -> PinnedKey {
            PinnedKey { path: "pinned.pub".into(), pem: pem.to_string() }
        }

        #[test]
        fn a_signed_folder_verifies_alone_and_with_its_pinned_key() {
            let dir = signed_dist("signed-ok");
            let manifest = Manifest::read(&dir.join(MANIFEST_FILE)).unwrap();
            let recorded = manifest.signature.unwrap();
            assert_eq!(recorded.public_key_sha256, signing::fingerprint(PUB).unwrap());
            assert_eq!(DistDir::at(&dir).problems().unwrap(), Vec::<String>::new());
            assert_eq!(
                DistDir::at(&dir).problems_with_key(Some(&pinned(PUB))).unwrap(),
                Vec::<String>::new()
            );
        }

        #[test]
        fn a_changed_sums_file_or_another_key_is_named() {
            let dir = signed_dist("signed-tampered");
            // Everything re-hashed by someone without the key: SHA256SUMS changes, its signature does not.
            std::fs::write(dir.join("extra.txt"), "x").unwrap();
            crate::release::files::write_sums(&dir).unwrap();
            let problems = DistDir::at(&dir).problems().unwrap();
            assert!(
                problems.iter().any(|p| p.starts_with("SHA256SUMS.sig: does not verify SHA256SUMS")),
                "{problems:?}"
            );

            let dir = signed_dist("signed-other-key");
            let other = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
            let other_pem =
                p256::pkcs8::EncodePublicKey::to_public_key_pem(other.verifying_key(), Default::default())
                    .unwrap();
            let problems = DistDir::at(&dir).problems_with_key(Some(&pinned(&other_pem))).unwrap();
            // SHA256SUMS.sig and the provenance's envelope, both by another key than the pinned one.
            assert_eq!(problems.len(), 2, "{problems:?}");
            assert!(problems.iter().all(|p| p.contains("with the key pinned.pub")), "{problems:?}");
        }

        #[test]
        fn a_missing_signature_is_named_when_the_manifest_or_a_pinned_key_expects_one() {
            let dir = signed_dist("signed-missing");
            std::fs::remove_file(dir.join(SIGNATURE_FILE)).unwrap();
            let problems = DistDir::at(&dir).problems().unwrap();
            assert_eq!(problems, ["SHA256SUMS.sig: missing (dist-manifest.json says SHA256SUMS is signed)"]);

            let dir = scratch("unsigned-pinned");
            crate::fixtures::write_dist_of(&dir, &["amd64"]);
            assert_eq!(DistDir::at(&dir).problems().unwrap(), Vec::<String>::new());
            let problems = DistDir::at(&dir).problems_with_key(Some(&pinned(PUB))).unwrap();
            assert!(problems[0].contains("not signed, so the key pinned.pub cannot vouch"), "{problems:?}");
        }
    }
}
