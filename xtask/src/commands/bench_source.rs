//! `cargo xtask bench source`: docker/Dockerfile.source for one arch, cold (no layer cache, no
//! cache mounts) against a rebuild after a one-line change in the binary's sources, in a clone
//! of the checkout (the change must alter bytes: BuildKit hashes the context, not mtimes).
//! Each rebuild must reuse the fetch layer (`cargo fetch` not run again); the table says so.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use camino::Utf8Path;
use xshell::{cmd, Shell};

use crate::commands::bench_rebuild::{binary_source, measure_output, median, Figure};
use crate::commands::builder::ca_bundle;
use crate::project::matrix;
use crate::project::workspace::Workspace;
use crate::util::cmd::Cmd;
use crate::util::report::seconds;

pub fn run(sh: &Shell, ws: &Workspace, rounds: u32, arch_name: &str) -> Result<()> {
    let arch = matrix::by_name(arch_name)
        .with_context(|| format!("--arch {arch_name:?} is not one of {}", matrix::names().join(", ")))?;
    let checkout = ws.target_dir.join("bench/source-checkout");
    let _ = std::fs::remove_dir_all(&checkout);
    let root = &ws.root;
    cmd!(sh, "git clone --quiet {root} {checkout}")
        .run()
        .context("cannot clone the checkout to build from")?;
    let source = checkout.join(
        binary_source(sh, ws)?.strip_prefix(root).context("the binary's source is outside the workspace")?,
    );
    let mut build = Cmd::new("docker").args(["buildx", "build", "--progress=plain"]);
    if let Some(ca) = ca_bundle() {
        build = build.arg("--secret").arg(format!("id=ca-bundle,src={ca}"));
    }
    let build = build
        .args(["--platform", &arch.platform.to_string(), "--build-arg", &format!("ARCH={}", arch.name)])
        .args(["--build-arg", &format!("IMAGE_FROM={}", arch.base_image), "--file"])
        .arg(checkout.join("docker/Dockerfile.source").to_string())
        .args(["--tag", "exotool-bench/source:latest", "--load", checkout.as_str()]);

    eprintln!("cold: no layer cache, cache mounts pruned: {build}");
    cmd!(sh, "docker builder prune --force --filter type=exec.cachemount").quiet().ignore_stdout().run()?;
    let (cold, _) = measure_output(sh, &build.clone().arg("--no-cache"))?;
    let (noop, _) = measure_output(sh, &build)?;
    let mut changed = Vec::new();
    let mut fetch_reused = true;
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}: a one-line change in {source}");
        append_line(&source, &format!("// bench round {round}\n"))?;
        let (figure, output) = measure_output(sh, &build)?;
        fetch_reused &= fetch_was_reused(&output);
        changed.push(figure);
    }
    let _ = std::fs::remove_dir_all(&checkout);
    print!("{}", table(arch.name, &cold, &noop, &changed, fetch_reused));
    Ok(())
}

fn append_line(path: &Utf8Path, line: &str) -> Result<()> {
    use std::io::Write;
    let mut file =
        std::fs::File::options().append(true).open(path).with_context(|| format!("cannot open {path}"))?;
    file.write_all(line.as_bytes()).with_context(|| format!("cannot write {path}"))
}

/// Whether the fetch stage's RUN (`cargo fetch`) came from the layer cache: in BuildKit's plain
/// progress a step is announced as `#N [fetch k/n] RUN ...` and, when reused, followed by `#N CACHED`.
fn fetch_was_reused(output: &str) -> bool {
    let runs: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("[fetch ") && line.contains("] RUN "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    !runs.is_empty() && runs.iter().all(|step| output.lines().any(|line| line == format!("{step} CACHED")))
}

/// The figures as a markdown table. Wall time only: the work happens in the Docker engine, not
/// in this process's children.
fn table(arch: &str, cold: &Figure, noop: &Figure, changed: &[Figure], fetch_reused: bool) -> String {
    let mut out = format!("\ndocker/Dockerfile.source, {arch}\n\n| build | wall |\n|---|---:|\n");
    let _ = writeln!(out, "| cold (--no-cache, cache mounts pruned) | {} |", seconds(cold.wall));
    let _ = writeln!(out, "| no change | {} |", seconds(noop.wall));
    if changed.is_empty() {
        return out;
    }
    let one_line = median(changed);
    let _ = writeln!(
        out,
        "| one-line change in the binary's source (median of {}) | {} |",
        changed.len(),
        seconds(one_line.wall)
    );
    let _ = writeln!(
        out,
        "\nfetch layer reused by every rebuild: {}; one-line change / cold = {:.2}",
        if fetch_reused { "yes" } else { "NO" },
        one_line.wall.as_secs_f64() / cold.wall.as_secs_f64()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fetch_layer_counts_as_reused_only_when_its_run_step_is_cached() {
        let cached = "#8 [fetch 3/4] COPY Cargo.toml ./\n#8 CACHED\n#9 [fetch 4/4] RUN set -eu; cargo fetch --locked\n#9 CACHED\n";
        assert!(fetch_was_reused(cached));
        let ran =
            "#9 [fetch 4/4] RUN set -eu; cargo fetch --locked\n#9 0.3 Downloading crates ...\n#9 DONE 4.1s\n";
        assert!(!fetch_was_reused(ran));
        assert!(!fetch_was_reused("#3 [compile 2/2] RUN cargo xtask dist\n#3 CACHED\n"));
    }
}
