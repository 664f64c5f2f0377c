//! Bad input gets a clear one-line error, a non-zero exit, and leaves no output behind.

use crate::util::*;
use std::path::Path;

/// Runs a build that must fail; returns stderr. Asserts the output path was not created.
fn fails(args: &[&str], env: &[(&str, &str)], out: &Path) -> String {
    let mut c = release_oci();
    c.arg("build").args(args).arg("--output").arg(format!("oci:{}", out.display()));
    for (k, v) in env {
        c.env(k, v);
    }
    let o = run(c);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "build succeeded: {err}");
    assert!(text(&o.stdout).trim().is_empty(), "stdout on failure: {}", text(&o.stdout));
    assert!(err.contains("error: "), "{err}");
    assert!(!out.exists(), "output {} left behind", out.display());
    err
}

#[test]
fn not_a_mix_project() {
    let dir = crate::util::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let err = fails(&[&dir.path().display().to_string()], &[], &out);
    assert!(err.contains("not a mix or rebar3 project"), "{err}");
}

#[test]
fn unknown_triple() {
    let p = repo_root().join("examples/hello_web");
    let dir = crate::util::tempdir().expect("tempdir");
    let err = fails(&[&p.display().to_string(), "--triple", "sparc-sun-solaris-gnu"], &[], &dir.path().join("out"));
    assert!(err.contains("unsupported target triple \"sparc-sun-solaris-gnu\""), "{err}");
    assert!(err.contains("x86_64-unknown-linux-musl"), "the supported triples are not listed: {err}");
}

#[test]
fn no_docker_engine() {
    let p = repo_root().join("examples/hello_web");
    let dir = crate::util::tempdir().expect("tempdir");
    let sock = dir.path().join("no-such.sock");
    let err = fails(
        &[&p.display().to_string()],
        &[("DOCKER_HOST", &format!("unix://{}", sock.display()))],
        &dir.path().join("out"),
    );
    assert!(err.contains("no Docker engine answers"), "{err}");
    assert!(err.contains(&sock.display().to_string()), "the address is not named: {err}");
}

#[test]
fn missing_builder_image() {
    require_docker();
    let p = repo_root().join("examples/hello_web");
    let dir = crate::util::tempdir().expect("tempdir");
    let err = fails(
        &[&p.display().to_string(), "--builder-image", "release-oci/no-such-builder:1", "--pull", "never"],
        &[],
        &dir.path().join("out"),
    );
    assert!(err.contains("release-oci/no-such-builder:1"), "{err}");
}

#[test]
fn output_path_that_cannot_be_written() {
    let p = repo_root().join("examples/hello_web");
    let dir = crate::util::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let out = file.join("out");
    let err = fails(&[&p.display().to_string()], &[], &out);
    assert!(err.contains(&out.display().to_string()), "{err}");
}

#[test]
fn compile_error_shows_the_log_tail_and_leaves_no_container() {
    require_docker();
    let project = copy_example("hello_web");
    let router = project.path().join("lib/hello_web/router.ex");
    let src = std::fs::read_to_string(&router).expect("router");
    std::fs::write(&router, src.replace("def version, do:", "def version, do: undefined_function_xyz() ||"))
        .expect("write");
    let out = project.path().join("out");
    let err = fails(&[&project.path().display().to_string()], &[], &out);
    assert!(err.contains("exit code"), "{err}");
    assert!(err.contains("undefined_function_xyz"), "the compiler's message is not in the error: {err}");
    // This build's container (labelled with its project directory) is gone; other tests' builds
    // may be running at the same time, so only this project's label counts.
    let root = std::fs::canonicalize(project.path()).expect("canonical");
    let label = format!("label=org.release-oci.project={}", root.display());
    let left = docker_ok(&["ps", "-a", "-q", "--filter", &label]);
    assert!(left.trim().is_empty(), "builder containers left behind: {left}");
}

/// A reference that cannot be pushed to is refused before the builder starts.
#[test]
fn a_bad_push_reference_fails_before_the_build() {
    let p = repo_root().join("examples/hello_web");
    let dir = crate::util::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let err = fails(&[&p.display().to_string(), "--push", "host:99999/x"], &[], &dir.path().join("out"));
    assert!(err.contains("--push \"host:99999/x\"") && err.contains("from 1 to 65535"), "{err}");
    assert!(!err.contains("Assembling"), "the build ran first: {err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
}
