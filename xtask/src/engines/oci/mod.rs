//! The oci engine of `cargo xtask image`: assembles the multi-arch image straight from the
//! dist archives, with no daemon and no emulation, then writes an OCI layout and/or pushes
//! to a registry. Every byte is a function of the artifacts and the config (fixed tar
//! headers, gzip settings, SOURCE_DATE_EPOCH timestamps, ordered JSON), so two runs, on any
//! machine, give the same index digest. Images are always FROM scratch: the binary, a
//! minimal /etc/passwd and /etc/group for the non-root user, and the volume it owns (if any).
//!
//! Crates, decided by measurement (clean debug build of the xtask alone on a 2-core machine,
//! crates in its normal dependency tree): as it was 22 s / 63 crates; + ureq with rustls
//! 27 s / 84; + ureq + `oci-spec` (derive_builder, getset, strum macros) 34 s / 114;
//! `oci-client` (tokio, reqwest, hyper, oci-spec) 81 s / 221. Our own types are ~180 lines
//! (spec.rs) and the client ~550 (net/registry.rs, with the Docker-config credentials and the
//! referrers fallback that oci-client leaves to the caller anyway); the crates would save
//! perhaps 450 lines for 7 s (oci-spec) or nearly 60 s (oci-client) on every clean
//! `cargo xtask`, so the engine keeps its own small types and a blocking client on ureq.
//!
//! Plan first (`--dry-run` prints it and stops), then build blobs, then write and push.

pub(super) mod build;
pub(super) mod layer;
mod layout;
pub mod spec;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use self::build::{ArchImage, SbomArtifact};
use self::spec::{Blob, Descriptor};
use crate::engines::push::PushReport;
use crate::engines::{ImageEngine, ImagePlan, ImageRequest, Pushed};
use crate::net::credentials::{self, Credentials};
use crate::net::registry::{Client, Target};
use crate::net::NetSettings;
use crate::project::config::BaseKind;
use crate::project::image_spec::{ImageSpec, SCRATCH};
use crate::project::matrix::Arch;
use crate::project::workspace::Workspace;
use crate::release::checksum;
use crate::release::layout::MANIFEST_FILE;
use crate::release::manifest::Artifact;
use crate::util::pool;
use crate::util::report::{human_size, seconds, short};

/// The oci engine; `layout` is `--oci-layout`.
pub struct Oci {
    pub layout: Option<Utf8PathBuf>,
}

impl ImageEngine for Oci {
    /// It has no base to build on: its images are FROM scratch whatever is asked.
    fn built_on(&self, _asked: BaseKind) -> BaseKind {
        BaseKind::Scratch
    }

    fn plan(&self, ws: &Workspace, request: &ImageRequest) -> Result<Box<dyn ImagePlan>> {
        Ok(Box::new(plan(ws, request, self.layout.as_deref())?))
    }
}

impl ImagePlan for OciPlan {
    fn render(&self, _request: &ImageRequest) -> String {
        render(self)
    }

    fn headline(&self, request: &ImageRequest) -> String {
        let to = match (&self.push, &self.layout) {
            (Some(_), _) => "pushed".to_string(),
            (None, Some(dir)) => format!("written as an OCI layout to {dir}"),
            (None, None) => "checked, not written (add --push or --oci-layout)".to_string(),
        };
        format!(
            "image (oci): {} {} FROM scratch from {}, {to}",
            self.repository,
            self.tags.join(", "),
            request.dist
        )
    }

    fn execute(&self, sh: &Shell, ws: &Workspace, request: &ImageRequest) -> Result<()> {
        let outcome = execute(self)?;
        if outcome.pushed.is_some() {
            let images: Vec<&ArchImage> = outcome.images.iter().map(|(image, _, _)| image).collect();
            let tags = super::push::tag_moves(&self.tags, &images, &outcome.index);
            let pushed = Pushed { index: &outcome.index, tags };
            super::after_push(sh, ws, request, "oci", pushed)?;
        }
        print!("{}", summary(self, &outcome));
        Ok(())
    }
}

