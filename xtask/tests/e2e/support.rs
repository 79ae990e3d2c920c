//! Shared test fixtures: the real xtask binary, one ten-arch dist built once per test run,
//! and real servers (docker, registry, HTTP) on loopback. Nothing here is a mock; a test
//! that needs a missing tool fails and says how to get it.

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

pub fn root() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Scratch space for tests, under the workspace's target dir (never the system's /tmp, which
/// may be small or shared).
pub fn scratch(name: &str) -> Utf8PathBuf {
    let dir = root().join("target/e2e").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the xtask binary under test, as `cargo xtask ARGS` would.
pub fn xtask(args: &[&str]) -> Output {
    xtask_env(args, &[])
}

/// `cargo xtask ARGS` with extra environment (credentials, chunk size, docker config). Registry
/// credentials of the caller's environment never leak into a test.
pub fn xtask_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(args).current_dir(root()).env_remove("REGISTRY_USERNAME").env_remove("REGISTRY_PASSWORD");
    cmd.envs(env.iter().copied());
    let output = cmd.output().expect("cannot start the xtask binary");
    eprintln!(
        "$ cargo xtask {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs the xtask and fails the test if it fails.
pub fn xtask_ok(args: &[&str]) -> String {
    let output = xtask(args);
    assert!(output.status.success(), "cargo xtask {} failed", args.join(" "));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the xtask, expects it to fail, and returns its stderr.
pub fn xtask_fails(args: &[&str]) -> String {
    let output = xtask(args);
    assert!(!output.status.success(), "cargo xtask {} should have failed", args.join(" "));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// ALL_ARCHES and PLATFORMS are generated from xtask/src/project/matrix.rs by its tests: change
// the matrix, not these lists.

/// Every arch, in matrix order.
pub const ALL_ARCHES: [&str; 10] =
    ["amd64", "arm64v8", "arm32v7", "arm32v6", "arm32v5", "i386", "riscv64", "ppc64le", "s390x", "mips64le"];

/// Each arch with the platform registries and `docker run --platform` call it.
pub const PLATFORMS: [(&str, &str); 10] = [
    ("amd64", "linux/amd64"),
    ("arm64v8", "linux/arm64"),
    ("arm32v7", "linux/arm/v7"),
    ("arm32v6", "linux/arm/v6"),
    ("arm32v5", "linux/arm/v5"),
    ("i386", "linux/386"),
    ("riscv64", "linux/riscv64"),
    ("ppc64le", "linux/ppc64le"),
    ("s390x", "linux/s390x"),
    ("mips64le", "linux/mips64le"),
];

/// Every arch's platform, sorted as `list_platforms` returns them.
pub fn all_platforms() -> Vec<String> {
    let mut platforms: Vec<String> = PLATFORMS.iter().map(|(_, p)| p.to_string()).collect();
    platforms.sort();
    platforms
}

/// The platforms a manifest list in the registry names, sorted, as PLATFORMS spells them.
pub fn list_platforms(list: &str) -> Vec<String> {
    let raw = run_ok("docker", &["buildx", "imagetools", "inspect", "--raw", list]);
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let mut platforms: Vec<String> =
        index["manifests"].as_array().unwrap().iter().map(entry_platform).collect();
    platforms.sort();
    platforms
}

/// The platform of an index entry, as PLATFORMS spells it (arm64 without its v8).
pub fn entry_platform(entry: &serde_json::Value) -> String {
    let p = &entry["platform"];
    let base = format!("{}/{}", p["os"].as_str().unwrap(), p["architecture"].as_str().unwrap());
    match p["variant"].as_str() {
        Some(v) if base != "linux/arm64" => format!("{base}/{v}"),
        _ => base,
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}

/// One `cargo xtask dist` of every arch, shared by every test in this binary: cross builds
/// of the arm32 arches take minutes, so each is built once per test run.
pub fn shared_dist() -> &'static Utf8Path {
    static DIST: OnceLock<Utf8PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        let out = root().join("target/e2e-shared/dist");
        xtask_ok(&["dist", "--out", out.as_str()]);
        out
    })
}

/// The builder image, made once per test run by `cargo xtask builder` (into the local engine);
/// returns its reference.
pub fn shared_builder() -> &'static str {
    static BUILDER: OnceLock<String> = OnceLock::new();
    BUILDER.get_or_init(|| {
        require_docker();
        let out = xtask_ok(&["builder"]);
        // Its everyday output: the head line and what it loaded (the commands are --verbose's).
        assert!(out.starts_with("builder image ") && out.lines().count() == 2, "{out}");
        out.lines()
            .find_map(|line| line.strip_prefix("loaded ")?.strip_suffix(" into the local engine"))
            .unwrap_or_else(|| panic!("`cargo xtask builder` named no image: {out}"))
            .to_string()
    })
}

/// The binary of `arch`'s archive in the shared dist.
pub fn shared_binary(arch: &str) -> Vec<u8> {
    use std::io::Read;
    let artifact = artifact(shared_dist(), arch);
    let file = std::fs::File::open(shared_dist().join(artifact["name"].as_str().unwrap())).unwrap();
    for entry in tar::Archive::new(flate2::read::GzDecoder::new(file)).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == artifact["binary"]["path"].as_str() {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            return data;
        }
    }
    panic!("{arch}'s archive holds no binary");
}

