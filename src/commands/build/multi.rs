//! Multi-platform builds (`--triple` given several times): each platform is built as a build of
//! its own (its builder image, its base), then one OCI image index lists the images. The index
//! is what the outputs get: `oci:DIR[:TAG]` names it in `index.json`, `--push` puts it under every
//! tag, `--load` loads the image of this machine's platform (the engine holds one platform per
//! name). See docs/multi-platform.md.

use super::outputs::{self, OutputContext};
use super::releases;
use crate::cancel::Signals;
use crate::cli::BuildSettings;
use crate::digest::Digest;
use crate::image::{self, Artifact, Image};
use crate::sink::Blobs;
use crate::store::BlobStore;
use crate::triple::Triple;
use crate::ui;
use anyhow::{Context, bail};
use std::collections::BTreeMap;

/// Builds every platform of `s.platforms` and writes the index; returns its digest.
pub async fn run(s: BuildSettings) -> anyhow::Result<Digest> {
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
    let signals = Signals::listen()?;
    let built = build_platforms(&s, &signals).await?;
    signals.run(write_index(&s, built, &store, loaded)).await?
}

/// The settings of platform `p`'s own build: its triple, builder and base; no outputs (the index
/// is what is written).
fn platform_settings(s: &BuildSettings, p: &crate::cli::PlatformBuild) -> BuildSettings {
    let mut one = s.clone();
    one.triple = p.triple.clone();
    one.builder_image = p.builder_image.clone();
    one.base = p.base.clone();
    one.outputs = Vec::new();
    one.load = false;
    one.push = None;
    one.platforms = Vec::new();
    one
}

/// Builds every platform at the same time, one builder each, their lines labelled with the
/// platform. Every build runs to its end (a failed one does not abandon the others' builder
/// containers mid-run); the first failure, in platform order, is the result.
async fn build_platforms(s: &BuildSettings, signals: &Signals) -> anyhow::Result<Vec<super::BuiltImage>> {
    let n = s.platforms.len();
    let builds = s.platforms.iter().enumerate().map(|(i, p)| {
        let one = platform_settings(s, p);
        let mut signals = signals.clone();
        let label = p.triple.platform().to_string();
        ui::labelled(label, async move {
            ui::step(format!("Platform {}/{n}: {} ({})", i + 1, p.triple.platform(), p.triple));
            let mut images = Box::pin(super::run_all_with(one, &mut signals)).await?;
            if images.len() != 1 {
                bail!("the build for {} made {} images, where one was expected", p.triple, images.len());
            }
            Ok(images.remove(0))
        })
    });
    futures_util::future::join_all(builds).await.into_iter().collect()
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

    let names = releases::outputs_for(s, &name, &version, false)?;
    let docker = match loaded {
        Some(_) => Some(crate::builder::docker::connect().await?),
        None => None,
    };
    let cx = OutputContext { docker: docker.as_ref(), base: None, load_platform: loaded };
    let sinks = outputs::outputs(s, &names, &cx)?;
    sinks.write(&Artifact::Index(index.clone()), &Blobs::Store(store.clone())).await?;
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
