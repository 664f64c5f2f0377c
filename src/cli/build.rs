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
    /// The project directory (with mix.exs, or rebar.config with a relx section).
    #[arg(default_value = ".")]
    pub project: PathBuf,
    /// Project settings file (default: PROJECT/release-oci.toml when it exists); flags win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Ignore PROJECT/release-oci.toml.
    #[arg(long, conflicts_with = "config")]
    pub no_config: bool,
    /// Target triple: ARCH-VENDOR-linux-ABI with ARCH x86_64 or aarch64, ABI gnu or musl
    /// [default: x86_64-unknown-linux-gnu]. Repeatable (or comma-separated): one image per
    /// platform, combined into one image index.
    #[arg(long, env = "RELEASE_OCI_TRIPLE", value_delimiter = ',')]
    pub triple: Vec<String>,
    /// Where the release is assembled [default: docker].
    #[arg(long, value_enum)]
    pub builder: Option<BuilderKind>,
    /// Builder image (default: release-oci/builder:debian-bookworm for gnu, :musl for x86_64 musl).
    #[arg(long, env = "RELEASE_OCI_BUILDER_IMAGE")]
    pub builder_image: Option<String>,
    /// A registry repository of builders tagged like the official hexpm/elixir
    /// (ELIXIR-erlang-OTP-debian-SUITE-DATE-slim), e.g. 127.0.0.1:5000/hexpm/elixir: when the
    /// project's pins are not met by the default builder, the newest tag that meets them is
    /// pulled and made into a builder (docs/toolchain.md).
    #[arg(long, value_name = "REPO")]
    pub builder_catalogue: Option<String>,
    /// Whether to pull a missing builder image [default: missing].
    #[arg(long, value_enum)]
    pub pull: Option<PullArg>,
    /// MIX_ENV for the build [default: prod].
    #[arg(long)]
    pub mix_env: Option<String>,
    /// The rebar3 profile for rebar3 projects (`rebar3 as PROFILE release`) [default: prod].
    #[arg(long)]
    pub profile: Option<String>,
    /// The release to build (default: the project's only or default release); `all` builds every
    /// release of the project, each into its own image, from one builder run.
    #[arg(long)]
    pub release: Option<String>,
    /// Layer an already assembled release (a directory, or a .tar.gz made by the :tar step)
    /// instead of building one: no builder runs. Its ERTS must match --triple.
    #[arg(long, value_name = "DIR|TARBALL")]
    pub from_release: Option<PathBuf>,
    /// The static tini binary for --from-release (default: taken from the builder image).
    #[arg(long, value_name = "FILE")]
    pub tini: Option<PathBuf>,
    /// The start command: a command of bin/RELEASE (default: `start` for mix releases,
    /// `foreground` for relx ones) or a script in the release's bin/ (e.g. `server` from
    /// rel/overlays/bin/server).
    #[arg(long)]
    pub cmd: Option<String>,
    /// Runtime base image: `minimal` (only the files the release needs, from the builder), `debian`
    /// (release-oci/runtime:debian-bookworm), a local Docker image (NAME or docker-daemon:NAME),
    /// oci:DIR[:TAG], a registry reference, or scratch (default: minimal, except the
    /// release-oci/runtime:alpine image for aarch64 musl; with --from-release the runtime image).
    #[arg(long, env = "RELEASE_OCI_BASE")]
    pub base: Option<String>,
    /// Leave out the ERTS programs and directories a server never runs (erlc, dialyzer, typer,
    /// ct_run, escript, yielding_c_fun; include/, lib/, doc/, man/, src/); `inspect` lists them.
    #[arg(long)]
    pub slim_erts: bool,
    /// Put the time zone database (/usr/share/zoneinfo) into the minimal base, for TZ=Area/City.
    #[arg(long)]
    pub tzdata: bool,
    /// The user the container runs as: UID[:GID] (added to /etc/passwd as `app` when the base has
    /// no such user), a user name the base has, or root [default: 10001:10001].
    #[arg(long)]
    pub user: Option<String>,
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
    /// RELEASE:VERSION); `{release}` is replaced by the release name (needed with several releases).
    #[arg(long = "tag", short = 't')]
    pub tags: Vec<String>,
    /// Push the image to this registry reference (HOST[:PORT]/REPOSITORY[:TAG]); stdout then shows
    /// REPOSITORY@DIGEST. Bare --tag values (e.g. `latest`) become more tags in that repository.
    #[arg(long, value_name = "REF")]
    pub push: Option<String>,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
    #[command(flatten)]
    pub supply: super::supply::SupplyArgs,
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
    /// Build without the build cache volume that keeps deps/ and _build/ between builds (see
    /// `release-oci cache`); the build starts from the sources alone.
    #[arg(long)]
    pub no_cache: bool,
    /// Layer compression: gzip, zstd or zstd:LEVEL (1 to 19; zstd alone is level 3), or none
    /// [default: gzip; none when --load is the only output: the engine stores layers
    /// uncompressed, so compressing them would only cost time]. zstd images need Docker 23+ or
    /// containerd 1.5+ to run.
    #[arg(long, value_name = "gzip|zstd[:LEVEL]|none", env = "RELEASE_OCI_COMPRESSION")]
    pub compression: Option<String>,
    /// The longest the builder container may run (e.g. 30m, 1h30m, 90s): then it is stopped and
    /// removed, and the build fails [default: 60m].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// The builder container's memory limit, swap included (e.g. 512m, 2g) [default: 4g].
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// The most processes and threads the builder container may have [default: 4096].
    #[arg(long, value_name = "N")]
    pub pids_limit: Option<i64>,
    /// An environment variable of the builder (not of the image): KEY=VALUE, repeatable (e.g.
    /// HEX_MIRROR, HTTPS_PROXY).
    #[arg(long = "build-env", value_name = "KEY=VALUE")]
    pub build_env: Vec<String>,
    /// A secret for the build only, as /run/secrets/ID (and, with build_env=NAME, the build's
    /// variable NAME): id=ID,env=VAR or id=ID,src=FILE. Never in the image, caches or logs.
    #[arg(long = "secret", value_name = "id=ID,env=VAR|src=FILE[,build_env=NAME]")]
    pub secrets: Vec<String>,
    /// Forward an SSH agent into the build for private git dependencies: `default` (SSH_AUTH_SOCK)
    /// or ID=SOCKET; repeatable. No key file is copied.
    #[arg(long = "ssh", value_name = "default|ID=SOCKET")]
    pub ssh: Vec<String>,
    /// The CA bundle (PEM) the build trusts besides the builder image's own [default: this
    /// machine's: SSL_CERT_FILE or /etc/ssl/certs/ca-certificates.crt]; `none`: only the image's.
    #[arg(long, value_name = "FILE|none")]
    pub build_ca: Option<String>,
    /// A Hex client archive (hex-VERSION.ez) to install when the builder has no Hex (kept in the
    /// build cache volume).
    #[arg(long, value_name = "FILE")]
    pub hex_client: Option<PathBuf>,
    /// Phoenix assets: `auto` runs assets.setup, compile, assets.deploy before the release when the
    /// project has an assets.deploy alias; `skip` never [default: auto].
    #[arg(long, value_name = "auto|skip")]
    pub assets: Option<String>,
    /// `[[hex.repos]]` of the settings file (no flag).
    #[arg(skip)]
    pub hex_repos: Vec<crate::builder::inputs::HexRepo>,
}