/// The sources as they are now (tracked files, committed or not) as one commit object, which
/// clones of this repository can fetch.
pub fn snapshot() -> String {
    let stash = run_ok("git", &["-C", root().as_str(), "stash", "create"]);
    let commit = if stash.trim().is_empty() {
        run_ok("git", &["-C", root().as_str(), "rev-parse", "HEAD"])
    } else {
        stash
    };
    commit.trim().to_string()
}

/// A clone of this repository at `snapshot` in `dir`: another checkout, at another path.
pub fn checkout_at(dir: &Utf8Path, snapshot: &str) {
    run_ok("git", &["clone", "--quiet", "--no-checkout", root().as_str(), dir.as_str()]);
    run_ok("git", &["-C", dir.as_str(), "fetch", "--quiet", root().as_str(), snapshot]);
    run_ok("git", &["-C", dir.as_str(), "checkout", "--quiet", "--detach", snapshot]);
}

/// A clone of this repository at HEAD in `dir`, with the working tree's tracked files as they
/// are now: another checkout that builds the same bytes as this one.
pub fn checkout_like_root(dir: &Utf8Path) {
    checkout_at(dir, run_ok("git", &["-C", root().as_str(), "rev-parse", "HEAD"]).trim());
    let now = snapshot();
    run_ok("git", &["-C", dir.as_str(), "fetch", "--quiet", root().as_str(), &now]);
    // read-tree, not `checkout -- .`: files the work tree removed or moved go too.
    run_ok("git", &["-C", dir.as_str(), "read-tree", "-u", "--reset", &now]);
}

pub fn manifest(dir: &Utf8Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("dist-manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The manifest entry of one arch.
pub fn artifact(dir: &Utf8Path, arch: &str) -> serde_json::Value {
    manifest(dir)["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["arch"] == arch)
        .unwrap_or_else(|| panic!("no {arch} artifact in {dir}"))
        .clone()
}

/// Runs a command and returns its output, failing the test if it cannot start.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}; the README's test command installs it"))
}

pub fn run_ok(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Fails loudly when there is no engine: these tests never skip.
pub fn require_docker() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let ok = Command::new("docker").args(["info"]).output().map(|o| o.status.success()).unwrap_or(false);
        assert!(ok, "no Docker engine answers `docker info`: run `sudo ci/setup-host.sh` (the README's test command does)");
        let ok = Command::new("docker").args(["buildx", "version"]).output().map(|o| o.status.success()).unwrap_or(false);
        assert!(ok, "docker buildx is missing: run `sudo ci/setup-host.sh`");
    });
}

