//! Registry credentials, found in one place. First found wins: REGISTRY_USERNAME +
//! REGISTRY_PASSWORD in the environment, then the Docker config ($DOCKER_CONFIG/config.json or
//! ~/.docker/config.json): its credential helper for the registry (`credHelpers`), its
//! credential store (`credsStore`), then its `auths`, as the docker CLI reads them. Helpers are
//! run by Docker's protocol: `docker-credential-NAME get`, the registry on stdin, JSON out.

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

/// The user name Docker gives an identity token (an OAuth2 refresh token, from `docker login`
/// to some registries or a helper): the secret is then the token, not a password.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

impl Credentials {
    /// The identity token, when that is what these credentials hold.
    pub fn identity_token(&self) -> Option<&str> {
        (self.username == IDENTITY_TOKEN_USER).then_some(self.password.as_str())
    }
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
    if let Some(helper) = helper_for(&config, host) {
        return run_helper(&helper, host, path.as_str());
    }
    credentials_from_docker_config(&config, host, path.as_str())
}

/// The helper the config names for `host`: `credHelpers.<host>`, else `credsStore`.
fn helper_for(config: &serde_json::Value, host: &str) -> Option<String> {
    let named = config["credHelpers"]
        .as_object()
        .and_then(|helpers| helpers.iter().find(|(key, _)| same_registry(key, host)))
        .and_then(|(_, name)| name.as_str());
    named.or_else(|| config["credsStore"].as_str()).filter(|name| !name.is_empty()).map(str::to_string)
}

/// What helper `name` holds for `host`: None when it holds nothing for it (Docker's "not
/// found" answer), an error naming the helper and its stderr when it fails otherwise.
fn run_helper(name: &str, host: &str, config_path: &str) -> Result<Option<Credentials>> {
    use std::io::Write;
    let program = format!("docker-credential-{name}");
    let source = format!("{program} (from {config_path})");
    let mut child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {source}: is it on PATH?"))?;
    let server = if host == "docker.io" { "https://index.docker.io/v1/" } else { host };
    // A helper may exit before reading its stdin (a locked keychain fails at once): the write
    // then meets a closed pipe, and what the helper said on exit is the error worth showing.
    let written = child.stdin.take().expect("piped").write_all(server.as_bytes());
    if let Err(error) = written {
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = child.kill();
            let _ = child.wait();
            bail!("cannot talk to {program}: {error}");
        }
    }
    let output = child.wait_with_output().with_context(|| format!("cannot run {program}"))?;
    let said = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() {
        if said.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        bail!(
            "{source} failed for {host} ({}): {}",
            output.status,
            if stderr.is_empty() { said } else { stderr }
        );
    }
    let answer: serde_json::Value =
        serde_json::from_str(&said).with_context(|| format!("{source} did not answer JSON for {host}"))?;
    let (Some(username), Some(secret)) = (answer["Username"].as_str(), answer["Secret"].as_str()) else {
        bail!("{source} answered for {host} without Username and Secret");
    };
    Ok(Some(Credentials { username: username.into(), password: secret.into(), source }))
}

/// Whether a config key (`host`, `https://host`, `https://index.docker.io/v1/`) names `host`.
fn same_registry(key: &str, host: &str) -> bool {
    let bare = key.trim_start_matches("https://").trim_start_matches("http://");
    let bare = bare.split('/').next().unwrap_or("");
    bare == host || (host == "docker.io" && matches!(bare, "index.docker.io" | "registry-1.docker.io"))
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
    let Some((_, entry)) = auths.iter().find(|(key, _)| same_registry(key, host)) else { return Ok(None) };
    let source = format!("{source} (auths.{host})");
    if let Some(token) = entry["identitytoken"].as_str().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials {
            username: IDENTITY_TOKEN_USER.into(),
            password: token.into(),
            source,
        }));
    }
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
    fn a_registry_s_own_helper_comes_before_the_store() {
        let config = serde_json::json!({"credsStore": "desktop", "credHelpers": {"ghcr.io": "gh"}});
        assert_eq!(helper_for(&config, "ghcr.io").as_deref(), Some("gh"));
        assert_eq!(helper_for(&config, "localhost:5000").as_deref(), Some("desktop"));
        assert_eq!(helper_for(&serde_json::json!({"auths": {}}), "ghcr.io"), None);
    }

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

    #[test]
    fn an_identity_token_comes_before_the_auth_beside_it() {
        let auth = base64::engine::general_purpose::STANDARD.encode("me:");
        let config = serde_json::json!({"auths": {"ghcr.io": {"auth": auth, "identitytoken": "refresh"}}});
        let c = credentials_from_docker_config(&config, "ghcr.io", "cfg").unwrap().unwrap();
        assert_eq!(c.identity_token(), Some("refresh"));
        let password = Credentials { username: "me".into(), password: "pw".into(), source: "env".into() };
        assert_eq!(password.identity_token(), None);
    }
}
