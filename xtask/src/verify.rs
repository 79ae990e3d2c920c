//! `cargo xtask verify [DIR]`: re-hashes a dist folder against its SHA256SUMS, its manifest
//! and the `.sha256` sidecars; checks each archive's binary against the manifest and, by its
//! ELF facts alone, against its arch; and checks that each SBOM describes its archive. Every
//! problem is named; any problem means a non-zero exit.

use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};
use camino::Utf8Path;
use xshell::Shell;

use crate::checksum::{self, SUMS_FILE};
use crate::manifest::{Artifact, Manifest, MANIFEST_FILE};
use crate::workspace::Workspace;
use crate::{archive, elf, flags, matrix, sbom};

impl flags::Verify {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let dir = match self.dir {
            Some(dir) => dir,
            None => Workspace::load(sh)?.target_dir.join("dist"),
        };
        let problems = verify_dir(&dir)?;
        if problems.is_empty() {
            println!("verify: {dir}: every file matches SHA256SUMS and {MANIFEST_FILE}");
            return Ok(());
        }
        for problem in &problems {
            eprintln!("FAILED {problem}");
        }
        bail!("verify: {} problem(s) in {dir}", problems.len())
    }
}

/// Returns one line per problem; an error only when the folder cannot be examined at all.
pub fn verify_dir(dir: &Utf8Path) -> Result<Vec<String>> {
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
        if name != SUMS_FILE && !listed.contains(&name) {
            problems.push(format!("{name}: not listed in {SUMS_FILE}"));
        }
    }

    let manifest = match Manifest::read(&dir.join(MANIFEST_FILE)) {
        Ok(manifest) => manifest,
        Err(err) => {
            problems.push(format!("{MANIFEST_FILE}: {err:#}"));
            return Ok(problems);
        }
    };
    for artifact in &manifest.artifacts {
        problems.extend(artifact_problems(dir, &manifest, artifact)?);
    }
    Ok(problems)
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
    Ok(problems)
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
    let name = checksum::sidecar_name(&artifact.name);
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
