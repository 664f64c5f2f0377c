//! `release-oci build` flags, and their validation: the flags over the settings file over the
//! defaults ([`BuildArgs::validate`]), each step on typed values (`build_flags`, `build_config`,
//! `build_options`, `build_settings`).

use super::build_options::BuildOptions;
use super::build_settings::BuildSettings;
use anyhow::bail;
use std::path::{Path, PathBuf};

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

/// `--cross-compile`: how an image for a platform this machine emulates is built
/// (docs/multi-platform.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CrossCompile {
    /// Compile and assemble on the native builder and take ERTS and Erlang/OTP from the target's
    /// builder image, when the project has no native code and the versions match; else build
    /// under emulation, saying why.
    Auto,
    /// Always build in the target's builder (under emulation on another machine).
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
    /// The Docker engine a platform's builder runs on: [PLATFORM=]URL, where URL is
    /// unix:///PATH (Docker's or Podman's API socket), tcp://HOST[:PORT] (TLS with client
    /// certificates when DOCKER_TLS_VERIFY is set, from DOCKER_CERT_PATH) or
    /// ssh://[USER@]HOST[:PORT], and PLATFORM is aarch64, x86_64, linux/arm64, ... (left out: every
    /// platform). Repeatable. Default: the engine of DOCKER_HOST. See docs/builder.md.
    #[arg(long = "builder-host", value_name = "[PLATFORM=]URL")]
    pub builder_hosts: Vec<String>,
    /// A registry repository of builders tagged like the official hexpm/elixir
    /// (ELIXIR-erlang-OTP-debian-SUITE-DATE-slim), e.g. 127.0.0.1:5000/hexpm/elixir: when the
    /// project's pins are not met by the default builder, the newest tag that meets them is
    /// pulled and made into a builder (docs/toolchain.md).
    #[arg(long, value_name = "REPO")]
    pub builder_catalogue: Option<String>,
    /// Whether to pull a builder image the engine does not have [default: missing]. Only an image
    /// named with --builder-image (or `builder_image`) is ever pulled: release-oci's own default
    /// images are made on this machine (`make setup`).
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
    /// Share build results through this registry repository (HOST[:PORT]/REPOSITORY): a build
    /// whose inputs were built before (by any machine) reuses that image instead of running the
    /// builder, and a new result is published there (tag rc-FINGERPRINT). See docs/build-cache.md.
    #[arg(long, value_name = "HOST/REPO")]
    pub cache_repo: Option<String>,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
    #[command(flatten)]
    pub supply: super::supply::SupplyArgs,
    #[command(flatten)]
    pub hot: super::upgrade::HotUpgradeArgs,
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
    /// For a target this machine emulates (aarch64 on x86_64): `auto` compiles once on the native
    /// builder and takes only ERTS and Erlang/OTP from the target's builder image when the project
    /// has no native code; `never` builds everything under emulation [default: auto].
    #[arg(long, value_enum)]
    pub cross_compile: Option<CrossCompile>,
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
    /// Keep this project's builder container between builds and send each build to it, instead of
    /// a new container per build (docs/warm-builder.md). Ends after --warm-builder-idle without a
    /// build, and with `release-oci builder stop` or `cache prune`.
    #[arg(long)]
    pub warm_builder: bool,
    /// How long a warm builder waits for the next build before it ends (e.g. 10m, 90s)
    /// [default: 15m].
    #[arg(long, value_name = "DURATION")]
    pub warm_builder_idle: Option<String>,
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
}

/// Which settings file `build` reads (`--config`, `--no-config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `PROJECT/release-oci.toml` when there is one: the checkout's own, which may shape the image
    /// but not act on this machine (docs/trust.md).
    Project,
    /// The file named with `--config`: the user's own.
    File(PathBuf),
    /// `--no-config`.
    None,
}

impl BuildArgs {
    /// The settings: the flags over the settings file over the defaults.
    pub fn validate(self) -> anyhow::Result<BuildSettings> {
        let source = self.config_source();
        BuildSettings::resolve(self.options()?, &source)
    }

    fn config_source(&self) -> ConfigSource {
        match (&self.config, self.no_config) {
            (_, true) => ConfigSource::None,
            (Some(path), false) => ConfigSource::File(path.clone()),
            (None, false) => ConfigSource::Project,
        }
    }
}

/// `build` flags given once for several projects (`release-oci resolve -- FLAGS`): parsed once,
/// then made into each project's settings with its own settings file.
#[derive(Debug, Clone)]
pub struct BuildTemplate {
    flags: BuildOptions,
    config: ConfigSource,
}

/// `build`'s flags alone, to parse them as `release-oci build` would.
#[derive(Debug, clap::Parser)]
#[command(name = "release-oci build")]
struct BuildOnly {
    #[command(flatten)]
    args: BuildArgs,
}

impl BuildTemplate {
    /// Parses `flags` (no project directory, no `--push`: each project gets its own).
    pub fn parse(flags: &[String]) -> anyhow::Result<BuildTemplate> {
        use clap::{CommandFactory, FromArgMatches};
        let argv = std::iter::once("release-oci build").chain(flags.iter().map(String::as_str));
        let matches = BuildOnly::command().try_get_matches_from(argv)?;
        if matches.value_source("project") == Some(clap::parser::ValueSource::CommandLine) {
            bail!("a project directory among the build flags: the YAML names the projects to build");
        }
        let args = BuildOnly::from_arg_matches(&matches)?.args;
        if let Some(push) = &args.push {
            bail!("--push {push} among the build flags: each project is pushed to --push-to PREFIX/RELEASE");
        }
        Ok(BuildTemplate { config: args.config_source(), flags: args.options()? })
    }

    /// The settings of `project`, pushed to `push`.
    pub fn settings(&self, project: &Path, push: &str) -> anyhow::Result<BuildSettings> {
        let mut flags = self.flags.clone();
        flags.project = project.to_path_buf();
        flags.output.push = Some(push.to_string());
        BuildSettings::resolve(flags, &self.config)
    }
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
