//! `cargo xtask dist`: cross-compiles the configured arches, checks each binary (static ELF
//! for the right machine, runs on its CPU class), packs reproducible archives and writes the
//! checksums, manifest, Dockerfile.release and install.sh. The plan is computed first, printed,
//! and only then executed; `--dry-run` stops after printing.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::build::backend::{self, Backend, BackendRequest, BuildSpec, StdStatus};
use crate::build::elf::{self, machine_name};
use crate::build::run_check::RunCheck;
use crate::build::toolchain::Toolchain;
use crate::flags;
use crate::project::config::SmokeConfig;
use crate::project::matrix::{self, Arch};
use crate::project::workspace::{Release, Workspace};
use crate::release::archive::{self, ArchiveEntry};
use crate::release::checksum;
use crate::release::files;
use crate::release::manifest::{Artifact, BuiltWith, Manifest, MANIFEST_FILE};
use crate::release::sbom;
use crate::util::cmd::Cmd;
use crate::util::report::{human_size, seconds, short};
use crate::util::staging::Staging;

/// Everything `dist` will do, decided before anything is done.
#[derive(Debug)]
pub struct DistPlan {
    pub release: Release,
    pub out_dir: Utf8PathBuf,
    pub arches: Vec<ArchPlan>,
    /// The run check's scenario after `--version` (release.toml `dist.smoke`).
    pub smoke: Option<SmokeConfig>,
}

#[derive(Debug)]
pub struct ArchPlan {
    pub arch: &'static Arch,
    pub backend: Backend,
    /// None for a prebuilt binary.
    pub build: Option<Cmd>,
    /// Where cargo leaves the binary, or the prebuilt one.
    pub binary: Utf8PathBuf,
    pub run_check: RunCheck,
    pub archive_name: String,
    pub rustc: String,
    /// The Cargo package the binary comes from, for the SBOM.
    pub package: String,
}

impl flags::Dist {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let ws = Workspace::load(sh)?;
        let release = ws.release(sh)?;
        let arches = ws.config.select_arches(&self.arch, &self.target)?;
        let out_dir =
            crate::project::workspace::absolute(self.out.unwrap_or_else(|| ws.target_dir.join("dist")))?;
        let dirty = ws.uncommitted_changes(sh);
        if !dirty.is_empty() {
            eprintln!(
                "warning: {} tracked file(s) have uncommitted changes; the manifest's commit {} does not describe them",
                dirty.len(),
                short(&release.commit)
            );
        }

        let prebuilt = parse_prebuilt(&self.prebuilt, &arches)?;
        let mut toolchain = Toolchain::probe(sh, &ws.target_dir, &ws.config.toolchain)?;
        let backends = resolve_backends(
            sh,
            &toolchain,
            &arches,
            &prebuilt,
            self.backend,
            ws.package.needs_c_toolchain,
            self.dry_run,
        )?;
        prepare_tools(sh, &mut toolchain, &backends, self.dry_run)?;
        let plan = DistPlan::new(&ws, &toolchain, release, out_dir, &backends, &prebuilt);
        print!("{}", plan.render());
        if self.dry_run {
            return Ok(());
        }
        plan.execute(sh, &ws)
    }
}

