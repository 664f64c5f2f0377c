//! Where a builder container runs: a Docker API endpoint, written as the docker CLI writes
//! `DOCKER_HOST` — `unix:///PATH` (this machine's engine, or Podman's API socket), `tcp://HOST[:PORT]`
//! (TLS with client certificates when `DOCKER_TLS_VERIFY` is set, from `DOCKER_CERT_PATH`, as the
//! docker CLI does) or `ssh://[USER@]HOST[:PORT]` (`ssh HOST docker system dial-stdio`, see
//! `ssh_tunnel.rs`) — and which platform builds on which endpoint (`--builder-host
//! [PLATFORM=]URL`, `builder_host` in release-oci.toml: [`BuilderHosts`]). Parsing is pure; the
//! connection is `docker::connect_to`. See docs/builder.md, "Builders on other machines".

use crate::triple::{Arch, Triple};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The engine's socket when `DOCKER_HOST` is not set.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// The port of `tcp://HOST` without one: Docker's TLS port, or its plain one.
pub const TLS_PORT: u16 = 2376;
pub const PLAIN_PORT: u16 = 2375;

/// A Docker API endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `unix:///PATH`: an engine on this machine (Docker's, or Podman's compatible API).
    Unix { path: PathBuf },
    /// `tcp://HOST[:PORT]`: TLS or not as the environment says ([`TcpSecurity::from_env`]).
    Tcp { host: String, port: Option<u16> },
    /// `ssh://[USER@]HOST[:PORT]`: the engine of that machine's `docker system dial-stdio`.
    Ssh { user: Option<String>, host: String, port: Option<u16> },
}

/// A value that is not an endpoint; the message says what is wrong and how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a Docker API endpoint: {reason}; write unix:///PATH, tcp://HOST[:PORT] or \
     ssh://[USER@]HOST[:PORT]"
)]
pub struct EndpointError {
    pub value: String,
    pub reason: String,
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Endpoint, EndpointError> {
        let err = |reason: &str| EndpointError { value: s.to_string(), reason: reason.to_string() };
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(err("it has no scheme"));
        };
        match scheme {
            "unix" => {
                if rest.is_empty() {
                    return Err(err("it names no socket"));
                }
                if !rest.starts_with('/') {
                    return Err(err("the socket's path must be absolute (unix:///run/docker.sock)"));
                }
                Ok(Endpoint::Unix { path: PathBuf::from(rest) })
            }
            "tcp" => {
                let (host, port) = host_port(authority(rest).map_err(|r| err(&r))?).map_err(|r| err(&r))?;
                Ok(Endpoint::Tcp { host, port })
            }
            "ssh" => {
                let authority = authority(rest).map_err(|r| err(&r))?;
                let (user, hostport) = match authority.rsplit_once('@') {
                    Some((user, hostport)) => (Some(user), hostport),
                    None => (None, authority),
                };
                if let Some(user) = user {
                    if user.contains(':') {
                        return Err(err(
                            "a password in the URL is not supported: log in with a key (ssh-agent or ~/.ssh/config)",
                        ));
                    }
                    if user.is_empty() || user.starts_with('-') || !user.chars().all(user_char) {
                        return Err(err(&format!("{user:?} is not a user name")));
                    }
                }
                let (host, port) = host_port(hostport).map_err(|r| err(&r))?;
                Ok(Endpoint::Ssh { user: user.map(str::to_string), host, port })
            }
            "" => Err(err("it has no scheme")),
            other => Err(err(&format!("the scheme {other}:// is not supported"))),
        }
    }
}

/// The host part of `tcp://` and `ssh://`: no path, query or fragment (one trailing `/` is fine).
fn authority(rest: &str) -> Result<&str, String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err("a path after the host is not supported".into());
    }
    if rest.is_empty() {
        return Err("it names no host".into());
    }
    Ok(rest)
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
fn host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("an IPv6 address needs its closing ]")?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or(format!("unexpected {p:?} after the address"))?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => return Err("write an IPv6 address in brackets: [::1]:2376".into()),
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("it names no host".into());
    }
    if host.starts_with('-') || !host.chars().all(|c| c.is_ascii_alphanumeric() || "-._:%".contains(c)) {
        return Err(format!("{host:?} is not a host name or address"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("{p:?} is not a port (1 to 65535)")),
        },
    };
    Ok((host.to_string(), port))
}

