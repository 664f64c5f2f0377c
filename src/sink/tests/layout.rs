//! Layout directories; the checks with skopeo and umoci are integration tests
//! (`--features integration`) and fail when those are missing.

use super::*;

#[cfg(feature = "integration")]
#[test]
fn layout_passes_skopeo_inspect() {
    let (dir, store) = setup();
    let img = image(&store, "hi");
    let out = dir.path().join("layout");
    write_oci_layout(&img, &store, &out, Some("v1")).unwrap();
    let Some(o) = run("skopeo", &["inspect", &format!("oci:{}:v1", out.display())]) else {
        return;
    };
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Digest"], img.manifest_digest.as_str());
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(v["Labels"]["org.opencontainers.image.title"], "hello");
    // The raw config skopeo reads back is our bytes.
    let o = run("skopeo", &["inspect", "--config", "--raw", &format!("oci:{}:v1", out.display())]).unwrap();
    assert_eq!(o.stdout, img.config);
}

#[cfg(feature = "integration")]
#[test]
fn umoci_unpacks_the_files() {
    let (dir, store) = setup();
    let img = image(&store, "hi there");
    let out = dir.path().join("layout");
    write_oci_layout(&img, &store, &out, Some("latest")).unwrap();
    let bundle = dir.path().join("bundle");
    let image_arg = format!("{}:latest", out.display());
    let bundle_arg = bundle.display().to_string();
    let Some(_) = run("umoci", &["unpack", "--rootless", "--image", &image_arg, &bundle_arg]) else {
        return;
    };
    let rootfs = bundle.join("rootfs");
    assert_eq!(fs::read_to_string(rootfs.join("app/hello.txt")).unwrap(), "hi there");
    assert_eq!(fs::read_link(rootfs.join("app/link")).unwrap(), Path::new("hello.txt"));
    assert_eq!(fs::metadata(rootfs.join("app/bin/hello")).unwrap().mode() & 0o777, 0o755);
    assert!(rootfs.join("etc/passwd").is_file());
    let config: serde_json::Value = serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["args"], serde_json::json!(["/app/bin/hello", "start"]));
}

#[test]
fn writing_twice_keeps_one_index_entry_per_tag() {
    let (dir, store) = setup();
    let out = dir.path().join("layout");
    let first = image(&store, "one");
    write_oci_layout(&first, &store, &out, Some("v1")).unwrap();
    let config_blob = out.join("blobs/sha256").join(first.config_digest.hex());
    let inode = fs::metadata(&config_blob).unwrap().ino();
    write_oci_layout(&first, &store, &out, Some("v1")).unwrap();
    assert_eq!(index_of(&out)["manifests"].as_array().unwrap().len(), 1);

    let second = image(&store, "two");
    write_oci_layout(&second, &store, &out, Some("v1")).unwrap();
    write_oci_layout(&first, &store, &out, Some("old")).unwrap();
    write_oci_layout(&first, &store, &out, None).unwrap();
    write_oci_layout(&first, &store, &out, None).unwrap();
    let index = index_of(&out);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{index}");
    let by_tag = |t: &str| {
        entries.iter().find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == t).unwrap()["digest"].clone()
    };
    assert_eq!(by_tag("v1"), second.manifest_digest.as_str());
    assert_eq!(by_tag("old"), first.manifest_digest.as_str());
    assert_eq!(entries[0]["platform"], serde_json::json!({"architecture": "amd64", "os": "linux"}));
    assert_eq!(index["mediaType"], crate::image::MEDIA_TYPE_INDEX);
    // Existing blobs are not rewritten; no temp files are left.
    assert_eq!(fs::metadata(&config_blob).unwrap().ino(), inode);
    let names: Vec<String> =
        fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
    assert_eq!(fs::read(out.join("oci-layout")).unwrap(), br#"{"imageLayoutVersion":"1.0.0"}"#);
}

#[test]
fn a_foreign_directory_is_not_written_into() {
    let (dir, store) = setup();
    let img = image(&store, "x");
    let out = dir.path().join("stuff");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("notes.txt"), "mine").unwrap();
    let err = write_oci_layout(&img, &store, &out, None).unwrap_err();
    assert!(matches!(err, SinkError::NotALayout { .. }), "{err}");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 1);
}
