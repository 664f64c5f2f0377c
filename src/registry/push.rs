//! Pushing an image, as go-containerregistry's `remote.Write` does: every distinct layer
//! (deduplicated by digest) is checked with HEAD, mounted from the base's repository when it can
//! be, or uploaded, a few at a time; then the config; the manifest goes last, once per tag, so a
//! failed push never leaves a tag pointing at an image with missing blobs.

use super::progress::Bars;
use super::{Registry, RegistryError, Transfer};
use crate::digest::Digest;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use std::collections::HashSet;
use std::fmt;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Blobs transferred at once (as go-containerregistry's default).
pub const CONCURRENCY: usize = 4;

/// Where a blob's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobSource {
    /// A whole file (the blob store, an OCI layout's `blobs/sha256/…`).
    File(PathBuf),
    /// A slice of a file (a blob inside a tar archive).
    Slice { path: PathBuf, offset: u64 },
    /// In memory (tests).
    Bytes(Bytes),
}

impl BlobSource {
    /// `len` bytes from `offset` into the blob (read off the async threads).
    pub async fn read(&self, offset: u64, len: u64) -> Result<Bytes, RegistryError> {
        let (path, base) = match self {
            BlobSource::Bytes(b) => {
                let (s, e) = (offset as usize, (offset + len) as usize);
                return b.get(s..e).map(Bytes::copy_from_slice).ok_or_else(|| RegistryError::Io {
                    path: PathBuf::from("<memory>"),
                    source: std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                });
            }
            BlobSource::File(p) => (p.clone(), 0),
            BlobSource::Slice { path, offset } => (path.clone(), *offset),
        };
        let p2 = path.clone();
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let file = std::fs::File::open(&p2)?;
            let mut buf = vec![0u8; len as usize];
            file.read_exact_at(&mut buf, base + offset)?;
            Ok(buf)
        })
        .await
        .map_err(|e| RegistryError::Io { path: path.clone(), source: std::io::Error::other(e) })?;
        read.map(Bytes::from).map_err(|source| RegistryError::Io { path, source })
    }
}

/// One blob to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
    /// For progress bars and messages (`layer app`, `config`).
    pub label: String,
    pub source: BlobSource,
}

impl BlobRef {
    /// The blob `digest` of `size` bytes, read from its file in `store` when it is uploaded (not
    /// at all when the registry has it or mounts it).
    pub fn stored(store: &crate::store::BlobStore, digest: &Digest, size: u64, label: impl Into<String>) -> BlobRef {
        BlobRef { digest: digest.clone(), size, label: label.into(), source: BlobSource::File(store.blob_path(digest)) }
    }
}

/// An image ready to push: the manifest as bytes (its digest is what gets printed), the config
/// and the layers in manifest order.
#[derive(Debug, Clone)]
pub struct PushImage {
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub media_type: String,
    pub config: BlobRef,
    pub layers: Vec<BlobRef>,
}

/// Where to push: a repository of the registry, the tags, and the repository (same registry)
/// whose blobs may be mounted instead of uploaded.
#[derive(Debug, Clone, Default)]
pub struct PushTarget {
    pub repository: String,
    /// Tags to point at the manifest; none: pushed by digest only.
    pub tags: Vec<String>,
    pub mount_from: Option<String>,
    /// Digests that `mount_from` has (the base image's layers).
    pub mountable: HashSet<Digest>,
}

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushSummary {
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    pub mounted: usize,
    pub existing: usize,
}

impl fmt::Display for PushSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} uploaded ({}), {} mounted, {} already there",
            self.uploaded,
            crate::ui::bytes(self.uploaded_bytes),
            self.mounted,
            self.existing
        )
    }
}

impl PushSummary {
    fn add(&mut self, t: Transfer, size: u64) {
        match t {
            Transfer::Uploaded => {
                self.uploaded += 1;
                self.uploaded_bytes += size;
            }
            Transfer::Mounted => self.mounted += 1,
            Transfer::AlreadyThere => self.existing += 1,
        }
    }
}

/// Pushes `image` to `target`: layers, then config, then the manifest under each tag.
pub async fn push_image<R: Registry>(
    reg: &R,
    image: &PushImage,
    target: &PushTarget,
    bars: &Bars,
) -> Result<PushSummary, RegistryError> {
    let summary = push_blobs(reg, image, target, bars).await?;
    put_tags(reg, target, &image.manifest_digest, &image.media_type, &image.manifest).await?;
    Ok(summary)
}

