//! The build's side of the result cache ([`crate::result_cache`]): what the fingerprint of a
//! build is made of, reusing a recorded result (outputs only: no builder, no layering), and
//! recording a new one. A build uses it when it runs the Docker builder on a project for one triple
//! (each platform of a multi-platform build is such a build). `--no-cache` skips the lookup and
//! still records. The list of inputs is in docs/build-cache.md.

use super::{BuiltImage, releases};
use crate::base::BaseRef;
use crate::cli::{BuildSettings, BuilderKind};
use crate::project::Project;
use crate::result_cache::{CachedImage, Fingerprint, KeyBuilder, ResultCache};
use crate::store::BlobStore;
use crate::ui;
use anyhow::{Context, bail};
use bollard::Docker;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A build's fingerprint and the base identity it was made with (checked again after the build).
pub(super) struct Key {
    pub fingerprint: Fingerprint,
    /// The fingerprint shared through `--cache-repo` (no machine-local part), when one is given.
    pub portable: Option<Fingerprint>,
    base: String,
    /// The builder image's id and the source tar's digest (the build-dirs keys use them too).
    pub builder_id: String,
    pub sources: crate::digest::Digest,
    /// The source tar the digest is of: the builder is sent these bytes (`BuildRequest::sources`).
    pub tar: std::sync::Arc<crate::project::SourceTar>,
}

/// Whether the result cache applies: the Docker builder on a project, one triple, no upgrade
/// package to make (`--upgrade-from`).
pub(super) fn applies(s: &BuildSettings) -> bool {
    s.from_release.is_none() && s.builder == BuilderKind::Docker && s.platforms.is_empty() && s.upgrade.from.is_none()
}

/// The fingerprint of this build, or None when an input cannot be pinned down (the builder or base
/// image is not in the engine yet, an unreadable layout...): the build then runs and records
/// nothing. Failures here never fail the build: the build itself reports them better.
/// `builder` is the builder's engine (its image id is keyed), `docker` the one of the base.
pub(super) async fn fingerprint(
    s: &BuildSettings,
    project: &Project,
    builder: &Docker,
    docker: &Docker,
    store: &BlobStore,
) -> Option<Key> {
    match try_fingerprint(s, project, builder, docker, store).await {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "no result cache for this build");
            None
        }
    }
}

async fn try_fingerprint(
    s: &BuildSettings,
    project: &Project,
    builder: &Docker,
    docker: &Docker,
    store: &BlobStore,
) -> anyhow::Result<Option<Key>> {
    let Some(builder_id) = image_id(builder, &s.builder_image).await? else { return Ok(None) };
    let Some(base) = base_identity(s, docker, store).await? else { return Ok(None) };
    let p = project.clone();
    let (tar, revision, remote) = tokio::task::spawn_blocking(move || {
        p.read_source_tar(crate::project::KEEP_AT_MOST).map(|t| (t, p.git_revision(), p.git_remote_url()))
    })
    .await??;
    let sources = tar.digest().clone();
    let (builder_image_id, source_digest) = (builder_id.clone(), sources.clone());
    let common = [
        ("project-kind", project.kind().as_str().to_string()),
        ("sources", sources.as_str().to_string()),
        ("git-revision", format!("{revision:?}")),
        ("git-remote", format!("{remote:?}")),
        ("builder-image-id", builder_id),
        ("base", base.clone()),
    ];
    let mut k = KeyBuilder::new();
    settings_parts(&mut k, s);
    k.part("tool", tool_identity())
        // Per checkout, like the build cache volume: another copy of the same sources builds
        // (and shows that it builds the same image) rather than reusing this one's result.
        .part("project", project.root.as_os_str().as_encoded_bytes());
    for (name, value) in &common {
        k.part(name, value);
    }
    for (name, value) in k.parts() {
        tracing::debug!(part = %name, value = %String::from_utf8_lossy(value), "result cache key");
    }
    let fingerprint = k.finish();
    tracing::info!(key = fingerprint.hex(), "result cache key");
    let portable = match &s.cache_repo {
        Some(_) => Some(super::registry_cache::portable_key(s, &common).await?),
        None => None,
    };
    let tar = std::sync::Arc::new(tar);
    Ok(Some(Key { fingerprint, portable, base, builder_id: builder_image_id, sources: source_digest, tar }))
}

