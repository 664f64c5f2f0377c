//! Splitting what the cache volume holds (a tar of `src/`, `hex/`, `mix/archives/` and the kept
//! releases, read by a helper container) into the artifacts' layers, written gzip-compressed into the blob store
//! as the entries stream by, and the listing of the sources (their contents are hashed, never
//! kept). Entries keep their headers: mode, owner and, what matters to mix, their mtime.
//!
//! A secret's value found in an entry (its content, name or link target) stops that layer: it is
//! dropped, never committed to the store, and the entry is reported ([`Leak`]).

use super::Kind;
use super::sources::{ListedFile, Listing};
use crate::digest::{DiffId, Digest, HashingWriter};
use crate::store::{BlobStore, BlobWriter};
use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::io::{self, Read};

/// What to make of the volume's tar.
#[derive(Debug, Clone, Default)]
pub struct SplitRequest {
    /// The locked dependencies: their `_build/ENV/lib/NAME` belongs to the deps artifact.
    pub locked: BTreeSet<String>,
    /// Whether to write the deps layer (the registry lacks it).
    pub deps: bool,
    /// Whether to write the app layer.
    pub app: bool,
    /// Whether to write the release cache's layer (when the tar has it: the read helper leaves
    /// it out when the registry has these releases).
    pub rel: bool,
    /// Values that must not be in any layer (the `--secret` values).
    pub secrets: Vec<Vec<u8>>,
}

/// Where an entry of the volume's tar goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Deps,
    App,
    /// The release cache (`release/`).
    Rel,
    /// A source file: listed (path, sha256, mtime), not kept.
    Source,
    /// Nothing the artifacts hold.
    Other,
}

/// A layer written into the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    pub digest: Digest,
    pub diff_id: DiffId,
    /// Compressed.
    pub size: u64,
    pub entries: usize,
    /// The files' bytes, uncompressed.
    pub content_bytes: u64,
}

/// A secret's value found in an entry of a layer (which was then dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    pub kind: Kind,
    pub path: String,
}

/// What [`split`] made.
#[derive(Debug)]
pub struct Split {
    pub deps: Option<Packed>,
    pub app: Option<Packed>,
    /// The release cache's layer, and its key ([`super::rel_key`]).
    pub rel: Option<(Packed, String)>,
    pub listing: Listing,
    pub leaks: Vec<Leak>,
}

/// Where the entry at `path` (relative to the cache volume: `src/…`, `hex/…`, `mix/…`) belongs.
pub fn classify(path: &str, locked: &BTreeSet<String>) -> Part {
    let path = path.trim_start_matches("./").trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["hex", ..] | ["mix", "archives", ..] => Part::Deps,
        ["src", "deps", ..] => Part::Deps,
        ["src", "_build", _env, "lib", name, ..] if locked.contains(*name) => Part::Deps,
        ["src", "_build", ..] => Part::App,
        // assemble.sh's Mix task, compiled (half a second of a new volume's first build).
        ["task", ..] => Part::App,
        // A build's record of the releases it lent to its output: never kept.
        ["release", ".lent"] => Part::Other,
        ["release", _, ..] => Part::Rel,
        ["src", _, ..] => Part::Source,
        _ => Part::Other,
    }
}

/// One layer being written: tar → (diff_id hash) → gzip → blob store.
struct Out {
    kind: Kind,
    tar: Option<tar::Builder<HashingWriter<GzEncoder<BlobWriter>>>>,
    entries: usize,
    content_bytes: u64,
    /// The newest mtime written.
    newest: u64,
    /// The release fingerprints written (path, sha256 of the content).
    fingerprints: Vec<(String, [u8; 32])>,
}

impl Out {
    fn new(kind: Kind, wanted: bool, store: &BlobStore) -> io::Result<Out> {
        let tar = match wanted {
            true => {
                let blob = store.writer().map_err(io::Error::other)?;
                let gz = GzEncoder::new(blob, flate2::Compression::new(6));
                Some(tar::Builder::new(HashingWriter::new(gz)))
            }
            false => None,
        };
        Ok(Out { kind, tar, entries: 0, content_bytes: 0, newest: 0, fingerprints: Vec::new() })
    }

    fn finish(self) -> io::Result<Option<Packed>> {
        let Some(tar) = self.tar else { return Ok(None) };
        if self.entries == 0 {
            return Ok(None);
        }
        let (gz, hasher, _) = tar.into_inner()?.finish();
        let (digest, size) = gz.finish()?.commit().map_err(io::Error::other)?;
        let diff_id = DiffId::from_hasher(hasher);
        Ok(Some(Packed { digest, diff_id, size, entries: self.entries, content_bytes: self.content_bytes }))
    }
}

