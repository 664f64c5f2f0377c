use super::*;
use crate::registry::fake::FakeRegistry;
use crate::registry::{MEDIA_OCI_MANIFEST, push::CONCURRENCY};
use serde_json::json;

const AMD64: Platform = Platform { os: "linux", architecture: "amd64", variant: None };

/// A one-layer image in `repo` of `reg`; returns the manifest digest and the layer's digest.
fn add_image(reg: &FakeRegistry, repo: &str, layer: &[u8], arch: &str) -> (Digest, Digest) {
    let layer_digest = reg.add_blob(repo, layer);
    let config = json!({"architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [DiffId::of(b"tar").to_string()]}});
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = reg.add_blob(repo, &config);
    let manifest = json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer_digest.to_string(), "size": layer.len()}]});
    let bytes = serde_json::to_vec(&manifest).unwrap();
    (reg.add_manifest(repo, &format!("only-{arch}"), MEDIA_OCI_MANIFEST, &bytes), layer_digest)
}

#[tokio::test]
async fn resolves_an_index_to_the_platform_and_caches_everything() {
    let reg = FakeRegistry::default();
    let (amd, amd_layer) = add_image(&reg, "base/rt", b"amd64 layer", "amd64");
    let (arm, _) = add_image(&reg, "base/rt", b"arm64 layer", "arm64");
    let index = json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": [
        {"mediaType": MEDIA_OCI_MANIFEST, "digest": arm.to_string(), "size": 1, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": MEDIA_OCI_MANIFEST, "digest": amd.to_string(), "size": 1, "platform": {"os": "linux", "architecture": "amd64"}}]});
    let index_digest = reg.add_manifest("base/rt", "1", MEDIA_OCI_INDEX, &serde_json::to_vec(&index).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let r: Reference = "reg.example.com/base/rt:1".parse().unwrap();
    let img = pull_image(&reg, &r, &AMD64, &store, &Bars::hidden()).await.unwrap();
    assert_eq!(img.manifest_digest, amd);
    assert_eq!(img.layers.len(), 1);
    assert_eq!(img.layers[0].digest, amd_layer);
    assert_eq!(img.layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
    assert_eq!(std::fs::read(store.blob_path(&amd_layer)).unwrap(), b"amd64 layer");
    assert_eq!(reg.count("GET "), 2, "config and layer: {:?}", reg.calls());

    // By digest, everything is in the store: no request at all.
    reg.calls.lock().unwrap().clear();
    let r: Reference = format!("reg.example.com/base/rt@{index_digest}").parse().unwrap();
    let again = pull_image(&reg, &r, &AMD64, &store, &Bars::hidden()).await.unwrap();
    assert_eq!(again.manifest_digest, amd);
    assert!(reg.calls().is_empty(), "{:?}", reg.calls());

    // A platform the index lacks is named, with what there is.
    let s390 = Platform { os: "linux", architecture: "s390x", variant: None };
    let err = pull_image(&reg, &r, &s390, &store, &Bars::hidden()).await.unwrap_err().to_string();
    assert!(err.contains("linux/s390x") && err.contains("linux/arm64/v8") && err.contains("linux/amd64"), "{err}");
    let _ = CONCURRENCY;
}

#[tokio::test]
async fn a_single_manifest_is_used_as_it_is() {
    let reg = FakeRegistry::default();
    let (m, layer) = add_image(&reg, "x", b"layer", "amd64");
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let r: Reference = "reg.example.com/x:only-amd64".parse().unwrap();
    let img = pull_image(&reg, &r, &AMD64, &store, &Bars::hidden()).await.unwrap();
    assert_eq!((img.manifest_digest, img.layers[0].digest.clone(), img.layers[0].size), (m, layer, 5));
    assert_eq!(img.config.architecture().to_string(), "amd64");
}
