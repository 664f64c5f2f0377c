//! Assembles the release(s) of a project (`MIX_ENV=prod mix release`, or `rebar3 as prod release`
//! for rebar3 projects) in a builder container ([`docker::assemble`]) or on the host
//! ([`host::assemble`]). Both run the same POSIX sh script, [`ASSEMBLE_SH`], and hand back an
//! [`Assembled`]: the release directories extracted on the host, a tini binary, and which
//! applications are the project's own and which its dependencies.

pub mod cache;
pub mod cache_dirs;
mod container;
pub mod cross;
pub mod docker;
mod docker_image;
pub mod endpoint;
pub mod host;
pub mod input_files;
pub mod inputs;
pub mod kept;
pub mod known_releases;
pub mod leftovers;
pub mod limits;
mod log;

/// The unprivileged build user of `build_user.sh` (uid, gid), whom short-lived containers that
/// need no privilege at all run as (the minimal base's gathering, the relup).
pub const BUILD_USER_IDS: (u64, u64) = (10001, 10001);

/// A tar header of `kind`, `size` and `mode` owned by [`BUILD_USER_IDS`]: what is uploaded into
/// such a container.
pub fn build_user_header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(BUILD_USER_IDS.0);
    h.set_gid(BUILD_USER_IDS.1);
    h
}

#[cfg(test)]
pub(crate) mod memory_probe;
mod output;
pub mod owner;
pub mod restore;
pub mod scratch;
mod source_delta;
mod ssh_agent;
mod ssh_tunnel;
mod upload;
pub mod warm;

use crate::cancel::StopSignal;
use crate::project::{Project, ProjectError};
use crate::triple::Triple;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

pub use limits::Limits;
pub use log::LogTail;

/// The script both builders run (`sh -c`); its environment is documented at the top of
/// `assemble.sh`. It starts with `MIX_TASK='…'`, the mix task of `assemble_mix.exs` and the warm
/// builder's Mix server (`warm/mix_server.exs`; neither has a single quote), then the functions
/// that talk to that server (`warm/mix_client.sh`), the warm builder's kept sources
/// (`source_base.sh`), a new cache volume's restore (`restore.sh`) and `assemble.sh`; the minimal
/// base's step (`minimal_base.sh`, run when `MINIMAL_BASE=1`, with `ELF_GROUPS_PL='…'`, the perl
/// of `elf_groups.pl`, also free of single quotes) follows the assembly, and `send_out.sh` (with
/// `STREAM_OUT=1`: OUT as a tar on stdout) ends it.
pub const ASSEMBLE_SH: &str = concat!(
    "MIX_TASK='",
    include_str!("assemble_mix.exs"),
    include_str!("warm/mix_server.exs"),
    "'\n",
    include_str!("warm/mix_client.sh"),
    include_str!("source_base.sh"),
    include_str!("restore.sh"),
    include_str!("assemble.sh"),
    "ELF_GROUPS_PL='",
    include_str!("elf_groups.pl"),
    "'\n",
    include_str!("minimal_base.sh"),
    include_str!("send_out.sh")
);

/// Label put on every builder container (`org.release-oci.role=builder`).
pub const ROLE_LABEL: &str = "org.release-oci.role";
pub const ROLE_BUILDER: &str = "builder";

/// How many of the last log lines a failure carries.
pub const LOG_TAIL_LINES: usize = 40;

/// Whether to pull a builder image that is not in the engine's image store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull it (bounded in time) when it is missing.
    Missing,
    /// Never pull: a missing image is an error.
    Never,
}

