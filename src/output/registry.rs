//! A registry as a sink (`--push`, `release-oci push`): the blobs (base layers mounted from the
//! base's repository when it is on the same registry), the manifest or index by digest, the
//! attachments (SBOM, signatures, provenance: `supply::publish`), the tags last.

use super::{OutputError, Sink, Written};
use crate::digest::Digest;
use crate::image::{Artifact, Image};
use crate::registry::{self, BlobRef, BlobSource, Client, PushImage, PushSummary, PushTarget, RegistryOptions};
use crate::sink::{BlobLocation, Blobs, SinkError};
use crate::supply::{SupplySettings, attach::Attachments};
use crate::ui;
use futures_util::future::BoxFuture;
use std::collections::HashSet;

/// Where `--push` / `push` sends an image: the repository and the tags to set (`cli` makes it
/// from the flags: `PushSettings::new`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    pub reference: registry::Reference,
    /// The reference's tag (or `latest`) first, then `--tag`s; no duplicates.
    pub tags: Vec<String>,
}

pub struct RegistrySink {
    pub settings: PushSettings,
    pub options: RegistryOptions,
    /// A repository of the same registry to mount these blobs from (the base's).
    pub mount: Option<(String, HashSet<Digest>)>,
    /// What to attach, from the facts the build recorded in the blob store.
    pub supply: SupplySettings,
}

/// The push form of `image`: every blob where `blobs` has it.
pub fn push_image_of(image: &Image, blobs: &Blobs) -> Result<PushImage, SinkError> {
    let blob = |digest: &Digest, size: u64, label: String| -> Result<BlobRef, SinkError> {
        let source = match blobs.locate(digest)? {
            BlobLocation::File(path) => BlobSource::File(path),
            BlobLocation::Slice { path, offset, .. } => BlobSource::Slice { path, offset },
        };
        Ok(BlobRef { digest: digest.clone(), size, label, source })
    };
    let layers = image.layers.iter().map(|l| blob(&l.digest, l.size, format!("layer {}", l.name)));
    Ok(PushImage {
        manifest: image.manifest.clone(),
        manifest_digest: image.manifest_digest.clone(),
        media_type: manifest_media_type(&image.manifest),
        config: blob(&image.config_digest, image.config.len() as u64, "config".into())?,
        layers: layers.collect::<Result<_, _>>()?,
    })
}

/// The manifest's own `mediaType` (a Docker v2 manifest read from an archive keeps its type).
fn manifest_media_type(manifest: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(manifest).unwrap_or_default();
    v["mediaType"].as_str().unwrap_or(crate::image::MEDIA_TYPE_MANIFEST).to_string()
}

impl RegistrySink {
    fn reference(&self) -> String {
        self.settings.reference.repository_ref()
    }

    fn sink_err(&self) -> impl Fn(SinkError) -> OutputError + '_ {
        move |source| OutputError::Sink { sink: self.reference(), source: Box::new(source) }
    }

    async fn client(&self) -> Result<Client, OutputError> {
        let r = &self.settings.reference;
        let mut scopes = vec![format!("repository:{}:pull,push", r.repository)];
        if let Some((from, _)) = &self.mount {
            scopes.push(format!("repository:{from}:pull"));
        }
        Client::connect(&r.registry, &self.options, scopes)
            .await
            .map_err(|source| OutputError::Registry { reference: self.reference(), source: Box::new(source) })
    }

    fn target(&self) -> PushTarget {
        let (mount_from, mountable) = self.mount.clone().unzip();
        PushTarget {
            repository: self.settings.reference.repository.clone(),
            tags: self.settings.tags.clone(),
            mount_from,
            mountable: mountable.unwrap_or_default(),
        }
    }

    /// The attachments of each image, when there are any to push and the build recorded them.
    fn attachments(&self, artifact: &Artifact, blobs: &Blobs) -> Result<Option<Vec<Attachments>>, OutputError> {
        let Some(store) = blobs.store().filter(|_| self.supply.attaches()) else { return Ok(None) };
        let mut out = Vec::new();
        for image in artifact.images() {
            let digest = &image.manifest_digest;
            let facts = crate::supply::gather::for_push(&self.supply, digest, store)
                .map_err(|source| OutputError::Facts { digest: digest.to_string(), source: Box::new(source) })?;
            out.push(facts.unwrap_or_default());
        }
        Ok(Some(out))
    }

    async fn send(
        &self,
        client: &Client,
        artifact: &Artifact,
        images: &[PushImage],
        attachments: Option<Vec<Attachments>>,
    ) -> Result<PushSummary, OutputError> {
        let (target, bars, reference) = (self.target(), registry::Bars::new(), self.reference());
        let signer = self.supply.signer();
        let publish = |source| OutputError::Publish { reference: reference.clone(), source: Box::new(source) };
        let plain = |source| OutputError::Registry { reference: reference.clone(), source: Box::new(source) };
        let (bytes, media_type) = (artifact.bytes(), artifact.media_type());
        match (artifact, attachments) {
            (Artifact::Image(_), Some(a)) => {
                crate::supply::publish::push_image(client, &images[0], &target, &bars, &reference, &a[0], signer)
                    .await
                    .map_err(publish)
            }
            (Artifact::Image(_), None) => registry::push_image(client, &images[0], &target, &bars).await.map_err(plain),
            (Artifact::Index(_), Some(a)) => crate::supply::publish::push_index(
                client,
                images,
                &a,
                (bytes, media_type),
                &target,
                &bars,
                &reference,
                signer,
            )
            .await
            .map_err(publish),
            (Artifact::Index(_), None) => {
                registry::push::push_index(client, images, bytes, media_type, &target, &bars).await.map_err(plain)
            }
        }
    }
}

impl Sink for RegistrySink {
    fn name(&self) -> String {
        self.reference()
    }

    fn write<'a>(&'a self, artifact: &'a Artifact, blobs: &'a Blobs) -> BoxFuture<'a, Result<Written, OutputError>> {
        Box::pin(async move {
            let images = artifact
                .images()
                .iter()
                .map(|i| push_image_of(i, blobs))
                .collect::<Result<Vec<_>, _>>()
                .map_err(self.sink_err())?;
            let attachments = self.attachments(artifact, blobs)?;
            // A plain step line, not a spinner: the per-blob bars own the terminal while they run.
            ui::step(format!(
                "Pushing the {} to {} (tags: {})",
                artifact.kind(),
                self.reference(),
                self.settings.tags.join(", ")
            ));
            let start = std::time::Instant::now();
            let client = self.client().await?;
            let summary = self.send(&client, artifact, &images, attachments).await?;
            let pushed = format!("{}@{}", self.reference(), artifact.digest());
            ui::detail(format!("done in {:.1}s: {pushed}: {summary}", start.elapsed().as_secs_f64()));
            Ok(Written { summary: format!("Pushed {pushed}"), pushed: Some(pushed) })
        })
    }
}
