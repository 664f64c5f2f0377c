//! The Docker builder: runs [`ASSEMBLE_SH`](super::ASSEMBLE_SH) in a container of the builder
//! image, which sends the result as a tar on its stdout (the log on stderr). The container
//! (`release-oci-build-<random>`, labelled `org.release-oci.role=builder` and with its owner,
//! see `container.rs`) is force-removed on every path: success, failure, a signal during the
//! build (then the error is [`BuilderError::Interrupted`]) and `--timeout` running out
//! ([`BuilderError::TimedOut`]). With [`BuildRequest::cache`], the project's build cache volume
//! ([`super::cache`]) is mounted.

use super::docker_image::ensure_image;
use super::endpoint::{Endpoint, TcpSecurity};
use super::kept::Kept;
use super::output::{Reading, finish_reading, unpacker};
use super::ssh_tunnel::{self, SshSession};
use super::upload::SourceUpload;
use super::{Assembled, BuildRequest, BuilderError, LOG_TAIL_LINES, LogTail, container};
use crate::cancel::{Signals, StopSignal};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{AttachContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use futures_util::StreamExt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

pub use super::container::{PID_LABEL, owner_labels};

/// Where the sources go in the container (uploaded before it starts), and the results.
pub(super) const SRC_DIR: &str = "/build/src";
pub(super) const OUT_DIR: &str = "/build/out";
/// The sources' tar, uploaded; and a tmpfs for unpacking it when the build cache syncs from it.
pub(super) const SRC_TAR: &str = "/build/src.tar";
pub(super) const STAGE_DIR: &str = "/build/stage";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REMOVE_TIMEOUT: Duration = Duration::from_secs(60);
/// Seconds a request may take to be answered (bollard's timeout): its default for an engine on
/// this machine, longer for another one (the sources' upload crosses the network before the
/// engine answers).
const LOCAL_TIMEOUT: u64 = 120;
const REMOTE_TIMEOUT: u64 = 600;

/// A connected engine, and where it is (errors name it).
#[derive(Clone)]
pub struct Engine {
    pub docker: Docker,
    pub endpoint: Endpoint,
}

/// Connects to the engine at `DOCKER_HOST` (default: the local socket; `unix://`, `tcp://` with
/// TLS as `DOCKER_TLS_VERIFY` says, or `ssh://`), settles on an API version both sides speak, and
/// checks that it answers.
pub async fn connect() -> Result<Docker, BuilderError> {
    Ok(default_engine().await?.docker)
}

/// [`connect`], with the endpoint.
pub async fn default_engine() -> Result<Engine, BuilderError> {
    let endpoint = Endpoint::from_env()?;
    let docker =
        open(&endpoint).await.map_err(|detail| BuilderError::NoEngine { addr: endpoint.to_string(), detail })?;
    Ok(Engine { docker, endpoint })
}

/// Connects to the builder host of `platform` (`--builder-host`, `builder_host`) as [`connect`]
/// does.
pub async fn connect_builder_host(endpoint: &Endpoint, platform: &str) -> Result<Engine, BuilderError> {
    let docker = open(endpoint).await.map_err(|detail| BuilderError::NoBuilderEngine {
        addr: endpoint.to_string(),
        platform: platform.to_string(),
        detail,
    })?;
    Ok(Engine { docker, endpoint: endpoint.clone() })
}

/// A client for `endpoint`, its API version settled and a ping answered; the error is the detail.
async fn open(endpoint: &Endpoint) -> Result<Docker, String> {
    let mut session = None;
    let docker = match endpoint {
        Endpoint::Unix { .. } => {
            Docker::connect_with_unix(&endpoint.to_string(), LOCAL_TIMEOUT, bollard::API_DEFAULT_VERSION)
        }
        Endpoint::Tcp { host, port } => {
            let security = TcpSecurity::from_env(|k| std::env::var(k).ok())?;
            let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
            let addr = format!("tcp://{host}:{}", port.unwrap_or(security.default_port()));
            match &security {
                TcpSecurity::Plain => Docker::connect_with_http(&addr, REMOTE_TIMEOUT, bollard::API_DEFAULT_VERSION),
                TcpSecurity::Tls { ca, cert, key } => {
                    for (what, file) in [("CA certificate", ca), ("client certificate", cert), ("client key", key)] {
                        if !file.is_file() {
                            return Err(format!(
                                "DOCKER_TLS_VERIFY is set and the {what} {} is missing (DOCKER_CERT_PATH names the \
                                 directory of ca.pem, cert.pem and key.pem)",
                                file.display()
                            ));
                        }
                    }
                    Docker::connect_with_ssl(&addr, key, cert, ca, REMOTE_TIMEOUT, bollard::API_DEFAULT_VERSION)
                }
            }
        }
        Endpoint::Ssh { .. } => {
            let s = SshSession::start(endpoint).await?;
            session = Some(s.clone());
            ssh_tunnel::docker(s, REMOTE_TIMEOUT)
        }
    }
    .map_err(|e| e.to_string())?;
    // What ssh said, when the engine did not answer through it.
    let said = || session.as_ref().map(|s| s.said()).unwrap_or_default();
    let docker = tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version())
        .await
        .map_err(|_| format!("no answer within {} s{}", CONNECT_TIMEOUT.as_secs(), said()))?
        .map_err(|e| format!("{e}{}", said()))?;
    tokio::time::timeout(CONNECT_TIMEOUT, docker.ping())
        .await
        .map_err(|_| format!("no answer to ping within {} s{}", CONNECT_TIMEOUT.as_secs(), said()))?
        .map_err(|e| format!("{e}{}", said()))?;
    Ok(docker)
}

