//! Every command and flag of `cargo xtask`, in one place.

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand};

use crate::build::backend::BackendRequest;
use crate::project::config::BaseKind;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Release tooling: static binaries for ten CPU architectures and multi-arch container images",
    long_about = "Release tooling for this workspace, configured by release.toml.\n\n\
                  Start with `doctor`: it lists every tool the configured release needs, found or \
                  missing, and what provides each. \
                  `dist` cross-compiles static musl binaries for every architecture, checks them and \
                  packs them reproducibly with SHA256SUMS, dist-manifest.json, Dockerfile.release and \
                  install.sh; `dist merge` combines per-arch dist folders; `verify` re-checks one. \
                  `image` builds per-arch container images and a manifest list from a dist folder. \
                  `builder` makes the pinned builder image, with which Docker alone builds every arch \
                  (docker/Dockerfile.source, docker/hooks). \
                  `lint` runs the CI lint gates; `bench` measures throughput; `mutants` runs mutation \
                  testing of the release checks.",
    disable_help_subcommand = true
)]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Doctor(Doctor),
    Dist(DistCli),
    Verify(Verify),
    Repo(Repo),
    Image(Image),
    Bench(Bench),
    Builder(Builder),
    Lint(Lint),
    Mutants(Mutants),
}

/// List every tool the configured release needs, found or missing, and what provides each.
///
/// For release.toml's arches: rustc and each target's rust-std (and whether rustup can add
/// it, or refused before), the pinned nightly and rust-src and zig with cargo-zigbuild where
/// the build needs them, and qemu-user for each foreign arch with the CPU model its binary is
/// started on; then docker and buildx (image), cosign (--keyless), lintian and dpkg-deb ([deb])
/// and the linters of `lint`. Each line: status (ok, fetch: dist or the command fetches it,
/// instead: the arch builds another way, MISSING, absent: optional), the tool, its version,
/// what needs it, and the command or dist plan step that provides it. Nothing is installed.
///
/// Exits 1 when the release needs something that is missing and nothing here can provide (a
/// missing emulator; zig when offline with CARGO_NET_OFFLINE); 0 otherwise.
#[derive(Debug, Args)]
pub struct Doctor {
    /// Print the report as JSON (tools, ready, verdict).
    #[arg(long)]
    pub json: bool,
    /// The release is signed keyless: cosign is needed (it is optional otherwise).
    #[arg(long)]
    pub keyless: bool,
    /// The image engine the release uses: buildx needs docker and buildx, oci neither.
    /// Default: docker and buildx are listed as optional.
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// Under every tool, what needs it and what provides it (shown by default only under a
    /// tool that is not simply found).
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// Build, check and pack release archives for the selected architectures.
///
/// Each binary is a static musl executable, checked for its ELF machine and float ABI and
/// run on its CPU class (qemu-user for foreign arches) before it is packed. The output folder
/// is assembled aside and renamed into place, so it is either complete or absent.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DistCli {
    #[command(subcommand)]
    pub command: Option<DistCommand>,
    #[command(flatten)]
    pub build: Dist,
}

