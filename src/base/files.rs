//! Reading one file out of an image's layers (top layer first, whiteouts respected), for the few
//! files release-oci extends rather than replaces (`/etc/passwd`, `/etc/group`).

use crate::layer::LayerBlob;
use crate::store::BlobStore;
use std::fs::File;
use std::io::{self, Read};

/// The content of `path` (relative, e.g. `etc/passwd`) in the image made of `layers`, or `None`
/// when no layer has it (or the topmost mention deletes it).
pub fn read_file_from_layers(store: &BlobStore, layers: &[LayerBlob], path: &str) -> io::Result<Option<Vec<u8>>> {
    let (dir, base) = match path.rsplit_once('/') {
        Some((d, b)) => (format!("{d}/"), b),
        None => (String::new(), path),
    };
    let whiteout = format!("{dir}.wh.{base}");
    let opaque = format!("{dir}.wh..wh..opq");
    for layer in layers.iter().rev() {
        match mention(store, layer, path, &whiteout, &opaque)? {
            Mention::File(bytes) => return Ok(Some(bytes)),
            Mention::Deleted => return Ok(None),
            Mention::Absent => {}
        }
    }
    Ok(None)
}

/// What one layer says about a path.
enum Mention {
    File(Vec<u8>),
    Deleted,
    Absent,
}

/// What `layer` says about `path`, remembered in the store by the layer's diff_id (its exact
/// content): every build reads `/etc/passwd` and `/etc/group` from the base, and scanning a
/// compressed base layer for them takes a noticeable part of a second.
fn mention(store: &BlobStore, layer: &LayerBlob, path: &str, whiteout: &str, opaque: &str) -> io::Result<Mention> {
    let memo = store.root().join("layer-files").join(format!(
        "{}-{}",
        layer.diff_id.hex(),
        &crate::digest::Digest::of(path.as_bytes()).hex()[..16]
    ));
    if let Ok(bytes) = std::fs::read(&memo) {
        match bytes.split_first() {
            Some((b'F', rest)) => return Ok(Mention::File(rest.to_vec())),
            Some((b'D', _)) => return Ok(Mention::Deleted),
            Some((b'A', _)) => return Ok(Mention::Absent),
            _ => {}
        }
    }
    let file = File::open(store.blob_path(&layer.digest))?;
    let mut archive = tar::Archive::new(crate::layer::decoder_for(&layer.media_type, file)?);
    let mut found = None;
    let mut deleted = false;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let p = entry.path()?.to_string_lossy().trim_start_matches("./").trim_start_matches('/').to_string();
        if p == path && entry.header().entry_type().is_file() {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf)?;
            found = Some(buf);
        } else if p == whiteout || p == opaque {
            deleted = true;
        }
    }
    let (m, record) = match found {
        Some(bytes) => {
            let mut r = vec![b'F'];
            r.extend_from_slice(&bytes);
            (Mention::File(bytes), r)
        }
        None if deleted => (Mention::Deleted, vec![b'D']),
        None => (Mention::Absent, vec![b'A']),
    };
    // Only a cache: a failure to write it changes nothing.
    let _ = remember(&memo, &record);
    Ok(m)
}

fn remember(memo: &std::path::Path, record: &[u8]) -> io::Result<()> {
    let dir = memo.parent().ok_or_else(|| io::Error::other("no parent"))?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::with_prefix_in(".tmp-", dir)?;
    io::Write::write_all(&mut tmp, record)?;
    tmp.persist(memo).map_err(|e| e.error)?;
    Ok(())
}
