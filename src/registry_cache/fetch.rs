//! Reading a result from the cache repository: the index under the fingerprint's tag, each
//! image's manifest and config (small: fetched into the blob store, verified by digest) and the
//! build facts; the layers only when an output needs their bytes ([`download_layers`]).

use super::{ANN_FACTS_OF, ANN_FINGERPRINT, ANN_LAYERS, ANN_RELEASE, ANN_VERSION, RegistryCacheError, place, tag};
use crate::digest::{DiffId, Digest};
use crate::image::Image;
use crate::layer::LayerBlob;
use crate::registry::{Bars, Progress, Registry, RegistryError};
use crate::result_cache::{CachedImage, Fingerprint};
use crate::store::BlobStore;
use crate::supply::facts::Facts;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;

/// What one lookup reads from, for errors.
struct At<'a, R> {
    reg: &'a R,
    repo: &'a str,
    tag: String,
    store: &'a BlobStore,
}

impl<R: Registry> At<'_, R> {
    fn malformed(&self, reason: impl Into<String>) -> RegistryCacheError {
        RegistryCacheError::Malformed {
            repository: place(self.reg, self.repo),
            tag: self.tag.clone(),
            reason: reason.into(),
        }
    }

    fn registry(&self, e: RegistryError) -> RegistryCacheError {
        RegistryCacheError::Registry { repository: place(self.reg, self.repo), source: Box::new(e) }
    }

    fn local(&self, what: String, detail: String) -> RegistryCacheError {
        RegistryCacheError::Local { repository: place(self.reg, self.repo), what, detail }
    }

    /// A blob into the store (when it is not there), verified; its bytes.
    async fn small_blob(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>, RegistryCacheError> {
        let size = size.ok_or_else(|| self.malformed(format!("the descriptor of {digest} has no size")))?;
        if !self.store.contains(digest) {
            self.reg
                .get_blob(self.repo, digest, size, self.store, &Progress::hidden())
                .await
                .map_err(|e| self.registry(e))?;
        }
        let bytes =
            std::fs::read(self.store.blob_path(digest)).map_err(|e| self.local(digest.to_string(), e.to_string()))?;
        if Digest::of(&bytes) != *digest {
            return Err(self.local(digest.to_string(), "its bytes do not match the digest".into()));
        }
        Ok(bytes)
    }

    /// A manifest by digest, checked, kept in the store.
    async fn manifest(&self, digest: &Digest) -> Result<Value, RegistryCacheError> {
        let m = self.reg.get_manifest(self.repo, digest.as_str()).await.map_err(|e| self.registry(e))?;
        if Digest::of(&m.bytes) != *digest {
            return Err(self.malformed(format!("manifest {digest} came back with other bytes")));
        }
        self.store.put(&m.bytes).map_err(|e| self.local(digest.to_string(), e.to_string()))?;
        serde_json::from_slice(&m.bytes).map_err(|e| self.malformed(format!("manifest {digest} is not JSON ({e})")))
    }
}

