//! Releases assembled elsewhere (`build --from-release DIR|TARBALL`, for teams that build releases
//! in CI) and the checks every release gets before it is layered:
//! - [`elf`]: its ERTS and NIFs are for the target triple's machine and libc;
//! - [`base_erts`]: a release without ERTS (`include_erts: false`) needs exactly its ERTS in the
//!   base image;
//! - [`apps`]: own applications and dependencies told apart without the build tool;
//! - [`tini`]: the static tini comes from the builder image (or `--tini`).

pub mod apps;
pub mod base_erts;
pub mod elf;
pub mod tini;

use crate::builder::{Assembled, AssembledRelease, BuilderError};
use crate::release::{Release, ReleaseError};
use crate::triple::Triple;
use std::path::{Path, PathBuf};

pub use elf::ElfError;

#[derive(Debug, thiserror::Error)]
pub enum PrebuiltError {
    #[error("cannot read the release {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("cannot extract the release tarball {path}: {source} (expected a .tar.gz made by mix's :tar step)")]
    Tarball { path: PathBuf, source: std::io::Error },
    #[error(
        "{path} holds no release: expected a release directory (bin/, lib/, releases/start_erl.data) \
         or a tarball of one"
    )]
    NotARelease { path: PathBuf },
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Elf(#[from] ElfError),
    #[error(transparent)]
    Tini(#[from] tini::TiniError),
    #[error(transparent)]
    Builder(#[from] BuilderError),
}

/// Where the tini binary comes from.
pub enum TiniSource<'a> {
    /// A file given by the user (`--tini`).
    File(PathBuf),
    /// Copied out of an image of the Docker engine (the builder image).
    Image { docker: &'a bollard::Docker, image: String },
}

/// Reads the release at `path` (a directory, or a `.tar.gz`/`.tar` of one), checks that its
/// native code is for `triple`, tells its applications apart (with the lock files of `project`,
/// when there is one) and finds a tini for it.
pub async fn open(
    path: &Path,
    project: Option<&Path>,
    triple: &Triple,
    tini_source: TiniSource<'_>,
) -> Result<Assembled, PrebuiltError> {
    let io = |source| PrebuiltError::Open { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    let tmp = tempfile::Builder::new().prefix("release-oci-prebuilt-").tempdir().map_err(io)?;
    let root = if meta.is_dir() {
        path.canonicalize().map_err(io)?
    } else {
        let (tarball, dest) = (path.to_path_buf(), tmp.path().join("rel"));
        let dest2 = dest.clone();
        tokio::task::spawn_blocking(move || extract(&tarball, &dest2))
            .await
            .map_err(|e| io(std::io::Error::other(e.to_string())))??;
        dest
    };
    if !root.join("releases").join("start_erl.data").is_file() {
        return Err(PrebuiltError::NotARelease { path: path.to_path_buf() });
    }
    let release = Release::open(&root, None)?;
    elf::check_release(&root, triple)?;
    let names: Vec<String> = release.apps.iter().map(|a| a.name.clone()).collect();
    let (own, deps) = apps::classify(&names, project);
    let tini = match tini_source {
        TiniSource::File(p) => {
            if !p.is_file() {
                return Err(tini::TiniError::Missing { path: p }.into());
            }
            p
        }
        TiniSource::Image { docker, image } => tini::from_image(docker, &image, triple, tmp.path()).await?,
    };
    elf::check_file(&tini, triple)?;
    let releases = vec![AssembledRelease { name: release.name.clone(), dir: root }];
    Ok(Assembled::new(releases, tini, own, deps, None, Some(tmp))?)
}

/// Extracts a release tarball (gzip or not) into `dest`; the tar crate refuses entries that
/// would land outside it.
fn extract(tarball: &Path, dest: &Path) -> Result<(), PrebuiltError> {
    use std::io::{BufRead, BufReader};
    let err = |source| PrebuiltError::Tarball { path: tarball.to_path_buf(), source };
    let file = std::fs::File::open(tarball).map_err(err)?;
    let mut reader = BufReader::new(file);
    let gzip = reader.fill_buf().map_err(err)?.starts_with(&[0x1f, 0x8b]);
    let input: Box<dyn std::io::Read> =
        if gzip { Box::new(flate2::read::GzDecoder::new(reader)) } else { Box::new(reader) };
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(true);
    std::fs::create_dir_all(dest).map_err(err)?;
    archive.unpack(dest).map_err(err)
}

#[cfg(test)]
mod tests;
