//! Logging in to a registry: `WWW-Authenticate` challenges (Basic, Bearer), the token flow with
//! scopes (docker's token spec; OAuth2 refresh tokens for identity tokens), tokens cached until
//! shortly before they expire and fetched again when the registry answers 401 mid-push.

use super::credentials::{Credential, Secret};
use super::{RegistryError, client::transport_error};
use base64::Engine as _;
use reqwest::header::HeaderValue;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A parsed `WWW-Authenticate` header: the scheme (lowercase) and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses `Bearer realm="https://auth",service="reg",scope="repository:a:pull,push"` (quoted
/// values may hold commas and escaped quotes).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect::<String>().trim().to_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        params.insert(key, value);
    }
    Some(Challenge { scheme: scheme.to_lowercase(), params })
}

/// A token answer is a small JSON object; anything longer is not one.
const TOKEN_ANSWER_LIMIT: u64 = 1 << 20;

#[derive(Debug, Clone)]
struct Token {
    value: Secret,
    expires: Instant,
}

/// How requests to one registry are authorised.
#[derive(Debug)]
pub enum Auth {
    None,
    Basic { username: String, password: Secret },
    Bearer(Bearer),
}

#[derive(Debug)]
pub struct Bearer {
    realm: String,
    service: Option<String>,
    credential: Credential,
    scopes: tokio::sync::Mutex<Vec<String>>,
    token: tokio::sync::Mutex<Option<Token>>,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Auth {
    /// The `Authorization` header for the next request (fetching a token when none is valid).
    pub async fn header(&self, http: &reqwest::Client, registry: &str) -> Result<Option<HeaderValue>, RegistryError> {
        match self {
            Auth::None => Ok(None),
            Auth::Basic { username, password } => Ok(Some(basic_header(username, password))),
            Auth::Bearer(b) => {
                let mut token = b.token.lock().await;
                if let Some(t) = token.as_ref().filter(|t| t.expires > Instant::now() + Duration::from_secs(10)) {
                    return Ok(Some(bearer_header(&t.value)));
                }
                let t = b.fetch(http, registry).await?;
                let h = bearer_header(&t.value);
                *token = Some(t);
                Ok(Some(h))
            }
        }
    }

    /// The token service's URL (Bearer), which receives the login.
    pub fn realm(&self) -> Option<&str> {
        match self {
            Auth::Bearer(b) => Some(&b.realm),
            _ => None,
        }
    }

    /// After a 401: for Bearer, add the challenge's scope and fetch a new token; `false` when
    /// nothing can be renewed (Basic, or no login at all), so the 401 stands.
    pub async fn renew(
        &self,
        http: &reqwest::Client,
        registry: &str,
        challenge: Option<&Challenge>,
    ) -> Result<bool, RegistryError> {
        let Auth::Bearer(b) = self else { return Ok(false) };
        if let Some(scope) = challenge.and_then(|c| c.params.get("scope")) {
            let mut scopes = b.scopes.lock().await;
            for s in scope.split(' ') {
                if !scopes.iter().any(|x| x == s) {
                    scopes.push(s.to_string());
                }
            }
        }
        let t = b.fetch(http, registry).await?;
        *b.token.lock().await = Some(t);
        Ok(true)
    }

    /// From the ping's challenge; `credential` is used for Basic and to get tokens.
    pub fn from_challenge(
        challenge: &Challenge,
        credential: Credential,
        scopes: Vec<String>,
        registry: &str,
    ) -> Result<Auth, RegistryError> {
        match challenge.scheme.as_str() {
            "basic" => match credential {
                Credential::Basic { username, password } => Ok(Auth::Basic { username, password }),
                _ => Err(RegistryError::Unauthorized {
                    registry: registry.to_string(),
                    repository: super::client::scope_repositories(&scopes),
                    detail: "the registry asks for a user name and password and none is configured".into(),
                }),
            },
            "bearer" => {
                let realm = challenge.params.get("realm").cloned().ok_or_else(|| RegistryError::Protocol {
                    registry: registry.to_string(),
                    what: "login".into(),
                    detail: "a Bearer challenge without a realm".into(),
                })?;
                Ok(Auth::Bearer(Bearer {
                    realm,
                    service: challenge.params.get("service").cloned(),
                    credential,
                    scopes: tokio::sync::Mutex::new(scopes),
                    token: tokio::sync::Mutex::new(None),
                }))
            }
            other => Err(RegistryError::Protocol {
                registry: registry.to_string(),
                what: "login".into(),
                detail: format!("unsupported authentication scheme {other:?}"),
            }),
        }
    }
}

impl Bearer {
    async fn fetch(&self, http: &reqwest::Client, registry: &str) -> Result<Token, RegistryError> {
        let scopes = self.scopes.lock().await.clone();
        let what = format!("getting a token from {}", self.realm);
        let req = self.token_request(http, &scopes, registry, &what)?;
        let resp = req.send().await.map_err(|e| transport_error(registry, &what, &e))?;
        self.check_answer(resp.status(), &scopes, registry, &what)?;
        let body = super::client::read_limited(resp, TOKEN_ANSWER_LIMIT)
            .await
            .map_err(|e| transport_error(registry, &what, &e))?
            .ok_or_else(|| RegistryError::Protocol {
                registry: registry.to_string(),
                what: what.clone(),
                detail: format!("the token service's answer is longer than {TOKEN_ANSWER_LIMIT} bytes"),
            })?;
        token_of(&body, registry, what)
    }

