//! The build's side of the minimal base (`--base minimal`) and of `--slim-erts`: what to ask the
//! builder for, leaving ERTS tools out, making the base from what the builder gathered (or reusing
//! the one an earlier build made: [`minimal::cache`]), and saying so in the image's annotations
//! and labels.

use crate::base::BaseRef;
use crate::builder::Assembled;
use crate::cli::{BuildSettings, BuilderKind};
use crate::image::BaseImage;
use crate::layer::TarOptions;
use crate::minimal::cache::{BaseCache, CachedBase, KeySettings};
use crate::minimal::{self, ElfListing, GatherOptions, MinimalError};
use crate::release::Release;
use crate::store::BlobStore;
use crate::{time, ui};
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What the builder must gather (None when the base is not the minimal one), with the ELF
/// listings whose base this machine has for the build's key: with one of those, the builder
/// gathers nothing. The Docker builder only (the key names its image), and not with `--no-cache`
/// (which gathers, and records the base made).
pub(super) async fn gather_options(s: &BuildSettings, docker: Option<&bollard::Docker>) -> Option<GatherOptions> {
    if s.base != BaseRef::Minimal {
        return None;
    }
    let mut opts = GatherOptions { tzdata: s.tzdata, known: Vec::new() };
    let Some(docker) = docker.filter(|_| s.builder == BuilderKind::Docker && !s.no_cache) else { return Some(opts) };
    let image_id = match docker.inspect_image(&s.builder_image).await {
        Ok(info) => info.id.filter(|id| !id.is_empty()),
        // Missing (it may be pulled) or unreadable: the builder reports that better.
        Err(_) => None,
    };
    let Some(image_id) = image_id else { return Some(opts) };
    let s = s.clone();
    let known = tokio::task::spawn_blocking(move || {
        let store = BlobStore::open(&s.cache_dir).ok()?;
        Some(BaseCache::new(&store, &key_settings(&s, &image_id)).known())
    })
    .await;
    opts.known = known.ok().flatten().unwrap_or_default();
    tracing::debug!(known = opts.known.len(), "minimal bases this build's key has");
    Some(opts)
}

/// The first level of the cache key of this build's minimal base, made by the builder image
/// `image_id`. The CAs the build trusts (`--build-ca`) are not part of it: the base takes the
/// builder image's own bundle (minimal_base.sh).
fn key_settings(s: &BuildSettings, image_id: &str) -> KeySettings {
    KeySettings {
        tool: super::result_cache::tool_identity(),
        project: s.project.canonicalize().unwrap_or_else(|_| s.project.clone()),
        builder_image_id: image_id.to_string(),
        triple: s.triple.to_string(),
        tzdata: s.tzdata,
        slim_erts: s.slim_erts,
        compression: s.compression,
        epoch: s.epoch,
        build_env: s.inputs.env.clone(),
    }
}

/// `--slim-erts`: removes the ERTS tools from every release (before the base is made, so that
/// libraries only they need stay out too) and records what was left out in the
/// [`minimal::SLIM_LABEL`] label.
pub(super) fn slim_erts(mut s: BuildSettings, releases: &[Release]) -> anyhow::Result<BuildSettings> {
    if !s.slim_erts {
        return Ok(s);
    }
    // A release directory given with --from-release is the user's: nothing is removed from it,
    // the layers leave the paths out instead ([`leave_out_slimmed`]).
    let in_place = s.from_release.as_ref().is_some_and(|p| p.is_dir());
    let mut removed = BTreeSet::new();
    for release in releases {
        let vsn = release.erts_version.as_deref();
        let gone = match in_place {
            true => minimal::slim_erts_paths(&release.root, vsn),
            false => minimal::slim_erts(&release.root, vsn)
                .with_context(|| format!("--slim-erts on release {}", release.name))?,
        };
        removed.extend(gone);
    }
    ui::detail(if removed.is_empty() {
        "--slim-erts: nothing to leave out".to_string()
    } else {
        format!("--slim-erts: left out {}", removed.iter().cloned().collect::<Vec<_>>().join(", "))
    });
    let value = removed.into_iter().collect::<Vec<_>>().join(" ");
    s.labels.entry(minimal::SLIM_LABEL.to_string()).or_insert(value);
    Ok(s)
}

/// The layer entries of `--slim-erts`'s paths that are still in the release (one used in place)
/// are left out of the layers.
pub(super) fn leave_out_slimmed(specs: &mut [crate::layer::LayerSpec], release: &Release, app_dir: &str) {
    let paths: Vec<String> = minimal::slim_erts_paths(&release.root, release.erts_version.as_deref())
        .into_iter()
        .map(|p| format!("{app_dir}/{p}"))
        .collect();
    for spec in specs {
        spec.entries.retain(|e| !paths.iter().any(|p| e.path == *p || e.path.starts_with(&format!("{p}/"))));
    }
}

