//! Signed releases: a key pair from `cosign generate-key-pair` signs SHA256SUMS and the SLSA
//! provenance natively; cosign, openssl and `cargo xtask verify --key` all accept the signature,
//! and all refuse a changed SHA256SUMS or a signature by another key; cosign accepts the
//! provenance's envelope for each archive.

use std::process::Command;

use camino::{Utf8Path, Utf8PathBuf};

use crate::support::*;

const PASSWORD: &str = "e2e-password";

/// A fresh cosign key pair in `dir`: (cosign.key, cosign.pub).
fn cosign_key_pair(dir: &Utf8Path) -> (Utf8PathBuf, Utf8PathBuf) {
    let output = Command::new("cosign")
        .args(["generate-key-pair"])
        .current_dir(dir)
        .env("COSIGN_PASSWORD", PASSWORD)
        .output()
        .expect("cannot run cosign: run `sudo ci/setup-host.sh` (the README's test command does)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    (dir.join("cosign.key"), dir.join("cosign.pub"))
}

/// What cosign, openssl and the xtask say of `dir`'s signature against `public_key`:
/// (cosign accepts, openssl accepts, xtask accepts), and the xtask's stderr.
fn verdicts(dir: &Utf8Path, public_key: &Utf8Path) -> (bool, bool, bool, String) {
    let sums = dir.join("SHA256SUMS");
    let signature = dir.join("SHA256SUMS.sig");
    let cosign = run(
        "cosign",
        &[
            "verify-blob",
            "--key",
            public_key.as_str(),
            "--signature",
            signature.as_str(),
            "--insecure-ignore-tlog=true",
            sums.as_str(),
        ],
    );
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(std::fs::read_to_string(&signature).unwrap().trim())
        .unwrap();
    let der_path = dir.with_extension("sig.der");
    std::fs::write(&der_path, der).unwrap();
    let openssl = run(
        "openssl",
        &["dgst", "-sha256", "-verify", public_key.as_str(), "-signature", der_path.as_str(), sums.as_str()],
    );
    let xtask = xtask(&["verify", dir.as_str(), "--key", public_key.as_str()]);
    (
        cosign.status.success(),
        openssl.status.success() && String::from_utf8_lossy(&openssl.stdout).contains("Verified OK"),
        xtask.status.success(),
        String::from_utf8_lossy(&xtask.stderr).into_owned(),
    )
}

#[test]
fn a_signed_dist_is_accepted_by_cosign_openssl_and_verify_and_a_forgery_by_none() {
    let keys = scratch("sign-keys");
    let (key, public_key) = cosign_key_pair(&keys);
    let out = scratch("sign-dist").join("dist");
    let output = xtask_env(
        &["dist", "--arch", "amd64", "--out", out.as_str(), "--sign-key", key.as_str()],
        &[("COSIGN_PASSWORD", PASSWORD)],
    );
    assert!(output.status.success(), "dist --sign-key failed");
    assert!(String::from_utf8_lossy(&output.stdout).contains("SHA256SUMS and the provenance signed"));
    assert_eq!(
        std::fs::read_to_string(out.join("cosign.pub")).unwrap(),
        std::fs::read_to_string(&public_key).unwrap()
    );
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert!(sums.lines().any(|l| l.ends_with("  cosign.pub")) && !sums.contains("SHA256SUMS.sig"), "{sums}");
    let (cosign, openssl, xtask, _) = verdicts(&out, &public_key);
    assert!(cosign && openssl && xtask, "cosign {cosign}, openssl {openssl}, xtask {xtask}");

    // The provenance: its subjects are SHA256SUMS' archives, and cosign accepts its envelope
    // for the archive (and for no other file, and with no other key).
    let statement: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("provenance.intoto.json")).unwrap()).unwrap();
    let subjects: Vec<String> = statement["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}  {}", s["digest"]["sha256"].as_str().unwrap(), s["name"].as_str().unwrap()))
        .collect();
    let archive_lines: Vec<String> =
        sums.lines().filter(|l| l.ends_with(".tar.gz")).map(str::to_string).collect();
    assert_eq!(subjects, archive_lines);
    let archive = out.join(artifact(&out, "amd64")["name"].as_str().unwrap());
    let verify_attestation = |key: &Utf8Path, blob: &Utf8Path| {
        let envelope = out.join("provenance.intoto.dsse.json");
        let args = [
            "verify-blob-attestation",
            "--key",
            key.as_str(),
            "--signature",
            envelope.as_str(),
            "--type",
            "slsaprovenance1",
            "--insecure-ignore-tlog=true",
            blob.as_str(),
        ];
        run("cosign", &args).status.success()
    };
    assert!(
        verify_attestation(&public_key, &archive),
        "cosign verify-blob-attestation refused the provenance"
    );
    assert!(!verify_attestation(&public_key, &out.join("install.sh")), "install.sh is no subject");

    // One checksum digit of SHA256SUMS changed (the file stays well-formed).
    let flipped = scratch("sign-flipped").join("dist");
    copy_dir(&out, &flipped);
    let text = std::fs::read_to_string(flipped.join("SHA256SUMS")).unwrap();
    let swapped = if text.starts_with('a') { "b" } else { "a" };
    std::fs::write(flipped.join("SHA256SUMS"), format!("{swapped}{}", &text[1..])).unwrap();
    let (cosign, openssl, xtask, stderr) = verdicts(&flipped, &public_key);
    assert!(!cosign && !openssl && !xtask, "cosign {cosign}, openssl {openssl}, xtask {xtask}");
    assert!(stderr.contains("SHA256SUMS.sig: does not verify SHA256SUMS"), "{stderr}");

    // Everything re-signed by an attacker's key: its own cosign.pub agrees, the pinned one does not.
    let forged = scratch("sign-forged").join("dist");
    copy_dir(&out, &forged);
    let (other_key, other_public_key) = cosign_key_pair(&scratch("sign-other-keys"));
    assert!(!verify_attestation(&other_public_key, &archive), "another key must not verify the provenance");
    let resigned = Command::new("cosign")
        .args(["sign-blob", "--yes", "--tlog-upload=false", "--key", other_key.as_str()])
        .args([
            "--output-signature",
            forged.join("SHA256SUMS.sig").as_str(),
            forged.join("SHA256SUMS").as_str(),
        ])
        .env("COSIGN_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(resigned.status.success(), "{}", String::from_utf8_lossy(&resigned.stderr));
    let (cosign, openssl, xtask, stderr) = verdicts(&forged, &public_key);
    assert!(!cosign && !openssl && !xtask, "cosign {cosign}, openssl {openssl}, xtask {xtask}");
    assert!(stderr.contains(&format!("with the key {public_key}")), "{stderr}");

    // merge re-signs what it regenerates, and refuses to drop a signature.
    let merged = scratch("sign-merged").join("dist");
    let refused = xtask_fails(&["dist", "merge", out.as_str(), "--out", merged.as_str()]);
    assert!(refused.contains("is signed") && refused.contains("--sign-key"), "{refused}");
    let output = xtask_env(
        &["dist", "merge", out.as_str(), "--out", merged.as_str(), "--sign-key", key.as_str()],
        &[("COSIGN_PASSWORD", PASSWORD)],
    );
    assert!(output.status.success(), "dist merge --sign-key failed");
    for file in [
        "SHA256SUMS",
        "SHA256SUMS.sig",
        "cosign.pub",
        "dist-manifest.json",
        "provenance.intoto.json",
        "provenance.intoto.dsse.json",
    ] {
        assert_eq!(
            std::fs::read(merged.join(file)).unwrap(),
            std::fs::read(out.join(file)).unwrap(),
            "{file}"
        );
    }
}

