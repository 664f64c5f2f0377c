//! The minimal base's cache: the base a build made, kept under a key of everything it depends on,
//! so that the next build with the same key neither gathers it in the builder nor makes its layer.
//!
//! The key has two levels. [`KeySettings`] (what the build settles before the builder runs: this
//! program, the project, the builder image's id, the triple, the settings that shape the base) is
//! a directory, `<store>/minimal-base/<settings hex>/`; the release's [`ElfListing`] (the ELF files
//! the builder runs `ldd` on, by content) names the record in it, `<listing sha256>.json`. Before
//! the builder runs, the listings of that directory are handed to it ([`BaseCache::known`] →
//! `MINIMAL_BASE_KNOWN`); when the release's listing is one of them, the builder gathers nothing
//! and release-oci reuses the record's layer (from the blob store) and what the SBOM reads of the
//! gathered files (their paths, and the builder's `packages` and `distro` lines for them). A record
//! holds no secret: digests, sizes, paths and Debian package names. See docs/minimal-base.md.
//!
//! [`ElfListing`]: super::ElfListing

use super::MinimalError;
use super::reasons::WhyLine;
use crate::digest::{DiffId, Digest};
use crate::layer::{Compression, LayerBlob};
use crate::result_cache::KeyBuilder;
use crate::store::{BlobState, BlobStore};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The directory of the blob store that holds the records.
pub const DIR: &str = "minimal-base";
/// Changes whenever the meaning of a key or the record format changes.
const FORMAT: &str = "release-oci minimal base cache 2";
/// The most listings handed to the builder (the newest records first).
pub const MAX_KNOWN: usize = 16;

/// Where a build's processes may write in the builder container (`/build`: sources, cache volume,
/// OUT, home; the temporary directories). A base that takes a file from there depends on more
/// than the key says, and is not recorded.
const WRITABLE: &[&str] = &["/build/", "/tmp/", "/var/tmp/", "/dev/shm/", "/run/", "/home/", "/root/"];

/// What the minimal base depends on besides the release's ELF files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySettings {
    /// This program (a new release-oci may gather or lay out the base otherwise).
    pub tool: String,
    /// The project's canonical directory: one checkout never reuses a base that another's build
    /// gathered (the project's code runs in the builder beside the gathered files).
    pub project: PathBuf,
    /// The builder image's id: its libraries, busybox, certificates, locale, time zones, dpkg.
    pub builder_image_id: String,
    pub triple: String,
    /// `--tzdata`: the builder gathers the time zone database.
    pub tzdata: bool,
    /// `--slim-erts`: the layer leaves out what only the ERTS tools need.
    pub slim_erts: bool,
    /// The layer's compression (its blob and digest).
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: the layer's mtimes.
    pub epoch: u64,
    /// The builder's environment (`--build-env`): the gathering script runs in it (`ldd` reads
    /// `LD_LIBRARY_PATH`, the script `BUSYBOX`).
    pub build_env: Vec<(String, String)>,
}

impl KeySettings {
    /// The first level of the key: 64 hex digits of the parts, each named and length-prefixed.
    pub fn hex(&self) -> String {
        let KeySettings { tool, project, builder_image_id, triple, tzdata, slim_erts, compression, epoch, build_env } =
            self;
        let mut k = KeyBuilder::new();
        k.part("minimal-base", FORMAT)
            .part("tool", tool)
            .part("project", project.as_os_str().as_encoded_bytes())
            .part("builder-image-id", builder_image_id)
            .part("triple", triple)
            .part("tzdata", tzdata.to_string())
            .part("slim-erts", slim_erts.to_string())
            .part("compression", compression.to_string())
            .part("epoch", epoch.to_string())
            .part("build-env", format!("{build_env:?}"));
        k.finish().hex().to_string()
    }
}

/// A minimal base made before: its layer, and what the SBOM reads of it ([`super::LayerFacts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedBase {
    pub layer: LayerBlob,
    pub facts: super::LayerFacts,
}

#[derive(Serialize, Deserialize)]
struct RecordJson {
    format: String,
    layer: LayerJson,
    facts: super::LayerFacts,
}

#[derive(Serialize, Deserialize)]
struct LayerJson {
    name: String,
    digest: Digest,
    diff_id: DiffId,
    size: u64,
    media_type: String,
}

/// The records of one [`KeySettings`] in a blob store.
#[derive(Debug, Clone)]
pub struct BaseCache {
    store: BlobStore,
    dir: PathBuf,
    project: PathBuf,
}

/// The file of a settings directory that names the project whose builds made its records, for
/// `cache prune --project` ([`forget_project`]).
const PROJECT_FILE: &str = "project";