/// The flags of a `dist` build (without a subcommand).
#[derive(Debug, Args)]
pub struct Dist {
    /// Build this architecture (repeatable): amd64, arm64v8, arm32v7, arm32v6, arm32v5, i386,
    /// riscv64, ppc64le, s390x, mips64le, loongarch64. Default: every arch in release.toml.
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
    /// Pack a binary built elsewhere for ARCH instead of building it (repeatable), e.g.
    /// `--prebuilt arm64v8=build/exonode`. It gets the same ELF check, run check and
    /// reproducible packing as a binary built here; the manifest records backend "prebuilt".
    #[arg(long, value_name = "ARCH=PATH")]
    pub prebuilt: Vec<String>,
    /// Arches worked on at once (build, checks, packing). Default: the number of CPUs.
    /// Each arch builds in a target dir of its own, so cargo's lock does not serialise them;
    /// the output is byte-identical whatever the number.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    #[command(flatten)]
    pub sign: SignFlags,
    /// Pack a binary that nothing here can start on its CPU class (no qemu-user on PATH, and
    /// none to fetch: no apt, offline) instead of stopping before the builds; the summary, the
    /// manifest's `run_check` ("skipped") and `verify` say so. Also `dist.run-check = "optional"`.
    #[arg(long)]
    pub allow_unrun: bool,
    /// Show the whole plan and every command's own output (cargo's, rustup's, pip's) as it
    /// comes. Without it a run prints two head lines, one line per toolchain step, about three
    /// per arch and the summary; a failing command's error carries its last 20 lines.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Print the plan and every command, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `--sign-key KEY | --keyless`, flattened into `dist`, `dist merge` and `image`, which
/// resolve them with release.toml's `[sign]` into one `sign::Signing`. The help here is
/// `dist`'s; the others say what they sign with `mut_arg` (`sign_help`).
#[derive(Debug, Args)]
pub struct SignFlags {
    /// Sign SHA256SUMS with this cosign private key (`cosign generate-key-pair`; its password
    /// from COSIGN_PASSWORD): writes SHA256SUMS.sig and cosign.pub. Default: release.toml's
    /// [sign] key or key-env; neither means unsigned.
    #[arg(long, value_name = "KEY", conflicts_with = "keyless")]
    pub sign_key: Option<Utf8PathBuf>,
    /// Sign SHA256SUMS keyless with the cosign CLI (Sigstore's OIDC flow, e.g. GitHub Actions
    /// with `id-token: write`) into SHA256SUMS.sigstore.json, instead of with a key.
    #[arg(long)]
    pub keyless: bool,
}

/// The help of `dist merge`'s and `image`'s sign flags, which sign other things than `dist`'s
/// (written as clap shows a doc comment: one paragraph, no final period).
mod sign_help {
    pub const MERGE_KEY: &str = "Sign the merged SHA256SUMS with this cosign private key (as `dist \
        --sign-key`). Default: release.toml's [sign] key or key-env. Signed parts need a key";
    pub const MERGE_KEYLESS: &str =
        "Sign the merged SHA256SUMS keyless with the cosign CLI (as `dist --keyless`)";
    pub const IMAGE_KEY: &str = "With --push: sign the index and every platform manifest with this \
        cosign private key (password from COSIGN_PASSWORD), and attest each platform's SLSA \
        provenance and CycloneDX SBOM, in cosign's registry layout. Default: release.toml's \
        [sign] key or key-env; neither means unsigned";
    pub const IMAGE_KEYLESS: &str = "With --push: sign and attest keyless with the cosign CLI \
        (Sigstore's OIDC flow, e.g. GitHub Actions with `id-token: write`); --dry-run prints the \
        cosign commands";
}

#[derive(Debug, Subcommand)]
pub enum DistCommand {
    Merge(DistMerge),
}

/// Combine dist folders built per arch (`dist --arch X --out PART`) into one.
///
/// The result is byte-identical to one `dist` run over the same arches. Parts must come from
/// the same version, commit and source date, pass their own checksums, and not share an arch.
#[derive(Debug, Args)]
#[command(
    mut_arg("sign_key", |arg| arg.help(sign_help::MERGE_KEY)),
    mut_arg("keyless", |arg| arg.help(sign_help::MERGE_KEYLESS))
)]
pub struct DistMerge {
    /// The dist folders to combine.
    #[arg(value_name = "PART", required = true)]
    pub parts: Vec<Utf8PathBuf>,
    /// Output folder. Default: target/dist.
    #[arg(long, value_name = "DIR")]
    pub out: Option<Utf8PathBuf>,
    #[command(flatten)]
    pub sign: SignFlags,
    /// Check the parts and print the plan, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Build the pinned builder image (docker/Dockerfile.builder), or publish it with --push.
///
/// The image holds rust-toolchain.toml's stable Rust, release.toml's dated nightly with
/// rust-src, zig and cargo-zigbuild, and qemu-user: all `cargo xtask dist` needs, so
/// docker/Dockerfile.source and the Docker Hub hooks build every arch with Docker alone. Its
/// tag is derived from the pins (IMAGE-builder:rust<stable>-<nightly>-zig<v>-zigbuild<v>), so a
/// pin change gives a new tag. Downloads trust the CA bundle of SSL_CERT_FILE (default
/// /etc/ssl/certs/ca-certificates.crt), passed as the BuildKit secret `ca-bundle`.
#[derive(Debug, Args)]
pub struct Builder {
    /// Build for every builder platform (linux/amd64, linux/arm64), push one tag per platform
    /// and publish the manifest list under the pinned tag. Without it: this host's platform,
    /// loaded into the local engine.
    #[arg(long)]
    pub push: bool,
    /// Build for this platform (repeatable with --push): linux/amd64 or linux/arm64.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Vec<String>,
    /// Image repository. Default: image.repository in release.toml followed by `-builder`.
    #[arg(long = "image", value_name = "REPO")]
    pub image: Option<String>,
    /// The buildx builder to use (e.g. one with native arm64 nodes for --push).
    #[arg(long, value_name = "NAME")]
    pub builder: Option<String>,
    /// Show the commands and docker buildx's own output as it comes. Without it a run prints
    /// one line per platform (a terminal shows the build's latest line beside it); a failing
    /// build's error carries its last 20 lines.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Print the commands, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Run the CI lint gates: hadolint, shellcheck and the GitHub workflow schema.
///
/// Lints docker/Dockerfile*, the shell scripts in ci/, docker/hooks/ and .ci/, the workflows
/// in .github/workflows/, and a Dockerfile.release and install.sh generated from the templates
/// for every arch. Missing linters are fetched into the tool cache under the target dir.
#[derive(Debug, Args)]
pub struct Lint {
    /// Lint this tree instead of the workspace (it needs the same layout).
    #[arg(long, value_name = "DIR")]
    pub root: Option<Utf8PathBuf>,
    /// The dist folder whose Debian packages lintian checks. Default: target/dist; without
    /// packages there, lintian is skipped and says so (run `cargo xtask dist` first).
    #[arg(long, value_name = "DIR")]
    pub dist_dir: Option<Utf8PathBuf>,
    /// Print the linter commands, and run nothing (fetch nothing).
    #[arg(long)]
    pub dry_run: bool,
}

/// Re-hash a dist folder against SHA256SUMS, dist-manifest.json and the .sha256 files, and
/// check SHA256SUMS.sig when the release is signed.
#[derive(Debug, Args)]
pub struct Verify {
    /// The dist folder. Default: target/dist.
    pub dir: Option<Utf8PathBuf>,
    /// The public key you trust (e.g. the project's cosign.pub, pinned from its site): the
    /// folder must be signed by it. Without it, a signed folder is checked against its own
    /// cosign.pub, which proves integrity, not origin.
    #[arg(long, value_name = "PUBKEY")]
    pub key: Option<Utf8PathBuf>,
}

/// Add the packages of dist folders to a signed apt and rpm repository that any static HTTP
/// server or object store can serve.
///
/// Each dist folder must verify (`cargo xtask verify`). Its .debs go to REPO/pool/main/, and
/// REPO/dists/<suite>/ is rewritten: a Packages index (and Packages.gz) per architecture, a
/// Release listing them with their SHA-256, signed as InRelease and Release.gpg. Its .rpms,
/// header-signed, go to REPO/rpm/Packages/, and REPO/rpm/repodata/ is rewritten: primary,
/// filelists and other, and repomd.xml listing them, signed as repomd.xml.asc. One repository
/// key signs all, dated by the newest release's commit time (so the same releases give the same
/// bytes). REPO/KEY.asc is the public key; REPO/<package>.sources and REPO/<package>.repo are
/// the files users drop into /etc/apt/sources.list.d and /etc/yum.repos.d. Releases added
/// earlier stay (upgrades need them); adding one again changes nothing; a different file under
/// a name a pool holds is refused. Each new index replaces the old one in one rename, so clients
/// see the old repository or the new one.
#[derive(Debug, Args)]
pub struct Repo {
    /// Dist folders whose packages to add.
    #[arg(long = "from", value_name = "DIST", required = true, num_args = 1..)]
    pub from: Vec<Utf8PathBuf>,
    /// The repository folder, made if missing.
    #[arg(long, value_name = "REPO")]
    pub into: Utf8PathBuf,
    /// The armored OpenPGP secret key that signs the repository (`gpg --armor
    /// --export-secret-keys ID`); its passphrase, if any, in REPO_KEY_PASSPHRASE. Default:
    /// release.toml's [repo] key.
    #[arg(long, value_name = "FILE")]
    pub repo_key: Option<Utf8PathBuf>,
    /// The URL the repository is served from, written into the .sources and .repo files. Default:
    /// release.toml's [repo] url.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Check the dist folders and the key, print what would be added, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// `docker buildx build` per arch from a Dockerfile rendered from release.toml (docker/Dockerfile
    /// for this repository), then a manifest list.
    Buildx,
    /// Assemble OCI images directly from the dist archives: no daemon, no emulation,
    /// reproducible digests, an SBOM attached to each image. Always FROM scratch (the binary,
    /// /etc/passwd, /etc/group and any volume); image.base and --base busybox are for buildx.
    /// --push reads credentials from REGISTRY_USERNAME/REGISTRY_PASSWORD or the Docker config
    /// (credential helpers, then `auths`), and moves no tag until everything is pushed.
    Oci,
}

/// Build one container image per architecture from the dist archives, and a manifest list.
///
/// Per arch: a multi-stage build that verifies the arch's archive against its checksum and
/// copies only the binary into the base image, tagged IMAGE:TAG-ARCH. With --push, every
/// per-arch tag is pushed and the manifest list IMAGE:TAG is created from them and checked;
/// without it, each image is loaded into the local engine.
#[derive(Debug, Args)]
#[command(
    mut_arg("sign_key", |arg| arg.help(sign_help::IMAGE_KEY)),
    mut_arg("keyless", |arg| arg.help(sign_help::IMAGE_KEYLESS))
)]
pub struct Image {
    /// Build this architecture (repeatable).
    #[arg(long = "arch", value_name = "NAME", conflicts_with = "all_arch")]
    pub arch: Vec<String>,
    /// Build every architecture in release.toml.
    #[arg(long)]
    pub all_arch: bool,
    /// Image repository, e.g. ghcr.io/org/exonode. Default: image.repository in release.toml.
    #[arg(long = "image", value_name = "REPO")]
    pub image: Option<String>,
    /// Tag (repeatable). Default: image.tags in release.toml ("{version}", "latest", ...).
    #[arg(long = "tag", value_name = "TAG")]
    pub tag: Vec<String>,
    /// The dist folder holding the archives. Default: target/dist, built first (with
    /// `cargo xtask dist`) when it is missing, stale or incomplete.
    #[arg(long, value_name = "DIR")]
    pub dist_dir: Option<Utf8PathBuf>,
    /// Runtime base: busybox (per-arch busybox image) or scratch. Default: image.base.
    /// The oci engine always builds FROM scratch.
    #[arg(long, value_enum)]
    pub base: Option<BaseKind>,
    /// Push the per-arch images and create the manifest list in the registry.
    #[arg(long)]
    pub push: bool,
    /// The buildx builder to use (e.g. a remote builder with native arm64 nodes).
    #[arg(long, value_name = "NAME")]
    pub builder: Option<String>,
    /// How to build the images.
    #[arg(long, value_enum, default_value_t = Engine::Buildx)]
    pub engine: Engine,
    #[command(flatten)]
    pub sign: SignFlags,
    /// With --push: write what was pushed to FILE as JSON (repository, tags, the index
    /// digest, each platform's manifest digest, how it was signed), for the CI steps after it.
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<Utf8PathBuf>,
    /// With --engine oci: write an OCI image layout (for skopeo, umoci, podman) to DIR.
    /// Default without --push: target/oci-layout.
    #[arg(long, value_name = "DIR")]
    pub oci_layout: Option<Utf8PathBuf>,
    /// With --push: how many times one registry request is tried in all, retrying 408, 429,
    /// 5xx, resets and timeouts with backoff (1 = no retries). Default: XTASK_NET_ATTEMPTS,
    /// else release.toml's [network] attempts, else 5.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub net_attempts: Option<u32>,
    /// With --push: seconds a registry request may go with no byte moving before it is given
    /// up and retried. Default: XTASK_NET_IDLE_TIMEOUT, else [network] idle-timeout, else 60.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..))]
    pub net_idle_timeout: Option<u32>,
    /// Show the whole plan and every command's own output (docker buildx's, cosign's, and
    /// dist's when it runs first). Without it a run prints its head lines, about one line per
    /// arch and the summary; a failing command's error carries its last 20 lines.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Print every command, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Mutation testing of the release-check modules with cargo-mutants (slow; CI runs build/elf.rs).
///
/// Mutates build/elf.rs, release/{checksum,dist_dir,manifest}.rs, commands/merge.rs and
/// project/config.rs (or the --file given) and runs the xtask's unit tests against each mutant: a mutant that survives is a
/// wrong verdict no test would notice. Installs the pinned cargo-mutants when it is missing.
/// Results: target/mutants.out/.
#[derive(Debug, Args)]
pub struct Mutants {
    /// Mutate only this file (repeatable), relative to the workspace root.
    #[arg(long = "file", value_name = "PATH")]
    pub file: Vec<Utf8PathBuf>,
    /// Mutants built and tested at once (each needs its own build).
    #[arg(long, default_value_t = 1)]
    pub jobs: u32,
    /// Print the commands, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchWhat {
    /// Hashing and packing throughput of dist against sha256sum and tar czf.
    Dist,
    /// `cargo xtask dist` of every configured arch after a one-line change in the binary's
    /// sources: `--jobs 1` against the default, a no-op rerun, each arch alone (the floor),
    /// and with --cold a build in an empty target dir. Wall time and CPU use of each.
    Rebuild,
    /// `cargo xtask image` wall time, oci engine against buildx, every arch in the dist folder,
    /// without and with a push to the loopback registry (localhost:5000). Try --rounds 3.
    Image,
    /// `cargo xtask repo` adding the dist folder's release (every arch, .deb and .rpm) to an
    /// empty repository and to one of 20 earlier releases (packaged here from the same
    /// binaries), and how the time to add one grows with the releases held. Try --rounds 3.
    Repo,
    /// docker/Dockerfile.source for one arch (--arch, default amd64): a cold build (no layer
    /// cache; prunes BuildKit's cache mounts) against rebuilds after a one-line change in the
    /// binary's sources, in a clone of the checkout at HEAD; says whether the fetch layer was
    /// reused. Needs the builder image (`cargo xtask builder`). Try --rounds 3.
    Source,
}

/// Measure throughput for docs/benchmarks.md (prints a markdown table; never fails on speed).
#[derive(Debug, Args)]
pub struct Bench {
    /// What to measure.
    #[arg(value_enum)]
    pub what: BenchWhat,
    /// The dist folder whose files are measured. Default: target/dist.
    #[arg(long, value_name = "DIR")]
    pub dist_dir: Option<Utf8PathBuf>,
    /// Repetitions of each measurement.
    #[arg(long, default_value_t = 10)]
    pub rounds: u32,
    /// With `rebuild`: also time a build of every arch in an empty target dir (minutes).
    #[arg(long)]
    pub cold: bool,
    /// With `source`: the arch to build.
    #[arg(long, value_name = "NAME", default_value = "amd64")]
    pub arch: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_command_and_flag_is_well_formed() {
        // Also checks that `mut_arg` names flags that exist (the flattened `SignFlags`).
        super::Xtask::command().debug_assert();
    }
}
