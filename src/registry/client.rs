//! The distribution API client: one registry, reqwest with rustls (system roots + `--ca-cert`),
//! HTTPS unless the registry is on loopback or named insecure, a ping to learn how to log in,
//! and every request authorised, classified (transient or permanent) and, by callers, retried.

use super::auth::{Auth, parse_challenge};
use super::credentials::{self, Credential};
use super::reference::api_host;
use super::retry::retry;
use super::{RegistryError, RegistryOptions, RetryPolicy};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// No byte for this long on an open connection counts as a (transient) failure.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Uploads larger than this go in chunks of this size (PATCH with Content-Range).
pub const CHUNK_SIZE: usize = 4 << 20;

/// A connection to one registry, logged in for a set of scopes.
#[derive(Debug)]
pub struct Client {
    pub(super) http: reqwest::Client,
    registry: String,
    base: Url,
    auth: Auth,
    pub(super) retry: RetryPolicy,
    pub(super) chunk_size: usize,
}

impl Client {
    /// Pings `registry` (HTTPS, or plain HTTP where allowed), learns how it wants requests
    /// authorised and logs in for `scopes` (`repository:NAME:pull,push`), so that wrong
    /// credentials fail here, before any upload.
    pub async fn connect(registry: &str, opts: &RegistryOptions, scopes: Vec<String>) -> Result<Client, RegistryError> {
        let http = http_client(registry, opts)?;
        let (base, resp) = retry(&opts.retry, registry, "connecting", |_| ping(&http, registry, opts)).await?;
        let auth = match resp.status() {
            s if s.is_success() => Auth::None,
            StatusCode::UNAUTHORIZED => {
                let header = resp.headers().get(reqwest::header::WWW_AUTHENTICATE);
                let challenge = header.and_then(|h| h.to_str().ok()).and_then(parse_challenge).ok_or_else(|| {
                    RegistryError::Protocol {
                        registry: registry.to_string(),
                        what: "ping".into(),
                        detail: "401 without a WWW-Authenticate challenge".into(),
                    }
                })?;
                let credential = credential_for(registry, opts)?;
                let auth = Auth::from_challenge(&challenge, credential, scopes.clone(), registry)?;
                check_realm(&auth, &base, registry)?;
                auth
            }
            s => {
                return Err(RegistryError::Protocol {
                    registry: registry.to_string(),
                    what: "ping (GET /v2/)".into(),
                    detail: format!("{s}; is this a registry?"),
                });
            }
        };
        let client =
            Client { http, registry: registry.to_string(), base, auth, retry: opts.retry, chunk_size: CHUNK_SIZE };
        // Log in now: a wrong password fails before anything is uploaded.
        match &client.auth {
            Auth::None => {}
            Auth::Basic { .. } => {
                let what = "logging in";
                let repo = scope_repositories(&scopes);
                retry(&client.retry, registry, what, |_| async {
                    let resp = client.send(client.request(Method::GET, "/v2/"), what).await?;
                    client.check(resp, what, &repo).await.map(drop)
                })
                .await?;
            }
            Auth::Bearer(_) => {
                retry(&client.retry, registry, "logging in", |_| client.auth.header(&client.http, registry)).await?;
            }
        }
        Ok(client)
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Uploads in chunks of `n` bytes (tests use small chunks to exercise resuming).
    pub fn with_chunk_size(mut self, n: usize) -> Self {
        self.chunk_size = n.max(1);
        self
    }

    /// A request to `path` (`/v2/...`) or to an absolute URL the registry gave (`Location`).
    pub(super) fn request(&self, method: Method, path_or_url: &str) -> RequestBuilder {
        let url = self.url(path_or_url);
        self.http.request(method, url)
    }

    pub(super) fn url(&self, path_or_url: &str) -> Url {
        self.base.join(path_or_url).unwrap_or_else(|_| self.base.clone())
    }

    /// Sends with the `Authorization` header; on a 401 under Bearer, renews the token (adding
    /// the challenge's scope) and sends once more. Transport failures become errors here;
    /// statuses are for the caller ([`Client::check`]).
    pub(super) async fn send(&self, req: RequestBuilder, what: &str) -> Result<Response, RegistryError> {
        let again = req.try_clone();
        let resp = self.send_once(req, what).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(parse_challenge);
        match again {
            Some(again) if self.auth.renew(&self.http, &self.registry, challenge.as_ref()).await? => {
                tracing::debug!("{}: token renewed after 401 during {what}", self.registry);
                self.send_once(again, what).await
            }
            _ => Ok(resp),
        }
    }

    /// Sends one request. Credentials go only to the registry's own origin (scheme, host and
    /// port of the ping): a `Location` or redirect on another host gets the request without
    /// them, and a registry reached over HTTPS is never followed to plain HTTP.
    async fn send_once(&self, req: RequestBuilder, what: &str) -> Result<Response, RegistryError> {
        let mut request = req.build().map_err(|e| transport_error(&self.registry, what, &e))?;
        let url = request.url();
        if self.base.scheme() == "https" && url.scheme() != "https" {
            return Err(self.protocol_error(
                what,
                format!("the registry sent the request to {} over plain HTTP; refusing to leave HTTPS", origin(url)),
            ));
        }
        if same_origin(&self.base, url) {
            if let Some(h) = self.auth.header(&self.http, &self.registry).await? {
                request.headers_mut().insert(reqwest::header::AUTHORIZATION, h);
            }
        } else {
            tracing::debug!("{}: {what}: {} is not the registry; sent without credentials", self.registry, origin(url));
        }
        self.http.execute(request).await.map_err(|e| transport_error(&self.registry, what, &e))
    }

    fn protocol_error(&self, what: &str, detail: String) -> RegistryError {
        RegistryError::Protocol { registry: self.registry.clone(), what: what.to_string(), detail }
    }

    /// Maps a response's status to an error (with the registry's error codes); 2xx passes.
    pub(super) async fn check(&self, resp: Response, what: &str, repo: &str) -> Result<Response, RegistryError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let detail = error_detail(status, resp).await;
        let (registry, repository, what) = (self.registry.clone(), repo.to_string(), what.to_string());
        Err(match status.as_u16() {
            401 => RegistryError::Unauthorized { registry, repository, detail },
            403 => RegistryError::Denied { registry, repository, what, detail },
            404 => RegistryError::NotFound { registry, repository, what, detail },
            408 | 429 | 500..=599 => RegistryError::Transient { registry, what, detail, retry_after },
            _ => RegistryError::Rejected { registry, repository, what, detail },
        })
    }
}

