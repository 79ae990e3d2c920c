//! `cargo xtask dist`: cross-compiles the configured arches, checks each binary (static ELF
//! for the right machine, runs on its CPU class), packs reproducible archives and writes the
//! checksums, manifest, Dockerfile.release and install.sh. One plan is made first, from every
//! input read up front, and printed; a run executes that plan, step by step, and nothing else;
//! `--dry-run` stops after printing.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::build::backend::{self, Backend, BackendRequest, BuildSpec};
use crate::build::cross::CrossTools;
use crate::build::elf::{self, machine_name};
use crate::build::fingerprint::{self, Record};
use crate::build::run_check::RunCheck;
use crate::build::tool_steps::{ToolPlan, When};
use crate::build::toolchain::Toolchain;
use crate::flags;
use crate::project::builder_spec::{self, BuilderSpec};
use crate::project::cargo_metadata::Metadata;
use crate::project::config::{Config, DebConfig, RpmConfig, RunCheckPolicy, SmokeConfig};
use crate::project::matrix::{self, Arch};
use crate::project::workspace::{ProjectFacts, Release, Workspace};
use crate::release::archive::{self, ArchiveEntry};
use crate::release::checksum;
use crate::release::deb;
use crate::release::dist_dir::DistDir;
use crate::release::dist_signing;
use crate::release::files;
use crate::release::layout::{
    self, DOCKERFILE_RELEASE, INSTALL_SH, MANIFEST_FILE, PROVENANCE_FILE, SHARED_FILES, SIDECAR_SUFFIX,
    SUMS_FILE,
};
use crate::release::manifest::{Artifact, BuiltWith, DebPackage, Manifest, RpmPackage, RUN_CHECK_SKIPPED};
use crate::release::package::{self, PackageFiles, PackageInputs, PackageSpec};
use crate::release::rpm;
use crate::release::{provenance, sbom};
use crate::sign::Signing;
use crate::util::cmd::Cmd;
use crate::util::interrupt;
use crate::util::pool;
use crate::util::progress::{self, Progress, RowLog};
use crate::util::report::{human_size, seconds, short};
use crate::util::staging::Staging;

/// Everything `dist` will do, decided before anything is done, from inputs read up front:
/// `--dry-run` prints it; a run executes it, reading nothing else. Its steps, in order: the
/// toolchain's (`tools`), then each arch's (`ArchPlan::steps`, `jobs` arches at once), then
/// the files written over all archives (`ThenStep`).
pub struct DistPlan {
    pub release: Release,
    pub out_dir: Utf8PathBuf,
    /// What is fetched first, and which backend each arch gets.
    pub tools: ToolPlan,
    pub arches: Vec<ArchPlan>,
    /// The run check's scenario after `--version` (release.toml `dist.smoke`).
    pub smoke: Option<SmokeConfig>,
    /// Arches worked on at once.
    pub jobs: usize,
    /// The pinned toolchains, as the plan states them.
    pub pins: String,
    /// `[deb]`, when packages are enabled.
    pub deb: Option<DebConfig>,
    /// `[rpm]`, when rpm packages are enabled.
    pub rpm: Option<RpmConfig>,
    pub binary_name: String,
    pub inputs: DistInputs,
    pub signing: Signing,
    /// The tools as probed; the toolchain steps install into it (a nightly's version is known
    /// once it is installed, for the manifest).
    toolchain: Toolchain,
}

/// The files and facts a dist is made from besides the binaries, read before the plan.
pub struct DistInputs {
    pub config: Config,
    pub facts: ProjectFacts,
    /// release.toml's `dist.include`, packed into every archive.
    pub includes: Vec<ArchiveEntry>,
    /// The packages' unit and defaults files (`[deb]`'s), when `[deb]` or `[rpm]` is enabled.
    pub deb_files: Option<PackageFiles>,
    /// The digests the provenance names.
    pub provenance: provenance::Inputs,
}

impl DistInputs {
    /// Reads them all: a missing file fails now, not after the builds.
    pub fn read(ws: &Workspace) -> Result<DistInputs> {
        Ok(DistInputs {
            config: ws.config.clone(),
            facts: ws.project_facts(),
            includes: read_includes(ws)?,
            deb_files: (ws.config.deb.enabled || ws.config.rpm.enabled)
                .then(|| PackageFiles::read(&ws.root, &ws.config.deb))
                .transpose()?,
            provenance: provenance::Inputs::read(&ws.root)?,
        })
    }
}

pub struct ArchPlan {
    pub arch: &'static Arch,
    pub build: ArchBuild,
    /// What is built instead if `rustup target add` (a toolchain step) fails.
    pub if_rustup_refuses: Option<ArchBuild>,
    pub run_check: RunCheck,
    pub archive_name: String,
    /// The Cargo package the binary comes from, for the SBOM.
    pub package: String,
    /// The `cargo metadata` whose dependency graph the SBOM lists.
    pub sbom: SbomSource,
    /// The Debian package made beside the archive, if any.
    pub deb_name: Option<String>,
    /// The rpm package made beside the archive, if any.
    pub rpm_name: Option<String>,
}

/// One arch's steps, walked in this order by its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchStep {
    /// Run the build command.
    Build,
    /// The build's record says its inputs are unchanged: cargo is not run.
    UpToDate,
    /// The ELF check.
    Check,
    /// The run check on the arch's CPU class (skipped with a warning where it cannot run).
    Run,
    /// The archive and its `.sha256`.
    Pack,
    Sbom,
    Deb,
    Rpm,
}

/// What follows once every arch is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThenStep {
    /// Manifest, Dockerfile.release, install.sh, provenance, SHA256SUMS (signed with a key).
    Files,
    /// What signing does once the files are written (keyless: cosign).
    Sign,
    /// The staged folder renamed into place.
    Rename,
}

