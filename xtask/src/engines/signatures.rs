//! Image signatures and attestations, stored where cosign stores them, so `cosign verify`,
//! `cosign verify-attestation`, podman's `sigstoreSigned` policy and admission controllers read
//! them: for a manifest `sha256:<hex>`, the tag `sha256-<hex>.sig` holds an OCI manifest whose
//! layers are simple-signing payloads with the signature in an annotation, and
//! `sha256-<hex>.att` one whose layers are signed DSSE envelopes of in-toto Statements.
//!
//! Written by hand on the registry client (net/registry.rs), for both engines: sigstore-rs can push
//! this layout, but only on tokio and oci-client, the tree oci/mod.rs measured at 81 s of build;
//! the layout is two small manifests. Of the signing modes (`sign::Signing`), the key mode signs
//! natively (sign/key.rs), so the oci engine stays daemonless and needs no cosign. The keyless
//! mode needs Sigstore's Fulcio and Rekor, so it hands the same subjects to the cosign CLI.
//!
//! A layer is added only when an identical one is not there already; signatures are
//! deterministic (RFC 6979), so pushing unchanged input again leaves the registry as it was.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use camino::Utf8Path;
use serde_json::json;

use super::oci::spec::{Blob, Descriptor, ImageManifest, MEDIA_CONFIG, MEDIA_MANIFEST};
use super::{ImageRequest, Published};
use crate::net::registry::Client;
use crate::project::matrix::Arch;
use crate::project::workspace::Workspace;
use crate::release::provenance::{self, ImageBuild, CYCLONEDX_PREDICATE_TYPE, PREDICATE_TYPE};
use crate::sign::key::KeyPair;
use crate::sign::Signing;
use crate::util::cmd::Cmd;
use crate::util::report::seconds;

const MEDIA_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const MEDIA_DSSE: &str = "application/vnd.dsse.envelope.v1+json";
const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
const ANNOTATION_PREDICATE_TYPE: &str = "predicateType";

/// One pushed manifest to sign, with the Statements to attest to it.
struct Subject {
    /// `index` or the arch's name, for messages.
    label: String,
    /// `sha256:<hex>`.
    digest: String,
    /// (predicate type, Statement) pairs.
    attestations: Vec<(&'static str, String)>,
}

/// The Statements attached to one platform image: its SLSA provenance and its SBOM.
fn platform_subject(
    build: &ImageBuild,
    manifest: &crate::release::manifest::Manifest,
    facts: &crate::project::workspace::ProjectFacts,
    sbom_path: &Utf8Path,
) -> Result<Subject> {
    let sbom = std::fs::read(sbom_path).with_context(|| format!("cannot read the SBOM {sbom_path}"))?;
    Ok(Subject {
        label: build.artifact.arch.clone(),
        digest: build.manifest_digest.to_string(),
        attestations: vec![
            (PREDICATE_TYPE, provenance::image_statement(build, manifest, facts)),
            (
                CYCLONEDX_PREDICATE_TYPE,
                provenance::sbom_statement(build.repository, build.manifest_digest, &sbom)
                    .with_context(|| format!("{sbom_path}"))?,
            ),
        ],
    })
}

/// cosign's signed payload for `digest` in `repository` ("simple signing").
fn simple_signing_payload(repository: &str, digest: &str) -> Vec<u8> {
    let payload = json!({
        "critical": {
            "identity": { "docker-reference": repository },
            "image": { "docker-manifest-digest": digest },
            "type": "cosign container image signature",
        },
        "optional": null,
    });
    serde_json::to_vec(&payload).expect("the payload serializes")
}

/// `sha256:abc` + `sig` → `sha256-abc.sig`: the referrers tag schema's tag with cosign's suffix.
fn tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", super::oci::build::referrers_tag(digest))
}

/// A layer to add to a signature or attestation manifest.
struct Layer {
    blob: Blob,
    annotations: BTreeMap<String, String>,
}

impl Layer {
    fn signature(repository: &str, digest: &str, pair: &KeyPair) -> Layer {
        let payload = simple_signing_payload(repository, digest);
        let signature = pair.sign(&payload);
        Layer {
            blob: Blob::new(MEDIA_SIMPLE_SIGNING, payload),
            annotations: BTreeMap::from([(ANNOTATION_SIGNATURE.to_string(), signature)]),
        }
    }

