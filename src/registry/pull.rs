//! Pulling a base image: the manifest (an index resolved to the target's platform), the config
//! and the layers into the content-addressed store, each verified by digest and fetched only when
//! the store lacks it. A reference by digest whose manifests are cached needs no network at all.

use super::progress::Bars;
use super::{MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX, Manifest, Reference, Registry, RegistryError, blocking};
use crate::digest::{DiffId, Digest};
use crate::layer::LayerBlob;
use crate::store::BlobStore;
use crate::triple::Platform;
use futures_util::{StreamExt, TryStreamExt};
use oci_spec::image::ImageConfiguration;
use serde_json::Value;

/// A base image whose config and layers are in the store.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The platform manifest's digest (what `org.opencontainers.image.base.digest` records).
    pub manifest_digest: Digest,
    pub config: ImageConfiguration,
    /// In order, one per `config.rootfs.diff_ids`.
    pub layers: Vec<LayerBlob>,
}

/// Fetches `reference` for `platform` into `store` (what is there already is reused).
pub async fn pull_image<R: Registry>(
    reg: &R,
    reference: &Reference,
    platform: &Platform,
    store: &BlobStore,
    bars: &Bars,
) -> Result<PulledImage, RegistryError> {
    let (manifest, doc) = platform_manifest(reg, reference, platform, store).await?;
    let config = config_of(reg, reference, &doc, store).await?;
    let mut layers = layer_blobs(&doc, &config, reference)?;
    fetch_missing(reg, &reference.repository, &layers, store, bars).await?;
    stored_sizes(&mut layers, store).await?;
    Ok(PulledImage { manifest_digest: manifest.digest, config, layers })
}

fn unsupported(reference: &Reference, reason: String) -> RegistryError {
    RegistryError::Unsupported { reference: reference.to_string(), reason }
}

/// The manifest of `reference` for `platform` (an index resolved to its entry), and its JSON.
async fn platform_manifest<R: Registry>(
    reg: &R,
    reference: &Reference,
    platform: &Platform,
    store: &BlobStore,
) -> Result<(Manifest, Value), RegistryError> {
    let repo = &reference.repository;
    let manifest = manifest(reg, repo, &reference.api_reference(), store).await?;
    let doc: Value = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| unsupported(reference, format!("the manifest is not JSON ({e})")))?;
    let is_index = manifest.media_type == MEDIA_OCI_INDEX
        || manifest.media_type == MEDIA_DOCKER_LIST
        || doc.get("manifests").is_some();
    if !is_index {
        return Ok((manifest, doc));
    }
    let digest = select_platform(&doc, platform, reference)?;
    let manifest = self::manifest(reg, repo, digest.as_str(), store).await?;
    let doc = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| unsupported(reference, format!("the platform manifest is not JSON ({e})")))?;
    Ok((manifest, doc))
}

/// A descriptor's digest and size; both are required, the size being the most a download reads.
fn descriptor(v: &Value, what: &str, reference: &Reference) -> Result<(Digest, u64), RegistryError> {
    let digest = v
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| unsupported(reference, format!("{what} has no sha256 digest")))?;
    let size =
        v.get("size").and_then(Value::as_u64).ok_or_else(|| unsupported(reference, format!("{what} has no size")))?;
    Ok((digest, size))
}

/// The image config the manifest names, fetched when the store lacks it.
async fn config_of<R: Registry>(
    reg: &R,
    reference: &Reference,
    doc: &Value,
    store: &BlobStore,
) -> Result<ImageConfiguration, RegistryError> {
    let (digest, size) = descriptor(&doc["config"], "the config descriptor", reference)?;
    let (store2, digest2) = (store.clone(), digest.clone());
    if !blocking(reg.name(), "checking the blob store", move || store2.contains(&digest2)).await? {
        reg.get_blob(&reference.repository, &digest, size, store, &super::Progress::hidden()).await?;
    }
    let path = store.blob_path(&digest);
    let bytes = tokio::fs::read(&path).await.map_err(|source| RegistryError::Io { path, source })?;
    serde_json::from_slice(&bytes).map_err(|e| unsupported(reference, format!("the image config is not valid ({e})")))
}

/// The manifest's layers, each with its diff_id from the config.
fn layer_blobs(
    doc: &Value,
    config: &ImageConfiguration,
    reference: &Reference,
) -> Result<Vec<LayerBlob>, RegistryError> {
    let descriptors = doc["layers"].as_array().cloned().unwrap_or_default();
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != descriptors.len() {
        return Err(unsupported(
            reference,
            format!("the manifest has {} layers but the config lists {} diff_ids", descriptors.len(), diff_ids.len()),
        ));
    }
    descriptors.iter().zip(diff_ids).map(|(d, diff_id)| layer_blob(d, diff_id, reference)).collect()
}

