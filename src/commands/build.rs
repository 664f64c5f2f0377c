//! `release-oci build`: project → release(s) (builder, or `--from-release`) → layers → image(s) →
//! outputs. One image per release; see [`releases`] for how several are named.

mod base_preload;
mod build_plan;
mod cross_assemble;
mod hot_upgrade;
mod image_config;
mod minimal_base;
pub mod multi;
mod outputs;
mod prepare;
mod registry_cache;
mod releases;
mod result_cache;
mod supply_facts;
mod toolchain;

use crate::base;
use crate::builder::{self, Assembled, BuildRequest, PullPolicy};
use crate::cancel::Signals;
use crate::cli::{BuildSettings, BuilderKind};
use crate::image::{self, Artifact, Image};
use crate::layer::{self, TarOptions};
use crate::plan::{self, APP_DIR, PlanInput, TINI_PATH};
use crate::prebuilt;
use crate::project::Project;
use crate::release::Release;
use crate::sink::Blobs;
use crate::store::BlobStore;
use crate::{time, ui};
use anyhow::{Context, bail};
pub use build_plan::{BuildPlan, Built};
use prepare::{Prepared, Start};
use std::sync::Arc;

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
    let (s, connected) = signals.run(toolchain::choose(s)).await??;
    let Prepared { project, store, docker, builder, cache_key } =
        match signals.run(prepare::prepare(&s, connected)).await?? {
            Start::Reused(built) => return Ok(built),
            Start::Build(prepared) => *prepared,
        };
    // With the Docker builder, the base is read once the builder container runs (exporting it
    // meanwhile made the engine take a second longer to take the sources).
    let builds = s.from_release.is_none() && s.builder == BuilderKind::Docker;
    let started = builds.then(|| Arc::new(tokio::sync::Notify::new()));
    let preload = base_preload::Preload::start(&s, docker.as_ref(), &store, started.clone());
    // `--cache-repo`: a new cache volume gets the deps/_build the registry has for this toolchain.
    // The cache volume is on the builder's engine (a builder host's, or the default one).
    let builder_docker = builder.as_ref().map(|e| e.docker.clone());
    let mut dirs = match (&project, &builder_docker, &cache_key) {
        (Some(p), Some(d), Some(k)) if builds => {
            signals.run(registry_cache::build_dirs::prepare(&s, p, k, d, &store)).await?
        }
        _ => None,
    };
    let mut assembled: Assembled = match (&s.from_release, &project) {
        (Some(path), _) => signals.run(prepare::from_release(&s, path, project.as_ref(), docker.as_ref())).await??,
        (None, Some(project)) => {
            let sources = cache_key.as_ref().map(|k| k.tar.clone());
            let given = (started, dirs.as_mut().and_then(|d| d.take_restore()));
            assemble(&s, (project, sources), builder.as_ref(), given, signals).await?
        }
        (None, None) => bail!("a build without --from-release needs a project"),
    };
    // The published layers fetched meanwhile: the layer cache knows them before layers are written.
    if let Some(prefetch) = dirs.as_mut().and_then(|d| d.take_prefetch()) {
        signals.run(prefetch.done()).await?;
    }
    // What the registry lacks is read from the volume while the image is made.
    let saving = dirs.zip(builder_docker.clone()).map(|(plan, d)| plan.save(d, store.clone(), s.inputs.redactions()));
    let (releases, outputs) = signals.run(read_releases(&s, &assembled)).await??;
    hot_upgrade::check(&s, &releases)?;
    let s = minimal_base::slim_erts(s, &releases)?;
    // Temporary files are removed as their owners drop, when a signal stops this.
    let build = Build { s: &s, project: project.as_ref(), store: &store, docker: docker.as_ref() };
    let work = finish(&build, &releases, &outputs, &mut assembled, preload);
    let built = signals.run(work).await??;
    // The base's engine: the default one, or the builder's when the default one was not needed.
    if let (Some(key), Some(d)) = (&cache_key, docker.as_ref().or(builder_docker.as_ref()))
        && signals.run(result_cache::record(&s, key, &built, &store, d)).await?
    {
        signals.run(registry_cache::publish(&s, key, &built, &store, d)).await?;
    }
    if let Some(saving) = saving {
        signals.run(registry_cache::build_dirs::publish(saving, &built)).await?;
    }
    Ok(built)
}

