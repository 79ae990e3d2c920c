//! Shared test fixtures: the real xtask binary, one six-arch dist built once per test run,
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

pub const ALL_ARCHES: [&str; 6] = ["amd64", "arm64v8", "arm32v7", "arm32v6", "arm32v5", "i386"];

/// Each arch with the platform registries and `docker run --platform` call it.
pub const PLATFORMS: [(&str, &str); 6] = [
    ("amd64", "linux/amd64"),
    ("arm64v8", "linux/arm64"),
    ("arm32v7", "linux/arm/v7"),
    ("arm32v6", "linux/arm/v6"),
    ("arm32v5", "linux/arm/v5"),
    ("i386", "linux/386"),
];

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

impl HttpServer {
    pub fn serve(dir: &Utf8Path) -> HttpServer {
        let port = free_port();
        let handle = duct::cmd!(
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
        .stderr_null()
        .start()
        .expect("cannot start python3 -m http.server");
        wait_until("the HTTP server", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        HttpServer { port, handle }
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

pub fn copy_dir(from: &Utf8Path, to: &Utf8Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in from.read_dir_utf8().unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