/// Whether errors should name `endpoint`: any engine but this machine's usual socket.
pub(super) fn named(endpoint: &Endpoint) -> bool {
    Endpoint::from_docker_host(None).map_or(true, |usual| *endpoint != usual)
}

/// [`assemble`] on `engine` (a builder host, or the default engine): its errors name the engine
/// when it is not this machine's usual one, and what needs the engine on this machine (`--ssh`)
/// is refused on another.
pub async fn assemble_on(
    engine: &Engine,
    req: &BuildRequest,
    signals: &mut Signals,
) -> Result<Assembled, BuilderError> {
    assemble_at(&engine.docker, &engine.endpoint, req, signals.recv()).await
}

/// Assembles the release of `req.project` in a container of `req.builder_image`, for
/// `req.triple`'s platform. The build log streams to stderr as it comes. A signal from `signals`
/// stops it (the container removed first).
pub async fn assemble(docker: &Docker, req: &BuildRequest, signals: &mut Signals) -> Result<Assembled, BuilderError> {
    assemble_until(docker, req, signals.recv()).await
}

/// How the container's run ended.
enum Ended<T> {
    Done(T),
    Signal(StopSignal),
    TimedOut(Duration),
}

/// [`assemble`], stopped (and cleaned up) when `interrupt` resolves, or when the container has run
/// for `req.timeout`.
pub(crate) async fn assemble_until(
    docker: &Docker,
    req: &BuildRequest,
    interrupt: impl Future<Output = StopSignal>,
) -> Result<Assembled, BuilderError> {
    assemble_at(docker, &Endpoint::from_env()?, req, interrupt).await
}

/// [`assemble_until`] on the engine at `endpoint`; a Docker failure names it ([`named`]).
async fn assemble_at(
    docker: &Docker,
    endpoint: &Endpoint,
    req: &BuildRequest,
    interrupt: impl Future<Output = StopSignal>,
) -> Result<Assembled, BuilderError> {
    let result = assemble_in(docker, endpoint, req, interrupt).await;
    match result {
        Err(BuilderError::Docker { action, source }) if named(endpoint) => {
            Err(BuilderError::Docker { action: format!("{action} on the engine at {endpoint}"), source })
        }
        other => other,
    }
}

