//! The builder image and the from-source Dockerfile, derived from the pins (rust-toolchain.toml,
//! release.toml's `[toolchain]`) and the workspace: docker/Dockerfile.builder is the pinned
//! toolchain image, docker/Dockerfile.source builds one arch's image from a checkout inside it.
//! Both are committed renderings (kept in sync by tests), so Docker alone can use them.

use anyhow::{Context, Result};
use camino::Utf8PathBuf;

use crate::project::image_spec::dockerfile_quoted;
use crate::project::workspace::{Workspace, RUST_TOOLCHAIN_FILE};
use crate::util::template;

pub const BUILDER_TEMPLATE_PATH: &str = "xtask/templates/Dockerfile.builder.in";
const BUILDER_TEMPLATE: &str = include_str!("../../templates/Dockerfile.builder.in");
/// The committed rendering, from the workspace root.
#[cfg(test)]
pub const BUILDER_DOCKERFILE: &str = "docker/Dockerfile.builder";

/// rustup-init, pinned with the SHA-256 that static.rust-lang.org publishes beside it.
const RUSTUP_VERSION: &str = "1.29.0";
const RUSTUP_SHA256_AMD64: &str = "4acc9acc76d5079515b46346a485974457b5a79893cfb01112423c89aeb5aa10";
const RUSTUP_SHA256_ARM64: &str = "9732d6c5e2a098d3521fca8145d826ae0aaa067ef2385ead08e6feac88fa5792";
/// Where the builder image keeps rustup's toolchains and the xtask's tools (zig, cargo-zigbuild).
pub const BUILDER_RUSTUP_HOME: &str = "/usr/local/rustup";
pub const BUILDER_TOOLS_DIR: &str = "/opt/exotool-tools";

/// The rust-src folder of `toolchain` in the builder image (on a `host` like this one).
pub fn rust_src(toolchain: &str, host: &str) -> Utf8PathBuf {
    Utf8PathBuf::from(format!("{BUILDER_RUSTUP_HOME}/toolchains/{toolchain}-{host}/lib/rustlib/src/rust"))
}