/// The minimal base: reused when the builder found its key's base known (it gathered nothing),
/// else made from the files the builder gathered beside the release(s), and then recorded for the
/// next build.
pub(super) async fn make_base(
    s: &BuildSettings,
    assembled: &Assembled,
    store: &BlobStore,
) -> anyhow::Result<BaseImage> {
    let base_dir = assembled.base_dir.clone().context(
        "the builder gathered no files for the minimal base (a release built elsewhere?): use --base debian or another image",
    )?;
    let cache = assembled.builder_image_id.as_deref().map(|id| key_settings(s, id));
    let made =
        MakeBase { cache: cache.map(|k| BaseCache::new(store, &k)), store: store.clone(), s: s.clone(), base_dir };
    let (base, reused) = tokio::task::spawn_blocking(move || made.run()).await??;
    let size = ui::bytes(base.layers.iter().map(|l| l.size).sum());
    ui::detail(match reused {
        true => format!(
            "minimal base: {size} compressed, reused (the builder gathered nothing: same key as an earlier build)"
        ),
        false => format!("minimal base: {size} compressed, made from the builder's files"),
    });
    Ok(base)
}

/// Making the base, off the async runtime.
struct MakeBase {
    cache: Option<BaseCache>,
    store: BlobStore,
    s: BuildSettings,
    base_dir: PathBuf,
}

impl MakeBase {
    /// The base, and whether it was reused.
    fn run(&self) -> Result<(BaseImage, bool), MinimalError> {
        // The builder's OUT/rel: the release, or one directory per release.
        let rel_dir = self.base_dir.with_file_name("rel");
        // The builder's listing of the release's ELF files, when it is that of the release here
        // (the key's second level; not read without a key).
        let listing = match ElfListing::from_builder(&self.base_dir)?.filter(|_| self.cache.is_some()) {
            Some(l) if l.matches_release(&rel_dir, self.s.slim_erts)? => Some(l),
            _ => None,
        };
        if let Some(claimed) = minimal::reused_listing(&self.base_dir)? {
            return Ok((self.reuse(&claimed, listing.as_ref())?, true));
        }
        let (platform, created) = (self.s.triple.platform(), time::rfc3339(self.s.epoch));
        let opts = TarOptions { mtime: self.s.epoch };
        let (base, facts) = minimal::build_gathered(
            &self.base_dir,
            &rel_dir,
            &platform,
            &created,
            &opts,
            self.s.compression,
            &self.store,
        )?;
        facts.write(&self.base_dir, false)?;
        if let (Some(cache), Some(listing), Some(layer)) = (&self.cache, &listing, base.layers.first()) {
            record(cache, &self.base_dir, &listing.digest(), CachedBase { layer: layer.clone(), facts });
        }
        Ok((base, false))
    }

    /// The base recorded for the listing `claimed`, which the builder found known. Anything
    /// amiss (the release is not what the listing says, the record or its layer is gone, the
    /// builder image changed meanwhile) fails the build and removes the record.
    fn reuse(&self, claimed: &str, listing: Option<&ElfListing>) -> Result<BaseImage, MinimalError> {
        let fail = |record: &Path, detail: &str| MinimalError::Reuse {
            listing: claimed.to_string(),
            record: record.to_path_buf(),
            detail: detail.to_string(),
        };
        let Some(cache) = &self.cache else {
            return Err(fail(Path::new("none"), "this build has no cache key (no builder image id)"));
        };
        let record = cache.path(claimed);
        let found = match listing {
            Some(l) if l.digest() == claimed => cache.load(claimed),
            _ => {
                cache.forget(claimed);
                return Err(fail(&record, "the release it sent is not the one that listing describes"));
            }
        };
        let Some(found) = found else {
            cache.forget(claimed);
            return Err(fail(
                &record,
                "no usable record of it for this builder image (gone, or its layer left the blob store)",
            ));
        };
        found.facts.write(&self.base_dir, true)?;
        minimal::from_layer(found.layer, &self.s.triple.platform(), &time::rfc3339(self.s.epoch))
    }
}

/// Records the base just made for its listing, unless the builder took one of its files from where
/// the build writes (the key would not cover it). A failure only costs the next build a gather.
fn record(cache: &BaseCache, base_dir: &Path, listing: &str, base: CachedBase) {
    let why = base_dir.join("why");
    let lines = std::fs::read_to_string(&why)
        .map_err(|e| e.to_string())
        .and_then(|text| minimal::parse_why(&text, &why).map_err(|e| e.to_string()));
    match lines.as_deref().map(minimal::cache::written_by_the_build) {
        Ok(None) => {
            if let Err(e) = cache.record(listing, &base) {
                tracing::warn!(error = %e, "cannot record the minimal base for the next build");
            }
        }
        Ok(Some(path)) => tracing::info!(path, "the minimal base takes a file the build wrote: not recorded"),
        Err(e) => tracing::warn!(error = %e, "the minimal base is not recorded"),
    }
}

/// The annotations naming the base: `org.release-oci.base=minimal` for the minimal base (there is
/// no image to name), else `org.opencontainers.image.base.name` and `.digest`.
pub(super) fn base_annotations(base: &BaseImage) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if base.name == minimal::BASE_NAME && base.digest.is_none() {
        out.insert(minimal::BASE_ANNOTATION.to_string(), minimal::BASE_NAME.to_string());
        return out;
    }
    out.insert("org.opencontainers.image.base.name".to_string(), base.name.clone());
    if let Some(d) = &base.digest {
        out.insert("org.opencontainers.image.base.digest".to_string(), d.to_string());
    }
    out
}

#[cfg(test)]
mod tests;
