//! Outputs: every place an artifact goes is a [`Sink`] (go-containerregistry's `layout.Write`,
//! `tarball.Write`, `daemon.Write`, `remote.Write`): an OCI layout directory, a `docker load`
//! archive, the local Docker engine, a registry. A command builds its [`Outputs`] once, from its
//! settings, and hands every artifact it makes (an image, or an index) to them: the local sinks
//! first, the registry last. The SBOM, signatures and provenance go with the registry sink.

mod engine;
mod files;
mod registry;

pub use engine::EngineSink;
pub use files::{ArchiveSink, LayoutSink};
pub use registry::{PushSettings, RegistrySink, push_image_of};

use crate::image::Artifact;
use crate::sink::Blobs;
use futures_util::future::BoxFuture;

/// Where an artifact goes.
pub trait Sink: Send + Sync {
    /// For messages: `oci:DIR:TAG`, `docker-archive:PATH`, `the Docker engine`, `HOST/REPO`.
    fn name(&self) -> String;

    /// Refuses, before anything is built, an artifact kind this sink cannot take (an archive
    /// holds one image, not an index).
    fn accepts(&self, _artifact_kind: ArtifactKind) -> Result<(), OutputError> {
        Ok(())
    }

    /// Writes `artifact`, whose blobs are in `blobs`. Returns what the user is told.
    fn write<'a>(&'a self, artifact: &'a Artifact, blobs: &'a Blobs) -> BoxFuture<'a, Result<Written, OutputError>>;
}

/// Which kind of artifact a command will make, for [`Sink::accepts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    Image,
    /// An index of `platforms` images.
    Index {
        platforms: usize,
    },
}

/// What a sink did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// One line for the user: `Wrote oci:out:1.0`.
    pub summary: String,
    /// The pushed `REPOSITORY@DIGEST`, from a registry sink.
    pub pushed: Option<String>,
}

/// The sinks of one command, in the order they are written.
#[derive(Default)]
pub struct Outputs {
    sinks: Vec<Box<dyn Sink>>,
}

impl Outputs {
    pub fn new() -> Outputs {
        Outputs::default()
    }

    pub fn push(&mut self, sink: impl Sink + 'static) {
        self.sinks.push(Box::new(sink));
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    pub fn names(&self) -> Vec<String> {
        self.sinks.iter().map(|s| s.name()).collect()
    }

    /// Every sink's [`Sink::accepts`], before anything is built.
    pub fn check(&self, kind: ArtifactKind) -> Result<(), OutputError> {
        self.sinks.iter().try_for_each(|s| s.accepts(kind))
    }

    /// Writes `artifact` to every sink in turn; the first failure stops the rest. Returns the
    /// pushed reference, when a registry sink pushed it.
    pub async fn write(&self, artifact: &Artifact, blobs: &Blobs) -> Result<Option<String>, OutputError> {
        let mut pushed = None;
        for sink in &self.sinks {
            let written = sink.write(artifact, blobs).await?;
            crate::ui::step(written.summary);
            pushed = pushed.or(written.pushed);
        }
        Ok(pushed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("writing {sink}")]
    Sink {
        sink: String,
        #[source]
        source: Box<crate::sink::SinkError>,
    },
    #[error("{sink}: {reason}")]
    Refused { sink: String, reason: String },
    #[error(transparent)]
    Engine(#[from] Box<crate::engine::EngineError>),
    #[error("pushing to {reference}")]
    Registry {
        reference: String,
        #[source]
        source: Box<crate::registry::RegistryError>,
    },
    #[error("pushing to {reference}")]
    Publish {
        reference: String,
        #[source]
        source: Box<crate::supply::publish::PublishError>,
    },
    #[error("the SBOM and provenance of {digest}")]
    Facts {
        digest: String,
        #[source]
        source: Box<crate::supply::facts::FactsError>,
    },
    #[error("a writer thread for {sink} failed")]
    Task {
        sink: String,
        #[source]
        source: tokio::task::JoinError,
    },
}

#[cfg(test)]
mod tests;
