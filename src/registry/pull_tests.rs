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

#[tokio::test]
async fn a_descriptor_without_a_size_is_refused_before_any_download() {
    // A download is read up to the descriptor's size: without one there is no limit to keep.
    let reg = FakeRegistry::default();
    let layer = reg.add_blob("x", b"layer");
    let config = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [DiffId::of(b"tar").to_string()]}});
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = reg.add_blob("x", &config);
    let manifest = json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.to_string()}]});
    reg.add_manifest("x", "1", MEDIA_OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let r: Reference = "reg.example.com/x:1".parse().unwrap();
    let err = pull_image(&reg, &r, &AMD64, &store, &Bars::hidden()).await.unwrap_err().to_string();
    assert!(err.contains("a layer descriptor has no size") && err.contains("reg.example.com/x:1"), "{err}");
    assert!(!store.contains(&layer), "nothing downloaded");
}

/// Where the debug log of the runtime's thread goes.
#[derive(Clone, Default)]
struct Log(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checking a stored blob may hash it (here: a layer stored without a record, as an older
/// release-oci left it), and the pull runs such checks off the async runtime: the runtime's own
/// thread (the only one of a current-thread runtime) logs no hashing, though the blob was hashed.
#[test]
fn stored_blobs_are_checked_off_the_async_runtime() {
    let reg = FakeRegistry::default();
    let (_, layer) = add_image(&reg, "x", b"layer", "amd64");
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    std::fs::write(store.blob_path(&layer), b"layer").unwrap();
    let log = Log::default();
    let writer = log.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::DEBUG).with_writer(move || writer.clone()).finish();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let r: Reference = "reg.example.com/x:only-amd64".parse().unwrap();
    let bars = Bars::hidden();
    let pull = pull_image(&reg, &r, &AMD64, &store, &bars);
    tracing::subscriber::with_default(subscriber, || rt.block_on(pull)).unwrap();
    let log = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    assert!(!log.contains("stored blob hashed again"), "hashed on the runtime's thread:\n{log}");
    assert!(dir.path().join("verified").join(layer.hex()).is_file(), "the stored layer was checked by hashing");
    assert_eq!(reg.count("GET "), 1, "the config only: {:?}", reg.calls());
}
