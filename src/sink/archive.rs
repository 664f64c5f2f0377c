//! One tar that is both an OCI image layout and a legacy `docker load` archive: `oci-layout`,
//! `index.json`, `blobs/sha256/…` and `manifest.json` (`Config`, `RepoTags`, `Layers` as paths of
//! the same blobs; Docker decompresses gzip layers itself). Entries sorted, mtime 0, root-owned.

use super::SinkError;
use super::fsutil::{checked_blob, parent_of, persist, temp_beside};
use super::layout::{OCI_LAYOUT, descriptor, empty_index};
use crate::image::{Image, canonical_json};
use crate::layer::MEDIA_TYPE_LAYER_ZSTD;
use crate::store::BlobStore;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use tar::{EntryType, Header};

/// Writes the archive to `path` (a temp file next to it, renamed when complete: on error
/// nothing is left).
pub fn write_archive(image: &Image, store: &BlobStore, path: &Path, repo_tags: &[String]) -> Result<(), SinkError> {
    if path.is_dir() {
        return Err(SinkError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::IsADirectory, "is a directory, not an archive file"),
        });
    }
    let dir = parent_of(path);
    std::fs::create_dir_all(dir).map_err(SinkError::io(dir))?;
    let tmp = temp_beside(path)?;
    let out = write_entries(image, store, BufWriter::new(tmp), repo_tags, path, None)?;
    let tmp = out.into_inner().map_err(|e| SinkError::Io { path: path.to_path_buf(), source: e.into_error() })?;
    persist(tmp, path)
}

/// Writes the archive to `w` and returns it.
pub fn write_archive_to<W: Write>(
    image: &Image,
    store: &BlobStore,
    w: W,
    repo_tags: &[String],
) -> Result<W, SinkError> {
    write_entries(image, store, w, repo_tags, Path::new("<archive stream>"), None)
}

/// The archive `--load` sends to the engine: [`write_archive_to`], plus, for every zstd layer, its
/// uncompressed tar as `blobs/sha256/<diff_id>`, which `manifest.json` names instead of the zstd
/// blob (Docker before 23 cannot read zstd layers; the image and its ID are the same). The tars
/// are unpacked into temp files in `scratch`.
pub fn write_engine_archive_to<W: Write>(
    image: &Image,
    store: &BlobStore,
    w: W,
    repo_tags: &[String],
    scratch: &Path,
) -> Result<W, SinkError> {
    write_entries(image, store, w, repo_tags, Path::new("<archive stream>"), Some(scratch))
}

fn write_entries<W: Write>(
    image: &Image,
    store: &BlobStore,
    w: W,
    repo_tags: &[String],
    out_path: &Path,
    unpack_zstd_in: Option<&Path>,
) -> Result<W, SinkError> {
    let out_err = |source| SinkError::Io { path: out_path.to_path_buf(), source };
    let mut tar = tar::Builder::new(w);
    dir_entry(&mut tar, "blobs/").map_err(out_err)?;
    dir_entry(&mut tar, "blobs/sha256/").map_err(out_err)?;
    let mut digests = image.blob_digests();
    digests.sort();
    digests.dedup();
    for digest in digests {
        // The store checks the blob (size, and digest when in doubt) before it is archived.
        let len = checked_blob(store, digest)?;
        let src = store.blob_path(digest);
        let file = File::open(&src).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => SinkError::MissingBlob { digest: digest.to_string(), path: src.clone() },
            _ => SinkError::Io { path: src.clone(), source: e },
        })?;
        let mut reader = io::Read::take(file, len);
        file_entry(&mut tar, &format!("blobs/sha256/{}", digest.hex()), len, &mut reader).map_err(out_err)?;
        if reader.limit() > 0 {
            // The blob shrank under us: the entry is short, the archive unusable.
            let source = io::Error::new(io::ErrorKind::UnexpectedEof, "blob changed while being archived");
            return Err(SinkError::Io { path: src, source });
        }
    }
    let mut plain = HashSet::new();
    if let Some(scratch) = unpack_zstd_in {
        for layer in image.layers.iter().filter(|l| l.media_type == MEDIA_TYPE_LAYER_ZSTD) {
            if !plain.insert(layer.diff_id.hex().to_string()) {
                continue;
            }
            let src = store.blob_path(&layer.digest);
            let mut tmp = tempfile::tempfile_in(scratch).map_err(SinkError::io(scratch))?;
            let file = File::open(&src).map_err(SinkError::io(&src))?;
            let mut decoder = crate::layer::decoder_for(&layer.media_type, file).map_err(SinkError::io(&src))?;
            let len = io::copy(&mut decoder, &mut tmp).map_err(SinkError::io(&src))?;
            tmp.seek(SeekFrom::Start(0)).map_err(SinkError::io(scratch))?;
            let name = format!("blobs/sha256/{}", layer.diff_id.hex());
            file_entry(&mut tar, &name, len, io::Read::take(tmp, len)).map_err(out_err)?;
        }
    }
    let index = index_json(image, repo_tags)?;
    file_entry(&mut tar, "index.json", index.len() as u64, index.as_slice()).map_err(out_err)?;
    let manifest = manifest_json(image, repo_tags, &plain)?;
    file_entry(&mut tar, "manifest.json", manifest.len() as u64, manifest.as_slice()).map_err(out_err)?;
    file_entry(&mut tar, "oci-layout", OCI_LAYOUT.len() as u64, OCI_LAYOUT).map_err(out_err)?;
    tar.into_inner().map_err(out_err)
}

