//! Image assembly as pure functions: the image spec and bytes in, content-addressed blobs out.
//! The image is the spec on a scratch base, as buildx builds it with `--base scratch`: the
//! binary, a minimal /etc/passwd and /etc/group naming the non-root user, the volume (if any)
//! owned by that user, and the spec's config (user, entrypoint, env, labels, stop signal, and
//! the cmd, volume, port and healthcheck release.toml sets).

use std::collections::BTreeMap;

use anyhow::Result;

use super::layer::{self, Layer};
use super::spec::{
    Blob, Descriptor, Empty, Healthcheck, History, ImageManifest, Index, OciImageConfig, Platform, RootFs,
    RunConfig, ANNOTATION_CREATED, MEDIA_CONFIG, MEDIA_CYCLONEDX, MEDIA_EMPTY, MEDIA_INDEX, MEDIA_MANIFEST,
};
use crate::project::image_spec::{ImageSpec, SCRATCH};
use crate::project::matrix::Arch;
use crate::util::tar_writer::Entry;

/// Annotations on the index, so `imagetools inspect` shows what it is without a pull: the
/// labels, except the per-image base.
pub fn index_annotations(spec: &ImageSpec) -> BTreeMap<String, String> {
    let mut labels = spec.label_map(SCRATCH);
    labels.retain(|key, _| !key.ends_with(".base.name"));
    labels
}

/// /etc/passwd, /etc/group and the volume, if any: the same bytes for every arch, so registries and
/// layouts store it once.
pub fn user_layer(spec: &ImageSpec) -> Result<Layer> {
    let mut entries = vec![
        Entry::file("/etc/passwd", 0o644, spec.passwd().into_bytes()),
        Entry::file("/etc/group", 0o644, spec.group().into_bytes()),
    ];
    entries.extend(
        spec.volume.as_ref().map(|volume| Entry::dir(volume, 0o755).owned_by(spec.user, &spec.binary)),
    );
    layer::build(entries, spec.source_date_epoch)
}

pub fn binary_layer(spec: &ImageSpec, binary: Vec<u8>) -> Result<Layer> {
    layer::build(vec![Entry::file(&spec.binary_path(), 0o755, binary)], spec.source_date_epoch)
}

/// One arch's image: its config and manifest, and the blobs they name.
#[derive(Debug, Clone)]
pub struct ArchImage {
    pub arch: &'static Arch,
    pub layers: Vec<Layer>,
    pub config: Blob,
    pub manifest: Blob,
}

impl ArchImage {
    /// The manifest's descriptor with its platform, as an index lists it.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor { platform: Some(self.arch.platform.into()), ..self.manifest.descriptor() }
    }

    /// Layers and config: what `docker image ls` would call the compressed size, plus the config.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.blob.bytes.len() as u64).sum::<u64>() + self.config.bytes.len() as u64
    }

    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        self.layers.iter().map(|l| &l.blob).chain([&self.config, &self.manifest])
    }
}

pub fn image(spec: &ImageSpec, arch: &'static Arch, layers: Vec<Layer>) -> ArchImage {
    let platform = Platform::from(arch.platform);
    let history = layers
        .iter()
        .map(|layer| History {
            created: spec.created.clone(),
            created_by: format!("cargo xtask image --engine oci: {}", layer.paths.join(" ")),
            empty_layer: false,
        })
        .collect();
    let config = OciImageConfig {
        created: spec.created.clone(),
        architecture: platform.architecture.clone(),
        variant: platform.variant.clone(),
        os: platform.os.clone(),
        config: RunConfig {
            user: spec.user_and_group(),
            exposed_ports: spec.exposed_port().into_iter().map(|port| (port, Empty {})).collect(),
            env: spec.env_list(),
            entrypoint: spec.entrypoint(),
            cmd: spec.cmd.clone(),
            volumes: spec.volume.iter().map(|volume| (volume.clone(), Empty {})).collect(),
            working_dir: spec.working_dir.to_string(),
            labels: spec.label_map(spec.from(arch)),
            stop_signal: spec.stop_signal.to_string(),
            healthcheck: spec.healthcheck.as_ref().zip(spec.healthcheck_argv()).map(|(h, argv)| {
                Healthcheck {
                    test: std::iter::once("CMD".to_string()).chain(argv).collect(),
                    interval: nanos(h.interval),
                    timeout: nanos(h.timeout),
                    start_period: nanos(h.start_period),
                    retries: h.retries,
                }
            }),
        },
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
        history,
    };
    with_manifest(arch, Blob::json(MEDIA_CONFIG, &config), layers, &spec.created)
}

