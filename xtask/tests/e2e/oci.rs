//! `cargo xtask image --engine oci` and the SBOMs `dist` writes: layouts read by skopeo and
//! umoci, pushes to real registries on loopback (open, htpasswd-protected, read-only, down),
//! images run by Docker on every platform class, digests that do not move between runs.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use camino::Utf8Path;

use crate::support::*;

fn oci_args<'a>(repo: &'a str, tag: &'a str, dist: &'a Utf8Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args =
        vec!["image", "--engine", "oci", "--all-arch", "--image", repo, "--tag", tag, "--dist-dir"];
    args.push(dist.as_str());
    args.extend_from_slice(extra);
    args
}

/// The index digest from the summary table's `index` row.
fn index_digest(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("index").and_then(|rest| rest.split_whitespace().next()))
        .filter(|d| d.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no index digest in:\n{stdout}"))
        .to_string()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn curl_json(url: &str, accept: &str) -> serde_json::Value {
    json(&run_ok("curl", &["-fsS", "-H", &format!("Accept: {accept}"), url]))
}

#[test]
fn oci_layout_twice_gives_one_digest_and_skopeo_and_umoci_read_it() {
    let dist = shared_dist();
    let work = scratch("oci-layout");
    let (a, b) = (work.join("a"), work.join("b"));
    let first = xtask_ok(&oci_args("e2e/oci", "1.0", dist, &["--oci-layout", a.as_str()]));
    let second = xtask_ok(&oci_args("e2e/oci", "1.0", dist, &["--oci-layout", b.as_str()]));
    let digest = index_digest(&first);
    assert_eq!(digest, index_digest(&second), "two runs, two index digests");
    for file in ["index.json", "oci-layout"] {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{file} differs"
        );
    }
    let blobs = |dir: &Utf8Path| -> BTreeSet<String> {
        dir.join("blobs/sha256")
            .read_dir_utf8()
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string())
            .collect()
    };
    assert_eq!(blobs(&a), blobs(&b));

    // skopeo: the tag names an index of ten platforms whose digest is the summary's.
    let raw = run_ok("skopeo", &["inspect", "--raw", &format!("oci:{a}:1.0")]);
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), digest);
    let index = json(&raw);
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let variant = p["variant"].as_str().map(|v| format!("/{v}")).unwrap_or_default();
            format!("{}/{}{variant}", p["os"].as_str().unwrap(), p["architecture"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        platforms,
        [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm/v7",
            "linux/arm/v6",
            "linux/arm/v5",
            "linux/386",
            "linux/riscv64",
            "linux/ppc64le",
            "linux/s390x",
            "linux/mips64le"
        ]
    );
    let config = json(&run_ok("skopeo", &["inspect", "--config", "--raw", &format!("oci:{a}:1.0-arm32v5")]));
    let c = &config["config"];
    assert_eq!(c["User"], "10001:10001");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/local/bin/exonode"]));
    assert_eq!(c["Cmd"], serde_json::json!(["run"]));
    assert_eq!(c["ExposedPorts"], serde_json::json!({"7070/tcp": {}}));
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(c["Healthcheck"]["Test"], serde_json::json!(["CMD", "/usr/local/bin/exonode", "healthcheck"]));
    assert_eq!(c["Labels"]["org.opencontainers.image.created"], manifest(dist)["source_date"]);
    assert_eq!(config["created"], manifest(dist)["source_date"]);
    assert_eq!((config["architecture"].as_str(), config["variant"].as_str()), (Some("arm"), Some("v5")));
    let copied = work.join("copied");
    run_ok("skopeo", &["copy", "--all", &format!("oci:{a}:1.0"), &format!("dir:{copied}")]);

    // umoci: unpack the arm32v7 image and run what it holds on an ARMv7 CPU.
    let listed = run_ok("umoci", &["ls", "--layout", a.as_str()]);
    for (arch, _) in PLATFORMS {
        assert!(listed.lines().any(|l| l == format!("1.0-{arch}")), "umoci ls lacks 1.0-{arch}:\n{listed}");
    }
    run_ok("umoci", &["stat", "--image", &format!("{a}:1.0-arm32v7")]);
    let bundle = work.join("bundle");
    run_ok("umoci", &["unpack", "--rootless", "--image", &format!("{a}:1.0-arm32v7"), bundle.as_str()]);
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap(),
        "root:x:0:0:root:/root:/bin/sh\nexonode:x:10001:10001:exonode:/data:/sbin/nologin\n"
    );
    assert_eq!(std::fs::read_to_string(rootfs.join("etc/group")).unwrap(), "root:x:0:\nexonode:x:10001:\n");
    assert!(rootfs.join("data").is_dir());
    let runtime = json(&std::fs::read_to_string(bundle.join("config.json")).unwrap());
    assert_eq!(runtime["process"]["user"]["uid"], 10001);
    let binary = rootfs.join("usr/local/bin/exonode");
    let version = run_ok("qemu-arm-static", &["-cpu", "cortex-a7", binary.as_str(), "--version"]);
    assert!(version.contains(&target_of("arm32v7")), "{version}");

    // The SBOM of each image is in the layout, as an artifact whose subject is that image.
    let index_json = json(&std::fs::read_to_string(a.join("index.json")).unwrap());
    let artifacts: Vec<&serde_json::Value> = index_json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] == "application/vnd.cyclonedx+json")
        .collect();
    assert_eq!(artifacts.len(), ALL_ARCHES.len());
    let blob = |digest: &str| {
        std::fs::read(a.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap()
    };
    let amd64 = &index["manifests"][0]["digest"];
    let sbom_manifest = artifacts
        .iter()
        .map(|m| json(&String::from_utf8(blob(m["digest"].as_str().unwrap())).unwrap()))
        .find(|m| &m["subject"]["digest"] == amd64)
        .expect("an SBOM refers to the amd64 image");
    let sbom = blob(sbom_manifest["layers"][0]["digest"].as_str().unwrap());
    let sbom_file = dist.join(artifact(dist, "amd64")["sbom"].as_str().unwrap());
    assert_eq!(sbom, std::fs::read(sbom_file).unwrap(), "the attached SBOM is dist's file");
}