/// What to assemble, and where.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub project: Project,
    /// The project's source tar as the build read it for its result cache key (the Docker
    /// builder sends exactly these bytes, or, when the tar was too big to keep, the files again,
    /// checked against its digest); None: the builder reads the sources itself.
    pub sources: Option<std::sync::Arc<crate::project::SourceTar>>,
    pub triple: Triple,
    pub mix_env: String,
    /// The rebar3 profile (rebar3 projects).
    pub profile: String,
    /// The release to assemble: a name, `all` (every release), or None (the project's default).
    pub release: Option<String>,
    /// The image the Docker builder runs (e.g. `triple.default_builder_image()`).
    pub builder_image: String,
    pub pull: PullPolicy,
    /// Also gather the files of the minimal runtime base (`--base minimal`) into `OUT/base`.
    pub minimal_base: Option<crate::minimal::GatherOptions>,
    /// Keep `deps/` and `_build/` between builds in the project's cache volume ([`cache`]; the
    /// Docker builder only).
    pub cache: bool,
    /// Notified once the builder container has started (the Docker builder): work that would
    /// compete with creating and starting it for the engine, such as exporting the base image,
    /// waits for this.
    pub started: Option<std::sync::Arc<tokio::sync::Notify>>,
    /// What a new cache volume is filled with before the build (`--cache-repo`'s artifacts,
    /// [`restore`]): sent with the sources and unpacked by the build script. Builds without the
    /// volume ignore it.
    pub restore: Option<std::sync::Arc<restore::Restore>>,
    /// The longest the builder container may run (`--timeout`; the Docker builder only): then it
    /// is stopped and removed, and the build fails with [`BuilderError::TimedOut`].
    pub timeout: Option<std::time::Duration>,
    /// The builder container's memory and process limits (`--memory`, `--pids-limit`; the Docker
    /// builder only).
    pub limits: Limits,
    /// What the build is given besides the sources: its environment, secrets, SSH agents, Hex
    /// repositories, CA trust, whether assets are built ([`inputs`]).
    pub inputs: inputs::BuilderInputs,
}

#[cfg(test)]
impl BuildRequest {
    /// A plain x86_64 mix build of the project at `root` with the default limits (unit tests).
    pub(crate) fn for_test(root: &std::path::Path) -> BuildRequest {
        BuildRequest {
            project: crate::project::Project::open(root).unwrap(),
            sources: None,
            triple: "x86_64-unknown-linux-gnu".parse().unwrap(),
            mix_env: "prod".into(),
            profile: "prod".into(),
            release: None,
            builder_image: "release-oci/builder:debian-bookworm".into(),
            pull: PullPolicy::Never,
            minimal_base: None,
            cache: true,
            started: None,
            restore: None,
            timeout: None,
            limits: Limits::default(),
            inputs: Default::default(),
        }
    }
}

/// One release the builder assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledRelease {
    /// The release's name (`releases/VSN/NAME.rel`, also `bin/NAME`).
    pub name: String,
    /// The release directory: `bin/`, `lib/`, `releases/`, `erts-*`.
    pub dir: PathBuf,
}

/// The assembled release(s), extracted on the host. The files live in a temporary directory that
/// is removed when this value is dropped.
#[derive(Debug)]
pub struct Assembled {
    /// Every release assembled (one, unless `--release all` found several), sorted by name.
    pub releases: Vec<AssembledRelease>,
    /// The first of [`Self::releases`]: its directory.
    pub release_dir: PathBuf,
    /// The first of [`Self::releases`]: its name.
    pub release_name: String,
    /// A tini binary for the target (static when the builder has one).
    pub tini: PathBuf,
    /// The project's own applications (`:app`, or the umbrella's apps).
    pub own_apps: BTreeSet<String>,
    /// The project's dependencies (`Mix.Project.deps_paths()`, path deps included). Every other
    /// application in the release comes with Erlang/OTP or Elixir.
    pub dep_apps: BTreeSet<String>,
    /// The builder image's id (None for host builds).
    pub builder_image_id: Option<String>,
    /// What the builder gathered for the minimal base (`OUT/base`: `rootfs/` and `why`, beside
    /// `OUT/rel`), when [`BuildRequest::minimal_base`] asked for it.
    pub base_dir: Option<PathBuf>,
    _dir: Option<TempDir>,
}

