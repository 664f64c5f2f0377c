//! The build cache volume ([`super::cache`]) filled from, and read for, the registry's build-dirs
//! artifacts (`--cache-repo`, docs/build-cache.md): two short-lived helper containers of the
//! builder image, with the volume mounted, no network and almost no capabilities.
//!
//! - [`fill`]: a new volume gets the restored files. They are uploaded into the helper (not into
//!   the volume), then its script takes the volume's lock (`flock`, as `assemble.sh` does),
//!   checks that the volume is still new (no `src/`: another build may have filled it meanwhile),
//!   unpacks them (mtimes kept) and hands everything to the user the build runs as. A failure
//!   leaves the volume as new as it was.
//! - [`read`]: after a build, under the same lock, a tar of what the artifacts are made from
//!   (`src/` without `deps/` and the locked dependencies' `_build` unless asked for, `hex/`,
//!   `mix/archives/`, and the kept releases when the registry does not have them) on its stdout,
//!   sent into a channel as it comes.

use super::container::{BUILD_USER, name as container_name};
use super::docker::{docker_err, owner_labels, remove};
use super::{BuilderError, LOG_TAIL_LINES, LogTail, ROLE_BUILDER, ROLE_LABEL};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Where the helper finds the uploaded files.
const RESTORE_DIR: &str = "/release-oci-restore";

/// Exit codes of the helpers' scripts.
const BUSY: i64 = 75;
const NOT_NEW: i64 = 76;
const NOTHING: i64 = 77;

const FILL_SH: &str = r#"set -eu
C=${CACHE:?} R=/release-oci-restore
exec 9>>"$C/lock"
flock -n 9 || exit 75
if [ -e "$C/src" ]; then exit 76; fi
undo() { rm -rf "$C/src" "$C/hex" "$C/mix" "$C/release"; exit 1; }
for f in deps.tar.gz app.tar.gz rel.tar.gz; do
  if [ -f "$R/$f" ]; then tar -xzof "$R/$f" -C "$C" || undo; fi
done
if [ -f "$R/src.tar" ]; then tar -xof "$R/src.tar" -C "$C" || undo; fi
# The second by which the restored compile had ended (assemble.sh's settle_mtimes).
case ${BUILT:-} in '' | *[!0-9]*) ;; *) printf '%s\n' "$BUILT" >"$C/.built" || undo ;; esac
# The user build_user.sh runs the build as (root when the image has no setpriv).
if command -v setpriv >/dev/null 2>&1; then owner=$OWNER; else owner=0:0; fi
chown -R "$owner" "$C" || undo
"#;

const READ_SH: &str = r#"set -eu
export LC_ALL=C
cd "${CACHE:?}"
if [ ! -f lock ] || [ ! -d src ]; then exit 77; fi
exec 9<lock
flock -n 9 || exit 75
set --
for f in src/* src/.[!.]* src/..?*; do
  if [ ! -e "$f" ] && [ ! -L "$f" ]; then continue; fi
  case ${f#src/} in _build|deps) continue ;; esac
  set -- "$@" "$f"
done
if [ "${WANT_DEPS:-0}" = 1 ]; then
  for d in src/deps hex mix/archives; do
    if [ -e "$d" ]; then set -- "$@" "$d"; fi
  done
fi
if [ -d task ]; then set -- "$@" task; fi
# The kept releases (each with its fingerprint), unless their key is REL_KNOWN, the registry's:
# the sha256 of what sha256sum prints for the fingerprints (build_dirs::rel_key).
if [ "${WANT_REL:-0}" = 1 ] && [ ! -e release/.lent ]; then
  rel=
  for f in release/*.fingerprint; do
    if [ -f "$f" ] && [ -d "${f%.fingerprint}" ]; then rel="$rel $f"; fi
  done
  # shellcheck disable=SC2086 # release names are atoms: no blanks
  if [ -n "$rel" ] && [ "$(sha256sum $rel | sha256sum | cut -c1-64)" != "${REL_KNOWN:-}" ]; then
    for f in $rel; do set -- "$@" "$f" "${f%.fingerprint}"; done
  fi
fi
for env in src/_build/*; do
  if [ ! -d "$env" ]; then continue; fi
  for f in "$env"/* "$env"/.[!.]* "$env"/..?*; do
    if [ ! -e "$f" ] && [ ! -L "$f" ]; then continue; fi
    if [ "${f##*/}" = lib ] && [ -d "$f" ]; then continue; fi
    set -- "$@" "$f"
  done
  for app in "$env"/lib/* "$env"/lib/.[!.]*; do
    if [ ! -e "$app" ] && [ ! -L "$app" ]; then continue; fi
    if [ "${WANT_DEPS:-0}" != 1 ]; then
      case " ${LOCKED:-} " in *" ${app##*/} "*) continue ;; esac
    fi
    set -- "$@" "$app"
  done
