//! `release-oci cache ls|prune`: the Docker builder's build cache volumes (labelled
//! `org.release-oci.role=build-cache`; see docs/build-cache.md).

use crate::builder::{self, cache};
use crate::cli::{CacheArgs, CacheCommand};
use anyhow::Context;
use std::fmt::Write as _;

/// Runs the subcommand; returns what goes to stdout.
pub async fn run(args: &CacheArgs) -> anyhow::Result<String> {
    let project = match &args.project {
        Some(p) => Some(p.canonicalize().with_context(|| format!("--project {}", p.display()))?.display().to_string()),
        None => None,
    };
    let docker = builder::docker::connect().await?;
    let mut out = String::new();
    match args.command {
        CacheCommand::Ls => {
            for v in cache::list(&docker, project.as_deref()).await? {
                let used = if v.used_by.is_empty() { "-".to_string() } else { v.used_by.join(",") };
                writeln!(
                    out,
                    "{}\t{}\t{}\tMIX_ENV={}\t{}\tin use: {used}",
                    v.name, v.project, v.triple, v.mix_env, v.builder_image
                )?;
            }
        }
        CacheCommand::Prune => {
            let pruned = cache::prune(&docker, project.as_deref()).await?;
            for name in &pruned.removed {
                writeln!(out, "removed {name}")?;
            }
            for (name, why) in &pruned.kept {
                writeln!(out, "kept {name} ({why})")?;
            }
        }
    }
    Ok(out)
}
