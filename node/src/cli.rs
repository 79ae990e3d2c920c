//! Command-line and environment parsing. Flags win over environment variables, which win
//! over the defaults.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::http_server::Limits;
use crate::log::LogFormat;

pub const DEFAULT_DATA_DIR: &str = "/data";
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7070";

pub const USAGE: &str = "\
exonode: the ExoTool node daemon

Usage:
  exonode [--log-format text|json] run [--data-dir DIR] [--listen ADDR]
          [--max-connections N] [--idle-timeout TIME] [--header-timeout TIME]
  exonode healthcheck [--addr ADDR]
  exonode --version
  exonode --help

Commands:
  run          Serve the HTTP API (GET /healthz, /version, /status) until SIGTERM or SIGINT.
  healthcheck  Exit 0 if the node at ADDR answers GET /healthz with 200, else 1.

Options:
  --data-dir DIR         Where the node keeps its identity [env EXONODE_DATA_DIR, default /data]
  --listen ADDR          Address to serve on [env EXONODE_LISTEN, default 0.0.0.0:7070]
  --max-connections N    Connections served at once; the next ones get 503 [default 4096]
  --idle-timeout TIME    Close a connection idle this long between requests [default 5s]
  --header-timeout TIME  Time a request has to arrive whole from its first byte [default 5s]
  --addr ADDR            Node to check [default: the listen address, with 0.0.0.0 as 127.0.0.1]
  --log-format FORMAT    text or json, one line per event on stderr [env EXONODE_LOG_FORMAT]
  -V, --version          Print version, target, commit and build date
  -h, --help             Print this help
";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(RunOptions),
    Healthcheck { addr: SocketAddr },
    Version,
    Help,
}

#[derive(Debug, PartialEq, Eq)]
pub struct RunOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub limits: Limits,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Cli {
    pub log_format: LogFormat,
    pub command: Command,
}

/// Reads the environment variables the daemon honours; a seam so tests need not touch the
/// process environment.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

pub fn parse(args: impl IntoIterator<Item = OsString>, env: &dyn Env) -> Result<Cli, String> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_iter(args);
    let mut log_format = None;
    let mut subcommand: Option<String> = None;
    let mut data_dir = None;
    let mut listen = None;
    let mut addr = None;
    let mut limits = Limits::default();
    let mut limit_flag = None;

    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => {
                return Ok(Cli { log_format: LogFormat::Text, command: Command::Help })
            }
            Short('V') | Long("version") => {
                return Ok(Cli { log_format: LogFormat::Text, command: Command::Version })
            }
            Long("log-format") => {
                log_format = Some(parse_log_format(&string_value(&mut parser)?, "--log-format")?)
            }
            Long("data-dir") => data_dir = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?)),
            Long("listen") => listen = Some(parse_addr(&string_value(&mut parser)?, "--listen")?),
            Long("addr") => addr = Some(parse_addr(&string_value(&mut parser)?, "--addr")?),
            Long("max-connections") => {
                limits.max_connections = parse_count(&string_value(&mut parser)?, "--max-connections")?;
                limit_flag = Some("--max-connections");
            }
            Long("idle-timeout") => {
                limits.idle_timeout = parse_timeout(&string_value(&mut parser)?, "--idle-timeout")?;
                limit_flag = Some("--idle-timeout");
            }
            Long("header-timeout") => {
                limits.header_timeout = parse_timeout(&string_value(&mut parser)?, "--header-timeout")?;
                limit_flag = Some("--header-timeout");
            }
            Value(value) if subcommand.is_none() => {
                subcommand = Some(value.into_string().map_err(|v| format!("invalid command {v:?}"))?)
            }
            other => return Err(other.unexpected().to_string()),
        }
    }

    let log_format = match log_format {
        Some(format) => format,
        None => match env.var("EXONODE_LOG_FORMAT") {
            Some(raw) => parse_log_format(&raw, "EXONODE_LOG_FORMAT")?,
            None => LogFormat::Text,
        },
    };
    let listen = match listen {
        Some(listen) => listen,
        None => {
            parse_addr(&env.var("EXONODE_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.into()), "EXONODE_LISTEN")?
        }
    };

    let command = match subcommand.as_deref() {
        Some("run") => {
            reject_flag(addr.is_some(), "--addr", "run")?;
            let data_dir = data_dir
                .or_else(|| env.var("EXONODE_DATA_DIR").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
            Command::Run(RunOptions { data_dir, listen, limits })
        }
        Some("healthcheck") => {
            reject_flag(data_dir.is_some(), "--data-dir", "healthcheck")?;
            if let Some(flag) = limit_flag {
                reject_flag(true, flag, "healthcheck")?;
            }
            Command::Healthcheck { addr: addr.unwrap_or_else(|| local_address_of(listen)) }
        }
        Some(other) => {
            return Err(format!("unknown command {other:?}; expected `run` or `healthcheck` (see --help)"))
        }
        None => return Err("missing command; expected `run` or `healthcheck` (see --help)".into()),
    };
    Ok(Cli { log_format, command })
}

fn string_value(parser: &mut lexopt::Parser) -> Result<String, String> {
    parser.value().map_err(|e| e.to_string())?.into_string().map_err(|v| format!("invalid UTF-8 in {v:?}"))
}

fn reject_flag(present: bool, flag: &str, command: &str) -> Result<(), String> {
    if present {
        Err(format!("{flag} does not apply to `{command}` (see --help)"))
    } else {
        Ok(())
    }
}

fn parse_log_format(raw: &str, source: &str) -> Result<LogFormat, String> {
    match raw {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("{source}: invalid log format {raw:?}; expected `text` or `json`")),
    }
}

fn parse_addr(raw: &str, source: &str) -> Result<SocketAddr, String> {
    raw.parse()
        .map_err(|_| format!("{source}: invalid address {raw:?}; expected IP:PORT such as 0.0.0.0:7070"))
}

fn parse_count(raw: &str, source: &str) -> Result<usize, String> {
    match raw.parse() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(format!("{source}: invalid count {raw:?}; expected a whole number above 0")),
    }
}

