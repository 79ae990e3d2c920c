//! A buildx-built image taken out of the local engine for the by-digest push: `docker save`
//! writes it with a `manifest.json` naming its config and uncompressed layer tars (every Docker
//! since 1.10 does; Docker 25 and later add an OCI layout beside it). Each layer is checked
//! against the config's diff_ids and gzipped the way the oci engine gzips its own, so both
//! engines push the same way and the same local image always gives the same digests.
//!
//! Written by hand: no maintained crate reads `docker save` archives; the tar crate does the
//! reading.

use std::collections::BTreeMap;
use std::io::Read as _;

use anyhow::{bail, Context, Result};
use camino::Utf8Path;
use serde::Deserialize;

use crate::engines::oci::build::{self, ArchImage};
use crate::engines::oci::layer;
use crate::engines::oci::spec::{Blob, MEDIA_CONFIG};
use crate::project::matrix::{normalize_platform_of, Arch};

/// One entry of `docker save`'s manifest.json.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    layers: Vec<String>,
}

/// The parts of an image config this check reads.
#[derive(Deserialize)]
struct SavedConfig {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    rootfs: SavedRootFs,
}

#[derive(Deserialize)]
struct SavedRootFs {
    diff_ids: Vec<String>,
}

/// The image `docker save` wrote to `archive`, whose config must have the digest `image_id`
/// (the local engine's image ID) and the platform of `arch`; `created` dates its manifest.
pub fn image_from_save(
    archive: &Utf8Path,
    image_id: &str,
    arch: &'static Arch,
    created: &str,
) -> Result<ArchImage> {
    let mut files = read_archive(archive)?;
    let mut take = |name: &str| {
        files.remove(name).with_context(|| format!("{archive} has no {name}: not a `docker save` archive"))
    };
    let saved: Vec<SavedImage> = serde_json::from_slice(&take("manifest.json")?)
        .with_context(|| format!("{archive}: manifest.json is not a `docker save` manifest"))?;
    let [saved] = &saved[..] else {
        bail!("{archive} holds {} images, expected exactly one", saved.len());
    };
    let config = Blob::new(MEDIA_CONFIG, take(&saved.config)?);
    if config.digest != image_id {
        bail!("{archive}: the image config is {}, not the image {image_id} that was built", config.digest);
    }
    let parsed: SavedConfig = serde_json::from_slice(&config.bytes)
        .with_context(|| format!("{archive}: {} is not an image config", saved.config))?;
    let platform = normalize_platform_of(&parsed.os, &parsed.architecture, parsed.variant.as_deref());
    if platform != arch.platform.normalized() {
        bail!("{archive} holds a {platform} image, not {}", arch.platform);
    }
    if parsed.rootfs.diff_ids.len() != saved.layers.len() {
        bail!(
            "{archive}: the config names {} layers, manifest.json {}",
            parsed.rootfs.diff_ids.len(),
            saved.layers.len()
        );
    }
    let mut layers = Vec::new();
    for (name, diff_id) in saved.layers.iter().zip(&parsed.rootfs.diff_ids) {
        let tar = take(name)?;
        let layer = layer::from_tar(&tar, Vec::new())?;
        if &layer.diff_id != diff_id {
            bail!("{archive}: layer {name} is {}, but the config says {diff_id}", layer.diff_id);
        }
        layers.push(layer);
    }
    Ok(build::with_manifest(arch, config, layers, created))
}

/// Every file of the archive by its path. A saved image is the base and the binary, a few
/// MiB, so it is read whole.
fn read_archive(archive: &Utf8Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let file = std::fs::File::open(archive).with_context(|| format!("cannot open {archive}"))?;
    let mut files = BTreeMap::new();
    let mut tar = tar::Archive::new(file);
    for entry in tar.entries().with_context(|| format!("{archive} is not a tar archive"))? {
        let mut entry = entry.with_context(|| format!("{archive} is damaged"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).trim_start_matches("./").to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).with_context(|| format!("cannot read {path} from {archive}"))?;
        files.insert(path, bytes);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::matrix::by_name;
    use crate::release::checksum;
    use crate::util::tar_writer::{self, Entry};

    /// A `docker save` archive (the pre-25 layout: `ID.json` and `N/layer.tar`) of one layer.
    fn saved(config: &[u8], layer_tar: &[u8]) -> Vec<u8> {
        let config_name = format!("{}.json", checksum::sha256_hex(config));
        let manifest =
            serde_json::json!([{"Config": config_name, "RepoTags": ["x:1"], "Layers": ["1/layer.tar"]}]);
        let entries = vec![
            Entry::file("/manifest.json", 0o644, serde_json::to_vec(&manifest).unwrap()),
            Entry::file(&format!("/{config_name}"), 0o644, config.to_vec()),
            Entry::file("/1/layer.tar", 0o644, layer_tar.to_vec()),
        ];
        tar_writer::tar(&entries, 0).unwrap()
    }

    fn config(arch: &str, variant: Option<&str>, diff_id: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"os": "linux", "architecture": arch, "variant": variant,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]}}))
        .unwrap()
    }

    fn write(name: &str, bytes: &[u8]) -> camino::Utf8PathBuf {
        let path = crate::fixtures::scratch(name).join("image.tar");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_saved_image_becomes_a_gzipped_oci_image_with_its_config_untouched() {
        let layer_tar = tar_writer::tar(&[Entry::file("/bin/x", 0o755, b"x".to_vec())], 0).unwrap();
        let diff_id = format!("sha256:{}", checksum::sha256_hex(&layer_tar));
        let config = config("arm", Some("v7"), &diff_id);
        let id = format!("sha256:{}", checksum::sha256_hex(&config));
        let arch = by_name("arm32v7").unwrap();
        let path = write("save-ok", &saved(&config, &layer_tar));
        let image = image_from_save(&path, &id, arch, "1970-01-02T00:00:00Z").unwrap();
        assert_eq!(image.config.digest, id, "the config is pushed as the engine built it");
        assert_eq!(image.layers[0].diff_id, diff_id);
        assert_eq!(image.layers[0].blob.bytes[..2], [0x1f, 0x8b], "the layer is gzipped");
        let again = image_from_save(&path, &id, arch, "1970-01-02T00:00:00Z").unwrap();
        assert_eq!(again.manifest.digest, image.manifest.digest, "same image, same digest");
    }

    #[test]
    fn a_saved_image_of_another_platform_id_or_layer_is_refused() {
        let layer_tar = tar_writer::tar(&[Entry::file("/bin/x", 0o755, b"x".to_vec())], 0).unwrap();
        let diff_id = format!("sha256:{}", checksum::sha256_hex(&layer_tar));
        let arch = by_name("arm32v7").unwrap();
        let check = |name: &str, config: Vec<u8>, id: Option<&str>| {
            let own_id = format!("sha256:{}", checksum::sha256_hex(&config));
            let path = write(name, &saved(&config, &layer_tar));
            format!("{:#}", image_from_save(&path, id.unwrap_or(&own_id), arch, "").unwrap_err())
        };
        let err = check("save-arch", config("arm64", None, &diff_id), None);
        assert!(err.contains("holds a linux/arm64 image, not linux/arm/v7"), "{err}");
        let err = check("save-id", config("arm", Some("v7"), &diff_id), Some("sha256:00"));
        assert!(err.contains("not the image sha256:00 that was built"), "{err}");
        let err = check("save-layer", config("arm", Some("v7"), &format!("sha256:{}", "0".repeat(64))), None);
        assert!(err.contains("layer 1/layer.tar is sha256:") && err.contains("but the config says"), "{err}");
    }
}
