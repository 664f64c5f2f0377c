//! The minimal base of a release assembled on another machine's builder, gathered in the target's
//! builder image: only the release's ELF files go in (what `ldd` reads), the builder's own
//! minimal-base step (`minimal_base.sh`) runs on them as the unprivileged build user, without
//! network, and `OUT/base` comes back as a tar on stdout, beside the release on the host.

use super::{CrossError, docker_err};
use crate::builder::{LOG_TAIL_LINES, Limits, LogTail};
use crate::cancel::{Signals, StopSignal};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use std::path::Path;
use std::time::Duration;

/// The container's script: the minimal-base step of `assemble.sh` on `$OUT/rel`, then `$OUT/base`
/// as a tar on stdout (fd 3; the log goes to stderr).
const GATHER_SH: &str = concat!(
    "set -eu\nexec 3>&1 1>&2 </dev/null\n",
    "say() { printf '==> %s\\n' \"$*\"; }\ndie() { printf 'error: %s\\n' \"$*\"; exit 1; }\n",
    ": \"${OUT:?OUT must name the output directory}\"\n",
    include_str!("native_tools.sh"),
    "ELF_GROUPS_PL='",
    include_str!("../elf_groups.pl"),
    "'\n",
    include_str!("../minimal_base.sh"),
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
/// The build user of `build_user.sh`: the gathering needs no privilege at all.
const USER: (u64, u64) = (10001, 10001);

/// What to gather and where.
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

/// Gathers the base of the release(s) in `out/rel` into `out/base`.
pub async fn gather(docker: &Docker, req: &GatherRequest<'_>, out: &Path, signals: &Signals) -> Result<(), CrossError> {
    let rel = out.join("rel");
    let given = Given { busybox: req.native_busybox.clone(), elf_groups: req.elf_groups.clone() };
    let upload = tokio::task::spawn_blocking(move || upload_tar(&rel, &given)).await.map_err(|e| {
        CrossError::Io {
            action: "background task failed for",
            path: out.join("rel"),
            source: std::io::Error::other(e.to_string()),
        }
    })??;
    let name = crate::builder::container::name().replacen("-build-", "-base-", 1);
    let options = CreateContainerOptionsBuilder::default().name(&name).platform(&req.platform).build();
    let action = format!("creating container {name} of image {} for {}", req.image, req.platform);
    docker.create_container(Some(options), body(req)).await.map_err(docker_err(action))?;
    let ended = tokio::select! {
        biased;
        signal = signals.recv() => Err(Stop::Signal(signal)),
        timeout = deadline(req.timeout) => Err(Stop::TimedOut(timeout)),
        result = run(docker, &name, upload) => Ok(result),
    };
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    if let Err(e) = docker.remove_container(&name, Some(options)).await {
        tracing::warn!(container = %name, error = %e, "could not remove the minimal base's container");
    }
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
    tokio::task::spawn_blocking(move || super::unpack(&tar, &out)).await.map_err(|e| CrossError::Io {
        action: "background task failed for",
        path: "(the minimal base)".into(),
        source: std::io::Error::other(e.to_string()),
    })?
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
    if req.elf_groups.is_some() {
        env.push(format!("ELF_GROUPS_GIVEN={ELF_GROUPS_GIVEN}"));
    }
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

/// Uploads, starts and waits: the tar of `OUT/base` the script sent, or how it failed.
async fn run(docker: &Docker, name: &str, upload: Vec<u8>) -> Result<Result<Vec<u8>, Failed>, CrossError> {
    let options = UploadToContainerOptionsBuilder::default().path(UPLOAD_DIR).build();
    let action = format!("uploading the release's ELF files into container {name}");
    docker
        .upload_to_container(name, Some(options), bollard::body_full(upload.into()))
        .await
        .map_err(docker_err(action))?;
    let attach = AttachContainerOptionsBuilder::default().stdout(true).stderr(true).stream(true).build();
    let mut output = docker
        .attach_container(name, Some(attach))
        .await
        .map_err(docker_err(format!("attaching to container {name}")))?
        .output;
    docker.start_container(name, None).await.map_err(docker_err(format!("starting container {name}")))?;
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

/// The files the host gives the gathering besides the release's ELF files.
struct Given {
    busybox: Option<Vec<u8>>,
    elf_groups: Option<Vec<u8>>,
}

/// A tar of the ELF files under `rel` (and their directories) at `release-oci-gather/out/rel/`,
/// and of what else is `given` (a busybox at `NATIVE_BUSYBOX`, the groups at `ELF_GROUPS_GIVEN`),
/// owned by the build user.
fn upload_tar(rel: &Path, given: &Given) -> Result<Vec<u8>, CrossError> {
    let io = |path: &Path, source| CrossError::Io { action: "cannot read", path: path.to_path_buf(), source };
    let prefix = Path::new(OUT.strip_prefix(&format!("{UPLOAD_DIR}/")).unwrap_or(OUT)).join("rel");
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for ancestor in prefix.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        dirs.insert(ancestor.to_path_buf());
    }
    let mut files = Vec::new();
    for item in walkdir::WalkDir::new(rel).follow_links(false).sort_by_file_name() {
        let item = item.map_err(|e| io(rel, e.into()))?;
        if !item.file_type().is_file() {
            continue;
        }
        let bytes = std::fs::read(item.path()).map_err(|e| io(item.path(), e))?;
        if !bytes.starts_with(b"\x7fELF") {
            continue;
        }
        let relative = prefix.join(item.path().strip_prefix(rel).unwrap_or(item.path()));
        for ancestor in relative.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
            dirs.insert(ancestor.to_path_buf());
        }
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &item.metadata().map_err(|e| io(item.path(), e.into()))?.permissions(),
        );
        files.push((relative, bytes, mode));
    }
    let uploaded = [(NATIVE_BUSYBOX, &given.busybox, 0o755), (ELF_GROUPS_GIVEN, &given.elf_groups, 0o644)];
    for (at, bytes, mode) in uploaded {
        let Some(bytes) = bytes else { continue };
        let path = Path::new(at.strip_prefix(&format!("{UPLOAD_DIR}/")).unwrap_or(at));
        dirs.extend(path.parent().map(Path::to_path_buf));
        files.push((path.to_path_buf(), bytes.clone(), mode));
    }
    let header = |kind: tar::EntryType, size: u64, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(USER.0);
        h.set_gid(USER.1);
        h
    };
    let write = |e: std::io::Error| io(rel, e);
    for dir in &dirs {
        let mut h = header(tar::EntryType::Directory, 0, 0o755);
        b.append_data(&mut h, dir, std::io::empty()).map_err(write)?;
    }
    for (path, bytes, mode) in files {
        let mut h = header(tar::EntryType::Regular, bytes.len() as u64, mode & 0o7777);
        b.append_data(&mut h, &path, bytes.as_slice()).map_err(write)?;
    }
    b.into_inner().map_err(write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_elf_files_go_up_owned_by_the_build_user() {
        let dir = tempfile::tempdir().unwrap();
        let rel = dir.path().join("rel");
        std::fs::create_dir_all(rel.join("erts-1/bin")).unwrap();
        std::fs::write(rel.join("erts-1/bin/beam.smp"), b"\x7fELF\x02").unwrap();
        std::fs::write(rel.join("erts-1/bin/start"), b"#!/bin/sh").unwrap();
        let given = Given { busybox: Some(b"busybox".to_vec()), elf_groups: Some(b"g1\terts-1/bin/beam.smp\n".to_vec()) };
        let tar = upload_tar(&rel, &given).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.header().uid().unwrap())
            })
            .collect();
        let paths: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "release-oci-gather",
                "release-oci-gather/native",
                "release-oci-gather/out",
                "release-oci-gather/out/rel",
                "release-oci-gather/out/rel/erts-1",
                "release-oci-gather/out/rel/erts-1/bin",
                "release-oci-gather/out/rel/erts-1/bin/beam.smp",
                "release-oci-gather/native/busybox",
                "release-oci-gather/elf-groups"
            ]
        );
        assert!(entries.iter().all(|(_, uid)| *uid == 10001));
        assert!(
            GATHER_SH.contains("MINIMAL_BASE")
                && GATHER_SH.ends_with("base >&3 || die \"cannot send the minimal base (tar failed)\"\n")
        );
    }
}
