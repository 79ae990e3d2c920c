//! The part of `cargo metadata`'s JSON the xtask reads, and the one walk over its dependency
//! graph that both the C-toolchain check and the SBOM need: what gets linked into a binary.

use std::collections::{BTreeMap, VecDeque};

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;
use xshell::Shell;

use crate::util::cmd::Cmd;
use crate::util::staging::write_atomically;

#[derive(Deserialize)]
pub struct Metadata {
    pub packages: Vec<Package>,
    pub resolve: Option<Resolve>,
    #[serde(default)]
    pub target_directory: Utf8PathBuf,
}

#[derive(Deserialize)]
pub struct Package {
    pub id: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub manifest_path: Utf8PathBuf,
    pub targets: Vec<Target>,
    /// None for workspace members.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub links: Option<String>,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Deserialize)]
pub struct Target {
    #[serde(default)]
    pub name: String,
    pub kind: Vec<String>,
    #[serde(default)]
    pub src_path: Utf8PathBuf,
}

#[derive(Deserialize)]
pub struct Resolve {
    pub nodes: Vec<Node>,
}

#[derive(Deserialize)]
pub struct Node {
    pub id: String,
    pub deps: Vec<NodeDep>,
}

#[derive(Deserialize)]
pub struct NodeDep {
    pub pkg: String,
    pub dep_kinds: Vec<DepKind>,
}

#[derive(Deserialize)]
pub struct DepKind {
    /// None for a normal dependency, else "build" or "dev".
    pub kind: Option<String>,
}

impl NodeDep {
    pub fn is_normal(&self) -> bool {
        self.dep_kinds.iter().any(|k| k.kind.is_none())
    }

    pub fn is_build(&self) -> bool {
        self.dep_kinds.iter().any(|k| k.kind.as_deref() == Some("build"))
    }
}

impl Package {
    pub fn has_target_kind(&self, kind: &str) -> bool {
        self.targets.iter().any(|t| t.kind.iter().any(|k| k == kind))
    }
}

impl Metadata {
    /// Runs `cargo metadata --locked`, for one target platform's graph when `platform` is given.
    /// `cargo metadata`, limited to what gets built for `platform` when given.
    pub fn command(manifest_path: &Utf8Path, platform: Option<&str>) -> Cmd {
        let cmd = Cmd::new("cargo").args(["metadata", "--format-version", "1", "--locked"]);
        let cmd = match platform {
            Some(platform) => cmd.args(["--filter-platform", platform]),
            None => cmd,
        };
        cmd.args(["--manifest-path", manifest_path.as_str()])
    }

    pub fn read(sh: &Shell, manifest_path: &Utf8Path, platform: Option<&str>) -> Result<Metadata> {
        Metadata::run(sh, &Metadata::command(manifest_path, platform))
    }

    /// Runs a `cargo metadata` command (from `Metadata::command`) and parses its output.
    pub fn run(sh: &Shell, command: &Cmd) -> Result<Metadata> {
        Metadata::parse(&Metadata::output(sh, command)?)
    }

    /// Runs a `cargo metadata` command and keeps its JSON in `kept`, for `read_kept` on a
    /// later run whose inputs are unchanged: the same JSON, so the same SBOM bytes.
    pub fn run_and_keep(sh: &Shell, command: &Cmd, kept: &Utf8Path) -> Result<Metadata> {
        let json = Metadata::output(sh, command)?;
        if let Some(dir) = kept.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
        }
        // Another dist of the same target dir may be reading it.
        write_atomically(kept, json.as_bytes())?;
        Metadata::parse(&json)
    }

    fn output(sh: &Shell, command: &Cmd) -> Result<String> {
        command.read(sh).context("`cargo metadata` failed; is Cargo.lock up to date? (run `cargo update -w`)")
    }

    fn parse(json: &str) -> Result<Metadata> {
        serde_json::from_str(json).context("cannot parse `cargo metadata` output")
    }

    /// The JSON `run_and_keep` kept.
    pub fn read_kept(kept: &Utf8Path) -> Result<Metadata> {
        let json = std::fs::read_to_string(kept).with_context(|| format!("cannot read {kept}"))?;
        serde_json::from_str(&json)
            .with_context(|| format!("cannot parse {kept}; delete it to run cargo metadata again"))
    }

    pub fn package(&self, id: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.id == id)
    }

    /// A package of the workspace itself (not a dependency) by name.
    pub fn workspace_package(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.name == name && p.source.is_none())
    }

    pub fn workspace_packages(&self) -> impl Iterator<Item = &Package> {
        self.packages.iter().filter(|p| p.source.is_none())
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.resolve.as_ref()?.nodes.iter().find(|n| n.id == id)
    }

    /// What gets compiled into `root`'s binary, as package id → the ids it depends on: `root`
    /// and every package reachable over normal dependencies, proc-macros excluded (they run in
    /// the compiler, not in the binary).
    pub fn linked_graph<'m>(&'m self, root: &'m str) -> Result<BTreeMap<&'m str, Vec<&'m str>>> {
        anyhow::ensure!(self.resolve.is_some(), "`cargo metadata` gave no dependency graph");
        let is_proc_macro = |id: &str| self.package(id).is_some_and(|p| p.has_target_kind("proc-macro"));
        let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut queue = VecDeque::from([root]);
        while let Some(id) = queue.pop_front() {
            if edges.contains_key(id) {
                continue;
            }
            let node = self.node(id).with_context(|| format!("{id} is not in the resolved graph"))?;
            let deps: Vec<&str> = node
                .deps
                .iter()
                .filter(|d| d.is_normal() && !is_proc_macro(&d.pkg))
                .map(|d| d.pkg.as_str())
                .collect();
            queue.extend(deps.iter().copied());
            edges.insert(id, deps);
        }
        Ok(edges)
    }
}
