//! Publishing that survives the network: pushes of the oci engine through a fault-injecting
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
    let output = xtask_env(&push_args(&repo, &[]), &[("XTASK_NET_ATTEMPTS", "3")]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{err}");
    assert!(err.contains(&format!("the registry http://{} kept failing", failing.address())), "{err}");
    assert!(err.contains("HTTP 503 (tried 3 times; XTASK_NET_ATTEMPTS sets how many)"), "{err}");
    assert_eq!(failing.injected(), 3);
}
