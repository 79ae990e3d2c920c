//! CycloneDX 1.5 SBOMs: `<archive>.cdx.json` beside each archive, listing every crate
//! compiled into that target's binary, with its version, purl and the crates.io SHA-256 from
//! Cargo.lock. Deterministic: the timestamp is SOURCE_DATE_EPOCH, the serial number a UUID
//! derived from the document's own hash, components and edges sorted.
//!
//! Only crates linked into the binary are listed: normal dependencies reachable from the
//! package for that target (`cargo metadata --filter-platform`). Build scripts' dependencies,
//! proc-macros and dev-dependencies run on the build machine and ship nothing, so listing
//! them would report code that is not in the artifact; the release's Cargo.lock (in the
//! source at the tagged commit) covers the build machine's side. The Rust standard library
//! is not a Cargo.lock entry; the compiler that built it is recorded as a property.

use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};
use camino::Utf8Path;
use serde::{Deserialize, Serialize};

use crate::project::cargo_metadata::{Metadata, Package};
use crate::project::config::CONFIG_FILE;
use crate::project::workspace::{project_root, rfc3339, Release};
use crate::release::checksum;
use crate::release::layout;
use crate::release::manifest::BuiltWith;

pub const SPEC_VERSION: &str = "1.5";

/// Writes `<archive>.cdx.json` into `out` for `facts.target` and returns its file name.
pub fn write(metadata: &Metadata, facts: &Facts, out: &Utf8Path) -> Result<String> {
    let root = project_root();
    let lock_path = root.join("Cargo.lock");
    let lock_text =
        std::fs::read_to_string(&lock_path).with_context(|| format!("cannot read {lock_path}"))?;
    let lock: Lockfile =
        toml::from_str(&lock_text).with_context(|| format!("{lock_path} is not a valid Cargo.lock"))?;
    let bytes = document(metadata, &lock, facts)?;
    let name = layout::sbom_name(facts.archive_name);
    let path = out.join(&name);
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {path}"))?;
    Ok(name)
}

/// What an SBOM says it describes, read back for `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub archive: String,
    pub target: String,
    pub commit: String,
    pub version: String,
}

const PROPERTY_TARGET: &str = "cdx:rustc:sbom:target:triple";
const PROPERTY_ARCHIVE: &str = "exotool:archive";
const PROPERTY_COMMIT: &str = "exotool:commit";

/// Reads which archive, target, commit and version an SBOM file describes.
pub fn read_subject(path: &Utf8Path) -> Result<Subject> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    let bom: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{path} is not JSON"))?;
    let metadata = &bom["metadata"];
    let property = |name: &str| -> Result<String> {
        metadata["properties"]
            .as_array()
            .and_then(|props| props.iter().find(|p| p["name"] == name))
            .and_then(|p| p["value"].as_str())
            .map(str::to_string)
            .with_context(|| format!("{path} has no metadata property {name}"))
    };
    Ok(Subject {
        archive: property(PROPERTY_ARCHIVE)?,
        target: property(PROPERTY_TARGET)?,
        commit: property(PROPERTY_COMMIT)?,
        version: metadata["component"]["version"]
            .as_str()
            .with_context(|| format!("{path} has no metadata.component.version"))?
            .to_string(),
    })
}

pub struct Facts<'a> {
    pub release: &'a Release,
    pub target: &'a str,
    pub built_with: &'a BuiltWith,
    pub archive_name: &'a str,
    /// The Cargo package whose binary ships.
    pub package: &'a str,
}

#[derive(Deserialize)]
pub struct Lockfile {
    #[serde(default)]
    package: Vec<LockPackage>,
}

#[derive(Deserialize)]
struct LockPackage {
    name: String,
    version: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    checksum: Option<String>,
}

