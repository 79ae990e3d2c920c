//! The buildx engine of `cargo xtask image`: one `docker buildx build` per arch from
//! docker/Dockerfile (the Docker Hub hooks model: IMAGE_FROM=arm32v7/busybox, tag TAG-arm32v7),
//! each with a context holding only that arch's archive and checksum; then, when pushing, one
//! manifest list per tag, checked to hold exactly the expected platforms.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use xshell::{cmd, Shell};

use crate::engines::ImageRequest;
use crate::project::config::BaseKind;
use crate::project::matrix::{normalize_platform, Arch};
use crate::project::workspace::{rfc3339, Workspace};
use crate::util::cmd::Cmd;
use crate::util::report::{human_size, seconds};

pub struct ArchBuild {
    pub arch: &'static Arch,
    pub context: Utf8PathBuf,
    pub files: Vec<Utf8PathBuf>,
    pub build: Cmd,
    pub refs: Vec<String>,
}

pub struct BuildxPlan {
    pub builds: Vec<ArchBuild>,
    /// `imagetools create` for the manifest lists, when pushing.
    pub list: Option<Cmd>,
}

pub fn run(sh: &Shell, ws: &Workspace, request: &ImageRequest) -> Result<()> {
    let plan = plan(ws, request);
    print!("{}", render(request, &plan));
    if request.dry_run {
        return Ok(());
    }
    check_engine(sh, request.builder.as_deref())?;
    let mut rows = Vec::new();
    let total = plan.builds.len();
    for (index, build) in plan.builds.iter().enumerate() {
        eprintln!(
            "[{}/{total}] {}: building {} ({})",
            index + 1,
            build.arch.name,
            build.refs[0],
            build.arch.platform
        );
        let started = Instant::now();
        let row =
            build_one(sh, request, build).with_context(|| format!("image for {} failed", build.arch.name))?;
        rows.push(SummaryRow { elapsed: started.elapsed(), ..row });
    }
    if let Some(list) = &plan.list {
        eprintln!("creating manifest list {}", request.list_refs().join(", "));
        list.run(sh).context("cannot create the manifest list")?;
        for reference in request.list_refs() {
            check_list_platforms(sh, request, &reference)?;
        }
    }
    print!("{}", summary(&rows));
    if request.push {
        println!(
            "pushed {} with platforms {}",
            request.list_refs().join(", "),
            expected_platforms(request).into_iter().collect::<Vec<_>>().join(", ")
        );
    } else {
        println!(
            "loaded {} images into the local engine (use --push to publish a manifest list)",
            rows.len()
        );
    }
    Ok(())
}

pub fn plan(ws: &Workspace, request: &ImageRequest) -> BuildxPlan {
    let dockerfile = ws.root.join("docker/Dockerfile");
    let release = request.manifest.release();
    let builds = request
        .arches
        .iter()
        .map(|&arch| {
            let artifact = request.artifact(arch);
            // One folder per run and arch: concurrent runs must not share a context.
            let context =
                ws.target_dir.join("image-context").join(format!("{}-{}", arch.name, std::process::id()));
            let files = vec![request.dist.archive(artifact), request.dist.sidecar(artifact)];
            let image_from = match request.base {
                BaseKind::Busybox => ws.config.image.base_image(arch).to_string(),
                BaseKind::Scratch => "scratch".to_string(),
            };
            let build_args = [
                ("IMAGE_FROM", image_from),
                ("ARCH", arch.name.to_string()),
                ("TARGET", arch.target.to_string()),
                ("ARCHIVE", artifact.name.clone()),
                ("BINARY", release.name.clone()),
                ("VERSION", release.version.clone()),
                ("GIT_COMMIT", release.commit.clone()),
                ("SOURCE_DATE_EPOCH", release.source_date_epoch.to_string()),
                ("CREATED", rfc3339(release.source_date_epoch)),
                ("SOURCE", ws.package.repository.clone()),
                ("LICENSES", ws.package.license.clone()),
                ("DESCRIPTION", ws.package.description.clone()),
                ("UID", ws.config.image.user.to_string()),
                ("VOLUME", ws.config.image.volume.clone()),
                ("PORT", ws.config.image.port.to_string()),
            ];
            let refs = request.arch_refs(arch);
            let mut build = Cmd::new("docker").arg("buildx").arg("build");
            if let Some(builder) = &request.builder {
                build = build.args(["--builder", builder]);
            }
            build = build.args(["--platform", &arch.platform.to_string(), "--file", dockerfile.as_str()]);
            for (key, value) in build_args {
                build = build.args(["--build-arg".to_string(), format!("{key}={value}")]);
            }
            for reference in &refs {
                build = build.args(["--tag", reference]);
            }
            build = build
                .args(["--metadata-file", context.join("metadata.json").as_str()])
                .arg(if request.push { "--push" } else { "--load" })
                .arg(context.as_str());
            ArchBuild { arch, context, files, build, refs }
        })
        .collect();
    let list = request.push.then(|| {
        let mut cmd = Cmd::new("docker").args(["buildx", "imagetools", "create"]);
        if let Some(builder) = &request.builder {
            cmd = cmd.args(["--builder", builder]);
        }
        for reference in request.list_refs() {
            cmd = cmd.args(["--tag", &reference]);
        }
        let first_tag = &request.tags[0];
        cmd.args(
            request.arches.iter().map(|arch| format!("{}:{first_tag}-{}", request.repository, arch.name)),
        )
    });
    BuildxPlan { builds, list }
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
    for build in &plan.builds {
        let _ = writeln!(out, "  {:<8} {}", build.arch.name, build.arch.platform);
        let names: Vec<&str> = build.files.iter().filter_map(|f| f.file_name()).collect();
        let _ = writeln!(out, "    context: {} ({})", build.context, names.join(", "));
        let _ = writeln!(out, "    build:   {}", build.build);
    }
    match &plan.list {
        Some(list) => {
            let _ = writeln!(out, "  list:    {list}");
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

fn check_engine(sh: &Shell, builder: Option<&str>) -> Result<()> {
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

/// Hard-links (or copies) the arch's files into a fresh context folder.
fn prepare_context(build: &ArchBuild) -> Result<()> {
    let _ = std::fs::remove_dir_all(&build.context);
    std::fs::create_dir_all(&build.context).with_context(|| format!("cannot create {}", build.context))?;
    for file in &build.files {
        let to = build.context.join(file.file_name().expect("dist files have names"));
        if std::fs::hard_link(file, &to).is_err() {
            std::fs::copy(file, &to).with_context(|| format!("cannot copy {file} to {to}"))?;
        }
    }
    Ok(())
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

fn build_one(sh: &Shell, request: &ImageRequest, build: &ArchBuild) -> Result<SummaryRow> {
    prepare_context(build)?;
    let built = build.build.run(sh).context("docker buildx build failed (its output is above)");
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
    let reported = if request.push { "containerimage.digest" } else { "containerimage.config.digest" };
    if request.push || id.is_empty() {
        if let Some(digest) = metadata[reported].as_str() {
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
                    Some(normalize_platform(&match p["variant"].as_str() {
                        Some(variant) => format!("{os}/{arch}/{variant}"),
                        None => format!("{os}/{arch}"),
                    }))
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
