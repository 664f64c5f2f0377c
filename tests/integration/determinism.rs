//! Two builds of the same source give the same digest; a one-line change in the app alters only
//! the `app` and `release` layers.

use crate::util::*;

fn build_layout(project: &std::path::Path) -> (String, tempfile::TempDir) {
    let out = crate::util::tempdir().expect("tempdir");
    let mut c = release_oci();
    c.arg("build").arg(project).arg("--output").arg(format!("oci:{}", out.path().display())).args(["--port", "4000"]);
    (ok(c).trim().to_string(), out)
}

fn diff_ids(dir: &std::path::Path) -> Vec<String> {
    let cfg = layout_config(dir);
    cfg["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

fn history_names(dir: &std::path::Path) -> Vec<String> {
    let cfg = layout_config(dir);
    cfg["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["empty_layer"] != serde_json::Value::Bool(true))
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn same_source_same_digest_and_one_line_change_touches_only_app_and_release() {
    require_docker();
    let b = hello();
    // A second, independent build from another copy of the same source.
    let again = copy_example("hello_web");
    let (digest, out) = build_layout(again.path());
    assert_eq!(digest, b.digest, "two builds of the same source differ");

    // One line changed in the app's code.
    let router = again.path().join("lib/hello_web/router.ex");
    let src = std::fs::read_to_string(&router).expect("router");
    std::fs::write(&router, src.replace("hello from hello_web", "hi from hello_web")).expect("write");
    let (changed, out2) = build_layout(again.path());
    assert_ne!(changed, digest);

    let (before, after) = (diff_ids(out.path()), diff_ids(out2.path()));
    let names = history_names(out.path());
    assert_eq!(before.len(), after.len());
    assert_eq!(names.len(), before.len());
    let differing: Vec<&str> =
        before.iter().zip(&after).zip(&names).filter(|((a, b), _)| a != b).map(|(_, n)| n.as_str()).collect();
    assert!(differing.contains(&"release-oci: app"), "the app layer did not change: {differing:?}");
    assert!(
        differing.iter().all(|n| *n == "release-oci: app" || *n == "release-oci: release"),
        "layers other than app and release changed: {differing:?}"
    );
}
