//! After the build: what the cache repository lacks is read from the cache volume (a helper
//! container's tar, split into the layers as it streams), then published once the build has
//! succeeded.

use super::Plan;
use crate::builder::cache_dirs::{self, Dumped, ReadWants};
use crate::registry_cache::build_dirs::{self as dirs, Artifact, Kind, Meta, Split, SplitRequest};
use crate::store::BlobStore;
use crate::ui;
use anyhow::Context;
use bollard::Docker;

/// The artifacts read from the volume after the build, to publish once it has succeeded.
pub(in crate::commands::build) struct Saved {
    plan: Plan,
    artifacts: Vec<Artifact>,
    notes: Vec<String>,
    store: BlobStore,
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
        let rel_known = self.rel.as_ref().map(|r| r.annotation(dirs::ANN_KEY).to_string());
        let wants =
            ReadWants { deps: want_deps, locked: self.locked.clone(), rel: self.mix, rel_known: rel_known.clone() };
        let req = SplitRequest { locked: self.locked.clone(), deps: want_deps, app: want_app, rel: self.mix, secrets };
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
        let store2 = store.clone();
        let splitting = tokio::task::spawn_blocking(move || {
            dirs::split(ChannelReader { rx, buf: bytes::Bytes::new() }, &req, &store2)
        });
        let image = self.meta.toolchain.builder_image_id.clone();
        let dumped = cache_dirs::read(docker, &image, &self.volume, &wants, tx).await;
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
        match split.rel.as_ref().filter(|_| !leaked(Kind::Rel)) {
            // Its key is another than the registry's (the read helper compared them).
            Some((rel, key)) if self.rel.as_ref().is_none_or(|r| r.annotation(dirs::ANN_KEY) != key) => {
                let meta = Meta { kind: Kind::Rel, key: key.clone(), ..self.meta.clone() };
                let tags = vec![dirs::rel_tag(&self.keys)];
                artifacts.push(Artifact::new(&meta, &[("rel.tar.gz", rel)], store, tags));
            }
            _ if self.rel.is_some() => notes.push("releases already there".into()),
            _ => {}
        }
        if self.has_deps {
            notes.push("deps already there".into());
        }
        Ok(Saved { plan: self, artifacts, notes, store: store.clone() })
    }
}

/// Publishes what [`Plan::save`] read, once the build has succeeded; a failure is a warning.
/// With it, the layers of `built` (`layers.rs`).
pub(in crate::commands::build) async fn publish(
    saving: tokio::task::JoinHandle<Option<Saved>>,
    built: &[crate::commands::build::BuiltImage],
) {
    let mut saved = match saving.await {
        Ok(Some(saved)) => saved,
        _ => return,
    };
    let image: Vec<_> = built.iter().flat_map(|b| b.image.layers.iter().cloned()).collect();
    saved.artifacts.extend(super::layers::artifact(&saved.plan.meta, &saved.plan.keys, &image, &saved.store));
    if saved.artifacts.is_empty() && saved.notes.is_empty() {
        return;
    }
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
