//! An engine base image in the cache repository (issue 21, item 3): a runner with an empty blob
//! store read the base (`docker-daemon:`) out of its engine, `docker save` of 113 MB and its
//! compression, two to five seconds of a one-line-change build. The image the last build pushed
//! has the compressed base layers already; a record tagged `base-<engine image id>` names them:
//! an ordinary OCI image manifest whose config is the base's config (its digest *is* the engine's
//! image id) and whose layers are the compressed base layers, one per `rootfs.diff_ids` entry.
//! A runner whose engine has that image id fetches the config and layers into its blob store
//! (verified by digest) instead of exporting. The pairing of each compressed layer with its
//! diff_id is the publisher's word, trusted as the cache's results are (one writer: the team's
//! runners); the config, and so the diff_ids, must be the engine's own (same digest).

use super::{RegistryCacheError, place};
use crate::digest::{DiffId, Digest};
use crate::image::MEDIA_TYPE_CONFIG;
use crate::layer::MEDIA_TYPE_LAYER_GZIP;
use crate::registry::{
    Bars, BlobRef, MEDIA_OCI_MANIFEST, Progress, PushImage, PushSummary, PushTarget, Registry, RegistryError,
    push::push_image,
};
use crate::store::BlobStore;
use serde_json::{Value, json};
use std::collections::HashSet;

/// What the tag of a base record starts with (`base-` + the 64 hex digits of the image id).
pub const BASE_TAG_PREFIX: &str = "base-";
/// On a base record: the engine image id it stands for (the config's digest).
pub const ANN_ENGINE_IMAGE: &str = "org.release-oci.base.engine-image-id";

/// The tag of the record of engine image `image_id`.
pub fn base_tag(image_id: &Digest) -> String {
    format!("{BASE_TAG_PREFIX}{}", image_id.hex())
}

/// The record's manifest: config `image_id` (`config_size` bytes), then `layers` (digest, size).
pub fn base_manifest(image_id: &Digest, config_size: u64, layers: &[(Digest, u64)]) -> Vec<u8> {
    let layers: Vec<Value> = layers
        .iter()
        .map(|(d, size)| json!({ "mediaType": MEDIA_TYPE_LAYER_GZIP, "digest": d.as_str(), "size": size }))
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": { "mediaType": MEDIA_TYPE_CONFIG, "digest": image_id.as_str(), "size": config_size },
        "layers": layers,
        "annotations": { ANN_ENGINE_IMAGE: image_id.as_str() },
    });
    serde_json::to_vec(&manifest).unwrap_or_default()
}

/// Records the base `image_id` (its layers `diff_ids`) in `repo`, from `store` (which must hold
/// its config and a compressed blob of each layer); mounted from `mount` where it has them. None
/// when the record is there already or the store lacks a part (nothing is pushed).
pub async fn publish_base<R: Registry>(
    reg: &R,
    repo: &str,
    image_id: &Digest,
    diff_ids: &[DiffId],
    store: &BlobStore,
    mount: Option<(String, HashSet<Digest>)>,
) -> Result<Option<PushSummary>, RegistryCacheError> {
    let fail = |e: RegistryError| RegistryCacheError::Registry { repository: place(reg, repo), source: Box::new(e) };
    let tag = base_tag(image_id);
    match reg.get_manifest(repo, &tag).await {
        Ok(_) => return Ok(None),
        Err(RegistryError::NotFound { .. }) => {}
        Err(e) => return Err(fail(e)),
    }
    let size_of = |d: &Digest| std::fs::metadata(store.blob_path(d)).ok().map(|m| m.len());
    let Some(config_size) = size_of(image_id) else { return Ok(None) };
    let mut layers = Vec::new();
    for diff_id in diff_ids {
        let Some((digest, size)) = store.lookup_diff_id(diff_id).and_then(|d| size_of(&d).map(|s| (d, s))) else {
            return Ok(None);
        };
        layers.push((digest, size));
    }
    let manifest = base_manifest(image_id, config_size, &layers);
    let push = PushImage {
        manifest_digest: Digest::of(&manifest),
        manifest,
        media_type: MEDIA_OCI_MANIFEST.into(),
        config: BlobRef::stored(store, image_id, config_size, "base config"),
        layers: layers.iter().map(|(d, s)| BlobRef::stored(store, d, *s, "layer base")).collect(),
    };
    let (mount_from, mountable) = mount.unzip();
    let target = PushTarget {
        repository: repo.to_string(),
        tags: vec![tag],
        mount_from,
        mountable: mountable.unwrap_or_default(),
    };
    push_image(reg, &push, &target, &Bars::hidden()).await.map(Some).map_err(fail)
}

/// Fetches the record of base `image_id` (layers `diff_ids`) into `store`: its config and
/// layers, each verified by digest, the layers recorded under their diff_ids. The bytes
/// downloaded; None when `repo` has no record of it.
pub async fn fetch_base<R: Registry>(
    reg: &R,
    repo: &str,
    image_id: &Digest,
    diff_ids: &[DiffId],
    store: &BlobStore,
) -> Result<Option<u64>, RegistryCacheError> {
    let tag = base_tag(image_id);
    let fail = |e: RegistryError| RegistryCacheError::Registry { repository: place(reg, repo), source: Box::new(e) };
    let malformed =
        |reason: String| RegistryCacheError::Malformed { repository: place(reg, repo), tag: tag.clone(), reason };
    let m = match reg.get_manifest(repo, &tag).await {
        Ok(m) => m,
        Err(RegistryError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(fail(e)),
    };
    let doc: Value = serde_json::from_slice(&m.bytes).map_err(|e| malformed(format!("not JSON ({e})")))?;
    let descriptor = |v: &Value, what: &str| -> Result<(Digest, u64), RegistryCacheError> {
        let digest = v["digest"].as_str().and_then(|d| d.parse().ok());
        match (digest, v["size"].as_u64()) {
            (Some(d), Some(s)) => Ok((d, s)),
            _ => Err(malformed(format!("{what} has no digest or size"))),
        }
    };
    let (config, config_size) = descriptor(&doc["config"], "the config")?;
    if config != *image_id {
        return Err(malformed(format!("its config is {config}, not the engine's image {image_id}")));
    }
    let layers = doc["layers"].as_array().cloned().unwrap_or_default();
    if layers.len() != diff_ids.len() {
        return Err(malformed(format!("{} layers for an image of {}", layers.len(), diff_ids.len())));
    }
    let mut wanted = vec![(config, config_size)];
    for l in &layers {
        if l["mediaType"].as_str() != Some(MEDIA_TYPE_LAYER_GZIP) {
            return Err(malformed(format!("a layer of media type {} (gzip expected)", l["mediaType"])));
        }
        wanted.push(descriptor(l, "a layer")?);
    }
    let mut bytes = 0;
    for (digest, size) in &wanted {
        if !store.contains(digest) {
            bytes += reg.get_blob(repo, digest, *size, store, &Progress::hidden()).await.map_err(fail)?;
        }
    }
    for (diff_id, (digest, _)) in diff_ids.iter().zip(&wanted[1..]) {
        store.record_diff_id(diff_id, digest).map_err(|e| RegistryCacheError::Local {
            repository: place(reg, repo),
            what: format!("the layer {digest}"),
            detail: e.to_string(),
        })?;
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests;