#[test]
fn pushed_index_runs_on_each_platform_as_non_root_with_a_stable_digest() {
    require_registry();
    let dist = shared_dist();
    let path = unique("push");
    let repo = format!("{REGISTRY}/{path}");
    let layout = scratch("oci-push").join("layout");
    let local = index_digest(&xtask_ok(&oci_args(&repo, "1.0", dist, &["--oci-layout", layout.as_str()])));
    // Small chunks: every layer goes up through the chunked (PATCH) path.
    let output = xtask_env(&oci_args(&repo, "1.0", dist, &["--push"]), &[("XTASK_OCI_CHUNK_SIZE", "65536")]);
    assert!(output.status.success(), "push failed");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(index_digest(&stdout), local, "the pushed index is the layout's");
    let head =
        format!("image (oci): {repo} 1.0 FROM scratch from {dist}, pushed\n{} arch(es): ", ALL_ARCHES.len());
    assert!(stdout.starts_with(&head), "{stdout}");
    assert!(!stdout.contains("layer 2:"), "the whole plan is --verbose's: {stdout}");
    // Two blobs every arch shares, then per arch its layer, config and SBOM.
    let blobs = 2 + 3 * ALL_ARCHES.len();
    assert!(stdout.contains(&format!("{blobs} blobs uploaded, 0 already there")), "{stdout}");

    // Again: same digest, every blob found by HEAD and skipped.
    let again = xtask_ok(&oci_args(&repo, "1.0", dist, &["--push"]));
    assert_eq!(index_digest(&again), local);
    assert!(again.contains(&format!("0 blobs uploaded, {blobs} already there")), "{again}");

    let reference = format!("{repo}:1.0");
    let inspect = run_ok("docker", &["buildx", "imagetools", "inspect", &reference]);
    assert!(inspect.contains(&local), "{inspect}");
    let raw = json(&run_ok("docker", &["buildx", "imagetools", "inspect", "--raw", &reference]));
    let listed: BTreeSet<String> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            match (p["architecture"].as_str().unwrap(), p["variant"].as_str()) {
                ("arm64", _) => "linux/arm64".to_string(),
                (arch, Some(v)) => format!("linux/{arch}/{v}"),
                (arch, None) => format!("linux/{arch}"),
            }
        })
        .collect();
    assert_eq!(listed, PLATFORMS.iter().map(|(_, p)| p.to_string()).collect());

    let commit = manifest(dist)["commit"].as_str().unwrap().to_string();
    for (arch, platform) in
        [("amd64", "linux/amd64"), ("arm64v8", "linux/arm64"), ("arm32v6", "linux/arm/v6")]
    {
        let out = run_ok(
            "docker",
            &["run", "--rm", "--pull", "always", "--platform", platform, &reference, "--version"],
        );
        assert!(out.contains(&target_of(arch)), "{platform} ran {out:?}, not {}", target_of(arch));
        assert!(out.contains(&commit), "{platform} runs a binary of another commit: {out:?}");
    }
    let arch_ref = format!("{repo}:1.0-arm32v7");
    let out = run_ok("docker", &["run", "--rm", "--platform", "linux/arm/v7", &arch_ref, "--version"]);
    assert!(out.contains(&target_of("arm32v7")), "{out}");

    // It runs as uid 10001, writes its volume, and its HEALTHCHECK passes.
    let name = format!("e2e-oci-{}", std::process::id());
    run_ok(
        "docker",
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--platform",
            "linux/amd64",
            "--health-interval",
            "1s",
            "--health-start-period",
            "1s",
            &reference,
        ],
    );
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rm", "-f", "-v", &self.0]).output();
        }
    }
    let _remove = Remove(name.clone());
    wait_until("a healthy container", Duration::from_secs(30), || {
        run_ok("docker", &["inspect", "--format", "{{.State.Health.Status}}", &name]).trim() == "healthy"
    });
    let top = run_ok("docker", &["top", &name, "-eo", "uid,pid"]);
    assert_eq!(top.lines().nth(1).and_then(|l| l.split_whitespace().next()), Some("10001"), "{top}");
    let labels = json(&run_ok("docker", &["inspect", "--format", "{{json .Config.Labels}}", &name]));
    assert_eq!(labels["org.opencontainers.image.revision"], commit.as_str());
    assert_project_labels(&labels);
    assert_stops_within_a_second_on_sigterm(&name);

    // The SBOM is reachable through the referrers tag schema (distribution 2.8 has no API).
    let amd64 = raw["manifests"][0]["digest"].as_str().unwrap();
    let base = format!("http://{REGISTRY}/v2/{path}");
    let referrers = curl_json(
        &format!("{base}/manifests/{}", amd64.replace(':', "-")),
        "application/vnd.oci.image.index.v1+json",
    );
    let sbom_manifest = referrers["manifests"][0]["digest"].as_str().unwrap();
    assert_eq!(referrers["manifests"][0]["artifactType"], "application/vnd.cyclonedx+json");
    let sbom_manifest =
        curl_json(&format!("{base}/manifests/{sbom_manifest}"), "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(sbom_manifest["subject"]["digest"], amd64);
    let sbom = run_ok(
        "curl",
        &["-fsS", &format!("{base}/blobs/{}", sbom_manifest["layers"][0]["digest"].as_str().unwrap())],
    );
    let sbom_file = dist.join(artifact(dist, "amd64")["sbom"].as_str().unwrap());
    assert_eq!(sbom, std::fs::read_to_string(sbom_file).unwrap());
}