/// The most of an error answer that is read (its codes come first; the rest is dropped).
const ERROR_BODY_LIMIT: u64 = 64 << 10;

/// Reads a response body of at most `limit` bytes; `Ok(None)` when it is longer (a registry
/// or token service that sends without end cannot exhaust memory).
pub(super) async fn read_limited(mut resp: Response, limit: u64) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// `scheme://host:port` of a URL, for messages (never its path or query: upload URLs may carry
/// signed parameters).
pub(super) fn origin(url: &Url) -> String {
    match url.port_or_known_default() {
        Some(port) => format!("{}://{}:{port}", url.scheme(), url.host_str().unwrap_or("")),
        None => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")),
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// Redirects are followed (blob downloads often go to storage on another host; reqwest drops
/// the `Authorization` header when the host or port changes), but never from HTTPS to HTTP.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.previous().iter().any(|u| u.scheme() == "https") && attempt.url().scheme() != "https";
        if downgrade {
            let to = origin(attempt.url());
            attempt.error(format!("a redirect from HTTPS to {to}, refused"))
        } else if attempt.previous().len() >= 10 {
            attempt.error("more than 10 redirects")
        } else {
            attempt.follow()
        }
    })
}

/// `401 Unauthorized: UNAUTHORIZED authentication required` from the registry's error body.
async fn error_detail(status: StatusCode, resp: Response) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let body = read_limited(resp, ERROR_BODY_LIMIT).await.ok().flatten().unwrap_or_default();
    let codes = serde_json::from_slice::<Body>(&body)
        .map(|b| b.errors.iter().map(|e| format!("{} {}", e.code, e.message)).collect::<Vec<_>>().join("; "))
        .unwrap_or_default();
    if codes.is_empty() { status.to_string() } else { format!("{status}: {codes}") }
}

/// A transport failure: TLS trouble is permanent (retrying will not fix a certificate), the
/// rest (refused, reset, timed out, cut short) is transient.
pub(super) fn transport_error(registry: &str, what: &str, e: &reqwest::Error) -> RegistryError {
    // reqwest names the whole URL; an upload session's may carry signed query parameters, and
    // these messages end up in CI logs: only its origin is kept.
    let mut detail = describe(e);
    if let Some(url) = e.url() {
        detail = detail.replace(url.as_str(), &origin(url));
    }
    let lower = detail.to_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        return RegistryError::Tls { registry: registry.to_string(), detail };
    }
    if lower.contains("dns error") {
        return RegistryError::UnknownHost { registry: registry.to_string(), detail };
    }
    if e.is_builder() {
        return RegistryError::Protocol { registry: registry.to_string(), what: what.to_string(), detail };
    }
    RegistryError::Transient { registry: registry.to_string(), what: what.to_string(), detail, retry_after: None }
}

