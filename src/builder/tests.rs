//! Builder tests. Those named `docker_*` need the Docker engine and the local
//! `release-oci/builder:debian-bookworm` image, and fail (never skip) without them; `host_*` need
//! Elixir (and rebar3) on the host. Both are integration tests: they and their helpers exist only
//! with `--features integration`; the rest are pure.

use super::*;
#[cfg(feature = "integration")]
use bollard::query_parameters::ListContainersOptions;
#[cfg(feature = "integration")]
use std::collections::HashMap;
use std::fs;
#[cfg(feature = "integration")]
use std::time::{Duration, Instant};

#[cfg(feature = "integration")]
const BUILDER_IMAGE: &str = "release-oci/builder:debian-bookworm";

/// A tiny Mix project `tiny` with a path dependency `helper` inside it; `broken` adds a compile
/// error.
#[cfg(feature = "integration")]
fn tiny_project(broken: bool) -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    write(
        "mix.exs",
        r#"defmodule Tiny.MixProject do
  use Mix.Project
  def project, do: [app: :tiny, version: "0.1.0", deps: [{:helper, path: "vendor/helper"}]]
  def application, do: [extra_applications: [:logger]]
end
"#,
    );
    let body = if broken { "def hello, do: no_such_function_here()" } else { "def hello, do: Helper.world()" };
    write("lib/tiny.ex", &format!("defmodule Tiny do\n  {body}\nend\n"));
    write(
        "vendor/helper/mix.exs",
        "defmodule Helper.MixProject do\n  use Mix.Project\n  def project, do: [app: :helper, version: \"0.2.0\"]\nend\n",
    );
    write("vendor/helper/lib/helper.ex", "defmodule Helper do\n  def world, do: :world\nend\n");
    // Left out of the sources: must not break or leak into the build.
    write("_build/prod/lib/tiny/ebin/garbage.beam", "not a beam");
    let project = Project::open(dir.path()).unwrap();
    (dir, project)
}

/// The tiny project with a module whose compile sleeps a minute: its build outlasts a timeout or
/// a signal sent a second after its container started, whatever the machine's speed.
#[cfg(feature = "integration")]
fn slow_tiny_project() -> (tempfile::TempDir, Project) {
    let (dir, _) = tiny_project(false);
    fs::write(dir.path().join("lib/slow.ex"), "defmodule Slow do\n  Process.sleep(60_000)\nend\n").unwrap();
    let project = Project::open(dir.path()).unwrap();
    (dir, project)
}

#[cfg(feature = "integration")]
fn request(project: Project, image: &str, pull: PullPolicy) -> BuildRequest {
    BuildRequest {
        project,
        sources: None,
        triple: "x86_64-unknown-linux-gnu".parse().unwrap(),
        mix_env: "prod".into(),
        profile: "prod".into(),
        release: None,
        builder_image: image.into(),
        pull,
        minimal_base: None,
        cache: false,
        started: None,
        restore: None,
        timeout: None,
        limits: Limits::default(),
        inputs: Default::default(),
    }
}

/// Builds with nothing to stop it (the process's signals are not listened for: other tests raise
/// them).
#[cfg(feature = "integration")]
async fn assemble(docker: &bollard::Docker, req: &BuildRequest) -> Result<Assembled, BuilderError> {
    docker::assemble_until(docker, req, std::future::pending()).await
}

#[cfg(feature = "integration")]
async fn docker() -> bollard::Docker {
    match docker::connect().await {
        Ok(d) => d,
        Err(e) => panic!("these tests need the Docker engine: {e}"),
    }
}

/// Builder containers with this name that still exist.
#[cfg(feature = "integration")]
async fn leftovers(docker: &bollard::Docker, name: &str) -> Vec<String> {
    let filters = HashMap::from([
        ("label".to_string(), vec![format!("{ROLE_LABEL}={ROLE_BUILDER}")]),
        ("name".to_string(), vec![name.to_string()]),
    ]);
    let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    let list = docker.list_containers(Some(options)).await.unwrap();
    list.into_iter().filter_map(|c| c.id).collect()
}

