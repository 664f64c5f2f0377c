use super::*;
use crate::digest::Digest;
use crate::store::BlobStore;
use flate2::read::GzDecoder;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};

mod cached;
mod import;
mod tree;

const OPTS: TarOptions = TarOptions { mtime: 1_700_000_000 };

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    (dir, store)
}

/// A small release-like tree: `bin/start` (0777), `lib/a.beam` (0664), `lib/link -> a.beam`.
fn tree(root: &std::path::Path) -> std::path::PathBuf {
    let src = root.join("src");
    fs::create_dir_all(src.join("lib")).unwrap();
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::write(src.join("bin/start"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(src.join("bin/start"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(src.join("lib/a.beam"), b"FOR1 beam").unwrap();
    fs::set_permissions(src.join("lib/a.beam"), fs::Permissions::from_mode(0o664)).unwrap();
    symlink("a.beam", src.join("lib/link")).unwrap();
    src
}

fn gunzip(store: &BlobStore, blob: &LayerBlob) -> Vec<u8> {
    let gz = fs::read(store.blob_path(&blob.digest)).unwrap();
    let mut tar = Vec::new();
    GzDecoder::new(gz.as_slice()).read_to_end(&mut tar).unwrap();
    tar
}

/// (path as stored, entry type, mode, uid, gid, mtime, uname, gname, link target, content)
type Row = (String, tar::EntryType, u32, u64, u64, u64, Vec<u8>, Vec<u8>, Option<String>, Vec<u8>);

fn rows(tar_bytes: &[u8]) -> Vec<Row> {
    let mut ar = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = String::from_utf8(e.path_bytes().to_vec()).unwrap();
        let link = e.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        out.push((
            path,
            h.entry_type(),
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.mtime().unwrap(),
            h.username_bytes().unwrap_or_default().to_vec(),
            h.groupname_bytes().unwrap_or_default().to_vec(),
            link,
            content,
        ));
    }
    out
}

fn spec_of(src: &std::path::Path) -> LayerSpec {
    let mut spec = LayerSpec::new("app");
    spec.add_tree(src, "app/lib/foo-1.0", 0, 0).unwrap();
    spec
}

#[test]
fn same_spec_twice_gives_same_digest_and_diff_id() {
    let (dir, store) = store();
    let src = tree(dir.path());
    let a = write_layer(&spec_of(&src), &OPTS, &store).unwrap();
    // A second store: nothing cached, same bytes.
    let other = BlobStore::open(dir.path().join("other")).unwrap();
    let b = write_layer(&spec_of(&src), &OPTS, &other).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.media_type, MEDIA_TYPE_LAYER_GZIP);
    assert_eq!(fs::metadata(store.blob_path(&a.digest)).unwrap().len(), a.size);
}

#[test]
fn different_mtime_gives_different_digests() {
    let (dir, store) = store();
    let src = tree(dir.path());
    let a = write_layer(&spec_of(&src), &OPTS, &store).unwrap();
    let b = write_layer(&spec_of(&src), &TarOptions { mtime: 0 }, &store).unwrap();
    assert_ne!(a.digest, b.digest);
    assert_ne!(a.diff_id, b.diff_id);
}

#[test]
fn tar_lists_sorted_entries_owned_by_root_with_the_mtime() {
    let (dir, store) = store();
    let src = tree(dir.path());
    let mut spec = LayerSpec::new("mixed");
    spec.add_file("etc/passwd", EntryKind::Bytes(b"root:x:0:0::/:/bin/sh\n".to_vec()), 0o644, 0, 0);
    spec.add_file("etc", EntryKind::Dir, 0o755, 0, 0);
    spec.entries.extend(spec_of(&src).entries.into_iter().rev());
    let blob = write_layer(&spec, &OPTS, &store).unwrap();
    let rows = rows(&gunzip(&store, &blob));
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "app/",
            "app/lib/",
            "app/lib/foo-1.0/",
            "app/lib/foo-1.0/bin/",
            "app/lib/foo-1.0/bin/start",
            "app/lib/foo-1.0/lib/",
            "app/lib/foo-1.0/lib/a.beam",
            "app/lib/foo-1.0/lib/link",
            "etc/",
            "etc/passwd",
        ]
    );
    for r in &rows {
        assert_eq!((r.3, r.4, r.5), (0, 0, OPTS.mtime), "{}", r.0);
        assert!(r.6.is_empty() && r.7.is_empty(), "uname/gname of {}", r.0);
        if r.0.ends_with('/') {
            assert_eq!((r.1, r.2), (tar::EntryType::Directory, 0o755), "{}", r.0);
        }
    }
    assert_eq!(rows[9].9, b"root:x:0:0::/:/bin/sh\n");
    assert_eq!(rows[4].9, b"#!/bin/sh\necho hi\n");
}