#[test]
fn a_wrong_password_stops_dist_before_it_builds() {
    let (key, _) = cosign_key_pair(&scratch("sign-password-keys"));
    let out = scratch("sign-password").join("dist");
    let output = xtask_env(
        &["dist", "--arch", "amd64", "--out", out.as_str(), "--sign-key", key.as_str()],
        &[("COSIGN_PASSWORD", "not-it")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("wrong password (set COSIGN_PASSWORD)") && stderr.contains(key.as_str()),
        "{stderr}"
    );
    assert!(!stderr.contains("Compiling"), "it must fail before building: {stderr}");
    assert!(!out.exists());
}

/// A signed amd64 dist in `scratch(name)`/dist, signed by `key`.
fn signed_dist(name: &str, key: &Utf8Path) -> Utf8PathBuf {
    let out = scratch(name).join("dist");
    let output = xtask_env(
        &["dist", "--arch", "amd64", "--out", out.as_str(), "--sign-key", key.as_str()],
        &[("COSIGN_PASSWORD", PASSWORD)],
    );
    assert!(output.status.success(), "dist --sign-key failed");
    out
}

/// Runs `dist`'s install.sh against an HTTP server serving `dist`, into a fresh prefix, with
/// `path` as PATH (None: this one) and extra arguments; returns (success, stderr, prefix).
fn install(dist: &Utf8Path, name: &str, path: Option<&str>, args: &[&str]) -> (bool, String, Utf8PathBuf) {
    let server = HttpServer::serve(dist);
    let prefix = scratch(name);
    let mut cmd = Command::new("/bin/dash");
    cmd.arg(dist.join("install.sh").as_str())
        .args(["--prefix", prefix.as_str(), "--base-url", &server.url()])
        .args(args);
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    let output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    eprintln!("$ install.sh {}\n{stderr}", args.join(" "));
    (output.status.success(), stderr, prefix)
}

#[test]
fn install_sh_checks_the_signature_and_a_pinned_key_refuses_a_replaced_release() {
    let (key, public_key) = cosign_key_pair(&scratch("install-sign-keys"));
    let dist = signed_dist("install-signed", &key);

    let (ok, stderr, prefix) = install(&dist, "install-signed-prefix", None, &[]);
    assert!(
        ok && stderr.contains("signature verified (SHA256SUMS.sig, key embedded in this installer)"),
        "{stderr}"
    );
    assert!(prefix.join("bin/exonode").is_file());
    let (ok, stderr, _) = install(&dist, "install-signed-pinned", None, &["--pubkey", public_key.as_str()]);
    assert!(ok && stderr.contains(&format!("key {public_key})")), "{stderr}");

    // An attacker replaces every file, install.sh included, with a release signed by their key.
    let (attacker_key, _) = cosign_key_pair(&scratch("install-attacker-keys"));
    let forged = signed_dist("install-forged", &attacker_key);
    let (ok, _, _) = install(&forged, "install-forged-unpinned", None, &[]);
    assert!(ok, "without a pinned key the attacker's own installer vouches for itself");
    let (ok, stderr, prefix) =
        install(&forged, "install-forged-pinned", None, &["--pubkey", public_key.as_str()]);
    assert!(
        !ok && stderr.contains(&format!("SHA256SUMS.sig does not verify with the key {public_key}")),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was installed") && !prefix.join("bin/exonode").exists(), "{stderr}");

    // No openssl and no cosign: it stops, naming both and the opt-out; the opt-out installs
    // with the checksums still enforced.
    let bin = scratch("install-no-verifier-bin");
    for tool in [
        "uname",
        "mktemp",
        "rm",
        "curl",
        "cut",
        "grep",
        "tar",
        "gzip",
        "mkdir",
        "cp",
        "chmod",
        "mv",
        "od",
        "tr",
        "sed",
        "cat",
        "sha256sum",
        "printf",
    ] {
        let found = run("sh", &["-c", &format!("command -v {tool}")]);
        if found.status.success() && String::from_utf8_lossy(&found.stdout).starts_with('/') {
            std::os::unix::fs::symlink(String::from_utf8_lossy(&found.stdout).trim(), bin.join(tool))
                .unwrap();
        }
    }
    let (ok, stderr, prefix) = install(&dist, "install-no-verifier", Some(bin.as_str()), &[]);
    assert!(
        !ok && stderr.contains("neither openssl nor cosign") && stderr.contains("--skip-signature"),
        "{stderr}"
    );
    assert!(!prefix.join("bin/exonode").exists());
    let (ok, stderr, prefix) =
        install(&dist, "install-skip-signature", Some(bin.as_str()), &["--skip-signature"]);
    assert!(
        ok && stderr.contains("signature NOT checked") && stderr.contains("checksum verified"),
        "{stderr}"
    );
    assert!(prefix.join("bin/exonode").is_file());
}