/// Pushes an index: each image's blobs and manifest (by digest), then the index under each tag.
pub async fn push_index<R: Registry>(
    reg: &R,
    images: &[PushImage],
    index: &[u8],
    media_type: &str,
    target: &PushTarget,
    bars: &Bars,
) -> Result<PushSummary, RegistryError> {
    let mut summary = PushSummary::default();
    for image in images {
        let s = push_blobs(reg, image, target, bars).await?;
        reg.put_manifest(&target.repository, image.manifest_digest.as_str(), &image.media_type, &image.manifest)
            .await?;
        summary.uploaded += s.uploaded;
        summary.uploaded_bytes += s.uploaded_bytes;
        summary.mounted += s.mounted;
        summary.existing += s.existing;
    }
    put_tags(reg, target, &Digest::of(index), media_type, index).await?;
    Ok(summary)
}

async fn push_blobs<R: Registry>(
    reg: &R,
    image: &PushImage,
    target: &PushTarget,
    bars: &Bars,
) -> Result<PushSummary, RegistryError> {
    let mut seen = HashSet::new();
    let layers: Vec<&BlobRef> =
        image.layers.iter().filter(|l| l.digest != image.config.digest && seen.insert(l.digest.clone())).collect();
    let mut summary = PushSummary::default();
    // Indexes, not references, go through the closure: a closure over `&BlobRef` makes the
    // future fail to be provably `Send` (higher-ranked lifetimes), and callers need `Send`.
    let done: Vec<(Transfer, u64)> = futures_util::stream::iter(0..layers.len())
        .map(|i| {
            let blob = layers[i];
            async move { transfer(reg, blob, target, bars).await.map(|t| (t, blob.size)) }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    for (t, size) in done {
        summary.add(t, size);
    }
    // The config only once every layer is there, the manifest only once the config is.
    let t = transfer(reg, &image.config, target, bars).await?;
    summary.add(t, image.config.size);
    Ok(summary)
}

async fn put_tags<R: Registry>(
    reg: &R,
    target: &PushTarget,
    digest: &Digest,
    media_type: &str,
    bytes: &[u8],
) -> Result<(), RegistryError> {
    let mut tags: Vec<&str> = Vec::new();
    for t in &target.tags {
        if !tags.contains(&t.as_str()) {
            tags.push(t);
        }
    }
    if tags.is_empty() {
        return reg.put_manifest(&target.repository, digest.as_str(), media_type, bytes).await;
    }
    for tag in tags {
        reg.put_manifest(&target.repository, tag, media_type, bytes).await?;
    }
    Ok(())
}

async fn transfer<R: Registry>(
    reg: &R,
    blob: &BlobRef,
    target: &PushTarget,
    bars: &Bars,
) -> Result<Transfer, RegistryError> {
    let repo = &target.repository;
    if reg.blob_exists(repo, &blob.digest).await? {
        tracing::debug!("{}: {} ({}) is already there", reg.name(), blob.label, blob.digest);
        return Ok(Transfer::AlreadyThere);
    }
    if let Some(from) = target.mount_from.as_deref().filter(|f| *f != repo)
        && target.mountable.contains(&blob.digest)
        && reg.mount_blob(repo, &blob.digest, from).await?
    {
        return Ok(Transfer::Mounted);
    }
    let progress = bars.blob(&blob.label, blob.size);
    reg.upload_blob(repo, blob, &progress).await.map_err(|e| suspect_local_copy(e, blob))?;
    progress.finish("uploaded");
    Ok(Transfer::Uploaded)
}

/// A blob the registry refuses as not matching its digest (`DIGEST_INVALID`, "digest did not
/// match", "digest mismatch") was read from a local copy that may be damaged: the error says
/// so and how to check the blob store. Every other error is returned as it is.
fn suspect_local_copy(e: RegistryError, blob: &BlobRef) -> RegistryError {
    let RegistryError::Rejected { registry, detail, .. } = &e else { return e };
    let lower = detail.to_lowercase();
    let digest_refused = detail.contains("DIGEST_INVALID")
        || lower.contains("digest did not match")
        || lower.contains("digest mismatch");
    if !digest_refused {
        return e;
    }
    let local = match &blob.source {
        BlobSource::File(path) => path.display().to_string(),
        BlobSource::Slice { path, offset } => format!("{} at offset {offset}", path.display()),
        BlobSource::Bytes(_) => "in memory".to_string(),
    };
    RegistryError::LocalBlobSuspect {
        registry: registry.clone(),
        label: blob.label.clone(),
        digest: blob.digest.to_string(),
        local,
        source: Box::new(e),
    }
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "push_digest_tests.rs"]
mod digest_tests;