/// The settings that shape the image, each by its `Debug` form (this binary's, and the binary is
/// part of the key). The destructuring is exhaustive on purpose: a new setting does not compile
/// until it is either keyed (bound here, and then used) or named here as output-only.
///
/// Not keyed, and why: the caller keys the canonical `project` root and the sources' content,
/// the builder image's id (not `builder_image`'s name) and the base as it is now
/// (`base_identity`); `builder_catalogue` is resolved to a builder image (keyed by its id) first;
/// `builder_hosts` and `pull_missing` say which engine runs the builder, not what it makes;
/// `image_name`, `outputs`, `load`, `tags`, `push`, `cache_repo`, `registry` and `cache_dir` say
/// where the image goes and where results are shared; with or without the build cache volume
/// (`no_cache`) the image is the same (tests/integration/cache.rs); `timeout` and `limits` bound
/// the builder; a warm builder (`warm_builder`) makes the same image as a new container
/// (docs/warm-builder.md); `supply` (SBOM, signatures, provenance) goes beside the image. Keyed only when
/// not the default: `cross_compile` (compiled once or under emulation gives the same release,
/// docs/multi-platform.md, but `never` must really build the other way) and `upgrade`'s
/// `--hot-upgrades`, which shapes the image (`--upgrade-from` makes a package beside it, and such
/// a build is never reused nor recorded: `applies`).
pub(crate) fn settings_parts(k: &mut KeyBuilder, s: &BuildSettings) {
    #[rustfmt::skip]
    let BuildSettings {
        // The build env, secret ids (never values), agents, Hex repositories and client, assets.
        inputs,
        triple, builder, mix_env, profile, release, from_release, tini, cmd, slim_erts, tzdata, user, env, ports,
        labels, annotations, include_cookie, source_url, compression, epoch, platforms, cross_compile, upgrade,
        project: _, builder_image: _, base: _, builder_catalogue: _, builder_hosts: _, pull_missing: _,
        image_name: _, outputs: _, load: _, tags: _, push: _, cache_repo: _, registry: _, cache_dir: _,
        no_cache: _, timeout: _, limits: _, supply: _, warm_builder: _,
    } = s;
    let assembly = AssemblyKeys { inputs, triple, builder, mix_env, profile, release, from_release, tini };
    let config = ConfigKeys { cmd, slim_erts, tzdata, user, env, ports, labels, annotations };
    let layers = LayerKeys { include_cookie, source_url, compression, epoch, platforms };
    for (name, value) in assembly.parts().into_iter().chain(config.parts()).chain(layers.parts()) {
        k.part(name, value);
    }
    // Only the non-default is a part: the keys of every other build stay what they were.
    if *cross_compile == crate::cli::CrossCompile::Never {
        k.part("cross_compile", "never");
    }
    if upgrade.hot_upgrades {
        k.part("hot_upgrades", "true");
    }
}

/// The keyed settings of what the builder assembles.
struct AssemblyKeys<'a> {
    inputs: &'a crate::builder::inputs::BuilderInputs,
    triple: &'a crate::triple::Triple,
    builder: &'a BuilderKind,
    mix_env: &'a str,
    profile: &'a str,
    release: &'a Option<String>,
    from_release: &'a Option<PathBuf>,
    tini: &'a Option<PathBuf>,
}

impl AssemblyKeys<'_> {
    fn parts(&self) -> [(&'static str, String); 9] {
        let AssemblyKeys { inputs, triple, builder, mix_env, profile, release, from_release, tini } = self;
        [
            ("inputs", inputs.key_part()),
            ("triple", triple.to_string()),
            ("host", format!("{:?}", crate::triple::Triple::host())),
            ("builder", format!("{builder:?}")),
            ("mix-env", mix_env.to_string()),
            ("profile", profile.to_string()),
            ("release", format!("{release:?}")),
            ("from-release", format!("{from_release:?}")),
            ("tini", format!("{tini:?}")),
        ]
    }
}