#[cfg(feature = "integration")]
fn check_assembled(a: &Assembled) {
    assert_eq!(a.release_name, "tiny");
    assert!(a.release_dir.join("bin/tiny").is_file());
    assert!(a.release_dir.join("releases/start_erl.data").is_file());
    assert!(a.release_dir.join("lib/helper-0.2.0/ebin/Elixir.Helper.beam").is_file());
    let erts =
        fs::read_dir(&a.release_dir).unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with("erts-"));
    assert!(erts, "no erts-* in {}", a.release_dir.display());
    assert_eq!(a.own_apps, BTreeSet::from(["tiny".to_string()]));
    assert_eq!(a.dep_apps, BTreeSet::from(["helper".to_string()]));
    let garbage = a.release_dir.join("lib/tiny-0.1.0/ebin/garbage.beam");
    assert!(!garbage.exists(), "the project's _build leaked into the release");
    let bin = fs::read(&a.tini).unwrap();
    let elf = goblin::elf::Elf::parse(&bin).expect("tini is not an ELF");
    assert_eq!(elf.interpreter, None, "tini is not static");
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(fs::metadata(&a.tini).unwrap().permissions().mode() & 0o111, 0);
}

#[cfg(feature = "integration")]
#[tokio::test(flavor = "multi_thread")]
async fn docker_assembles_a_tiny_project() {
    let docker = docker().await;
    let (_dir, project) = tiny_project(false);
    let start = Instant::now();
    let assembled = assemble(&docker, &request(project, BUILDER_IMAGE, PullPolicy::Never)).await.unwrap();
    eprintln!("docker build took {:?}", start.elapsed());
    check_assembled(&assembled);
    assert!(assembled.builder_image_id.as_deref().unwrap().starts_with("sha256:"));
    let dir = assembled.release_dir.clone();
    drop(assembled);
    assert!(!dir.exists(), "the temporary directory outlived Assembled");
}

#[cfg(feature = "integration")]
#[tokio::test(flavor = "multi_thread")]
async fn docker_build_failure_reports_log_and_leaves_no_container() {
    let docker = docker().await;
    let (_dir, project) = tiny_project(true);
    let err = assemble(&docker, &request(project, BUILDER_IMAGE, PullPolicy::Never)).await.unwrap_err();
    let BuilderError::BuildFailed { container, image, exit_code, log_tail } = &err else {
        panic!("expected BuildFailed, got {err}")
    };
    assert_ne!(*exit_code, 0);
    assert_eq!(image, BUILDER_IMAGE);
    assert!(container.starts_with("release-oci-build-"), "{container}");
    assert!(log_tail.iter().any(|l| l.contains("no_such_function_here")), "{log_tail:#?}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("exit code {exit_code}")) && msg.contains("  │ "), "{msg}");
    assert_eq!(leftovers(&docker, container).await, Vec::<String>::new());
}

#[cfg(feature = "integration")]
#[tokio::test(flavor = "multi_thread")]
async fn docker_missing_image_is_named() {
    let docker = docker().await;
    let (_dir, project) = tiny_project(false);
    let image = "release-oci/no-such-builder:nope";
    let err = assemble(&docker, &request(project, image, PullPolicy::Never)).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, BuilderError::ImageMissing { .. }), "{msg}");
    assert!(
        msg.contains(image) && msg.contains("base-images/build-local.sh") && msg.contains("--builder-image"),
        "{msg}"
    );
}

#[cfg(feature = "integration")]
#[tokio::test(flavor = "multi_thread")]
async fn docker_missing_image_that_cannot_be_pulled_is_named() {
    let docker = docker().await;
    let (_dir, project) = tiny_project(false);
    // A registry that refuses the connection: the pull fails at once, and nothing is fetched.
    let image = "127.0.0.1:9/release-oci-test/no-such-builder:nope";
    let err = assemble(&docker, &request(project, image, PullPolicy::Missing)).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, BuilderError::ImageMissing { .. }), "{msg}");
    assert!(msg.contains(image) && msg.contains("pulling it") && msg.contains("base-images/build-local.sh"), "{msg}");
}

