//! Registry credentials, found in one place. First found wins: REGISTRY_USERNAME +
//! REGISTRY_PASSWORD in the environment, then `auths` in the Docker config
//! ($DOCKER_CONFIG/config.json or ~/.docker/config.json, as `docker login` writes it).
//! Credential helpers (credsStore/credHelpers) are not run.

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use camino::Utf8PathBuf;

pub const ENV_USERNAME: &str = "REGISTRY_USERNAME";
pub const ENV_PASSWORD: &str = "REGISTRY_PASSWORD";

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// Where they came from, for messages.
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} from {}", self.username, self.source)
    }
}

/// Looks up credentials for the registry `host`, as a repository names it (`ghcr.io`,
/// `localhost:5000`, `docker.io`; see the module header for the order). It takes the host, not
/// registry.rs's `Target`, so that the client may depend on this module and not the reverse.
pub fn lookup(host: &str) -> Result<Option<Credentials>> {
    match (std::env::var(ENV_USERNAME).ok(), std::env::var(ENV_PASSWORD).ok()) {
        (Some(username), Some(password)) => {
            return Ok(Some(Credentials {
                username,
                password,
                source: format!("{ENV_USERNAME}/{ENV_PASSWORD}"),
            }))
        }
        (Some(_), None) | (None, Some(_)) => {
            bail!("set both {ENV_USERNAME} and {ENV_PASSWORD} (only one of them is set)")
        }
        (None, None) => {}
    }
    let Some(path) = docker_config_path() else { return Ok(None) };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot read {path}")),
    };
    let config: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{path} is not valid JSON"))?;
    credentials_from_docker_config(&config, host, path.as_str())
}

fn docker_config_path() -> Option<Utf8PathBuf> {
    // An empty DOCKER_CONFIG means the default, as for the docker CLI.
    let dir = match std::env::var("DOCKER_CONFIG") {
        Ok(dir) if !dir.is_empty() => Utf8PathBuf::from(dir),
        _ => Utf8PathBuf::from(std::env::var("HOME").ok()?).join(".docker"),
    };
    Some(dir.join("config.json"))
}

/// `auths` keys are written as `host`, `https://host` or `https://host/v1/` (Docker Hub).
fn credentials_from_docker_config(
    config: &serde_json::Value,
    host: &str,
    source: &str,
) -> Result<Option<Credentials>> {
    let Some(auths) = config["auths"].as_object() else { return Ok(None) };
    let wanted = |key: &str| {
        let bare = key.trim_start_matches("https://").trim_start_matches("http://");
        let bare = bare.split('/').next().unwrap_or("");
        bare == host || (host == "docker.io" && matches!(bare, "index.docker.io" | "registry-1.docker.io"))
    };
    let Some((_, entry)) = auths.iter().find(|(key, _)| wanted(key)) else { return Ok(None) };
    let source = format!("{source} (auths.{host})");
    if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .with_context(|| {
                format!("{source}: `auth` is not base64 of user:password; run `docker login {host}` again")
            })?;
        let (username, password) = decoded.split_once(':').with_context(|| {
            format!("{source}: `auth` does not hold user:password; run `docker login {host}` again")
        })?;
        return Ok(Some(Credentials { username: username.into(), password: password.into(), source }));
    }
    match (entry["username"].as_str(), entry["password"].as_str()) {
        (Some(username), Some(password)) => {
            Ok(Some(Credentials { username: username.into(), password: password.into(), source }))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_auths_decode() {
        let config = serde_json::json!({"auths": {
            "https://localhost:5001": {"auth": base64::engine::general_purpose::STANDARD.encode("me:s3:cret")},
            "https://index.docker.io/v1/": {"username": "hub", "password": "pw"},
            "broken.example": {"auth": "***"},
        }});
        let c = credentials_from_docker_config(&config, "localhost:5001", "cfg").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "s3:cret"));
        let c = credentials_from_docker_config(&config, "docker.io", "cfg").unwrap().unwrap();
        assert_eq!(c.username, "hub");
        assert!(credentials_from_docker_config(&config, "ghcr.io", "cfg").unwrap().is_none());
        let err = credentials_from_docker_config(&config, "broken.example", "cfg").unwrap_err().to_string();
        assert!(err.contains("docker login broken.example"), "{err}");
    }
}
