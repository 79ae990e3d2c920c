//! `cargo xtask mutants`: mutation testing (cargo-mutants) of the modules that decide whether a
//! release is good. Each mutant must be caught by the xtask's unit tests alone (`-- --bins`):
//! the e2e tests need Docker and minutes of cross builds per run. The six modules are too slow
//! for every CI run, so CI runs the baseline and build/elf.rs's mutants (so the command cannot
//! rot unnoticed); the figures are in the README and docs/benchmarks.md. Unit tests need no git
//! metadata: cargo-mutants tests a copy of the tree without .git. Mutants no test can catch
//! are excluded, each with its reason, in `.cargo/mutants.toml`.

use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use xshell::Shell;

use crate::flags;
use crate::project::workspace::project_root;
use crate::tools::{self, CARGO_MUTANTS};
use crate::util::cmd::Cmd;

/// The modules whose verdicts decide whether a release ships.
pub const CHECK_MODULES: [&str; 6] = [
    "xtask/src/build/elf.rs",
    "xtask/src/release/checksum.rs",
    "xtask/src/release/dist_dir.rs",
    "xtask/src/release/manifest.rs",
    "xtask/src/commands/merge.rs",
    "xtask/src/project/config.rs",
];

impl flags::Mutants {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let root = project_root();
        let files: Vec<String> = if self.file.is_empty() {
            CHECK_MODULES.iter().map(|f| f.to_string()).collect()
        } else {
            self.file.iter().map(|f| f.to_string()).collect()
        };
        for file in &files {
            if !root.join(file).is_file() {
                bail!("--file {file}: no such file in the workspace (paths are relative to its root, e.g. xtask/src/build/elf.rs)");
            }
        }
        let target = root.join("target");
        let install = CARGO_MUTANTS.install_step(&tools::cache_dir(&target));
        let run = mutants_command(&files, self.jobs, &target);
        print!("{}", render_plan(install.as_ref(), &run));
        if self.dry_run {
            return Ok(());
        }
        if let Some(install) = install {
            install.run(sh).context("cannot install cargo-mutants")?;
        }
        let _dir = sh.push_dir(&root);
        run.run(sh).context(
            "mutants survived or timed out: see target/mutants.out/missed.txt and timeout.txt, \
             then add a unit test that catches each (or an exclusion with its reason)",
        )
    }
}

fn mutants_command(files: &[String], jobs: u32, target: &Utf8PathBuf) -> Cmd {
    let mut cmd = Cmd::new("cargo").args(["mutants", "--package", "xtask", "--jobs", &jobs.to_string()]);
    cmd = cmd.args(["--output", target.as_str()]);
    for file in files {
        cmd = cmd.args(["--file", file]);
    }
    cmd.args(["--", "--bins"])
}

fn render_plan(install: Option<&Cmd>, run: &Cmd) -> String {
    let mut out = String::from("mutants plan: every mutant must be caught by the xtask's unit tests\n");
    if let Some(install) = install {
        let _ = writeln!(out, "  install: {install}");
    }
    let _ = writeln!(out, "  run:     {run}");
    let _ = writeln!(out, "  report:  target/mutants.out/{{caught,missed,timeout,unviable}}.txt");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_module_exists() {
        for file in CHECK_MODULES {
            assert!(project_root().join(file).is_file(), "{file} moved; update CHECK_MODULES");
        }
    }

    #[test]
    fn the_command_names_every_module_and_runs_unit_tests_only() {
        let files: Vec<String> = CHECK_MODULES.iter().map(|f| f.to_string()).collect();
        let cmd = mutants_command(&files, 2, &"/w/target".into());
        assert_eq!(
            cmd.to_string(),
            "cargo mutants --package xtask --jobs 2 --output /w/target --file xtask/src/build/elf.rs --file xtask/src/release/checksum.rs \
             --file xtask/src/release/dist_dir.rs --file xtask/src/release/manifest.rs --file xtask/src/commands/merge.rs --file xtask/src/project/config.rs \
             -- --bins"
        );
        let install = CARGO_MUTANTS.install_command("/w/target/xtask-tools".into()).unwrap();
        assert_eq!(install.to_string(), "cargo install --locked cargo-mutants@27.1.0");
        let plan = render_plan(Some(&install), &cmd);
        assert!(
            plan.contains("  install: cargo install") && plan.contains("  run:     cargo mutants"),
            "{plan}"
        );
    }
}
