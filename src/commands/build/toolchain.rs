//! The builder for the project's pinned toolchain (docs/toolchain.md): when the project pins
//! Elixir or Erlang/OTP and the triple's default builder does not satisfy the pins, another known
//! builder that is present and does is used (the newest such), with the Debian runtime of the same
//! suite for `--base debian`; when none does, the build stops before anything runs. The default
//! builder is kept whenever it satisfies the pins, so an unpinned project's digests do not move
//! when a newer builder is installed.

use crate::base::BaseRef;
use crate::cli::{BuildSettings, BuilderKind};
use crate::toolchain::{self, Builder, Version};
use crate::ui;

const ELIXIR_LABEL: &str = "org.release-oci.elixir-version";
const OTP_LABEL: &str = "org.release-oci.otp-version";

/// `s` with the builder the project's pins ask for (unchanged when nothing is pinned, a builder
/// image was chosen by the user, or no builder runs).
pub(super) async fn choose(mut s: BuildSettings) -> anyhow::Result<BuildSettings> {
    let default = s.triple.default_builder_image();
    if s.builder != BuilderKind::Docker || s.from_release.is_some() || s.builder_image != default {
        return Ok(s);
    }
    let pins = toolchain::project_pins(&s.project);
    if pins.is_empty() {
        return Ok(s);
    }
    let docker = crate::builder::docker::connect().await?;
    let mut builders = Vec::new();
    for image in s.triple.known_builder_images() {
        if let Some(b) = inspect(&docker, image).await {
            builders.push(b);
        }
    }
    let project = s.project.display().to_string();
    // A default builder that is missing or carries no version labels cannot be judged: it is
    // kept, and the build goes on as without pins (a missing image is reported as ever).
    let Some(default_builder) = builders.iter().find(|b| b.image == default) else { return Ok(s) };
    if default_builder.elixir.is_none() || default_builder.otp.is_none() {
        return Ok(s);
    }
    let chosen = if pins.iter().all(|p| p.allows(default_builder)) {
        default_builder.clone()
    } else {
        toolchain::choose(&project, &pins, &builders)?.clone()
    };
    let wants = pins.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    ui::step(format!("Builder {chosen} for {wants}"));
    if chosen.image != default {
        if s.base == BaseRef::Daemon(s.triple.distro_base_image().to_string()) {
            s.base = BaseRef::Daemon(chosen.image.replacen("/builder:", "/runtime:", 1));
        }
        s.builder_image = chosen.image;
    }
    Ok(s)
}

/// The builder `image` with the versions its labels give; None when the engine does not have it.
async fn inspect(docker: &bollard::Docker, image: &str) -> Option<Builder> {
    let info = docker.inspect_image(image).await.ok()?;
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    let version = |key: &str| labels.get(key).and_then(|v| Version::parse(v));
    Some(Builder { image: image.to_string(), elixir: version(ELIXIR_LABEL), otp: version(OTP_LABEL) })
}
