//! A small blocking client for the OCI distribution API: the /v2/ ping, Basic and Bearer
//! (WWW-Authenticate challenge) auth, blob existence checks, monolithic and chunked blob
//! uploads, and manifest PUT/GET. Written by hand on ureq because the maintained Rust client,
//! oci-client, is async (tokio + reqwest + hyper) and would make `cargo xtask` much slower to
//! build (see the numbers in engines/oci/mod.rs); the protocol subset we need is small.
//!
//! Callers say what they want (`upload_blob`, `put_manifest`, `get_manifest`); the client
//! decides how (auth handshake, chunking, what an answer means). Credentials come from
//! credentials.rs.

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use ureq::http::{self, Request, Response};
use ureq::Body;

use super::credentials::{Credentials, ENV_PASSWORD, ENV_USERNAME};
use super::retry::{self, RetryPolicy};
use super::NetSettings;
use crate::util::report::human_size;

/// Why an attempt failed in a way another attempt may not.
struct Transient {
    reason: String,
    /// What the server asked for in `Retry-After`.
    retry_after: Option<std::time::Duration>,
}

/// Blobs larger than this go up in chunks (PATCH) of this size; smaller ones in one PUT.
/// Tests set it low to exercise the chunked path against a real registry.
/// The OAuth2 client this is, to token services (Docker sends "docker").
const CLIENT_ID: &str = "exotool-xtask";
pub const ENV_CHUNK_SIZE: &str = "XTASK_OCI_CHUNK_SIZE";
const DEFAULT_CHUNK_SIZE: usize = 8 << 20;
/// The manifest types of the distribution API: what a GET accepts (OCI's are what the oci
/// engine and the signatures write).
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Content-addressed bytes a registry stores: a blob, or a manifest (its media type is sent
/// as the Content-Type).
pub trait Content {
    fn media_type(&self) -> &str;
    /// `sha256:<hex>` of `bytes`.
    fn digest(&self) -> &str;
    fn bytes(&self) -> &[u8];
}

/// Where a repository lives and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The registry as named in the repository (`localhost:5000`, `ghcr.io`, `docker.io`).
    pub host: String,
    /// `scheme://host` of the API (Docker Hub's is registry-1.docker.io).
    pub base: String,
    /// The repository path inside the registry (`org/name`; `library/name` on Docker Hub).
    pub path: String,
}

impl Target {
    /// `path:tag`, or `path@sha256:...` for a digest, as people write references.
    pub fn named(&self, reference: &str) -> String {
        let separator = if reference.starts_with("sha256:") { '@' } else { ':' };
        format!("{}{separator}{reference}", self.path)
    }

    pub fn parse(repository: &str) -> Target {
        let (host, path) = match repository.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ if !repository.contains('/') => ("docker.io".to_string(), format!("library/{repository}")),
            _ => ("docker.io".to_string(), repository.to_string()),
        };
        let api_host = if host == "docker.io" { "registry-1.docker.io".to_string() } else { host.clone() };
        let scheme = if is_loopback(&host) { "http" } else { "https" };
        Target { base: format!("{scheme}://{api_host}"), host, path }
    }

    pub fn plain_http(&self) -> bool {
        self.base.starts_with("http://")
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.path)
    }
}

/// Plain HTTP only for registries on this machine, as Docker allows; HTTPS everywhere else.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    // Parsed, not matched by prefix: `127.0.0.1.example.org` is a name on the internet.
    name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether credentials may go to the token service at `realm`: over HTTPS, or plain HTTP on
/// this machine; a password is never sent in clear to another host.
fn realm_is_safe(realm: &str) -> bool {
    if realm.starts_with("https://") {
        return true;
    }
    let Some(rest) = realm.strip_prefix("http://") else { return false };
    is_loopback(rest.split('/').next().unwrap_or(""))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String> },
}

/// Parses `WWW-Authenticate: Bearer realm="...",service="...",scope="..."` or `Basic realm=...`.
fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = auth_params(rest);
    let get = |key: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.clone());
    Some(Challenge::Bearer { realm: get("realm")?, service: get("service") })
}

/// `key="value, with commas",key2=token` → pairs.
fn auth_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (quoted[..end].to_string(), quoted.get(end + 1..).unwrap_or(""))
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            }
        };
        out.push((key, value));
        rest = tail.trim_start().trim_start_matches(',');
    }
    out
}

