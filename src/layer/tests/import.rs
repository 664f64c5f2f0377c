//! write_layers ordering, import_tar and import_blob.

use super::*;

#[test]
fn write_layers_keeps_the_order_of_the_specs() {
    let (_dir, store) = store();
    let specs: Vec<LayerSpec> = (0..6)
        .map(|i| {
            let mut s = LayerSpec::new(format!("l{i}"));
            s.add_file(format!("f{i}"), EntryKind::Bytes(vec![b'x'; i * 1000]), 0o644, 0, 0);
            s
        })
        .collect();
    let blobs = write_layers(&specs, &OPTS, &store).unwrap();
    for (i, (spec, blob)) in specs.iter().zip(&blobs).enumerate() {
        assert_eq!(blob.name, format!("l{i}"));
        assert_eq!(*blob, write_layer(spec, &OPTS, &store).unwrap());
    }
}

#[test]
fn import_tar_keeps_the_bytes_as_read() {
    let (_dir, store) = store();
    let mut spec = LayerSpec::new("src");
    spec.add_file("x", EntryKind::Bytes(b"hello".to_vec()), 0o644, 0, 0);
    let made = write_layer(&spec, &OPTS, &store).unwrap();
    let tar = gunzip(&store, &made);
    // Same gzip configuration, and the output does not depend on how the input was chunked.
    let again = import_tar("again", tar.as_slice(), &store).unwrap();
    assert_eq!((&again.digest, &again.diff_id), (&made.digest, &made.diff_id));
    let mut odd = tar.clone();
    odd.extend_from_slice(&[0u8; 512]); // extra padding, as some tools write: kept as is
    let imported = import_tar("base", odd.as_slice(), &store).unwrap();
    assert_eq!(imported.diff_id, crate::digest::DiffId::of(&odd));
    assert_eq!(imported.name, "base");
    assert_eq!(gunzip(&store, &imported), odd);
    assert_eq!(store.lookup_diff_id(&imported.diff_id), Some(imported.digest.clone()));

    let gz = fs::read(store.blob_path(&made.digest)).unwrap();
    assert!(matches!(import_tar("base", gz.as_slice(), &store), Err(LayerError::Import { .. })));
    assert!(matches!(import_tar("base", &b""[..], &store), Err(LayerError::Import { .. })));

    let blob = import_blob("base", gz.as_slice(), MEDIA_TYPE_LAYER_GZIP, made.diff_id.clone(), &store).unwrap();
    assert_eq!(blob.digest, made.digest);
    assert_eq!(blob.size, made.size);
}
