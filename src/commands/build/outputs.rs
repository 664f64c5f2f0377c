//! The outputs of a build, made once from its settings: `-o oci:`/`docker-archive:` targets, then
//! `--load`, then `--push` (the registry last, after the local sinks). See [`crate::output`].

use super::releases::ReleaseOutputs;
use crate::base::BaseRef;
use crate::cli::BuildSettings;
use crate::image::BaseImage;
use crate::output::{ArchiveSink, ArtifactKind, EngineSink, LayoutSink, Outputs, RegistrySink, Sink};
use crate::sink::Target;
use crate::triple::Platform;
use anyhow::Context;
use bollard::Docker;

/// What the outputs of one artifact need besides the settings.
pub(super) struct OutputContext<'a> {
    /// The engine, for `--load`.
    pub docker: Option<&'a Docker>,
    /// The base image read for this build (a registry base's layers are mounted, not uploaded).
    pub base: Option<&'a BaseImage>,
    /// For an index: the platform whose image `--load` takes.
    pub load_platform: Option<Platform>,
}

/// The sinks for one release's image (or the index): named by `names`.
pub(super) fn outputs(s: &BuildSettings, names: &ReleaseOutputs, cx: &OutputContext) -> anyhow::Result<Outputs> {
    let mut out = Outputs::new();
    for target in &names.targets {
        match target {
            Target::OciLayout { dir, tag } => out.push(LayoutSink {
                dir: dir.clone(),
                tag: tag.clone(),
                // Only next to a tagged image: tools reading an untagged layout expect one entry.
                referrers: tag.as_ref().map(|_| s.supply.clone()),
            }),
            Target::Archive { path } => out.push(ArchiveSink { path: path.clone(), tags: names.tags.clone() }),
        }
    }
    if s.load {
        let docker = cx.docker.context("--load needs the Docker engine")?.clone();
        // A Docker base is in the engine: its layers need not be sent.
        let hints = match &s.base {
            BaseRef::Daemon(name) => vec![name.clone()],
            _ => vec![],
        };
        out.push(EngineSink { docker, tags: names.tags.clone(), hints, platform: cx.load_platform.clone() });
    }
    if let Some(settings) = &s.push {
        let mount = match (&s.base, cx.base) {
            (BaseRef::Registry(r), Some(b)) if r.registry == settings.reference.registry => {
                Some((r.repository.clone(), b.layers.iter().map(|l| l.digest.clone()).collect()))
            }
            _ => None,
        };
        out.push(RegistrySink {
            settings: settings.clone(),
            options: s.registry.clone(),
            mount,
            supply: s.supply.clone(),
        });
    }
    Ok(out)
}

/// Refuses, before anything is built, an output that cannot take `kind` (an archive, an index).
pub(super) fn check(s: &BuildSettings, kind: ArtifactKind) -> anyhow::Result<()> {
    for target in &s.outputs {
        if let Target::Archive { path } = target {
            ArchiveSink { path: path.clone(), tags: Vec::new() }.accepts(kind)?;
        }
    }
    Ok(())
}