/// Everything the engine will do, decided before any file is read.
pub struct OciPlan {
    /// The request's spec, FROM scratch.
    pub spec: ImageSpec,
    pub repository: String,
    pub tags: Vec<String>,
    pub arches: Vec<ArchStep>,
    pub layout: Option<Utf8PathBuf>,
    pub push: Option<PushPlan>,
    /// Why image.base is not used, when it says busybox.
    pub base_note: Option<String>,
}

pub struct ArchStep {
    pub arch: &'static Arch,
    pub artifact: Artifact,
    pub archive: Utf8PathBuf,
    pub sbom: Utf8PathBuf,
    /// `TAG-ARCH` for every tag.
    pub tags: Vec<String>,
}

pub struct PushPlan {
    pub target: Target,
    pub credentials: Option<Credentials>,
    pub network: NetSettings,
}

fn plan(ws: &Workspace, request: &ImageRequest, layout: Option<&Utf8Path>) -> Result<OciPlan> {
    let arches = request
        .arches
        .iter()
        .map(|&arch| {
            let artifact = request.artifact(arch).clone();
            ArchStep {
                arch,
                archive: request.dist.archive(&artifact),
                sbom: request.dist.sbom(&artifact),
                tags: request.tags.iter().map(|tag| format!("{tag}-{}", arch.name)).collect(),
                artifact,
            }
        })
        .collect();
    // Without --push the layout is the output, so there always is one.
    let layout = match layout {
        Some(dir) => Some(dir.to_path_buf()),
        None if !request.push => Some(ws.target_dir.join("oci-layout")),
        None => None,
    };
    let push = if request.push {
        let target = Target::parse(&request.repository);
        let credentials = credentials::lookup(&target.host)?;
        Some(PushPlan { target, credentials, network: request.network })
    } else {
        None
    };
    let base_note = (request.base == BaseKind::Busybox).then(|| {
        "image.base = busybox applies to --engine buildx; the oci engine always builds FROM scratch"
            .to_string()
    });
    if let Some(arch) = request.arches.iter().find(|arch| request.spec.from(arch) != SCRATCH) {
        bail!(
            "the oci engine builds FROM scratch, but the image spec for {} is FROM {}",
            arch.name,
            request.spec.from(arch)
        );
    }
    Ok(OciPlan {
        spec: request.spec.clone(),
        repository: request.repository.clone(),
        tags: request.tags.clone(),
        arches,
        layout,
        push,
        base_note,
    })
}

fn render(plan: &OciPlan) -> String {
    let f = &plan.spec;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "image plan (oci): {} {} for {} arches, FROM scratch, created {}",
        plan.repository,
        plan.tags.join(", "),
        plan.arches.len(),
        f.created
    );
    if let Some(note) = &plan.base_note {
        let _ = writeln!(out, "  note: {note}");
    }
    let volume = f.volume.as_ref().map_or(String::new(), |volume| format!(", {volume}/ owned by {}", f.user));
    let _ = writeln!(
        out,
        "  layer 1 (all arches): /etc/passwd, /etc/group ({} = uid/gid {}){volume}",
        f.binary, f.user
    );
    let _ = writeln!(out, "  config: {}", f.summary());
    for step in &plan.arches {
        let a = &step.artifact;
        let _ = writeln!(out, "  {:<8} {:<15} {}", step.arch.name, step.arch.platform.to_string(), a.name);
        let _ = writeln!(
            out,
            "    layer 2: {} from {} (archive sha256 {}…)",
            f.binary_path(),
            a.binary.path,
            short(&a.sha256)
        );
        let _ = writeln!(out, "    sbom:    {} (OCI artifact, subject = this image)", a.sbom);
        let _ = writeln!(out, "    tags:    {}", step.tags.join(", "));
    }
    let _ = writeln!(out, "  index:   {} platforms, tags {}", plan.arches.len(), plan.tags.join(", "));
    if let Some(layout) = &plan.layout {
        let _ = writeln!(out, "  layout:  {layout} (oci-layout, index.json, blobs/sha256; assembled aside)");
    }
    match &plan.push {
        Some(push) => {
            let who = match &push.credentials {
                Some(c) => format!("as {:?} from {}", c.username, c.source),
                None => "anonymous (no credentials found)".into(),
            };
            let _ = writeln!(
                out,
                "  push:    {} repository {} {who}; blobs (skipped when present), then per-arch manifests, SBOMs and the index by digest, signatures, and every tag last",
                push.target.base, push.target.path
            );
            let _ = writeln!(out, "  network: {}", push.network.summary());
        }
        None => {
            let _ = writeln!(out, "  (no --push: nothing leaves this machine)");
        }
    }
    out
}

