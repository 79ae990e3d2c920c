//! The buildx engine of `cargo xtask image`: one `docker buildx build` per arch (the Docker Hub
//! hooks model: IMAGE_FROM=arm32v7/busybox, tag TAG-arm32v7), each with a context holding only
//! that arch's archive and checksum, loaded into the local engine. When pushing, each image is
//! taken out with `docker save` (export.rs) and pushed by digest with its SBOM, then the index,
//! then signed, and only then every tag moved: the oci engine's push (engines/push.rs). buildx
//! cannot push by digest itself with the docker driver, and pushing by tag would move TAG-ARCH
//! before the index exists and before anything is signed.
//!
//! The Dockerfile is rendered from the image spec (templates/Dockerfile.in) into each context:
//! exec-form instructions (ENTRYPOINT, CMD, HEALTHCHECK CMD) take no build args, so release.toml's
//! values must be written into the file. What changes per release and arch stays a build arg,
//! so the rendering for this repository's release.toml is the same for every release: that is
//! the committed docker/Dockerfile, kept in sync by a test.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use xshell::{cmd, Shell};

mod export;

use crate::engines::oci::build::{self, ArchImage, SbomArtifact};
use crate::engines::push::{self, PushReport};
use crate::engines::{ImageEngine, ImagePlan, ImageRequest, Pushed};
use crate::net::credentials;
use crate::net::registry::{Client, Target};
use crate::project::config::BaseKind;
use crate::project::image_spec::ImageSpec;
use crate::project::matrix::{normalize_platform, normalize_platform_of, Arch};
use crate::project::workspace::Workspace;
use crate::release::manifest::Artifact;
use crate::util::cmd::Cmd;
use crate::util::progress::{Progress, RowLog};
use crate::util::report::{human_size, seconds};
use crate::util::template;

pub const DOCKERFILE_TEMPLATE_PATH: &str = "xtask/templates/Dockerfile.in";
const DOCKERFILE_TEMPLATE: &str = include_str!("../../../templates/Dockerfile.in");
/// The rendered Dockerfile's name inside each build context.
const CONTEXT_DOCKERFILE: &str = "Dockerfile";

pub struct ArchBuild {
    pub arch: &'static Arch,
    pub context: Utf8PathBuf,
    pub files: Vec<Utf8PathBuf>,
    pub build: Cmd,
    pub refs: Vec<String>,
    /// `docker save` of the built image, when pushing.
    pub export: Option<Cmd>,
}

pub struct BuildxPlan {
    /// Rendered from the image spec; written into every context as `Dockerfile`.
    pub dockerfile: String,
    pub builds: Vec<ArchBuild>,
    /// Where `docker save` writes the images, when pushing.
    pub exports: Utf8PathBuf,
    /// The registry and who pushes, when pushing.
    pub push: Option<(Target, Option<credentials::Credentials>)>,
}

/// The buildx engine.
pub struct Buildx;

impl ImageEngine for Buildx {
    fn built_on(&self, asked: BaseKind) -> BaseKind {
        asked
    }

    fn plan(&self, ws: &Workspace, request: &ImageRequest) -> Result<Box<dyn ImagePlan>> {
        Ok(Box::new(plan(ws, request)?))
    }
}

impl ImagePlan for BuildxPlan {
    fn render(&self, request: &ImageRequest) -> String {
        render(request, self)
    }

    fn headline(&self, request: &ImageRequest) -> String {
        let to =
            if request.push { "pushed by digest, tags moved last" } else { "loaded into the local engine" };
        format!(
            "image (buildx): {} {} from {}, {to}",
            request.repository,
            request.tags.join(", "),
            request.dist
        )
    }

    fn execute(&self, sh: &Shell, ws: &Workspace, request: &ImageRequest) -> Result<()> {
        execute(sh, ws, request, self)
    }
}

