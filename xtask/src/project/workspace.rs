//! Facts about the workspace every command needs: where it is, its config, the package's
//! version and dependency graph (from `cargo metadata`), and the commit it is built from.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::{cmd, Shell};

use crate::project::cargo_metadata::{Metadata, Target};
use crate::project::config::{Config, CONFIG_FILE};

pub struct Workspace {
    pub root: Utf8PathBuf,
    pub target_dir: Utf8PathBuf,
    pub config: Config,
    pub package: PackageInfo,
    /// The workspace's packages, for a build that must fetch before it has the sources
    /// (docker/Dockerfile.source, whose generator is a test).
    #[cfg_attr(not(test), allow(dead_code))]
    pub members: Vec<Member>,
}

/// A workspace package's manifest and the files of its library and binary targets, relative
/// to the workspace root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub manifest: Utf8PathBuf,
    pub target_files: Vec<Utf8PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    pub version: String,
    /// SPDX expression from Cargo.toml, for image labels.
    pub license: String,
    /// Repository URL from Cargo.toml, for image labels.
    pub repository: String,
    /// Description from Cargo.toml, for image labels.
    pub description: String,
    /// Some crate in the package's graph compiles C code, so cross builds need a C toolchain.
    pub needs_c_toolchain: bool,
}

/// What the image labels and generated files say about the project, from Cargo.toml: not in
/// release.toml, not in the dist manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFacts {
    pub source: String,
    pub licenses: String,
    pub description: String,
}

/// What a release is built from. Every date in the outputs comes from `source_date_epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub name: String,
    pub version: String,
    pub commit: String,
    pub source_date_epoch: u64,
}

impl Release {
    /// RFC 3339, for OCI `created` labels.
    pub fn created(&self) -> String {
        rfc3339(self.source_date_epoch)
    }
}

pub fn rfc3339(epoch: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch))
        .to_string()
}

pub const RUST_TOOLCHAIN_FILE: &str = "rust-toolchain.toml";

/// The channel rust-toolchain.toml pins (what rustup runs in this workspace), if there is one.
pub fn pinned_stable(root: &Utf8Path) -> Result<Option<String>> {
    #[derive(serde::Deserialize)]
    struct File {
        toolchain: Channel,
    }
    #[derive(serde::Deserialize)]
    struct Channel {
        channel: String,
    }
    let path = root.join(RUST_TOOLCHAIN_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {path}")),
    };
    let file: File = toml::from_str(&text)
        .with_context(|| format!("{path} has no [toolchain] channel = \"1.x.y\" (rustup's format)"))?;
    Ok(Some(file.toolchain.channel))
}

/// A path given on the command line, made absolute against the current folder.
pub fn absolute(path: Utf8PathBuf) -> Result<Utf8PathBuf> {
    if path.is_absolute() {
        return Ok(path);
    }
    let cwd = Utf8PathBuf::from_path_buf(std::env::current_dir().context("cannot read the current folder")?)
        .map_err(|p| anyhow::anyhow!("the current folder {p:?} is not UTF-8"))?;
    Ok(cwd.join(path))
}

pub fn project_root() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

impl Workspace {
    /// What the generated files and image labels say about the project, from Cargo.toml.
    pub fn project_facts(&self) -> ProjectFacts {
        ProjectFacts {
            source: self.package.repository.clone(),
            licenses: self.package.license.clone(),
            description: self.package.description.clone(),
        }
    }

    pub fn load(sh: &Shell) -> Result<Workspace> {
        let root = project_root();
        let mut config = Config::load(&root.join(CONFIG_FILE))?;
        config.toolchain.stable = pinned_stable(&root)?;
        let metadata = Metadata::read(sh, &root.join("Cargo.toml"), None)?;
        let package = package_info(&metadata, &config.dist.package, &config.dist.binary)?;
        let members = members(&metadata, &root)?;
        Ok(Workspace { root, target_dir: metadata.target_directory, config, package, members })
    }

    /// The commit and source date, from git unless SOURCE_DATE_EPOCH is set.
    pub fn release(&self, sh: &Shell) -> Result<Release> {
        let _dir = sh.push_dir(&self.root);
        let commit = cmd!(sh, "git rev-parse HEAD")
            .quiet()
            .read()
            .context("cannot read the git commit: build from a git checkout (or a clone with history)")?;
        let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(raw) => raw.trim().parse().with_context(|| {
                format!("SOURCE_DATE_EPOCH={raw:?} is not a number of seconds since 1970")
            })?,
            Err(_) => {
                let raw = cmd!(sh, "git log -1 --pretty=%ct").quiet().read()?;
                raw.trim().parse().with_context(|| format!("unexpected `git log` date {raw:?}"))?
            }
        };
        Ok(self.release_at(commit, source_date_epoch))
    }

    /// The release of this workspace at `commit`, dated `source_date_epoch`: what `release`
    /// reads from git, given instead (unit tests run where there is no .git, e.g. in
    /// cargo-mutants' copy of the tree).
    pub fn release_at(&self, commit: String, source_date_epoch: u64) -> Release {
        Release {
            name: self.config.dist.binary.clone(),
            version: self.package.version.clone(),
            commit,
            source_date_epoch,
        }
    }

    /// Files with uncommitted changes: a release from them is not what its commit says.
    pub fn uncommitted_changes(&self, sh: &Shell) -> Vec<String> {
        let _dir = sh.push_dir(&self.root);
        cmd!(sh, "git status --porcelain --untracked-files=no")
            .quiet()
            .read()
            .map(|out| out.lines().map(|l| l.trim().to_string()).collect())
            .unwrap_or_default()
    }
}

