//! The sinks against files and the hermetic HTTP fake registry: what one writes, the layout reader
//! reads back as the same image; an archive refuses an index before anything is built; a layout's
//! blobs are pushed in place.

use super::*;
use crate::cli::PushSettings;
use crate::image::{ConfigSettings, Image, assemble, index};
use crate::layer::{EntryKind, LayerSpec, TarOptions, write_layers};
use crate::registry::http_fake::{Reply, Request, Server};
use crate::registry::{BlobSource, RegistryOptions, RetryPolicy};
use crate::sink::{BlobLocation, Target, image_at};
use crate::store::BlobStore;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

fn image(store: &BlobStore, text: &str, arch: &'static str) -> Image {
    let mut app = LayerSpec::new("app");
    app.add_file("app", EntryKind::Dir, 0o755, 0, 0);
    app.add_file("app/hello.txt", EntryKind::Bytes(text.as_bytes().to_vec()), 0o644, 0, 0);
    let layers = write_layers(&[app], &TarOptions { mtime: 0 }, store).unwrap();
    let settings = ConfigSettings::for_tests(arch);
    assemble(None, layers, &settings, &BTreeMap::new(), store).unwrap()
}

fn setup() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    (dir, store)
}

fn file_sinks(dir: &Path) -> Outputs {
    let mut out = Outputs::new();
    out.push(LayoutSink { dir: dir.join("layout"), tag: Some("1.0".into()), referrers: None });
    out.push(ArchiveSink { path: dir.join("image.tar"), tags: vec!["hello:1.0".into()] });
    out
}

#[tokio::test]
async fn an_image_written_to_each_file_sink_reads_back_as_the_same_image() {
    let (dir, store) = setup();
    let built = image(&store, "hi", "amd64");
    let out = file_sinks(dir.path());
    assert_eq!(
        out.names(),
        [
            format!("oci:{}/layout:1.0", dir.path().display()),
            format!("docker-archive:{}/image.tar", dir.path().display())
        ]
    );
    let pushed = out.write(&Artifact::Image(built.clone()), &Blobs::Store(store)).await.unwrap();
    assert_eq!(pushed, None);
    for target in [
        Target::OciLayout { dir: dir.path().join("layout"), tag: Some("1.0".into()) },
        Target::Archive { path: dir.path().join("image.tar") },
    ] {
        let (read, files) = image_at(&target).unwrap();
        assert_eq!(read.manifest_digest, built.manifest_digest, "{target}");
        assert_eq!((&read.manifest, &read.config), (&built.manifest, &built.config), "{target}");
        let digests =
            |i: &Image| i.layers.iter().map(|l| (l.digest.clone(), l.diff_id.clone(), l.size)).collect::<Vec<_>>();
        assert_eq!(digests(&read), digests(&built), "{target}");
        assert_eq!(read.platform(), "linux/amd64");
        // Every blob is where the reader says, with the bytes its digest names.
        for d in read.blob_digests() {
            let bytes = match files.locate(d).unwrap() {
                BlobLocation::File(p) => std::fs::read(p).unwrap(),
                BlobLocation::Slice { path, offset, size } => {
                    let all = std::fs::read(path).unwrap();
                    all[offset as usize..(offset + size) as usize].to_vec()
                }
            };
            assert_eq!(crate::digest::Digest::of(&bytes), *d, "{target}: {d}");
        }
    }
}

