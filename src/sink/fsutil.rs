//! Never a half-written output: files are written to a temp file in the destination directory
//! and renamed into place; blobs are hard-linked from the store when possible.

use super::SinkError;
use crate::digest::Digest;
use crate::store::BlobStore;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tempfile::NamedTempFile;

/// A temp file next to `dest`, readable by all once it is in place.
pub(crate) fn temp_beside(dest: &Path) -> Result<NamedTempFile, SinkError> {
    let dir = parent_of(dest);
    let tmp = NamedTempFile::with_prefix_in(".tmp-", dir).map_err(SinkError::io(dir))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644)).map_err(SinkError::io(tmp.path()))?;
    Ok(tmp)
}

/// Flushes, fsyncs and renames `tmp` to `dest`.
pub(crate) fn persist(tmp: NamedTempFile, dest: &Path) -> Result<(), SinkError> {
    tmp.as_file().sync_all().map_err(SinkError::io(tmp.path()))?;
    tmp.persist(dest).map_err(|e| SinkError::Io { path: dest.to_path_buf(), source: e.error })?;
    Ok(())
}

/// Writes `bytes` to `dest` atomically.
pub(crate) fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let mut tmp = temp_beside(dest)?;
    tmp.write_all(bytes).map_err(SinkError::io(tmp.path()))?;
    persist(tmp, dest)
}

/// Puts the store's blob `digest` at `dest` unless something is there already (existing blobs
/// are not rewritten): a hard link when the store is on the same filesystem, else a copy.
pub(crate) fn place_blob(store: &BlobStore, digest: &Digest, dest: &Path) -> Result<(), SinkError> {
    if dest.exists() {
        return Ok(());
    }
    let src = store.blob_path(digest);
    if !src.is_file() {
        return Err(SinkError::MissingBlob { digest: digest.to_string(), path: src });
    }
    match fs::hard_link(&src, dest) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(_) => {} // another filesystem, or links not allowed: copy
    }
    let mut tmp = temp_beside(dest)?;
    let mut file = File::open(&src).map_err(SinkError::io(&src))?;
    io::copy(&mut file, &mut tmp).map_err(SinkError::io(tmp.path()))?;
    persist(tmp, dest)
}

pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