    fn attestation(predicate_type: &str, statement: &str, pair: &KeyPair) -> Layer {
        Layer {
            blob: Blob::new(MEDIA_DSSE, provenance::envelope(statement, pair).into_bytes()),
            annotations: BTreeMap::from([
                (ANNOTATION_SIGNATURE.to_string(), String::new()),
                (ANNOTATION_PREDICATE_TYPE.to_string(), predicate_type.to_string()),
            ]),
        }
    }

    fn descriptor(&self) -> Descriptor {
        Descriptor { annotations: self.annotations.clone(), ..self.blob.descriptor() }
    }
}

/// The config cosign writes for its manifests: layers as diff_ids, zero times.
fn config(layers: &[Descriptor]) -> Blob {
    let zero = "0001-01-01T00:00:00Z";
    let config = json!({
        "architecture": "",
        "created": zero,
        "history": layers.iter().map(|_| json!({ "created": zero })).collect::<Vec<_>>(),
        "os": "",
        "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>() },
        "config": {},
    });
    Blob::json(MEDIA_CONFIG, &config)
}

/// The manifest to store (config, manifest, layers added): the existing one's layers plus
/// each new layer that is not there already; None when nothing is new.
fn merged(existing: Option<ImageManifest>, new: &[Layer]) -> Option<(Blob, Blob, usize)> {
    let mut layers = existing.map(|m| m.layers).unwrap_or_default();
    let before = layers.len();
    for layer in new {
        let descriptor = layer.descriptor();
        if !layers.contains(&descriptor) {
            layers.push(descriptor);
        }
    }
    let added = layers.len() - before;
    if added == 0 {
        return None;
    }
    let config = config(&layers);
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: MEDIA_MANIFEST.into(),
        artifact_type: None,
        config: config.descriptor(),
        layers,
        subject: None,
        annotations: BTreeMap::new(),
    };
    Some((config, Blob::json(MEDIA_MANIFEST, &manifest), added))
}

/// What signing did, for the summary.
#[derive(Default)]
struct Report {
    added: usize,
    present: usize,
    bytes: u64,
    elapsed: Duration,
}

impl Report {
    fn line(&self, subjects: usize) -> String {
        let mut out = format!(
            "signed {subjects} manifests in {}: {} signature/attestation layers added ({} bytes)",
            seconds(self.elapsed),
            self.added,
            self.bytes
        );
        if self.present > 0 {
            let _ = write!(out, ", {} already there", self.present);
        }
        out
    }
}

/// Adds `layers` to the manifest at `tag`, keeping what other signers put there.
fn store(client: &mut Client, tag: &str, layers: &[Layer], report: &mut Report) -> Result<()> {
    let existing = match client.get_manifest(tag)? {
        Some(bytes) => Some(serde_json::from_slice::<ImageManifest>(&bytes).with_context(|| {
            format!("{}:{tag} is not an image manifest: it cannot hold signatures", client.target.path)
        })?),
        None => None,
    };
    let Some((config, manifest, added)) = merged(existing, layers) else {
        report.present += layers.len();
        return Ok(());
    };
    for blob in layers.iter().map(|l| &l.blob).chain([&config]) {
        client.upload_blob(blob)?;
    }
    client.put_manifest(tag, &manifest)?;
    report.added += added;
    report.present += layers.len() - added;
    report.bytes += (manifest.bytes.len() + config.bytes.len()) as u64
        + layers.iter().map(|l| l.blob.bytes.len() as u64).sum::<u64>();
    Ok(())
}

