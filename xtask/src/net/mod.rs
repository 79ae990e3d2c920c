//! The one network layer: every request this xtask sends goes through here (today: the OCI
//! distribution API, for the oci engine's pushes, the buildx engine's read-back and the image
//! signatures). Callers say what they want (put a blob, put or get a manifest); this layer
//! owns how: the HTTP client and its timeouts, the auth handshake, credentials, retries with backoff
//! (retry.rs), and the text of every network error.

pub mod credentials;
pub mod registry;
pub mod retry;

use std::time::Duration;

use anyhow::{bail, Result};

use self::retry::{RetryPolicy, DEFAULT_ATTEMPTS, ENV_ATTEMPTS};
use crate::project::config::NetworkConfig;

/// How long a request may wait with no byte moving (connect, send or receive) before it is
/// abandoned, and retried: a stalled registry costs about a minute, not the whole run.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const ENV_IDLE_TIMEOUT: &str = "XTASK_NET_IDLE_TIMEOUT";

/// How requests outlast a failing network, resolved once per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetSettings {
    pub retry: RetryPolicy,
    pub idle_timeout: Duration,
}

impl NetSettings {
    /// Each setting from its flag, else its XTASK_NET_* variable, else release.toml's
    /// `[network]`, else the default.
    pub fn resolve(
        attempts: Option<u32>,
        idle_timeout: Option<u32>,
        config: &NetworkConfig,
    ) -> Result<NetSettings> {
        let attempts = match attempts {
            Some(n) => n,
            None => match env_number(ENV_ATTEMPTS, "a number of attempts (1 or more)")? {
                Some(n) => n,
                None => config.attempts.unwrap_or(DEFAULT_ATTEMPTS),
            },
        };
        let idle = match idle_timeout {
            Some(s) => s,
            None => match env_number(ENV_IDLE_TIMEOUT, "a number of seconds (1 or more)")? {
                Some(s) => s,
                None => config.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT.as_secs() as u32),
            },
        };
        Ok(NetSettings { retry: RetryPolicy { attempts }, idle_timeout: Duration::from_secs(idle.into()) })
    }

    /// As the plan prints it.
    pub fn summary(&self) -> String {
        format!(
            "{} attempts per request, {} s idle timeout",
            self.retry.attempts,
            self.idle_timeout.as_secs()
        )
    }
}

fn env_number(name: &str, what: &str) -> Result<Option<u32>> {
    match std::env::var(name) {
        Ok(raw) => match raw.parse::<u32>().ok().filter(|n| *n >= 1) {
            Some(n) => Ok(Some(n)),
            None => bail!("{name}={raw:?} is not {what}; unset it or give one"),
        },
        Err(_) => Ok(None),
    }
}

/// The HTTP client every request goes through. HTTP statuses are answers, not errors: the
/// caller knows what each one means for what it asked. The timeouts are per read and per
/// write, not per call, so a large upload over a slow link runs while its bytes move.
fn http_agent(idle: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10).min(idle)))
        .timeout_per_read(Some(idle))
        .timeout_per_write(Some(idle))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_come_before_release_toml_which_comes_before_the_defaults() {
        // An XTASK_NET_* variable would sit between the two.
        let set = [ENV_ATTEMPTS, ENV_IDLE_TIMEOUT].into_iter().find(|name| std::env::var_os(name).is_some());
        assert!(set.is_none(), "unset {set:?} to run this test");
        let file = NetworkConfig { attempts: Some(8), idle_timeout: Some(120) };
        let defaults = NetSettings::resolve(None, None, &NetworkConfig::default()).unwrap();
        assert_eq!(
            (defaults.retry.attempts, defaults.idle_timeout),
            (DEFAULT_ATTEMPTS, DEFAULT_IDLE_TIMEOUT)
        );
        let from_file = NetSettings::resolve(None, None, &file).unwrap();
        assert_eq!((from_file.retry.attempts, from_file.idle_timeout.as_secs()), (8, 120));
        let from_flags = NetSettings::resolve(Some(2), Some(5), &file).unwrap();
        assert_eq!((from_flags.retry.attempts, from_flags.idle_timeout.as_secs()), (2, 5));
        assert_eq!(from_flags.summary(), "2 attempts per request, 5 s idle timeout");
    }
}
