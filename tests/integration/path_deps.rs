//! A project with in-repo path dependencies: they get their own `deps` layer, and the image runs.

use crate::util::*;
use std::time::Duration;

#[test]
fn path_deps_go_into_the_deps_layer_and_the_image_runs() {
    let b = path_deps();
    let m = layout_manifest(&b.layout());
    let cfg = layout_config(&b.layout());
    let names: Vec<String> = cfg["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["empty_layer"] != serde_json::Value::Bool(true))
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_string())
        .collect();
    let layers = m["layers"].as_array().expect("layers");
    let find = |name: &str| -> Vec<String> {
        let i = names
            .iter()
            .position(|n| n == &format!("release-oci: {name}"))
            .unwrap_or_else(|| panic!("no {name} layer in {names:?}"));
        layer_paths(&b.layout(), layers[i]["digest"].as_str().expect("digest"))
    };
    let deps = find("deps");
    assert!(deps.iter().any(|p| p.starts_with("app/lib/greeting-")), "{deps:?}");
    assert!(deps.iter().any(|p| p.starts_with("app/lib/counter-")), "{deps:?}");
    let app = find("app");
    assert!(app.iter().any(|p| p.starts_with("app/lib/path_deps-")), "{app:?}");
    assert!(!app.iter().any(|p| p.starts_with("app/lib/greeting-")), "{app:?}");
    let otp = find("otp");
    assert!(otp.iter().any(|p| p.starts_with("app/lib/kernel-")), "{otp:?}");
    assert!(otp.iter().any(|p| p.starts_with("app/lib/elixir-")), "{otp:?}");

    let c = Container::start(&["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"], &b.tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(60));
    assert_eq!(status, 200, "{body}");
    let (code, _) = c.stop(10);
    assert_eq!(code, 0, "{}", c.logs());
}
