//! `cargo xtask image` with the buildx engine, the generated Dockerfile.release and install.sh,
//! against a real engine, a real registry and a real HTTP server on loopback.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use camino::Utf8Path;

use crate::support::*;

fn docker(args: &[&str]) -> String {
    run_ok("docker", args)
}

/// Builds the amd64 image from the shared dist into the local engine; returns its reference.
fn load_amd64_image(image: &str) -> String {
    let dist = shared_dist().as_str();
    xtask_ok(&["image", "--arch", "amd64", "--image", image, "--tag", "t", "--dist-dir", dist]);
    format!("{image}:t-amd64")
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Removes a container when the test ends, however it ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &self.0]).output();
    }
}

#[test]
fn all_arch_push_makes_one_list_whose_every_platform_runs_its_own_binary() {
    require_registry();
    let repo = format!("{REGISTRY}/{}", unique("buildx-push"));
    let dist = shared_dist();
    let commit = artifact_commit();
    xtask_ok(&["image", "--all-arch", "--push", "--image", &repo, "--dist-dir", dist.as_str()]);

    // Every tag of release.toml (`{version}` and `latest`) names the same list.
    let list = format!("{repo}:{}", version());
    let digest = |reference: &str| {
        let inspect = docker(&["buildx", "imagetools", "inspect", reference]);
        inspect.lines().find_map(|l| l.strip_prefix("Digest:")).unwrap().trim().to_string()
    };
    assert_eq!(digest(&list), digest(&format!("{repo}:latest")));
    let platforms = list_platforms(&list);
    assert_eq!(platforms, all_platforms());

    for (arch, platform) in PLATFORMS {
        let out = docker(&["run", "--rm", "--pull", "always", "--platform", platform, &list, "--version"]);
        assert!(out.contains(&target_of(arch)), "{platform} ran {out:?}");
        assert!(out.contains(&commit), "{platform} runs a binary of another commit: {out:?}");
        // The per-arch tag is the same image.
        let out = docker(&[
            "run",
            "--rm",
            "--platform",
            platform,
            &format!("{repo}:{}-{arch}", version()),
            "--version",
        ]);
        assert!(out.contains(&target_of(arch)), "{arch} tag ran {out:?}");
    }
}

#[test]
fn the_image_runs_as_non_root_keeps_data_and_stops_promptly() {
    require_docker();
    let image = "e2e/exonode-run";
    let reference = load_amd64_image(image);
    assert_eq!(
        docker(&["image", "inspect", "--format", "{{.Config.User}}", &reference]).trim(),
        "10001:10001"
    );
    let labels = docker(&["image", "inspect", "--format", "{{json .Config.Labels}}", &reference]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    let commit = artifact_commit();
    assert_eq!(labels["org.opencontainers.image.revision"], commit.as_str());
    assert_eq!(labels["org.opencontainers.image.version"], version());
    assert_eq!(labels["org.opencontainers.image.created"], manifest(shared_dist())["source_date"]);
    assert_eq!(labels["org.opencontainers.image.title"], "exonode");
    assert_project_labels(&labels);
    let config = docker(&["image", "inspect", "--format", "{{json .Config}}", &reference]);
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["Entrypoint"], serde_json::json!(["/usr/local/bin/exonode"]));
    assert_eq!(config["Cmd"], serde_json::json!(["run"]));
    assert_eq!(config["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(config["ExposedPorts"], serde_json::json!({"7070/tcp": {}}));
    assert_eq!(config["StopSignal"], "SIGTERM");
    assert_eq!(
        config["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/usr/local/bin/exonode", "healthcheck"])
    );

    let volume = format!("e2e-exonode-data-{}", std::process::id());
    let port = free_port();
    let name = format!("e2e-exonode-{}", std::process::id());
    let _cleanup = Container(name.clone());
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        &format!("{volume}:/data"),
        "-p",
        &format!("127.0.0.1:{port}:7070"),
        "--health-interval",
        "1s",
        "--health-start-period",
        "1s",
        &reference,
    ]);
    let addr = format!("127.0.0.1:{port}");
    let status = |addr: &str| -> Option<serde_json::Value> {
        let (code, body) = http_get(addr, "/status")?;
        (code == 200).then(|| serde_json::from_str(&body).ok()).flatten()
    };
    wait_until("the container's /status", Duration::from_secs(20), || status(&addr).is_some());
    let first = status(&addr).unwrap();
    assert_eq!(docker(&["exec", &name, "id", "-u"]).trim(), "10001");
    wait_until("a healthy HEALTHCHECK", Duration::from_secs(20), || {
        docker(&["inspect", "--format", "{{.State.Health.Status}}", &name]).trim() == "healthy"
    });

    let restarts = assert_stops_within_a_second_on_sigterm(&name);

    docker(&["start", &name]);
    wait_until("the restarted container", Duration::from_secs(20), || status(&addr).is_some());
    let second = status(&addr).unwrap();
    assert_eq!(second["id"], first["id"], "the identity lives in the volume");
    assert_eq!(second["starts"], 2 + restarts, "every start was counted in the volume");
    drop(_cleanup);
    let _ = Command::new("docker").args(["volume", "rm", &volume]).output();
}