/// The image of a config and its layers: the OCI manifest naming them.
pub fn with_manifest(arch: &'static Arch, config: Blob, layers: Vec<Layer>, created: &str) -> ArchImage {
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: MEDIA_MANIFEST.into(),
        artifact_type: None,
        config: config.descriptor(),
        layers: layers.iter().map(|l| l.blob.descriptor()).collect(),
        subject: None,
        annotations: BTreeMap::from([(ANNOTATION_CREATED.to_string(), created.to_string())]),
    };
    ArchImage { arch, layers, config, manifest: Blob::json(MEDIA_MANIFEST, &manifest) }
}

/// Go's time.Duration, as Docker serializes it: nanoseconds.
fn nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).expect("health check durations are seconds")
}

/// The multi-arch index over `images`, in matrix order.
pub fn index(spec: &ImageSpec, images: &[ArchImage]) -> Blob {
    let index = Index::new(images.iter().map(ArchImage::descriptor).collect(), index_annotations(spec));
    Blob::json(MEDIA_INDEX, &index)
}

/// An SBOM attached to an image manifest as an OCI 1.1 artifact: its `subject` is the image
/// manifest, so `oras discover` and the referrers API find it without touching the image.
#[derive(Debug, Clone)]
pub struct SbomArtifact {
    pub empty_config: Blob,
    pub sbom: Blob,
    pub manifest: Blob,
}

impl SbomArtifact {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor { artifact_type: Some(MEDIA_CYCLONEDX.into()), ..self.manifest.descriptor() }
    }

    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        [&self.empty_config, &self.sbom, &self.manifest].into_iter()
    }
}

pub fn sbom_artifact(spec: &ImageSpec, subject: Descriptor, sbom_name: &str, sbom: Vec<u8>) -> SbomArtifact {
    let empty_config = Blob::new(MEDIA_EMPTY, b"{}".to_vec());
    let sbom = Blob::new(MEDIA_CYCLONEDX, sbom);
    let mut layer = sbom.descriptor();
    layer.annotations.insert("org.opencontainers.image.title".into(), sbom_name.into());
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: MEDIA_MANIFEST.into(),
        artifact_type: Some(MEDIA_CYCLONEDX.into()),
        config: empty_config.descriptor(),
        layers: vec![layer],
        subject: Some(Descriptor { platform: None, annotations: BTreeMap::new(), ..subject }),
        annotations: BTreeMap::from([(ANNOTATION_CREATED.to_string(), spec.created.clone())]),
    };
    SbomArtifact { empty_config, sbom, manifest: Blob::json(MEDIA_MANIFEST, &manifest) }
}

/// The referrers tag schema's index (`sha256-<hex>` tag), for registries without the
/// referrers API: the existing entries, plus ours when missing.
pub fn referrers_index(existing: Option<Index>, referrer: Descriptor) -> Blob {
    let mut index = existing.unwrap_or_else(|| Index::new(Vec::new(), BTreeMap::new()));
    if !index.manifests.iter().any(|d| d.digest == referrer.digest) {
        index.manifests.push(referrer);
    }
    Blob::json(MEDIA_INDEX, &index)
}

