//! The exonode daemon as a process: its HTTP API, its state across restarts, its signals and
//! its errors, exercised on loopback.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const EXONODE: &str = env!("CARGO_BIN_EXE_exonode");

fn data_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("daemon-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn free_addr() -> String {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("127.0.0.1:{port}")
}

fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, response.split_once("\r\n\r\n")?.1.to_string()))
}

struct Daemon {
    child: Child,
    addr: String,
}

impl Daemon {
    fn start(dir: &Path, extra: &[&str]) -> Daemon {
        let addr = free_addr();
        let mut command = Command::new(EXONODE);
        command.args(extra).args(["run", "--data-dir", dir.to_str().unwrap(), "--listen", &addr]);
        Daemon::serving(command, addr)
    }

    /// Starts `command` and waits until it answers on `addr`.
    fn serving(mut command: Command, addr: String) -> Daemon {
        let child = command.stderr(Stdio::piped()).spawn().unwrap();
        let daemon = Daemon { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(&daemon.addr, "/healthz").is_none() {
            assert!(Instant::now() < deadline, "exonode did not start serving on {}", daemon.addr);
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    fn status(&self) -> serde_json::Value {
        let (code, body) = get(&self.addr, "/status").unwrap();
        assert_eq!(code, 200);
        serde_json::from_str(&body).unwrap()
    }

    /// Sends a signal and returns how long the daemon took to exit, and its output.
    fn stop(mut self, signal: i32) -> (Duration, Output) {
        let started = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
        let deadline = started + Duration::from_secs(5);
        loop {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "exonode ignored signal {signal}");
            std::thread::sleep(Duration::from_millis(10));
        }
        let elapsed = started.elapsed();
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let status = self.child.wait().unwrap();
        (elapsed, Output { status, stdout: vec![], stderr: stderr.into_bytes() })
    }
}

const SIGINT: i32 = libc::SIGINT;
const SIGTERM: i32 = libc::SIGTERM;

#[test]
fn serves_health_version_and_status() {
    let dir = data_dir("api");
    let daemon = Daemon::start(&dir, &[]);
    assert_eq!(get(&daemon.addr, "/healthz").unwrap(), (200, "ok\n".to_string()));
    let (code, body) = get(&daemon.addr, "/version").unwrap();
    assert_eq!(code, 200);
    let version: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(version["name"], "exonode");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    let status = daemon.status();
    assert_eq!(status["id"].as_str().unwrap().len(), 64);
    assert_eq!(status["starts"], 1);
    assert!(status["uptime_s"].is_u64());
    assert_eq!(get(&daemon.addr, "/nope").unwrap().0, 404);
    daemon.stop(SIGTERM);
}

#[test]
fn identity_survives_restarts_and_starts_are_counted() {
    let dir = data_dir("restart");
    let first = Daemon::start(&dir, &[]);
    let id = first.status()["id"].clone();
    first.stop(SIGTERM);
    let second = Daemon::start(&dir, &[]);
    assert_eq!(second.status()["id"], id);
    assert_eq!(second.status()["starts"], 2);
    second.stop(SIGINT);
}

#[test]
fn sigterm_and_sigint_stop_it_cleanly_within_a_second() {
    for signal in [SIGTERM, SIGINT] {
        // Best of three: one slow moment of a busy machine must not fail the test, a daemon
        // that is always slow (a poll interval, a missed signal) must.
        let mut seen = Vec::new();
        for attempt in 0..3 {
            let daemon = Daemon::start(&data_dir(&format!("signal-{signal}-{attempt}")), &[]);
            let (elapsed, output) = daemon.stop(signal);
            assert!(
                output.status.success(),
                "exit after signal {signal}: {:?} {:?}",
                output.status,
                output.status.signal()
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            let name = if signal == SIGTERM { "signal=SIGTERM" } else { "signal=SIGINT" };
            assert!(
                stderr.contains("stopping") && stderr.contains(name) && stderr.contains("stopped"),
                "{stderr}"
            );
            seen.push(elapsed);
            if elapsed < Duration::from_secs(1) {
                break;
            }
        }
        assert!(seen.iter().any(|e| *e < Duration::from_secs(1)), "took {seen:?} to stop on signal {signal}");
    }
}

#[test]
fn environment_variables_configure_it_and_flags_win() {
    let dir = data_dir("env");
    let addr = free_addr();
    let mut command = Command::new(EXONODE);
    command
        .arg("run")
        .env("EXONODE_DATA_DIR", &dir)
        .env("EXONODE_LISTEN", &addr)
        .env("EXONODE_LOG_FORMAT", "json");
    let daemon = Daemon::serving(command, addr);
    assert!(dir.join("node.json").is_file(), "the state went to EXONODE_DATA_DIR");
    let (_, output) = daemon.stop(SIGTERM);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(event["msg"].is_string(), "{line}");
    }

    // A flag beats its variable: --listen wins over EXONODE_LISTEN.
    let flag_dir = data_dir("env-flag");
    let flag_addr = free_addr();
    let mut command = Command::new(EXONODE);
    command
        .args(["run", "--listen", &flag_addr, "--data-dir", flag_dir.to_str().unwrap()])
        .env("EXONODE_LISTEN", "127.0.0.1:1")
        .env("EXONODE_DATA_DIR", &dir);
    let daemon = Daemon::serving(command, flag_addr);
    assert!(flag_dir.join("node.json").is_file(), "--data-dir lost to EXONODE_DATA_DIR");
    daemon.stop(SIGTERM);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let daemon = Daemon::start(&data_dir("json"), &["--log-format", "json"]);
    let (_, output) = daemon.stop(SIGTERM);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.lines().count() >= 3, "{stderr}");
    for line in stderr.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(event["ts"].is_string() && event["level"].is_string() && event["msg"].is_string());
    }
}

