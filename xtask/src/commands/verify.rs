//! `cargo xtask verify [DIR]`: checks a dist folder (see `DistDir::problems`), naming every
//! problem; any problem means a non-zero exit.

use anyhow::{bail, Result};
use xshell::Shell;

use crate::flags;
use crate::project::workspace::Workspace;
use crate::release::dist_dir::{DistDir, PinnedKey};
use crate::release::layout::{
    KEYLESS_BUNDLE_FILE, MANIFEST_FILE, PUBLIC_KEY_FILE, SIGNATURE_FILE, SUMS_FILE,
};
use crate::release::manifest::{Manifest, RUN_CHECK_SKIPPED};

impl flags::Verify {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let dir = match self.dir {
            Some(dir) => DistDir::at(dir),
            None => DistDir::chosen(&Workspace::load(sh)?, None)?,
        };
        let key = self.key.as_deref().map(PinnedKey::read).transpose()?;
        let problems = dir.problems_with_key(key.as_ref())?;
        if problems.is_empty() {
            let signed = match (&key, dir.path().join(SIGNATURE_FILE).is_file()) {
                (Some(key), _) => format!("; {SUMS_FILE} is signed by {}", key.path),
                (None, true) => {
                    format!("; {SUMS_FILE} is signed by its {PUBLIC_KEY_FILE} (pass --key to pin the key)")
                }
                (None, false) => "; unsigned".to_string(),
            };
            println!("verify: {dir}: every file matches {SUMS_FILE} and {MANIFEST_FILE}{signed}");
            report_unrun(&dir.read_manifest()?);
            if dir.path().join(KEYLESS_BUNDLE_FILE).is_file() {
                // A keyless signature proves a CI identity, which only Sigstore's roots can check.
                println!(
                    "verify: {KEYLESS_BUNDLE_FILE} is a keyless signature; check it with `cosign verify-blob \
                     --bundle {KEYLESS_BUNDLE_FILE} --certificate-identity-regexp <workflow> \
                     --certificate-oidc-issuer https://token.actions.githubusercontent.com {SUMS_FILE}`"
                );
            }
            return Ok(());
        }
        for problem in &problems {
            eprintln!("FAILED {problem}");
        }
        bail!("verify: {} problem(s) in {dir}", problems.len())
    }
}

/// Binaries packed without being started on their CPU (`dist --allow-unrun`) are no
/// problem of the folder, but whoever ships it should know.
fn report_unrun(manifest: &Manifest) {
    let unrun: Vec<&str> =
        manifest.artifacts.iter().filter(|a| a.run_check_skipped()).map(|a| a.arch.as_str()).collect();
    if !unrun.is_empty() {
        println!(
            "verify: {} of {} binaries were packed without being started on their CPU (run_check \
             \"{RUN_CHECK_SKIPPED}\"): {}",
            unrun.len(),
            manifest.artifacts.len(),
            unrun.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{scratch, write_dist};

    #[test]
    fn verify_passes_a_clean_folder_and_counts_the_problems_of_another() {
        let dir = scratch("verify-command");
        write_dist(&dir);
        let sh = Shell::new().unwrap();
        flags::Verify { dir: Some(dir.clone()), key: None }.run(&sh).unwrap();
        std::fs::write(dir.join("extra.bin"), "x").unwrap();
        let err = flags::Verify { dir: Some(dir.clone()), key: None }.run(&sh).unwrap_err().to_string();
        assert_eq!(err, format!("verify: 1 problem(s) in {dir}"));
    }

    #[test]
    fn a_keyless_bundle_is_the_one_file_besides_the_signature_that_needs_no_listing() {
        let dir = scratch("verify-keyless");
        write_dist(&dir);
        std::fs::write(dir.join(KEYLESS_BUNDLE_FILE), "{}").unwrap();
        let sh = Shell::new().unwrap();
        flags::Verify { dir: Some(dir.clone()), key: None }.run(&sh).unwrap();
        std::fs::write(dir.join("SHA256SUMS.bundle"), "{}").unwrap();
        assert!(flags::Verify { dir: Some(dir.clone()), key: None }.run(&sh).is_err());
    }
}
