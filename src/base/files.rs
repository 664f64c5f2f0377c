//! Reading one file out of an image's layers (top layer first, whiteouts respected), for the few
//! files release-oci extends rather than replaces (`/etc/passwd`, `/etc/group`).

use crate::layer::LayerBlob;
use crate::store::BlobStore;
use flate2::read::GzDecoder;
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
        let file = File::open(store.blob_path(&layer.digest))?;
        let mut archive = tar::Archive::new(GzDecoder::new(file));
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
        if found.is_some() {
            return Ok(found);
        }
        if deleted {
            return Ok(None);
        }
    }
    Ok(None)
}
