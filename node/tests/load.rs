//! The daemon's HTTP server under load and abuse: keep-alive semantics for HTTP/1.0 and 1.1,
//! ApacheBench runs, thousands of idle connections, the connection limit, timeouts and size
//! limits, all against the real binary on loopback.
//!
//! `EXONODE_BIN=path` runs them against another build, such as the static release binary;
//! `--nocapture` shows the figures measured.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The daemon's default idle timeout.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How late the daemon may notice a deadline (its sweep interval), plus scheduling slack.
const TIMEOUT_MARGIN: Duration = Duration::from_secs(2);
const IDLE_CONNECTIONS: usize = 2000;

fn exonode() -> PathBuf {
    std::env::var_os("EXONODE_BIN").map_or_else(|| env!("CARGO_BIN_EXE_exonode").into(), PathBuf::from)
}

/// Benchmarks and thousands of sockets run one at a time, so they do not skew each other.
fn heavy_test() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn free_addr() -> String {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("127.0.0.1:{port}")
}

/// A running daemon, killed when dropped; its stderr is collected for failure messages.
struct Daemon {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    fn start(name: &str, flags: &[&str]) -> Daemon {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("load-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        let addr = free_addr();
        let mut child = Command::new(exonode())
            .args(["run", "--data-dir", dir.to_str().unwrap(), "--listen", &addr])
            .args(flags)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let daemon = Daemon { child, addr, log };
        wait_until("the daemon serves", Duration::from_secs(10), || daemon.try_get("/healthz").is_ok());
        daemon
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
    }

