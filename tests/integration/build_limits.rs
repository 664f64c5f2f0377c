//! Builds that would never end: a symlink loop in `priv/` is refused before the builder starts,
//! naming the link; and `--timeout` stops a builder that runs too long, removing its container.

use crate::interrupt::{slow_project, wait_at_most};
use crate::util::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn a_symlink_loop_in_priv_fails_at_once_naming_the_link() {
    require_docker();
    let project = copy_example("hello_web");
    std::fs::create_dir_all(project.path().join("priv")).expect("mkdir priv");
    std::os::unix::fs::symlink("loop", project.path().join("priv/loop")).expect("symlink");
    let mut c = release_oci();
    c.arg("build").arg(project.path()).args(["--no-cache"]).stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = c.spawn().expect("spawn");
    let pid = child.id();
    // Before the check, the build hung here for good: give up after two minutes.
    let out = wait_at_most(child, Duration::from_secs(120));
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}:\n{err}", start.elapsed());
    assert!(err.contains("priv/loop is a symbolic link to loop") && err.contains("symlink loop"), "{err}");
    // Refused before any builder container was made.
    let left = docker_ok(&["ps", "-a", "-q", "--filter", &format!("label=org.release-oci.pid={pid}")]);
    assert!(left.trim().is_empty(), "a builder container was made: {left}");
}

#[test]
fn the_builder_is_stopped_and_removed_at_its_timeout() {
    require_docker();
    let project = slow_project();
    let mut c = release_oci();
    c.arg("build").arg(project.path()).args(["--no-cache", "--timeout", "1s"]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = c.spawn().expect("spawn");
    let pid = child.id();
    let out = wait_at_most(child, Duration::from_secs(120));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The slow module alone takes a minute to compile.
    assert!(start.elapsed() < Duration::from_secs(45), "took {:?}:\n{err}", start.elapsed());
    assert!(err.contains("took longer than --timeout 1s"), "{err}");
    assert!(err.contains("builder container release-oci-build-") && err.contains("stopped and removed"), "{err}");
    let left = docker_ok(&["ps", "-a", "-q", "--filter", &format!("label=org.release-oci.pid={pid}")]);
    assert!(left.trim().is_empty(), "the builder container is still there: {left}");
}