/// The keyed settings of the image's config.
struct ConfigKeys<'a> {
    cmd: &'a Option<String>,
    slim_erts: &'a bool,
    tzdata: &'a bool,
    user: &'a crate::cli::UserSpec,
    env: &'a Vec<(String, String)>,
    ports: &'a Vec<String>,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
}

impl ConfigKeys<'_> {
    fn parts(&self) -> [(&'static str, String); 8] {
        let ConfigKeys { cmd, slim_erts, tzdata, user, env, ports, labels, annotations } = self;
        [
            ("cmd", format!("{cmd:?}")),
            ("slim-erts", slim_erts.to_string()),
            ("tzdata", tzdata.to_string()),
            ("user", format!("{user:?}")),
            ("env", format!("{env:?}")),
            ("ports", format!("{ports:?}")),
            ("labels", format!("{labels:?}")),
            ("annotations", format!("{annotations:?}")),
        ]
    }
}

/// The keyed settings of the layers' bytes and the platforms.
struct LayerKeys<'a> {
    include_cookie: &'a bool,
    source_url: &'a Option<String>,
    compression: &'a crate::layer::Compression,
    epoch: &'a u64,
    platforms: &'a Vec<crate::cli::PlatformBuild>,
}

impl LayerKeys<'_> {
    fn parts(&self) -> [(&'static str, String); 4] {
        let LayerKeys { include_cookie, source_url, compression, epoch, platforms } = self;
        [
            ("include-cookie", include_cookie.to_string()),
            ("source-url", format!("{source_url:?}")),
            ("compression", compression.to_string()),
            ("epoch+platforms", format!("{epoch} {platforms:?}")),
        ]
    }
}

/// This program: its version and its executable's size and modification time (a rebuilt binary is
/// another tool, whatever its version says).
pub(super) fn tool_identity() -> String {
    let exe = std::env::current_exe().ok().and_then(|p| std::fs::metadata(&p).ok().map(|m| (p, m)));
    let stamp = exe.map(|(p, m)| {
        let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        format!("{} {} {:?}", p.display(), m.len(), mtime)
    });
    format!("{} {stamp:?}", env!("CARGO_PKG_VERSION"))
}

/// The engine's id of `image`; None when the engine does not have it.
async fn image_id(docker: &Docker, image: &str) -> anyhow::Result<Option<String>> {
    match docker.inspect_image(image).await {
        Ok(info) => Ok(info.id.filter(|id| !id.is_empty())),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("inspecting image {image}")),
    }
}

/// What the base is right now, exactly: a Docker image's id (its config digest) and repo digest;
/// a layout's `index.json` bytes (blobs are content-addressed); a registry image's manifest digest
/// (the registry is asked); `scratch`; `minimal` (made from the builder's files: keyed by the
/// builder image id and the settings).
pub(super) async fn base_identity(
    s: &BuildSettings,
    docker: &Docker,
    store: &BlobStore,
) -> anyhow::Result<Option<String>> {
    Ok(match &s.base {
        BaseRef::Scratch | BaseRef::Minimal => Some(s.base.to_string()),
        BaseRef::Daemon(name) => match docker.inspect_image(name).await {
            Ok(info) => {
                let repo_digest = info.repo_digests.unwrap_or_default().into_iter().next();
                info.id.map(|id| format!("{} {id} {repo_digest:?}", s.base))
            }
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => None,
            Err(e) => return Err(e).with_context(|| format!("inspecting base image {name}")),
        },
        BaseRef::Layout { dir, tag } => {
            let dir = tokio::fs::canonicalize(dir).await.with_context(|| format!("base layout {}", dir.display()))?;
            let index = tokio::fs::read(dir.join("index.json"))
                .await
                .with_context(|| format!("base layout {}", dir.display()))?;
            let digest = crate::digest::Digest::of(&index);
            Some(format!("oci:{} {tag:?} {digest}", dir.display()))
        }
        BaseRef::Registry(r) => {
            let platform = s.triple.platform();
            let b = crate::base::load_with(&s.base, Some(docker), &platform, store, &s.registry).await?;
            b.map(|b| {
                let layers: Vec<&str> = b.layers.iter().map(|l| l.digest.as_str()).collect();
                format!("{r} {} {:?} {layers:?}", b.name, b.digest)
            })
        }
    })
}