/// The assembled releases, checked (native code for the target, the start command), and the
/// outputs of each; before any layer is written.
async fn read_releases(
    s: &BuildSettings,
    assembled: &Assembled,
) -> anyhow::Result<(Vec<Release>, Vec<releases::ReleaseOutputs>)> {
    let (assembled, triple, cmd) = (assembled.releases.clone(), s.triple.clone(), s.cmd.clone());
    let releases = blocking(move || open_releases(&assembled, &triple, cmd.as_deref())).await?;
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

/// `project` with its source tar, when the result cache's key read it.
async fn assemble(
    s: &BuildSettings,
    (project, sources): (&Project, Option<Arc<crate::project::SourceTar>>),
    engine: Option<&builder::docker::Engine>,
    (started, restore): (Option<Arc<tokio::sync::Notify>>, Option<Arc<builder::restore::Restore>>),
    signals: &mut Signals,
) -> anyhow::Result<Assembled> {
    let docker = engine.map(|e| &e.docker);
    let req = BuildRequest {
        project: project.clone(),
        sources,
        triple: s.triple.clone(),
        mix_env: s.mix_env.clone(),
        profile: s.profile.clone(),
        release: s.release.clone(),
        builder_image: s.builder_image.clone(),
        pull: if s.pull_missing { PullPolicy::Missing } else { PullPolicy::Never },
        minimal_base: minimal_base::gather_options(s, docker).await,
        cache: !s.no_cache,
        started,
        restore,
        timeout: Some(s.timeout),
        limits: s.limits,
        inputs: s.inputs.clone(),
    };
    let what = if s.release.as_deref() == Some("all") { "releases" } else { "release" };
    Ok(match (s.builder, engine) {
        (BuilderKind::Docker, Some(e)) => {
            let d = &e.docker;
            // A target this engine would emulate: compiled on the native builder when it can be.
            if let Some(assembled) = cross_assemble::assemble(s, project, d, &req, signals).await? {
                return Ok(assembled);
            }
            // On a builder host, the line names it.
            let on = s.builder_host().map(|e| format!(" on {e}")).unwrap_or_default();
            ui::step(format!(
                "Assembling the {what} in a builder container ({}, {}){on}",
                s.builder_image,
                s.triple.platform()
            ));
            // The builder races the signals itself: it has a container to remove first.
            match s.warm_builder {
                Some(idle) => builder::warm::assemble_on(e, &req, idle, signals).await?,
                None => builder::docker::assemble_on(e, &req, signals).await?,
            }
        }
        _ => {
            ui::step(format!("Assembling the {what} on this machine ({})", s.triple));
            // The blocking build polls the signals itself: it stops the script and removes its
            // temporary directory before the error returns.
            let stop = signals.clone();
            tokio::task::spawn_blocking(move || builder::host::assemble_stoppable(&req, Some(&stop))).await??
        }
    })
}

/// Opens each release (its files are read: off the async runtime) and checks it.
fn open_releases(
    assembled: &[builder::AssembledRelease],
    triple: &crate::triple::Triple,
    cmd: Option<&str>,
) -> anyhow::Result<Vec<Release>> {
    let mut releases = Vec::new();
    for r in assembled {
        let release = Release::open(&r.dir, Some(&r.name))?;
        // Native code for another machine or libc would only fail when the container starts.
        prebuilt::elf::check_release(&release.root, triple)?;
        // A wrong --cmd is refused before any layer is written.
        releases::start_command(&release, cmd, &format!("/{TINI_PATH}"), APP_DIR)?;
        ui::detail(format!(
            "release {} {} (ERTS {}), {} applications",
            release.name,
            release.version,
            release.erts_version.as_deref().unwrap_or("not included"),
            release.apps.len()
        ));
        releases.push(release);
    }
    Ok(releases)
}

/// Runs blocking work (a release's or the base's files read, the store written, `git` run) off
/// the async runtime: a signal, or another platform's build, is not held up meanwhile.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work).await?
}

