//! Never a half-written output: files are written to a temp file in the destination directory
//! and renamed into place. Blobs are copied from the store, never hard-linked: an output is the
//! user's to edit, and an edit of a link would change the store's blob (and every later image).

use super::SinkError;
use crate::digest::Digest;
use crate::store::{BlobState, BlobStore, StoreError};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use tempfile::NamedTempFile;

/// A temp file next to `dest`, readable by all once it is in place.
pub(crate) fn temp_beside(dest: &Path) -> Result<NamedTempFile, SinkError> {
    let dir = parent_of(dest);
    let tmp = NamedTempFile::with_prefix_in(".tmp-", dir).map_err(SinkError::io(dir))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644)).map_err(SinkError::io(tmp.path()))?;
    Ok(tmp)
}

/// Flushes, fsyncs and renames `tmp` to `dest`.
pub(crate) fn persist(tmp: NamedTempFile, dest: &Path) -> Result<(), SinkError> {
    tmp.as_file().sync_all().map_err(SinkError::io(tmp.path()))?;
    tmp.persist(dest).map_err(|e| SinkError::Io { path: dest.to_path_buf(), source: e.error })?;
    Ok(())
}

/// Writes `bytes` to `dest` atomically.
pub(crate) fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let mut tmp = temp_beside(dest)?;
    tmp.write_all(bytes).map_err(SinkError::io(tmp.path()))?;
    persist(tmp, dest)
}

/// Puts a copy of the store's blob `digest` at `dest`, after the store's check of it, unless
/// something is there already (existing blobs are not rewritten), or unless what is there is the
/// store's own file (a hard link an older release-oci made): that is replaced by a copy. The copy
/// goes through `copy_file_range` (std's `io::copy` between files), which shares the data on
/// filesystems that can (btrfs, XFS with reflink) and copies it elsewhere.
pub(crate) fn place_blob(store: &BlobStore, digest: &Digest, dest: &Path) -> Result<(), SinkError> {
    let src = store.blob_path(digest);
    if let Ok(there) = fs::symlink_metadata(dest)
        && !same_file(&there, &src)
    {
        return Ok(());
    }
    let size = checked_blob(store, digest)?;
    let mut tmp = temp_beside(dest)?;
    let mut file = File::open(&src).map_err(SinkError::io(&src))?;
    let copied = io::copy(&mut file, tmp.as_file_mut()).map_err(SinkError::io(tmp.path()))?;
    if copied != size {
        let source = io::Error::new(io::ErrorKind::UnexpectedEof, "the blob changed while it was copied");
        return Err(SinkError::Io { path: src, source });
    }
    persist(tmp, dest)
}

fn same_file(meta: &fs::Metadata, other: &Path) -> bool {
    fs::metadata(other).is_ok_and(|o| o.dev() == meta.dev() && o.ino() == meta.ino())
}

/// The size of the store's blob `digest` once the store has checked it (size, and digest when
/// in doubt); a damaged blob (moved aside by the store) is an error that says what to do.
pub(crate) fn checked_blob(store: &BlobStore, digest: &Digest) -> Result<u64, SinkError> {
    let path = store.blob_path(digest);
    match store.inspect(digest, None) {
        Ok(BlobState::Good(size)) => Ok(size),
        Ok(BlobState::Missing) => Err(SinkError::MissingBlob { digest: digest.to_string(), path }),
        Ok(BlobState::Damaged(damage)) => {
            Err(SinkError::Io { path, source: io::Error::other(StoreError::Damaged(Box::new(damage))) })
        }
        Err(e) => Err(SinkError::Io { path, source: io::Error::other(e) }),
    }
}

pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Image;
    use crate::layer::{EntryKind, LayerSpec, TarOptions, write_layers};

    fn image(store: &BlobStore) -> Image {
        let mut app = LayerSpec::new("app");
        app.add_file("app", EntryKind::Dir, 0o755, 0, 0);
        app.add_file("app/hello.txt", EntryKind::Bytes(b"hello".repeat(1000)), 0o644, 0, 0);
        let layers = write_layers(&[app], &TarOptions { mtime: 0 }, store).unwrap();
        let settings = crate::image::ConfigSettings {
            platform: crate::triple::Platform { os: "linux", architecture: "amd64", variant: None },
            entrypoint: vec!["/app/bin/hello".into()],
            cmd: vec!["start".into()],
            user: None,
            working_dir: None,
            env: Vec::new(),
            exposed_ports: Vec::new(),
            labels: Default::default(),
            stop_signal: None,
            volumes: vec![],
            created: "1970-01-01T00:00:00Z".into(),
        };
        crate::image::assemble(None, layers, &settings, &Default::default(), store).unwrap()
    }

    fn setup() -> (tempfile::TempDir, BlobStore, Image) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("store")).unwrap();
        let img = image(&store);
        (dir, store, img)
    }

    #[test]
    fn a_layout_holds_copies_so_editing_it_leaves_the_store_alone() {
        let (dir, store, img) = setup();
        let out = dir.path().join("layout");
        super::super::write_oci_layout(&img, &store, &out, Some("v1")).unwrap();
        for digest in img.blob_digests() {
            let (ours, stored) = (out.join("blobs/sha256").join(digest.hex()), store.blob_path(digest));
            assert_ne!(fs::metadata(&ours).unwrap().ino(), fs::metadata(&stored).unwrap().ino(), "a hard link");
            assert_eq!(fs::metadata(&stored).unwrap().nlink(), 1);
            assert_eq!(fs::read(&ours).unwrap(), fs::read(&stored).unwrap());
        }
        let layer = out.join("blobs/sha256").join(img.layers[0].digest.hex());
        fs::write(&layer, b"edited by the user").unwrap();
        assert!(store.contains(&img.layers[0].digest), "editing the output damaged the store");
    }

    #[test]
    fn a_blob_hard_linked_by_an_older_version_is_replaced_by_a_copy() {
        let (dir, store, img) = setup();
        let out = dir.path().join("layout");
        super::super::write_oci_layout(&img, &store, &out, None).unwrap();
        let digest = &img.layers[0].digest;
        let ours = out.join("blobs/sha256").join(digest.hex());
        fs::remove_file(&ours).unwrap();
        fs::hard_link(store.blob_path(digest), &ours).unwrap();
        super::super::write_oci_layout(&img, &store, &out, None).unwrap();
        assert_ne!(fs::metadata(&ours).unwrap().ino(), fs::metadata(store.blob_path(digest)).unwrap().ino());
        assert_eq!(fs::read(&ours).unwrap(), fs::read(store.blob_path(digest)).unwrap());
    }

    #[test]
    fn a_damaged_store_blob_goes_into_no_layout_and_no_archive() {
        let (dir, store, img) = setup();
        let digest = &img.layers[0].digest;
        let mut bytes = fs::read(store.blob_path(digest)).unwrap();
        bytes[10] ^= 1;
        fs::write(store.blob_path(digest), bytes).unwrap();
        let out = dir.path().join("layout");
        let err = super::super::write_oci_layout(&img, &store, &out, None).unwrap_err();
        let text = format!("{err}: {}", crate::store::chain(&err));
        assert!(text.contains(digest.as_str()) && text.contains("cache verify --repair"), "{text}");
        assert!(!out.join("index.json").exists());
        assert!(!store.blob_path(digest).exists(), "the damaged blob was not moved aside");
        let archive = dir.path().join("image.tar");
        let err = super::super::write_archive(&img, &store, &archive, &[]).unwrap_err();
        assert!(matches!(err, SinkError::MissingBlob { .. }), "{err}");
        assert!(!archive.exists());
    }
}
