//! The files `dist` writes next to the archives, all derived from the manifest alone (so a
//! merged dist folder gets the very same bytes): `Dockerfile.release`, `install.sh`, the
//! manifest itself and `SHA256SUMS` over everything. Dockerfile.release is a view of the image
//! spec (`project::image_spec`), like the images `cargo xtask image` builds.

use anyhow::{bail, Context, Result};
use camino::Utf8Path;

use crate::project::config::{expand_version, BaseKind, Config};
use crate::project::image_spec::{ImageSpec, Values, SCRATCH};
use crate::project::matrix::{self, ByteOrder};
use crate::project::workspace::ProjectFacts;
use crate::release::checksum::{self, SumsEntry};
use crate::release::layout::{
    DOCKERFILE_RELEASE, ENVELOPE_FILE, INSTALL_SH, MANIFEST_FILE, PROVENANCE_FILE, PUBLIC_KEY_FILE,
    SIGNATURE_FILE, SUMS_FILE, UNLISTED_FILES,
};
use crate::release::manifest::{Manifest, SignatureInfo};
use crate::release::provenance;
use crate::sign::key::KeyPair;
use crate::util::template::render;

/// The templates, as paths from the workspace root (`cargo xtask lint` renders them from disk).
pub const DOCKERFILE_TEMPLATE_PATH: &str = "xtask/templates/Dockerfile.release.in";
pub const INSTALL_TEMPLATE_PATH: &str = "xtask/templates/install.sh.in";
const DOCKERFILE_TEMPLATE: &str = include_str!("../../templates/Dockerfile.release.in");
const INSTALL_TEMPLATE: &str = include_str!("../../templates/install.sh.in");

/// Writes manifest, Dockerfile.release, install.sh, the provenance and then SHA256SUMS over
/// every file in `dir`; with a key, also the provenance's signed envelope and cosign.pub (listed
/// in SHA256SUMS, its fingerprint in the manifest), and last SHA256SUMS.sig.
pub fn write_all(
    dir: &Utf8Path,
    manifest: &Manifest,
    config: &Config,
    facts: &ProjectFacts,
    inputs: &provenance::Inputs,
    signer: Option<&KeyPair>,
) -> Result<()> {
    let mut manifest = manifest.clone();
    let mut public_key = None;
    if let Some(pair) = signer {
        let pem = pair.public_pem();
        manifest.signature = Some(SignatureInfo {
            signature: SIGNATURE_FILE.to_string(),
            public_key: PUBLIC_KEY_FILE.to_string(),
            public_key_sha256: pair.fingerprint(),
            public_key_pem: pem.clone(),
        });
        public_key = Some(pem);
    }
    let mut files = vec![
        (MANIFEST_FILE, manifest.to_json()),
        (DOCKERFILE_RELEASE, dockerfile_release(&manifest, config, facts)?),
        (INSTALL_SH, install_sh(&manifest, config)?),
    ];
    let statement = provenance::statement(&manifest, facts, inputs);
    files.extend(signer.map(|pair| (ENVELOPE_FILE, provenance::envelope(&statement, pair))));
    files.push((PROVENANCE_FILE, statement));
    files.extend(public_key.map(|pem| (PUBLIC_KEY_FILE, pem)));
    for (name, contents) in files {
        let path = dir.join(name);
        std::fs::write(&path, contents).with_context(|| format!("cannot write {path}"))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join(INSTALL_SH), std::fs::Permissions::from_mode(0o755))?;
    }
    write_sums(dir)?;
    if let Some(pair) = signer {
        let sums = dir.join(SUMS_FILE);
        let bytes = std::fs::read(&sums).with_context(|| format!("cannot read {sums}"))?;
        let path = dir.join(SIGNATURE_FILE);
        std::fs::write(&path, pair.sign(&bytes)).with_context(|| format!("cannot write {path}"))?;
    }
    Ok(())
}

/// SHA256SUMS lists every other file in `dir` but the signatures of itself.
pub fn write_sums(dir: &Utf8Path) -> Result<()> {
    let mut entries = Vec::new();
    for entry in dir.read_dir_utf8().with_context(|| format!("cannot list {dir}"))? {
        let entry = entry?;
        let name = entry.file_name().to_string();
        if UNLISTED_FILES.contains(&name.as_str()) {
            continue;
        }
        if !entry.file_type()?.is_file() {
            bail!("{dir} holds {name}, which is not a regular file; a dist folder holds only files");
        }
        let (sha256, _) = checksum::sha256_file(entry.path())?;
        entries.push(SumsEntry { sha256, name });
    }
    let path = dir.join(SUMS_FILE);
    std::fs::write(&path, checksum::render_sums(&entries)).with_context(|| format!("cannot write {path}"))
}

