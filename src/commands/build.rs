//! `release-oci build`: project → release(s) (builder, or `--from-release`) → layers → image(s) →
//! outputs. One image per release; see [`releases`] for how several are named.

mod base_preload;
mod minimal_base;
pub mod multi;
mod prepare;
mod releases;
mod result_cache;
mod toolchain;

use crate::base;
use crate::builder::{self, Assembled, BuildRequest, PullPolicy};
use crate::cancel::Signals;
use crate::cli::{BuildSettings, BuilderKind};
use crate::image::{self, ConfigSettings, Image};
use crate::layer::{self, TarOptions};
use crate::plan::{self, APP_DIR, PlanInput, TINI_PATH};
use crate::prebuilt;
use crate::project::Project;
use crate::release::Release;
use crate::sink::{self, Target};
use crate::store::BlobStore;
use crate::{time, ui};
use anyhow::{Context, bail};
use prepare::{Prepared, Start};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The PATH Docker itself gives a container whose image sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One image the build made.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The release it holds.
    pub release: String,
    pub version: String,
    pub image: Image,
}

/// Runs the build of one release; returns the image (its manifest digest is what `main` prints on
/// stdout). Building several releases (`--release all`) needs [`run_all`].
pub async fn run(s: BuildSettings) -> anyhow::Result<Image> {
    let mut built = run_all(s).await?;
    if built.len() != 1 {
        let names: Vec<&str> = built.iter().map(|b| b.release.as_str()).collect();
        bail!("the build made {} images ({}), where one was expected", built.len(), names.join(", "));
    }
    Ok(built.remove(0).image)
}

/// Runs the build: one image per release assembled, in release-name order. SIGINT and SIGTERM
/// stop it (see [`crate::cancel`]).
pub async fn run_all(s: BuildSettings) -> anyhow::Result<Vec<BuiltImage>> {
    let mut signals = Signals::listen()?;
    run_all_with(s, &mut signals).await
}

/// [`run_all`], stopped by `signals` (a multi-platform build has one listener for its builds).
pub async fn run_all_with(s: BuildSettings, signals: &mut Signals) -> anyhow::Result<Vec<BuiltImage>> {
    if !s.platforms.is_empty() {
        bail!("several target triples make one image index, not one image per release: see `multi::run`");
    }
    let s = signals.run(toolchain::choose(s)).await??;
    let Prepared { project, store, docker, cache_key } = match signals.run(prepare::prepare(&s)).await?? {
        Start::Reused(built) => return Ok(built),
        Start::Build(prepared) => prepared,
    };
    // With the Docker builder, the base is read once the builder container runs (exporting it
    // meanwhile made the engine take a second longer to take the sources).
    let builds = s.from_release.is_none() && s.builder == BuilderKind::Docker;
    let started = builds.then(|| Arc::new(tokio::sync::Notify::new()));
    let preload = base_preload::Preload::start(&s, docker.as_ref(), &store, started.clone());
    let mut assembled: Assembled = match (&s.from_release, &project) {
        (Some(path), _) => signals.run(prepare::from_release(&s, path, project.as_ref(), docker.as_ref())).await??,
        (None, Some(project)) => assemble(&s, project, docker.as_ref(), started, signals).await?,
        (None, None) => bail!("a build without --from-release needs a project"),
    };
    let (releases, outputs) = read_releases(&s, &assembled)?;
    let s = minimal_base::slim_erts(s, &releases)?;
    // Temporary files are removed as their owners drop, when a signal stops this.
    let work = finish(&s, project.as_ref(), &releases, &outputs, &mut assembled, &store, docker.as_ref(), preload);
    let built = signals.run(work).await??;
    if let (Some(key), Some(d)) = (&cache_key, &docker) {
        signals.run(result_cache::record(&s, key, &built, &store, d)).await?;
    }
    Ok(built)
}