#[test]
fn dry_run_pushes_nothing_and_busybox_is_refused() {
    require_registry();
    let dist = shared_dist();
    let path = unique("dry");
    let repo = format!("{REGISTRY}/{path}");
    let out = xtask_ok(&oci_args(&repo, "1.0", dist, &["--push", "--dry-run"]));
    assert!(out.contains("image plan (oci)") && out.contains("FROM scratch"), "{out}");
    assert!(out.contains("signatures, and every tag last"), "{out}");
    assert_eq!(manifest_status(REGISTRY, &path, "1.0", None), "404");
    let err = xtask_fails(&oci_args(&repo, "1.0", dist, &["--base", "busybox"]));
    assert!(err.contains("--base busybox needs --engine buildx"), "{err}");
}

#[test]
fn registry_down_is_named_and_nothing_is_written() {
    let port = free_port();
    let repo = format!("127.0.0.1:{port}/e2e/down");
    let err = xtask_fails(&oci_args(&repo, "1.0", shared_dist(), &["--push"]));
    assert!(err.contains(&format!("cannot reach the registry at http://127.0.0.1:{port}")), "{err}");
    assert!(err.contains("connection refused"), "{err}");
}

/// A registry in `work` that takes user `pusher`, password `s3cret` (htpasswd, Basic auth).
fn htpasswd_registry(work: &Utf8Path) -> Registry {
    let htpasswd = work.join("htpasswd");
    let line = run_ok("htpasswd", &["-Bbn", "pusher", "s3cret"]);
    std::fs::write(&htpasswd, line.trim()).unwrap();
    Registry::start(&work.join("storage"), &format!("auth:\n  htpasswd: {{realm: e2e, path: {htpasswd}}}\n"))
}

