//! Writing a [`LayerSpec`] as a deterministic compressed tar (gzip, or zstd: [`Compression`]) into
//! the blob store, optionally reusing the blob of an identical layer written before.
//!
//! Fixed: entries sorted by path bytes (parents first), exact duplicates merged, GNU headers
//! (long names and link targets through GNU `L`/`K` entries), empty user and group names,
//! directories named `path/`, every mtime from [`TarOptions`]. The tar is hashed as it is
//! written (diff_id), then compressed with the pinned gzip configuration (or zstd at a fixed
//! level) and hashed again by the store (digest).

use super::tar_entry::append_entry;
use super::{Compression, Entry, EntryKind, GZIP_LEVEL, LayerBlob, LayerError, LayerSpec, TarOptions};
use crate::digest::{DiffId, HashingWriter};
use crate::store::BlobStore;
use flate2::GzBuilder;
use rayon::prelude::*;
use std::collections::HashSet;
use std::io::{self, Write};

/// The gzip header's OS byte: 255, "unknown" (as Go's compress/gzip writes it).
pub(crate) const GZIP_OS_UNKNOWN: u8 = 255;

/// A gzip encoder in the one pinned configuration: level [`GZIP_LEVEL`], no file name, mtime 0.
pub(crate) fn gzip<W: Write>(w: W) -> flate2::write::GzEncoder<W> {
    GzBuilder::new().mtime(0).operating_system(GZIP_OS_UNKNOWN).write(w, flate2::Compression::new(GZIP_LEVEL))
}

/// Writes one layer into `store` (gzip) and records its diff_id → digest.
pub fn write_layer(spec: &LayerSpec, opts: &TarOptions, store: &BlobStore) -> Result<LayerBlob, LayerError> {
    write_layer_with(spec, opts, Compression::Gzip, store)
}

/// Writes one layer compressed with `compression` into `store` and records its diff_id → digest
/// in that compression's index. One pass: the tar is hashed (diff_id) as it streams into the
/// compressor, whose output is hashed (digest) as it streams into the blob file.
pub fn write_layer_with(
    spec: &LayerSpec,
    opts: &TarOptions,
    compression: Compression,
    store: &BlobStore,
) -> Result<LayerBlob, LayerError> {
    let layer = spec.name.as_str();
    let entries = normalize(spec)?;
    let store_err = |source| LayerError::Store { layer: layer.to_string(), source };
    let write_err = |source| LayerError::Write { layer: layer.to_string(), source };

    let blob = store.writer().map_err(store_err)?;
    let mut tar = tar::Builder::new(HashingWriter::new(compression.encoder(blob).map_err(write_err)?));
    for entry in entries {
        append_entry(&mut tar, entry, opts, layer)?;
    }
    let (encoder, hasher, _) = tar.into_inner().map_err(write_err)?.finish();
    let blob = encoder.finish().map_err(write_err)?;
    let (digest, size) = blob.commit().map_err(store_err)?;
    let diff_id = DiffId::from_hasher(hasher);
    store.record_layer(&compression.index_name(), &diff_id, &digest).map_err(store_err)?;
    tracing::debug!(layer, %diff_id, %digest, %compression, "layer compressed");
    Ok(LayerBlob { name: spec.name.clone(), digest, diff_id, size, media_type: compression.media_type().to_string() })
}

/// [`write_layer`], unless the store already holds a blob for a layer with the same content: the
/// tar is hashed first (cheap) and, when the store knows that diff_id, its blob is reused and
/// nothing is compressed. For big layers that rarely change (the minimal base). The reused blob is
/// the one an earlier `write_layer` of the same spec made, so the result is the same.
pub fn write_layer_cached(spec: &LayerSpec, opts: &TarOptions, store: &BlobStore) -> Result<LayerBlob, LayerError> {
    Ok(write_layer_cached_with(spec, opts, Compression::Gzip, store)?.blob)
}

