//! docker/Dockerfile.source, rendered from the workspace, the builder spec and the image spec:
//! a fetch stage that sees only the manifests, an offline compile stage running `cargo xtask
//! dist --arch $ARCH` in the builder, then docker/Dockerfile's stages. Only its generator (a
//! test, like docker/Dockerfile.builder's) renders it: Docker users build the committed file.

use anyhow::{Context, Result};
use camino::Utf8PathBuf;

use crate::project::builder_spec::{BuilderSpec, BUILDER_UID};
use crate::project::image_spec::{dockerfile_quoted, ImageSpec};
use crate::project::matrix;
use crate::project::workspace::{Workspace, RUST_TOOLCHAIN_FILE};
use crate::util::template;

pub const SOURCE_TEMPLATE_PATH: &str = "xtask/templates/Dockerfile.source.in";
const SOURCE_TEMPLATE: &str = include_str!("../../templates/Dockerfile.source.in");
/// The committed rendering, from the workspace root.
pub const SOURCE_DOCKERFILE: &str = "docker/Dockerfile.source";
/// Cargo's own configuration (aliases, source replacement), which fetching may depend on.
const CARGO_CONFIG: &str = ".cargo/config.toml";

/// docker/Dockerfile.source: a fetch stage that sees only the manifests, an offline compile
/// stage running `cargo xtask dist --arch $ARCH` in the builder, then docker/Dockerfile's stages.
pub fn source_dockerfile(ws: &Workspace, builder: &BuilderSpec, image: &ImageSpec) -> Result<String> {
    let mut fetch_files: Vec<Utf8PathBuf> =
        vec!["Cargo.toml".into(), "Cargo.lock".into(), RUST_TOOLCHAIN_FILE.into()];
    fetch_files.retain(|file| ws.root.join(file).is_file());
    // Files in folders need a COPY each, into their folder: cargo's config, then the members.
    let mut in_folders: Vec<Utf8PathBuf> =
        [CARGO_CONFIG].into_iter().map(Utf8PathBuf::from).filter(|f| ws.root.join(f).is_file()).collect();
    in_folders
        .extend(ws.members.iter().map(|m| m.manifest.clone()).filter(|m| m.parent() != Some("".into())));
    let member_manifests: Vec<String> = in_folders
        .iter()
        .map(|file| {
            let dir = file.parent().map_or(String::new(), |dir| format!("{dir}/"));
            format!("COPY --chown=builder:builder {file} {dir}")
        })
        .collect();
    let target_files: Vec<String> =
        ws.members.iter().flat_map(|m| &m.target_files).map(|file| file.to_string()).collect();
    let stages =
        image.image_stages("COPY --from=compile /home/builder/release/ /in/", "ARCHIVE=$(cat ARCHIVE)")?;
    let quoted = |text: &str| format!("\"{}\"", dockerfile_quoted(text));
    let values = [
        ("binary", ws.config.dist.binary.clone()),
        ("version", ws.package.version.clone()),
        ("builder_image", builder.image()),
        ("source", quoted(&ws.package.repository)),
        ("licenses", quoted(&ws.package.license)),
        ("description", quoted(&ws.package.description)),
        ("fetch_files", fetch_files.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(" ")),
        ("member_manifests", member_manifests.join("\n")),
        ("target_files", target_files.join(" ")),
        ("arches", matrix::names().join(", ")),
        ("builder_uid", BUILDER_UID.to_string()),
        ("image_stages", stages),
    ];
    template::render(SOURCE_TEMPLATE, &values)
        .with_context(|| format!("cannot render {SOURCE_TEMPLATE_PATH}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::project::config::BaseKind;

    #[test]
    fn the_source_dockerfile_fetches_from_manifests_alone_and_compiles_offline() {
        let ws = fixtures::workspace();
        let text =
            source_dockerfile(&ws, &BuilderSpec::new(&ws).unwrap(), &fixtures::image_spec(BaseKind::Busybox))
                .unwrap();
        let fetch = &text[text.find("AS fetch").unwrap()..text.find("AS compile").unwrap()];
        assert!(
            !fetch.contains("COPY --chown=builder:builder . ."),
            "the fetch stage must not see the sources"
        );
        assert!(fetch.contains("node/Cargo.toml node/") && fetch.contains("cargo fetch --locked"), "{fetch}");
        assert!(text.contains("RUN --network=none"), "{text}");
        assert!(text.contains("CARGO_NET_OFFLINE=true"), "{text}");
        assert!(
            text.contains(&format!("ARG BUILDER_IMAGE={}", BuilderSpec::new(&ws).unwrap().image())),
            "{text}"
        );
    }
}
