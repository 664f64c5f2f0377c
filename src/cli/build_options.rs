//! The `build` settings as typed values before any default: read from the flags
//! ([`BuildArgs::options`]) or from `release-oci.toml` (`build_config`), then merged field by
//! field, the flags over the file ([`BuildOptions::over`]). `build_settings` applies the defaults.
//! Each merge destructures its struct whole: a new field does not compile until it is merged.

use super::build::{BuilderKind, PullArg};
use super::build_settings::UserSpec;
use crate::base::{BaseRef, DEBIAN_ALIAS};
use crate::builder::inputs::{AssetsMode, HexRepo};
use crate::layer::Compression;
use crate::registry::Reference;
use crate::sink::Target;
use crate::supply::SbomFormat;
use crate::triple::Triple;
use std::path::PathBuf;
use std::time::Duration;

/// `--base` before the triple is known: `debian` is the Debian runtime of the triple's
/// architecture, anything else one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseChoice {
    Debian,
    Image(BaseRef),
}

impl std::str::FromStr for BaseChoice {
    type Err = crate::registry::ParseReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == DEBIAN_ALIAS.0 { Ok(BaseChoice::Debian) } else { s.parse().map(BaseChoice::Image) }
    }
}

/// `--build-ca`: a CA bundle, or `none` (only the builder image's own CAs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaChoice {
    None,
    File(PathBuf),
}

/// Every `build` setting, typed; `None`, `false` or empty where neither flag nor file says.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub project: PathBuf,
    pub builder: BuilderOptions,
    pub image: ImageOptions,
    pub output: OutputOptions,
    pub inputs: InputOptions,
    /// `--hot-upgrades`, `--upgrade-from`, `--upgrade-deps` (docs/hot-upgrades.md).
    pub hot: super::upgrade::HotUpgradeOptions,
}

/// What the release is built with, and for which triples.
#[derive(Debug, Clone, Default)]
pub struct BuilderOptions {
    pub triples: Vec<Triple>,
    pub builder: Option<BuilderKind>,
    pub builder_image: Option<String>,
    /// `--builder-host`: the engine of each platform's builder (none: the default engine).
    pub builder_hosts: crate::builder::endpoint::BuilderHosts,
    pub builder_catalogue: Option<Reference>,
    pub pull: Option<PullArg>,
    pub mix_env: Option<String>,
    pub profile: Option<String>,
    pub release: Option<String>,
    pub from_release: Option<PathBuf>,
    pub tini: Option<PathBuf>,
    pub no_cache: bool,
    pub cross_compile: Option<super::build::CrossCompile>,
    pub timeout: Option<Duration>,
    pub memory: Option<u64>,
    pub pids_limit: Option<i64>,
    /// `--warm-builder`: keep the builder container between builds (docs/warm-builder.md).
    pub warm_builder: bool,
    pub warm_builder_idle: Option<Duration>,
}

/// What goes into the image.
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    /// `name` (file only): the image name of the default tags.
    pub name: Option<String>,
    pub base: Option<BaseChoice>,
    pub slim_erts: bool,
    pub tzdata: bool,
    pub user: Option<UserSpec>,
    pub cmd: Option<String>,
    pub env: Vec<(String, String)>,
    /// `PORT/PROTOCOL`.
    pub ports: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub include_cookie: bool,
    pub source_url: Option<String>,
    pub compression: Option<Compression>,
}

/// Where the image goes, and what goes beside it.
#[derive(Debug, Clone, Default)]
pub struct OutputOptions {
    pub outputs: Vec<Target>,
    pub load: bool,
    pub tags: Vec<String>,
    /// `--push` (flag only).
    pub push: Option<String>,
    /// `--cache-repo` (a flag, or a `--config` file: never a project's own file).
    pub cache_repo: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub sbom: Option<SbomFormat>,
    pub sbom_dir: Option<PathBuf>,
    /// `--sign-key` (flag only).
    pub sign_key: Option<PathBuf>,
    /// Registry access (flags only).
    pub registry: super::registry::RegistryArgs,
}

/// What the build is given besides the sources (docs/builder-inputs.md).
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    pub build_env: Vec<(String, String)>,
    /// `--secret` specs (read when the settings are made).
    pub secrets: Vec<String>,
    /// `--ssh` specs.
    pub ssh: Vec<String>,
    pub build_ca: Option<CaChoice>,
    pub hex_client: Option<PathBuf>,
    pub assets: Option<AssetsMode>,
    /// `[[hex.repos]]` (file only).
    pub hex_repos: Vec<HexRepo>,
}

/// The settings file's values (its paths made absolute): everything but the project.
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    pub builder: BuilderOptions,
    pub image: ImageOptions,
    pub output: OutputOptions,
    pub inputs: InputOptions,
    pub hot: super::upgrade::HotUpgradeOptions,
}

