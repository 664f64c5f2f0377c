//! The build cache volume ([`super::cache`]) read for the registry's build-dirs artifacts
//! (`--cache-repo`, docs/build-cache.md): a short-lived helper container of the builder image,
//! with the volume mounted, no network and almost no capabilities. After a build, under the
//! volume's lock (`flock`, as `assemble.sh` takes it), [`read`] sends a tar of what the artifacts
//! are made from (`src/` without `deps/` and the locked dependencies' `_build` unless asked for,
//! `hex/`, `mix/archives/`, and the kept releases when the registry does not have them) on its
//! stdout into a channel as it comes. (A new volume is filled by the builder itself:
//! [`super::restore`].)

use super::container::name as container_name;
use super::docker::{docker_err, owner_labels, remove};
use super::{BuilderError, LOG_TAIL_LINES, LogTail, ROLE_BUILDER, ROLE_LABEL};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{AttachContainerOptionsBuilder, CreateContainerOptionsBuilder};
use futures_util::StreamExt;
use std::collections::BTreeSet;

/// Exit codes of the helper's script.
const BUSY: i64 = 75;
const NOTHING: i64 = 77;

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
    let body = helper_body(image, volume, env);
    create(docker, &name, body).await?;
    let result = run(docker, &name, out).await;
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

/// The read helper: root, to read whatever the build left whoever owns it (DAC_READ_SEARCH and
/// no other capability), the volume mounted read-only.
fn helper_body(image: &str, volume: &str, env: Vec<String>) -> ContainerCreateBody {
    let mut labels: std::collections::HashMap<String, String> = owner_labels().into_iter().collect();
    labels.insert(ROLE_LABEL.to_string(), ROLE_BUILDER.to_string());
    labels.insert(super::cache::VOLUME_LABEL.to_string(), volume.to_string());
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec![]),
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), READ_SH.into(), "build-cache".into()]),
        env: Some(env),
        user: Some("0:0".into()),
        labels: Some(labels),
        network_disabled: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        open_stdin: Some(false),
        host_config: Some(HostConfig {
            log_config: Some(HostConfigLogConfig { typ: Some("none".into()), config: None }),
            binds: Some(vec![format!("{volume}:{}:ro", super::cache::CACHE_DIR)]),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(vec!["DAC_READ_SEARCH".into()]),
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

/// Starts the helper and waits for it: its stdout into `out` (dropped once its reader is gone),
/// its stderr kept for an error's tail; the exit code.
async fn run(
    docker: &Docker,
    name: &str,
    out: tokio::sync::mpsc::Sender<bytes::Bytes>,
) -> Result<(i64, Vec<String>), BuilderError> {
    let attach = AttachContainerOptionsBuilder::default().stdout(true).stderr(true).stream(true).build();
    let mut output = docker
        .attach_container(name, Some(attach))
        .await
        .map_err(docker_err(format!("attaching to container {name}")))?
        .output;
    docker.start_container(name, None).await.map_err(docker_err(format!("starting container {name}")))?;
    let mut log = LogTail::new(LOG_TAIL_LINES, false);
    let mut out = Some(out);
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

#[cfg(test)]
#[path = "cache_dirs_tests.rs"]
mod tests;
