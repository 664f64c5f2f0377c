//! The builder for the project's pinned toolchain (docs/toolchain.md): when the project pins
//! Elixir or Erlang/OTP and the triple's default builder does not satisfy the pins, another known
//! builder that is present and does is used (the newest such), with the Debian runtime of the same
//! suite for `--base debian`; when none does, the build stops before anything runs. The default
//! builder is kept whenever it satisfies the pins, so an unpinned project's digests do not move
//! when a newer builder is installed. With `--builder-catalogue`, the catalogue takes the place of
//! the other local builders (`catalogue`).

mod catalogue;

use crate::base::BaseRef;
use crate::builder::docker::Engine;
use crate::cli::{BuildSettings, BuilderKind};
use crate::toolchain::{self, Builder, Pin, Version};
use crate::ui;

const ELIXIR_LABEL: &str = "org.release-oci.elixir-version";
const OTP_LABEL: &str = "org.release-oci.otp-version";

/// `s` with the builder the project's pins ask for (unchanged when nothing is pinned, a builder
/// image was chosen by the user, or no builder runs), and the engine the builder runs on when it
/// was connected to look at its images (the build goes on with that connection).
pub(super) async fn choose(s: BuildSettings) -> anyhow::Result<(BuildSettings, Option<Engine>)> {
    let default = s.triple.default_builder_image();
    if s.builder != BuilderKind::Docker || s.from_release.is_some() || s.builder_image != default {
        return Ok((s, None));
    }
    let pins = toolchain::project_pins(&s.project);
    if pins.is_empty() {
        return Ok((s, None));
    }
    if let Some(catalogue) = &s.builder_catalogue
        && s.triple.libc == crate::triple::Libc::Musl
    {
        // The catalogue's images are Debian's, and the musl builder carries no version labels.
        let (catalogue, triple) = (catalogue.repository_ref(), s.triple.to_string());
        return Err(toolchain::catalogue::CatalogueError::Musl { catalogue, triple }.into());
    }
    // The builders present on the engine the builder runs on (its builder host, if it has one).
    let engine = match s.builder_host() {
        Some(e) => crate::builder::docker::connect_builder_host(e, &s.triple.platform().to_string()).await?,
        None => crate::builder::docker::default_engine().await?,
    };
    let s = choose_on(s, &engine.docker, &pins).await?;
    Ok((s, Some(engine)))
}

/// [`choose`] with the builders of `docker`, for a project with `pins`.
async fn choose_on(mut s: BuildSettings, docker: &bollard::Docker, pins: &[Pin]) -> anyhow::Result<BuildSettings> {
    let default = s.triple.default_builder_image();
    let images = s.triple.known_builder_images();
    let builders: Vec<Builder> = futures_util::future::join_all(images.iter().map(|image| inspect(docker, image)))
        .await
        .into_iter()
        .flatten()
        .collect();
    // A default builder that is missing or carries no version labels cannot be judged: it is
    // kept, and the build goes on as without pins (a missing image is reported as ever).
    let Some(default_builder) = builders.iter().find(|b| b.image == default) else { return Ok(s) };
    if default_builder.elixir.is_none() || default_builder.otp.is_none() {
        return Ok(s);
    }
    let wants = pins.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    if pins.iter().all(|p| p.allows(default_builder)) {
        ui::step(format!("Builder {default_builder} for {wants}"));
        return Ok(s);
    }
    if let Some(catalogue) = s.builder_catalogue.clone() {
        return from_catalogue(s, docker, &catalogue, pins, &wants).await;
    }
    let chosen = toolchain::choose(&s.project.display().to_string(), pins, &builders)?.clone();
    ui::step(format!("Builder {chosen} for {wants}"));
    if s.base == BaseRef::Daemon(s.triple.distro_base_image().to_string()) {
        s.base = BaseRef::Daemon(chosen.image.replacen("/builder:", "/runtime:", 1));
    }
    s.builder_image = chosen.image;
    Ok(s)
}

/// `s` with the derived builder of the newest catalogue tag that meets `pins`; `--base debian`
/// becomes the runtime of the tag's Debian suite.
async fn from_catalogue(
    mut s: BuildSettings,
    docker: &bollard::Docker,
    catalogue: &crate::registry::Reference,
    pins: &[Pin],
    wants: &str,
) -> anyhow::Result<BuildSettings> {
    let chosen = catalogue::builder(docker, &s, catalogue, pins).await?;
    ui::step(format!("Builder {} from the catalogue {} for {wants}", chosen.builder, chosen.reference));
    let distro = s.triple.distro_base_image();
    if s.base == BaseRef::Daemon(distro.to_string()) {
        let suite = format!("debian-{}", chosen.tag.suite);
        s.base = BaseRef::Daemon(distro.replacen("debian-bookworm", &suite, 1));
    }
    s.builder_image = chosen.builder.image;
    Ok(s)
}

/// The builder `image` with the versions its labels give; None when the engine does not have it.
async fn inspect(docker: &bollard::Docker, image: &str) -> Option<Builder> {
    let info = docker.inspect_image(image).await.ok()?;
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    let version = |key: &str| labels.get(key).and_then(|v| Version::parse(v));
    Some(Builder { image: image.to_string(), elixir: version(ELIXIR_LABEL), otp: version(OTP_LABEL) })
}
