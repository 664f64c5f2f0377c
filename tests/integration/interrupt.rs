//! A signal during a build removes the builder container, leaves no output, and exits as a shell
//! reports the signal: 130 after SIGINT (Ctrl-C), 143 after SIGTERM.

use crate::util::*;
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// hello_web with a module that sleeps for a minute while it compiles: a build slow enough to
/// interrupt, or to time out.
pub fn slow_project() -> ProjectCopy {
    let project = copy_example("hello_web");
    std::fs::write(project.path().join("lib/slow.ex"), "defmodule Slow do\n  Process.sleep(60_000)\nend\n")
        .expect("write");
    project
}

/// The id of the builder container of process `pid`, once it exists (and runs, with `running`).
pub fn builder_of(pid: u32, running: bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    let pid_label = format!("label=org.release-oci.pid={pid}");
    loop {
        let mut args = vec!["ps", "-q", "--no-trunc", "--filter", &pid_label];
        if !running {
            args.insert(1, "-a");
        }
        if let Some(c) = docker_ok(&args).lines().next() {
            return c.to_string();
        }
        assert!(Instant::now() < deadline, "no builder container of process {pid} appeared");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for `child` to end (at most `limit`; killed and a panic after that).
pub fn wait_at_most(mut child: Child, limit: Duration) -> Output {
    let t = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if t.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("release-oci still ran after {limit:?}; stderr:\n{}", text(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

/// Starts a build of a slow project, sends `signal` once its builder runs; returns how the build
/// ended, its builder container's id and where its output would have been.
fn interrupted_build(signal: &str) -> (Output, String, PathBuf) {
    require_docker();
    let project = slow_project();
    let out = project.path().join("out");
    let mut c = release_oci();
    c.arg("build").arg(project.path()).arg("--output").arg(format!("oci:{}", out.display()));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().expect("spawn");
    let mine = builder_of(child.id(), false);
    std::thread::sleep(Duration::from_secs(2));
    let st = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill");
    assert!(st.success());
    let output = wait_at_most(child, Duration::from_secs(30));
    (output, mine, out)
}

fn assert_cleaned_up(container: &str, out: &std::path::Path) {
    let left = docker(&["ps", "-a", "-q", "--no-trunc", "--filter", &format!("id={container}")]);
    assert!(text(&left.stdout).trim().is_empty(), "builder container {container} still exists");
    assert!(!out.exists(), "output left behind");
}

#[test]
fn ctrl_c_during_the_build_removes_the_builder_container() {
    // SIGINT, as Ctrl-C in a terminal sends it.
    let (output, container, out) = interrupted_build("-INT");
    let err = text(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    assert_cleaned_up(&container, &out);
}

#[test]
fn sigterm_during_the_build_exits_143_and_removes_the_builder_container() {
    let (output, container, out) = interrupted_build("-TERM");
    let err = text(&output.stderr);
    assert_eq!(output.status.code(), Some(143), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert_cleaned_up(&container, &out);
}
