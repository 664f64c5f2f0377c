//! The result cache in a registry (`--cache-repo HOST/REPO`, as ko's `KOCACHE` and BuildKit's
//! registry cache): a build's portable fingerprint → the image(s) it made, so that every machine
//! that builds the same inputs reuses one build. The cache artifact is an ordinary OCI image index
//! tagged `rc-<fingerprint hex>`: one entry per image (its platform, and annotations naming the
//! release, its version and its layers' names), and one small OCI artifact per image holding the
//! build's facts (what the SBOM and provenance are made from). Publishing pushes every blob, then
//! every manifest by digest, then the index under its tag: a reader never finds a tag whose blobs
//! are not all there. Reading verifies every manifest and blob by digest. See docs/build-cache.md.

pub mod base;
pub mod build_dirs;
mod fetch;

pub use fetch::{download_layers, lookup};

use crate::digest::Digest;
use crate::output::push_image_of;
use crate::registry::push::push_index;
use crate::registry::{
    Bars, BlobRef, BlobSource, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, PushImage, PushSummary, PushTarget, Registry,
    RegistryError,
};
use crate::result_cache::{CachedImage, Fingerprint};
use crate::sink::Blobs;
use crate::store::BlobStore;
use crate::supply::facts::{Facts, FactsError};
use serde_json::{Value, json};
use std::collections::HashSet;

/// What the tag of a fingerprint starts with (`rc-` + 64 hex digits: a valid tag, ≤ 128 chars).
pub const TAG_PREFIX: &str = "rc-";
/// On the index: the fingerprint it is the result of.
pub const ANN_FINGERPRINT: &str = "org.release-oci.result-cache.fingerprint";
/// On an image's entry: its release name, version, and layer names (a JSON list).
pub const ANN_RELEASE: &str = "org.release-oci.release";
pub const ANN_VERSION: &str = "org.release-oci.version";
pub const ANN_LAYERS: &str = "org.release-oci.layer-names";
/// On a facts artifact's entry: the digest of the image whose facts it holds.
pub const ANN_FACTS_OF: &str = "org.release-oci.facts-of";
/// The media type of a facts document (the artifact's type and its one layer's).
pub const MEDIA_FACTS: &str = "application/vnd.release-oci.facts.v1+json";
const MEDIA_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const EMPTY: &[u8] = b"{}";

#[derive(Debug, thiserror::Error)]
pub enum RegistryCacheError {
    #[error("the registry cache {repository}")]
    Registry {
        repository: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error(
        "the registry cache {repository}: {tag} is not a release-oci result ({reason}); delete that tag, or use another --cache-repo"
    )]
    Malformed { repository: String, tag: String, reason: String },
    #[error(
        "the registry cache {repository}: cannot read {what} from the blob store ({detail}); run `release-oci cache verify --repair`"
    )]
    Local { repository: String, what: String, detail: String },
}

/// The tag of `fp` in a cache repository.
pub fn tag(fp: &Fingerprint) -> String {
    format!("{TAG_PREFIX}{}", fp.hex())
}

/// `HOST/REPO` for messages.
fn place<R: Registry>(reg: &R, repo: &str) -> String {
    format!("{}/{repo}", reg.name())
}

/// Publishes `images` as the result of `fp` in `repo`: blobs (mounted from `mount`'s repository
/// where it has them), manifests by digest, the index under [`tag`] last. Every blob of the
/// images must be in `store`.
pub async fn publish<R: Registry>(
    reg: &R,
    repo: &str,
    fp: &Fingerprint,
    images: &[CachedImage],
    store: &BlobStore,
    mount: Option<(String, HashSet<Digest>)>,
) -> Result<PushSummary, RegistryCacheError> {
    let local = |what: String, detail: String| RegistryCacheError::Local { repository: place(reg, repo), what, detail };
    let blobs = Blobs::Store(store.clone());
    let (mut pushes, mut entries) = (Vec::new(), Vec::new());
    for c in images {
        let image = &c.image;
        pushes.push(
            push_image_of(image, &blobs)
                .map_err(|e| local(format!("image {}", image.manifest_digest), e.to_string()))?,
        );
        entries.push(image_entry(c));
        match facts_artifact(&image.manifest_digest, store) {
            Ok(Some((push, entry))) => {
                pushes.push(push);
                entries.push(entry);
            }
            Ok(None) => {}
            Err(e) => return Err(local(format!("the build facts of {}", image.manifest_digest), e.to_string())),
        }
    }
    let index = index_bytes(fp, entries);
    let (mount_from, mountable) = mount.unzip();
    let target = PushTarget {
        repository: repo.to_string(),
        tags: vec![tag(fp)],
        mount_from,
        mountable: mountable.unwrap_or_default(),
    };
    push_index(reg, &pushes, &index, MEDIA_OCI_INDEX, &target, &Bars::hidden())
        .await
        .map_err(|e| RegistryCacheError::Registry { repository: place(reg, repo), source: Box::new(e) })
}

