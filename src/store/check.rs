//! Checking a stored blob before it is reused, and moving a damaged one aside.
//!
//! Every blob has a record, `<root>/verified/<hex>`, written when the store last knew its content
//! to be good (when it was committed, hashed as it was written, or after hashing it again): its
//! size and the file's inode, mtime and ctime. A check compares the blob's size with the record
//! (and with the size the caller expects) always, and hashes the blob again only when there is
//! doubt: no record (a store from before records), another inode, mtime or ctime (someone wrote,
//! replaced, linked or touched the file; ctime cannot be set back), or a ctime not older than the
//! record itself (a change in the same clock tick as the record, git's "racily clean" case). A
//! blob found good by hashing gets a new record. Why not hash on every reuse: docs/build-cache.md.

use super::{BlobStore, StoreError, io_err};
use crate::digest::{Digest, HashingWriter};
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use tempfile::NamedTempFile;

/// The directory of the blob records.
pub(super) const RECORDS: &str = "verified";
/// Where damaged blobs are moved.
pub(super) const QUARANTINE: &str = "quarantine";

/// A stored blob, as a check found it.
#[derive(Debug)]
pub enum BlobState {
    /// There, with the digest's content: its size in bytes.
    Good(u64),
    /// Not in the store.
    Missing,
    /// Its content is not the digest's; it has been moved aside, so it is missing now.
    Damaged(Damage),
}

/// A blob whose file does not hold its digest's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The digest the blob is stored under (what its content should hash to).
    pub digest: Digest,
    /// Where it was in the store.
    pub path: PathBuf,
    /// What was found instead: another size, another digest, an unreadable file.
    pub found: String,
    /// Where it was moved (in `<root>/quarantine/`), when it was.
    pub moved_to: Option<PathBuf>,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}) {}", self.digest, self.path.display(), self.found)?;
        match &self.moved_to {
            Some(to) => write!(f, "; moved to {}", to.display()),
            None => Ok(()),
        }
    }
}

/// A blob file as last seen good: size, inode, mtime and ctime (seconds, nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &Metadata) -> Self {
        Stamp {
            size: meta.len(),
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    fn line(&self) -> String {
        let (m, c) = (self.mtime, self.ctime);
        format!("1 {} {} {} {} {} {}\n", self.size, self.ino, m.0, m.1, c.0, c.1)
    }

    fn parse(s: &str) -> Option<Self> {
        let n: Vec<&str> = s.split_whitespace().collect();
        let [version, size, ino, ms, mn, cs, cn] = n.as_slice() else { return None };
        let int = |s: &str| s.parse::<i64>().ok();
        if *version != "1" {
            return None;
        }
        Some(Stamp {
            size: size.parse().ok()?,
            ino: ino.parse().ok()?,
            mtime: (int(ms)?, int(mn)?),
            ctime: (int(cs)?, int(cn)?),
        })
    }
}