/// The loopback registry that ci/setup-host.sh runs.
pub const REGISTRY: &str = "localhost:5000";

pub fn require_registry() {
    require_docker();
    let ok = std::net::TcpStream::connect_timeout(&"127.0.0.1:5000".parse().unwrap(), Duration::from_secs(2))
        .is_ok();
    assert!(ok, "no registry on 127.0.0.1:5000: run `sudo ci/setup-host.sh`");
}

/// A free port on loopback (bound and released; fine for tests that start a server at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// A static file server on 127.0.0.1 (Python's http.server), stopped when dropped.
pub struct HttpServer {
    pub port: u16,
    handle: duct::Handle,
}

/// Starts `server` (a test server of ours, told to listen on 127.0.0.1:`port`) and waits
/// until that port takes connections.
pub fn serve_on_loopback(what: &str, server: duct::Expression, port: u16) -> duct::Handle {
    let handle = server.start().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    wait_until(what, Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    handle
}

impl HttpServer {
    pub fn serve(dir: &Utf8Path) -> HttpServer {
        let port = free_port();
        let server = duct::cmd!(
            "python3",
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            dir.as_str(),
            port.to_string()
        )
        .stdout_null()
        .stderr_null();
        HttpServer { port, handle: serve_on_loopback("the HTTP server", server, port) }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.handle.kill();
    }
}

/// `GET path` on a local HTTP server; returns (status, body).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// Flips one byte of a file in place.
pub fn flip_byte(path: &Utf8Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

/// The digest the loopback registry serves for `path:tag` (asked directly, by curl).
pub fn pushed_digest(path: &str, tag: &str) -> String {
    digest_at(REGISTRY, path, tag).unwrap_or_else(|| panic!("{REGISTRY}/{path}:{tag} does not exist"))
}

/// The digest `host/path:tag` names, or None when there is no such tag.
pub fn digest_at(host: &str, path: &str, tag: &str) -> Option<String> {
    let url = format!("http://{host}/v2/{path}/manifests/{tag}");
    let accept =
        "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json";
    let headers = run_ok("curl", &["-sS", "-o", "/dev/null", "-D", "-", "-H", accept, &url]);
    if headers.lines().next().is_some_and(|status| status.contains(" 404")) {
        return None;
    }
    let digest = headers.lines().find_map(|l| {
        l.to_ascii_lowercase().strip_prefix("docker-content-digest:").map(|d| d.trim().to_string())
    });
    Some(digest.unwrap_or_else(|| panic!("no digest for {host}/{path}:{tag}:\n{headers}")))
}

/// The names in `dir`, sorted.
pub fn listing(dir: &Utf8Path) -> Vec<String> {
    let mut names: Vec<String> =
        dir.read_dir_utf8().unwrap().map(|e| e.unwrap().file_name().to_string()).collect();
    names.sort();
    names
}

pub fn copy_dir(from: &Utf8Path, to: &Utf8Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in from.read_dir_utf8().unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// exonode's package facts as `cargo metadata` reports them.
pub fn package_facts() -> serde_json::Value {
    static FACTS: OnceLock<serde_json::Value> = OnceLock::new();
    FACTS
        .get_or_init(|| {
            let manifest = root().join("Cargo.toml");
            let text = run_ok(
                "cargo",
                &["metadata", "--no-deps", "--format-version", "1", "--manifest-path", manifest.as_str()],
            );
            let metadata: serde_json::Value = serde_json::from_str(&text).unwrap();
            metadata["packages"].as_array().unwrap().iter().find(|p| p["name"] == "exonode").unwrap().clone()
        })
        .clone()
}

/// The description, source and licenses labels are the package's, whichever engine built it.
pub fn assert_project_labels(labels: &serde_json::Value) {
    let package = package_facts();
    assert!(package["description"].as_str().is_some_and(|d| !d.is_empty()));
    for (label, field) in [("description", "description"), ("source", "repository"), ("licenses", "license")]
    {
        assert_eq!(labels[format!("org.opencontainers.image.{label}")], package[field], "label {label}");
    }
}

/// A repository path on the loopback registry that no earlier run used: its storage persists
/// between runs on a reused host, so a push that silently did nothing must not find old data.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("e2e/{name}-{}-{nanos}", std::process::id())
}

/// How long a running container took to exit after `docker kill --signal SIGTERM`, measured
/// from just before the signal to the engine's own record of the exit (`State.FinishedAt`),
/// so the docker CLI's own latency is not counted. Asserts the exit code was 0.
pub fn sigterm_latency(container: &str) -> Duration {
    let sent = std::time::SystemTime::now();
    run_ok("docker", &["kill", "--signal", "SIGTERM", container]);
    wait_until("the container to exit", Duration::from_secs(30), || {
        run_ok("docker", &["inspect", "--format", "{{.State.Running}}", container]).trim() == "false"
    });
    let state =
        run_ok("docker", &["inspect", "--format", "{{.State.ExitCode}} {{.State.FinishedAt}}", container]);
    let (code, finished) = state.trim().split_once(' ').unwrap();
    assert_eq!(code, "0", "{container} did not exit cleanly on SIGTERM: {state}");
    let finished =
        humantime::parse_rfc3339(finished).unwrap_or_else(|e| panic!("FinishedAt {finished:?}: {e}"));
    finished.duration_since(sent).unwrap_or_default()
}

/// The README promises a stop within a second as PID 1. Best of three, with the container
/// started again in between, so one slow moment of a busy machine does not fail the test
/// while a daemon that is always slow (a polling loop, a missing handler) does.
/// Returns how many times the container was started again for it.
pub fn assert_stops_within_a_second_on_sigterm(container: &str) -> u64 {
    let mut seen = Vec::new();
    for attempt in 1..=3 {
        if attempt > 1 {
            run_ok("docker", &["start", container]);
            wait_until("the container to run", Duration::from_secs(30), || {
                run_ok("docker", &["inspect", "--format", "{{.State.Running}}", container]).trim() == "true"
            });
            std::thread::sleep(Duration::from_millis(500));
        }
        let latency = sigterm_latency(container);
        if latency < Duration::from_secs(1) {
            return attempt - 1;
        }
        seen.push(latency);
    }
    panic!("{container} took {seen:?} to stop on SIGTERM, three times over a second");
}

/// A PATH of one folder, `scratch(name)`, linking every program on this PATH that `left_out`
/// does not pick: the same tools, minus those.
pub fn path_without(name: &str, left_out: impl Fn(&str) -> bool) -> String {
    let bin = scratch(name);
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap()) {
        let Ok(entries) = dir.read_dir() else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let link = bin.as_std_path().join(&name);
            if !left_out(&name.to_string_lossy()) && !link.exists() {
                std::os::unix::fs::symlink(entry.path(), link).unwrap();
            }
        }
    }
    bin.to_string()
}

