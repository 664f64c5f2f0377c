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
