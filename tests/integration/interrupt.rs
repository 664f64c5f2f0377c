//! Ctrl-C during a build removes the builder container and leaves no output.

use crate::util::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn ctrl_c_during_the_build_removes_the_builder_container() {
    require_docker();
    let project = copy_example("hello_web");
    // Make the build slow enough to interrupt: a module that sleeps while it compiles.
    std::fs::write(project.path().join("lib/slow.ex"), "defmodule Slow do\n  Process.sleep(60_000)\nend\n")
        .expect("write");
    let out = project.path().join("out");
    let mut c = release_oci();
    c.arg("build").arg(project.path()).arg("--output").arg(format!("oci:{}", out.display()));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");

    // Wait until this build's container exists.
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid_label = format!("label=org.release-oci.pid={}", child.id());
    let mine = loop {
        let now = docker_ok(&["ps", "-a", "-q", "--no-trunc", "--filter", &pid_label]);
        if let Some(c) = now.lines().next() {
            break c.to_string();
        }
        assert!(Instant::now() < deadline, "no builder container appeared");
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(2));
    // SIGINT, as Ctrl-C in a terminal sends it.
    let st = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(st.success());
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "release-oci did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().expect("output");
    assert!(!status.success());
    let err = text(&output.stderr);
    assert!(err.contains("interrupted"), "{err}");
    let left = docker(&["ps", "-a", "-q", "--no-trunc", "--filter", &format!("id={mine}")]);
    assert!(text(&left.stdout).trim().is_empty(), "builder container {mine} still exists");
    assert!(!out.exists(), "output left behind");
}