/// Builds every arch in turn; with --push, makes the manifest lists and checks them.
fn execute(sh: &Shell, ws: &Workspace, request: &ImageRequest, plan: &BuildxPlan) -> Result<()> {
    check_engine(sh, request.builder.as_deref())?;
    let mut rows = Vec::new();
    let progress = Progress::new(plan.builds.iter().map(|build| build.arch.name));
    for (index, build) in plan.builds.iter().enumerate() {
        progress.say(index, &format!("building {} ({})", build.refs[0], build.arch.platform));
        let started = Instant::now();
        let row = build_one(sh, request, &plan.dockerfile, build, progress.row(index));
        let row = match row {
            Ok(row) => row,
            Err(err) => {
                progress.clear();
                return Err(err.context(format!("image for {} failed", build.arch.name)));
            }
        };
        progress.finish(index, &format!("built {} in {}", short_id(&row.id), seconds(started.elapsed())));
        rows.push(SummaryRow { elapsed: started.elapsed(), ..row });
    }
    progress.clear();
    if let Some((target, credentials)) = &plan.push {
        let images = export_all(sh, request, plan, &rows)?;
        for (row, (image, _)) in rows.iter_mut().zip(&images) {
            row.id = image.manifest.digest.clone();
        }
        let report = push_all(sh, ws, request, target, credentials.clone(), &images)?;
        print!("{}", summary(&rows));
        println!(
            "pushed {} with platforms {} in {} ({} blobs uploaded, {} already there; SBOMs via the {})",
            request.list_refs().join(", "),
            expected_platforms(request).into_iter().collect::<Vec<_>>().join(", "),
            seconds(report.elapsed),
            report.uploaded,
            report.skipped,
            report.referrers
        );
    } else {
        print!("{}", summary(&rows));
        println!(
            "loaded {} images into the local engine (use --push to publish a manifest list)",
            rows.len()
        );
    }
    Ok(())
}

/// Takes every built image out of the local engine (`docker save`), each with its SBOM.
fn export_all(
    sh: &Shell,
    request: &ImageRequest,
    plan: &BuildxPlan,
    rows: &[SummaryRow],
) -> Result<Vec<(ArchImage, SbomArtifact)>> {
    std::fs::create_dir_all(&plan.exports).with_context(|| format!("cannot create {}", plan.exports))?;
    let images = plan.builds.iter().zip(rows).map(|(build, row)| {
        let export = build.export.as_ref().expect("pushing plans export every image");
        eprintln!("push: exporting {} from the local engine", row.reference);
        export.run_step(sh).with_context(|| format!("cannot export {}", row.reference))?;
        let archive = export_path(&plan.exports, build.arch);
        let image = export::image_from_save(&archive, &row.id, build.arch, &request.spec.created);
        let _ = std::fs::remove_file(&archive);
        let image = image?;
        let artifact = request.artifact(build.arch);
        let path = request.dist.sbom(artifact);
        let sbom = std::fs::read(&path)
            .with_context(|| format!("cannot read {path}, the SBOM the manifest names"))?;
        let sbom = build::sbom_artifact(&request.spec, image.descriptor(), &artifact.sbom, sbom);
        Ok((image, sbom))
    });
    let images = images.collect::<Result<Vec<_>>>();
    let _ = std::fs::remove_dir_all(&plan.exports);
    images
}

/// Pushes the images and their index by digest, signs the index, then moves every tag.
fn push_all(
    sh: &Shell,
    ws: &Workspace,
    request: &ImageRequest,
    target: &Target,
    credentials: Option<credentials::Credentials>,
    images: &[(ArchImage, SbomArtifact)],
) -> Result<PushReport> {
    let arch_images: Vec<ArchImage> = images.iter().map(|(image, _)| image.clone()).collect();
    let index = build::index(&request.spec, &arch_images);
    eprintln!("push: connecting to {} for {}", target.base, target.path);
    let mut client = Client::connect(target.clone(), credentials, &request.network)?;
    let pairs: Vec<(&ArchImage, &SbomArtifact)> = images.iter().map(|(image, sbom)| (image, sbom)).collect();
    let report = push::by_digest(&mut client, &request.repository, &pairs, &index)?;
    let refs: Vec<&ArchImage> = arch_images.iter().collect();
    let tags = push::tag_moves(&request.tags, &refs, &index);
    super::after_push(sh, ws, request, "buildx", Pushed { index: &index, tags })?;
    for reference in request.list_refs() {
        check_list_platforms(sh, request, &reference)?;
    }
    Ok(report)
}

