//! The builder container's sandbox, seen while it runs: the memory and process limits
//! (`--memory`, `--pids-limit`; their defaults here), every capability dropped but CHOWN, SETUID
//! and SETGID, no-new-privileges, and the build running as 10001:10001. hello_web built that way,
//! with its build cache volume, still runs; and a cache volume that root builds wrote (before the
//! builds ran as 10001) is taken over and still used.

use crate::interrupt::{builder_of, wait_at_most};
use crate::util::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

const BUILDER_IMAGE: &str = "release-oci/builder:debian-bookworm";

/// `docker top` of a container: (uid, command line) of each of its processes.
fn processes(container: &str) -> Vec<(String, String)> {
    let out = docker_ok(&["top", container, "-eo", "pid,uid,args"]);
    let row = |l: &str| {
        let mut fields = l.split_whitespace();
        let (_pid, uid) = (fields.next()?, fields.next()?);
        Some((uid.to_string(), fields.collect::<Vec<_>>().join(" ")))
    };
    out.lines().skip(1).filter_map(row).collect()
}

#[test]
fn the_builder_runs_limited_and_unprivileged_and_hello_web_still_runs() {
    require_docker();
    let project = copy_example("hello_web");
    // Compiling takes five seconds longer: time to look at the build while it runs.
    std::fs::write(project.path().join("lib/slow.ex"), "defmodule Slow do\n  Process.sleep(5_000)\nend\n")
        .expect("write");
    let tag = format!("release-oci-test/sandbox:{}", std::process::id());
    let mut c = release_oci();
    c.arg("build").arg(project.path()).args(["--load", "--tag", &tag, "--port", "4000"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().expect("spawn");
    let container = builder_of(child.id(), true);

    let host: serde_json::Value =
        serde_json::from_str(&docker_ok(&["inspect", "-f", "{{json .HostConfig}}", &container])).expect("json");
    assert_eq!((host["Memory"].as_i64(), host["MemorySwap"].as_i64()), (Some(4 << 30), Some(4 << 30)), "{host}");
    assert_eq!(host["PidsLimit"].as_i64(), Some(4096), "{host}");
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]), "{host}");
    assert_eq!(host["CapAdd"], serde_json::json!(["CHOWN", "SETUID", "SETGID"]), "{host}");
    assert_eq!(host["SecurityOpt"], serde_json::json!(["no-new-privileges"]), "{host}");

    // Once the BEAM compiles, every process of the container runs as 10001 (none as root).
    let deadline = Instant::now() + Duration::from_secs(120);
    let seen = loop {
        let ps = processes(&container);
        if ps.iter().any(|(_, args)| args.contains("beam")) {
            break ps;
        }
        assert!(Instant::now() < deadline, "no BEAM in the builder: {ps:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(seen.iter().all(|(uid, _)| uid == "10001"), "{seen:#?}");

    let out = wait_at_most(child, Duration::from_secs(600));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let app = Container::start(&[], &tag, &[]);
    let (status, body) = app.get("/", Duration::from_secs(60));
    assert_eq!(status, 200, "{body}");
    drop(app);
    let _ = docker(&["rmi", "-f", &tag]);
}

#[test]
fn a_cache_volume_that_root_builds_wrote_is_taken_over() {
    require_docker();
    let project = copy_example("hello_web");
    let outputs = crate::util::tempdir().expect("tempdir");
    let build = |out: &str| {
        let mut c = release_oci();
        c.arg("build").arg(project.path()).arg("--output").arg(format!("oci:{}", outputs.path().join(out).display()));
        let o = run(c);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stderr)
    };
    build("out1");
    let root = project.path().canonicalize().expect("canonical");
    let label = format!("label=org.release-oci.project={}", root.display());
    let volume = docker_ok(&["volume", "ls", "-q", "--filter", &label]).trim().to_string();
    assert!(!volume.is_empty() && !volume.contains('\n'), "{volume:?}");
    // As a build before the builder dropped root left it: everything root's.
    let mount = format!("{volume}:/c");
    let owners = |cmd: &str| docker_ok(&["run", "--rm", "-v", &mount, "--entrypoint", "sh", BUILDER_IMAGE, "-c", cmd]);
    owners("chown -R 0:0 /c");

    let source = project.path().join("lib/hello_web/router.ex");
    let mut text_now = std::fs::read_to_string(&source).expect("read");
    text_now.push_str("\n# changed\n");
    std::fs::write(&source, text_now).expect("write");
    let log = build("out2");
    assert!(log.contains("build cache: 1 changed or new files copied"), "{log}");
    let left = owners("find /c ! -user 10001 | head -5");
    assert_eq!(left.trim(), "", "files not handed over to 10001");
}

#[test]
fn a_build_over_its_memory_limit_fails_saying_so() {
    require_docker();
    let project = copy_example("hello_web");
    let mut c = release_oci();
    c.args(["-q", "build"]).arg(project.path()).args(["--no-cache", "--memory", "16m"]);
    let o = run(c);
    let stderr = text(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(stderr.starts_with("error: the release build ran out of memory"), "{stderr}");
    assert!(stderr.contains("at its --memory limit of 16m; raise --memory"), "{stderr}");
}
