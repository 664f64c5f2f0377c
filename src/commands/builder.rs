//! `release-oci builder ls|stop`: this user's warm builders (`build --warm-builder`,
//! docs/warm-builder.md), of one project with `--project DIR`.

use crate::builder::{self, warm};
use crate::cli::{BuilderArgs, BuilderCommand};
use anyhow::Context;
use std::fmt::Write as _;

/// Runs the subcommand; returns what goes to stdout.
pub async fn run(args: &BuilderArgs) -> anyhow::Result<String> {
    let project = args
        .project
        .as_ref()
        .map(|p| p.canonicalize().with_context(|| format!("--project {}", p.display())))
        .transpose()?
        .map(|p| p.display().to_string());
    let docker = builder::docker::connect().await?;
    let mut out = String::new();
    match args.command {
        BuilderCommand::Ls => {
            for w in warm::list(&docker, project.as_deref()).await? {
                writeln!(out, "{}\t{}\t{}\t{}", w.name, w.project, w.state, w.builder_image)?;
            }
        }
        BuilderCommand::Stop => {
            for name in warm::remove_all(&docker, project.as_deref()).await? {
                writeln!(out, "removed warm builder {name}")?;
            }
        }
    }
    Ok(out)
}
