//! The result cache: an exact fingerprint of every input of a build → the image(s) it made, kept
//! in the blob store (`<store>/results/<fingerprint hex>.json`). A build whose fingerprint is
//! there, with every blob of its image(s) still in the store, needs no builder and no layering:
//! only its outputs are written. What goes into the fingerprint is decided by the caller
//! (`commands::build::result_cache`); this module hashes named parts, hashes the project's source
//! tar, and reads and writes the entries. Each entry names the project it was built from, so that
//! `release-oci cache prune --project DIR` forgets that project's results ([`ResultCache::forget`]).
//! See docs/build-cache.md.

use crate::digest::{DiffId, Digest};
use crate::image::Image;
use crate::layer::LayerBlob;
use crate::project::{Project, ProjectError};
use crate::store::BlobStore;
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Changes whenever the meaning of a fingerprint or the entry format changes.
const FORMAT: &str = "release-oci result cache 1";
/// The directory in the blob store that holds the entries.
const DIR: &str = "results";

#[derive(Debug, thiserror::Error)]
pub enum ResultCacheError {
    #[error("cannot hash the project's sources")]
    Sources(#[from] ProjectError),
    #[error("cannot write the result cache entry {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialise the result cache entry")]
    Json(#[from] serde_json::Error),
    #[error("cannot remove the result cache records in {path}: delete the directory by hand")]
    Forget {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The fingerprint of a build: 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn hex(&self) -> &str {
        &self.0
    }
}

/// Named parts of a fingerprint, hashed in the order given, each name and value length-prefixed
/// (so no two different lists of parts give the same byte stream).
#[derive(Debug, Clone)]
pub struct KeyBuilder {
    parts: Vec<(String, Vec<u8>)>,
}

impl Default for KeyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyBuilder {
    /// Starts with the format version.
    pub fn new() -> Self {
        let mut k = KeyBuilder { parts: Vec::new() };
        k.part("format", FORMAT);
        k
    }

    pub fn part(&mut self, name: &str, value: impl AsRef<[u8]>) -> &mut Self {
        self.parts.push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    /// The parts so far (for `--verbose` logs).
    pub fn parts(&self) -> &[(String, Vec<u8>)] {
        &self.parts
    }

    pub fn finish(&self) -> Fingerprint {
        let mut h = Sha256::new();
        for (name, value) in &self.parts {
            for bytes in [name.as_bytes(), value.as_slice()] {
                h.update((bytes.len() as u64).to_be_bytes());
                h.update(bytes);
            }
        }
        Fingerprint(hex::encode(h.finalize()))
    }
}

/// The digest of the project's source tar: exactly the bytes the builder is sent (without its
/// `build/src/` prefix, the same for every build), hashed as it is made, never written. A build
/// reads it with [`Project::read_source_tar`], which also keeps the bytes for the upload.
pub fn source_digest(project: &Project) -> Result<Digest, ProjectError> {
    Ok(project.read_source_tar(0)?.digest().clone())
}

/// One image of a cached result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedImage {
    pub release: String,
    pub version: String,
    pub image: Image,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct EntryJson {
    format: String,
    /// The project directory the images were built from (absent in entries of older versions).
    #[serde(default)]
    project: Option<PathBuf>,
    images: Vec<ImageJson>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ImageJson {
    release: String,
    version: String,
    manifest_digest: Digest,
    config_digest: Digest,
    layers: Vec<LayerJson>,
    os: String,
    architecture: String,
    variant: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LayerJson {
    name: String,
    digest: Digest,
    diff_id: DiffId,
    size: u64,
    media_type: String,
}

/// The result entries of a blob store.
#[derive(Debug, Clone)]
pub struct ResultCache {
    store: BlobStore,
    dir: PathBuf,
}

impl ResultCache {
    pub fn new(store: &BlobStore) -> Self {
        ResultCache { store: store.clone(), dir: store.root().join(DIR) }
    }

    fn path(&self, key: &Fingerprint) -> PathBuf {
        self.dir.join(format!("{}.json", key.hex()))
    }

    /// The images recorded for `key`, when the entry is there, readable, and every blob of every
    /// image (manifest and config checked against their digests) is still in the store. Anything
    /// less is a miss, never an error: the build then runs.
    pub fn lookup(&self, key: &Fingerprint) -> Option<Vec<CachedImage>> {
        let path = self.path(key);
        let bytes = std::fs::read(&path).ok()?;
        let entry: EntryJson = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable result cache entry, ignored");
                return None;
            }
        };
        if entry.format != FORMAT || entry.images.is_empty() {
            return None;
        }
        entry.images.into_iter().map(|i| self.image(i)).collect()
    }

    fn image(&self, i: ImageJson) -> Option<CachedImage> {
        let read = |d: &Digest| std::fs::read(self.store.blob_path(d)).ok().filter(|b| Digest::of(b) == *d);
        let manifest = read(&i.manifest_digest)?;
        let config = read(&i.config_digest)?;
        if !i.layers.iter().all(|l| self.store.contains(&l.digest)) {
            tracing::info!(manifest = %i.manifest_digest, "a layer of the cached image is gone from the store");
            return None;
        }
        let layers = i
            .layers
            .into_iter()
            .map(|l| LayerBlob {
                name: l.name,
                digest: l.digest,
                diff_id: l.diff_id,
                size: l.size,
                media_type: l.media_type,
            })
            .collect();
        let image = Image {
            manifest,
            manifest_digest: i.manifest_digest,
            config,
            config_digest: i.config_digest,
            layers,
            os: i.os,
            architecture: i.architecture,
            variant: i.variant,
        };
        Some(CachedImage { release: i.release, version: i.version, image })
    }

    /// Records `images`, built from `project`, for `key` (replacing an older entry): temp file +
    /// rename.
    pub fn record(&self, key: &Fingerprint, project: &Path, images: &[CachedImage]) -> Result<(), ResultCacheError> {
        let entry = EntryJson {
            format: FORMAT.to_string(),
            project: Some(project.to_path_buf()),
            images: images
                .iter()
                .map(|c| ImageJson {
                    release: c.release.clone(),
                    version: c.version.clone(),
                    manifest_digest: c.image.manifest_digest.clone(),
                    config_digest: c.image.config_digest.clone(),
                    layers: c
                        .image
                        .layers
                        .iter()
                        .map(|l| LayerJson {
                            name: l.name.clone(),
                            digest: l.digest.clone(),
                            diff_id: l.diff_id.clone(),
                            size: l.size,
                            media_type: l.media_type.clone(),
                        })
                        .collect(),
                    os: c.image.os.clone(),
                    architecture: c.image.architecture.clone(),
                    variant: c.image.variant.clone(),
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&entry)?;
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ResultCacheError::Write { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(write_err(&self.dir))?;
        let mut tmp = tempfile::NamedTempFile::with_prefix_in(".tmp-", &self.dir).map_err(write_err(&self.dir))?;
        tmp.write_all(&bytes).map_err(write_err(tmp.path()))?;
        let dest = self.path(key);
        tmp.persist(&dest).map_err(|e| ResultCacheError::Write { path: dest.clone(), source: e.error })?;
        Ok(())
    }

    /// Removes the entries of `project` (every entry when `None`), and those that do not say which
    /// project they are of: the next build of it runs. Returns the entries removed.
    pub fn forget(&self, project: Option<&Path>) -> Result<Vec<PathBuf>, ResultCacheError> {
        let failed = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ResultCacheError::Forget { path, source }
        };
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(failed(&self.dir)(e)),
        };
        let mut removed = Vec::new();
        for entry in entries {
            let path = entry.map_err(failed(&self.dir))?.path();
            if path.extension().is_some_and(|e| e == "json") && entry_is_of(&path, project) {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed.push(path),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(failed(&path)(e)),
                }
            }
        }
        removed.sort();
        Ok(removed)
    }
}

/// Whether the entry at `path` is of `project` (any, when `None`); an entry that does not say
/// (an older or damaged one) is of every project.
fn entry_is_of(path: &Path, project: Option<&Path>) -> bool {
    let Some(project) = project else { return true };
    let recorded = std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<EntryJson>(&bytes).ok())
        .and_then(|entry| entry.project);
    recorded.is_none_or(|p| p == project)
}

#[cfg(test)]
mod tests;
