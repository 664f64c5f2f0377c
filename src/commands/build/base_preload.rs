//! The base image is read (from the engine: exported, its layers compressed into the store once)
//! while the builder runs, not after it: on a cold build that is seconds of compression done on
//! the core the builder leaves idle; `/etc/passwd` and `/etc/group` are then read from it (and
//! remembered per layer). The minimal base is made from the builder's output, so it cannot start
//! early.

use crate::base::{self, BaseRef};
use crate::cli::BuildSettings;
use crate::image::BaseImage;
use crate::store::BlobStore;
use std::sync::Arc;
use tokio::sync::Notify;

/// A base being read; aborted when dropped unused (the build failed or was interrupted), which
/// removes its temporary files.
pub(super) struct Preload(tokio::task::JoinHandle<Result<Read, base::BaseError>>);

/// The base (None: scratch), and what was fetched from the cache repository for it.
type Read = (Option<BaseImage>, Option<String>);

impl Drop for Preload {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Preload {
    /// Starts reading the base of `s` (None for the minimal base).
    /// With `after`, it begins once that is notified (the builder container started).
    pub(super) fn start(
        s: &BuildSettings,
        docker: Option<&bollard::Docker>,
        store: &BlobStore,
        after: Option<Arc<Notify>>,
    ) -> Option<Preload> {
        if s.base == BaseRef::Minimal {
            return None;
        }
        let (base, docker, platform, store, registry) =
            (s.base.clone(), docker.cloned(), s.triple.platform(), store.clone(), s.registry.clone());
        let cache_repo = s.cache_repo.clone();
        Some(Preload(tokio::spawn(async move {
            if let Some(after) = after {
                after.notified().await;
            }
            // A fresh runner's engine base: from the cache repository rather than exported.
            let fetched = match (&base, &docker, &cache_repo) {
                (BaseRef::Daemon(name), Some(d), Some(repo)) => {
                    super::registry_cache::fetch_base(name, d, repo, &registry, &store).await
                }
                _ => None,
            };
            let image = base::load_with(&base, docker.as_ref(), &platform, &store, &registry).await?;
            // The files the build reads from the base: found now, remembered by layer (base::files).
            if let Some(layers) = image.as_ref().map(|b| b.layers.clone()) {
                let _ = tokio::task::spawn_blocking(move || {
                    let mut paths = vec!["etc/passwd", "etc/group"];
                    paths.extend(crate::supply::dpkg_status::FILES);
                    base::read_files_from_layers(&store, &layers, &paths)
                })
                .await;
            }
            Ok((image, fetched))
        })))
    }

    /// The base, once read, and what was fetched from the cache repository for it.
    pub(super) async fn finish(mut self) -> anyhow::Result<Read> {
        Ok((&mut self.0).await??)
    }
}
