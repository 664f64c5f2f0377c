use super::*;
use crate::image::{ConfigSettings, Image, assemble};
use crate::layer::{EntryKind, LayerSpec, TarOptions, write_layers};
use crate::store::BlobStore;
use crate::triple::Platform;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
#[cfg(feature = "integration")]
use std::process::{Command, Output};

mod archive;
mod atomic;
// Needs the Docker engine and the local runtime image.
#[cfg(feature = "integration")]
mod docker;
mod layout;
mod read;

fn settings(cmd: &str) -> ConfigSettings {
    ConfigSettings {
        platform: Platform { os: "linux", architecture: "amd64", variant: None },
        entrypoint: vec!["/app/bin/hello".into()],
        cmd: vec![cmd.into()],
        user: Some("65534".into()),
        working_dir: Some("/app".into()),
        env: vec![("LANG".into(), "C.UTF-8".into())],
        exposed_ports: vec!["4000/tcp".into()],
        labels: BTreeMap::from([("org.opencontainers.image.title".into(), "hello".into())]),
        stop_signal: None,
        volumes: vec![],
        created: "1970-01-01T00:00:00Z".into(),
    }
}

/// A tiny image of two synthetic layers; `text` goes into `app/hello.txt`.
fn image(store: &BlobStore, text: &str) -> Image {
    let mut runtime = LayerSpec::new("runtime");
    runtime.add_file("etc", EntryKind::Dir, 0o755, 0, 0);
    runtime.add_file("etc/passwd", EntryKind::Bytes(b"root:x:0:0::/:/bin/sh\n".to_vec()), 0o644, 0, 0);
    let mut app = LayerSpec::new("app");
    app.add_file("app", EntryKind::Dir, 0o755, 0, 0);
    app.add_file("app/bin", EntryKind::Dir, 0o755, 0, 0);
    app.add_file("app/bin/hello", EntryKind::Bytes(b"#!/bin/sh\necho hello\n".to_vec()), 0o755, 0, 0);
    app.add_file("app/hello.txt", EntryKind::Bytes(text.as_bytes().to_vec()), 0o644, 0, 0);
    app.add_file("app/link", EntryKind::Symlink { target: "hello.txt".into() }, 0o777, 0, 0);
    let layers = write_layers(&[runtime, app], &TarOptions { mtime: 0 }, store).unwrap();
    let annotations = BTreeMap::from([("org.opencontainers.image.version".to_string(), "0.1.0".to_string())]);
    assemble(None, layers, &settings("start"), &annotations, store).unwrap()
}

fn setup() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    (dir, store)
}

/// Runs an independent checker (skopeo, umoci); a missing one is a failure, not a skip:
/// `make setup` installs them. Always `Some`: the Option keeps the call sites' shape. Only the
/// integration tests (`--features integration`) call it.
#[cfg(feature = "integration")]
fn run(program: &str, args: &[&str]) -> Option<Output> {
    match Command::new(program).args(args).output() {
        Ok(out) => {
            assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            Some(out)
        }
        Err(e) => panic!("cannot run {program} ({e}): run `make setup` to install it"),
    }
}

fn index_of(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap()
}

#[test]
fn target_parses_the_accepted_forms() {
    let t: Target = "oci:out/img".parse().unwrap();
    assert_eq!(t, Target::OciLayout { dir: "out/img".into(), tag: None });
    let t: Target = "oci:/tmp/x:1.0".parse().unwrap();
    assert_eq!(t, Target::OciLayout { dir: "/tmp/x".into(), tag: Some("1.0".into()) });
    assert_eq!(t.to_string(), "oci:/tmp/x:1.0");
    let t: Target = "docker-archive:hello.tar".parse().unwrap();
    assert_eq!(t, Target::Archive { path: "hello.tar".into() });
    for bad in ["out", "oci:", "oci:x:", "docker-archive:", "docker-daemon:hello"] {
        let msg = bad.parse::<Target>().unwrap_err().to_string();
        assert!(msg.contains("oci:DIR[:TAG]") && msg.contains("docker-archive:PATH"), "{msg}");
    }
}

#[test]
fn human_sizes() {
    assert_eq!(human_size(0), "0 B");
    assert_eq!(human_size(1023), "1023 B");
    assert_eq!(human_size(1536), "1.5 KiB");
    assert_eq!(human_size(30 * 1024 * 1024), "30.0 MiB");
}
