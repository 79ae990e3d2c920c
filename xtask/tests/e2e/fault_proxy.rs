//! A fault-injecting HTTP proxy on 127.0.0.1, in front of a real server (the loopback
//! registry): each request is forwarded, one per connection, unless a fault says to answer it
//! with a status, drop the connection unanswered, or stall; it counts what it saw. The faults
//! are deterministic: the Nth request matching a method and a path fragment.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Action {
    /// Answer with this status (and `Retry-After` seconds, when given), empty body.
    Status(u16, Option<u64>),
    /// Close the connection without an answer, after reading the request.
    Drop,
    /// Read the request, then say nothing for this long before closing.
    Stall(Duration),
}

#[derive(Debug, Clone)]
pub struct Fault {
    /// The request's method, or `*` for any.
    pub method: &'static str,
    /// A fragment of the path; ending in `$`, the path's end.
    pub path_contains: &'static str,
    /// Which matching request (1 = the first) meets the fault.
    pub nth: usize,
    pub action: Action,
}

impl Fault {
    fn matches(&self, method: &str, path: &str) -> bool {
        let path_matches = match self.path_contains.strip_suffix('$') {
            Some(end) => path.ends_with(end),
            None => path.contains(self.path_contains),
        };
        (self.method == "*" || self.method == method) && path_matches
    }
}

#[derive(Default)]
struct Seen {
    /// Every request as `METHOD path`, in order.
    requests: Vec<String>,
    /// How many faults were injected.
    injected: usize,
    /// Per fault, how many requests matched it so far (kept as they come: counting the
    /// requests again for every one made the proxy itself the slow part of a benchmark).
    matched: Vec<usize>,
    /// Per connection, in the order they ended: its request, when it came (since the proxy
    /// started) and how long until the proxy was done with it.
    timings: Vec<(String, Duration, Duration)>,
}

pub struct FaultProxy {
    pub port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl FaultProxy {
    pub fn start(upstream: &str, faults: Vec<Fault>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let faults = Arc::new(faults);
        let upstream = upstream.to_string();
        let shared = seen.clone();
        let started = std::time::Instant::now();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (seen, faults, upstream) = (shared.clone(), faults.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let came = started.elapsed();
                    let request =
                        serve(client, &upstream, &faults, &seen).unwrap_or_else(|e| format!("({e})"));
                    seen.lock().unwrap().timings.push((request, came, started.elapsed() - came));
                });
            }
        });
        FaultProxy { port, seen }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requests seen so far, as `METHOD path`.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().requests.clone()
    }

    pub fn injected(&self) -> usize {
        self.seen.lock().unwrap().injected
    }

    /// Each connection's request, when it came and how long it took, slowest first.
    pub fn slowest(&self) -> Vec<(String, Duration, Duration)> {
        let mut timings = self.seen.lock().unwrap().timings.clone();
        timings.sort_by_key(|(_, _, took)| std::cmp::Reverse(*took));
        timings
    }
}

/// One request of one connection: read it, fault it or forward it, close.
/// Returns the request as `METHOD path` (and what was done with it).
fn serve(
    mut client: TcpStream,
    upstream: &str,
    faults: &[Fault],
    seen: &Mutex<Seen>,
) -> std::io::Result<String> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok("(no request)".into());
        }
        let end = line == "\r\n";
        head.push(line);
        if end {
            break;
        }
    }
    let request_line = head[0].trim_end().to_string();
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let length: usize = head
        .iter()
        .find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;

    let action = {
        let mut seen = seen.lock().unwrap();
        seen.requests.push(format!("{method} {path}"));
        seen.matched.resize(faults.len(), 0);
        let mut action = None;
        for (fault, matched) in faults.iter().zip(seen.matched.iter_mut()) {
            if fault.matches(&method, &path) {
                *matched += 1;
                if *matched == fault.nth && action.is_none() {
                    action = Some(fault.action.clone());
                }
            }
        }
        if action.is_some() {
            seen.injected += 1;
        }
        action
    };
    match action {
        Some(Action::Status(status, retry_after)) => {
            let extra = retry_after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default();
            let answer = format!(
                "HTTP/1.1 {status} Injected\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            client.write_all(answer.as_bytes())?;
            return Ok(format!("{method} {path} -> injected {status}"));
        }
        Some(Action::Drop) => return Ok(format!("{method} {path} -> dropped")),
        Some(Action::Stall(time)) => {
            std::thread::sleep(time);
            return Ok(format!("{method} {path} -> stalled"));
        }
        None => {}
    }

    let mut server = TcpStream::connect(upstream)?;
    for line in &head {
        let is_connection = line.split_once(':').is_some_and(|(n, _)| n.eq_ignore_ascii_case("connection"));
        if line == "\r\n" {
            server.write_all(b"Connection: close\r\n\r\n")?;
        } else if !is_connection {
            server.write_all(line.as_bytes())?;
        }
    }
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    // The client is told the connection closes, as it does.
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 2).unwrap_or(answer.len());
    let (answer_head, rest) = answer.split_at(split);
    let answer_head: String = String::from_utf8_lossy(answer_head)
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    client.write_all(answer_head.as_bytes())?;
    client.write_all(b"Connection: close\r\n")?;
    client.write_all(rest)?;
    Ok(format!("{method} {path}"))
}
