//! exonode: the ExoTool node daemon. See `exonode --help`.

mod build_info;
mod cli;
mod healthcheck;
mod http;
mod http_server;
mod log;
mod server;
mod state;

use std::process::ExitCode;
use std::time::Instant;

use cli::{Command, ProcessEnv};
use log::Logger;

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = match cli::parse(std::env::args_os(), &ProcessEnv) {
        Ok(cli) => cli,
        Err(message) => {
            eprintln!("exonode: {message}");
            return ExitCode::from(2);
        }
    };
    let log = Logger::new(cli.log_format);
    match cli.command {
        Command::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("{}", build_info::version_line());
            ExitCode::SUCCESS
        }
        Command::Healthcheck { addr } => match healthcheck::check(addr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("exonode healthcheck: {message}");
                ExitCode::FAILURE
            }
        },
        Command::Run(options) => {
            let state = match state::open_and_count_start(&options.data_dir) {
                Ok(state) => state,
                Err(err) => {
                    log.error(&err.to_string(), &[]);
                    return ExitCode::FAILURE;
                }
            };
            log.info(
                "starting",
                &[
                    ("version", &build_info::VERSION),
                    ("target", &build_info::TARGET),
                    ("data_dir", &options.data_dir.display()),
                ],
            );
            match server::serve(options.listen, server::Node { state, started }, options.limits, log) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    log.error(&err.to_string(), &[]);
                    ExitCode::FAILURE
                }
            }
        }
    }
}
