//! `cargo xtask verify [DIR]`: re-hashes a dist folder against its SHA256SUMS, its manifest
//! and the `.sha256` sidecars, and checks each archive's binary against the manifest. Every
//! problem is named; any problem means a non-zero exit.

use std::collections::BTreeSet;

use anyhow::{bail, Result};
use camino::Utf8Path;
use xshell::Shell;

use crate::archive;
use crate::checksum::{self, SUMS_FILE};
use crate::flags;
use crate::manifest::{Manifest, MANIFEST_FILE};
use crate::workspace::Workspace;

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
        let path = dir.join(&artifact.name);
        if !path.exists() {
            problems.push(format!("{}: missing (listed in {MANIFEST_FILE})", artifact.name));
            continue;
        }
        let (sha256, size) = checksum::sha256_file(&path)?;
        if sha256 != artifact.sha256 || size != artifact.size {
            problems.push(format!(
                "{}: sha256 {sha256} ({size} bytes) does not match {MANIFEST_FILE} ({}, {} bytes)",
                artifact.name, artifact.sha256, artifact.size
            ));
            continue;
        }
        if !dir.join(&artifact.sbom).is_file() {
            problems.push(format!(
                "{}: missing (the SBOM of {} in {MANIFEST_FILE})",
                artifact.sbom, artifact.name
            ));
        }
        let sidecar_name = format!("{}.sha256", artifact.name);
        match std::fs::read_to_string(dir.join(&sidecar_name)) {
            Ok(text) => match checksum::parse_sums(&text, &sidecar_name) {
                Ok(lines)
                    if lines.len() == 1 && lines[0].name == artifact.name && lines[0].sha256 == sha256 => {}
                Ok(_) => {
                    problems.push(format!("{sidecar_name}: does not hold the checksum of {}", artifact.name))
                }
                Err(err) => problems.push(format!("{sidecar_name}: {err:#}")),
            },
            Err(_) => problems.push(format!("{sidecar_name}: missing")),
        }
        match archive::read_entry(&path, &artifact.binary.path) {
            Ok(binary) => {
                let actual = checksum::sha256_hex(&binary);
                if actual != artifact.binary.sha256 {
                    problems.push(format!(
                        "{}: the binary {} has sha256 {actual}, the manifest says {}",
                        artifact.name, artifact.binary.path, artifact.binary.sha256
                    ));
                }
            }
            Err(err) => problems.push(format!("{}: {err:#}", artifact.name)),
        }
    }
    Ok(problems)
}
