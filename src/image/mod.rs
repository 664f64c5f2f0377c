//! The OCI image model: the image config (the base's, with our settings applied) and the image
//! manifest, both serialised canonically (sorted keys, no whitespace) into the blob store.

mod artifact;
mod assemble;
mod index;
mod json;

pub use artifact::Artifact;
pub use assemble::{assemble, oci_digest};
pub use index::{BuiltIndex, index};
pub use json::canonical_json;

use crate::digest::Digest;
use crate::layer::LayerBlob;
use oci_spec::image::ImageConfiguration;
use std::collections::BTreeMap;

pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation an OCI layout's `index.json` names (tags) a manifest with.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A base image whose layers are already in the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// For messages and history (`debian:bookworm-slim`, `oci:/path:tag`).
    pub name: String,
    pub config: ImageConfiguration,
    /// In order, one per `config.rootfs.diff_ids`.
    pub layers: Vec<LayerBlob>,
    /// The manifest digest, when the source had a manifest.
    pub digest: Option<Digest>,
}

/// What release-oci puts in the image config on top of the base's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSettings {
    pub platform: crate::triple::Platform,
    /// Replaces the base's; empty means none.
    pub entrypoint: Vec<String>,
    /// Replaces the base's; empty means none.
    pub cmd: Vec<String>,
    /// Replaces the base's when set; `None` keeps the base's.
    pub user: Option<String>,
    /// Replaces the base's when set; `None` keeps the base's.
    pub working_dir: Option<String>,
    /// Merged by name into the base's: the base's order, then new names in this order; a name
    /// given here overrides the base's value.
    pub env: Vec<(String, String)>,
    /// `4000/tcp`; merged with the base's.
    pub exposed_ports: Vec<String>,
    /// Merged with the base's, these winning.
    pub labels: BTreeMap<String, String>,
    /// Replaces the base's when set; `None` keeps the base's.
    pub stop_signal: Option<String>,
    /// `VOLUME`s (absolute paths), merged with the base's (`--hot-upgrades`: the release root's).
    pub volumes: Vec<String>,
    /// RFC 3339, e.g. `1970-01-01T00:00:00Z` (from `SOURCE_DATE_EPOCH`).
    pub created: String,
}

#[cfg(test)]
impl ConfigSettings {
    /// The settings of the small test images: linux/`arch`, an entrypoint, nothing else.
    pub(crate) fn for_tests(arch: &'static str) -> ConfigSettings {
        ConfigSettings {
            platform: crate::triple::Platform { os: "linux", architecture: arch, variant: None },
            entrypoint: vec!["/app/bin/hello".into()],
            cmd: vec![],
            user: None,
            working_dir: None,
            env: vec![],
            exposed_ports: vec![],
            labels: BTreeMap::new(),
            stop_signal: None,
            volumes: vec![],
            created: "1970-01-01T00:00:00Z".into(),
        }
    }
}

/// An assembled image: manifest and config bytes as stored, and every layer in manifest order
/// (the base's first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub layers: Vec<LayerBlob>,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Image {
    /// The platform as `os/arch[/variant]`.
    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// Every blob the image consists of: config, layers (each once, in order), and the manifest
    /// last.
    pub fn blob_digests(&self) -> Vec<&Digest> {
        let mut out = vec![&self.config_digest];
        for l in &self.layers {
            if !out.contains(&&l.digest) {
                out.push(&l.digest);
            }
        }
        out.push(&self.manifest_digest);
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot serialise the image {what}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot build the image {what}")]
    Spec {
        what: &'static str,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("cannot store the image {what}")]
    Store {
        what: &'static str,
        #[source]
        source: crate::store::StoreError,
    },
    #[error("base image {base} is for {found}, but the image is for {wanted}")]
    Platform { base: String, found: String, wanted: String },
    #[error("base image {base}: {reason}")]
    BaseLayers { base: String, reason: String },
    #[error("cannot build the image index: {reason}")]
    Index { reason: String },
}
