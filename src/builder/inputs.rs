//! What a build is given besides the sources (docs/builder-inputs.md): the builder's own
//! environment (`--build-env`), secrets (`--secret`), the caller's SSH agent (`--ssh`), Hex
//! repositories (`[[hex.repos]]`) and a Hex client archive (`--hex-client`), the certificate
//! authorities to trust (the host's bundle, or `--build-ca`), and whether Phoenix assets are built
//! (`--assets`).
//!
//! Secrets are read on the host when the settings are resolved (a missing one fails before
//! anything runs, naming its id), travel in the upload as files that `build_user.sh` moves into a
//! tmpfs (`/run/secrets/ID`) before the build starts, and are only ever printed as
//! [`REDACTED`]: their [`Debug`] hides the value, the result-cache key holds their ids only, and
//! the builder's log has every value replaced ([`BuilderInputs::redactions`]).

use std::path::{Path, PathBuf};

/// What a secret's value is shown as.
pub const REDACTED: &str = "[secret]";
/// Where the inputs are uploaded in the builder container.
pub const INPUTS_DIR: &str = "/build/inputs";
/// Where `build_user.sh` puts the secrets (a tmpfs), one file per id.
pub const SECRETS_DIR: &str = "/run/secrets";
/// Where the SSH agent's socket (a forwarding one, see `ssh_agent.rs`) is mounted.
pub const SSH_DIR: &str = "/run/release-oci-ssh";

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(
        "--secret {spec:?}: {message}; write it as id=ID,env=VAR or id=ID,src=FILE (and ,build_env=NAME to also set NAME in the build)"
    )]
    SecretSpec { spec: String, message: String },
    #[error("secret {id}: the environment variable {var} is not set; export it, or pass the secret with src=FILE")]
    SecretEnvMissing { id: String, var: String },
    #[error("secret {id}: cannot read {}: {source}", path.display())]
    SecretFile { id: String, path: PathBuf, source: std::io::Error },
    #[error("--build-env {0:?} is not KEY=VALUE (a KEY of letters, digits and _)")]
    BuildEnv(String),
    #[error("--ssh {spec:?}: {message}; pass --ssh default (the agent of SSH_AUTH_SOCK) or --ssh ID=SOCKET")]
    Ssh { spec: String, message: String },
    #[error("[[hex.repos]] {name}: {message}")]
    HexRepo { name: String, message: String },
    #[error("cannot read {what} {}: {source}", path.display())]
    Read { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("--assets {0:?}: the choices are auto and skip")]
    Assets(String),
}

/// A secret's value: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    pub fn new(bytes: Vec<u8>) -> SecretValue {
        SecretValue(bytes)
    }
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

/// `--secret id=ID,env=VAR|src=FILE[,build_env=NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub id: String,
    pub value: SecretValue,
    /// Also the build's environment variable NAME (read from the file by the script, never in
    /// the container's configuration).
    pub build_env: Option<String>,
}

/// `--ssh ID=SOCKET`: an SSH agent the build may use (`default`: SSH_AUTH_SOCK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshAgent {
    pub id: String,
    pub socket: PathBuf,
}

/// A Hex repository as `mix hex.repo add|set` would configure it; `hexpm` replaces the public
/// repository's URL and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexRepo {
    pub name: String,
    pub url: String,
    /// The public key (PEM) that signs the repository's registry, read from the project.
    pub public_key: Option<String>,
    /// The id of the `--secret` that holds the repository's auth key.
    pub auth_secret: Option<String>,
}

/// Whether Phoenix assets are built (`assets.setup`, `assets.deploy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AssetsMode {
    /// When the project has an `assets.deploy` alias.
    #[default]
    Auto,
    Skip,
}

impl std::str::FromStr for AssetsMode {
    type Err = InputError;
    fn from_str(s: &str) -> Result<AssetsMode, InputError> {
        match s {
            "auto" => Ok(AssetsMode::Auto),
            "skip" => Ok(AssetsMode::Skip),
            other => Err(InputError::Assets(other.to_string())),
        }
    }
}

impl AssetsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AssetsMode::Auto => "auto",
            AssetsMode::Skip => "skip",
        }
    }
}

/// Everything a build is given besides the sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuilderInputs {
    /// The builder's environment (not the image's).
    pub env: Vec<(String, String)>,
    pub secrets: Vec<Secret>,
    pub ssh: Vec<SshAgent>,
    pub hex_repos: Vec<HexRepo>,
    /// A Hex client archive (`hex-VERSION.ez`) to install when the builder has none.
    pub hex_client: Option<PathBuf>,
    /// The certificate authorities the build trusts besides the builder image's own (PEM).
    pub ca_bundle: Option<PathBuf>,
    pub assets: AssetsMode,
}

impl BuilderInputs {
    /// The secret values, to replace in the builder's log.
    pub fn redactions(&self) -> Vec<Vec<u8>> {
        self.secrets.iter().map(|s| s.value.bytes().to_vec()).filter(|v| !v.is_empty()).collect()
    }