const THEN: [ThenStep; 3] = [ThenStep::Files, ThenStep::Sign, ThenStep::Rename];

impl ArchStep {
    fn id(self, arch: &Arch) -> String {
        let what = match self {
            ArchStep::Build => "build",
            ArchStep::UpToDate => "up-to-date",
            ArchStep::Check => "check",
            ArchStep::Run => "run",
            ArchStep::Pack => "pack",
            ArchStep::Sbom => "sbom",
            ArchStep::Deb => "deb",
            ArchStep::Rpm => "rpm",
        };
        format!("{}:{what}", arch.name)
    }
}

impl ThenStep {
    fn id(self) -> &'static str {
        match self {
            ThenStep::Files => "then:files",
            ThenStep::Sign => "then:sign",
            ThenStep::Rename => "then:rename",
        }
    }
}

/// How one arch's binary comes to be.
#[derive(Debug)]
pub struct ArchBuild {
    pub backend: Backend,
    /// None for a prebuilt binary.
    pub command: Option<Cmd>,
    /// Where cargo leaves the binary, or the prebuilt one.
    pub binary: Utf8PathBuf,
    /// What tells the build is up to date; None where it always runs (in a container) or
    /// nothing is built.
    pub record: Option<Record>,
    /// The record matched when the plan was made: the command is not run.
    pub up_to_date: bool,
}

/// Where an arch's SBOM graph comes from: `cargo metadata`, or its output kept from an
/// earlier run whose inputs (manifests, Cargo.lock, toolchain, environment) are unchanged.
#[derive(Debug)]
pub struct SbomSource {
    pub command: Cmd,
    pub kept: Utf8PathBuf,
    pub record: Record,
    pub up_to_date: bool,
}

/// The files every build and `cargo metadata` read besides the sources: a change to any of
/// them makes a build (and the kept metadata) out of date.
fn manifest_inputs(ws: &Workspace, toolchain: &Toolchain) -> Vec<Utf8PathBuf> {
    let mut files: Vec<Utf8PathBuf> =
        ["Cargo.lock", "Cargo.toml", "rust-toolchain.toml", ".cargo/config.toml"]
            .iter()
            .map(|name| ws.root.join(name))
            .collect();
    files.extend(ws.members.iter().map(|member| ws.root.join(&member.manifest)));
    files.push(toolchain.cargo_home.join("config.toml"));
    files
}

impl SbomSource {
    fn new(ws: &Workspace, toolchain: &Toolchain, arch: &Arch) -> SbomSource {
        let command = Metadata::command(&ws.root.join("Cargo.toml"), Some(arch.target));
        let kept = build_dir(&ws.target_dir, arch).join("sbom-metadata.json");
        // PATH is left out: it only picks cargo, which the toolchain's identity names.
        let mut key = vec![command.to_string(), toolchain.identity(false).unwrap_or_default()];
        key.extend(fingerprint::cargo_environment());
        let record = Record::new(format!("{kept}.inputs").into(), &key, manifest_inputs(ws, toolchain))
            .with_output(kept.clone());
        let up_to_date = record.is_up_to_date();
        SbomSource { command, kept, record, up_to_date }
    }
}

impl ArchBuild {
    fn new(
        ws: &Workspace,
        toolchain: &Toolchain,
        release: &Release,
        request: &DistRequest,
        arch: &'static Arch,
        backend: Backend,
    ) -> ArchBuild {
        let target_dir = build_dir(&ws.target_dir, arch);
        // Later prefixes win in rustc, so the target dir (inside the root) comes after it.
        let mut remaps = vec![
            (ws.root.clone(), "/src".to_string()),
            (target_dir.clone(), "/target".to_string()),
            (toolchain.cargo_home.clone(), "/cargo".to_string()),
        ];
        if backend == Backend::BuildStd {
            remaps.push((toolchain.nightly_sysroot().join("lib/rustlib/src/rust"), "/rust".to_string()));
        } else if backend == Backend::CrossBuildStd {
            remaps.push((
                builder_spec::rust_src(&toolchain.nightly_name, &toolchain.host),
                "/rust".to_string(),
            ));
        } else if let Some(commit) = &toolchain.default.commit_hash {
            // With rust-src installed, rustc turns std's `/rustc/<commit>` paths back into this
            // machine's rustup folder, and they end up in the binary: map them back, so the
            // bytes do not depend on whether rust-src is installed.
            remaps.push((toolchain.default.rust_src(), format!("/rustc/{commit}")));
            if let (Backend::Cross, Some(stable)) = (backend, &toolchain.stable_name) {
                remaps.push((builder_spec::rust_src(stable, &toolchain.host), format!("/rustc/{commit}")));
            }
        }
        let spec = BuildSpec {
            manifest_path: ws.root.join("Cargo.toml"),
            package: ws.config.dist.package.clone(),
            binary: ws.config.dist.binary.clone(),
            target: arch.target.to_string(),
            target_dir: target_dir.clone(),
            nightly: toolchain.nightly_name.clone(),
            remaps,
            zig_path: toolchain.zig.path_dirs(),
            env: vec![
                ("SOURCE_DATE_EPOCH".into(), release.source_date_epoch.to_string()),
                ("GIT_COMMIT".into(), release.commit.clone()),
            ],
            cross: toolchain.cross.clone(),
        };
        let binary = match request.prebuilt.iter().find(|(a, _)| *a == arch) {
            Some((_, path)) => path.clone(),
            None => target_dir.join(arch.target).join("release").join(&ws.config.dist.binary),
        };
        let command = backend::build_command(backend, &spec);
        let record =
            command.as_ref().and_then(|command| build_record(ws, toolchain, backend, command, &binary));
        let up_to_date = record.as_ref().is_some_and(Record::is_up_to_date);
        ArchBuild { backend, command, binary, record, up_to_date }
    }

