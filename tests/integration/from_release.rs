//! `--from-release`: a release assembled on this machine (`MIX_ENV=prod mix release`) is layered
//! without a builder and runs; a release whose ERTS is for another triple is refused, naming
//! `beam.smp`; a release without ERTS needs the same ERTS in the base.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// hello_web assembled on the host, once per test run: (project copy, release directory).
fn host_release() -> &'static (ProjectCopy, PathBuf) {
    static R: OnceLock<(ProjectCopy, PathBuf)> = OnceLock::new();
    R.get_or_init(|| {
        let project = copy_example("hello_web");
        let mut c = Command::new("mix");
        c.args(["release", "--quiet"])
            .current_dir(project.path())
            .env("MIX_ENV", "prod")
            .env_remove("MIX_BUILD_ROOT")
            .env_remove("MIX_BUILD_PATH");
        ok(c);
        let rel = project.path().join("_build/prod/rel/hello_web");
        assert!(rel.join("releases/start_erl.data").is_file(), "mix release made no release in {}", rel.display());
        (project, rel)
    })
}

fn build_from(rel: &Path, extra: &[&str]) -> std::process::Output {
    let mut c = release_oci();
    c.arg("build").arg("--from-release").arg(rel).args(extra);
    run(c)
}

#[test]
fn a_host_release_is_layered_without_a_builder_and_runs() {
    require_docker();
    let (_project, rel) = host_release();
    let tag = format!("release-oci-test/from-release:{}", std::process::id());
    let o = build_from(rel, &["--load", "--tag", &tag, "--port", "4000"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("Assembling"), "a builder ran: {err}");
    let c = Container::start(&["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"], &tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(60));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello from hello_web"), "{body}");
    let (code, _) = c.stop(10);
    assert_eq!(code, 0, "{}", c.logs());
    drop(c);
    let _ = docker(&["rmi", "-f", &tag]);
}

#[test]
fn a_release_tarball_is_accepted() {
    require_docker();
    let (_project, rel) = host_release();
    let out = crate::util::tempdir().expect("tempdir");
    let tarball = out.path().join("hello_web-0.1.0.tar.gz");
    let mut c = Command::new("tar");
    c.arg("-czf").arg(&tarball).arg("-C").arg(rel).arg(".");
    ok(c);
    let layout = out.path().join("oci");
    let o = build_from(&tarball, &["--output", &format!("oci:{}", layout.display())]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let cfg = layout_config(&layout);
    assert_eq!(cfg["config"]["Entrypoint"][2], "/usr/local/bin/release-oci-entry");
    assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["start"]));
}

#[test]
fn erts_for_another_triple_is_refused_naming_beam_smp() {
    let (_project, rel) = host_release();
    for triple in ["aarch64-unknown-linux-gnu", "x86_64-unknown-linux-musl"] {
        let o = build_from(rel, &["--triple", triple]);
        assert!(!o.status.success(), "{triple} was accepted");
        let err = text(&o.stderr);
        assert!(err.contains("erts-") && err.contains("/bin/beam.smp") && err.contains(triple), "{err}");
    }
}

#[test]
fn a_release_without_erts_needs_it_in_the_base() {
    require_docker();
    let (_project, rel) = host_release();
    // The same release without its erts-VSN directory, as include_erts: false makes it.
    let copy = crate::util::tempdir().expect("tempdir");
    let mut c = Command::new("cp");
    c.arg("-a").arg(format!("{}/.", rel.display())).arg(copy.path());
    ok(c);
    for e in std::fs::read_dir(copy.path()).expect("read").flatten() {
        if e.file_name().to_string_lossy().starts_with("erts-") {
            std::fs::remove_dir_all(e.path()).expect("remove erts");
        }
    }
    let o = build_from(copy.path(), &[]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("include_erts: false") && err.contains("has no ERTS at all"), "{err}");
}

/// `--slim-erts` leaves the ERTS tools out of the image, not out of the user's own release
/// directory.
#[test]
fn slim_erts_leaves_a_release_directory_as_it_was() {
    let (_project, rel) = host_release();
    let erts = std::fs::read_dir(rel)
        .expect("release dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("erts-"))
        .expect("the host release includes ERTS");
    let erlc = rel.join(&erts).join("bin/erlc");
    assert!(erlc.exists(), "{} has no erlc to begin with", rel.display());
    let out = crate::util::tempdir().expect("tempdir");
    let layout = out.path().join("oci");
    let o = build_from(rel, &["--slim-erts", "--output", &format!("oci:{}", layout.display())]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(erlc.exists(), "--slim-erts removed {} from the user's release", erlc.display());
    let mut c = release_oci();
    c.args(["inspect", "--files", &format!("oci:{}", layout.display())]);
    let files = ok(c);
    assert!(files.contains(&format!("app/{erts}/bin/beam.smp")), "{files}");
    assert!(!files.contains(&format!("app/{erts}/bin/erlc")), "erlc is in the image:\n{files}");
}