impl Assembled {
    /// Hands over the temporary directory that holds the release files (None for a release read
    /// in place, as `--from-release` does): dropping it removes them. The paths in `self` must not
    /// be read afterwards.
    pub fn take_files(&mut self) -> Option<TempDir> {
        self._dir.take()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error(transparent)]
    Inputs(#[from] inputs::InputError),
    #[error("no Docker engine answers at {addr}: start dockerd (scripts/setup.sh does) or set DOCKER_HOST ({detail})")]
    NoEngine { addr: String, detail: String },
    #[error(transparent)]
    Endpoint(#[from] endpoint::EndpointError),
    #[error(
        "no Docker engine answers at {addr}, the builder host of {platform} ({detail}): check --builder-host \
         (or builder_host in the settings file) and that the engine runs there"
    )]
    NoBuilderEngine { addr: String, platform: String, detail: String },
    #[error(
        "builder image {image} is not on the engine at {endpoint} ({detail}): load it there, e.g. from this \
         machine's engine: {load}"
    )]
    ImageNotOnEngine { image: String, endpoint: String, detail: String, load: String },
    #[error(
        "{what} needs the builder engine on this machine (a bind mount of a host path), and the engine at \
         {endpoint} is not: {instead}"
    )]
    NeedsLocalEngine { what: String, endpoint: String, instead: String },
    #[error(
        "builder image {image} is not available ({detail}): build it with base-images/build-local.sh \
         or `docker build -t {image} base-images/<flavour>`, or choose another with --builder-image"
    )]
    ImageMissing { image: String, detail: String },
    #[error(
        "builder image {image} is for {actual}, the target {triple} needs {wanted}: use a builder \
         image for {wanted} (--builder-image)"
    )]
    ImagePlatform { image: String, triple: String, wanted: String, actual: String },
    #[error("Docker failed {action}: {source}")]
    Docker { action: String, source: bollard::errors::Error },
    #[error("{}", build_failed(container, image, *exit_code, log_tail))]
    BuildFailed { container: String, image: String, exit_code: i64, log_tail: Vec<String> },
    #[error(
        "the release build ran out of memory: the engine killed builder container {container} at its \
         --memory limit of {}; raise --memory (or `memory` in release-oci.toml). Last lines of its log:\n{}",
        limits::format_memory(*memory),
        indent(log_tail)
    )]
    OutOfMemory { container: String, memory: u64, log_tail: Vec<String> },
    #[error("{}", host_failed(*exit_code, log_tail))]
    HostBuildFailed { exit_code: Option<i32>, log_tail: Vec<String> },
    #[error(
        "cannot build on this host for {requested}: the host is {}; use the Docker builder",
        host.as_ref().map_or_else(|| "not a supported triple".to_string(), |t| t.to_string())
    )]
    HostMismatch { host: Option<Triple>, requested: Triple },
    #[error("cannot run {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    /// Stopped by a signal; `container` names the builder container when it was removed.
    #[error(
        "interrupted by {signal}{}",
        container.as_ref().map(|c| format!(" (builder container {c} removed)")).unwrap_or_default()
    )]
    Interrupted { signal: StopSignal, container: Option<String> },
    #[error("{}", timed_out(container, *timeout, *removed))]
    TimedOut { container: String, timeout: std::time::Duration, removed: bool },
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("the builder's output is unusable: {path}: {message}")]
    Output { path: PathBuf, message: String },
    #[error(
        "the sources in {} changed while they were sent to the builder (their tar {}): build again \
         once nothing writes to them",
        root.display(),
        sources_changed(*expected, *actual)
    )]
    SourcesChanged { root: PathBuf, expected: u64, actual: Option<u64> },
    #[error(
        "--release {release}: the project has no such release ({} {how}: {}); pass one of those, \
         or --release all, or leave --release out for the default",
        file.display(),
        releases.join(", ")
    )]
    UnknownRelease { release: String, file: PathBuf, how: String, releases: Vec<String> },
    #[error(
        "warm builder container {container} stopped during the build (killed, or it ran out of memory): build again \
         (a new warm builder is made), or without --warm-builder. Last lines of its log:\n{}",
        indent(log_tail)
    )]
    WarmBuilderGone { container: String, log_tail: Vec<String> },
}

