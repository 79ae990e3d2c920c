//! The toolchain part of a dist plan: which backend each arch gets and what must be fetched
//! first (rust-std with rustup, the pinned nightly and rust-src, zig and cargo-zigbuild, a
//! check for cross). Decided without side effects, so `--dry-run` prints exactly what a real
//! run does; where an outcome is only known by running (rustup may have no std for a target),
//! the plan says what follows either way.

use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use xshell::Shell;

use crate::build::backend::{self, Backend, BackendRequest, StdStatus};
use crate::build::toolchain::Toolchain;
use crate::project::matrix::{Arch, QemuPackage};
use crate::util::cmd::Cmd;
use crate::util::progress;

/// How an arch's backend is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Settled(Backend),
    /// `rustup target add` runs first; `backend` if it succeeds, else `fallback` (or the error).
    AfterRustup {
        backend: Backend,
        fallback: Result<Backend, String>,
    },
}

impl Choice {
    pub fn backend(&self) -> Backend {
        match self {
            Choice::Settled(backend) | Choice::AfterRustup { backend, .. } => *backend,
        }
    }

    pub fn fallback(&self) -> Option<Backend> {
        match self {
            Choice::AfterRustup { fallback: Ok(fallback), .. } => Some(*fallback),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    AddTarget {
        arch: &'static Arch,
    },
    Nightly,
    RustSrc,
    Zig,
    /// The pinned cross, installed into the tool cache.
    CrossInstall,
    /// The builder image the cross backend runs in must be in the local engine.
    BuilderImage,
    /// The folder cross mounts into the container at its own path (linker wrappers, zig's
    /// cache): docker refuses to mount a folder that does not exist.
    CrossMount,
    /// The workspace's crates, fetched on the host: the container compiles offline.
    FetchCrates,
    /// std's crates for -Zbuild-std in the container, fetched on the host likewise.
    FetchStdCrates,
    /// Debian's qemu-user-static (or trixie's qemu-user), for the run checks of foreign arches
    /// whose emulator is not on PATH: downloaded, checked against its pin and unpacked into
    /// the tool cache.
    Emulator {
        package: QemuPackage,
        suite: String,
    },
}

/// When a step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    Always,
    /// Only if rustup refuses the std of one of these arches (their fallback needs it).
    IfRustupRefuses(Vec<&'static str>),
}

#[derive(Debug, Clone)]
pub struct ToolStep {
    pub kind: StepKind,
    pub cmd: Cmd,
    pub when: When,
}

impl ToolStep {
    /// What the step fetches, as the plan names it (and `cargo xtask doctor` after it).
    pub fn describe(&self) -> String {
        self.kind.describe()
    }
}

#[derive(Debug)]
pub struct ToolPlan {
    pub choices: Vec<(&'static Arch, Choice)>,
    pub steps: Vec<ToolStep>,
}

impl ToolPlan {
    /// Pure: reads what `toolchain` found on this machine and decides everything.
    pub fn new(
        toolchain: &Toolchain,
        arches: &[&'static Arch],
        prebuilt: &[&'static Arch],
        request: BackendRequest,
        needs_c: bool,
    ) -> Result<ToolPlan> {
        let mut choices = Vec::new();
        let mut steps = Vec::new();
        for &arch in arches {
            if prebuilt.contains(&arch) {
                choices.push((arch, Choice::Settled(Backend::Prebuilt)));
                continue;
            }
            let std = std_status(toolchain, arch, request);
            let choose = |std: &StdStatus| {
                backend::choose(request, std, needs_c, arch.target).map_err(|e| format!("{}: {e}", arch.name))
            };
            let choice = match std {
                StdStatus::Installable if toolchain.rustup && wants_std(request) => {
                    steps.push(ToolStep {
                        kind: StepKind::AddTarget { arch },
                        cmd: Cmd::new("rustup").args(["target", "add", arch.target]),
                        when: When::Always,
                    });
                    let refused = StdStatus::Unavailable("rustup refused".into());
                    Choice::AfterRustup {
                        backend: choose(&StdStatus::Installable).map_err(anyhow::Error::msg)?,
                        fallback: choose(&refused),
                    }
                }
                std => Choice::Settled(choose(&std).map_err(anyhow::Error::msg)?),
            };
            choices.push((arch, choice));
        }
        steps.extend(tool_steps(toolchain, &choices));
        for package in toolchain.emulators.to_fetch(arches) {
            steps.push(ToolStep {
                kind: StepKind::Emulator { package, suite: toolchain.emulators.suite(package).to_string() },
                cmd: toolchain.emulators.download_command(package),
                when: When::Always,
            });
        }
        let downloads: Vec<String> =
            steps.iter().filter(|s| s.kind.downloads()).map(|s| s.kind.describe()).collect();
        if toolchain.offline && !downloads.is_empty() {
            bail!(
                "CARGO_NET_OFFLINE is set, but this build needs downloads: {}; run it once online \
                 (or in the builder image, which has them)",
                downloads.join(", ")
            );
        }
        Ok(ToolPlan { choices, steps })
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.steps.is_empty() {
            return out;
        }
        let _ = writeln!(out, "toolchain:");
        for step in &self.steps {
            let _ = writeln!(out, "  {}: {}", step.kind.describe(), step.cmd);
            if let When::IfRustupRefuses(arches) = &step.when {
                let _ = writeln!(out, "    only if rustup has no rust-std for {}", arches.join(" or "));
            }
            if let StepKind::AddTarget { arch } = step.kind {
                let choice = self.choice(arch);
                let _ = writeln!(
                    out,
                    "    if rustup refuses it: {}",
                    match choice {
                        Choice::AfterRustup { fallback: Ok(fallback), .. } =>
                            format!("{} builds with {fallback}", arch.name),
                        Choice::AfterRustup { fallback: Err(why), .. } => format!("stop: {why}"),
                        Choice::Settled(_) => unreachable!("an added target has a fallback"),
                    }
                );
            }
        }
        out
    }

    fn choice(&self, arch: &Arch) -> &Choice {
        &self.choices.iter().find(|(a, _)| a.name == arch.name).expect("every arch has a choice").1
    }

    /// Runs the steps in order, passing each one's id to `record` as it starts; returns each
    /// arch's settled backend.
    pub fn execute(
        &self,
        sh: &Shell,
        toolchain: &mut Toolchain,
        record: &dyn Fn(&str),
    ) -> Result<Vec<(&'static Arch, Backend)>> {
        let mut refused: Vec<&'static str> = Vec::new();
        for step in &self.steps {
            if let When::IfRustupRefuses(arches) = &step.when {
                if !arches.iter().any(|a| refused.contains(a)) {
                    continue;
                }
            }
            record(&step.id());
            // One line a step; an added target's says how it went, once rustup has answered.
            let line = match progress::verbose() {
                true => format!("{}: {}", step.kind.describe(), step.cmd),
                false => step.kind.describe(),
            };
            if !matches!(step.kind, StepKind::AddTarget { .. }) {
                eprintln!("{line}");
            }
            match step.kind {
                StepKind::AddTarget { arch } => {
                    let Err(reason) = toolchain.add_target(sh, &step.cmd)? else {
                        eprintln!("{line}: added");
                        continue;
                    };
                    toolchain.remember_std_failure(arch.target, &reason)?;
                    match self.choice(arch) {
                        Choice::AfterRustup { fallback: Ok(fallback), .. } => {
                            eprintln!(
                                "{line}: rustup has none ({reason}); {} builds with {fallback}",
                                arch.name
                            )
                        }
                        Choice::AfterRustup { fallback: Err(why), .. } => {
                            bail!("rustup cannot install rust-std for {} ({reason}): {why}", arch.target)
                        }
                        Choice::Settled(_) => unreachable!("an added target has a fallback"),
                    }
                    refused.push(arch.name);
                }
                StepKind::Nightly => toolchain.install_nightly(sh, &step.cmd)?,
                StepKind::RustSrc => step.cmd.run_step(sh).with_context(|| {
                    format!("the build-std backend needs the standard library's source; run `{}`", step.cmd)
                })?,
                StepKind::Zig => toolchain.zig.fetch(sh)?,
                StepKind::CrossInstall => step
                    .cmd
                    .run_step(sh)
                    .with_context(|| format!("cannot install cross for --backend cross (`{}`)", step.cmd))?,
                StepKind::BuilderImage => {
                    if !matches!(step.cmd.output(sh), Ok((true, _))) {
                        let image = toolchain.cross.as_ref().map_or("", |cross| cross.image.as_str());
                        bail!(
                            "--backend cross builds in the builder image {image}, which the local engine \
                             lacks: run `cargo xtask builder` (or `docker pull {image}`)"
                        );
                    }
                }
                StepKind::CrossMount => {
                    let cross = toolchain.cross.as_ref().expect("a cross step has cross tools");
                    cross.create_mount_dir()?;
                }
                StepKind::Emulator { package, .. } => toolchain.emulators.fetch(sh, package)?,
                StepKind::FetchCrates | StepKind::FetchStdCrates => {
                    step.cmd.run_step(sh).with_context(|| {
                        format!("cannot fetch the crates the cross build needs (`{}`)", step.cmd)
                    })?
                }
            }
        }
        let settled: Vec<(&'static Arch, Backend)> = self
            .choices
            .iter()
            .map(|(arch, choice)| match choice {
                Choice::AfterRustup { fallback: Ok(fallback), .. } if refused.contains(&arch.name) => {
                    (*arch, *fallback)
                }
                choice => (*arch, choice.backend()),
            })
            .collect();
        let wrapped: Vec<&str> =
            settled.iter().filter(|(_, b)| *b == Backend::CrossBuildStd).map(|(a, _)| a.target).collect();
        if let (Some(cross), false) = (&toolchain.cross, wrapped.is_empty()) {
            cross.write_wrappers(&wrapped)?;
        }
        Ok(settled)
    }
}

impl ToolStep {
    /// The step's id in a record of the steps a run executed (`toolchain:zig`).
    pub fn id(&self) -> String {
        let what = match self.kind {
            StepKind::AddTarget { arch } => return format!("toolchain:rust-std:{}", arch.name),
            StepKind::Nightly => "nightly",
            StepKind::RustSrc => "rust-src",
            StepKind::Zig => "zig",
            StepKind::CrossInstall => "cross",
            StepKind::BuilderImage => "builder-image",
            StepKind::CrossMount => "cross-mount",
            StepKind::FetchCrates => "fetch-crates",
            StepKind::FetchStdCrates => "fetch-std-crates",
            StepKind::Emulator { package, .. } => package.name(),
        };
        format!("toolchain:{what}")
    }
}

impl StepKind {
    /// Whether the step fetches something (which CARGO_NET_OFFLINE forbids).
    fn downloads(&self) -> bool {
        !matches!(self, StepKind::BuilderImage | StepKind::CrossMount)
    }

    fn describe(&self) -> String {
        match self {
            StepKind::AddTarget { arch } => format!("rust-std for {} ({})", arch.target, arch.name),
            StepKind::Nightly => "nightly toolchain with rust-src (build-std)".into(),
            StepKind::RustSrc => "rust-src for the nightly toolchain (build-std)".into(),
            StepKind::Zig => "zig and cargo-zigbuild from PyPI".into(),
            StepKind::CrossInstall => "cross (pinned) into the tool cache".into(),
            StepKind::BuilderImage => "the builder image, for cross".into(),
            StepKind::CrossMount => "the folder cross mounts into the builder image".into(),
            StepKind::FetchCrates => "the workspace's crates (the container builds offline)".into(),
            StepKind::FetchStdCrates => "std's crates for -Zbuild-std in the container".into(),
            StepKind::Emulator { package, suite } => {
                format!(
                    "{} from Debian {suite} (sha256-pinned, unpacked with dpkg-deb), for the run checks",
                    package.name()
                )
            }
        }
    }
}

/// Whether rustup's std decides the backend (the cross backend asks the host's rustup what
/// the builder image's, from the same servers, has).
fn wants_std(request: BackendRequest) -> bool {
    matches!(
        request,
        BackendRequest::Auto | BackendRequest::Cargo | BackendRequest::Zigbuild | BackendRequest::Cross
    )
}

pub fn std_status(toolchain: &Toolchain, arch: &Arch, request: BackendRequest) -> StdStatus {
    if toolchain.default.has_std_for(arch.target) {
        StdStatus::Installed
    } else if !wants_std(request) {
        StdStatus::Installable
    } else if !toolchain.rustup {
        StdStatus::Unavailable("rustup is not installed".into())
    } else if let Some(reason) = toolchain.remembered_std_failure(arch.target) {
        StdStatus::Unavailable(reason)
    } else if toolchain.offline {
        StdStatus::Unavailable("offline (CARGO_NET_OFFLINE): rustup cannot download it".into())
    } else {
        StdStatus::Installable
    }
}

/// The fetches the chosen backends need, each run always or only if a fallback needs it.
fn tool_steps(toolchain: &Toolchain, choices: &[(&'static Arch, Choice)]) -> Vec<ToolStep> {
    let needed = |wanted: fn(Backend) -> bool| -> Option<When> {
        if choices.iter().any(|(_, c)| wanted(c.backend())) {
            return Some(When::Always);
        }
        let arches: Vec<&'static str> =
            choices.iter().filter(|(_, c)| c.fallback().is_some_and(wanted)).map(|(a, _)| a.name).collect();
        (!arches.is_empty()).then_some(When::IfRustupRefuses(arches))
    };
    let mut steps = Vec::new();
    let name = &toolchain.nightly_name;
    if let Some(when) = needed(Backend::builds_std) {
        match &toolchain.nightly {
            None => steps.push(ToolStep {
                kind: StepKind::Nightly,
                cmd: Cmd::new("rustup").args([
                    "toolchain",
                    "install",
                    name,
                    "--profile",
                    "minimal",
                    "--component",
                    "rust-src",
                ]),
                when,
            }),
            Some(nightly) if !nightly.has_rust_src => steps.push(ToolStep {
                kind: StepKind::RustSrc,
                cmd: Cmd::new("rustup").args(["component", "add", "rust-src", "--toolchain", name]),
                when,
            }),
            Some(_) => {}
        }
    }
    if let Some(when) = needed(Backend::needs_zig) {
        if !toolchain.zig.present {
            steps.push(ToolStep {
                kind: StepKind::Zig,
                cmd: toolchain.zig.fetch_command(&toolchain.zig.dir),
                when,
            });
        }
    }
    if let (Some(when), Some(cross)) = (needed(Backend::is_cross), &toolchain.cross) {
        if !cross.present {
            steps.push(ToolStep {
                kind: StepKind::CrossInstall,
                cmd: cross.install_command(),
                when: when.clone(),
            });
        }
        steps.push(ToolStep { kind: StepKind::BuilderImage, cmd: cross.image_check(), when: when.clone() });
        steps.push(ToolStep {
            kind: StepKind::CrossMount,
            cmd: Cmd::new("mkdir").args(["-p", cross.mount_dir.as_str()]),
            when: when.clone(),
        });
        steps.push(ToolStep {
            kind: StepKind::FetchCrates,
            cmd: Cmd::new("cargo").args(["fetch", "--locked", "--manifest-path", cross.manifest.as_str()]),
            when,
        });
    }
    if let Some(when) = needed(|b| b == Backend::CrossBuildStd) {
        let library = toolchain.nightly_sysroot().join("lib/rustlib/src/rust/library/Cargo.toml");
        steps.push(ToolStep {
            kind: StepKind::FetchStdCrates,
            cmd: Cmd::new("cargo")
                .args(["fetch", "--manifest-path", library.as_str()])
                .env("RUSTUP_TOOLCHAIN", name),
            when,
        });
    }
    steps
}
