//! The run check: a binary must run on its arch's CPU class before it is packed, natively for
//! the host's classes and under qemu-user with the class's CPU model otherwise (an ARMv7
//! binary dies with SIGILL on `-cpu arm926`). It runs `--version`, then the smoke scenario of
//! release.toml (`dist.smoke`): the daemon is started, asked over HTTP, and stopped by SIGTERM.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::build::emulator::{Emulators, Source};
use crate::project::config::SmokeConfig;
use crate::project::matrix::{Arch, RunOn};
use crate::release::manifest::RUN_CHECK_SKIPPED;
use crate::util::cmd::Cmd;
use crate::util::interrupt::{self, TrackedChild};
use crate::util::progress::RowLog;

/// How long a daemon under emulation may take to answer its first request.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);
/// How long it may take to exit after SIGTERM (the daemon promises well under a second).
const STOP_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCheck {
    /// Run through this command prefix (empty on the host, qemu-user otherwise).
    Run { prefix: Vec<String>, cpu: String },
    /// Cannot run it here; the reason says what to install.
    Unavailable(String),
}

impl RunCheck {
    /// The check of `arch`, with its emulator from `emulators` (PATH, the tool cache, or the
    /// plan's fetch step).
    pub fn for_arch(arch: &Arch, emulators: &Emulators) -> RunCheck {
        match arch.run_on {
            RunOn::Host => RunCheck::Run { prefix: vec![], cpu: "this host".into() },
            RunOn::Qemu { emulator, cpu, .. } => match emulators.locate(emulator) {
                Source::Unavailable(why) => RunCheck::Unavailable(why),
                source => RunCheck::Run {
                    prefix: vec![source.program().expect("available").to_string(), "-cpu".into(), cpu.into()],
                    cpu: cpu.into(),
                },
            },
        }
    }

    fn command<S: Into<String>>(&self, binary: &Utf8Path, args: impl IntoIterator<Item = S>) -> Option<Cmd> {
        let RunCheck::Run { prefix, .. } = self else { return None };
        let mut words = prefix.iter().cloned().chain([binary.to_string()]);
        let program = words.next().expect("at least the binary");
        Some(Cmd::new(program).args(words).args(args))
    }

    pub fn version_command(&self, binary: &Utf8Path) -> Option<Cmd> {
        self.command(binary, ["--version"])
    }

    /// The smoke command with placeholders left in, for plans.
    pub fn smoke_command(&self, binary: &Utf8Path, smoke: &SmokeConfig) -> Option<Cmd> {
        self.command(binary, smoke.args.iter().cloned())
    }

    /// The plan's lines for this check.
    pub fn describe(&self, binary: &Utf8Path, smoke: Option<&SmokeConfig>) -> Vec<String> {
        let cpu = match self {
            RunCheck::Run { cpu, .. } => cpu,
            RunCheck::Unavailable(why) => return vec![format!("skipped: {why}")],
        };
        let mut lines = vec![format!("{}  (on {cpu})", self.version_command(binary).expect("runnable"))];
        if let Some(smoke) = smoke {
            let gets: Vec<String> = smoke.get.iter().map(|p| format!("GET {p} → 200")).collect();
            let steps = gets.into_iter().chain(["SIGTERM → exit 0".to_string()]).collect::<Vec<_>>();
            lines.push(format!(
                "{}  then {}",
                self.smoke_command(binary, smoke).expect("runnable"),
                steps.join(", ")
            ));
        }
        lines
    }

