//! The build's side of hot upgrades (docs/hot-upgrades.md): `--hot-upgrades` needs a mix release
//! with sasl; `--upgrade-from` makes the upgrade package once the image is assembled (before any
//! output is written: a refusal leaves nothing behind) and writes it beside the image.

use super::Build;
use crate::builder::Assembled;
use crate::cli::{BuildSettings, BuilderKind};
use crate::image::Image;
use crate::release::{Flavour, Release};
use crate::upgrade::{self, artifact::UpgradeArtifact};
use anyhow::bail;

/// `--hot-upgrades` needs what release_handler needs: a mix release (relx: not yet) with sasl.
pub(super) fn check(s: &BuildSettings, releases: &[Release]) -> anyhow::Result<()> {
    if !s.upgrade.hot_upgrades {
        return Ok(());
    }
    for r in releases {
        if r.flavour != Flavour::Mix {
            bail!("--hot-upgrades: release {} is a relx (rebar3) release; only mix releases are supported yet", r.name);
        }
        if !r.apps.iter().any(|a| a.name == "sasl") {
            bail!(
                "--hot-upgrades: release {} has no sasl application, whose release_handler applies upgrades: add \
                 :sasl to extra_applications in mix.exs (docs/hot-upgrades.md)",
                r.name
            );
        }
    }
    Ok(())
}

/// `--upgrade-from`: the package from the deployed image to `image`, in the store.
pub(super) async fn package(
    b: &Build<'_>,
    release: &Release,
    assembled: &Assembled,
    image: &Image,
) -> anyhow::Result<Option<UpgradeArtifact>> {
    let s = b.s;
    let Some(from) = &s.upgrade.from else { return Ok(None) };
    let req = upgrade::PackageRequest {
        from: from.clone(),
        upgrade_deps: s.upgrade.upgrade_deps,
        include_cookie: s.include_cookie,
        epoch: s.epoch,
        created: crate::time::rfc3339(s.epoch),
        platform: s.triple.platform(),
        registry: s.registry.clone(),
        builder_image: (s.builder == BuilderKind::Docker).then(|| s.builder_image.clone()),
        appups_dir: b.project.map(|p| p.root.join("rel").join("appups")),
    };
    let (a, _plan) =
        upgrade::make(&req, release, &assembled.own_apps, &assembled.dep_apps, image, b.docker, b.store).await?;
    Ok(Some(a))
}

/// Writes the package where the image went: each OCI layout output, and the registry of `--push`.
pub(super) async fn publish(b: &Build<'_>, a: &UpgradeArtifact, image: &Image) -> anyhow::Result<()> {
    let s = b.s;
    let push = s.push.as_ref().map(|p| (&p.reference, &s.registry));
    upgrade::publish(a, &image.manifest_digest, &s.outputs, push, b.store).await?;
    Ok(())
}
