//! Where images go: an OCI image layout directory, or one tar that is both an OCI layout and a
//! `docker load` archive; and reading them back (`inspect`, layout base images).

mod archive;
mod blobs;
mod files;
mod fsutil;
mod layout;
mod lock;
mod read;
mod report;

pub use archive::{write_archive, write_archive_to, write_engine_archive_to};
pub use blobs::{BlobLocation, Blobs, LayoutFiles};
pub use files::{EntryType, LayerEntry, LayerListing, list_layer};
pub use layout::{write_oci_index, write_oci_layout, write_oci_referrer};
pub use read::{IndexEntry, image_at, load_base_from_layout, load_base_from_layout_for, read_image, read_index};
pub use report::{ImageInfo, LayerInfo, human_size};

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;

/// Accepted spellings of a [`Target`], for messages.
pub const TARGET_FORMS: &str = "oci:DIR[:TAG] (an OCI image layout directory) or docker-archive:PATH (a tar for `docker load`, also an OCI layout)";

/// An output (or, for `inspect`, an input) location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `oci:DIR[:TAG]`: an OCI image layout directory; the tag becomes the manifest's
    /// `org.opencontainers.image.ref.name` in `index.json`.
    OciLayout { dir: PathBuf, tag: Option<String> },
    /// `docker-archive:PATH`: one tar that `docker load` reads and that is an OCI layout.
    Archive { path: PathBuf },
}

#[derive(Debug, thiserror::Error)]
#[error("invalid image location {input:?}: {reason}; expected {TARGET_FORMS}")]
pub struct ParseTargetError {
    pub input: String,
    pub reason: &'static str,
}

impl FromStr for Target {
    type Err = ParseTargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseTargetError { input: s.to_string(), reason };
        if let Some(rest) = s.strip_prefix("oci:") {
            // As skopeo: the directory ends at the first colon.
            let (dir, tag) = match rest.split_once(':') {
                Some((dir, tag)) => (dir, Some(tag)),
                None => (rest, None),
            };
            if dir.is_empty() {
                return Err(err("the directory is empty"));
            }
            if let Some(tag) = tag
                && (tag.is_empty() || tag.chars().any(|c| c.is_whitespace() || c.is_control()))
            {
                return Err(err("the tag is empty or has spaces"));
            }
            return Ok(Target::OciLayout { dir: dir.into(), tag: tag.map(String::from) });
        }
        if let Some(path) = s.strip_prefix("docker-archive:") {
            if path.is_empty() {
                return Err(err("the path is empty"));
            }
            return Ok(Target::Archive { path: path.into() });
        }
        Err(err("unknown transport"))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::OciLayout { dir, tag: Some(tag) } => write!(f, "oci:{}:{tag}", dir.display()),
            Target::OciLayout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            Target::Archive { path } => write!(f, "docker-archive:{}", path.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot write or read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot lock {path} (it keeps concurrent writers of one layout from losing each other's tags); check that the directory is writable and on a filesystem with flock"
    )]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {digest} is not in the blob store ({path})")]
    MissingBlob { digest: String, path: PathBuf },
    #[error("{location} is not an OCI image layout: {reason}")]
    NotALayout { location: String, reason: String },
    #[error("{location}: cannot parse {what}")]
    Json {
        location: String,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot serialise {what}")]
    Serialise {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{location}: {what} has digest {found}, but {expected} was expected")]
    DigestMismatch { location: String, what: String, expected: String, found: String },
    #[error("{location} has no image tagged {tag:?}; tags there: {}", list(.available))]
    NoSuchTag { location: String, tag: String, available: Vec<String> },
    #[error("{location} holds {count} images; pick one with :TAG (tags there: {})", list(.available))]
    Ambiguous { location: String, count: usize, available: Vec<String> },
    #[error("{location}: {reason}")]
    Unsupported { location: String, reason: String },
    #[error("{location} is an image index without an image for {wanted}; it has {available}")]
    NoPlatform { location: String, wanted: String, available: String },
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("cannot store a blob from {location}")]
    Store {
        location: String,
        #[source]
        source: crate::store::StoreError,
    },
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "none".to_string() } else { v.join(", ") }
}

impl SinkError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> SinkError {
        let path = path.into();
        move |source| SinkError::Io { path, source }
    }
}

#[cfg(test)]
mod tests;
