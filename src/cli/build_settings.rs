//! [`BuildSettings`]: what a build runs with, made from typed [`BuildOptions`] (the flags over
//! the settings file) with the defaults for what they leave out, and the checks that involve
//! several settings. `release-oci build` and `release-oci resolve` both make theirs here.

use super::build::{BuilderKind, ConfigSource, PullArg};
use super::build_options::{BuildOptions, BuilderOptions, ImageOptions, OutputOptions};
use super::registry::PushSettings;
use crate::base::BaseRef;
use crate::builder::limits::{DEFAULT_MEMORY, DEFAULT_PIDS_LIMIT};
use crate::layer::Compression;
use crate::sink::Target;
use crate::triple::Triple;
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use super::values::UserSpec;

/// Validated build settings: what a build runs with, every default applied.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    pub project: PathBuf,
    pub triple: Triple,
    pub builder: BuilderKind,
    pub builder_image: String,
    /// `--builder-catalogue`: the repository of builders the pins choose from (docs/toolchain.md).
    pub builder_catalogue: Option<crate::registry::Reference>,
    /// `--builder-host`: the engine each platform's builder runs on ([`BuildSettings::builder_host`]).
    pub builder_hosts: crate::builder::endpoint::BuilderHosts,
    /// Whether the builder image may be pulled when the engine lacks it ([`may_pull_builder`]).
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
    /// `--cache-repo`: the registry repository results are shared through (docs/build-cache.md).
    pub cache_repo: Option<crate::registry::Reference>,
    /// How to reach registries (push target and registry base images).
    pub registry: crate::registry::RegistryOptions,
    pub include_cookie: bool,
    pub source_url: Option<String>,
    pub cache_dir: PathBuf,
    /// `--no-cache`: no build cache volume.
    pub no_cache: bool,
    /// `--cross-compile`: whether a target this machine emulates may be compiled on the native
    /// builder (docs/multi-platform.md).
    pub cross_compile: super::build::CrossCompile,
    /// How the layers release-oci writes are compressed (base image layers keep theirs).
    pub compression: crate::layer::Compression,
    /// Seconds since the epoch for every timestamp (SOURCE_DATE_EPOCH, else 0).
    pub epoch: u64,
    /// `--timeout`: the longest the builder container may run.
    pub timeout: std::time::Duration,
    /// `--warm-builder`: the idle time of the project's warm builder, when builds go to one
    /// (docs/warm-builder.md).
    pub warm_builder: Option<std::time::Duration>,
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
    /// `--hot-upgrades`, `--upgrade-from`, `--upgrade-deps` (docs/hot-upgrades.md).
    pub upgrade: super::upgrade::HotUpgradeSettings,
}

const DEFAULT_USER: UserSpec = UserSpec::Ids { uid: 10001, gid: 10001 };
/// `--timeout`'s default: a cold build of a large project takes minutes, a hung one forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60 * 60);

impl BuildSettings {
    /// The engine this build's builder runs on (`--builder-host` for its triple); None: the
    /// default engine (`DOCKER_HOST`, or this machine's).
    pub fn builder_host(&self) -> Option<&crate::builder::endpoint::Endpoint> {
        self.builder_hosts.for_triple(&self.triple)
    }

    /// `flags` over the settings file `source` names (when there is one) over the defaults.
    pub fn resolve(flags: BuildOptions, source: &ConfigSource) -> anyhow::Result<BuildSettings> {
        let options = match super::build_config::load(&flags.project, source)? {
            Some(file) => flags.over(file),
            None => flags,
        };
        Self::from_options(options)
    }

    /// The settings of typed options: the defaults for what they leave out, and the checks.
    pub fn from_options(o: BuildOptions) -> anyhow::Result<BuildSettings> {
        let BuildOptions { project, builder, image, output, inputs, hot } = o;
        if builder.builder == Some(BuilderKind::Host) && !builder.builder_hosts.is_empty() {
            bail!(
                "--builder-host names the Docker engines builder containers run on, and --builder host builds on \
                 this machine without one: leave one of them out"
            );
        }
        let (triple, base, platforms) = super::platforms::targets(&builder, image.base.as_ref())?;
        let upgrade = hot.settings(platforms.len(), builder.release.as_deref())?;
        check_base(&base, image.tzdata, builder.from_release.is_some())?;
        let destinations = Destinations::new(output)?;
        let derived = Derived {
            compression: image.compression.unwrap_or_else(|| destinations.default_compression()),
            inputs: inputs.settings()?,
            epoch: source_date_epoch()?,
            triple,
            base,
            platforms,
            upgrade,
        };
        Ok(assemble(project, builder, image, destinations, derived))
    }
}

/// Whether a builder image the engine lacks may be pulled: only one the user named (a flag, its
/// environment variable or a settings file) and only when `--pull` allows it; never one of
/// release-oci's own, which `make setup` makes on this machine (unqualified, such a name would be
/// pulled from Docker Hub, whoever holds it there).
pub fn may_pull_builder(named: Option<&str>, pull: Option<PullArg>) -> bool {
    let allowed = pull.unwrap_or(PullArg::Missing) == PullArg::Missing;
    allowed && named.is_some_and(|image| crate::triple::pull_refusal(image, true).is_none())
}

