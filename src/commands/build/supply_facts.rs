//! What a build records for the supply chain (docs/supply-chain.md): the settings' part of an
//! image's facts (`supply::gather::BuildContext`: the triple, the builder, the vendor, the flags
//! that shape the image) and the builder's part (`supply::gather::Assembly`); gathering, keeping
//! them and writing the SBOM run off the async runtime.

use crate::builder::Assembled;
use crate::cli::BuildSettings;
use crate::image::{BaseImage, Image};
use crate::project::Project;
use crate::release::Release;
use crate::store::BlobStore;
use crate::supply::gather::{self, Assembly, BuildContext};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const VENDOR: &str = "org.opencontainers.image.vendor";

/// Gathers the facts of `image`, keeps them in `store` and writes the SBOM to `--sbom-dir`.
pub(super) async fn record(
    s: &BuildSettings,
    project: Option<&Project>,
    release: &Release,
    assembled: &Assembled,
    base: Option<&BaseImage>,
    image: &Image,
    store: &BlobStore,
) -> anyhow::Result<()> {
    let cx = context(s);
    let assembly = assembly(assembled);
    let (project, release, base) = (project.cloned(), release.clone(), base.cloned());
    let (digest, store) = (image.manifest_digest.clone(), store.clone());
    tokio::task::spawn_blocking(move || {
        gather::record(&cx, project.as_ref(), &release, &assembly, base.as_ref(), &digest, &store)
    })
    .await?
}

/// For an image an earlier build made (the result cache): the SBOM to `--sbom-dir` again.
pub(super) async fn reused(s: &BuildSettings, image: &Image, store: &BlobStore) -> anyhow::Result<()> {
    let (supply, digest, store) = (s.supply.clone(), image.manifest_digest.clone(), store.clone());
    tokio::task::spawn_blocking(move || gather::reused(&supply, &digest, &store)).await?
}

/// The facts the settings give.
fn context(s: &BuildSettings) -> BuildContext {
    BuildContext {
        triple: s.triple.clone(),
        epoch: s.epoch,
        builder_image: s.builder_image.clone(),
        from_release: s.from_release.is_some(),
        source_url: s.source_url.clone(),
        vendor: s.annotations.get(VENDOR).or_else(|| s.labels.get(VENDOR)).cloned(),
        parameters: parameters(s),
        supply: s.supply.clone(),
    }
}

fn assembly(a: &Assembled) -> Assembly {
    Assembly {
        own_apps: a.own_apps.clone(),
        dep_apps: a.dep_apps.clone(),
        builder_image_id: a.builder_image_id.clone(),
        base_dir: a.base_dir.clone(),
        release_dir: a.release_dir.clone(),
    }
}

/// The flags that shape the image, by name; values that may be secret are left out (`--env`
/// values: only the names; logins, build secrets and key paths are not flags of the image).
fn parameters(s: &BuildSettings) -> BTreeMap<String, Value> {
    let env_names: Vec<&str> = s.env.iter().map(|(k, _)| k.as_str()).collect();
    BTreeMap::from([
        ("builder".into(), json!(format!("{:?}", s.builder).to_lowercase())),
        ("builder_image".into(), json!(s.builder_image)),
        ("mix_env".into(), json!(s.mix_env)),
        ("profile".into(), json!(s.profile)),
        ("release".into(), json!(s.release)),
        ("cmd".into(), json!(s.cmd)),
        ("base".into(), json!(s.base.to_string())),
        ("slim_erts".into(), json!(s.slim_erts)),
        ("tzdata".into(), json!(s.tzdata)),
        ("user".into(), json!(format!("{:?}", s.user))),
        ("env_names".into(), json!(env_names)),
        ("ports".into(), json!(s.ports)),
        ("labels".into(), json!(s.labels)),
        ("annotations".into(), json!(s.annotations)),
        ("include_cookie".into(), json!(s.include_cookie)),
        ("compression".into(), json!(s.compression.to_string())),
        ("source_date_epoch".into(), json!(s.epoch)),
    ])
}
