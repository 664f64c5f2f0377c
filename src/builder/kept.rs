//! The last output of a build with the build cache, kept on the host, so that the next build of
//! the project receives only what changed ("move only what changed", docs/build-cache.md).
//!
//! The host keeps the tree the builder last sent (one per build cache volume, beside the output
//! directories: hard links between them cost no copy) under a token. A build passes that token
//! (`OUT_HAVE`) and a new one (`OUT_TOKEN`) to the builder; `send_out.sh` keeps the listing of
//! what it last sent under the token it was sent with, and when the host's token is that one it
//! sends every directory, the files whose listing line changed and `.release-oci-delta` (the base
//! token and the files that are gone) instead of the whole tree. [`Kept::complete`] fills in the
//! rest from the kept tree (hard links), then keeps the complete tree under the new token. Any
//! mismatch (another token, no listing, a build meanwhile without the kept tree) means a whole
//! tree: a token is only ever written after what it names is complete, on both sides.

use super::BuilderError;
use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// The name of the delta's description in the builder's output.
pub(super) const DELTA_FILE: &str = ".release-oci-delta";

/// The kept output of one build cache volume, locked for this build.
#[derive(Debug)]
pub(super) struct Kept {
    root: PathBuf,
    have: Option<String>,
    token: String,
    _lock: fs::File,
}

/// The directory that holds this user's kept outputs, in `parent` (the output directories').
fn kept_root(parent: &Path) -> PathBuf {
    // SAFETY: getuid has no preconditions and cannot fail.
    parent.join(format!("release-oci-kept-{}", unsafe { libc::getuid() }))
}

impl Kept {
    /// The kept output of `volume`, locked; None when another build holds it or it cannot be
    /// made (that build then receives the whole tree, as without one).
    pub(super) fn open(volume: &str) -> Option<Kept> {
        Self::open_in(&super::scratch::output_parent(), volume)
    }

    /// [`Self::open`] in `parent` instead of the output directories' place.
    fn open_in(parent: &Path, volume: &str) -> Option<Kept> {
        let base = kept_root(parent);
        match fs::DirBuilder::new().mode(0o700).create(&base) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(_) => return None,
        }
        // Only a directory of ours (the parent may be a shared /dev/shm).
        let meta = fs::symlink_metadata(&base).ok()?;
        // SAFETY: getuid has no preconditions and cannot fail.
        if !meta.is_dir() || meta.uid() != unsafe { libc::getuid() } {
            return None;
        }
        let root = base.join(volume);
        fs::create_dir_all(&root).ok()?;
        let lock = fs::File::options().create(true).write(true).truncate(false).open(root.join("lock")).ok()?;
        // SAFETY: the descriptor is open for the lifetime of `lock`.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return None;
        }
        // Its mtime says when a build last used it (sweep).
        let _ = lock.set_modified(std::time::SystemTime::now());
        let have = fs::read_to_string(root.join("token")).ok().map(|t| t.trim().to_string());
        let have = have.filter(|t| !t.is_empty() && root.join("tree").is_dir());
        Some(Kept { root, have, token: new_token(), _lock: lock })
    }

    /// The directory of this volume's kept output (the warm builder's source index is kept
    /// there too: `source_delta.rs`).
    pub(super) fn dir(&self) -> &Path {
        &self.root
    }

    /// The builder's environment for this build: the token of the kept tree, and the new one.
    pub(super) fn env(&self) -> Vec<String> {
        let mut env = vec![format!("OUT_TOKEN={}", self.token)];
        env.extend(self.have.iter().map(|t| format!("OUT_HAVE={t}")));
        env
    }

    /// Makes `out` (the builder's output, just unpacked) whole when it is a delta, then keeps it
    /// under the new token.
    pub(super) fn complete(&self, out: &Path) -> Result<(), BuilderError> {
        let token = self.root.join("token");
        remove_if_there(&token)?;
        if let Some(removed) = read_delta(out, self.have.as_deref())? {
            fill(&self.root.join("tree"), out, &removed)?;
        }
        // Not keeping it only costs the next build the whole tree.
        if let Err(e) = self.keep(out) {
            tracing::warn!(error = %e, "could not keep the builder's output for the next build");
        }
        Ok(())
    }

    /// Keeps `out` (hard links) as the kept tree, under the new token.
    fn keep(&self, out: &Path) -> Result<(), BuilderError> {
        let (token, tree) = (self.root.join("token"), self.root.join("tree"));
        let new = self.root.join("tree.new");
        let old = self.root.join("tree.old");
        remove_tree(&new)?;
        remove_tree(&old)?;
        link_tree(out, &new)?;
        if tree.exists() {
            fs::rename(&tree, &old).map_err(io("cannot rename", &tree))?;
        }
        fs::rename(&new, &tree).map_err(io("cannot rename", &new))?;
        fs::write(&token, format!("{}\n", self.token)).map_err(io("cannot write", &token))?;
        // The last tree goes meanwhile (what is left of it, the next build removes).
        std::thread::spawn(move || fs::remove_dir_all(old));
        Ok(())
    }
}

/// Removes the kept output of `volume` (`cache prune` removed the volume).
pub fn forget(volume: &str) {
    for parent in super::scratch::parents() {
        let _ = fs::remove_dir_all(kept_root(&parent).join(volume));
    }
}