fn artifact_commit() -> String {
    manifest(shared_dist())["commit"].as_str().unwrap().to_string()
}

#[test]
fn user_mapping_works_for_the_host_owner_and_explains_a_mismatch() {
    require_docker();
    let image = "e2e/exonode-user";
    let reference = load_amd64_image(image);

    let owned = scratch("user-owned");
    run_ok("chown", &["4321:4321", owned.as_str()]);
    let out = docker(&[
        "run", "--rm", "--user", "4321:4321", "-v", &format!("{owned}:/data"), "--entrypoint", "sh", &reference, "-c",
        "/usr/local/bin/exonode run & pid=$!; i=0; while [ ! -f /data/node.json ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill $pid; wait $pid; stat -c %u /data/node.json",
    ]);
    assert_eq!(out.trim(), "4321", "the state file belongs to the mapped user");

    let foreign = scratch("user-foreign");
    let output =
        run("docker", &["run", "--rm", "--user", "4321:4321", "-v", &format!("{foreign}:/data"), &reference]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot write to data directory /data") && stderr.contains("uid 4321"),
        "{stderr}"
    );
    assert!(stderr.contains("--user 0:0"), "the fix names the owner: {stderr}");
}

/// The raw image config of a pushed image.
fn pushed_config(reference: &str) -> serde_json::Value {
    let raw = run_ok(
        "skopeo",
        &["inspect", "--config", "--raw", "--tls-verify=false", &format!("docker://{reference}")],
    );
    serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{reference}: config is not JSON ({e}): {raw}"))
}

