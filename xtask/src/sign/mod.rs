//! How a release is signed: one mode (unsigned, a cosign key pair, or keyless by the cosign
//! CLI), resolved once from `--sign-key`/`--keyless`, release.toml's `[sign]` and
//! COSIGN_PASSWORD, and used by `dist`, `dist merge` and `image`. `key` reads cosign's key
//! files and makes and checks its blob signatures; `dsse` its signed envelopes.
//!
//! This layer knows neither dist folders nor registries; what the mode does to each lives with
//! it: `release::dist_signing` (SHA256SUMS and the provenance) and `engines::signatures`
//! (pushed images, in cosign's registry layout).

pub mod dsse;
pub mod key;
pub mod openpgp;

use anyhow::{Context, Result};
use camino::Utf8Path;

use self::key::{KeyPair, PASSWORD_ENV};
use crate::project::config::SignConfig;
use crate::util::cmd::Cmd;

/// How a release is signed.
pub enum Signing {
    Unsigned,
    /// A cosign key pair (`--sign-key` or release.toml's `[sign]`), used natively: no cosign
    /// needed.
    Key(KeyPair),
    /// `--keyless`: the cosign CLI with Sigstore's OIDC flow (CI's identity token).
    Keyless,
}

impl Signing {
    /// `--keyless`, else `--sign-key` (`key_flag`) or release.toml's `[sign]`, else unsigned.
    /// Keyless checks for cosign now (unless a dry run), before anything is built, written or
    /// pushed; a key is read now, so a wrong password fails in a second.
    pub fn resolve(
        root: &Utf8Path,
        sign: &SignConfig,
        key_flag: Option<&Utf8Path>,
        keyless: bool,
        dry_run: bool,
    ) -> Result<Signing> {
        if keyless {
            if !dry_run {
                require_cosign()?;
            }
            return Ok(Signing::Keyless);
        }
        Ok(configured_key(root, sign, key_flag)?.map_or(Signing::Unsigned, Signing::Key))
    }

    /// The key that signs natively, if any.
    pub fn key(&self) -> Option<&KeyPair> {
        match self {
            Signing::Key(pair) => Some(pair),
            _ => None,
        }
    }

    pub fn is_signed(&self) -> bool {
        !matches!(self, Signing::Unsigned)
    }

    /// `unsigned`, `key` or `keyless`, as `image --metadata-file` records it.
    pub fn name(&self) -> &'static str {
        match self {
            Signing::Unsigned => "unsigned",
            Signing::Key(_) => "key",
            Signing::Keyless => "keyless",
        }
    }
}

/// The key that signs this release: `--sign-key` (`flag`), else release.toml's `[sign]` key
/// or key-env; none means unsigned. The password is COSIGN_PASSWORD (empty when unset).
fn configured_key(root: &Utf8Path, sign: &SignConfig, flag: Option<&Utf8Path>) -> Result<Option<KeyPair>> {
    let password = std::env::var(PASSWORD_ENV).unwrap_or_default();
    if let Some(path) = flag {
        return KeyPair::load(path, &password).context("--sign-key").map(Some);
    }
    if let Some(path) = &sign.key {
        return KeyPair::load(&root.join(path), &password).context("release.toml [sign] key").map(Some);
    }
    if let Some(var) = &sign.key_env {
        let text = std::env::var(var).with_context(|| {
            format!(
                "release.toml [sign] key-env names {var}, which is not set: set it to the text of the \
                 cosign private key, or remove key-env to release unsigned"
            )
        })?;
        return KeyPair::parse(&text, &password)
            .with_context(|| format!("the signing key in ${var}"))
            .map(Some);
    }
    Ok(None)
}

/// `--keyless` runs the cosign CLI: checked before anything is built or pushed, so a missing
/// cosign cannot leave a release unsigned halfway.
fn require_cosign() -> Result<()> {
    let sh = xshell::Shell::new()?;
    Cmd::new("cosign")
        .arg("version")
        .read(&sh)
        .map(drop)
        .context("--keyless needs the cosign CLI on PATH (in GitHub Actions: sigstore/cosign-installer); nothing was done")
}
