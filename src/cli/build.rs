//! `release-oci build` flags and their validation.

use crate::base::BaseRef;
use crate::plan::User;
use crate::sink::Target;
use crate::triple::Triple;
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuilderKind {
    /// In a builder container of the Docker engine (DOCKER_HOST or the default socket).
    Docker,
    /// On this machine; only when it matches the target triple.
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullArg {
    /// Pull the builder image when the engine does not have it.
    Missing,
    /// Never pull; fail when the image is missing.
    Never,
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The project directory (with mix.exs).
    #[arg(default_value = ".")]
    pub project: PathBuf,
    /// Target triple: ARCH-VENDOR-linux-ABI with ARCH x86_64 or aarch64, ABI gnu or musl.
    #[arg(long, default_value = "x86_64-unknown-linux-gnu", env = "RELEASE_OCI_TRIPLE")]
    pub triple: String,
    /// Where the release is assembled.
    #[arg(long, value_enum, default_value = "docker")]
    pub builder: BuilderKind,
    /// Builder image (default: release-oci/builder:debian-bookworm for gnu, :alpine for musl).
    #[arg(long, env = "RELEASE_OCI_BUILDER_IMAGE")]
    pub builder_image: Option<String>,
    /// Whether to pull a missing builder image.
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: PullArg,
    /// MIX_ENV for the build.
    #[arg(long, default_value = "prod")]
    pub mix_env: String,
    /// The release to build (default: the project's only or default release).
    #[arg(long)]
    pub release: Option<String>,
    /// Runtime base image: a local Docker image (NAME or docker-daemon:NAME), oci:DIR[:TAG], or
    /// scratch (default: release-oci/runtime:debian-bookworm for gnu, :alpine for musl).
    #[arg(long, env = "RELEASE_OCI_BASE")]
    pub base: Option<String>,
    /// The user the container runs as: UID[:GID] (added to /etc/passwd as `app` when the base has
    /// no such user), a user name the base has, or root.
    #[arg(long, default_value = "10001:10001")]
    pub user: String,
    /// Environment variable for the image (KEY=VALUE; repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Port the application listens on (PORT or PORT/udp; repeatable).
    #[arg(long = "port", short = 'p', value_name = "PORT")]
    pub ports: Vec<String>,
    /// Image label (KEY=VALUE; repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Manifest annotation (KEY=VALUE; repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Where the image goes: oci:DIR[:TAG] or docker-archive:FILE (repeatable).
    #[arg(long = "output", short = 'o', value_name = "TARGET")]
    pub outputs: Vec<String>,
    /// Load the image into the local Docker engine.
    #[arg(long)]
    pub load: bool,
    /// Image name for --load and docker-archive outputs (NAME[:TAG]; repeatable; default
    /// RELEASE:VERSION).
    #[arg(long = "tag", short = 't')]
    pub tags: Vec<String>,
    /// Keep releases/COOKIE in the image (by default it is left out and a cookie is made at start
    /// unless RELEASE_COOKIE is set).
    #[arg(long)]
    pub include_cookie: bool,
    /// Source URL recorded as org.opencontainers.image.source (default: git remote origin).
    #[arg(long)]
    pub source_url: Option<String>,
    /// Blob cache directory (default: $RELEASE_OCI_CACHE or ~/.cache/release-oci).
    #[arg(long, env = "RELEASE_OCI_CACHE")]
    pub cache_dir: Option<PathBuf>,
}

/// Validated build settings.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    pub project: PathBuf,
    pub triple: Triple,
    pub builder: BuilderKind,
    pub builder_image: String,
    pub pull_missing: bool,
    pub mix_env: String,
    pub release: Option<String>,
    pub base: BaseRef,
    pub user: UserSpec,
    pub env: Vec<(String, String)>,
    pub ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub outputs: Vec<Target>,
    pub load: bool,
    pub tags: Vec<String>,
    pub include_cookie: bool,
    pub source_url: Option<String>,
    pub cache_dir: PathBuf,
    /// Seconds since the epoch for every timestamp (SOURCE_DATE_EPOCH, else 0).
    pub epoch: u64,
}

/// The runtime user as given on the command line.
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

fn key_value(kind: &str, s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("--{kind} {s:?} is not KEY=VALUE"),
    }
}

fn parse_user(s: &str) -> anyhow::Result<UserSpec> {
    if s == "root" {
        return Ok(UserSpec::Ids { uid: 0, gid: 0 });
    }
    let (u, g) = s.split_once(':').map_or((s, None), |(u, g)| (u, Some(g)));
    match u.parse::<u32>() {
        Ok(uid) => {
            let gid = match g {
                Some(g) => g.parse().with_context(|| format!("--user {s:?}: group must be a number"))?,
                None => uid,
            };
            Ok(UserSpec::Ids { uid, gid })
        }
        Err(_) if g.is_none() && !u.is_empty() => Ok(UserSpec::Name(u.to_string())),
        Err(_) => bail!("--user {s:?} is not UID[:GID], a user name, or root"),
    }
}

fn parse_port(s: &str) -> anyhow::Result<String> {
    let (num, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let n: u16 = num.parse().with_context(|| format!("--port {s:?} is not a port number"))?;
    if n == 0 || !matches!(proto, "tcp" | "udp" | "sctp") {
        bail!("--port {s:?} is not PORT[/tcp|udp|sctp]");
    }
    Ok(format!("{n}/{proto}"))
}

impl BuildArgs {
    pub fn validate(self) -> anyhow::Result<BuildSettings> {
        let triple: Triple = self.triple.parse()?;
        let base: BaseRef = match &self.base {
            Some(b) => b.parse()?,
            None => BaseRef::Daemon(triple.default_base_image().to_string()),
        };
        let outputs = self
            .outputs
            .iter()
            .map(|o| o.parse::<Target>().with_context(|| format!("--output {o:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(s) if !s.trim().is_empty() => {
                s.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH={s:?} is not a whole number of seconds"))?
            }
            _ => 0,
        };
        for t in &self.tags {
            if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase()) {
                bail!("--tag {t:?} is not a valid image name (lowercase, no spaces)");
            }
        }
        Ok(BuildSettings {
            builder_image: self.builder_image.unwrap_or_else(|| triple.default_builder_image().to_string()),
            triple,
            project: self.project,
            builder: self.builder,
            pull_missing: self.pull == PullArg::Missing,
            mix_env: self.mix_env,
            release: self.release,
            base,
            user: parse_user(&self.user)?,
            env: self.env.iter().map(|e| key_value("env", e)).collect::<anyhow::Result<_>>()?,
            ports: self.ports.iter().map(|p| parse_port(p)).collect::<anyhow::Result<_>>()?,
            labels: self.labels.iter().map(|e| key_value("label", e)).collect::<anyhow::Result<_>>()?,
            annotations: self.annotations.iter().map(|e| key_value("annotation", e)).collect::<anyhow::Result<_>>()?,
            outputs,
            load: self.load,
            tags: self.tags,
            include_cookie: self.include_cookie,
            source_url: self.source_url,
            cache_dir: self.cache_dir.unwrap_or_else(crate::store::BlobStore::default_root),
            epoch,
        })
    }
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
    fn ports_and_pairs() {
        assert_eq!(parse_port("4000").unwrap(), "4000/tcp");
        assert_eq!(parse_port("53/udp").unwrap(), "53/udp");
        assert!(parse_port("http").is_err());
        assert!(parse_port("0").is_err());
        assert_eq!(key_value("env", "A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(key_value("env", "=x").is_err());
    }
}
