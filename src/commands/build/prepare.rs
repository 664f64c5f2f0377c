//! The start of a build: the project (its sources checked), the blob store, the engine, the
//! leftovers of killed builds removed, and an earlier build's result reused when nothing changed;
//! and `--from-release`'s release, read in place of a builder's.

use super::{BuiltImage, registry_cache, result_cache};
use crate::builder::{self, Assembled};
use crate::cli::{BuildSettings, BuilderKind};
use crate::prebuilt::{self, TiniSource};
use crate::project::Project;
use crate::sink::Target;
use crate::store::BlobStore;
use crate::ui;
use anyhow::{Context, bail};

/// What a build starts from.
pub(super) struct Prepared {
    /// None for a `--from-release` build without a project directory.
    pub project: Option<Project>,
    pub store: BlobStore,
    pub docker: Option<bollard::Docker>,
    /// The engine the builder runs on: the platform's builder host (`--builder-host`), else the
    /// default engine. None when no builder container runs.
    pub builder: Option<builder::docker::Engine>,
    /// The result cache's key, when it applies and could be made.
    pub cache_key: Option<result_cache::Key>,
}

pub(super) enum Start {
    /// An earlier build made the same image(s): only the outputs were written.
    Reused(Vec<BuiltImage>),
    Build(Box<Prepared>),
}

/// Opens the project (its sources checked: a bad link fails here, before any builder), the
/// store and the engine (`connected`: the builder's engine, when choosing the builder connected
/// to it); reuses an earlier build's result when nothing changed (docs/build-cache.md); else
/// removes what killed builds left ([`builder::leftovers`]) before the build.
pub(super) async fn prepare(s: &BuildSettings, connected: Option<builder::docker::Engine>) -> anyhow::Result<Start> {
    let project = open_project(s).await?;
    let store = BlobStore::open(&s.cache_dir).with_context(|| format!("blob cache {}", s.cache_dir.display()))?;
    // Fail on unwritable outputs before the (long) build, not after it.
    for out in &s.outputs {
        check_writable(out)?;
    }
    let (docker, engine) = engines(s, connected).await?;
    let cache_key = match (&project, &engine) {
        (Some(p), Some(b)) if result_cache::applies(s) => {
            let base_engine = docker.as_ref().unwrap_or(&b.docker);
            result_cache::fingerprint(s, p, &b.docker, base_engine, &store).await
        }
        _ => None,
    };
    if let Some(key) = cache_key.as_ref().filter(|_| !s.no_cache) {
        if let Some(hit) = result_cache::lookup(&store, key).await {
            return Ok(Start::Reused(result_cache::reuse(s, hit, &store, docker.as_ref()).await?));
        }
        // Not here: another machine may have built it (`--cache-repo`).
        if let Some(built) = registry_cache::reuse(s, key, &store, docker.as_ref()).await? {
            return Ok(Start::Reused(built));
        }
    }
    sweep(s, docker.as_ref(), engine.as_ref()).await;
    Ok(Start::Build(Box::new(Prepared { project, store, docker, builder: engine, cache_key })))
}

/// The project, its sources checked; None for a `--from-release` build outside a project (a
/// prebuilt release needs none: the directory, when it is one, gives git facts and lock files).
async fn open_project(s: &BuildSettings) -> anyhow::Result<Option<Project>> {
    if s.from_release.is_some() {
        return Ok(Project::open(&s.project).ok());
    }
    let project = Project::open(&s.project)?;
    // A release that the project's files show it does not have: refused before any builder.
    builder::known_releases::check(&project, s.release.as_deref())?;
    let p = project.clone();
    tokio::task::spawn_blocking(move || p.source_files()).await??;
    Ok(Some(project))
}