fn members(metadata: &Metadata, root: &Utf8Path) -> Result<Vec<Member>> {
    let relative = |path: &Utf8Path| {
        path.strip_prefix(root)
            .map(Utf8Path::to_path_buf)
            .with_context(|| format!("{path} is outside the workspace root {root}"))
    };
    let mut members = Vec::new();
    for package in metadata.workspace_packages() {
        let mut target_files = Vec::new();
        for target in &package.targets {
            let is_code = target.kind.iter().any(|k| k == "bin" || k.ends_with("lib") || k == "proc-macro");
            if is_code {
                target_files.push(relative(&target.src_path)?);
            }
        }
        target_files.sort();
        target_files.dedup();
        members.push(Member { manifest: relative(&package.manifest_path)?, target_files });
    }
    members.sort_by(|a, b| a.manifest.cmp(&b.manifest));
    Ok(members)
}

/// Crates whose presence as a build dependency means C code gets compiled.
const C_BUILD_CRATES: &[&str] = &["cc", "cmake"];

fn package_info(metadata: &Metadata, package: &str, binary: &str) -> Result<PackageInfo> {
    let Some(root) = metadata.workspace_package(package) else {
        let names: Vec<&str> = metadata.workspace_packages().map(|p| p.name.as_str()).collect();
        bail!(
            "{CONFIG_FILE}: dist.package {package:?} is not in the workspace; packages: {}",
            names.join(", ")
        );
    };
    let is_bin = |t: &&Target| t.kind.iter().any(|k| k == "bin");
    if !root.targets.iter().filter(is_bin).any(|t| t.name == binary) {
        let bins: Vec<&str> = root.targets.iter().filter(is_bin).map(|t| t.name.as_str()).collect();
        bail!(
            "{CONFIG_FILE}: dist.binary {binary:?} is not a binary of {package}; its binaries: {}",
            bins.join(", ")
        );
    }
    Ok(PackageInfo {
        version: root.version.clone(),
        license: root.license.clone().unwrap_or_else(|| "NOASSERTION".into()),
        repository: root.repository.clone().unwrap_or_default(),
        description: root.description.clone().unwrap_or_default(),
        needs_c_toolchain: needs_c_toolchain(metadata, &root.id)?,
    })
}

/// Whether any crate linked into `root`'s binary has a C build dependency or links a native
/// library: then cross builds need a C compiler for the target.
fn needs_c_toolchain(metadata: &Metadata, root: &str) -> Result<bool> {
    let is_c_crate =
        |id: &str| metadata.package(id).is_some_and(|p| C_BUILD_CRATES.contains(&p.name.as_str()));
    for id in metadata.linked_graph(root)?.into_keys() {
        let links_native = metadata.package(id).is_some_and(|p| p.links.is_some());
        let builds_c =
            metadata.node(id).is_some_and(|n| n.deps.iter().any(|d| d.is_build() && is_c_crate(&d.pkg)));
        if links_native || builds_c {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(json: serde_json::Value) -> Metadata {
        serde_json::from_value(json).unwrap()
    }

    fn graph(sys_build_dep: &str) -> Metadata {
        metadata(serde_json::json!({
            "target_directory": "/t",
            "packages": [
                {"id": "app", "name": "app", "version": "1.2.3", "targets": [{"name": "app", "kind": ["bin"]}]},
                {"id": "mid", "name": "mid", "version": "1.0.0", "targets": [], "source": "registry"},
                {"id": "sys", "name": "sys", "version": "1.0.0", "targets": [], "source": "registry"},
                {"id": "cc", "name": sys_build_dep, "version": "1.0.0", "targets": [], "source": "registry"},
                {"id": "dev", "name": "cc", "version": "1.0.0", "targets": [], "source": "registry"},
            ],
            "resolve": {"nodes": [
                {"id": "app", "deps": [
                    {"pkg": "mid", "dep_kinds": [{"kind": null}]},
                    {"pkg": "dev", "dep_kinds": [{"kind": "dev"}]},
                ]},
                {"id": "mid", "deps": [{"pkg": "sys", "dep_kinds": [{"kind": null}]}]},
                {"id": "sys", "deps": [{"pkg": "cc", "dep_kinds": [{"kind": "build"}]}]},
                {"id": "cc", "deps": []},
                {"id": "dev", "deps": []},
            ]}
        }))
    }

    #[test]
    fn a_transitive_cc_build_dependency_needs_a_c_toolchain() {
        assert!(package_info(&graph("cc"), "app", "app").unwrap().needs_c_toolchain);
        // A dev-dependency on cc, or a build dependency on something else, does not.
        assert!(!package_info(&graph("quote"), "app", "app").unwrap().needs_c_toolchain);
    }

    #[test]
    fn unknown_package_or_binary_is_named() {
        let err = package_info(&graph("cc"), "nope", "nope").unwrap_err().to_string();
        assert!(err.contains("dist.package \"nope\"") && err.contains("packages: app"), "{err}");
        let err = package_info(&graph("cc"), "app", "tool").unwrap_err().to_string();
        assert!(err.contains("dist.binary \"tool\"") && err.contains("binaries: app"), "{err}");
    }

    #[test]
    fn a_release_is_created_at_its_source_date() {
        let release = Release {
            name: "exonode".into(),
            version: "0.1.0".into(),
            commit: "c".into(),
            source_date_epoch: 0,
        };
        assert_eq!(release.created(), "1970-01-01T00:00:00Z");
    }
}
