//! What is being released: the workspace, its release.toml, the arch matrix and the image spec.

pub mod builder_spec;
pub mod cargo_metadata;
pub mod config;
pub mod image_spec;
pub mod matrix;
pub mod workspace;
