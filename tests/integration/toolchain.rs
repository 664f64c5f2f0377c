//! The project's pinned toolchain picks the builder (docs/toolchain.md): an Elixir 1.18 pin
//! builds on the trixie builder (Elixir 1.18, OTP 27) and runs on its runtime; a pin no builder
//! has is refused before anything runs, naming the requirement, its file and the builders.

use crate::projects_util::*;
use crate::util::*;
use std::time::{Duration, Instant};

#[test]
fn an_elixir_no_builder_has_is_refused_at_once() {
    require_docker();
    let project = copy_example("hello_web");
    std::fs::write(project.path().join(".tool-versions"), "elixir 1.99.0-otp-99\n").expect("write");
    let started = Instant::now();
    let mut c = release_oci();
    c.arg("build").arg(project.path());
    let o = run(c);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(err.contains("Elixir 1.99 (.tool-versions: elixir 1.99.0)"), "{err}");
    assert!(err.contains("release-oci/builder:debian-bookworm (Elixir 1.14.0, Erlang/OTP 25."), "{err}");
    assert!(err.contains("release-oci/builder:debian-trixie (Elixir 1.18."), "{err}");
    assert!(!err.contains("Assembling"), "{err}");
}

#[test]
fn an_elixir_1_18_pin_builds_on_trixie_and_runs_on_its_runtime() {
    require_docker();
    let project = copy_example("hello_web");
    std::fs::write(project.path().join(".tool-versions"), "erlang 27.3\nelixir 1.18.3-otp-27\n").expect("write");
    let tag = format!("release-oci-test/toolchain:{}", std::process::id());
    let mut c = release_oci();
    c.arg("build").arg(project.path()).args(["--base", "debian", "--load", "-t", &tag]);
    let o = run(c);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("Builder release-oci/builder:debian-trixie (Elixir 1.18."), "{err}");
    let cfg = engine_config(&tag);
    assert_eq!(cfg["Labels"]["org.opencontainers.image.base.name"], "release-oci/runtime:debian-trixie", "{cfg}");
    // OTP 27 in the image: its ERTS is 15.x.
    let c = Container::start(&["--read-only", "--tmpfs", "/tmp"], &tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(60));
    assert_eq!((status, body.as_str()), (200, "hello from hello_web 0.1.0\n"), "{}", c.logs());
    let erts = c.exec(&["sh", "-c", "ls -d /app/erts-*"]);
    assert!(text(&erts.stdout).contains("erts-15."), "{}", text(&erts.stdout));
    drop(c);
    remove_images(&[&tag]);
}

#[test]
fn a_pin_the_default_builder_satisfies_keeps_it() {
    require_docker();
    let project = copy_example("hello_web");
    std::fs::write(project.path().join(".tool-versions"), "elixir 1.14.0-otp-25\n").expect("write");
    let dir = crate::util::tempdir().expect("tempdir");
    let mut c = release_oci();
    c.arg("build").arg(project.path()).arg("--output").arg(format!("oci:{}", dir.path().join("out").display()));
    let o = run(c);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("Builder release-oci/builder:debian-bookworm (Elixir 1.14.0"), "{err}");
}
