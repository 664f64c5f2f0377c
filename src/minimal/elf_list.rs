//! The ELF files of a release, by content: the part of the minimal base's cache key that the
//! release gives ([`super::cache`]). The builder's script makes the same listing
//! (`OUT/base/elf`, `src/builder/minimal_base.sh`): the files it runs `ldd` on, one
//! `SHA256  PATH` line each (sha256sum's format), PATH relative to `OUT/rel`, in byte order.
//! Both sides must agree byte for byte; a test runs the script's part against [`ElfListing::of_dir`].

use super::MinimalError;
use crate::digest::HashingWriter;
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use walkdir::WalkDir;

const ELF_MAGIC: [u8; 4] = *b"\x7fELF";

/// The listing of a release's ELF files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfListing {
    text: Vec<u8>,
    files: usize,
}

impl ElfListing {
    /// Lists the ELF files under `rel` (the builder's `OUT/rel`: one release, or one directory per
    /// release) as the builder's script does: regular files that are executable by their owner or
    /// named `*.so` / `*.so.*`, whose first four bytes are ELF's magic; links are not followed.
    pub fn of_dir(rel: &Path) -> Result<ElfListing, MinimalError> {
        let mut paths = Vec::new();
        for item in WalkDir::new(rel).follow_links(false).min_depth(1) {
            let item = item.map_err(|e| MinimalError::Io {
                action: "cannot list",
                path: e.path().unwrap_or(rel).to_path_buf(),
                source: e.into(),
            })?;
            if !item.file_type().is_file() {
                continue;
            }
            let name = item.file_name().to_string_lossy();
            let shared_object = name.ends_with(".so") || name.contains(".so.");
            let io = |source| MinimalError::Io { action: "cannot read", path: item.path().to_path_buf(), source };
            let executable = item.metadata().map_err(|e| io(e.into()))?.permissions().mode() & 0o100 != 0;
            if !(shared_object || executable) || !is_elf(item.path()).map_err(io)? {
                continue;
            }
            let relative = item.path().strip_prefix(rel).unwrap_or(item.path()).as_os_str().as_encoded_bytes();
            paths.push((relative.to_vec(), item.path().to_path_buf()));
        }
        paths.sort();
        let mut text = Vec::new();
        for (relative, path) in &paths {
            let hex = sha256_file(path)?;
            text.extend_from_slice(hex.as_bytes());
            text.extend_from_slice(b"  ");
            text.extend_from_slice(relative);
            text.push(b'\n');
        }
        Ok(ElfListing { text, files: paths.len() })
    }

    /// The builder's listing (`OUT/base/elf` in `base_dir`), None when it wrote none.
    pub fn from_builder(base_dir: &Path) -> Result<Option<ElfListing>, MinimalError> {
        let path = base_dir.join("elf");
        match fs::read(&path) {
            Ok(text) => {
                let files = text.iter().filter(|b| **b == b'\n').count();
                Ok(Some(ElfListing { text, files }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MinimalError::Io { action: "cannot read", path, source }),
        }
    }

    /// Whether this listing (the builder's) is that of the release in `rel` as it is now: every
    /// ELF file there, with the same content, and no other, except the files `--slim-erts`
    /// (`slimmed`) has removed since (they are no part of the base: [`super::plan`] skips what
    /// only they need). Reads and hashes every ELF file of the release.
    pub fn matches_release(&self, rel: &Path, slimmed: bool) -> Result<bool, MinimalError> {
        let now = ElfListing::of_dir(rel)?;
        let mut kept = Vec::with_capacity(self.text.len());
        for line in self.text.split_inclusive(|b| *b == b'\n') {
            let path = line.windows(2).position(|w| w == b"  ").map(|i| &line[i + 2..]);
            let Some(path) = path.and_then(|p| p.strip_suffix(b"\n")) else { return Ok(false) };
            let path = std::ffi::OsStr::from_bytes(path);
            let gone = slimmed
                && path.to_str().is_some_and(super::slim::is_slimmed)
                && fs::symlink_metadata(rel.join(path)).is_err();
            if !gone {
                kept.extend_from_slice(line);
            }
        }
        Ok(kept == now.text)
    }

    /// The sha256 of the listing (hex): what `MINIMAL_BASE_KNOWN` and `OUT/base/reused` hold.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(&self.text))
    }

    /// How many ELF files it lists.
    pub fn files(&self) -> usize {
        self.files
    }

    /// The paths it lists (relative to the release directory), in its order.
    pub fn paths(&self) -> impl Iterator<Item = &[u8]> {
        self.text
            .split(|b| *b == b'\n')
            .filter_map(|line| line.windows(2).position(|w| w == b"  ").map(|i| &line[i + 2..]))
    }

    /// The listing's bytes.
    pub fn text(&self) -> &[u8] {
        &self.text
    }
}

fn is_elf(path: &Path) -> std::io::Result<bool> {
    let mut magic = [0u8; 4];
    let mut f = fs::File::open(path)?;
    let mut read = 0;
    while read < magic.len() {
        match f.read(&mut magic[read..])? {
            0 => return Ok(false),
            n => read += n,
        }
    }
    Ok(magic == ELF_MAGIC)
}

fn sha256_file(path: &Path) -> Result<String, MinimalError> {
    let io = |source| MinimalError::Io { action: "cannot read", path: path.to_path_buf(), source };
    let mut f = fs::File::open(path).map_err(io)?;
    let mut w = HashingWriter::new(std::io::sink());
    std::io::copy(&mut f, &mut w).map_err(io)?;
    let (_, hasher, _) = w.finish();
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
#[path = "elf_list_tests.rs"]
mod tests;