/// A connection to one repository, authenticated for pull and push. Clones share the
/// connection pool, so worker threads can each hold one.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    pub target: Target,
    credentials: Option<Credentials>,
    challenge: Option<Challenge>,
    authorization: Option<String>,
    chunk_size: usize,
    retry: RetryPolicy,
}

pub struct PutOutcome {
    /// The registry took the manifest's `subject` (OCI-Subject header): it serves the
    /// referrers API, and no fallback tag is needed.
    pub subject_indexed: bool,
}

impl Client {
    /// Pings /v2/ and authenticates; fails with what to fix when the registry cannot be
    /// reached or refuses the credentials, before anything is uploaded.
    pub fn connect(
        target: Target,
        credentials: Option<Credentials>,
        network: &NetSettings,
    ) -> Result<Client> {
        let chunk_size = match std::env::var(ENV_CHUNK_SIZE) {
            Ok(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("{ENV_CHUNK_SIZE}={raw:?} is not a positive number of bytes"))?,
            Err(_) => DEFAULT_CHUNK_SIZE,
        };
        let mut client = Client {
            agent: super::http_agent(network.idle_timeout),
            target,
            credentials,
            challenge: None,
            authorization: None,
            chunk_size,
            retry: network.retry,
        };
        client.login()?;
        Ok(client)
    }

