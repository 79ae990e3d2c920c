//! Signed releases: a key pair from `cosign generate-key-pair` signs SHA256SUMS and the SLSA
//! provenance natively; cosign, openssl and `cargo xtask verify --key` all accept the signature,
//! and all refuse a changed SHA256SUMS or a signature by another key; cosign accepts the
//! provenance's envelope for each archive. Images pushed by either engine are signed (index and
//! every platform) and attested (provenance, SBOM) so that `cosign verify` and
//! `cosign verify-attestation` accept them.

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
        "awk",
        "sleep",
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

/// The index at `reference` in the loopback registry: (its digest, platform → manifest digest).
fn pushed_index(path: &str, tag: &str) -> (String, Vec<(String, String)>) {
    let url = format!("http://{REGISTRY}/v2/{path}/manifests/{tag}");
    let accept = "Accept: application/vnd.oci.image.index.v1+json, \
                  application/vnd.docker.distribution.manifest.list.v2+json";
    let raw = Command::new("curl").args(["-fsS", "-H", accept, &url]).output().unwrap();
    assert!(raw.status.success(), "GET {url}: {}", String::from_utf8_lossy(&raw.stderr));
    let digest = format!("sha256:{}", sha256_hex(&raw.stdout));
    let index: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let platforms = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (entry_platform(m), m["digest"].as_str().unwrap().to_string()))
        .collect();
    (digest, platforms)
}

fn cosign_verify(public_key: &Utf8Path, reference: &str) -> std::process::Output {
    run("cosign", &["verify", "--key", public_key.as_str(), "--insecure-ignore-tlog=true", reference])
}