/// Regression: release-oci's own image names were pulled (from Docker Hub) when missing.
#[cfg(feature = "integration")]
#[tokio::test(flavor = "multi_thread")]
async fn docker_missing_own_image_is_not_pulled_even_when_pulling_is_allowed() {
    let docker = docker().await;
    let (_dir, project) = tiny_project(false);
    let image = "release-oci/no-such-builder:nope";
    let err = assemble(&docker, &request(project, image, PullPolicy::Missing)).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, BuilderError::ImageMissing { .. }), "{msg}");
    assert!(msg.contains("never pulled") && msg.contains("make setup") && !msg.contains("pulling it"), "{msg}");
}

#[cfg(feature = "integration")]
#[tokio::test(flavor = "multi_thread")]
async fn docker_interrupt_removes_the_container() {
    let docker = docker().await;
    let (_dir, project) = slow_tiny_project();
    let req = request(project, BUILDER_IMAGE, PullPolicy::Never);
    // Interrupt once this build's container runs (found by its project label: tests run
    // concurrently in one process, so the pid label is shared).
    let project_label = format!("org.release-oci.project={}", req.project.root.display());
    let interrupt = async {
        let filters = HashMap::from([("label".to_string(), vec![project_label.clone()])]);
        loop {
            let options = ListContainersOptions { filters: Some(filters.clone()), ..Default::default() };
            if !docker.list_containers(Some(options)).await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        crate::cancel::StopSignal::Term
    };
    let err = docker::assemble_until(&docker, &req, interrupt).await.unwrap_err();
    let BuilderError::Interrupted { signal, container: Some(name) } = &err else {
        panic!("expected Interrupted, got {err}")
    };
    assert_eq!(*signal, crate::cancel::StopSignal::Term);
    assert!(err.to_string().starts_with("interrupted by SIGTERM (builder container"), "{err}");
    assert_eq!(leftovers(&docker, name).await, Vec::<String>::new());
}

#[cfg(feature = "integration")]
#[tokio::test(flavor = "multi_thread")]
async fn docker_timeout_stops_and_removes_the_container() {
    let docker = docker().await;
    let (_dir, project) = slow_tiny_project();
    let mut req = request(project, BUILDER_IMAGE, PullPolicy::Never);
    req.timeout = Some(Duration::from_millis(1500));
    let start = Instant::now();
    let err = assemble(&docker, &req).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(30), "took {:?}", start.elapsed());
    let BuilderError::TimedOut { container, timeout, removed: true } = &err else {
        panic!("expected TimedOut, got {err}")
    };
    assert_eq!(*timeout, Duration::from_millis(1500));
    let msg = err.to_string();
    assert!(msg.contains("--timeout 1500ms") && msg.contains(container.as_str()), "{msg}");
    assert_eq!(leftovers(&docker, container).await, Vec::<String>::new());
}

#[cfg(feature = "integration")]
#[test]
fn host_assembles_a_tiny_project() {
    let (dir, project) = tiny_project(false);
    let start = Instant::now();
    let assembled = host::assemble(&request(project, "unused", PullPolicy::Never)).unwrap();
    eprintln!("host build took {:?}", start.elapsed());
    check_assembled(&assembled);
    assert_eq!(assembled.builder_image_id, None);
    // The project's own _build is untouched.
    assert!(!dir.path().join("_build/prod/rel").exists());
    assert!(!dir.path().join("deps").exists());
}