/// The minimal base is made with the builder; `--tzdata` only goes into it.
fn check_base(base: &BaseRef, tzdata: bool, prebuilt: bool) -> anyhow::Result<()> {
    if tzdata && *base != BaseRef::Minimal {
        bail!("--tzdata adds the time zone database to the minimal base; the base {base} brings its own (or not)");
    }
    if *base == BaseRef::Minimal && prebuilt {
        bail!(
            "the minimal base is made from the builder's files, and --from-release runs no builder: \
             use --base debian or another image"
        );
    }
    Ok(())
}

/// `SOURCE_DATE_EPOCH`: every timestamp of the image (0 when unset).
fn source_date_epoch() -> anyhow::Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.trim().is_empty() => {
            s.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH={s:?} is not a whole number of seconds"))
        }
        _ => Ok(0),
    }
}

/// Where the image goes, checked: the push target read, bare tags qualified by it.
struct Destinations {
    outputs: Vec<Target>,
    load: bool,
    tags: Vec<String>,
    push: Option<PushSettings>,
    cache_repo: Option<crate::registry::Reference>,
    registry: crate::registry::RegistryOptions,
    supply: crate::supply::SupplySettings,
    cache_dir: PathBuf,
}

impl Destinations {
    fn new(o: OutputOptions) -> anyhow::Result<Destinations> {
        let OutputOptions { outputs, load, tags, push, cache_repo, cache_dir, sbom, sbom_dir, sign_key, registry } = o;
        let push = push.map(|r| PushSettings::new(&r, &tags).with_context(|| format!("--push {r:?}"))).transpose()?;
        let cache_repo = cache_repo.map(|r| super::registry::cache_repo(&r)).transpose()?;
        let registry = registry.options(push.as_ref().map(|p| p.reference.registry.as_str()))?;
        let supply = super::supply::settings(sbom, sbom_dir, sign_key, push.is_some())?;
        // Bare tags name the pushed repository for --load and archives too.
        let tags = match &push {
            Some(p) => tags.iter().map(|t| p.qualify(t)).collect(),
            None => tags,
        };
        let cache_dir = cache_dir.unwrap_or_else(crate::store::BlobStore::default_root);
        Ok(Destinations { outputs, load, tags, push, cache_repo, registry, supply, cache_dir })
    }

    /// gzip; no compression when the engine is the only destination (it stores layers uncompressed).
    fn default_compression(&self) -> Compression {
        if self.load && self.outputs.is_empty() && self.push.is_none() {
            Compression::None
        } else {
            Compression::default()
        }
    }
}

/// What [`BuildSettings::from_options`] works out from several options.
struct Derived {
    triple: Triple,
    base: BaseRef,
    platforms: Vec<super::platforms::PlatformBuild>,
    compression: Compression,
    inputs: crate::builder::inputs::BuilderInputs,
    epoch: u64,
    upgrade: super::upgrade::HotUpgradeSettings,
}

/// The settings, each option with its default.
fn assemble(project: PathBuf, b: BuilderOptions, i: ImageOptions, d: Destinations, x: Derived) -> BuildSettings {
    #[rustfmt::skip]
    let BuilderOptions {
        triples: _, builder, builder_image, builder_hosts, builder_catalogue, pull, mix_env, profile, release,
        from_release, tini, no_cache, cross_compile, timeout, memory, pids_limit, warm_builder, warm_builder_idle,
    } = b;
    #[rustfmt::skip]
    let ImageOptions {
        name, base: _, slim_erts, tzdata, user, cmd, env, ports, labels, annotations, include_cookie, source_url,
        compression: _,
    } = i;
    let Destinations { outputs, load, tags, push, cache_repo, registry, supply, cache_dir } = d;
    let Derived { triple, base, platforms, compression, inputs, epoch, upgrade } = x;
    BuildSettings {
        pull_missing: may_pull_builder(builder_image.as_deref(), pull),
        builder_image: builder_image.unwrap_or_else(|| triple.default_builder_image().to_string()),
        builder: builder.unwrap_or(BuilderKind::Docker),
        mix_env: mix_env.unwrap_or_else(|| "prod".into()),
        profile: profile.unwrap_or_else(|| "prod".into()),
        timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        warm_builder: warm_builder.then(|| warm_builder_idle.unwrap_or(crate::builder::warm::DEFAULT_IDLE)),
        limits: crate::builder::Limits {
            memory: memory.unwrap_or(DEFAULT_MEMORY),
            pids: pids_limit.unwrap_or(DEFAULT_PIDS_LIMIT),
        },
        user: user.unwrap_or(DEFAULT_USER),
        labels: labels.into_iter().collect(),
        annotations: annotations.into_iter().collect(),
        image_name: name,
        project,
        triple,
        builder_catalogue,
        builder_hosts,
        release,
        from_release,
        tini,
        cmd,
        base,
        slim_erts,
        tzdata,
        env,
        ports,
        outputs,
        load,
        tags,
        push,
        cache_repo,
        registry,
        include_cookie,
        source_url,
        cache_dir,
        no_cache,
        cross_compile: cross_compile.unwrap_or(super::build::CrossCompile::Auto),
        compression,
        epoch,
        platforms,
        inputs,
        supply,
        upgrade,
    }
}