/// How long a kept output stays unused before a build's start removes it (it is memory when the
/// output directories are in /dev/shm).
pub const KEPT_UNUSED_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes the kept outputs no build holds that were not used for `unused` (their lock file's
/// mtime: each build that opens one makes it anew), and, when `volumes` is given, those of a
/// volume not in it. Returns the volumes whose kept output went.
pub fn sweep(unused: std::time::Duration, volumes: Option<&BTreeSet<String>>) -> Vec<String> {
    super::scratch::parents().iter().flat_map(|parent| sweep_in(parent, unused, volumes)).collect()
}

/// [`sweep`] of the kept outputs in `parent`.
fn sweep_in(parent: &Path, unused: std::time::Duration, volumes: Option<&BTreeSet<String>>) -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(kept_root(parent)) else { return removed };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let lock = entry.path().join("lock");
        let age = fs::metadata(&lock).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        let orphan = volumes.is_some_and(|v| !v.contains(&name));
        if !orphan && age.is_none_or(|a| a < unused) {
            continue;
        }
        // Not while a build holds it.
        let Some(held) = Kept::open_in(parent, &name) else { continue };
        drop(held);
        if fs::remove_dir_all(entry.path()).is_ok() {
            removed.push(name);
        }
    }
    removed
}

/// `out` without a delta's description: None. With one: the files gone since the base, after
/// checking that the base is the kept tree; the description is removed.
pub(super) fn read_delta(out: &Path, have: Option<&str>) -> Result<Option<BTreeSet<PathBuf>>, BuilderError> {
    let path = out.join(DELTA_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("cannot read", &path)(e)),
    };
    let mut lines = text.lines();
    let base = lines.next().and_then(|l| l.strip_prefix("base ")).unwrap_or_default();
    if have != Some(base) || base.is_empty() {
        let message = format!(
            "a delta against the kept output {base:?}, but this build's is {}: remove the builder's \
             cache volume (release-oci cache prune) and build again",
            have.map_or_else(|| "none".to_string(), |h| format!("{h:?}"))
        );
        return Err(BuilderError::Output { path, message });
    }
    let removed = lines.map(|l| PathBuf::from(l.strip_prefix("./").unwrap_or(l))).collect();
    fs::remove_file(&path).map_err(io("cannot remove", &path))?;
    Ok(Some(removed))
}

/// Links into `out` every file and symlink of `tree` that `out` lacks, unless `removed` names it.
/// The delta brought every directory that is still there: a directory of `tree` that `out` does
/// not have (as a directory) is gone, with everything in it.
fn fill(tree: &Path, out: &Path, removed: &BTreeSet<PathBuf>) -> Result<(), BuilderError> {
    let mut walk = WalkDir::new(tree).min_depth(1).into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(|e| io("cannot read", tree)(e.into()))?;
        let rel = entry.path().strip_prefix(tree).unwrap_or(entry.path());
        let dest = out.join(rel);
        if entry.file_type().is_dir() {
            if !fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
                walk.skip_current_dir();
            }
            continue;
        }
        if removed.contains(rel) || fs::symlink_metadata(&dest).is_ok() {
            continue;
        }
        link_into(entry.path(), &dest)?;
    }
    Ok(())
}

/// A hard link of `file` at `dest`, in a directory that may not be writable (then it is, for
/// that moment).
fn link_into(file: &Path, dest: &Path) -> Result<(), BuilderError> {
    let err = match fs::hard_link(file, dest) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => e,
        Err(e) => return Err(io("cannot link the kept file into", dest)(e)),
    };
    let parent = dest.parent().unwrap_or(dest);
    let mode = fs::metadata(parent).map_err(|_| io("cannot link the kept file into", dest)(err))?.permissions().mode();
    let writable = fs::Permissions::from_mode(mode | 0o700);
    fs::set_permissions(parent, writable).map_err(io("cannot change", parent))?;
    let linked = fs::hard_link(file, dest).map_err(io("cannot link the kept file into", dest));
    fs::set_permissions(parent, fs::Permissions::from_mode(mode)).map_err(io("cannot change", parent))?;
    linked
}

/// `to` made a copy of the tree `from` of hard links; its directories get their modes last
/// (one without write permission is still filled).
fn link_tree(from: &Path, to: &Path) -> Result<(), BuilderError> {
    let mut dirs = Vec::new();
    for entry in WalkDir::new(from) {
        let entry = entry.map_err(|e| io("cannot read", from)(e.into()))?;
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            let mode = entry.metadata().map_err(|e| io("cannot read", entry.path())(e.into()))?.permissions().mode();
            fs::create_dir(&dest).map_err(io("cannot create", &dest))?;
            dirs.push((dest, mode));
        } else {
            fs::hard_link(entry.path(), &dest).map_err(io("cannot link into", &dest))?;
        }
    }
    for (dir, mode) in dirs.iter().rev() {
        fs::set_permissions(dir, fs::Permissions::from_mode(*mode)).map_err(io("cannot change", dir))?;
    }
    Ok(())
}

fn remove_tree(path: &Path) -> Result<(), BuilderError> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("cannot remove", path)(e)),
        _ => Ok(()),
    }
}

fn remove_if_there(path: &Path) -> Result<(), BuilderError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("cannot remove", path)(e)),
        _ => Ok(()),
    }
}

/// 16 random bytes as hex (the kernel's; the time and pid when it has none to give).
pub(super) fn new_token() -> String {
    let mut bytes = [0u8; 16];
    let random = fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let seed = format!("{} {}", now.as_nanos(), std::process::id());
        let digest = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes());
        bytes.copy_from_slice(&digest[..16]);
    }
    hex::encode(bytes)
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BuilderError {
    let path = path.to_path_buf();
    move |source| BuilderError::Io { action, path, source }
}

#[cfg(test)]
#[path = "kept_tests.rs"]
pub(super) mod tests;
