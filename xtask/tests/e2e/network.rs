//! Publishing that survives the network: pushes (mostly of the oci engine) through a fault-injecting
//! proxy (fault_proxy.rs) in front of the real loopback registry. What must survive: the push
//! completes with the digest a direct push gives, each retry says why, answers that mean "no"
//! are not asked again, and a registry that keeps failing is named with the attempts made.

use std::time::Duration;

use crate::fault_proxy::{Action, Fault, FaultProxy};
use crate::support::*;

fn push_args<'a>(repo: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["image", "--engine", "oci", "--all-arch", "--image", repo, "--tag", "1.0"];
    args.extend(["--dist-dir", shared_dist().as_str(), "--push"]);
    args.extend_from_slice(extra);
    args
}

fn fault(method: &'static str, path_contains: &'static str, nth: usize, action: Action) -> Fault {
    Fault { method, path_contains, nth, action }
}

#[test]
fn a_push_through_503s_a_429_a_dropped_connection_and_a_stall_completes_with_the_direct_digest() {
    require_registry();
    let direct = unique("net-direct");
    xtask_ok(&push_args(&format!("{REGISTRY}/{direct}"), &[]));

    let proxy = FaultProxy::start(
        "127.0.0.1:5000",
        vec![
            fault("GET", "/v2/", 1, Action::Status(503, None)),
            fault("HEAD", "/blobs/", 2, Action::Status(429, Some(1))),
            fault("POST", "/blobs/uploads/", 2, Action::Drop),
            fault("PUT", "/blobs/uploads/", 3, Action::Status(502, None)),
            fault("POST", "/blobs/uploads/", 5, Action::Stall(Duration::from_secs(60))),
            fault("PUT", "/manifests/", 1, Action::Status(503, None)),
        ],
    );
    let path = unique("net-faults");
    let repo = format!("{}/{path}", proxy.address());
    // A 2 s idle timeout, so the stalled request is given up on quickly.
    let output = xtask_env(&push_args(&repo, &[]), &[("XTASK_NET_IDLE_TIMEOUT", "2")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the push did not survive the faults:\n{stderr}");
    assert_eq!(proxy.injected(), 6, "not every fault was met: {:#?}", proxy.requests());
    assert_eq!(
        pushed_digest(&path, "1.0"),
        pushed_digest(&direct, "1.0"),
        "another index than a direct push"
    );
    for said in [
        "GET /v2/: HTTP 503; attempt 2 of 5 in ",
        ": HTTP 429; attempt 2 of 5 in 1.0 s (its Retry-After)",
        ": HTTP 502; attempt 2 of 5 in ",
        "/manifests/",
    ] {
        assert!(stderr.contains(said), "no `{said}` retry line:\n{stderr}");
    }
    let retries = stderr.lines().filter(|l| l.contains("; attempt ")).count();
    assert_eq!(retries, 6, "one retry line per fault:\n{stderr}");
    // The one session that had begun when its PUT failed was cancelled, not left to expire.
    let cancelled: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("DELETE ") && r.contains("/blobs/uploads/"))
        .collect();
    assert_eq!(cancelled.len(), 1, "{:#?}", proxy.requests());
}

#[test]
fn a_refusal_is_not_retried_and_a_registry_that_keeps_failing_is_named_with_the_attempts() {
    require_registry();
    let refusing = FaultProxy::start(
        "127.0.0.1:5000",
        vec![fault("POST", "/blobs/uploads/", 1, Action::Status(403, None))],
    );
    let repo = format!("{}/{}", refusing.address(), unique("net-refused"));
    let err = xtask_fails(&push_args(&repo, &[]));
    assert!(err.contains("answered HTTP 403"), "{err}");
    assert!(!err.contains("; attempt "), "a 403 was retried:\n{err}");
    // Other workers' uploads go on until the failure stops the push; no blob is uploaded twice.
    let count = |method: &str| refusing.requests().iter().filter(|r| r.starts_with(method)).count();
    assert!(count("POST ") <= count("HEAD "), "an upload was started again: {:#?}", refusing.requests());
    assert_eq!(refusing.injected(), 1);

    let failing = FaultProxy::start(
        "127.0.0.1:5000",
        (1..=3).map(|nth| fault("PUT", "/manifests/1.0$", nth, Action::Status(503, None))).collect(),
    );
    let repo = format!("{}/{}", failing.address(), unique("net-failing"));
    let output = xtask_env(&push_args(&repo, &["--net-attempts", "3"]), &[]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{err}");
    assert!(err.contains(&format!("the registry http://{} kept failing", failing.address())), "{err}");
    assert!(err.contains("HTTP 503 (tried 3 times; --net-attempts, XTASK_NET_ATTEMPTS or"), "{err}");
    assert_eq!(failing.injected(), 3);
}

/// `(uploaded, already there)` from the push summary's "N blobs uploaded, M already there".
fn blob_counts(stdout: &str) -> (usize, usize) {
    let line = stdout.lines().find(|l| l.contains(" blobs uploaded, ")).unwrap_or_else(|| panic!("{stdout}"));
    let numbers: Vec<usize> = line
        .split(['(', ',', ' '])
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[1] == "blobs" || w[1] == "already")
        .map(|w| w[0].parse().unwrap())
        .collect();
    (numbers[0], numbers[1])
}

#[test]
fn a_registry_killed_midway_moves_no_tag_and_the_rerun_sends_only_what_is_missing() {
    let dist = shared_dist();
    let work = scratch("net-killed");
    let storage = work.join("storage");
    let mut registry = Some(Registry::start(&storage, ""));
    let (host, port) = (registry.as_ref().unwrap().host(), registry.as_ref().unwrap().port());
    let path = "e2e/killed";
    let direct = format!("{host}/{path}");

    // The release users have: two arches under 1.0.
    let mut two = vec!["image", "--engine", "oci", "--arch", "amd64", "--arch", "arm64v8", "--image"];
    two.extend([direct.as_str(), "--tag", "1.0", "--dist-dir", dist.as_str(), "--push"]);
    let (first_uploads, _) = blob_counts(&xtask_ok(&two));
    let tags: Vec<String> = std::iter::once("1.0".to_string())
        .chain(ALL_ARCHES.iter().map(|arch| format!("1.0-{arch}")))
        .collect();
    let tag_state =
        || -> Vec<Option<String>> { tags.iter().map(|tag| digest_at(&host, path, tag)).collect() };
    let earlier = tag_state();
    assert!(earlier[0].is_some() && earlier[3].is_none(), "{earlier:?}");

    // The ten-arch 1.0, its registry killed while a request is held at the proxy: once in
    // the middle of the blob uploads, once in the middle of the manifests (by digest).
    let mut resumed_uploads = 0;
    for (stop_at, during) in [
        (fault("POST", "/blobs/uploads/", 10, Action::Stall(Duration::from_secs(3))), "the uploads"),
        (fault("PUT", "/manifests/", 3, Action::Stall(Duration::from_secs(3))), "the manifests"),
    ] {
        let proxy = FaultProxy::start(&host, vec![stop_at]);
        let repo = format!("{}/{path}", proxy.address());
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(push_args(&repo, &[]))
            .current_dir(root())
            .env("XTASK_NET_ATTEMPTS", "2")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_until("the request to hold", Duration::from_secs(300), || proxy.injected() == 1);
        drop(registry.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "the push went on without its registry:\n{stderr}");
        assert!(stderr.contains("no tag was moved"), "killed during {during}:\n{stderr}");
        registry = Some(Registry::start_on(&storage, "", port));
        assert_eq!(tag_state(), earlier, "a tag moved, the registry killed during {during}");
        if during == "the manifests" {
            resumed_uploads = proxy.requests().iter().filter(|r| r.starts_with("POST ")).count();
        }
    }

    // Run again: it completes, uploads nothing (every blob made it before the manifests), and
    // every tag names the ten-arch release.
    let stdout = xtask_ok(&push_args(&direct, &[]));
    let (uploaded, already) = blob_counts(&stdout);
    assert_eq!(uploaded, 0, "{stdout}");
    // The second killed run sent only the blobs the first one had not finished.
    let missing = already - first_uploads;
    assert!(
        resumed_uploads > 0 && resumed_uploads < missing,
        "{resumed_uploads} of {missing} uploaded again"
    );
    let now = tag_state();
    assert!(now.iter().all(Option::is_some), "{now:?}");
    assert_ne!(now[0], earlier[0]);
    drop(registry);
}

/// A release whose binary is over 8 MiB: a checkout whose exonode carries 9 MiB of random
/// bytes (so its layer does not compress), built for amd64 alone.
fn big_release(dir: &camino::Utf8Path) -> camino::Utf8PathBuf {
    let checkout = dir.join("checkout");
    checkout_like_root(&checkout);
    let padding = std::fs::File::create(checkout.join("node/padding.bin")).unwrap();
    let random = std::fs::File::open("/dev/urandom").unwrap();
    std::io::copy(&mut std::io::Read::take(random, 9 << 20), &mut std::io::BufWriter::new(padding)).unwrap();
    let main = checkout.join("node/src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap();
    let padded = text.replacen(
        "fn main() -> ExitCode {\n",
        "static PADDING: &[u8] = include_bytes!(\"../padding.bin\");\n\nfn main() -> ExitCode {\n    std::hint::black_box(PADDING);\n",
        1,
    );
    assert_ne!(padded, text, "node/src/main.rs has no `fn main() -> ExitCode {{` to pad");
    std::fs::write(&main, padded).unwrap();
    let out = dir.join("dist");
    xtask_in(&checkout, &["dist", "--arch", "amd64", "--out", out.as_str()]);
    out
}

#[test]
fn a_blob_of_over_8_mib_crosses_a_1_mbit_link_with_progress_and_no_idle_timeout() {
    require_tools(&["unshare", "ip", "tc", "docker-registry", "curl"]);
    let work = scratch("net-slow-link");
    let dist = big_release(&work);
    let storage = work.join("storage");
    std::fs::create_dir_all(&storage).unwrap();
    let config = work.join("registry.yml");
    std::fs::write(
        &config,
        format!("version: 0.1\nlog: {{level: error}}\nhttp: {{addr: 127.0.0.1:5999}}\nstorage:\n  filesystem: {{rootdirectory: {storage}}}\n"),
    )
    .unwrap();
    // In a network namespace of its own, whose loopback carries 1 Mbit/s (at an Ethernet MTU:
    // tbf drops every packet larger than its bucket, and loopback's are 64 KiB): the registry,
    // and the push with a 10 s idle timeout. The layer's first 8 MiB chunk is one PATCH of 67
    // Mbit, over 67 s at that rate: a timeout per request would fire, one per read or write
    // must not while the bytes move.
    let script = format!(
        "set -e\nip link set lo up mtu 1500\ntc qdisc add dev lo root tbf rate 1mbit burst 32kbit latency 400ms\n\
         docker-registry serve {config} >/dev/null 2>&1 &\nregistry=$!\ntrap 'kill $registry' EXIT\n\
         for _ in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:5999/v2/ && break; sleep 0.2; done\n\
         {xtask} image --engine oci --arch amd64 --image 127.0.0.1:5999/e2e/slow --tag 1.0 --dist-dir {dist} --push --net-idle-timeout 10\n\
         curl -fsS -o /dev/null -w 'tag 1.0: HTTP %{{http_code}}\\n' -H 'Accept: application/vnd.oci.image.index.v1+json' \
         http://127.0.0.1:5999/v2/e2e/slow/manifests/1.0\n",
        xtask = env!("CARGO_BIN_EXE_xtask"),
    );
    let started = std::time::Instant::now();
    let output = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .current_dir(root())
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprintln!("{stdout}{stderr}");
    assert!(output.status.success(), "the push over the slow link failed:\n{stderr}");
    assert!(stdout.contains("tag 1.0: HTTP 200"), "{stdout}");
    // It was slow: over 8 MiB at 1 Mbit/s is more than a minute.
    assert!(started.elapsed() > Duration::from_secs(67), "the link was not slow: {:?}", started.elapsed());
    assert!(stderr.contains(" 8.0 MiB of 9."), "no progress line for the large layer:\n{stderr}");
    assert!(!stderr.contains("; attempt "), "a request was retried while its bytes moved:\n{stderr}");
}

/// A benchmark, not a test (the suite skips it; docs/benchmarks.md has its figures): the wall
/// time of a six-arch push to the loopback registry through the fault proxy, clean and with
/// one request in ten answered 503, each round to a new repository so every blob is sent.
/// `cargo test -p xtask --test e2e -- --ignored --nocapture network::bench_`
#[test]
#[ignore = "a benchmark: run it with --ignored --nocapture"]
fn bench_a_six_arch_push_with_one_request_in_ten_answered_503() {
    require_registry();
    const ROUNDS: usize = 5;
    let arches = &ALL_ARCHES[..6];
    let mut rows = Vec::new();
    for (label, every) in [("clean", None), ("10% of requests answered 503", Some(10))] {
        let mut times = Vec::new();
        let mut retries = 0;
        for round in 0..ROUNDS {
            let faults = every
                .map(|n| (1..=500).map(|k| fault("*", "/v2/", k * n, Action::Status(503, None))).collect())
                .unwrap_or_default();
            let proxy = FaultProxy::start("127.0.0.1:5000", faults);
            let repo = format!("{}/{}", proxy.address(), unique(&format!("bench-faults-{round}")));
            let mut args =
                vec!["image", "--engine", "oci", "--image", repo.as_str(), "--tag", "1.0", "--push"];
            args.extend(["--dist-dir", shared_dist().as_str()]);
            for arch in arches {
                args.extend(["--arch", arch]);
            }
            let started = std::time::Instant::now();
            let output = xtask(&args);
            times.push(started.elapsed());
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{stderr}");
            retries += stderr.lines().filter(|l| l.contains("; attempt ")).count();
            if round == ROUNDS / 2 {
                println!("{label}, round {round}, slowest requests (came at, took):");
                for (request, came, took) in proxy.slowest().iter().take(8) {
                    let request = request.split("?_state").next().unwrap_or_default();
                    println!("  {:>6.3} s {:>6.3} s  {request}", came.as_secs_f64(), took.as_secs_f64());
                }
            }
        }
        times.sort();
        rows.push((label, times[ROUNDS / 2], times[0], times[ROUNDS - 1], retries / ROUNDS));
    }
    println!("| push of {} arches through the proxy | median | min | max | retries per push |", arches.len());
    println!("|---|---|---|---|---|");
    for (label, median, min, max, retries) in &rows {
        println!(
            "| {label} | {:.2} s | {:.2} s | {:.2} s | {retries} |",
            median.as_secs_f64(),
            min.as_secs_f64(),
            max.as_secs_f64()
        );
    }
    println!("ratio: {:.2}x", rows[1].1.as_secs_f64() / rows[0].1.as_secs_f64());
}

/// The buildx engine publishes the same way: its images leave the local engine and are
/// pushed by digest, the tags moved last. What must survive a push refused at its index: every
/// tag of the earlier release, unmoved; the rerun then moves them all.
#[test]
fn a_buildx_push_refused_at_its_index_moves_no_tag_and_the_rerun_moves_them_all() {
    require_registry();
    let path = unique("net-buildx");
    let dist = shared_dist();
    let args = |repo: &str, base: &str| -> Vec<String> {
        let mut args = vec!["image", "--arch", "amd64", "--arch", "arm64v8", "--image", repo, "--tag", "1.0"];
        args.extend(["--base", base, "--dist-dir", dist.as_str(), "--push"]);
        args.into_iter().map(String::from).collect()
    };
    let run = |args: &[String]| xtask_env(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let tags = ["1.0", "1.0-amd64", "1.0-arm64v8"];
    let digests = || tags.map(|tag| pushed_digest(&path, tag));

    let first = run(&args(&format!("{REGISTRY}/{path}"), "busybox"));
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let before = digests();

    // Platform manifests and SBOMs are PUT by digest before the index: the 5th such PUT is it.
    let proxy = FaultProxy::start(
        "127.0.0.1:5000",
        vec![fault("PUT", "/manifests/sha256:", 5, Action::Status(400, None))],
    );
    let refused = run(&args(&format!("{}/{path}", proxy.address()), "scratch"));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("pushing the index sha256:") && stderr.contains("no tag was moved"), "{stderr}");
    assert_eq!(proxy.injected(), 1);
    assert_eq!(digests(), before, "a tag moved although the index was refused");
    assert!(
        !proxy
            .requests()
            .iter()
            .any(|r| r.starts_with("PUT ") && tags.iter().any(|t| r.ends_with(&format!("/manifests/{t}")))),
        "a tag was sent: {:#?}",
        proxy.requests()
    );

    let rerun = run(&args(&format!("{REGISTRY}/{path}"), "scratch"));
    assert!(rerun.status.success(), "{}", String::from_utf8_lossy(&rerun.stderr));
    let after = digests();
    for (tag, (old, new)) in tags.iter().zip(before.iter().zip(&after)) {
        assert_ne!(old, new, "{tag} still names the busybox release");
    }
    assert_eq!(list_platforms(&format!("{REGISTRY}/{path}:1.0")), ["linux/amd64", "linux/arm64"]);
}
