//! What is being released: the workspace, its release.toml, the arch matrix and the image spec.

pub mod builder_spec;
pub mod cargo_metadata;
pub mod config;
pub mod image_spec;
pub mod matrix;
/// Rendered only by its generator test; Docker users build the committed file.
#[cfg(test)]
pub mod source_dockerfile;
pub mod workspace;