// CycloneDX JSON, in the spec's field order.
#[derive(Serialize)]
struct Bom {
    #[serde(rename = "$schema")]
    schema: String,
    #[serde(rename = "bomFormat")]
    bom_format: &'static str,
    #[serde(rename = "specVersion")]
    spec_version: &'static str,
    #[serde(rename = "serialNumber", skip_serializing_if = "Option::is_none")]
    serial_number: Option<String>,
    version: u32,
    metadata: BomMetadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
}

#[derive(Serialize)]
struct BomMetadata {
    timestamp: String,
    tools: Tools,
    component: Component,
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize, Default)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "String::is_empty")]
    bom_ref: String,
    name: String,
    version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<License>,
    #[serde(skip_serializing_if = "String::is_empty")]
    purl: String,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
struct License {
    expression: String,
}

#[derive(Serialize)]
struct Property {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(rename = "dependsOn")]
    depends_on: Vec<String>,
}

const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

/// The compiler and the pinned tools that made the binary, as in the manifest's `built_with`.
fn toolchain_properties(built: &BuiltWith) -> Vec<Property> {
    let mut properties = vec![
        Property { name: "exotool:backend", value: built.backend.clone() },
        Property { name: "exotool:rustc", value: built.rustc.clone() },
        Property { name: "exotool:toolchain", value: built.toolchain.clone() },
    ];
    let pinned_tools = [
        ("exotool:zig", &built.zig),
        ("exotool:cargo-zigbuild", &built.cargo_zigbuild),
        ("exotool:image", &built.image),
    ];
    for (name, value) in pinned_tools {
        if let Some(value) = value {
            properties.push(Property { name, value: value.clone() });
        }
    }
    properties
}

fn purl(package: &Package) -> String {
    let base = format!("pkg:cargo/{}@{}", package.name, package.version);
    match package.source.as_deref() {
        Some(source) if source.starts_with("git+") => {
            let url = source.trim_start_matches("git+");
            let encoded: String = url
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{base}?vcs_url=git%2B{encoded}")
        }
        Some(source) if source.starts_with("registry+") && source != CRATES_IO => {
            format!("{base}?repository_url={}", source.trim_start_matches("registry+").replace(':', "%3A"))
        }
        _ => base,
    }
}

/// Cargo accepts the old `MIT/Apache-2.0` form; SPDX wants `MIT OR Apache-2.0`.
fn spdx(license: &str) -> String {
    license.split('/').map(str::trim).collect::<Vec<_>>().join(" OR ")
}

