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
use std::collections::BTreeSet;
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
/// when there is one) and finds a tini for it. The files are read off the async runtime.
pub async fn open(
    path: &Path,
    project: Option<&Path>,
    triple: &Triple,
    tini_source: TiniSource<'_>,
) -> Result<Assembled, PrebuiltError> {
    let (path2, project2, triple2) = (path.to_path_buf(), project.map(Path::to_path_buf), triple.clone());
    let (tmp, read) = blocking(path, move || -> Result<_, PrebuiltError> {
        let io = |source| PrebuiltError::Open { path: path2.clone(), source };
        let is_dir = std::fs::metadata(&path2).map_err(io)?.is_dir();
        let tmp = tempfile::Builder::new().prefix("release-oci-prebuilt-").tempdir().map_err(io)?;
        let read = read_release(&path2, is_dir, project2.as_deref(), &triple2, &tmp.path().join("rel"))?;
        Ok((tmp, read))
    })
    .await??;
    let tini = match tini_source {
        TiniSource::File(p) => {
            if !tokio::fs::metadata(&p).await.is_ok_and(|m| m.is_file()) {
                return Err(tini::TiniError::Missing { path: p }.into());
            }
            p
        }
        TiniSource::Image { docker, image } => tini::from_image(docker, &image, triple, tmp.path()).await?,
    };
    let (tini2, triple2) = (tini.clone(), triple.clone());
    blocking(path, move || elf::check_file(&tini2, &triple2)).await??;
    let releases = vec![AssembledRelease { name: read.release.name.clone(), dir: read.root }];
    Ok(Assembled::new(releases, tini, read.own, read.deps, None, Some(tmp))?)
}

/// A release read in place.
struct ReadRelease {
    /// The release directory (`path` itself, canonical, or where its tarball was extracted).
    root: PathBuf,
    release: Release,
    own: BTreeSet<String>,
    deps: BTreeSet<String>,
}

/// The release at `path` (a directory, else a tarball extracted to `dest`), its native code
/// checked against `triple`, its applications told apart.
fn read_release(
    path: &Path,
    is_dir: bool,
    project: Option<&Path>,
    triple: &Triple,
    dest: &Path,
) -> Result<ReadRelease, PrebuiltError> {
    let root = if is_dir {
        path.canonicalize().map_err(|source| PrebuiltError::Open { path: path.to_path_buf(), source })?
    } else {
        extract(path, dest)?;
        dest.to_path_buf()
    };
    if !root.join("releases").join("start_erl.data").is_file() {
        return Err(PrebuiltError::NotARelease { path: path.to_path_buf() });
    }
    let release = Release::open(&root, None)?;
    elf::check_release(&root, triple)?;
    let names: Vec<String> = release.apps.iter().map(|a| a.name.clone()).collect();
    let (own, deps) = apps::classify(&names, project);
    Ok(ReadRelease { root, release, own, deps })
}

/// Runs file work off the async runtime.
async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PrebuiltError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| PrebuiltError::Open { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) })
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
