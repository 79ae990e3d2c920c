//! `cargo xtask builder`: builds the pinned builder image (docker/Dockerfile.builder) for this
//! host, or for every builder platform with `--push`, published as one manifest list. Its tag
//! follows the pins, so a published builder is never overwritten by different toolchains.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::engines::buildx;
use crate::flags;
use crate::project::builder_spec::{BuilderSpec, BUILDER_PLATFORMS};
use crate::project::config;
use crate::project::workspace::Workspace;
use crate::util::cmd::Cmd;
use crate::util::progress::{self, Progress};
use crate::util::report::seconds;

/// Where the CA bundle to trust is read from when `SSL_CERT_FILE` names none.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug)]
pub struct BuilderPlan {
    pub image: String,
    /// The rendered Dockerfile, written into `context` (which holds nothing else).
    pub dockerfile: String,
    pub context: Utf8PathBuf,
    /// One build per platform, in this order.
    pub platforms: Vec<String>,
    pub builds: Vec<Cmd>,
    /// `imagetools create` over the per-platform tags, when pushing.
    pub list: Option<Cmd>,
}

impl flags::Builder {
    pub fn run(self, sh: &Shell) -> Result<()> {
        progress::set_verbose(self.verbose);
        let ws = Workspace::load(sh)?;
        let plan = self.plan(&ws, &host_platform(), ca_bundle().as_deref())?;
        if self.dry_run || self.verbose {
            print!("{}", render(&plan));
        } else {
            println!(
                "builder image {} for {} (the commands: --dry-run; docker's output: --verbose)",
                plan.image,
                plan.platforms.join(", ")
            );
        }
        if self.dry_run {
            return Ok(());
        }
        buildx::check_engine(sh, self.builder.as_deref())?;
        std::fs::create_dir_all(&plan.context).with_context(|| format!("cannot create {}", plan.context))?;
        let dockerfile = plan.context.join("Dockerfile");
        std::fs::write(&dockerfile, &plan.dockerfile)
            .with_context(|| format!("cannot write {dockerfile}"))?;
        let progress = Progress::new(plan.platforms.iter().map(String::as_str));
        for (index, build) in plan.builds.iter().enumerate() {
            progress.say(index, "building");
            let started = Instant::now();
            let built = build.run_logged(sh, progress.row(index));
            if built.is_err() {
                progress.clear();
            }
            built.context("docker buildx build of the builder image failed")?;
            progress.finish(index, &format!("built in {}", seconds(started.elapsed())));
        }
        progress.clear();
        if let Some(list) = &plan.list {
            list.run_step(sh).with_context(|| format!("cannot create the manifest list {}", plan.image))?;
            println!("pushed {} ({})", plan.image, self.platforms().join(", "));
        } else {
            println!("loaded {} into the local engine", plan.image);
        }
        Ok(())
    }

    fn platforms(&self) -> Vec<String> {
        if self.platform.is_empty() && self.push {
            BUILDER_PLATFORMS.iter().map(|p| p.to_string()).collect()
        } else {
            self.platform.clone()
        }
    }

    /// The builds (and manifest list) for `host` with the CA bundle `ca`, run nothing.
    pub fn plan(&self, ws: &Workspace, host: &str, ca: Option<&Utf8Path>) -> Result<BuilderPlan> {
        let mut spec = BuilderSpec::new(ws)?;
        if let Some(repository) = &self.image {
            config::validate_repository(repository)
                .map_err(|why| anyhow::anyhow!("--image {repository:?} {why}"))?;
            spec.repository = repository.clone();
        }
        let image = spec.image();
        let mut platforms = self.platforms();
        for platform in &platforms {
            if !BUILDER_PLATFORMS.contains(&platform.as_str()) {
                bail!(
                    "--platform {platform:?}: the builder image is made for {} (rustup-init is pinned for those)",
                    BUILDER_PLATFORMS.join(" and ")
                );
            }
        }
        if platforms.is_empty() {
            platforms.push(host.to_string());
        }
        if !self.push && platforms.len() > 1 {
            bail!("the local engine keeps one platform per tag: give one --platform, or add --push");
        }
        let context = ws.target_dir.join("builder");
        let base = || {
            let mut build = Cmd::new("docker").args(["buildx", "build"]);
            if let Some(builder) = &self.builder {
                build = build.args(["--builder", builder]);
            }
            if let Some(ca) = ca {
                build = build.arg("--secret").arg(format!("id=ca-bundle,src={ca}"));
            }
            build
        };
        let suffixed =
            |platform: &str| format!("{image}-{}", platform.trim_start_matches("linux/").replace('/', "-"));
        let builds: Vec<Cmd> = platforms
            .iter()
            .map(|platform| {
                let tag = if self.push { suffixed(platform) } else { image.clone() };
                base()
                    .args(["--platform", platform, "--tag", &tag, "--file"])
                    .arg(context.join("Dockerfile").to_string())
                    .arg(if self.push { "--push" } else { "--load" })
                    .arg(context.to_string())
            })
            .collect();
        let list = self.push.then(|| {
            Cmd::new("docker")
                .args(["buildx", "imagetools", "create", "--tag", &image])
                .args(platforms.iter().map(|platform| suffixed(platform)))
        });
        Ok(BuilderPlan { image, dockerfile: spec.dockerfile()?, context, platforms, builds, list })
    }
}

