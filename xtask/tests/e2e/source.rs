//! Builds in the builder image (`cargo xtask builder`): docker/Dockerfile.source driven by the
//! Docker Hub hooks with no Rust on PATH, the dev workspace `docker run`, and `dist --backend
//! cross`. Each compares its bytes with the shared host dist: the same pins give the same bytes.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use camino::Utf8Path;

use crate::support::*;

/// PATH without any folder holding cargo, rustc or rustup: what Docker Hub's build machines have.
fn path_without_rust() -> String {
    let path = std::env::var("PATH").unwrap();
    let kept: Vec<&str> = path
        .split(':')
        .filter(|dir| !["cargo", "rustc", "rustup"].iter().any(|tool| Utf8Path::new(dir).join(tool).exists()))
        .collect();
    kept.join(":")
}

fn hook(name: &str, repo: &str, tag: &str, path: &str) -> String {
    let output = Command::new(root().join("docker/hooks").join(name))
        .env("DOCKER_REPO", repo)
        .env("DOCKER_TAG", tag)
        .env("PATH", path)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprintln!("$ docker/hooks/{name}\n{stdout}{stderr}");
    assert!(output.status.success(), "docker/hooks/{name} failed");
    format!("{stdout}{stderr}")
}

/// The binary of a local image (created, copied out, never run).
fn binary_of_image(reference: &str, platform: &str) -> Vec<u8> {
    let dir = scratch(&format!("binary-of-{}", reference.replace(['/', ':'], "-")));
    let container = run_ok("docker", &["create", "--platform", platform, reference]).trim().to_string();
    let copied = run("docker", &["cp", &format!("{container}:/usr/local/bin/exonode"), dir.as_str()]);
    run_ok("docker", &["rm", &container]);
    assert!(copied.status.success(), "{}", String::from_utf8_lossy(&copied.stderr));
    std::fs::read(dir.join("exonode")).unwrap()
}

#[test]
fn hooks_build_and_push_every_arch_from_source_with_docker_alone_and_the_bytes_of_a_host_dist() {
    require_registry();
    shared_builder();
    let path = path_without_rust();
    for tool in ["cargo", "rustc", "rustup"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(!found.status.success(), "{tool} is still on the hooks' PATH {path}");
    }
    let repo = format!("{REGISTRY}/{}", unique("hooks"));
    let built = hook("build", &repo, "edge", &path);
    assert!(built.contains("builder image") && built.contains(": present"), "{built}");
    hook("push", &repo, "edge", &path);

    assert_eq!(list_platforms(&format!("{repo}:edge")), all_platforms());
    let commit = manifest(shared_dist())["commit"].as_str().unwrap().to_string();
    for (arch, platform) in PLATFORMS {
        let target = artifact(shared_dist(), arch)["target"].as_str().unwrap().to_string();
        let out = run_ok(
            "docker",
            &[
                "run",
                "--rm",
                "--pull",
                "always",
                "--platform",
                platform,
                &format!("{repo}:edge"),
                "--version",
            ],
        );
        assert!(out.contains(&target) && out.contains(&commit), "{platform} ran {out:?}");
        assert!(
            binary_of_image(&format!("{repo}:edge-{arch}"), platform) == shared_binary(arch),
            "{arch}: the from-source image's binary differs from the host dist's"
        );
    }
}

#[test]
fn the_dev_workspace_writes_files_the_caller_owns_with_the_bytes_of_a_host_dist() {
    let builder = shared_builder();
    // Another checkout of the same sources, owned by a uid that is not root's.
    let dir = scratch("dev-workspace");
    let checkout = dir.join("exotool");
    checkout_like_root(&checkout);
    let (uid, gid) = ("4242", "4343");
    run_ok("chown", &["-R", &format!("{uid}:{gid}"), checkout.as_str()]);
    let ca = std::env::var("SSL_CERT_FILE").unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
    // The README's line, with the caller's uid:gid written out.
    run_ok(
        "docker",
        &[
            "run",
            "--rm",
            "-u",
            &format!("{uid}:{gid}"),
            "-v",
            &format!("{checkout}:/src"),
            "-w",
            "/src",
            "-v",
            &format!("{ca}:/etc/ssl/certs/ca-certificates.crt:ro"),
            builder,
            "cargo",
            "xtask",
            "dist",
            "--arch",
            "amd64",
        ],
    );
    let out = checkout.join("target/dist");
    for entry in std::fs::read_dir(&out).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        assert_eq!(
            (meta.uid().to_string(), meta.gid().to_string()),
            (uid.into(), gid.into()),
            "{:?}",
            entry.path()
        );
    }
    assert_eq!(artifact(&out, "amd64")["sha256"], artifact(shared_dist(), "amd64")["sha256"]);
}

#[test]
fn the_cross_backend_builds_in_the_builder_image_with_the_bytes_of_the_default_backend() {
    // The shared dist first: its toolchain installs must not race this run's.
    let dist = shared_dist();
    let builder = shared_builder();
    // A target dir of its own, so the two backends do not rebuild each other's artifacts, and
    // a tools folder with nothing of cross's but its (pinned, expensive) install: the mounted
    // folder must come from the plan, as on a fresh checkout. arm64v8 goes first, alone: it
    // writes no linker wrapper, so nothing else would make that folder.
    let target_dir = root().join("target/e2e-cross-target");
    let tools = target_dir.join("xtask-tools");
    let _ = std::fs::remove_dir_all(tools.join("cross-0.2.5-mount"));
    for entry in std::fs::read_dir(&tools).into_iter().flatten().flatten() {
        if entry.file_name() != "cross-0.2.5" {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    for (arch, backend) in [("arm64v8", "cross"), ("arm32v5", "cross-build-std")] {
        let out = scratch(&format!("cross-dist-{arch}"));
        // --verbose prints the whole plan, with its pins and toolchain steps.
        let args = ["dist", "--verbose", "--backend", "cross", "--arch", arch, "--out", out.as_str()];
        let output = xtask_env(&args, &[("CARGO_TARGET_DIR", target_dir.as_str())]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "cargo xtask dist --backend cross --arch {arch} failed");
        assert!(stdout.contains(&format!("cross 0.2.5 in the builder image {builder}")), "{stdout}");
        assert!(stdout.contains("the folder cross mounts into the builder image: mkdir -p"), "{stdout}");
        let built = artifact(&out, arch);
        assert_eq!(built["built_with"]["backend"], backend, "{built}");
        assert_eq!(built["built_with"]["image"], builder, "{built}");
        assert_eq!(
            built["sha256"],
            artifact(dist, arch)["sha256"],
            "{arch}: cross and the default backend differ"
        );
    }
}
