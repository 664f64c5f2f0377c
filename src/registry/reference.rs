//! Image references as Docker spells them: `[HOST[:PORT]/]PATH[:TAG][@sha256:HEX]`.
//! A first path component with a `.` or a `:`, or `localhost`, is a registry host; otherwise the
//! image is on Docker Hub (`docker.io`, single names under `library/`).

use crate::digest::Digest;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Docker Hub's name in references, and the host its API answers on.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `host[:port]`, e.g. `127.0.0.1:5000` or `docker.io`.
    pub registry: String,
    /// The repository path, e.g. `team/my_app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid image reference {input:?}: {reason}; expected [HOST[:PORT]/]PATH[:TAG][@sha256:DIGEST]")]
pub struct ParseReferenceError {
    pub input: String,
    pub reason: String,
}

/// Whether the first component of `s` names a registry host (Docker's rule).
pub fn names_registry(s: &str) -> bool {
    match s.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// `host:PORT` needs a port from 1 to 65535 (checked before any build starts, so that a typo in
/// `--push` is not found only after the build).
fn check_port(registry: &str) -> Result<(), String> {
    // `[::1]:5000`: the port follows the bracket; a bare host has none.
    let after_host = registry.rsplit_once(']').map_or(registry, |(_, rest)| rest);
    let Some((_, port)) = after_host.rsplit_once(':') else { return Ok(()) };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("the registry port {port:?} is not a number from 1 to 65535")),
    }
}

fn valid_tag(t: &str) -> bool {
    let mut chars = t.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok && t.len() <= 128 && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A tag alone (`latest`, `1.4.2`), as `--tag` may give it.
pub fn is_bare_tag(t: &str) -> bool {
    valid_tag(t)
}

fn valid_component(c: &str) -> bool {
    !c.is_empty()
        && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

impl FromStr for Reference {
    type Err = ParseReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ParseReferenceError { input: s.to_string(), reason: reason.to_string() };
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|_| err("the digest is not sha256:<64 hex>"))?)),
            None => (s, None),
        };
        let (registry, path) = if names_registry(rest) {
            let (host, path) = rest.split_once('/').ok_or_else(|| err("no repository after the host"))?;
            (host.to_string(), path)
        } else {
            (DOCKER_HUB.to_string(), rest)
        };
        if registry.is_empty() || registry.chars().any(|c| c.is_whitespace() || c == '@') {
            return Err(err("the registry host is not valid"));
        }
        check_port(&registry).map_err(|reason| err(&reason))?;
        // The tag follows the last ':' after the last '/'.
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].rfind(':') {
            Some(i) => (&path[..last_slash + i], Some(&path[last_slash + i + 1..])),
            None => (path, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(err("the tag must be 1-128 of [A-Za-z0-9_.-], not starting with . or -"));
        }
        if !repository.split('/').all(valid_component) {
            return Err(err("repository path components are lowercase letters, digits and . _ - (separators inside)"));
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        Ok(Reference { registry, repository, tag: tag.map(String::from), digest })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl Reference {
    /// `registry/repository`, what `REPO@sha256:...` is printed with.
    pub fn repository_ref(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry for: the digest when there is one, else the tag (`latest` when
    /// neither is given, as Docker does).
    pub fn api_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The host the registry's API answers on.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }
}

/// The host the API of `registry` answers on (Docker Hub's differs from its name).
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB || registry == "index.docker.io" { DOCKER_HUB_API } else { registry }
}

/// Whether `registry` (`host[:port]`) is on this machine: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        registry.rsplit_once(':').map_or(registry, |(h, p)| if p.parse::<u16>().is_ok() { h } else { registry })
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_hosts_paths_tags_digests() {
        let r: Reference = "127.0.0.1:5000/team/app:1.4.2".parse().unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "team/app", Some("1.4.2"))
        );
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/app:1.4.2");
        let r: Reference = format!("registry.example.com/x/y@{D}").parse().unwrap();
        assert_eq!(r.digest.as_ref().map(|d| d.as_str()), Some(D));
        assert_eq!(r.api_reference(), D);
        assert_eq!(r.repository_ref(), "registry.example.com/x/y");
        let r: Reference = "localhost/app".parse().unwrap();
        assert_eq!((r.registry.as_str(), r.api_reference()), ("localhost", "latest".to_string()));
        let r: Reference = "debian:bookworm".parse().unwrap();
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("docker.io", "library/debian"));
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r: Reference = format!("host:5000/a:t@{D}").parse().unwrap();
        assert_eq!((r.tag.as_deref(), r.to_string()), (Some("t"), format!("host:5000/a:t@{D}")));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["Host.com/UPPER:1", "h.com/a:", "h.com/a:-x", "h.com/a@sha256:12", "h.com/", "h.com//a", "h.com/a-"]
        {
            assert!(bad.parse::<Reference>().is_err(), "{bad}");
        }
        for bad in ["host:99999/x", "host:0/x", "host:port/x", "127.0.0.1:/x"] {
            let e = bad.parse::<Reference>().unwrap_err().to_string();
            assert!(e.contains("from 1 to 65535"), "{bad}: {e}");
        }
        assert!("[::1]:5000/x".parse::<Reference>().is_ok());
    }

    #[test]
    fn registry_detection_and_loopback() {
        assert!(names_registry("127.0.0.1:5000/base/runtime:1"));
        assert!(names_registry("registry.example.com/x/y"));
        assert!(names_registry("localhost/x"));
        assert!(!names_registry("release-oci/runtime:debian-bookworm"));
        assert!(!names_registry("debian:bookworm"));
        for l in ["127.0.0.1:5000", "127.1.2.3", "localhost:1", "[::1]:5000", "localhost"] {
            assert!(is_loopback(l), "{l}");
        }
        for n in ["10.0.0.1:5000", "registry.example.com", "localhost.example.com:5000", "[::2]:1"] {
            assert!(!is_loopback(n), "{n}");
        }
        assert!(is_bare_tag("latest") && is_bare_tag("1.4.2") && !is_bare_tag("a:b") && !is_bare_tag("x/y"));
    }
}