    /// The plan's words for the build command.
    fn describe(&self) -> Option<String> {
        let command = self.command.as_ref()?;
        Some(if self.up_to_date { format!("up to date, not run: {command}") } else { command.to_string() })
    }
}

/// The record beside `binary` of what built it: the command (its env holds the commit and
/// source date), the compiler, the environment cargo reads, the manifests and cargo's
/// dep-info. None for the cross backends, whose compiler is inside an image.
fn build_record(
    ws: &Workspace,
    toolchain: &Toolchain,
    backend: Backend,
    command: &Cmd,
    binary: &Utf8Path,
) -> Option<Record> {
    if backend.is_cross() {
        return None;
    }
    let mut key = vec![command.to_string(), toolchain.identity(backend.builds_std())?];
    key.extend(fingerprint::build_environment());
    let record = Record::new(format!("{binary}.dist-inputs").into(), &key, manifest_inputs(ws, toolchain))
        .with_dep_info(format!("{binary}.d").into())
        .with_output(binary.to_path_buf());
    Some(record)
}

fn pins(toolchain: &Toolchain) -> String {
    let stable = match &toolchain.stable_name {
        Some(pin) => format!("Rust {pin} (rust-toolchain.toml)"),
        None => format!("no rust-toolchain.toml, so {}", toolchain.default.rustc_version),
    };
    let pins = format!(
        "{stable}, {} for build-std, zig {} and cargo-zigbuild {} (release.toml)",
        toolchain.nightly_name, toolchain.zig.zig_version, toolchain.zig.zigbuild_version
    );
    match (&toolchain.cross, &toolchain.builder_image) {
        (Some(cross), _) => format!("{pins}; cross {} in the builder image {}", cross.version, cross.image),
        (None, Some(image)) => format!("{pins}; in the builder image {image}"),
        (None, None) => pins,
    }
}

/// What the manifest and SBOM record of how `backend` builds: the compiler and every pin.
fn built_with(toolchain: &Toolchain, backend: Backend) -> BuiltWith {
    let stable = toolchain.stable_name.clone().unwrap_or_else(|| "default".to_string());
    let (rustc, pin) = match (backend, &toolchain.nightly) {
        (Backend::BuildStd | Backend::CrossBuildStd, Some(nightly)) => {
            (nightly.rustc_version.clone(), toolchain.nightly_name.clone())
        }
        (Backend::BuildStd | Backend::CrossBuildStd, None) => {
            (toolchain.nightly_name.clone(), toolchain.nightly_name.clone())
        }
        (Backend::Prebuilt, _) => ("unknown (prebuilt)".to_string(), "unknown (prebuilt)".to_string()),
        _ => (toolchain.default.rustc_version.clone(), stable),
    };
    let zig = &toolchain.zig;
    let links_with_zig = backend.needs_zig() || backend == Backend::CrossBuildStd;
    let image = match (&toolchain.cross, backend) {
        (_, Backend::Prebuilt) => None,
        (Some(cross), backend) if backend.is_cross() => Some(cross.image.clone()),
        _ => toolchain.builder_image.clone(),
    };
    BuiltWith {
        backend: backend.id().to_string(),
        rustc,
        toolchain: pin,
        zig: links_with_zig.then(|| zig.zig_version.clone()),
        cargo_zigbuild: links_with_zig.then(|| zig.zigbuild_version.clone()),
        image,
    }
}

impl flags::Dist {
    pub fn run(self, sh: &Shell) -> Result<()> {
        progress::set_verbose(self.verbose);
        let ws = Workspace::load(sh)?;
        let release = ws.release(sh)?;
        let arches = ws.config.select_arches(&self.arch, &self.target)?;
        let request = DistRequest {
            prebuilt: parse_prebuilt(&self.prebuilt, &arches)?,
            arches,
            out: DistDir::chosen(&ws, self.out)?,
            backend: self.backend,
            jobs: self.jobs.map_or_else(default_jobs, |n| n as usize),
            dry_run: self.dry_run,
            sign_key: self.sign.sign_key,
            keyless: self.sign.keyless,
            allow_unrun: self.allow_unrun,
        };
        run(sh, &ws, release, &request)
    }
}

