//! Before the builder: the artifacts' layers are downloaded into the blob store and handed to
//! the builder, which unpacks them into the new cache volume (with the unchanged sources, at
//! their listed mtimes) before it builds (`builder::restore`). The release cache comes along
//! with the deps or the app: kept with its fingerprint, it is reused only when that matches the
//! build's.

use super::Plan;
use crate::builder::restore::Restore;
use crate::project::Project;
use crate::registry::{Progress, Registry};
use crate::registry_cache::build_dirs::{self as dirs, Found, Listing};
use crate::store::BlobStore;
use crate::ui;
use anyhow::Context;

/// Downloads the artifacts' layers: what the builder restores into the new volume. A failure is
/// a warning (the build then starts from nothing, as without `--cache-repo`).
pub(super) async fn restore(
    plan: &Plan,
    project: &Project,
    store: &BlobStore,
    deps: Option<Found>,
    app: Option<(Found, bool)>,
) -> Option<Restore> {
    let task = ui::task(format!("Restoring the build cache from {}", plan.repo.repository_ref()));
    let fill = match download_all(plan, project, store, deps, app).await {
        Ok(fill) => fill,
        Err(e) => {
            task.done("not restored");
            tracing::warn!(error = format!("{e:#}"), "build cache: not restored; building from nothing");
            return None;
        }
    };
    if fill.restore.files.is_empty() {
        task.done(fill.said.join("; "));
        return None;
    }
    task.done(format!(
        "{} downloaded; {}; unpacked into the new volume by the builder",
        ui::bytes(fill.bytes),
        fill.said.join("; ")
    ));
    Some(fill.restore)
}

async fn download_all(
    plan: &Plan,
    project: &Project,
    store: &BlobStore,
    deps: Option<Found>,
    app: Option<(Found, bool)>,
) -> anyhow::Result<Fill> {
    let mut fill = Fill::default();
    if let Some(d) = &deps {
        fill.single((plan, store), d, "deps.tar.gz", "deps").await?;
    }
    if let Some((a, exact)) = &app {
        fill.app(plan, project, store, a, *exact).await?;
    }
    if let Some(r) = plan.rel.as_ref().filter(|_| !fill.restore.files.is_empty()) {
        fill.single((plan, store), r, "rel.tar.gz", "releases").await?;
    }
    Ok(fill)
}

/// What goes into the new volume (the files, the unchanged sources' tar kept until the build is
/// done, the second by which the restored app build and its sources are dated: before this
/// machine's clock, or the app build is not restored), what the log says of each, the bytes
/// downloaded.
#[derive(Default)]
struct Fill {
    restore: Restore,
    said: Vec<String>,
    bytes: u64,
}

impl Fill {
    /// The one layer (`title`) of the deps or the release cache artifact `found`, said as `what`.
    async fn single(
        &mut self,
        (plan, store): (&Plan, &BlobStore),
        found: &Found,
        title: &str,
        what: &str,
    ) -> anyhow::Result<()> {
        let layer = found.layer(title).with_context(|| format!("the {what} artifact has no {title}"))?;
        self.bytes += download(plan, store, layer).await?;
        self.restore.files.push((title.into(), store.blob_path(&layer.digest)));
        self.said.push(format!("{what} ({})", found.tag));
        Ok(())
    }

    /// The app layer and the unchanged sources at their listed mtimes; not when the build is
    /// dated at or after this machine's clock.
    async fn app(
        &mut self,
        plan: &Plan,
        project: &Project,
        store: &BlobStore,
        a: &Found,
        exact: bool,
    ) -> anyhow::Result<()> {
        let layer = a.layer("app.tar.gz").context("the app artifact has no app.tar.gz")?;
        let listing_layer = a.layer("sources.tar.gz").context("the app artifact has no sources.tar.gz")?;
        self.bytes += download(plan, store, listing_layer).await?;
        let path = store.blob_path(&listing_layer.digest);
        let listing = tokio::task::spawn_blocking(move || Listing::from_layer(std::fs::File::open(path)?))
            .await?
            .context("reading the sources' listing")?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if listing.dated_after(now) {
            self.said.push(format!(
                "not the app build ({}): it is dated at or after this machine's clock, so mix could not tell changed sources",
                a.tag
            ));
            return Ok(());
        }
        self.bytes += download(plan, store, layer).await?;
        self.restore.files.push(("app.tar.gz".into(), store.blob_path(&layer.digest)));
        self.restore.built = Some(listing.newest().max(listing.built));
        let p = project.clone();
        let (tmp, found) = tokio::task::spawn_blocking(move || unchanged_sources(&p, &listing)).await??;
        self.restore.files.push(("src.tar".into(), tmp.path().to_path_buf()));
        self.restore.keep.push(tmp);
        let how = if exact { "these sources" } else { "other sources" };
        self.said.push(format!(
            "app built from {how} ({}): {} of {} source files unchanged",
            a.tag, found.unchanged, found.files
        ));
        Ok(())
    }
}

/// A temporary tar of the project's source files the listing has unchanged, at its mtimes.
fn unchanged_sources(
    project: &Project,
    listing: &Listing,
) -> anyhow::Result<(tempfile::NamedTempFile, dirs::RestoredSources)> {
    let files = project.source_files()?;
    let tmp = tempfile::NamedTempFile::new()?;
    let w = std::io::BufWriter::new(tmp.reopen()?);
    let (mut w, found) = dirs::restore_sources(&project.root, &files, listing, w)?;
    std::io::Write::flush(&mut w)?;
    Ok((tmp, found))
}

/// Downloads a layer into the store (verified) unless it is there; the bytes downloaded.
async fn download(plan: &Plan, store: &BlobStore, layer: &dirs::FoundLayer) -> anyhow::Result<u64> {
    if store.contains(&layer.digest) {
        return Ok(0);
    }
    plan.client.get_blob(&plan.repo.repository, &layer.digest, layer.size, store, &Progress::hidden()).await?;
    Ok(layer.size)
}
