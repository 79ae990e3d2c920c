//! DSSE envelopes (Dead Simple Signing Envelope), as `cosign attest-blob` and `cosign attest`
//! write them: the payload in base64 and, per signer, a signature over DSSE's
//! pre-authentication encoding of payload type and payload.
//!
//! Written by hand: the format is a few lines, and no maintained crate offers it without a
//! large dependency tree.

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::key::{self, KeyPair};

#[derive(Serialize, Deserialize)]
struct Envelope {
    #[serde(rename = "payloadType")]
    payload_type: String,
    payload: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Serialize, Deserialize)]
struct EnvelopeSignature {
    keyid: String,
    sig: String,
}

/// DSSE's pre-authentication encoding: what the signature covers.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The envelope of `payload`, signed by `pair`.
pub fn sign(payload_type: &str, payload: &str, pair: &KeyPair) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelope = Envelope {
        payload_type: payload_type.into(),
        payload: b64.encode(payload),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig: pair.sign(&pae(payload_type, payload.as_bytes())),
        }],
    };
    serde_json::to_string(&envelope).expect("the envelope serializes")
}

/// Checks that the envelope holds a `payload_type` payload signed by `public_pem`; returns
/// the payload.
pub fn verify(text: &str, payload_type: &str, public_pem: &str) -> Result<Vec<u8>> {
    let envelope: Envelope = serde_json::from_str(text).context("not a DSSE envelope")?;
    if envelope.payload_type != payload_type {
        bail!("payload type {:?}, expected {payload_type}", envelope.payload_type);
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(&envelope.payload)
        .context("payload is not base64")?;
    let signed = pae(&envelope.payload_type, &payload);
    let mut reasons = Vec::new();
    for signature in &envelope.signatures {
        match key::verify(public_pem, &signed, &signature.sig) {
            Ok(()) => return Ok(payload),
            Err(err) => reasons.push(format!("{err:#}")),
        }
    }
    bail!(
        "no signature verifies with the key ({})",
        if reasons.is_empty() { "it has none".to_string() } else { reasons.join("; ") }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_the_payload_type_and_the_payload() {
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab");
        let pair = crate::fixtures::key_pair();
        let signed = sign("a/b", "{}", &pair);
        assert_eq!(verify(&signed, "a/b", &pair.public_pem()).unwrap(), b"{}");
        let err = verify(&signed, "a/c", &pair.public_pem()).err().unwrap().to_string();
        assert_eq!(err, r#"payload type "a/b", expected a/c"#);
    }
}