/// The assembled releases, checked (native code for the target, the start command), and the
/// outputs of each; before any layer is written.
fn read_releases(
    s: &BuildSettings,
    assembled: &Assembled,
) -> anyhow::Result<(Vec<Release>, Vec<releases::ReleaseOutputs>)> {
    let mut releases = Vec::new();
    for r in &assembled.releases {
        let release = Release::open(&r.dir, Some(&r.name))?;
        // Native code for another machine or libc would only fail when the container starts.
        prebuilt::elf::check_release(&release.root, &s.triple)?;
        // A wrong --cmd is refused before any layer is written.
        releases::start_command(&release, s.cmd.as_deref(), &format!("/{TINI_PATH}"), APP_DIR)?;
        ui::detail(format!(
            "release {} {} (ERTS {}), {} applications",
            release.name,
            release.version,
            release.erts_version.as_deref().unwrap_or("not included"),
            release.apps.len()
        ));
        releases.push(release);
    }
    let several = releases.len() > 1;
    let outputs = releases
        .iter()
        .map(|r| releases::outputs_for(s, &r.name, &r.version, several))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if several && s.push.is_some() {
        bail!("--push takes one image: build one release with --release NAME and push it");
    }
    Ok((releases, outputs))
}

async fn assemble(
    s: &BuildSettings,
    project: &Project,
    docker: Option<&bollard::Docker>,
    started: Option<Arc<tokio::sync::Notify>>,
    signals: &mut Signals,
) -> anyhow::Result<Assembled> {
    let req = BuildRequest {
        project: project.clone(),
        triple: s.triple.clone(),
        mix_env: s.mix_env.clone(),
        profile: s.profile.clone(),
        release: s.release.clone(),
        builder_image: s.builder_image.clone(),
        pull: if s.pull_missing { PullPolicy::Missing } else { PullPolicy::Never },
        minimal_base: minimal_base::gather_options(s),
        cache: !s.no_cache,
        started,
        timeout: Some(s.timeout),
        limits: s.limits,
        inputs: s.inputs.clone(),
    };
    let what = if s.release.as_deref() == Some("all") { "releases" } else { "release" };
    Ok(match (s.builder, docker) {
        (BuilderKind::Docker, Some(d)) => {
            ui::step(format!(
                "Assembling the {what} in a builder container ({}, {})",
                s.builder_image,
                s.triple.platform()
            ));
            // The builder races the signals itself: it has a container to remove first.
            builder::docker::assemble(d, &req, signals).await?
        }
        _ => {
            ui::step(format!("Assembling the {what} on this machine ({})", s.triple));
            signals.run(tokio::task::spawn_blocking(move || builder::host::assemble(&req))).await???
        }
    })
}

// The build's state, passed down as it is; a struct for it would only be used here.
#[allow(clippy::too_many_arguments)]
async fn finish(
    s: &BuildSettings,
    project: Option<&Project>,
    releases: &[Release],
    outputs: &[releases::ReleaseOutputs],
    assembled: &mut Assembled,
    store: &BlobStore,
    docker: Option<&bollard::Docker>,
    preload: Option<base_preload::Preload>,
) -> anyhow::Result<Vec<BuiltImage>> {
    let task = ui::task(format!("Reading base image {}", s.base));
    let platform = s.triple.platform();
    let base = match &s.base {
        base::BaseRef::Minimal => Some(minimal_base::make_base(s, assembled, store).await?),
        other => match preload {
            Some(p) => p.finish().await?,
            None => base::load_with(other, docker, &platform, store, &s.registry).await?,
        },
    };
    task.done(match &base {
        Some(b) => format!("{} layers", b.layers.len()),
        None => "scratch".into(),
    });
    check_base_erts(s, releases, base.as_ref(), store)?;

    let mut built = Vec::new();
    let mut removal = None;
    for (i, (release, outputs)) in releases.iter().zip(outputs).enumerate() {
        if releases.len() > 1 {
            ui::step(format!("Image of release {}", release.name));
        }
        let image = layer_and_assemble(s, project, release, assembled, base.as_ref(), store).await?;
        // What the SBOM and provenance say, kept with the image (and the SBOM to --sbom-dir).
        crate::supply::gather::record(s, project, release, assembled, base.as_ref(), &image, store)?;
        if i + 1 == releases.len() {
            // Every layer is written: the release files go while the image is written out.
            removal = assembled.take_files().map(|files| tokio::task::spawn_blocking(move || drop(files)));
        }
        write_outputs(s, &image, outputs, store, docker).await?;
        // The registry last: a sink like the others, after the local ones.
        super::push::push_built(s, &image, base.as_ref(), store).await?;
        built.push(BuiltImage { release: release.name.clone(), version: release.version.clone(), image });
    }
    if let Some(removal) = removal {
        // A failed removal only leaves a temporary directory behind.
        let _ = removal.await;
    }
    Ok(built)
}

