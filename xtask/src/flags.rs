//! Every command and flag of `cargo xtask`, in one place.

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand};

use crate::backend::BackendRequest;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Release tooling: static binaries for six CPU architectures and multi-arch container images",
    long_about = "Release tooling for this workspace. `dist` cross-compiles static musl binaries for every \
                  architecture in release.toml, checks and packs them reproducibly, and writes SHA256SUMS, \
                  dist-manifest.json, Dockerfile.release and install.sh. `verify` re-checks a dist folder.",
    disable_help_subcommand = true
)]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Dist(Dist),
    Verify(Verify),
}

/// Build, check and pack release archives for the selected architectures.
///
/// Each binary is a static musl executable, checked for its ELF machine and float ABI and
/// run on its CPU class (qemu-user for foreign arches) before it is packed. The output folder
/// is assembled aside and renamed into place, so it is either complete or absent.
#[derive(Debug, Args)]
pub struct Dist {
    /// Build this architecture (repeatable): amd64, arm64v8, arm32v7, arm32v6, arm32v5, i386.
    /// Default: every arch in release.toml.
    #[arg(long = "arch", value_name = "NAME")]
    pub arch: Vec<String>,
    /// Build this Rust target triple (repeatable), e.g. armv7-unknown-linux-musleabihf.
    #[arg(long = "target", value_name = "TRIPLE")]
    pub target: Vec<String>,
    /// Output folder. Default: target/dist.
    #[arg(long, value_name = "DIR")]
    pub out: Option<Utf8PathBuf>,
    /// How to build: auto picks cargo + rust-lld when rustup has the target's std, cargo
    /// zigbuild when C code is compiled, nightly -Zbuild-std + zig when rustup has no std.
    #[arg(long, value_enum, default_value_t = BackendRequest::Auto)]
    pub backend: BackendRequest,
    /// Print the plan and every command, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Re-hash a dist folder against SHA256SUMS, dist-manifest.json and the .sha256 files.
#[derive(Debug, Args)]
pub struct Verify {
    /// The dist folder. Default: target/dist.
    pub dir: Option<Utf8PathBuf>,
}