#[tokio::test]
async fn an_archive_refuses_an_index_before_and_when_writing() {
    let (dir, store) = setup();
    let images = vec![image(&store, "a", "amd64"), image(&store, "a", "arm64")];
    let idx = index(images, &BTreeMap::new(), &store).unwrap();
    let out = file_sinks(dir.path());
    let err = out.check(ArtifactKind::Index { platforms: 2 }).unwrap_err().to_string();
    assert!(err.contains("image.tar") && err.contains("makes 2") && err.contains("oci:DIR"), "{err}");
    assert!(out.check(ArtifactKind::Image).is_ok());
    // The layout takes the index; the archive after it refuses it, and nothing is half-written.
    let err = out.write(&Artifact::Index(idx.clone()), &Blobs::Store(store)).await.unwrap_err();
    assert!(err.to_string().contains("docker archive holds the image of one platform"), "{err}");
    assert!(!dir.path().join("image.tar").exists());
    let index_json = std::fs::read_to_string(dir.path().join("layout/index.json")).unwrap();
    assert!(index_json.contains(&idx.digest.to_string()), "{index_json}");
}

#[tokio::test]
async fn an_image_read_from_a_layout_is_not_copied_into_another_file_sink() {
    let (dir, store) = setup();
    let built = image(&store, "x", "amd64");
    let layout = dir.path().join("src");
    LayoutSink { dir: layout.clone(), tag: None, referrers: None }
        .write(&Artifact::Image(built), &Blobs::Store(store))
        .await
        .unwrap();
    let (read, files) = image_at(&Target::OciLayout { dir: layout, tag: None }).unwrap();
    let sink = LayoutSink { dir: dir.path().join("copy"), tag: None, referrers: None };
    let err = sink.write(&Artifact::Image(read), &Blobs::Layout(files)).await.unwrap_err().to_string();
    assert!(err.contains("not in the blob store") && err.contains("skopeo"), "{err}");
    assert!(!dir.path().join("copy").exists());
}

/// A registry that takes every upload and records what was put where.
fn registry(req: &Request, put: &Mutex<Vec<(String, Vec<u8>)>>) -> Reply {
    let path = req.path().to_string();
    match req.method.as_str() {
        "GET" if path == "/v2/" => Reply::status(200),
        "HEAD" => Reply::status(404),
        "POST" => Reply::status(202).header("Location", "/v2/team/app/blobs/uploads/u1"),
        "PATCH" => Reply::status(202).header("Location", "/v2/team/app/blobs/uploads/u1"),
        "PUT" => {
            put.lock().unwrap().push((req.target.clone(), req.body.clone()));
            let digest = req.query("digest").unwrap_or_else(|| crate::digest::Digest::of(&req.body).to_string());
            Reply::status(201).header("Docker-Content-Digest", digest)
        }
        _ => Reply::status(404),
    }
}

#[tokio::test]
async fn push_sends_a_layout_image_with_its_blobs_read_in_place() {
    let (dir, store) = setup();
    let built = image(&store, "pushed", "amd64");
    let archive = dir.path().join("image.tar");
    ArchiveSink { path: archive.clone(), tags: vec![] }
        .write(&Artifact::Image(built.clone()), &Blobs::Store(store))
        .await
        .unwrap();
    let (read, files) = image_at(&Target::Archive { path: archive.clone() }).unwrap();
    let blobs = Blobs::Layout(files);
    let p = push_image_of(&read, &blobs).unwrap();
    assert!(matches!(&p.config.source, BlobSource::Slice { path, .. } if *path == archive));

    let put = Arc::new(Mutex::new(Vec::new()));
    let put2 = put.clone();
    let server = Server::start(move |r| registry(r, &put2)).await;
    let options = RegistryOptions { retry: RetryPolicy { attempts: 1, ..Default::default() }, ..Default::default() };
    let settings = PushSettings::new(&format!("{}/team/app:1.0", server.addr()), &[]).unwrap();
    let mut out = Outputs::new();
    out.push(RegistrySink { settings, options, mount: None, supply: Default::default() });
    let pushed = out.write(&Artifact::Image(read), &blobs).await.unwrap();
    assert_eq!(pushed, Some(format!("{}/team/app@{}", server.addr(), built.manifest_digest)));
    let put = put.lock().unwrap();
    let manifest = put.iter().find(|(t, _)| t == "/v2/team/app/manifests/1.0").expect("manifest put under the tag");
    assert_eq!(manifest.1, built.manifest);
}
