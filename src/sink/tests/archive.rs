//! The combined OCI layout / docker-load archive.

use super::*;

fn tar_names(bytes: &[u8]) -> Vec<(String, u64)> {
    let mut ar = tar::Archive::new(bytes);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (String::from_utf8(e.path_bytes().to_vec()).unwrap(), e.header().mtime().unwrap())
        })
        .collect()
}

#[test]
fn archive_is_a_layout_and_a_docker_archive() {
    let (dir, store) = setup();
    let img = image(&store, "hi");
    let tags = vec!["hello:0.1.0".to_string(), "registry.local:5000/team/hello:latest".to_string()];
    let bytes = write_archive_to(&img, &store, Vec::new(), &tags).unwrap();
    let entries = tar_names(&bytes);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names[..2], ["blobs/", "blobs/sha256/"]);
    assert_eq!(names[names.len() - 3..], ["index.json", "manifest.json", "oci-layout"]);
    assert_eq!(names.len(), 2 + 4 + 3); // config, two layers, manifest
    assert!(entries.iter().all(|(_, mtime)| *mtime == 0));
    // Same input, same archive bytes.
    assert_eq!(bytes, write_archive_to(&img, &store, Vec::new(), &tags).unwrap());

    let path = dir.path().join("out/hello.tar");
    write_archive(&img, &store, &path, &tags).unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
    let legacy: serde_json::Value = {
        let mut ar = tar::Archive::new(bytes.as_slice());
        let mut e = ar.entries().unwrap().map(|e| e.unwrap()).find(|e| &*e.path_bytes() == b"manifest.json").unwrap();
        serde_json::from_reader(&mut e).unwrap()
    };
    assert_eq!(legacy[0]["Config"], format!("blobs/sha256/{}", img.config_digest.hex()));
    assert_eq!(legacy[0]["RepoTags"], serde_json::json!(tags));
    assert_eq!(legacy[0]["Layers"].as_array().unwrap().len(), 2);

    let info = read_image(&Target::Archive { path: path.clone() }).unwrap();
    assert_eq!(info.manifest_digest, img.manifest_digest);
}

/// skopeo reads the same archive both as a docker archive and as an OCI archive.
#[cfg(feature = "integration")]
#[test]
fn skopeo_reads_the_archive_as_docker_and_oci() {
    let (dir, store) = setup();
    let img = image(&store, "hi");
    let tags = vec!["hello:0.1.0".to_string(), "registry.local:5000/team/hello:latest".to_string()];
    let path = dir.path().join("out/hello.tar");
    write_archive(&img, &store, &path, &tags).unwrap();
    let p = path.display().to_string();
    if let Some(o) = run("skopeo", &["inspect", &format!("docker-archive:{p}")]) {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
        let o = run("skopeo", &["inspect", &format!("oci-archive:{p}:latest")]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["Digest"], img.manifest_digest.as_str());
    }
}

#[test]
fn a_failed_archive_write_leaves_no_file() {
    let (dir, store) = setup();
    let img = image(&store, "hi");
    fs::remove_file(store.blob_path(&img.layers[1].digest)).unwrap();
    let out = dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let err = write_archive(&img, &store, &out.join("hello.tar"), &[]).unwrap_err();
    assert!(matches!(err, SinkError::MissingBlob { .. }), "{err}");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
    let err = write_oci_layout(&img, &store, &out.join("layout"), None).unwrap_err();
    assert!(err.to_string().contains(img.layers[1].digest.hex()), "{err}");
    assert!(!out.join("layout").exists());
}
