//! The build's side of the registry cache ([`crate::registry_cache`], `--cache-repo`): the
//! portable fingerprint, reusing a result another machine published (no builder at all; a
//! `--push` to the same registry mounts the blobs, local outputs download them), and publishing a
//! new result. The cache never fails a build: a registry that is down or a damaged entry is a
//! warning and the build runs; a failed publish is a warning too. See docs/build-cache.md.

pub(super) mod build_dirs;

use super::result_cache::Key;
use super::{BuiltImage, outputs, releases};
use crate::base::BaseRef;
use crate::cli::BuildSettings;
use crate::digest::Digest;
use crate::image::{Artifact, Image};
use crate::output::RegistrySink;
use crate::registry::{self, BlobRef, Client, PushImage, PushTarget, Reference};
use crate::registry_cache::{self as cache, tag};
use crate::result_cache::{CachedImage, Fingerprint, KeyBuilder, ResultCache};
use crate::sink::Blobs;
use crate::store::BlobStore;
use crate::ui;
use anyhow::{Context, bail};
use bollard::Docker;
use std::collections::HashSet;

/// The fingerprint shared through the registry: the local one's parts without the machine-local
/// ones (the project's path, the executable's path and time), the executable by its build ID (or sha256).
pub(super) async fn portable_key(s: &BuildSettings, common: &[(&str, String)]) -> anyhow::Result<Fingerprint> {
    let mut k = KeyBuilder::new();
    k.part("shared", "registry cache 1");
    super::result_cache::settings_parts(&mut k, s);
    k.part("tool", format!("{} {}", env!("CARGO_PKG_VERSION"), tool_digest().await?));
    for (name, value) in common {
        k.part(name, value);
    }
    let fp = k.finish();
    tracing::info!(key = fp.hex(), "registry cache key");
    Ok(fp)
}

/// This executable's identity (once per process; [`crate::exe_identity`]): the same binary on
/// every runner.
async fn tool_digest() -> anyhow::Result<String> {
    static DIGEST: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let d = DIGEST
        .get_or_try_init(|| async {
            tokio::task::spawn_blocking(|| -> anyhow::Result<String> {
                let exe = std::env::current_exe().context("finding this executable")?;
                crate::exe_identity::identity(&exe).with_context(|| format!("reading {}", exe.display()))
            })
            .await?
        })
        .await?;
    Ok(d.clone())
}

fn connect_scopes(repo: &Reference, push: bool, also: Option<&str>) -> Vec<String> {
    let mut scopes = vec![format!("repository:{}:{}", repo.repository, if push { "pull,push" } else { "pull" })];
    scopes.extend(also.map(|r| format!("repository:{r}:pull")));
    scopes
}

/// On a hit in `--cache-repo`: writes the outputs of the image(s) found there (no builder runs)
/// and returns them; None on a miss, or when the cache cannot be read (a warning).
pub(super) async fn reuse(
    s: &BuildSettings,
    key: &Key,
    store: &BlobStore,
    docker: Option<&Docker>,
) -> anyhow::Result<Option<Vec<BuiltImage>>> {
    let (Some(repo), Some(fp)) = (&s.cache_repo, &key.portable) else { return Ok(None) };
    let (place, tag) = (repo.repository_ref(), tag(fp));
    let found = async {
        let client = Client::connect(&repo.registry, &s.registry, connect_scopes(repo, false, None)).await?;
        let hit = cache::lookup(&client, &repo.repository, fp, store).await?;
        anyhow::Ok(hit.map(|h| (client, h)))
    };
    let (client, images) = match found.await {
        Ok(Some(found)) => found,
        Ok(None) => {
            ui::detail(format!("registry cache: no result for this fingerprint in {place} ({tag}): building"));
            return Ok(None);
        }
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "registry cache {place}: cannot be read; building");
            return Ok(None);
        }
    };
    ui::step(format!("Reusing the image built for this fingerprint from {place} ({tag}): no builder runs"));
    Hit { s, repo, client: &client, store, docker }.write(key, images).await
}

/// A result found in the cache repository, and what writing its outputs needs.
struct Hit<'a> {
    s: &'a BuildSettings,
    repo: &'a Reference,
    client: &'a Client,
    store: &'a BlobStore,
    docker: Option<&'a Docker>,
}

