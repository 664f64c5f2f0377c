//! Base records against the hermetic registry fake: a base published from one blob store is
//! fetched into an empty one (config and layers, each layer under its diff_id); a record that is
//! not the engine's image, or has another number of layers, is refused; a store that lacks a
//! part publishes nothing.

use super::*;
use crate::registry_cache::tests::server;

const REPO: &str = "team/cache";

/// A base in `store`: its config (whose digest is the image id) and one compressed blob per
/// layer, recorded under made-up diff_ids.
fn base_in(store: &BlobStore, layers: usize) -> (Digest, Vec<DiffId>) {
    let mut diff_ids = Vec::new();
    for i in 0..layers {
        let diff_id: DiffId = Digest::of(format!("tar {i}").as_bytes()).as_str().parse().unwrap();
        let (digest, _) = store.put(format!("compressed layer {i}").as_bytes()).unwrap();
        store.record_diff_id(&diff_id, &digest).unwrap();
        diff_ids.push(diff_id);
    }
    let ids: Vec<&str> = diff_ids.iter().map(DiffId::as_str).collect();
    let config = serde_json::to_vec(
        &json!({ "architecture": "amd64", "os": "linux", "rootfs": { "type": "layers", "diff_ids": ids } }),
    )
    .unwrap();
    let (id, _) = store.put(&config).unwrap();
    (id, diff_ids)
}

/// An empty blob store in a temporary directory (kept while the directory lives).
fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_published_base_is_fetched_into_an_empty_store_with_its_diff_ids() {
    let (_server, client) = server().await;
    let ((_a, store_a), (_b, store_b)) = (store(), store());
    let (id, diff_ids) = base_in(&store_a, 2);
    let pushed = publish_base(&client, REPO, &id, &diff_ids, &store_a, None).await.unwrap();
    assert!(pushed.is_some(), "the first publish pushes the record");
    assert!(publish_base(&client, REPO, &id, &diff_ids, &store_a, None).await.unwrap().is_none(), "there already");

    let fetched = fetch_base(&client, REPO, &id, &diff_ids, &store_b).await.unwrap();
    let expected: u64 = diff_ids
        .iter()
        .map(|d| std::fs::metadata(store_a.blob_path(&store_a.lookup_diff_id(d).unwrap())).unwrap().len())
        .sum::<u64>()
        + std::fs::metadata(store_a.blob_path(&id)).unwrap().len();
    assert_eq!(fetched, Some(expected), "the config and both layers downloaded");
    assert!(store_b.contains(&id));
    for d in &diff_ids {
        let digest = store_b.lookup_diff_id(d).expect("the layer is recorded under its diff_id");
        assert_eq!(Some(digest), store_a.lookup_diff_id(d));
        assert!(store_b.contains(&store_b.lookup_diff_id(d).unwrap()));
    }
    // Another image id: no record.
    let other = Digest::of(b"another image");
    assert_eq!(fetch_base(&client, REPO, &other, &diff_ids, &store_b).await.unwrap(), None);
}

#[tokio::test]
async fn a_record_of_another_image_or_layer_count_is_refused() {
    let (_server, client) = server().await;
    let ((_a, store_a), (_b, store_b)) = (store(), store());
    let (id, diff_ids) = base_in(&store_a, 2);
    publish_base(&client, REPO, &id, &diff_ids, &store_a, None).await.unwrap();
    let e = fetch_base(&client, REPO, &id, &diff_ids[..1], &store_b).await.unwrap_err().to_string();
    assert!(e.contains("2 layers for an image of 1") && e.contains(&base_tag(&id)), "{e}");

    // The tag of one image id over a record whose config is another.
    let other = Digest::of(b"another image");
    let manifest = base_manifest(&id, 10, &[]);
    client.put_manifest(REPO, &base_tag(&other), MEDIA_OCI_MANIFEST, &manifest).await.unwrap();
    let e = fetch_base(&client, REPO, &other, &[], &store_b).await.unwrap_err().to_string();
    assert!(e.contains(&format!("not the engine's image {other}")), "{e}");
    assert!(!store_b.contains(&id), "nothing was downloaded");
}

#[tokio::test]
async fn a_store_without_every_part_publishes_nothing() {
    let (_server, client) = server().await;
    let (_dir, store) = store();
    let (id, mut diff_ids) = base_in(&store, 1);
    diff_ids.push("sha256:0000000000000000000000000000000000000000000000000000000000000001".parse().unwrap());
    assert!(publish_base(&client, REPO, &id, &diff_ids, &store, None).await.unwrap().is_none());
    let e = client.get_manifest(REPO, &base_tag(&id)).await.unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e}");
}
