//! The build's side of the build-dirs cache in the registry ([`crate::registry_cache::build_dirs`],
//! `--cache-repo`, docs/build-cache.md): before the builder, a new cache volume is filled from
//! the best artifacts the cache repository has for this toolchain (the exact deps; the app of
//! these sources, else the latest one built with these deps); after it, what the registry lacks
//! is read from the volume and, once the build has succeeded, published. Like the rest of the
//! registry cache it never fails a build: anything that goes wrong is a warning.

use super::connect_scopes;
use crate::builder::cache::CacheKey;
use crate::builder::cache_dirs::{self, Dumped, Filled};
use crate::cli::BuildSettings;
use crate::commands::build::result_cache::Key;
use crate::project::{Project, ProjectKind};
use crate::registry::{Client, Progress, Reference, Registry};
use crate::registry_cache::build_dirs::{
    self as dirs, Artifact, Found, KeyInputs, Keys, Kind, Listing, Meta, Split, SplitRequest, Toolchain, Want,
};
use crate::store::BlobStore;
use crate::ui;
use anyhow::Context;
use bollard::Docker;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// What a build with `--cache-repo` knows of the build-dirs cache once the volume is ready.
pub(in crate::commands::build) struct Plan {
    repo: Reference,
    client: Client,
    keys: Keys,
    meta: Meta,
    /// This machine's cache volume for the build, and its name.
    cache_key: CacheKey,
    volume: String,
    /// The builder image's name (the volume's label).
    builder_image: String,
    locked: BTreeSet<String>,
    /// What the cache repository has already (nothing to publish for it).
    has_deps: bool,
    has_app: bool,
}

/// Whether the build-dirs cache applies: `--cache-repo`, the cache volume (no `--no-cache`),
/// and a native target (an emulated or cross-compiled one builds elsewhere).
fn applies(s: &BuildSettings) -> bool {
    s.cache_repo.is_some() && !s.no_cache && crate::triple::Triple::host().as_ref() == Some(&s.triple)
}

/// Looks up the cache repository and fills this machine's cache volume when it is new. None
/// when it does not apply or the registry cannot be reached (a warning).
pub(in crate::commands::build) async fn prepare(
    s: &BuildSettings,
    project: &Project,
    key: &Key,
    docker: &Docker,
    store: &BlobStore,
) -> Option<Plan> {
    if !applies(s) {
        return None;
    }
    let repo = s.cache_repo.as_ref()?;
    match try_prepare(s, repo, project, key, docker, store).await {
        Ok(plan) => Some(plan),
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "build cache {}: cannot be read; building without it",
                repo.repository_ref()
            );
            None
        }
    }
}

