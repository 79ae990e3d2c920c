//! What the signing mode (`sign::Signing`) does to a dist folder, for `dist` and `dist merge`:
//! with a key, `files::write_all` signs SHA256SUMS and the provenance as it writes them;
//! keyless, the cosign CLI signs the written SHA256SUMS into a Sigstore bundle (`finish`).
//! Also how the plan and the summary say which it is.

use anyhow::{Context, Result};
use camino::Utf8Path;

use crate::release::layout::{
    ENVELOPE_FILE, KEYLESS_BUNDLE_FILE, PUBLIC_KEY_FILE, SIGNATURE_FILE, SUMS_FILE,
};
use crate::sign::Signing;
use crate::util::cmd::Cmd;

/// The plan's line about signing `dir`.
pub fn plan_line(signing: &Signing, dir: &Utf8Path) -> String {
    match signing {
        Signing::Keyless => {
            format!("signing: keyless, by cosign (Sigstore OIDC): {}\n", keyless_command(dir))
        }
        _ => format!("signing: {}\n", summary(signing)),
    }
}

/// "unsigned", or what signs SHA256SUMS.
pub fn summary(signing: &Signing) -> String {
    match signing {
        Signing::Key(pair) => format!(
            "{SUMS_FILE} and the provenance signed ({SIGNATURE_FILE}, {ENVELOPE_FILE}) by the key {}…, published as {PUBLIC_KEY_FILE}",
            &pair.fingerprint()[..16]
        ),
        Signing::Keyless => format!("{SUMS_FILE} signed keyless by cosign ({KEYLESS_BUNDLE_FILE})"),
        Signing::Unsigned => "unsigned: no [sign] key in release.toml, no --sign-key".to_string(),
    }
}

/// What signing does after the files are written into the staged `dir`.
pub fn finish(signing: &Signing, dir: &Utf8Path) -> Result<()> {
    match signing {
        Signing::Keyless => {
            let sh = xshell::Shell::new()?;
            keyless_command(dir).run_step(&sh).context("cosign sign-blob failed")
        }
        _ => Ok(()),
    }
}

/// `--keyless`: the cosign command that signs `dir`'s SHA256SUMS with Sigstore's OIDC flow
/// (CI's identity token) into a bundle beside it. Verified with `cosign verify-blob --bundle`.
fn keyless_command(dir: &Utf8Path) -> Cmd {
    let bundle = dir.join(KEYLESS_BUNDLE_FILE);
    Cmd::new("cosign").args(["sign-blob", "--yes", "--bundle", bundle.as_str(), dir.join(SUMS_FILE).as_str()])
}
