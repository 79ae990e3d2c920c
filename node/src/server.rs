//! The HTTP API: `/healthz`, `/version` and `/status`, served until a stop signal arrives.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tiny_http::{Header, Method, Request, Response, Server};

use crate::build_info::{BUILD_INFO, VERSION};
use crate::log::Logger;
use crate::state::NodeState;

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
pub fn serve(listen: SocketAddr, node: Node, log: Logger) -> io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    let server = Server::http(listen)
        .map(Arc::new)
        .map_err(|e| io::Error::new(io::ErrorKind::AddrInUse, format!("cannot listen on {listen}: {e}")))?;
    log.info("listening", &[("addr", &listen), ("id", &node.state.id), ("starts", &node.state.starts)]);

    let stopper = Arc::clone(&server);
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let name = if signal == SIGTERM { "SIGTERM" } else { "SIGINT" };
            log.info("stopping", &[("signal", &name)]);
            stopper.unblock();
        }
    });

    for request in server.incoming_requests() {
        respond(request, &node, log);
    }
    log.info("stopped", &[]);
    Ok(())
}

fn respond(request: Request, node: &Node, log: Logger) {
    let (status, body) = match (request.method(), request.url()) {
        (Method::Get | Method::Head, "/healthz") => (200, "ok\n".to_string()),
        (Method::Get | Method::Head, "/version") => (200, json(&BUILD_INFO)),
        (Method::Get | Method::Head, "/status") => (
            200,
            json(&Status {
                id: &node.state.id,
                uptime_s: node.started.elapsed().as_secs(),
                starts: node.state.starts,
                version: VERSION,
            }),
        ),
        (Method::Get | Method::Head, _) => (404, "not found\n".to_string()),
        _ => (405, "method not allowed\n".to_string()),
    };
    let content_type = if body.starts_with('{') { "application/json" } else { "text/plain; charset=utf-8" };
    let header = Header::from_bytes("Content-Type", content_type).expect("static header is valid");
    let url = request.url().to_string();
    if let Err(err) =
        request.respond(Response::from_string(body).with_status_code(status).with_header(header))
    {
        log.error("response failed", &[("url", &url), ("error", &err)]);
    }
}

fn json(value: &impl Serialize) -> String {
    let mut body = serde_json::to_string(value).expect("API types serialize");
    body.push('\n');
    body
}