#[test]
fn auth_is_asked_for_refused_when_wrong_and_taken_from_docker_config() {
    let dist = shared_dist();
    let work = scratch("oci-auth");
    let registry = htpasswd_registry(&work);
    let host = registry.host();
    let path = "e2e/auth";
    let repo = format!("{host}/{path}");
    let empty_config = work.join("no-docker-config");
    std::fs::create_dir_all(&empty_config).unwrap();
    let no_config = ("DOCKER_CONFIG", empty_config.as_str());

    let output = xtask_env(&oci_args(&repo, "1.0", dist, &["--push"]), &[no_config]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(err.contains("needs credentials") && err.contains("REGISTRY_USERNAME"), "{err}");

    let wrong = [no_config, ("REGISTRY_USERNAME", "pusher"), ("REGISTRY_PASSWORD", "wrong")];
    let output = xtask_env(&oci_args(&repo, "1.0", dist, &["--push"]), &wrong);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("refused the credentials of \"pusher\" from REGISTRY_USERNAME/REGISTRY_PASSWORD"),
        "{err}"
    );
    assert_eq!(
        manifest_status(&host, path, "1.0", Some("pusher:s3cret")),
        "404",
        "a refused push left a tag"
    );

    // `docker login` writes auths.<host>.auth = base64(user:password); that is enough.
    let config_dir = work.join("docker-config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let auth = run_ok("sh", &["-c", "printf pusher:s3cret | base64"]);
    let config = serde_json::json!({"auths": {host.clone(): {"auth": auth.trim()}}});
    std::fs::write(config_dir.join("config.json"), config.to_string()).unwrap();
    let output =
        xtask_env(&oci_args(&repo, "1.0", dist, &["--push"]), &[("DOCKER_CONFIG", config_dir.as_str())]);
    assert!(output.status.success(), "push with the docker config's credentials failed");
    assert_eq!(manifest_status(&host, path, "1.0", Some("pusher:s3cret")), "200");
    assert_eq!(manifest_status(&host, path, "1.0", None), "401");

    // Without DOCKER_CONFIG, `~/.docker/config.json` is where `docker login` wrote it.
    let home = work.join("home");
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::copy(config_dir.join("config.json"), home.join(".docker/config.json")).unwrap();
    let output = xtask_env(
        &oci_args(&repo, "2.0", dist, &["--push"]),
        &[("HOME", home.as_str()), ("DOCKER_CONFIG", "")],
    );
    assert!(output.status.success(), "push with ~/.docker/config.json's credentials failed");
    assert_eq!(manifest_status(&host, path, "2.0", Some("pusher:s3cret")), "200");
}

#[test]
fn credential_helpers_of_the_docker_config_log_in_and_a_failing_one_is_named() {
    let work = scratch("oci-cred-helpers");
    let registry = htpasswd_registry(&work);
    let host = registry.host();
    let path = "e2e/helpers";
    let repo = format!("{host}/{path}");
    // Two helpers on PATH, as Docker's protocol has them: one that knows this registry, and one
    // that fails (a locked keychain).
    let bin = work.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread -r server\nif [ \"$server\" = \"{host}\" ]; then\n  \
         printf '{{\"ServerURL\":\"%s\",\"Username\":\"pusher\",\"Secret\":\"s3cret\"}}' \"$server\"\nelse\n  \
         echo 'credentials not found in native keychain'; exit 1\nfi\n"
    );
    for (name, script) in
        [("e2e", helper.as_str()), ("broken", "#!/bin/sh\necho 'keychain is locked' >&2\nexit 1\n")]
    {
        let file = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&file, script).unwrap();
        run_ok("chmod", &["+x", file.as_str()]);
    }
    let path_env = format!("{bin}:{}", std::env::var("PATH").unwrap());
    let config_dir = work.join("docker-config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let push = |config: serde_json::Value, tag: &str| {
        std::fs::write(config_dir.join("config.json"), config.to_string()).unwrap();
        xtask_env(
            &oci_args(&repo, tag, shared_dist(), &["--push"]),
            &[("DOCKER_CONFIG", config_dir.as_str()), ("PATH", &path_env)],
        )
    };

    let output = push(serde_json::json!({"credsStore": "e2e"}), "1.0");
    assert!(output.status.success(), "credsStore: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(manifest_status(&host, path, "1.0", Some("pusher:s3cret")), "200");
    // The registry's own helper comes before the store.
    let output =
        push(serde_json::json!({"credsStore": "broken", "credHelpers": {host.clone(): "e2e"}}), "2.0");
    assert!(output.status.success(), "credHelpers: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(manifest_status(&host, path, "2.0", Some("pusher:s3cret")), "200");

    let output = push(serde_json::json!({"credsStore": "broken"}), "3.0");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains(&format!("docker-credential-broken (from {config_dir}/config.json) failed for {host}")),
        "{err}"
    );
    assert!(err.contains("keychain is locked"), "{err}");
    assert_eq!(manifest_status(&host, path, "3.0", Some("pusher:s3cret")), "404");
}

/// A registry that takes Bearer tokens from a token service of the test's own on loopback
/// (token_server.py): user `pusher`, password `s3cret`, refresh token `refresh-e2e`.
struct TokenRegistry {
    registry: Registry,
    service: duct::Handle,
    /// One line per request the token service answered.
    log: camino::Utf8PathBuf,
}

impl TokenRegistry {
    fn start(work: &Utf8Path) -> TokenRegistry {
        require_tools(&["openssl", "python3"]);
        let (key, cert) = (work.join("token-key.pem"), work.join("token-cert.pem"));
        run_ok(
            "openssl",
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=e2e-token"]
                .into_iter()
                .chain(["-keyout", key.as_str(), "-out", cert.as_str()])
                .collect::<Vec<_>>(),
        );
        let port = free_port();
        let log = work.join("token.log");
        let script = root().join("xtask/tests/e2e/token_server.py");
        let server = duct::cmd!(
            "python3",
            script.as_str(),
            port.to_string(),
            key.as_str(),
            cert.as_str(),
            "pusher",
            "s3cret",
            "refresh-e2e",
            log.as_str()
        )
        .stdout_null()
        .stderr_null();
        let service = serve_on_loopback("the token service", server, port);
        let auth = format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{port}/token\n    service: e2e-registry\n    \
             issuer: e2e-issuer\n    rootcertbundle: {cert}\n"
        );
        TokenRegistry { registry: Registry::start(&work.join("storage"), &auth), service, log }
    }

    /// Lines the token service logged since the last call.
    fn requests(&self, seen: &mut usize) -> Vec<String> {
        let lines: Vec<String> =
            std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect();
        let new = lines[*seen..].to_vec();
        *seen = lines.len();
        new
    }
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        let _ = self.service.kill();
    }
}

