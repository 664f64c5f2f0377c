//! Multi-platform builds (`--triple` given several times): each platform is built as a build of
//! its own (its builder image, its base), then one OCI image index lists the images. The index
//! is what the outputs get: `oci:DIR[:TAG]` names it in `index.json`, `--push` puts it under every
//! tag, `--load` loads the image of this machine's platform (the engine holds one platform per
//! name). See docs/multi-platform.md.

use super::releases;
use crate::cancel::Signals;
use crate::cli::BuildSettings;
use crate::digest::Digest;
use crate::image::{self, BuiltIndex, Image};
use crate::registry::{self, Client, PushTarget};
use crate::sink::{self, Target};
use crate::store::BlobStore;
use crate::triple::Triple;
use crate::ui;
use anyhow::{Context, bail};
use std::collections::BTreeMap;

/// Builds every platform of `s.platforms` and writes the index; returns its digest.
pub async fn run(s: BuildSettings) -> anyhow::Result<Digest> {
    if let Some(Target::Archive { path }) = s.outputs.iter().find(|o| matches!(o, Target::Archive { .. })) {
        bail!(
            "docker-archive:{} holds the image of one platform, and this build makes {}: write oci:DIR[:TAG] or \
             --push the index",
            path.display(),
            s.platforms.len()
        );
    }
    let host = Triple::host().map(|h| h.platform());
    let loaded = if s.load {
        let p = s.platforms.iter().find(|p| Some(p.triple.platform()) == host).with_context(|| {
            format!(
                "--load puts one image into the Docker engine, the one for this machine ({}), and none of the \
                 triples is for it; write oci:DIR or --push the index instead",
                host.as_ref().map_or("an unsupported platform".to_string(), ToString::to_string)
            )
        })?;
        Some(p.triple.platform())
    } else {
        None
    };
    let store = BlobStore::open(&s.cache_dir).with_context(|| format!("blob cache {}", s.cache_dir.display()))?;

    // One listener for every platform's build and the index: no signal is lost between them.
    let mut signals = Signals::listen()?;
    let mut built = Vec::new();
    for (i, p) in s.platforms.iter().enumerate() {
        ui::step(format!("Platform {}/{}: {} ({})", i + 1, s.platforms.len(), p.triple.platform(), p.triple));
        let mut one = s.clone();
        one.triple = p.triple.clone();
        one.builder_image = p.builder_image.clone();
        one.base = p.base.clone();
        one.outputs = Vec::new();
        one.load = false;
        one.push = None;
        one.platforms = Vec::new();
        let mut images = Box::pin(super::run_all_with(one, &mut signals)).await?;
        if images.len() != 1 {
            bail!("the build for {} made {} images, where one was expected", p.triple, images.len());
        }
        built.push(images.remove(0));
    }
    signals.run(write_index(&s, built, &store, loaded)).await?
}

/// The index of the images `built`, written to the outputs, loaded (the `loaded` platform's
/// image) and pushed.
async fn write_index(
    s: &BuildSettings,
    built: Vec<super::BuiltImage>,
    store: &BlobStore,
    loaded: Option<crate::triple::Platform>,
) -> anyhow::Result<Digest> {
    let (name, version) = (built[0].release.clone(), built[0].version.clone());
    if let Some(b) = built.iter().find(|b| b.release != name || b.version != version) {
        bail!(
            "the platforms built different releases ({name} {version} and {} {}); an index holds one release",
            b.release,
            b.version
        );
    }
    let images: Vec<Image> = built.into_iter().map(|b| b.image).collect();
    let annotations = shared_annotations(&images);
    let store2 = store.clone();
    let index = tokio::task::spawn_blocking(move || image::index(images, &annotations, &store2)).await??;
    ui::step(format!(
        "Image index {} ({})",
        index.digest,
        index.images.iter().map(Image::platform).collect::<Vec<_>>().join(", ")
    ));

    let outputs = releases::outputs_for(s, &name, &version, false)?;
    for out in &outputs.targets {
        if let Target::OciLayout { dir, tag } = out {
            let (index, store, dir2, tag) = (index.clone(), store.clone(), dir.clone(), tag.clone());
            tokio::task::spawn_blocking(move || sink::write_oci_index(&index, &store, &dir2, tag.as_deref()))
                .await?
                .with_context(|| format!("writing {out}"))?;
            ui::step(format!("Wrote {out}"));
        }
    }
    if let Some(platform) = loaded {
        let image = index.images.iter().find(|i| i.platform() == platform.to_string()).context("no host image")?;
        let docker = crate::builder::docker::connect().await?;
        crate::engine::load(&docker, image, store, &outputs.tags).await?;
        ui::step(format!("Loaded the {platform} image into the Docker engine as {}", outputs.tags.join(", ")));
    }
    if s.push.is_some() {
        push(s, &index, store).await?;
    }
    Ok(index.digest)
}

/// The manifest annotations every image has with the same value (title, version, created, ...).
fn shared_annotations(images: &[Image]) -> BTreeMap<String, String> {
    let of = |i: &Image| -> BTreeMap<String, String> {
        serde_json::from_slice::<serde_json::Value>(&i.manifest)
            .ok()
            .and_then(|v| serde_json::from_value(v["annotations"].clone()).ok())
            .unwrap_or_default()
    };
    let mut shared = images.first().map(of).unwrap_or_default();
    for i in images.iter().skip(1) {
        let theirs = of(i);
        shared.retain(|k, v| theirs.get(k) == Some(v));
    }
    shared
}

async fn push(s: &BuildSettings, index: &BuiltIndex, store: &BlobStore) -> anyhow::Result<()> {
    let Some(settings) = &s.push else { return Ok(()) };
    let r = &settings.reference;
    ui::step(format!("Pushing the index to {} (tags: {})", r.repository_ref(), settings.tags.join(", ")));
    let start = std::time::Instant::now();
    let scopes = vec![format!("repository:{}:pull,push", r.repository)];
    let client = Client::connect(&r.registry, &s.registry, scopes).await?;
    let target = PushTarget {
        repository: r.repository.clone(),
        tags: settings.tags.clone(),
        mount_from: None,
        mountable: Default::default(),
    };
    let images: Vec<_> = index.images.iter().map(|i| crate::commands::push::from_store(i, store)).collect();
    let bars = registry::Bars::new();
    let summary = if s.supply.attaches() {
        // Each platform's SBOM, signature and provenance, then the index's signature, then the tags.
        let per_image = index
            .images
            .iter()
            .map(|i| {
                crate::supply::gather::for_push(&s.supply, &i.manifest_digest, store).map(Option::unwrap_or_default)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bytes = (index.bytes.as_slice(), image::MEDIA_TYPE_INDEX);
        let reference = r.repository_ref();
        let signer = s.supply.signer();
        crate::supply::publish::push_index(&client, &images, &per_image, bytes, &target, &bars, &reference, signer)
            .await?
    } else {
        registry::push::push_index(&client, &images, &index.bytes, image::MEDIA_TYPE_INDEX, &target, &bars).await?
    };
    ui::detail(format!(
        "done in {:.1}s: {}@{}: {summary}",
        start.elapsed().as_secs_f64(),
        r.repository_ref(),
        index.digest
    ));
    Ok(())
}
