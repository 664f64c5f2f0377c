//! Deterministic layers: a [`LayerSpec`] (the entries a layer holds, in order) becomes a gzip
//! compressed tar blob in the [`BlobStore`], hashed while it is written (diff_id over the tar,
//! digest over the gzip). Same spec, same bytes, on any machine.

use crate::digest::{DiffId, Digest};
use std::path::PathBuf;

/// The one pinned compressor configuration (flate2 on zlib-rs, this level, no name, mtime 0).
pub const GZIP_LEVEL: u32 = 6;
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// What a tar entry is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// A regular file whose bytes are read from this path on disk when the layer is written.
    File {
        source: PathBuf,
    },
    /// A regular file with these bytes (generated content: /etc/passwd, scripts).
    Bytes(Vec<u8>),
    /// A symbolic link, stored as a link (never followed).
    Symlink {
        target: PathBuf,
    },
}

/// One tar entry. `path` is relative to the image root, `/`-separated, no leading `/`, no trailing
/// `/` (e.g. `app/lib/hello-0.1.0/ebin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// The content of one layer, named for humans (`erts`, `otp`, `deps`, `app`, `release`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    pub name: String,
    pub entries: Vec<Entry>,
}

/// A layer written to the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// Human name (from the spec, or `base` for layers of the base image).
    pub name: String,
    pub digest: Digest,
    pub diff_id: DiffId,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    pub media_type: String,
}

mod compress;
mod import;
mod spec;
mod tar_entry;
mod write;

pub use compress::{
    Compression, CompressionParseError, Encoder, MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_ZSTD, ZSTD_DEFAULT_LEVEL,
    decoder, decoder_for,
};
pub use import::{import_blob, import_tar};
pub use write::{
    CachedLayer, write_layer, write_layer_cached, write_layer_cached_with, write_layer_with, write_layers,
    write_layers_cached,
};

use std::io;
use std::path::Path;

/// How layer tars are written. Everything not here is fixed (see [`write_layer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarOptions {
    /// The modification time of every entry, in seconds since the epoch (`SOURCE_DATE_EPOCH`).
    pub mtime: u64,
}

/// What went wrong making a layer, naming the layer, the path or the digest concerned.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot add {path}: it is a {kind}; only regular files, directories and symlinks go into a layer")]
    UnsupportedFileType { path: PathBuf, kind: &'static str },
    #[error("cannot add {path}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("layer {layer}: {path} is given twice with different content or attributes")]
    Conflict { layer: String, path: String },
    #[error("layer {layer}: {source_path} changed size while it was being written")]
    SourceChanged { layer: String, source_path: PathBuf },
    #[error("cannot write layer {layer}")]
    Write {
        layer: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read layer {layer}")]
    Read {
        layer: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot import layer {layer}: {reason}")]
    Import { layer: String, reason: String },
    #[error("cannot store layer {layer}")]
    Store {
        layer: String,
        #[source]
        source: crate::store::StoreError,
    },
}

impl LayerError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: io::Error) -> Self {
        LayerError::Io { path: path.to_path_buf(), source }
    }
}

#[cfg(test)]
mod tests;

/// The OCI media type for a layer media type a base image may use (Docker's gzip layers map to
/// OCI's), or `None` for one release-oci cannot carry over.
pub fn oci_layer_media_type(m: &str) -> Option<&'static str> {
    Some(match m {
        "application/vnd.oci.image.layer.v1.tar+gzip" | "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        "application/vnd.oci.image.layer.v1.tar" => "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+zstd" => "application/vnd.oci.image.layer.v1.tar+zstd",
        _ => return None,
    })
}