/// The SBOM's bytes: pretty JSON ending in a newline.
pub fn document(metadata: &Metadata, lock: &Lockfile, facts: &Facts) -> Result<Vec<u8>> {
    let root = metadata.workspace_package(facts.package).with_context(|| {
        format!("{CONFIG_FILE}: dist.package {:?} is not in the workspace", facts.package)
    })?;
    let edges = metadata.linked_graph(&root.id)?;
    let package = |id: &str| metadata.package(id).expect("graph ids are packages");
    let bom_ref = |id: &str| purl(package(id));

    let mut components = Vec::new();
    for &id in edges.keys().filter(|id| **id != root.id) {
        let p = package(id);
        let checksum = lock
            .package
            .iter()
            .find(|l| l.name == p.name && l.version == p.version && l.source == p.source)
            .and_then(|l| l.checksum.clone());
        if p.source.as_deref().is_some_and(|s| s.starts_with("registry+")) && checksum.is_none() {
            bail!(
                "Cargo.lock has no checksum for {} {}; run `cargo generate-lockfile` or check the lockfile",
                p.name,
                p.version
            );
        }
        components.push(Component {
            kind: "library",
            bom_ref: bom_ref(id),
            name: p.name.clone(),
            version: p.version.clone(),
            scope: Some("required"),
            hashes: checksum.map(|content| vec![Hash { alg: "SHA-256", content }]).unwrap_or_default(),
            licenses: p.license.iter().map(|l| License { expression: spdx(l) }).collect(),
            purl: purl(p),
        });
    }
    components.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    let mut dependencies: Vec<Dependency> = edges
        .iter()
        .map(|(id, deps)| Dependency {
            reference: bom_ref(id),
            depends_on: deps.iter().map(|d| bom_ref(d)).collect::<BTreeSet<_>>().into_iter().collect(),
        })
        .collect();
    dependencies.sort_by(|a, b| a.reference.cmp(&b.reference));

    let release = facts.release;
    let mut bom = Bom {
        schema: format!("http://cyclonedx.org/schema/bom-{SPEC_VERSION}.schema.json"),
        bom_format: "CycloneDX",
        spec_version: SPEC_VERSION,
        serial_number: None,
        version: 1,
        metadata: BomMetadata {
            timestamp: rfc3339(release.source_date_epoch),
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    name: "cargo-xtask".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Component::default()
                }],
            },
            component: Component {
                kind: "application",
                bom_ref: purl(root),
                name: root.name.clone(),
                version: root.version.clone(),
                licenses: root.license.iter().map(|l| License { expression: spdx(l) }).collect(),
                purl: purl(root),
                ..Component::default()
            },
            properties: vec![
                Property { name: PROPERTY_TARGET, value: facts.target.into() },
                Property { name: PROPERTY_ARCHIVE, value: facts.archive_name.into() },
                Property { name: PROPERTY_COMMIT, value: release.commit.clone() },
            ]
            .into_iter()
            .chain(toolchain_properties(facts.built_with))
            .collect(),
        },
        components,
        dependencies,
    };
    // A UUID (version 8: custom) from the hash of everything else: the same inputs give the
    // same serial number, different inputs a different one.
    let hash = checksum::sha256_hex(&serde_json::to_vec(&bom).expect("the SBOM serializes"));
    let h = &hash[..32];
    let variant = ((u8::from_str_radix(&h[16..17], 16).expect("hex") & 0x3) | 0x8) as u32;
    bom.serial_number = Some(format!(
        "urn:uuid:{}-{}-8{}-{variant:x}{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    ));
    let mut bytes = serde_json::to_vec_pretty(&bom).expect("the SBOM serializes");
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> Metadata {
        serde_json::from_value(serde_json::json!({
            "packages": [
                {"id": "app", "name": "app", "version": "1.0.0", "license": "MIT", "targets": [{"kind": ["bin"]}]},
                {"id": "serde", "name": "serde", "version": "1.0.1", "license": "MIT/Apache-2.0", "targets": [{"kind": ["lib"]}], "source": CRATES_IO},
                {"id": "derive", "name": "serde_derive", "version": "1.0.1", "targets": [{"kind": ["proc-macro"]}], "source": CRATES_IO},
                {"id": "cc", "name": "cc", "version": "1.2.0", "targets": [{"kind": ["lib"]}], "source": CRATES_IO},
                {"id": "itoa", "name": "itoa", "version": "1.0.0", "targets": [{"kind": ["lib"]}], "source": CRATES_IO},
                {"id": "test", "name": "pretty", "version": "0.1.0", "targets": [{"kind": ["lib"]}], "source": CRATES_IO},
            ],
            "resolve": {"nodes": [
                {"id": "app", "deps": [
                    {"pkg": "serde", "dep_kinds": [{"kind": null}]},
                    {"pkg": "cc", "dep_kinds": [{"kind": "build"}]},
                    {"pkg": "test", "dep_kinds": [{"kind": "dev"}]},
                ]},
                {"id": "serde", "deps": [{"pkg": "derive", "dep_kinds": [{"kind": null}]}, {"pkg": "itoa", "dep_kinds": [{"kind": null}]}]},
                {"id": "derive", "deps": []},
                {"id": "cc", "deps": []},
                {"id": "itoa", "deps": []},
                {"id": "test", "deps": []},
            ]}
        }))
        .unwrap()
    }

    fn lock() -> Lockfile {
        toml::from_str(&format!(
            "version = 4\n[[package]]\nname = \"app\"\nversion = \"1.0.0\"\n\
             [[package]]\nname = \"serde\"\nversion = \"1.0.1\"\nsource = \"{CRATES_IO}\"\nchecksum = \"{}\"\n\
             [[package]]\nname = \"itoa\"\nversion = \"1.0.0\"\nsource = \"{CRATES_IO}\"\nchecksum = \"{}\"\n",
            "a".repeat(64),
            "b".repeat(64)
        ))
        .unwrap()
    }

    fn render(commit: &str) -> serde_json::Value {
        let release = Release {
            name: "app".into(),
            version: "1.0.0".into(),
            commit: commit.into(),
            source_date_epoch: 86400,
        };
        let facts = Facts {
            release: &release,
            target: "x86_64-unknown-linux-musl",
            built_with: &BuiltWith::fixture(),
            archive_name: "a.tar.gz",
            package: "app",
        };
        serde_json::from_slice(&document(&metadata(), &lock(), &facts).unwrap()).unwrap()
    }

    #[test]
    fn lists_linked_crates_with_checksums_and_nothing_else() {
        let bom = render("c1");
        let names: Vec<(&str, &str, &str)> = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap(),
                    c["purl"].as_str().unwrap(),
                    c["hashes"][0]["content"].as_str().unwrap(),
                )
            })
            .collect();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        assert_eq!(
            names,
            [("itoa", "pkg:cargo/itoa@1.0.0", b.as_str()), ("serde", "pkg:cargo/serde@1.0.1", a.as_str())]
        );
        assert_eq!(bom["components"][1]["licenses"][0]["expression"], "MIT OR Apache-2.0");
        assert_eq!(bom["metadata"]["timestamp"], "1970-01-02T00:00:00Z");
        assert_eq!(bom["metadata"]["component"]["purl"], "pkg:cargo/app@1.0.0");
        assert_eq!(bom["specVersion"], "1.5");
        assert_eq!(
            bom["dependencies"][0],
            serde_json::json!({"ref": "pkg:cargo/app@1.0.0", "dependsOn": ["pkg:cargo/serde@1.0.1"]})
        );
    }

    #[test]
    fn serial_number_is_a_uuid_derived_from_the_content() {
        let serial = |bom: &serde_json::Value| bom["serialNumber"].as_str().unwrap().to_string();
        let one = serial(&render("c1"));
        assert_eq!(one, serial(&render("c1")));
        assert_ne!(one, serial(&render("c2")));
        let uuid = one.strip_prefix("urn:uuid:").unwrap();
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(uuid.as_bytes()[14] == b'8' && b"89ab".contains(&uuid.as_bytes()[19]), "{uuid}");
    }

    #[test]
    fn a_registry_crate_without_checksum_is_an_error() {
        let release =
            Release { name: "app".into(), version: "1.0.0".into(), commit: "c".into(), source_date_epoch: 0 };
        let facts = Facts {
            release: &release,
            target: "t",
            built_with: &BuiltWith::default(),
            archive_name: "a",
            package: "app",
        };
        let lock: Lockfile = toml::from_str("version = 4\n").unwrap();
        let err = document(&metadata(), &lock, &facts).unwrap_err().to_string();
        assert!(err.contains("no checksum for itoa 1.0.0"), "{err}");
    }

    #[test]
    fn document_from_fixed_inputs() {
        let release = Release {
            name: "app".into(),
            version: "1.0.0".into(),
            commit: "c0ffee".repeat(7)[..40].to_string(),
            source_date_epoch: 86400,
        };
        let facts = Facts {
            release: &release,
            target: "armv7-unknown-linux-musleabihf",
            built_with: &BuiltWith::fixture(),
            archive_name: "app-1.0.0-armv7-unknown-linux-musleabihf.tar.gz",
            package: "app",
        };
        let bytes = document(&metadata(), &lock(), &facts).unwrap();
        insta::assert_snapshot!(String::from_utf8(bytes).unwrap());
    }
}