/// `--prebuilt ARCH=PATH` values: binaries built elsewhere, checked and packed like our own.
pub fn parse_prebuilt(
    values: &[String],
    selected: &[&'static Arch],
) -> Result<Vec<(&'static Arch, Utf8PathBuf)>> {
    let mut prebuilt: Vec<(&'static Arch, Utf8PathBuf)> = Vec::new();
    for value in values {
        let Some((name, path)) = value.split_once('=') else {
            bail!("--prebuilt {value:?} is not ARCH=PATH (e.g. --prebuilt arm64v8=build/exonode)");
        };
        let Some(arch) = matrix::by_name(name) else {
            bail!(
                "--prebuilt {value:?}: {name:?} is not a known arch; accepted values: {}",
                matrix::names().join(", ")
            )
        };
        if !selected.contains(&arch) {
            let names: Vec<&str> = selected.iter().map(|a| a.name).collect();
            bail!(
                "--prebuilt {value:?}: this run does not build {name} (it builds {}); add --arch {name}",
                names.join(", ")
            );
        }
        if prebuilt.iter().any(|(a, _)| *a == arch) {
            bail!("--prebuilt names {name} twice");
        }
        let path = crate::project::workspace::absolute(Utf8PathBuf::from(path))?;
        if !path.is_file() {
            bail!("--prebuilt {value:?}: {path} is not a file");
        }
        prebuilt.push((arch, path));
    }
    Ok(prebuilt)
}

/// Picks each arch's backend, installing a missing target std with rustup first when that
/// is the way to get it. Side effects happen here, before planning, and never in a dry run.
fn resolve_backends(
    sh: &Shell,
    toolchain: &Toolchain,
    arches: &[&'static Arch],
    prebuilt: &[(&'static Arch, Utf8PathBuf)],
    request: BackendRequest,
    needs_c: bool,
    dry_run: bool,
) -> Result<Vec<(&'static Arch, Backend)>> {
    let mut resolved = Vec::new();
    for &arch in arches {
        if prebuilt.iter().any(|(a, _)| *a == arch) {
            resolved.push((arch, Backend::Prebuilt));
            continue;
        }
        let wants_std =
            matches!(request, BackendRequest::Auto | BackendRequest::Cargo | BackendRequest::Zigbuild);
        let std = if toolchain.default.has_std_for(arch.target) {
            StdStatus::Installed
        } else if !wants_std {
            StdStatus::Installable
        } else if !toolchain.rustup {
            StdStatus::Unavailable("rustup is not installed".into())
        } else if let Some(reason) = toolchain.remembered_std_failure(arch.target) {
            StdStatus::Unavailable(reason)
        } else if dry_run {
            eprintln!(
                "would fetch rust-std: rustup target add {} (nightly -Zbuild-std if rustup has none)",
                arch.target
            );
            StdStatus::Installable
        } else {
            match toolchain.add_target(sh, arch.target)? {
                Ok(()) => StdStatus::Installed,
                Err(reason) => {
                    eprintln!("{}: rustup cannot install rust-std for {} ({reason})", arch.name, arch.target);
                    toolchain.remember_std_failure(arch.target, &reason)?;
                    StdStatus::Unavailable(reason)
                }
            }
        };
        let backend = backend::choose(request, &std, needs_c, arch.target)
            .map_err(|e| anyhow::anyhow!("{}: {e}", arch.name))?;
        resolved.push((arch, backend));
    }
    Ok(resolved)
}

fn prepare_tools(
    sh: &Shell,
    toolchain: &mut Toolchain,
    backends: &[(&Arch, Backend)],
    dry_run: bool,
) -> Result<()> {
    let uses = |wanted: fn(Backend) -> bool| backends.iter().any(|(_, b)| wanted(*b));
    if uses(|b| b == Backend::BuildStd) {
        toolchain.ensure_nightly(sh, dry_run)?;
    }
    if uses(Backend::needs_zig) {
        toolchain.ensure_zig(sh, dry_run)?;
    }
    if uses(|b| b == Backend::Cross) {
        toolchain.ensure_cross(sh)?;
    }
    Ok(())
}

impl DistPlan {
    pub fn new(
        ws: &Workspace,
        toolchain: &Toolchain,
        release: Release,
        out_dir: Utf8PathBuf,
        backends: &[(&'static Arch, Backend)],
        prebuilt: &[(&'static Arch, Utf8PathBuf)],
    ) -> DistPlan {
        // Later prefixes win in rustc, so the target dir (inside the root) comes after it.
        let remaps = vec![
            (ws.root.clone(), "/src".to_string()),
            (ws.target_dir.clone(), "/target".to_string()),
            (toolchain.cargo_home.clone(), "/cargo".to_string()),
        ];
        let arches = backends
            .iter()
            .map(|&(arch, backend)| {
                let mut remaps = remaps.clone();
                if let (Backend::BuildStd, Some(nightly)) = (backend, &toolchain.nightly) {
                    remaps.push((nightly.rust_src(), "/rust".to_string()));
                }
                let spec = BuildSpec {
                    manifest_path: ws.root.join("Cargo.toml"),
                    package: ws.config.dist.package.clone(),
                    binary: ws.config.dist.binary.clone(),
                    target: arch.target.to_string(),
                    nightly: toolchain.nightly_name.clone(),
                    remaps,
                    zig_path: toolchain.zig.path_dirs(),
                    env: vec![
                        ("SOURCE_DATE_EPOCH".into(), release.source_date_epoch.to_string()),
                        ("GIT_COMMIT".into(), release.commit.clone()),
                    ],
                };
                let rustc = match (backend, &toolchain.nightly) {
                    (Backend::BuildStd, Some(nightly)) => nightly.rustc_version.clone(),
                    (Backend::BuildStd, None) => toolchain.nightly_name.clone(),
                    (Backend::Prebuilt, _) => "unknown (prebuilt)".to_string(),
                    _ => toolchain.default.rustc_version.clone(),
                };
                let binary = match prebuilt.iter().find(|(a, _)| *a == arch) {
                    Some((_, path)) => path.clone(),
                    None => ws.target_dir.join(arch.target).join("release").join(&ws.config.dist.binary),
                };
                ArchPlan {
                    arch,
                    backend,
                    build: backend::build_command(backend, &spec),
                    binary,
                    run_check: RunCheck::for_arch(arch),
                    archive_name: release.archive_name(arch.target),
                    rustc,
                    package: ws.config.dist.package.clone(),
                }
            })
            .collect();
        DistPlan { release, out_dir, arches, smoke: ws.config.dist.smoke.clone() }
    }

    pub fn render(&self) -> String {
        let r = &self.release;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "dist plan: {} {} from commit {} (source date {})",
            r.name,
            r.version,
            short(&r.commit),
            r.created()
        );
        let _ = writeln!(out, "output: {} (assembled aside, renamed into place when complete)", self.out_dir);
        for step in &self.arches {
            let arch = step.arch;
            let _ = writeln!(out, "  {:<8} {:<31} {}", arch.name, arch.target, step.backend);
            match &step.build {
                Some(build) => {
                    let _ = writeln!(out, "    build: {build}");
                }
                None => {
                    let _ = writeln!(out, "    build: none, packing {}", step.binary);
                }
            }
            let _ = writeln!(
                out,
                "    check: static {:?} {} ELF{}",
                arch.elf.class,
                machine_name(arch.elf.machine),
                match arch.elf.float_abi {
                    Some(abi) => format!(", {abi:?}-float ABI"),
                    None => String::new(),
                }
            );
            for line in step.run_check.describe(&step.binary, self.smoke.as_ref()) {
                let _ = writeln!(out, "    run:   {line}");
            }
            let _ = writeln!(out, "    pack:  {} (+ .sha256)", step.archive_name);
        }
        let _ = writeln!(
            out,
            "  then:  {MANIFEST_FILE}, {}, {}, {}",
            files::DOCKERFILE_RELEASE,
            files::INSTALL_SH,
            checksum::SUMS_FILE
        );
        out
    }

    fn execute(&self, sh: &Shell, ws: &Workspace) -> Result<()> {
        let staging = Staging::create(&self.out_dir, MANIFEST_FILE)?;
        let includes = read_includes(ws)?;
        let total = self.arches.len();
        let mut artifacts = Vec::new();
        let mut rows = Vec::new();
        for (index, step) in self.arches.iter().enumerate() {
            let started = Instant::now();
            let doing = if step.build.is_some() { "building" } else { "checking" };
            eprintln!(
                "[{}/{total}] {}: {doing} {} with {}",
                index + 1,
                step.arch.name,
                step.arch.target,
                step.backend
            );
            let (artifact, ran_on) = build_one(sh, step, self, &includes, &staging.dir)
                .with_context(|| format!("{} ({}) failed", step.arch.name, step.arch.target))?;
            let elapsed = started.elapsed();
            eprintln!(
                "[{}/{total}] {}: {} ({}), sha256 {} in {}",
                index + 1,
                step.arch.name,
                artifact.name,
                human_size(artifact.size),
                &artifact.sha256[..12],
                seconds(elapsed)
            );
            rows.push(SummaryRow {
                arch: step.arch.name,
                target: step.arch.target,
                backend: step.backend,
                size: artifact.size,
                binary_size: artifact.binary.size,
                sha256: artifact.sha256.clone(),
                elapsed,
                ran_on,
            });
            artifacts.push(artifact);
        }
        let manifest = Manifest::new(&self.release, artifacts);
        files::write_all(&staging.dir, &manifest, &ws.config, &ws.project_facts())?;
        let dest = staging.commit()?;
        print!("{}", summary_table(&rows));
        let archives =
            if rows.len() == 1 { "1 archive".to_string() } else { format!("{} archives", rows.len()) };
        println!(
            "wrote {archives}, {}, {MANIFEST_FILE}, {}, {} to {dest}",
            checksum::SUMS_FILE,
            files::DOCKERFILE_RELEASE,
            files::INSTALL_SH
        );
        Ok(())
    }
}

fn read_includes(ws: &Workspace) -> Result<Vec<ArchiveEntry>> {
    ws.config
        .dist
        .include
        .iter()
        .map(|path| {
            let full = ws.root.join(path);
            let contents = std::fs::read(&full).with_context(|| {
                format!("dist.include names {path}, which cannot be read ({full}); fix release.toml")
            })?;
            let name =
                path.file_name().with_context(|| format!("dist.include entry {path} has no file name"))?;
            Ok(ArchiveEntry { path: name.to_string(), contents, executable: false })
        })
        .collect()
}

/// Builds, checks and packs one arch into `out`. Returns its manifest entry and where it ran.
fn build_one(
    sh: &Shell,
    step: &ArchPlan,
    plan: &DistPlan,
    includes: &[ArchiveEntry],
    out: &Utf8Path,
) -> Result<(Artifact, String)> {
    let release = &plan.release;
    if let Some(build) = &step.build {
        build.run(sh).context("the build failed (its output is above)")?;
    }
    let binary = std::fs::read(&step.binary)
        .with_context(|| format!("the build left no binary at {}", step.binary))?;
    let facts = elf::inspect(&binary).with_context(|| format!("cannot read {} as ELF", step.binary))?;
    elf::check(step.arch, &facts).with_context(|| format!("refusing {}", step.binary))?;
    let ran_on = step.run_check.run(sh, &step.binary, plan.smoke.as_ref())?;

    let stem = release.archive_stem(step.arch.target);
    let mut entries = includes.to_vec();
    entries.push(ArchiveEntry { path: release.name.clone(), contents: binary.clone(), executable: true });
    let bytes = archive::tar_gz(&stem, &entries, release.source_date_epoch)?;
    let built_with = BuiltWith { backend: step.backend.id().to_string(), rustc: step.rustc.clone() };
    let artifact = Artifact::packed(release, step.arch, &bytes, &binary, built_with);
    let archive_path = out.join(&artifact.name);
    std::fs::write(&archive_path, &bytes).with_context(|| format!("cannot write {archive_path}"))?;
    checksum::write_sidecar(out, &artifact.name, &artifact.sha256)?;
    let facts = sbom::Facts {
        release,
        target: step.arch.target,
        rustc: &step.rustc,
        archive_name: &step.archive_name,
        package: &step.package,
    };
    sbom::write(sh, &facts, out)?;
    Ok((artifact, ran_on))
}

struct SummaryRow {
    arch: &'static str,
    target: &'static str,
    backend: Backend,
    size: u64,
    binary_size: u64,
    sha256: String,
    elapsed: Duration,
    ran_on: String,
}

fn summary_table(rows: &[SummaryRow]) -> String {
    let mut out = format!(
        "\n{:<8} {:<31} {:<10} {:>9} {:>9} {:<13} {:>7}  {}\n",
        "ARCH", "TARGET", "BACKEND", "ARCHIVE", "BINARY", "SHA256", "TIME", "RAN ON"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<8} {:<31} {:<10} {:>9} {:>9} {:<13} {:>7}  {}",
            row.arch,
            row.target,
            row.backend.id(),
            human_size(row.size),
            human_size(row.binary_size),
            format!("{}…", &row.sha256[..12]),
            seconds(row.elapsed),
            row.ran_on
        );
    }
    out
}
