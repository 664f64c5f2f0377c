//! The Mix server of a warm builder (docs/warm-builder.md): one Erlang VM with the project
//! loaded takes the builds of a warm builder. Its builds give the cold build's image and show
//! their log; a failed build or a killed server gets a fresh server; same-size edits copied
//! within the second of the last compile are compiled.

use crate::util::*;
use crate::warm_builder::{build_in, cold, project, set_greeting, the_warm_builder, warm, write};
use std::path::Path;

const STARTING: &str = "warm builder: starting its Mix server";

/// The OS pid of the Mix server in warm builder `builder`.
fn server_pid(builder: &str) -> String {
    docker_ok(&["exec", "-u", "10001:10001", builder, "cat", "/build/warm/mix/pid"]).trim().to_string()
}

/// A warm build that fails: its stderr.
fn warm_fails(project: &Path) -> String {
    let out = crate::util::tempdir().expect("out");
    let mut c = release_oci();
    c.arg("build").arg(project).args(["--warm-builder", "--warm-builder-idle", "10m", "--output"]);
    c.arg(format!("oci:{}", out.path().join("img").display()));
    let o = run(c);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "the build succeeded:\n{err}");
    err
}

/// A first warm build of `project`: its warm builder and that builder's Mix server pid.
fn warm_with_server(project: &Path) -> (String, String) {
    warm(project, &[]);
    let builder = the_warm_builder(project);
    let pid = server_pid(&builder);
    (builder, pid)
}

/// A warm build after the server `pid` of `builder` ended: a new server in the same warm builder
/// builds it into the cold build's image. Returns the build's log.
fn built_by_a_new_server(project: &Path, builder: &str, pid: &str) -> String {
    let (digest, log) = warm(project, &[]);
    assert!(log.contains(STARTING), "no new Mix server:\n{log}");
    assert_eq!(the_warm_builder(project), builder, "the warm builder was replaced");
    assert_ne!(server_pid(builder), pid, "the old Mix server is still there");
    assert_eq!(digest, cold(project, &[]));
    log
}

/// The first warm build starts the server; the code changes after it are built by that same
/// server (same OS process), with their log, into the cold `--no-cache` build's image.
#[test]
fn one_mix_server_builds_the_code_changes_with_their_log() {
    let (project, _stop) = project();
    let p = project.path();
    let (_, first) = warm(p, &[]);
    assert!(first.contains(STARTING), "{first}");
    let builder = the_warm_builder(p);
    let pid = server_pid(&builder);
    for greeting in ["served once", "served twice"] {
        set_greeting(p, greeting);
        let (digest, log) = warm(p, &[]);
        assert!(!log.contains(STARTING), "a second server was started:\n{log}");
        assert!(
            log.contains("==> mix release hello_web") && log.contains("Compiling 1 file (.ex)"),
            "the build's Mix log is missing:\n{log}"
        );
        assert!(
            log.contains("files changed since the last build, only those sent"),
            "the whole release was sent:\n{log}"
        );
        assert!(log.contains("==> sources: 1 changed files received, 0 gone"), "the whole sources went up:\n{log}");
        assert!(log.contains("files as the last build left them and not sent again: not compared"), "{log}");
        assert_eq!(server_pid(&builder), pid, "the Mix server was replaced");
        assert_eq!(digest, cold(p, &[]), "{greeting}: the served build's image is not the cold build's");
    }
}

/// A compile error: the build fails with the compiler's message; the server ends, and the build
/// after the fix starts a new one and gives the cold build's image.
#[test]
fn a_failed_build_ends_the_mix_server_and_the_next_build_starts_a_new_one() {
    let (project, _stop) = project();
    let p = project.path();
    let (builder, pid) = warm_with_server(p);
    write(p, "lib/broken.ex", "defmodule Broken do\n  def f, do: undefined_fun_xyz()\nend\n");
    let err = warm_fails(p);
    assert!(err.contains("undefined_fun_xyz"), "the compiler's message is not in the log:\n{err}");
    assert!(err.contains("mix failed (exit code 1)"), "{err}");
    std::fs::remove_file(p.join("lib/broken.ex")).expect("rm broken.ex");
    set_greeting(p, "after the failure");
    built_by_a_new_server(p, &builder, &pid);
}

/// A killed server is replaced by the next build, which gives the cold build's image.
#[test]
fn a_killed_mix_server_is_replaced() {
    let (project, _stop) = project();
    let p = project.path();
    let (builder, pid) = warm_with_server(p);
    docker_ok(&["exec", "-u", "10001:10001", &builder, "kill", "-KILL", &pid]);
    set_greeting(p, "after the kill");
    let log = built_by_a_new_server(p, &builder, &pid);
    assert!(log.contains("Compiling 1 file (.ex)"), "{log}");
}

/// A same-size edit copied within the second of the last compile: made certain by giving the
/// last compile (its manifest's mtime, which Mix compares a source's mtime with, and the second
/// the build cache records for it) a second just ahead. Mix alone would not see the edit; the
/// build waits for the next second, touches the copied file, and gives the edit's cold image.
#[test]
fn a_same_size_edit_within_the_second_of_the_last_compile_is_compiled() {
    let (project, _stop) = project();
    let p = project.path();
    set_greeting(p, "same second b");
    let want = cold(p, &[]);
    // A blob cache of their own: the cold build's result is not in it.
    let cache = crate::util::tempdir().expect("cache");
    let warm = |p: &Path| build_in(Some(cache.path()), p, &["--warm-builder", "--warm-builder-idle", "10m"]);
    set_greeting(p, "same second a");
    warm(p);
    let builder = the_warm_builder(p);
    let manifest = "/build/cache/src/_build/prod/lib/hello_web/.mix/compile.elixir";
    let script = format!("s=$(( $(date +%s) + 2 )); touch -d @$s {manifest} && echo $s >/build/cache/.built");
    docker_ok(&["exec", "-u", "10001:10001", &builder, "sh", "-c", &script]);
    set_greeting(p, "same second b");
    let (digest, log) = warm(p);
    assert!(log.contains("copied within the second of the last compile"), "{log}");
    assert_eq!(digest, want, "the edit was not compiled:\n{log}");
}

/// Warm builds one after the other, alternating two greetings of the same size, each after the
/// result cache was emptied: each image is its greeting's cold image, whether or not the edit
/// was copied within the second of the last compile.
#[test]
fn quick_same_size_edits_give_their_cold_images() {
    let (project, _stop) = project();
    let p = project.path();
    let cache = crate::util::tempdir().expect("cache");
    let greetings = ["quick edit a", "quick edit b"];
    let colds: Vec<String> = greetings
        .iter()
        .map(|g| {
            set_greeting(p, g);
            cold(p, &[])
        })
        .collect();
    assert_ne!(colds[0], colds[1]);
    for round in 0..8 {
        let which = round % 2;
        set_greeting(p, greetings[which]);
        let _ = std::fs::remove_dir_all(cache.path().join("results"));
        let (digest, log) = build_in(Some(cache.path()), p, &["--warm-builder", "--warm-builder-idle", "10m"]);
        assert_eq!(digest, colds[which], "build {round} ({}) is not its cold image:\n{log}", greetings[which]);
    }
}