/// Signs every subject with `pair` and attaches its attestations, in cosign's layout.
fn sign_with_key(
    client: &mut Client,
    repository: &str,
    pair: &KeyPair,
    subjects: &[Subject],
) -> Result<Report> {
    let started = Instant::now();
    let mut report = Report::default();
    for subject in subjects {
        let context = || format!("signing {} ({}) in {repository}", subject.label, subject.digest);
        let signature = Layer::signature(repository, &subject.digest, pair);
        store(client, &tag(&subject.digest, "sig"), &[signature], &mut report).with_context(context)?;
        let attestations: Vec<Layer> =
            subject.attestations.iter().map(|(kind, text)| Layer::attestation(kind, text, pair)).collect();
        if !attestations.is_empty() {
            store(client, &tag(&subject.digest, "att"), &attestations, &mut report).with_context(context)?;
        }
        eprintln!("sign: {} {}", subject.label, subject.digest);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The cosign commands of keyless signing; each predicate is written to `predicates`.
fn keyless_commands(repository: &str, subjects: &[Subject], predicates: &Utf8Path) -> Result<Vec<Cmd>> {
    let mut commands = Vec::new();
    for subject in subjects {
        let reference = format!("{repository}@{}", subject.digest);
        commands.push(Cmd::new("cosign").args(["sign", "--yes", &reference]));
        for (kind, statement) in &subject.attestations {
            let statement: serde_json::Value = serde_json::from_str(statement).expect("we wrote it");
            let cosign_type = if *kind == PREDICATE_TYPE { "slsaprovenance1" } else { "cyclonedx" };
            let file = predicates.join(format!("{}-{cosign_type}.json", subject.label));
            std::fs::write(&file, serde_json::to_vec(&statement["predicate"]).expect("JSON"))
                .with_context(|| format!("cannot write {file}"))?;
            commands.push(Cmd::new("cosign").args([
                "attest",
                "--yes",
                "--type",
                cosign_type,
                "--predicate",
                file.as_str(),
                &reference,
            ]));
        }
    }
    Ok(commands)
}

/// The keyless mode's plan lines: what cosign will be asked to do, digests not known yet.
fn keyless_plan(repository: &str, arches: &[&'static Arch]) -> String {
    let mut out = format!("    cosign sign --yes {repository}@<index digest>\n");
    for arch in arches {
        let reference = format!("{repository}@<{} digest>", arch.name);
        let _ = writeln!(out, "    cosign sign --yes {reference}");
        for kind in ["slsaprovenance1", "cyclonedx"] {
            let _ = writeln!(
                out,
                "    cosign attest --yes --type {kind} --predicate <{} {kind}> {reference}",
                arch.name
            );
        }
    }
    out
}

/// Signs the pushed `subjects` as `signing` says.
fn sign(
    sh: &xshell::Shell,
    signing: &Signing,
    client: &mut Client,
    repository: &str,
    subjects: &[Subject],
    scratch: &Utf8Path,
) -> Result<Option<Report>> {
    match signing {
        Signing::Unsigned => Ok(None),
        Signing::Key(pair) => sign_with_key(client, repository, pair, subjects).map(Some),
        Signing::Keyless => {
            let started = Instant::now();
            std::fs::create_dir_all(scratch).with_context(|| format!("cannot create {scratch}"))?;
            let commands = keyless_commands(repository, subjects, scratch);
            let result = commands.and_then(|commands| {
                commands.iter().try_for_each(|cmd| cmd.run_step(sh).context("cosign failed"))
            });
            let _ = std::fs::remove_dir_all(scratch);
            result?;
            Ok(Some(Report { added: subjects.len(), elapsed: started.elapsed(), ..Report::default() }))
        }
    }
}

/// How `image` signs: `--keyless`, `--sign-key`, release.toml's `[sign]`, or not at all. Without
/// --push nothing is signed, so no key (and no password) is needed.
pub fn configured(
    ws: &Workspace,
    sign_key: Option<&Utf8Path>,
    keyless: bool,
    push: bool,
    dry_run: bool,
) -> Result<Signing> {
    if !push {
        if sign_key.is_some() || keyless {
            bail!("--sign-key and --keyless sign what is pushed: add --push (signatures are stored in the registry)");
        }
        return Ok(Signing::Unsigned);
    }
    Signing::resolve(&ws.root, &ws.config.sign, sign_key, keyless, dry_run)
}

/// The plan's line saying how `signing` signs what is pushed.
pub fn plan_line(signing: &Signing, push: bool) -> String {
    let what = "the index and every platform manifest signed; SLSA provenance and CycloneDX SBOM attested per platform";
    match signing {
        _ if !push => {
            "sign:    nothing (signatures are stored in the registry: they come with --push)".into()
        }
        Signing::Unsigned => {
            "sign:    unsigned (no [sign] key in release.toml, no --sign-key or --keyless)".into()
        }
        Signing::Key(pair) => format!(
            "sign:    {what}, by the key {}… (cosign's layout: sha256-<digest>.sig / .att tags)",
            &pair.fingerprint()[..16]
        ),
        Signing::Keyless => format!("sign:    {what}, keyless by cosign (Sigstore OIDC):"),
    }
}

/// The plan's signing lines for `request`.
pub fn plan_lines(request: &ImageRequest) -> String {
    let mut out = format!("  {}\n", plan_line(&request.signing, request.push));
    if request.push && matches!(request.signing, Signing::Keyless) {
        out.push_str(&keyless_plan(&request.repository, &request.arches));
    }
    out
}

/// Signs a pushed release as the request says: its index, and each platform manifest with
/// its provenance and SBOM. Prints what was done.
pub fn sign_published(
    sh: &xshell::Shell,
    ws: &Workspace,
    request: &ImageRequest,
    engine: &str,
    client: &mut Client,
    published: &Published,
) -> Result<()> {
    if !request.signing.is_signed() {
        return Ok(());
    }
    let facts = ws.project_facts();
    let mut subjects = vec![Subject {
        label: "index".into(),
        digest: published.index_digest.clone(),
        attestations: Vec::new(),
    }];
    for (arch, digest) in request.arches.iter().zip(&published.platform_digests) {
        let artifact = request.artifact(arch);
        let build = ImageBuild {
            repository: &request.repository,
            manifest_digest: digest,
            artifact,
            engine,
            base: request.spec.from(arch),
        };
        subjects.push(platform_subject(&build, &request.manifest, &facts, &request.dist.sbom(artifact))?);
    }
    let scratch = ws.target_dir.join(format!("cosign-predicates-{}", std::process::id()));
    if let Some(report) = sign(sh, &request.signing, client, &request.repository, &subjects, &scratch)? {
        println!("{}", report.line(subjects.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    const DIGEST: &str = "sha256:d39b3e2f3b0f9b52b59aeea30f0daffd29a86f9bdc1bdc452ae14256dbe6eec6";

    #[test]
    fn the_payload_is_cosigns_byte_for_byte() {
        // Written by cosign 2.5 `sign` for this repository and digest.
        let cosign = r#"{"critical":{"identity":{"docker-reference":"localhost:5000/e2e/x"},"image":{"docker-manifest-digest":"sha256:d39b3e2f3b0f9b52b59aeea30f0daffd29a86f9bdc1bdc452ae14256dbe6eec6"},"type":"cosign container image signature"},"optional":null}"#;
        assert_eq!(
            String::from_utf8(simple_signing_payload("localhost:5000/e2e/x", DIGEST)).unwrap(),
            cosign
        );
        assert_eq!(tag(DIGEST, "sig"), format!("sha256-{}.sig", &DIGEST[7..]));
    }

    #[test]
    fn a_signature_layer_verifies_and_is_added_once() {
        let pair = fixtures::key_pair();
        let layer = Layer::signature("r", DIGEST, &pair);
        crate::sign::key::verify(
            &pair.public_pem(),
            &layer.blob.bytes,
            &layer.annotations[ANNOTATION_SIGNATURE],
        )
        .unwrap();

        let (config_blob, first, added) = merged(None, &[Layer::signature("r", DIGEST, &pair)]).unwrap();
        assert_eq!(added, 1);
        let stored: ImageManifest = serde_json::from_slice(&first.bytes).unwrap();
        assert_eq!(stored.layers, vec![layer.descriptor()]);
        assert_eq!(stored.config, config_blob.descriptor());
        let config: serde_json::Value = serde_json::from_slice(&config_blob.bytes).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"], json!([layer.blob.digest]));

        assert!(merged(Some(stored.clone()), &[layer]).is_none(), "the same signature again adds nothing");
        let other = Layer::signature("r", "sha256:00", &pair);
        let (_, second, _) = merged(Some(stored), &[other]).unwrap();
        let second: ImageManifest = serde_json::from_slice(&second.bytes).unwrap();
        assert_eq!(second.layers.len(), 2, "another signer's layer is kept");
    }
}
