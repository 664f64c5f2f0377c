//! `exec.sh`'s build-user part run on this machine (`sh`, `tar`, `flock`): the sources arrive on
//! its stdin, and a stream cut short, wherever the cut falls, never reaches the build.

use super::EXEC_SH;
use crate::builder::upload::SourceUpload;
use crate::project::Project;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// What the stand-in build script does: keeps the sources' tar it was given, then succeeds.
const BUILD: &str = r#"cp "$SRC_TAR" "$REQ/../got.tar""#;

/// A directory with the warm builder's and a build's places, and the upload of `inner` (the
/// sources' tar) into it, sealed, as `run.rs` writes it.
fn upload(inner: &[u8]) -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("warm")).unwrap();
    std::fs::write(dir.path().join("mix.exs"), "defmodule P.MixProject do end\n").unwrap();
    let project = Project::open(dir.path()).unwrap();
    let req = dir.path().join("req/1");
    let upload =
        SourceUpload::of_bytes(project, Vec::new(), inner.to_vec()).sealed(&format!("{}/src.sealed", req.display()));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut bytes = Vec::new();
    rt.block_on(upload.write_into(&mut bytes, &format!("{}/src.tar", req.display()))).unwrap();
    (dir, bytes)
}

/// exec.sh as the build user, told the upload has `len` bytes.
fn exec_command(dir: &Path, len: usize) -> Command {
    let req = dir.join("req/1");
    let mut command = Command::new("/bin/sh");
    command
        .args(["-c", EXEC_SH, "exec.sh", BUILD, EXEC_SH, "as-user"])
        .env("WARM_DIR", dir.join("warm"))
        .env("REQ", &req)
        .env("SRC_TAR", req.join("src.tar"))
        .env("SRC_SEAL", req.join("src.sealed"))
        .env("STAGE", dir.join("stage/1"))
        .env("SRC_BYTES", len.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// exec.sh as the build user, `stdin` on its stdin, told the upload has `len` bytes.
fn exec_as_user(dir: &Path, stdin: &[u8], len: usize) -> Output {
    let mut child = exec_command(dir, len).spawn().unwrap();
    // A script that stops reading early closes the pipe: not this test's failure.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn the_sources_arrive_on_stdin_and_the_build_gets_them() {
    let inner = vec![7u8; 3000];
    let (dir, bytes) = upload(&inner);
    let out = exec_as_user(dir.path(), &bytes, bytes.len());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(dir.path().join("req/got.tar")).unwrap(), inner);
    assert!(!dir.path().join("req/1").exists() && !dir.path().join("stage/1").exists(), "left behind");
}

#[test]
fn an_upload_cut_short_anywhere_never_reaches_the_build() {
    let inner = vec![7u8; 3000];
    let (_, whole) = upload(&inner);
    // In the sources' tar; just before the seal (the tar whole, its end missing); in the seal.
    for cut in [1024, whole.len() - 3 * 512, whole.len() - 3 * 512 + 100] {
        let (dir, _) = upload(&inner);
        let out = exec_as_user(dir.path(), &whole[..cut], whole.len());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "cut at {cut}: {stderr}");
        assert!(stderr.contains("the sources did not arrive whole"), "cut at {cut}: {stderr}");
        assert!(!dir.path().join("req/got.tar").exists(), "cut at {cut}: the build ran");
        assert!(
            !dir.path().join("req/1").exists() && !dir.path().join("stage/1").exists(),
            "cut at {cut}: left behind"
        );
    }
}

/// exec.sh given `stdin` on an input that stays open (an engine reached through ssh may never pass
/// on that the exec's input ended): how it ended, None when it still waited after 20 s.
fn exec_with_open_input(dir: &Path, stdin: &[u8], len: usize) -> Option<std::process::ExitStatus> {
    let mut child = exec_command(dir, len).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn the_sources_are_read_without_waiting_for_the_end_of_the_input() {
    let inner = vec![7u8; 3000];
    let (dir, bytes) = upload(&inner);
    let status = exec_with_open_input(dir.path(), &bytes, bytes.len());
    assert!(status.is_some_and(|s| s.success()), "exec.sh waited for the input's end: {status:?}");
    assert_eq!(std::fs::read(dir.path().join("req/got.tar")).unwrap(), inner);
}

#[test]
fn a_failed_upload_padded_to_its_length_fails_the_build_without_the_inputs_end() {
    // What `write_into` sends when the sources fail to read: what went, then zeros.
    let inner = vec![7u8; 3000];
    let (_, whole) = upload(&inner);
    for cut in [1024, whole.len() - 3 * 512] {
        let (dir, _) = upload(&inner);
        let mut padded = whole[..cut].to_vec();
        padded.resize(whole.len(), 0);
        let status = exec_with_open_input(dir.path(), &padded, whole.len());
        assert_eq!(status.and_then(|s| s.code()), Some(1), "cut at {cut}: {status:?}");
        assert!(!dir.path().join("req/got.tar").exists(), "cut at {cut}: the build ran");
    }
}
