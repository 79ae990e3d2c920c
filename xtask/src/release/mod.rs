//! The files of a dist folder: reproducible archives, checksums, the manifest, SBOMs, packages
//! and the generated Dockerfile.release and install.sh; `layout` names them all.

pub mod apt_repo;
pub mod archive;
pub mod checksum;
pub mod deb;
pub mod dist_dir;
pub mod dist_signing;
pub mod files;
pub mod layout;
pub mod manifest;
pub mod package;
pub mod provenance;
pub mod rpm;
pub mod rpm_repo;
pub mod sbom;
