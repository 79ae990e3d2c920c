//! `cargo xtask image --engine oci`: not implemented yet.

use anyhow::{bail, Result};
use camino::Utf8Path;
use xshell::Shell;

use crate::image::ImageRequest;
use crate::workspace::Workspace;

pub fn run(_sh: &Shell, _ws: &Workspace, _request: &ImageRequest, _layout: Option<&Utf8Path>) -> Result<()> {
    bail!("--engine oci is not implemented yet")
}