/// A layer written by [`write_layer_cached_with`], and whether its blob was already in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedLayer {
    pub blob: LayerBlob,
    /// True when a blob of the same content and compression was reused (nothing was compressed).
    pub reused: bool,
}

/// [`write_layer_with`], unless the store's index for `compression` knows the layer's diff_id
/// (exact: the tar is hashed, not file times) and its blob passes the store's check: then that
/// blob is reused and nothing is compressed.
pub fn write_layer_cached_with(
    spec: &LayerSpec,
    opts: &TarOptions,
    compression: Compression,
    store: &BlobStore,
) -> Result<CachedLayer, LayerError> {
    let layer = spec.name.as_str();
    let write_err = |source| LayerError::Write { layer: layer.to_string(), source };
    let mut tar = tar::Builder::new(HashingWriter::new(io::sink()));
    for entry in normalize(spec)? {
        append_entry(&mut tar, entry, opts, layer)?;
    }
    let (_, hasher, _) = tar.into_inner().map_err(write_err)?.finish();
    let diff_id = DiffId::from_hasher(hasher);
    // The store checks the blob first (size, and digest when in doubt): a damaged one is moved
    // aside and this layer is written again, as if it had never been stored.
    if let Some((digest, size)) = store.lookup_layer_blob(&compression.index_name(), &diff_id) {
        tracing::debug!(layer, %diff_id, %digest, %compression, "layer cache hit: blob reused, not compressed again");
        let (name, media_type) = (spec.name.clone(), compression.media_type().to_string());
        return Ok(CachedLayer { blob: LayerBlob { name, digest, diff_id, size, media_type }, reused: true });
    }
    Ok(CachedLayer { blob: write_layer_with(spec, opts, compression, store)?, reused: false })
}

/// Writes the layers in parallel (one per core); the result is in the order of `specs`.
pub fn write_layers(specs: &[LayerSpec], opts: &TarOptions, store: &BlobStore) -> Result<Vec<LayerBlob>, LayerError> {
    largest_first(specs, |spec| write_layer(spec, opts, store))
}

/// `f` of every spec on rayon's pool, the largest layers (by bytes of file content) first, so the
/// longest compression does not start last while other cores sit idle; the results are in the
/// order of `specs`.
fn largest_first<T: Send>(
    specs: &[LayerSpec],
    f: impl Fn(&LayerSpec) -> Result<T, LayerError> + Sync,
) -> Result<Vec<T>, LayerError> {
    let size = |spec: &LayerSpec| -> u64 {
        spec.entries
            .iter()
            .map(|e| match &e.kind {
                EntryKind::File { source } => std::fs::symlink_metadata(source).map(|m| m.len()).unwrap_or(0),
                EntryKind::Bytes(bytes) => bytes.len() as u64,
                _ => 0,
            })
            .sum()
    };
    let mut order: Vec<(usize, u64)> = specs.iter().enumerate().map(|(i, spec)| (i, size(spec))).collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut done: Vec<(usize, Result<T, LayerError>)> =
        order.par_iter().with_max_len(1).map(|&(i, _)| (i, f(&specs[i]))).collect();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// [`write_layer_cached_with`] for every spec, in parallel on rayon's pool (one thread per core);
/// the result is in the order of `specs`.
pub fn write_layers_cached(
    specs: &[LayerSpec],
    opts: &TarOptions,
    compression: Compression,
    store: &BlobStore,
) -> Result<Vec<CachedLayer>, LayerError> {
    largest_first(specs, |spec| write_layer_cached_with(spec, opts, compression, store))
}

/// Checks paths, sorts by path bytes, merges duplicates. Two entries for one path must be equal,
/// except that a directory with the default attributes (0755, root, as `add_tree` makes for
/// parents) yields to one other directory entry for the same path.
pub(crate) fn normalize(spec: &LayerSpec) -> Result<Vec<&Entry>, LayerError> {
    for e in &spec.entries {
        check_path(&e.path)?;
    }
    let mut sorted: Vec<&Entry> = spec.entries.iter().collect();
    sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let conflict = |path: &str| LayerError::Conflict { layer: spec.name.clone(), path: path.to_string() };
    let mut out = Vec::with_capacity(sorted.len());
    for group in sorted.chunk_by(|a, b| a.path == b.path) {
        let first = group[0];
        if group.iter().all(|e| *e == first) {
            out.push(first);
            continue;
        }
        if !group.iter().all(|e| e.kind == EntryKind::Dir) {
            return Err(conflict(&first.path));
        }
        let mut specific: Vec<&Entry> = group.iter().copied().filter(|e| !is_default_dir(e)).collect();
        specific.dedup();
        match specific.as_slice() {
            [one] => out.push(*one),
            _ => return Err(conflict(&first.path)),
        }
    }
    // A path below a file or a symlink cannot be extracted (and a symlink parent would redirect it).
    let non_dirs: HashSet<&str> = out.iter().filter(|e| e.kind != EntryKind::Dir).map(|e| e.path.as_str()).collect();
    for e in &out {
        let mut p = e.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            if non_dirs.contains(parent) {
                return Err(LayerError::InvalidPath {
                    path: e.path.clone(),
                    reason: "has a parent that is not a directory",
                });
            }
            p = parent;
        }
    }
    Ok(out)
}

