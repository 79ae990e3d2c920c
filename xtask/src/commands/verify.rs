//! `cargo xtask verify [DIR]`: checks a dist folder (see `DistDir::problems`), naming every
//! problem; any problem means a non-zero exit.

use anyhow::{bail, Result};
use xshell::Shell;

use crate::flags;
use crate::project::workspace::Workspace;
use crate::release::dist_dir::DistDir;
use crate::release::manifest::MANIFEST_FILE;

impl flags::Verify {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let dir = match self.dir {
            Some(dir) => DistDir::at(dir),
            None => DistDir::chosen(&Workspace::load(sh)?, None)?,
        };
        let problems = dir.problems()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{scratch, write_dist};

    #[test]
    fn verify_passes_a_clean_folder_and_counts_the_problems_of_another() {
        let dir = scratch("verify-command");
        write_dist(&dir);
        let sh = Shell::new().unwrap();
        flags::Verify { dir: Some(dir.clone()) }.run(&sh).unwrap();
        std::fs::write(dir.join("extra.bin"), "x").unwrap();
        let err = flags::Verify { dir: Some(dir.clone()) }.run(&sh).unwrap_err().to_string();
        assert_eq!(err, format!("verify: 1 problem(s) in {dir}"));
    }
}