    /// Runs the check; returns the CPU it ran on, or `RUN_CHECK_SKIPPED` (with a warning) when
    /// it cannot and the plan allowed that.
    pub fn run(
        &self,
        sh: &Shell,
        binary: &Utf8Path,
        smoke: Option<&SmokeConfig>,
        log: RowLog,
    ) -> Result<String> {
        let cpu = match self {
            RunCheck::Run { cpu, .. } => cpu,
            RunCheck::Unavailable(why) => {
                log.note(&format!("warning: not started on its CPU: {why}"));
                return Ok(RUN_CHECK_SKIPPED.into());
            }
        };
        let cmd = self.version_command(binary).expect("runnable");
        let (ok, output) = cmd.output(sh)?;
        if !ok {
            bail!("the binary does not run on its CPU class ({cpu}): `{cmd}` failed:\n{}", output.trim());
        }
        let version = output.lines().next().unwrap_or("").trim().to_string();
        let line = match smoke {
            None => format!("runs on {cpu}: {version}"),
            Some(smoke) => {
                let summary = self
                    .smoke(sh, binary, smoke)
                    .with_context(|| format!("the smoke run (dist.smoke) failed on its CPU class ({cpu})"))?;
                format!("runs on {cpu}: {version}; {summary}")
            }
        };
        log.say(&line);
        Ok(cpu.clone())
    }

    fn smoke(&self, sh: &Shell, binary: &Utf8Path, smoke: &SmokeConfig) -> Result<String> {
        let scratch = Scratch::create()?;
        let data_dir = scratch.path.join("data");
        std::fs::create_dir(&data_dir).with_context(|| format!("cannot create {data_dir}"))?;
        let addr = free_loopback_addr()?;
        let args = smoke
            .args
            .iter()
            .map(|arg| arg.replace("{data_dir}", data_dir.as_str()).replace("{addr}", &addr.to_string()));
        let cmd = self.command(binary, args).expect("runnable");
        let log_path = scratch.path.join("output.log");
        let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {log_path}"))?;
        let mut child = cmd.start(sh, &log)?;
        let outcome = exercise(&mut child, addr, smoke);
        outcome.map_err(|why| {
            let output = std::fs::read_to_string(&log_path).unwrap_or_default();
            anyhow::anyhow!("`{cmd}`: {why:#}\n  its output:\n{}", indent(output.trim_end()))
        })
    }
}

/// Asks every path, then stops the daemon with SIGTERM; returns a one-line summary.
fn exercise(child: &mut TrackedChild, addr: SocketAddr, smoke: &SmokeConfig) -> Result<String> {
    let started = Instant::now();
    if smoke.get.is_empty() {
        std::thread::sleep(Duration::from_secs(1));
        if let Some(status) = child.try_wait()? {
            bail!("it exited ({status}) instead of running until SIGTERM");
        }
    }
    for path in &smoke.get {
        let status = wait_for_answer(child, addr, path)?;
        if status != 200 {
            bail!("GET {path} answered HTTP {status}, expected 200");
        }
    }
    let answered = started.elapsed();
    child.terminate();
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if stopping.elapsed() > STOP_LIMIT {
            bail!("it did not stop within {}s of SIGTERM", STOP_LIMIT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        bail!("SIGTERM stopped it with {status}, expected exit status 0");
    }
    let asked: Vec<&str> = smoke.get.iter().map(String::as_str).collect();
    Ok(format!(
        "answered {} in {:.1}s, stopped by SIGTERM in {:.2}s",
        if asked.is_empty() { "nothing (no dist.smoke.get)".to_string() } else { asked.join(" ") },
        answered.as_secs_f64(),
        stopping.elapsed().as_secs_f64()
    ))
}

/// Polls `path` until the daemon answers, exits, or the start-up limit passes: soon at
/// first (a native daemon answers within milliseconds), then every 100 ms.
fn wait_for_answer(child: &mut TrackedChild, addr: SocketAddr, path: &str) -> Result<u16> {
    let deadline = Instant::now() + STARTUP_LIMIT;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("it exited ({status}) before answering GET {path} on {addr}");
        }
        match http_status(addr, path) {
            Ok(status) => return Ok(status),
            Err(err) if Instant::now() > deadline => {
                bail!("GET {path} on {addr} got no answer within {}s ({err})", STARTUP_LIMIT.as_secs())
            }
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
}

/// One HTTP/1.0 GET on loopback, returning the status code. Written by hand: a dozen lines,
/// and no client library's proxy settings can send it anywhere but the daemon.
fn http_status(addr: SocketAddr, path: &str) -> io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head)?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("not an HTTP response: {line:?}")))
}

