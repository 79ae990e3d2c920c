//! `cargo xtask bench`: throughput figures for docs/benchmarks.md, measured against the
//! standard tools on the same files. Benchmarks print numbers; they never pass or fail.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::{cmd, Shell};

use crate::flags::{self, BenchWhat};
use crate::project::workspace::Workspace;
use crate::release::archive::{self, ArchiveEntry};
use crate::release::checksum;
use crate::release::dist_dir::DistDir;
use crate::release::layout;
use crate::release::manifest::Manifest;

impl flags::Bench {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let ws = Workspace::load(sh)?;
        match self.what {
            BenchWhat::Source => crate::commands::bench_source::run(sh, &ws, self.rounds, &self.arch),
            BenchWhat::Rebuild => crate::commands::bench_rebuild::run(sh, &ws, self.rounds, self.cold),
            BenchWhat::Dist => {
                let (dist_dir, manifest) = read_dist(&ws, self.dist_dir)?;
                bench_dist(sh, &ws, &dist_dir, &manifest, self.rounds)
            }
            BenchWhat::Repo => {
                let (dist_dir, manifest) = read_dist(&ws, self.dist_dir)?;
                crate::commands::bench_repo::run(sh, &ws, &dist_dir, &manifest, self.rounds)
            }
            BenchWhat::Image => {
                let (dist_dir, manifest) = read_dist(&ws, self.dist_dir)?;
                crate::commands::bench_image::run(sh, &ws, &dist_dir, &manifest, self.rounds)
            }
        }
    }
}

/// The dist folder whose files are measured, and its manifest.
fn read_dist(ws: &Workspace, dist_dir: Option<Utf8PathBuf>) -> Result<(Utf8PathBuf, Manifest)> {
    let dist_dir = DistDir::chosen(ws, dist_dir)?;
    let manifest = dist_dir.read_manifest().with_context(|| {
        format!("benchmarks need a dist folder: run `cargo xtask dist --out {dist_dir}` first")
    })?;
    Ok((dist_dir.path().to_path_buf(), manifest))
}

/// The files `dist` hashes and packs: each arch's binary plus the included docs.
struct Sample {
    dir: Utf8PathBuf,
    archives: Vec<(String, Vec<ArchiveEntry>)>,
    files: Vec<Utf8PathBuf>,
    bytes: u64,
}

fn unpack_sample(sh: &Shell, ws: &Workspace, dist_dir: &Utf8Path, manifest: &Manifest) -> Result<Sample> {
    let dir = ws.target_dir.join("bench/dist");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut archives = Vec::new();
    let mut files = Vec::new();
    for artifact in &manifest.artifacts {
        let archive = dist_dir.join(&artifact.name);
        cmd!(sh, "tar -xzf {archive} -C {dir}").quiet().run()?;
        let stem = artifact.name.trim_end_matches(layout::ARCHIVE_SUFFIX).to_string();
        let mut entries = Vec::new();
        for entry in dir.join(&stem).read_dir_utf8()? {
            let entry = entry?;
            let contents = std::fs::read(entry.path())?;
            entries.push(ArchiveEntry {
                path: entry.file_name().to_string(),
                executable: entry.file_name() == manifest.name,
                contents,
            });
            files.push(entry.path().to_path_buf());
        }
        archives.push((stem, entries));
    }
    let bytes = files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum();
    Ok(Sample { dir, archives, files, bytes })
}

fn timed(rounds: u32, mut work: impl FnMut() -> Result<()>) -> Result<Duration> {
    let started = Instant::now();
    for _ in 0..rounds {
        work()?;
    }
    Ok(started.elapsed())
}

fn mib_per_s(bytes: u64, rounds: u32, elapsed: Duration) -> String {
    format!("{:.0}", (bytes * u64::from(rounds)) as f64 / (1u64 << 20) as f64 / elapsed.as_secs_f64())
}

fn bench_dist(
    sh: &Shell,
    ws: &Workspace,
    dist_dir: &Utf8Path,
    manifest: &Manifest,
    rounds: u32,
) -> Result<()> {
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let sample = unpack_sample(sh, ws, dist_dir, manifest)?;
    let files: Vec<&str> = sample.files.iter().map(|f| f.as_str()).collect();
    eprintln!(
        "sample: {} files, {} bytes ({} arches), {rounds} rounds",
        files.len(),
        sample.bytes,
        sample.archives.len()
    );

    let ours_hash = timed(rounds, || {
        for file in &sample.files {
            checksum::sha256_file(file)?;
        }
        Ok(())
    })?;
    let coreutils_hash = timed(rounds, || {
        let files = &files;
        Ok(cmd!(sh, "sha256sum {files...}").quiet().ignore_stdout().run()?)
    })?;

    let mtime = manifest.source_date_epoch;
    let ours_pack = timed(rounds, || {
        for (stem, entries) in &sample.archives {
            archive::tar_gz(stem, entries, mtime)?;
        }
        Ok(())
    })?;
    let dir = &sample.dir;
    let stems: Vec<&str> = sample.archives.iter().map(|(stem, _)| stem.as_str()).collect();
    let out = ws.target_dir.join("bench/out.tar.gz");
    let tar_default = timed(rounds, || {
        for stem in &stems {
            cmd!(sh, "tar czf {out} -C {dir} {stem}").quiet().run()?;
        }
        Ok(())
    })?;
    let mtime_arg = format!("--mtime=@{mtime}");
    let tar_reproducible = timed(rounds, || {
        for stem in &stems {
            let script = "tar --sort=name --owner=0 --group=0 --numeric-owner \"$1\" -cf - -C \"$2\" \"$3\" | gzip -n -9 > \"$4\"";
            cmd!(sh, "sh -c {script} sh {mtime_arg} {dir} {stem} {out}").quiet().run()?;
        }
        Ok(())
    })?;

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| work ({:.2} MiB per round, {rounds} rounds) | tool | ms per round | MiB/s |",
        sample.bytes as f64 / (1u64 << 20) as f64
    );
    let _ = writeln!(table, "|---|---|---:|---:|");
    let rows = [
        ("SHA-256 of every binary and doc", "xtask (sha2)", ours_hash),
        ("SHA-256 of every binary and doc", "sha256sum (coreutils)", coreutils_hash),
        ("pack every archive, gzip -9, reproducible", "xtask (tar + flate2)", ours_pack),
        ("pack every archive, gzip -6, not reproducible", "tar czf", tar_default),
        ("pack every archive, gzip -9, reproducible", "tar --sort=name ... \\| gzip -n -9", tar_reproducible),
    ];
    for (work, tool, elapsed) in rows {
        let per_round = elapsed.as_secs_f64() * 1000.0 / f64::from(rounds);
        let _ = writeln!(
            table,
            "| {work} | {tool} | {per_round:.1} | {} |",
            mib_per_s(sample.bytes, rounds, elapsed)
        );
    }
    print!("{table}");
    Ok(())
}