/// Validated build settings.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    pub project: PathBuf,
    pub triple: Triple,
    pub builder: BuilderKind,
    pub builder_image: String,
    /// `--builder-catalogue`: the repository of builders the pins choose from (docs/toolchain.md).
    pub builder_catalogue: Option<crate::registry::Reference>,
    pub pull_missing: bool,
    pub mix_env: String,
    /// The rebar3 profile (rebar3 projects).
    pub profile: String,
    /// The release to build: a name, `all`, or None for the project's default.
    pub release: Option<String>,
    /// An already assembled release to layer (no builder).
    pub from_release: Option<PathBuf>,
    /// The tini binary for `from_release` builds (None: from the builder image).
    pub tini: Option<PathBuf>,
    /// The start command (None: the release's default).
    pub cmd: Option<String>,
    /// Image name for the default tags `NAME:VERSION` (None: the release name).
    pub image_name: Option<String>,
    pub base: BaseRef,
    /// `--slim-erts`: leave out the ERTS tools a server never runs.
    pub slim_erts: bool,
    /// `--tzdata`: the time zone database in the minimal base.
    pub tzdata: bool,
    pub user: UserSpec,
    pub env: Vec<(String, String)>,
    pub ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub outputs: Vec<Target>,
    pub load: bool,
    pub tags: Vec<String>,
    /// `--push`: the repository and tags to push to.
    pub push: Option<super::registry::PushSettings>,
    /// How to reach registries (push target and registry base images).
    pub registry: crate::registry::RegistryOptions,
    pub include_cookie: bool,
    pub source_url: Option<String>,
    pub cache_dir: PathBuf,
    /// `--no-cache`: no build cache volume.
    pub no_cache: bool,
    /// How the layers release-oci writes are compressed (base image layers keep theirs).
    pub compression: crate::layer::Compression,
    /// Seconds since the epoch for every timestamp (SOURCE_DATE_EPOCH, else 0).
    pub epoch: u64,
    /// `--timeout`: the longest the builder container may run.
    pub timeout: std::time::Duration,
    /// `--memory`, `--pids-limit`: the builder container's limits.
    pub limits: crate::builder::Limits,
    /// Several `--triple`s: each platform's triple, builder image and base, in the order given
    /// (the first is `triple`); empty for a one-platform build.
    pub platforms: Vec<super::platforms::PlatformBuild>,
    /// What the build is given besides the sources (`--build-env`, `--secret`, `--ssh`,
    /// `--build-ca`, `--hex-client`, `--assets`, `[[hex.repos]]`).
    pub inputs: crate::builder::inputs::BuilderInputs,
    /// `--sbom`, `--sbom-dir`, `--sign-key` (docs/supply-chain.md).
    pub supply: crate::supply::SupplySettings,
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

