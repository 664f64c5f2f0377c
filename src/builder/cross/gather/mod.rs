//! The minimal base of a release assembled on another machine's builder, gathered in the target's
//! builder image: only the release's ELF files go in (what `ldd` reads), the builder's own
//! minimal-base step (`minimal_base.sh`) runs on them as the unprivileged build user, without
//! network, and `OUT/base` comes back as a tar on stdout, beside the release on the host.
//!
//! The container can be started ahead ([`start`]), while the release is still being compiled: it
//! starts, sets up the native tools and lists the image's packages (what does not depend on the
//! release; under emulation about half a second), then waits for the release's ELF files, which
//! [`finish`] uploads with a `go` file last. Its log until then is held back and shown by
//! [`finish`], so that it does not mix with the compile's.

mod upload;

use super::{CrossError, docker_err};
use crate::builder::BUILD_USER_IDS as USER;
use crate::builder::{LOG_TAIL_LINES, Limits, LogTail};
use crate::cancel::{Signals, StopSignal};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;
use upload::{Given, upload_tar};

/// The container's script: what does not need the release (`gather_wait.sh`, around the native
/// tools), then, once the `go` file is there, the minimal-base step of `assemble.sh` on
/// `$OUT/rel`, and `$OUT/base` as a tar on stdout (fd 3; the log goes to stderr).
const GATHER_SH: &str = concat!(
    "set -eu\nexec 3>&1 1>&2 </dev/null\n",
    "say() { printf '==> %s\\n' \"$*\"; }\ndie() { printf 'error: %s\\n' \"$*\"; exit 1; }\n",
    ": \"${OUT:?OUT must name the output directory}\"\n",
    include_str!("wait_before.sh"),
    include_str!("../native_tools.sh"),
    include_str!("wait_after.sh"),
    "ELF_GROUPS_PL='",
    include_str!("../../elf_groups.pl"),
    "'\n",
    include_str!("../../minimal_base.sh"),
    "\ntar -cf - -C \"$OUT\" base >&3 || die \"cannot send the minimal base (tar failed)\"\n"
);
/// What the container runs: the gathering script (its first argument) in the native busybox's
/// shell when there is one that runs here (`NATIVE_BUSYBOX`), else in the target's `/bin/sh`.
/// Under emulation every step of the target's shell is slow (a cold hello_web gathering: 2.0 s
/// in the target's dash, 1.4 s in the native shell, the same files gathered); the native busybox
/// also runs its own applets for the commands it has (its shell prefers them), and the target's
/// loader, busybox, perl and dpkg-query are still the target's, called by path or not applets.
const LAUNCH_SH: &str = concat!(
    "if [ -n \"${NATIVE_BUSYBOX:-}\" ] && \"$NATIVE_BUSYBOX\" true 2>/dev/null; then\n",
    "  exec \"$NATIVE_BUSYBOX\" sh -c \"$1\" gather\n",
    "fi\n",
    "exec /bin/sh -c \"$1\" gather\n"
);
/// Where the upload goes (it exists in every image), and the output directory in it.
const UPLOAD_DIR: &str = "/tmp";
const OUT: &str = "/tmp/release-oci-gather/out";
/// Where the native busybox goes (`NATIVE_BUSYBOX`, `native_tools.sh`).
const NATIVE_BUSYBOX: &str = "/tmp/release-oci-gather/native/busybox";
/// Where the ELF files' groups made on the host go (`ELF_GROUPS_GIVEN`, `minimal_base.sh`).
const ELF_GROUPS_GIVEN: &str = "/tmp/release-oci-gather/elf-groups";
/// The file whose arrival lets the script go on (`wait_after.sh`): the upload's last entry.
const GO: &str = "/tmp/release-oci-gather/go";

/// What to gather and where.
#[derive(Clone)]
pub struct GatherRequest<'a> {
    /// The target's builder image, and its platform (`linux/arm64`).
    pub image: &'a str,
    pub platform: String,
    /// `MINIMAL_BASE=1`, `TZDATA`, `MINIMAL_BASE_KNOWN` ([`crate::minimal::GatherOptions::env`]).
    pub env: Vec<(String, String)>,
    pub limits: Limits,
    pub timeout: Option<Duration>,
    /// A static busybox of the engine's own machine ([`super::native_tools`]), when the target is
    /// emulated there and the native builder image has one.
    pub native_busybox: Option<Vec<u8>>,
    /// The release's ELF files grouped by the question they ask the loader
    /// ([`crate::minimal::elf_groups`]): the gathering then starts no perl for it.
    pub elf_groups: Option<Vec<u8>>,
}