/// Releases without ERTS (`include_erts: false`) run on the base image's: it must be the same.
fn check_base_erts(
    s: &BuildSettings,
    releases: &[Release],
    base: Option<&image::BaseImage>,
    store: &BlobStore,
) -> anyhow::Result<()> {
    let mut found = None;
    for release in releases.iter().filter(|r| r.erts_version.is_none()) {
        if found.is_none() {
            let layers = base.map(|b| b.layers.as_slice()).unwrap_or_default();
            found = Some(prebuilt::base_erts::erts_versions(store, layers)?);
        }
        let found = found.as_ref().context("no ERTS list")?;
        prebuilt::base_erts::check(&release.name, &release.required_erts, &s.base.to_string(), found)?;
    }
    Ok(())
}

async fn layer_and_assemble(
    s: &BuildSettings,
    project: Option<&Project>,
    release: &Release,
    assembled: &Assembled,
    base: Option<&image::BaseImage>,
    store: &BlobStore,
) -> anyhow::Result<Image> {
    let base_layers = base.map(|b| b.layers.as_slice()).unwrap_or_default();
    let read = |path: &str| -> anyhow::Result<String> {
        let bytes = base::read_file_from_layers(store, base_layers, path)
            .with_context(|| format!("reading /{path} from the base image"))?;
        Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default())
    };
    let (base_passwd, base_group) = (read("etc/passwd")?, read("etc/group")?);
    let user = s.user.resolve(&base_passwd)?;
    let input = PlanInput {
        release,
        own_apps: &assembled.own_apps,
        dep_apps: &assembled.dep_apps,
        tini: &assembled.tini,
        base_passwd,
        base_group,
        user: &user,
        include_cookie: s.include_cookie,
    };
    let mut specs = plan::plan(&input)?;
    if s.slim_erts {
        minimal_base::leave_out_slimmed(&mut specs, release, APP_DIR);
    }
    let task = ui::task(format!("Writing {} layers", specs.len()));
    let opts = TarOptions { mtime: s.epoch };
    let store2 = store.clone();
    let compression = s.compression;
    let written =
        tokio::task::spawn_blocking(move || layer::write_layers_cached(&specs, &opts, compression, &store2)).await??;
    let reused = written.iter().filter(|w| w.reused).count();
    let mut summary = written.iter().map(|w| format!("{} {}", w.blob.name, ui::bytes(w.blob.size))).collect::<Vec<_>>();
    summary.push(format!("{compression}, {reused} of {} reused from the layer cache", written.len()));
    task.done(summary.join(", "));
    let layers: Vec<layer::LayerBlob> = written.into_iter().map(|w| w.blob).collect();

    let created = time::rfc3339(s.epoch);
    let mut annotations = BTreeMap::new();
    annotations.insert("org.opencontainers.image.version".to_string(), release.version.clone());
    annotations.insert("org.opencontainers.image.title".to_string(), release.name.clone());
    annotations.insert("org.opencontainers.image.created".to_string(), created.clone());
    if let Some(rev) = project.and_then(Project::git_revision) {
        annotations.insert("org.opencontainers.image.revision".to_string(), rev);
    }
    if let Some(src) = s.source_url.clone().or_else(|| project.and_then(Project::git_remote_url)) {
        annotations.insert("org.opencontainers.image.source".to_string(), src);
    }
    if let Some(b) = base {
        annotations.extend(minimal_base::base_annotations(b));
    }
    // Labels carry the same facts (the engine shows labels, not manifest annotations).
    let mut labels = annotations.clone();
    labels.extend(s.labels.clone());
    annotations.extend(s.annotations.clone());

    let mut env = vec![
        ("LANG".to_string(), "C.UTF-8".to_string()),
        // The release writes runtime config, pipes and the cookie here; /tmp stays writable under
        // a read-only root filesystem (tmpfs / emptyDir).
        ("RELEASE_TMP".to_string(), "/tmp".to_string()),
        ("HOME".to_string(), user.home.clone()),
    ];
    env.extend(releases::flavour_env(release));
    // Engines fill in a PATH when an image has none, but not every runtime does: set the usual one.
    let base_has_path = base
        .and_then(|b| b.config.config().as_ref())
        .and_then(|c| c.env().as_ref())
        .is_some_and(|env| env.iter().any(|e| e.starts_with("PATH=")));
    if !base_has_path {
        env.insert(0, ("PATH".to_string(), DEFAULT_PATH.to_string()));
    }
    let phoenix_bare = releases::is_phoenix_without_server(release);
    if phoenix_bare && !s.env.iter().any(|(k, _)| k == "PHX_SERVER") {
        env.push(("PHX_SERVER".to_string(), "true".to_string()));
    }
    env.extend(s.env.clone());
    let (entrypoint, cmd) = releases::start_command(release, s.cmd.as_deref(), &format!("/{TINI_PATH}"), APP_DIR)?;
    let settings = ConfigSettings {
        platform: s.triple.platform(),
        entrypoint,
        cmd,
        user: Some(format!("{}:{}", user.uid, user.gid)),
        working_dir: Some(format!("/{APP_DIR}")),
        env,
        exposed_ports: match s.ports.is_empty() && (releases::is_phoenix(release) || phoenix_bare) {
            true => vec![releases::PHOENIX_PORT.to_string()],
            false => s.ports.clone(),
        },
        labels,
        stop_signal: Some("SIGTERM".into()),
        created,
    };
    Ok(image::assemble(base, layers, &settings, &annotations, store)?)
}