/// `index.json`: one entry per distinct tag of `repo_tags` (the part after the last `:` of the
/// last path component, `latest` when none), or one untagged entry.
fn index_json(image: &Image, repo_tags: &[String]) -> Result<Vec<u8>, SinkError> {
    let mut tags: Vec<&str> = repo_tags.iter().map(|t| tag_of(t)).collect();
    tags.dedup();
    let mut seen = Vec::new();
    let mut manifests = Vec::new();
    if tags.is_empty() {
        manifests.push(descriptor(image, None)?);
    }
    for t in tags {
        if !seen.contains(&t) {
            seen.push(t);
            manifests.push(descriptor(image, Some(t))?);
        }
    }
    let mut index = empty_index()?;
    index.set_manifests(manifests);
    canonical_json(&index).map_err(|source| SinkError::Serialise { what: "index.json", source })
}

fn tag_of(repo_tag: &str) -> &str {
    let last = repo_tag.rsplit('/').next().unwrap_or(repo_tag);
    last.rsplit_once(':').map_or("latest", |(_, t)| t)
}

/// `manifest.json` as `docker load` reads it; layers whose diff_id is in `plain` are named by
/// their uncompressed tar.
fn manifest_json(image: &Image, repo_tags: &[String], plain: &HashSet<String>) -> Result<Vec<u8>, SinkError> {
    let blob = |d: &crate::digest::Digest| format!("blobs/sha256/{}", d.hex());
    let layer = |l: &crate::layer::LayerBlob| match plain.contains(l.diff_id.hex()) {
        true => format!("blobs/sha256/{}", l.diff_id.hex()),
        false => blob(&l.digest),
    };
    let v = serde_json::json!([{
        "Config": blob(&image.config_digest),
        "RepoTags": repo_tags,
        "Layers": image.layers.iter().map(layer).collect::<Vec<_>>(),
    }]);
    canonical_json(&v).map_err(|source| SinkError::Serialise { what: "manifest.json", source })
}

fn header(name: &str, kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_gnu();
    let field = &mut h.as_old_mut().name;
    // Every name here is short (`blobs/sha256/` + 64 hex digits at most).
    let n = name.len().min(field.len());
    field[..n].copy_from_slice(&name.as_bytes()[..n]);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h.set_cksum();
    h
}

fn dir_entry<W: Write>(tar: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    tar.append(&header(name, EntryType::Directory, 0o755, 0), io::empty())
}

fn file_entry<W: Write>(tar: &mut tar::Builder<W>, name: &str, size: u64, data: impl io::Read) -> io::Result<()> {
    tar.append(&header(name, EntryType::Regular, 0o644, size), data)
}
