//! `dist-manifest.json`: what a dist folder holds, for people, CI and the image builders.
//! Field order is fixed by these types, artifacts follow the arch matrix, so the same
//! release always serializes to the same bytes.

use anyhow::{Context, Result};
use camino::Utf8Path;
use serde::{Deserialize, Serialize};

use crate::project::matrix::Arch;
use crate::project::workspace::Release;
use crate::release::checksum::sha256_hex;
use crate::release::layout;

pub const SCHEMA: &str = "exotool-dist-manifest/2";

/// An artifact's `run_check` when its binary was packed without being started on its CPU.
pub const RUN_CHECK_SKIPPED: &str = "skipped";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: String,
    pub name: String,
    pub version: String,
    pub commit: String,
    pub source_date_epoch: u64,
    /// `source_date_epoch` as RFC 3339, for people.
    pub source_date: String,
    pub artifacts: Vec<Artifact>,
    /// How SHA256SUMS is signed, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureInfo>,
}

/// SHA256SUMS.sig signs SHA256SUMS (cosign's blob format); `public_key` is the key that checks
/// it, and `public_key_sha256` that key's fingerprint (SHA-256 of its DER encoding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureInfo {
    pub signature: String,
    pub public_key: String,
    pub public_key_sha256: String,
    /// The key itself (PEM), which install.sh embeds to check SHA256SUMS.sig.
    pub public_key_pem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// The archive's file name.
    pub name: String,
    pub target: String,
    pub arch: String,
    pub platform: String,
    pub size: u64,
    pub sha256: String,
    pub binary: Binary,
    /// The CycloneDX SBOM beside the archive: `<archive>.cdx.json`.
    pub sbom: String,
    /// How it was built: backend and compiler, so anyone can rebuild it the same way.
    pub built_with: BuiltWith,
    /// The CPU the run check started the binary on (its qemu `-cpu` model, or "this host"), or
    /// `RUN_CHECK_SKIPPED` when nothing here could start it and the release allowed that.
    #[serde(default)]
    pub run_check: String,
    /// The Debian package made from the same binary, when `[deb]` is enabled and the arch
    /// has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deb: Option<DebPackage>,
    /// The rpm package made from the same binary, when `[rpm]` is enabled and the arch has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<RpmPackage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebPackage {
    /// `<package>_<version>-<revision>_<architecture>.deb`.
    pub name: String,
    /// Debian's architecture name (armhf, armel, ...).
    pub architecture: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpmPackage {
    /// `<package>-<version>-<release>.<architecture>.rpm`.
    pub name: String,
    /// rpm's architecture name (x86_64, armv7hl, ...).
    pub architecture: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binary {
    /// Path inside the archive.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltWith {
    pub backend: String,
    /// `rustc -V` of the compiler that built it.
    pub rustc: String,
    /// The pinned rustup toolchain it came from (rust-toolchain.toml, or release.toml's nightly).
    pub toolchain: String,
    /// The pinned zig and cargo-zigbuild, for the backends that link with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zig: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cargo_zigbuild: Option<String>,
    /// The container image the build ran in: the builder image (docker/Dockerfile.builder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

#[cfg(test)]
impl BuiltWith {
    pub fn fixture() -> BuiltWith {
        BuiltWith {
            backend: "cargo".into(),
            rustc: "rustc 1.95.0".into(),
            toolchain: "1.95.0".into(),
            ..BuiltWith::default()
        }
    }
}

impl Artifact {
    /// The entry of an archive as packed: names from the release and arch, sizes and digests
    /// measured from the archive's and the binary's bytes.
    pub fn packed(
        release: &Release,
        arch: &Arch,
        archive: &[u8],
        binary: &[u8],
        built_with: BuiltWith,
    ) -> Artifact {
        let planned = Artifact::planned(release, arch, &sha256_hex(archive));
        Artifact {
            size: archive.len() as u64,
            binary: Binary { size: binary.len() as u64, sha256: sha256_hex(binary), ..planned.binary },
            built_with,
            ..planned
        }
    }

    /// The entry `dist` will write for `arch`, before there is anything to measure: names and
    /// platform are known, sizes are 0 and digests are `digest` (for plans and previews).
    pub fn planned(release: &Release, arch: &Arch, digest: &str) -> Artifact {
        let name = layout::archive_name(release, arch.target);
        Artifact {
            target: arch.target.to_string(),
            arch: arch.name.to_string(),
            platform: arch.platform.to_string(),
            size: 0,
            sha256: digest.to_string(),
            binary: Binary {
                path: layout::binary_in_archive(release, arch.target),
                size: 0,
                sha256: digest.to_string(),
            },
            sbom: layout::sbom_name(&name),
            built_with: BuiltWith::default(),
            run_check: String::new(),
            deb: None,
            rpm: None,
            name,
        }
    }
}

impl Artifact {
    /// Whether the binary was packed without being started on its CPU class.
    pub fn run_check_skipped(&self) -> bool {
        self.run_check == RUN_CHECK_SKIPPED
    }

    /// The file names of the packages made from this archive's binary.
    pub fn package_names(&self) -> Vec<&str> {
        let deb = self.deb.as_ref().map(|p| p.name.as_str());
        deb.into_iter().chain(self.rpm.as_ref().map(|p| p.name.as_str())).collect()
    }
}

impl Manifest {
    pub fn new(release: &Release, artifacts: Vec<Artifact>) -> Manifest {
        Manifest {
            schema: SCHEMA.to_string(),
            name: release.name.clone(),
            version: release.version.clone(),
            commit: release.commit.clone(),
            source_date_epoch: release.source_date_epoch,
            source_date: release.created(),
            artifacts,
            signature: None,
        }
    }

    pub fn release(&self) -> Release {
        Release {
            name: self.name.clone(),
            version: self.version.clone(),
            commit: self.commit.clone(),
            source_date_epoch: self.source_date_epoch,
        }
    }

    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("manifest serializes");
        json.push('\n');
        json
    }

    pub fn read(path: &Utf8Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
        let manifest: Manifest =
            serde_json::from_str(&text).with_context(|| format!("{path} is not a valid dist manifest"))?;
        anyhow::ensure!(
            manifest.schema == SCHEMA,
            "{path}: schema {:?} is not supported (expected {SCHEMA:?}); rebuild it with this xtask",
            manifest.schema
        );
        Ok(manifest)
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn sample() -> Manifest {
        let release = Release {
            name: "exonode".into(),
            version: "0.1.0".into(),
            commit: "abc".into(),
            source_date_epoch: 86400,
        };
        Manifest::new(
            &release,
            vec![Artifact {
                name: "exonode-0.1.0-x86_64-unknown-linux-musl.tar.gz".into(),
                target: "x86_64-unknown-linux-musl".into(),
                arch: "amd64".into(),
                platform: "linux/amd64".into(),
                size: 10,
                sha256: "a".repeat(64),
                binary: Binary {
                    path: "exonode-0.1.0-x86_64-unknown-linux-musl/exonode".into(),
                    size: 20,
                    sha256: "b".repeat(64),
                },
                sbom: "exonode-0.1.0-x86_64-unknown-linux-musl.tar.gz.cdx.json".into(),
                built_with: BuiltWith::fixture(),
                run_check: "this host".into(),
                deb: None,
                rpm: None,
            }],
        )
    }

    #[test]
    fn json_shape_is_stable() {
        let json = sample().to_json();
        let expected = r#"{
  "schema": "exotool-dist-manifest/2",
  "name": "exonode",
  "version": "0.1.0",
  "commit": "abc",
  "source_date_epoch": 86400,
  "source_date": "1970-01-02T00:00:00Z",
  "artifacts": [
    {
      "name": "exonode-0.1.0-x86_64-unknown-linux-musl.tar.gz",
      "target": "x86_64-unknown-linux-musl",
      "arch": "amd64",
      "platform": "linux/amd64",
      "size": 10,
      "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "binary": {
        "path": "exonode-0.1.0-x86_64-unknown-linux-musl/exonode",
        "size": 20,
        "sha256": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" + "bbbbbbbbbbbbbbbb"
      },
      "sbom": "exonode-0.1.0-x86_64-unknown-linux-musl.tar.gz.cdx.json",
      "built_with": {
        "backend": "cargo",
        "rustc": "rustc 1.95.0",
        "toolchain": "1.95.0"
      },
      "run_check": "this host"
    }
  ]
}
"#
        .replace("\" + \"", "");
        assert_eq!(json, expected);
        let back: Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sample());
    }
}
