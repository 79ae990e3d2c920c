//! What is being released: the workspace, its release.toml and the arch matrix.

pub mod cargo_metadata;
pub mod config;
pub mod matrix;
pub mod workspace;