async fn try_prepare(
    s: &BuildSettings,
    repo: &Reference,
    project: &Project,
    key: &Key,
    docker: &Docker,
    store: &BlobStore,
) -> anyhow::Result<Plan> {
    let shim = KeyShim { builder_id: key.builder_id.clone(), sources: key.sources.clone() };
    let (s2, p) = (s.clone(), project.clone());
    let key_inputs = tokio::task::spawn_blocking(move || shim.inputs(&s2, &p)).await?;
    let keys = key_inputs.keys();
    let locked: BTreeSet<String> =
        key_inputs.locks.iter().flat_map(|(f, c)| dirs::locked_deps(f, &String::from_utf8_lossy(c))).collect();
    let meta = Meta {
        kind: Kind::Deps,
        key: keys.deps.hex().to_string(),
        deps_key: keys.deps.hex().to_string(),
        toolchain: key_inputs.toolchain.clone(),
        mix_env: s.mix_env.clone(),
        profile: s.profile.clone(),
        architecture: s.triple.platform().architecture.to_string(),
    };
    let cache_key = CacheKey {
        project: project.root.display().to_string(),
        triple: s.triple.to_string(),
        builder_image_id: key.builder_id.clone(),
        mix_env: s.mix_env.clone(),
        profile: s.profile.clone(),
    };
    let volume = cache_key.volume_name();
    let client = Client::connect(&repo.registry, &s.registry, connect_scopes(repo, true, None)).await?;
    let r = &repo.repository;
    let (deps_tag, app_tag) = (dirs::deps_tag(&keys), dirs::app_tag(&keys));
    let (deps, app) = tokio::join!(
        async {
            match locked.is_empty() {
                true => Ok(None),
                false => dirs::find(&client, r, &deps_tag).await,
            }
        },
        dirs::find(&client, r, &app_tag)
    );
    let toolchain = &key_inputs.toolchain;
    let deps_key = keys.deps.hex().to_string();
    let deps_key = deps_key.as_str();
    let accept = |found: Option<Found>, want: Want<'_>| -> Option<Found> {
        let f = found?;
        match f.check(&want) {
            Ok(()) => Some(f),
            Err(why) => {
                tracing::warn!(tag = %f.tag, "build cache: {why}; not used");
                None
            }
        }
    };
    let deps = accept(deps?, Want { kind: Kind::Deps, toolchain, key: Some(deps_key), deps_key: Some(deps_key) });
    let app_key = keys.app.hex().to_string();
    let app_key = app_key.as_str();
    let app = accept(app?, Want { kind: Kind::App, toolchain, key: Some(app_key), deps_key: Some(deps_key) });
    let plan = Plan {
        repo: repo.clone(),
        client,
        keys,
        meta,
        cache_key,
        volume,
        builder_image: s.builder_image.clone(),
        locked,
        has_deps: deps.is_some(),
        has_app: app.is_some(),
    };
    if cache_dirs::volume_exists(docker, &plan.volume).await? {
        ui::detail(format!(
            "build cache: this machine's volume {} is there: nothing restored from {}",
            plan.volume,
            repo.repository_ref()
        ));
        return Ok(plan);
    }
    let exact = app.is_some();
    let app = match app {
        Some(a) => Some(a),
        None => accept(
            dirs::find(&plan.client, r, &dirs::last_tag(&plan.keys)).await?,
            Want { kind: Kind::App, toolchain, key: None, deps_key: Some(deps_key) },
        ),
    };
    if deps.is_none() && app.is_none() {
        ui::step(nothing_restored(&plan, &key_inputs).await);
        return Ok(plan);
    }
    restore(&plan, project, docker, store, deps, app.map(|a| (a, exact))).await;
    Ok(plan)
}

/// What makes the keys, with the two parts of [`Key`] the build-dirs cache uses.
struct KeyShim {
    builder_id: String,
    sources: crate::digest::Digest,
}

impl KeyShim {
    fn inputs(&self, s: &BuildSettings, project: &Project) -> KeyInputs {
        let read = |rel: &str| std::fs::read(project.root.join(rel)).ok().map(|c| (rel.to_string(), c));
        let files = |names: &[String]| names.iter().filter_map(|f| read(f)).collect::<Vec<_>>();
        let (locks, config) = match project.kind() {
            ProjectKind::Mix => {
                (files(&["mix.lock".into()]), files(&["config/config.exs".into(), format!("config/{}.exs", s.mix_env)]))
            }
            ProjectKind::Rebar3 => (files(&["rebar.lock".into()]), files(&["rebar.config".into()])),
        };
        KeyInputs {
            toolchain: Toolchain { builder_image_id: self.builder_id.clone(), triple: s.triple.to_string() },
            project_kind: project.kind().as_str().to_string(),
            mix_env: s.mix_env.clone(),
            profile: s.profile.clone(),
            locks,
            config,
            build_env: s.inputs.env.clone(),
            sources: self.sources.as_str().to_string(),
        }
    }
}

/// Why nothing was restored: the repository has nothing for these inputs and this toolchain;
/// when it has one for the same inputs and another toolchain, which.
async fn nothing_restored(plan: &Plan, inputs: &KeyInputs) -> String {
    let t = &inputs.toolchain;
    let mut msg = format!(
        "Build cache: nothing to restore from {} for builder image {} ({}, MIX_ENV={}): building from nothing",
        plan.repo.repository_ref(),
        t.builder_image_id,
        t.triple,
        inputs.mix_env
    );
    if let Ok(Some(other)) = dirs::find(&plan.client, &plan.repo.repository, &dirs::any_tag(&plan.keys)).await {
        let found = other.toolchain();
        if !t.matches(&found) {
            msg.push_str(&format!(
                "; its latest for these locks and settings was built by builder image {} ({}): never restored across toolchains",
                found.builder_image_id, found.triple
            ));
        }
    }
    msg
}

