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
    File { source: PathBuf },
    /// A regular file with these bytes (generated content: /etc/passwd, scripts).
    Bytes(Vec<u8>),
    /// A symbolic link, stored as a link (never followed).
    Symlink { target: PathBuf },
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