/// What a dist run is asked to do, resolved from flags (or by `image`, which needs a dist).
pub struct DistRequest {
    pub arches: Vec<&'static Arch>,
    pub prebuilt: Vec<(&'static Arch, Utf8PathBuf)>,
    pub out: DistDir,
    pub backend: BackendRequest,
    pub jobs: usize,
    pub dry_run: bool,
    /// `--sign-key`: signs SHA256SUMS instead of release.toml's `[sign]` key.
    pub sign_key: Option<Utf8PathBuf>,
    /// `--keyless`: cosign signs SHA256SUMS with Sigstore's OIDC flow instead of a key.
    pub keyless: bool,
    /// `--allow-unrun`: a binary no emulator here can start is packed anyway, saying so.
    pub allow_unrun: bool,
}

impl DistRequest {
    /// Build `arches` into `out` the default way.
    pub fn new(arches: &[&'static Arch], out: &DistDir, dry_run: bool) -> DistRequest {
        DistRequest {
            arches: arches.to_vec(),
            prebuilt: Vec::new(),
            out: out.clone(),
            backend: BackendRequest::Auto,
            jobs: default_jobs(),
            dry_run,
            sign_key: None,
            keyless: false,
            allow_unrun: false,
        }
    }
}

/// Plans, prints the plan, and (unless a dry run) executes it.
pub fn run(sh: &Shell, ws: &Workspace, release: Release, request: &DistRequest) -> Result<()> {
    let dirty = ws.uncommitted_changes(sh);
    if !dirty.is_empty() {
        eprintln!(
            "warning: {} tracked file(s) have uncommitted changes; the manifest's commit {} does not describe them",
            dirty.len(),
            short(&release.commit)
        );
    }
    // Every file is read now: a missing unit or include fails before the builds, not after.
    let inputs = DistInputs::read(ws)?;
    // The key is read first: a wrong password fails in a second, not after the builds.
    let signing = Signing::resolve(
        &ws.root,
        &ws.config.sign,
        request.sign_key.as_deref(),
        request.keyless,
        request.dry_run,
    )?;
    let mut toolchain = Toolchain::probe(sh, &ws.target_dir, &ws.config.toolchain)?;
    if request.backend == BackendRequest::Cross {
        toolchain.cross = Some(cross_tools(ws, &toolchain)?);
    }
    let plan = DistPlan::new(ws, toolchain, release, request, inputs, signing)?;
    if request.dry_run || progress::verbose() {
        print!("{}", plan.render());
    } else {
        print!("{}", plan.headline());
    }
    let steps = StepRecord::from_env()?;
    if request.dry_run {
        steps.planned(&plan);
        return Ok(());
    }
    plan.execute(sh, &steps)
}

/// `EXOTOOL_RECORD_STEPS=FILE`: a run appends the id of each step as it starts it, a dry run
/// the ids of the steps it plans, so a test can hold the two side by side.
pub const RECORD_STEPS_ENV: &str = "EXOTOOL_RECORD_STEPS";

struct StepRecord {
    file: Option<Mutex<std::fs::File>>,
}

impl StepRecord {
    fn from_env() -> Result<StepRecord> {
        let Some(path) = std::env::var_os(RECORD_STEPS_ENV).filter(|p| !p.is_empty()) else {
            return Ok(StepRecord { file: None });
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {RECORD_STEPS_ENV}={}", path.to_string_lossy()))?;
        Ok(StepRecord { file: Some(Mutex::new(file)) })
    }

    fn record(&self, id: &str) {
        if let Some(file) = &self.file {
            let _ = writeln!(file.lock().expect("not poisoned"), "{id}");
        }
    }

    /// The plan's steps, as a run that rustup refuses nothing would record them; a step that
    /// runs only if rustup refuses a target is marked so.
    fn planned(&self, plan: &DistPlan) {
        for step in &plan.tools.steps {
            match &step.when {
                When::Always => self.record(&step.id()),
                When::IfRustupRefuses(_) => self.record(&format!("{} (if rustup refuses)", step.id())),
            }
        }
        for step in &plan.arches {
            for what in step.steps(&step.build) {
                self.record(&what.id(step.arch));
            }
        }
        THEN.iter().for_each(|then| self.record(then.id()));
    }
}

/// cross at its pinned version, and the builder image it runs every build in.
fn cross_tools(ws: &Workspace, toolchain: &Toolchain) -> Result<CrossTools> {
    let builder = BuilderSpec::new(ws).context("--backend cross builds in the builder image")?;
    Ok(CrossTools::new(
        toolchain.tools_dir(),
        &ws.config.toolchain.cross,
        builder.image(),
        builder.zig_dir(),
        &builder.zig,
        ws.root.join("Cargo.toml"),
    ))
}

/// A release must start every binary on its CPU class; where nothing here can, it stops now,
/// before anything is built, unless `--allow-unrun` or `dist.run-check = "optional"` says to
/// pack those binaries unrun.
fn refuse_unrunnable(arches: &[ArchPlan], policy: RunCheckPolicy, allow_unrun: bool) -> Result<()> {
    if allow_unrun || policy == RunCheckPolicy::Optional {
        return Ok(());
    }
    let unrunnable: Vec<(&str, &str)> = arches
        .iter()
        .filter_map(|step| match &step.run_check {
            RunCheck::Unavailable(why) => Some((step.arch.name, why.as_str())),
            RunCheck::Run { .. } => None,
        })
        .collect();
    let Some((_, why)) = unrunnable.first() else { return Ok(()) };
    let names: Vec<&str> = unrunnable.iter().map(|(name, _)| *name).collect();
    bail!(
        "the run check cannot start {} on {} CPU here: {why}, or pass --allow-unrun (or set \
         dist.run-check = \"optional\" in release.toml) to pack {} without starting {}",
        names.join(", "),
        if names.len() == 1 { "its" } else { "their" },
        if names.len() == 1 { "it" } else { "them" },
        if names.len() == 1 { "it" } else { "them" },
    )
}

/// Cargo's target dir for one arch. Builds sharing one would wait for each other on cargo's
/// lock of the host artifact folder; remapped to /target, the folder leaves no trace in the binary.
pub fn build_dir(target_dir: &Utf8Path, arch: &Arch) -> Utf8PathBuf {
    target_dir.join("dist-build").join(arch.name)
}

/// One arch per CPU: a build's own parallelism fades in its single-threaded link (fat LTO).
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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

impl DistPlan {
    /// The one plan: the toolchain steps and every arch's, from what `toolchain` found and the
    /// records of earlier builds (read, never written, here).
    pub fn new(
        ws: &Workspace,
        toolchain: Toolchain,
        release: Release,
        request: &DistRequest,
        inputs: DistInputs,
        signing: Signing,
    ) -> Result<DistPlan> {
        let prebuilt: Vec<&'static Arch> = request.prebuilt.iter().map(|(arch, _)| *arch).collect();
        let tools = ToolPlan::new(
            &toolchain,
            &request.arches,
            &prebuilt,
            request.backend,
            ws.package.needs_c_toolchain,
        )?;
        let arches = tools
            .choices
            .iter()
            .map(|(arch, choice)| {
                let how = |backend| ArchBuild::new(ws, &toolchain, &release, request, arch, backend);
                ArchPlan {
                    arch,
                    build: how(choice.backend()),
                    if_rustup_refuses: choice.fallback().map(how),
                    run_check: RunCheck::for_arch(arch, &toolchain.emulators),
                    archive_name: layout::archive_name(&release, arch.target),
                    package: ws.config.dist.package.clone(),
                    sbom: SbomSource::new(ws, &toolchain, arch),
                    deb_name: arch
                        .deb_arch
                        .filter(|_| ws.config.deb.enabled)
                        .map(|deb_arch| deb::file_name(&release, &ws.config.deb, deb_arch)),
                    rpm_name: arch
                        .rpm_arch
                        .filter(|_| ws.config.rpm.enabled)
                        .map(|rpm_arch| rpm::file_name(&release, &ws.config.rpm, rpm_arch)),
                }
            })
            .collect::<Vec<ArchPlan>>();
        refuse_unrunnable(&arches, ws.config.dist.run_check, request.allow_unrun)?;
        Ok(DistPlan {
            release,
            out_dir: request.out.path().to_path_buf(),
            tools,
            arches,
            smoke: ws.config.dist.smoke.clone(),
            jobs: request.jobs,
            pins: pins(&toolchain),
            deb: ws.config.deb.enabled.then(|| ws.config.deb.clone()),
            rpm: ws.config.rpm.enabled.then(|| ws.config.rpm.clone()),
            binary_name: ws.config.dist.binary.clone(),
            inputs,
            signing,
            toolchain,
        })
    }