/// Downloads the artifacts' layers and fills the new volume; a failure is a warning (the build
/// then starts from nothing, as without `--cache-repo`).
async fn restore(
    plan: &Plan,
    project: &Project,
    docker: &Docker,
    store: &BlobStore,
    deps: Option<Found>,
    app: Option<(Found, bool)>,
) {
    let task = ui::task(format!("Restoring the build cache from {}", plan.repo.repository_ref()));
    match try_restore(plan, project, docker, store, deps, app).await {
        Ok(summary) => task.done(summary),
        Err(e) => {
            task.done("not restored");
            tracing::warn!(error = format!("{e:#}"), "build cache: not restored; building from nothing");
        }
    }
}

async fn try_restore(
    plan: &Plan,
    project: &Project,
    docker: &Docker,
    store: &BlobStore,
    deps: Option<Found>,
    app: Option<(Found, bool)>,
) -> anyhow::Result<String> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut said: Vec<String> = Vec::new();
    let mut bytes = 0;
    if let Some(d) = &deps {
        let layer = d.layer("deps.tar.gz").context("the deps artifact has no deps.tar.gz")?;
        bytes += download(plan, store, layer).await?;
        files.push(("deps.tar.gz".into(), store.blob_path(&layer.digest)));
        said.push(format!("deps ({})", d.tag));
    }
    let mut sources_tar = None;
    if let Some((a, exact)) = &app {
        let layer = a.layer("app.tar.gz").context("the app artifact has no app.tar.gz")?;
        let listing_layer = a.layer("sources.tar.gz").context("the app artifact has no sources.tar.gz")?;
        bytes += download(plan, store, listing_layer).await?;
        let path = store.blob_path(&listing_layer.digest);
        let listing = tokio::task::spawn_blocking(move || Listing::from_layer(std::fs::File::open(path)?))
            .await?
            .context("reading the sources' listing")?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if listing.newest() > now {
            said.push(format!(
                "not the app build ({}): its sources are dated after this machine's clock, so mix could not tell changed ones",
                a.tag
            ));
        } else {
            bytes += download(plan, store, layer).await?;
            files.push(("app.tar.gz".into(), store.blob_path(&layer.digest)));
            let p = project.clone();
            let (tmp, found) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let files = p.source_files()?;
                let tmp = tempfile::NamedTempFile::new()?;
                let w = std::io::BufWriter::new(tmp.reopen()?);
                let (mut w, found) = dirs::restore_sources(&p.root, &files, &listing, w)?;
                std::io::Write::flush(&mut w)?;
                Ok((tmp, found))
            })
            .await??;
            files.push(("src.tar".into(), tmp.path().to_path_buf()));
            sources_tar = Some(tmp);
            let how = if *exact { "these sources" } else { "other sources" };
            said.push(format!(
                "app built from {how} ({}): {} of {} source files unchanged",
                a.tag, found.unchanged, found.files
            ));
        }
    }
    if files.is_empty() {
        return Ok(said.join("; "));
    }
    crate::builder::cache::ensure_volume(docker, &plan.cache_key, &plan.builder_image).await?;
    let filled = cache_dirs::fill(docker, &plan.meta.toolchain.builder_image_id, &plan.volume, files).await?;
    drop(sources_tar);
    Ok(match filled {
        Filled::Done => format!("{} downloaded; {}", ui::bytes(bytes), said.join("; ")),
        Filled::Busy => "another build holds the volume: nothing restored".to_string(),
        Filled::NotNew => "another build filled the volume meanwhile: nothing restored".to_string(),
    })
}

/// Downloads a layer into the store (verified) unless it is there; the bytes downloaded.
async fn download(plan: &Plan, store: &BlobStore, layer: &dirs::FoundLayer) -> anyhow::Result<u64> {
    if store.contains(&layer.digest) {
        return Ok(0);
    }
    plan.client.get_blob(&plan.repo.repository, &layer.digest, layer.size, store, &Progress::hidden()).await?;
    Ok(layer.size)
}

/// The artifacts read from the volume after the build, to publish once it has succeeded.
pub(in crate::commands::build) struct Saved {
    plan: Plan,
    artifacts: Vec<Artifact>,
    notes: Vec<String>,
}

