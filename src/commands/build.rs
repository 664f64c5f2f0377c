//! `release-oci build`: project → release (builder) → layers → image → outputs.

use crate::base;
use crate::builder::{self, Assembled, BuildRequest, PullPolicy};
use crate::cli::{BuildSettings, BuilderKind};
use crate::image::{self, ConfigSettings, Image};
use crate::layer::{self, TarOptions};
use crate::plan::{self, APP_DIR, PlanInput, TINI_PATH};
use crate::project::Project;
use crate::release::Release;
use crate::sink::{self, Target};
use crate::store::BlobStore;
use crate::{time, ui};
use anyhow::{Context, bail};
use std::collections::BTreeMap;

/// The PATH Docker itself gives a container whose image sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs the build; returns the image (its manifest digest is what `main` prints on stdout).
pub async fn run(s: BuildSettings) -> anyhow::Result<Image> {
    let project = Project::open(&s.project)?;
    let store = BlobStore::open(&s.cache_dir).with_context(|| format!("blob cache {}", s.cache_dir.display()))?;
    // Fail on unwritable outputs before the (long) build, not after it.
    for out in &s.outputs {
        check_writable(out)?;
    }
    let needs_docker = s.builder == BuilderKind::Docker || s.base.needs_docker() || s.load;
    let docker = if needs_docker { Some(builder::docker::connect().await?) } else { None };

    let req = BuildRequest {
        project: project.clone(),
        triple: s.triple.clone(),
        mix_env: s.mix_env.clone(),
        release: s.release.clone(),
        builder_image: s.builder_image.clone(),
        pull: if s.pull_missing { PullPolicy::Missing } else { PullPolicy::Never },
    };
    let assembled: Assembled = match (s.builder, &docker) {
        (BuilderKind::Docker, Some(d)) => {
            ui::step(format!(
                "Assembling the release in a builder container ({}, {})",
                s.builder_image,
                s.triple.platform()
            ));
            builder::docker::assemble(d, &req).await?
        }
        _ => {
            ui::step(format!("Assembling the release on this machine ({})", s.triple));
            let req = req.clone();
            tokio::task::spawn_blocking(move || builder::host::assemble(&req)).await??
        }
    };
    let release = Release::open(&assembled.release_dir, s.release.as_deref())?;
    ui::detail(format!(
        "release {} {} (ERTS {}), {} applications",
        release.name,
        release.version,
        release.erts_version.as_deref().unwrap_or("not included"),
        release.apps.len()
    ));

    // The builder handled signals while it ran (it had a container to remove); from here on there
    // is nothing outside this process to clean up, so a signal just ends the build (temp files are
    // removed as their owners drop).
    tokio::select! {
        r = finish(&s, &project, &release, &assembled, &store, docker.as_ref()) => r,
        sig = interrupted() => Err(anyhow::Error::new(Interrupted(sig?))),
    }
}

/// The build was stopped by a signal (the CLI exits with 128 + the signal number).
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {0}")]
pub struct Interrupted(pub &'static str);

async fn interrupted() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    })
}

async fn finish(
    s: &BuildSettings,
    project: &Project,
    release: &Release,
    assembled: &Assembled,
    store: &BlobStore,
    docker: Option<&bollard::Docker>,
) -> anyhow::Result<Image> {
    let task = ui::task(format!("Reading base image {}", s.base));
    let platform = s.triple.platform();
    let base = base::load(&s.base, docker, &platform, store).await?;
    task.done(match &base {
        Some(b) => format!("{} layers", b.layers.len()),
        None => "scratch".into(),
    });

    let image = layer_and_assemble(s, project, release, assembled, base.as_ref(), store).await?;
    write_outputs(s, &image, release, store, docker).await?;
    Ok(image)
}