done
if [ "$#" -eq 0 ]; then exit 77; fi
exec tar -cf - "$@"
"#;

/// How [`fill`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filled {
    Done,
    /// A build holds the volume's lock: nothing was restored.
    Busy,
    /// The volume has sources already (another build filled or used it): nothing was restored.
    NotNew,
}

/// How [`read`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dumped {
    /// The tar was sent (whole) into the channel.
    Sent,
    Busy,
    /// The volume holds no build.
    Nothing,
}

/// Whether the engine has a volume named `name`.
pub async fn volume_exists(docker: &Docker, name: &str) -> Result<bool, BuilderError> {
    match docker.inspect_volume(name).await {
        Ok(_) => Ok(true),
        Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
        Err(e) => Err(docker_err(format!("inspecting volume {name}"))(e)),
    }
}

/// Fills the new volume `volume` with `files` (name in the helper → file on this machine:
/// `deps.tar.gz`, `app.tar.gz`, `src.tar`), using a container of `image` (the builder image).
/// `built`: the second (Unix time) by which the restored app build's compile had ended, kept as
/// the volume's `.built` (without it, the first build's copy of the changed sources waits for
/// the next second, as after a compile of unknown end). `exited` is told once the helper has
/// exited, before it is removed.
pub async fn fill(
    docker: &Docker,
    image: &str,
    volume: &str,
    files: Vec<(String, PathBuf)>,
    built: Option<u64>,
    exited: Option<tokio::sync::watch::Sender<bool>>,
) -> Result<Filled, BuilderError> {
    let name = container_name();
    let mut env = vec![format!("CACHE={}", super::cache::CACHE_DIR), format!("OWNER={BUILD_USER}")];
    env.extend(built.map(|b| format!("BUILT={b}")));
    // Root, to create the volume's files and hand them over (CHOWN); not more.
    let body = helper_body(image, volume, FILL_SH, env, "0:0", &["CHOWN"], false);
    create(docker, &name, body).await?;
    let result = async {
        let upload = tokio::task::spawn_blocking(move || upload_tar(&files))
            .await
            .map_err(|e| io_error("packing the restored build cache", std::io::Error::other(e)))??;
        let reader =
            tokio::fs::File::open(upload.path()).await.map_err(|e| io_error("reading the restored build cache", e))?;
        let body = tokio_util::io::ReaderStream::with_capacity(reader, crate::UPLOAD_CHUNK);
        let options = UploadToContainerOptionsBuilder::default().path("/").build();
        docker
            .upload_to_container(&name, Some(options), bollard::body_try_stream(body))
            .await
            .map_err(docker_err(format!("uploading the restored build cache into container {name}")))?;
        let ran = run(docker, &name, None).await;
        // The volume is as the helper left it: a build waiting for it need not wait for the
        // helper's removal.
        if let Some(exited) = &exited {
            let _ = exited.send(true);
        }
        let (code, log) = ran?;
        match code {
            0 => Ok(Filled::Done),
            BUSY => Ok(Filled::Busy),
            NOT_NEW => Ok(Filled::NotNew),
            _ => Err(failed(&name, image, code, log)),
        }
    }
    .await;
    let removed = remove(docker, &name).await;
    let filled = result?;
    removed?;
    Ok(filled)
}

/// What [`read`] sends besides the project's own build.
#[derive(Debug, Clone, Default)]
pub struct ReadWants {
    /// The dependencies' part.
    pub deps: bool,
    /// The locked dependencies.
    pub locked: BTreeSet<String>,
    /// The kept releases, unless their key ([`crate::registry_cache::build_dirs::rel_key`]) is
    /// `rel_known` (the registry's).
    pub rel: bool,
    pub rel_known: Option<String>,
}

/// Sends a tar of the volume's build (see the module's documentation) into `out`.
pub async fn read(
    docker: &Docker,
    image: &str,
    volume: &str,
    wants: &ReadWants,
    out: tokio::sync::mpsc::Sender<bytes::Bytes>,
) -> Result<Dumped, BuilderError> {
    let name = container_name();
    let locked: Vec<&str> = wants.locked.iter().map(String::as_str).collect();
    let env = vec![
        format!("CACHE={}", super::cache::CACHE_DIR),
        format!("WANT_DEPS={}", u8::from(wants.deps)),
        format!("LOCKED={}", locked.join(" ")),
        format!("WANT_REL={}", u8::from(wants.rel)),
        format!("REL_KNOWN={}", wants.rel_known.as_deref().unwrap_or_default()),
    ];
    // Reads whatever the build left, whoever owns it; the volume is mounted read-only.
    let body = helper_body(image, volume, READ_SH, env, "0:0", &["DAC_READ_SEARCH"], true);
    create(docker, &name, body).await?;
    let result = run(docker, &name, Some(out)).await;
    let removed = remove(docker, &name).await;
    let (code, log) = result?;
    removed?;
    match code {
        0 => Ok(Dumped::Sent),
        BUSY => Ok(Dumped::Busy),
        NOTHING => Ok(Dumped::Nothing),
        _ => Err(failed(&name, image, code, log)),
    }
}

