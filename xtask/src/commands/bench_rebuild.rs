//! `cargo xtask bench rebuild`: how long `cargo xtask dist` of every configured arch takes
//! after a one-line change in the binary's sources, one arch at a time (`--jobs 1`) against
//! the default (one per CPU); a no-op rerun; each arch alone, the floor no schedule can beat;
//! and optionally a cold build in an empty target dir. Each figure is a whole `dist` run in a
//! child process, with its CPU use (user + system time of the children over wall time).

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::project::cargo_metadata::Metadata;
use crate::project::workspace::Workspace;
use crate::util::cmd::Cmd;
use crate::util::report::seconds;

pub struct Figure {
    pub wall: Duration,
    cpu: Duration,
}

impl Figure {
    pub fn utilisation(&self) -> String {
        format!("{:.0}%", 100.0 * self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9))
    }
}

pub fn run(sh: &Shell, ws: &Workspace, rounds: u32, cold: bool) -> Result<()> {
    let xtask = Utf8PathBuf::from_path_buf(std::env::current_exe().context("cannot find the xtask binary")?)
        .map_err(|p| anyhow::anyhow!("the xtask binary's path {p:?} is not UTF-8"))?;
    let source = binary_source(sh, ws)?;
    let out = ws.target_dir.join("bench/rebuild");
    let dist = |jobs: Option<&str>, arch: Option<&str>, target_dir: Option<&Utf8Path>| {
        let mut cmd = Cmd::new(xtask.as_str()).args(["dist", "--out", out.as_str()]);
        if let Some(jobs) = jobs {
            cmd = cmd.args(["--jobs", jobs]);
        }
        if let Some(arch) = arch {
            cmd = cmd.args(["--arch", arch]);
        }
        if let Some(dir) = target_dir {
            cmd = cmd.env("CARGO_TARGET_DIR", dir.as_str());
        }
        cmd
    };
    eprintln!("warming up: {}", dist(None, None, None));
    measure(sh, &dist(None, None, None))?;

    let mut serial = Vec::new();
    let mut parallel = Vec::new();
    let mut noop = Vec::new();
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}: a one-line change (touch {source}), --jobs 1, then the default");
        touch(&source)?;
        serial.push(measure(sh, &dist(Some("1"), None, None))?);
        touch(&source)?;
        parallel.push(measure(sh, &dist(None, None, None))?);
        noop.push(measure(sh, &dist(None, None, None))?);
    }
    let mut alone = Vec::new();
    for arch in &ws.config.dist.arches {
        eprintln!("{}: a one-line change, this arch alone", arch.name);
        touch(&source)?;
        alone.push((arch.name, measure(sh, &dist(Some("1"), Some(arch.name), None))?));
    }
    let cold_figure = if cold {
        let empty = ws.target_dir.join("bench/cold-target");
        let _ = std::fs::remove_dir_all(&empty);
        eprintln!("cold: every arch in an empty target dir {empty}");
        let figure = measure(sh, &dist(None, None, Some(&empty)))?;
        let _ = std::fs::remove_dir_all(&empty);
        Some(figure)
    } else {
        None
    };
    print!("{}", table(&serial, &parallel, &noop, &alone, cold_figure.as_ref()));
    Ok(())
}

/// The file whose change stands for "a one-line change": the binary's main source.
pub fn binary_source(sh: &Shell, ws: &Workspace) -> Result<Utf8PathBuf> {
    let metadata = Metadata::read(sh, &ws.root.join("Cargo.toml"), None)?;
    let dist = &ws.config.dist;
    metadata
        .workspace_package(&dist.package)
        .and_then(|p| p.targets.iter().find(|t| t.name == dist.binary && t.kind.iter().any(|k| k == "bin")))
        .map(|t| t.src_path.clone())
        .with_context(|| {
            format!("cargo metadata lists no binary {} in package {}", dist.binary, dist.package)
        })
}

/// Marks the file changed for cargo (a new mtime) without changing its bytes.
fn touch(path: &Utf8Path) -> Result<()> {
    std::fs::File::options()
        .append(true)
        .open(path)
        .and_then(|file| file.set_modified(SystemTime::now()))
        .with_context(|| format!("cannot touch {path}"))
}

fn measure(sh: &Shell, cmd: &Cmd) -> Result<Figure> {
    measure_output(sh, cmd).map(|(figure, _)| figure)
}

/// Runs `cmd` to the end, timed; returns its figure and its stdout + stderr.
pub fn measure_output(sh: &Shell, cmd: &Cmd) -> Result<(Figure, String)> {
    let cpu_before = children_cpu();
    let started = Instant::now();
    let (ok, output) = cmd.output(sh)?;
    let wall = started.elapsed();
    if !ok {
        anyhow::bail!("`{cmd}` failed:\n{output}");
    }
    Ok((Figure { wall, cpu: children_cpu().saturating_sub(cpu_before) }, output))
}

/// User + system time of every finished child so far (getrusage has no crate of its own
/// in our dependencies; libc's call is the whole of it).
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid rusage.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

pub fn median(figures: &[Figure]) -> &Figure {
    let mut sorted: Vec<&Figure> = figures.iter().collect();
    sorted.sort_by_key(|f| f.wall);
    sorted[sorted.len() / 2]
}

fn table(
    serial: &[Figure],
    parallel: &[Figure],
    noop: &[Figure],
    alone: &[(&str, Figure)],
    cold: Option<&Figure>,
) -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rounds = serial.len();
    let (serial, parallel, noop) = (median(serial), median(parallel), median(noop));
    let mut out = format!("\n{cpus} CPUs, median of {rounds} round(s)\n\n");
    out.push_str("| dist of every arch | wall | CPU |\n|---|---:|---:|\n");
    let mut row = |what: &str, f: &Figure| {
        let _ = writeln!(out, "| {what} | {} | {} |", seconds(f.wall), f.utilisation());
    };
    row("one-line change, `--jobs 1`", serial);
    row("one-line change, default jobs", parallel);
    row("no-op rerun", noop);
    if let Some(cold) = cold {
        row("cold (empty target dir), default jobs", cold);
    }
    for (arch, figure) in alone {
        row(&format!("one-line change, {arch} alone"), figure);
    }
    let slowest = alone.iter().max_by_key(|(_, f)| f.wall);
    let _ = writeln!(
        out,
        "\ndefault / --jobs 1 = {:.2}x; slowest single arch (the floor): {}",
        parallel.wall.as_secs_f64() / serial.wall.as_secs_f64(),
        slowest.map_or("-".to_string(), |(arch, f)| format!("{arch} {}", seconds(f.wall)))
    );
    out
}