    /// The two lines a run starts with (the whole plan is `--dry-run`'s and `--verbose`'s).
    pub fn headline(&self) -> String {
        let r = &self.release;
        let names: Vec<&str> = self.arches.iter().map(|step| step.arch.name).collect();
        format!(
            "dist: {} {} from commit {} (source date {}), into {}\n\
             {} arch(es), {} at once: {} (the whole plan: --dry-run; every command's output: --verbose)\n",
            r.name,
            r.version,
            short(&r.commit),
            r.created(),
            self.out_dir,
            names.len(),
            self.jobs.min(names.len()),
            names.join(" ")
        )
    }

    /// The plan as `--dry-run` prints it: the toolchain's steps, each arch's, and signing.
    pub fn render(&self) -> String {
        let r = &self.release;
        let mut out = self.tools.render();
        let _ = writeln!(
            out,
            "dist plan: {} {} from commit {} (source date {})",
            r.name,
            r.version,
            short(&r.commit),
            r.created()
        );
        let _ = writeln!(out, "pinned: {}", self.pins);
        let _ = writeln!(out, "output: {} (assembled aside, renamed into place when complete)", self.out_dir);
        let _ = writeln!(
            out,
            "jobs: {} arch(es) at once, each in its own cargo target dir; a failure stops the others",
            self.jobs.min(self.arches.len())
        );
        for step in &self.arches {
            let arch = step.arch;
            let _ = writeln!(out, "  {:<8} {:<31} {}", arch.name, arch.target, step.build.backend);
            match step.build.describe() {
                Some(build) => {
                    let _ = writeln!(out, "    build: {build}");
                }
                None => {
                    let _ = writeln!(out, "    build: none, packing {}", step.build.binary);
                }
            }
            if let Some(instead) = &step.if_rustup_refuses {
                let command = instead.describe().unwrap_or_else(|| "none".to_string());
                let _ = writeln!(out, "    or, if rustup refuses rust-std ({}): {command}", instead.backend);
            }
            let _ = writeln!(
                out,
                "    check: static {:?} {} ELF{}{}",
                arch.elf.class,
                machine_name(arch.elf.machine),
                match arch.elf.float_abi {
                    Some(abi) => format!(", {abi:?}-float ABI"),
                    None => String::new(),
                },
                elf::abi_note(&arch.elf)
            );
            for line in step.run_check.describe(&step.build.binary, self.smoke.as_ref()) {
                let _ = writeln!(out, "    run:   {line}");
            }
            let _ = writeln!(out, "    pack:  {} (+ {SIDECAR_SUFFIX})", step.archive_name);
            let _ = writeln!(
                out,
                "    sbom:  {} from {}",
                layout::sbom_name(&step.archive_name),
                step.sbom.command
            );
            if let Some(deb) = &step.deb_name {
                let _ = writeln!(
                    out,
                    "    deb:   {deb} (/{}, its systemd unit)",
                    package::binary_path(&self.binary_name)
                );
            }
            if let Some(rpm) = &step.rpm_name {
                let _ = writeln!(
                    out,
                    "    rpm:   {rpm} (/{}, its systemd unit)",
                    package::binary_path(&self.binary_name)
                );
            }
        }
        let _ = writeln!(out, "  then:  {}", SHARED_FILES.join(", "));
        out.push_str(&dist_signing::plan_line(&self.signing, &self.out_dir));
        out
    }