/// A gathering container started, waiting for the release's ELF files: [`finish`] it, or
/// [`abandon`] it (a fallback, an error before the release is there).
pub struct Started {
    name: String,
    output: Output,
}

/// Gathers the base of the release(s) in `out/rel` into `out/base`.
pub async fn gather(docker: &Docker, req: &GatherRequest<'_>, out: &Path, signals: &Signals) -> Result<(), CrossError> {
    let started = start(docker, req).await?;
    finish(docker, started, req, out, signals).await
}

/// Creates and starts the container with the native busybox in it; the script waits for [`GO`].
pub async fn start(docker: &Docker, req: &GatherRequest<'_>) -> Result<Started, CrossError> {
    let given = Given { busybox: req.native_busybox.clone(), elf_groups: None, go: false };
    let upload = blocking(Path::new("(the native busybox)"), move || upload_tar(None, &given)).await?;
    let name = crate::builder::container::name().replacen("-build-", "-base-", 1);
    let options = CreateContainerOptionsBuilder::default().name(&name).platform(&req.platform).build();
    let action = format!("creating container {name} of image {} for {}", req.image, req.platform);
    docker.create_container(Some(options), body(req)).await.map_err(docker_err(action))?;
    match attach_and_start(docker, &name, upload).await {
        Ok(output) => Ok(Started { name, output }),
        Err(e) => {
            remove(docker, &name).await;
            Err(e)
        }
    }
}

/// Removes a started container that will not be given a release.
pub async fn abandon(docker: &Docker, started: Started) {
    remove(docker, &started.name).await;
}

/// Uploads the ELF files of `out/rel` (and the groups of `req`), lets the script go on, shows
/// its log and unpacks the base it sends into `out/base`; the container is removed.
pub async fn finish(
    docker: &Docker,
    started: Started,
    req: &GatherRequest<'_>,
    out: &Path,
    signals: &Signals,
) -> Result<(), CrossError> {
    let rel = out.join("rel");
    let given = Given { busybox: None, elf_groups: req.elf_groups.clone(), go: true };
    let upload = match blocking(&rel.clone(), move || upload_tar(Some(&rel), &given)).await {
        Ok(upload) => upload,
        Err(e) => {
            abandon(docker, started).await;
            return Err(e);
        }
    };
    let Started { name, output } = started;
    let ended = tokio::select! {
        biased;
        signal = signals.recv() => Err(Stop::Signal(signal)),
        timeout = deadline(req.timeout) => Err(Stop::TimedOut(timeout)),
        result = run(docker, &name, upload, output) => Ok(result),
    };
    remove(docker, &name).await;
    let tar = match ended {
        Ok(Ok(Ok(tar))) => tar,
        Ok(Err(e)) => return Err(e),
        Ok(Ok(Err(Failed { exit_code, log_tail }))) => {
            return Err(CrossError::GatherFailed {
                container: name,
                image: req.image.to_string(),
                exit_code,
                log_tail,
            });
        }
        Err(Stop::Signal(signal)) => return Err(CrossError::Interrupted { signal, container: name }),
        Err(Stop::TimedOut(timeout)) => {
            return Err(CrossError::TimedOut { container: name, image: req.image.to_string(), timeout });
        }
    };
    let out = out.to_path_buf();
    blocking(Path::new("(the minimal base)"), move || super::unpack(&tar, &out)).await
}

/// `f` off the runtime; a task that did not finish is an error about `path`.
async fn blocking<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T, CrossError> + Send + 'static,
) -> Result<T, CrossError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| CrossError::Io {
        action: "background task failed for",
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?
}

async fn remove(docker: &Docker, name: &str) {
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    if let Err(e) = docker.remove_container(name, Some(options)).await {
        tracing::warn!(container = %name, error = %e, "could not remove the minimal base's container");
    }
}

