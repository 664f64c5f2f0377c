//! The sources' tar read once per build: its digest (the result cache's key), its size (the
//! upload's header), and, when it is small enough, its bytes, which the upload then sends as they
//! are. Reading the sources once rather than three times (the digest, the count, the upload) is a
//! tenth of a second of a warm rebuild of a Phoenix app; and the builder then builds exactly the
//! bytes the result cache's key names (see docs/build-cache.md, "The sources, read once").

use super::{Project, ProjectError};
use crate::digest::{Digest, HashingWriter};
use std::io::Write;

/// The largest tar whose bytes are kept in memory for the upload (a bigger one is streamed from
/// the files again, in constant memory, and checked against the digest).
pub const KEEP_AT_MOST: u64 = 32 << 20;

/// The project's source tar ([`Project::write_source_tar`]) as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTar {
    digest: Digest,
    len: u64,
    bytes: Option<Vec<u8>>,
}

impl SourceTar {
    /// The digest of the tar's bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The tar's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the tar is empty (it never is: a tar ends with two blocks).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tar's bytes, when it was no bigger than the `keep` it was read with.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.bytes.as_deref()
    }
}

impl Project {
    /// Reads the source tar once: its digest and size, and its bytes when there are at most
    /// `keep` of them (0: never kept).
    pub fn read_source_tar(&self, keep: u64) -> Result<SourceTar, ProjectError> {
        let keeping = Keeping { bytes: Some(Vec::new()), keep };
        let (keeping, hasher, len) = self.write_source_tar(HashingWriter::new(keeping))?.finish();
        Ok(SourceTar { digest: Digest::from_hasher(hasher), len, bytes: keeping.bytes })
    }
}

/// Keeps what is written until it grows past `keep` bytes, then nothing.
struct Keeping {
    bytes: Option<Vec<u8>>,
    keep: u64,
}

impl Write for Keeping {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(bytes) = &mut self.bytes {
            if (bytes.len() + buf.len()) as u64 > self.keep {
                self.bytes = None;
            } else {
                bytes.extend_from_slice(buf);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn project(asset: usize) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("mix.exs"), "defmodule X.MixProject do end").unwrap();
        fs::create_dir_all(dir.path().join("priv")).unwrap();
        fs::write(dir.path().join("priv/asset.bin"), vec![7u8; asset]).unwrap();
        let p = Project::open(dir.path()).unwrap();
        (dir, p)
    }

    #[test]
    fn the_tar_read_once_is_the_source_tar() {
        let (_dir, p) = project(5000);
        let tar = p.write_source_tar(Vec::new()).unwrap();
        let read = p.read_source_tar(KEEP_AT_MOST).unwrap();
        assert_eq!(read.bytes(), Some(tar.as_slice()));
        assert_eq!(read.len(), tar.len() as u64);
        assert_eq!(read.digest(), &Digest::of(&tar));
        assert!(!read.is_empty());
    }

    #[test]
    fn a_tar_bigger_than_keep_is_not_kept_but_still_hashed_and_counted() {
        let (_dir, p) = project(5000);
        let tar = p.write_source_tar(Vec::new()).unwrap();
        let exact = p.read_source_tar(tar.len() as u64).unwrap();
        assert_eq!(exact.bytes().map(<[u8]>::len), Some(tar.len()));
        for keep in [0, 512, tar.len() as u64 - 1] {
            let read = p.read_source_tar(keep).unwrap();
            assert_eq!(read.bytes(), None, "keep {keep}");
            assert_eq!((read.len(), read.digest()), (exact.len(), exact.digest()), "keep {keep}");
        }
    }
}