    /// Walks the plan: the toolchain steps, then each arch's steps (`jobs` at once), then the
    /// files over all of them; each step's id goes to `steps` as it starts.
    fn execute(mut self, sh: &Shell, steps: &StepRecord) -> Result<()> {
        let settled = self.tools.execute(sh, &mut self.toolchain, &|id| steps.record(id))?;
        // Each arch's build is the planned one, or the plan's fallback where rustup refused.
        let work: Vec<(&ArchPlan, &ArchBuild, BuiltWith)> = self
            .arches
            .iter()
            .zip(&settled)
            .map(|(step, (_, backend))| {
                let build = match &step.if_rustup_refuses {
                    Some(instead) if instead.backend == *backend => instead,
                    _ => &step.build,
                };
                (step, build, built_with(&self.toolchain, build.backend))
            })
            .collect();
        let staging = Staging::create(&self.out_dir, MANIFEST_FILE)?;
        let progress = Progress::new(self.arches.iter().map(|step| step.arch.name));
        let first_failure = AtomicBool::new(false);
        let built = pool::run_ordered(
            self.jobs,
            &work,
            |index, (step, build, built_with)| {
                let log = progress.row(index);
                let started = Instant::now();
                log.say(&match (&build.command, build.up_to_date) {
                    (Some(_), false) => format!("building {} with {}", step.arch.target, build.backend),
                    (Some(_), true) => {
                        format!("{} is up to date (its inputs are unchanged)", step.arch.target)
                    }
                    (None, _) => format!("checking the prebuilt {}", build.binary),
                });
                // xshell's Shell is not shared between threads; each worker has its own.
                let built = Shell::new()
                    .map_err(anyhow::Error::from)
                    .and_then(|sh| {
                        let arch =
                            ArchRun { sh: &sh, step, build, built_with, plan: &self, out: &staging.dir, log };
                        arch.walk(steps)
                    })
                    .with_context(|| format!("{} ({}) failed", step.arch.name, step.arch.target));
                match &built {
                    Ok((artifact, _)) => progress.finish(
                        index,
                        &format!(
                            "{} ({}), sha256 {} in {}",
                            artifact.name,
                            human_size(artifact.size),
                            &artifact.sha256[..12],
                            seconds(started.elapsed())
                        ),
                    ),
                    // Only the first failure is news: the others were stopped because of it.
                    Err(_) if !first_failure.swap(true, Ordering::SeqCst) => progress.finish(index, "failed"),
                    Err(_) => progress.finish(index, "stopped"),
                }
                built.map(|(artifact, ran_on)| (artifact, ran_on, started.elapsed()))
            },
            interrupt::stop_children,
        );
        progress.clear();
        let built = built?;
        let rows: Vec<SummaryRow> = work
            .iter()
            .zip(&built)
            .map(|((step, build, _), (artifact, ran_on, elapsed))| SummaryRow {
                arch: step.arch.name,
                target: step.arch.target,
                backend: build.backend,
                size: artifact.size,
                binary_size: artifact.binary.size,
                sha256: artifact.sha256.clone(),
                elapsed: *elapsed,
                ran_on: ran_on.clone(),
            })
            .collect();
        let artifacts = built.into_iter().map(|(artifact, _, _)| artifact).collect();
        let manifest = Manifest::new(&self.release, artifacts);
        let inputs = &self.inputs;
        let mut dest = None;
        for then in THEN {
            steps.record(then.id());
            match then {
                ThenStep::Files => files::write_all(
                    &staging.dir,
                    &manifest,
                    &inputs.config,
                    &inputs.facts,
                    &inputs.provenance,
                    self.signing.key(),
                )?,
                ThenStep::Sign => dist_signing::finish(&self.signing, &staging.dir)?,
                ThenStep::Rename => {
                    dest = Some(staging.commit()?);
                    break;
                }
            }
        }
        let dest = dest.expect("the last step renames the folder into place");
        print!("{}", summary_table(&rows));
        let unrun = rows.iter().filter(|row| row.ran_on == RUN_CHECK_SKIPPED).count();
        if unrun > 0 {
            println!(
                "{unrun} of {} binaries not started on their CPU (run_check \"{RUN_CHECK_SKIPPED}\" in {MANIFEST_FILE})",
                rows.len()
            );
        }
        let archives =
            if rows.len() == 1 { "1 archive".to_string() } else { format!("{} archives", rows.len()) };
        println!(
            "wrote {archives}, {SUMS_FILE}, {MANIFEST_FILE}, {DOCKERFILE_RELEASE}, {INSTALL_SH}, {PROVENANCE_FILE} \
             to {dest}; {}",
            dist_signing::summary(&self.signing)
        );
        Ok(())
    }
}

impl ArchPlan {
    /// The steps this arch's worker walks when `build` is how its binary comes to be.
    pub fn steps(&self, build: &ArchBuild) -> Vec<ArchStep> {
        let mut steps = Vec::new();
        match (&build.command, build.up_to_date) {
            (Some(_), false) => steps.push(ArchStep::Build),
            (Some(_), true) => steps.push(ArchStep::UpToDate),
            (None, _) => {}
        }
        steps.extend([ArchStep::Check, ArchStep::Run, ArchStep::Pack, ArchStep::Sbom]);
        steps.extend(self.deb_name.as_ref().map(|_| ArchStep::Deb));
        steps.extend(self.rpm_name.as_ref().map(|_| ArchStep::Rpm));
        steps
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

/// One arch's worker: walks its steps (`ArchPlan::steps`) into the staged folder `out`.
struct ArchRun<'a> {
    sh: &'a Shell,
    step: &'a ArchPlan,
    build: &'a ArchBuild,
    built_with: &'a BuiltWith,
    plan: &'a DistPlan,
    out: &'a Utf8Path,
    log: RowLog<'a>,
}

impl ArchRun<'_> {
    /// Builds, checks and packs the arch. Returns its manifest entry and where it ran.
    fn walk(&self, steps: &StepRecord) -> Result<(Artifact, String)> {
        let (step, build) = (self.step, self.build);
        let mut binary = Vec::new();
        let mut ran_on = String::new();
        let mut artifact: Option<Artifact> = None;
        for what in step.steps(build) {
            steps.record(&what.id(step.arch));
            match what {
                ArchStep::Build => self.build()?,
                ArchStep::UpToDate => {}
                ArchStep::Check => {
                    binary = std::fs::read(&build.binary)
                        .with_context(|| format!("the build left no binary at {}", build.binary))?;
                    let facts = elf::inspect(&binary)
                        .with_context(|| format!("cannot read {} as ELF", build.binary))?;
                    elf::check(step.arch, &facts).with_context(|| format!("refusing {}", build.binary))?;
                }
                ArchStep::Run => {
                    ran_on = step.run_check.run(self.sh, &build.binary, self.plan.smoke.as_ref(), self.log)?
                }
                ArchStep::Pack => {
                    let mut packed = self.pack(&binary)?;
                    packed.run_check = ran_on.clone();
                    artifact = Some(packed);
                }
                ArchStep::Sbom => self.sbom()?,
                ArchStep::Deb => {
                    let packed = artifact.as_mut().expect("packed before its package");
                    packed.deb = Some(self.deb(&binary)?);
                }
                ArchStep::Rpm => {
                    let packed = artifact.as_mut().expect("packed before its package");
                    packed.rpm = Some(self.rpm(&binary)?);
                }
            }
        }
        Ok((artifact.expect("every arch is packed"), ran_on))
    }