fn is_default_dir(e: &Entry) -> bool {
    e.kind == EntryKind::Dir && e.mode == 0o755 && e.uid == 0 && e.gid == 0
}

/// A layer path: relative, `/`-separated, no empty, `.` or `..` components, no NUL.
fn check_path(path: &str) -> Result<(), LayerError> {
    let bad = |reason| Err(LayerError::InvalidPath { path: path.to_string(), reason });
    if path.is_empty() {
        return bad("is empty");
    }
    if path.starts_with('/') {
        return bad("is absolute (layer paths are relative to the image root)");
    }
    if path.contains('\0') {
        return bad("contains a NUL byte");
    }
    if path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return bad("has an empty, `.` or `..` component");
    }
    Ok(())
}

#[cfg(test)]
mod integrity_tests {
    use super::*;
    use crate::digest::Digest;
    use std::fs;

    /// A cached layer whose stored blob was truncated or had a bit flipped is compressed again
    /// (not reused), to the same digest and size, and the blob is good again.
    #[test]
    fn a_damaged_cached_layer_is_written_again_not_reused() {
        let mut spec = LayerSpec::new("app");
        let data: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
        spec.add_file("data", EntryKind::Bytes(data), 0o644, 0, 0);
        let truncate = |b: &mut Vec<u8>| b.truncate(b.len() / 2);
        let flip = |b: &mut Vec<u8>| {
            let mid = b.len() / 2;
            b[mid] ^= 0x10;
        };
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        for (damage, compression) in
            [(truncate as fn(&mut Vec<u8>), Compression::Gzip), (flip, Compression::Zstd { level: 3 })]
        {
            let first = write_layer_cached_with(&spec, &TarOptions { mtime: 0 }, compression, &store).unwrap();
            let path = store.blob_path(&first.blob.digest);
            let mut bytes = fs::read(&path).unwrap();
            damage(&mut bytes);
            fs::write(&path, bytes).unwrap();
            let again = write_layer_cached_with(&spec, &TarOptions { mtime: 0 }, compression, &store).unwrap();
            assert!(!again.reused, "{compression}: a damaged blob was reused");
            assert_eq!(again.blob, first.blob, "{compression}: same layer, same digest and size");
            assert_eq!(Digest::of(&fs::read(&path).unwrap()), first.blob.digest, "{compression}: still damaged");
        }
        assert_eq!(fs::read_dir(dir.path().join("quarantine")).unwrap().count(), 2);
    }
}