fn build_failed(container: &str, image: &str, exit_code: i64, log_tail: &[String]) -> String {
    format!(
        "the release build failed with exit code {exit_code} (container {container}, image {image}); \
         last lines of its log:\n{}",
        indent(log_tail)
    )
}

/// How the sources' tar sent differs from the one read just before (`actual`: its size, None
/// when it grew past `expected`).
fn sources_changed(expected: u64, actual: Option<u64>) -> String {
    match actual {
        None => format!("grew past the {expected} bytes read just before"),
        Some(n) if n == expected => format!("has other contents than the {expected} bytes read just before"),
        Some(n) => format!("came to {n} bytes, not the {expected} read just before"),
    }
}

fn timed_out(container: &str, timeout: std::time::Duration, removed: bool) -> String {
    let t = crate::time::format_duration(timeout);
    let what = if removed { "stopped and removed" } else { "stopped, but could not be removed (see the warning)" };
    format!(
        "the release build took longer than --timeout {t}: builder container {container} was {what}; \
         if the build needs longer, raise --timeout, else look in its log above for what hangs"
    )
}

fn host_failed(exit_code: Option<i32>, log_tail: &[String]) -> String {
    let code = exit_code.map_or_else(|| "killed by a signal".to_string(), |c| format!("exit code {c}"));
    format!("the release build on the host failed ({code}); last lines of its log:\n{}", indent(log_tail))
}

fn indent(lines: &[String]) -> String {
    lines.iter().map(|l| format!("  │ {l}")).collect::<Vec<_>>().join("\n")
}

impl Assembled {
    /// Puts together releases assembled elsewhere (e.g. `--from-release`). `dir`, when given, is
    /// removed with this value. `releases` must not be empty.
    pub fn new(
        releases: Vec<AssembledRelease>,
        tini: PathBuf,
        own_apps: BTreeSet<String>,
        dep_apps: BTreeSet<String>,
        builder_image_id: Option<String>,
        dir: Option<TempDir>,
    ) -> Result<Assembled, BuilderError> {
        let first = releases.first().cloned().ok_or_else(|| BuilderError::Output {
            path: dir.as_ref().map_or_else(PathBuf::new, |d| d.path().to_path_buf()),
            message: "no release".into(),
        })?;
        Ok(Assembled {
            releases,
            release_dir: first.dir,
            release_name: first.name,
            tini,
            own_apps,
            dep_apps,
            builder_image_id,
            base_dir: None,
            _dir: dir,
        })
    }

    /// Reads what the script left in `out` (inside `dir`): `rel/` (one release) or `rel/NAME/`
    /// (several), `apps`, `tini`.
    fn from_output(dir: TempDir, out: &Path, builder_image_id: Option<String>) -> Result<Assembled, BuilderError> {
        let tini = out.join("tini");
        let apps_path = out.join("apps");
        let bad = |path: &Path, message: String| BuilderError::Output { path: path.to_path_buf(), message };
        if !tini.is_file() {
            return Err(bad(&tini, "missing".into()));
        }
        warn_if_dynamic(&tini);
        let releases = read_releases(&out.join("rel"))?;
        let apps = std::fs::read_to_string(&apps_path).map_err(|source| BuilderError::Io {
            action: "cannot read",
            path: apps_path.clone(),
            source,
        })?;
        let (own_apps, dep_apps) = parse_apps(&apps).map_err(|m| bad(&apps_path, m))?;
        let mut assembled = Assembled::new(releases, tini, own_apps, dep_apps, builder_image_id, Some(dir))?;
        // The minimal base's files, when the request asked for them.
        let base = out.join("base");
        assembled.base_dir = base.is_dir().then_some(base);
        Ok(assembled)
    }
}