    /// GET /v2/, retried on transient answers; a refused connection fails at once (nothing
    /// listens there: the registry is down or misnamed).
    fn ping(&self) -> Result<Response<Body>> {
        let url = format!("{}/v2/", self.target.base);
        let mut attempt = 1;
        loop {
            let mut request = Request::get(&url);
            if let Some(value) = &self.authorization {
                request = request.header("Authorization", value);
            }
            let request = request.body(()).expect("valid request");
            let transient = match self.agent.run(request) {
                Ok(mut response) if retry::is_transient_status(response.status().as_u16()) => {
                    let retry_after = header(&response, "retry-after")
                        .and_then(|value| retry::parse_retry_after(&value, std::time::SystemTime::now()));
                    let reason = format!("GET /v2/: HTTP {}", response.status().as_u16());
                    let _ = body_text(&mut response);
                    Transient { reason, retry_after }
                }
                Ok(response) => return Ok(response),
                Err(ureq::Error::Io(io)) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(self.unreachable(ureq::Error::Io(io)))
                }
                Err(err) if retry::is_transient_error(&err) => {
                    Transient { reason: format!("GET /v2/: {}", super::describe(&err)), retry_after: None }
                }
                Err(err) => return Err(self.unreachable(err)),
            };
            if attempt >= self.retry.attempts {
                return Err(self.gave_up(&transient));
            }
            attempt += 1;
            self.pause(&transient, attempt);
        }
    }

    fn unreachable(&self, err: ureq::Error) -> anyhow::Error {
        let plain =
            if self.target.plain_http() { " (plain HTTP, as for every loopback registry)" } else { "" };
        anyhow!(
            "cannot reach the registry at {}{plain}: {}; is it running, and is the registry in --image right?",
            self.target.base,
            super::describe(&err)
        )
    }

    fn login(&mut self) -> Result<()> {
        let response = self.ping()?;
        match response.status().as_u16() {
            200 => return Ok(()),
            401 => {}
            status => bail!(
                "{}/v2/ answered HTTP {status}: this does not look like an OCI registry",
                self.target.base
            ),
        }
        let header = header(&response, "www-authenticate").unwrap_or_default();
        let challenge = parse_challenge(&header).with_context(|| {
            format!("{} asks for authentication this client does not speak: {header:?}", self.target.base)
        })?;
        self.challenge = Some(challenge);
        self.authenticate()?;
        // A Basic registry checks credentials on every request: ask once more to know now.
        if matches!(self.challenge, Some(Challenge::Basic)) && self.ping()?.status().as_u16() == 401 {
            bail!("{}", self.refused());
        }
        Ok(())
    }

    fn needs_login(&self) -> String {
        format!(
            "the registry {} needs credentials: run `docker login {}` or set {ENV_USERNAME} and {ENV_PASSWORD}",
            self.target.base, self.target.host
        )
    }

    fn refused(&self) -> String {
        match &self.credentials {
            Some(c) if c.identity_token().is_some() => format!(
                "the registry {} refused the identity token from {}: it may have expired; `docker login {}` again",
                self.target.base, c.source, self.target.host
            ),
            Some(c) => format!(
                "the registry {} refused the credentials of {:?} from {}: check them (or `docker login {}` again)",
                self.target.base, c.username, c.source, self.target.host
            ),
            None => self.needs_login(),
        }
    }

    fn basic(&self) -> Option<String> {
        let c = self.credentials.as_ref()?;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
        Some(format!("Basic {token}"))
    }

    fn authenticate(&mut self) -> Result<()> {
        match self.challenge.clone() {
            None => Ok(()),
            Some(Challenge::Basic) => {
                if let Some(c) = self.credentials.as_ref().filter(|c| c.identity_token().is_some()) {
                    bail!(
                        "{} holds an identity token, which only a token service (Bearer auth) takes, but \
                         the registry {} asks for Basic auth: log in with a user and password instead",
                        c.source,
                        self.target.base
                    );
                }
                self.authorization = Some(self.basic().with_context(|| self.needs_login())?);
                Ok(())
            }
            Some(Challenge::Bearer { realm, service }) => {
                if !realm_is_safe(&realm) {
                    bail!(
                        "the registry {} sends its token service as {realm}: not HTTPS, and not on this \
                         machine, so no credentials are sent there; is the registry misconfigured?",
                        self.target.base
                    );
                }
                let scope = format!("repository:{}:pull,push", self.target.path);
                let token = match self.credentials.as_ref().and_then(Credentials::identity_token) {
                    Some(refresh) => self.token_by_refresh(&realm, service.as_deref(), &scope, refresh)?,
                    None => self.token_by_get(&realm, service.as_deref(), &scope)?,
                };
                self.authorization = Some(format!("Bearer {token}"));
                Ok(())
            }
        }
    }

    /// A token for `scope` the way `docker login` with a password gets it: GET on the realm,
    /// with the credentials (if any) as Basic auth.
    fn token_by_get(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        let mut query = vec![("scope", scope)];
        if let Some(service) = service {
            query.push(("service", service));
        }
        let url = format!("{realm}{}{}", if realm.contains('?') { '&' } else { '?' }, encode_query(&query));
        let mut request = Request::get(&url);
        if let Some(basic) = self.basic() {
            request = request.header("Authorization", basic);
        }
        self.ask_token_service(realm, request.body(()).expect("valid request"))
    }

    /// A token for `scope` from an identity token: the OAuth2 refresh-token grant (a form
    /// POST), as Docker's token protocol has it. The refresh token goes to the realm alone.
    fn token_by_refresh(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        refresh: &str,
    ) -> Result<String> {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh)];
        form.extend([("client_id", CLIENT_ID), ("scope", scope)]);
        if let Some(service) = service {
            form.push(("service", service));
        }
        let request = Request::post(realm)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(encode_query(&form).into_bytes())
            .with_context(|| format!("invalid token service URL {realm}"))?;
        self.ask_token_service(realm, request)
    }

    /// Sends `request` to the token service and returns the token in its answer (`token`, or
    /// OAuth2's `access_token`).
    fn ask_token_service(&self, realm: &str, request: Request<impl ureq::AsSendBody>) -> Result<String> {
        let mut response = self
            .agent
            .run(request)
            .map_err(|err| anyhow!("cannot reach the token service {realm}: {}", super::describe(&err)))?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 => bail!("{}", self.refused()),
            status => bail!("the token service {realm} answered HTTP {status}: {}", body_text(&mut response)),
        }
        let json: serde_json::Value = serde_json::from_slice(&read_body(&mut response)?)
            .with_context(|| format!("the token service {realm} did not answer JSON"))?;
        let token = json["token"].as_str().or_else(|| json["access_token"].as_str());
        Ok(token.with_context(|| format!("the token service {realm} gave no token"))?.to_string())
    }

    /// One request, retried by the retry policy while the failure is transient (each retry a
    /// line on stderr with its reason). For requests that may be sent again as they are:
    /// HEAD, GET, starting an upload, and manifest PUTs (by tag or digest).
    fn send(
        &mut self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response<Body>> {
        let mut attempt = 1;
        loop {
            match self.attempt(method.clone(), url, headers, body)? {
                Ok(response) => return Ok(response),
                Err(transient) if attempt < self.retry.attempts => {
                    attempt += 1;
                    self.pause(&transient, attempt);
                }
                Err(transient) => return Err(self.gave_up(&transient)),
            }
        }
    }

    /// One attempt: the response, or (inner `Err`) why another attempt may fare better. On a
    /// 401 with a Bearer challenge (an expired token) it logs in again once.
    fn attempt(
        &mut self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<std::result::Result<Response<Body>, Transient>> {
        for login in 0..2 {
            let mut request = Request::builder().method(method.clone()).uri(url);
            for (key, value) in headers {
                request = request.header(*key, *value);
            }
            if let Some(value) = &self.authorization {
                request = request.header("Authorization", value);
            }
            let request = request.body(body).with_context(|| format!("invalid request URL {url}"))?;
            let what = format!("{method} {}", url.strip_prefix(&self.target.base).unwrap_or(url));
            let mut response = match self.agent.run(request) {
                Ok(response) => response,
                Err(err) if retry::is_transient_error(&err) => {
                    let reason = format!("{what}: {}", super::describe(&err));
                    return Ok(Err(Transient { reason, retry_after: None }));
                }
                Err(err) => return Err(self.unreachable(err)),
            };
            let status = response.status().as_u16();
            if status == 401 && login == 0 && matches!(self.challenge, Some(Challenge::Bearer { .. })) {
                self.authenticate()?;
                continue;
            }
            if retry::is_transient_status(status) {
                let retry_after = header(&response, "retry-after")
                    .and_then(|value| retry::parse_retry_after(&value, std::time::SystemTime::now()));
                let detail = registry_errors(&body_text(&mut response));
                let reason = format!("{what}: HTTP {status}{detail}");
                return Ok(Err(Transient { reason, retry_after }));
            }
            return Ok(Ok(response));
        }
        unreachable!("the loop returns")
    }

    /// Waits before attempt `next`, saying why.
    fn pause(&self, transient: &Transient, next: u32) {
        let wait = self.retry.delay(next, transient.retry_after);
        let asked = if transient.retry_after.is_some() { " (its Retry-After)" } else { "" };
        eprintln!(
            "registry {}: {}; attempt {next} of {} in {:.1} s{asked}",
            self.target.host,
            transient.reason,
            self.retry.attempts,
            wait.as_secs_f64()
        );
        std::thread::sleep(wait);
    }

    fn gave_up(&self, transient: &Transient) -> anyhow::Error {
        anyhow!(
            "the registry {} kept failing: {} (tried {} times; --net-attempts, {} or release.toml's [network] attempts sets how many)",
            self.target.base,
            transient.reason,
            self.retry.attempts,
            retry::ENV_ATTEMPTS
        )
    }

    /// Explains a failed request: the registry's error codes and what the status means.
    fn failure(&self, what: &str, response: &mut Response<Body>) -> anyhow::Error {
        let status = response.status().as_u16();
        let detail = registry_errors(&body_text(response));
        let hint = match status {
            401 => format!("; {}", self.refused()),
            403 => format!(
                "; the credentials{} may not push to {}",
                self.credentials.as_ref().map(|c| format!(" of {:?}", c.username)).unwrap_or_default(),
                self.target.path
            ),
            405 => "; the registry does not accept writes (read-only or maintenance mode?)".to_string(),
            _ => String::new(),
        };
        anyhow!("{what}: the registry {} answered HTTP {status}{detail}{hint}", self.target.base)
    }

    pub fn blob_exists(&mut self, digest: &str) -> Result<bool> {
        let url = self.target.url(&format!("blobs/{digest}"));
        let mut response = self.send(http::Method::HEAD, &url, &[], &[])?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.failure(&format!("checking blob {digest}"), &mut response)),
        }
    }

    /// Uploads a blob unless the registry has it. Returns whether bytes were sent. An upload
    /// that meets a transient failure starts again with a new session: a session's PATCHes and
    /// final PUT cannot be replayed on their own.
    pub fn upload_blob(&mut self, blob: &impl Content) -> Result<bool> {
        if self.blob_exists(blob.digest())? {
            return Ok(false);
        }
        let mut attempt = 1;
        loop {
            match self.upload_session(blob)? {
                Ok(()) => return Ok(true),
                Err(transient) if attempt < self.retry.attempts => {
                    attempt += 1;
                    self.pause(&transient, attempt);
                }
                Err(transient) => return Err(self.gave_up(&transient)),
            }
        }
    }

    /// One upload session: POST, then one PUT or PATCHes and a PUT.
    fn upload_session(&mut self, blob: &impl Content) -> Result<std::result::Result<(), Transient>> {
        let what = format!("uploading blob {} ({} bytes)", blob.digest(), blob.bytes().len());
        let mut response = self.send(http::Method::POST, &self.target.url("blobs/uploads/"), &[], &[])?;
        if response.status().as_u16() != 202 {
            return Err(self.failure(&what, &mut response));
        }
        let mut location = self.location(&response, &what)?;
        let outcome = self.send_blob(blob, &mut location, &what);
        if !matches!(outcome, Ok(Ok(()))) {
            self.cancel_upload(&location);
        }
        outcome
    }

    /// The bytes of one session, at `location` (moved on by each chunk's answer).
    fn send_blob(
        &mut self,
        blob: &impl Content,
        location: &mut String,
        what: &str,
    ) -> Result<std::result::Result<(), Transient>> {
        let done = if blob.bytes().len() <= self.chunk_size {
            let url = with_digest(location, blob.digest());
            let headers = [("Content-Type", "application/octet-stream")];
            match self.attempt(http::Method::PUT, &url, &headers, blob.bytes())? {
                Ok(done) => done,
                Err(transient) => return Ok(Err(transient)),
            }
        } else {
            let chunk_size = self.chunk_size;
            for (index, chunk) in blob.bytes().chunks(chunk_size).enumerate() {
                let start = index * chunk_size;
                let range = format!("{start}-{}", start + chunk.len() - 1);
                let headers =
                    [("Content-Type", "application/octet-stream"), ("Content-Range", range.as_str())];
                let mut response = match self.attempt(http::Method::PATCH, location, &headers, chunk)? {
                    Ok(response) => response,
                    Err(transient) => return Ok(Err(transient)),
                };
                if response.status().as_u16() != 202 {
                    return Err(self.failure(&format!("{what}, chunk {range}"), &mut response));
                }
                *location = self.location(&response, what)?;
                // A large blob over a slow link takes minutes: say how far it is.
                let sent = start + chunk.len();
                eprintln!(
                    "push: blob {} {} of {} sent",
                    short_digest(blob.digest()),
                    human_size(sent as u64),
                    human_size(blob.bytes().len() as u64)
                );
            }
            match self.attempt(http::Method::PUT, &with_digest(location, blob.digest()), &[], &[])? {
                Ok(done) => done,
                Err(transient) => return Ok(Err(transient)),
            }
        };
        let mut done = done;
        if done.status().as_u16() != 201 {
            return Err(self.failure(what, &mut done));
        }
        Ok(Ok(()))
    }

    /// An abandoned session holds its bytes on the registry until the registry expires it:
    /// it is cancelled (DELETE), once and best effort, since the push retries or fails anyway
    /// and registries may not allow it (distribution answers 204, some 404 or 405).
    fn cancel_upload(&mut self, location: &str) {
        let mut request = Request::builder().method(http::Method::DELETE).uri(location);
        if let Some(value) = &self.authorization {
            request = request.header("Authorization", value);
        }
        if let Ok(request) = request.body(&[][..]) {
            let _ = self.agent.run(request);
        }
    }

    fn location(&self, response: &Response<Body>, what: &str) -> Result<String> {
        let location = header(response, "location")
            .with_context(|| format!("{what}: the registry {} sent no upload Location", self.target.base))?;
        Ok(if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else {
            format!("{}{location}", self.target.base)
        })
    }

    /// PUTs a manifest or index under `reference` (a tag or its digest) and checks the
    /// registry stored exactly these bytes.
    pub fn put_manifest(&mut self, reference: &str, manifest: &impl Content) -> Result<PutOutcome> {
        let url = self.target.url(&format!("manifests/{reference}"));
        let what = format!("pushing {}", self.target.named(reference));
        let headers = [("Content-Type", manifest.media_type())];
        let mut response = self.send(http::Method::PUT, &url, &headers, manifest.bytes())?;
        if response.status().as_u16() != 201 {
            return Err(self.failure(&what, &mut response));
        }
        if let Some(digest) = header(&response, "docker-content-digest") {
            if digest != manifest.digest() {
                bail!("{what}: the registry stored digest {digest}, not {}", manifest.digest());
            }
        }
        Ok(PutOutcome { subject_indexed: header(&response, "oci-subject").is_some() })
    }

    /// GETs a manifest or index; None when the reference does not exist.
    pub fn get_manifest(&mut self, reference: &str) -> Result<Option<Vec<u8>>> {
        let url = self.target.url(&format!("manifests/{reference}"));
        // Docker's types too: buildx's docker driver pushes them, and a registry asked only
        // for OCI types may answer with one platform's manifest instead of the list.
        let accept = format!("{MEDIA_INDEX}, {MEDIA_MANIFEST}, {DOCKER_LIST}, {DOCKER_MANIFEST}");
        let mut response = self.send(http::Method::GET, &url, &[("Accept", accept.as_str())], &[])?;
        match response.status().as_u16() {
            200 => Ok(Some(read_body(&mut response)?)),
            404 => Ok(None),
            _ => Err(self.failure(&format!("reading {}", self.target.named(reference)), &mut response)),
        }
    }
}