async fn layer_and_assemble(
    s: &BuildSettings,
    project: &Project,
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
    let specs = plan::plan(&input)?;
    let task = ui::task(format!("Writing {} layers", specs.len()));
    let opts = TarOptions { mtime: s.epoch };
    let store2 = store.clone();
    let layers = tokio::task::spawn_blocking(move || layer::write_layers(&specs, &opts, &store2)).await??;
    task.done(layers.iter().map(|l| format!("{} {}", l.name, ui::bytes(l.size))).collect::<Vec<_>>().join(", "));

    let created = time::rfc3339(s.epoch);
    let mut annotations = BTreeMap::new();
    annotations.insert("org.opencontainers.image.version".to_string(), release.version.clone());
    annotations.insert("org.opencontainers.image.title".to_string(), release.name.clone());
    annotations.insert("org.opencontainers.image.created".to_string(), created.clone());
    if let Some(rev) = project.git_revision() {
        annotations.insert("org.opencontainers.image.revision".to_string(), rev);
    }
    if let Some(src) = s.source_url.clone().or_else(|| project.git_remote_url()) {
        annotations.insert("org.opencontainers.image.source".to_string(), src);
    }
    if let Some(b) = base {
        annotations.insert("org.opencontainers.image.base.name".to_string(), b.name.clone());
        if let Some(d) = &b.digest {
            annotations.insert("org.opencontainers.image.base.digest".to_string(), d.to_string());
        }
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
    // Engines fill in a PATH when an image has none, but not every runtime does: set the usual one.
    let base_has_path = base
        .and_then(|b| b.config.config().as_ref())
        .and_then(|c| c.env().as_ref())
        .is_some_and(|env| env.iter().any(|e| e.starts_with("PATH=")));
    if !base_has_path {
        env.insert(0, ("PATH".to_string(), DEFAULT_PATH.to_string()));
    }
    env.extend(s.env.clone());
    let settings = ConfigSettings {
        platform: s.triple.platform(),
        entrypoint: vec![format!("/{TINI_PATH}"), "--".into(), format!("/{APP_DIR}/bin/{}", release.name)],
        cmd: vec!["start".into()],
        user: Some(format!("{}:{}", user.uid, user.gid)),
        working_dir: Some(format!("/{APP_DIR}")),
        env,
        exposed_ports: s.ports.clone(),
        labels,
        stop_signal: Some("SIGTERM".into()),
        created,
    };
    Ok(image::assemble(base, layers, &settings, &annotations, store)?)
}

async fn write_outputs(
    s: &BuildSettings,
    image: &Image,
    release: &Release,
    store: &BlobStore,
    docker: Option<&bollard::Docker>,
) -> anyhow::Result<()> {
    let tags = if s.tags.is_empty() { vec![format!("{}:{}", release.name, release.version)] } else { s.tags.clone() };
    for out in &s.outputs {
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
        crate::engine::load(docker, image, store, &tags).await?;
        ui::step(format!("Loaded into the Docker engine as {}", tags.join(", ")));
    }
    Ok(())
}

/// The parent directory of an output must exist (or be creatable) and be writable.
fn check_writable(out: &Target) -> anyhow::Result<()> {
    let (path, is_dir) = match out {
        Target::OciLayout { dir, .. } => (dir.as_path(), true),
        Target::Archive { path } => (path.as_path(), false),
    };
    let parent = if is_dir { path } else { path.parent().unwrap_or(std::path::Path::new(".")) };
    let mut probe = parent;
    // The nearest existing ancestor must be a writable directory.
    loop {
        if probe.as_os_str().is_empty() {
            probe = std::path::Path::new(".");
        }
        if probe.exists() {
            break;
        }
        match probe.parent() {
            Some(p) => probe = p,
            None => break,
        }
    }
    if !probe.is_dir() {
        bail!("cannot write {out}: {} is not a directory", probe.display());
    }
    tempfile::tempfile_in(probe).with_context(|| format!("cannot write {out}: {} is not writable", probe.display()))?;
    Ok(())
}