#[test]
fn healthcheck_exit_code_follows_the_node() {
    let daemon = Daemon::start(&data_dir("healthcheck"), &[]);
    let ok = Command::new(EXONODE).args(["healthcheck", "--addr", &daemon.addr]).status().unwrap();
    assert!(ok.success());
    let addr = daemon.addr.clone();
    daemon.stop(SIGTERM);
    let output = Command::new(EXONODE).args(["healthcheck", "--addr", &addr]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot connect"));
}

#[test]
fn corrupt_state_is_an_error_naming_the_file_not_a_reset() {
    let dir = data_dir("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("node.json"), "{\"id\": \"trunc").unwrap();
    let output = Command::new(EXONODE)
        .args(["run", "--data-dir", dir.to_str().unwrap(), "--listen", &free_addr()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{}/node.json is damaged", dir.display())), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.join("node.json")).unwrap(), "{\"id\": \"trunc");
}

#[test]
fn an_unwritable_data_dir_names_the_dir_the_user_and_the_fix() {
    let dir = data_dir("readonly");
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(EXONODE);
    command.args(["run", "--data-dir", dir.to_str().unwrap(), "--listen", &free_addr()]);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Root writes anywhere; run as nobody against a root-owned 0755 folder instead.
        command.uid(65534).gid(65534);
    } else {
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    }
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("cannot write to data directory {}", dir.display())), "{stderr}");
    assert!(stderr.contains("running as uid"), "{stderr}");
    assert!(stderr.contains("--user") && stderr.contains("chown"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one message: {stderr}");
}

#[test]
fn version_is_one_line_with_target_commit_and_date() {
    let output = Command::new(EXONODE).arg("--version").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.starts_with(&format!("exonode {} (", env!("CARGO_PKG_VERSION"))), "{stdout}");
    assert!(stdout.contains("; commit ") && stdout.contains("; built "), "{stdout}");
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let output = Command::new(EXONODE).args(["run", "--listen", "nowhere"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--listen"));
    let output = Command::new(EXONODE).arg("--help").output().unwrap();
    assert!(output.status.success() && String::from_utf8_lossy(&output.stdout).contains("healthcheck"));
}