    /// What shapes the output, for the result cache's key: never a secret's value.
    pub fn key_part(&self) -> String {
        let BuilderInputs { env, secrets, ssh, hex_repos, hex_client, ca_bundle: _, assets } = self;
        let secrets: Vec<(&str, &Option<String>)> = secrets.iter().map(|s| (s.id.as_str(), &s.build_env)).collect();
        let ssh: Vec<&str> = ssh.iter().map(|a| a.id.as_str()).collect();
        let client = hex_client.as_deref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        format!("{env:?} {secrets:?} {ssh:?} {hex_repos:?} {client:?} {}", assets.as_str())
    }

    /// Checks that every `auth_secret` names a secret that was passed.
    pub fn check(&self) -> Result<(), InputError> {
        for repo in &self.hex_repos {
            if let Some(id) = &repo.auth_secret
                && !self.secrets.iter().any(|s| &s.id == id)
            {
                return Err(InputError::HexRepo {
                    name: repo.name.clone(),
                    message: format!(
                        "its auth key is the secret {id:?}, which was not passed: add --secret id={id},env=VAR (or src=FILE)"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Parses `--build-env KEY=VALUE`.
pub fn parse_build_env(spec: &str) -> Result<(String, String), InputError> {
    match spec.split_once('=') {
        Some((k, v)) if is_env_name(k) => Ok((k.to_string(), v.to_string())),
        _ => Err(InputError::BuildEnv(spec.to_string())),
    }
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && s != ".."
        && s != "."
}

/// Parses `--secret id=ID,env=VAR|src=FILE[,build_env=NAME]` and reads the value (`env` and
/// `getenv` stand for the process environment; relative files are relative to the current
/// directory).
pub fn parse_secret(spec: &str, getenv: impl Fn(&str) -> Option<String>) -> Result<Secret, InputError> {
    let bad = |message: &str| InputError::SecretSpec { spec: spec.to_string(), message: message.to_string() };
    let (mut id, mut env, mut src, mut build_env) = (None, None, None, None);
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').ok_or_else(|| bad(&format!("{field:?} is not KEY=VALUE")))?;
        let slot = match k {
            "id" => &mut id,
            "env" => &mut env,
            "src" | "source" => &mut src,
            "build_env" => &mut build_env,
            other => return Err(bad(&format!("unknown field {other:?}"))),
        };
        if slot.replace(v.to_string()).is_some() {
            return Err(bad(&format!("{k} is given twice")));
        }
    }
    let id = id.filter(|i| is_id(i)).ok_or_else(|| bad("id is missing or not a name (letters, digits, _ - .)"))?;
    if let Some(name) = &build_env
        && !is_env_name(name)
    {
        return Err(bad(&format!("build_env {name:?} is not a variable name")));
    }
    let value = match (env, src) {
        (Some(var), None) => {
            getenv(&var).ok_or_else(|| InputError::SecretEnvMissing { id: id.clone(), var: var.clone() })?.into_bytes()
        }
        (None, Some(file)) => std::fs::read(&file).map_err(|source| InputError::SecretFile {
            id: id.clone(),
            path: file.into(),
            source,
        })?,
        _ => return Err(bad("give exactly one of env=VAR and src=FILE")),
    };
    Ok(Secret { id, value: SecretValue(value), build_env })
}

/// Parses `--ssh default` (SSH_AUTH_SOCK) or `--ssh ID=SOCKET`.
pub fn parse_ssh(spec: &str, getenv: impl Fn(&str) -> Option<String>) -> Result<SshAgent, InputError> {
    let bad = |message: String| InputError::Ssh { spec: spec.to_string(), message };
    let (id, socket) = match spec.split_once('=') {
        Some((id, socket)) => (id.to_string(), PathBuf::from(socket)),
        None if spec == "default" => {
            let sock = getenv("SSH_AUTH_SOCK").filter(|s| !s.is_empty());
            let sock = sock.ok_or_else(|| {
                bad("SSH_AUTH_SOCK is not set: start an agent (ssh-agent) and add the key (ssh-add)".into())
            })?;
            ("default".to_string(), PathBuf::from(sock))
        }
        None => return Err(bad("not `default` or ID=SOCKET".into())),
    };
    if !is_id(&id) {
        return Err(bad(format!("{id:?} is not a name")));
    }
    Ok(SshAgent { id, socket })
}

/// The CA bundle this machine trusts: SSL_CERT_FILE, else the first of the usual places.
pub fn host_ca_bundle(getenv: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(file) = getenv("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        return Some(PathBuf::from(file));
    }
    const PLACES: &[&str] = &[
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ];
    PLACES.iter().map(Path::new).find(|p| p.is_file()).map(Path::to_path_buf)
}

/// Replaces every occurrence of each of `values` in `line` with [`REDACTED`].
pub fn redact(line: &str, values: &[Vec<u8>]) -> String {
    let mut out = line.to_string();
    for v in values {
        if let Ok(text) = std::str::from_utf8(v) {
            let text = text.trim_end_matches(['\n', '\r']);
            if !text.is_empty() && out.contains(text) {
                out = out.replace(text, REDACTED);
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "inputs_tests.rs"]
mod tests;