/// The index of a result (deterministic: the same images give the same bytes).
pub fn index_bytes(fp: &Fingerprint, entries: Vec<Value>) -> Vec<u8> {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": entries,
        "annotations": { ANN_FINGERPRINT: fp.hex() },
    });
    serde_json::to_vec(&index).unwrap_or_default()
}

/// An image's entry: its descriptor, platform, release, version and layer names. Nothing else
/// (no path, no build input) goes into the cache's annotations.
fn image_entry(c: &CachedImage) -> Value {
    let i = &c.image;
    let names: Vec<&str> = i.layers.iter().map(|l| l.name.as_str()).collect();
    let mut platform = json!({ "os": i.os, "architecture": i.architecture });
    if let Some(v) = &i.variant {
        platform["variant"] = json!(v);
    }
    json!({
        "mediaType": manifest_media_type(&i.manifest),
        "digest": i.manifest_digest.as_str(),
        "size": i.manifest.len(),
        "platform": platform,
        "annotations": {
            ANN_RELEASE: c.release,
            ANN_VERSION: c.version,
            ANN_LAYERS: serde_json::to_string(&names).unwrap_or_default(),
        },
    })
}

fn manifest_media_type(manifest: &[u8]) -> String {
    let v: Value = serde_json::from_slice(manifest).unwrap_or_default();
    v["mediaType"].as_str().unwrap_or(MEDIA_OCI_MANIFEST).to_string()
}

/// The facts the build recorded for `image`, as an OCI artifact (the empty config, the facts as
/// its layer) and its index entry; None when the store has none.
fn facts_artifact(image: &Digest, store: &BlobStore) -> Result<Option<(PushImage, Value)>, FactsError> {
    let facts = match Facts::load(store, image) {
        Ok(f) => f,
        Err(FactsError::Missing { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let bytes = serde_json::to_vec(&facts)
        .map_err(|e| FactsError::Write { path: store.root().to_path_buf(), source: std::io::Error::other(e) })?;
    let blob = |label: &str, bytes: Vec<u8>| BlobRef {
        digest: Digest::of(&bytes),
        size: bytes.len() as u64,
        label: label.to_string(),
        source: BlobSource::Bytes(bytes.into()),
    };
    let (config, layer) = (blob("empty config", EMPTY.to_vec()), blob("build facts", bytes));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "artifactType": MEDIA_FACTS,
        "config": { "mediaType": MEDIA_EMPTY, "digest": config.digest.as_str(), "size": config.size },
        "layers": [{ "mediaType": MEDIA_FACTS, "digest": layer.digest.as_str(), "size": layer.size }],
    }))
    .unwrap_or_default();
    let manifest_digest = Digest::of(&manifest);
    let entry = json!({
        "mediaType": MEDIA_OCI_MANIFEST,
        "artifactType": MEDIA_FACTS,
        "digest": manifest_digest.as_str(),
        "size": manifest.len(),
        "annotations": { ANN_FACTS_OF: image.as_str() },
    });
    let push =
        PushImage { manifest, manifest_digest, media_type: MEDIA_OCI_MANIFEST.into(), config, layers: vec![layer] };
    Ok(Some((push, entry)))
}

#[cfg(test)]
mod tests;
