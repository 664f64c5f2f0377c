//! `-q`: a build prints nothing but its result (stdout) and errors, the builder's log included
//! only when the build fails (its last lines); and `--release NAME` for a release the project's
//! files show it does not have fails before any builder runs, listing the releases.

use crate::util::*;

fn quiet_build(project: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut c = release_oci();
    c.args(["-q", "build"]).arg(project).args(["--no-cache", "--output"]);
    c.arg(format!("oci:{}", project.join("out").display())).args(extra);
    run(c)
}

#[test]
fn a_quiet_build_prints_only_the_digest() {
    require_docker();
    let project = copy_example("hello_web");
    let o = quiet_build(project.path(), &[]);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{stderr}");
    assert_eq!(stderr, "", "-q printed on stderr");
    assert!(stdout.starts_with("sha256:") && stdout.lines().count() == 1, "{stdout}");
}

#[test]
fn a_quiet_build_that_fails_shows_the_end_of_the_log() {
    require_docker();
    let project = copy_example("hello_web");
    let broken = "defmodule Broken do\n  def f, do: no_such_function_here()\nend\n";
    std::fs::write(project.path().join("lib/broken.ex"), broken).expect("write");
    let o = quiet_build(project.path(), &[]);
    let stderr = text(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.starts_with("error: the release build failed"), "{stderr}");
    assert!(stderr.contains("last lines of its log") && stderr.contains("no_such_function_here"), "{stderr}");
    // The log once, in the error: not streamed before it.
    assert_eq!(stderr.matches("==> mix release hello_web").count(), 1, "{stderr}");
}

/// Runs `build --release nope` of `project`: its stderr, after checking that it failed before a
/// builder ran.
fn unknown_release(project: &std::path::Path) -> String {
    let mut c = release_oci();
    c.arg("build").arg(project).args(["--no-cache", "--release", "nope"]);
    let o = run(c);
    let stderr = text(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(!stderr.contains("Assembling") && !stderr.contains("│"), "a builder ran:\n{stderr}");
    assert!(stderr.contains("error: --release nope: the project has no such release"), "{stderr}");
    stderr
}

#[test]
fn an_unknown_release_fails_before_the_builder_listing_the_releases() {
    require_docker();
    let hello = copy_example("hello_web");
    let e = unknown_release(hello.path());
    assert!(e.contains("mix.exs configures `releases:`: hello_web"), "{e}");
    // Without `releases:`, the one release is named after the app.
    let mix = hello.path().join("mix.exs");
    let text_now = std::fs::read_to_string(&mix).expect("read");
    let start = text_now.find("releases: [").expect("releases");
    let end = start + text_now[start..].find("\n      ]").expect("end of releases") + "\n      ]".len();
    std::fs::write(&mix, format!("{}{}", &text_now[..start], text_now[end..].trim_start_matches(','))).expect("write");
    let e = unknown_release(hello.path());
    assert!(e.contains("has no `releases:`: its one release is named after `app:`: hello_web"), "{e}");
    let rebar3 = copy_example("rebar3_web");
    let e = unknown_release(rebar3.path());
    assert!(e.contains("rebar.config names these releases in its relx sections: rebar3_web"), "{e}");
    let umbrella = copy_example("umbrella");
    let e = unknown_release(umbrella.path());
    assert!(e.contains("web_only, worker_only"), "{e}");
}