/// The default engine (DOCKER_HOST: it holds the base and takes --load), when the build needs it,
/// and the engine that runs the builder (the platform's builder host, else the default one);
/// `connected` is the latter, connected already.
async fn engines(
    s: &BuildSettings,
    connected: Option<builder::docker::Engine>,
) -> anyhow::Result<(Option<bollard::Docker>, Option<builder::docker::Engine>)> {
    let builds = s.from_release.is_none() && s.builder == BuilderKind::Docker;
    let tini_from_image = s.from_release.is_some() && s.tini.is_none();
    let builder_host = s.builder_host().filter(|_| builds);
    let needs_docker = (builds && builder_host.is_none()) || tini_from_image || s.base.needs_docker() || s.load;
    let (connected_default, connected_host) = match builder_host {
        Some(_) => (None, connected),
        None => (connected, None),
    };
    let default = match (needs_docker, connected_default) {
        (false, _) => None,
        (true, Some(e)) => Some(e),
        (true, None) => Some(builder::docker::default_engine().await?),
    };
    let engine = match builder_host {
        Some(endpoint) => {
            let platform = s.triple.platform().to_string();
            let engine = match connected_host {
                Some(e) => e,
                None => builder::docker::connect_builder_host(endpoint, &platform).await?,
            };
            ui::step(format!("Builder engine {endpoint} for {platform}"));
            Some(engine)
        }
        None => default.clone().filter(|_| builds),
    };
    Ok((default.map(|e| e.docker), engine))
}

/// Removes what killed builds left on the engines (before a build: a result reused from a cache
/// starts no builder, and does not wait for this).
async fn sweep(s: &BuildSettings, docker: Option<&bollard::Docker>, engine: Option<&builder::docker::Engine>) {
    for removed in builder::leftovers::sweep(docker).await {
        ui::step(format!("Removed {removed}"));
    }
    let builds = s.from_release.is_none() && s.builder == BuilderKind::Docker;
    if let (Some(e), Some(_)) = (engine, s.builder_host().filter(|_| builds)) {
        match builder::leftovers::remove_dead_containers(&e.docker, None).await {
            Ok(removed) => removed.iter().for_each(|r| ui::step(format!("Removed {r} on {}", e.endpoint))),
            Err(err) => tracing::warn!(error = %err, "could not remove the builder containers of dead builds"),
        }
    }
}

/// Reads the release at `path` (`--from-release`): no builder.
pub(super) async fn from_release(
    s: &BuildSettings,
    path: &std::path::Path,
    project: Option<&Project>,
    docker: Option<&bollard::Docker>,
) -> anyhow::Result<Assembled> {
    ui::step(format!("Reading the release {} (no builder)", path.display()));
    let tini = match (&s.tini, docker) {
        (Some(t), _) => TiniSource::File(t.clone()),
        (None, Some(d)) => TiniSource::Image { docker: d, image: s.builder_image.clone() },
        (None, None) => {
            bail!("--from-release needs --tini FILE or the Docker engine (tini comes from the builder image)")
        }
    };
    let project_dir = project.map(|p| p.root.as_path());
    let a = prebuilt::open(path, project_dir, &s.triple, tini).await?;
    if let Some(wanted) = s.release.as_deref().filter(|r| *r != "all" && *r != a.release_name) {
        bail!("--release {wanted}: {} holds release {}", path.display(), a.release_name);
    }
    Ok(a)
}

/// The parent directory of an output must exist (or be creatable) and be writable.
fn check_writable(out: &Target) -> anyhow::Result<()> {
    let (path, is_dir) = match out {
        Target::OciLayout { dir, .. } => (dir.as_path(), true),
        Target::Archive { path } => (path.as_path(), false),
    };
    let parent = if is_dir { path } else { path.parent().unwrap_or(std::path::Path::new(".")) };
    let mut probe = parent;
    // The nearest existing ancestor must be a writable directory.
    loop {
        if probe.as_os_str().is_empty() {
            probe = std::path::Path::new(".");
        }
        if probe.exists() {
            break;
        }
        match probe.parent() {
            Some(p) => probe = p,
            None => break,
        }
    }
    if !probe.is_dir() {
        bail!("cannot write {out}: {} is not a directory", probe.display());
    }
    tempfile::tempfile_in(probe).with_context(|| format!("cannot write {out}: {} is not writable", probe.display()))?;
    Ok(())
}