fn export_path(exports: &camino::Utf8Path, arch: &Arch) -> Utf8PathBuf {
    exports.join(format!("{}.tar", arch.name))
}

/// The Dockerfile for `spec`: release.toml's values written in, the release's and the arch's
/// left to build args (see `build_args`).
pub fn dockerfile(spec: &ImageSpec) -> Result<String> {
    let stages = spec.image_stages(
        "ARG ARCHIVE\nCOPY ${ARCHIVE} ${ARCHIVE}.sha256 /in/",
        r#"test -n "${ARCHIVE}" || { echo "build arg ARCHIVE is required" >&2; exit 1; }"#,
    )?;
    template::render(DOCKERFILE_TEMPLATE, &[("image_stages", stages), ("binary", spec.binary.clone())])
        .with_context(|| format!("cannot render {DOCKERFILE_TEMPLATE_PATH}"))
}

/// The values `dockerfile(spec)` leaves to build args, for one arch: its base image and
/// archive, and the labels that change per release.
pub fn build_args(spec: &ImageSpec, arch: &Arch, artifact: &Artifact) -> Vec<(&'static str, String)> {
    let mut args = vec![
        ("IMAGE_FROM", spec.from(arch).to_string()),
        ("ARCH", arch.name.to_string()),
        ("TARGET", arch.target.to_string()),
        ("ARCHIVE", artifact.name.clone()),
        ("SOURCE_DATE_EPOCH", spec.source_date_epoch.to_string()),
    ];
    for label in spec.labels(spec.from(arch)) {
        if let Some(arg) = label.arg.filter(|arg| !args.iter().any(|(name, _)| name == arg)) {
            args.push((arg, label.value));
        }
    }
    args
}

fn plan(ws: &Workspace, request: &ImageRequest) -> Result<BuildxPlan> {
    let dockerfile = dockerfile(&request.spec)?;
    let exports = ws.target_dir.join("image-export").join(std::process::id().to_string());
    let builds = request
        .arches
        .iter()
        .map(|&arch| {
            let artifact = request.artifact(arch);
            // One folder per run and arch: concurrent runs must not share a context.
            let context =
                ws.target_dir.join("image-context").join(format!("{}-{}", arch.name, std::process::id()));
            let files = vec![request.dist.archive(artifact), request.dist.sidecar(artifact)];
            let build_args = build_args(&request.spec, arch, artifact);
            let refs = request.arch_refs(arch);
            let mut build = Cmd::new("docker").arg("buildx").arg("build");
            if let Some(builder) = &request.builder {
                build = build.args(["--builder", builder]);
            }
            let file = context.join(CONTEXT_DOCKERFILE);
            build = build.args(["--platform", &arch.platform.to_string(), "--file", file.as_str()]);
            for (key, value) in build_args {
                build = build.args(["--build-arg".to_string(), format!("{key}={value}")]);
            }
            for reference in &refs {
                build = build.args(["--tag", reference]);
            }
            // Always into the local engine: a push goes by digest, from there (see the top).
            build = build
                .args(["--metadata-file", context.join("metadata.json").as_str()])
                .arg("--load")
                .arg(context.as_str());
            let export = request.push.then(|| {
                let archive = export_path(&exports, arch);
                Cmd::new("docker").args(["save", "--output", archive.as_str(), refs[0].as_str()])
            });
            ArchBuild { arch, context, files, build, refs, export }
        })
        .collect();
    let push = if request.push {
        let target = Target::parse(&request.repository);
        let credentials = credentials::lookup(&target.host)?;
        Some((target, credentials))
    } else {
        None
    };
    Ok(BuildxPlan { dockerfile, builds, exports, push })
}