/// `cargo xtask ARGS` in another checkout, whose xtask is built into a target dir kept
/// between runs (the xtask under test reads the release.toml of the tree it was built in).
/// One at a time: checkouts share that target dir, so one's build must not replace the xtask
/// another is about to run.
pub fn xtask_in(checkout: &Utf8Path, args: &[&str]) -> String {
    let output = xtask_in_env(checkout, args, &[]);
    assert!(output.status.success(), "cargo xtask {} failed in {checkout}", args.join(" "));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `xtask_in` with extra environment, returning the output whatever the exit status.
pub fn xtask_in_env(checkout: &Utf8Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let output = Command::new("cargo")
        .arg("xtask")
        .args(args)
        .current_dir(checkout)
        .env("CARGO_TARGET_DIR", root().join("target/e2e-shared/checkout-target"))
        .env_remove("REGISTRY_USERNAME")
        .env_remove("REGISTRY_PASSWORD")
        .envs(env.iter().copied())
        .output()
        .expect("cannot run cargo");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprintln!("$ cargo xtask {} (in {checkout})\n{stdout}{stderr}", args.join(" "));
    output
}

/// Fails loudly, naming the fix, when a tool a test drives is not on PATH: tests never skip.
pub fn require_tools(tools: &[&str]) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} not on PATH: run ci/setup-host.sh (as root) to install them",
        missing.join(", ")
    );
}

