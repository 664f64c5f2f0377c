//! The host builder: runs [`ASSEMBLE_SH`] with the host's `sh` and Elixir, in a temporary copy of
//! the sources (so the project's own `_build` and `deps` are left alone). Only for a target with
//! the host's architecture and libc: the release embeds the host's ERTS.

use super::{ASSEMBLE_SH, Assembled, BuildRequest, BuilderError, LOG_TAIL_LINES, LogTail};
use crate::cancel::Signals;
use crate::project::{Project, ProjectError};
use crate::triple::Triple;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

/// How long to wait for the rest of the output once the script has exited.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Variables of the user's environment that would point Mix outside the temporary copy.
const MIX_PATH_VARS: &[&str] = &["MIX_BUILD_PATH", "MIX_BUILD_ROOT", "MIX_DEPS_PATH", "MIX_EXS", "MIX_LOCKFILE"];

/// Assembles the release of `req.project` on this machine (`req.builder_image` and `req.pull` do
/// not apply). The build log streams to stderr as it comes.
pub fn assemble(req: &BuildRequest) -> Result<Assembled, BuilderError> {
    assemble_stoppable(req, None)
}

/// [`assemble`], stopped by a signal from `stop`: the script's process group is killed, and the
/// temporary directory is removed before the error returns.
pub fn assemble_stoppable(req: &BuildRequest, stop: Option<&Signals>) -> Result<Assembled, BuilderError> {
    check_host(&req.triple, Triple::host())?;
    let dir = tempfile::Builder::new().prefix("release-oci-host-build-").tempdir().map_err(|source| {
        BuilderError::Io { action: "cannot create a directory in", path: std::env::temp_dir(), source }
    })?;
    let src = dir.path().join("src");
    let out = dir.path().join("out");
    copy_sources(&req.project, &src)?;
    let (mut cmd, mut reader) = script(req, dir.path(), &src, &out)?;
    let mut child = cmd.spawn().map_err(|source| BuilderError::Spawn { program: "sh".into(), source })?;
    // `cmd` holds the pipe's write ends: drop them so the read ends when the script does.
    drop(cmd);

    let log = LogTail::new(LOG_TAIL_LINES, !crate::ui::quiet()).redacting(req.inputs.redactions());
    let log = Arc::new(Mutex::new(log));
    let (done_tx, done_rx) = mpsc::channel();
    let reader_log = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => lock(&reader_log).push(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = done_tx.send(());
    });
    let status = wait(&mut child, stop)?;
    // The output ends with the script, unless something it started in the background (epmd)
    // still holds the pipe: then do not wait for it.
    let _ = done_rx.recv_timeout(OUTPUT_GRACE);
    let log_tail = {
        let mut log = lock(&log);
        log.finish();
        log.tail()
    };
    if !status.success() {
        return Err(BuilderError::HostBuildFailed { exit_code: status.code(), log_tail });
    }
    Assembled::from_output(dir, &out, None)
}

/// The script's command, in its own process group, its output into the returned pipe.
fn script(
    req: &BuildRequest,
    dir: &Path,
    src: &Path,
    out: &Path,
) -> Result<(Command, std::io::PipeReader), BuilderError> {
    use std::os::unix::process::CommandExt;
    let spawn_err = |source| BuilderError::Spawn { program: "sh".into(), source };
    let (reader, writer) = std::io::pipe().map_err(spawn_err)?;
    let writer_err = writer.try_clone().map_err(spawn_err)?;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(ASSEMBLE_SH)
        .arg("assemble.sh")
        .current_dir(src)
        .env("SRC", src)
        .env("OUT", out)
        .env("MIX_ENV", &req.mix_env)
        .env("PROFILE", &req.profile)
        .env("PROJECT_KIND", req.project.kind().as_str())
        .env("LANG", "C.UTF-8")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_err);
    match &req.release {
        Some(release) => cmd.env("RELEASE_NAME", release),
        None => cmd.env_remove("RELEASE_NAME"),
    };
    for (k, v) in req.minimal_base.iter().flat_map(|m| m.env()) {
        cmd.env(k, v);
    }
    for var in MIX_PATH_VARS {
        cmd.env_remove(var);
    }
    host_inputs(req, dir, &mut cmd)?;
    Ok((cmd, reader))
}