/// The tag the referrers tag schema uses for `digest`: `sha256:abc` → `sha256-abc`.
pub fn referrers_tag(digest: &str) -> String {
    digest.replace(':', "-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::matrix::by_name;

    fn facts() -> ImageSpec {
        crate::fixtures::image_spec(crate::project::config::BaseKind::Scratch)
    }

    fn arm64() -> ArchImage {
        let f = facts();
        image(
            &f,
            by_name("arm64v8").unwrap(),
            vec![user_layer(&f).unwrap(), binary_layer(&f, b"bin".to_vec()).unwrap()],
        )
    }

    #[test]
    fn the_config_matches_the_dockerfile() {
        let config: serde_json::Value = serde_json::from_slice(&arm64().config.bytes).unwrap();
        let c = &config["config"];
        assert_eq!(c["User"], "10001:10001");
        assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/local/bin/exonode"]));
        assert_eq!(c["Cmd"], serde_json::json!(["run"]));
        assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
        assert_eq!(c["ExposedPorts"], serde_json::json!({"7070/tcp": {}}));
        assert_eq!(c["StopSignal"], "SIGTERM");
        assert_eq!(c["WorkingDir"], "/");
        assert_eq!(
            c["Healthcheck"],
            serde_json::json!({"Test": ["CMD", "/usr/local/bin/exonode", "healthcheck"],
                "Interval": 30_000_000_000u64, "Timeout": 5_000_000_000u64, "StartPeriod": 5_000_000_000u64, "Retries": 3})
        );
        assert_eq!(c["Labels"]["org.opencontainers.image.base.name"], "scratch");
        assert_eq!(c["Labels"]["org.opencontainers.image.created"], "1970-01-02T00:00:00Z");
        assert_eq!(
            (config["architecture"].as_str(), config["variant"].as_str()),
            (Some("arm64"), Some("v8"))
        );
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn passwd_and_group_name_the_user_and_the_volume_is_theirs() {
        let layer = user_layer(&facts()).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(layer.blob.bytes.as_slice()));
        let mut seen = Vec::new();
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            seen.push((entry.path().unwrap().display().to_string(), entry.header().uid().unwrap(), text));
        }
        assert_eq!(seen[0], ("data/".into(), 10001, String::new()));
        assert!(seen.iter().any(|(p, _, t)| p == "etc/passwd"
            && t == "root:x:0:0:root:/root:/bin/sh\nexonode:x:10001:10001:exonode:/data:/sbin/nologin\n"));
        assert!(seen.iter().any(|(p, _, t)| p == "etc/group" && t == "root:x:0:\nexonode:x:10001:\n"));
    }

    #[test]
    fn the_index_lists_platforms_with_variants() {
        let f = facts();
        let images: Vec<ArchImage> = ["amd64", "arm64v8", "arm32v6", "i386"]
            .iter()
            .map(|name| image(&f, by_name(name).unwrap(), vec![user_layer(&f).unwrap()]))
            .collect();
        let index: Index = serde_json::from_slice(&index(&f, &images).bytes).unwrap();
        let platforms: Vec<String> = index
            .manifests
            .iter()
            .map(|d| {
                let p = d.platform.as_ref().unwrap();
                format!("{}/{}/{}", p.os, p.architecture, p.variant.as_deref().unwrap_or("-"))
            })
            .collect();
        assert_eq!(platforms, ["linux/amd64/-", "linux/arm64/v8", "linux/arm/v6", "linux/386/-"]);
        assert!(index.manifests.iter().all(|d| d.media_type == MEDIA_MANIFEST));
    }

    #[test]
    fn the_sbom_refers_to_its_image_and_the_referrers_index_merges() {
        let image = arm64();
        let artifact = sbom_artifact(&facts(), image.descriptor(), "x.cdx.json", b"{}".to_vec());
        let manifest: ImageManifest = serde_json::from_slice(&artifact.manifest.bytes).unwrap();
        assert_eq!(manifest.subject.unwrap().digest, image.manifest.digest);
        assert_eq!(manifest.artifact_type.as_deref(), Some(MEDIA_CYCLONEDX));
        assert_eq!(
            manifest.config.digest,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let other = Blob::new(MEDIA_MANIFEST, b"sig".to_vec()).descriptor();
        let merged: Index = serde_json::from_slice(
            &referrers_index(Some(Index::new(vec![other.clone()], BTreeMap::new())), artifact.descriptor())
                .bytes,
        )
        .unwrap();
        assert_eq!(merged.manifests, vec![other, artifact.descriptor()]);
        let again: Index =
            serde_json::from_slice(&referrers_index(Some(merged.clone()), artifact.descriptor()).bytes)
                .unwrap();
        assert_eq!(again, merged, "adding the same referrer twice changes nothing");
        assert_eq!(referrers_tag("sha256:abc"), "sha256-abc");
    }

    /// The OCI config and image manifest the engine writes for one arch, from fixed inputs.
    #[test]
    fn config_and_manifest_from_fixed_inputs() {
        let image = arm64();
        let pretty = |bytes: &[u8]| {
            let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            serde_json::to_string_pretty(&value).unwrap()
        };
        insta::assert_snapshot!("oci-config-arm64v8", pretty(&image.config.bytes));
        insta::assert_snapshot!("oci-manifest-arm64v8", pretty(&image.manifest.bytes));
    }
}