/// What was built (and how long each arch took).
pub struct Outcome {
    pub images: Vec<(ArchImage, SbomArtifact, Duration)>,
    pub index: Blob,
    pub layout: Option<Utf8PathBuf>,
    pub pushed: Option<PushReport>,
}

fn execute(plan: &OciPlan) -> Result<Outcome> {
    let user_layer = build::user_layer(&plan.spec)?;
    // Arches are independent: build them all at once.
    let images = pool::run_ordered_with(
        plan.arches.len(),
        &plan.arches,
        || (),
        |(), _, step| {
            let started = Instant::now();
            build_arch(&plan.spec, step, user_layer.clone())
                .with_context(|| format!("image for {} failed", step.arch.name))
                .map(|(image, sbom)| (image, sbom, started.elapsed()))
        },
    )?;
    let arch_images: Vec<ArchImage> = images.iter().map(|(image, _, _)| image.clone()).collect();
    let index = build::index(&plan.spec, &arch_images);

    let layout = match &plan.layout {
        Some(dir) => Some(write_layout(plan, dir, &images, &index)?),
        None => None,
    };
    let pushed = match &plan.push {
        Some(push) => Some(push_all(plan, push, &images, &index)?),
        None => None,
    };
    Ok(Outcome { images, index, layout, pushed })
}

/// Reads one arch's archive (checked against the manifest as it is read), and builds its
/// image and SBOM artifact.
fn build_arch(
    spec: &ImageSpec,
    step: &ArchStep,
    user_layer: layer::Layer,
) -> Result<(ArchImage, SbomArtifact)> {
    let artifact = &step.artifact;
    let archive = std::fs::read(&step.archive).with_context(|| format!("cannot read {}", step.archive))?;
    let sha256 = checksum::sha256_hex(&archive);
    if sha256 != artifact.sha256 {
        bail!(
            "{}: sha256 {sha256} does not match {MANIFEST_FILE} ({}); rebuild the dist folder with `cargo xtask dist`",
            step.archive,
            artifact.sha256
        );
    }
    let binary = read_entry(&archive, &artifact.binary.path)
        .with_context(|| format!("cannot read {} from {}", artifact.binary.path, step.archive))?;
    let binary_sha = checksum::sha256_hex(&binary);
    if binary_sha != artifact.binary.sha256 {
        bail!(
            "{}: {} has sha256 {binary_sha}, {MANIFEST_FILE} says {}; rebuild with `cargo xtask dist`",
            step.archive,
            artifact.binary.path,
            artifact.binary.sha256
        );
    }
    let binary_layer = build::binary_layer(spec, binary)?;
    let image = build::image(spec, step.arch, vec![user_layer, binary_layer]);
    let sbom = std::fs::read(&step.sbom).with_context(|| {
        format!(
            "cannot read {}, the SBOM named in {MANIFEST_FILE}; rebuild with `cargo xtask dist`",
            step.sbom
        )
    })?;
    let artifact = build::sbom_artifact(spec, image.descriptor(), &artifact.sbom, sbom);
    Ok((image, artifact))
}

