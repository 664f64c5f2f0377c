//! Where an image's blobs are: the blob store (what a build made, a cached result, a base), or the
//! OCI layout it was read from (a directory, or a tar indexed by entry name). Every sink reads
//! blobs through [`Blobs`], so one reader serves `inspect`, `push` and layout bases.

use super::SinkError;
use crate::digest::Digest;
use crate::store::BlobStore;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// JSON documents (index, manifests, configs) larger than this are refused.
pub(crate) const MAX_JSON: u64 = 64 * 1024 * 1024;

/// The blobs of an [`crate::image::Artifact`].
pub enum Blobs {
    Store(BlobStore),
    Layout(LayoutFiles),
}

/// Where one blob's bytes are: a whole file, or a slice of one (an archive's entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobLocation {
    File(PathBuf),
    Slice { path: PathBuf, offset: u64, size: u64 },
}

impl Blobs {
    /// The blob store, for the sinks that copy from it (layouts, archives, the engine).
    pub fn store(&self) -> Option<&BlobStore> {
        match self {
            Blobs::Store(s) => Some(s),
            Blobs::Layout(_) => None,
        }
    }

    /// Where blob `digest` is; an error names the layout when it is missing.
    pub fn locate(&self, digest: &Digest) -> Result<BlobLocation, SinkError> {
        match self {
            Blobs::Store(store) => {
                let path = store.blob_path(digest);
                if !path.is_file() {
                    return Err(SinkError::MissingBlob { digest: digest.to_string(), path });
                }
                Ok(BlobLocation::File(path))
            }
            Blobs::Layout(files) => files.locate(digest),
        }
    }

    /// Where the blobs are, for messages.
    pub fn location(&self) -> String {
        match self {
            Blobs::Store(store) => format!("the blob store {}", store.root().display()),
            Blobs::Layout(files) => files.location(),
        }
    }
}

/// The files of a layout: a directory, or a tar indexed by entry name.
pub enum LayoutFiles {
    Dir(PathBuf),
    Archive { path: PathBuf, file: File, entries: HashMap<String, (u64, u64)> },
}

impl LayoutFiles {
    pub(crate) fn archive(path: &Path) -> Result<LayoutFiles, SinkError> {
        let file = File::open(path).map_err(SinkError::io(path))?;
        let mut entries = HashMap::new();
        let mut ar = tar::Archive::new(&file);
        for entry in ar.entries().map_err(SinkError::io(path))? {
            let entry = entry.map_err(SinkError::io(path))?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).trim_start_matches("./").to_string();
            entries.insert(name, (entry.raw_file_position(), entry.size()));
        }
        Ok(LayoutFiles::Archive { path: path.to_path_buf(), file, entries })
    }

    pub(crate) fn location(&self) -> String {
        match self {
            LayoutFiles::Dir(dir) => format!("oci:{}", dir.display()),
            LayoutFiles::Archive { path, .. } => format!("docker-archive:{}", path.display()),
        }
    }

    pub(crate) fn read(&self, name: &str) -> Result<Vec<u8>, SinkError> {
        let missing = |location: String| SinkError::NotALayout { location, reason: format!("{name} is missing") };
        let too_big = |location: String| SinkError::Unsupported { location, reason: format!("{name} is too large") };
        match self {
            LayoutFiles::Dir(dir) => {
                let path = dir.join(name);
                let meta = match fs::metadata(&path) {
                    Ok(m) => m,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(missing(self.location()));
                    }
                    Err(e) => return Err(SinkError::Io { path, source: e }),
                };
                if meta.len() > MAX_JSON {
                    return Err(too_big(self.location()));
                }
                fs::read(&path).map_err(SinkError::io(path))
            }
            LayoutFiles::Archive { path, file, entries } => {
                let Some(&(offset, size)) = entries.get(name) else {
                    return Err(missing(self.location()));
                };
                if size > MAX_JSON {
                    return Err(too_big(self.location()));
                }
                let mut buf = vec![0u8; size as usize];
                file.read_exact_at(&mut buf, offset).map_err(SinkError::io(path.clone()))?;
                Ok(buf)
            }
        }
    }

    /// Where blob `digest` is in the layout.
    pub(crate) fn locate(&self, digest: &Digest) -> Result<BlobLocation, SinkError> {
        let name = format!("blobs/sha256/{}", digest.hex());
        let missing = || SinkError::NotALayout { location: self.location(), reason: format!("{name} is missing") };
        match self {
            LayoutFiles::Dir(dir) => {
                let path = dir.join(&name);
                if !path.is_file() {
                    return Err(missing());
                }
                Ok(BlobLocation::File(path))
            }
            LayoutFiles::Archive { path, entries, .. } => {
                let &(offset, size) = entries.get(&name).ok_or_else(missing)?;
                Ok(BlobLocation::Slice { path: path.clone(), offset, size })
            }
        }
    }

    pub(crate) fn read_blob(&self, digest: &Digest, what: &str) -> Result<Vec<u8>, SinkError> {
        let bytes = self.read(&format!("blobs/sha256/{}", digest.hex()))?;
        let found = Digest::of(&bytes);
        if found != *digest {
            return Err(SinkError::DigestMismatch {
                location: self.location(),
                what: what.to_string(),
                expected: digest.to_string(),
                found: found.to_string(),
            });
        }
        Ok(bytes)
    }
}
