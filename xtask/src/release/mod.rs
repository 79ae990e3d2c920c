//! The files of a dist folder: reproducible archives, checksums, the manifest, SBOMs and the
//! generated Dockerfile.release and install.sh.

pub mod archive;
pub mod checksum;
pub mod deb;
pub mod dist_dir;
pub mod dist_signing;
pub mod files;
pub mod manifest;
pub mod provenance;
pub mod sbom;
