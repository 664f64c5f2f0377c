//! Whole-store upkeep: `release-oci cache verify` (hash every blob) and `release-oci cache gc`
//! (delete temp files left by interrupted builds, quarantined blobs and orphaned records).

use super::check::{QUARANTINE, RECORDS, hash_file};
use super::{BlobStore, Damage, StoreError, io_err};
use crate::digest::Digest;
use rayon::prelude::*;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What [`BlobStore::verify_all`] found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Blobs hashed.
    pub checked: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The damaged ones, by path (moved aside when repairing).
    pub damaged: Vec<Damage>,
}

/// What [`BlobStore::gc`] removed.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Temp files of interrupted writes (`.tmp*`, untouched for a while).
    pub temp_files: Vec<PathBuf>,
    /// Everything that was in `quarantine/`.
    pub quarantined: Vec<PathBuf>,
    /// Records of blobs that are gone.
    pub records: usize,
    /// Bytes freed (temp files and quarantined blobs).
    pub bytes: u64,
}

impl BlobStore {
    /// Hashes every blob of the store (whatever its record says) and reports those whose content
    /// is not their digest's; with `repair`, moves them to `<root>/quarantine/`. Good blobs get a
    /// new record. Temp files (`.tmp*`) and names that are not 64 hex digits are skipped.
    pub fn verify_all(&self, repair: bool) -> Result<VerifyReport, StoreError> {
        let dir = self.root.join("blobs").join("sha256");
        let mut digests: Vec<Digest> = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let name = entry.map_err(io_err(&dir))?.file_name();
            if let Some(d) = name.to_str().and_then(|n| format!("sha256:{n}").parse::<Digest>().ok()) {
                digests.push(d);
            }
        }
        digests.sort();
        let results: Vec<Result<(u64, Option<Damage>), StoreError>> =
            digests.par_iter().map(|d| self.verify_one(d, repair)).collect();
        let mut report = VerifyReport::default();
        for r in results {
            let (bytes, damage) = r?;
            report.checked += 1;
            report.bytes += bytes;
            report.damaged.extend(damage);
        }
        Ok(report)
    }

    /// Hashes one blob: its size, and what is wrong with it if anything.
    fn verify_one(&self, digest: &Digest, repair: bool) -> Result<(u64, Option<Damage>), StoreError> {
        let path = self.blob_path(digest);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, None)), // removed meanwhile
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let hashed = if meta.is_file() { hash_file(&path) } else { Err(io::Error::other("not a regular file")) };
        let found = match hashed {
            Ok((d, _)) if d == *digest => {
                self.record_if_unchanged(digest, &path, &meta)?;
                return Ok((meta.len(), None));
            }
            Ok((d, n)) => format!("holds {n} bytes with digest {d}"),
            Err(e) => format!("cannot be read ({e})"),
        };
        let damage = match repair {
            true => self.quarantine(digest, found)?,
            false => Damage { digest: digest.clone(), path, found, moved_to: None },
        };
        Ok((meta.len(), Some(damage)))
    }

    /// Deletes temp files (`.tmp*`) not modified for `temp_age` (younger ones may belong to a
    /// build that is running), everything in `quarantine/`, and records of blobs that are gone.
    /// Never a blob: the store does not know every reference to its blobs.
    pub fn gc(&self, temp_age: Duration) -> Result<GcReport, StoreError> {
        let mut report = GcReport::default();
        let now = SystemTime::now();
        for dir in self.dirs()? {
            for (name, path) in entries(&dir)? {
                let Some(meta) = fs::symlink_metadata(&path).ok().filter(|m| m.is_file()) else { continue };
                let idle = meta.modified().ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
                if name.to_string_lossy().starts_with(".tmp") && idle >= temp_age && remove(&path)? {
                    report.bytes += meta.len();
                    report.temp_files.push(path);
                }
            }
        }
        let quarantine = self.root.join(QUARANTINE);
        for (_, path) in entries(&quarantine)? {
            let len = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
            let gone = match fs::symlink_metadata(&path).map(|m| m.is_dir()) {
                Ok(true) => fs::remove_dir_all(&path).map(|()| true).map_err(io_err(&path))?,
                _ => remove(&path)?,
            };
            if gone {
                report.bytes += len;
                report.quarantined.push(path);
            }
        }
        for (name, path) in entries(&self.root.join(RECORDS))? {
            let blob = self.root.join("blobs").join("sha256").join(&name);
            if !name.to_string_lossy().starts_with(".tmp") && !blob.exists() && remove(&path)? {
                report.records += 1;
            }
        }
        report.temp_files.sort();
        report.quarantined.sort();
        Ok(report)
    }

    /// The store's root, its subdirectories and `blobs/sha256`: where temp files are made.
    fn dirs(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut dirs = vec![self.root.clone(), self.root.join("blobs").join("sha256")];
        for (_, path) in entries(&self.root)? {
            if path.is_dir() && !path.ends_with(QUARANTINE) {
                dirs.push(path);
            }
        }
        Ok(dirs)
    }
}

/// The entries of `dir` (none when it does not exist), sorted by name.
fn entries(dir: &Path) -> Result<Vec<(OsString, PathBuf)>, StoreError> {
    let read = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StoreError::Io { path: dir.to_path_buf(), source }),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(io_err(dir))?;
        out.push((entry.file_name(), entry.path()));
    }
    out.sort();
    Ok(out)
}

/// Removes a file; false when it was gone already.
fn remove(path: &Path) -> Result<bool, StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StoreError::Io { path: path.to_path_buf(), source }),
    }
}