impl Hit<'_> {
    /// The outputs of every image; None when the layers cannot be downloaded (the build runs).
    async fn write(&self, key: &Key, images: Vec<CachedImage>) -> anyhow::Result<Option<Vec<BuiltImage>>> {
        let s = self.s;
        let several = images.len() > 1;
        if several && s.push.is_some() {
            bail!("--push takes one image: build one release with --release NAME and push it");
        }
        let names = images
            .iter()
            .map(|c| releases::outputs_for(s, &c.release, &c.version, several))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mount_only = self.mount_only();
        if !mount_only && let Err(e) = self.download(key, &images).await {
            tracing::warn!(error = format!("{e:#}"), "registry cache: downloading the layers failed; building");
            return Ok(None);
        }
        let mut built = Vec::new();
        for (c, names) in images.into_iter().zip(names) {
            ui::detail(format!("{} {} {}", c.release, c.version, c.image.manifest_digest));
            crate::supply::gather::reused(&s.supply, &c.image.manifest_digest, self.store)?;
            if !(mount_only && self.push_mounted(&c.image).await) {
                if mount_only {
                    self.download(key, std::slice::from_ref(&c)).await?;
                }
                self.write_outputs(&c.image, &names).await?;
            }
            built.push(BuiltImage { release: c.release, version: c.version, image: c.image });
        }
        Ok(Some(built))
    }

    /// Only a push to the cache's own registry: every blob is mounted, none downloaded.
    fn mount_only(&self) -> bool {
        let s = self.s;
        s.outputs.is_empty() && !s.load && s.push.as_ref().is_some_and(|p| p.reference.registry == self.repo.registry)
    }

    /// The layers into the blob store; the result recorded in the local result cache.
    async fn download(&self, key: &Key, images: &[CachedImage]) -> anyhow::Result<()> {
        let n = cache::download_layers(self.client, &self.repo.repository, images, self.store).await?;
        ui::detail(format!("downloaded {n} layers from {}", self.repo.repository_ref()));
        let project = self.s.project.canonicalize().unwrap_or_else(|_| self.s.project.clone());
        if let Err(e) = ResultCache::new(self.store).record(&key.fingerprint, &project, images) {
            tracing::warn!(error = %e, "cannot record the reused result in the result cache");
        }
        Ok(())
    }

    /// `--push` with every blob mounted from the cache repository; false (a warning) when that
    /// failed, e.g. the registry declined a mount: the caller downloads and pushes.
    async fn push_mounted(&self, image: &Image) -> bool {
        match self.try_push_mounted(image).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "pushing with mounts from the registry cache failed; downloading"
                );
                false
            }
        }
    }

    async fn try_push_mounted(&self, image: &Image) -> anyhow::Result<()> {
        let (s, store) = (self.s, self.store);
        let push = s.push.as_ref().context("no --push")?;
        let reference = push.reference.repository_ref();
        let scopes = connect_scopes(&push.reference, true, Some(&self.repo.repository));
        let client = Client::connect(&push.reference.registry, &s.registry, scopes).await?;
        // Nothing is read from these files while the registry mounts the blobs.
        let pushed = PushImage {
            manifest: image.manifest.clone(),
            manifest_digest: image.manifest_digest.clone(),
            media_type: media_type(&image.manifest),
            config: BlobRef::stored(store, &image.config_digest, image.config.len() as u64, "config"),
            layers: image
                .layers
                .iter()
                .map(|l| BlobRef::stored(store, &l.digest, l.size, format!("layer {}", l.name)))
                .collect(),
        };
        let target = PushTarget {
            repository: push.reference.repository.clone(),
            tags: push.tags.clone(),
            mount_from: Some(self.repo.repository.clone()),
            mountable: image.blob_digests().into_iter().cloned().collect(),
        };
        let from = self.repo.repository_ref();
        ui::step(format!("Pushing the image to {reference} (tags: {}), mounting from {from}", push.tags.join(", ")));
        let bars = registry::Bars::new();
        let summary = match crate::supply::gather::for_push(&s.supply, &image.manifest_digest, store)? {
            Some(a) => {
                let signer = s.supply.signer();
                crate::supply::publish::push_image(&client, &pushed, &target, &bars, &reference, &a, signer).await?
            }
            None => registry::push_image(&client, &pushed, &target, &bars).await?,
        };
        ui::step(format!("Pushed {reference}@{}", image.manifest_digest));
        ui::detail(summary.to_string());
        Ok(())
    }

    /// The outputs from the blob store; a `--push` to the cache's registry mounts from it.
    async fn write_outputs(&self, image: &Image, names: &releases::ReleaseOutputs) -> anyhow::Result<()> {
        let s = self.s;
        let local = BuildSettings { push: None, ..s.clone() };
        let cx = outputs::OutputContext { docker: self.docker, base: None, load_platform: None };
        let mut sinks = outputs::outputs(&local, names, &cx)?;
        if let Some(push) = &s.push {
            let mount = (push.reference.registry == self.repo.registry)
                .then(|| (self.repo.repository.clone(), image.blob_digests().into_iter().cloned().collect()));
            let (settings, options, supply) = (push.clone(), s.registry.clone(), s.supply.clone());
            sinks.push(RegistrySink { settings, options, mount, supply });
        }
        sinks.write(&Artifact::Image(image.clone()), &Blobs::Store(self.store.clone())).await?;
        Ok(())
    }
}

