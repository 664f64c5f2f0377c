//! Checks against a real Docker engine (`cargo test --lib --features integration docker`): an image
//! built on a base from `docker save` is loaded by `docker load` from our archive and runs.

use super::super::*;
use crate::image::{BaseImage, ConfigSettings, assemble};
use crate::layer::{EntryKind, LayerBlob, LayerSpec, TarOptions, import_tar, write_layer};
use crate::store::BlobStore;
use crate::triple::Platform;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::process::Command;

const BASE: &str = "release-oci/runtime:debian-bookworm";
const TAG: &str = "release-oci-sink-test:latest";

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The base from `docker save`: manifest.json names the config and the layer tars.
fn base_from_docker_save(dir: &std::path::Path, store: &BlobStore) -> BaseImage {
    let saved = dir.join("base.tar");
    docker(&["save", "-o", saved.to_str().unwrap(), BASE]);
    let mut manifest: Option<serde_json::Value> = None;
    let mut configs: HashMap<String, Vec<u8>> = HashMap::new();
    let mut layers: HashMap<String, LayerBlob> = HashMap::new();
    let mut ar = tar::Archive::new(File::open(&saved).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
        if name == "manifest.json" {
            manifest = Some(serde_json::from_reader(&mut e).unwrap());
        } else if name.ends_with(".json") {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            configs.insert(name, v);
        } else if name.ends_with("layer.tar") {
            layers.insert(name, import_tar("base", &mut e, store).unwrap());
        }
    }
    let manifest = manifest.unwrap();
    let config = serde_json::from_slice(&configs[manifest[0]["Config"].as_str().unwrap()]).unwrap();
    let layers =
        manifest[0]["Layers"].as_array().unwrap().iter().map(|l| layers[l.as_str().unwrap()].clone()).collect();
    BaseImage { name: BASE.into(), config, layers, digest: None }
}

#[test]
fn docker_loads_the_archive_and_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let base = base_from_docker_save(dir.path(), &store);
    let mut app = LayerSpec::new("app");
    app.add_file("app", EntryKind::Dir, 0o755, 0, 0);
    app.add_file("app/hello.txt", EntryKind::Bytes(b"hello from release-oci\n".to_vec()), 0o644, 0, 0);
    let long = format!("app/{}", "x".repeat(150));
    app.add_file(long.clone(), EntryKind::Bytes(b"long\n".to_vec()), 0o644, 0, 0);
    let layer = write_layer(&app, &TarOptions { mtime: 0 }, &store).unwrap();
    let settings = ConfigSettings {
        platform: Platform { os: "linux", architecture: "amd64", variant: None },
        entrypoint: vec!["/bin/cat".into()],
        cmd: vec!["/app/hello.txt".into()],
        user: Some("65534".into()),
        working_dir: Some("/app".into()),
        env: vec![("GREETING".into(), "hi".into())],
        exposed_ports: vec!["4000/tcp".into()],
        labels: BTreeMap::new(),
        stop_signal: None,
        volumes: vec![],
        created: "1970-01-01T00:00:00Z".into(),
    };
    let img = assemble(Some(&base), vec![layer], &settings, &BTreeMap::new(), &store).unwrap();
    let archive = dir.path().join("image.tar");
    write_archive(&img, &store, &archive, &[TAG.to_string()]).unwrap();

    docker(&["load", "-i", archive.to_str().unwrap()]);
    let id = docker(&["image", "inspect", "--format", "{{.Id}}", TAG]);
    assert_eq!(id.trim(), img.config_digest.as_str());
    let out = docker(&["run", "--rm", "--network", "none", TAG]);
    assert_eq!(out, "hello from release-oci\n");
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        TAG,
        "-c",
        &format!("cat /{long}; echo $GREETING $PATH; id -u"),
    ]);
    assert!(out.starts_with("long\nhi /usr/local/sbin:"), "{out}");
    assert!(out.ends_with("65534\n"), "{out}");
    docker(&["rmi", TAG]);
    let _ = fs::remove_file(archive);
}