fn render(request: &ImageRequest, plan: &BuildxPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "image plan (buildx): {} {} for {} arches from {}",
        request.repository,
        request.tags.join(", "),
        request.arches.len(),
        request.dist
    );
    let _ = writeln!(out, "  config:  {}", request.spec.summary());
    let _ = writeln!(
        out,
        "  dockerfile: rendered from the image spec ({DOCKERFILE_TEMPLATE_PATH}) into each context"
    );
    for build in &plan.builds {
        let _ = writeln!(out, "  {:<8} {}", build.arch.name, build.arch.platform);
        let mut names: Vec<&str> = build.files.iter().filter_map(|f| f.file_name()).collect();
        names.push(CONTEXT_DOCKERFILE);
        let _ = writeln!(out, "    context: {} ({})", build.context, names.join(", "));
        let _ = writeln!(out, "    build:   {}", build.build);
        if let Some(export) = &build.export {
            let _ = writeln!(out, "    export:  {export} (layers checked against the config, gzipped)");
        }
    }
    match &plan.push {
        Some((target, credentials)) => {
            let who = match credentials {
                Some(c) => format!("as {:?} from {}", c.username, c.source),
                None => "anonymous (no credentials found)".into(),
            };
            let _ = writeln!(
                out,
                "  push:    {} repository {} {who}; blobs (skipped when present), then per-arch manifests, SBOMs and the index by digest, signatures, and every tag last",
                target.base, target.path
            );
            let _ = writeln!(out, "  network: {}", request.network.summary());
            let _ = writeln!(
                out,
                "  check:   docker buildx imagetools inspect --raw REF lists exactly {}",
                expected_platforms(request).into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        None => {
            let _ = writeln!(out, "  (no --push: images are loaded into the local engine; no manifest list)");
        }
    }
    out
}

pub fn check_engine(sh: &Shell, builder: Option<&str>) -> Result<()> {
    let format = "{{.Server.Version}}";
    cmd!(sh, "docker version --format {format}").quiet().ignore_stderr().read().context(
        "no Docker engine answers: start dockerd (on a Debian test host: sudo ci/setup-host.sh) or set DOCKER_HOST",
    )?;
    cmd!(sh, "docker buildx version").quiet().ignore_stderr().read().context(
        "the docker buildx plugin is missing: install docker-buildx (Debian trixie) or docker-buildx-plugin (Docker's repository)",
    )?;
    if let Some(builder) = builder {
        cmd!(sh, "docker buildx inspect {builder}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .with_context(|| format!("buildx builder {builder:?} does not exist: see `docker buildx ls`"))?;
    }
    Ok(())
}

/// Hard-links (or copies) the arch's files into a fresh context folder, with the Dockerfile.
fn prepare_context(build: &ArchBuild, dockerfile: &str) -> Result<()> {
    let _ = std::fs::remove_dir_all(&build.context);
    std::fs::create_dir_all(&build.context).with_context(|| format!("cannot create {}", build.context))?;
    for file in &build.files {
        let to = build.context.join(file.file_name().expect("dist files have names"));
        if std::fs::hard_link(file, &to).is_err() {
            std::fs::copy(file, &to).with_context(|| format!("cannot copy {file} to {to}"))?;
        }
    }
    let path = build.context.join(CONTEXT_DOCKERFILE);
    std::fs::write(&path, dockerfile).with_context(|| format!("cannot write {path}"))
}

struct SummaryRow {
    arch: &'static str,
    platform: String,
    reference: String,
    id: String,
    size: Option<u64>,
    binary_size: u64,
    elapsed: Duration,
}

fn build_one(
    sh: &Shell,
    request: &ImageRequest,
    dockerfile: &str,
    build: &ArchBuild,
    log: RowLog,
) -> Result<SummaryRow> {
    prepare_context(build, dockerfile)?;
    let built = build.build.run_logged(sh, log).context("docker buildx build failed");
    let metadata = std::fs::read_to_string(build.context.join("metadata.json"));
    let _ = std::fs::remove_dir_all(&build.context);
    built?;
    let reference = build.refs[0].clone();
    let metadata: serde_json::Value =
        metadata.ok().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default();
    // The local engine knows loaded images (and, with the docker driver, pushed ones too).
    // Docker 20.10 has no Variant key for images without one; `.Variant` would fail the template.
    let format = "{{.Id}}|{{.Size}}|{{.Os}}/{{.Architecture}}/{{with index . \"Variant\"}}{{.}}{{end}}";
    let local =
        cmd!(sh, "docker image inspect --format {format} {reference}").quiet().ignore_stderr().read().ok();
    let (mut id, mut size) = (String::new(), None);
    if let Some(line) = local {
        let fields: Vec<&str> = line.split('|').collect();
        if let [image_id, bytes, platform] = fields[..] {
            let platform = platform.trim_end_matches('/');
            if normalize_platform(platform) != build.arch.platform.normalized() {
                bail!(
                    "{reference} was built for {platform}, not {}: is the base image {} for the right arch?",
                    build.arch.platform,
                    build.build.args.iter().find(|a| a.starts_with("IMAGE_FROM=")).map_or("", |a| &a[11..])
                );
            }
            id = image_id.to_string();
            size = bytes.parse().ok();
        }
    }
    if id.is_empty() {
        if let Some(digest) = metadata["containerimage.config.digest"].as_str() {
            id = digest.to_string();
        }
    }
    if id.is_empty() {
        bail!("{reference}: the build reported no image id or digest");
    }
    Ok(SummaryRow {
        arch: build.arch.name,
        platform: build.arch.platform.normalized(),
        reference,
        id,
        size,
        binary_size: request.artifact(build.arch).binary.size,
        elapsed: Duration::ZERO,
    })
}

pub fn expected_platforms(request: &ImageRequest) -> BTreeSet<String> {
    request.arches.iter().map(|arch| arch.platform.normalized()).collect()
}

/// Platforms listed by an image index, normalized; attestation entries (unknown/unknown) are skipped.
pub fn index_platforms(index: &serde_json::Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|m| {
                    let p = &m["platform"];
                    let (os, arch) = (p["os"].as_str()?, p["architecture"].as_str()?);
                    if os == "unknown" || arch == "unknown" {
                        return None;
                    }
                    Some(normalize_platform_of(os, arch, p["variant"].as_str()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn check_list_platforms(sh: &Shell, request: &ImageRequest, reference: &str) -> Result<()> {
    let raw = cmd!(sh, "docker buildx imagetools inspect --raw {reference}")
        .quiet()
        .read()
        .with_context(|| format!("cannot inspect {reference}"))?;
    let index: serde_json::Value =
        serde_json::from_str(&raw).with_context(|| format!("{reference}: not JSON"))?;
    let mut listed = index_platforms(&index);
    listed.sort();
    let expected: Vec<String> = expected_platforms(request).into_iter().collect();
    if listed != expected {
        bail!("{reference} lists platforms {listed:?}, expected exactly {expected:?}");
    }
    eprintln!("{reference}: {}", listed.join(", "));
    Ok(())
}

fn summary(rows: &[SummaryRow]) -> String {
    let mut out = format!(
        "\n{:<8} {:<13} {:<45} {:<20} {:>9} {:>9} {:>7}\n",
        "ARCH", "PLATFORM", "IMAGE", "ID/DIGEST", "SIZE", "BINARY", "TIME"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<8} {:<13} {:<45} {:<20} {:>9} {:>9} {:>7}",
            row.arch,
            row.platform,
            row.reference,
            short_id(&row.id),
            row.size.map(human_size).unwrap_or_else(|| "-".into()),
            human_size(row.binary_size),
            seconds(row.elapsed)
        );
    }
    out
}

fn short_id(id: &str) -> String {
    let (algo, hex) = id.split_once(':').unwrap_or(("", id));
    format!("{algo}:{}", &hex[..hex.len().min(12)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::project::config::{Config, CONFIG_FILE};
    use crate::project::workspace::{project_root, ProjectFacts, Release};

    /// The committed rendering for this repository's release.toml, as a path from the root.
    const DOCKERFILE_PATH: &str = "docker/Dockerfile";

    /// docker/Dockerfile is generated (rust-analyzer's codegen pattern): when release.toml or
    /// the template changed, it is rewritten here and the test fails until it is committed.
    #[test]
    fn docker_dockerfile_is_the_rendering_of_release_toml() {
        let root = project_root();
        let config = Config::load(&root.join(CONFIG_FILE)).unwrap();
        let release = Release {
            name: config.dist.binary.clone(),
            version: "0.0.0".into(),
            commit: "0".into(),
            source_date_epoch: 0,
        };
        let spec = ImageSpec::new(&config.image, &fixtures::facts(), &release, config.image.base);
        let rendered = dockerfile(&spec).unwrap();
        let path = root.join(DOCKERFILE_PATH);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(rendered.as_str()) {
            std::fs::write(&path, &rendered).unwrap();
            panic!(
                "{DOCKERFILE_PATH} was out of date with {CONFIG_FILE} and {DOCKERFILE_TEMPLATE_PATH}; \
                 it has been regenerated: review and commit it"
            );
        }
    }

    #[test]
    fn the_dockerfile_is_the_same_for_every_release_project_and_base() {
        let config = fixtures::config();
        let other_release = Release {
            name: "exonode".into(),
            version: "9.9.9".into(),
            commit: "f00d".into(),
            source_date_epoch: 7,
        };
        let other_facts = ProjectFacts {
            source: "https://x.example".into(),
            licenses: "Apache-2.0".into(),
            description: "other".into(),
        };
        let a = dockerfile(&fixtures::image_spec(BaseKind::Busybox)).unwrap();
        let b = dockerfile(&ImageSpec::new(&config.image, &other_facts, &other_release, BaseKind::Scratch))
            .unwrap();
        assert_eq!(a, b, "what changes per release, project or base must be a build arg");
    }

    /// `ARG NAME` lines and `${NAME}` uses of a Dockerfile.
    fn declared_and_used(dockerfile: &str) -> (BTreeSet<String>, BTreeSet<String>) {
        let declared = dockerfile
            .lines()
            .filter_map(|l| l.strip_prefix("ARG "))
            .map(|a| a.split('=').next().unwrap().to_string())
            .collect();
        let used = dockerfile
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(|l| l.split("${").skip(1))
            .map(|rest| rest.split(['}', '%', ':']).next().unwrap().to_string())
            .collect();
        (declared, used)
    }

    #[test]
    fn every_build_arg_is_declared_and_every_use_is_a_build_arg() {
        let spec = fixtures::image_spec(BaseKind::Busybox);
        let (declared, used) = declared_and_used(&dockerfile(&spec).unwrap());
        let manifest = fixtures::write_dist(&fixtures::scratch("buildx-args"));
        let arch = crate::project::matrix::by_name("amd64").unwrap();
        let args = build_args(&spec, arch, &manifest.artifacts[0]);
        let passed: BTreeSet<String> = args.iter().map(|(name, _)| name.to_string()).collect();
        let undeclared: Vec<&String> = passed.difference(&declared).collect();
        assert!(undeclared.is_empty(), "build args without an ARG: {undeclared:?}");
        // VERIFY_FROM keeps its default; BUILDPLATFORM comes from buildx.
        let unpassed: Vec<&String> = used
            .iter()
            .filter(|u| !passed.contains(*u) && !["VERIFY_FROM", "BUILDPLATFORM"].contains(&u.as_str()))
            .collect();
        assert!(unpassed.is_empty(), "used but never passed: {unpassed:?}");
        let value = |name: &str| args.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(value("IMAGE_FROM"), Some("busybox"));
        assert_eq!(value("ARCHIVE"), Some(manifest.artifacts[0].name.as_str()));
        assert_eq!(value("GIT_COMMIT"), Some(spec.commit.as_str()));
        assert_eq!(args.iter().filter(|(n, _)| *n == "IMAGE_FROM").count(), 1);
    }

    #[test]
    fn index_platforms_skip_attestations_and_normalize() {
        let index = serde_json::json!({"manifests": [
            {"platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"platform": {"os": "linux", "architecture": "arm", "variant": "v5"}},
            {"platform": {"os": "unknown", "architecture": "unknown"}},
            {"platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        assert_eq!(index_platforms(&index), ["linux/arm64", "linux/arm/v5", "linux/amd64"]);
    }
}