fn render(plan: &BuilderPlan) -> String {
    let mut out = format!("builder image {}\n", plan.image);
    for build in &plan.builds {
        out.push_str(&format!("  {build}\n"));
    }
    if let Some(list) = &plan.list {
        out.push_str(&format!("  {list}\n"));
    }
    out
}

/// The CA bundle builds should trust when downloading (a TLS-inspecting proxy's CA is in it),
/// passed as the BuildKit secret `ca-bundle`: used by the download steps, kept in no layer.
pub fn ca_bundle() -> Option<Utf8PathBuf> {
    let named = std::env::var("SSL_CERT_FILE").ok().filter(|path| !path.is_empty());
    let path = Utf8PathBuf::from(named.unwrap_or_else(|| SYSTEM_CA_BUNDLE.to_string()));
    path.is_file().then_some(path)
}

/// The Docker platform of this machine, which the builder runs on.
pub fn host_platform() -> String {
    match std::env::consts::ARCH {
        "aarch64" => "linux/arm64".to_string(),
        _ => "linux/amd64".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn flags(push: bool, platform: &[&str]) -> flags::Builder {
        flags::Builder {
            push,
            platform: platform.iter().map(|p| p.to_string()).collect(),
            image: None,
            builder: None,
            verbose: false,
            dry_run: true,
        }
    }

    #[test]
    fn a_local_build_loads_the_host_platform_under_the_pinned_tag() {
        let ws = fixtures::workspace();
        let plan = flags(false, &[]).plan(&ws, "linux/amd64", Some("/ca.pem".into())).unwrap();
        assert_eq!(plan.builds.len(), 1);
        let text = plan.builds[0].to_string();
        assert!(text.contains("--platform linux/amd64") && text.contains("--load"), "{text}");
        assert!(text.contains(&format!("--tag {}", BuilderSpec::new(&ws).unwrap().image())), "{text}");
        assert!(text.contains("--secret id=ca-bundle,src=/ca.pem"), "{text}");
        assert!(plan.list.is_none());
    }

    #[test]
    fn a_push_builds_every_builder_platform_and_lists_them_under_the_pinned_tag() {
        let ws = fixtures::workspace();
        let plan = flags(true, &[]).plan(&ws, "linux/amd64", None).unwrap();
        let image = BuilderSpec::new(&ws).unwrap().image();
        let tags: Vec<String> = plan.builds.iter().map(|b| b.to_string()).collect();
        assert!(tags[0].contains(&format!("--tag {image}-amd64")) && tags[0].contains("--push"), "{tags:?}");
        assert!(
            tags[1].contains(&format!("--tag {image}-arm64")) && !tags[1].contains("--secret"),
            "{tags:?}"
        );
        let list = plan.list.unwrap().to_string();
        assert!(list.ends_with(&format!("--tag {image} {image}-amd64 {image}-arm64")), "{list}");
    }

    #[test]
    fn platforms_the_builder_is_not_made_for_are_refused() {
        let ws = fixtures::workspace();
        let err = flags(false, &["linux/arm/v7"]).plan(&ws, "linux/amd64", None).unwrap_err().to_string();
        assert!(err.contains("linux/arm/v7") && err.contains("linux/arm64"), "{err}");
        let err = flags(false, &BUILDER_PLATFORMS).plan(&ws, "linux/amd64", None).unwrap_err().to_string();
        assert!(err.contains("--push"), "{err}");
    }
}