    /// A new connection that has been answered once and stays open.
    fn served_connection(&self) -> TcpStream {
        let mut stream = self.connect();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut stream).status(), 200);
        stream
    }

    /// One HTTP/1.0 GET on a new connection: the status line.
    fn try_get(&self, path: &str) -> io::Result<String> {
        let mut stream = TcpStream::connect(&self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(stream, "GET {path} HTTP/1.0\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response.lines().next().unwrap_or_default().to_string())
    }

    fn proc_status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
        line[field.len()..].split_whitespace().next().unwrap().parse().unwrap()
    }

    fn threads(&self) -> u64 {
        self.proc_status("Threads:")
    }

    fn rss_kib(&self) -> u64 {
        self.proc_status("VmRSS:")
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).unwrap().count()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A response read by its Content-Length, so the connection can carry another one.
struct Response {
    head: String,
    body: String,
}

impl Response {
    fn status(&self) -> u16 {
        self.head.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

fn read_response(stream: &mut TcpStream) -> Response {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).unwrap();
        assert_eq!(n, 1, "connection closed inside a response head: {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut response = Response { head, body: String::new() };
    let length: usize = response.header("Content-Length").expect("Content-Length").parse().unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    response.body = String::from_utf8(body).unwrap();
    response
}

/// Asserts that the server has closed `stream`: nothing more to read, then end of stream.
fn assert_closed_by_server(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("the server closes the connection");
    assert!(rest.is_empty(), "unexpected bytes before close: {:?}", String::from_utf8_lossy(&rest));
}

#[test]
fn http10_keep_alive_is_announced_with_a_length_and_honoured() {
    let daemon = Daemon::start("http10-keep-alive", &[]);
    let mut stream = daemon.connect();
    for _ in 0..2 {
        stream.write_all(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
        let response = read_response(&mut stream);
        assert_eq!((response.status(), response.body.as_str()), (200, "ok\n"), "{}", response.head);
        assert_eq!(response.header("Connection"), Some("keep-alive"), "{}", response.head);
        assert_eq!(response.header("Content-Length"), Some("3"), "{}", response.head);
    }
    // The same connection, asked without keep-alive, is closed after the answer.
    stream.write_all(b"GET /status HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut stream).status(), 200);
    assert_closed_by_server(&mut stream);
}

#[test]
fn http10_without_keep_alive_is_closed_after_the_response() {
    let daemon = Daemon::start("http10-close", &[]);
    let mut stream = daemon.connect();
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let response = read_response(&mut stream);
    assert_eq!(response.status(), 200);
    assert_ne!(response.header("Connection"), Some("keep-alive"), "{}", response.head);
    assert_closed_by_server(&mut stream);
}

#[test]
fn http11_persists_and_pipelines_until_connection_close() {
    let daemon = Daemon::start("http11", &[]);
    let mut stream = daemon.connect();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let response = read_response(&mut stream);
    assert_eq!((response.status(), response.header("Connection")), (200, None), "{}", response.head);
    // Two requests in one write are answered in order on the same connection.
    stream
        .write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\nHEAD /status HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut stream).status(), 404);
    let mut head = [0u8; 512];
    let n = stream.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
        "HEAD has no body: {head}"
    );
    assert!(head.contains("Content-Type: application/json"), "{head}");

    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let response = read_response(&mut stream);
    assert_eq!((response.status(), response.header("Connection")), (200, Some("close")), "{}", response.head);
    assert_closed_by_server(&mut stream);
}

/// Runs ApacheBench, asserts it completed every request without failure, returns requests/s.
fn ab(args: &[&str], url: &str, requests: u64) -> f64 {
    let output = match Command::new("ab").args(args).args(["-s", "10", url]).output() {
        Ok(output) => output,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            panic!("ab (ApacheBench) is not on PATH; install it: apt-get install apache2-utils")
        }
        Err(err) => panic!("cannot run ab: {err}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report =
        format!("ab {args:?}: {}\n{stdout}{}", output.status, String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{report}");
    let field = |name: &str| -> Option<f64> {
        let line = stdout.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    assert_eq!(field("Complete requests:"), Some(requests as f64), "{report}");
    assert_eq!(field("Failed requests:"), Some(0.0), "{report}");
    assert_eq!(field("Non-2xx responses:"), None, "{report}");
    if args.contains(&"-k") {
        assert_eq!(field("Keep-Alive requests:"), Some(requests as f64), "{report}");
    }
    field("Requests per second:").expect("ab reports requests per second")
}

#[test]
fn apache_bench_completes_with_and_without_keep_alive() {
    let _heavy = heavy_test();
    let daemon = Daemon::start("ab", &[]);
    let url = format!("http://{}/healthz", daemon.addr);
    let keep_alive = ab(&["-k", "-c", "50", "-n", "20000"], &url, 20_000);
    let plain = ab(&["-c", "50", "-n", "5000"], &url, 5_000);
    println!("ab -k -c 50 -n 20000: {keep_alive:.0} requests/s; ab -c 50 -n 5000: {plain:.0} requests/s");
    assert!(daemon.threads() <= 2, "threads after ab: {}", daemon.threads());
}

/// Raises this process's open-file limit for the sockets a test holds; the daemon inherits it.
fn raise_open_file_limit(needed: libc::rlim_t) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write only the struct passed.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    assert!(
        limit.rlim_max >= needed,
        "this test holds {needed} sockets but the hard open-file limit is {}; raise it (ulimit -Hn)",
        limit.rlim_max
    );
    if limit.rlim_cur < needed {
        limit.rlim_cur = needed;
        // SAFETY: as above.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    }
}

/// GET /healthz on a new connection; how long until the whole answer was in.
fn timed_health_check(addr: &str) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let elapsed = started.elapsed();
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    elapsed
}

#[test]
fn thousands_of_idle_connections_cost_no_threads_and_are_closed_when_idle() {
    let _heavy = heavy_test();
    raise_open_file_limit(IDLE_CONNECTIONS as libc::rlim_t + 512);
    let daemon = Daemon::start("idle", &[]);
    let (threads_before, rss_before) = (daemon.threads(), daemon.rss_kib());

    let mut idle: Vec<TcpStream> = (0..IDLE_CONNECTIONS).map(|_| daemon.connect()).collect();
    wait_until("the daemon holds every connection", Duration::from_secs(10), || {
        daemon.open_fds() >= IDLE_CONNECTIONS
    });
    let all_accepted = Instant::now();
    let (threads, rss) = (daemon.threads(), daemon.rss_kib());
    let latencies: Vec<Duration> = (0..20).map(|_| timed_health_check(&daemon.addr)).collect();
    let slowest = *latencies.iter().max().unwrap();
    assert!(daemon.open_fds() >= IDLE_CONNECTIONS, "idle connections were closed before the idle timeout");
    println!(
        "{IDLE_CONNECTIONS} idle connections: threads {threads_before} -> {threads}, \
         RSS {rss_before} -> {rss} KiB, /healthz slowest of {} {slowest:?}, all {latencies:?}",
        latencies.len()
    );
    assert!(slowest < Duration::from_millis(100), "GET /healthz took {slowest:?} with idle connections open");
    assert!(threads_before <= 2 && threads == threads_before, "threads: {threads_before} -> {threads}");
    // A few KiB per connection at most; a thread each would cost far more.
    assert!(rss < rss_before + 8 * 1024 && rss < 32 * 1024, "RSS {rss_before} -> {rss} KiB");

    std::thread::sleep(
        (all_accepted + IDLE_TIMEOUT + TIMEOUT_MARGIN).saturating_duration_since(Instant::now()),
    );
    for stream in &mut idle {
        stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        assert_closed_by_server(stream);
    }
    assert!(timed_health_check(&daemon.addr) < Duration::from_secs(5));
    assert!(daemon.open_fds() < 64, "{} descriptors still open", daemon.open_fds());
}

#[test]
fn connections_beyond_the_limit_get_503_and_are_closed() {
    let daemon = Daemon::start("limit", &["--max-connections", "8", "--idle-timeout", "60s"]);
    let mut held: Vec<TcpStream> = (0..8).map(|_| daemon.served_connection()).collect();
    let threads = daemon.threads();
    for _ in 0..3 {
        let mut refused = daemon.connect();
        let mut response = String::new();
        refused.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{response}");
        assert!(response.contains("Connection: close\r\n"), "{response}");
    }
    assert_eq!(daemon.threads(), threads);
    // The daemon logs before it refuses, but its stderr reaches the test through a reader
    // thread, which a loaded machine may not have run yet.
    wait_until("the limit is logged", Duration::from_secs(5), || {
        daemon.log().contains("connection limit reached")
    });

    // A freed slot serves again.
    held.pop();
    wait_until("a freed slot serves", Duration::from_secs(5), || {
        daemon.try_get("/healthz").is_ok_and(|status| status.contains(" 200 "))
    });
    drop(held);
}

#[test]
fn an_oversized_request_head_gets_431_and_is_closed() {
    let daemon = Daemon::start("head-limit", &[]);
    let mut stream = daemon.connect();
    let padding = "X-Padding: ".to_string() + &"a".repeat(1000) + "\r\n";
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n", padding.repeat(16)).unwrap();
    let response = read_response(&mut stream);
    assert_eq!((response.status(), response.header("Connection")), (431, Some("close")), "{}", response.head);
    assert_closed_by_server(&mut stream);

    // A 7 KiB head is within the limit.
    let mut stream = daemon.connect();
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n", padding.repeat(7)).unwrap();
    assert_eq!(read_response(&mut stream).status(), 200);
}

#[test]
fn request_bodies_over_the_limit_get_413_and_small_ones_are_skipped() {
    let daemon = Daemon::start("body-limit", &[]);
    let mut stream = daemon.connect();
    stream.write_all(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello").unwrap();
    let response = read_response(&mut stream);
    assert_eq!((response.status(), response.header("Allow")), (405, Some("GET, HEAD")), "{}", response.head);
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut stream).status(), 200, "the body was skipped, not read as a request");

    let mut stream = daemon.connect();
    stream.write_all(b"POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n").unwrap();
    stream.write_all(&[b'x'; 64 * 1024]).unwrap();
    let response = read_response(&mut stream);
    assert_eq!((response.status(), response.header("Connection")), (413, Some("close")), "{}", response.head);
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed_by_server(&mut stream);
}

#[test]
fn a_request_that_never_completes_is_closed_after_the_header_timeout() {
    // A long idle timeout shows which clock closed it.
    let daemon = Daemon::start("header-timeout", &["--header-timeout", "1s", "--idle-timeout", "60s"]);
    let mut stream = daemon.connect();
    let started = Instant::now();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    // Trickling bytes must not extend the deadline.
    let mut trickle = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        while trickle.write_all(b"X-Slow: 1\r\n").is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let elapsed = started.elapsed();
    assert!(response.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{response}");
    assert!(elapsed >= Duration::from_secs(1), "closed after {elapsed:?}, before the header timeout");
    assert!(
        elapsed < Duration::from_secs(30),
        "closed after {elapsed:?}: the idle clock, not the header clock"
    );
}

#[test]
fn a_burst_of_pipelined_requests_is_answered_in_order() {
    let daemon = Daemon::start("pipeline", &[]);
    let mut stream = daemon.connect();
    const REQUESTS: usize = 2000;
    let mut writer = stream.try_clone().unwrap();
    // Written from another thread: the daemon stops reading while its answers are not read.
    let sender = std::thread::spawn(move || {
        let burst = "GET /status HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n".repeat(REQUESTS / 2);
        writer.write_all(burst.as_bytes()).unwrap();
    });
    for n in 0..REQUESTS {
        let response = read_response(&mut stream);
        let expected = if n % 2 == 0 { "application/json" } else { "text/plain; charset=utf-8" };
        assert_eq!((response.status(), response.header("Content-Type")), (200, Some(expected)), "#{n}");
    }
    sender.join().unwrap();
}

#[test]
fn the_header_clock_restarts_with_each_request() {
    let daemon = Daemon::start("header-clock", &["--header-timeout", "1s", "--idle-timeout", "60s"]);
    let mut stream = daemon.connect();
    let (start, end) = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".split_at(10);
    stream.write_all(start.as_bytes()).unwrap();
    // Three header timeouts long, with always a request under way, each complete in 100 ms.
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(100));
        stream.write_all(format!("{end}{start}").as_bytes()).unwrap();
        assert_eq!(read_response(&mut stream).status(), 200);
    }
}

#[test]
fn a_client_that_does_not_read_its_answers_is_dropped_after_the_idle_timeout() {
    let daemon = Daemon::start("slow-reader", &["--idle-timeout", "1s"]);
    let mut stream = daemon.connect();
    let mut writer = stream.try_clone().unwrap();
    // Requests until the daemon's answers fill both send buffers and it stops reading.
    std::thread::spawn(move || {
        let burst = "GET /status HTTP/1.1\r\n\r\n".repeat(1000);
        while writer.write_all(burst.as_bytes()).is_ok() {}
    });
    std::thread::sleep(Duration::from_secs(1) + TIMEOUT_MARGIN);
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut chunk = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Reading lets a daemon without a write timeout go on answering forever.
        assert!(Instant::now() < deadline, "the connection is still served after the idle timeout");
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => break,
            Err(err) => panic!("the connection is still open after the idle timeout: {err}"),
        }
    }
    assert_eq!(daemon.try_get("/healthz").unwrap(), "HTTP/1.0 200 OK");
}