#[test]
fn bearer_tokens_come_for_a_password_or_an_identity_token_and_a_stale_token_is_refused() {
    let dist = shared_dist();
    let work = scratch("oci-bearer");
    let tokens = TokenRegistry::start(&work);
    let host = tokens.registry.host();
    let repo = format!("{host}/e2e/bearer");
    let config_dir = work.join("docker-config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let bin = work.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-e2e-token");
    std::fs::write(&helper, "#!/bin/sh\nread -r server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"<token>\",\"Secret\":\"refresh-e2e\"}' \"$server\"\n").unwrap();
    run_ok("chmod", &["+x", helper.as_str()]);
    let path_env = format!("{bin}:{}", std::env::var("PATH").unwrap());
    let push = |config: serde_json::Value, env: &[(&str, &str)], tag: &str| {
        std::fs::write(config_dir.join("config.json"), config.to_string()).unwrap();
        let mut all = vec![("DOCKER_CONFIG", config_dir.as_str()), ("PATH", path_env.as_str())];
        all.extend_from_slice(env);
        xtask_env(&oci_args(&repo, tag, dist, &["--push"]), &all)
    };
    let mut seen = 0;

    // A password: the token is asked for with GET, the password as Basic auth.
    let password = [("REGISTRY_USERNAME", "pusher"), ("REGISTRY_PASSWORD", "s3cret")];
    let output = push(serde_json::json!({}), &password, "1.0");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let asked = tokens.requests(&mut seen);
    assert!(!asked.is_empty() && asked.iter().all(|r| r == "GET basic pusher"), "{asked:?}");

    // An identity token in `auths`, then from a helper: the refresh-token grant, no password.
    let refresh = "POST refresh_token client_id=exotool-xtask service=e2e-registry";
    for (config, tag) in [
        (serde_json::json!({"auths": {host.clone(): {"identitytoken": "refresh-e2e"}}}), "2.0"),
        (serde_json::json!({"credHelpers": {host.clone(): "e2e-token"}}), "3.0"),
    ] {
        let output = push(config, &[], tag);
        assert!(output.status.success(), "{tag}: {}", String::from_utf8_lossy(&output.stderr));
        let asked = tokens.requests(&mut seen);
        assert!(!asked.is_empty() && asked.iter().all(|r| r == refresh), "{tag}: {asked:?}");
    }

    // A stale identity token: refused, and said so.
    let output = push(serde_json::json!({"auths": {host.clone(): {"identitytoken": "stale"}}}), &[], "4.0");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(err.contains("refused the identity token from") && err.contains("docker login"), "{err}");
    assert_eq!(tokens.requests(&mut seen), [format!("{refresh} refused")]);
}