/// The release at `rel` (it has `releases/start_erl.data`), or the releases in its subdirectories,
/// each with its `bin/NAME`.
fn read_releases(rel: &Path) -> Result<Vec<AssembledRelease>, BuilderError> {
    let bad = |path: &Path, message: String| BuilderError::Output { path: path.to_path_buf(), message };
    let dirs: Vec<PathBuf> = if rel.join("releases").join("start_erl.data").is_file() {
        vec![rel.to_path_buf()]
    } else {
        let entries = std::fs::read_dir(rel).map_err(|source| BuilderError::Io {
            action: "cannot list",
            path: rel.to_path_buf(),
            source,
        })?;
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        dirs.sort();
        dirs
    };
    let mut releases = Vec::new();
    for dir in dirs {
        let name = release_name(&dir)?;
        if !dir.join("bin").join(&name).is_file() {
            return Err(bad(&dir, format!("no bin/{name}")));
        }
        releases.push(AssembledRelease { name, dir });
    }
    if releases.is_empty() {
        return Err(bad(rel, "no release in it".into()));
    }
    Ok(releases)
}

/// The release name: `releases/start_erl.data` names the version (`ERTS_VSN REL_VSN`), and
/// `releases/REL_VSN/NAME.rel` the release.
fn release_name(release_dir: &Path) -> Result<String, BuilderError> {
    let start_erl = release_dir.join("releases").join("start_erl.data");
    let data = std::fs::read_to_string(&start_erl).map_err(|source| BuilderError::Io {
        action: "cannot read",
        path: start_erl.clone(),
        source,
    })?;
    let bad = |path: &Path, message: &str| BuilderError::Output { path: path.to_path_buf(), message: message.into() };
    let vsn = data.split_whitespace().nth(1).ok_or_else(|| bad(&start_erl, "expected `ERTS_VSN REL_VSN`"))?;
    let vsn_dir = release_dir.join("releases").join(vsn);
    let entries = std::fs::read_dir(&vsn_dir).map_err(|source| BuilderError::Io {
        action: "cannot list",
        path: vsn_dir.clone(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".rel")).map(str::to_string))
        .collect();
    names.sort();
    match names.as_slice() {
        [name] => Ok(name.clone()),
        _ => Err(bad(&vsn_dir, "expected exactly one NAME.rel")),
    }
}

/// Parses the `apps` file: lines `own APP` and `dep APP`.
fn parse_apps(text: &str) -> Result<(BTreeSet<String>, BTreeSet<String>), String> {
    let (mut own, mut deps) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match line.split_once(' ') {
            Some(("own", app)) if !app.trim().is_empty() => own.insert(app.trim().to_string()),
            Some(("dep", app)) if !app.trim().is_empty() => deps.insert(app.trim().to_string()),
            _ => return Err(format!("unexpected line {line:?} (expected `own APP` or `dep APP`)")),
        };
    }
    if own.is_empty() {
        return Err("names none of the project's own applications".into());
    }
    Ok((own, deps))
}

/// A tini with an ELF interpreter needs the runtime image's libc; say so (it still works there).
fn warn_if_dynamic(tini: &Path) {
    let Ok(bytes) = std::fs::read(tini) else { return };
    if let Ok(elf) = goblin::elf::Elf::parse(&bytes)
        && let Some(interpreter) = elf.interpreter
    {
        tracing::warn!(
            interpreter,
            "the builder's tini is dynamically linked: the runtime image must provide its libc"
        );
    }
}

#[cfg(test)]
mod settle_tests;
#[cfg(test)]
mod tests;