/// The Statement of the one attestation of `kind` that cosign verifies on `reference`.
fn verified_statement(public_key: &Utf8Path, kind: &str, reference: &str) -> serde_json::Value {
    let args = [
        "verify-attestation",
        "--key",
        public_key.as_str(),
        "--insecure-ignore-tlog=true",
        "--type",
        kind,
        reference,
    ];
    let stdout = run_ok("cosign", &args);
    let envelopes: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(envelopes.len(), 1, "one {kind} attestation on {reference}: {stdout}");
    let envelope: serde_json::Value = serde_json::from_str(envelopes[0]).unwrap();
    use base64::Engine as _;
    let payload =
        base64::engine::general_purpose::STANDARD.decode(envelope["payload"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&payload).unwrap()
}

/// Layers of the cosign manifest `sha256-<hex>.<suffix>` in `path`.
fn cosign_layers(path: &str, digest: &str, suffix: &str) -> usize {
    let tag = format!("{}.{suffix}", digest.replace(':', "-"));
    let url = format!("http://{REGISTRY}/v2/{path}/manifests/{tag}");
    let raw = run_ok("curl", &["-fsS", "-H", "Accept: application/vnd.oci.image.manifest.v1+json", &url]);
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    manifest["layers"].as_array().unwrap().len()
}

#[test]
fn both_engines_sign_the_index_and_every_platform_and_attest_provenance_and_sbom() {
    require_docker();
    require_registry();
    let dist = shared_dist();
    let keys = scratch("image-sign-keys");
    let (key, public_key) = cosign_key_pair(&keys);
    let other_keys = scratch("image-sign-other-keys");
    let (_, other_public_key) = cosign_key_pair(&other_keys);
    let env = [("COSIGN_PASSWORD", PASSWORD)];

    for engine in ["oci", "buildx"] {
        let path = unique(&format!("signed-{engine}"));
        let repo = format!("{REGISTRY}/{path}");
        let metadata = keys.join(format!("{engine}-pushed.json"));
        let push = [
            "image",
            "--engine",
            engine,
            "--all-arch",
            "--dist-dir",
            dist.as_str(),
            "--image",
            &repo,
            "--tag",
            "1.0",
            "--push",
            "--sign-key",
            key.as_str(),
            "--metadata-file",
            metadata.as_str(),
        ];
        let output = xtask_env(&push, &env);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{engine}: signed push failed:\n{stdout}");
        assert!(
            // The index and ten platforms; a signature for each, and two attestations per platform.
            stdout.contains("signed 11 manifests")
                && stdout.contains("31 signature/attestation layers added"),
            "{stdout}"
        );

        let (index_digest, platforms) = pushed_index(&path, "1.0");
        assert_eq!(platforms.len(), ALL_ARCHES.len(), "{engine}: {platforms:?}");
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
        assert_eq!(written["digest"], index_digest.as_str(), "--metadata-file names the pushed index");
        assert_eq!(written["signed"], "key");
        for (platform, digest) in &platforms {
            let listed =
                written["platforms"].as_array().unwrap().iter().any(|p| p["digest"] == digest.as_str());
            assert!(listed, "{platform} {digest} not in {written}");
        }
        let verified = cosign_verify(&public_key, &format!("{repo}:1.0"));
        assert!(
            verified.status.success(),
            "{engine}: cosign verify {repo}:1.0: {}",
            String::from_utf8_lossy(&verified.stderr)
        );
        assert!(String::from_utf8_lossy(&verified.stdout).contains(&index_digest));
        assert!(
            !cosign_verify(&other_public_key, &format!("{repo}:1.0")).status.success(),
            "another key must not verify"
        );

        for (platform, digest) in &platforms {
            let reference = format!("{repo}@{digest}");
            let verified = cosign_verify(&public_key, &reference);
            assert!(
                verified.status.success(),
                "{engine} {platform}: {}",
                String::from_utf8_lossy(&verified.stderr)
            );

            let provenance = verified_statement(&public_key, "slsaprovenance1", &reference);
            assert_eq!(provenance["subject"][0]["digest"]["sha256"], digest.trim_start_matches("sha256:"));
            let arch = PLATFORMS.iter().find(|(_, p)| p == platform).map(|(a, _)| *a).unwrap();
            let artifact = artifact(dist, arch);
            let dependencies = provenance["predicate"]["buildDefinition"]["resolvedDependencies"].to_string();
            for sha in [&artifact["sha256"], &artifact["binary"]["sha256"]] {
                assert!(dependencies.contains(sha.as_str().unwrap()), "{engine} {platform}: {dependencies}");
            }
            assert_eq!(provenance["predicate"]["buildDefinition"]["externalParameters"]["engine"], engine);

            let sbom = verified_statement(&public_key, "cyclonedx", &reference);
            assert_eq!(sbom["subject"][0]["digest"]["sha256"], digest.trim_start_matches("sha256:"));
            assert_eq!(sbom["predicate"]["bomFormat"], "CycloneDX", "{engine} {platform}");
        }

        // The same push again: every signature is already there, none is added.
        let again = xtask_env(&push, &env);
        let stdout = String::from_utf8_lossy(&again.stdout).into_owned();
        assert!(
            again.status.success() && stdout.contains("0 signature/attestation layers added"),
            "{stdout}"
        );
        assert_eq!(cosign_layers(&path, &index_digest, "sig"), 1);
        assert_eq!(cosign_layers(&path, &platforms[0].1, "att"), 2);

        // An unsigned image pushed over the tag: the tag no longer verifies.
        let unsigned = [
            "image",
            "--engine",
            "oci",
            "--arch",
            "amd64",
            "--dist-dir",
            dist.as_str(),
            "--image",
            &repo,
            "--tag",
            "1.0",
            "--push",
        ];
        xtask_ok(&unsigned);
        assert_ne!(pushed_index(&path, "1.0").0, index_digest);
        let refused = cosign_verify(&public_key, &format!("{repo}:1.0"));
        assert!(
            !refused.status.success(),
            "{engine}: an unsigned index over the tag must fail cosign verify"
        );
    }
}

#[test]
fn keyless_signing_is_planned_with_every_cosign_command_and_needs_a_push() {
    let dist = shared_dist();
    let out = scratch("keyless-merge").join("dist");
    let plan = xtask_ok(&["dist", "merge", dist.as_str(), "--out", out.as_str(), "--keyless", "--dry-run"]);
    let sums = out.join("SHA256SUMS");
    let bundle = out.join("SHA256SUMS.sigstore.json");
    assert!(plan.contains(&format!("cosign sign-blob --yes --bundle {bundle} {sums}")), "{plan}");
    assert!(!out.exists(), "a dry run writes nothing");

    let repo = format!("{REGISTRY}/{}", unique("keyless"));
    let image = ["image", "--engine", "oci", "--all-arch", "--dist-dir", dist.as_str(), "--image", &repo];
    let plan = xtask_ok(&[&image[..], &["--push", "--keyless", "--dry-run"]].concat());
    assert!(plan.contains(&format!("cosign sign --yes {repo}@<index digest>")), "{plan}");
    for arch in ALL_ARCHES {
        let reference = format!("{repo}@<{arch} digest>");
        assert!(plan.contains(&format!("cosign sign --yes {reference}")), "{arch}: {plan}");
        for kind in ["slsaprovenance1", "cyclonedx"] {
            assert!(
                plan.contains(&format!("--type {kind} --predicate <{arch} {kind}> {reference}")),
                "{plan}"
            );
        }
    }
    let refused = xtask_fails(&[&image[..], &["--keyless"]].concat());
    assert!(refused.contains("add --push"), "{refused}");

    // Without cosign, keyless stops before anything is written or pushed.
    let path = path_without("path-without-cosign", |name| name == "cosign");
    let merge = ["dist", "merge", dist.as_str(), "--out", out.as_str(), "--keyless"];
    let push = [&image[..], &["--push", "--keyless"]].concat();
    for args in [&merge[..], &push[..]] {
        let output = xtask_env(args, &[("PATH", &path)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains("--keyless needs the cosign CLI"), "{stderr}");
        assert!(stderr.contains("nothing was done"), "{stderr}");
    }
    assert!(!out.exists(), "no merged folder without cosign");
    let tags = Command::new("curl")
        .args([
            "-s",
            &format!("http://{REGISTRY}/v2/{}/tags/list", repo.trim_start_matches(&format!("{REGISTRY}/"))),
        ])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&tags.stdout).contains("\"tags\":["), "nothing was pushed");
}