#[test]
fn a_read_only_registry_rejects_uploads_and_no_list_tag_appears() {
    let dist = shared_dist();
    let work = scratch("oci-readonly");
    let path = "e2e/readonly";
    let readonly = "  maintenance:\n    readonly: {enabled: true}\n";

    // Nothing there yet: the first blob upload is refused.
    let storage = work.join("fresh");
    let registry = Registry::start(&storage, readonly);
    let repo = format!("{}/{path}", registry.host());
    let err = xtask_fails(&oci_args(&repo, "1.0", dist, &["--push"]));
    assert!(err.contains("uploading blob sha256:") && err.contains("HTTP 405"), "{err}");
    assert!(err.contains("no tag was moved") && err.contains("read-only"), "{err}");
    assert_eq!(manifest_status(&registry.host(), path, "1.0", None), "404");
    drop(registry);

    // Blobs already there (pushed while writable): they are skipped, and the first manifest
    // PUT (by digest) is refused; no tag moved: the new list tag and the per-arch tags do not
    // exist, the old one is untouched.
    let storage = work.join("filled");
    let writable = Registry::start(&storage, "");
    let repo = format!("{}/{path}", writable.host());
    xtask_ok(&oci_args(&repo, "old", dist, &["--push"]));
    drop(writable);
    let registry = Registry::start(&storage, readonly);
    let repo = format!("{}/{path}", registry.host());
    let err = xtask_fails(&oci_args(&repo, "new", dist, &["--push"]));
    assert!(err.contains(&format!("pushing {path}@sha256:")) && err.contains("HTTP 405"), "{err}");
    assert!(err.contains("no tag was moved"), "{err}");
    assert_eq!(manifest_status(&registry.host(), path, "new", None), "404");
    assert_eq!(manifest_status(&registry.host(), path, "new-amd64", None), "404");
    assert_eq!(manifest_status(&registry.host(), path, "old", None), "200");
}