#[test]
fn both_engines_build_one_image_config_from_release_toml_with_another_command_and_healthcheck() {
    require_registry();
    let dist = shared_dist();
    let checkout = scratch("one-spec").join("checkout");
    checkout_at(&checkout, &snapshot());
    let path = checkout.join("release.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in [
        ("command = [\"run\"]", "command = [\"run\", \"--log-format\", \"json\"]"),
        (
            "healthcheck = [\"healthcheck\"]",
            "healthcheck = [\"healthcheck\", \"--addr\", \"127.0.0.1:7070\"]",
        ),
        ("[image.labels]\n", "[image.labels]\n\"org.example.flavour\" = \"json-logs\"\n"),
    ] {
        assert!(text.contains(from), "release.toml no longer has {from:?}: update this test");
        text = text.replace(from, to);
    }
    std::fs::write(&path, text).unwrap();

    // One arch with each engine, both FROM scratch, both pushed to the loopback registry.
    let buildx = format!("{REGISTRY}/{}", unique("spec-buildx"));
    let oci = format!("{REGISTRY}/{}", unique("spec-oci"));
    let common = ["--arch", "amd64", "--tag", "t", "--dist-dir", dist.as_str(), "--push"];
    let plan = xtask_in(
        &checkout,
        &[
            &["image", "--verbose", "--engine", "buildx", "--base", "scratch", "--image", &buildx][..],
            &common,
        ]
        .concat(),
    );
    // The plan (with the image config) is --verbose's; the everyday output is one line a step.
    assert!(plan.contains(r#"Cmd ["run", "--log-format", "json"]"#), "{plan}");
    xtask_in(&checkout, &[&["image", "--engine", "oci", "--image", &oci][..], &common].concat());
    let (buildx, oci) = (format!("{buildx}:t-amd64"), format!("{oci}:t-amd64"));
    let (b, o) = (pushed_config(&buildx), pushed_config(&oci));

    // Field by field, everything but the layers and when and how they were made. BuildKit of
    // Docker 20.10 stamps `created` with the build time (SOURCE_DATE_EPOCH came later), so the
    // `created` label is what must agree.
    let top = |config: &serde_json::Value| -> BTreeSet<String> {
        config
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !["created", "history", "rootfs", "config"].contains(&k.as_str()))
            .cloned()
            .collect()
    };
    assert_eq!(top(&b), top(&o), "top-level keys");
    for key in top(&o) {
        assert_eq!(b[&key], o[&key], "{key} differs: buildx {} vs oci {}", b[&key], o[&key]);
    }
    assert_eq!((o["os"].as_str(), o["architecture"].as_str()), (Some("linux"), Some("amd64")));
    // A null is an unset field (Docker's push writes `"OnBuild": null`). BuildKit also sets
    // ArgsEscaped, a Windows-only field the image-spec deprecates for Linux images; the oci
    // engine leaves it out.
    let keys = |config: &serde_json::Value| -> BTreeSet<String> {
        let fields = config["config"].as_object().unwrap();
        fields.iter().filter(|(k, v)| !v.is_null() && *k != "ArgsEscaped").map(|(k, _)| k.clone()).collect()
    };
    assert_eq!(keys(&b), keys(&o), "Config keys");
    let expected = [
        "Cmd",
        "Entrypoint",
        "Env",
        "ExposedPorts",
        "Healthcheck",
        "Labels",
        "StopSignal",
        "User",
        "Volumes",
        "WorkingDir",
    ];
    assert_eq!(keys(&o), expected.iter().map(|k| k.to_string()).collect(), "Config keys");
    for key in keys(&o) {
        let (bv, ov) = (&b["config"][&key], &o["config"][&key]);
        assert_eq!(bv, ov, "Config.{key} differs:\n  buildx {bv}\n  oci    {ov}");
    }
    let c = &o["config"];
    assert_eq!(c["Cmd"], serde_json::json!(["run", "--log-format", "json"]));
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/usr/local/bin/exonode", "healthcheck", "--addr", "127.0.0.1:7070"])
    );
    assert_eq!(c["Labels"]["org.example.flavour"], "json-logs");
    assert_eq!(c["Labels"]["org.opencontainers.image.base.name"], "scratch");
    assert_eq!(c["Labels"]["org.opencontainers.image.created"], manifest(dist)["source_date"]);

    // And the daemon takes them: each image logs JSON and turns healthy with its own check.
    for reference in [&buildx, &oci] {
        let name = format!(
            "e2e-spec-{}-{}",
            std::process::id(),
            if reference == &buildx { "buildx" } else { "oci" }
        );
        let _cleanup = Container(name.clone());
        docker(&[
            "run",
            "-d",
            "--pull",
            "always",
            "--name",
            &name,
            "--health-interval",
            "1s",
            "--health-start-period",
            "1s",
            reference,
        ]);
        wait_until("a healthy HEALTHCHECK", Duration::from_secs(30), || {
            docker(&["inspect", "--format", "{{.State.Health.Status}}", &name]).trim() == "healthy"
        });
        let logs = run("docker", &["logs", &name]);
        let first = String::from_utf8_lossy(&logs.stderr).lines().next().unwrap_or_default().to_string();
        assert!(
            serde_json::from_str::<serde_json::Value>(&first).is_ok(),
            "{reference} logs no JSON: {first:?}"
        );
    }
}

