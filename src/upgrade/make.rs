//! `build --upgrade-from REF`: the upgrade package from the deployed image's release to the one
//! just built. The deployed image is read (its `/app` out of its layers), the two releases
//! compared ([`compare`](super::compare): refusals, appups drafted or the project's), the relup
//! made with the builder's Erlang/OTP, the package packed and stored as an artifact whose subject
//! is the new image; then [`publish`] writes it beside the image.

use super::artifact::{self, Subject, UpgradeArtifact};
use super::compare::{self, Appup, Inputs, Refused, UpgradePlan};
use super::source::{self, ImageRef, LoadedImage};
use super::{package, relup};
use crate::image::Image;
use crate::registry::{Client, Reference, RegistryOptions};
use crate::release::Release;
use crate::sink::Target;
use crate::store::BlobStore;
use crate::triple::Platform;
use crate::ui;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// What making the package needs besides the new release and image.
#[derive(Debug, Clone)]
pub struct PackageRequest {
    /// The deployed image.
    pub from: ImageRef,
    pub upgrade_deps: bool,
    /// `--include-cookie`: the image's `env.sh` has no cookie hook.
    pub include_cookie: bool,
    pub epoch: u64,
    pub created: String,
    pub platform: Platform,
    pub registry: RegistryOptions,
    /// The builder image whose Erlang/OTP makes the relup; None: `escript` on this machine.
    pub builder_image: Option<String>,
    /// The project's `rel/appups`.
    pub appups_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum MakeError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error("cannot read the release out of the deployed image {image}")]
    Extract {
        image: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the deployed image {image} holds no release {name} in /app")]
    NoRelease {
        image: String,
        name: String,
        #[source]
        source: crate::release::ReleaseError,
    },
    #[error(transparent)]
    Relup(#[from] relup::RelupError),
    #[error("packing the upgrade package")]
    Pack(#[source] std::io::Error),
    #[error(transparent)]
    Artifact(#[from] artifact::ArtifactError),
    #[error("a blocking task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// Makes the package from `req.from` to `new` (in `image`), stored in `store`.
#[allow(clippy::too_many_arguments)]
pub async fn make(
    req: &PackageRequest,
    new: &Release,
    own_apps: &BTreeSet<String>,
    dep_apps: &BTreeSet<String>,
    image: &Image,
    docker: Option<&bollard::Docker>,
    store: &BlobStore,
) -> Result<(UpgradeArtifact, UpgradePlan), MakeError> {
    let task = ui::task(format!("Reading the deployed image {}", req.from));
    if !req.from.pinned() {
        tracing::warn!(image = %req.from, "the deployed image is named by a tag: name it by digest (@sha256:...) to be sure");
    }
    let old_image = source::load(&req.from, docker, &req.platform, store, &req.registry).await?;
    let dir = tempfile::Builder::new()
        .prefix("release-oci-deployed-")
        .tempdir()
        .map_err(|source| MakeError::Extract { image: req.from.to_string(), source })?;
    let old = read_release(&old_image, dir.path().to_path_buf(), &new.name, store).await?;
    task.done(format!("{} {} ({})", old.name, old.version, old_image.digest));
    let hook = if req.include_cookie { String::new() } else { crate::plan::mix_cookie_hook() };
    let hot = old_image.label(crate::plan::hot::LABEL).is_some();
    let plan = compare_releases(req, &old, new, (own_apps, dep_apps), &hook, hot).await?;
    show(&plan);
    let relup = make_relup(req, &old, new, &plan, docker).await?;
    let (n, p, epoch) = (new.clone(), plan.clone(), req.epoch);
    let bytes = tokio::task::spawn_blocking(move || {
        package::build(&package::PackageInput { new: &n, plan: &p, relup: &relup, env_sh_hook: &hook, mtime: epoch })
    })
    .await?
    .map_err(MakeError::Pack)?;
    let subject = Subject {
        digest: image.manifest_digest.clone(),
        size: image.manifest.len() as u64,
        config: image.config_digest.clone(),
    };
    let file_name = package::file_name(&plan);
    let (manifest, annotations) =
        artifact::manifest(&plan, &bytes, &file_name, &old_image.digest, &subject, &req.created);
    let a = artifact::store(store, manifest, annotations, &bytes, &file_name, &subject)?;
    ui::detail(format!("upgrade package {file_name}: {}, artifact {}", ui::bytes(a.package_size), a.digest));
    drop(dir);
    Ok((a, plan))
}

/// The comparison (off the async runtime: it reads both trees); an image built without
/// `--hot-upgrades` (`hot` false) is refused first, with whatever else is refused.
async fn compare_releases(
    req: &PackageRequest,
    old: &Release,
    new: &Release,
    (own_apps, dep_apps): (&BTreeSet<String>, &BTreeSet<String>),
    hook: &str,
    hot: bool,
) -> Result<UpgradePlan, MakeError> {
    let (o, n, own, deps, h) = (old.clone(), new.clone(), own_apps.clone(), dep_apps.clone(), hook.to_string());
    let (appups, upgrade_deps) = (req.appups_dir.clone(), req.upgrade_deps);
    let compared = tokio::task::spawn_blocking(move || {
        compare::compare(&Inputs {
            old: &o,
            new: &n,
            own_apps: &own,
            dep_apps: &deps,
            upgrade_deps,
            appups_dir: appups.as_deref(),
            env_sh_hook: &h,
        })
    })
    .await?;
    if hot {
        return Ok(compared?);
    }
    let mut reasons = vec![not_hot_reason()];
    if let Err(r) = &compared {
        reasons.extend(r.reasons.iter().cloned());
    }
    Err(Refused { name: new.name.clone(), from: old.version.clone(), to: new.version.clone(), reasons }.into())
}

/// The relup, by `systools` in a container of the builder image (or on this machine); refused
/// when it restarts the emulator.
async fn make_relup(
    req: &PackageRequest,
    old: &Release,
    new: &Release,
    plan: &UpgradePlan,
    docker: Option<&bollard::Docker>,
) -> Result<String, MakeError> {
    let files = relup::inputs(old, new, plan)?;
    let relup = match (&req.builder_image, docker) {
        (Some(image), Some(d)) => {
            ui::step(format!("Making the relup with systools in a container of {image}"));
            relup::in_container(d, image, &files, plan).await?
        }
        _ => {
            ui::step("Making the relup with systools on this machine");
            let p = plan.clone();
            tokio::task::spawn_blocking(move || relup::on_host(&files, &p)).await??
        }
    };
    if let Some(w) = super::appup::restarts_emulator(&relup) {
        let reasons = vec![format!("the relup asks for {w}: that restarts the node")];
        return Err(Refused { name: plan.name.clone(), from: plan.from.clone(), to: plan.to.clone(), reasons }.into());
    }
    Ok(relup)
}

fn not_hot_reason() -> String {
    "the deployed image was not built with --hot-upgrades: its release root is read-only and has no \
     releases/RELEASES for release_handler; deploy an image built with --hot-upgrades first"
        .into()
}

/// The release under `/app` of the deployed image, extracted into `dir` (ERTS's files left out).
async fn read_release(old: &LoadedImage, dir: PathBuf, name: &str, store: &BlobStore) -> Result<Release, MakeError> {
    let (layers, store, name, image) = (old.layers.clone(), store.clone(), name.to_string(), old.name.clone());
    tokio::task::spawn_blocking(move || {
        source::extract(&store, &layers, crate::plan::APP_DIR, &dir, |p| p.starts_with("erts-") && p.contains('/'))
            .map_err(|source| MakeError::Extract { image: image.clone(), source })?;
        Release::open(&dir, Some(&name)).map_err(|source| MakeError::NoRelease { image, name, source })
    })
    .await?
}

/// The draft (or the project's appups), on stderr.
fn show(plan: &UpgradePlan) {
    ui::step(format!("Hot upgrade of {} from {} to {}", plan.name, plan.from, plan.to));
    for a in &plan.apps {
        match &a.appup {
            Appup::Project { path, .. } => {
                ui::detail(format!("{} {} -> {}: the project's {}", a.name, a.from, a.to, path.display()))
            }
            Appup::Shipped { .. } => ui::detail(format!("{} {} -> {}: the appup it ships", a.name, a.from, a.to)),
            Appup::Drafted { instructions } if instructions.is_empty() => {
                ui::detail(format!("{} {} -> {}: drafted appup: no module changed", a.name, a.from, a.to))
            }
            Appup::Drafted { instructions } => {
                ui::detail(format!(
                    "{} {} -> {}: drafted appup (write rel/appups/{}.appup to change it):",
                    a.name, a.from, a.to, a.name
                ));
                for i in instructions {
                    ui::detail(format!("    {i}"));
                }
            }
        }
    }
}

/// Where the package goes: beside the image in each OCI layout output, and to the registry it
/// was pushed to (`REPO` of `push`).
pub async fn publish(
    a: &UpgradeArtifact,
    subject: &crate::digest::Digest,
    outputs: &[Target],
    push: Option<(&Reference, &RegistryOptions)>,
    store: &BlobStore,
) -> Result<(), artifact::ArtifactError> {
    for out in outputs {
        if let Target::OciLayout { dir, .. } = out {
            let (a, store, dir) = (a.clone(), store.clone(), dir.clone());
            let shown = format!("oci:{}", dir.display());
            tokio::task::spawn_blocking(move || artifact::write_layout(&a, &store, &dir))
                .await
                .map_err(|e| artifact::ArtifactError::Invalid { location: shown.clone(), reason: e.to_string() })??;
            ui::step(format!("Wrote the upgrade package to {shown} (a referrer of {subject})"));
        }
    }
    if let Some((r, options)) = push {
        let scopes = vec![format!("repository:{}:pull,push", r.repository)];
        let client = Client::connect(&r.registry, options, scopes).await.map_err(|source| {
            artifact::ArtifactError::Registry {
                subject: subject.clone(),
                repository: r.repository.clone(),
                source: Box::new(source),
            }
        })?;
        artifact::push(&client, &r.repository, a, subject, store).await?;
        ui::step(format!("Pushed the upgrade package to {} (a referrer of {subject})", r.repository_ref()));
    }
    Ok(())
}
