//! The warm builder (`build --warm-builder`, docs/warm-builder.md): the project's builder
//! container kept between builds. Its images are the images of a cold `--no-cache` build; it is
//! replaced when the build files, config, lock or builder image change, or when it was killed;
//! two projects have their own; it is gone after its idle time, `cache prune` and `builder stop`.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROLE: &str = "label=org.release-oci.role=warm-builder";

/// Stops the warm builders of a project when the test ends (passed or not), before its copy and
/// volumes go.
pub(crate) struct StopOnDrop(PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let mut c = release_oci();
        c.args(["builder", "stop", "--project"]).arg(&self.0);
        let _ = c.output();
    }
}

pub(crate) fn project() -> (ProjectCopy, StopOnDrop) {
    require_docker();
    let project = copy_example("hello_web");
    let stop = StopOnDrop(project.path().canonicalize().expect("canonical"));
    (project, stop)
}

/// `release-oci build PROJECT --output oci:OUT EXTRA...`; returns (digest, stderr).
pub(crate) fn build(project: &Path, extra: &[&str]) -> (String, String) {
    build_in(None, project, extra)
}

/// [`build`] with the blob cache `cache` (`RELEASE_OCI_CACHE`) instead of the tests' one.
pub(crate) fn build_in(cache: Option<&Path>, project: &Path, extra: &[&str]) -> (String, String) {
    let out = crate::util::tempdir().expect("out");
    let mut c = release_oci();
    if let Some(cache) = cache {
        c.env("RELEASE_OCI_CACHE", cache);
    }
    c.arg("build").arg(project).arg("--output").arg(format!("oci:{}", out.path().join("img").display())).args(extra);
    let desc = format!("{c:?}");
    let o = run(c);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{desc} failed ({}):\n--- stderr\n{stderr}\n--- stdout\n{stdout}", o.status);
    let digest = stdout.trim().to_string();
    assert!(digest.starts_with("sha256:"), "{desc} printed {stdout:?}");
    (digest, stderr)
}

pub(crate) fn warm(project: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec!["--warm-builder", "--warm-builder-idle", "10m"];
    args.extend_from_slice(extra);
    build(project, &args)
}

pub(crate) fn cold(project: &Path, extra: &[&str]) -> String {
    let mut args = vec!["--no-cache"];
    args.extend_from_slice(extra);
    build(project, &args).0
}

/// The ids of the warm builder containers of `project` (any state).
fn warm_builders(project: &Path) -> Vec<String> {
    let label = format!("label=org.release-oci.project={}", project.canonicalize().expect("canonical").display());
    let ids = docker_ok(&["ps", "-a", "-q", "--no-trunc", "--filter", ROLE, "--filter", &label]);
    ids.lines().map(str::to_string).collect()
}

/// The one running warm builder of `project`: its id.
pub(crate) fn the_warm_builder(project: &Path) -> String {
    let ids = warm_builders(project);
    assert_eq!(ids.len(), 1, "expected one warm builder of {}: {ids:?}", project.display());
    let running = docker_ok(&["inspect", "-f", "{{.State.Running}}", &ids[0]]);
    assert_eq!(running.trim(), "true", "warm builder {} is not running", ids[0]);
    ids[0].clone()
}

pub(crate) fn set_greeting(project: &Path, greeting: &str) {
    let router = project.join("lib/hello_web/router.ex");
    let src = std::fs::read_to_string(&router).expect("router.ex");
    let start = src.find("{200, \"").expect("the greeting") + "{200, \"".len();
    let end = start + src[start..].find(" from hello_web").expect("the greeting's end");
    std::fs::write(&router, format!("{}{greeting}{}", &src[..start], &src[end..])).expect("write router.ex");
}

