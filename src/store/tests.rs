use super::*;
use std::os::unix::fs::MetadataExt;

#[test]
fn put_is_content_addressed_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let (d1, n) = store.put(b"{}").unwrap();
    let (d2, _) = store.put(b"{}").unwrap();
    assert_eq!(d1, d2);
    assert_eq!(n, 2);
    assert_eq!(fs::read(store.blob_path(&d1)).unwrap(), b"{}");
    // Only the blob, no temp files left.
    let names: Vec<_> = fs::read_dir(dir.path().join("blobs/sha256")).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn dropped_writer_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let mut w = store.writer().unwrap();
    w.write_all(b"partial").unwrap();
    drop(w);
    assert_eq!(fs::read_dir(dir.path().join("blobs/sha256")).unwrap().count(), 0);
}

#[test]
fn diff_id_index_round_trips_only_while_blob_exists() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let (d, _) = store.put(b"gz").unwrap();
    let diff = DiffId::of(b"tar");
    assert_eq!(store.lookup_diff_id(&diff), None);
    store.record_diff_id(&diff, &d).unwrap();
    assert_eq!(store.lookup_diff_id(&diff), Some(d.clone()));
    fs::remove_file(store.blob_path(&d)).unwrap();
    assert_eq!(store.lookup_diff_id(&diff), None);
}

#[test]
fn indexes_are_separate() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let (gz, _) = store.put(b"gz").unwrap();
    let (zst, _) = store.put(b"zst").unwrap();
    let diff = DiffId::of(b"tar");
    store.record_diff_id(&diff, &gz).unwrap();
    assert_eq!(store.lookup_layer("diffids-zstd-3", &diff), None);
    store.record_layer("diffids-zstd-3", &diff, &zst).unwrap();
    assert_eq!(store.lookup_layer("diffids-zstd-3", &diff), Some(zst));
    assert_eq!(store.lookup_diff_id(&diff), Some(gz));
}

// Integrity: a stored blob is checked before it is reused.

use std::time::{Duration, SystemTime};

fn setup() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    (dir, store)
}