/// The non-root user of the builder image; its uid and gid can be changed with build args.
pub const BUILDER_UID: u32 = 1000;
/// The build machines the builder image is made for.
pub const BUILDER_PLATFORMS: [&str; 2] = ["linux/amd64", "linux/arm64"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderSpec {
    /// The released binary's name: the builder is `<image.repository>-builder`.
    pub name: String,
    pub repository: String,
    pub stable: String,
    pub nightly: String,
    pub zig: String,
    pub cargo_zigbuild: String,
    /// The release's targets, whose std the image asks rustup for.
    pub targets: Vec<&'static str>,
    pub source: String,
}

impl BuilderSpec {
    pub fn new(ws: &Workspace) -> Result<BuilderSpec> {
        let toolchain = &ws.config.toolchain;
        let stable = toolchain.stable.clone().with_context(|| {
            format!(
                "the builder image pins the stable Rust of {RUST_TOOLCHAIN_FILE}, which this workspace lacks; \
                 add one with `[toolchain] channel = \"1.95.0\"`"
            )
        })?;
        Ok(BuilderSpec {
            name: ws.config.dist.binary.clone(),
            repository: format!("{}-builder", ws.config.image.repository),
            stable,
            nightly: toolchain.nightly.clone(),
            zig: toolchain.zig.clone(),
            cargo_zigbuild: toolchain.cargo_zigbuild.clone(),
            targets: ws.config.dist.arches.iter().map(|arch| arch.target).collect(),
            source: ws.package.repository.clone(),
        })
    }

    /// Every pin, readable: a change of any of them is a new tag.
    pub fn tag(&self) -> String {
        format!("rust{}-{}-zig{}-zigbuild{}", self.stable, self.nightly, self.zig, self.cargo_zigbuild)
    }

    pub fn image(&self) -> String {
        format!("{}:{}", self.repository, self.tag())
    }

    /// zig and cargo-zigbuild in the image, where the xtask's tool cache would keep them.
    pub fn zig_dir(&self) -> Utf8PathBuf {
        Utf8PathBuf::from(format!(
            "{BUILDER_TOOLS_DIR}/zig-{}-cargo-zigbuild-{}",
            self.zig, self.cargo_zigbuild
        ))
    }

    /// docker/Dockerfile.builder.
    pub fn dockerfile(&self) -> Result<String> {
        let values = [
            ("name", self.name.clone()),
            ("tag", self.tag()),
            ("repository", self.repository.clone()),
            ("uid", BUILDER_UID.to_string()),
            ("rustup_home", BUILDER_RUSTUP_HOME.to_string()),
            ("tools_dir", BUILDER_TOOLS_DIR.to_string()),
            ("stable", self.stable.clone()),
            ("nightly", self.nightly.clone()),
            ("zig", self.zig.clone()),
            ("cargo_zigbuild", self.cargo_zigbuild.clone()),
            ("rustup_version", RUSTUP_VERSION.to_string()),
            ("rustup_sha256_amd64", RUSTUP_SHA256_AMD64.to_string()),
            ("rustup_sha256_arm64", RUSTUP_SHA256_ARM64.to_string()),
            ("targets", self.targets.join(" ")),
            ("source", dockerfile_quoted(&self.source)),
        ];
        template::render(BUILDER_TEMPLATE, &values)
            .with_context(|| format!("cannot render {BUILDER_TEMPLATE_PATH}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::project::image_spec::ImageSpec;
    use crate::project::source_dockerfile::{source_dockerfile, SOURCE_DOCKERFILE};
    use crate::project::workspace::project_root;

    fn spec() -> BuilderSpec {
        BuilderSpec::new(&fixtures::workspace()).unwrap()
    }

    #[test]
    fn the_tag_changes_with_every_pin() {
        let base = spec();
        assert!(base.image().starts_with("ghcr.io/exotool/exonode-builder:rust"), "{}", base.image());
        let variants = [
            BuilderSpec { stable: "1.96.0".into(), ..base.clone() },
            BuilderSpec { nightly: "nightly-2026-06-01".into(), ..base.clone() },
            BuilderSpec { zig: "0.17.2".into(), ..base.clone() },
            BuilderSpec { cargo_zigbuild: "0.24.1".into(), ..base.clone() },
        ];
        for variant in variants {
            assert_ne!(variant.tag(), base.tag());
            assert!(variant.dockerfile().unwrap().contains(&variant.tag()));
        }
    }

    #[test]
    fn a_workspace_without_a_stable_pin_is_told_how_to_add_one() {
        let mut ws = fixtures::workspace();
        ws.config.toolchain.stable = None;
        let err = BuilderSpec::new(&ws).unwrap_err().to_string();
        assert!(err.contains("rust-toolchain.toml") && err.contains("channel"), "{err}");
    }

    const DEVCONTAINER: &str = ".devcontainer/devcontainer.json";

    /// The dev workspace for editors that speak the Dev Container spec: the builder image, as
    /// its user `builder`, whose uid the editor maps to the caller's (updateRemoteUserUID) so
    /// files written in the checkout belong to the caller.
    fn devcontainer(builder: &BuilderSpec) -> String {
        let config = serde_json::json!({
            "name": format!("{} builder", builder.name),
            "image": builder.image(),
            "remoteUser": "builder",
            "containerUser": "builder",
            "updateRemoteUserUID": true,
            "workspaceMount": "source=${localWorkspaceFolder},target=/src,type=bind",
            "workspaceFolder": "/src",
            "customizations": { "vscode": { "extensions": ["rust-lang.rust-analyzer"] } }
        });
        format!("{}\n", serde_json::to_string_pretty(&config).unwrap())
    }

    /// The committed renderings (rust-analyzer's codegen pattern): when a pin, release.toml,
    /// the workspace or a template changed, they are rewritten here and the test fails until
    /// they are committed.
    #[test]
    fn the_builder_source_and_devcontainer_files_are_the_renderings_of_this_workspace() {
        let sh = xshell::Shell::new().unwrap();
        let ws = Workspace::load(&sh).unwrap();
        let builder = BuilderSpec::new(&ws).unwrap();
        // The renderings take the release's values as build args, so any commit gives the same
        // text; the fixture's is fed in because cargo-mutants tests a copy without .git.
        let fixed = fixtures::release();
        let release = ws.release_at(fixed.commit, fixed.source_date_epoch);
        let image = ImageSpec::new(&ws.config.image, &ws.project_facts(), &release, ws.config.image.base);
        let renderings = [
            (BUILDER_DOCKERFILE, builder.dockerfile().unwrap()),
            (SOURCE_DOCKERFILE, source_dockerfile(&ws, &builder, &image).unwrap()),
            (DEVCONTAINER, devcontainer(&builder)),
        ];
        let mut stale = Vec::new();
        for (path, rendered) in renderings {
            let full = project_root().join(path);
            if std::fs::read_to_string(&full).ok().as_deref() != Some(rendered.as_str()) {
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(&full, &rendered).unwrap();
                stale.push(path);
            }
        }
        let gitlab_ci = project_root().join(GITLAB_CI);
        let text = std::fs::read_to_string(&gitlab_ci).unwrap();
        let pinned = with_builder_image(&text, &builder.image());
        if pinned != text {
            std::fs::write(&gitlab_ci, pinned).unwrap();
            stale.push(GITLAB_CI);
        }
        assert!(
            stale.is_empty(),
            "{stale:?} were out of date; they have been regenerated: review and commit them"
        );
    }

    /// .gitlab-ci.yml runs its jobs in the builder: its BUILDER_IMAGE is the pinned tag.
    const GITLAB_CI: &str = ".gitlab-ci.yml";

    fn with_builder_image(text: &str, image: &str) -> String {
        let line = "  BUILDER_IMAGE: ";
        assert!(text.lines().any(|l| l.starts_with(line)), "{GITLAB_CI} sets no BUILDER_IMAGE");
        text.lines()
            .map(|l| if l.starts_with(line) { format!("{line}{image}\n") } else { format!("{l}\n") })
            .collect()
    }

    #[test]
    fn the_gitlab_builder_image_line_is_replaced_alone() {
        let text = "variables:\n  BUILDER_IMAGE: old:1\n  OTHER: x\n";
        assert_eq!(with_builder_image(text, "new:2"), "variables:\n  BUILDER_IMAGE: new:2\n  OTHER: x\n");
    }
}
