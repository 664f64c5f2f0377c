//! The build dirs of a rebar3 project through a registry (`--cache-repo`, docs/build-cache.md):
//! rebar3 recompiles an Erlang module whose source is newer than its `.beam`, so a fresh runner
//! (another blob store, no cache volume) that restores runner A's `_build` and the sources'
//! mtimes rewrites the one `.beam` of the changed module, and its image runs the new code.

use crate::registry_build_cache::{PUBLISHING, RESTORING, RmiOnDrop, VolumesOnDrop, build, remove_volumes, show};
use crate::registry_util::*;
use crate::util::*;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// (mtime, file name) of the project's `.beam` files in its one cache volume.
fn beams_in_volume(project: &Path) -> Vec<(u64, String)> {
    let dir = project.canonicalize().expect("canonical");
    let label = format!("label=org.release-oci.project={}", dir.display());
    let volumes = docker_ok(&["volume", "ls", "-q", "--filter", &label]);
    let names: Vec<&str> = volumes.lines().filter(|n| !n.is_empty()).collect();
    assert_eq!(names.len(), 1, "one cache volume: {names:?}");
    let mount = format!("{}:/c:ro", names[0]);
    let script = "stat -c '%Y %n' /c/src/_build/*/lib/rebar3_web/ebin/*.beam";
    let out = docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &mount,
        "--entrypoint",
        "sh",
        "release-oci/builder:debian-bookworm",
        "-c",
        script,
    ]);
    let beams: Vec<(u64, String)> = out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(t, path)| (t.parse().expect("mtime"), path.rsplit('/').next().unwrap_or(path).to_string()))
        .collect();
    assert!(beams.len() >= 3, "the volume holds no rebar3_web build:\n{out}");
    beams
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

#[test]
fn a_fresh_runner_restores_a_rebar3_build_and_recompiles_only_the_changed_module() {
    require_docker();
    let reg = Registry::plain();
    let cache = format!("{}/cache/rebar3", reg.addr());
    let project = copy_example("rebar3_web");
    let _volumes = VolumesOnDrop(project.path().canonicalize().expect("canonical"));

    // Runner A: a cold build, published.
    let (store_a, out_a) = (crate::util::tempdir().unwrap(), crate::util::tempdir().unwrap());
    let layout = format!("oci:{}", out_a.path().join("layout").display());
    let (_, log_a) = build(project.path(), store_a.path(), &["--cache-repo", &cache, "-o", &layout]);
    show("A", &log_a);
    assert!(log_a.contains(PUBLISHING), "{log_a}");
    assert!(log_a.contains(", profile prod): building from nothing"), "{log_a}");

    // Runner B: no cache volume, another blob store; one line of one module changed.
    remove_volumes(project.path());
    let server = project.path().join("src/rebar3_web_server.erl");
    let src = std::fs::read_to_string(&server).expect("rebar3_web_server.erl");
    assert!(src.contains("not found\\n"));
    std::fs::write(&server, src.replace("not found\\n", "not here\\n")).expect("write");
    let store_b = crate::util::tempdir().unwrap();
    let tag = RmiOnDrop(format!("release-oci-test/build-dirs-rebar3:{}", std::process::id()));
    let started = now();
    let args = ["--cache-repo", cache.as_str(), "--load", "--tag", tag.0.as_str(), "--port", "4000"];
    let (_, log_b) = build(project.path(), store_b.path(), &args);
    show("B", &log_b);
    assert!(log_b.contains(RESTORING) && log_b.contains("app built from other sources"), "{log_b}");
    // Only the changed module's .beam was written by runner B; the others are runner A's.
    let beams = beams_in_volume(project.path());
    let rewritten: Vec<&str> = beams.iter().filter(|(t, _)| *t >= started).map(|(_, n)| n.as_str()).collect();
    assert_eq!(rewritten, ["rebar3_web_server.beam"], "beams (mtime, name) after runner B: {beams:?}\n{log_b}");
    let c = Container::start(&["-e", "GREETING=hej"], &tag.0, &[]);
    let (status, body) = c.get("/nope", Duration::from_secs(60));
    assert_eq!((status, body.as_str()), (404, "not here\n"), "the image runs the new code");
}
