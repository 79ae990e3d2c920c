//! Signatures in cosign's formats, made and checked natively: a key pair from `cosign
//! generate-key-pair` (ECDSA P-256; the private key is PKCS#8 encrypted with scrypt and
//! nacl/secretbox under COSIGN_PASSWORD) signs a file as `cosign sign-blob` does: base64 of the
//! DER ECDSA-SHA256 signature over the file's bytes, which `cosign verify-blob` and
//! `openssl dgst -sha256 -verify` accept. ECDSA here is deterministic (RFC 6979), so the same
//! key and file give the same signature bytes: signed releases stay reproducible.
//!
//! Written by hand: no maintained crate reads cosign's encrypted key file; the cryptography
//! itself is RustCrypto's (p256, scrypt, crypto_secretbox).

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use camino::Utf8Path;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Where the password of the private key is read from, as cosign does.
pub const PASSWORD_ENV: &str = "COSIGN_PASSWORD";
/// The PEM labels cosign has written its encrypted private keys under (newest first).
const PRIVATE_KEY_LABELS: [&str; 2] = ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"];

pub struct KeyPair {
    key: SigningKey,
}

#[derive(Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct ScryptParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

impl KeyPair {
    /// Reads a cosign private key file, decrypted with `password`.
    pub fn load(path: &Utf8Path, password: &str) -> Result<KeyPair> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the signing key {path}"))?;
        KeyPair::parse(&text, password).with_context(|| format!("signing key {path}"))
    }

    pub fn parse(text: &str, password: &str) -> Result<KeyPair> {
        let der = pem_body(text, &PRIVATE_KEY_LABELS).context(
            "not a cosign private key (expected `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----`, as \
             `cosign generate-key-pair` writes)",
        )?;
        let encrypted: Encrypted = serde_json::from_slice(&der).context("its body is not cosign's JSON")?;
        let b64 = base64::engine::general_purpose::STANDARD;
        if encrypted.kdf.name != "scrypt" || encrypted.cipher.name != "nacl/secretbox" {
            bail!("unsupported encryption {} + {}", encrypted.kdf.name, encrypted.cipher.name);
        }
        let params = &encrypted.kdf.params;
        if !params.N.is_power_of_two() || params.N < 2 {
            bail!("scrypt N = {} is not a power of two", params.N);
        }
        let scrypt_params = scrypt::Params::new(params.N.trailing_zeros() as u8, params.r, params.p, 32)
            .map_err(|e| anyhow::anyhow!("bad scrypt parameters: {e}"))?;
        let salt = b64.decode(&encrypted.kdf.salt).context("bad salt")?;
        let mut secret = [0u8; 32];
        scrypt::scrypt(password.as_bytes(), &salt, &scrypt_params, &mut secret)
            .map_err(|e| anyhow::anyhow!("scrypt: {e}"))?;
        let nonce = b64.decode(&encrypted.cipher.nonce).context("bad nonce")?;
        let ciphertext = b64.decode(&encrypted.ciphertext).context("bad ciphertext")?;
        use crypto_secretbox::aead::{Aead, KeyInit};
        if nonce.len() != 24 {
            bail!("the nonce has {} bytes, not 24", nonce.len());
        }
        let pkcs8 = crypto_secretbox::XSalsa20Poly1305::new(&secret.into())
            .decrypt(crypto_secretbox::Nonce::from_slice(&nonce), ciphertext.as_slice())
            .map_err(|_| anyhow::anyhow!("cannot decrypt it: wrong password (set {PASSWORD_ENV})"))?;
        let key =
            SigningKey::from_pkcs8_der(&pkcs8).context("the decrypted key is not an ECDSA P-256 key")?;
        Ok(KeyPair { key })
    }

    /// `cosign sign-blob`'s signature of `bytes`: base64 of the DER ECDSA-SHA256 signature.
    pub fn sign(&self, bytes: &[u8]) -> String {
        let signature: Signature = self.key.sign(bytes);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }

    /// SHA-256 of the public key's DER encoding (see `fingerprint`).
    pub fn fingerprint(&self) -> String {
        let der = self.key.verifying_key().to_public_key_der().expect("a P-256 key encodes");
        format!("{:x}", Sha256::digest(der.as_bytes()))
    }

    /// The public key as `cosign.pub` holds it (PEM, SubjectPublicKeyInfo).
    pub fn public_pem(&self) -> String {
        self.key.verifying_key().to_public_key_pem(LineEnding::LF).expect("a P-256 key encodes")
    }
}

/// SHA-256 of the public key's DER encoding: its fingerprint, as the manifest records it.
pub fn fingerprint(public_pem: &str) -> Result<String> {
    let key = VerifyingKey::from_public_key_pem(public_pem).context("not a PEM ECDSA P-256 public key")?;
    let der = key.to_public_key_der().expect("a P-256 key encodes");
    Ok(format!("{:x}", Sha256::digest(der.as_bytes())))
}

/// Checks a `cosign sign-blob` signature (base64 DER, whitespace around it ignored).
pub fn verify(public_pem: &str, bytes: &[u8], signature_b64: &str) -> Result<()> {
    let key = VerifyingKey::from_public_key_pem(public_pem).context("not a PEM ECDSA P-256 public key")?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .context("the signature is not base64")?;
    let signature = Signature::from_der(&der).context("the signature is not a DER ECDSA signature")?;
    key.verify(bytes, &signature)
        .map_err(|_| anyhow::anyhow!("the signature does not match this key and file"))
}

/// The decoded body of the first PEM block with one of `labels`.
fn pem_body(text: &str, labels: &[&str]) -> Option<Vec<u8>> {
    labels.iter().find_map(|label| {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let start = text.find(&begin)? + begin.len();
        let stop = start + text[start..].find(&end)?;
        let body: String = text[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD.decode(body).ok()
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A key made by `cosign generate-key-pair` (cosign 2.5) with the password `secret`.
    pub const KEY: &str = include_str!("testdata/cosign.key");
    pub const PUB: &str = include_str!("testdata/cosign.pub");
    /// `cosign sign-blob --key cosign.key` of "hello\n".
    const HELLO_SIG: &str = include_str!("testdata/hello.sig");

    #[test]
    fn a_cosign_key_signs_as_cosign_and_verifies_what_cosign_signed() {
        let pair = KeyPair::parse(KEY, "secret").unwrap();
        assert_eq!(fingerprint(&pair.public_pem()).unwrap(), fingerprint(PUB).unwrap());
        verify(PUB, b"hello\n", HELLO_SIG).unwrap();
        let ours = pair.sign(b"hello\n");
        verify(PUB, b"hello\n", &ours).unwrap();
        assert_eq!(ours, pair.sign(b"hello\n"), "signatures must be deterministic");
    }

    #[test]
    fn tampering_or_another_key_is_refused_and_a_wrong_password_is_named() {
        let err = verify(PUB, b"hello!\n", HELLO_SIG).unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
        let err = KeyPair::parse(KEY, "wrong").err().unwrap().to_string();
        assert!(err.contains("wrong password") && err.contains(PASSWORD_ENV), "{err}");
        let err = KeyPair::parse(PUB, "secret").err().unwrap().to_string();
        assert!(err.contains("not a cosign private key"), "{err}");
    }
}
