//! The local Docker engine as a sink (`--load`): see [`crate::engine`]. An index puts the image of
//! this machine's platform into the engine, which holds one platform per name.

use super::{OutputError, Sink, Written};
use crate::image::{Artifact, Image};
use crate::sink::Blobs;
use crate::triple::Platform;
use bollard::Docker;
use futures_util::future::BoxFuture;

pub struct EngineSink {
    pub docker: Docker,
    /// `NAME:TAG`s the image gets.
    pub tags: Vec<String>,
    /// Engine images that may share the image's first layers (a Docker base).
    pub hints: Vec<String>,
    /// The platform whose image of an index is loaded (this machine's).
    pub platform: Option<Platform>,
}

impl EngineSink {
    /// The image to load: the artifact's, or the index's for [`EngineSink::platform`].
    fn pick<'a>(&self, artifact: &'a Artifact) -> Result<&'a Image, OutputError> {
        match artifact {
            Artifact::Image(image) => Ok(image),
            Artifact::Index(index) => {
                let wanted = self.platform.as_ref().map(ToString::to_string);
                index.images.iter().find(|i| Some(i.platform()) == wanted).ok_or_else(|| OutputError::Refused {
                    sink: self.name(),
                    reason: format!(
                        "the engine takes the image for this machine ({}), and the index has none; write \
                         oci:DIR or --push the index instead",
                        wanted.unwrap_or_else(|| "an unsupported platform".into())
                    ),
                })
            }
        }
    }
}

impl Sink for EngineSink {
    fn name(&self) -> String {
        "the Docker engine".into()
    }

    fn write<'a>(&'a self, artifact: &'a Artifact, blobs: &'a Blobs) -> BoxFuture<'a, Result<Written, OutputError>> {
        Box::pin(async move {
            let image = self.pick(artifact)?;
            let store = blobs.store().ok_or_else(|| OutputError::Refused {
                sink: self.name(),
                reason: format!("the blobs are in {}, not in the blob store", blobs.location()),
            })?;
            crate::engine::load_with_hints(&self.docker, image, store, &self.tags, &self.hints)
                .await
                .map_err(Box::new)?;
            let summary = match artifact {
                Artifact::Image(_) => format!("Loaded into the Docker engine as {}", self.tags.join(", ")),
                Artifact::Index(_) => {
                    format!("Loaded the {} image into the Docker engine as {}", image.platform(), self.tags.join(", "))
                }
            };
            Ok(Written { summary, pushed: None })
        })
    }
}
