//! The read helper's script, run by `sh` on a directory laid out as a cache volume.

use super::READ_SH;
use crate::registry_cache::build_dirs::rel_key;
use sha2::Digest as _;
use std::fs;
use std::path::Path;

/// A volume after a build: sources, a compiled app, a kept release with its fingerprint.
fn volume() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path();
    for d in ["src/lib", "src/_build/prod/lib/hello/ebin", "release/hello/bin"] {
        fs::create_dir_all(v.join(d)).unwrap();
    }
    fs::write(v.join("lock"), "").unwrap();
    fs::write(v.join("src/lib/hello.ex"), "defmodule Hello do end").unwrap();
    fs::write(v.join("src/_build/prod/lib/hello/ebin/hello.app"), "{application,hello}").unwrap();
    fs::write(v.join("release/hello/bin/hello"), "#!/bin/sh").unwrap();
    fs::write(v.join("release/hello.fingerprint"), b"\x83print").unwrap();
    dir
}

/// The names in the tar READ_SH writes for `volume`, with WANT_REL=1 and REL_KNOWN=`known`.
fn read(volume: &Path, known: &str) -> Vec<String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(READ_SH)
        .env("CACHE", volume)
        .env("WANT_DEPS", "0")
        .env("LOCKED", "")
        .env("WANT_REL", "1")
        .env("REL_KNOWN", known)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut a = tar::Archive::new(out.stdout.as_slice());
    a.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect()
}

#[test]
fn the_kept_releases_are_read_unless_the_registry_has_their_key() {
    let v = volume();
    let names = read(v.path(), "");
    assert!(names.iter().any(|n| n == "release/hello.fingerprint"), "{names:?}");
    assert!(names.iter().any(|n| n == "release/hello/bin/hello"), "{names:?}");
    assert!(names.iter().any(|n| n == "src/_build/prod/lib/hello/ebin/hello.app"), "{names:?}");
    let key = rel_key(&[("release/hello.fingerprint".into(), sha2::Sha256::digest(b"\x83print").into())]);
    let names = read(v.path(), &key);
    assert!(!names.iter().any(|n| n.starts_with("release")), "the registry has them: {names:?}");
    assert!(names.iter().any(|n| n == "src/_build/prod/lib/hello/ebin/hello.app"), "{names:?}");
    // A release lent to an output (a build that did not end) or without its fingerprint: not read.
    fs::write(v.path().join("release/.lent"), "x\ty\n").unwrap();
    assert!(!read(v.path(), "").iter().any(|n| n.starts_with("release")));
    fs::remove_file(v.path().join("release/.lent")).unwrap();
    fs::remove_file(v.path().join("release/hello.fingerprint")).unwrap();
    assert!(!read(v.path(), "").iter().any(|n| n.starts_with("release")));
}
