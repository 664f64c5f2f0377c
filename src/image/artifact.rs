//! The one value every source yields and every sink takes: an image, or an image index of
//! several platforms (go-containerregistry's `v1.Image` / `v1.ImageIndex`). Its blobs live in a
//! `sink::Blobs`: the blob store, or the layout it was read from.

use super::{BuiltIndex, Image, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST};
use crate::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Artifact {
    Image(Image),
    Index(BuiltIndex),
}

impl Artifact {
    /// The digest of the manifest or the index: what names the artifact.
    pub fn digest(&self) -> &Digest {
        match self {
            Artifact::Image(i) => &i.manifest_digest,
            Artifact::Index(x) => &x.digest,
        }
    }

    /// The manifest's or the index's bytes, as stored.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Artifact::Image(i) => &i.manifest,
            Artifact::Index(x) => &x.bytes,
        }
    }

    pub fn media_type(&self) -> &'static str {
        match self {
            Artifact::Image(_) => MEDIA_TYPE_MANIFEST,
            Artifact::Index(_) => MEDIA_TYPE_INDEX,
        }
    }

    /// The images: one, or one per platform of the index.
    pub fn images(&self) -> &[Image] {
        match self {
            Artifact::Image(i) => std::slice::from_ref(i),
            Artifact::Index(x) => &x.images,
        }
    }

    /// Every blob (each once), the manifest or index last.
    pub fn blob_digests(&self) -> Vec<&Digest> {
        match self {
            Artifact::Image(i) => i.blob_digests(),
            Artifact::Index(x) => x.blob_digests(),
        }
    }

    /// `image` or `image index`, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Artifact::Image(_) => "image",
            Artifact::Index(_) => "image index",
        }
    }
}