const DEFAULT_TRIPLE: &str = "x86_64-unknown-linux-gnu";
const DEFAULT_USER: &str = "10001:10001";
/// `--timeout`'s default: a cold build of a large project takes minutes, a hung one forever.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60 * 60);

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
    /// `--timeout`, `--memory` and `--pids-limit`: the builder container's limits.
    fn builder_limits(&self) -> anyhow::Result<(std::time::Duration, crate::builder::Limits)> {
        let timeout = match &self.timeout {
            Some(t) => crate::time::parse_duration(t).with_context(|| format!("--timeout {t:?}"))?,
            None => DEFAULT_TIMEOUT,
        };
        let limits = crate::builder::Limits::from_flags(self.memory.as_deref(), self.pids_limit).map_err(|e| {
            let flag = match (&e, self.memory.as_deref()) {
                (crate::builder::limits::LimitError::Pids { value }, _) => format!("--pids-limit {value}"),
                (_, memory) => format!("--memory {:?}", memory.unwrap_or_default()),
            };
            anyhow::Error::new(e).context(flag)
        })?;
        Ok((timeout, limits))
    }

    pub fn validate(mut self) -> anyhow::Result<BuildSettings> {
        let image_name = self.apply_config()?;
        let triples = super::platforms::parse_triples(&self.triple, DEFAULT_TRIPLE)?;
        let triple: Triple = triples[0].clone();
        let base = super::platforms::base_for(&triple, self.base.as_deref(), self.from_release.is_some())?;
        let platforms = super::platforms::platforms(&self, &triples)?;
        if self.tzdata && base != BaseRef::Minimal {
            bail!("--tzdata adds the time zone database to the minimal base; the base {base} brings its own (or not)");
        }
        if base == BaseRef::Minimal && self.from_release.is_some() {
            bail!(
                "the minimal base is made from the builder's files, and --from-release runs no builder: \
                 use --base debian or another image"
            );
        }
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
        let push = match &self.push {
            Some(r) => {
                Some(super::registry::PushSettings::new(r, &self.tags).with_context(|| format!("--push {r:?}"))?)
            }
            None => None,
        };
        let registry = self.registry.options(push.as_ref().map(|p| p.reference.registry.as_str()))?;
        let supply = self.supply.settings(push.is_some())?;
        if let Some(p) = &push {
            // Bare tags name the pushed repository for --load and archives too.
            self.tags = self.tags.iter().map(|t| p.qualify(t)).collect();
        }
        let compression = match &self.compression {
            Some(c) => c.parse().with_context(|| format!("--compression {c:?}"))?,
            None if self.load && outputs.is_empty() && push.is_none() => crate::layer::Compression::None,
            None => crate::layer::Compression::default(),
        };
        let (timeout, limits) = self.builder_limits()?;
        let inputs = self.builder_inputs()?;
        let builder_catalogue = self.builder_catalogue.as_deref().map(parse_catalogue).transpose()?;
        Ok(BuildSettings {
            supply,
            inputs,
            timeout,
            limits,
            push,
            registry,
            builder_image: self.builder_image.unwrap_or_else(|| triple.default_builder_image().to_string()),
            builder_catalogue,
            triple,
            project: self.project,
            builder: self.builder.unwrap_or(BuilderKind::Docker),
            pull_missing: self.pull.unwrap_or(PullArg::Missing) == PullArg::Missing,
            mix_env: self.mix_env.unwrap_or_else(|| "prod".into()),
            profile: self.profile.unwrap_or_else(|| "prod".into()),
            release: self.release,
            from_release: self.from_release,
            tini: self.tini,
            cmd: self.cmd,
            image_name,
            base,
            slim_erts: self.slim_erts,
            tzdata: self.tzdata,
            user: parse_user(self.user.as_deref().unwrap_or(DEFAULT_USER))?,
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
            no_cache: self.no_cache,
            compression,
            epoch,
            platforms,
        })
    }
}

/// `--builder-catalogue REPO`: a repository, without a tag or digest (its tags are the catalogue).
fn parse_catalogue(repo: &str) -> anyhow::Result<crate::registry::Reference> {
    let r: crate::registry::Reference = repo.parse().with_context(|| format!("--builder-catalogue {repo:?}"))?;
    if r.tag.is_some() || r.digest.is_some() {
        bail!(
            "--builder-catalogue {repo:?}: name the repository only (its tags are the catalogue), e.g. {}",
            r.repository_ref()
        );
    }
    Ok(r)
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
