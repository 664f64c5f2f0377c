//! A build killed with `kill -9` cannot clean up after itself: its builder container (which holds
//! the build cache volume "in use") and its output directory in /dev/shm stay. The next build, and
//! `cache prune`, remove them: the container's owner label and the directory's name say which
//! process made them, and that process is gone.

use crate::interrupt::{builder_of, slow_project, wait_at_most};
use crate::util::*;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// The output directories of process `pid` (`release-oci-assembled-PID-…` in /dev/shm or the
/// temporary directory).
fn scratch_dirs_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("release-oci-assembled-{pid}-");
    [PathBuf::from("/dev/shm"), std::env::temp_dir()]
        .iter()
        .filter_map(|parent| std::fs::read_dir(parent).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// Starts a build of `project` (with its build cache volume), kills it with SIGKILL while its
/// builder runs; returns the dead process's pid and its builder container's id, which stays.
fn killed_build(project: &ProjectCopy) -> (u32, String) {
    require_docker();
    let mut c = release_oci();
    c.arg("build").arg(project.path()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let pid = child.id();
    let container = builder_of(pid, true);
    // Its output directory exists from before the container starts.
    let dirs = scratch_dirs_of(pid);
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    assert_eq!(dirs.len(), 1, "no output directory named after process {pid}");
    // The container stays behind the killed process, until a build sweeps it: with the suite's
    // other tests running builds at the same time, that may already have happened here, so its
    // presence is not asserted; that nothing is left afterwards is.
    (pid, container)
}

fn assert_nothing_left(pid: u32, container: &str) {
    let label = format!("label=org.release-oci.pid={pid}");
    let left = docker_ok(&["ps", "-a", "-q", "--no-trunc", "--filter", &label]);
    assert!(left.trim().is_empty(), "builder container {container} of dead process {pid} still exists");
    assert_eq!(scratch_dirs_of(pid), Vec::<PathBuf>::new(), "output directory of dead process {pid} still exists");
}

#[test]
fn the_next_build_removes_what_a_killed_build_left() {
    let project = slow_project();
    let (pid, container) = killed_build(&project);
    // A build that builds (no cached result) sweeps first; this one then fails at once (no such
    // builder image).
    let mut c = release_oci();
    c.arg("build").arg(project.path()).args(["--builder-image", "release-oci/no-such-builder:nope", "--pull", "never"]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    let out = wait_at_most(c.spawn().expect("spawn"), Duration::from_secs(60));
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&format!("(left by process {pid}, which is gone)")), "{err}");
    assert_nothing_left(pid, &container);
}

#[test]
fn cache_prune_removes_a_killed_builds_container_and_then_its_volume() {
    let project = slow_project();
    let (pid, container) = killed_build(&project);
    let mut c = release_oci();
    c.args(["cache", "prune", "--project"]).arg(project.path());
    let pruned = ok(c);
    assert!(pruned.contains(&format!("(left by process {pid}, which is gone)")), "{pruned}");
    assert!(pruned.contains("removed release-oci-cache-"), "the volume was not removed:\n{pruned}");
    assert!(!pruned.contains("kept"), "{pruned}");
    assert_nothing_left(pid, &container);
}
