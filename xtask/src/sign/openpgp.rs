//! The package repositories' OpenPGP key (rPGP, the `pgp` crate rpm signs with): an armored
//! secret key, as `gpg --armor --export-secret-keys` writes it, optionally protected by the
//! passphrase in REPO_KEY_PASSPHRASE. It signs apt's `Release` (clearsigned as `InRelease`,
//! detached as `Release.gpg`), rpm headers and repomd.xml, and its public half is the
//! repository's `KEY.asc`.
//!
//! Signatures carry a creation time the caller gives (the releases' commit time, never the
//! clock), so an Ed25519 key, whose signatures are deterministic, signs the same text with the
//! same bytes every time. A key made after the commit signs at its own creation time instead:
//! gpg (and so dnf) refuses a signature older than its key.

use anyhow::{anyhow, Context, Result};
use camino::Utf8Path;
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{PacketTrait, SecretKey, SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::types::{KeyDetails, Password, Timestamp};

/// Where the passphrase of a protected repository key is read from.
pub const PASSPHRASE_ENV: &str = "REPO_KEY_PASSPHRASE";

pub struct RepoKey {
    /// Its primary key unlocked.
    key: SignedSecretKey,
}

impl RepoKey {
    /// Reads the armored secret key at `path` (named in errors as `what`), and proves now that
    /// it can sign, so a wrong passphrase fails before anything is written.
    pub fn load(path: &Utf8Path, passphrase: Option<String>) -> Result<RepoKey> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the repository key {path}"))?;
        RepoKey::parse(&text, passphrase).with_context(|| format!("repository key {path}"))
    }

    pub fn parse(text: &str, passphrase: Option<String>) -> Result<RepoKey> {
        let (mut key, _) = SignedSecretKey::from_string(text).map_err(|e| {
            anyhow!("not an armored OpenPGP secret key ({e}); export one with `gpg --armor --export-secret-keys ID`")
        })?;
        key.verify_bindings().map_err(|e| anyhow!("its self-signatures do not verify: {e}"))?;
        // Unlocked once, in memory: gpg's protection (iterated S2K) costs every signature
        // otherwise, and a run signs many.
        let given = passphrase.is_some();
        key.primary_key.remove_password(&Password::from(passphrase.unwrap_or_default())).map_err(|e| {
            match given {
                false => anyhow!("cannot unlock it ({e}); if it is protected, set {PASSPHRASE_ENV}"),
                true => anyhow!("cannot unlock it ({e}); is {PASSPHRASE_ENV} its passphrase?"),
            }
        })?;
        let key = RepoKey { key };
        key.sign_config(0)?
            .sign(key.signing_key(), &key.password(), &b""[..])
            .map_err(|e| anyhow!("cannot sign with it: {e}"))?;
        Ok(key)
    }

    /// The primary key's fingerprint, upper-case hex as gpg prints it.
    pub fn fingerprint(&self) -> String {
        gpg_style(&self.signing_key().fingerprint())
    }

    /// The public key, armored: the repository's KEY.asc, and apt's `Signed-By`.
    pub fn public_armored(&self) -> Result<String> {
        let public = self.key.to_public_key();
        public.to_armored_string(ArmorOptions::default()).context("cannot armor the public key")
    }

    /// `text` clearsigned at `time` (apt's InRelease).
    pub fn clearsign(&self, text: &str, time: u64) -> Result<String> {
        let mut config = self.sign_config(time)?;
        config.typ = SignatureType::Text;
        let message = CleartextSignedMessage::new(text, config, self.signing_key(), &self.password())
            .context("cannot clearsign")?;
        message.to_armored_string(ArmorOptions::default()).context("cannot armor a clearsigned text")
    }

    /// An armored detached signature of `data` made at `time` (apt's Release.gpg).
    pub fn detached(&self, data: &[u8], time: u64) -> Result<String> {
        let signature = self
            .sign_config(time)?
            .sign(self.signing_key(), &self.password(), data)
            .context("cannot sign")?;
        DetachedSignature::new(signature)
            .to_armored_string(ArmorOptions::default())
            .context("cannot armor a signature")
    }

    /// A binary detached signature of `data` made at `time`, as one OpenPGP packet (what an
    /// rpm header signature holds).
    pub fn binary_signature(&self, data: &[u8], time: u64) -> Result<Vec<u8>> {
        let signature = self
            .sign_config(time)?
            .sign(self.signing_key(), &self.password(), data)
            .context("cannot sign")?;
        let mut bytes = Vec::new();
        signature.to_writer_with_header(&mut bytes).context("cannot write a signature")?;
        Ok(bytes)
    }

    /// The primary key signs: the keys `gpg --quick-gen-key NAME ed25519 sign` and
    /// `gpg --gen-key` make.
    fn signing_key(&self) -> &SecretKey {
        &self.key.primary_key
    }

    /// The key is unlocked at load.
    fn password(&self) -> Password {
        Password::empty()
    }

    /// A v4 binary signature over SHA-256 with its creation time and issuer, as gpg makes.
    fn sign_config(&self, time: u64) -> Result<SignatureConfig> {
        let key = self.signing_key();
        let mut config = SignatureConfig::v4(SignatureType::Binary, key.algorithm(), HashAlgorithm::Sha256);
        let time = u32::try_from(time)
            .map_err(|_| anyhow!("signature time {time} does not fit OpenPGP's 32-bit times"))?;
        let time = Timestamp::from_secs(time.max(key.created_at().as_secs()));
        config.hashed_subpackets =
            [SubpacketData::SignatureCreationTime(time), SubpacketData::IssuerFingerprint(key.fingerprint())]
                .into_iter()
                .map(|data| Subpacket::regular(data).expect("a creation time and issuer fit a subpacket"))
                .collect();
        config.unhashed_subpackets =
            vec![Subpacket::regular(SubpacketData::IssuerKeyId(key.legacy_key_id())).expect("a key id fits")];
        Ok(config)
    }
}