async fn assemble_in(
    docker: &Docker,
    endpoint: &Endpoint,
    req: &BuildRequest,
    interrupt: impl Future<Output = StopSignal>,
) -> Result<Assembled, BuilderError> {
    tokio::pin!(interrupt);
    let interrupted = |signal| BuilderError::Interrupted { signal, container: None };
    // Nothing to clean up until the container exists.
    let image_id = race(&mut interrupt, ensure_image(docker, endpoint, req)).await.map_err(interrupted)??;
    // Read (for the result cache's key) or counted before the container exists: a file that
    // cannot be read fails here. The upload sends the bytes read, or streams the files (`upload.rs`).
    let project = req.project.clone();
    let inputs = req.inputs.clone();
    let read = req.sources.clone();
    // A new cache volume's contents come with the sources (`restore.rs`).
    let restore = req.restore.clone().filter(|_| req.cache);
    let counting = blocking(move || {
        let mut files = inputs.files()?;
        if let Some(r) = &restore {
            files.extend(r.files_under(super::restore::DIR)?);
        }
        SourceUpload::new(project, files, read)
    });
    let sources = race(&mut interrupt, counting).await.map_err(interrupted)??;
    let volume = match req.cache {
        true => {
            let key = super::cache::CacheKey::of(req, &image_id);
            let volume = super::cache::ensure_volume(docker, &key, &req.builder_image);
            Some(race(&mut interrupt, volume).await.map_err(interrupted)??)
        }
        false => None,
    };
    let (uid, gid) = container::build_ids();
    let ssh = super::ssh_agent::AgentForward::start(&req.inputs.ssh, uid, gid, endpoint)?;
    let name = container::name();
    // Not raced: a create cut short could leave a container behind that we never heard of. A
    // signal that comes meanwhile is still pending for the race below.
    // The output the last build with this cache sent, when no other build holds it (kept.rs).
    let kept = volume.as_deref().and_then(Kept::open);
    let kept_env = kept.as_ref().map(Kept::env).unwrap_or_default();
    if let Err(e) =
        container::create(docker, req, &name, volume.as_deref(), ssh.as_ref().map(|s| s.dir()), kept_env).await
    {
        // A create that failed late (timed out) may still have made it.
        let _ = remove(docker, &name).await;
        return Err(e);
    }
    let work = run(docker, req, &name, sources, image_id, kept);
    let ended = tokio::select! {
        biased;
        signal = interrupt.as_mut() => Ended::Signal(signal),
        timeout = deadline(req.timeout) => Ended::TimedOut(timeout),
        result = work => Ended::Done(result),
    };
    let result = clean_up(docker, &name, ended).await;
    drop(ssh);
    result
}

/// Resolves after `timeout` (with it); never without one.
pub(super) async fn deadline(timeout: Option<Duration>) -> Duration {
    match timeout {
        Some(t) => {
            tokio::time::sleep(t).await;
            t
        }
        None => std::future::pending().await,
    }
}

/// Removes the container however its run ended (the output is unpacked and read meanwhile), and
/// says how the build went.
async fn clean_up(
    docker: &Docker,
    name: &str,
    ended: Ended<Result<Reading, BuilderError>>,
) -> Result<Assembled, BuilderError> {
    let (result, removed) = match ended {
        Ended::Done(Ok(reading)) => {
            let (removed, read) = tokio::join!(remove(docker, name), finish_reading(reading));
            (read, removed)
        }
        Ended::Done(Err(e)) => (Err(e), remove(docker, name).await),
        Ended::Signal(signal) => {
            let removed = remove(docker, name).await;
            let container = removed.is_ok().then(|| name.to_string());
            (Err(BuilderError::Interrupted { signal, container }), removed)
        }
        Ended::TimedOut(timeout) => {
            let removed = remove(docker, name).await;
            let err = BuilderError::TimedOut { container: name.to_string(), timeout, removed: removed.is_ok() };
            (Err(err), removed)
        }
    };
    match (result, removed) {
        (result, Ok(())) => result,
        (Ok(_), Err(e)) => Err(e),
        (Err(failed), Err(e)) => {
            tracing::warn!(container = %name, error = %e, "could not remove the builder container");
            Err(failed)
        }
    }
}

/// Runs `work` unless `interrupt` resolves first (then the signal).
pub(super) async fn race<T>(
    interrupt: &mut Pin<&mut impl Future<Output = StopSignal>>,
    work: impl Future<Output = T>,
) -> Result<T, StopSignal> {
    tokio::select! {
        biased;
        signal = interrupt.as_mut() => Err(signal),
        v = work => Ok(v),
    }
}

pub(super) fn docker_err(action: impl Into<String>) -> impl FnOnce(DockerError) -> BuilderError {
    let action = action.into();
    move |source| BuilderError::Docker { action, source }
}

/// Uploads the sources and runs the script: its log (stderr) streams to our stderr, and its
/// output (stdout: a tar of OUT, sent at the end) is unpacked by a thread as it arrives.
async fn run(
    docker: &Docker,
    req: &BuildRequest,
    name: &str,
    sources: SourceUpload,
    image_id: String,
    kept: Option<Kept>,
) -> Result<Reading, BuilderError> {
    tracing::debug!(container = name, bytes = sources.len(), "uploading the sources");
    sources.send(docker, name).await?;

    // Attached before the start, so nothing is missed (and the container has no log to replay).
    let attach = AttachContainerOptionsBuilder::default().stdout(true).stderr(true).stream(true).build();
    let output = docker
        .attach_container(name, Some(attach))
        .await
        .map_err(docker_err(format!("attaching to container {name}")))?
        .output;
    let (tx, reading) = unpacker(Some(image_id), kept)?;
    docker.start_container(name, None).await.map_err(docker_err(format!("starting container {name}")))?;
    if let Some(started) = &req.started {
        started.notify_one();
    }
    // With -q the log is only kept for an error's tail.
    let mut log = LogTail::new(LOG_TAIL_LINES, !crate::ui::quiet()).redacting(req.inputs.redactions());
    // Asked for now (the container runs), answered when it exits: not one more round trip after
    // the output ends.
    let wait = async { docker.wait_container(name, None).next().await };
    let (sent, waited) = tokio::join!(forward_output(output, tx, &mut log, name), wait);
    let sent = sent?;
    log.finish();
    let exit_code = exit_code(waited, name)?;
    if exit_code != 0 {
        return Err(failed(docker, req, name, exit_code, log.tail()).await);
    }
    tracing::debug!(container = name, bytes = sent, "the builder's output arrived");
    Ok(reading)
}