fn download_url(manifest: &Manifest, config: &Config) -> String {
    expand_version(&config.dist.download_url, &manifest.version)
}

pub fn dockerfile_release(manifest: &Manifest, config: &Config, facts: &ProjectFacts) -> Result<String> {
    dockerfile_release_from(DOCKERFILE_TEMPLATE, manifest, config, facts)
}

pub fn dockerfile_release_from(
    template: &str,
    manifest: &Manifest,
    config: &Config,
    facts: &ProjectFacts,
) -> Result<String> {
    let mut cases = String::new();
    let mut platforms = Vec::new();
    for artifact in &manifest.artifacts {
        let arch = matrix::by_name(&artifact.arch).with_context(|| {
            format!("manifest names arch {:?}, which is not in the matrix", artifact.arch)
        })?;
        // Match buildx's TARGETARCH[/TARGETVARIANT], with or without the default variant.
        let patterns = arch.platform.spellings();
        let patterns: Vec<&str> = patterns.iter().map(|p| p.trim_start_matches("linux/")).collect();
        cases.push_str(&format!(
            "      {}) file={}; sha256={} ;; \\\n",
            patterns.join("|"),
            artifact.name,
            artifact.sha256
        ));
        platforms.push(arch.platform.normalized());
    }
    // Dockerfile.release builds FROM scratch: no base to trust beyond the pinned archive.
    let spec = ImageSpec::new(&config.image, facts, &manifest.release(), BaseKind::Scratch);
    render(
        template,
        &release_values(manifest, config, &cases)
            .into_iter()
            .chain([("platforms", platforms.join(", ")), ("from", SCRATCH.to_string())])
            .chain(spec.template_values(Values::Literal { from: SCRATCH }))
            .collect::<Vec<_>>(),
    )
}

pub fn install_sh(manifest: &Manifest, config: &Config) -> Result<String> {
    install_sh_from(INSTALL_TEMPLATE, manifest, config)
}

pub fn install_sh_from(template: &str, manifest: &Manifest, config: &Config) -> Result<String> {
    let mut cases = String::new();
    let mut uname_cases = String::new();
    let mut names = Vec::new();
    for artifact in &manifest.artifacts {
        let arch = matrix::by_name(&artifact.arch).with_context(|| {
            format!("manifest names arch {:?}, which is not in the matrix", artifact.arch)
        })?;
        cases.push_str(&format!(
            "    {}) echo \"{} {} {}\" ;;\n",
            arch.name, artifact.name, artifact.sha256, artifact.binary.sha256
        ));
        names.push(arch.name);
    }
    // Detection knows every arch of the matrix, so a machine we do not release for gets
    // "no build for arm32v6" rather than "unknown CPU".
    for arch in matrix::MATRIX {
        let machines = arch.uname_machines.join("|");
        if arch.uname_both_endians {
            let (order, other) = match arch.elf.byte_order {
                ByteOrder::Little => ("little", "big"),
                ByteOrder::Big => ("big", "little"),
            };
            uname_cases.push_str(&format!(
                "    {machines}) arch={name}\n      order=$(byte_order) || exit 1\n      [ \"$order\" = {order} ] || die \"no $NAME build for {other}-endian $machine CPUs ({name} is {order}-endian)\" ;;\n",
                name = arch.name
            ));
        } else {
            uname_cases.push_str(&format!("    {machines}) arch={} ;;\n", arch.name));
        }
    }
    render(
        template,
        &release_values(manifest, config, &cases)
            .into_iter()
            .chain([
                ("uname_cases", uname_cases.trim_end_matches('\n').to_string()),
                ("arch_names", names.join(", ")),
                // Empty for an unsigned release. A PEM key is base64 lines and dashes: safe in
                // single quotes.
                (
                    "public_key_pem",
                    manifest.signature.as_ref().map_or(String::new(), |s| s.public_key_pem.clone()),
                ),
            ])
            .collect::<Vec<_>>(),
    )
}

/// What both templates say about the release, and their per-arch `case` lines.
fn release_values(manifest: &Manifest, config: &Config, cases: &str) -> Vec<(&'static str, String)> {
    vec![
        ("name", manifest.name.clone()),
        ("version", manifest.version.clone()),
        ("commit", manifest.commit.clone()),
        ("base_url", download_url(manifest, config)),
        ("cases", cases.trim_end_matches('\n').to_string()),
    ]
}