fn helper_body(
    image: &str,
    volume: &str,
    script: &str,
    env: Vec<String>,
    user: &str,
    caps: &[&str],
    read_only: bool,
) -> ContainerCreateBody {
    let mut labels: std::collections::HashMap<String, String> = owner_labels().into_iter().collect();
    labels.insert(ROLE_LABEL.to_string(), ROLE_BUILDER.to_string());
    labels.insert(super::cache::VOLUME_LABEL.to_string(), volume.to_string());
    let mode = if read_only { ":ro" } else { "" };
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec![]),
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), script.into(), "build-cache".into()]),
        env: Some(env),
        user: Some(user.to_string()),
        labels: Some(labels),
        network_disabled: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        open_stdin: Some(false),
        host_config: Some(HostConfig {
            log_config: Some(HostConfigLogConfig { typ: Some("none".into()), config: None }),
            binds: Some(vec![format!("{volume}:{}{mode}", super::cache::CACHE_DIR)]),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(caps.iter().map(|c| c.to_string()).collect()),
            security_opt: Some(vec!["no-new-privileges".into()]),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn create(docker: &Docker, name: &str, body: ContainerCreateBody) -> Result<(), BuilderError> {
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    if let Err(e) = docker.create_container(Some(options), body).await {
        let _ = remove(docker, name).await;
        return Err(docker_err(format!("creating the build cache helper container {name}"))(e));
    }
    Ok(())
}

/// Starts the helper and waits for it: its stdout into `out` (or dropped), its stderr kept for
/// an error's tail; the exit code.
async fn run(
    docker: &Docker,
    name: &str,
    out: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
) -> Result<(i64, Vec<String>), BuilderError> {
    let attach = AttachContainerOptionsBuilder::default().stdout(true).stderr(true).stream(true).build();
    let mut output = docker
        .attach_container(name, Some(attach))
        .await
        .map_err(docker_err(format!("attaching to container {name}")))?
        .output;
    docker.start_container(name, None).await.map_err(docker_err(format!("starting container {name}")))?;
    let mut log = LogTail::new(LOG_TAIL_LINES, false);
    let mut out = out;
    while let Some(chunk) = output.next().await {
        match chunk.map_err(docker_err(format!("reading the output of container {name}")))? {
            LogOutput::StdOut { message } => {
                // A closed channel: the reader stopped, and says why itself.
                if let Some(tx) = &out
                    && tx.send(message).await.is_err()
                {
                    out = None;
                }
            }
            other => log.push(other.as_ref()),
        }
    }
    log.finish();
    drop(out);
    let code = match docker.wait_container(name, None).next().await {
        Some(Ok(status)) => status.status_code,
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(docker_err(format!("waiting for container {name}"))(e)),
        None => -1,
    };
    Ok((code, log.tail()))
}

fn failed(name: &str, image: &str, exit_code: i64, log_tail: Vec<String>) -> BuilderError {
    BuilderError::BuildFailed { container: name.to_string(), image: image.to_string(), exit_code, log_tail }
}

fn io_error(action: &'static str, source: std::io::Error) -> BuilderError {
    BuilderError::Io { action, path: PathBuf::from(RESTORE_DIR), source }
}

/// A tar of `files` under `release-oci-restore/` (written to a temporary file: the engine reads
/// the upload once, at its pace).
fn upload_tar(files: &[(String, PathBuf)]) -> Result<tempfile::NamedTempFile, BuilderError> {
    let tmp = tempfile::NamedTempFile::new().map_err(|e| io_error("creating a temporary file for", e))?;
    let file = tmp.reopen().map_err(|e| io_error("creating a temporary file for", e))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let dir = RESTORE_DIR.trim_start_matches('/');
    let write = |tar: &mut tar::Builder<std::io::BufWriter<std::fs::File>>| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        tar.append_data(&mut h, dir, std::io::empty())?;
        for (name, path) in files {
            let mut f = std::fs::File::open(path)?;
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(f.metadata()?.len());
            tar.append_data(&mut h, format!("{dir}/{name}"), &mut f)?;
        }
        use std::io::Write as _;
        tar.get_mut().flush()
    };
    write(&mut tar).map_err(|e| io_error("packing the restored build cache", e))?;
    let mut inner = tar.into_inner().map_err(|e| io_error("packing the restored build cache", e))?;
    std::io::Write::flush(&mut inner).map_err(|e| io_error("packing the restored build cache", e))?;
    Ok(tmp)
}

#[cfg(test)]
#[path = "cache_dirs_tests.rs"]
mod tests;
