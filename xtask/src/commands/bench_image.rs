//! `cargo xtask bench image`: wall time of `cargo xtask image` with the oci engine against
//! the buildx engine on the same dist folder, every arch, without pushing (buildx loads into
//! the engine, oci writes a layout) and pushing to a loopback registry. Each round is the
//! real command a user runs, as a child process; pushes go to a fresh repository per round
//! so every blob is uploaded. Signed pushes use the unit tests' throwaway cosign key. Prints
//! a markdown table for docs/benchmarks.md.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::project::workspace::Workspace;
use crate::release::manifest::Manifest;
use crate::util::cmd::Cmd;

/// The registry ci/setup-host.sh runs; pushes go there and nowhere else.
pub const REGISTRY: &str = "localhost:5000";
/// The unit tests' cosign key (testdata/README.md: made for tests, its password is public).
const THROWAWAY_KEY: &str = "xtask/src/sign/testdata/cosign.key";
const THROWAWAY_PASSWORD: &str = "secret";

struct Case {
    engine: &'static str,
    mode: &'static str,
    /// Extra arguments; `{round}` becomes the round number.
    args: Vec<String>,
    /// Empty BuildKit's cache before each round (not timed): a cold build.
    prune: bool,
}

pub fn run(sh: &Shell, ws: &Workspace, dist_dir: &Utf8Path, manifest: &Manifest, rounds: u32) -> Result<()> {
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let arches: Vec<&str> = manifest.artifacts.iter().map(|a| a.arch.as_str()).collect();
    let exe = Utf8PathBuf::from_path_buf(std::env::current_exe().context("cannot locate the xtask binary")?)
        .map_err(|p| anyhow::anyhow!("{p:?} is not UTF-8"))?;
    let layout = ws.target_dir.join("bench/oci-layout");
    let repo = |engine: &str| format!("{REGISTRY}/bench/{engine}-{}-{{round}}", std::process::id());
    let signed_repo =
        |engine: &str| format!("{REGISTRY}/bench/signed-{engine}-{}-{{round}}", std::process::id());
    let key = ws.root.join(THROWAWAY_KEY);
    let cases = [
        Case {
            engine: "buildx",
            mode: "load into the engine, build cache warm",
            args: args(&["--image", "bench/exonode"]),
            prune: false,
        },
        Case {
            engine: "buildx",
            mode: "load into the engine, build cache pruned",
            args: args(&["--image", "bench/exonode"]),
            prune: true,
        },
        Case {
            engine: "oci",
            mode: "write an OCI layout",
            args: args(&["--oci-layout", layout.as_str()]),
            prune: false,
        },
        Case {
            engine: "buildx",
            mode: "push to a fresh repository",
            args: args(&["--image", &repo("buildx"), "--push"]),
            prune: false,
        },
        Case {
            engine: "oci",
            mode: "push to a fresh repository",
            args: args(&["--image", &repo("oci"), "--push"]),
            prune: false,
        },
        Case {
            engine: "buildx",
            mode: "push to a fresh repository, signed",
            args: args(&["--image", &signed_repo("buildx"), "--push", "--sign-key", key.as_str()]),
            prune: false,
        },
        Case {
            engine: "oci",
            mode: "push to a fresh repository, signed",
            args: args(&["--image", &signed_repo("oci"), "--push", "--sign-key", key.as_str()]),
            prune: false,
        },
    ];
    let mut signing_lines = Vec::new();
    eprintln!(
        "bench image: {} arches from {dist_dir}, {rounds} round(s) per case, registry {REGISTRY}",
        arches.len()
    );
    let mut rows = Vec::new();
    for case in &cases {
        let mut times = Vec::new();
        for round in 0..rounds {
            let mut cmd =
                Cmd::new(exe.as_str()).args(["image", "--all-arch", "--tag", "bench", "--dist-dir"]);
            cmd = cmd.arg(dist_dir.as_str()).args(["--engine", case.engine]);
            for arg in &case.args {
                cmd = cmd.arg(arg.replace("{round}", &round.to_string()));
            }
            if case.prune {
                Cmd::new("docker").args(["builder", "prune", "--all", "--force"]).output(sh)?;
            }
            let started = Instant::now();
            let (ok, output) = cmd.clone().env("COSIGN_PASSWORD", THROWAWAY_PASSWORD).output(sh)?;
            let elapsed = started.elapsed();
            if !ok {
                bail!("`{cmd}` failed:\n{output}");
            }
            eprintln!(
                "  {} {}: round {} in {:.2}s",
                case.engine,
                case.mode,
                round + 1,
                elapsed.as_secs_f64()
            );
            times.push(elapsed);
            if let Some(line) = output.lines().find(|l| l.starts_with("signed ")) {
                signing_lines.push(format!("{}: {line}", case.engine));
            }
        }
        rows.push((case, times));
    }
    print!("{}", table(&rows, arches.len()));
    for line in signing_lines {
        println!("{line}");
    }
    Ok(())
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn mean(times: &[Duration]) -> f64 {
    times.iter().map(Duration::as_secs_f64).sum::<f64>() / times.len() as f64
}

fn table(rows: &[(&Case, Vec<Duration>)], arches: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| `cargo xtask image`, {arches} arches | engine | rounds | mean s | min s | oci faster by |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
    // A push compares with the oci push of the same mode; a local build with the layout.
    let oci_mean = |mode: &str| {
        let push = mode.starts_with("push");
        rows.iter()
            .find(|(c, _)| {
                c.engine == "oci" && if push { c.mode == mode } else { !c.mode.starts_with("push") }
            })
            .map(|(_, t)| mean(t))
    };
    for (case, times) in rows {
        let min = times.iter().min().copied().unwrap_or_default().as_secs_f64();
        let speedup = match (case.engine, oci_mean(case.mode)) {
            ("buildx", Some(oci)) if oci > 0.0 => format!("{:.0}x", mean(times) / oci),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {:.2} | {speedup} |",
            case.mode,
            case.engine,
            times.len(),
            mean(times),
            min
        );
    }
    out
}
