//! Pulling a base image: the manifest (an index resolved to the target's platform), the config
//! and the layers into the content-addressed store, each verified by digest and fetched only when
//! the store lacks it. A reference by digest whose manifests are cached needs no network at all.

use super::progress::Bars;
use super::{MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX, Manifest, Reference, Registry, RegistryError};
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
    let repo = &reference.repository;
    let unsupported = |reason: String| RegistryError::Unsupported { reference: reference.to_string(), reason };
    let mut manifest = manifest(reg, repo, &reference.api_reference(), store).await?;
    let mut doc: Value =
        serde_json::from_slice(&manifest.bytes).map_err(|e| unsupported(format!("the manifest is not JSON ({e})")))?;
    if manifest.media_type == MEDIA_OCI_INDEX
        || manifest.media_type == MEDIA_DOCKER_LIST
        || doc.get("manifests").is_some()
    {
        let digest = select_platform(&doc, platform, reference)?;
        manifest = self::manifest(reg, repo, digest.as_str(), store).await?;
        doc = serde_json::from_slice(&manifest.bytes)
            .map_err(|e| unsupported(format!("the platform manifest is not JSON ({e})")))?;
    }
    let digest_at = |v: &Value, what: &str| -> Result<Digest, RegistryError> {
        v.get("digest")
            .and_then(Value::as_str)
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| unsupported(format!("{what} has no sha256 digest")))
    };
    let config_digest = digest_at(&doc["config"], "the config descriptor")?;
    if !store.contains(&config_digest) {
        let size = doc["config"].get("size").and_then(Value::as_u64);
        reg.get_blob(repo, &config_digest, size, store, &super::Progress::hidden()).await?;
    }
    let path = store.blob_path(&config_digest);
    let bytes = std::fs::read(&path).map_err(|source| RegistryError::Io { path, source })?;
    let config: ImageConfiguration =
        serde_json::from_slice(&bytes).map_err(|e| unsupported(format!("the image config is not valid ({e})")))?;
    let descriptors = doc["layers"].as_array().cloned().unwrap_or_default();
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != descriptors.len() {
        return Err(unsupported(format!(
            "the manifest has {} layers but the config lists {} diff_ids",
            descriptors.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (d, diff_id) in descriptors.iter().zip(diff_ids) {
        let digest = digest_at(d, "a layer descriptor")?;
        let found = d.get("mediaType").and_then(Value::as_str).unwrap_or_default();
        let media_type = crate::layer::oci_layer_media_type(found)
            .ok_or_else(|| unsupported(format!("layer media type {found:?} is not supported")))?;
        let diff_id: DiffId =
            diff_id.parse().map_err(|_| unsupported(format!("diff_id {diff_id:?} is not a sha256 digest")))?;
        let size = d.get("size").and_then(Value::as_u64).unwrap_or(0);
        layers.push(LayerBlob { name: "base".into(), digest, diff_id, size, media_type: media_type.into() });
    }
    let missing: Vec<&LayerBlob> = layers.iter().filter(|l| !store.contains(&l.digest)).collect();
    // Indexes through the closure keep the future provably `Send` (see push.rs).
    futures_util::stream::iter(0..missing.len())
        .map(|i| {
            let l = missing[i];
            async move {
                let progress = bars.blob(&format!("base {}", &l.digest.hex()[..12]), l.size);
                reg.get_blob(repo, &l.digest, Some(l.size).filter(|s| *s > 0), store, &progress).await?;
                progress.finish("pulled");
                Ok::<_, RegistryError>(())
            }
        })
        .buffer_unordered(super::push::CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    // Sizes as stored (the manifest's are only claims).
    for l in &mut layers {
        let path = store.blob_path(&l.digest);
        l.size = std::fs::metadata(&path).map_err(|source| RegistryError::Io { path, source })?.len();
    }
    Ok(PulledImage { manifest_digest: manifest.digest, config, layers })
}

/// A manifest by tag or digest; by digest, from the store when it is there.
async fn manifest<R: Registry>(
    reg: &R,
    repo: &str,
    reference: &str,
    store: &BlobStore,
) -> Result<Manifest, RegistryError> {
    let store_err = |source| RegistryError::Store { registry: reg.name().to_string(), source };
    if let Ok(d) = reference.parse::<Digest>()
        && store.contains(&d)
    {
        let path = store.blob_path(&d);
        let bytes = std::fs::read(&path).map_err(|source| RegistryError::Io { path, source })?;
        if Digest::of(&bytes) == d {
            let media_type = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("mediaType").and_then(Value::as_str).map(String::from))
                .unwrap_or_default();
            tracing::debug!("manifest {d} from the cache");
            return Ok(Manifest { media_type, bytes, digest: d });
        }
    }
    let m = reg.get_manifest(repo, reference).await?;
    store.put(&m.bytes).map_err(store_err)?;
    Ok(m)
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