/// The Rust target of `arch`, as the shared dist's manifest records it.
pub fn target_of(arch: &str) -> String {
    artifact(shared_dist(), arch)["target"].as_str().unwrap().to_string()
}

/// A copy of `dist` in `into` where the package `from` (a file of `dist`) takes the place of
/// `arch`'s package of `format` ("deb" or "rpm"), with the manifest's entry and SHA256SUMS
/// rewritten to agree: only the binary inside can give it away.
pub fn swap_package(dist: &Utf8Path, into: &Utf8Path, format: &str, from: &str, arch: &str) {
    copy_dir(dist, into);
    let name = artifact(dist, arch)[format]["name"].as_str().unwrap().to_string();
    std::fs::copy(into.join(from), into.join(&name)).unwrap();
    let bytes = std::fs::read(into.join(&name)).unwrap();
    let manifest_path = into.join("dist-manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for a in manifest["artifacts"].as_array_mut().unwrap().iter_mut().filter(|a| a["arch"] == arch) {
        a[format]["sha256"] = sha256_hex(&bytes).into();
        a[format]["size"] = (bytes.len() as u64).into();
    }
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    let sums: String = std::fs::read_to_string(into.join("SHA256SUMS"))
        .unwrap()
        .lines()
        .map(|line| {
            let file = line.split_once("  ").unwrap().1;
            format!("{}  {file}\n", sha256_hex(&std::fs::read(into.join(file)).unwrap()))
        })
        .collect();
    std::fs::write(into.join("SHA256SUMS"), sums).unwrap();
}

/// A `docker-registry serve` of our own on a free loopback port, stopped when dropped.
pub struct Registry {
    port: u16,
    handle: duct::Handle,
}

impl Registry {
    /// `extra` is YAML appended to the config (auth, maintenance mode...).
    pub fn start(storage: &Utf8Path, extra: &str) -> Registry {
        Registry::start_on(storage, extra, free_port())
    }

    /// On a given port: a registry started again where one was killed.
    pub fn start_on(storage: &Utf8Path, extra: &str, port: u16) -> Registry {
        let config = storage.with_extension(format!("{port}.yml"));
        std::fs::create_dir_all(storage).unwrap();
        let yaml = format!(
            "version: 0.1\nlog: {{level: error}}\nhttp: {{addr: 127.0.0.1:{port}}}\n\
             storage:\n  filesystem: {{rootdirectory: {storage}}}\n{extra}"
        );
        std::fs::write(&config, yaml).unwrap();
        let handle = duct::cmd!("docker-registry", "serve", config.as_str())
            .stdout_null()
            .stderr_null()
            .start()
            .expect("cannot start docker-registry (apt-get install docker-registry; ci/setup-host.sh does)");
        wait_until("a test registry", Duration::from_secs(20), || {
            http_get(&format!("127.0.0.1:{port}"), "/v2/").is_some()
        });
        Registry { port, handle }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.handle.kill();
    }
}

/// HTTP status of `GET /v2/<path>/manifests/<tag>` (with basic credentials when given).
pub fn manifest_status(host: &str, path: &str, tag: &str, user: Option<&str>) -> String {
    let url = format!("http://{host}/v2/{path}/manifests/{tag}");
    let accept =
        "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json";
    let mut args = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", accept];
    if let Some(user) = user {
        args.extend(["-u", user]);
    }
    args.push(&url);
    run_ok("curl", &args)
}
