//! `cargo xtask bench repo`: how long `repo` takes to add one release of every arch (both
//! formats) to a repository that already holds 20, and whether that time grows with what the
//! repository holds. The 20 earlier releases are made here, versions 0.0.1 to 0.0.20, by
//! packaging the dist folder's binaries again; the timed release is the dist folder itself,
//! added by the real command (verification included) to a fresh copy of that repository.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::{cmd, Shell};

use crate::commands::repo::{self, VerifiedDist};
use crate::project::matrix;
use crate::project::workspace::{Release, Workspace};
use crate::release::manifest::{DebPackage, Manifest, RpmPackage};
use crate::release::package::{self, PackageFiles, PackageInputs, PackageSpec};
use crate::release::{deb, rpm};
use crate::sign::openpgp::RepoKey;

/// How many releases the repository holds before the timed one.
const EARLIER: u32 = 20;
/// A throwaway key (no passphrase) that signs the benchmark's repositories.
const BENCH_KEY: &str = include_str!("../sign/testdata/test-repo-key.asc");

pub fn run(sh: &Shell, ws: &Workspace, dist_dir: &Utf8Path, manifest: &Manifest, rounds: u32) -> Result<()> {
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let packaged = manifest.artifacts.iter().filter(|a| a.deb.is_some() || a.rpm.is_some()).count();
    if packaged == 0 {
        bail!("{dist_dir} holds no .deb or .rpm: enable [deb] and [rpm] in release.toml and run `cargo xtask dist`");
    }
    let dir = ws.target_dir.join("bench/repo");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {dir}"))?;
    let key_path = dir.join("bench-key.asc");
    std::fs::write(&key_path, BENCH_KEY).with_context(|| format!("cannot write {key_path}"))?;
    let key = RepoKey::parse(BENCH_KEY, None)?;
    let suite = &ws.config.repo.suite;

    eprintln!("bench repo: packaging {EARLIER} earlier releases of {packaged} arches from {dist_dir}");
    let repo_dir = dir.join("repo");
    let mut growth = Vec::new();
    for number in 1..=EARLIER {
        let release = earlier_release(ws, dist_dir, manifest, &dir, number)?;
        let started = Instant::now();
        repo::add_verified(&repo_dir, suite, &[release], &key)?;
        growth.push(started.elapsed());
    }

    let xtask = std::env::current_exe().context("cannot find the xtask binary")?;
    let add = |into: &Utf8Path, seed: Option<&Utf8Path>| -> Result<Duration> {
        let _ = std::fs::remove_dir_all(into);
        if let Some(seed) = seed {
            cmd!(sh, "cp -a {seed} {into}").quiet().run()?;
        }
        let started = Instant::now();
        cmd!(sh, "{xtask} repo --from {dist_dir} --into {into} --repo-key {key_path}")
            .env_remove("REPO_KEY_PASSPHRASE")
            .quiet()
            .ignore_stdout()
            .run()?;
        Ok(started.elapsed())
    };
    let mut into_empty = Vec::new();
    let mut into_twenty = Vec::new();
    for _ in 0..rounds {
        into_empty.push(add(&dir.join("run-empty"), None)?);
        into_twenty.push(add(&dir.join("run-20"), Some(&repo_dir))?);
    }

    println!("| `repo` adds one release of {packaged} arches (.deb and .rpm) | median of {rounds} |");
    println!("|---|---|");
    println!("| to an empty repository (the command) | {} |", seconds(median(&mut into_empty)));
    println!(
        "| to a repository of {EARLIER} releases (the command) | {} |",
        seconds(median(&mut into_twenty))
    );
    println!("| the 1st release, in process | {} |", seconds(growth[0]));
    println!("| the 10th, in process | {} |", seconds(growth[9]));
    println!("| the 20th, in process | {} |", seconds(growth[EARLIER as usize - 1]));
    Ok(())
}

/// Release 0.0.`number`: the dist's binaries packaged again under that version, dated a day
/// apart, in `dir`/0.0.`number`.
fn earlier_release(
    ws: &Workspace,
    dist_dir: &Utf8Path,
    manifest: &Manifest,
    dir: &Utf8Path,
    number: u32,
) -> Result<VerifiedDist> {
    let version = format!("0.0.{number}");
    let out = dir.join(&version);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {out}"))?;
    let days_before = u64::from(EARLIER + 1 - number) * 86_400;
    let release = Release {
        name: manifest.name.clone(),
        version: version.clone(),
        commit: manifest.commit.clone(),
        source_date_epoch: manifest.source_date_epoch.saturating_sub(days_before),
    };
    let files = PackageFiles::read(&ws.root, &ws.config.deb)?;
    let facts = ws.project_facts();
    let inputs = PackageInputs {
        release: &release,
        config: &ws.config.deb,
        facts: &facts,
        binary: &ws.config.dist.binary,
        files: &files,
    };
    let mut earlier = manifest.clone();
    earlier.version = version;
    earlier.source_date_epoch = release.source_date_epoch;
    for artifact in earlier.artifacts.iter_mut().filter(|a| a.deb.is_some() || a.rpm.is_some()) {
        let arch =
            matrix::by_name(&artifact.arch).with_context(|| format!("unknown arch {}", artifact.arch))?;
        let binary =
            binary_of(dist_dir, artifact.deb.as_ref(), artifact.rpm.as_ref(), &ws.config.dist.binary)?;
        let spec = PackageSpec::new(&inputs, arch, &binary);
        if artifact.deb.is_some() {
            let (info, bytes) = deb::build(&spec)?;
            write(&out, &info.name, &bytes)?;
            artifact.deb = Some(info);
        }
        if artifact.rpm.is_some() {
            let (info, bytes) = rpm::build(&spec, &ws.config.rpm)?;
            write(&out, &info.name, &bytes)?;
            artifact.rpm = Some(info);
        }
    }
    Ok(VerifiedDist { dir: out, manifest: earlier })
}

/// The binary inside a package of the dist.
fn binary_of(
    dist_dir: &Utf8Path,
    deb: Option<&DebPackage>,
    rpm: Option<&RpmPackage>,
    binary: &str,
) -> Result<Vec<u8>> {
    let path = package::binary_path(binary);
    let read = |name: &str| -> Result<Vec<u8>> {
        let file = dist_dir.join(name);
        std::fs::read(&file).with_context(|| format!("cannot read {file}"))
    };
    match (deb, rpm) {
        (Some(deb), _) => deb::read_data_file(&read(&deb.name)?, &path),
        (None, Some(rpm)) => rpm::read_file(&read(&rpm.name)?, &path),
        (None, None) => bail!("no package holds the binary"),
    }
}

fn write(dir: &Utf8Path, name: &str, bytes: &[u8]) -> Result<Utf8PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {path}"))?;
    Ok(path)
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn seconds(time: Duration) -> String {
    format!("{:.2} s", time.as_secs_f64())
}
