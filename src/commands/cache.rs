//! `release-oci cache ls|prune`: the Docker builder's build cache volumes (labelled
//! `org.release-oci.role=build-cache`), and for `prune` the blob store's result cache records
//! too (a pruned project's next build runs the builder); `release-oci cache verify|gc`: the blob
//! store. See docs/build-cache.md.

use crate::builder::{self, cache};
use crate::cli::{CacheArgs, CacheCommand, StoreArg};
use crate::result_cache::{ResultCache, ResultCacheError};
use crate::sink::human_size;
use crate::store::{BlobStore, GcReport, REPAIR_HINT, StoreError, VerifyReport};
use anyhow::Context;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// How long a temp file must have been left alone before `cache gc` deletes it.
const TEMP_FILE_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot open the blob store {root}")]
    Open {
        root: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("cannot check the blob store {root}")]
    Verify {
        root: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("cannot clean the blob store {root}")]
    Gc {
        root: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("cannot forget the result cache records of the blob store {root}")]
    Forget {
        root: PathBuf,
        #[source]
        source: ResultCacheError,
    },
    #[error("cannot forget the minimal base records of the blob store {root}")]
    ForgetBases {
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{count} damaged blob(s) in the blob store {root} (listed on stdout); {REPAIR_HINT} to move them aside")]
    Damaged { count: usize, root: PathBuf },
    #[error(
        "{count} damaged blob(s) in the blob store {root} were moved to {root}/quarantine; the next build makes or \
         fetches them again, `release-oci cache gc` deletes them"
    )]
    Repaired { count: usize, root: PathBuf },
}

/// Runs the subcommand; returns what goes to stdout. `verify` with damaged blobs prints its report
/// itself and fails (exit code 1).
pub async fn run(args: &CacheArgs) -> anyhow::Result<String> {
    match &args.command {
        CacheCommand::Verify { repair, store } => {
            let (report, failure) = verify(store, *repair)?;
            match failure {
                Some(e) => {
                    print!("{report}");
                    Err(e.into())
                }
                None => Ok(report),
            }
        }
        CacheCommand::Gc { store } => Ok(gc(store)?),
        CacheCommand::Ls => volumes(args).await,
        CacheCommand::Prune { store } => {
            let project = canonical_project(args)?;
            let mut out = forget_results(store, project.as_deref())?;
            if project.is_none() {
                let root = store.cache_dir.clone().unwrap_or_else(BlobStore::default_root);
                let removed = crate::builder::cross::image_files::forget(&root)
                    .with_context(|| format!("removing {}", root.join("image-files").display()))?;
                if let Some(dir) = removed {
                    let _ = writeln!(out, "removed the files read out of builder images {}", dir.display());
                }
            }
            out.push_str(&volumes(args).await?);
            Ok(out)
        }
    }
}

/// `--project DIR`, canonical (as builds record it).
fn canonical_project(args: &CacheArgs) -> anyhow::Result<Option<PathBuf>> {
    args.project.as_ref().map(|p| p.canonicalize().with_context(|| format!("--project {}", p.display()))).transpose()
}

/// `cache prune`: the result cache and minimal base records of `project` (all without it)
/// removed, one line each.
pub fn forget_results(arg: &StoreArg, project: Option<&std::path::Path>) -> Result<String, CacheError> {
    let store = open(arg)?;
    let root = store.root().to_path_buf();
    let removed =
        ResultCache::new(&store).forget(project).map_err(|source| CacheError::Forget { root: root.clone(), source })?;
    let bases = crate::minimal::cache::forget_project(&store, project)
        .map_err(|source| CacheError::ForgetBases { root, source })?;
    let mut out = String::new();
    for path in removed {
        let _ = writeln!(out, "removed result cache record {}", path.display());
    }
    for path in bases {
        let _ = writeln!(out, "removed minimal base records {}", path.display());
    }
    Ok(out)
}

fn open(arg: &StoreArg) -> Result<BlobStore, CacheError> {
    let root = arg.cache_dir.clone().unwrap_or_else(BlobStore::default_root);
    BlobStore::open(&root).map_err(|source| CacheError::Open { root, source })
}

/// `cache verify`: the report (one line per damaged blob, then a summary) and, when any blob was
/// damaged, the error to exit with.
pub fn verify(arg: &StoreArg, repair: bool) -> Result<(String, Option<CacheError>), CacheError> {
    let store = open(arg)?;
    let root = store.root().to_path_buf();
    let report = store.verify_all(repair).map_err(|source| CacheError::Verify { root: root.clone(), source })?;
    let text = verify_text(&report);
    let count = report.damaged.len();
    let failure = match (count, repair) {
        (0, _) => None,
        (_, false) => Some(CacheError::Damaged { count, root }),
        (_, true) => Some(CacheError::Repaired { count, root }),
    };
    Ok((text, failure))
}

fn verify_text(report: &VerifyReport) -> String {
    let mut out = String::new();
    for d in &report.damaged {
        let _ = write!(out, "damaged\t{}\texpected {}\tfound: {}", d.path.display(), d.digest, d.found);
        match &d.moved_to {
            Some(to) => {
                let _ = writeln!(out, "\tmoved to {}", to.display());
            }
            None => out.push('\n'),
        }
    }
    let _ = writeln!(
        out,
        "checked {} blobs ({}): {} damaged",
        report.checked,
        human_size(report.bytes),
        report.damaged.len()
    );
    out
}

