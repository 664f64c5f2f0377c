//! `release-oci resolve -f FILE|DIR --push-to PREFIX`: builds and pushes every project that a
//! `release-oci://PATH` image reference names (each once, several at a time), and prints the YAML
//! with those references pinned by digest.

use crate::cli::{BuildArgs, ResolveArgs};
use crate::config::ProjectConfig;
use crate::k8s::naming;
use crate::k8s::resolve::{self, PublishError, Publisher};
use anyhow::Context;
use clap::Parser;
use std::path::Path;

/// The resolved YAML, for stdout.
pub async fn run(args: ResolveArgs) -> anyhow::Result<String> {
    let base = std::env::current_dir().context("the current directory")?;
    let from_config = match &args.push_to {
        Some(_) => None,
        None => ProjectConfig::load_for_project(&base)?.and_then(|c| c.k8s).and_then(|k| k.push_to),
    };
    let prefix = args.push_prefix(from_config)?;
    let sources = resolve::read_inputs(&args.files)?;
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let publisher = BuildAndPush { prefix, build_flags: args.build_flags };
    let resolved = resolve::resolve(&sources, &base, &publisher, jobs).await?;
    Ok(resolve::join(&resolved))
}

/// Publishes with `release-oci build PATH --push PREFIX/RELEASE [BUILD_FLAGS]`.
struct BuildAndPush {
    prefix: String,
    build_flags: Vec<String>,
}

/// `build`'s flags alone, to parse them as the command line would.
#[derive(Debug, Parser)]
#[command(name = "release-oci build")]
struct BuildOnly {
    #[command(flatten)]
    args: BuildArgs,
}

impl BuildAndPush {
    async fn build(&self, path: &Path) -> anyhow::Result<String> {
        let release = naming::release_name(path)
            .with_context(|| format!("cannot tell the release name of {}", path.display()))?;
        let target = format!("{}/{release}", self.prefix);
        let mut argv = vec!["release-oci build".to_string(), path.display().to_string()];
        argv.extend(["--push".to_string(), target.clone()]);
        argv.extend(self.build_flags.iter().cloned());
        let parsed = BuildOnly::try_parse_from(&argv).with_context(|| format!("build flags {:?}", self.build_flags))?;
        let settings = parsed.args.validate()?;
        let repository = settings
            .push
            .as_ref()
            .map(|p| p.reference.repository_ref())
            .with_context(|| format!("--push {target} was not taken"))?;
        let image = super::build::run(settings).await?;
        Ok(format!("{repository}@{}", image.manifest_digest))
    }
}

impl Publisher for BuildAndPush {
    async fn publish(&self, path: &Path) -> Result<String, PublishError> {
        self.build(path).await.map_err(|e| format!("{e:#}").into())
    }
}
