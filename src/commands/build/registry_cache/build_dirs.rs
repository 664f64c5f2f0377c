//! The build's side of the build-dirs cache in the registry ([`crate::registry_cache::build_dirs`],
//! `--cache-repo`, docs/build-cache.md): before the builder, a new cache volume is filled from
//! the best artifacts the cache repository has for this toolchain (the exact deps; the app of
//! these sources, else the latest one built with these deps; the latest release cache of these
//! deps, which the builder reuses only when its fingerprint matches); after it, what the registry lacks
//! is read from the volume and, once the build has succeeded, published. Like the rest of the
//! registry cache it never fails a build: anything that goes wrong is a warning.

mod layers;
mod restore;
mod save;

pub(in crate::commands::build) use layers::Prefetch;
pub(in crate::commands::build) use save::publish;

use super::connect_scopes;
use crate::builder::cache::CacheKey;
use crate::builder::cache_dirs;
use crate::cli::BuildSettings;
use crate::commands::build::result_cache::Key;
use crate::project::{Project, ProjectKind};
use crate::registry::{Client, Reference};
use crate::registry_cache::build_dirs::{self as dirs, Found, KeyInputs, Keys, Kind, Meta, Toolchain, Want};
use crate::store::BlobStore;
use crate::ui;
use bollard::Docker;
use std::collections::BTreeSet;

/// What a build with `--cache-repo` knows of the build-dirs cache once the volume is ready.
pub(in crate::commands::build) struct Plan {
    repo: Reference,
    client: Client,
    keys: Keys,
    meta: Meta,
    /// This machine's cache volume for the build.
    volume: String,
    locked: BTreeSet<String>,
    /// A Mix project (the only kind with a release cache).
    mix: bool,
    /// What the cache repository has already (nothing to publish for it).
    has_deps: bool,
    has_app: bool,
    /// The latest release cache of these deps in the cache repository (checked).
    rel: Option<Found>,
    /// What the builder restores into the new volume (handed to it by [`Plan::take_restore`]).
    restore: Option<crate::builder::restore::Restore>,
    /// The published layers being fetched into the layer cache ([`Plan::take_prefetch`]).
    prefetch: Option<Prefetch>,
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
    let inputs = tokio::task::spawn_blocking(move || shim.inputs(&s2, &p)).await?;
    let client = Client::connect(&repo.registry, &s.registry, connect_scopes(repo, true, None)).await?;
    let mut plan = Plan::new(s, repo, project, key, &inputs, client);
    let (deps, app, rel, layers) = plan.exact().await?;
    (plan.has_deps, plan.has_app, plan.rel) = (deps.is_some(), app.is_some(), rel);
    plan.prefetch = layers.and_then(|found| layers::prefetch(s, &plan, store, found));
    if cache_dirs::volume_exists(docker, &plan.volume).await? {
        ui::detail(format!(
            "build cache: this machine's volume {} is there: nothing restored from {}",
            plan.volume,
            repo.repository_ref()
        ));
        return Ok(plan);
    }
    let app = match app {
        Some(a) => Some((a, true)),
        None => plan.latest_app().await?.map(|a| (a, false)),
    };
    if deps.is_none() && app.is_none() {
        ui::step(nothing_restored(&plan, &inputs).await);
        return Ok(plan);
    }
    plan.restore = restore::restore(&plan, project, store, deps, app).await;
    Ok(plan)
}

