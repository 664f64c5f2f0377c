//! The file sinks: an OCI image layout directory, and one tar that is both an OCI layout and a
//! `docker load` archive. Both copy blobs out of the blob store (see `sink::fsutil`), off the
//! async runtime.

use super::{ArtifactKind, OutputError, Sink, Written};
use crate::image::Artifact;
use crate::sink::{self, Blobs, Target};
use crate::store::BlobStore;
use crate::supply::SupplySettings;
use crate::supply::attach::{Subject, sbom_manifest};
use futures_util::future::BoxFuture;
use std::path::PathBuf;

/// `oci:DIR[:TAG]`: an image or an index, named `TAG` in `index.json`; with `referrers`, each
/// image's SBOM next to it as an OCI referrer (an untagged entry with an `artifactType`).
pub struct LayoutSink {
    pub dir: PathBuf,
    pub tag: Option<String>,
    /// What to attach, from the facts the build recorded in the blob store.
    pub referrers: Option<SupplySettings>,
}

/// `docker-archive:PATH`: one image, with `tags` as its `RepoTags`.
pub struct ArchiveSink {
    pub path: PathBuf,
    pub tags: Vec<String>,
}

impl LayoutSink {
    fn target(&self) -> Target {
        Target::OciLayout { dir: self.dir.clone(), tag: self.tag.clone() }
    }
}

impl ArchiveSink {
    fn target(&self) -> Target {
        Target::Archive { path: self.path.clone() }
    }
}

/// The store the file sinks copy from: an artifact read from a layout is not copied on.
fn store_of(blobs: &Blobs, sink: &str) -> Result<BlobStore, OutputError> {
    blobs.store().cloned().ok_or_else(|| OutputError::Refused {
        sink: sink.to_string(),
        reason: format!("the blobs are in {}, not in the blob store; copy layouts with skopeo", blobs.location()),
    })
}

/// Each image's SBOM (as the build recorded its facts) into the layout at `dir`, as a referrer of
/// the image: the SBOM and an empty config as blobs, the referrer manifest, an `index.json` entry.
fn write_sboms(
    artifact: &Artifact,
    supply: &SupplySettings,
    store: &BlobStore,
    dir: &std::path::Path,
) -> Result<(), sink::SinkError> {
    let location = format!("oci:{}", dir.display());
    let store_err = |source| sink::SinkError::Store { location: location.clone(), source };
    for image in artifact.images() {
        let facts = crate::supply::gather::for_push(supply, &image.manifest_digest, store).map_err(|e| {
            sink::SinkError::Unsupported { location: location.clone(), reason: format!("the SBOM's facts: {e}") }
        })?;
        let Some((sbom, a)) = facts.and_then(|a| a.sbom.clone().map(|s| (s, a))) else { continue };
        let subject = Subject {
            digest: image.manifest_digest.clone(),
            media_type: crate::image::MEDIA_TYPE_MANIFEST.into(),
            size: image.manifest.len() as u64,
        };
        let manifest = sbom_manifest(&subject, (&sbom, a.sbom_format), a.created.as_deref());
        let (sbom_digest, _) = store.put(&sbom).map_err(store_err)?;
        let (empty, _) = store.put(b"{}").map_err(store_err)?;
        let (digest, size) = store.put(&manifest).map_err(store_err)?;
        let blobs = [&sbom_digest, &empty, &digest];
        sink::write_oci_referrer((&digest, size, a.sbom_format.media_type()), &blobs, store, dir)?;
    }
    Ok(())
}

/// Runs `write` on a blocking thread (file copies and hashing stay off the runtime).
async fn blocking(
    sink: String,
    write: impl FnOnce() -> Result<(), sink::SinkError> + Send + 'static,
) -> Result<Written, OutputError> {
    let name = sink.clone();
    tokio::task::spawn_blocking(write)
        .await
        .map_err(|source| OutputError::Task { sink: name.clone(), source })?
        .map_err(|source| OutputError::Sink { sink: name, source: Box::new(source) })?;
    Ok(Written { summary: format!("Wrote {sink}"), pushed: None })
}

impl Sink for LayoutSink {
    fn name(&self) -> String {
        self.target().to_string()
    }

    fn write<'a>(&'a self, artifact: &'a Artifact, blobs: &'a Blobs) -> BoxFuture<'a, Result<Written, OutputError>> {
        Box::pin(async move {
            let store = store_of(blobs, &self.name())?;
            let (artifact, dir, tag) = (artifact.clone(), self.dir.clone(), self.tag.clone());
            let supply = self.referrers.clone();
            blocking(self.name(), move || {
                match &artifact {
                    Artifact::Image(image) => sink::write_oci_layout(image, &store, &dir, tag.as_deref())?,
                    Artifact::Index(index) => sink::write_oci_index(index, &store, &dir, tag.as_deref())?,
                }
                match supply {
                    Some(supply) => write_sboms(&artifact, &supply, &store, &dir),
                    None => Ok(()),
                }
            })
            .await
        })
    }
}

impl ArchiveSink {
    fn index_refusal(&self, platforms: usize) -> OutputError {
        OutputError::Refused {
            sink: self.name(),
            reason: format!(
                "a docker archive holds the image of one platform, and this build makes {platforms}: write \
                 oci:DIR[:TAG] or --push the index"
            ),
        }
    }
}

impl Sink for ArchiveSink {
    fn name(&self) -> String {
        self.target().to_string()
    }

    fn accepts(&self, kind: ArtifactKind) -> Result<(), OutputError> {
        match kind {
            ArtifactKind::Image => Ok(()),
            ArtifactKind::Index { platforms } => Err(self.index_refusal(platforms)),
        }
    }

    fn write<'a>(&'a self, artifact: &'a Artifact, blobs: &'a Blobs) -> BoxFuture<'a, Result<Written, OutputError>> {
        Box::pin(async move {
            let image = match artifact {
                Artifact::Image(image) => image.clone(),
                Artifact::Index(index) => return Err(self.index_refusal(index.images.len())),
            };
            let store = store_of(blobs, &self.name())?;
            let (path, tags) = (self.path.clone(), self.tags.clone());
            blocking(self.name(), move || sink::write_archive(&image, &store, &path, &tags)).await
        })
    }
}
