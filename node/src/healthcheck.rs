//! `exonode healthcheck`: a dependency-free probe for container HEALTHCHECKs (images have no curl).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

pub fn check(addr: SocketAddr) -> Result<(), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET /healthz HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("cannot send request to {addr}: {e}"))?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < head.len() {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(format!("no answer from {addr}: {e}")),
        }
    }
    let status_line = String::from_utf8_lossy(&head[..len]);
    let status_line = status_line.lines().next().unwrap_or("");
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        Some(code) => Err(format!("http://{addr}/healthz answered {code}")),
        None => Err(format!("http://{addr}/healthz gave no HTTP status line")),
    }
}