impl Plan {
    /// Reads from the volume what the cache repository lacks (a blocking thread splits it into
    /// the layers meanwhile); runs beside the rest of the build.
    pub(in crate::commands::build) fn save(
        self,
        docker: Docker,
        store: BlobStore,
        secrets: Vec<Vec<u8>>,
    ) -> tokio::task::JoinHandle<Option<Saved>> {
        tokio::spawn(async move {
            match self.try_save(&docker, &store, secrets).await {
                Ok(saved) => saved,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "build cache: not read from the volume; not published");
                    None
                }
            }
        })
    }

    async fn try_save(
        self,
        docker: &Docker,
        store: &BlobStore,
        secrets: Vec<Vec<u8>>,
    ) -> anyhow::Result<Option<Saved>> {
        let want_deps = !self.has_deps && !self.locked.is_empty();
        let want_app = !self.has_app;
        if !want_deps && !want_app {
            return Ok(None);
        }
        let req = SplitRequest { locked: self.locked.clone(), deps: want_deps, app: want_app, secrets };
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
        let store2 = store.clone();
        let splitting = tokio::task::spawn_blocking(move || {
            dirs::split(ChannelReader { rx, buf: bytes::Bytes::new() }, &req, &store2)
        });
        let image = self.meta.toolchain.builder_image_id.clone();
        let dumped = cache_dirs::read(docker, &image, &self.volume, want_deps, &self.locked, tx).await;
        let split = splitting.await?;
        match dumped? {
            Dumped::Sent => {}
            Dumped::Busy => {
                ui::detail("build cache: another build holds the volume: not published");
                return Ok(None);
            }
            Dumped::Nothing => return Ok(None),
        }
        let split = split.context("splitting the volume's tar")?;
        let store = store.clone();
        tokio::task::spawn_blocking(move || self.artifacts(split, &store)).await?.map(Some)
    }

    fn artifacts(self, split: Split, store: &BlobStore) -> anyhow::Result<Saved> {
        let mut notes: Vec<String> = split
            .leaks
            .iter()
            .map(|l| format!("{} not published: a --secret value is in {}", l.kind.as_str(), l.path))
            .collect();
        let mut artifacts = Vec::new();
        let leaked = |k: Kind| split.leaks.iter().any(|l| l.kind == k);
        if let Some(deps) = split.deps.as_ref().filter(|_| !leaked(Kind::Deps)) {
            let meta = Meta { kind: Kind::Deps, ..self.meta.clone() };
            let tags = vec![dirs::deps_tag(&self.keys)];
            artifacts.push(Artifact::new(&meta, &[("deps.tar.gz", deps)], store, tags));
        }
        if let Some(app) = split.app.as_ref().filter(|_| !leaked(Kind::App)) {
            let listing = split.listing.to_layer(store)?;
            let meta = Meta { kind: Kind::App, key: self.keys.app.hex().to_string(), ..self.meta.clone() };
            let tags = vec![dirs::app_tag(&self.keys), dirs::last_tag(&self.keys), dirs::any_tag(&self.keys)];
            artifacts.push(Artifact::new(&meta, &[("app.tar.gz", app), ("sources.tar.gz", &listing)], store, tags));
        }
        if self.has_deps {
            notes.push("deps already there".into());
        }
        Ok(Saved { plan: self, artifacts, notes })
    }
}

/// Publishes what [`Plan::save`] read, once the build has succeeded; a failure is a warning.
pub(in crate::commands::build) async fn publish(saving: tokio::task::JoinHandle<Option<Saved>>) {
    let saved = match saving.await {
        Ok(Some(saved)) if !saved.artifacts.is_empty() || !saved.notes.is_empty() => saved,
        _ => return,
    };
    let place = saved.plan.repo.repository_ref();
    let task = ui::task(format!("Publishing the build cache to {place}"));
    let mut said = Vec::new();
    for a in &saved.artifacts {
        match dirs::publish(&saved.plan.client, &saved.plan.repo.repository, a).await {
            Ok(summary) => said.push(format!(
                "{} {} ({}, {})",
                a.kind.as_str(),
                ui::bytes(a.bytes),
                a.tags.first().map(String::as_str).unwrap_or_default(),
                summary
            )),
            Err(e) => {
                said.push(format!("{} not published", a.kind.as_str()));
                tracing::warn!(error = %e, "build cache {place}: the {} artifact was not published", a.kind.as_str());
            }
        }
    }
    said.extend(saved.notes.iter().cloned());
    task.done(said.join("; "));
}

/// A blocking reader of the bytes a channel brings; the channel's end is the end of file.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    buf: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.buf = chunk,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}