/// `sha256:` and the first 12 hex digits, as progress lines show a blob.
fn short_digest(digest: &str) -> &str {
    &digest[..digest.len().min("sha256:".len() + 12)]
}

fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn read_body(response: &mut Response<Body>) -> Result<Vec<u8>> {
    response.body_mut().read_to_vec().context("cannot read the registry's answer")
}

fn body_text(response: &mut Response<Body>) -> String {
    read_body(response).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// ` (CODE: message; ...)` from the distribution spec's error body, or its first line.
fn registry_errors(body: &str) -> String {
    let parsed: Option<Vec<String>> = serde_json::from_str::<serde_json::Value>(body).ok().and_then(|json| {
        let errors = json["errors"].as_array()?;
        Some(
            errors
                .iter()
                .map(|e| {
                    format!("{}: {}", e["code"].as_str().unwrap_or("?"), e["message"].as_str().unwrap_or(""))
                })
                .collect(),
        )
    });
    match parsed {
        Some(list) if !list.is_empty() => format!(" ({})", list.join("; ")),
        _ => match body.lines().next().map(str::trim).filter(|l| !l.is_empty()) {
            Some(line) => format!(" ({})", line.chars().take(200).collect::<String>()),
            None => String::new(),
        },
    }
}

fn with_digest(location: &str, digest: &str) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={}", digest.replace(':', "%3A"))
}

