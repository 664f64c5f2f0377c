use super::*;
use crate::registry::fake::FakeRegistry;

fn blob(label: &str, bytes: &[u8]) -> BlobRef {
    BlobRef {
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        label: label.into(),
        source: BlobSource::Bytes(Bytes::copy_from_slice(bytes)),
    }
}

fn image(layers: &[&[u8]]) -> PushImage {
    let manifest = format!("{{\"layers\":{}}}", layers.len()).into_bytes();
    PushImage {
        manifest_digest: Digest::of(&manifest),
        manifest,
        media_type: crate::registry::MEDIA_OCI_MANIFEST.into(),
        config: blob("config", b"{\"config\":1}"),
        layers: layers.iter().enumerate().map(|(i, l)| blob(&format!("layer {i}"), l)).collect(),
    }
}

fn target(tags: &[&str]) -> PushTarget {
    PushTarget {
        repository: "team/app".into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn blobs_before_config_before_manifest_deduplicated() {
    let reg = FakeRegistry::default();
    let img = image(&[b"base", b"app", b"base"]);
    let s = push_image(&reg, &img, &target(&["1.0", "latest", "1.0"]), &Bars::hidden()).await.unwrap();
    assert_eq!(s, PushSummary { uploaded: 3, uploaded_bytes: 4 + 3 + 12, mounted: 0, existing: 0 });
    let calls = reg.calls();
    let pos = |c: &str| calls.iter().position(|x| x == c).unwrap_or_else(|| panic!("{c} not in {calls:?}"));
    let cfg = pos(&format!("UPLOAD team/app {}", img.config.digest));
    for l in &img.layers {
        // Every upload HEADs first.
        assert!(pos(&format!("HEAD team/app {}", l.digest)) < pos(&format!("UPLOAD team/app {}", l.digest)));
        assert!(pos(&format!("UPLOAD team/app {}", l.digest)) < cfg);
    }
    assert!(cfg < pos("PUT team/app 1.0"));
    assert_eq!(reg.count("UPLOAD"), 3, "the repeated layer goes once: {calls:?}");
    assert_eq!(reg.count("PUT"), 2, "each tag once: {calls:?}");
}

#[tokio::test]
async fn second_push_uploads_nothing_and_changed_layers_only_go_again() {
    let reg = FakeRegistry::default();
    push_image(&reg, &image(&[b"base", b"app v1"]), &target(&["1"]), &Bars::hidden()).await.unwrap();
    reg.calls.lock().unwrap().clear();
    let s = push_image(&reg, &image(&[b"base", b"app v1"]), &target(&["1"]), &Bars::hidden()).await.unwrap();
    assert_eq!((s.uploaded, s.existing), (0, 3));
    assert_eq!(reg.count("UPLOAD"), 0);
    reg.calls.lock().unwrap().clear();
    let mut img = image(&[b"base", b"app v2"]);
    img.config = blob("config", b"{\"config\":2}");
    let s = push_image(&reg, &img, &target(&["2"]), &Bars::hidden()).await.unwrap();
    assert_eq!((s.uploaded, s.existing), (2, 1));
    let uploads: Vec<String> = reg.calls().into_iter().filter(|c| c.starts_with("UPLOAD")).collect();
    assert_eq!(
        uploads,
        vec![format!("UPLOAD team/app {}", Digest::of(b"app v2")), format!("UPLOAD team/app {}", img.config.digest)]
    );
}

#[tokio::test]
async fn base_layers_are_mounted_from_the_base_repository() {
    let reg = FakeRegistry::default();
    let base = reg.add_blob("base/runtime", b"base layer");
    let img = image(&[b"base layer", b"app"]);
    let t = PushTarget { mount_from: Some("base/runtime".into()), mountable: [base.clone()].into(), ..target(&["1"]) };
    let s = push_image(&reg, &img, &t, &Bars::hidden()).await.unwrap();
    assert_eq!((s.uploaded, s.mounted, s.existing), (2, 1, 0));
    assert_eq!(reg.count(&format!("MOUNT team/app {base} base/runtime")), 1);
    assert_eq!(reg.count(&format!("UPLOAD team/app {base}")), 0);

    // A registry that declines the mount gets the layer uploaded.
    let reg = FakeRegistry { refuse_mounts: true, ..Default::default() };
    reg.add_blob("base/runtime", b"base layer");
    let s = push_image(&reg, &img, &t, &Bars::hidden()).await.unwrap();
    assert_eq!((s.uploaded, s.mounted), (3, 0));
}

#[tokio::test]
async fn untagged_push_puts_by_digest_and_indexes_put_children_first() {
    let reg = FakeRegistry::default();
    let img = image(&[b"l"]);
    push_image(&reg, &img, &target(&[]), &Bars::hidden()).await.unwrap();
    assert_eq!(reg.count(&format!("PUT team/app {}", img.manifest_digest)), 1);

    let reg = FakeRegistry::default();
    let (a, b) = (image(&[b"amd64"]), image(&[b"arm64", b"x"]));
    let index = b"{\"manifests\":2}";
    push_index(
        &reg,
        &[a.clone(), b.clone()],
        index,
        crate::registry::MEDIA_OCI_INDEX,
        &target(&["multi"]),
        &Bars::hidden(),
    )
    .await
    .unwrap();
    let calls = reg.calls();
    let last = calls.last().unwrap();
    assert_eq!(last, "PUT team/app multi");
    assert!(calls.contains(&format!("PUT team/app {}", a.manifest_digest)));
    assert!(calls.contains(&format!("PUT team/app {}", b.manifest_digest)));
}

#[tokio::test]
async fn reads_slices_of_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, b"0123456789").unwrap();
    let s = BlobSource::Slice { path: p.clone(), offset: 2 };
    assert_eq!(&s.read(3, 4).await.unwrap()[..], b"5678");
    assert_eq!(&BlobSource::File(p.clone()).read(0, 3).await.unwrap()[..], b"012");
    let err = BlobSource::File(p).read(8, 5).await.unwrap_err().to_string();
    assert!(err.contains("cannot read"), "{err}");
}
