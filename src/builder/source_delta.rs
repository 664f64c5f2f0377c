//! Only the sources that changed go up to a warm builder (docs/build-cache.md, "Only what
//! changed goes up"): the reverse of [`super::kept`].
//!
//! The builder keeps in the build cache volume the sources it last received (`src.base`) under a
//! token (`src.base.token`). The host keeps, beside the kept output of the same volume, the index
//! of what it sent ([`SourceIndex`]: every file's entry, hashed) under the same token. A build
//! whose host index names a token sends, instead of the whole tar, the entries whose hash changed
//! (and every directory) with a description (`src.delta`: "base TOKEN", then the paths that are
//! gone); the builder applies it to `src.base` only when its token is that one, and exits with
//! [`NOT_MY_BASE`] otherwise (the build then runs cold, with the whole tar). Each side removes
//! its token before it changes what the token names, and writes the new one after.

use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The exit code of a build script given changes to sources it does not have.
pub(super) const NOT_MY_BASE: i64 = 75;

/// Path → sha256 of its tar entry (type, mode, link target, contents), directories left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SourceIndex(BTreeMap<String, String>);

/// A source tar's changes against an index: the tar to send and its description.
#[derive(Debug)]
pub(super) struct SourceDelta {
    pub tar: Vec<u8>,
    pub description: Vec<u8>,
    /// How many files are sent, and how many are gone.
    pub sent: usize,
    pub removed: usize,
}

impl SourceIndex {
    /// The index of `tar` (a project's source tar); None when a path is not UTF-8 or has a
    /// newline (such sources always go whole).
    pub(super) fn of(tar: &[u8]) -> std::io::Result<Option<SourceIndex>> {
        let mut index = BTreeMap::new();
        let mut archive = tar::Archive::new(tar);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let Some(path) = usable_path(&entry.path_bytes()) else { return Ok(None) };
            if entry.header().entry_type().is_dir() {
                continue;
            }
            index.insert(path, entry_hash(&mut entry)?);
        }
        Ok(Some(SourceIndex(index)))
    }

    /// The index kept at `path` ("HASH\tPATH" lines); None when there is none or it is unreadable.
    pub(super) fn read(path: &Path) -> Option<SourceIndex> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut index = BTreeMap::new();
        for line in text.lines() {
            let (hash, path) = line.split_once('\t')?;
            index.insert(path.to_string(), hash.to_string());
        }
        Some(SourceIndex(index))
    }

    /// Writes the index to `path` (a temporary file renamed into place).
    pub(super) fn write(&self, path: &Path) -> std::io::Result<()> {
        let text: String = self.0.iter().map(|(p, h)| format!("{h}\t{p}\n")).collect();
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    /// The changes from `self` (what the builder has, under `base`) to `tar`, whose index is
    /// `new`: every directory entry and the entries whose hash differs or is new, in the tar's
    /// order, and the description ("base TOKEN", then the paths gone).
    pub(super) fn delta(&self, tar: &[u8], new: &SourceIndex, base: &str) -> std::io::Result<SourceDelta> {
        let mut out = tar::Builder::new(Vec::new());
        let mut sent = 0;
        let mut archive = tar::Archive::new(tar);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let mut header = entry.header().clone();
            if !header.entry_type().is_dir() {
                if self.0.get(&path) == new.0.get(&path) {
                    continue;
                }
                sent += 1;
            }
            if header.entry_type().is_symlink() {
                let target = entry.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                out.append_link(&mut header, &path, target)?;
            } else {
                let mut data = Vec::new();
                entry.read_to_end(&mut data)?;
                out.append_data(&mut header, &path, data.as_slice())?;
            }
        }
        let gone: Vec<&String> = self.0.keys().filter(|p| !new.0.contains_key(*p)).collect();
        let mut description = format!("base {base}\n");
        for p in &gone {
            description.push_str(p);
            description.push('\n');
        }
        Ok(SourceDelta { tar: out.into_inner()?, description: description.into_bytes(), sent, removed: gone.len() })
    }
}

/// The path as the index keeps it: UTF-8, no newline or tab (one line of the description and
/// of the index each).
fn usable_path(bytes: &[u8]) -> Option<String> {
    let path = std::str::from_utf8(bytes).ok()?;
    (!path.contains(['\n', '\t'])).then(|| path.to_string())
}

/// What a warm build sends of its sources: the plan made with the kept output's directory.
#[derive(Debug)]
pub(super) struct SourcePlan {
    /// The kept output's directory: `sources` (the index) and `sources.token` are kept there.
    dir: PathBuf,
    token: String,
    index: SourceIndex,
    delta: Option<SourceDelta>,
}

impl SourcePlan {
    /// The plan for sending `tar` (the source tar), with the index kept in `dir`: changes when
    /// there is an index with a token, else the whole tar; both kept under a new token. None
    /// when the index cannot hold a path (the tar then goes as without a plan, and nothing is
    /// kept). Removes the kept token: until the build ends well, what the builder has is not
    /// known.
    pub(super) fn new(dir: &Path, tar: &[u8]) -> Option<SourcePlan> {
        let (index_file, token_file) = (dir.join("sources"), dir.join("sources.token"));
        let index = SourceIndex::of(tar).ok()??;
        let have = std::fs::read_to_string(&token_file).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        std::fs::remove_file(&token_file).ok();
        let delta = match (have, SourceIndex::read(&index_file)) {
            (Some(base), Some(old)) => old.delta(tar, &index, &base).ok(),
            _ => None,
        };
        Some(SourcePlan { dir: dir.to_path_buf(), token: super::kept::new_token(), index, delta })
    }

    /// The changes to send instead of the whole tar, when there are.
    pub(super) fn delta(&self) -> Option<&SourceDelta> {
        self.delta.as_ref()
    }

    /// The build's environment: the new token, and where the changes' description is
    /// (`description`: when changes are sent).
    pub(super) fn env(&self, description: Option<&str>) -> Vec<String> {
        let mut env = vec![format!("SRC_TOKEN={}", self.token)];
        env.extend(description.map(|d| format!("SRC_DELTA={d}")));
        env
    }

    /// The build ended well: the builder has these sources under the new token.
    pub(super) fn keep(&self) {
        let (index_file, token_file) = (self.dir.join("sources"), self.dir.join("sources.token"));
        // Not keeping them only costs the next build the whole tar.
        let kept =
            self.index.write(&index_file).and_then(|()| std::fs::write(&token_file, format!("{}\n", self.token)));
        if let Err(e) = kept {
            tracing::warn!(error = %e, "could not keep the index of the sources sent for the next build");
        }
    }
}

/// The sha256 of what extracting the entry makes: its type, mode, link target and contents.
fn entry_hash<R: Read>(entry: &mut tar::Entry<R>) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let header = entry.header();
    h.update([header.entry_type().as_byte()]);
    h.update(header.mode()?.to_be_bytes());
    let link = entry.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
    h.update((link.len() as u64).to_be_bytes());
    h.update(&link);
    // Streamed into the hash: no copy of a large file (an esbuild binary is 9 MB).
    std::io::copy(entry, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
#[path = "source_delta_tests.rs"]
mod tests;
