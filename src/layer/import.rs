//! Importing existing layers (from a base image) into the blob store.

use super::{LayerBlob, LayerError, MEDIA_TYPE_LAYER_GZIP};
use crate::digest::{DiffId, HashingWriter};
use crate::layer::write::gzip;
use crate::store::BlobStore;
use std::io::{self, BufRead, BufReader, Read, Write};

const CHUNK: usize = 256 * 1024;

/// Imports an *uncompressed* layer tar (e.g. from `docker save`): stores it gzip-compressed (the
/// pinned configuration), with diff_id = sha256 of the bytes exactly as read, and records
/// diff_id → digest in the store.
pub fn import_tar(name: &str, reader: impl Read, store: &BlobStore) -> Result<LayerBlob, LayerError> {
    let read_err = |source| LayerError::Read { layer: name.to_string(), source };
    let write_err = |source| LayerError::Write { layer: name.to_string(), source };
    let store_err = |source| LayerError::Store { layer: name.to_string(), source };

    let mut reader = BufReader::with_capacity(CHUNK, reader);
    let head = reader.fill_buf().map_err(read_err)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Err(LayerError::Import {
            layer: name.to_string(),
            reason: "it is already gzip-compressed (import it as a blob with its known diff_id)".into(),
        });
    }
    let mut out = HashingWriter::new(gzip(store.writer().map_err(store_err)?));
    loop {
        let buf = reader.fill_buf().map_err(read_err)?;
        if buf.is_empty() {
            break;
        }
        out.write_all(buf).map_err(write_err)?;
        let n = buf.len();
        reader.consume(n);
    }
    let (gz, hasher, count) = out.finish();
    if count == 0 {
        return Err(LayerError::Import { layer: name.to_string(), reason: "the layer tar is empty".into() });
    }
    let blob = gz.finish().map_err(write_err)?;
    let (digest, size) = blob.commit().map_err(store_err)?;
    let diff_id = DiffId::from_hasher(hasher);
    store.record_diff_id(&diff_id, &digest).map_err(store_err)?;
    Ok(LayerBlob { name: name.to_string(), digest, diff_id, size, media_type: MEDIA_TYPE_LAYER_GZIP.to_string() })
}

/// Stores an already-compressed layer blob as is. Its `diff_id` comes from the image config and
/// is not checked (nor recorded in the store's diff_id index, since it is not verified); the
/// digest is computed while storing, and callers that know the expected one compare.
pub fn import_blob(
    name: &str,
    mut reader: impl Read,
    media_type: &str,
    diff_id: DiffId,
    store: &BlobStore,
) -> Result<LayerBlob, LayerError> {
    let store_err = |source| LayerError::Store { layer: name.to_string(), source };
    let mut w = store.writer().map_err(store_err)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(LayerError::Read { layer: name.to_string(), source: e });
            }
        };
        w.write_all(&buf[..n]).map_err(|source| LayerError::Write { layer: name.to_string(), source })?;
    }
    let (digest, size) = w.commit().map_err(store_err)?;
    Ok(LayerBlob { name: name.to_string(), digest, diff_id, size, media_type: media_type.to_string() })
}
