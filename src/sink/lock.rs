//! One writer at a time per layout directory: an exclusive `flock` on `DIR/.release-oci.lock`,
//! held for the whole write (blobs and the read-modify-write of `index.json`), so concurrent
//! builds into one `oci:DIR` serialise and every tag survives. A writer that made a new layout
//! and fails takes it away again ([`LayoutLock::undo_new_layout`]); whoever waited on the lock
//! file of a removed layout notices (the file is no longer linked there) and starts over.

use super::SinkError;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The lock file's name inside a layout directory (hidden; image tools ignore unknown files).
pub(crate) const LOCK_FILE: &str = ".release-oci.lock";

/// Times a writer starts over because the layout it waited for was removed under it.
const ATTEMPTS: usize = 20;

/// An exclusive lock on a layout directory; released when dropped (or the process ends).
pub(crate) struct LayoutLock {
    file: File,
    dir: PathBuf,
    /// Directories this writer created (outermost first), removed again by `undo_new_layout`.
    created: Vec<PathBuf>,
}

impl LayoutLock {
    /// Creates `dir` when missing and locks it, waiting for any other writer. A directory that
    /// holds something other than a layout is refused before anything is created in it.
    pub(crate) fn acquire(dir: &Path, location: &str) -> Result<LayoutLock, SinkError> {
        let mut created = Vec::new();
        let result = Self::try_acquire(dir, location, &mut created);
        if result.is_err() {
            remove_created(&created);
        }
        result
    }

    fn try_acquire(dir: &Path, location: &str, created: &mut Vec<PathBuf>) -> Result<LayoutLock, SinkError> {
        let path = dir.join(LOCK_FILE);
        for _ in 0..ATTEMPTS {
            for d in create_dirs(dir)? {
                if !created.contains(&d) {
                    created.push(d);
                }
            }
            // Another writer making a new layout here shows its files before (or while) its
            // `oci-layout` appears, and it made the lock file first: then the check under the
            // lock decides (`check_marker`). No lock file: nobody writes here, not a layout.
            match refuse_foreign(dir, location) {
                // Removed by a failed writer between our mkdir and the look: start over.
                Err(SinkError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => continue,
                Err(e) if !path.exists() => return Err(e),
                _ => {}
            }
            let file = match OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path) {
                Ok(f) => f,
                // Removed by a failed writer between our mkdir and open: start over.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(SinkError::Lock { path, source }),
            };
            lock(&file, &path, location)?;
            if still_linked(&file, &path) {
                return Ok(LayoutLock { file, dir: dir.to_path_buf(), created: std::mem::take(created) });
            }
        }
        let source = io::Error::other(
            "other writers failing removed the new layout again and again while this one waited; try again",
        );
        Err(SinkError::Lock { path, source })
    }

    /// After a failed first write into a layout (one that had no `oci-layout` before this
    /// writer, so nothing else refers to its contents): removes what was written, then the
    /// directories this writer created. Best effort: the write's own error is what is reported.
    /// Blobs go before `oci-layout`, so a writer looking in meanwhile never sees a directory
    /// with blobs and without `oci-layout` (which it would refuse as not a layout).
    pub(crate) fn undo_new_layout(self) {
        let _ = fs::remove_dir_all(self.dir.join("blobs"));
        let _ = fs::remove_file(self.dir.join("index.json"));
        let _ = fs::remove_file(self.dir.join("oci-layout"));
        let _ = fs::remove_file(self.dir.join(LOCK_FILE));
        let LayoutLock { file, created, .. } = self;
        drop(file);
        remove_created(&created);
    }
}

/// Removes `created` (outermost first in the list) innermost first; a directory someone else has
/// put something into meanwhile stays, and so do those around it.
fn remove_created(created: &[PathBuf]) {
    for d in created.iter().rev() {
        if fs::remove_dir(d).is_err() {
            break;
        }
    }
}

/// Takes the lock, saying so when another writer holds it.
fn lock(file: &File, path: &Path, location: &str) -> Result<(), SinkError> {
    match file.try_lock() {
        Ok(()) => return Ok(()),
        Err(TryLockError::WouldBlock) => {
            crate::ui::detail(format!("Waiting for another writer of {location} to finish"));
        }
        Err(TryLockError::Error(source)) => return Err(SinkError::Lock { path: path.to_path_buf(), source }),
    }
    file.lock().map_err(|source| SinkError::Lock { path: path.to_path_buf(), source })
}

/// Whether `file` is still the file at `path` (a failed writer may have removed it meanwhile).
fn still_linked(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// `fs::create_dir_all` that returns the directories it created, outermost first.
pub(crate) fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>, SinkError> {
    let mut missing = Vec::new();
    let mut p = dir;
    while fs::symlink_metadata(p).is_err() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => break,
        }
    }
    let mut created = Vec::new();
    for d in missing.into_iter().rev() {
        match fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(source) => return Err(SinkError::Io { path: d, source }),
        }
    }
    Ok(created)
}

/// Refuses a directory that has no `oci-layout` but holds something besides the lock file and
/// temp files (which a writer in progress or a killed one leaves).
pub(crate) fn refuse_foreign(dir: &Path, location: &str) -> Result<(), SinkError> {
    if dir.join("oci-layout").exists() {
        return Ok(());
    }
    for entry in fs::read_dir(dir).map_err(SinkError::io(dir))? {
        let entry = entry.map_err(SinkError::io(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name != LOCK_FILE && !name.starts_with(".tmp-") {
            return Err(SinkError::NotALayout {
                location: location.to_string(),
                reason: "the directory is not empty and has no oci-layout file (not writing into it)".into(),
            });
        }
    }
    Ok(())
}
