//! The one network layer: every request this xtask sends goes through here (today: the OCI
//! distribution API, for the oci engine's pushes, the buildx engine's read-back and the image
//! signatures). Callers say what they want (put a blob, put or get a manifest); this layer
//! owns how: the HTTP client and its timeouts, the auth handshake, credentials, and the text
//! of every network error. So retries, backoff and credential helpers belong here too.

pub mod credentials;
pub mod registry;

use std::time::Duration;

/// The HTTP client every request goes through. HTTP statuses are answers, not errors: the
/// caller knows what each one means for what it asked.
fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_per_call(Some(Duration::from_secs(600)))
        .user_agent(concat!("exotool-xtask/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
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