/// `cache gc`: what was deleted.
pub fn gc(arg: &StoreArg) -> Result<String, CacheError> {
    let store = open(arg)?;
    let root = store.root().to_path_buf();
    let report = store.gc(TEMP_FILE_AGE).map_err(|source| CacheError::Gc { root, source })?;
    Ok(gc_text(&report))
}

fn gc_text(report: &GcReport) -> String {
    let mut out = String::new();
    for p in report.temp_files.iter().chain(&report.quarantined) {
        let _ = writeln!(out, "removed {}", p.display());
    }
    let _ = writeln!(
        out,
        "removed {} temp files, {} quarantined blobs, {} stale records ({}); blobs are never removed by gc",
        report.temp_files.len(),
        report.quarantined.len(),
        report.records,
        human_size(report.bytes)
    );
    out
}

/// `cache ls` and `cache prune`: the builder's volumes, through Docker.
async fn volumes(args: &CacheArgs) -> anyhow::Result<String> {
    let project = canonical_project(args)?.map(|p| p.display().to_string());
    let docker = builder::docker::connect().await?;
    let mut out = String::new();
    if matches!(args.command, CacheCommand::Ls) {
        for v in cache::list(&docker, project.as_deref()).await? {
            let used = if v.used_by.is_empty() { "-".to_string() } else { v.used_by.join(",") };
            writeln!(
                out,
                "{}\t{}\t{}\tMIX_ENV={}\t{}\tin use: {used}",
                v.name, v.project, v.triple, v.mix_env, v.builder_image
            )?;
        }
    } else {
        let pruned = cache::prune(&docker, project.as_deref()).await?;
        for name in &pruned.removed {
            writeln!(out, "removed {name}")?;
        }
        for (name, why) in &pruned.kept {
            writeln!(out, "kept {name} ({why})")?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn store() -> (tempfile::TempDir, StoreArg, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let arg = StoreArg { cache_dir: Some(dir.path().to_path_buf()) };
        let store = open(&arg).unwrap();
        (dir, arg, store)
    }

    /// Regression: `cache prune --project DIR` left the project's result cache records, and the
    /// next build reused its image instead of building.
    #[test]
    fn prune_forgets_the_results_of_the_project_only() {
        let (_dir, arg, store) = store();
        let cache = ResultCache::new(&store);
        let image = crate::image::Image {
            manifest: b"{}".to_vec(),
            manifest_digest: store.put(b"{}").unwrap().0,
            config: b"{}".to_vec(),
            config_digest: store.put(b"{}").unwrap().0,
            layers: Vec::new(),
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        };
        let images = [crate::result_cache::CachedImage { release: "a".into(), version: "1".into(), image }];
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let key = |v: &str| crate::result_cache::KeyBuilder::new().part("p", v).finish();
        cache.record(&key("a"), &a.path().canonicalize().unwrap(), &images).unwrap();
        cache.record(&key("b"), &b.path().canonicalize().unwrap(), &images).unwrap();
        let args = CacheArgs { command: CacheCommand::Prune { store: arg.clone() }, project: Some(a.path().into()) };
        let project = canonical_project(&args).unwrap();
        let out = forget_results(&arg, project.as_deref()).unwrap();
        assert!(out.starts_with("removed result cache record ") && out.contains(key("a").hex()), "{out}");
        assert_eq!((cache.lookup(&key("a")), cache.lookup(&key("b")).is_some()), (None, true));
        assert!(forget_results(&arg, None).unwrap().contains(key("b").hex()));
        assert_eq!(cache.lookup(&key("b")), None);
    }

    #[test]
    fn verify_lists_each_damaged_blob_and_fails_until_repaired() {
        let (dir, arg, store) = store();
        let (good, _) = store.put(b"good").unwrap();
        let (bad, _) = store.put(b"bad blob").unwrap();
        fs::write(store.blob_path(&bad), b"bad").unwrap();

        let (text, failure) = verify(&arg, false).unwrap();
        let path = store.blob_path(&bad).display().to_string();
        let line = text.lines().find(|l| l.starts_with("damaged")).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(&path) && line.contains(&format!("expected {bad}")), "{line}");
        assert!(line.contains("found: holds 3 bytes with digest sha256:"), "{line}");
        assert!(text.ends_with("checked 2 blobs (7 B): 1 damaged\n"), "{text}");
        let err = failure.expect("damaged blobs must fail").to_string();
        assert!(err.contains("1 damaged blob(s)") && err.contains("cache verify --repair"), "{err}");
        assert!(store.blob_path(&bad).exists(), "moved without --repair");

        let (text, failure) = verify(&arg, true).unwrap();
        assert!(text.contains("moved to") && matches!(failure, Some(CacheError::Repaired { count: 1, .. })), "{text}");
        assert!(!store.blob_path(&bad).exists());
        let (text, failure) = verify(&arg, false).unwrap();
        assert!(failure.is_none() && text == "checked 1 blobs (4 B): 0 damaged\n", "{text}");
        assert!(store.contains(&good));

        let text = gc(&arg).unwrap();
        assert!(text.contains("removed 0 temp files, 1 quarantined blobs"), "{text}");
        assert_eq!(fs::read_dir(dir.path().join("quarantine")).unwrap().count(), 0);
    }
}
