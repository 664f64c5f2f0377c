//! A new cache volume's first contents, from `--cache-repo`'s artifacts (docs/build-cache.md):
//! sent into the builder with the sources (files under [`DIR`] in the Docker builder's container,
//! under the build's own directory in a warm builder's) and unpacked there by the build script
//! (`restore.sh`'s `restore_volume`) while it holds the volume's lock, and only when the volume
//! holds no build yet. No helper container and no wait for one: the builder starts at once.

use super::BuilderError;
use super::input_files::InputFile;
use std::path::PathBuf;

/// Where the Docker builder's container gets them (no leading `/`: a path in the upload).
pub(super) const DIR: &str = "build/restore";
/// The variable that names the directory to the script.
pub(super) const ENV: &str = "RELEASE_OCI_RESTORE";

/// What a build restores into its new cache volume.
#[derive(Debug, Default)]
pub struct Restore {
    /// Name in the restore directory (`deps.tar.gz`, `app.tar.gz`, `rel.tar.gz`: tars of the
    /// volume's directories, gzipped; `src.tar`: the unchanged sources, at their listed mtimes)
    /// → the file on this machine.
    pub files: Vec<(String, PathBuf)>,
    /// The second (Unix time) by which the restored app build's compile had ended: the volume's
    /// `.built` (assemble.sh's settle_mtimes).
    pub built: Option<u64>,
    /// Temporary files the build must not outlive (the unchanged sources' tar).
    pub keep: Vec<tempfile::NamedTempFile>,
}

impl Restore {
    /// The upload's files under `dir` (a path without the leading `/`), read now (blocking).
    pub(super) fn files_under(&self, dir: &str) -> Result<Vec<InputFile>, BuilderError> {
        let mut files = Vec::with_capacity(self.files.len() + 1);
        for (name, path) in &self.files {
            let content = std::fs::read(path).map_err(|source| BuilderError::Io {
                action: "reading the build cache to restore",
                path: path.clone(),
                source,
            })?;
            files.push(InputFile { path: format!("{dir}/{name}"), content, mode: 0o444 });
        }
        if let Some(b) = self.built {
            files.push(InputFile { path: format!("{dir}/built"), content: format!("{b}\n").into_bytes(), mode: 0o444 });
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_and_the_second_go_under_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let deps = dir.path().join("blob");
        std::fs::write(&deps, b"gzipped").unwrap();
        let r = Restore { files: vec![("deps.tar.gz".into(), deps)], built: Some(1_700_000_000), keep: Vec::new() };
        let files = r.files_under("build/req/1/restore").unwrap();
        let got: Vec<(&str, &[u8], u32)> =
            files.iter().map(|f| (f.path.as_str(), f.content.as_slice(), f.mode)).collect();
        assert_eq!(
            got,
            [
                ("build/req/1/restore/deps.tar.gz", &b"gzipped"[..], 0o444),
                ("build/req/1/restore/built", &b"1700000000\n"[..], 0o444)
            ]
        );
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let r = Restore { files: vec![("app.tar.gz".into(), "/nonexistent/blob".into())], ..Restore::default() };
        let e = r.files_under(DIR).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/blob"), "{e}");
    }
}
