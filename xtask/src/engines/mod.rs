//! The image engines of `cargo xtask image`: buildx (a Docker daemon builds docker/Dockerfile)
//! and oci (images assembled directly from the dist archives). Both take an `ImageRequest`.

pub mod buildx;
pub mod oci;

use crate::project::config::BaseKind;
use crate::project::matrix::Arch;
use crate::release::dist_dir::DistDir;
use crate::release::manifest::{Artifact, Manifest};

/// Everything an engine needs, resolved and checked.
pub struct ImageRequest {
    pub repository: String,
    /// Expanded tags, e.g. ["0.1.0", "latest"]; per-arch images are `TAG-ARCH`.
    pub tags: Vec<String>,
    /// In matrix order.
    pub arches: Vec<&'static Arch>,
    pub base: BaseKind,
    pub dist: DistDir,
    /// The dist folder's manifest, already verified against its files.
    pub manifest: Manifest,
    pub push: bool,
    pub builder: Option<String>,
    pub dry_run: bool,
}

impl ImageRequest {
    pub fn artifact(&self, arch: &Arch) -> &Artifact {
        self.manifest
            .artifacts
            .iter()
            .find(|a| a.arch == arch.name)
            .expect("checked when the request was made")
    }

    /// `REPO:TAG-ARCH` for every tag.
    pub fn arch_refs(&self, arch: &Arch) -> Vec<String> {
        self.tags.iter().map(|tag| format!("{}:{tag}-{}", self.repository, arch.name)).collect()
    }

    /// `REPO:TAG` for every tag: the manifest lists.
    pub fn list_refs(&self) -> Vec<String> {
        self.tags.iter().map(|tag| format!("{}:{tag}", self.repository)).collect()
    }
}