pub(crate) fn write(project: &Path, rel: &str, text: &str) {
    let path = project.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A one-line change is built in the same warm builder; a config change and a mix.lock change
/// start a fresh one; every warm image is the cold `--no-cache` build's.
#[test]
fn warm_and_cold_builds_give_the_same_digest() {
    let (project, _stop) = project();
    let p = project.path();
    let (_, first) = warm(p, &[]);
    assert!(first.contains("a new warm builder"), "{first}");
    let builder = the_warm_builder(p);

    set_greeting(p, "warm code change");
    let (digest, log) = warm(p, &[]);
    assert!(log.contains("in the warm builder"), "the code change did not go to the warm builder:\n{log}");
    assert_eq!(the_warm_builder(p), builder, "a code change replaced the warm builder");
    assert_eq!(digest, cold(p, &[]), "code change: the warm build's image is not the cold build's");

    write(p, "config/config.exs", "import Config\nconfig :hello_web, greeting_source: :config\n");
    let (digest, log) = warm(p, &[]);
    assert!(log.contains("a new warm builder"), "a config change kept the warm builder:\n{log}");
    let after_config = the_warm_builder(p);
    assert_ne!(after_config, builder);
    assert_eq!(digest, cold(p, &[]), "config change: the warm build's image is not the cold build's");

    write(p, "mix.lock", "%{}\n");
    let (digest, log) = warm(p, &[]);
    assert!(log.contains("a new warm builder"), "a mix.lock change kept the warm builder:\n{log}");
    assert_ne!(the_warm_builder(p), after_config);
    assert_eq!(digest, cold(p, &[]), "mix.lock change: the warm build's image is not the cold build's");
}

/// Another builder image (here the same files under a new image id) gets a warm builder of its
/// own image: never the old one's.
#[test]
fn a_builder_image_change_gets_a_new_warm_builder() {
    let (project, _stop) = project();
    let p = project.path();
    warm(p, &[]);
    let old = the_warm_builder(p);
    let old_image = docker_ok(&["inspect", "-f", "{{.Image}}", &old]).trim().to_string();

    let tag = format!("release-oci-test/warm-builder:{}", std::process::id());
    let base = docker_ok(&["create", "release-oci/builder:debian-bookworm", "true"]).trim().to_string();
    let change = format!("LABEL org.release-oci.test.warm={}", std::process::id());
    docker_ok(&["commit", "--change", &change, &base, &tag]);
    docker_ok(&["rm", &base]);
    let new_image = docker_ok(&["image", "inspect", "-f", "{{.Id}}", &tag]).trim().to_string();
    assert_ne!(new_image, old_image);

    let image = ["--builder-image", tag.as_str()];
    let (digest, log) = warm(p, &image);
    assert!(log.contains("a new warm builder"), "{log}");
    let new = the_warm_builder(p);
    assert_ne!(new, old, "the warm builder of the old image served the new one");
    assert_eq!(docker_ok(&["inspect", "-f", "{{.Image}}", &new]).trim(), new_image);
    assert_eq!(digest, cold(p, &image), "the warm build's image is not the cold build's");
    drop(_stop);
    let _ = docker(&["image", "rm", &tag]);
}

/// Two projects each have their own warm builder, and a build of one leaves the other's alone.
#[test]
fn two_projects_keep_separate_warm_builders() {
    let (one, _stop_one) = project();
    let (two, _stop_two) = project();
    warm(one.path(), &[]);
    // The second one's by its settings file's keys rather than the flags.
    write(two.path(), "release-oci.toml", "warm_builder = true\nwarm_builder_idle = \"10m\"\n");
    let (_, log) = build(two.path(), &[]);
    assert!(log.contains("a new warm builder"), "warm_builder = true made no warm builder:\n{log}");
    let (a, b) = (the_warm_builder(one.path()), the_warm_builder(two.path()));
    assert_ne!(a, b);
    set_greeting(one.path(), "one");
    let (_, log) = warm(one.path(), &[]);
    assert!(log.contains("in the warm builder"), "{log}");
    assert_eq!(the_warm_builder(one.path()), a);
    assert_eq!(the_warm_builder(two.path()), b, "a build of one project replaced the other's warm builder");
}

/// A killed warm builder is replaced by a new one, and the build gives the cold build's image.
#[test]
fn a_killed_warm_builder_is_replaced() {
    let (project, _stop) = project();
    let p = project.path();
    warm(p, &[]);
    let killed = the_warm_builder(p);
    docker_ok(&["kill", &killed]);
    set_greeting(p, "after the kill");
    let (digest, log) = warm(p, &[]);
    assert!(log.contains("a new warm builder"), "the killed warm builder was not replaced:\n{log}");
    assert_ne!(the_warm_builder(p), killed);
    assert_eq!(digest, cold(p, &[]));
}

/// After its idle time the warm builder ends and the engine removes it.
#[test]
fn a_warm_builder_is_gone_after_its_idle_time() {
    let (project, _stop) = project();
    let p = project.path();
    // Long enough for the build's own work after the exec (the image, under load) and the check.
    build(p, &["--warm-builder", "--warm-builder-idle", "10s"]);
    the_warm_builder(p);
    let deadline = Instant::now() + Duration::from_secs(70);
    while !warm_builders(p).is_empty() {
        assert!(Instant::now() < deadline, "the warm builder is still there 70 s after a 10 s idle time");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `builder ls` shows the warm builder, `cache prune` removes it (and then its volume);
/// `builder stop` removes a new one.
#[test]
fn cache_prune_and_builder_stop_remove_the_warm_builder() {
    let (project, _stop) = project();
    let p = project.path();
    warm(p, &[]);
    let id = the_warm_builder(p);
    let name = docker_ok(&["inspect", "-f", "{{.Name}}", &id]).trim().trim_start_matches('/').to_string();
    let mut c = release_oci();
    c.args(["builder", "ls", "--project"]).arg(p);
    let listed = ok(c);
    assert!(listed.starts_with(&format!("{name}\t")) && listed.contains("\trunning\t"), "{listed}");

    let mut c = release_oci();
    c.args(["cache", "prune", "--project"]).arg(p);
    let pruned = ok(c);
    assert!(pruned.contains(&format!("removed warm builder {name}")), "{pruned}");
    assert!(pruned.contains("removed release-oci-cache-"), "its volume was kept:\n{pruned}");
    assert_eq!(warm_builders(p), Vec::<String>::new());

    warm(p, &[]);
    the_warm_builder(p);
    let mut c = release_oci();
    c.args(["builder", "stop", "--project"]).arg(p);
    assert!(ok(c).contains(&format!("removed warm builder {name}")));
    assert_eq!(warm_builders(p), Vec::<String>::new());
}

/// SIGINT while a build runs in the warm builder: exit 130, no output written, and the warm
/// builder removed (its build cannot be stopped alone), so the next build starts a fresh one.
#[test]
fn a_signal_during_a_warm_build_removes_the_warm_builder_and_writes_nothing() {
    let (project, _stop) = project();
    let p = project.path();
    warm(p, &[]);
    let builder = the_warm_builder(p);
    write(p, "lib/slow.ex", "defmodule Slow do\n  Process.sleep(60_000)\nend\n");
    let out = p.join("out");
    let mut c = release_oci();
    c.arg("build").arg(p).args(["--warm-builder", "--warm-builder-idle", "10m", "--output"]);
    c.arg(format!("oci:{}", out.display())).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = c.spawn().expect("spawn");
    // The build runs once its directory is in the warm builder.
    let deadline = Instant::now() + Duration::from_secs(60);
    while docker_ok(&["exec", &builder, "ls", "/build/req"]).trim().is_empty() {
        assert!(Instant::now() < deadline, "no build started in warm builder {builder}");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let sent = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(sent.success());
    let o = crate::interrupt::wait_at_most(child, Duration::from_secs(60));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("(builder container release-oci-warm-"), "{err}");
    assert!(!out.exists(), "an interrupted warm build wrote {}", out.display());
    assert_eq!(warm_builders(p), Vec::<String>::new(), "the interrupted warm builder is still there");
}

/// Changes to sources the builder no longer has (here its kept sources' token removed, as in a
/// volume made again): the build script refuses them and the build runs cold, into the cold
/// build's image; the next warm build sends the whole sources, the one after only the changes.
#[test]
fn changes_to_sources_the_builder_does_not_have_build_cold() {
    let (project, _stop) = project();
    let p = project.path();
    warm(p, &[]);
    set_greeting(p, "sent as a change");
    let (_, log) = warm(p, &[]);
    assert!(log.contains("==> sources: 1 changed files received, 0 gone"), "{log}");
    let builder = the_warm_builder(p);
    docker_ok(&["exec", "-u", "10001:10001", &builder, "rm", "/build/cache/src.base.token"]);
    set_greeting(p, "refused change");
    let (digest, log) = warm(p, &[]);
    assert!(log.contains("does not have the sources the changes sent apply to"), "{log}");
    assert!(log.contains("building without the warm builder"), "{log}");
    assert_eq!(digest, cold(p, &[]), "the refused change's image is not the cold build's");
    set_greeting(p, "whole again");
    let (digest, log) = warm(p, &[]);
    assert!(log.contains("in the warm builder") && !log.contains("changed files received"), "{log}");
    assert_eq!(digest, cold(p, &[]), "the whole sources' image is not the cold build's");
    set_greeting(p, "a change again");
    let (digest, log) = warm(p, &[]);
    assert!(log.contains("==> sources: 1 changed files received, 0 gone"), "{log}");
    assert_eq!(digest, cold(p, &[]), "the change's image is not the cold build's");
}
