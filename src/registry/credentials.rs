//! Registry credentials as Docker users have them: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) with `auths` (base64 `user:password`, or an identity token),
//! `credHelpers` (per registry) and `credsStore` (for all), which name `docker-credential-NAME`
//! programs speaking the credential-helper protocol; or a login given on the command line.
//! Secrets are kept in [`Secret`], which never prints its value.

use super::RegistryError;
use base64::Engine as _;
use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A password or token: its `Debug` is `***` and it has no `Display`, so it cannot end up in a
/// log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The value, for the one place it is sent (an `Authorization` header or a token request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How to log in to one registry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credential {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: Secret,
    },
    /// An OAuth2 refresh token (`identitytoken` in config.json, or a helper's `<token>` user).
    IdentityToken(Secret),
}

#[derive(serde::Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(serde::Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The directory of Docker's client configuration: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker"))
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `host:5000/` → `host:5000`.
fn normalise_key(key: &str) -> &str {
    let k = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// The key Docker stores a registry's login under (Docker Hub's is historical).
fn server_url(registry: &str) -> String {
    if matches!(registry, "docker.io" | "index.docker.io" | "registry-1.docker.io") {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

fn same_registry(key: &str, registry: &str) -> bool {
    let hub = |r: &str| matches!(r, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    let k = normalise_key(key);
    k == registry || (hub(k) && hub(registry))
}

/// The credential Docker would use for `registry`, from the config file in `dir` (`None`: the
/// default directory). No config file means anonymous.
pub fn lookup(registry: &str, dir: Option<PathBuf>) -> Result<Credential, RegistryError> {
    lookup_with(registry, dir, None)
}

/// [`lookup`], finding helpers on `path` instead of `$PATH` when given.
fn lookup_with(registry: &str, dir: Option<PathBuf>, search_path: Option<&str>) -> Result<Credential, RegistryError> {
    let Some(dir) = dir.or_else(docker_config_dir) else {
        return Ok(Credential::Anonymous);
    };
    let path = dir.join("config.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credential::Anonymous),
        Err(source) => return Err(RegistryError::Io { path, source }),
    };
    let config: ConfigFile = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Credentials {
        registry: registry.to_string(),
        reason: format!("{} is not valid JSON ({e}); fix or remove it", path.display()),
    })?;
    let helper = config
        .cred_helpers
        .iter()
        .find(|(k, _)| same_registry(k, registry))
        .map(|(_, v)| v.clone())
        .or(config.creds_store.clone());
    if let Some(helper) = helper.filter(|h| !h.is_empty())
        && let Some(c) = from_helper(&helper, registry, search_path)?
    {
        return Ok(c);
    }
    let Some(entry) = config.auths.iter().find(|(k, _)| same_registry(k, registry)).map(|(_, v)| v) else {
        return Ok(Credential::Anonymous);
    };
    if let Some(t) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Credential::IdentityToken(Secret::new(t)));
    }
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Credential::Basic { username: u.clone(), password: Secret::new(p.clone()) });
    }
    match entry.auth.as_deref().filter(|a| !a.is_empty()) {
        Some(auth) => {
            let bad = || RegistryError::Credentials {
                registry: registry.to_string(),
                reason: format!(
                    "the `auth` entry in {} is not base64 of USER:PASSWORD; run docker login again",
                    path.display()
                ),
            };
            let decoded = base64::engine::general_purpose::STANDARD.decode(auth.trim()).map_err(|_| bad())?;
            let text = String::from_utf8(decoded).map_err(|_| bad())?;
            let (u, p) = text.split_once(':').ok_or_else(bad)?;
            Ok(Credential::Basic { username: u.to_string(), password: Secret::new(p) })
        }
        None => Ok(Credential::Anonymous),
    }
}

