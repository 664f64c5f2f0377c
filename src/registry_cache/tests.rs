//! The registry cache against the hermetic HTTP fake, serving an in-memory registry: publishing
//! puts every blob before any manifest and the tag last; a tag that is not there is a miss; a hit
//! gives back the very image that was published (same manifest digest, same layers).

use super::*;
use crate::image::{ConfigSettings, assemble};
use crate::layer::{EntryKind, LayerSpec, TarOptions, write_layers};
use crate::registry::http_fake::{Reply, Request, Server};
use crate::registry::{Client, RegistryOptions, RetryPolicy};
use crate::result_cache::KeyBuilder;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Blobs and manifests by path (`/v2/REPO/blobs/D`, `/v2/REPO/manifests/REF`).
type Contents = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// A registry in memory: monolithic uploads, manifests by tag or digest, HEAD and GET.
fn registry(req: &Request, contents: &Contents) -> Reply {
    let path = req.path().to_string();
    let mut c = contents.lock().unwrap();
    match req.method.as_str() {
        "GET" if path == "/v2/" => Reply::status(200),
        "POST" => Reply::status(202).header("Location", format!("{path}u1")),
        "PUT" if path.contains("/blobs/uploads/") => {
            let digest = req.query("digest").unwrap_or_default();
            let repo = path.split("/blobs/").next().unwrap_or_default().to_string();
            c.insert(format!("{repo}/blobs/{digest}"), req.body.clone());
            Reply::status(201).header("Docker-Content-Digest", digest)
        }
        "PUT" => {
            let digest = Digest::of(&req.body).to_string();
            let repo = path.split("/manifests/").next().unwrap_or_default().to_string();
            c.insert(path.clone(), req.body.clone());
            c.insert(format!("{repo}/manifests/{digest}"), req.body.clone());
            Reply::status(201).header("Docker-Content-Digest", digest)
        }
        "HEAD" | "GET" => match c.get(&path) {
            Some(body) => {
                Reply::status(200).header("Docker-Content-Digest", Digest::of(body).to_string()).body(body.clone())
            }
            None => Reply::status(404).body(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#),
        },
        _ => Reply::status(404),
    }
}

pub(super) async fn server() -> (Server, Client) {
    let contents: Contents = Arc::default();
    let server = Server::start(move |r| registry(r, &contents)).await;
    let options = RegistryOptions { retry: RetryPolicy { attempts: 1, ..Default::default() }, ..Default::default() };
    let client = Client::connect(&server.addr(), &options, vec![]).await.expect("connect");
    (server, client)
}

fn image(store: &BlobStore, text: &str) -> CachedImage {
    let mut app = LayerSpec::new("app");
    app.add_file("app", EntryKind::Dir, 0o755, 0, 0);
    app.add_file("app/hello.txt", EntryKind::Bytes(text.as_bytes().to_vec()), 0o644, 0, 0);
    let mut erts = LayerSpec::new("erts");
    erts.add_file("erts", EntryKind::Dir, 0o755, 0, 0);
    let layers = write_layers(&[erts, app], &TarOptions { mtime: 0 }, store).unwrap();
    let settings = ConfigSettings::for_tests("amd64");
    let image = assemble(None, layers, &settings, &BTreeMap::new(), store).unwrap();
    CachedImage { release: "hello".into(), version: "0.1.0".into(), image }
}

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    (dir, store)
}

fn fingerprint(text: &str) -> Fingerprint {
    KeyBuilder::new().part("test", text).finish()
}

#[tokio::test]
async fn publishing_puts_every_blob_before_any_manifest_and_the_tag_last() {
    let (_d, a) = store();
    let built = image(&a, "hi");
    let (server, client) = server().await;
    let fp = fingerprint("one");
    publish(&client, "cache/hello", &fp, std::slice::from_ref(&built), &a, None).await.expect("publish");
    let puts: Vec<Request> = server.requests().into_iter().filter(|r| r.method == "PUT").collect();
    let first_manifest = puts.iter().position(|r| r.path().contains("/manifests/")).expect("a manifest");
    assert!(puts[..first_manifest].iter().all(|r| r.path().contains("/blobs/")), "blobs first");
    assert_eq!(
        puts[first_manifest..].iter().filter(|r| r.path().contains("/blobs/")).count(),
        0,
        "no blob after a manifest"
    );
    let last = puts.last().unwrap();
    assert_eq!(last.path(), format!("/v2/cache/hello/manifests/{}", tag(&fp)), "the tag last");
    assert_eq!(puts.iter().filter(|r| r.path().ends_with(&tag(&fp))).count(), 1);
    assert!(tag(&fp).len() <= 128 && crate::registry::is_bare_tag(&tag(&fp)));
    // The index names the image, its release and version, and nothing else.
    let index: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(index["mediaType"], MEDIA_OCI_INDEX);
    assert_eq!(index["manifests"][0]["digest"], built.image.manifest_digest.as_str());
    assert_eq!(index["manifests"][0]["annotations"][ANN_RELEASE], "hello");
    assert_eq!(index["manifests"][0]["platform"]["architecture"], "amd64");
}

#[tokio::test]
async fn a_fingerprint_not_in_the_repository_is_a_miss() {
    let (_d, b) = store();
    let (_server, client) = server().await;
    let found = lookup(&client, "cache/hello", &fingerprint("never built"), &b).await.expect("a miss is no error");
    assert!(found.is_none());
}

#[tokio::test]
async fn a_hit_gives_back_the_same_image_and_its_layers_on_demand() {
    let (_d, a) = store();
    let (_e, b) = store();
    let built = image(&a, "reused");
    let (server, client) = server().await;
    let fp = fingerprint("two");
    publish(&client, "cache/hello", &fp, std::slice::from_ref(&built), &a, None).await.expect("publish");
    let before = server.requests().len();
    let hit = lookup(&client, "cache/hello", &fp, &b).await.unwrap().expect("a hit");
    assert_eq!(hit, vec![built.clone()], "the same image: manifest, config and layers");
    // Manifest and config only: no layer was downloaded by the lookup.
    let layer_gets = server.requests()[before..]
        .iter()
        .filter(|r| r.method == "GET" && built.image.layers.iter().any(|l| r.path().ends_with(l.digest.as_str())))
        .count();
    assert_eq!(layer_gets, 0);
    assert!(built.image.layers.iter().all(|l| !b.contains(&l.digest)));
    assert_eq!(download_layers(&client, "cache/hello", &hit, &b).await.unwrap(), built.image.layers.len());
    assert!(built.image.layers.iter().all(|l| b.contains(&l.digest)));
    // Another fingerprint's tag is not this one's result.
    assert!(lookup(&client, "cache/hello", &fingerprint("three"), &b).await.unwrap().is_none());
}