impl BuildOptions {
    /// The flags (`self`) over the file: a value the flags leave out is the file's.
    pub fn over(self, file: FileOptions) -> BuildOptions {
        let BuildOptions { project, builder, image, output, inputs, hot } = self;
        let FileOptions { builder: b, image: i, output: o, inputs: n, hot: h } = file;
        BuildOptions {
            project,
            builder: builder.over(b),
            image: image.over(i),
            output: output.over(o),
            inputs: inputs.over(n),
            hot: hot.over(h),
        }
    }
}

impl BuilderOptions {
    fn over(self, file: BuilderOptions) -> BuilderOptions {
        #[rustfmt::skip]
        let BuilderOptions {
            triples, builder, builder_image, builder_hosts, builder_catalogue, pull, mix_env, profile, release,
            from_release, tini, no_cache, cross_compile, timeout, memory, pids_limit, warm_builder, warm_builder_idle,
        } = self;
        BuilderOptions {
            triples: if triples.is_empty() { file.triples } else { triples },
            builder: builder.or(file.builder),
            builder_image: builder_image.or(file.builder_image),
            // Platform by platform: a flag's engine wins over the file's for the same platform.
            builder_hosts: builder_hosts.over(file.builder_hosts),
            builder_catalogue: builder_catalogue.or(file.builder_catalogue),
            pull: pull.or(file.pull),
            mix_env: mix_env.or(file.mix_env),
            profile: profile.or(file.profile),
            release: release.or(file.release),
            from_release: from_release.or(file.from_release),
            tini: tini.or(file.tini),
            no_cache: no_cache || file.no_cache,
            cross_compile: cross_compile.or(file.cross_compile),
            timeout: timeout.or(file.timeout),
            memory: memory.or(file.memory),
            pids_limit: pids_limit.or(file.pids_limit),
            warm_builder: warm_builder || file.warm_builder,
            warm_builder_idle: warm_builder_idle.or(file.warm_builder_idle),
        }
    }
}

impl ImageOptions {
    fn over(self, file: ImageOptions) -> ImageOptions {
        #[rustfmt::skip]
        let ImageOptions {
            name, base, slim_erts, tzdata, user, cmd, env, ports, labels, annotations, include_cookie, source_url,
            compression,
        } = self;
        ImageOptions {
            // The file's alone: there is no flag.
            name: name.or(file.name),
            base: base.or(file.base),
            slim_erts: slim_erts || file.slim_erts,
            tzdata: tzdata || file.tzdata,
            user: user.or(file.user),
            cmd: cmd.or(file.cmd),
            env: merge_pairs(file.env, env),
            // The file's ports and the flags' together.
            ports: file.ports.into_iter().chain(ports).collect(),
            labels: merge_pairs(file.labels, labels),
            annotations: merge_pairs(file.annotations, annotations),
            include_cookie: include_cookie || file.include_cookie,
            source_url: source_url.or(file.source_url),
            compression: compression.or(file.compression),
        }
    }
}

impl OutputOptions {
    fn over(self, file: OutputOptions) -> OutputOptions {
        let OutputOptions { outputs, load, tags, push, cache_repo, cache_dir, sbom, sbom_dir, sign_key, registry } =
            self;
        OutputOptions {
            // Lists the flags replace.
            outputs: if outputs.is_empty() { file.outputs } else { outputs },
            tags: if tags.is_empty() { file.tags } else { tags },
            load: load || file.load,
            push: push.or(file.push),
            cache_repo: cache_repo.or(file.cache_repo),
            cache_dir: cache_dir.or(file.cache_dir),
            sbom: sbom.or(file.sbom),
            sbom_dir: sbom_dir.or(file.sbom_dir),
            sign_key: sign_key.or(file.sign_key),
            registry,
        }
    }
}

impl InputOptions {
    fn over(self, file: InputOptions) -> InputOptions {
        let InputOptions { build_env, secrets, ssh, build_ca, hex_client, assets, hex_repos } = self;
        InputOptions {
            build_env: merge_pairs(file.build_env, build_env),
            // A --config file's secrets and agents, then the flags'.
            secrets: file.secrets.into_iter().chain(secrets).collect(),
            ssh: file.ssh.into_iter().chain(ssh).collect(),
            build_ca: build_ca.or(file.build_ca),
            hex_client: hex_client.or(file.hex_client),
            assets: assets.or(file.assets),
            hex_repos: file.hex_repos.into_iter().chain(hex_repos).collect(),
        }
    }
}

/// The file's pairs whose key the flags do not set, then the flags'.
fn merge_pairs(file: Vec<(String, String)>, flags: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = file.into_iter().filter(|(k, _)| !flags.iter().any(|(f, _)| f == k)).collect();
    out.extend(flags);
    out
}