fn user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._".contains(c)
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = |h: &str| if h.contains(':') { format!("[{h}]") } else { h.to_string() };
        let port = |p: &Option<u16>| p.map(|p| format!(":{p}")).unwrap_or_default();
        match self {
            Endpoint::Unix { path } => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp { host: h, port: p } => write!(f, "tcp://{}{}", host(h), port(p)),
            Endpoint::Ssh { user, host: h, port: p } => {
                let user = user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
                write!(f, "ssh://{user}{}{}", host(h), port(p))
            }
        }
    }
}

impl Endpoint {
    /// `DOCKER_HOST` (when set and not empty), else this machine's socket.
    pub fn from_env() -> Result<Endpoint, EndpointError> {
        Self::from_docker_host(std::env::var("DOCKER_HOST").ok().as_deref())
    }

    /// The endpoint of a `DOCKER_HOST` value (None or empty: this machine's socket).
    pub fn from_docker_host(value: Option<&str>) -> Result<Endpoint, EndpointError> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            Some(v) => v
                .parse()
                .map_err(|e: EndpointError| EndpointError { reason: format!("DOCKER_HOST: {}", e.reason), ..e }),
            None => Ok(Endpoint::Unix { path: PathBuf::from(DEFAULT_SOCKET) }),
        }
    }

    /// Whether the engine runs on this machine and sees its files (a bind mount of a host path
    /// works): a unix socket. A `tcp://` or `ssh://` engine is taken to be elsewhere, even on a
    /// loopback address.
    pub fn is_local(&self) -> bool {
        matches!(self, Endpoint::Unix { .. })
    }

    /// How to copy `image` from this machine's engine into this one.
    pub fn load_command(&self, image: &str) -> String {
        let tls = match self {
            Endpoint::Tcp { .. } => " (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH as for the build)",
            _ => "",
        };
        format!("`docker save {image} | DOCKER_HOST={self} docker load`{tls}")
    }
}

/// How a `tcp://` endpoint is reached, from the environment as the docker CLI reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpSecurity {
    /// Plain HTTP (no `DOCKER_TLS_VERIFY`).
    Plain,
    /// TLS: the engine's certificate verified against `ca.pem`, this client's `cert.pem` and
    /// `key.pem` shown to it; all three in `DOCKER_CERT_PATH` (default `~/.docker`).
    Tls { ca: PathBuf, cert: PathBuf, key: PathBuf },
}

impl TcpSecurity {
    /// `DOCKER_TLS_VERIFY` (any value but empty) asks for TLS with the files of
    /// `DOCKER_CERT_PATH`, else of `DOCKER_CONFIG`, else of `~/.docker`. `DOCKER_TLS` alone (TLS
    /// without checking the engine's certificate) is refused.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<TcpSecurity, String> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        if set("DOCKER_TLS_VERIFY").is_none() {
            if set("DOCKER_TLS").is_some() {
                return Err("DOCKER_TLS asks for TLS without verifying the engine's certificate, which release-oci \
                     does not do: set DOCKER_TLS_VERIFY=1 and put ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH"
                    .into());
            }
            return Ok(TcpSecurity::Plain);
        }
        let dir = match (set("DOCKER_CERT_PATH"), set("DOCKER_CONFIG"), set("HOME")) {
            (Some(d), _, _) | (None, Some(d), _) => PathBuf::from(d),
            (None, None, Some(home)) => PathBuf::from(home).join(".docker"),
            (None, None, None) => {
                return Err("DOCKER_TLS_VERIFY is set, and neither DOCKER_CERT_PATH nor HOME says where the \
                     certificates are"
                    .into());
            }
        };
        Ok(TcpSecurity::Tls { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") })
    }

    /// The port of `tcp://HOST` without one.
    pub fn default_port(&self) -> u16 {
        match self {
            TcpSecurity::Plain => PLAIN_PORT,
            TcpSecurity::Tls { .. } => TLS_PORT,
        }
    }
}

/// Which platform's builder runs on which engine: `--builder-host [PLATFORM=]URL` (repeatable) and
/// `builder_host` in release-oci.toml. A platform without one builds on the default engine
/// (`DOCKER_HOST`, or this machine's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuilderHosts {
    /// Every platform not named (`URL` alone, or `*=URL`).
    pub default: Option<Endpoint>,
    /// One engine per architecture, in the order given.
    pub platforms: Vec<(Arch, Endpoint)>,
}

/// A `--builder-host` value (or `builder_host` entry) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuilderHostError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error(
        "unknown platform {0:?}: name x86_64 (or amd64, linux/amd64), aarch64 (or arm64, linux/arm64), a \
         target triple, or * for every platform"
    )]
    Platform(String),
    #[error("{0:?} is not [PLATFORM=]URL (e.g. aarch64=ssh://build@arm64-host)")]
    Spec(String),
    #[error("{platform} is given two builder hosts, {first} and {second}: one each")]
    Twice { platform: String, first: String, second: String },
}