    /// The token request: an OAuth2 refresh-token POST for an identity token, else a GET with
    /// the service and scopes (with the login as Basic auth, when there is one).
    fn token_request(
        &self,
        http: &reqwest::Client,
        scopes: &[String],
        registry: &str,
        what: &str,
    ) -> Result<reqwest::RequestBuilder, RegistryError> {
        let mut url = reqwest::Url::parse(&self.realm).map_err(|e| RegistryError::Protocol {
            registry: registry.to_string(),
            what: what.to_string(),
            detail: format!("the realm is not a URL ({e})"),
        })?;
        if let Credential::IdentityToken(refresh) = &self.credential {
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("client_id", "release-oci".to_string()),
                ("refresh_token", refresh.expose().to_string()),
                ("scope", scopes.join(" ")),
            ];
            if let Some(s) = &self.service {
                form.push(("service", s.clone()));
            }
            return Ok(http.post(url).form(&form));
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = &self.service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let req = http.get(url);
        Ok(match &self.credential {
            Credential::Basic { username, password } => {
                req.header(reqwest::header::AUTHORIZATION, basic_header(username, password))
            }
            _ => req,
        })
    }

    /// The token service's status as an error: refused logins, transient trouble, the rest.
    fn check_answer(
        &self,
        status: reqwest::StatusCode,
        scopes: &[String],
        registry: &str,
        what: &str,
    ) -> Result<(), RegistryError> {
        if status == 401 || status == 403 {
            return Err(RegistryError::Unauthorized {
                registry: registry.to_string(),
                repository: super::client::scope_repositories(scopes),
                detail: format!("the token service {} answered {status}", self.realm),
            });
        }
        if status.is_server_error() || status == 429 {
            return Err(RegistryError::Transient {
                registry: registry.to_string(),
                what: what.to_string(),
                detail: format!("the token service answered {status}"),
                retry_after: None,
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Protocol {
                registry: registry.to_string(),
                what: what.to_string(),
                detail: status.to_string(),
            });
        }
        Ok(())
    }
}

/// The token in the token service's JSON answer, with its expiry.
fn token_of(body: &[u8], registry: &str, what: String) -> Result<Token, RegistryError> {
    let answer: TokenAnswer = serde_json::from_slice(body).map_err(|e| RegistryError::Protocol {
        registry: registry.to_string(),
        what: what.clone(),
        detail: format!("the token service's answer is not its JSON ({e})"),
    })?;
    let value = answer.token.or(answer.access_token).filter(|t| !t.is_empty()).ok_or_else(|| {
        RegistryError::Protocol { registry: registry.to_string(), what, detail: "the answer holds no token".into() }
    })?;
    // The spec's minimum lifetime is 60 s when the server does not say.
    let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60).max(1));
    Ok(Token { value: Secret::new(value), expires: Instant::now() + lifetime })
}

fn sensitive(s: String) -> HeaderValue {
    let mut v = HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

fn basic_header(username: &str, password: &Secret) -> HeaderValue {
    let raw = format!("{username}:{}", password.expose());
    sensitive(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw)))
}

fn bearer_header(token: &Secret) -> HeaderValue {
    sensitive(format!("Bearer {}", token.expose()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example.com/token");
        assert_eq!(c.params["service"], "registry.example.com");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!((c.scheme.as_str(), c.params["realm"].as_str()), ("basic", "Registry Realm"));
        let c = parse_challenge(r#"Bearer realm=unquoted, error="insufficient_scope", x="a\"b""#).unwrap();
        assert_eq!(c.params["realm"], "unquoted");
        assert_eq!(c.params["error"], "insufficient_scope");
        assert_eq!(c.params["x"], "a\"b");
        assert!(parse_challenge("").is_none());
    }

    #[test]
    fn basic_without_credentials_is_a_clear_error() {
        let c = parse_challenge(r#"Basic realm="r""#).unwrap();
        let err = Auth::from_challenge(&c, Credential::Anonymous, vec!["repository:x:push".into()], "reg:5000")
            .unwrap_err()
            .to_string();
        assert!(err.contains("reg:5000") && err.contains("--username"), "{err}");
    }

    #[test]
    fn headers_are_sensitive_and_hide_the_secret() {
        let h = basic_header("u", &Secret::new("pw"));
        assert!(h.is_sensitive());
        assert_eq!(h.to_str().unwrap(), "Basic dTpwdw==");
        assert!(!format!("{:?}", Auth::Basic { username: "u".into(), password: Secret::new("pw") }).contains("pw\""));
    }
}