/// The files in `quarantine/`.
fn quarantined(root: &Path) -> Vec<PathBuf> {
    let Ok(read) = fs::read_dir(root.join("quarantine")) else { return Vec::new() };
    let mut v: Vec<PathBuf> = read.map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// Flips one bit of the file in place: same size, same inode.
fn flip_a_bit(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    bytes[0] ^= 1;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_truncated_blob_is_moved_aside_and_made_again() {
    let (dir, store) = setup();
    let (d, _) = store.put(b"some config bytes").unwrap();
    let path = store.blob_path(&d);
    fs::write(&path, b"some").unwrap();
    assert!(!store.contains(&d), "a truncated blob was reused");
    assert!(!path.exists());
    let moved = quarantined(dir.path());
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert!(moved[0].file_name().unwrap().to_string_lossy().starts_with(d.hex()), "{moved:?}");
    assert_eq!(fs::read(&moved[0]).unwrap(), b"some");
    // The caller makes it again, as if it had been missing.
    store.put(b"some config bytes").unwrap();
    assert!(store.contains(&d));
    assert_eq!(fs::read(&path).unwrap(), b"some config bytes");
}

#[test]
fn a_bit_flip_of_the_same_size_is_caught_on_reuse() {
    let (dir, store) = setup();
    let (d, _) = store.put(b"0123456789").unwrap();
    assert!(store.contains(&d));
    flip_a_bit(&store.blob_path(&d));
    assert!(!store.contains(&d), "a bit-flipped blob was reused");
    assert_eq!(quarantined(dir.path()).len(), 1);

    // Also when the mtime is put back (as `touch -r` or `cp -p` would): the ctime still moved.
    let (e, _) = store.put(b"abcdefghij").unwrap();
    let path = store.blob_path(&e);
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    flip_a_bit(&path);
    fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
    assert!(!store.contains(&e), "a bit-flipped blob with its old mtime was reused");
}

#[test]
fn a_settled_blob_is_trusted_on_its_record_and_not_hashed_again() {
    let (dir, store) = setup();
    let (d, _) = store.put(b"settled").unwrap();
    let record = dir.path().join("verified").join(d.hex());
    std::thread::sleep(Duration::from_millis(20));
    // At most one hash (when the record was written in the blob's clock tick), then a new record.
    assert!(store.contains(&d));
    let ino = fs::metadata(&record).unwrap().ino();
    assert!(store.contains(&d));
    assert_eq!(fs::metadata(&record).unwrap().ino(), ino, "the blob was hashed again (its record rewritten)");
}

#[test]
fn blobs_of_a_store_without_records_are_hashed_then_recorded() {
    let (dir, store) = setup();
    let (d, _) = store.put(b"from an older release-oci").unwrap();
    fs::remove_dir_all(dir.path().join("verified")).unwrap();
    assert!(store.contains(&d));
    let record = fs::read_to_string(dir.path().join("verified").join(d.hex())).unwrap();
    assert!(record.starts_with("1 25 "), "{record}");
}

#[test]
fn a_blob_of_another_size_than_expected_is_damaged() {
    let (dir, store) = setup();
    let (d, n) = store.put(b"sized").unwrap();
    assert!(matches!(store.inspect(&d, Some(n)).unwrap(), BlobState::Good(5)));
    let BlobState::Damaged(damage) = store.inspect(&d, Some(n + 1)).unwrap() else { panic!("not damaged") };
    assert!(damage.found.contains("5 bytes where 6 were expected"), "{damage}");
    assert_eq!(damage.moved_to.as_deref(), quarantined(dir.path()).first().map(PathBuf::as_path));
}

#[test]
fn committing_a_blob_replaces_a_damaged_copy() {
    let (dir, store) = setup();
    let (d, _) = store.put(b"layer bytes").unwrap();
    flip_a_bit(&store.blob_path(&d));
    let mut w = store.writer().unwrap();
    w.write_all(b"layer bytes").unwrap();
    assert_eq!(w.commit().unwrap().0, d);
    assert_eq!(fs::read(store.blob_path(&d)).unwrap(), b"layer bytes", "the damaged copy was kept");
    assert_eq!(quarantined(dir.path()).len(), 1);
}

#[test]
fn the_diff_id_index_does_not_serve_a_damaged_blob() {
    let (dir, store) = setup();
    let (d, _) = store.put(b"gzip of a layer").unwrap();
    let diff = DiffId::of(b"tar of a layer");
    store.record_diff_id(&diff, &d).unwrap();
    assert_eq!(store.lookup_layer_blob(GZIP_INDEX, &diff), Some((d.clone(), 15)));
    fs::write(store.blob_path(&d), b"gzip of").unwrap();
    assert_eq!(store.lookup_diff_id(&diff), None);
    assert_eq!(quarantined(dir.path()).len(), 1);
}

#[test]
fn verify_reports_every_damaged_blob_and_repair_moves_them_aside() {
    let (dir, store) = setup();
    let (good, _) = store.put(b"good").unwrap();
    let (short, _) = store.put(b"short one").unwrap();
    let (flipped, _) = store.put(b"flipped one").unwrap();
    fs::write(store.blob_path(&short), b"short").unwrap();
    flip_a_bit(&store.blob_path(&flipped));
    fs::write(dir.path().join("blobs/sha256/.tmp-abc"), b"partial").unwrap();

    let report = store.verify_all(false).unwrap();
    assert_eq!(report.checked, 3);
    let mut bad = vec![short.clone(), flipped.clone()];
    bad.sort();
    assert_eq!(report.damaged.iter().map(|d| d.digest.clone()).collect::<Vec<_>>(), bad);
    for damage in &report.damaged {
        assert_eq!(damage.path, store.blob_path(&damage.digest));
        assert!(damage.found.contains("with digest sha256:"), "{damage}");
        assert!(damage.moved_to.is_none() && damage.path.exists(), "verify without --repair moved {damage}");
    }
    let repaired = store.verify_all(true).unwrap();
    assert_eq!(repaired.damaged.len(), 2);
    assert!(repaired.damaged.iter().all(|d| d.moved_to.as_ref().is_some_and(|p| p.is_file()) && !d.path.exists()));
    let again = store.verify_all(false).unwrap();
    assert_eq!((again.checked, again.damaged.len()), (1, 0));
    assert!(store.contains(&good));
}

#[test]
fn gc_removes_old_temp_files_quarantine_and_orphan_records_but_no_blob() {
    let (dir, store) = setup();
    let root = dir.path();
    let (kept, _) = store.put(b"kept").unwrap();
    let (gone, _) = store.put(b"gone").unwrap();
    fs::remove_file(store.blob_path(&gone)).unwrap();
    let (bad, _) = store.put(b"bad").unwrap();
    fs::write(store.blob_path(&bad), b"ba").unwrap();
    assert!(!store.contains(&bad));
    let old = SystemTime::now() - Duration::from_secs(7200);
    for p in ["blobs/sha256/.tmp-old", ".tmpEXPORT", "diffids/.tmp-x"] {
        fs::write(root.join(p), b"left over").unwrap();
        fs::File::options().write(true).open(root.join(p)).unwrap().set_modified(old).unwrap();
    }
    fs::write(root.join("blobs/sha256/.tmp-new"), b"being written").unwrap();

    let report = store.gc(Duration::from_secs(3600)).unwrap();
    let mut want = vec![root.join(".tmpEXPORT"), root.join("blobs/sha256/.tmp-old"), root.join("diffids/.tmp-x")];
    want.sort();
    assert_eq!(report.temp_files, want);
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(report.records, 1);
    assert_eq!(report.bytes, 3 * 9 + 2);
    assert!(root.join("blobs/sha256/.tmp-new").exists(), "a temp file in use was removed");
    assert!(quarantined(root).is_empty());
    assert!(store.contains(&kept));
}

#[test]
fn the_damage_error_names_digest_path_and_the_fix() {
    let (_dir, store) = setup();
    let (d, _) = store.put(b"x").unwrap();
    let damage = Damage { digest: d.clone(), path: store.blob_path(&d), found: "holds 0 bytes".into(), moved_to: None };
    let text = StoreError::Damaged(Box::new(damage)).to_string();
    assert!(text.contains(d.as_str()) && text.contains(&store.blob_path(&d).display().to_string()), "{text}");
    assert!(text.contains("run `release-oci cache verify --repair`"), "{text}");
}
