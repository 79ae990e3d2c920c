//! `cargo xtask dist` and `verify`, end to end: six arches built, checked on their CPU class
//! under qemu-user, packed reproducibly, verified; bad input and failures leave no output.

use std::process::Command;

use camino::Utf8Path;

use crate::support::*;

/// How to run a binary of each arch on its CPU class from this x86_64 host.
fn runner(arch: &str) -> Vec<&'static str> {
    match arch {
        "amd64" | "i386" => vec![],
        "arm64v8" => vec!["qemu-aarch64-static", "-cpu", "cortex-a53"],
        "arm32v7" => vec!["qemu-arm-static", "-cpu", "cortex-a7"],
        "arm32v6" => vec!["qemu-arm-static", "-cpu", "arm1176"],
        "arm32v5" => vec!["qemu-arm-static", "-cpu", "arm926"],
        other => panic!("no runner for {other}"),
    }
}

/// Unpacks one arch's archive into a scratch folder and returns the binary's path.
fn unpack_binary(dist: &Utf8Path, arch: &str, into: &Utf8Path) -> camino::Utf8PathBuf {
    let artifact = artifact(dist, arch);
    let archive = dist.join(artifact["name"].as_str().unwrap());
    run_ok("tar", &["-xzf", archive.as_str(), "-C", into.as_str()]);
    into.join(artifact["binary"]["path"].as_str().unwrap())
}

fn run_on_cpu(arch: &str, binary: &Utf8Path, args: &[&str]) -> std::process::Output {
    let mut words = runner(arch);
    words.push(binary.as_str());
    words.extend_from_slice(args);
    Command::new(words[0]).args(&words[1..]).output().unwrap_or_else(|e| {
        panic!("cannot run {}: {e} (qemu-user-static comes with the README's test command)", words[0])
    })
}

