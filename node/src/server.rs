//! The HTTP API: `/healthz`, `/version` and `/status`, served until a stop signal arrives.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use serde::Serialize;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::build_info::{BUILD_INFO, VERSION};
use crate::http::{Request, Response};
use crate::http_server::{self, Limits, StopSignal};
use crate::log::Logger;
use crate::state::NodeState;

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

#[derive(Serialize)]
struct Status<'a> {
    id: &'a str,
    uptime_s: u64,
    starts: u64,
    version: &'a str,
}

pub struct Node {
    pub state: NodeState,
    pub started: Instant,
}

/// Serves until SIGTERM or SIGINT. The handlers are installed before the socket is opened:
/// as PID 1 in a container the kernel drops signals that have no handler.
pub fn serve(listen: SocketAddr, node: Node, limits: Limits, log: Logger) -> io::Result<()> {
    let signals = stop_signals()?;
    let listener = http_server::bind(listen)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
    let limits = http_server::fit_to_open_file_limit(limits, log);
    log.info(
        "listening",
        &[
            ("addr", &listen),
            ("id", &node.state.id),
            ("starts", &node.state.starts),
            ("max_connections", &limits.max_connections),
            ("idle_timeout", &humantime::format_duration(limits.idle_timeout)),
            ("header_timeout", &humantime::format_duration(limits.header_timeout)),
        ],
    );
    http_server::run(listener, signals, limits, |request| respond(request, &node), log)?;
    log.info("stopped", &[]);
    Ok(())
}

/// One self-pipe per signal, so the event loop wakes on it and knows which one it was.
fn stop_signals() -> io::Result<Vec<StopSignal>> {
    [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")]
        .into_iter()
        .map(|(signal, name)| {
            let (read, write) = std::os::unix::net::UnixStream::pair()?;
            read.set_nonblocking(true)?;
            signal_hook::low_level::pipe::register(signal, write)?;
            Ok(StopSignal { pipe: mio::net::UnixStream::from_std(read), name })
        })
        .collect()
}

fn respond(request: &Request, node: &Node) -> Response {
    if !matches!(request.method, "GET" | "HEAD") {
        let mut response = Response::new(405, TEXT, "method not allowed\n".into());
        response.allow = Some("GET, HEAD");
        return response;
    }
    match request.path() {
        "/healthz" => Response::new(200, TEXT, "ok\n".into()),
        "/version" => Response::new(200, JSON, json(&BUILD_INFO)),
        "/status" => Response::new(
            200,
            JSON,
            json(&Status {
                id: &node.state.id,
                uptime_s: node.started.elapsed().as_secs(),
                starts: node.state.starts,
                version: VERSION,
            }),
        ),
        _ => Response::new(404, TEXT, "not found\n".into()),
    }
}

fn json(value: &impl Serialize) -> String {
    let mut body = serde_json::to_string(value).expect("API types serialize");
    body.push('\n');
    body
}
