//! Outputs are written atomically: concurrent writers of one layout keep every tag, a failed
//! write leaves no new layout (and an existing one as it was), a failed archive leaves no file.

use super::*;
use crate::sink::lock::{LOCK_FILE, LayoutLock};
use std::path::PathBuf;
use std::sync::{Arc, Barrier};

const WRITERS: usize = 20;

fn tag_of(entry: &serde_json::Value) -> String {
    entry["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap_or_default().to_string()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

/// `base/xxx…/xxx…/…/tail` with exactly `len` bytes: the padding directories are made, `tail`
/// is not. A layout at 4040 bytes holds `oci-layout` and temp files, but not
/// `blobs/sha256/<64 hex>` (past PATH_MAX, 4096): its first blob fails with ENAMETOOLONG.
fn long_path(base: &Path, len: usize, tail: &str) -> PathBuf {
    let mut p = base.to_path_buf();
    // Bytes of the padding components, a separator before each.
    let mut room = len - p.as_os_str().len() - 1 - tail.len();
    assert_ne!(room, 1);
    while room > 0 {
        let mut n = (room - 1).min(200);
        if room - 1 - n == 1 {
            n -= 1;
        }
        p.push("x".repeat(n));
        room -= 1 + n;
    }
    fs::create_dir_all(&p).unwrap();
    let p = p.join(tail);
    assert_eq!(p.as_os_str().len(), len);
    p
}

#[test]
fn concurrent_writers_of_one_layout_keep_every_tag() {
    let (dir, store) = setup();
    let out = dir.path().join("new/layout");
    let images: Vec<_> = (0..WRITERS).map(|i| image(&store, &format!("image {}", i % 4))).collect();
    let start = Arc::new(Barrier::new(WRITERS));
    std::thread::scope(|s| {
        for (i, img) in images.iter().enumerate() {
            let (store, out, start) = (&store, &out, start.clone());
            s.spawn(move || {
                start.wait();
                write_oci_layout(img, store, out, Some(&format!("t{i}"))).unwrap();
            });
        }
    });
    let index = index_of(&out);
    let mut tags: Vec<String> = index["manifests"].as_array().unwrap().iter().map(tag_of).collect();
    tags.sort();
    let mut want: Vec<String> = (0..WRITERS).map(|i| format!("t{i}")).collect();
    want.sort();
    assert_eq!(tags, want, "{index}");
    for (i, img) in images.iter().enumerate() {
        let info = read_image(&Target::OciLayout { dir: out.clone(), tag: Some(format!("t{i}")) }).unwrap();
        assert_eq!(info.manifest_digest, img.manifest_digest);
    }
    assert_eq!(names(&out), [LOCK_FILE, "blobs", "index.json", "oci-layout"]);
    assert!(names(&out.join("blobs/sha256")).iter().all(|n| !n.starts_with(".tmp")));
}

#[test]
fn a_failed_first_write_removes_the_directories_it_made() {
    let (dir, store) = setup();
    let img = image(&store, "hi");
    let out = long_path(dir.path(), 4040, "made/layout");
    let err = write_oci_layout(&img, &store, &out, Some("v1")).unwrap_err();
    assert!(matches!(&err, SinkError::Io { source, .. } if source.raw_os_error() == Some(libc::ENAMETOOLONG)), "{err}");
    assert!(!out.exists(), "the new layout was left behind");
    assert!(!out.parent().unwrap().exists(), "a directory made for it was left behind");
    assert!(out.parent().unwrap().parent().unwrap().is_dir(), "a directory that was there went away");

    // An empty directory that was there stays, empty.
    fs::create_dir(out.parent().unwrap()).unwrap();
    fs::create_dir(&out).unwrap();
    write_oci_layout(&img, &store, &out, Some("v1")).unwrap_err();
    assert!(names(&out).is_empty(), "{:?}", names(&out));
}

#[test]
fn a_failed_write_keeps_the_previous_index_and_adds_no_blobs() {
    let (dir, store) = setup();
    let first = image(&store, "one");
    let short = dir.path().join("short");
    write_oci_layout(&first, &store, &short, Some("v1")).unwrap();
    let out = long_path(dir.path(), 4040, "layout");
    fs::rename(&short, &out).unwrap();
    let (index, blobs) = (fs::read(out.join("index.json")).unwrap(), names(&out.join("blobs/sha256")));

    let second = image(&store, "two");
    let err = write_oci_layout(&second, &store, &out, Some("v2")).unwrap_err();
    assert!(matches!(&err, SinkError::Io { source, .. } if source.raw_os_error() == Some(libc::ENAMETOOLONG)), "{err}");
    assert_eq!(fs::read(out.join("index.json")).unwrap(), index);
    assert_eq!(names(&out.join("blobs/sha256")), blobs);
    assert_eq!(names(&out), [LOCK_FILE, "blobs", "index.json", "oci-layout"]);

    // A write that fails after its blobs (at index.json) takes its new blobs away again.
    let out = dir.path().join("damaged");
    write_oci_layout(&first, &store, &out, Some("v1")).unwrap();
    fs::write(out.join("index.json"), "{not json").unwrap();
    let blobs = names(&out.join("blobs/sha256"));
    let err = write_oci_layout(&second, &store, &out, Some("v2")).unwrap_err();
    assert!(matches!(&err, SinkError::Json { what, .. } if what == "index.json"), "{err}");
    assert_eq!(fs::read(out.join("index.json")).unwrap(), b"{not json");
    assert_eq!(names(&out.join("blobs/sha256")), blobs);
}

#[test]
fn a_writer_waiting_on_a_layout_that_is_removed_starts_over() {
    let (dir, store) = setup();
    let img = image(&store, "hi");
    let out = dir.path().join("made/layout");
    let held = LayoutLock::acquire(&out, "test").unwrap();
    std::thread::scope(|s| {
        let writer = s.spawn(|| write_oci_layout(&img, &store, &out, Some("v1")));
        // The writer now waits on the lock (or has not come that far: either way it must win).
        std::thread::sleep(std::time::Duration::from_millis(300));
        held.undo_new_layout();
        writer.join().unwrap().unwrap();
    });
    let info = read_image(&Target::OciLayout { dir: out.clone(), tag: Some("v1".into()) }).unwrap();
    assert_eq!(info.manifest_digest, img.manifest_digest);
}

#[test]
fn a_stale_lock_file_or_temp_file_is_no_obstacle() {
    let (dir, store) = setup();
    let img = image(&store, "x");
    let out = dir.path().join("layout");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join(LOCK_FILE), "").unwrap();
    fs::write(out.join(".tmp-abc123"), "left by a killed writer").unwrap();
    write_oci_layout(&img, &store, &out, Some("v1")).unwrap();
    assert!(read_image(&Target::OciLayout { dir: out.clone(), tag: Some("v1".into()) }).is_ok());
}

#[test]
fn an_archive_that_fails_half_way_leaves_the_previous_file_and_no_temp_file() {
    let (dir, store) = setup();
    let img = image(&store, "hi");
    let out = dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let path = out.join("hello.tar");
    fs::write(&path, "the previous archive").unwrap();
    // The blob archived last goes missing: the failure comes with the temp file half written.
    let mut digests = img.blob_digests();
    digests.sort();
    let last = digests.last().unwrap();
    fs::remove_file(store.blob_path(last)).unwrap();
    let err = write_archive(&img, &store, &path, &[]).unwrap_err();
    assert!(matches!(&err, SinkError::MissingBlob { digest, .. } if digest == last.as_str()), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"the previous archive");
    assert_eq!(names(&out), ["hello.tar"]);
}