/// Needs rebar3 on the host (scripts/setup.sh installs Debian's escript).
#[cfg(feature = "integration")]
#[test]
fn host_assembles_a_rebar3_project() {
    let project = Project::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/rebar3_web")).unwrap();
    assert_eq!(project.kind(), crate::project::ProjectKind::Rebar3);
    let mut req = request(project.clone(), "unused", PullPolicy::Never);
    req.profile = "prod".into();
    let a = host::assemble(&req).unwrap();
    assert_eq!(a.releases.len(), 1);
    assert_eq!(a.release_name, "rebar3_web");
    let script = fs::read_to_string(a.release_dir.join("bin/rebar3_web")).unwrap();
    assert!(script.contains("RELX_"), "not a relx start script");
    assert!(a.release_dir.join("releases/0.1.0/sys.config.src").is_file());
    assert!(
        fs::read_dir(&a.release_dir).unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with("erts-"))
    );
    assert_eq!(a.own_apps, BTreeSet::from(["rebar3_web".to_string()]));
    assert!(a.dep_apps.is_empty(), "{:?}", a.dep_apps);
    // The example's own tree is not the build directory.
    assert!(!project.root.join("_build").exists());
}

/// Two releases and `default_release`: without --release the default one is assembled, into
/// `OUT/rel`; a name mix does not know is refused with the list of releases.
#[cfg(feature = "integration")]
#[test]
fn host_picks_the_default_release_and_refuses_unknown_ones() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("mix.exs"),
        r#"defmodule Two.MixProject do
  use Mix.Project
  def project do
    [app: :two, version: "0.3.0", default_release: :second,
     releases: [first: [include_executables_for: [:unix]], second: [include_executables_for: [:unix]]]]
  end
end
"#,
    )
    .unwrap();
    let project = Project::open(dir.path()).unwrap();
    let a = host::assemble(&request(project.clone(), "unused", PullPolicy::Never)).unwrap();
    let names: Vec<&str> = a.releases.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["second"]);
    assert!(a.release_dir.join("bin/second").is_file());
    let mut req = request(project, "unused", PullPolicy::Never);
    req.release = Some("third".into());
    let e = host::assemble(&req).unwrap_err().to_string();
    assert!(e.contains("unknown release third; the releases are: first, second"), "{e}");
}

/// A rebar3 project with two project apps (`apps/*`) and a dependency from `_checkouts`.
#[cfg(feature = "integration")]
#[test]
fn host_rebar3_project_apps_are_own_and_checkouts_are_deps() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    write(
        "rebar.config",
        "{deps, [helper]}.\n{relx, [{release, {multi, \"1.0.0\"}, [web, core, helper]}, {mode, prod}]}.\n",
    );
    for (app, path) in [("web", "apps/web"), ("core", "apps/core"), ("helper", "_checkouts/helper")] {
        write(
            &format!("{path}/src/{app}.app.src"),
            &format!("{{application, {app}, [{{vsn, \"0.1.0\"}}, {{applications, [kernel, stdlib]}}]}}.\n"),
        );
        write(&format!("{path}/src/{app}.erl"), &format!("-module({app}).\n-export([x/0]).\nx() -> ok.\n"));
    }
    let project = Project::open(dir.path()).unwrap();
    let a = host::assemble(&request(project, "unused", PullPolicy::Never)).unwrap();
    assert_eq!(a.release_name, "multi");
    assert_eq!(a.own_apps, BTreeSet::from(["core".to_string(), "web".to_string()]));
    assert_eq!(a.dep_apps, BTreeSet::from(["helper".to_string()]));
    assert!(a.release_dir.join("lib/helper-0.1.0/ebin/helper.beam").is_file());
}

#[cfg(feature = "integration")]
#[test]
fn host_build_failure_carries_the_log() {
    let (_dir, project) = tiny_project(true);
    let err = host::assemble(&request(project, "unused", PullPolicy::Never)).unwrap_err();
    let BuilderError::HostBuildFailed { exit_code, log_tail } = &err else {
        panic!("expected HostBuildFailed, got {err}")
    };
    assert_ne!(*exit_code, Some(0));
    assert!(log_tail.iter().any(|l| l.contains("no_such_function_here")), "{log_tail:#?}");
}

