//! `provenance.intoto.json`: an in-toto v1 Statement with a SLSA v1.0 provenance predicate whose
//! subjects are the release's archives, recording the source (repository, commit), the build
//! inputs (Cargo.lock and release.toml digests, source date) and how each arch was built (the
//! manifest's `built_with`). It holds no wall-clock time and no machine path, so the same commit
//! gives the same bytes. With a key it is also signed as a DSSE envelope,
//! `provenance.intoto.dsse.json`, in the format `cosign attest-blob` writes, which
//! `cosign verify-blob-attestation --type slsaprovenance1` accepts (`sign::dsse`).

use anyhow::{bail, Context, Result};
use camino::Utf8Path;
use serde::{Deserialize, Serialize};

use crate::project::workspace::ProjectFacts;
use crate::release::checksum;
use crate::release::manifest::{Artifact, BuiltWith, Manifest};
use crate::sign::dsse;
use crate::sign::key::KeyPair;

const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What `cosign verify-attestation --type cyclonedx` looks for.
pub const CYCLONEDX_PREDICATE_TYPE: &str = "https://cyclonedx.org/bom";

/// Digests of the files that decide a build besides the commit's sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub cargo_lock_sha256: String,
    pub release_toml_sha256: String,
}

impl Inputs {
    pub fn read(root: &Utf8Path) -> Result<Inputs> {
        let digest = |name: &str| checksum::sha256_file(&root.join(name)).map(|(sha, _)| sha);
        Ok(Inputs { cargo_lock_sha256: digest("Cargo.lock")?, release_toml_sha256: digest("release.toml")? })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: serde_json::Value,
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: Digest,
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub sha256: String,
}

#[derive(Serialize)]
struct ArchBuild<'a> {
    arch: &'a str,
    target: &'a str,
    archive: &'a str,
    binary_sha256: &'a str,
    built_with: &'a BuiltWith,
}

/// The Statement's bytes (pretty JSON and a final newline).
pub fn statement(manifest: &Manifest, facts: &ProjectFacts, inputs: &Inputs) -> String {
    let builds: Vec<ArchBuild> = manifest
        .artifacts
        .iter()
        .map(|a| ArchBuild {
            arch: &a.arch,
            target: &a.target,
            archive: &a.name,
            binary_sha256: &a.binary.sha256,
            built_with: &a.built_with,
        })
        .collect();
    let source = format!("git+{}", facts.source);
    let predicate = serde_json::json!({
        "buildDefinition": {
            "buildType": format!("{}/xtask/dist@v1", facts.source),
            "externalParameters": {
                "source": { "uri": source, "digest": { "gitCommit": manifest.commit } },
                "arches": manifest.artifacts.iter().map(|a| a.arch.as_str()).collect::<Vec<_>>(),
            },
            "internalParameters": { "sourceDateEpoch": manifest.source_date_epoch, "builds": builds },
            "resolvedDependencies": [
                { "uri": source, "digest": { "gitCommit": manifest.commit } },
                { "name": "Cargo.lock", "digest": { "sha256": inputs.cargo_lock_sha256 } },
                { "name": "release.toml", "digest": { "sha256": inputs.release_toml_sha256 } },
            ],
        },
        "runDetails": {
            "builder": { "id": format!("{}/xtask", facts.source) },
            "metadata": {},
        },
    });
    let subjects = manifest
        .artifacts
        .iter()
        .map(|a| Subject { name: a.name.clone(), digest: Digest { sha256: a.sha256.clone() } })
        .collect();
    statement_text(subjects, PREDICATE_TYPE, predicate)
}

fn statement_text(subject: Vec<Subject>, predicate_type: &str, predicate: serde_json::Value) -> String {
    let statement = Statement {
        statement_type: STATEMENT_TYPE.into(),
        subject,
        predicate_type: predicate_type.into(),
        predicate,
    };
    format!("{}\n", serde_json::to_string_pretty(&statement).expect("the statement serializes"))
}

/// How one platform image was made: what `image` attaches to it as a signed attestation.
pub struct ImageBuild<'a> {
    pub repository: &'a str,
    /// The platform manifest's `sha256:<hex>`: the Statement's subject.
    pub manifest_digest: &'a str,
    pub artifact: &'a Artifact,
    pub engine: &'a str,
    /// The image it was built on: `scratch` or a base image's name.
    pub base: &'a str,
}

fn image_subject(repository: &str, manifest_digest: &str) -> Vec<Subject> {
    let sha256 = manifest_digest.trim_start_matches("sha256:").to_string();
    vec![Subject { name: repository.to_string(), digest: Digest { sha256 } }]
}