/// The images recorded in `repo` for `fp`, their manifests, configs and facts in `store`; None
/// when the tag is not there (a miss). Layers are not downloaded.
pub async fn lookup<R: Registry>(
    reg: &R,
    repo: &str,
    fp: &Fingerprint,
    store: &BlobStore,
) -> Result<Option<Vec<CachedImage>>, RegistryCacheError> {
    let at = At { reg, repo, tag: tag(fp), store };
    let index = match reg.get_manifest(repo, &at.tag).await {
        Ok(m) => m,
        Err(RegistryError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(at.registry(e)),
    };
    let doc: Value = serde_json::from_slice(&index.bytes).map_err(|e| at.malformed(format!("not JSON ({e})")))?;
    if doc["annotations"][ANN_FINGERPRINT].as_str() != Some(fp.hex()) {
        return Err(at.malformed(format!("its {ANN_FINGERPRINT} annotation is not this fingerprint")));
    }
    let entries = doc["manifests"].as_array().cloned().unwrap_or_default();
    let (facts_entries, image_entries): (Vec<&Value>, Vec<&Value>) =
        entries.iter().partition(|e| !e["annotations"][ANN_FACTS_OF].is_null());
    if image_entries.is_empty() {
        return Err(at.malformed("the index lists no image"));
    }
    // Every image and facts document at once: a manifest, then its config or layer, each (two
    // round trips rather than four on a hit of one image; the no-change build of a fresh runner
    // is mostly these).
    let images = futures_util::future::try_join_all(image_entries.into_iter().map(|e| image(&at, e)));
    let facts = futures_util::future::try_join_all(facts_entries.into_iter().map(|e| facts(&at, e)));
    let (images, _) = futures_util::future::try_join(images, facts).await?;
    Ok(Some(images))
}

fn digest_at<R: Registry>(at: &At<'_, R>, v: &Value, what: &str) -> Result<Digest, RegistryCacheError> {
    v["digest"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| at.malformed(format!("{what} has no sha256 digest")))
}

/// One image: manifest and config fetched, layers described from them (names from the entry).
async fn image<R: Registry>(at: &At<'_, R>, entry: &Value) -> Result<CachedImage, RegistryCacheError> {
    let manifest_digest = digest_at(at, entry, "an index entry")?;
    let text = |k: &str| entry["annotations"][k].as_str().map(String::from);
    let (Some(release), Some(version)) = (text(ANN_RELEASE), text(ANN_VERSION)) else {
        return Err(at.malformed(format!("entry {manifest_digest} does not name its release and version")));
    };
    let names: Vec<String> = text(ANN_LAYERS).and_then(|n| serde_json::from_str(&n).ok()).unwrap_or_default();
    let doc = at.manifest(&manifest_digest).await?;
    let config_digest = digest_at(at, &doc["config"], "the config descriptor")?;
    let config = at.small_blob(&config_digest, doc["config"]["size"].as_u64()).await?;
    let cfg: Value = serde_json::from_slice(&config).map_err(|e| at.malformed(format!("config is not JSON ({e})")))?;
    let diff_ids = cfg["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
    let descriptors = doc["layers"].as_array().cloned().unwrap_or_default();
    if diff_ids.len() != descriptors.len() || names.len() != descriptors.len() {
        return Err(at.malformed(format!("image {manifest_digest}: layers, diff_ids and names do not match")));
    }
    let mut layers = Vec::new();
    for ((d, diff_id), name) in descriptors.iter().zip(&diff_ids).zip(names) {
        let diff_id: DiffId =
            diff_id.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| at.malformed("a bad diff_id"))?;
        layers.push(LayerBlob {
            name,
            digest: digest_at(at, d, "a layer descriptor")?,
            diff_id,
            size: d["size"].as_u64().unwrap_or(0),
            media_type: d["mediaType"].as_str().unwrap_or_default().to_string(),
        });
    }
    let manifest = std::fs::read(at.store.blob_path(&manifest_digest))
        .map_err(|e| at.local(manifest_digest.to_string(), e.to_string()))?;
    let field = |k: &str| cfg[k].as_str().map(String::from);
    let image = Image {
        manifest,
        manifest_digest,
        config,
        config_digest,
        layers,
        os: field("os").unwrap_or_else(|| "linux".into()),
        architecture: field("architecture").unwrap_or_default(),
        variant: field("variant"),
    };
    Ok(CachedImage { release, version, image })
}

/// A facts artifact: its document kept in the store for the image it names (the SBOM and
/// provenance of a push are made from it).
async fn facts<R: Registry>(at: &At<'_, R>, entry: &Value) -> Result<(), RegistryCacheError> {
    let of: Digest = entry["annotations"][ANN_FACTS_OF]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| at.malformed("a facts entry names no image digest"))?;
    let doc = at.manifest(&digest_at(at, entry, "a facts entry")?).await?;
    let layer = &doc["layers"][0];
    let bytes = at.small_blob(&digest_at(at, layer, "the facts layer")?, layer["size"].as_u64()).await?;
    let facts: Facts = serde_json::from_slice(&bytes)
        .map_err(|e| at.malformed(format!("the facts of {of} are not readable ({e})")))?;
    facts.save(at.store, &of).map_err(|e| at.local(format!("the facts of {of}"), e.to_string()))
}

/// Downloads the layers of `images` that `store` lacks (verified by digest, a few at once).
pub async fn download_layers<R: Registry>(
    reg: &R,
    repo: &str,
    images: &[CachedImage],
    store: &BlobStore,
) -> Result<usize, RegistryCacheError> {
    let mut missing: Vec<&LayerBlob> = Vec::new();
    for l in images.iter().flat_map(|c| &c.image.layers) {
        if !store.contains(&l.digest) && !missing.iter().any(|m| m.digest == l.digest) {
            missing.push(l);
        }
    }
    let bars = Bars::new();
    // Indexes through the closure keep the future provably `Send` (see registry/push.rs).
    futures_util::stream::iter(0..missing.len())
        .map(|i| {
            let (l, bars) = (missing[i], &bars);
            async move {
                let progress = bars.blob(&format!("layer {}", l.name), l.size);
                reg.get_blob(repo, &l.digest, l.size, store, &progress).await?;
                progress.finish("downloaded");
                Ok::<_, RegistryError>(())
            }
        })
        .buffer_unordered(crate::registry::push::CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .map_err(|e| RegistryCacheError::Registry { repository: place(reg, repo), source: Box::new(e) })?;
    Ok(missing.len())
}