/// What every stage after the builder reads.
struct Build<'a> {
    s: &'a BuildSettings,
    project: Option<&'a Project>,
    store: &'a BlobStore,
    docker: Option<&'a bollard::Docker>,
}

/// The base image (the minimal one made from the builder's files, the preloaded one, or read now).
async fn read_base(
    b: &Build<'_>,
    assembled: &Assembled,
    preload: Option<base_preload::Preload>,
) -> anyhow::Result<Option<image::BaseImage>> {
    let s = b.s;
    let task = ui::task(format!("Reading base image {}", s.base));
    let (base, fetched) = match &s.base {
        base::BaseRef::Minimal => (Some(minimal_base::make_base(s, assembled, b.store).await?), None),
        other => match preload {
            Some(p) => p.finish().await?,
            None => (base::load_with(other, b.docker, &s.triple.platform(), b.store, &s.registry).await?, None),
        },
    };
    let fetched = fetched.map(|f| format!(", {f}")).unwrap_or_default();
    task.done(match &base {
        Some(b) => format!("{} layers{fetched}", b.layers.len()),
        None => "scratch".into(),
    });
    Ok(base)
}

/// The base, then each release's layers, image, supply-chain facts and outputs.
async fn finish(
    b: &Build<'_>,
    releases: &[Release],
    outputs: &[releases::ReleaseOutputs],
    assembled: &mut Assembled,
    preload: Option<base_preload::Preload>,
) -> anyhow::Result<Vec<BuiltImage>> {
    let (s, project, store) = (b.s, b.project, b.store);
    let base = read_base(b, assembled, preload).await?;
    check_base_erts(s, releases, base.as_ref(), store).await?;

    let mut built = Vec::new();
    let mut removal = None;
    for (i, (release, outputs)) in releases.iter().zip(outputs).enumerate() {
        if releases.len() > 1 {
            ui::step(format!("Image of release {}", release.name));
        }
        let image = layer_and_assemble(s, project, release, assembled, base.as_ref(), store).await?;
        // `--upgrade-from`: made (or refused) before any output is written.
        let upgrade = hot_upgrade::package(b, release, assembled, &image).await?;
        // What the SBOM and provenance say, kept with the image (and the SBOM to --sbom-dir).
        supply_facts::record(s, project, release, assembled, base.as_ref(), &image, store).await?;
        if i + 1 == releases.len() {
            // Every layer is written: the release files go while the image is written out.
            removal = assembled.take_files().map(|files| tokio::task::spawn_blocking(move || drop(files)));
        }
        let cx = outputs::OutputContext { docker: b.docker, base: base.as_ref(), load_platform: None };
        write_image(s, &image, outputs, &cx, store).await?;
        if let Some(a) = &upgrade {
            hot_upgrade::publish(b, a, &image).await?;
        }
        built.push(BuiltImage { release: release.name.clone(), version: release.version.clone(), image });
    }
    if let Some(removal) = removal {
        // A failed removal only leaves a temporary directory behind.
        let _ = removal.await;
    }
    Ok(built)
}

