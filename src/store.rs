//! A content-addressed blob store on disk (`<root>/blobs/sha256/<hex>`), the cache every build
//! writes its layers and configs into and every sink copies from. Writes go to a temp file in the
//! same directory and are renamed into place, so a reader never sees half a blob and two builds
//! writing the same blob at once both succeed.
//!
//! A stored blob is checked before it is reused ([`BlobStore::inspect`], and through it
//! [`BlobStore::contains`] and the diff_id lookups): its size always, its digest when the file may
//! have changed since the store last saw it good (see `check.rs` and docs/build-cache.md). A
//! damaged blob is moved to `<root>/quarantine/` and reported missing, so that the caller makes or
//! fetches it again. `release-oci cache verify` and `cache gc` are in `maintain.rs`.

mod check;
mod maintain;
#[cfg(test)]
mod tests;

pub use check::{BlobState, Damage};
pub use maintain::{GcReport, VerifyReport};

use crate::digest::{DiffId, Digest, HashingWriter};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// What to tell the user to do about a damaged store.
pub const REPAIR_HINT: &str = "run `release-oci cache verify --repair`";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use blob store {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "damaged blob in the blob store: {0}; build again to make or fetch it anew, and {REPAIR_HINT} to check the other blobs"
    )]
    Damaged(Box<Damage>),
    #[error("cannot move the damaged blob {digest} ({path}) aside to {to}; delete it by hand, then {REPAIR_HINT}")]
    Quarantine {
        digest: Digest,
        path: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// The diff_id index of gzip layers (the one gzip configuration).
const GZIP_INDEX: &str = "diffids";

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
        fs::create_dir_all(root.join(GZIP_INDEX)).map_err(io_err(&root))?;
        Ok(Self { root })
    }

    /// The default location: `$RELEASE_OCI_CACHE`, else `$XDG_CACHE_HOME/release-oci`, else
    /// `~/.cache/release-oci`.
    pub fn default_root() -> PathBuf {
        if let Some(p) = std::env::var_os("RELEASE_OCI_CACHE") {
            return PathBuf::from(p);
        }
        if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(p).join("release-oci");
        }
        match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".cache").join("release-oci"),
            None => std::env::temp_dir().join("release-oci-cache"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    /// Whether the store holds blob `digest` in good order ([`BlobStore::inspect`]); a damaged one
    /// is moved aside (with a warning) and is not there any more.
    pub fn contains(&self, digest: &Digest) -> bool {
        match self.inspect(digest, None) {
            Ok(BlobState::Good(_)) => true,
            Ok(BlobState::Missing | BlobState::Damaged(_)) => false,
            Err(e) => {
                tracing::warn!(%digest, error = %chain(&e), "cannot check a stored blob; treated as missing");
                false
            }
        }
    }

    /// A writer for a new blob; call [`BlobWriter::commit`] to hash-check and move it into place.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let dir = self.root.join("blobs").join("sha256");
        let tmp = NamedTempFile::with_prefix_in(".tmp-", &dir).map_err(io_err(&dir))?;
        let file = tmp.reopen().map_err(io_err(tmp.path()))?;
        Ok(BlobWriter { tmp, out: HashingWriter::new(BufWriter::new(file)), store: self.clone() })
    }

    /// Stores `bytes` (a config or manifest) and returns its digest and size.
    pub fn put(&self, bytes: &[u8]) -> Result<(Digest, u64), StoreError> {
        let digest = Digest::of(bytes);
        if !self.contains(&digest) {
            let mut w = self.writer()?;
            w.write_all(bytes).map_err(io_err(&self.root))?;
            w.commit()?;
        }
        Ok((digest, bytes.len() as u64))
    }

    /// Remembers which gzip blob holds the layer with `diff_id` (a cache for base layers).
    pub fn record_diff_id(&self, diff_id: &DiffId, digest: &Digest) -> Result<(), StoreError> {
        self.record_layer(GZIP_INDEX, diff_id, digest)
    }

    /// The gzip blob recorded for `diff_id`, if it is still in the store.
    pub fn lookup_diff_id(&self, diff_id: &DiffId) -> Option<Digest> {
        self.lookup_layer(GZIP_INDEX, diff_id)
    }

    /// Remembers, in the index `index` (one per compression setting, e.g. `diffids` for gzip,
    /// `diffids-zstd-3`), which compressed blob holds the layer with `diff_id`.
    pub fn record_layer(&self, index: &str, diff_id: &DiffId, digest: &Digest) -> Result<(), StoreError> {
        let dir = self.root.join(index);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut tmp = NamedTempFile::with_prefix_in(".tmp-", &dir).map_err(io_err(&dir))?;
        tmp.write_all(digest.as_str().as_bytes()).map_err(io_err(&dir))?;
        let dest = dir.join(diff_id.hex());
        tmp.persist(&dest).map_err(|e| StoreError::Io { path: dest, source: e.error })?;
        Ok(())
    }

    /// The compressed blob recorded for `diff_id` in the index `index`, if it is still in the store.
    pub fn lookup_layer(&self, index: &str, diff_id: &DiffId) -> Option<Digest> {
        self.lookup_layer_blob(index, diff_id).map(|(digest, _)| digest)
    }

    /// [`BlobStore::lookup_layer`] with the blob's size; the blob is checked first
    /// ([`BlobStore::contains`]), so a damaged one is moved aside and not returned.
    pub fn lookup_layer_blob(&self, index: &str, diff_id: &DiffId) -> Option<(Digest, u64)> {
        let s = fs::read_to_string(self.root.join(index).join(diff_id.hex())).ok()?;
        let digest: Digest = s.trim().parse().ok()?;
        match self.inspect(&digest, None) {
            Ok(BlobState::Good(size)) => Some((digest, size)),
            Ok(BlobState::Missing | BlobState::Damaged(_)) => None,
            Err(e) => {
                tracing::warn!(%digest, error = %chain(&e), "cannot check a stored layer; treated as missing");
                None
            }
        }
    }
}

/// An error and its causes on one line (for warnings).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// A blob being written: hashed as it is written, renamed into place on commit, deleted if dropped.
pub struct BlobWriter {
    tmp: NamedTempFile,
    out: HashingWriter<BufWriter<File>>,
    store: BlobStore,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl BlobWriter {
    /// Flushes, fsyncs and renames the blob to its digest's path, and records its size and file
    /// stamp (it was hashed as it was written: it is good); returns digest and size.
    pub fn commit(self) -> Result<(Digest, u64), StoreError> {
        let (buf, hasher, size) = self.out.finish();
        let path = self.tmp.path().to_path_buf();
        let file = buf.into_inner().map_err(|e| StoreError::Io { path: path.clone(), source: e.into_error() })?;
        file.sync_all().map_err(io_err(&path))?;
        let digest = Digest::from_hasher(hasher);
        // Same content already there (another build, or an earlier run): keep the old file if it
        // is good; a damaged one is moved aside and replaced.
        if let BlobState::Good(_) = self.store.inspect(&digest, Some(size))? {
            return Ok((digest, size));
        }
        let dest = self.store.blob_path(&digest);
        self.tmp.persist(&dest).map_err(|e| StoreError::Io { path: dest.clone(), source: e.error })?;
        self.store.record_good(&digest, &dest)?;
        Ok((digest, size))
    }
}