/// Adopting the tooling for a binary that is no daemon is editing release.toml only: without a
/// smoke scenario, a unit or the daemon's `[image]` keys, the image has no volume, port,
/// command or health check of exonode's.
#[test]
fn a_binary_that_is_no_daemon_is_released_by_editing_release_toml_only() {
    let work = scratch("no-daemon");
    let checkout = work.join("checkout");
    checkout_at(&checkout, &snapshot());
    let path = checkout.join("release.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let daemon_lines =
        ["[dist.smoke]", "args = ", "get = ", "volume = ", "port = ", "command = ", "healthcheck = "];
    for start in daemon_lines {
        assert!(
            text.lines().any(|l| l.starts_with(start)),
            "release.toml no longer has {start:?}: update this test"
        );
    }
    text = text
        .lines()
        .filter(|line| !daemon_lines.iter().any(|start| line.starts_with(start)))
        .map(|line| match line {
            _ if line.starts_with("arches = ") => "arches = [\"amd64\"]",
            "enabled = true" => "enabled = false",
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, text).unwrap();

    let (dist, layout) = (work.join("dist"), work.join("layout"));
    xtask_in(&checkout, &["dist", "--out", dist.as_str()]);
    let plan = xtask_in(
        &checkout,
        &[
            "image",
            "--verbose",
            "--engine",
            "oci",
            "--arch",
            "amd64",
            "--tag",
            "t",
            "--dist-dir",
            dist.as_str(),
            "--oci-layout",
            layout.as_str(),
        ],
    );
    assert!(plan.contains("Cmd [], Volume none, Port none") && plan.contains("Healthcheck none"), "{plan}");
    let raw = run_ok("skopeo", &["inspect", "--config", "--raw", &format!("oci:{layout}:t-amd64")]);
    let config: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let c = config["config"].as_object().unwrap();
    for absent in ["ExposedPorts", "Volumes", "Cmd", "Healthcheck"] {
        assert!(!c.contains_key(absent), "{absent} in the image config: {raw}");
    }
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/local/bin/exonode"]));
    assert_eq!(c["User"], "10001:10001");
    let dockerfile = std::fs::read_to_string(dist.join("Dockerfile.release")).unwrap();
    for absent in ["VOLUME", "EXPOSE", "HEALTHCHECK", "\nCMD", "chown"] {
        assert!(!dockerfile.contains(absent), "{absent:?} in Dockerfile.release:\n{dockerfile}");
    }
    assert!(
        !dist.read_dir_utf8().unwrap().any(|e| e.unwrap().file_name().ends_with(".deb")),
        "a .deb without [deb]"
    );
}

#[test]
fn scratch_base_holds_only_the_binary_and_runs_on_arm() {
    require_docker();
    let image = "e2e/exonode-scratch";
    xtask_ok(&[
        "image",
        "--arch",
        "arm32v6",
        "--base",
        "scratch",
        "--image",
        image,
        "--tag",
        "t",
        "--dist-dir",
        shared_dist().as_str(),
    ]);
    let reference = format!("{image}:t-arm32v6");
    let out = docker(&[
        "run",
        "--rm",
        "--platform",
        "linux/arm/v6",
        "-e",
        "QEMU_CPU=arm1176",
        &reference,
        "--version",
    ]);
    assert!(out.contains("arm-unknown-linux-musleabihf"), "{out}");
    let size: u64 =
        docker(&["image", "inspect", "--format", "{{.Size}}", &reference]).trim().parse().unwrap();
    let binary = artifact(shared_dist(), "arm32v6")["binary"]["size"].as_u64().unwrap();
    assert!(size < binary + 16 * 1024, "a scratch image is the binary plus a few files: {size} vs {binary}");
}

#[test]
fn a_tampered_archive_fails_both_the_xtask_and_the_dockerfile() {
    require_docker();
    let dist = scratch("image-tampered");
    copy_dir(shared_dist(), &dist);
    let archive = artifact(&dist, "arm64v8")["name"].as_str().unwrap().to_string();
    flip_byte(&dist.join(&archive), 500);

    let stderr =
        xtask_fails(&["image", "--arch", "arm64v8", "--image", "e2e/tampered", "--dist-dir", dist.as_str()]);
    assert!(stderr.contains("does not verify") && stderr.contains(&archive), "{stderr}");

    // Straight to docker, past the xtask: the verify stage refuses it too.
    let context = scratch("image-tampered-context");
    std::fs::copy(dist.join(&archive), context.join(&archive)).unwrap();
    std::fs::copy(dist.join(format!("{archive}.sha256")), context.join(format!("{archive}.sha256"))).unwrap();
    let dockerfile = root().join("docker/Dockerfile");
    let output = run(
        "docker",
        &[
            "buildx",
            "build",
            "--platform",
            "linux/arm64",
            "--file",
            dockerfile.as_str(),
            "--build-arg",
            "IMAGE_FROM=arm64v8/busybox",
            "--build-arg",
            &format!("ARCHIVE={archive}"),
            "--tag",
            "e2e/tampered:raw",
            "--load",
            context.as_str(),
        ],
    );
    assert!(!output.status.success(), "a tampered archive must fail the build");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not match") && stderr.contains("refusing to build"), "{stderr}");
}

#[test]
fn an_everyday_image_run_says_one_line_per_step_and_verbose_shows_the_plan_and_docker() {
    require_docker();
    let dist = shared_dist().as_str();
    let args = [
        "image",
        "--arch",
        "amd64",
        "--arch",
        "arm64v8",
        "--image",
        "e2e/short",
        "--tag",
        "t",
        "--dist-dir",
        dist,
    ];
    let output = xtask(&args);
    assert!(output.status.success(), "cargo xtask {} failed", args.join(" "));
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(stdout.starts_with(&format!("image (buildx): e2e/short t from {dist}, loaded")), "{stdout}");
    assert!(stdout.contains("2 arch(es): amd64 arm64v8 (the whole plan: --dry-run"), "{stdout}");
    assert!(!stdout.contains("docker buildx build"), "the commands are --verbose's: {stdout}");
    for (index, arch) in ["amd64", "arm64v8"].iter().enumerate() {
        let row = format!("[{}/2] {arch}:", index + 1);
        assert!(stderr.contains(&format!("{row} building e2e/short:t-{arch}")), "{stderr}");
        assert!(stderr.contains(&format!("{row} built sha256:")), "{stderr}");
    }
    assert_eq!(stderr.lines().count(), 4, "two lines per arch, docker's own are --verbose's:\n{stderr}");

    let verbose = xtask(&[&args[..], &["--verbose"]].concat());
    assert!(verbose.status.success(), "the --verbose run failed");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&verbose.stdout), String::from_utf8_lossy(&verbose.stderr));
    assert!(
        stdout.contains("image plan (buildx)") && stdout.contains("build:   docker buildx build"),
        "{stdout}"
    );
    assert!(stderr.contains("load build definition"), "docker's own output with --verbose:\n{stderr}");
}

