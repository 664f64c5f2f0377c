//! The sources as the cache volume had them when the app artifact was made: path, sha256, mtime
//! and exec bit of each file (no content). Mix decides what to recompile by comparing the mtimes
//! of the sources (and of `mix.exs`, `mix.lock` and the config files) with those of its
//! manifests in `_build`. In a volume that is kept, an unchanged file keeps its mtime from build
//! to build (`sync_tree` in assemble.sh copies only what changed), so only the changed files are
//! newer than the manifests. [`restore_sources`] gives a new volume the same state: every source
//! file whose content is the listed one, with its listed mtime; the others are left to
//! `sync_tree`, which copies them with a new mtime, so mix recompiles exactly those.

use super::split::Packed;
use crate::digest::HashingWriter;
use crate::store::BlobStore;
use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const FORMAT: &str = "release-oci sources listing 1";
/// The listing's one file in its layer.
const FILE: &str = "sources.json";

/// One source file as the volume had it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListedFile {
    /// Relative to the project, `/`-separated.
    pub path: String,
    pub sha256: String,
    /// Seconds since the epoch (what mix compares).
    pub mtime: u64,
    pub exec: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Listing {
    pub format: String,
    pub files: Vec<ListedFile>,
    /// The newest mtime in the app layer (mix's manifests, the `.beam` files), seconds since the
    /// epoch: a changed source is seen by mix only when it is newer than its manifest. 0 when
    /// unknown.
    #[serde(default)]
    pub built: u64,
}

/// What [`restore_sources`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RestoredSources {
    /// Source files given their listed mtime (same path, content and exec bit).
    pub unchanged: usize,
    /// Source files of the project.
    pub files: usize,
}

impl Listing {
    pub fn new(files: Vec<ListedFile>) -> Listing {
        Listing { format: FORMAT.into(), files, built: 0 }
    }

    /// The newest mtime listed (0 when none).
    pub fn newest(&self) -> u64 {
        self.files.iter().map(|f| f.mtime).max().unwrap_or(0)
    }

    /// Whether the build or its sources are dated at or after `now` (this machine's clock, in
    /// seconds): then a source changed here might not be newer than the restored manifests, and
    /// mix (which compares mtimes before contents) would not recompile it.
    pub fn dated_after(&self, now: u64) -> bool {
        self.newest().max(self.built) >= now
    }

    /// The listing as a tar+gzip layer in the store (one file, `sources.json`, mtime 0).
    pub fn to_layer(&self, store: &BlobStore) -> io::Result<Packed> {
        let json = serde_json::to_vec(self).map_err(io::Error::other)?;
        let blob = store.writer().map_err(io::Error::other)?;
        let mut tar = tar::Builder::new(HashingWriter::new(GzEncoder::new(blob, flate2::Compression::new(6))));
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(json.len() as u64);
        tar.append_data(&mut h, FILE, json.as_slice())?;
        let (gz, hasher, _) = tar.into_inner()?.finish();
        let (digest, size) = gz.finish()?.commit().map_err(io::Error::other)?;
        let diff_id = crate::digest::DiffId::from_hasher(hasher);
        Ok(Packed { digest, diff_id, size, entries: 1, content_bytes: json.len() as u64 })
    }

    /// Reads the listing from its layer (gzip-compressed tar bytes).
    pub fn from_layer(gz: impl Read) -> io::Result<Listing> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz));
        for entry in archive.entries()? {
            let mut entry = entry?;
            if entry.path_bytes().as_ref() == FILE.as_bytes() {
                let mut json = Vec::new();
                entry.read_to_end(&mut json)?;
                let listing: Listing = serde_json::from_slice(&json).map_err(io::Error::other)?;
                if listing.format != FORMAT {
                    return Err(io::Error::other(format!("a listing of another format ({})", listing.format)));
                }
                return Ok(listing);
            }
        }
        Err(io::Error::other(format!("the layer has no {FILE}")))
    }
}

/// Writes to `w` a tar of the project's source files (`files`, relative to `root`) that the
/// listing has with the same content and exec bit, under `src/`, each with its listed mtime and
/// the mode the source tar gives it (0644, or 0755 when executable). Symlinks and files the
/// listing lacks or has with other content are left out: `sync_tree` copies them (new mtime).
pub fn restore_sources<W: Write>(
    root: &Path,
    files: &[PathBuf],
    listing: &Listing,
    w: W,
) -> io::Result<(W, RestoredSources)> {
    let listed: HashMap<&str, &ListedFile> = listing.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut tar = tar::Builder::new(w);
    let mut found = RestoredSources { files: files.len(), ..Default::default() };
    for rel in files {
        let Some(name) = rel.to_str() else { continue };
        let Some(entry) = listed.get(name) else { continue };
        let path = root.join(rel);
        let meta = std::fs::symlink_metadata(&path)?;
        let exec = meta.permissions().mode() & 0o111 != 0;
        if !meta.file_type().is_file() || exec != entry.exec {
            continue;
        }
        let content = std::fs::read(&path)?;
        if hex::encode(Sha256::digest(&content)) != entry.sha256 {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(if exec { 0o755 } else { 0o644 });
        h.set_mtime(entry.mtime);
        h.set_size(content.len() as u64);
        tar.append_data(&mut h, format!("src/{name}"), content.as_slice())?;
        found.unchanged += 1;
    }
    Ok((tar.into_inner()?, found))
}
