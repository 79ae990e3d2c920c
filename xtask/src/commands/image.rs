//! `cargo xtask image`: resolves what to build (arches, repository, tags, base, the verified
//! dist folder) into one `ImageRequest`, then hands it to an engine: `buildx` (docker
//! buildx per arch + a manifest list) or `oci` (images assembled directly, no daemon).
//! `--engine` is read in one place, where the engine is chosen.

use anyhow::{bail, Result};
use camino::Utf8PathBuf;
use xshell::Shell;

use crate::commands::dist::{self, DistRequest};
use crate::engines::buildx::Buildx;
use crate::engines::oci::Oci;
use crate::engines::{self, signatures, ImageEngine, ImageRequest};
use crate::flags::{self, Engine};
use crate::net::NetSettings;
use crate::project::config::{self, expand_version, BaseKind};
use crate::project::image_spec::ImageSpec;
use crate::project::matrix::Arch;
use crate::project::workspace::{Release, Workspace};
use crate::release::dist_dir::DistDir;
use crate::release::manifest::{Artifact, Manifest};
use crate::util::progress;
use crate::util::report::short;

impl flags::Image {
    pub fn run(self, sh: &Shell) -> Result<()> {
        progress::set_verbose(self.verbose);
        let ws = Workspace::load(sh)?;
        let release = ws.release(sh)?;
        let arches = if self.all_arch {
            ws.config.dist.arches.clone()
        } else if !self.arch.is_empty() {
            ws.config.select_arches(&self.arch, &[])?
        } else {
            bail!("choose the architectures: --arch NAME (repeatable) or --all-arch");
        };
        let repository = self.image.clone().unwrap_or_else(|| ws.config.image.repository.clone());
        config::validate_repository(&repository)
            .map_err(|why| anyhow::anyhow!("--image {repository:?} {why}"))?;
        let tag_templates = if self.tag.is_empty() { ws.config.image.tags.clone() } else { self.tag.clone() };
        let mut tags: Vec<String> =
            tag_templates.iter().map(|t| expand_version(t, &release.version)).collect();
        tags.dedup();
        for tag in &tags {
            config::validate_tag(tag).map_err(|why| anyhow::anyhow!("tag {tag:?} {why}"))?;
        }
        let engine: Box<dyn ImageEngine> = match self.engine {
            Engine::Buildx if self.oci_layout.is_some() => bail!("--oci-layout needs --engine oci"),
            Engine::Buildx => Box::new(Buildx),
            Engine::Oci if self.base == Some(BaseKind::Busybox) => {
                bail!("--base busybox needs --engine buildx: the oci engine builds FROM scratch only (drop --base, or use --engine buildx)")
            }
            Engine::Oci => Box::new(Oci { layout: self.oci_layout.clone() }),
        };

        if self.metadata_file.is_some() && !self.push {
            bail!("--metadata-file records what was pushed: add --push");
        }
        let signing = signatures::configured(
            &ws,
            self.sign.sign_key.as_deref(),
            self.sign.keyless,
            self.push,
            self.dry_run,
        )?;
        let (dist_dir, manifest) = ready_dist(sh, &ws, &release, self.dist_dir, &arches, self.dry_run)?;
        let base = self.base.unwrap_or(ws.config.image.base);
        let built_on = engine.built_on(base);
        let spec = ImageSpec::new(&ws.config.image, &ws.project_facts(), &manifest.release(), built_on);
        let request = ImageRequest {
            repository,
            tags,
            arches,
            base,
            spec,
            dist: dist_dir,
            manifest,
            push: self.push,
            signing,
            metadata_file: self.metadata_file,
            builder: self.builder,
            network: NetSettings::resolve(self.net_attempts, self.net_idle_timeout, &ws.config.network)?,
            dry_run: self.dry_run,
        };
        engines::publish(engine.as_ref(), sh, &ws, &request)
    }
}

/// Returns a dist folder holding every requested arch, verified. The default folder is
/// (re)built with `dist` when it is missing, incomplete or from another commit; a folder the
/// user names is used as it is (it may come from CI), but must verify and be complete.
fn ready_dist(
    sh: &Shell,
    ws: &Workspace,
    release: &Release,
    dist_dir: Option<Utf8PathBuf>,
    arches: &[&'static Arch],
    dry_run: bool,
) -> Result<(DistDir, Manifest)> {
    let explicit = dist_dir.is_some();
    let dir = DistDir::chosen(ws, dist_dir)?;
    let missing = |manifest: &Manifest| -> Vec<&'static str> {
        arches
            .iter()
            .filter(|a| !manifest.artifacts.iter().any(|art| art.arch == a.name))
            .map(|a| a.name)
            .collect()
    };
    let current = dir.read_manifest().ok();
    let stale_reason = match &current {
        None => Some(format!("{dir} holds no dist output")),
        Some(m) if m.commit != release.commit || m.version != release.version => Some(format!(
            "{dir} was built from {} {} (commit {}), not {} (commit {})",
            m.name,
            m.version,
            short(&m.commit),
            release.version,
            short(&release.commit)
        )),
        Some(m) if !missing(m).is_empty() => {
            Some(format!("{dir} has no archive for {}", missing(m).join(", ")))
        }
        Some(_) => None,
    };
    if let Some(reason) = stale_reason {
        if explicit {
            let complete = current.as_ref().is_some_and(|m| missing(m).is_empty());
            if !complete {
                bail!(
                    "{reason}; build it with `cargo xtask dist --out {dir}` (with the same --arch selection)"
                );
            }
            eprintln!("warning: {reason}; using it as given");
        } else {
            eprintln!("{reason}: running dist first");
            dist::run(sh, ws, release.clone(), &DistRequest::new(arches, &dir, dry_run))?;
            if dry_run {
                // Nothing was built; plan against the manifest the dist would write.
                let planned = arches.iter().map(|arch| Artifact::planned(release, arch, "(not built yet)"));
                return Ok((dir, Manifest::new(release, planned.collect())));
            }
        }
    }
    let manifest = dir.verified("to build images from it")?;
    Ok((dir, manifest))
}