/// Releases without ERTS (`include_erts: false`) run on the base image's: it must be the same.
async fn check_base_erts(
    s: &BuildSettings,
    releases: &[Release],
    base: Option<&image::BaseImage>,
    store: &BlobStore,
) -> anyhow::Result<()> {
    let without: Vec<&Release> = releases.iter().filter(|r| r.erts_version.is_none()).collect();
    if without.is_empty() {
        return Ok(());
    }
    // The base's layers are read for its ERTS directories.
    let (layers, store) = (base.map(|b| b.layers.clone()).unwrap_or_default(), store.clone());
    let found = blocking(move || Ok(prebuilt::base_erts::erts_versions(&store, &layers)?)).await?;
    for release in without {
        prebuilt::base_erts::check(&release.name, &release.required_erts, &s.base.to_string(), &found)?;
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
    let (specs, user) = plan_layers(s, release, assembled, base, store).await?;
    let layers = write_layers(s, specs, store).await?;
    let created = time::rfc3339(s.epoch);
    let mut annotations = {
        // `git` runs for the revision and the remote.
        let (s, project, release, base) = (s.clone(), project.cloned(), release.clone(), base.cloned());
        let created = created.clone();
        blocking(move || Ok(image_config::annotations(&s, project.as_ref(), &release, base.as_ref(), &created))).await?
    };
    // Labels carry the same facts (the engine shows labels, not manifest annotations).
    let mut labels = annotations.clone();
    labels.extend(s.labels.clone());
    annotations.extend(s.annotations.clone());
    let settings = image_config::config_settings(s, release, base, &user, labels, created)?;
    // The config and the manifest go into the store.
    let (base, store) = (base.cloned(), store.clone());
    blocking(move || Ok(image::assemble(base.as_ref(), layers, &settings, &annotations, &store)?)).await
}

/// The layer specs of `release` on `base`, and the runtime user (resolved with the base's
/// `/etc/passwd`): the base's layers are read for its accounts and the release's files walked,
/// off the async runtime.
async fn plan_layers(
    s: &BuildSettings,
    release: &Release,
    assembled: &Assembled,
    base: Option<&image::BaseImage>,
    store: &BlobStore,
) -> anyhow::Result<(Vec<layer::LayerSpec>, plan::User)> {
    let (user, include_cookie, slim_erts) = (s.user.clone(), s.include_cookie, s.slim_erts);
    let hot_upgrades = s.upgrade.hot_upgrades;
    let (release, tini) = (release.clone(), assembled.tini.clone());
    let (own_apps, dep_apps) = (assembled.own_apps.clone(), assembled.dep_apps.clone());
    let (base_layers, store) = (base.map(|b| b.layers.clone()).unwrap_or_default(), store.clone());
    blocking(move || {
        let read = |path: &str| -> anyhow::Result<String> {
            let bytes = base::read_file_from_layers(&store, &base_layers, path)
                .with_context(|| format!("reading /{path} from the base image"))?;
            Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default())
        };
        let (base_passwd, base_group) = (read("etc/passwd")?, read("etc/group")?);
        let user = user.resolve(&base_passwd)?;
        let input = PlanInput {
            release: &release,
            own_apps: &own_apps,
            dep_apps: &dep_apps,
            tini: &tini,
            base_passwd,
            base_group,
            user: &user,
            include_cookie,
            hot_upgrades,
        };
        let mut specs = plan::plan(&input)?;
        if slim_erts {
            minimal_base::leave_out_slimmed(&mut specs, &release, APP_DIR);
        }
        Ok((specs, user))
    })
    .await
}

/// The layers of `specs`, written (or reused from the layer cache) off the async runtime.
async fn write_layers(
    s: &BuildSettings,
    specs: Vec<layer::LayerSpec>,
    store: &BlobStore,
) -> anyhow::Result<Vec<layer::LayerBlob>> {
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
    Ok(written.into_iter().map(|w| w.blob).collect())
}

/// Writes `image` to the outputs `names` gives it, the registry last.
async fn write_image(
    s: &BuildSettings,
    image: &Image,
    names: &releases::ReleaseOutputs,
    cx: &outputs::OutputContext<'_>,
    store: &BlobStore,
) -> anyhow::Result<()> {
    let sinks = outputs::outputs(s, names, cx)?;
    sinks.write(&Artifact::Image(image.clone()), &Blobs::Store(store.clone())).await?;
    Ok(())
}