fn encode_query(pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_to_a_token_service_over_https_or_on_this_machine_only() {
        assert!(realm_is_safe("https://auth.docker.io/token"));
        assert!(realm_is_safe("http://127.0.0.1:5001/token"));
        assert!(realm_is_safe("http://localhost:5001/token"));
        assert!(!realm_is_safe("http://auth.example.org/token"));
        assert!(!realm_is_safe("http://127.0.0.1.example.org/token"));
        assert!(!realm_is_safe("ftp://auth.example.org/token"));
    }

    #[test]
    fn targets_pick_scheme_and_api_host() {
        let t = Target::parse("localhost:5000/e2e/x");
        assert_eq!(
            (t.host.as_str(), t.base.as_str(), t.path.as_str()),
            ("localhost:5000", "http://localhost:5000", "e2e/x")
        );
        assert!(Target::parse("127.0.0.1:5001/x").plain_http());
        assert!(Target::parse("[::1]:5000/x").plain_http());
        let t = Target::parse("ghcr.io/exotool/exonode");
        assert_eq!((t.base.as_str(), t.path.as_str()), ("https://ghcr.io", "exotool/exonode"));
        let t = Target::parse("exonode");
        assert_eq!(
            (t.host.as_str(), t.base.as_str(), t.path.as_str()),
            ("docker.io", "https://registry-1.docker.io", "library/exonode")
        );
        assert!(!Target::parse("localhost.example.com/x").plain_http());
        assert!(!Target::parse("127.0.0.1.example.org/x").plain_http(), "a name, not an address");
    }

    #[test]
    fn challenges_parse() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="reg,istry",scope="repository:a/b:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg,istry".into())
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn registry_errors_are_readable() {
        let body = r#"{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}"#;
        assert_eq!(registry_errors(body), " (UNSUPPORTED: The operation is unsupported.)");
        assert_eq!(registry_errors("oops\nmore"), " (oops)");
        assert_eq!(registry_errors(""), "");
    }

    #[test]
    fn upload_urls() {
        assert_eq!(
            with_digest("http://r/v2/x/blobs/uploads/u?_state=s", "sha256:ab"),
            "http://r/v2/x/blobs/uploads/u?_state=s&digest=sha256%3Aab"
        );
        assert_eq!(
            encode_query(&[("scope", "repository:a/b:pull,push")]),
            "scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