/// The fingerprint of an armored public key (a repository's KEY.asc), as `RepoKey::fingerprint`.
pub fn public_key_fingerprint(armored: &str) -> Result<String> {
    let (public, _) = SignedPublicKey::from_string(armored).map_err(|e| anyhow!("{e}"))?;
    Ok(gpg_style(&public.fingerprint()))
}

fn gpg_style(fingerprint: &pgp::types::Fingerprint) -> String {
    fingerprint.to_string().to_uppercase()
}

/// The passphrase from the environment, if set.
pub fn passphrase_from_env() -> Option<String> {
    std::env::var(PASSPHRASE_ENV).ok().filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixtures::REPO_KEY as TEST_KEY;
    const TEST_FINGERPRINT: &str = "2261B8CE51DC0B2FE2753BCB29CB59E52DAC070C";

    fn public(key: &RepoKey) -> SignedPublicKey {
        SignedPublicKey::from_string(&key.public_armored().unwrap()).unwrap().0
    }

    #[test]
    fn a_gpg_key_is_read_with_its_fingerprint_and_signs_the_same_bytes_every_time() {
        let key = RepoKey::parse(TEST_KEY, None).unwrap();
        assert_eq!(key.fingerprint(), TEST_FINGERPRINT);
        let created = key.key.primary_key.created_at().as_secs() as u64;
        let time = created + 86_400;
        let text = "Suite: stable\nDate: Mon, 07 Dec 2026 08:45:00 UTC\n";
        let signed = key.clearsign(text, time).unwrap();
        assert_eq!(signed, key.clearsign(text, time).unwrap());
        assert!(
            signed.starts_with("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSuite: stable\n"),
            "{signed}"
        );
        let (message, _) = CleartextSignedMessage::from_string(&signed).unwrap();
        message.verify(&public(&key)).unwrap();
        assert_ne!(signed, key.clearsign(text, time + 1).unwrap(), "the time is part of the signature");
        assert_eq!(
            key.clearsign(text, 0).unwrap(),
            key.clearsign(text, created).unwrap(),
            "never older than the key"
        );

        let detached = key.detached(text.as_bytes(), time).unwrap();
        assert_eq!(detached, key.detached(text.as_bytes(), time).unwrap());
        let (signature, _) = DetachedSignature::from_string(&detached).unwrap();
        signature.verify(&public(&key), text.as_bytes()).unwrap();
        assert!(signature.verify(&public(&key), b"another text").is_err());
    }

    #[test]
    fn text_that_is_no_key_is_refused_with_the_export_command() {
        let err = RepoKey::parse("hello\n", None).err().unwrap();
        assert!(format!("{err:#}").contains("gpg --armor --export-secret-keys"), "{err:#}");
    }
}
