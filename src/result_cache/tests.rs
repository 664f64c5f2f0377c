use super::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[test]
fn the_fingerprint_is_stable_and_every_part_counts() {
    let key = |parts: &[(&str, &str)]| {
        let mut k = KeyBuilder::new();
        for (n, v) in parts {
            k.part(n, v);
        }
        k.finish()
    };
    let base = [("a", "1"), ("b", "2")];
    assert_eq!(key(&base), key(&base));
    assert_eq!(key(&base).hex().len(), 64);
    assert_ne!(key(&base), key(&[("a", "1"), ("b", "3")]));
    assert_ne!(key(&base), key(&[("a", "1"), ("c", "2")]));
    assert_ne!(key(&base), key(&[("b", "2"), ("a", "1")]));
    assert_ne!(key(&base), key(&[("a", "1")]));
    // Length prefixes: moving bytes between name and value, or between parts, changes the key.
    assert_ne!(key(&[("ab", "c")]), key(&[("a", "bc")]));
    assert_ne!(key(&[("a", "bc"), ("d", "")]), key(&[("a", "b"), ("cd", "")]));
}

fn project() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("mix.exs"), "defmodule X.MixProject do end").unwrap();
    fs::create_dir_all(dir.path().join("lib")).unwrap();
    fs::write(dir.path().join("lib/x.ex"), "defmodule X do end").unwrap();
    let p = Project::open(dir.path()).unwrap();
    (dir, p)
}

#[test]
fn the_source_digest_follows_the_source_tar() {
    let (dir, p) = project();
    let first = source_digest(&p).unwrap();
    assert_eq!(source_digest(&p).unwrap(), first);
    // It is the digest of the tar the builder gets (without its prefix).
    assert_eq!(first, Digest::of(&p.write_source_tar(Vec::new()).unwrap()));

    // A new mtime alone changes nothing (the tar has none).
    let f = dir.path().join("lib/x.ex");
    fs::File::options().write(true).open(&f).unwrap().set_modified(std::time::SystemTime::now()).unwrap();
    assert_eq!(source_digest(&p).unwrap(), first);
    // Content, mode, a new file: each changes it.
    fs::write(&f, "defmodule X do def a, do: 1 end").unwrap();
    let changed = source_digest(&p).unwrap();
    assert_ne!(changed, first);
    fs::set_permissions(&f, fs::Permissions::from_mode(0o755)).unwrap();
    let exec = source_digest(&p).unwrap();
    assert_ne!(exec, changed);
    fs::write(dir.path().join("lib/y.ex"), "").unwrap();
    let added = source_digest(&p).unwrap();
    assert_ne!(added, exec);
    // What the builder never sees does not count: _build, deps, .dockerignore'd files.
    fs::create_dir_all(dir.path().join("_build/prod")).unwrap();
    fs::write(dir.path().join("_build/prod/x"), "x").unwrap();
    assert_eq!(source_digest(&p).unwrap(), added);
    fs::write(dir.path().join(".dockerignore"), "notes.txt\n").unwrap();
    let with_ignore = source_digest(&p).unwrap();
    assert_ne!(with_ignore, added, ".dockerignore itself is a source file");
    fs::write(dir.path().join("notes.txt"), "x").unwrap();
    assert_eq!(source_digest(&p).unwrap(), with_ignore);
}

fn image(store: &BlobStore) -> Image {
    let (layer, layer_size) = store.put(b"layer").unwrap();
    let (config_digest, _) = store.put(b"{\"config\":1}").unwrap();
    let manifest = format!("{{\"layers\":[\"{layer}\"]}}").into_bytes();
    let (manifest_digest, _) = store.put(&manifest).unwrap();
    Image {
        manifest,
        manifest_digest,
        config: b"{\"config\":1}".to_vec(),
        config_digest,
        layers: vec![LayerBlob {
            name: "app".into(),
            digest: layer,
            diff_id: DiffId::of(b"tar"),
            size: layer_size,
            media_type: crate::layer::MEDIA_TYPE_LAYER_GZIP.into(),
        }],
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
    }
}

#[test]
fn entries_round_trip_while_every_blob_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let cache = ResultCache::new(&store);
    let key = KeyBuilder::new().part("x", "1").finish();
    let other = KeyBuilder::new().part("x", "2").finish();
    assert_eq!(cache.lookup(&key), None);
    let img = CachedImage { release: "x".into(), version: "0.1.0".into(), image: image(&store) };
    cache.record(&key, Path::new("/src/x"), std::slice::from_ref(&img)).unwrap();
    assert_eq!(cache.lookup(&key), Some(vec![img.clone()]));
    assert_eq!(cache.lookup(&other), None);
    // No temp files left beside the entry.
    let names: Vec<String> =
        fs::read_dir(dir.path().join(DIR)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, [format!("{}.json", key.hex())]);

    // A layer gone: a miss.
    let layer = store.blob_path(&img.image.layers[0].digest);
    let saved = fs::read(&layer).unwrap();
    fs::remove_file(&layer).unwrap();
    assert_eq!(cache.lookup(&key), None);
    fs::write(&layer, &saved).unwrap();
    assert!(cache.lookup(&key).is_some());
    // A manifest that is not what its digest says: a miss.
    let manifest = store.blob_path(&img.image.manifest_digest);
    fs::write(&manifest, b"{}").unwrap();
    assert_eq!(cache.lookup(&key), None);
    fs::write(&manifest, &img.image.manifest).unwrap();
    // An unreadable entry or another format: a miss, not an error.
    let entry = dir.path().join(DIR).join(format!("{}.json", key.hex()));
    let text = fs::read_to_string(&entry).unwrap();
    fs::write(&entry, text.replace(FORMAT, "release-oci result cache 0")).unwrap();
    assert_eq!(cache.lookup(&key), None);
    fs::write(&entry, "{").unwrap();
    assert_eq!(cache.lookup(&key), None);
}

/// Regression: `cache prune --project DIR` left the project's results, so the next build
/// "reused" an image the user meant to rebuild.
#[test]
fn forget_removes_the_entries_of_a_project_and_those_that_do_not_say() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let cache = ResultCache::new(&store);
    assert_eq!(cache.forget(Some(Path::new("/src/a"))).unwrap(), Vec::<PathBuf>::new(), "no results yet");
    let img = CachedImage { release: "x".into(), version: "0.1.0".into(), image: image(&store) };
    let key = |v: &str| KeyBuilder::new().part("x", v).finish();
    let (a1, a2, b, old) = (key("a1"), key("a2"), key("b"), key("old"));
    for (k, project) in [(&a1, "/src/a"), (&a2, "/src/a"), (&b, "/src/b"), (&old, "/src/b")] {
        cache.record(k, Path::new(project), std::slice::from_ref(&img)).unwrap();
    }
    // An entry of an older version, without its project.
    let old_entry = dir.path().join(DIR).join(format!("{}.json", old.hex()));
    let text = fs::read_to_string(&old_entry).unwrap().replace("\"project\": \"/src/b\",", "");
    assert!(!text.contains("/src/b"), "{text}");
    fs::write(&old_entry, text).unwrap();
    assert!(cache.lookup(&old).is_some(), "an entry without a project is still read");

    let removed = cache.forget(Some(Path::new("/src/a"))).unwrap();
    assert_eq!(removed.len(), 3, "{removed:?}");
    assert_eq!((cache.lookup(&a1), cache.lookup(&a2), cache.lookup(&old)), (None, None, None));
    assert!(cache.lookup(&b).is_some(), "another project's result is kept");
    assert_eq!(cache.forget(None).unwrap().len(), 1);
    assert_eq!(cache.lookup(&b), None);
}
