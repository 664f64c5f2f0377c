//! The OCI image index of a multi-platform build: one manifest per platform, in the order the
//! platforms were asked for, serialised canonically into the blob store.

use super::{Image, ImageError, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, canonical_json};
use crate::digest::Digest;
use crate::store::BlobStore;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// An index as stored: its bytes and digest, and the images it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltIndex {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub images: Vec<Image>,
}

impl BuiltIndex {
    /// Every blob of every image (each once), then the index itself.
    pub fn blob_digests(&self) -> Vec<&Digest> {
        let mut out: Vec<&Digest> = Vec::new();
        for image in &self.images {
            for d in image.blob_digests() {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        out.push(&self.digest);
        out
    }
}

/// The index entry of one image: its manifest, and its platform.
fn entry(image: &Image) -> Value {
    let mut platform = Map::new();
    platform.insert("architecture".into(), json!(image.architecture));
    platform.insert("os".into(), json!(image.os));
    if let Some(v) = &image.variant {
        platform.insert("variant".into(), json!(v));
    }
    json!({
        "mediaType": MEDIA_TYPE_MANIFEST,
        "digest": image.manifest_digest.to_string(),
        "size": image.manifest.len(),
        "platform": Value::Object(platform),
    })
}

/// Builds the index of `images` (one per platform) with `annotations`, and stores it.
pub fn index(
    images: Vec<Image>,
    annotations: &BTreeMap<String, String>,
    store: &BlobStore,
) -> Result<BuiltIndex, ImageError> {
    let mut platforms: Vec<String> = Vec::new();
    for image in &images {
        let p = image.platform();
        if platforms.contains(&p) {
            return Err(ImageError::Index { reason: format!("two images for the platform {p}") });
        }
        platforms.push(p);
    }
    let mut doc = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": images.iter().map(entry).collect::<Vec<_>>(),
    });
    if !annotations.is_empty() {
        doc["annotations"] = json!(annotations);
    }
    let bytes = canonical_json(&doc).map_err(|source| ImageError::Json { what: "index", source })?;
    let (digest, _) = store.put(&bytes).map_err(|source| ImageError::Store { what: "index", source })?;
    Ok(BuiltIndex { bytes, digest, images })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(arch: &str, variant: Option<&str>, manifest: &[u8]) -> Image {
        Image {
            manifest: manifest.to_vec(),
            manifest_digest: Digest::of(manifest),
            config: b"{}".to_vec(),
            config_digest: Digest::of(b"{}"),
            layers: Vec::new(),
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(String::from),
        }
    }

    #[test]
    fn one_entry_per_platform_canonical_and_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let images = vec![image("amd64", None, b"{\"a\":1}"), image("arm64", Some("v8"), b"{\"b\":2}")];
        let ann = BTreeMap::from([("org.opencontainers.image.version".to_string(), "1".to_string())]);
        let idx = index(images.clone(), &ann, &store).unwrap();
        assert!(store.contains(&idx.digest));
        assert_eq!(Digest::of(&idx.bytes), idx.digest);
        let v: Value = serde_json::from_slice(&idx.bytes).unwrap();
        assert_eq!(v["mediaType"], MEDIA_TYPE_INDEX);
        assert_eq!(v["manifests"][0]["platform"]["architecture"], "amd64");
        assert!(v["manifests"][0]["platform"].get("variant").is_none());
        assert_eq!(v["manifests"][1]["platform"]["variant"], "v8");
        assert_eq!(v["manifests"][1]["digest"], images[1].manifest_digest.to_string());
        assert_eq!(v["manifests"][1]["size"], 7);
        assert_eq!(canonical_json(&v).unwrap(), idx.bytes);
        // Same images, same bytes.
        assert_eq!(index(images.clone(), &ann, &store).unwrap().digest, idx.digest);
        let twice = vec![images[0].clone(), images[0].clone()];
        assert!(index(twice, &ann, &store).unwrap_err().to_string().contains("linux/amd64"));
    }
}