/// `(name, version) -> checksum` of every crates.io package in the workspace's Cargo.lock.
fn lock_checksums() -> std::collections::BTreeMap<(String, String), String> {
    let lock: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.lock")).unwrap()).unwrap();
    lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let key = (p["name"].as_str()?.to_string(), p["version"].as_str()?.to_string());
            Some((key, p.get("checksum")?.as_str()?.to_string()))
        })
        .collect()
}

#[test]
fn each_archive_has_a_reproducible_cyclonedx_sbom_of_what_it_links() {
    let dist = shared_dist();
    for (arch, _) in PLATFORMS {
        let artifact = artifact(dist, arch);
        let name = artifact["sbom"].as_str().unwrap();
        assert_eq!(name, format!("{}.cdx.json", artifact["name"].as_str().unwrap()));
        let bom = json(&std::fs::read_to_string(dist.join(name)).unwrap());
        assert_eq!(bom["bomFormat"], "CycloneDX");
        assert_eq!(bom["specVersion"], "1.5");
        assert_eq!(bom["metadata"]["timestamp"], manifest(dist)["source_date"]);
        assert_eq!(bom["metadata"]["component"]["name"], "exonode");
        let target = artifact["target"].as_str().unwrap();
        let components = bom["components"].as_array().unwrap();
        for c in components {
            let (name, version) = (c["name"].as_str().unwrap(), c["version"].as_str().unwrap());
            assert_eq!(c["purl"], format!("pkg:cargo/{name}@{version}"));
            let sha = c["hashes"][0]["content"].as_str().unwrap();
            assert_eq!(c["hashes"][0]["alg"], "SHA-256");
            assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{name}: {sha}");
        }
        let names: BTreeSet<String> = components
            .iter()
            .map(|c| format!("{} v{}", c["name"].as_str().unwrap(), c["version"].as_str().unwrap()))
            .collect();
        for wanted in ["mio", "httparse", "serde_json", "serde", "libc", "signal-hook", "lexopt"] {
            assert!(
                names.iter().any(|n| n.starts_with(&format!("{wanted} v"))),
                "{arch}: no {wanted} in {names:?}"
            );
        }
        assert!(!names.iter().any(|n| n.starts_with("serde_derive ")), "proc-macros ship nothing");
        // Exactly what cargo itself says is compiled into the binary for that target.
        let tree = run_ok(
            "cargo",
            &[
                "tree",
                "--locked",
                "-p",
                "exonode",
                "--target",
                target,
                "-e",
                "normal,no-proc-macro",
                "--prefix",
                "none",
                "-f",
                "{p}",
            ],
        );
        let cargo: BTreeSet<String> = tree
            .lines()
            .filter(|l| !l.starts_with("exonode "))
            .map(|l| l.split(" (").next().unwrap().trim_end_matches(" (*)").to_string())
            .collect();
        assert_eq!(names, cargo, "{arch}: the SBOM and `cargo tree` disagree");
        for c in components {
            let key = (c["name"].as_str().unwrap().to_string(), c["version"].as_str().unwrap().to_string());
            assert_eq!(
                c["hashes"][0]["content"].as_str(),
                lock_checksums().get(&key).map(String::as_str),
                "{arch}: {key:?} has another SHA-256 than Cargo.lock's"
            );
        }
    }

    // Byte-identical from two dist runs of one commit (others may commit meanwhile: retry).
    let work = scratch("oci-sbom-again");
    let (a, b) = (work.join("a"), work.join("b"));
    for attempt in 1..=3 {
        for out in [&a, &b] {
            xtask_ok(&["dist", "--arch", "amd64", "--arch", "arm32v5", "--out", out.as_str()]);
        }
        if manifest(&a)["commit"] == manifest(&b)["commit"] {
            break;
        }
        assert!(attempt < 3, "HEAD kept moving during the test");
    }
    for arch in ["amd64", "arm32v5"] {
        let name = artifact(&a, arch)["sbom"].as_str().unwrap().to_string();
        assert_eq!(
            std::fs::read(a.join(&name)).unwrap(),
            std::fs::read(b.join(&name)).unwrap(),
            "{name} differs"
        );
    }

    // verify names a missing SBOM.
    let broken = scratch("oci-sbom-missing").join("dist");
    copy_dir(dist, &broken);
    let name = artifact(dist, "i386")["sbom"].as_str().unwrap().to_string();
    std::fs::remove_file(broken.join(&name)).unwrap();
    let err = xtask_fails(&["verify", broken.as_str()]);
    assert!(err.contains(&format!("{name}: missing (the SBOM of")), "{err}");
}

