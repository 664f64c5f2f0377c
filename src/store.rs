//! A content-addressed blob store on disk (`<root>/blobs/sha256/<hex>`), the cache every build
//! writes its layers and configs into and every sink copies from. Writes go to a temp file in the
//! same directory and are renamed into place, so a reader never sees half a blob and two builds
//! writing the same blob at once both succeed.

use crate::digest::{DiffId, Digest, HashingWriter};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use blob store {path}")]
    Io {
        path: PathBuf,
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

    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
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
        let s = fs::read_to_string(self.root.join(index).join(diff_id.hex())).ok()?;
        let d: Digest = s.trim().parse().ok()?;
        self.contains(&d).then_some(d)
    }
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
    /// Flushes, fsyncs and renames the blob to its digest's path; returns digest and size.
    pub fn commit(self) -> Result<(Digest, u64), StoreError> {
        let (buf, hasher, size) = self.out.finish();
        let path = self.tmp.path().to_path_buf();
        let file = buf.into_inner().map_err(|e| StoreError::Io { path: path.clone(), source: e.into_error() })?;
        file.sync_all().map_err(io_err(&path))?;
        let digest = Digest::from_hasher(hasher);
        let dest = self.store.blob_path(&digest);
        if dest.is_file() {
            // Same content already there (another build, or an earlier run): keep the old file.
            return Ok((digest, size));
        }
        self.tmp.persist(&dest).map_err(|e| StoreError::Io { path: dest, source: e.error })?;
        Ok((digest, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (d1, n) = store.put(b"{}").unwrap();
        let (d2, _) = store.put(b"{}").unwrap();
        assert_eq!(d1, d2);
        assert_eq!(n, 2);
        assert_eq!(fs::read(store.blob_path(&d1)).unwrap(), b"{}");
        // Only the blob, no temp files left.
        let names: Vec<_> = fs::read_dir(dir.path().join("blobs/sha256")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join("blobs/sha256")).unwrap().count(), 0);
    }

    #[test]
    fn diff_id_index_round_trips_only_while_blob_exists() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (d, _) = store.put(b"gz").unwrap();
        let diff = DiffId::of(b"tar");
        assert_eq!(store.lookup_diff_id(&diff), None);
        store.record_diff_id(&diff, &d).unwrap();
        assert_eq!(store.lookup_diff_id(&diff), Some(d.clone()));
        fs::remove_file(store.blob_path(&d)).unwrap();
        assert_eq!(store.lookup_diff_id(&diff), None);
    }

    #[test]
    fn indexes_are_separate() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (gz, _) = store.put(b"gz").unwrap();
        let (zst, _) = store.put(b"zst").unwrap();
        let diff = DiffId::of(b"tar");
        store.record_diff_id(&diff, &gz).unwrap();
        assert_eq!(store.lookup_layer("diffids-zstd-3", &diff), None);
        store.record_layer("diffids-zstd-3", &diff, &zst).unwrap();
        assert_eq!(store.lookup_layer("diffids-zstd-3", &diff), Some(zst));
        assert_eq!(store.lookup_diff_id(&diff), Some(gz));
    }
}