/// Reads the volume's tar from `reader`: the deps and app entries into their layers (those
/// `req` asks for), the sources into the listing. Nothing else is kept.
pub fn split(reader: impl Read, req: &SplitRequest, store: &BlobStore) -> io::Result<Split> {
    let secrets: Vec<Vec<u8>> =
        req.secrets.iter().map(|s| trim_newline(s).to_vec()).filter(|s| !s.is_empty()).collect();
    let mut deps = Out::new(Kind::Deps, req.deps, store)?;
    let mut app = Out::new(Kind::App, req.app, store)?;
    let mut rel = Out::new(Kind::Rel, req.rel, store)?;
    let (mut files, mut leaks) = (Vec::new(), Vec::new());
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let out = match classify(&path, &req.locked) {
            Part::Deps => &mut deps,
            Part::App => &mut app,
            Part::Rel => &mut rel,
            Part::Source => {
                if entry.header().entry_type().is_file() {
                    files.push(listed(&mut entry, &path)?);
                }
                continue;
            }
            Part::Other => continue,
        };
        if out.tar.is_none() {
            continue;
        }
        if let Some(leak) = copy(&mut entry, &path, out, &secrets)? {
            tracing::warn!(
                layer = out.kind.as_str(),
                path = %leak.path,
                "a --secret value is in the build cache: that part is not published"
            );
            // Dropped: the temporary blob is removed, nothing is committed.
            out.tar = None;
            leaks.push(leak);
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut listing = Listing::new(files);
    listing.built = app.newest;
    let rel_key = super::rel_key(&rel.fingerprints);
    let rel = match rel.fingerprints.is_empty() {
        true => None,
        false => rel.finish()?.map(|p| (p, rel_key)),
    };
    Ok(Split { deps: deps.finish()?, app: app.finish()?, rel, listing, leaks })
}

/// A source file's listing line: its path without `src/`, sha256, mtime and exec bit.
fn listed<R: Read>(entry: &mut tar::Entry<'_, R>, path: &str) -> io::Result<ListedFile> {
    let mut h = Sha256::new();
    io::copy(entry, &mut h)?;
    let header = entry.header();
    // One `src/` off (the volume's): a project's own `src/` directory stays.
    let path = path.strip_prefix("./").unwrap_or(path);
    Ok(ListedFile {
        path: path.strip_prefix("src/").unwrap_or(path).to_string(),
        sha256: hex::encode(h.finalize()),
        mtime: header.mtime()?,
        exec: header.mode()? & 0o111 != 0,
    })
}

/// Copies one entry into `out` with its header (mode, owner, mtime); a secret's value in it is a
/// [`Leak`] (nothing written).
fn copy<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &str,
    out: &mut Out,
    secrets: &[Vec<u8>],
) -> io::Result<Option<Leak>> {
    let leak = || Some(Leak { kind: out.kind, path: path.to_string() });
    let mut header = entry.header().clone();
    let kind = header.entry_type();
    let Some(tar) = out.tar.as_mut() else { return Ok(None) };
    if contains_any(path.as_bytes(), secrets) {
        return Ok(leak());
    }
    if kind.is_file() {
        let mut content = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut content)?;
        if contains_any(&content, secrets) {
            return Ok(leak());
        }
        if out.kind == Kind::Rel && is_fingerprint(path) {
            out.fingerprints.push((path.trim_start_matches("./").to_string(), Sha256::digest(&content).into()));
        }
        header.set_size(content.len() as u64);
        tar.append_data(&mut header, path, content.as_slice())?;
        out.content_bytes += content.len() as u64;
    } else if kind.is_dir() {
        header.set_size(0);
        tar.append_data(&mut header, path, io::empty())?;
    } else if kind.is_symlink() || kind.is_hard_link() {
        let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
        if contains_any(&target, secrets) {
            return Ok(leak());
        }
        header.set_size(0);
        let target = String::from_utf8_lossy(&target).into_owned();
        tar.append_link(&mut header, path, target)?;
    } else {
        // Devices, fifos: nothing a build cache needs.
        return Ok(None);
    }
    out.entries += 1;
    out.newest = out.newest.max(header.mtime()?);
    Ok(None)
}

/// Whether `path` is a kept release's fingerprint (`release/NAME.fingerprint`).
pub fn is_fingerprint(path: &str) -> bool {
    let path = path.trim_start_matches("./");
    path.strip_prefix("release/").is_some_and(|n| !n.contains('/') && n.len() > 12 && n.ends_with(".fingerprint"))
}

fn trim_newline(v: &[u8]) -> &[u8] {
    let mut end = v.len();
    while end > 0 && matches!(v[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &v[..end]
}

/// Whether any of `needles` (none empty) occurs in `hay`.
pub(super) fn contains_any(hay: &[u8], needles: &[Vec<u8>]) -> bool {
    needles.iter().any(|n| contains(hay, n))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() || needle.len() > hay.len() {
        return false;
    }
    let (first, last_start) = (needle[0], hay.len() - needle.len());
    let mut i = 0;
    while i <= last_start {
        match hay[i..=last_start].iter().position(|&b| b == first) {
            None => return false,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return true;
                }
                i += 1;
            }
        }
    }
    false
}
