//! `release-oci resolve`: ko-style image resolution. Every `release-oci://PATH` scalar in the
//! YAML is a project to build; each distinct project is built and pushed once (several at a time)
//! by a [`Publisher`], and the scalars are replaced with the pinned references it returns
//! (`REPO/NAME@sha256:...`). A `release-oci://PATH#name=PREFIX` scalar is a name made for that
//! image (the migration Job's): it becomes `PREFIX-` and the first digits of the image's digest.
//! The documents are printed in order, byte for byte apart from those scalars (see [`scan`]).

pub mod input;
pub mod scan;

#[cfg(test)]
mod tests;

pub use input::{Source, join, read_inputs};
pub use scan::{NAME_FRAGMENT, Reference, SCHEME, find_references, substitute};

use futures_util::{StreamExt, stream};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};

/// What a publisher's failure carries.
pub type PublishError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the project at a path and pushes the image; answers the digest-pinned reference.
pub trait Publisher: Sync {
    /// `path` is the project directory (canonical). The answer must be `REPO@sha256:HEX`.
    fn publish(&self, path: &Path) -> impl Future<Output = Result<String, PublishError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} has no .yaml or .yml files")]
    EmptyDir { path: PathBuf },
    #[error("{source_name} is not valid YAML: {error}")]
    Parse { source_name: String, error: scan::ScanError },
    #[error(
        "{source_name}, line {line}: {SCHEME}{target} names {path}, which cannot be opened ({error}); paths are \
         relative to the directory resolve runs in"
    )]
    Project { source_name: String, line: usize, target: String, path: PathBuf, error: std::io::Error },
    #[error("building and pushing {path} (referenced in {first_use}) failed: {error}")]
    Publish { path: PathBuf, first_use: String, error: PublishError },
    #[error("pushing {path} gave {reference:?}, which is not pinned by digest (REPO@sha256:HEX)")]
    NotPinned { path: PathBuf, reference: String },
}

/// A project to build, with where it was first referenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub path: PathBuf,
    pub first_use: String,
}

/// The references of one source, each with its project's canonical path.
pub type SourceRefs = Vec<(Reference, PathBuf)>;

/// Scans every source; answers the distinct projects (canonical paths, in order of first use)
/// and each source's references.
pub fn plan(sources: &[Source], base: &Path) -> Result<(Vec<Project>, Vec<SourceRefs>), ResolveError> {
    let mut projects: Vec<Project> = Vec::new();
    let mut all_refs = Vec::new();
    for src in sources {
        let refs =
            find_references(&src.text).map_err(|error| ResolveError::Parse { source_name: src.name.clone(), error })?;
        let mut with_paths = Vec::with_capacity(refs.len());
        for r in refs {
            let joined = base.join(&r.target);
            let path = joined.canonicalize().map_err(|error| ResolveError::Project {
                source_name: src.name.clone(),
                line: r.line,
                target: r.target.clone(),
                path: joined.clone(),
                error,
            })?;
            if !projects.iter().any(|p| p.path == path) {
                projects.push(Project { path: path.clone(), first_use: format!("{}, line {}", src.name, r.line) });
            }
            with_paths.push((r, path));
        }
        all_refs.push(with_paths);
    }
    Ok((projects, all_refs))
}

/// Resolves `sources`: builds and pushes each referenced project once (`jobs` at a time) and
/// returns the sources with the references replaced, in the same order.
pub async fn resolve<P: Publisher>(
    sources: &[Source],
    base: &Path,
    publisher: &P,
    jobs: usize,
) -> Result<Vec<Source>, ResolveError> {
    let (projects, refs) = plan(sources, base)?;
    let results: Vec<(Project, Result<String, PublishError>)> = stream::iter(projects)
        .map(|p| async move {
            let r = publisher.publish(&p.path).await;
            (p, r)
        })
        .buffered(jobs.max(1))
        .collect()
        .await;
    let mut pinned: HashMap<PathBuf, String> = HashMap::new();
    for (Project { path, first_use }, r) in results {
        let reference = r.map_err(|error| ResolveError::Publish { path: path.clone(), first_use, error })?;
        if !is_pinned(&reference) {
            return Err(ResolveError::NotPinned { path, reference });
        }
        pinned.insert(path, reference);
    }
    let out = sources
        .iter()
        .zip(refs)
        .map(|(src, refs)| {
            // Every path was published above, so each lookup finds its reference.
            let values: Vec<String> = refs.iter().map(|(r, p)| replacement(r, pinned.get(p))).collect();
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let refs: Vec<Reference> = refs.into_iter().map(|(r, _)| r).collect();
            Source { name: src.name.clone(), text: substitute(&src.text, &refs, &values) }
        })
        .collect();
    Ok(out)
}

/// What a reference becomes: the pinned image, or for a name, `PREFIX-` and its digest's digits.
fn replacement(r: &Reference, pinned: Option<&String>) -> String {
    let image = pinned.map(String::as_str).unwrap_or_default();
    match (&r.name_prefix, crate::k8s::naming::digest_hex(image)) {
        (Some(prefix), Some(hex)) => crate::k8s::naming::name_for_digest(prefix, hex),
        _ => image.to_string(),
    }
}

/// `NAME@sha256:` and 64 hex digits, written so that no YAML quoting is needed.
pub fn is_pinned(reference: &str) -> bool {
    let Some((name, hex)) = reference.rsplit_once("@sha256:") else { return false };
    !name.is_empty()
        && hex.len() == 64
        && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && scan::is_plain_safe(reference)
}
