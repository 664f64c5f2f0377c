//! What the SBOM reads of the minimal base besides its layer (src/supply/gather.rs): the regular
//! files the layer took from the builder, and the builder's `packages` (`PATH<TAB>PACKAGE<TAB>
//! VERSION<TAB>ARCH`) and `distro` files for them (src/supply/builder_out.rs). Kept in the base's
//! cache record, so that a base reused without gathering still lists its Debian packages: the
//! build writes them back into `OUT/base` ([`LayerFacts::write`]) where the SBOM reads them.

use super::MinimalError;
use crate::layer::{EntryKind, LayerSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// `OUT/base/layer-files`: the layer paths of the regular files the layer took from the builder,
/// one a line (written by the build, read by [`layer_files`]).
pub const LAYER_FILES: &str = "layer-files";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerFacts {
    /// Layer paths (no leading `/`), sorted.
    pub files: Vec<String>,
    /// The builder's `packages` lines of those files (None: it wrote no such file).
    pub packages: Option<String>,
    /// The builder's `distro` file (None: it wrote none).
    pub distro: Option<String>,
}

impl LayerFacts {
    /// The facts of the layer `spec` planned from what the builder gathered in `base_dir`.
    pub fn of_gathered(base_dir: &Path, spec: &LayerSpec) -> Result<LayerFacts, MinimalError> {
        let files: BTreeSet<String> = spec
            .entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::File { .. }))
            .map(|e| e.path.trim_start_matches('/').to_string())
            .collect();
        // Only the lines of files the layer has; a line that is not four fields is kept for the
        // SBOM's reader to report, as when it reads the builder's file itself.
        let packages = read_optional(&base_dir.join("packages"))?.map(|text| {
            text.lines()
                .filter(|l| {
                    let fields: Vec<&str> = l.split('\t').collect();
                    fields.len() != 4 || files.contains(fields[0].trim_start_matches('/'))
                })
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        });
        let distro = read_optional(&base_dir.join("distro"))?;
        Ok(LayerFacts { files: files.into_iter().collect(), packages, distro })
    }

    /// Writes [`LAYER_FILES`] into `base_dir`, and with `restore` (a reused base: the builder
    /// gathered nothing) the `packages` and `distro` files the SBOM reads.
    pub fn write(&self, base_dir: &Path, restore: bool) -> Result<(), MinimalError> {
        let write = |name: &str, text: &str| {
            let path = base_dir.join(name);
            std::fs::write(&path, text).map_err(|source| MinimalError::Io { action: "cannot write", path, source })
        };
        let files: String = self.files.iter().map(|f| format!("{f}\n")).collect();
        write(LAYER_FILES, &files)?;
        if restore {
            for (name, text) in [("packages", &self.packages), ("distro", &self.distro)] {
                if let Some(text) = text {
                    write(name, text)?;
                }
            }
        }
        Ok(())
    }
}

/// The layer paths of the regular files the minimal base of `base_dir` (`OUT/base`) took from the
/// builder: [`LAYER_FILES`] when the build wrote it, else planned again from the gathered files
/// (with the release beside them, `OUT/rel`, as it is now).
pub fn layer_files(base_dir: &Path) -> Result<BTreeSet<String>, MinimalError> {
    if let Some(text) = read_optional(&base_dir.join(LAYER_FILES))? {
        return Ok(text.lines().filter(|l| !l.is_empty()).map(str::to_string).collect());
    }
    let base = super::plan(base_dir, &base_dir.with_file_name("rel"))?;
    Ok(LayerFacts::of_gathered(base_dir, &base.spec)?.files.into_iter().collect())
}

fn read_optional(path: &Path) -> Result<Option<String>, MinimalError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(MinimalError::Io { action: "cannot read", path: path.to_path_buf(), source }),
    }
}
