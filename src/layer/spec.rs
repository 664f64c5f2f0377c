//! Building a [`LayerSpec`] from directories on disk and single entries.

use super::{Entry, EntryKind, LayerError, LayerSpec};
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path};
use walkdir::WalkDir;

/// Mode of directories, and of the parents `add_tree` creates.
const DIR_MODE: u32 = 0o755;
/// Mode of symlinks (ignored by Linux; what GNU tar records).
const SYMLINK_MODE: u32 = 0o777;

impl LayerSpec {
    /// An empty layer called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        LayerSpec { name: name.into(), entries: Vec::new() }
    }

    /// Adds one entry. Parents are not added (a layer that lists `tmp/x` must not also list
    /// `tmp` unless it means to reset the base image's `/tmp`); the path is checked when the
    /// layer is written.
    pub fn add_file(&mut self, path: impl Into<String>, kind: EntryKind, mode: u32, uid: u64, gid: u64) {
        self.entries.push(Entry { path: path.into(), kind, mode, uid, gid });
    }

    /// Adds the tree at `src` (not following symlinks, in name order) under `dest`
    /// (e.g. `app/lib/foo-1.0`; empty for the image root), owned by `uid`:`gid`, plus a
    /// directory entry (0755, root) for every parent of `dest`.
    ///
    /// Regular files keep their permission bits less group/other write and set-id bits
    /// (`mode & 0o755`), directories are 0755, symlinks are stored as links with their target
    /// as read. Any other file type is an error naming the path.
    pub fn add_tree(&mut self, src: &Path, dest: &str, uid: u64, gid: u64) -> Result<(), LayerError> {
        let dest = dest.trim_matches('/');
        let mut parent = String::new();
        if !dest.is_empty() {
            let parts: Vec<&str> = dest.split('/').collect();
            for part in &parts[..parts.len() - 1] {
                if !parent.is_empty() {
                    parent.push('/');
                }
                parent.push_str(part);
                self.add_file(parent.clone(), EntryKind::Dir, DIR_MODE, 0, 0);
            }
        }
        let walk = WalkDir::new(src).follow_links(false).follow_root_links(false).sort_by_file_name();
        for item in walk {
            let item = item.map_err(|e| {
                let path = e.path().unwrap_or(src).to_path_buf();
                LayerError::Io { path, source: e.into() }
            })?;
            let path = item.path();
            let rel = path.strip_prefix(src).map_err(|_| LayerError::InvalidPath {
                path: path.display().to_string(),
                reason: "is outside the tree being added",
            })?;
            let name = join(dest, rel, path)?;
            if name.is_empty() {
                // The root of the tree is the image root: nothing to record for it.
                continue;
            }
            let ft = item.file_type();
            let (kind, mode) = if ft.is_dir() {
                (EntryKind::Dir, DIR_MODE)
            } else if ft.is_symlink() {
                let target = fs::read_link(path).map_err(|e| LayerError::io(path, e))?;
                (EntryKind::Symlink { target }, SYMLINK_MODE)
            } else if ft.is_file() {
                let meta =
                    item.metadata().map_err(|e| LayerError::Io { path: path.to_path_buf(), source: e.into() })?;
                (EntryKind::File { source: path.to_path_buf() }, meta.permissions().mode() & 0o755)
            } else {
                return Err(LayerError::UnsupportedFileType { path: path.to_path_buf(), kind: describe(ft) });
            };
            self.add_file(name, kind, mode, uid, gid);
        }
        Ok(())
    }
}

/// `dest/rel` as a `/`-separated UTF-8 path.
fn join(dest: &str, rel: &Path, full: &Path) -> Result<String, LayerError> {
    let mut out = dest.to_string();
    for c in rel.components() {
        let Component::Normal(part) = c else {
            return Err(LayerError::InvalidPath {
                path: full.display().to_string(),
                reason: "has an unexpected path component",
            });
        };
        let part = part.to_str().ok_or_else(|| LayerError::InvalidPath {
            path: full.display().to_string(),
            reason: "is not valid UTF-8",
        })?;
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(part);
    }
    Ok(out)
}

fn describe(ft: fs::FileType) -> &'static str {
    if ft.is_socket() {
        "socket"
    } else if ft.is_fifo() {
        "named pipe"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}
