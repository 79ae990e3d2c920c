//! The one network layer: every request this xtask sends goes through here (today: the OCI
//! distribution API, for the oci engine's pushes, the buildx engine's read-back and the image
//! signatures). Callers say what they want (put a blob, put or get a manifest); this layer
//! owns how: the HTTP client and its timeouts, the auth handshake, credentials, retries with backoff
//! (retry.rs), and the text of every network error.

pub mod credentials;
pub mod registry;
pub mod retry;

use std::time::Duration;

/// How long a request may wait with no byte moving (connect, send or receive) before it is
/// abandoned, and retried: a stalled registry costs about a minute, not the whole run.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const ENV_IDLE_TIMEOUT: &str = "XTASK_NET_IDLE_TIMEOUT";

/// The HTTP client every request goes through. HTTP statuses are answers, not errors: the
/// caller knows what each one means for what it asked. The timeouts are per read and per
/// write, not per call, so a large upload over a slow link runs while its bytes move.
fn http_agent() -> anyhow::Result<ureq::Agent> {
    let idle = match std::env::var(ENV_IDLE_TIMEOUT) {
        Ok(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .ok_or_else(|| anyhow::anyhow!("{ENV_IDLE_TIMEOUT}={raw:?} is not a number of seconds"))?,
        Err(_) => DEFAULT_IDLE_TIMEOUT,
    };
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10).min(idle)))
        .timeout_per_read(Some(idle))
        .timeout_per_write(Some(idle))
        .user_agent(concat!("exotool-xtask/", env!("CARGO_PKG_VERSION")))
        .build()
        .into())
}

/// A failed request in words, for the error that names the server.
fn describe(err: &ureq::Error) -> String {
    match err {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".into()
        }
        ureq::Error::HostNotFound => "host not found".into(),
        other => other.to_string(),
    }
}