/// The manifest's own `mediaType`.
fn media_type(manifest: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(manifest).unwrap_or_default();
    v["mediaType"].as_str().unwrap_or(registry::MEDIA_OCI_MANIFEST).to_string()
}

/// Publishes what the build made as the result of its portable fingerprint, when `--cache-repo`
/// is given. A failure is a warning: the build itself succeeded.
pub(super) async fn publish(s: &BuildSettings, key: &Key, built: &[BuiltImage], store: &BlobStore, docker: &Docker) {
    let (Some(repo), Some(fp)) = (&s.cache_repo, &key.portable) else { return };
    let place = format!("{}:{}", repo.repository_ref(), tag(fp));
    let task = ui::task(format!("Publishing the result to the registry cache {place}"));
    match try_publish(s, repo, fp, built, store, docker).await {
        Ok(summary) => task.done(summary),
        Err(e) => {
            task.done("not published");
            tracing::warn!(error = format!("{e:#}"), "registry cache {place}: the result was not published");
        }
    }
}

async fn try_publish(
    s: &BuildSettings,
    repo: &Reference,
    fp: &Fingerprint,
    built: &[BuiltImage],
    store: &BlobStore,
    docker: &Docker,
) -> anyhow::Result<String> {
    // What `--push` just sent to the same registry is mounted, not uploaded again.
    let pushed = s.push.as_ref().filter(|p| p.reference.registry == repo.registry);
    let from = pushed.map(|p| p.reference.repository.clone());
    let client = Client::connect(&repo.registry, &s.registry, connect_scopes(repo, true, from.as_deref())).await?;
    let images: Vec<CachedImage> = built
        .iter()
        .map(|b| CachedImage { release: b.release.clone(), version: b.version.clone(), image: b.image.clone() })
        .collect();
    let digests: HashSet<Digest> = images.iter().flat_map(|c| c.image.blob_digests()).cloned().collect();
    let mount = from.map(|r| (r, digests));
    let summary = cache::publish(&client, &repo.repository, fp, &images, store, mount.clone()).await?;
    let base = match &s.base {
        BaseRef::Daemon(name) => publish_base(&client, repo, name, docker, store, mount).await,
        _ => String::new(),
    };
    Ok(format!("{summary}{base}"))
}

/// The engine base `name` recorded in the cache repository for fresh runners
/// ([`cache::base`]): what the summary adds; a failure is a warning.
async fn publish_base(
    client: &Client,
    repo: &Reference,
    name: &str,
    docker: &Docker,
    store: &BlobStore,
    mount: Option<(String, HashSet<Digest>)>,
) -> String {
    let published = async {
        let image = crate::base::daemon_image(docker, name, store).await?;
        let pushed =
            cache::base::publish_base(client, &repo.repository, &image.id, &image.diff_ids, store, mount).await?;
        anyhow::Ok(pushed.map(|_| cache::base::base_tag(&image.id)))
    };
    match published.await {
        Ok(Some(tag)) => format!("; base {name} recorded ({tag})"),
        Ok(None) => String::new(),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "registry cache: the base {name} was not recorded");
            String::new()
        }
    }
}

/// The engine base `name`, when the store lacks it, fetched from the cache repository `repo`
/// ([`cache::base`]): what the base's line says of it; None when nothing was fetched (the base
/// is then exported from the engine, as without `--cache-repo`). A failure is a warning.
pub(super) async fn fetch_base(
    name: &str,
    docker: &Docker,
    repo: &Reference,
    options: &registry::RegistryOptions,
    store: &BlobStore,
) -> Option<String> {
    let fetched = async {
        let image = crate::base::daemon_image(docker, name, store).await?;
        if image.stored {
            return anyhow::Ok(None);
        }
        let client = Client::connect(&repo.registry, options, connect_scopes(repo, false, None)).await?;
        let bytes = cache::base::fetch_base(&client, &repo.repository, &image.id, &image.diff_ids, store).await?;
        Ok(bytes.map(|b| {
            format!("from {} ({}, {})", repo.repository_ref(), cache::base::base_tag(&image.id), ui::bytes(b))
        }))
    };
    match fetched.await {
        Ok(said) => said,
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "registry cache: the base {name} was not fetched; exporting it");
            None
        }
    }
}