    fn build(&self) -> Result<()> {
        let command = self.build.command.as_ref().expect("a build step has a command");
        let started = SystemTime::now();
        command.run_logged(self.sh, self.log).context("the build failed")?;
        if let Some(record) = &self.build.record {
            record.write(started)?;
        }
        Ok(())
    }

    fn pack(&self, binary: &[u8]) -> Result<Artifact> {
        let (release, arch) = (&self.plan.release, self.step.arch);
        let bytes = archive::pack(release, arch.target, binary, &self.plan.inputs.includes)?;
        let artifact = Artifact::packed(release, arch, &bytes, binary, self.built_with.clone());
        let archive_path = self.out.join(&artifact.name);
        std::fs::write(&archive_path, &bytes).with_context(|| format!("cannot write {archive_path}"))?;
        checksum::write_sidecar(self.out, &artifact.name, &artifact.sha256)?;
        Ok(artifact)
    }

    fn sbom(&self) -> Result<()> {
        let source = &self.step.sbom;
        let metadata = if source.up_to_date {
            Metadata::read_kept(&source.kept)?
        } else {
            let started = SystemTime::now();
            let metadata = Metadata::run_and_keep(self.sh, &source.command, &source.kept)?;
            source.record.write(started)?;
            metadata
        };
        let facts = sbom::Facts {
            release: &self.plan.release,
            target: self.step.arch.target,
            built_with: self.built_with,
            archive_name: &self.step.archive_name,
            package: &self.step.package,
        };
        sbom::write(&metadata, &facts, self.out)?;
        Ok(())
    }

    fn deb(&self, binary: &[u8]) -> Result<DebPackage> {
        let plan = self.plan;
        let (Some(config), Some(files)) = (&plan.deb, &plan.inputs.deb_files) else {
            bail!("a package is planned without [deb] or its files");
        };
        let inputs = PackageInputs {
            release: &plan.release,
            config,
            facts: &plan.inputs.facts,
            binary: &plan.binary_name,
            files,
        };
        let (package, bytes) = deb::build(&PackageSpec::new(&inputs, self.step.arch, binary))?;
        let path = self.out.join(&package.name);
        std::fs::write(&path, &bytes).with_context(|| format!("cannot write {path}"))?;
        Ok(package)
    }

    /// The rpm, from the same description as the .deb (`[deb]`'s unit, settings and maintainer).
    fn rpm(&self, binary: &[u8]) -> Result<RpmPackage> {
        let plan = self.plan;
        let (Some(config), Some(files)) = (&plan.rpm, &plan.inputs.deb_files) else {
            bail!("an rpm is planned without [rpm] or the package files");
        };
        let inputs = PackageInputs {
            release: &plan.release,
            config: &plan.inputs.config.deb,
            facts: &plan.inputs.facts,
            binary: &plan.binary_name,
            files,
        };
        let (package, bytes) = rpm::build(&PackageSpec::new(&inputs, self.step.arch, binary), config)?;
        let path = self.out.join(&package.name);
        std::fs::write(&path, &bytes).with_context(|| format!("cannot write {path}"))?;
        Ok(package)
    }
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
    // Columns as wide as their widest cell, so every target name fits.
    let arch_w = rows.iter().map(|r| r.arch.len()).chain([4]).max().unwrap_or(4);
    let target_w = rows.iter().map(|r| r.target.len()).chain([6]).max().unwrap_or(6);
    let backend_w = rows.iter().map(|r| r.backend.id().len()).chain([7]).max().unwrap_or(7);
    let mut out = format!(
        "\n{:<arch_w$} {:<target_w$} {:<backend_w$} {:>9} {:>9} {:<13} {:>7}  {}\n",
        "ARCH", "TARGET", "BACKEND", "ARCHIVE", "BINARY", "SHA256", "TIME", "RAN ON"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<arch_w$} {:<target_w$} {:<backend_w$} {:>9} {:>9} {:<13} {:>7}  {}",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::project::matrix::default_arches;