/// `x86_64`, `amd64`, `linux/amd64`, `aarch64`, `arm64`, `linux/arm64`, `linux/arm64/v8` or a
/// supported target triple; None for `*` (every platform).
pub fn parse_platform(key: &str) -> Result<Option<Arch>, BuilderHostError> {
    let key = key.trim();
    Ok(Some(match key {
        "*" => return Ok(None),
        "x86_64" | "amd64" | "linux/amd64" | "linux/x86_64" => Arch::X86_64,
        "aarch64" | "arm64" | "linux/arm64" | "linux/arm64/v8" | "linux/aarch64" => Arch::Aarch64,
        other => match other.parse::<Triple>() {
            Ok(t) => t.arch,
            Err(_) => return Err(BuilderHostError::Platform(key.to_string())),
        },
    }))
}

/// The OCI platform of `arch`, as lines and messages name it.
pub fn platform_name(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "linux/amd64",
        Arch::Aarch64 => "linux/arm64",
    }
}

impl BuilderHosts {
    /// `[PLATFORM=]URL`: a value that starts with a URL (`SCHEME://`) is for every platform.
    pub fn parse_spec(spec: &str) -> Result<(Option<Arch>, Endpoint), BuilderHostError> {
        let spec = spec.trim();
        let scheme_end = spec.find("://");
        let eq = spec.find('=');
        match (eq, scheme_end) {
            (Some(eq), Some(se)) if eq < se => {
                let (key, url) = (&spec[..eq], &spec[eq + 1..]);
                if key.trim().is_empty() {
                    return Err(BuilderHostError::Spec(spec.to_string()));
                }
                Ok((parse_platform(key)?, url.trim().parse()?))
            }
            (_, Some(_)) => Ok((None, spec.parse()?)),
            (Some(eq), None) => {
                // `aarch64=host`: the platform is fine, the URL has no scheme.
                parse_platform(&spec[..eq])?;
                Err(spec[eq + 1..].trim().parse::<Endpoint>().unwrap_err().into())
            }
            (None, None) => Err(BuilderHostError::Spec(spec.to_string())),
        }
    }

    /// The hosts of several `[PLATFORM=]URL` values; a platform (or `*`) given twice is an error.
    pub fn from_specs<S: AsRef<str>>(specs: &[S]) -> Result<BuilderHosts, BuilderHostError> {
        let mut hosts = BuilderHosts::default();
        for spec in specs {
            let (arch, endpoint) = Self::parse_spec(spec.as_ref())?;
            hosts.add(arch, endpoint)?;
        }
        Ok(hosts)
    }

    /// The hosts of `builder_host` in a settings file: a URL for every platform, or a table of
    /// `PLATFORM = URL`.
    pub fn from_table<K: AsRef<str>, V: AsRef<str>>(
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<BuilderHosts, BuilderHostError> {
        let mut hosts = BuilderHosts::default();
        for (key, url) in entries {
            hosts.add(parse_platform(key.as_ref())?, url.as_ref().trim().parse()?)?;
        }
        Ok(hosts)
    }

    fn add(&mut self, arch: Option<Arch>, endpoint: Endpoint) -> Result<(), BuilderHostError> {
        let twice = |platform: &str, first: &Endpoint| BuilderHostError::Twice {
            platform: platform.to_string(),
            first: first.to_string(),
            second: endpoint.to_string(),
        };
        match arch {
            None => match &self.default {
                Some(first) => return Err(twice("every platform (*)", first)),
                None => self.default = Some(endpoint),
            },
            Some(arch) => match self.platforms.iter().find(|(a, _)| *a == arch) {
                Some((_, first)) => return Err(twice(platform_name(arch), first)),
                None => self.platforms.push((arch, endpoint)),
            },
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.platforms.is_empty()
    }

    /// `self` (the flags) over `file`: each platform's flag wins over the file's entry for it, and
    /// a flag for every platform over the file's.
    pub fn over(self, file: BuilderHosts) -> BuilderHosts {
        let BuilderHosts { default, mut platforms } = self;
        for (arch, endpoint) in file.platforms {
            if !platforms.iter().any(|(a, _)| *a == arch) {
                platforms.push((arch, endpoint));
            }
        }
        BuilderHosts { default: default.or(file.default), platforms }
    }

    /// The engine `triple`'s builder runs on; None: the default engine.
    pub fn for_triple(&self, triple: &Triple) -> Option<&Endpoint> {
        self.platforms.iter().find(|(a, _)| *a == triple.arch).map(|(_, e)| e).or(self.default.as_ref())
    }
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