/// Waits for the script; a signal from `stop` kills its process group (Mix, the BEAM, epmd).
fn wait(child: &mut Child, stop: Option<&Signals>) -> Result<ExitStatus, BuilderError> {
    let spawn_err = |source| BuilderError::Spawn { program: "sh".into(), source };
    let Some(stop) = stop else { return child.wait().map_err(spawn_err) };
    loop {
        if let Some(status) = child.try_wait().map_err(spawn_err)? {
            return Ok(status);
        }
        if let Some(signal) = stop.received() {
            // SAFETY: signalling the process group this build made for the script.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            return Err(BuilderError::Interrupted { signal, container: None });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The builder's inputs on this machine: the build env, secrets and Hex settings as files under
/// `dir/inputs` (the CA bundle and SSH agent are this machine's own already).
fn host_inputs(req: &BuildRequest, dir: &Path, cmd: &mut Command) -> Result<(), BuilderError> {
    use std::os::unix::fs::PermissionsExt;
    let inputs = &req.inputs;
    let root = dir.join("inputs");
    for file in inputs.files()? {
        let rel = file.path.trim_start_matches(super::inputs::INPUTS_DIR.trim_start_matches('/'));
        let path = root.join(rel.trim_start_matches('/'));
        let io = |source| BuilderError::Io { action: "cannot write the build input", path: path.clone(), source };
        std::fs::create_dir_all(path.parent().unwrap_or(&root)).map_err(io)?;
        std::fs::write(&path, &file.content).map_err(io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode | 0o200)).map_err(io)?;
    }
    cmd.envs(inputs.env.iter().map(|(k, v)| (k, v)));
    cmd.env("RELEASE_OCI_INPUTS", &root).env("RELEASE_OCI_ASSETS", inputs.assets.as_str());
    let secrets = root.join("secrets");
    cmd.env("RELEASE_OCI_SECRETS", &secrets);
    let pairs: Vec<String> =
        inputs.secrets.iter().filter_map(|s| s.build_env.as_ref().map(|e| format!("{e}={}", s.id))).collect();
    cmd.env("RELEASE_OCI_SECRET_ENV", pairs.join(" "));
    if !inputs.hex_repos.is_empty() {
        let keys = root.join("hex").display().to_string();
        cmd.env("RELEASE_OCI_HEX_REPOS", inputs.hex_repos_spec(&keys, &secrets.display().to_string()));
    }
    Ok(())
}

/// Copies the sources into `src` with the same files, modes and links as the container gets: their
/// tar is written by a thread into a pipe and unpacked as it comes (never held whole).
fn copy_sources(project: &Project, src: &Path) -> Result<(), BuilderError> {
    let io = |source| BuilderError::Io { action: "cannot copy the sources into", path: src.to_path_buf(), source };
    let (reader, writer) = std::io::pipe().map_err(io)?;
    let project = project.clone();
    let writing = std::thread::spawn(move || project.write_source_tar(writer).map(drop));
    let unpacked = tar::Archive::new(reader).unpack(src);
    let written = writing.join().map_err(|_| io(std::io::Error::other("the thread writing the sources panicked")))?;
    match (written, unpacked) {
        (Err(ProjectError::Tar { source, .. }), Err(e)) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(io(e))
        }
        (Err(e), _) => Err(e.into()),
        (Ok(()), unpacked) => unpacked.map_err(io),
    }
}

fn lock(log: &Mutex<LogTail>) -> MutexGuard<'_, LogTail> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The host can build for `requested` when it has the same architecture and libc.
fn check_host(requested: &Triple, host: Option<Triple>) -> Result<(), BuilderError> {
    match host {
        Some(h) if h.arch == requested.arch && h.libc == requested.libc => Ok(()),
        host => Err(BuilderError::HostMismatch { host, requested: requested.clone() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_must_match_arch_and_libc() {
        let t = |s: &str| s.parse::<Triple>().unwrap();
        assert!(check_host(&t("x86_64-unknown-linux-gnu"), Some(t("x86_64-pc-linux-gnu"))).is_ok());
        let e = check_host(&t("aarch64-unknown-linux-musl"), Some(t("x86_64-unknown-linux-gnu"))).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("the host is x86_64-unknown-linux-gnu"), "{msg}");
        assert!(msg.contains("aarch64-unknown-linux-musl") && msg.contains("Docker builder"), "{msg}");
        let e = check_host(&t("x86_64-unknown-linux-gnu"), None).unwrap_err();
        assert!(e.to_string().contains("not a supported triple"), "{e}");
    }
}