    /// The plan of all six arches on `toolchain`.
    fn plan(toolchain: Toolchain, backend: BackendRequest) -> DistPlan {
        let ws = fixtures::workspace();
        let request = DistRequest {
            arches: default_arches(),
            prebuilt: Vec::new(),
            out: DistDir::at("/work/exotool/target/dist"),
            backend,
            jobs: 2,
            dry_run: true,
            sign_key: None,
            keyless: false,
            allow_unrun: false,
        };
        let inputs = DistInputs {
            config: ws.config.clone(),
            facts: ws.project_facts(),
            includes: Vec::new(),
            deb_files: None,
            provenance: provenance::Inputs {
                cargo_lock_sha256: String::new(),
                release_toml_sha256: String::new(),
            },
        };
        DistPlan::new(&ws, toolchain, fixtures::release(), &request, inputs, Signing::Unsigned).unwrap()
    }

    /// The plan as `--dry-run` prints it. The run-check lines name this machine's qemu (or its
    /// absence), so they are left out here, and so is the signing line.
    fn plan_text(toolchain: Toolchain, backend: BackendRequest) -> String {
        let text = plan(toolchain, backend).render();
        text.lines()
            .filter(|line| !line.starts_with("    run:") && !line.starts_with("signing:"))
            .map(|line| format!("{line}\n"))
            .collect()
    }

    const RUSTUP_STD: [&str; 3] =
        ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl", "i686-unknown-linux-musl"];

    #[test]
    fn plan_on_a_fresh_machine_says_what_follows_if_rustup_refuses_a_target() {
        insta::assert_snapshot!(plan_text(Toolchain::fixture(&[], false, false), BackendRequest::Auto));
    }

    #[test]
    fn offline_builds_what_it_has_and_fetches_nothing() {
        let mut toolchain = Toolchain::fixture(&RUSTUP_STD, true, true);
        toolchain.offline = true;
        let text = plan_text(toolchain, BackendRequest::Auto);
        assert!(!text.contains("toolchain:"), "an offline plan has no fetch steps: {text}");
        assert!(
            text.contains("  arm32v5  armv5te-unknown-linux-musleabi  nightly -Zbuild-std + zig"),
            "{text}"
        );
        assert!(text.contains("  amd64    x86_64-unknown-linux-musl       cargo + rust-lld"), "{text}");

        let mut without_zig = Toolchain::fixture(&RUSTUP_STD, true, false);
        without_zig.offline = true;
        let arches: Vec<&'static Arch> = default_arches();
        let err =
            ToolPlan::new(&without_zig, &arches, &[], BackendRequest::Auto, false).unwrap_err().to_string();
        assert!(err.contains("CARGO_NET_OFFLINE is set") && err.contains("zig and cargo-zigbuild"), "{err}");
    }

    #[test]
    fn plan_for_backend_cargo_stops_where_rustup_has_no_std() {
        let text = plan_text(Toolchain::fixture(&RUSTUP_STD, false, false), BackendRequest::Cargo);
        assert!(
            text.contains("if rustup refuses it: stop: arm32v7: --backend cargo needs rust-std"),
            "{text}"
        );
        assert!(!text.contains("toolchain install"), "no nightly is fetched for --backend cargo: {text}");
    }

    /// rustup has std for three targets and refused the arm32 ones before (remembered).
    fn toolchain_with_refusals(nightly: bool, name: &str) -> Toolchain {
        let mut toolchain = Toolchain::fixture(&RUSTUP_STD, nightly, true);
        toolchain.set_tools_dir(&fixtures::scratch(name));
        for target in [
            "armv7-unknown-linux-musleabihf",
            "arm-unknown-linux-musleabihf",
            "armv5te-unknown-linux-musleabi",
            "riscv64gc-unknown-linux-musl",
            "powerpc64le-unknown-linux-musl",
            "s390x-unknown-linux-musl",
            "mips64el-unknown-linux-muslabi64",
        ] {
            toolchain.remember_std_failure(target, "no release of rust-std for this target").unwrap();
        }
        toolchain
    }

    #[test]
    fn plan_with_every_tool_in_place_has_no_toolchain_steps() {
        let text = plan_text(toolchain_with_refusals(true, "every-tool"), BackendRequest::Auto);
        assert!(!text.contains("toolchain:"), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn a_remembered_refusal_plans_build_std_without_asking_rustup() {
        let text = plan_text(toolchain_with_refusals(false, "remembered-refusal"), BackendRequest::Auto);
        assert!(!text.contains("rustup target add"), "{text}");
        assert!(
            text.contains("nightly toolchain with rust-src (build-std): rustup toolchain install nightly"),
            "{text}"
        );
        assert!(!text.contains("only if rustup"), "nightly is needed for sure: {text}");
    }

    #[test]
    fn the_plan_is_a_list_of_steps_toolchain_first_then_each_arch_then_the_files() {
        let plan = plan(toolchain_with_refusals(false, "step-list"), BackendRequest::Auto);
        assert_eq!(plan.tools.steps.iter().map(|s| s.id()).collect::<Vec<_>>(), ["toolchain:nightly"]);
        let amd64 = &plan.arches[0];
        let ids: Vec<String> = amd64.steps(&amd64.build).iter().map(|s| s.id(amd64.arch)).collect();
        assert_eq!(
            ids,
            ["amd64:build", "amd64:check", "amd64:run", "amd64:pack", "amd64:sbom", "amd64:deb", "amd64:rpm"]
        );
        let arm32v7 = &plan.arches[2];
        assert_eq!(arm32v7.build.backend, Backend::BuildStd);
        assert!(arm32v7.deb_name.is_none() || arm32v7.steps(&arm32v7.build).contains(&ArchStep::Deb));
        assert!(!plan.render().contains("up to date"), "nothing was built in the fixture's target dir");
        assert_eq!(THEN.map(ThenStep::id), ["then:files", "then:sign", "then:rename"]);
    }
}
