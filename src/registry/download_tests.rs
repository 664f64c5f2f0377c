//! Downloads against the hermetic HTTP fake: capped at the descriptor's size (announced or
//! streamed), short bodies refused, nothing of a refused blob left in the store.

use super::*;
use crate::registry::http_fake::{Reply, Server};
use crate::registry::{Registry, RegistryOptions, RetryPolicy};

const REPO: &str = "team/app";

/// A registry that answers every blob GET with `reply` (and the ping with 200).
async fn serving(reply: Reply) -> (Server, Client) {
    let reg = Server::start(move |r| if r.path() == "/v2/" { Reply::status(200) } else { reply.clone() }).await;
    let opts = RegistryOptions { retry: RetryPolicy { attempts: 1, ..Default::default() }, ..Default::default() };
    let client = Client::connect(&reg.addr(), &opts, vec![]).await.expect("anonymous");
    (reg, client)
}

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    (dir, store)
}

/// Every file in the store's blob directory (temp files included).
fn stored_files(store: &BlobStore) -> Vec<String> {
    let dir = store.root().join("blobs").join("sha256");
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

#[tokio::test]
async fn a_blob_announced_larger_than_its_descriptor_is_refused_naming_both_sizes() {
    let (reg, client) = serving(Reply::status(200).body(vec![b'x'; 5 << 20])).await;
    let (_dir, store) = store();
    let digest = Digest::of(b"ten bytes!");
    let err = client.get_blob(REPO, &digest, 10, &store, &Progress::hidden()).await.unwrap_err();
    assert!(matches!(err, RegistryError::BlobSize { expected: 10, .. }), "{err:?}");
    let msg = err.to_string();
    let url = format!("http://{}/v2/{REPO}/blobs/{digest}", reg.addr());
    assert!(msg.contains(&url) && msg.contains(&digest.to_string()), "{msg}");
    assert!(msg.contains(&(5u64 << 20).to_string()) && msg.contains("descriptor says 10"), "{msg}");
    assert!(stored_files(&store).is_empty(), "{:?}", stored_files(&store));
}

#[tokio::test]
async fn a_streamed_blob_is_cut_off_at_the_descriptors_size() {
    let (reg, client) = serving(Reply::status(200).body(vec![b'x'; 64 << 10]).chunked()).await;
    let (_dir, store) = store();
    let digest = Digest::of(&[b'x'; 5000]);
    let err = client.get_blob(REPO, &digest, 5000, &store, &Progress::hidden()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("is at least") && msg.contains("descriptor says 5000"), "{msg}");
    assert!(msg.contains(&reg.addr()) && msg.contains(&digest.to_string()), "{msg}");
    assert!(stored_files(&store).is_empty(), "{:?}", stored_files(&store));

    // What reaches the file: never a byte past the size.
    let want = Wanted {
        repo: REPO,
        digest: &digest,
        size: 5000,
        store: &store,
        progress: &Progress::hidden(),
        what: "w".into(),
    };
    let resp = client.http.get(format!("http://{}/v2/{REPO}/blobs/{digest}", reg.addr())).send().await.unwrap();
    let (mut spool, mut have) = (Spool::new(Vec::new()), 0);
    let err = client.receive(resp, &want, &mut spool, &mut have).await.unwrap_err();
    assert!(matches!(err, RegistryError::BlobSize { .. }), "{err:?}");
    let written = spool.finish().await.unwrap();
    assert!(written.len() <= 5000 && have == written.len() as u64, "{} bytes written", written.len());
}

#[tokio::test]
async fn a_short_blob_fails_naming_both_sizes() {
    for reply in [Reply::status(200).body(&b"nine byte"[..]), Reply::status(200).body(&b"nine byte"[..]).chunked()] {
        let (_reg, client) = serving(reply).await;
        let (_dir, store) = store();
        let digest = Digest::of(b"ten bytes!");
        let err = client.get_blob(REPO, &digest, 10, &store, &Progress::hidden()).await.unwrap_err();
        assert!(err.to_string().contains("is 9 bytes, but its descriptor says 10"), "{err}");
        assert!(stored_files(&store).is_empty());
    }
}

#[tokio::test]
async fn a_blob_of_several_batches_is_stored_whole() {
    let blob: Vec<u8> = (0..(3 * BATCH + 123)).map(|i| (i % 251) as u8).collect();
    let digest = Digest::of(&blob);
    for reply in [Reply::status(200).body(blob.clone()), Reply::status(200).body(blob.clone()).chunked()] {
        let (_reg, client) = serving(reply).await;
        let (_dir, store) = store();
        let size = client.get_blob(REPO, &digest, blob.len() as u64, &store, &Progress::hidden()).await.unwrap();
        assert_eq!(size, blob.len() as u64);
        assert_eq!(std::fs::read(store.blob_path(&digest)).unwrap(), blob);
        assert_eq!(stored_files(&store), [digest.hex().to_string()]);
    }
}