/// The container's stdout (the tar of OUT) to the unpacker, its stderr to `log`; the bytes of
/// stdout.
pub(super) async fn forward_output(
    mut output: impl futures_util::Stream<Item = Result<LogOutput, DockerError>> + Unpin,
    tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    log: &mut LogTail,
    name: &str,
) -> Result<u64, BuilderError> {
    let (mut tx, mut sent) = (Some(tx), 0u64);
    while let Some(chunk) = output.next().await {
        match chunk.map_err(docker_err(format!("reading the output of container {name}")))? {
            LogOutput::StdOut { message } => {
                sent += message.len() as u64;
                // A closed channel: the unpacking stopped early, and its error says why.
                if let Some(t) = &tx
                    && t.send(message).await.is_err()
                {
                    tx = None;
                }
            }
            other => log.push(other.as_ref()),
        }
    }
    Ok(sent)
}

/// The exit code the engine's wait answered with.
pub(super) fn exit_code(
    waited: Option<Result<bollard::models::ContainerWaitResponse, DockerError>>,
    name: &str,
) -> Result<i64, BuilderError> {
    match waited {
        Some(Ok(status)) => Ok(status.status_code),
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(docker_err(format!("waiting for container {name}"))(e)),
        // No status is no success: the output may be cut short.
        None => {
            let detail = std::io::Error::other("the engine ended the wait without an exit status");
            Err(docker_err(format!("waiting for container {name}"))(bollard::errors::Error::IOError { err: detail }))
        }
    }
}

/// The error of a build that exited with `exit_code`: [`BuilderError::OutOfMemory`] when the
/// engine killed it at its memory limit, else [`BuilderError::BuildFailed`].
async fn failed(
    docker: &Docker,
    req: &BuildRequest,
    name: &str,
    exit_code: i64,
    log_tail: Vec<String>,
) -> BuilderError {
    let inspected = docker.inspect_container(name, None).await;
    let oom_killed = inspected.ok().and_then(|c| c.state).and_then(|s| s.oom_killed).unwrap_or(false);
    let container = name.to_string();
    if oom_killed {
        return BuilderError::OutOfMemory { container, memory: req.limits.memory, log_tail };
    }
    BuilderError::BuildFailed { container, image: req.builder_image.clone(), exit_code, log_tail }
}

/// Force-removes the container (and its anonymous volumes); gone already is fine.
pub(super) async fn remove(docker: &Docker, name: &str) -> Result<(), BuilderError> {
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    let action = format!("removing container {name}");
    match tokio::time::timeout(REMOVE_TIMEOUT, docker.remove_container(name, Some(options))).await {
        Ok(Ok(())) | Ok(Err(DockerError::DockerResponseServerError { status_code: 404, .. })) => Ok(()),
        // Another remover (the engine's auto-remove, a build's own clean-up) is at it: wait for it.
        Ok(Err(DockerError::DockerResponseServerError { status_code: 409, message }))
            if message.contains("already in progress") =>
        {
            wait_gone(docker, name, action).await
        }
        Ok(Err(e)) => Err(docker_err(action)(e)),
        Err(_) => Err(BuilderError::Docker { action, source: DockerError::RequestTimeoutError }),
    }
}

/// Waits (up to the removal timeout) until the engine no longer knows the container.
async fn wait_gone(docker: &Docker, name: &str, action: String) -> Result<(), BuilderError> {
    let deadline = tokio::time::Instant::now() + REMOVE_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if let Err(DockerError::DockerResponseServerError { status_code: 404, .. }) =
            docker.inspect_container(name, None).await
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(BuilderError::Docker { action, source: DockerError::RequestTimeoutError })
}

/// Runs sync work (tar, files) off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BuilderError> + Send + 'static,
) -> Result<T, BuilderError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| BuilderError::Io {
        action: "background task failed for",
        path: PathBuf::from("(builder)"),
        source: std::io::Error::other(e.to_string()),
    })?
}
