//! The registry catalogue of builders (docs/toolchain.md): with `--builder-catalogue`, a pin the
//! default builder does not meet is met by the newest tag of a repository laid out like the
//! official `hexpm/elixir` one (here a local docker-registry holding the trixie builder under a
//! hexpm tag, a decoy and an unparseable tag), made into `release-oci/builder-derived:TAG` with
//! tini, busybox and the CA bundle copied in, and reused while the tag's digest stays.

use crate::projects_util::*;
use crate::registry_util::Registry;
use crate::util::*;
use std::process::Command;
use std::time::Duration;

const TAG: &str = "1.18.3-erlang-27.3.4.1-debian-trixie-20250428-slim";
const DECOY: &str = "1.17.3-erlang-26.2.5-debian-bookworm-20240612-slim";
const DERIVED: &str = "release-oci/builder-derived:1.18.3-erlang-27.3.4.1-debian-trixie-20250428-slim";

/// `skopeo copy` into the registry (plain HTTP on 127.0.0.1).
fn skopeo_copy(from: &str, to: &str) {
    let o = Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false", from, to])
        .output()
        .expect("this test needs skopeo; run `make setup`");
    assert!(o.status.success(), "skopeo copy {from} {to}: {}", text(&o.stderr));
}

/// A build of hello_web pinned to `pin` with the catalogue; (success, stderr).
fn build(project: &ProjectCopy, catalogue: &str, extra: &[&str]) -> (bool, String) {
    let mut c = release_oci();
    c.arg("build").arg(project.path()).args(["--builder-catalogue", catalogue]).args(extra);
    let o = run(c);
    (o.status.success(), text(&o.stderr))
}

#[test]
fn a_pin_the_default_builder_does_not_meet_builds_on_a_derived_catalogue_builder() {
    require_docker();
    let registry = Registry::plain();
    let repo = format!("{}/hexpm/elixir", registry.addr());
    skopeo_copy("docker-daemon:release-oci/builder:debian-trixie", &format!("docker://{repo}:{TAG}"));
    skopeo_copy("docker-daemon:release-oci/builder:debian-bookworm", &format!("docker://{repo}:{DECOY}"));
    skopeo_copy(&format!("docker://{repo}:{DECOY}"), &format!("docker://{repo}:latest"));
    remove_images(&[DERIVED]);
    let project = copy_example("hello_web");
    std::fs::write(project.path().join(".tool-versions"), "elixir 1.18.3-otp-27\n").expect("write");
    let tag = format!("release-oci-test/catalogue:{}", std::process::id());
    let (ok, err) = build(&project, &repo, &["--load", "-t", &tag]);
    assert!(ok, "{err}\nregistry log:\n{}", registry.log());
    assert!(err.contains(&format!("Deriving builder {DERIVED} from {repo}@sha256:")), "{err}");
    assert!(
        err.contains(&format!("Builder {DERIVED} (Elixir 1.18.3, Erlang/OTP 27.3.4) from the catalogue {repo}:{TAG}")),
        "{err}"
    );
    let labels = &engine_config(DERIVED)["Labels"];
    assert_eq!(labels["org.release-oci.elixir-version"], "1.18.3", "{labels}");
    assert_eq!(labels["org.release-oci.otp-version"], "27.3.4.1", "{labels}");
    let source = labels["org.release-oci.builder-source"].as_str().unwrap_or("").to_string();
    assert!(source.starts_with(&format!("{repo}@sha256:")), "{labels}");
    // The minimal base (the default) was gathered from the derived builder, busybox included.
    let c = Container::start(&["--read-only", "--tmpfs", "/tmp"], &tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(60));
    assert_eq!((status, body.as_str()), (200, "hello from hello_web 0.1.0\n"), "{}", c.logs());
    let erts = c.exec(&["sh", "-c", "ls -d /app/erts-*"]);
    assert!(text(&erts.stdout).contains("erts-15."), "OTP 27's ERTS: {}", text(&erts.stdout));
    drop(c);
    // The next build reuses the derived builder: the tag still points at the same digest.
    let (ok, err) = build(&project, &repo, &["--load", "-t", &tag]);
    assert!(ok, "{err}");
    assert!(err.contains(&format!("from the catalogue {repo}:{TAG}")) && !err.contains("Deriving builder"), "{err}");
    // The pulled catalogue image is only another name of the trixie builder: that name goes.
    remove_images(&[&tag, DERIVED]);
    let _ = docker(&["rmi", &source]);
}

#[test]
fn a_catalogue_without_a_matching_tag_is_refused_naming_it_and_its_versions() {
    require_docker();
    let registry = Registry::plain();
    let repo = format!("{}/hexpm/elixir", registry.addr());
    for t in [TAG, DECOY, "latest"] {
        skopeo_copy("docker-daemon:release-oci/runtime:musl", &format!("docker://{repo}:{t}"));
    }
    let project = copy_example("hello_web");
    std::fs::write(project.path().join(".tool-versions"), "elixir 1.99.0-otp-99\n").expect("write");
    let (ok, err) = build(&project, &repo, &[]);
    assert!(!ok, "{err}");
    assert!(err.contains(&format!("no tag of the builder catalogue {repo} has the toolchain")), "{err}");
    assert!(err.contains("Elixir 1.99 (.tool-versions: elixir 1.99.0)"), "{err}");
    assert!(err.contains(&format!("{TAG} (Elixir 1.18.3, Erlang/OTP 27.3.4.1), {DECOY} (Elixir 1.17.3")), "{err}");
    assert!(err.contains("(1 other tags not of that form)"), "{err}");
    assert!(!err.contains("Assembling") && !err.contains("Deriving"), "{err}");
}