/// `Docker-Content-Digest` of `GET /v2/<path>/manifests/<tag>` on the loopback registry.
#[test]
fn digests_do_not_depend_on_repository_or_tags_and_every_tag_is_pushed() {
    require_registry();
    let dist = shared_dist();
    let work = scratch("oci-names");
    let (a, b) = (work.join("a"), work.join("b"));
    let first = xtask_ok(&oci_args("e2e/one-name", "1.0", dist, &["--oci-layout", a.as_str()]));
    let second = xtask_ok(&oci_args(
        "registry.example/other/name",
        "edge",
        dist,
        &["--tag", "stable", "--oci-layout", b.as_str()],
    ));
    assert_eq!(index_digest(&first), index_digest(&second), "the repository or a tag changed the index");
    for (arch, _) in PLATFORMS {
        let digest = |layout: &Utf8Path, tag: &str| {
            sha256_hex(
                run_ok("skopeo", &["inspect", "--raw", &format!("oci:{layout}:{tag}-{arch}")]).as_bytes(),
            )
        };
        assert_eq!(digest(&a, "1.0"), digest(&b, "stable"), "{arch}");
    }

    let path = unique("oci-tags");
    let repo = format!("{REGISTRY}/{path}");
    let pushed = index_digest(&xtask_ok(&oci_args(&repo, "1.0", dist, &["--tag", "latest", "--push"])));
    assert_eq!(pushed, index_digest(&first));
    assert_eq!(pushed_digest(&path, "1.0"), pushed);
    assert_eq!(pushed_digest(&path, "latest"), pushed);
}

#[test]
fn a_tampered_archive_is_refused_and_nothing_is_written() {
    let dist = scratch("oci-tampered").join("dist");
    copy_dir(shared_dist(), &dist);
    let archive = artifact(&dist, "arm64v8")["name"].as_str().unwrap().to_string();
    flip_byte(&dist.join(&archive), 700);
    let layout = scratch("oci-tampered-layout").join("layout");
    let err = xtask_fails(&oci_args("e2e/tampered", "1.0", &dist, &["--oci-layout", layout.as_str()]));
    assert!(err.contains(&archive), "the archive is named: {err}");
    assert!(!layout.exists(), "no layout may be written from a tampered dist");
}