fn free_loopback_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?)
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("    {line}")).collect::<Vec<_>>().join("\n")
}

/// A private folder for one smoke run, removed afterwards (also on SIGINT/SIGTERM).
struct Scratch {
    path: Utf8PathBuf,
    _tracked: interrupt::TrackedOutput,
}

impl Scratch {
    fn create() -> Result<Scratch> {
        let base = Utf8PathBuf::from_path_buf(std::env::temp_dir())
            .map_err(|p| anyhow::anyhow!("the temp folder {p:?} is not UTF-8"))?;
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = base.join(format!("xtask-smoke-{}-{n}", std::process::id()));
        let _tracked = interrupt::track_output(&path);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {path}"))?;
        Ok(Scratch { path, _tracked })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::matrix::by_name;

    fn smoke() -> SmokeConfig {
        SmokeConfig {
            args: vec!["run".into(), "--listen".into(), "{addr}".into()],
            get: vec!["/healthz".into(), "/status".into()],
        }
    }

    #[test]
    fn commands_use_the_cpu_class() {
        let check = RunCheck::Run {
            prefix: vec!["/usr/bin/qemu-arm-static".into(), "-cpu".into(), "arm1176".into()],
            cpu: "arm1176".into(),
        };
        let binary = Utf8Path::new("/t/exonode");
        assert_eq!(
            check.version_command(binary).unwrap().to_string(),
            "/usr/bin/qemu-arm-static -cpu arm1176 /t/exonode --version"
        );
        assert_eq!(
            check.describe(binary, Some(&smoke())),
            [
                "/usr/bin/qemu-arm-static -cpu arm1176 /t/exonode --version  (on arm1176)",
                "/usr/bin/qemu-arm-static -cpu arm1176 /t/exonode run --listen '{addr}'  then GET /healthz → 200, \
                 GET /status → 200, SIGTERM → exit 0"
            ]
        );
        let host = RunCheck::Run { prefix: vec![], cpu: "this host".into() };
        assert_eq!(host.version_command(binary).unwrap().to_string(), "/t/exonode --version");
        assert!(matches!(by_name("arm32v6").unwrap().run_on, RunOn::Qemu { cpu: "arm1176", .. }));
        let missing = RunCheck::Unavailable("qemu-arm-static not found".into());
        assert_eq!(missing.describe(binary, Some(&smoke())), ["skipped: qemu-arm-static not found"]);
        assert_eq!(missing.version_command(binary), None);
    }

    #[test]
    fn a_daemon_that_never_answers_or_dies_is_refused_with_its_output() {
        let sh = Shell::new().unwrap();
        let host = RunCheck::Run { prefix: vec![], cpu: "this host".into() };
        // `sh -c` stands in for a daemon: one that exits at once, one that answers nothing.
        let config =
            SmokeConfig { args: vec!["-c".into(), "echo broken >&2; exit 3".into()], get: vec!["/".into()] };
        let err = format!("{:#}", host.smoke(&sh, Utf8Path::new("/bin/sh"), &config).unwrap_err());
        assert!(
            err.contains("it exited (exit status: 3) before answering GET /") && err.contains("    broken"),
            "{err}"
        );
        let config = SmokeConfig { args: vec!["-c".into(), "exec sleep 30".into()], get: vec![] };
        let err = format!("{:#}", host.smoke(&sh, Utf8Path::new("/bin/sh"), &config).unwrap_err());
        assert!(err.contains("SIGTERM stopped it with signal: 15"), "{err}");
    }
}