impl Plan {
    fn new(
        s: &BuildSettings,
        repo: &Reference,
        project: &Project,
        key: &Key,
        inputs: &KeyInputs,
        client: Client,
    ) -> Plan {
        let keys = inputs.keys();
        let locked = inputs.locks.iter().flat_map(|(f, c)| dirs::locked_deps(f, &String::from_utf8_lossy(c))).collect();
        let meta = Meta {
            kind: Kind::Deps,
            key: keys.deps.hex().to_string(),
            deps_key: keys.deps.hex().to_string(),
            toolchain: inputs.toolchain.clone(),
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
        Plan {
            repo: repo.clone(),
            client,
            keys,
            meta,
            volume: cache_key.volume_name(),
            locked,
            mix: project.kind() == ProjectKind::Mix,
            has_deps: false,
            has_app: false,
            rel: None,
            restore: None,
            prefetch: None,
        }
    }

    /// The fetch of the published layers, to wait for before the image's layers are written.
    pub(in crate::commands::build) fn take_prefetch(&mut self) -> Option<Prefetch> {
        self.prefetch.take()
    }

    /// What the builder restores into the new volume, if anything.
    pub(in crate::commands::build) fn take_restore(
        &mut self,
    ) -> Option<std::sync::Arc<crate::builder::restore::Restore>> {
        self.restore.take().map(std::sync::Arc::new)
    }

    /// The artifacts of exactly these keys (deps only when something is locked), and the latest
    /// release cache of these deps (Mix projects), each checked.
    #[allow(clippy::type_complexity)]
    async fn exact(&self) -> anyhow::Result<(Option<Found>, Option<Found>, Option<Found>, Option<Found>)> {
        let r = &self.repo.repository;
        let (deps_tag, app_tag, rel_tag) =
            (dirs::deps_tag(&self.keys), dirs::app_tag(&self.keys), dirs::rel_tag(&self.keys));
        let layers_tag = dirs::layers_tag(&self.keys);
        let (deps, app, rel, layers) = tokio::join!(
            async {
                match self.locked.is_empty() {
                    true => Ok(None),
                    false => dirs::find(&self.client, r, &deps_tag).await,
                }
            },
            dirs::find(&self.client, r, &app_tag),
            async {
                match self.mix {
                    true => dirs::find(&self.client, r, &rel_tag).await,
                    false => Ok(None),
                }
            },
            dirs::find(&self.client, r, &layers_tag)
        );
        let (toolchain, deps_key, app_key) =
            (&self.meta.toolchain, self.keys.deps.hex().to_string(), self.keys.app.hex().to_string());
        let deps_want = Want { kind: Kind::Deps, toolchain, key: Some(&deps_key), deps_key: Some(&deps_key) };
        let app_want = Want { kind: Kind::App, toolchain, key: Some(&app_key), deps_key: Some(&deps_key) };
        let rel_want = Want { kind: Kind::Rel, toolchain, key: None, deps_key: Some(&deps_key) };
        let layers_want = Want { kind: Kind::Layers, toolchain, key: None, deps_key: Some(&deps_key) };
        Ok((accept(deps?, &deps_want), accept(app?, &app_want), accept(rel?, &rel_want), accept(layers?, &layers_want)))
    }

    /// The latest app artifact built with these deps (other sources), checked.
    async fn latest_app(&self) -> anyhow::Result<Option<Found>> {
        let found = dirs::find(&self.client, &self.repo.repository, &dirs::last_tag(&self.keys)).await?;
        let deps_key = self.keys.deps.hex().to_string();
        let want = Want { kind: Kind::App, toolchain: &self.meta.toolchain, key: None, deps_key: Some(&deps_key) };
        Ok(accept(found, &want))
    }
}

/// `found` when it is what `want` accepts; otherwise None, and a warning says why.
fn accept(found: Option<Found>, want: &Want<'_>) -> Option<Found> {
    let f = found?;
    match f.check(want) {
        Ok(()) => Some(f),
        Err(why) => {
            tracing::warn!(tag = %f.tag, "build cache: {why}; not used");
            None
        }
    }
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
    let settings = match inputs.project_kind.as_str() {
        "rebar3" => format!("profile {}", inputs.profile),
        _ => format!("MIX_ENV={}", inputs.mix_env),
    };
    let mut msg = format!(
        "Build cache: nothing to restore from {} for builder image {} ({}, {settings}): building from nothing",
        plan.repo.repository_ref(),
        t.builder_image_id,
        t.triple,
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