#[test]
fn image_dry_run_prints_every_docker_command() {
    let stdout = xtask_ok(&[
        "image",
        "--all-arch",
        "--push",
        "--image",
        "registry.example/x/exonode",
        "--dry-run",
        "--dist-dir",
        shared_dist().as_str(),
    ]);
    for (arch, _) in PLATFORMS {
        assert!(
            stdout.contains(&format!("--tag registry.example/x/exonode:{}-{arch}", version())),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("IMAGE_FROM=arm32v5/busybox") && stdout.contains("--platform linux/arm/v5"),
        "{stdout}"
    );
    for (arch, _) in PLATFORMS {
        let export = format!("/{arch}.tar registry.example/x/exonode:{}-{arch}", version());
        assert!(
            stdout.lines().any(|l| l.contains("export:  docker save --output") && l.contains(&export)),
            "{stdout}"
        );
    }
    assert!(stdout.contains("--load") && !stdout.contains("--push "), "buildx itself never pushes: {stdout}");
    assert!(stdout.contains("SBOMs and the index by digest, signatures, and every tag last"), "{stdout}");
    let stderr = xtask_fails(&["image", "--image", "x"]);
    assert!(stderr.contains("--arch NAME (repeatable) or --all-arch"), "{stderr}");
}

/// Builds Dockerfile.release for a platform against an HTTP server serving `dir`.
fn build_release(dir: &Utf8Path, platform: &str, tag: &str) -> std::process::Output {
    let server = HttpServer::serve(dir);
    let context = scratch(&format!("release-context-{}", tag.replace([':', '/'], "-")));
    run(
        "docker",
        &[
            "buildx",
            "build",
            "--network",
            "host",
            "--platform",
            platform,
            "--file",
            dir.join("Dockerfile.release").as_str(),
            "--build-arg",
            &format!("BASE_URL={}", server.url()),
            "--tag",
            tag,
            "--load",
            context.as_str(),
        ],
    )
}

#[test]
fn dockerfile_release_downloads_and_pins_each_platform() {
    require_docker();
    let dist = shared_dist();
    for (arch, platform) in [("arm32v6", "linux/arm/v6"), ("amd64", "linux/amd64")] {
        let tag = format!("e2e/release:{arch}");
        let output = build_release(dist, platform, &tag);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let out = docker(&["run", "--rm", "--platform", platform, &tag, "--version"]);
        assert!(out.contains(&target_of(arch)), "{out}");
        assert_eq!(docker(&["image", "inspect", "--format", "{{.Config.User}}", &tag]).trim(), "10001:10001");
    }

    // Big-endian MIPS64: a platform BuildKit knows and the release does not ship.
    let output = build_release(dist, "linux/mips64", "e2e/release:mips64");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not released for linux/mips64"));
}

#[test]
fn dockerfile_release_refuses_a_tampered_download() {
    require_docker();
    let dist = scratch("release-tampered");
    copy_dir(shared_dist(), &dist);
    let archive = artifact(&dist, "arm32v7")["name"].as_str().unwrap().to_string();
    flip_byte(&dist.join(&archive), 2000);
    let output = build_release(&dist, "linux/arm/v7", "e2e/release:tampered");
    assert!(!output.status.success(), "a swapped download must fail the build");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{archive} does not match its pinned SHA-256")), "{stderr}");
}

#[test]
fn install_sh_installs_on_this_host_and_refuses_tampering() {
    let dist = scratch("install-host");
    copy_dir(shared_dist(), &dist);
    let server = HttpServer::serve(&dist);
    let prefix = scratch("install-host-prefix");
    let install = |prefix: &Utf8Path| {
        run(
            "sh",
            &[dist.join("install.sh").as_str(), "--prefix", prefix.as_str(), "--base-url", &server.url()],
        )
    };
    let output = install(&prefix);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let out = run_ok(prefix.join("bin/exonode").as_str(), &["--version"]);
    assert!(out.contains("x86_64-unknown-linux-musl"), "{out}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("checksum verified (embedded and SHA256SUMS)"));

    // A swapped archive: nothing installed, and the reason given.
    let archive = artifact(&dist, "amd64")["name"].as_str().unwrap().to_string();
    flip_byte(&dist.join(&archive), 100);
    let fresh = scratch("install-host-tampered");
    let output = install(&fresh);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("does not match the checksum in this installer")
            && stderr.contains("nothing was installed"),
        "{stderr}"
    );
    assert!(!fresh.join("bin/exonode").exists());
}

/// A file server on 127.0.0.1 that answers the first request of every file with 503, as a
/// server under load does now and then.
fn flaky_server(dir: &Utf8Path) -> (duct::Handle, String) {
    const SERVER: &str = "import functools, http.server, sys\n\
        seen = set()\n\
        class Flaky(http.server.SimpleHTTPRequestHandler):\n\
        \x20   def do_GET(self):\n\
        \x20       if self.path not in seen:\n\
        \x20           seen.add(self.path)\n\
        \x20           self.send_response(503)\n\
        \x20           self.send_header('Content-Length', '0')\n\
        \x20           self.end_headers()\n\
        \x20           return\n\
        \x20       super().do_GET()\n\
        \x20   def log_message(self, *args):\n\
        \x20       pass\n\
        handler = functools.partial(Flaky, directory=sys.argv[1])\n\
        http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[2])), handler).serve_forever()\n";
    let port = free_port();
    let server = duct::cmd!("python3", "-c", SERVER, dir.as_str(), port.to_string()).stdout_null();
    let handle = serve_on_loopback("the flaky HTTP server", server, port);
    (handle, format!("http://127.0.0.1:{port}"))
}

#[test]
fn install_sh_retries_a_failing_server_and_a_failed_install_leaves_nothing() {
    let dist = scratch("install-flaky");
    copy_dir(shared_dist(), &dist);
    let (server, url) = flaky_server(&dist);
    let tmp = scratch("install-flaky-tmp");
    let install = |prefix: &Utf8Path| {
        Command::new("/bin/dash")
            .args([dist.join("install.sh").as_str(), "--prefix", prefix.as_str(), "--base-url", &url])
            .env("TMPDIR", tmp.as_str())
            .output()
            .unwrap()
    };
    let prefix = scratch("install-flaky-prefix");
    let output = install(&prefix);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("downloading with curl (the first of curl, wget found)"), "{stderr}");
    assert!(stderr.contains("failed (503); attempt 2 of 5 in 1s"), "{stderr}");
    assert!(stderr.contains("checksum verified (embedded and SHA256SUMS)"), "{stderr}");
    run_ok(prefix.join("bin/exonode").as_str(), &["--version"]);
    assert_eq!(listing(&tmp), Vec::<String>::new(), "temporary files left");

    // A bad archive: refused, the prefix as it was, no temporary files.
    let archive = artifact(&dist, "amd64")["name"].as_str().unwrap().to_string();
    flip_byte(&dist.join(&archive), 100);
    let before = listing(&prefix.join("bin"));
    let output = install(&prefix);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("nothing was installed"), "{stderr}");
    assert_eq!(listing(&prefix.join("bin")), before, "a failed install changed the prefix");
    assert_eq!(listing(&tmp), Vec::<String>::new(), "temporary files left after a failure");
    drop(server);
}