/// The error and its causes on one line (reqwest's own message alone says little).
pub(super) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// The token service gets the login: over HTTPS when the registry is, and a URL it can parse.
fn check_realm(auth: &Auth, base: &Url, registry: &str) -> Result<(), RegistryError> {
    let Some(realm) = auth.realm() else { return Ok(()) };
    let protocol =
        |detail: String| RegistryError::Protocol { registry: registry.to_string(), what: "login".into(), detail };
    let url = Url::parse(realm).map_err(|e| protocol(format!("the token realm {realm:?} is not a URL ({e})")))?;
    if base.scheme() == "https" && url.scheme() != "https" {
        return Err(protocol(format!(
            "the registry names the token service {} over plain HTTP; refusing to send the login there",
            origin(&url)
        )));
    }
    Ok(())
}

fn credential_for(registry: &str, opts: &RegistryOptions) -> Result<Credential, RegistryError> {
    if let Some(login) = opts.login.as_ref().filter(|l| l.registry == registry) {
        return Ok(Credential::Basic { username: login.username.clone(), password: login.password.clone() });
    }
    credentials::lookup(registry, opts.docker_config.clone())
}

fn http_client(registry: &str, opts: &RegistryOptions) -> Result<reqwest::Client, RegistryError> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_native_certs(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .redirect(redirect_policy())
        .user_agent(concat!("release-oci/", env!("CARGO_PKG_VERSION")));
    for path in &opts.ca_certs {
        let pem = std::fs::read(path).map_err(|source| RegistryError::Io { path: path.clone(), source })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| RegistryError::CaCert { path: path.clone(), reason: describe(&e) })?;
        if certs.is_empty() {
            return Err(RegistryError::CaCert { path: path.clone(), reason: "no PEM certificate in it".into() });
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if opts.is_insecure(registry) {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| RegistryError::Protocol {
        registry: registry.to_string(),
        what: "setting up HTTPS".into(),
        detail: describe(&e),
    })
}

/// `GET /v2/` over HTTPS; where plain HTTP is allowed and HTTPS cannot connect, over HTTP.
async fn ping(
    http: &reqwest::Client,
    registry: &str,
    opts: &RegistryOptions,
) -> Result<(Url, Response), RegistryError> {
    let host = api_host(registry);
    let https = Url::parse(&format!("https://{host}/")).map_err(|e| RegistryError::Protocol {
        registry: registry.to_string(),
        what: "ping".into(),
        detail: format!("{host} is not a host name ({e})"),
    })?;
    let what = "ping (GET /v2/)";
    let tls_err = match http.get(https.join("/v2/").unwrap_or(https.clone())).send().await {
        Ok(resp) => return Ok((https, resp)),
        Err(e) => transport_error(registry, what, &e),
    };
    if !opts.allows_http(registry) {
        return Err(match tls_err {
            // A plain-HTTP server answering the TLS handshake: retrying will not help.
            RegistryError::Transient { detail, .. } if looks_like_plain_http(&detail) => {
                RegistryError::NoHttps { registry: registry.to_string(), detail }
            }
            other => other,
        });
    }
    let http_base = Url::parse(&format!("http://{host}/")).map_err(|e| RegistryError::Protocol {
        registry: registry.to_string(),
        what: "ping".into(),
        detail: e.to_string(),
    })?;
    match http.get(http_base.join("/v2/").unwrap_or(http_base.clone())).send().await {
        Ok(resp) if resp.status() == StatusCode::BAD_REQUEST => {
            // An HTTPS server answering plain HTTP: the HTTPS error is the one that matters.
            Err(tls_err)
        }
        Ok(resp) => {
            tracing::debug!("{registry}: using plain HTTP ({})", describe_short(&tls_err));
            Ok((http_base, resp))
        }
        Err(e) => match tls_err {
            RegistryError::Tls { .. } => Err(tls_err),
            _ => Err(transport_error(registry, what, &e)),
        },
    }
}

/// `repository:a/b:pull,push repository:c:pull` → `a/b, c` (for messages).
pub(super) fn scope_repositories(scopes: &[String]) -> String {
    scopes.iter().map(|s| s.split(':').nth(1).unwrap_or(s)).collect::<Vec<_>>().join(", ")
}

fn looks_like_plain_http(detail: &str) -> bool {
    let d = detail.to_lowercase();
    d.contains("corrupt message") || d.contains("invalidcontenttype") || d.contains("wrong version")
}

fn describe_short(e: &RegistryError) -> String {
    e.to_string().chars().take(200).collect()
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod wire_tests;
