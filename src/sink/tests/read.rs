//! Reading images back: inspect, and layouts as base images.

use super::*;

#[test]
fn read_image_reports_what_inspect_prints() {
    let (dir, store) = setup();
    let img = image(&store, "hi");
    let out = dir.path().join("layout");
    write_oci_layout(&img, &store, &out, Some("v1")).unwrap();
    let info = read_image(&Target::OciLayout { dir: out.clone(), tag: Some("v1".into()) }).unwrap();
    assert_eq!(info.manifest_digest, img.manifest_digest);
    assert_eq!(info.config_digest, img.config_digest);
    assert_eq!(info.layers.len(), 2);
    assert_eq!(info.layers[1].created_by.as_deref(), Some("release-oci: app"));
    assert_eq!(info.layers[1].diff_id, Some(img.layers[1].diff_id.clone()));
    assert_eq!(info.layers[0].size, img.layers[0].size);
    let text = info.to_string();
    for want in [
        img.manifest_digest.as_str(),
        "linux/amd64",
        r#"["/app/bin/hello"]"#,
        r#"["start"]"#,
        "65534",
        "/app",
        "LANG=C.UTF-8",
        "4000/tcp",
        "org.opencontainers.image.title=hello",
        "org.opencontainers.image.version=0.1.0",
        "release-oci: runtime",
        &img.layers[0].digest.hex()[..12],
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // Untagged read of a one-image layout works; a wrong tag lists the tags.
    assert!(read_image(&Target::OciLayout { dir: out.clone(), tag: None }).is_ok());
    let err = read_image(&Target::OciLayout { dir: out.clone(), tag: Some("nope".into()) }).unwrap_err();
    assert!(err.to_string().contains("v1"), "{err}");
    // A corrupt config is caught.
    let config_blob = out.join("blobs/sha256").join(img.config_digest.hex());
    fs::remove_file(&config_blob).unwrap(); // a hard link to the store: replace, do not edit
    fs::write(&config_blob, b"{}").unwrap();
    let err = read_image(&Target::OciLayout { dir: out, tag: None }).unwrap_err();
    assert!(matches!(err, SinkError::DigestMismatch { .. }), "{err}");
}

#[test]
fn base_from_layout_copies_and_checks_blobs() {
    let (dir, store) = setup();
    let img = image(&store, "base");
    let other = image(&store, "other");
    let out = dir.path().join("layout");
    write_oci_layout(&img, &store, &out, Some("base")).unwrap();
    write_oci_layout(&other, &store, &out, Some("other")).unwrap();

    let fresh = BlobStore::open(dir.path().join("fresh")).unwrap();
    let err = load_base_from_layout(&out, None, &fresh).unwrap_err();
    assert!(matches!(err, SinkError::Ambiguous { count: 2, .. }), "{err}");
    let base = load_base_from_layout(&out, Some("base"), &fresh).unwrap();
    assert_eq!(base.digest, Some(img.manifest_digest.clone()));
    assert_eq!(
        base.layers.iter().map(|l| &l.digest).collect::<Vec<_>>(),
        img.layers.iter().map(|l| &l.digest).collect::<Vec<_>>()
    );
    assert_eq!(base.layers[0].diff_id, img.layers[0].diff_id);
    assert!(base.layers.iter().all(|l| fresh.contains(&l.digest) && l.name == "base"));

    // Built on: the base's layers come first.
    let mine = assemble(Some(&base), vec![], &settings("foreground"), &BTreeMap::new(), &fresh).unwrap();
    assert_eq!(mine.layers, base.layers);

    // A corrupted layer blob is refused.
    let blob = out.join("blobs/sha256").join(other.layers[1].digest.hex());
    fs::remove_file(&blob).unwrap();
    fs::write(&blob, b"not the layer").unwrap();
    let fresh2 = BlobStore::open(dir.path().join("fresh2")).unwrap();
    let err = load_base_from_layout(&out, Some("other"), &fresh2).unwrap_err();
    assert!(matches!(err, SinkError::DigestMismatch { .. }), "{err}");
}
