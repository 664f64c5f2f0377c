//! The image recipes' shared helpers (`base-images/lib.sh`), run with bash and stubs: no Docker,
//! no apt, no network. A step whose command fails must stop the recipe with the step's name,
//! and a source package whose newest version cannot be downloaded must come from the suite.

use std::path::Path;
use std::process::{Command, Output};

const LIB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/base-images/lib.sh");

/// Runs `script` in bash with lib.sh sourced, `log` defined and RUN_LOGS in `dir`.
fn recipe(dir: &Path, script: &str) -> Output {
    let prelude = format!(
        "set -euo pipefail\nlog() {{ printf '[test] %s\\n' \"$*\" >&2; }}\nRUN_LOGS={logs}\nsource {LIB}\ncd {dir}\n",
        logs = dir.join("logs").display(),
        dir = dir.display(),
    );
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    Command::new("bash").arg("-c").arg(format!("{prelude}{script}")).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_failing_first_command_stops_the_step_and_the_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let out = recipe(dir.path(), "step() { false; touch went-on; }\nrun compile step\necho after-the-step\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("compile failed (exit 1; full log: "), "stderr: {stderr}");
    assert!(!dir.path().join("went-on").exists(), "the step went on after `false`");
    assert!(!text(&out.stdout).contains("after-the-step"), "the recipe went on");
}

#[test]
fn a_failed_cd_does_not_run_the_rest_of_the_step_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        recipe(dir.path(), "step() { echo building; cd ./no-such-source; touch installed-here; }\nrun zlib step\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("zlib failed"), "stderr: {stderr}");
    // The log's tail comes with the failure.
    assert!(stderr.contains("building"), "stderr: {stderr}");
    assert!(!dir.path().join("installed-here").exists());
}

#[test]
fn a_failure_inside_a_pipeline_fails_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = recipe(dir.path(), "step() { false | cat; touch went-on; }\nrun strip step\n");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert!(!dir.path().join("went-on").exists());
}

#[test]
fn a_step_that_succeeds_lets_the_recipe_go_on_and_repeats_its_notes() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        recipe(dir.path(), "step() { echo 'note: used 1.2.3'; touch done; }\nrun fetch step\necho after-the-step\n");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(dir.path().join("done").exists());
    assert!(text(&out.stdout).contains("after-the-step"));
    assert!(stderr.contains("[test] fetch: used 1.2.3"), "stderr: {stderr}");
}

/// A stub for `apt-get source --download-only SPEC`: SPEC without a suite fails like a 404 from
/// the security archive (after leaving a partial file) for the packages in $BROKEN; otherwise it
/// writes a .dsc whose version says which was asked for.
const STUB_APT: &str = r#"
stub_apt() {
  local spec=${@: -1} pkg
  pkg=${spec%%/*}
  case " $BROKEN " in
    *" $spec "*) : >"${pkg}_9.9-1+deb12u1.orig.tar.gz.partial"; echo "E: 404 Not Found" >&2; return 100 ;;
  esac
  case $spec in
    */*) printf 'Source: %s\nVersion: 1.0-1\n' "$pkg" >"${pkg}_1.0-1.dsc" ;;
    *) printf 'Source: %s\nVersion: 1.0-1+deb12u1\n' "$pkg" >"${pkg}_1.0-1+deb12u1.dsc" ;;
  esac
}
APT=(stub_apt)
"#;

#[test]
fn a_source_whose_update_cannot_be_downloaded_comes_from_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let script =
        format!("{STUB_APT}BROKEN=zlib\nstep() {{ fetch_source bookworm erlang zlib; }}\nrun sources step\nls\n");
    let out = recipe(dir.path(), &script);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(stderr.contains("sources: source erlang 1.0-1+deb12u1 (newest)"), "stderr: {stderr}");
    assert!(stderr.contains("sources: source zlib 1.0-1 (bookworm's own"), "stderr: {stderr}");
    let files = text(&out.stdout);
    assert!(files.contains("zlib_1.0-1.dsc"), "files: {files}");
    assert!(!files.contains("partial"), "the failed download's files stayed: {files}");
}

#[test]
fn a_source_with_no_version_at_all_fails_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "{STUB_APT}BROKEN='zlib zlib/bookworm'\nstep() {{ fetch_source bookworm zlib openssl; touch went-on; }}\nrun sources step\n"
    );
    let out = recipe(dir.path(), &script);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("sources failed"), "stderr: {stderr}");
    assert!(stderr.contains("trying bookworm's own version"), "stderr: {stderr}");
    assert!(!dir.path().join("went-on").exists());
    assert!(!dir.path().join("openssl_1.0-1+deb12u1.dsc").exists());
}