impl BaseCache {
    pub fn new(store: &BlobStore, settings: &KeySettings) -> BaseCache {
        let dir = store.root().join(DIR).join(settings.hex());
        BaseCache { store: store.clone(), dir, project: settings.project.clone() }
    }

    /// The record of the listing `elf` (its sha256, hex).
    pub fn path(&self, elf: &str) -> PathBuf {
        self.dir.join(format!("{elf}.json"))
    }

    /// The listings that have a usable record (see [`Self::load`]), the newest first, at most
    /// [`MAX_KNOWN`].
    pub fn known(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut found: Vec<(std::time::SystemTime, String)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.strip_suffix(".json")?.to_string();
                let valid = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
                let modified = e.metadata().and_then(|m| m.modified()).ok()?;
                valid.then_some((modified, name))
            })
            .collect();
        found.sort_by(|a, b| b.cmp(a));
        found.into_iter().map(|(_, name)| name).filter(|elf| self.load(elf).is_some()).take(MAX_KNOWN).collect()
    }

    /// The base recorded for the listing `elf`, when its record is readable and its layer's blob
    /// is in the store in good order (checked as any reuse is); anything less is None.
    pub fn load(&self, elf: &str) -> Option<CachedBase> {
        let path = self.path(elf);
        let bytes = std::fs::read(&path).ok()?;
        let record: RecordJson = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable minimal base record, ignored");
                return None;
            }
        };
        if record.format != FORMAT {
            return None;
        }
        let l = record.layer;
        match self.store.inspect(&l.digest, Some(l.size)) {
            Ok(BlobState::Good(_)) => {}
            _ => {
                tracing::info!(digest = %l.digest, "the cached minimal base's layer is gone from the store");
                return None;
            }
        }
        let layer =
            LayerBlob { name: l.name, digest: l.digest, diff_id: l.diff_id, size: l.size, media_type: l.media_type };
        Some(CachedBase { layer, facts: record.facts })
    }

    /// Records `base` for the listing `elf` (replacing an older record): temp file + rename.
    pub fn record(&self, elf: &str, base: &CachedBase) -> Result<(), MinimalError> {
        let l = &base.layer;
        let record = RecordJson {
            format: FORMAT.to_string(),
            layer: LayerJson {
                name: l.name.clone(),
                digest: l.digest.clone(),
                diff_id: l.diff_id.clone(),
                size: l.size,
                media_type: l.media_type.clone(),
            },
            facts: base.facts.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&record).map_err(MinimalError::Json)?;
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MinimalError::Io { action: "cannot write the minimal base record", path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(write_err(&self.dir))?;
        let project_file = self.dir.join(PROJECT_FILE);
        if !project_file.exists() {
            std::fs::write(&project_file, self.project.as_os_str().as_encoded_bytes())
                .map_err(write_err(&project_file))?;
        }
        let mut tmp = tempfile::NamedTempFile::with_prefix_in(".tmp-", &self.dir).map_err(write_err(&self.dir))?;
        tmp.write_all(&bytes).map_err(write_err(tmp.path()))?;
        let dest = self.path(elf);
        tmp.persist(&dest).map_err(|e| write_err(&dest)(e.error))?;
        Ok(())
    }

    /// Removes the record of `elf`, if any: the next build gathers that base again.
    pub fn forget(&self, elf: &str) {
        let path = self.path(elf);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the minimal base record");
        }
    }
}

/// `cache prune`: removes the minimal base records of `project` (every record without it) and
/// returns the directories removed. A directory that names no project is only removed by the
/// latter. Their layers stay in the blob store until `cache gc`.
pub fn forget_project(store: &BlobStore, project: Option<&Path>) -> std::io::Result<Vec<PathBuf>> {
    let root = store.root().join(DIR);
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let dir = entry?.path();
        let owner = std::fs::read(dir.join(PROJECT_FILE)).ok();
        let matches = match project {
            None => true,
            Some(p) => owner.as_deref() == Some(p.as_os_str().as_encoded_bytes()),
        };
        if matches && dir.is_dir() {
            std::fs::remove_dir_all(&dir)?;
            removed.push(dir);
        }
    }
    removed.sort();
    Ok(removed)
}

/// The first path of the `why` file under a directory the build writes to ([`WRITABLE`]), if any:
/// a base with such a file is not recorded (the key does not cover what the build wrote there).
pub fn written_by_the_build(lines: &[WhyLine]) -> Option<&str> {
    lines
        .iter()
        .map(|l| match l {
            WhyLine::Need { path, .. } | WhyLine::Add { path, .. } => path.as_str(),
        })
        .find(|p| WRITABLE.iter().any(|w| p.starts_with(w) || *p == w.trim_end_matches('/')))
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
