//! One build in a warm builder: the builder image checked, the key made, the warm builder found
//! or started ([`super::life`]), and `exec.sh` run by `docker exec` with the sources on its
//! stdin (unpacked into a directory of this build). Its stdout (the tar of OUT) is unpacked as it
//! arrives and its stderr is the log, as for a cold build's container.

use super::WARM_REQS;
use super::key::WarmKey;
use super::life::{self, Found};
use crate::builder::docker::{Engine, STAGE_DIR, blocking, deadline, docker_err, forward_output, race, remove};
use crate::builder::docker_image::ensure_image;
use crate::builder::input_files::InputFile;
use crate::builder::kept::Kept;
use crate::builder::output::{Reading, finish_reading, unpacker};
use crate::builder::source_delta::{NOT_MY_BASE, SourcePlan};
use crate::builder::upload::SourceUpload;
use crate::builder::{ASSEMBLE_SH, Assembled, BuildRequest, BuilderError, LOG_TAIL_LINES, LogTail, cache, container};
use crate::cancel::StopSignal;
use crate::project::SourceTar;
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The script a build runs in the warm builder (as root; it runs ASSEMBLE_SH as the build user).
pub(super) const EXEC_SH: &str = include_str!("exec.sh");

/// The upload's last entry, in the build's directory: the sources arrived whole.
const SRC_SEAL: &str = "src.sealed";

/// How a warm build failed.
pub(super) enum Warm {
    /// The build ran, or was stopped, in the warm builder: its error is the build's.
    Failed(BuilderError),
    /// No warm builder could take the build before it started (one could not be made, or it
    /// went away): a cold build may still succeed.
    Unusable(BuilderError),
}

/// What the build brings to the warm builder.
struct Prepared {
    sources: SourceUpload,
    files: Vec<InputFile>,
    volume: String,
    key: WarmKey,
}

/// Builds `req` in its warm builder on `engine`; a signal from `interrupt`, or `req.timeout`
/// running out, removes the warm builder and fails the build.
pub(super) async fn assemble(
    engine: &Engine,
    req: &BuildRequest,
    idle: Duration,
    interrupt: impl Future<Output = StopSignal>,
) -> Result<Assembled, Warm> {
    tokio::pin!(interrupt);
    let docker = &engine.docker;
    let interrupted = |signal| Warm::Failed(BuilderError::Interrupted { signal, container: None });
    let image = race(&mut interrupt, ensure_image(docker, &engine.endpoint, req)).await.map_err(interrupted)?;
    let image_id = image.map_err(Warm::Failed)?;
    let prepared = race(&mut interrupt, prepare(docker, req, &image_id, idle)).await.map_err(interrupted)?;
    let Prepared { sources, files, volume, key } = prepared.map_err(Warm::Failed)?;
    let name = life::name(req);
    // Not raced, as a cold container's create is not: a start cut short could leave a container
    // behind that nothing knows of. A signal meanwhile is still pending for the race below.
    let fresh = ensure(docker, req, &name, (&volume, &image_id, &key, idle), &files).await.map_err(Warm::Unusable)?;
    crate::ui::detail(match fresh {
        true => format!("a new warm builder: {name}"),
        false => format!("in the warm builder {name}"),
    });
    // The output the last build sent, when no other build holds it (kept.rs).
    let kept = Kept::open(&volume);
    let work = build(docker, req, &name, sources, image_id, kept);
    tokio::select! {
        biased;
        signal = interrupt.as_mut() => {
            let removed = remove(docker, &name).await;
            Err(Warm::Failed(BuilderError::Interrupted { signal, container: removed.ok().map(|_| name.clone()) }))
        }
        timeout = deadline(req.timeout) => {
            let removed = remove(docker, &name).await.is_ok();
            Err(Warm::Failed(BuilderError::TimedOut { container: name.clone(), timeout, removed }))
        }
        result = work => finish_reading(result?).await.map_err(Warm::Failed),
    }
}

