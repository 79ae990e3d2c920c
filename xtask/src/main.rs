//! `cargo xtask`: the release tooling of this workspace. See `cargo xtask --help`.

mod build;
mod commands;
mod engines;
#[cfg(test)]
mod fixtures;
mod flags;
#[cfg(test)]
mod module_graph;
mod net;
mod project;
mod release;
mod sign;
mod tools;
mod util;

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
    util::interrupt::install()?;
    let sh = Shell::new()?;
    match flags.command {
        flags::Command::Dist(flags::DistCli { command: Some(flags::DistCommand::Merge(cmd)), .. }) => {
            cmd.run(&sh)
        }
        flags::Command::Dist(cli) => cli.build.run(&sh),
        flags::Command::Verify(cmd) => cmd.run(&sh),
        flags::Command::Repo(cmd) => cmd.run(&sh),
        flags::Command::Doctor(cmd) => cmd.run(&sh),
        flags::Command::Image(cmd) => cmd.run(&sh),
        flags::Command::Bench(cmd) => cmd.run(&sh),
        flags::Command::Builder(cmd) => cmd.run(&sh),
        flags::Command::Lint(cmd) => cmd.run(&sh),
        flags::Command::Mutants(cmd) => cmd.run(&sh),
    }
}
