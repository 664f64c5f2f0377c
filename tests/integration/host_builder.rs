//! `--builder host`: the release is assembled on this machine (it matches the triple), the image
//! is the same kind of image and runs.

use crate::util::*;
use std::time::Duration;

#[test]
fn host_builder_makes_an_image_that_runs() {
    require_docker();
    let project = copy_example("hello_web");
    let tag = format!("release-oci-test/hello_web_host:{}", std::process::id());
    let mut c = release_oci();
    c.arg("build").arg(project.path()).args(["--builder", "host", "--load", "--tag", &tag, "--port", "4000"]);
    let digest = ok(c);
    assert!(digest.trim().starts_with("sha256:"), "{digest}");
    let c = Container::start(&["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"], &tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(60));
    assert_eq!(status, 200, "{body}");
    let (code, _) = c.stop(10);
    assert_eq!(code, 0, "{}", c.logs());
    // The project's own tree was not used as the build directory.
    assert!(!project.path().join("_build").exists(), "the host build wrote into the project");
}

#[test]
fn host_builder_refuses_another_triple() {
    let project = copy_example("hello_web");
    let mut c = release_oci();
    c.arg("build").arg(project.path()).args(["--builder", "host", "--triple", "aarch64-unknown-linux-musl"]);
    let o = run(c);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("aarch64-unknown-linux-musl") && err.contains("x86_64"), "{err}");
}

/// A signal during a host build stops the script (its whole process group) and removes the
/// temporary build directory before release-oci exits with 143.
#[test]
fn a_signal_stops_a_host_build_and_removes_its_directory() {
    use std::process::Stdio;
    let project = crate::interrupt::slow_project();
    let tmp = crate::util::tempdir().expect("tempdir");
    let mut c = release_oci();
    c.arg("build").arg(project.path()).args(["--builder", "host", "--no-cache"]).env("TMPDIR", tmp.path());
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().expect("spawn");
    let build_dirs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(tmp.path())
            .expect("read tmp")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("release-oci-host-build-")))
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    // Once the sources are copied and the script compiles (Slow sleeps for a minute), stop it.
    while !build_dirs().iter().any(|d| d.join("src/_build").exists()) {
        assert!(std::time::Instant::now() < deadline, "the host build did not start compiling");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: signalling the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = crate::interrupt::wait_at_most(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert!(build_dirs().is_empty(), "left behind: {:?}", build_dirs());
    // No process of the script (Mix, the BEAM) still runs in the removed directory.
    let ps = std::process::Command::new("ps").args(["-eo", "args"]).output().expect("ps");
    let dir = tmp.path().display().to_string();
    assert!(!text(&ps.stdout).lines().any(|l| l.contains(&dir)), "{}", text(&ps.stdout));
}