/// The build cache volume, the sources counted (every file read), the input files and the key.
async fn prepare(
    docker: &Docker,
    req: &BuildRequest,
    image_id: &str,
    idle: Duration,
) -> Result<Prepared, BuilderError> {
    let volume = cache::ensure_volume(docker, &cache::CacheKey::of(req, image_id), &req.builder_image).await?;
    // The container as it would be made: its environment and command (the scripts of this binary).
    let made = life::warm_body(req, &volume, image_id, &WarmKey(String::new()), idle);
    let mut env = made.env.unwrap_or_default();
    env.extend(made.cmd.unwrap_or_default().into_iter().map(|c| format!("cmd:{c}")));
    let (req, image_id) = (req.clone(), image_id.to_string());
    let (sources, files, key) = blocking(move || {
        let files = req.inputs.files()?;
        let key = WarmKey::of(&req, &image_id, &env, &files)?;
        Ok((SourceUpload::new(req.project.clone(), Vec::new(), req.sources.clone())?, files, key))
    })
    .await?;
    Ok(Prepared { sources, files, volume, key })
}

/// The warm builder `name` running for this key: found, or started (replacing a stale one);
/// whether it is new.
async fn ensure(
    docker: &Docker,
    req: &BuildRequest,
    name: &str,
    (volume, image_id, key, idle): (&str, &str, &WarmKey, Duration),
    files: &[InputFile],
) -> Result<bool, BuilderError> {
    match life::find(docker, name, key).await? {
        Found::Ready => return Ok(false),
        Found::Stale => remove(docker, name).await?,
        Found::Missing => {}
    }
    let body = life::warm_body(req, volume, image_id, key, idle);
    match life::start(docker, name, body, &req.triple.platform().to_string(), files).await {
        Ok(()) => Ok(true),
        // Another build of the project made it meanwhile: used when it is for this key.
        Err(
            e @ BuilderError::Docker { source: DockerError::DockerResponseServerError { status_code: 409, .. }, .. },
        ) => match life::find(docker, name, key).await? {
            Found::Ready => Ok(false),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Uploads the sources into this build's directory and runs `exec.sh`: its log (stderr) streams
/// to our stderr, and its output (stdout) is unpacked as it arrives.
async fn build(
    docker: &Docker,
    req: &BuildRequest,
    name: &str,
    sources: SourceUpload,
    image_id: String,
    kept: Option<Kept>,
) -> Result<Reading, Warm> {
    let id = container::name().rsplit('-').next().unwrap_or("build").to_string();
    let dir = format!("{WARM_REQS}/{id}");
    // Only what changed since the last build, when the builder keeps the sources it was sent.
    let plan = match (&kept, &req.sources) {
        (Some(kept), Some(tar)) => blocking_plan(kept.dir(), tar.clone()).await,
        _ => None,
    };
    let (sources, mut env) = with_plan(req, sources, plan.as_ref(), &dir);
    let sources = with_restore(req, sources, &mut env, &dir).await.map_err(Warm::Failed)?;
    // The sources go in through the exec's stdin, not a `PUT .../archive` first: the engine
    // unpacks an archive with a process of its own (60-75 ms a build).
    let sources = sources.sealed(&format!("{dir}/{SRC_SEAL}"));
    env.push(format!("SRC_BYTES={}", sources.len()));
    env.extend(kept.as_ref().map(Kept::env).unwrap_or_default());
    let exec = exec_config(req, &id, env);
    let action = format!("starting a build in warm builder container {name}");
    let created = docker.create_exec(name, exec).await.map_err(|e| Warm::Unusable(docker_err(action.clone())(e)))?;
    let (tx, reading) = unpacker(Some(image_id), kept).map_err(Warm::Failed)?;
    let options = StartExecOptions { detach: false, tty: false, output_capacity: None };
    let (output, input) = match docker.start_exec(&created.id, Some(options)).await {
        Ok(StartExecResults::Attached { output, input }) => (output, input),
        Ok(StartExecResults::Detached) => {
            return Err(Warm::Unusable(docker_err(action)(DockerError::RequestTimeoutError)));
        }
        Err(e) => return Err(Warm::Unusable(docker_err(action)(e))),
    };
    if let Some(started) = &req.started {
        started.notify_one();
    }
    let mut log = LogTail::new(LOG_TAIL_LINES, !crate::ui::quiet()).redacting(req.inputs.redactions());
    let tar_path = format!("{dir}/src.tar");
    let upload = sources.write_into(input, &tar_path);
    let (uploaded, sent) = tokio::join!(upload, forward_output(output, tx, &mut log, name));
    log.finish();
    // The sources failing to read says more than the build that did not get them.
    uploaded.map_err(Warm::Failed)?;
    let sent = sent.map_err(Warm::Failed)?;
    let inspected = docker.inspect_exec(&created.id).await;
    let code = inspected.map_err(|e| Warm::Failed(docker_err(format!("inspecting a build in container {name}"))(e)))?;
    ended(req, name, code.exit_code, &log, plan.as_ref())?;
    tracing::debug!(container = name, bytes = sent, "the warm builder's output arrived");
    Ok(reading)
}

/// What the exec's exit code makes of the build: Ok (the sources the builder now has are kept
/// in the plan's index), a failed build, or, for changes to sources the builder does not have
/// (its volume made again, say), a build to run cold.
fn ended(
    req: &BuildRequest,
    name: &str,
    exit_code: Option<i64>,
    log: &LogTail,
    plan: Option<&SourcePlan>,
) -> Result<(), Warm> {
    let failed = |exit_code| BuilderError::BuildFailed {
        container: name.to_string(),
        image: req.builder_image.clone(),
        exit_code,
        log_tail: log.tail(),
    };
    match exit_code {
        Some(0) => {
            plan.inspect(|p| p.keep());
            Ok(())
        }
        Some(NOT_MY_BASE) if plan.is_some_and(|p| p.delta().is_some()) => Err(Warm::Unusable(failed(NOT_MY_BASE))),
        Some(exit_code) => Err(Warm::Failed(failed(exit_code))),
        None => Err(Warm::Failed(BuilderError::WarmBuilderGone { container: name.to_string(), log_tail: log.tail() })),
    }
}

/// The plan for this build's sources (`source_delta.rs`), made off the async runtime; None when
/// the tar was too big to keep in memory.
async fn blocking_plan(kept: &std::path::Path, tar: Arc<SourceTar>) -> Option<SourcePlan> {
    let kept = kept.to_path_buf();
    tokio::task::spawn_blocking(move || SourcePlan::new(&kept, tar.bytes()?)).await.ok().flatten()
}

/// The upload and environment `plan` makes of `sources`: the changes and their description (in
/// `dir`, this build's directory), or the whole tar kept under a new token.
fn with_plan(
    req: &BuildRequest,
    sources: SourceUpload,
    plan: Option<&SourcePlan>,
    dir: &str,
) -> (SourceUpload, Vec<String>) {
    let Some(plan) = plan else { return (sources, Vec::new()) };
    match plan.delta() {
        Some(delta) => {
            let description = format!("{dir}/src.delta");
            let file = InputFile {
                path: description.trim_start_matches('/').to_string(),
                content: delta.description.clone(),
                mode: 0o600,
            };
            tracing::debug!(sent = delta.sent, gone = delta.removed, "only the sources that changed go up");
            let upload = SourceUpload::of_bytes(req.project.clone(), vec![file], delta.tar.clone());
            (upload, plan.env(Some(&description)))
        }
        None => (sources, plan.env(None)),
    }
}

/// The upload with a new cache volume's contents (`restore.rs`), under `dir/restore`.
async fn with_restore(
    req: &BuildRequest,
    sources: SourceUpload,
    env: &mut Vec<String>,
    dir: &str,
) -> Result<SourceUpload, BuilderError> {
    let Some(restore) = req.restore.clone() else { return Ok(sources) };
    let under = format!("{dir}/restore");
    env.push(format!("{}={under}", crate::builder::restore::ENV));
    let under = under.trim_start_matches('/').to_string();
    Ok(sources.with_extra(blocking(move || restore.files_under(&under)).await?))
}

/// The `docker exec` of build `id`: `exec.sh` as root, with the build's directories (under
/// [`WARM_REQS`] and [`STAGE_DIR`]) and its own environment.
fn exec_config(req: &BuildRequest, id: &str, extra_env: Vec<String>) -> ExecConfig {
    let dir = format!("{WARM_REQS}/{id}");
    let mut env = vec![
        format!("REQ={dir}"),
        format!("SRC={dir}/src"),
        format!("OUT={dir}/out"),
        format!("SRC_TAR={dir}/src.tar"),
        format!("STAGE={STAGE_DIR}/{id}"),
        format!("SRC_SEAL={dir}/{SRC_SEAL}"),
    ];
    env.extend(life::per_build_env(req));
    env.extend(extra_env);
    ExecConfig {
        cmd: Some(["/bin/sh", "-c", EXEC_SH, "exec.sh", ASSEMBLE_SH, EXEC_SH].map(String::from).to_vec()),
        env: Some(env),
        user: Some("0:0".into()),
        working_dir: Some("/".into()),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