/// SLSA provenance of one platform image: its subject is the image manifest; it names the
/// archive and binary the image was made from, so a user can follow an image back to the
/// release files (and the files' own provenance).
pub fn image_statement(build: &ImageBuild, manifest: &Manifest, facts: &ProjectFacts) -> String {
    let a = build.artifact;
    let source = format!("git+{}", facts.source);
    let predicate = serde_json::json!({
        "buildDefinition": {
            "buildType": format!("{}/xtask/image@v1", facts.source),
            "externalParameters": {
                "source": { "uri": source, "digest": { "gitCommit": manifest.commit } },
                "repository": build.repository,
                "arch": a.arch,
                "platform": a.platform,
                "engine": build.engine,
                "base": build.base,
            },
            "internalParameters": { "sourceDateEpoch": manifest.source_date_epoch, "built_with": a.built_with },
            "resolvedDependencies": [
                { "uri": source, "digest": { "gitCommit": manifest.commit } },
                { "name": a.name, "digest": { "sha256": a.sha256 } },
                { "name": a.binary.path, "digest": { "sha256": a.binary.sha256 } },
            ],
        },
        "runDetails": {
            "builder": { "id": format!("{}/xtask", facts.source) },
            "metadata": {},
        },
    });
    statement_text(image_subject(build.repository, build.manifest_digest), PREDICATE_TYPE, predicate)
}

/// The arch's CycloneDX SBOM as an in-toto Statement about one platform image.
pub fn sbom_statement(repository: &str, manifest_digest: &str, sbom: &[u8]) -> Result<String> {
    let predicate: serde_json::Value = serde_json::from_slice(sbom).context("the SBOM is not JSON")?;
    Ok(statement_text(image_subject(repository, manifest_digest), CYCLONEDX_PREDICATE_TYPE, predicate))
}

/// The signed envelope of `statement`, as `cosign attest-blob` writes it.
pub fn envelope(statement: &str, pair: &KeyPair) -> String {
    dsse::sign(PAYLOAD_TYPE, statement, pair)
}

/// Checks the envelope's signature with `public_pem`; returns the Statement it signs.
pub fn verify_envelope(text: &str, public_pem: &str) -> Result<Vec<u8>> {
    dsse::verify(text, PAYLOAD_TYPE, public_pem)
}

/// The subjects of a Statement's bytes.
pub fn subjects(text: &[u8]) -> Result<Vec<Subject>> {
    let statement: Statement = serde_json::from_slice(text).context("not an in-toto Statement")?;
    if statement.statement_type != STATEMENT_TYPE || statement.predicate_type != PREDICATE_TYPE {
        bail!("a {} of {}, expected SLSA provenance v1", statement.statement_type, statement.predicate_type);
    }
    Ok(statement.subject)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::fixtures;

    fn inputs() -> Inputs {
        Inputs { cargo_lock_sha256: "c".repeat(64), release_toml_sha256: "d".repeat(64) }
    }

    #[test]
    fn the_statement_names_every_archive_and_the_inputs_and_no_time() {
        let manifest = crate::release::manifest::tests::sample();
        let text = statement(&manifest, &fixtures::facts(), &inputs());
        assert_eq!(text, statement(&manifest, &fixtures::facts(), &inputs()));
        let subjects = subjects(text.as_bytes()).unwrap();
        let names: Vec<&str> = subjects.iter().map(|s| s.name.as_str()).collect();
        let archives: Vec<&str> = manifest.artifacts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, archives);
        assert!(text.contains(&"c".repeat(64)) && text.contains(&manifest.commit), "{text}");
        assert!(!text.contains("timestamp") && !text.contains("startedOn"), "{text}");
    }

    #[test]
    fn the_envelope_verifies_with_its_key_only_and_covers_the_payload() {
        let pair = fixtures::key_pair();
        let text = statement(&crate::release::manifest::tests::sample(), &fixtures::facts(), &inputs());
        let signed = envelope(&text, &pair);
        assert_eq!(signed, envelope(&text, &pair), "deterministic");
        assert_eq!(verify_envelope(&signed, &pair.public_pem()).unwrap(), text.as_bytes());
        let forged = signed.replace(
            &base64::engine::general_purpose::STANDARD.encode(&text),
            &base64::engine::general_purpose::STANDARD.encode(text.replace("exonode", "evil")),
        );
        assert!(verify_envelope(&forged, &pair.public_pem()).is_err());
    }
}
