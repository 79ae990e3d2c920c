//! The OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), as skopeo, umoci,
//! podman and `docker buildx imagetools` read it. Written beside the destination and renamed
//! into place (staging.rs), so a layout folder is complete or absent.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::spec::{Blob, Descriptor, Index, ANNOTATION_REF_NAME};
use crate::util::staging::Staging;

pub const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_VERSION: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";

/// `index.json`'s entries: each named one gets a `ref.name` annotation (what `oci:DIR:NAME`
/// selects); unnamed ones (the SBOM artifacts) are listed so tools that walk the layout find them.
pub fn index_json(named: &[(String, Descriptor)], unnamed: &[Descriptor]) -> Blob {
    let mut manifests: Vec<Descriptor> = named
        .iter()
        .map(|(name, descriptor)| {
            let mut d = descriptor.clone();
            d.annotations.insert(ANNOTATION_REF_NAME.into(), name.clone());
            d
        })
        .collect();
    manifests.extend(unnamed.iter().cloned());
    Blob::json(super::spec::MEDIA_INDEX, &Index::new(manifests, BTreeMap::new()))
}

/// Writes every blob once and `index.json`; returns the final folder.
pub fn write<'a>(
    dest: &Utf8Path,
    blobs: impl IntoIterator<Item = &'a Blob>,
    index: &Blob,
) -> Result<Utf8PathBuf> {
    let staging = Staging::create(dest, LAYOUT_FILE)?;
    let blob_dir = staging.dir.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir).with_context(|| format!("cannot create {blob_dir}"))?;
    for blob in blobs {
        let path = blob_dir.join(blob.hex());
        if !path.exists() {
            std::fs::write(&path, &blob.bytes).with_context(|| format!("cannot write {path}"))?;
        }
    }
    let files = [(LAYOUT_FILE, LAYOUT_VERSION.as_bytes()), ("index.json", index.bytes.as_slice())];
    for (name, bytes) in files {
        let path = staging.dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {path}"))?;
    }
    staging.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::oci::spec::MEDIA_MANIFEST;

    #[test]
    fn index_json_names_refs_and_lists_artifacts() {
        let image = Blob::new(MEDIA_MANIFEST, b"m".to_vec()).descriptor();
        let sbom = Blob::new(MEDIA_MANIFEST, b"s".to_vec()).descriptor();
        let blob = index_json(
            &[("1.0".into(), image.clone()), ("latest".into(), image)],
            std::slice::from_ref(&sbom),
        );
        let index: Index = serde_json::from_slice(&blob.bytes).unwrap();
        let names: Vec<Option<&str>> = index
            .manifests
            .iter()
            .map(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str))
            .collect();
        assert_eq!(names, [Some("1.0"), Some("latest"), None]);
        assert_eq!(index.manifests[2], sbom);
    }

    #[test]
    fn a_layout_appears_complete() {
        let root = Utf8PathBuf::from_path_buf(std::env::temp_dir())
            .unwrap()
            .join(format!("xtask-oci-layout-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let blob = Blob::new(MEDIA_MANIFEST, b"m".to_vec());
        let index = index_json(&[("1.0".into(), blob.descriptor())], &[]);
        let dest = write(&root.join("layout"), [&blob, &blob], &index).unwrap();
        assert_eq!(std::fs::read(dest.join("blobs/sha256").join(blob.hex())).unwrap(), b"m");
        assert_eq!(std::fs::read_to_string(dest.join(LAYOUT_FILE)).unwrap(), LAYOUT_VERSION);
        assert_eq!(std::fs::read(dest.join("index.json")).unwrap(), index.bytes);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
