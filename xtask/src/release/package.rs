//! The one description every package format is fed (as nfpm's `Info`): name, version, arch,
//! the words about it, the installed files with their modes and which are configuration, and
//! the service with the system account it runs as. `deb.rs` turns it into a `.deb`, `rpm.rs`
//! into an `.rpm`; another format is one more module fed the same `PackageSpec`.

use anyhow::{Context, Result};
use camino::Utf8Path;

use crate::project::config::DebConfig;
use crate::project::matrix::Arch;
use crate::project::workspace::{ProjectFacts, Release};

pub const LICENSE_FILE: &str = "LICENSE";

/// The project's files a package is made of, read (and checked) before anything is built.
pub struct PackageFiles {
    pub unit: String,
    pub defaults: String,
    /// The project's license text (its LICENSE file), for the copyright file.
    pub license_text: String,
}

impl PackageFiles {
    pub fn read(root: &Utf8Path, config: &DebConfig) -> Result<PackageFiles> {
        let read = |path: &Utf8Path, what: &str| {
            std::fs::read_to_string(root.join(path)).with_context(|| {
                format!("{what} {path} cannot be read: create it, or set {what} in release.toml")
            })
        };
        Ok(PackageFiles {
            unit: read(&config.unit, "deb.unit")?,
            defaults: read(&config.defaults, "deb.defaults")?,
            license_text: std::fs::read_to_string(root.join(LICENSE_FILE)).with_context(|| {
                format!("{LICENSE_FILE} cannot be read: the packages' copyright file quotes it; add it to the root")
            })?,
        })
    }
}

/// What every package of one release shares; `PackageSpec::new` adds the arch and binary.
pub struct PackageInputs<'a> {
    pub release: &'a Release,
    pub config: &'a DebConfig,
    pub facts: &'a ProjectFacts,
    /// The binary's name: `/usr/bin/<binary>`, `<binary>.service`, the account.
    pub binary: &'a str,
    pub files: &'a PackageFiles,
}

/// One package of the binary for one arch, as every format describes it.
pub struct PackageSpec {
    pub name: String,
    /// The upstream version (the release's) and the packaging revision.
    pub upstream_version: String,
    pub revision: u32,
    pub arch: &'static Arch,
    /// One line, no final period, not starting with the package's name.
    pub summary: String,
    /// The longer description, line by line.
    pub description: Vec<String>,
    pub maintainer: String,
    pub homepage: String,
    pub section: String,
    /// The SPDX expression, and the license's full text.
    pub license: String,
    pub license_text: String,
    /// The commit the release is built from, and its date: every file's mtime.
    pub commit: String,
    pub source_date_epoch: u64,
    /// The installed tree, besides what a format adds of its own (docs, checksums).
    pub files: Vec<PackageFile>,
    /// The binary's name (`usr/bin/<binary>`), which also names its service
    /// (`<binary>.service`), the system account it runs as (made by the maintainer scripts)
    /// and its state folder (`/var/lib/<binary>`).
    pub binary: String,
}

/// One installed file, by its path from `/` (without the leading `/`).
pub struct PackageFile {
    pub path: String,
    pub mode: u32,
    pub contents: Vec<u8>,
    /// A configuration file: the package manager keeps the admin's changes to it.
    pub conffile: bool,
}

/// Where the binary is installed, from `/`.
pub fn binary_path(binary: &str) -> String {
    format!("usr/bin/{binary}")
}

/// `<version>-<revision>`, the package's full version.
pub fn version(upstream: &str, revision: u32) -> String {
    format!("{upstream}-{revision}")
}

impl PackageSpec {
    pub fn new(inputs: &PackageInputs, arch: &'static Arch, binary: &[u8]) -> PackageSpec {
        let (release, config, name) = (inputs.release, inputs.config, inputs.binary);
        let file = |path: String, mode, contents: &[u8], conffile| PackageFile {
            path,
            mode,
            contents: contents.to_vec(),
            conffile,
        };
        PackageSpec {
            name: release.name.clone(),
            upstream_version: release.version.clone(),
            revision: config.revision,
            arch,
            summary: summary(&inputs.facts.description, name),
            description: vec![
                format!("A static build of {name}, run by systemd as {name}.service under its own"),
                format!("unprivileged account, sandboxed, with its state in /var/lib/{name}."),
                format!("Settings: /etc/default/{name}."),
            ],
            maintainer: config.maintainer.clone(),
            homepage: inputs.facts.source.clone(),
            section: config.section.clone(),
            license: inputs.facts.licenses.clone(),
            license_text: inputs.files.license_text.clone(),
            commit: release.commit.clone(),
            source_date_epoch: release.source_date_epoch,
            files: vec![
                file(format!("etc/default/{name}"), 0o644, inputs.files.defaults.as_bytes(), true),
                file(
                    format!("lib/systemd/system/{name}.service"),
                    0o644,
                    inputs.files.unit.as_bytes(),
                    false,
                ),
                file(binary_path(name), 0o755, binary, false),
            ],
            binary: name.to_string(),
        }
    }

    pub fn version(&self) -> String {
        version(&self.upstream_version, self.revision)
    }

    /// The installed binary's bytes.
    pub fn binary_contents(&self) -> &[u8] {
        let path = binary_path(&self.binary);
        self.files.iter().find(|f| f.path == path).map_or(&[], |f| f.contents.as_slice())
    }
}

/// A synopsis: one line, no final period, and not starting with the package name.
fn summary(description: &str, name: &str) -> String {
    let line = description.lines().next().unwrap_or(name).trim().trim_end_matches('.');
    let without_name = line
        .strip_prefix(name)
        .map(|rest| rest.trim_start_matches([':', ' ', ',']))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(line);
    without_name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_one_line_without_the_name_or_a_final_period() {
        assert_eq!(summary("exonode: a small daemon.", "exonode"), "a small daemon");
        assert_eq!(summary("ExoTool node", "exonode"), "ExoTool node");
        assert_eq!(summary("", "exonode"), "exonode");
    }
}