/// Runs `docker-credential-HELPER get`; `None` when the helper has no login for `registry`.
fn from_helper(helper: &str, registry: &str, path: Option<&str>) -> Result<Option<Credential>, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let fail = |reason: String| RegistryError::Credentials { registry: registry.to_string(), reason };
    let mut cmd = Command::new(&program);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let mut child = cmd
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot run the credential helper {program} named in config.json ({e}); install it or remove it from config.json")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gives EPIPE here; its exit status tells the story.
        let _ = stdin.write_all(server_url(registry).as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| fail(format!("credential helper {program} failed: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout);
        if msg.to_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        // Helpers print only a short reason on failure, never the secret.
        return Err(fail(format!("credential helper {program} failed ({}): {}", out.status, msg.trim())));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|_| fail(format!("credential helper {program} answered something that is not its JSON")))?;
    Ok(Some(if answer.username == "<token>" {
        Credential::IdentityToken(Secret::new(answer.secret))
    } else {
        Credential::Basic { username: answer.username, password: Secret::new(answer.secret) }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config(dir: &std::path::Path, json: &str) {
        std::fs::write(dir.join("config.json"), json).unwrap();
    }

    #[test]
    fn reads_auths_entries() {
        let dir = tempfile::tempdir().unwrap();
        // "alice:s3cr:et" — the password may contain ':'.
        config(
            dir.path(),
            r#"{"auths":{"https://reg.example.com/v1/":{"auth":"YWxpY2U6czNjcjpldA=="},
                "https://index.docker.io/v1/":{"identitytoken":"tok"},
                "other:5000":{"username":"bob","password":"pw"}}}"#,
        );
        let d = Some(dir.path().to_path_buf());
        assert_eq!(
            lookup("reg.example.com", d.clone()).unwrap(),
            Credential::Basic { username: "alice".into(), password: Secret::new("s3cr:et") }
        );
        assert_eq!(lookup("docker.io", d.clone()).unwrap(), Credential::IdentityToken(Secret::new("tok")));
        assert_eq!(
            lookup("other:5000", d.clone()).unwrap(),
            Credential::Basic { username: "bob".into(), password: Secret::new("pw") }
        );
        assert_eq!(lookup("nowhere.example.com", d).unwrap(), Credential::Anonymous);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(lookup("x.com", Some(empty.path().to_path_buf())).unwrap(), Credential::Anonymous);
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Credential::Basic { username: "u".into(), password: Secret::new("hunter2") };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn bad_config_names_the_file_not_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        config(dir.path(), r#"{"auths":{"r.com":{"auth":"bm90LWEtcGFpcg=="}}}"#);
        let err = lookup("r.com", Some(dir.path().to_path_buf())).unwrap_err().to_string();
        assert!(err.contains("config.json") && err.contains("r.com"), "{err}");
        assert!(!err.contains("not-a-pair"), "{err}");
    }

    #[test]
    fn asks_credential_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        // A helper that knows one registry (read from stdin, as Docker's protocol has it).
        let script = bin.join("docker-credential-fake");
        std::fs::write(
            &script,
            "#!/bin/sh\nread url\nif [ \"$url\" = helped.example.com ]; then\n  \
             printf '{\"ServerURL\":\"%s\",\"Username\":\"carol\",\"Secret\":\"pw3\"}' \"$url\"\n\
             elif [ \"$url\" = tokened.example.com ]; then\n  \
             printf '{\"ServerURL\":\"%s\",\"Username\":\"<token>\",\"Secret\":\"rt\"}' \"$url\"\n\
             else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        config(dir.path(), r#"{"credsStore":"fake","credHelpers":{"broken.example.com":"absent"},"auths":{}}"#);
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let d = Some(dir.path().to_path_buf());
        let lookup = |r: &str, d: Option<PathBuf>| lookup_with(r, d, Some(&path));
        assert_eq!(
            lookup("helped.example.com", d.clone()).unwrap(),
            Credential::Basic { username: "carol".into(), password: Secret::new("pw3") }
        );
        assert_eq!(lookup("tokened.example.com", d.clone()).unwrap(), Credential::IdentityToken(Secret::new("rt")));
        assert_eq!(lookup("unknown.example.com", d.clone()).unwrap(), Credential::Anonymous);
        let err = lookup("broken.example.com", d).unwrap_err().to_string();
        assert!(err.contains("docker-credential-absent"), "{err}");
    }
}