#[test]
fn gzip_decompresses_to_a_tar_whose_sha256_is_the_diff_id() {
    let (dir, store) = store();
    let src = tree(dir.path());
    let blob = write_layer(&spec_of(&src), &OPTS, &store).unwrap();
    let gz = fs::read(store.blob_path(&blob.digest)).unwrap();
    assert_eq!(Digest::of(&gz), blob.digest);
    // Pinned gzip header: no FNAME flag, mtime 0, OS byte "unknown".
    assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&gz[4..8], &[0, 0, 0, 0]);
    assert_eq!(gz[9], 255);
    let tar = gunzip(&store, &blob);
    assert_eq!(crate::digest::DiffId::of(&tar), blob.diff_id);
    assert_eq!(store.lookup_diff_id(&blob.diff_id), Some(blob.digest.clone()));
}

#[test]
fn duplicates_merge_when_equal_and_conflict_otherwise() {
    let (_dir, store) = store();
    let mut spec = LayerSpec::new("dups");
    spec.add_file("a", EntryKind::Bytes(b"1".to_vec()), 0o644, 0, 0);
    spec.add_file("a", EntryKind::Bytes(b"1".to_vec()), 0o644, 0, 0);
    // A default parent dir yields to the one specific directory entry.
    spec.add_file("d", EntryKind::Dir, 0o755, 0, 0);
    spec.add_file("d", EntryKind::Dir, 0o700, 1000, 1000);
    spec.add_file("d", EntryKind::Dir, 0o755, 0, 0);
    let blob = write_layer(&spec, &OPTS, &store).unwrap();
    let rows = rows(&gunzip(&store, &blob));
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[1].2, rows[1].3), (0o700, 1000));

    spec.add_file("a", EntryKind::Bytes(b"2".to_vec()), 0o644, 0, 0);
    let err = write_layer(&spec, &OPTS, &store).unwrap_err();
    assert!(matches!(err, LayerError::Conflict { ref path, .. } if path == "a"), "{err}");
}

#[test]
fn bad_paths_are_rejected() {
    let (_dir, store) = store();
    for bad in ["", "/etc/passwd", "a//b", "a/../b", "./a", "a/", "a\0b"] {
        let mut spec = LayerSpec::new("bad");
        spec.add_file(bad, EntryKind::Bytes(vec![]), 0o644, 0, 0);
        let err = write_layer(&spec, &OPTS, &store).unwrap_err();
        assert!(matches!(err, LayerError::InvalidPath { .. }), "{bad:?}: {err}");
    }
    let mut spec = LayerSpec::new("bad");
    spec.add_file("a", EntryKind::Symlink { target: "/".into() }, 0o777, 0, 0);
    spec.add_file("a/b", EntryKind::Bytes(vec![]), 0o644, 0, 0);
    let err = write_layer(&spec, &OPTS, &store).unwrap_err();
    assert!(err.to_string().contains("a/b"), "{err}");
}

#[test]
fn long_names_and_link_targets_round_trip() {
    let (_dir, store) = store();
    let long_dir = format!("app/lib/{}", "d".repeat(120));
    let long_file = format!("{long_dir}/{}.beam", "f".repeat(150));
    let long_target = format!("../{}", "t".repeat(200));
    let mut spec = LayerSpec::new("long");
    spec.add_file(long_dir.clone(), EntryKind::Dir, 0o755, 0, 0);
    spec.add_file(long_file.clone(), EntryKind::Bytes(b"x".to_vec()), 0o644, 0, 0);
    spec.add_file("app/l", EntryKind::Symlink { target: long_target.clone().into() }, 0o777, 0, 0);
    let blob = write_layer(&spec, &OPTS, &store).unwrap();
    let tar = gunzip(&store, &blob);
    let rows = rows(&tar);
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, ["app/l", &format!("{long_dir}/"), &long_file]);
    assert_eq!(rows[0].8.as_deref(), Some(long_target.as_str()));
    // GNU tar agrees, when it is here.
    if let Ok(out) = std::process::Command::new("tar").arg("-tf").arg("-").stdin_bytes(&tar) {
        let listed = String::from_utf8(out).unwrap();
        assert_eq!(listed.lines().collect::<Vec<_>>(), names);
    }
}

trait StdinBytes {
    fn stdin_bytes(&mut self, input: &[u8]) -> Result<Vec<u8>, ()>;
}

impl StdinBytes for std::process::Command {
    /// Runs with `input` on stdin; the stdout if the program exists and succeeds.
    fn stdin_bytes(&mut self, input: &[u8]) -> Result<Vec<u8>, ()> {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().map_err(|_| ())?;
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        Ok(out.stdout)
    }
}