#[test]
fn dist_builds_six_static_binaries_that_run_on_their_cpu_class() {
    let dist = shared_dist();
    let sums = run_ok("sh", &["-c", &format!("cd {dist} && sha256sum -c SHA256SUMS")]);
    assert_eq!(sums.lines().filter(|l| l.ends_with(": OK")).count(), sums.lines().count());

    let manifest = manifest(dist);
    let arches: Vec<&str> =
        manifest["artifacts"].as_array().unwrap().iter().map(|a| a["arch"].as_str().unwrap()).collect();
    assert_eq!(arches, ALL_ARCHES, "artifacts follow the matrix order");
    let commit = manifest["commit"].as_str().unwrap().to_string();

    let unpack = scratch("dist-run");
    for arch in ALL_ARCHES {
        let artifact = artifact(dist, arch);
        let target = artifact["target"].as_str().unwrap();
        let binary = unpack_binary(dist, arch, &unpack);
        let file = run_ok("file", &["-b", binary.as_str()]);
        assert!(file.contains("statically linked") || file.contains("static-pie"), "{arch}: {file}");

        let output = run_on_cpu(arch, &binary, &["--version"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{arch} does not run on its CPU class: {output:?}");
        assert!(stdout.contains(target), "{arch}: --version says {stdout:?}, not {target}");
        assert!(stdout.contains(&commit), "{arch}: --version lacks the commit: {stdout:?}");
        assert_eq!(stdout.lines().count(), 1, "--version prints one line");
    }
}

#[test]
fn an_arm32v7_binary_dies_on_an_armv5_cpu_so_the_cpu_check_means_something() {
    let unpack = scratch("dist-sigill");
    let binary = unpack_binary(shared_dist(), "arm32v7", &unpack);
    let output = Command::new("qemu-arm-static")
        .args(["-cpu", "arm926", binary.as_str(), "--version"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "an ARMv7 binary must not run on an ARMv5TE CPU");
}

#[test]
fn manifest_records_what_each_artifact_is() {
    let dist = shared_dist();
    let manifest = manifest(dist);
    assert_eq!(manifest["name"], "exonode");
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    for artifact in manifest["artifacts"].as_array().unwrap() {
        let name = artifact["name"].as_str().unwrap();
        let size = std::fs::metadata(dist.join(name)).unwrap().len();
        assert_eq!(artifact["size"].as_u64().unwrap(), size, "{name}");
        let sidecar = std::fs::read_to_string(dist.join(format!("{name}.sha256"))).unwrap();
        assert_eq!(sidecar, format!("{}  {name}\n", artifact["sha256"].as_str().unwrap()));
        assert!(["cargo", "build-std"].contains(&artifact["built_with"]["backend"].as_str().unwrap()));
    }
    // The arm32 targets have no rust-std from rustup here: build-std it is, and the summary said so.
    assert_eq!(artifact(dist, "arm32v5")["built_with"]["backend"], "build-std");
    assert_eq!(artifact(dist, "amd64")["built_with"]["backend"], "cargo");
}

#[test]
fn verify_names_a_flipped_byte_a_missing_file_and_a_stray_file() {
    let dir = scratch("verify-tamper");
    copy_dir(shared_dist(), &dir);
    xtask_ok(&["verify", dir.as_str()]);

    let victim = artifact(&dir, "arm32v5")["name"].as_str().unwrap().to_string();
    flip_byte(&dir.join(&victim), 1000);
    std::fs::remove_file(dir.join("install.sh")).unwrap();
    std::fs::write(dir.join("extra.bin"), "slipped in").unwrap();
    let stderr = xtask_fails(&["verify", dir.as_str()]);
    assert!(stderr.contains(&format!("FAILED {victim}: sha256")), "{stderr}");
    assert!(stderr.contains("FAILED install.sh: missing"), "{stderr}");
    assert!(stderr.contains("FAILED extra.bin: not listed in SHA256SUMS"), "{stderr}");
}

#[test]
fn verify_catches_a_swapped_binary_even_with_regenerated_sums() {
    // Someone repacks an archive with another binary and rewrites every checksum file: the
    // manifest's binary hash still gives it away.
    let dir = scratch("verify-swap");
    copy_dir(shared_dist(), &dir);
    let victim = artifact(&dir, "amd64")["name"].as_str().unwrap().to_string();
    let other = artifact(&dir, "i386")["name"].as_str().unwrap().to_string();
    std::fs::copy(dir.join(&other), dir.join(&victim)).unwrap();
    let script = format!(
        "cd {dir} && h=$(sha256sum {victim} | cut -d' ' -f1) && \
         sed -i \"s/[0-9a-f]\\{{64\\}}/$h/\" {victim}.sha256 && \
         python3 - <<'PY'\nimport json,hashlib,os\nm=json.load(open('dist-manifest.json'))\nfor a in m['artifacts']:\n    if a['name']=='{victim}':\n        d=open(a['name'],'rb').read(); a['sha256']=hashlib.sha256(d).hexdigest(); a['size']=len(d)\nopen('dist-manifest.json','w').write(json.dumps(m,indent=2)+'\\n')\nPY\n\
         rm SHA256SUMS && sha256sum $(ls) > SHA256SUMS"
    );
    run_ok("sh", &["-c", &script]);
    let stderr = xtask_fails(&["verify", dir.as_str()]);
    assert!(stderr.contains(&format!("FAILED {victim}")), "{stderr}");
}

#[test]
fn dry_run_prints_every_command_and_builds_nothing() {
    // The plan must name the backend the real build used, whatever this machine's rustup has.
    let built = manifest(shared_dist());
    let out = scratch("dry-run").join("dist");
    let stdout = xtask_ok(&["dist", "--dry-run", "--out", out.as_str()]);
    for artifact in built["artifacts"].as_array().unwrap() {
        let (arch, target) = (artifact["arch"].as_str().unwrap(), artifact["target"].as_str().unwrap());
        let backend = match artifact["built_with"]["backend"].as_str().unwrap() {
            "build-std" => "nightly -Zbuild-std + zig",
            "cargo" => "cargo + rust-lld",
            other => panic!("unexpected backend {other}"),
        };
        let row = format!("  {arch:<8} {target:<31} {backend}");
        assert!(stdout.contains(&row), "plan lacks {row:?}:\n{stdout}");
    }
    assert!(stdout.contains("cargo build --release --locked"), "{stdout}");
    assert!(stdout.contains("qemu-arm-static -cpu arm926"), "{stdout}");
    assert!(!out.exists(), "a dry run must not write {out}");
}

#[test]
fn bad_input_gets_one_clear_message() {
    let stderr = xtask_fails(&["dist", "--arch", "arm7"]);
    assert!(
        stderr.contains("--arch \"arm7\" is not a known arch; accepted values: amd64, arm64v8"),
        "{stderr}"
    );
    let stderr = xtask_fails(&["dist", "--target", "mips-unknown-linux-musl"]);
    assert!(stderr.contains("--target \"mips-unknown-linux-musl\" is not in the arch matrix"), "{stderr}");

    let precious = scratch("not-a-dist");
    std::fs::write(precious.join("notes.txt"), "keep me").unwrap();
    let stderr = xtask_fails(&["dist", "--arch", "amd64", "--out", precious.as_str()]);
    assert!(stderr.contains("refusing to replace"), "{stderr}");
    assert!(precious.join("notes.txt").exists());
}

#[test]
fn a_failed_build_leaves_no_output_that_looks_complete() {
    let root_dir = scratch("failed-build");
    let out = root_dir.join("dist");
    copy_dir(shared_dist(), &out);
    // CARGO_BUILD_JOBS=0 makes every cargo build fail at once: a stand-in for a broken compiler.
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["dist", "--arch", "amd64", "--arch", "i386", "--out", out.as_str()])
        .env("CARGO_BUILD_JOBS", "0")
        .current_dir(root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("amd64 (x86_64-unknown-linux-musl) failed"),
        "the failing arch names itself: {stderr}"
    );
    let left: Vec<String> =
        root_dir.read_dir_utf8().unwrap().map(|e| e.unwrap().file_name().to_string()).collect();
    assert!(left.is_empty(), "nothing may remain, not even the earlier output: {left:?}");
}

#[test]
fn two_checkouts_at_different_paths_produce_identical_bytes() {
    // The sources as they are now (committed or not), as one commit object both clones share.
    let snapshot = {
        let stash = run_ok("git", &["-C", root().as_str(), "stash", "create"]);
        if stash.trim().is_empty() {
            run_ok("git", &["-C", root().as_str(), "rev-parse", "HEAD"])
        } else {
            stash
        }
    };
    let snapshot = snapshot.trim();
    let base = scratch("reproducible");
    let mut outputs = Vec::new();
    for name in ["first checkout", "second/checkout-path"] {
        let checkout = base.join(name);
        run_ok("git", &["clone", "--quiet", "--no-checkout", root().as_str(), checkout.as_str()]);
        run_ok("git", &["-C", checkout.as_str(), "fetch", "--quiet", root().as_str(), snapshot]);
        run_ok("git", &["-C", checkout.as_str(), "checkout", "--quiet", "--detach", snapshot]);
        let out = base.join(format!("out-{}", outputs.len()));
        let status = Command::new("cargo")
            .args(["xtask", "dist", "--arch", "amd64", "--arch", "arm32v5", "--out", out.as_str()])
            .current_dir(&checkout)
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .unwrap();
        assert!(status.success(), "dist failed in {checkout}");
        outputs.push(out);
    }
    let listing = |dir: &Utf8Path| {
        let mut names: Vec<String> =
            dir.read_dir_utf8().unwrap().map(|e| e.unwrap().file_name().to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(listing(&outputs[0]), listing(&outputs[1]));
    for name in listing(&outputs[0]) {
        let a = std::fs::read(outputs[0].join(&name)).unwrap();
        let b = std::fs::read(outputs[1].join(&name)).unwrap();
        assert!(a == b, "{name} differs between the two checkouts");
    }
    let _ = std::fs::remove_dir_all(base.join("first checkout"));
    let _ = std::fs::remove_dir_all(base.join("second"));
}