#[test]
fn parses_the_apps_file() {
    let (own, deps) = parse_apps("own a\nown b\ndep c\n\n").unwrap();
    assert_eq!(own, BTreeSet::from(["a".into(), "b".into()]));
    assert_eq!(deps, BTreeSet::from(["c".into()]));
    assert!(parse_apps("dep c\n").unwrap_err().contains("none of the project's own"));
    assert!(parse_apps("own a\nCompiling 1 file\n").unwrap_err().contains("Compiling 1 file"));
}

#[test]
fn release_name_comes_from_the_rel_file() {
    let dir = tempfile::tempdir().unwrap();
    let rel = dir.path();
    assert!(matches!(release_name(rel), Err(BuilderError::Io { .. })));
    assert!(matches!(read_releases(rel), Err(BuilderError::Output { .. })));
    fs::create_dir_all(rel.join("releases/1.2.3")).unwrap();
    fs::write(rel.join("releases/start_erl.data"), "13.1.5 1.2.3\n").unwrap();
    fs::write(rel.join("releases/1.2.3/my_app.rel"), "").unwrap();
    fs::write(rel.join("releases/1.2.3/start.boot"), "").unwrap();
    assert_eq!(release_name(rel).unwrap(), "my_app");
}

#[test]
fn several_releases_sit_in_subdirectories() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b_rel", "a_rel"] {
        let rel = dir.path().join(name);
        fs::create_dir_all(rel.join("releases/0.1.0")).unwrap();
        fs::create_dir_all(rel.join("bin")).unwrap();
        fs::write(rel.join("releases/start_erl.data"), "13.1.5 0.1.0\n").unwrap();
        fs::write(rel.join(format!("releases/0.1.0/{name}.rel")), "").unwrap();
        fs::write(rel.join(format!("bin/{name}")), "").unwrap();
    }
    let found = read_releases(dir.path()).unwrap();
    let names: Vec<&str> = found.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a_rel", "b_rel"]);
    assert_eq!(found[0].dir, dir.path().join("a_rel"));
    // One release directly in rel/ is the release itself.
    let one = read_releases(&dir.path().join("b_rel")).unwrap();
    assert_eq!(one, [AssembledRelease { name: "b_rel".into(), dir: dir.path().join("b_rel") }]);
}

#[test]
fn build_failed_shows_code_and_tail() {
    let e = BuilderError::BuildFailed {
        container: "release-oci-build-1".into(),
        image: "img".into(),
        exit_code: 2,
        log_tail: vec!["a".into(), "** (CompileError) b".into()],
    };
    let msg = e.to_string();
    assert!(msg.contains("exit code 2") && msg.contains("release-oci-build-1") && msg.contains("img"), "{msg}");
    assert!(msg.ends_with("  │ a\n  │ ** (CompileError) b"), "{msg}");
}

#[test]
fn the_mix_task_fits_in_its_single_quoted_shell_string() {
    let exs = include_str!("assemble_mix.exs");
    assert!(!exs.contains('\''), "assemble_mix.exs must not contain a single quote");
    let server = include_str!("warm/mix_server.exs");
    assert!(!server.contains('\''), "warm/mix_server.exs must not contain a single quote");
    assert!(ASSEMBLE_SH.contains(&format!("{exs}{server}'\n")));
    assert!(ASSEMBLE_SH.starts_with("MIX_TASK='# assemble_mix.exs"));
    assert!(ASSEMBLE_SH.contains("defmodule Mix.Tasks.ReleaseOci.Assemble do"));
}

#[test]
fn the_elf_grouping_fits_in_its_single_quoted_shell_string() {
    let pl = include_str!("elf_groups.pl");
    assert!(!pl.contains('\''), "elf_groups.pl must not contain a single quote");
    assert!(ASSEMBLE_SH.contains(&format!("ELF_GROUPS_PL='{pl}'\n")));
    assert!(ASSEMBLE_SH.find("ELF_GROUPS_PL=") < ASSEMBLE_SH.find("# --- minimal_base.sh"));
}