fn layer_blob(d: &Value, diff_id: &str, reference: &Reference) -> Result<LayerBlob, RegistryError> {
    let (digest, size) = descriptor(d, "a layer descriptor", reference)?;
    let found = d.get("mediaType").and_then(Value::as_str).unwrap_or_default();
    let media_type = crate::layer::oci_layer_media_type(found)
        .ok_or_else(|| unsupported(reference, format!("layer media type {found:?} is not supported")))?;
    let diff_id: DiffId =
        diff_id.parse().map_err(|_| unsupported(reference, format!("diff_id {diff_id:?} is not a sha256 digest")))?;
    Ok(LayerBlob { name: "base".into(), digest, diff_id, size, media_type: media_type.into() })
}

/// Downloads the layers the store lacks, a few at a time.
async fn fetch_missing<R: Registry>(
    reg: &R,
    repo: &str,
    layers: &[LayerBlob],
    store: &BlobStore,
    bars: &Bars,
) -> Result<(), RegistryError> {
    let (store2, digests): (_, Vec<Digest>) = (store.clone(), layers.iter().map(|l| l.digest.clone()).collect());
    let stored: Vec<bool> =
        blocking(reg.name(), "checking the blob store", move || digests.iter().map(|d| store2.contains(d)).collect())
            .await?;
    let missing: Vec<&LayerBlob> = layers.iter().zip(stored).filter(|(_, stored)| !stored).map(|(l, _)| l).collect();
    // Indexes through the closure keep the future provably `Send` (see push.rs).
    futures_util::stream::iter(0..missing.len())
        .map(|i| {
            let l = missing[i];
            async move {
                let progress = bars.blob(&format!("base {}", &l.digest.hex()[..12]), l.size);
                reg.get_blob(repo, &l.digest, l.size, store, &progress).await?;
                progress.finish("pulled");
                Ok::<_, RegistryError>(())
            }
        })
        .buffer_unordered(super::push::CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Sizes as stored (the manifest's are only claims).
async fn stored_sizes(layers: &mut [LayerBlob], store: &BlobStore) -> Result<(), RegistryError> {
    for l in layers {
        let path = store.blob_path(&l.digest);
        l.size = tokio::fs::metadata(&path).await.map_err(|source| RegistryError::Io { path, source })?.len();
    }
    Ok(())
}

/// A manifest by tag or digest; by digest, from the store when it is there.
async fn manifest<R: Registry>(
    reg: &R,
    repo: &str,
    reference: &str,
    store: &BlobStore,
) -> Result<Manifest, RegistryError> {
    if let Ok(d) = reference.parse::<Digest>()
        && let Some(m) = cached_manifest(reg.name(), d, store).await?
    {
        return Ok(m);
    }
    let m = reg.get_manifest(repo, reference).await?;
    let (store2, bytes) = (store.clone(), m.bytes.clone());
    blocking(reg.name(), "storing a manifest", move || store2.put(&bytes))
        .await?
        .map_err(|source| RegistryError::Store { registry: reg.name().to_string(), source })?;
    Ok(m)
}

/// The manifest `d` from the store, when the store has it and it hashes to `d`.
async fn cached_manifest(registry: &str, d: Digest, store: &BlobStore) -> Result<Option<Manifest>, RegistryError> {
    let store = store.clone();
    blocking(registry, "reading a cached manifest", move || {
        if !store.contains(&d) {
            return Ok(None);
        }
        let path = store.blob_path(&d);
        let bytes = std::fs::read(&path).map_err(|source| RegistryError::Io { path, source })?;
        if Digest::of(&bytes) != d {
            return Ok(None);
        }
        let media_type = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("mediaType").and_then(Value::as_str).map(String::from))
            .unwrap_or_default();
        tracing::debug!("manifest {d} from the cache");
        Ok(Some(Manifest { media_type, bytes, digest: d }))
    })
    .await?
}

/// The digest of the index entry for `platform` (os, architecture, and variant when both say).
fn select_platform(index: &Value, platform: &Platform, reference: &Reference) -> Result<Digest, RegistryError> {
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let text = |v: &Value, k: &str| v["platform"].get(k).and_then(Value::as_str).map(String::from);
    let mut available = Vec::new();
    for e in &entries {
        let (os, arch, variant) = (text(e, "os"), text(e, "architecture"), text(e, "variant"));
        let name = format!(
            "{}/{}{}",
            os.as_deref().unwrap_or("?"),
            arch.as_deref().unwrap_or("?"),
            variant.as_deref().map(|v| format!("/{v}")).unwrap_or_default()
        );
        let variant_ok = match (platform.variant, variant.as_deref()) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        };
        if os.as_deref() == Some(platform.os) && arch.as_deref() == Some(platform.architecture) && variant_ok {
            return e["digest"].as_str().and_then(|d| d.parse().ok()).ok_or_else(|| RegistryError::Unsupported {
                reference: reference.to_string(),
                reason: format!("the index entry for {name} has no sha256 digest"),
            });
        }
        available.push(name);
    }
    Err(RegistryError::Platform {
        reference: reference.to_string(),
        wanted: platform.to_string(),
        available: if available.is_empty() { "nothing".into() } else { available.join(", ") },
    })
}

#[cfg(test)]
#[path = "pull_tests.rs"]
mod tests;
