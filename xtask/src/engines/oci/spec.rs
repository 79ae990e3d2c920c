//! The OCI image-spec and distribution-spec JSON this engine writes and reads, as small serde
//! types. Field order is the serialization order and every map is a `BTreeMap`, so the same
//! inputs always give the same bytes, hence the same digests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::net::registry::Content;
use crate::release::checksum;

/// The manifest types are the registry client's (it asks for them by name).
pub use crate::net::registry::{MEDIA_INDEX, MEDIA_MANIFEST};
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The config of an artifact manifest that has no config: the two bytes `{}`.
pub const MEDIA_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const MEDIA_CYCLONEDX: &str = "application/vnd.cyclonedx+json";

pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// Content-addressed bytes: a layer, a config, a manifest, an index or an SBOM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    /// `sha256:<hex>`.
    pub digest: String,
}

impl Blob {
    pub fn new(media_type: &'static str, bytes: Vec<u8>) -> Blob {
        let digest = format!("sha256:{}", checksum::sha256_hex(&bytes));
        Blob { media_type, bytes, digest }
    }

    /// Compact JSON; its bytes are what the digest covers.
    pub fn json(media_type: &'static str, value: &impl Serialize) -> Blob {
        Blob::new(media_type, serde_json::to_vec(value).expect("OCI types serialize"))
    }

    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.to_string(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            platform: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }

    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

impl Content for Blob {
    fn media_type(&self) -> &str {
        self.media_type
    }

    fn digest(&self) -> &str {
        &self.digest
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl From<crate::project::matrix::Platform> for Platform {
    fn from(p: crate::project::matrix::Platform) -> Platform {
        Platform {
            architecture: p.architecture.to_string(),
            os: p.os.to_string(),
            variant: p.variant.map(str::to_string),
        }
    }
}

/// An OCI image manifest (not the dist folder's `release::manifest::Manifest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (OCI 1.1 referrers), for the SBOM artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    pub fn new(manifests: Vec<Descriptor>, annotations: BTreeMap<String, String>) -> Index {
        Index { schema_version: 2, media_type: MEDIA_INDEX.to_string(), manifests, annotations }
    }
}

/// `application/vnd.oci.image.config.v1+json` (not release.toml's `[image]` section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciImageConfig {
    pub created: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    pub config: RunConfig,
    pub rootfs: RootFs,
    pub history: Vec<History>,
}

/// The image-spec's execution parameters, in Docker's PascalCase field names. What release.toml
/// leaves out (ports, command, volumes, health check) is left out here too, as buildx does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    pub user: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, Empty>,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Empty>,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
    /// Not in the OCI image-spec: a Docker extension that Docker, Podman and Kubernetes'
    /// dockershim read from the config, as they read it from images built by buildx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
}

/// Docker's `HEALTHCHECK`: durations in nanoseconds, as Go's time.Duration serializes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: u64,
    pub timeout: u64,
    pub start_period: u64,
    pub retries: u32,
}

/// Serializes as `{}`: the value of ExposedPorts and Volumes entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub created: String,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_serialize_in_spec_order_without_empty_fields() {
        let mut d = Blob::new(MEDIA_LAYER_GZIP, b"abc".to_vec()).descriptor();
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","size":3}"#
        );
        d.platform = Some(crate::project::matrix::by_name("arm32v5").unwrap().platform.into());
        let json = serde_json::to_string(&d).unwrap();
        assert!(
            json.ends_with(r#""platform":{"architecture":"arm","os":"linux","variant":"v5"}}"#),
            "{json}"
        );
    }

    #[test]
    fn empty_maps_and_flags_serialize_like_docker() {
        assert_eq!(serde_json::to_string(&Empty {}).unwrap(), "{}");
        let h = History { created: "t".into(), created_by: "b".into(), empty_layer: false };
        assert_eq!(serde_json::to_string(&h).unwrap(), r#"{"created":"t","created_by":"b"}"#);
    }
}