async fn write_outputs(
    s: &BuildSettings,
    image: &Image,
    outputs: &releases::ReleaseOutputs,
    store: &BlobStore,
    docker: Option<&bollard::Docker>,
) -> anyhow::Result<()> {
    let tags = &outputs.tags;
    for out in &outputs.targets {
        let (out, image, store, tags) = (out.clone(), image.clone(), store.clone(), tags.clone());
        let what = out.to_string();
        tokio::task::spawn_blocking(move || match &out {
            Target::OciLayout { dir, tag } => sink::write_oci_layout(&image, &store, dir, tag.as_deref()),
            Target::Archive { path } => sink::write_archive(&image, &store, path, &tags),
        })
        .await?
        .with_context(|| format!("writing {what}"))?;
        ui::step(format!("Wrote {what}"));
    }
    if s.load {
        let docker = docker.context("--load needs the Docker engine")?;
        // A Docker base is in the engine: its layers need not be sent.
        let hints: Vec<String> = match &s.base {
            base::BaseRef::Daemon(name) => vec![name.clone()],
            _ => vec![],
        };
        crate::engine::load_with_hints(docker, image, store, tags, &hints).await?;
        ui::step(format!("Loaded into the Docker engine as {}", tags.join(", ")));
    }
    Ok(())
}
