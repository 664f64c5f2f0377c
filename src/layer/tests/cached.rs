//! The layer cache: an unchanged layer reuses its blob; the compression setting is part of the key.

use super::*;

fn spec(root: &std::path::Path) -> LayerSpec {
    let mut spec = LayerSpec::new("app");
    spec.add_tree(&tree(root), "app", 0, 0).unwrap();
    spec
}

#[test]
fn an_unchanged_layer_is_reused_per_compression_and_a_changed_one_is_written() {
    let (dir, store) = store();
    let spec = spec(dir.path());
    let zstd = Compression::Zstd { level: 3 };
    let first = write_layer_cached_with(&spec, &OPTS, zstd, &store).unwrap();
    assert!(!first.reused);
    assert_eq!(first.blob.media_type, MEDIA_TYPE_LAYER_ZSTD);
    let again = write_layer_cached_with(&spec, &OPTS, zstd, &store).unwrap();
    assert!(again.reused);
    assert_eq!(again.blob, first.blob);
    // Same content, other settings: another blob, never the zstd one.
    let gzip = write_layer_cached_with(&spec, &OPTS, Compression::Gzip, &store).unwrap();
    assert!(!gzip.reused);
    assert_eq!(gzip.blob.diff_id, first.blob.diff_id);
    assert_ne!(gzip.blob.digest, first.blob.digest);
    assert_eq!(gzip.blob, write_layer(&spec, &OPTS, &store).unwrap(), "same bytes as an uncached write");
    let level9 = write_layer_cached_with(&spec, &OPTS, Compression::Zstd { level: 9 }, &store).unwrap();
    assert!(!level9.reused);
    // A changed file: a new diff_id, written.
    fs::write(dir.path().join("src/lib/a.beam"), b"FOR1 beam 2").unwrap();
    let changed = write_layer_cached_with(&spec, &OPTS, zstd, &store).unwrap();
    assert!(!changed.reused);
    assert_ne!(changed.blob.diff_id, first.blob.diff_id);
    // The parallel form keeps the order of the specs.
    let mut other = LayerSpec::new("other");
    other.add_file("x", EntryKind::Bytes(b"x".to_vec()), 0o644, 0, 0);
    let both = write_layers_cached(&[spec.clone(), other], &OPTS, zstd, &store).unwrap();
    assert_eq!(
        both.iter().map(|l| (l.blob.name.as_str(), l.reused)).collect::<Vec<_>>(),
        [("app", true), ("other", false)]
    );
}
