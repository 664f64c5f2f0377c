//! Helpers of the tests of project kinds (umbrella, rebar3, prebuilt releases, release-oci.toml).

#![allow(dead_code)]

use crate::util::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// The manifest of the image tagged `tag` in the layout at `dir`.
pub fn tagged_manifest(dir: &Path, tag: &str) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json")).expect("json");
    let entry = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no image tagged {tag} in {index}"))
        .clone();
    blob_json(dir, entry["digest"].as_str().expect("digest"))
}

/// The ref names of the images in the layout at `dir`, sorted.
pub fn layout_tags(dir: &Path) -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json")).expect("json");
    let mut tags: Vec<String> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().map(str::to_string))
        .collect();
    tags.sort();
    tags
}

/// The paths in the layer release-oci called `name` (history `release-oci: NAME`) of `manifest`;
/// None when the image has no such layer.
pub fn named_layer(dir: &Path, manifest: &serde_json::Value, name: &str) -> Option<Vec<String>> {
    let digest = named_layer_digest(dir, manifest, name)?;
    Some(layer_paths(dir, &digest))
}

/// The digest of the layer release-oci called `name` in `manifest`.
pub fn named_layer_digest(dir: &Path, manifest: &serde_json::Value, name: &str) -> Option<String> {
    let config = blob_json(dir, manifest["config"]["digest"].as_str().expect("config digest"));
    let names: Vec<String> = config["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["empty_layer"] != serde_json::Value::Bool(true))
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_string())
        .collect();
    let i = names.iter().position(|n| n == &format!("release-oci: {name}"))?;
    let layers = manifest["layers"].as_array().expect("layers");
    Some(layers[i]["digest"].as_str().expect("digest").to_string())
}

/// Waits until the container's log contains `needle` (the application is up: a SIGTERM sent
/// while the BEAM still boots is lost).
pub fn wait_for_log(c: &Container, needle: &str, wait: Duration) {
    let deadline = Instant::now() + wait;
    loop {
        let logs = c.logs();
        if logs.contains(needle) {
            return;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in the log of {} within {wait:?}:\n{logs}", c.id);
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The engine's view of an image's config (`docker image inspect`).
pub fn engine_config(tag: &str) -> serde_json::Value {
    let out = docker_ok(&["image", "inspect", "-f", "{{json .Config}}", tag]);
    serde_json::from_str(out.trim()).expect("config json")
}

/// Removes the images tagged `tags` from the engine (at the end of a test).
pub fn remove_images(tags: &[&str]) {
    for t in tags {
        let _ = docker(&["rmi", "-f", t]);
    }
}