/// The images recorded for `key`, when the store still has all of their blobs (checking them may
/// hash them: off the async runtime).
pub(super) async fn lookup(store: &BlobStore, key: &Key) -> Option<Vec<CachedImage>> {
    let (store, fingerprint) = (store.clone(), key.fingerprint.clone());
    tokio::task::spawn_blocking(move || ResultCache::new(&store).lookup(&fingerprint)).await.ok().flatten()
}

/// Writes the outputs of a recorded result; the builder and layering are skipped.
pub(super) async fn reuse(
    s: &BuildSettings,
    hit: Vec<CachedImage>,
    store: &BlobStore,
    docker: Option<&Docker>,
) -> anyhow::Result<Vec<BuiltImage>> {
    let several = hit.len() > 1;
    if several && s.push.is_some() {
        bail!("--push takes one image: build one release with --release NAME and push it");
    }
    // Names and outputs are checked before anything is written, as in a full build.
    let outputs = hit
        .iter()
        .map(|c| releases::outputs_for(s, &c.release, &c.version, several))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut built = Vec::new();
    for (c, outputs) in hit.into_iter().zip(outputs) {
        ui::step(reuse_line(&c));
        super::supply_facts::reused(s, &c.image, store).await?;
        // No base image was read: a registry base's layers are uploaded, not mounted.
        let cx = super::outputs::OutputContext { docker, base: None, load_platform: None };
        super::write_image(s, &c.image, &outputs, &cx, store).await?;
        built.push(BuiltImage { release: c.release, version: c.version, image: c.image });
    }
    Ok(built)
}

/// What stderr says of a reused result: which image, and how to build it again instead.
fn reuse_line(c: &CachedImage) -> String {
    format!(
        "No change since the last build: reusing {} {} {} (the result cache; --no-cache or \
         `release-oci cache prune --project DIR` builds again)",
        c.release, c.version, c.image.manifest_digest
    )
}

/// Records what the build made under `key` with its project (`cache prune --project` forgets it),
/// unless the base changed while it ran (the key would not describe the image). A failure is
/// logged, never fatal: the image is built.
/// Returns whether the result may be shared (the base did not change).
pub(super) async fn record(
    s: &BuildSettings,
    key: &Key,
    built: &[BuiltImage],
    store: &BlobStore,
    docker: &Docker,
) -> bool {
    let now = base_identity(s, docker, store).await.ok().flatten();
    if now.as_deref() != Some(key.base.as_str()) {
        tracing::warn!("the base image changed during the build: its result is not cached");
        return false;
    }
    let images: Vec<CachedImage> = built
        .iter()
        .map(|b| CachedImage { release: b.release.clone(), version: b.version.clone(), image: b.image.clone() })
        .collect();
    // The project's canonical directory, as `Project::open` and `cache prune --project` make it.
    let project = tokio::fs::canonicalize(&s.project).await.unwrap_or_else(|_| s.project.clone());
    let (store, fingerprint) = (store.clone(), key.fingerprint.clone());
    let recorded =
        tokio::task::spawn_blocking(move || ResultCache::new(&store).record(&fingerprint, &project, &images));
    match recorded.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot record the build in the result cache"),
        Err(e) => tracing::warn!(error = %e, "cannot record the build in the result cache"),
    }
    true
}

#[cfg(test)]
mod tests;
