//! Single `build` values, parsed the same way from a flag or from `release-oci.toml` (the caller
//! names the flag or key in the error).

use super::build_options::CaChoice;
use crate::plan::User;
use anyhow::{Context, bail};
use std::path::PathBuf;

/// The runtime user as given (`--user`, `user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSpec {
    Ids { uid: u32, gid: u32 },
    Name(String),
}

impl UserSpec {
    /// Resolves against the base's /etc/passwd.
    pub fn resolve(&self, passwd: &str) -> anyhow::Result<User> {
        match self {
            UserSpec::Ids { uid, gid } => {
                let existing = passwd.lines().find(|l| l.split(':').nth(2) == Some(&uid.to_string()));
                let (name, home) = match existing {
                    Some(l) => {
                        let f: Vec<&str> = l.split(':').collect();
                        (f[0].to_string(), f.get(5).copied().unwrap_or("/").to_string())
                    }
                    None => ("app".to_string(), "/app".to_string()),
                };
                Ok(User { name, uid: *uid, gid: *gid, home })
            }
            UserSpec::Name(n) => {
                let line = passwd.lines().find(|l| l.split(':').next() == Some(n.as_str())).with_context(|| {
                    format!("user {n:?} is not in the base image's /etc/passwd; pass --user UID[:GID]")
                })?;
                let f: Vec<&str> = line.split(':').collect();
                if f.len() < 6 {
                    bail!("malformed /etc/passwd line for {n:?} in the base image");
                }
                Ok(User { name: n.clone(), uid: f[2].parse()?, gid: f[3].parse()?, home: f[5].to_string() })
            }
        }
    }
}

/// `UID[:GID]`, a user name, or `root`.
pub(super) fn parse_user(s: &str) -> anyhow::Result<UserSpec> {
    if s == "root" {
        return Ok(UserSpec::Ids { uid: 0, gid: 0 });
    }
    let (u, g) = s.split_once(':').map_or((s, None), |(u, g)| (u, Some(g)));
    match u.parse::<u32>() {
        Ok(uid) => {
            let gid = match g {
                Some(g) => g.parse().context("the group must be a number")?,
                None => uid,
            };
            Ok(UserSpec::Ids { uid, gid })
        }
        Err(_) if g.is_none() && !u.is_empty() => Ok(UserSpec::Name(u.to_string())),
        Err(_) => bail!("not UID[:GID], a user name, or root"),
    }
}

/// `PORT[/tcp|udp|sctp]` → `PORT/PROTOCOL`.
pub(super) fn parse_port(s: &str) -> anyhow::Result<String> {
    let (num, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let n: u16 = num.parse().context("not a port number")?;
    if n == 0 || !matches!(proto, "tcp" | "udp" | "sctp") {
        bail!("not PORT[/tcp|udp|sctp]");
    }
    Ok(format!("{n}/{proto}"))
}

/// `--NAME KEY=VALUE`.
pub(super) fn key_value(name: &str, s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("--{name} {s:?} is not KEY=VALUE"),
    }
}

/// Image names (`--tag`, `tags`): lowercase, no blanks.
pub(super) fn check_tags(what: &str, tags: Vec<String>) -> anyhow::Result<Vec<String>> {
    for t in &tags {
        if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase()) {
            bail!("{what} {t:?} is not a valid image name (lowercase, no spaces)");
        }
    }
    Ok(tags)
}

/// `--pids-limit`, `pids_limit`: at least 1.
pub(super) fn pids(n: i64) -> Result<i64, crate::builder::limits::LimitError> {
    crate::builder::Limits::from_flags(None, Some(n)).map(|l| l.pids)
}

/// `--builder-catalogue REPO`: a repository, without a tag or digest (its tags are the catalogue).
pub(super) fn parse_catalogue(repo: &str) -> anyhow::Result<crate::registry::Reference> {
    let r: crate::registry::Reference = repo.parse()?;
    if r.tag.is_some() || r.digest.is_some() {
        bail!("name the repository only (its tags are the catalogue), e.g. {}", r.repository_ref());
    }
    Ok(r)
}

/// `--build-ca FILE|none`.
pub(super) fn ca_choice(value: String) -> CaChoice {
    if value == "none" { CaChoice::None } else { CaChoice::File(PathBuf::from(value)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert_eq!(parse_user("root").unwrap(), UserSpec::Ids { uid: 0, gid: 0 });
        assert_eq!(parse_user("1000").unwrap(), UserSpec::Ids { uid: 1000, gid: 1000 });
        assert_eq!(parse_user("1000:2000").unwrap(), UserSpec::Ids { uid: 1000, gid: 2000 });
        assert_eq!(parse_user("nobody").unwrap(), UserSpec::Name("nobody".into()));
        assert!(parse_user("1000:x").is_err());
        let passwd = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        let u = UserSpec::Name("nobody".into()).resolve(passwd).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (65534, 65534, "/nonexistent"));
        let u = UserSpec::Ids { uid: 10001, gid: 10001 }.resolve(passwd).unwrap();
        assert_eq!(u.name, "app");
        assert!(UserSpec::Name("ghost".into()).resolve(passwd).is_err());
    }

    #[test]
    fn ports_pairs_tags_and_pids() {
        assert_eq!(parse_port("4000").unwrap(), "4000/tcp");
        assert_eq!(parse_port("53/udp").unwrap(), "53/udp");
        assert!(parse_port("http").is_err());
        assert!(parse_port("0").is_err());
        assert_eq!(key_value("env", "A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(key_value("env", "=x").is_err());
        let e = check_tags("tags", vec!["App:1".into()]).unwrap_err().to_string();
        assert!(e.starts_with("tags \"App:1\" is not a valid image name"), "{e}");
        assert_eq!(pids(64).unwrap(), 64);
        assert!(pids(0).unwrap_err().to_string().contains("at least 1"));
        assert_eq!(ca_choice("none".into()), CaChoice::None);
    }
}
