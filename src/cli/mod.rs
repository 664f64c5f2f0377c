//! Command-line types (clap) and their validation into settings the commands run with.

mod build;
mod build_config;
mod build_flags;
mod build_inputs;
mod build_options;
mod build_settings;
mod k8s;
mod platforms;
mod registry;
mod supply;
mod upgrade;
mod values;

pub use build::{BuildArgs, BuildTemplate, BuilderKind, ConfigSource, CrossCompile, PullArg};
pub use build_options::{
    BaseChoice, BuildOptions, BuilderOptions, CaChoice, ImageOptions, InputOptions, OutputOptions,
};
pub use build_settings::{BuildSettings, UserSpec, may_pull_builder};
pub use k8s::{ClusterArg, K8sArgs, ResolveArgs};
pub use platforms::PlatformBuild;
pub use registry::{PushArgs, PushSettings, RegistryArgs};
pub use supply::{SupplyArgs, VerifyArgs};
pub use upgrade::{HotUpgradeArgs, HotUpgradeOptions, HotUpgradeSettings, UpgradeArgs, UpgradeSettings};

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "release-oci",
    version,
    about = "Turn an Elixir or Erlang project into a production OCI image",
    long_about = "Turn an Elixir or Erlang project into a production OCI image.\n\n\
        The release is assembled in a builder container that matches the target triple, split into \
        deterministic layers and written as an OCI image that runs `bin/NAME start` under tini."
)]
pub struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr (the build log of the builder is still shown when it fails).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a project into an OCI image; prints the image's manifest digest on stdout.
    Build(Box<BuildArgs>),
    /// Show an image: digest, platform, entrypoint, config and layers.
    Inspect(InspectArgs),
    /// Push an image (an OCI layout or archive) to a registry; prints REPOSITORY@DIGEST on stdout.
    Push(Box<PushArgs>),
    /// Kubernetes manifests for the release (Deployment, Services) as YAML on stdout.
    K8s(Box<K8sArgs>),
    /// Build and push every `release-oci://PATH` image in YAML; print it pinned by digest.
    Resolve(ResolveArgs),
    /// The caches: the Docker builder's volumes (ls, prune) and the blob store (verify, gc).
    Cache(CacheArgs),
    /// The projects' warm builders (`build --warm-builder`): ls, stop.
    Builder(BuilderArgs),
    /// Check an image in a registry: its signature, SBOM and provenance against a public key.
    Verify(Box<VerifyArgs>),
    /// Hot-upgrade a running container to the image `build --upgrade-from` made a package for
    /// (or roll it back), without restarting it; prints the version now permanent.
    Upgrade(Box<UpgradeArgs>),
}

#[derive(Debug, clap::Args)]
pub struct BuilderArgs {
    #[command(subcommand)]
    pub command: BuilderCommand,
    /// Only the warm builder of this project directory.
    #[arg(long, global = true, value_name = "DIR")]
    pub project: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum BuilderCommand {
    /// List this user's warm builders: name, project, state, builder image.
    Ls,
    /// Remove this user's warm builders (a build running in one fails).
    Stop,
}

#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
    /// Only the volumes of this project directory.
    #[arg(long, global = true, value_name = "DIR")]
    pub project: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum CacheCommand {
    /// List the volumes: name, project, triple, MIX_ENV, builder image, builder containers using it.
    Ls,
    /// Remove this user's warm builders, the volumes no build is using now, and the blob store's
    /// result cache records (of the project, with --project): the next build runs the builder.
    Prune {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Hash every blob of the blob store; list the damaged ones (path, expected digest, what was
    /// found). Exits with 1 when any is damaged, also with --repair.
    Verify {
        /// Move the damaged blobs to quarantine/ in the store; a build then makes or fetches them
        /// again (`cache gc` deletes the quarantine).
        #[arg(long)]
        repair: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Delete what the blob store does not need: temp files of interrupted writes (`.tmp*` not
    /// modified for an hour; younger ones may belong to a running build), the blobs in quarantine/
    /// and the records of blobs that are gone.
    ///
    /// Blobs themselves are never deleted, referenced or not: the store does not record every
    /// reference to its blobs (base image layers, configs and manifests are kept by digest alone),
    /// so it cannot tell which are unused. To start over, delete the whole store directory.
    Gc {
        #[command(flatten)]
        store: StoreArg,
    },
}

/// Which blob store `cache verify` and `cache gc` work on.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct StoreArg {
    /// Blob cache directory (default: $RELEASE_OCI_CACHE, else $XDG_CACHE_HOME/release-oci, else
    /// ~/.cache/release-oci).
    #[arg(long, env = "RELEASE_OCI_CACHE", value_name = "DIR")]
    pub cache_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The image: `oci:DIR[:TAG]` or `docker-archive:FILE`.
    pub image: String,
    /// Print the raw manifest and config JSON instead of the summary.
    #[arg(long)]
    pub raw: bool,
    /// Also list the files of every layer; for the minimal base, why each one is there.
    #[arg(long, conflicts_with = "raw")]
    pub files: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(args: &[&str]) -> CacheCommand {
        let argv = ["release-oci", "cache"].iter().chain(args).copied();
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Cache(c) => c.command,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cache_verify_and_gc_parse() {
        let dir = Some(std::path::PathBuf::from("/tmp/s"));
        assert_eq!(
            cache(&["verify", "--repair", "--cache-dir", "/tmp/s"]),
            CacheCommand::Verify { repair: true, store: StoreArg { cache_dir: dir.clone() } }
        );
        assert!(matches!(cache(&["verify"]), CacheCommand::Verify { repair: false, .. }));
        assert_eq!(cache(&["gc", "--cache-dir", "/tmp/s"]), CacheCommand::Gc { store: StoreArg { cache_dir: dir } });
        assert_eq!(cache(&["ls"]), CacheCommand::Ls);
        let dir = Some(std::path::PathBuf::from("/tmp/s"));
        assert_eq!(
            cache(&["prune", "--cache-dir", "/tmp/s"]),
            CacheCommand::Prune { store: StoreArg { cache_dir: dir } }
        );
    }
}
