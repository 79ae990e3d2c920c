//! `cargo xtask`: the release tooling of this workspace. See `cargo xtask --help`.

mod archive;
mod backend;
mod bench;
mod bench_image;
mod buildx;
mod cargo_metadata;
mod checksum;
mod cmd;
mod config;
mod dist;
mod elf;
#[cfg(test)]
mod fixtures;
mod flags;
mod image;
mod interrupt;
mod lint;
mod manifest;
mod matrix;
mod merge;
mod mutants;
mod oci;
mod release_files;
mod run_check;
mod sbom;
mod staging;
mod toolchain;
mod verify;
mod workspace;

use std::process::ExitCode;

use clap::Parser;
use xshell::Shell;

fn main() -> ExitCode {
    let flags = flags::Xtask::parse();
    match run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(flags: flags::Xtask) -> anyhow::Result<()> {
    interrupt::install()?;
    let sh = Shell::new()?;
    match flags.command {
        flags::Command::Dist(flags::DistCli { command: Some(flags::DistCommand::Merge(cmd)), .. }) => {
            cmd.run(&sh)
        }
        flags::Command::Dist(cli) => cli.build.run(&sh),
        flags::Command::Verify(cmd) => cmd.run(&sh),
        flags::Command::Image(cmd) => cmd.run(&sh),
        flags::Command::Bench(cmd) => cmd.run(&sh),
        flags::Command::Lint(cmd) => cmd.run(&sh),
        flags::Command::Mutants(cmd) => cmd.run(&sh),
    }
}
