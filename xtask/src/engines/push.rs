//! The push both engines make, in the order that keeps users safe: every blob, then each
//! platform manifest and its SBOM, then the index, all by digest. No tag moves here:
//! `tag_moves` says which tags `after_push` moves once the index is signed, so an interrupted
//! push leaves every tag where it was and no tag ever names an unsigned image.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::oci::build::{self, ArchImage, SbomArtifact};
use super::oci::spec::{Blob, Index};
use crate::net::registry::Client;
use crate::util::pool;

/// Upload workers: registries serve several uploads at once, and most of a push is waiting.
const PUSH_WORKERS: usize = 4;

/// What a push sent.
pub struct PushReport {
    pub elapsed: Duration,
    pub uploaded: usize,
    pub skipped: usize,
    pub referrers: &'static str,
}

/// Runs `work` on every item on `PUSH_WORKERS` threads, each with its own clone of `client`
/// (it holds the auth token); results in item order, or the earliest item's error.
fn on_push_workers<T: Sync, R: Send>(
    client: &Client,
    items: &[T],
    work: impl Fn(&mut Client, &T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    pool::run_ordered_with(PUSH_WORKERS, items, || client.clone(), |client, _, item| work(client, item))
}

/// Pushes `images` (each with its SBOM) and `index` to `client`'s repository by digest.
pub fn by_digest(
    client: &mut Client,
    repository: &str,
    images: &[(&ArchImage, &SbomArtifact)],
    index: &Blob,
) -> Result<PushReport> {
    let started = Instant::now();

    // 1. Every blob (layers, configs, SBOMs), each once; present ones are skipped.
    let mut seen = BTreeSet::new();
    let blobs: Vec<&Blob> = images
        .iter()
        .flat_map(|(image, sbom)| {
            image.layers.iter().map(|l| &l.blob).chain([&image.config, &sbom.empty_config, &sbom.sbom])
        })
        .filter(|blob| seen.insert(blob.digest.clone()))
        .collect();
    let sent = on_push_workers(client, &blobs, |client, blob| client.upload_blob(*blob))
        .with_context(|| format!("pushing to {repository}; no tag was moved"))?;
    let uploaded = sent.iter().filter(|sent| **sent).count();

    // 2. Per arch: its manifest, then its SBOM. Registries with the referrers API index the
    // SBOM on PUT (and say so with OCI-Subject); for the others (distribution 2.8, for one)
    // the referrers tag schema does the same job, as oras and cosign do.
    let fallbacks = on_push_workers(client, images, |client, (image, sbom)| {
        let arch = image.arch;
        let context =
            || format!("pushing {} ({}) to {repository}; no tag was moved", arch.name, arch.platform);
        client.put_manifest(&image.manifest.digest, &image.manifest).with_context(context)?;
        let outcome = client.put_manifest(&sbom.manifest.digest, &sbom.manifest).with_context(context)?;
        let mut fallback = false;
        if !outcome.subject_indexed {
            let tag = build::referrers_tag(&image.manifest.digest);
            let existing = match client.get_manifest(&tag).with_context(context)? {
                Some(bytes) => Some(serde_json::from_slice::<Index>(&bytes).with_context(|| {
                    format!("{repository}:{tag} is not an OCI index; cannot add the SBOM to it")
                })?),
                None => None,
            };
            client
                .put_manifest(&tag, &build::referrers_index(existing, sbom.descriptor()))
                .with_context(context)?;
            fallback = true;
        }
        eprintln!("push: {} {} and its SBOM", arch.name, image.manifest.digest);
        Ok(fallback)
    })?;

    // 3. Only now, with every platform manifest in place, the index, by digest too.
    client
        .put_manifest(&index.digest, index)
        .with_context(|| format!("pushing the index {} to {repository}; no tag was moved", index.digest))?;
    let referrers = if fallbacks.iter().any(|f| *f) {
        "referrers tag schema (sha256-<digest> tags)"
    } else {
        "referrers API"
    };
    Ok(PushReport { elapsed: started.elapsed(), uploaded, skipped: blobs.len() - uploaded, referrers })
}

/// The tags a push moves, in the order it moves them: every `TAG-ARCH`, then the list tags,
/// so `TAG` never names an index whose platforms are not all tagged.
pub fn tag_moves<'a>(tags: &[String], images: &[&'a ArchImage], index: &'a Blob) -> Vec<(String, &'a Blob)> {
    let per_arch = images.iter().flat_map(|image| {
        tags.iter().map(move |tag| (format!("{tag}-{}", image.arch.name), &image.manifest))
    });
    per_arch.chain(tags.iter().map(|tag| (tag.clone(), index))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::project::config::BaseKind;
    use crate::project::matrix::by_name;

    #[test]
    fn per_arch_tags_move_first_and_the_list_tags_last() {
        let spec = fixtures::image_spec(BaseKind::Scratch);
        let images: Vec<ArchImage> = ["amd64", "arm64v8"]
            .iter()
            .map(|name| build::image(&spec, by_name(name).unwrap(), vec![build::user_layer(&spec).unwrap()]))
            .collect();
        let refs: Vec<&ArchImage> = images.iter().collect();
        let index = build::index(&spec, &images);
        let tags = ["1.0".to_string(), "latest".to_string()];
        let moves: Vec<(String, String)> = tag_moves(&tags, &refs, &index)
            .into_iter()
            .map(|(tag, blob)| (tag, blob.digest.clone()))
            .collect();
        let (amd64, arm64) = (images[0].manifest.digest.clone(), images[1].manifest.digest.clone());
        assert_eq!(
            moves,
            [
                ("1.0-amd64".to_string(), amd64.clone()),
                ("latest-amd64".to_string(), amd64),
                ("1.0-arm64v8".to_string(), arm64.clone()),
                ("latest-arm64v8".to_string(), arm64),
                ("1.0".to_string(), index.digest.clone()),
                ("latest".to_string(), index.digest.clone()),
            ]
        );
    }
}