fn parse_timeout(raw: &str, source: &str) -> Result<Duration, String> {
    match humantime::parse_duration(raw) {
        Ok(timeout) if !timeout.is_zero() => Ok(timeout),
        _ => Err(format!("{source}: invalid duration {raw:?}; expected a time above 0 such as 5s or 500ms")),
    }
}

/// The address a local client should dial to reach a server listening on `listen`.
pub fn local_address_of(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeEnv(HashMap<&'static str, &'static str>);
    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    fn parse_with(args: &[&str], env: &[(&'static str, &'static str)]) -> Result<Cli, String> {
        let args = std::iter::once("exonode").chain(args.iter().copied()).map(OsString::from);
        parse(args, &FakeEnv(env.iter().copied().collect()))
    }

    #[test]
    fn run_uses_defaults() {
        let cli = parse_with(&["run"], &[]).unwrap();
        assert_eq!(
            cli.command,
            Command::Run(RunOptions {
                data_dir: "/data".into(),
                listen: "0.0.0.0:7070".parse().unwrap(),
                limits: Limits::default()
            })
        );
        assert_eq!(cli.log_format, LogFormat::Text);
    }

    #[test]
    fn flags_override_environment() {
        let env =
            [("EXONODE_DATA_DIR", "/env"), ("EXONODE_LISTEN", "127.0.0.1:1"), ("EXONODE_LOG_FORMAT", "json")];
        let cli = parse_with(&["run", "--data-dir", "/flag"], &env).unwrap();
        assert_eq!(
            cli.command,
            Command::Run(RunOptions {
                data_dir: "/flag".into(),
                listen: "127.0.0.1:1".parse().unwrap(),
                limits: Limits::default()
            })
        );
        assert_eq!(cli.log_format, LogFormat::Json);
    }

    #[test]
    fn connection_limits_are_flags_of_run() {
        let args = ["run", "--max-connections", "10", "--idle-timeout", "2s", "--header-timeout", "500ms"];
        let Command::Run(options) = parse_with(&args, &[]).unwrap().command else { panic!("not run") };
        assert_eq!(
            options.limits,
            Limits {
                max_connections: 10,
                idle_timeout: Duration::from_secs(2),
                header_timeout: Duration::from_millis(500)
            }
        );
        for (flag, value) in
            [("--max-connections", "0"), ("--idle-timeout", "0s"), ("--header-timeout", "soon")]
        {
            let err = parse_with(&["run", flag, value], &[]).unwrap_err();
            assert!(err.contains(flag) && err.contains(value), "{err}");
        }
        let err = parse_with(&["healthcheck", "--idle-timeout", "1s"], &[]).unwrap_err();
        assert!(err.contains("--idle-timeout") && err.contains("healthcheck"), "{err}");
    }

    #[test]
    fn healthcheck_dials_loopback_for_wildcard_listen() {
        let cli = parse_with(&["healthcheck"], &[("EXONODE_LISTEN", "0.0.0.0:9000")]).unwrap();
        assert_eq!(cli.command, Command::Healthcheck { addr: "127.0.0.1:9000".parse().unwrap() });
    }

    #[test]
    fn bad_values_name_their_source() {
        let err = parse_with(&["run", "--listen", "nowhere"], &[]).unwrap_err();
        assert!(err.contains("--listen") && err.contains("nowhere"), "{err}");
        let err = parse_with(&["run"], &[("EXONODE_LOG_FORMAT", "xml")]).unwrap_err();
        assert!(err.contains("EXONODE_LOG_FORMAT") && err.contains("json"), "{err}");
        let err = parse_with(&["serve"], &[]).unwrap_err();
        assert!(err.contains("serve") && err.contains("run"), "{err}");
        assert!(parse_with(&[], &[]).unwrap_err().contains("missing command"));
    }

    #[test]
    fn version_and_help_win_anywhere() {
        assert_eq!(parse_with(&["run", "--version"], &[]).unwrap().command, Command::Version);
        assert_eq!(parse_with(&["--help"], &[]).unwrap().command, Command::Help);
    }
}