fn read_entry(archive: &[u8], path: &str) -> Result<Vec<u8>> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for entry in tar.entries().context("not a tar.gz")? {
        let mut entry = entry.context("damaged tar.gz")?;
        if entry.path_bytes().as_ref() == path.as_bytes() {
            let mut contents = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut contents)?;
            return Ok(contents);
        }
    }
    bail!("no such entry")
}

/// Every blob once, in a stable order: the shared layer first, then each arch's.
fn unique_blobs<'a>(images: &'a [(ArchImage, SbomArtifact, Duration)], index: &'a Blob) -> Vec<&'a Blob> {
    let mut seen = BTreeSet::new();
    images
        .iter()
        .flat_map(|(image, sbom, _)| image.blobs().chain(sbom.blobs()))
        .chain([index])
        .filter(|blob| seen.insert(blob.digest.clone()))
        .collect()
}

fn write_layout(
    plan: &OciPlan,
    dir: &Utf8Path,
    images: &[(ArchImage, SbomArtifact, Duration)],
    index: &Blob,
) -> Result<Utf8PathBuf> {
    let mut named: Vec<(String, Descriptor)> =
        plan.tags.iter().map(|tag| (tag.clone(), index.descriptor())).collect();
    for (step, (image, _, _)) in plan.arches.iter().zip(images) {
        named.extend(step.tags.iter().map(|tag| (tag.clone(), image.descriptor())));
    }
    let referrers: Vec<Descriptor> = images.iter().map(|(_, sbom, _)| sbom.descriptor()).collect();
    let index_json = layout::index_json(&named, &referrers);
    layout::write(dir, unique_blobs(images, index), &index_json)
        .with_context(|| format!("cannot write the OCI layout {dir}"))
}

fn push_all(
    plan: &OciPlan,
    push: &PushPlan,
    images: &[(ArchImage, SbomArtifact, Duration)],
    index: &Blob,
) -> Result<PushReport> {
    eprintln!("push: connecting to {} for {}", push.target.base, push.target.path);
    let mut client = Client::connect(push.target.clone(), push.credentials.clone(), &push.network)?;
    let images: Vec<(&ArchImage, &SbomArtifact)> =
        images.iter().map(|(image, sbom, _)| (image, sbom)).collect();
    super::push::by_digest(&mut client, &plan.repository, &images, index)
}

fn summary(plan: &OciPlan, outcome: &Outcome) -> String {
    let mut out =
        format!("\n{:<8} {:<15} {:<71} {:>9} {:>6}\n", "ARCH", "PLATFORM", "DIGEST", "SIZE", "TIME");
    for (image, _, elapsed) in &outcome.images {
        let _ = writeln!(
            out,
            "{:<8} {:<15} {:<71} {:>9} {:>6}",
            image.arch.name,
            image.arch.platform.to_string(),
            image.manifest.digest,
            human_size(image.size()),
            seconds(*elapsed)
        );
    }
    let total: u64 = unique_total(outcome);
    let _ = writeln!(out, "{:<8} {:<15} {:<71} {:>9}", "index", "", outcome.index.digest, human_size(total));
    if let Some(dir) = &outcome.layout {
        let _ = writeln!(
            out,
            "wrote OCI layout {dir}: inspect with `skopeo inspect --raw oci:{dir}:{}`",
            plan.tags[0]
        );
    }
    if let Some(report) = &outcome.pushed {
        let refs: Vec<String> = plan.tags.iter().map(|t| format!("{}:{t}", plan.repository)).collect();
        let _ = writeln!(
            out,
            "pushed {} in {} ({} blobs uploaded, {} already there; SBOMs via the {})",
            refs.join(", "),
            seconds(report.elapsed),
            report.uploaded,
            report.skipped,
            report.referrers
        );
    }
    out
}

/// Bytes of all distinct blobs: what a registry stores for this release.
fn unique_total(outcome: &Outcome) -> u64 {
    unique_blobs(&outcome.images, &outcome.index).iter().map(|b| b.bytes.len() as u64).sum()
}