impl BlobStore {
    /// Checks blob `digest` before it is reused: its size (against its record, and against
    /// `expected_size` when the caller knows it), and its digest when the file may have changed
    /// since the store last saw it good. A damaged blob is moved to `<root>/quarantine/` with a
    /// warning and reported as [`BlobState::Damaged`]: the caller treats it as missing.
    pub fn inspect(&self, digest: &Digest, expected_size: Option<u64>) -> Result<BlobState, StoreError> {
        let path = self.blob_path(digest);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BlobState::Missing),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        match self.fault(digest, &path, &meta, expected_size) {
            None => Ok(BlobState::Good(meta.len())),
            Some(found) => self.quarantine(digest, found).map(BlobState::Damaged),
        }
    }

    /// What is wrong with the blob file at `path`, or `None` when it is good.
    fn fault(&self, digest: &Digest, path: &Path, meta: &Metadata, expected_size: Option<u64>) -> Option<String> {
        if !meta.is_file() {
            return Some("is not a regular file".into());
        }
        let size = meta.len();
        if let Some(expected) = expected_size
            && expected != size
        {
            return Some(format!("has {size} bytes where {expected} were expected"));
        }
        if let Some((stamp, written)) = self.record(digest) {
            if stamp.size != size {
                return Some(format!("has {size} bytes, but had {} when it was stored", stamp.size));
            }
            let racy = (meta.ctime(), meta.ctime_nsec()) >= written;
            if stamp == Stamp::of(meta) && !racy {
                return None;
            }
        }
        match hash_file(path) {
            Ok((found, n)) if found == *digest => {
                if let Err(e) = self.record_if_unchanged(digest, path, meta) {
                    tracing::debug!(%digest, error = %super::chain(&e), "cannot record a checked blob");
                }
                tracing::debug!(%digest, bytes = n, "stored blob hashed again: good");
                None
            }
            Ok((found, n)) => Some(format!("holds {n} bytes with digest {found}")),
            Err(e) => Some(format!("cannot be read ({e})")),
        }
    }

    fn record_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(RECORDS).join(digest.hex())
    }

    /// The blob's record and when it was written (its file's mtime).
    fn record(&self, digest: &Digest) -> Option<(Stamp, (i64, i64))> {
        let mut file = File::open(self.record_path(digest)).ok()?;
        let meta = file.metadata().ok()?;
        let mut text = String::new();
        file.read_to_string(&mut text).ok()?;
        Some((Stamp::parse(&text)?, (meta.mtime(), meta.mtime_nsec())))
    }

    /// Records the blob at `path` as good as it is now (it was just written or hashed).
    pub(super) fn record_good(&self, digest: &Digest, path: &Path) -> Result<(), StoreError> {
        let meta = fs::metadata(path).map_err(io_err(path))?;
        self.write_record(digest, &Stamp::of(&meta))
    }

    /// Records the blob as good if its file is still as `before` (not changed while it was hashed).
    pub(super) fn record_if_unchanged(
        &self,
        digest: &Digest,
        path: &Path,
        before: &Metadata,
    ) -> Result<(), StoreError> {
        let now = fs::symlink_metadata(path).map_err(io_err(path))?;
        let stamp = Stamp::of(before);
        if Stamp::of(&now) != stamp {
            return Ok(());
        }
        self.write_record(digest, &stamp)
    }

    fn write_record(&self, digest: &Digest, stamp: &Stamp) -> Result<(), StoreError> {
        let dir = self.root.join(RECORDS);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut tmp = NamedTempFile::with_prefix_in(".tmp-", &dir).map_err(io_err(&dir))?;
        tmp.write_all(stamp.line().as_bytes()).map_err(io_err(tmp.path()))?;
        let dest = self.record_path(digest);
        tmp.persist(&dest).map_err(|e| StoreError::Io { path: dest, source: e.error })?;
        Ok(())
    }

    /// Moves the damaged blob `digest` to `<root>/quarantine/<hex>.<nanoseconds>` and forgets its
    /// record; warns, naming the digest, the path and what was found.
    pub(super) fn quarantine(&self, digest: &Digest, found: String) -> Result<Damage, StoreError> {
        let path = self.blob_path(digest);
        let dir = self.root.join(QUARANTINE);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let to = dir.join(format!("{}.{nanos}", digest.hex()));
        let moved = fs::create_dir_all(&dir).and_then(|()| fs::rename(&path, &to));
        let moved_to = match moved {
            Ok(()) => Some(to),
            // Another build moved it first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(StoreError::Quarantine { digest: digest.clone(), path, to, source }),
        };
        if let Err(e) = fs::remove_file(self.record_path(digest))
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::debug!(%digest, error = %e, "cannot remove the record of a damaged blob");
        }
        let damage = Damage { digest: digest.clone(), path, found, moved_to };
        tracing::warn!("blob store: damaged blob {damage}; it will be made or fetched again");
        Ok(damage)
    }
}

/// The digest and size of the file at `path`, read in 256 KiB chunks.
pub(super) fn hash_file(path: &Path) -> io::Result<(Digest, u64)> {
    let mut file = File::open(path)?;
    let mut out = HashingWriter::new(io::sink());
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let (_, hasher, size) = out.finish();
    Ok((Digest::from_hasher(hasher), size))
}