enum Stop {
    Signal(StopSignal),
    TimedOut(Duration),
}

/// A run that did not succeed: its exit code and the end of its log (an engine error has -1).
struct Failed {
    exit_code: i64,
    log_tail: Vec<String>,
}

async fn deadline(timeout: Option<Duration>) -> Duration {
    match timeout {
        Some(t) => {
            tokio::time::sleep(t).await;
            t
        }
        None => std::future::pending().await,
    }
}

fn body(req: &GatherRequest<'_>) -> ContainerCreateBody {
    let mut env = vec![format!("OUT={OUT}"), "LANG=C.UTF-8".to_string()];
    env.extend(req.env.iter().map(|(k, v)| format!("{k}={v}")));
    if req.native_busybox.is_some() {
        env.push(format!("NATIVE_BUSYBOX={NATIVE_BUSYBOX}"));
    }
    env.push(format!("ELF_GROUPS_GIVEN={ELF_GROUPS_GIVEN}"));
    env.push(format!("GO={GO}"));
    let mut labels: std::collections::HashMap<String, String> =
        crate::builder::docker::owner_labels().into_iter().collect();
    labels.insert(crate::builder::ROLE_LABEL.to_string(), crate::builder::ROLE_BUILDER.to_string());
    let memory = i64::try_from(req.limits.memory).unwrap_or(i64::MAX);
    ContainerCreateBody {
        image: Some(req.image.to_string()),
        entrypoint: Some(vec![]),
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), LAUNCH_SH.into(), "launch".into(), GATHER_SH.into()]),
        env: Some(env),
        user: Some(format!("{}:{}", USER.0, USER.1)),
        working_dir: Some(UPLOAD_DIR.into()),
        labels: Some(labels),
        network_disabled: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(HostConfig {
            log_config: Some(HostConfigLogConfig { typ: Some("none".into()), config: None }),
            memory: Some(memory),
            memory_swap: Some(memory),
            pids_limit: Some(req.limits.pids),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Uploads `tar` into the container; `what` says what it is for an error.
async fn upload(docker: &Docker, name: &str, tar: Vec<u8>, what: &str) -> Result<(), CrossError> {
    let options = UploadToContainerOptionsBuilder::default().path(UPLOAD_DIR).build();
    let action = format!("uploading {what} into container {name}");
    docker.upload_to_container(name, Some(options), bollard::body_full(tar.into())).await.map_err(docker_err(action))
}

/// Uploads `tar` (the native busybox), attaches and starts: the container's output.
async fn attach_and_start(docker: &Docker, name: &str, tar: Vec<u8>) -> Result<Output, CrossError> {
    upload(docker, name, tar, "the native busybox").await?;
    let attach = AttachContainerOptionsBuilder::default().stdout(true).stderr(true).stream(true).build();
    let output = docker
        .attach_container(name, Some(attach))
        .await
        .map_err(docker_err(format!("attaching to container {name}")))?
        .output;
    docker.start_container(name, None).await.map_err(docker_err(format!("starting container {name}")))?;
    Ok(output)
}

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// Uploads the release's files (the `go` file last) and waits: the tar of `OUT/base` the script
/// sent, or how it failed.
async fn run(
    docker: &Docker,
    name: &str,
    tar: Vec<u8>,
    mut output: Output,
) -> Result<Result<Vec<u8>, Failed>, CrossError> {
    upload(docker, name, tar, "the release's ELF files").await?;
    let mut log = LogTail::new(LOG_TAIL_LINES, !crate::ui::quiet());
    let mut tar = Vec::new();
    while let Some(chunk) = output.next().await {
        match chunk.map_err(docker_err(format!("reading the output of container {name}")))? {
            LogOutput::StdOut { message } => tar.extend_from_slice(&message),
            other => log.push(other.as_ref()),
        }
    }
    log.finish();
    let exit_code = match docker.wait_container(name, None).next().await {
        Some(Ok(status)) => status.status_code,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(docker_err(format!("waiting for container {name}"))(e)),
        None => -1,
    };
    Ok(if exit_code == 0 { Ok(tar) } else { Err(Failed { exit_code, log_tail: log.tail() }) })
}