#[test]
fn install_sh_rejects_a_sums_file_that_disagrees() {
    let dist = scratch("install-sums");
    copy_dir(shared_dist(), &dist);
    let archive = artifact(&dist, "amd64")["name"].as_str().unwrap().to_string();
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    let forged: String = sums
        .lines()
        .map(|l| {
            if l.ends_with(&format!("  {archive}")) {
                format!("{}  {archive}\n", "0".repeat(64))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(dist.join("SHA256SUMS"), forged).unwrap();
    let server = HttpServer::serve(&dist);
    let prefix = scratch("install-sums-prefix");
    let output = run(
        "sh",
        &[dist.join("install.sh").as_str(), "--prefix", prefix.as_str(), "--base-url", &server.url()],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("SHA256SUMS disagrees with this installer"));
    assert!(!prefix.join("bin/exonode").exists());
}

#[test]
fn install_sh_detects_arm_and_32_bit_userlands_under_emulation() {
    require_docker();
    let dist = shared_dist();
    let server = HttpServer::serve(dist);
    for (image, platform, arch, env) in [
        ("arm64v8/busybox", "linux/arm64", "arm64v8", ""),
        ("arm32v7/busybox", "linux/arm/v7", "arm32v7", "QEMU_CPU=cortex-a7"),
        ("arm32v6/busybox", "linux/arm/v6", "arm32v6", "QEMU_CPU=arm1176"),
        ("arm32v5/busybox", "linux/arm/v5", "arm32v5", "QEMU_CPU=arm926"),
        ("i386/busybox", "linux/386", "i386", ""),
        ("riscv64/busybox", "linux/riscv64", "riscv64", "QEMU_CPU=sifive-u54"),
        ("ppc64le/busybox", "linux/ppc64le", "ppc64le", "QEMU_CPU=power8"),
        ("s390x/busybox", "linux/s390x", "s390x", "QEMU_CPU=qemu"),
        // uname -m says mips64 here as on big-endian MIPS64: the byte order tells them apart.
        ("mips64le/busybox", "linux/mips64le", "mips64le", "QEMU_CPU=MIPS64R2-generic"),
    ] {
        let mut args = vec!["run", "--rm", "--network", "host", "--platform", platform, "-v"];
        let mount = format!("{dist}:/dist:ro");
        args.push(&mount);
        let env_flag;
        if !env.is_empty() {
            env_flag = env.to_string();
            args.extend(["-e", &env_flag]);
        }
        let url = server.url();
        let script =
            format!("sh /dist/install.sh --prefix /opt/x --base-url {url} && /opt/x/bin/exonode --version");
        args.extend([image, "sh", "-c", &script]);
        let output = run("docker", &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{arch}: {stderr}");
        assert!(stderr.contains(&format!("({arch})")), "{arch} detected as: {stderr}");
        assert!(String::from_utf8_lossy(&output.stdout).contains(&target_of(arch)));
    }
}

/// No big-endian MIPS64 userland can be had here, so this one's machine facts come from `uname`
/// and `od` stand-ins that answer as such a machine would; install.sh must refuse it.
#[test]
fn install_sh_refuses_a_big_endian_mips64_userland() {
    let bin = scratch("install-mips64-be-bin");
    std::fs::write(bin.join("uname"), "#!/bin/sh\necho mips64\n").unwrap();
    // `od -An -tx1 -j5 -N1 /bin/sh`: EI_DATA 2, big-endian.
    std::fs::write(bin.join("od"), "#!/bin/sh\necho ' 02'\n").unwrap();
    for tool in ["uname", "od"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join(tool), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let dist = shared_dist();
    let prefix = scratch("install-mips64-be-prefix");
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap());
    let output = Command::new("/bin/dash")
        .args([
            dist.join("install.sh").as_str(),
            "--prefix",
            prefix.as_str(),
            "--base-url",
            "http://127.0.0.1:9",
        ])
        .env("PATH", path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("no exonode build for big-endian mips64 CPUs (mips64le is little-endian)"),
        "{stderr}"
    );
    assert!(!prefix.join("bin/exonode").exists(), "nothing may be installed");
}

#[test]
fn install_sh_fails_closed_without_a_checksum_tool() {
    // A PATH with everything install.sh uses except sha256sum, shasum and openssl. (BusyBox's
    // shell finds its applets without PATH, so this runs on the host with dash.)
    let bin = scratch("install-no-sha-bin");
    for tool in [
        "uname", "mktemp", "rm", "curl", "cut", "grep", "tar", "gzip", "mkdir", "cp", "chmod", "mv", "od",
        "tr", "sed", "cat",
    ] {
        let path = run_ok("sh", &["-c", &format!("command -v {tool}")]);
        std::os::unix::fs::symlink(path.trim(), bin.join(tool)).unwrap();
    }
    let dist = shared_dist();
    let server = HttpServer::serve(dist);
    let prefix = scratch("install-no-sha-prefix");
    let output = Command::new("/bin/dash")
        .args([dist.join("install.sh").as_str(), "--prefix", prefix.as_str(), "--base-url", &server.url()])
        .env("PATH", bin.as_str())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("cannot verify the download: no sha256sum, shasum or openssl"), "{stderr}");
    assert!(!prefix.join("bin/exonode").exists(), "nothing may be installed");
}

#[test]
fn image_builds_the_default_dist_first_when_it_lacks_an_arch() {
    require_docker();
    // The default dist folder (TARGET_DIR/dist) holds amd64 only; asking for i386 images must
    // run dist for it first. A target dir of the test's own: the checkout's target/dist is the
    // user's, never the suite's to replace.
    let target_dir = scratch("auto-dist-target");
    let env = [("CARGO_TARGET_DIR", target_dir.as_str())];
    let dist = xtask_env(&["dist", "--arch", "amd64"], &env);
    assert!(dist.status.success() && target_dir.join("dist/dist-manifest.json").is_file());
    let args = ["image", "--arch", "amd64", "--arch", "i386", "--image", "e2e/auto-dist", "--tag", "t"];
    let output = xtask_env(&args, &env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("has no archive for i386: running dist first"), "{stderr}");
    let out = docker(&["run", "--rm", "--platform", "linux/386", "e2e/auto-dist:t-i386", "--version"]);
    assert!(out.contains("i686-unknown-linux-musl"), "{out}");
}

#[test]
fn install_sh_arch_flag_skips_detection() {
    // On this x86_64 host, --arch i386 installs the i386 build (which the host runs natively).
    let dist = shared_dist();
    let server = HttpServer::serve(dist);
    let prefix = scratch("install-arch-flag");
    let output = run(
        "sh",
        &[
            dist.join("install.sh").as_str(),
            "--prefix",
            prefix.as_str(),
            "--base-url",
            &server.url(),
            "--arch",
            "i386",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("(i386)"), "{stderr}");
    let out = run_ok(prefix.join("bin/exonode").as_str(), &["--version"]);
    assert!(out.contains(&target_of("i386")), "{out}");

    let output =
        run("sh", &[dist.join("install.sh").as_str(), "--prefix", prefix.as_str(), "--arch", "sparc"]);
    assert!(!output.status.success());
}

#[test]
fn busybox_sha256sum_accepts_the_whole_sha256sums() {
    require_docker();
    // BusyBox's sha256sum -c fails on a trailing blank line, which GNU's accepts.
    let dist = shared_dist();
    let mount = format!("{dist}:/dist:ro");
    let out =
        docker(&["run", "--rm", "-v", &mount, "-w", "/dist", "busybox", "sha256sum", "-c", "SHA256SUMS"]);
    let listed = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap().lines().count();
    assert_eq!(out.lines().filter(|l| l.ends_with(": OK")).count(), listed, "{out}");
    assert!(listed > ALL_ARCHES.len() * 3, "SHA256SUMS lists every file: {listed} lines");
}
