//! The release cache's artifact: what of the volume goes into its layer, and its key.

use super::tests::{layer_entries, store, volume_tar};
use super::*;

fn release_volume() -> Vec<u8> {
    volume_tar(&[
        ("src/lib/hello.ex", Some(b"defmodule Hello do end"), 1_700_000_100),
        ("src/_build/prod/lib/hello/ebin/hello.app", Some(b"{application,hello}"), 1_700_000_200),
        ("release/hello.fingerprint", Some(b"\x83fingerprint"), 1_700_000_300),
        ("release/hello", None, 1_700_000_300),
        ("release/hello/bin/hello", Some(b"#!/bin/sh"), 1_700_000_300),
        ("release/.lent", Some(b"/build/cache/out/rel\t/build/cache/release/hello\n"), 1_700_000_300),
    ])
}

#[test]
fn the_kept_releases_go_into_their_own_layer_keyed_by_their_fingerprints() {
    let (_d, store) = store();
    let req = SplitRequest { locked: Default::default(), deps: true, app: true, rel: true, secrets: vec![] };
    let split = split::split(release_volume().as_slice(), &req, &store).unwrap();
    let (rel, key) = split.rel.expect("a release cache layer");
    let paths: Vec<String> = layer_entries(&store, &rel).into_iter().map(|(p, ..)| p).collect();
    assert_eq!(paths, ["release/hello.fingerprint", "release/hello", "release/hello/bin/hello"]);
    let sum: [u8; 32] = sha2::Sha256::digest(b"\x83fingerprint").into();
    assert_eq!(key, rel_key(&[("release/hello.fingerprint".into(), sum)]));
    let app: Vec<String> = layer_entries(&store, split.app.as_ref().unwrap()).into_iter().map(|(p, ..)| p).collect();
    assert_eq!(app, ["src/_build/prod/lib/hello/ebin/hello.app"], "the releases are not the app's");
    assert_eq!(split.listing.built, 1_700_000_200, "the releases do not date the app build");
    // Not asked for: not written.
    let split = split::split(release_volume().as_slice(), &SplitRequest { rel: false, ..req }, &store).unwrap();
    assert!(split.rel.is_none());
}

/// What `sha256sum FILES | sha256sum` prints, as the volume's read helper computes the key.
#[test]
fn the_key_is_what_sha256sum_of_sha256sum_prints() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("release")).unwrap();
    let files = [("release/web.fingerprint", &b"\x83web"[..]), ("release/admin.fingerprint", &b"\x83\x00admin\n"[..])];
    let mut sums = Vec::new();
    for (path, content) in files {
        std::fs::write(dir.path().join(path), content).unwrap();
        sums.push((path.to_string(), sha2::Sha256::digest(content).into()));
    }
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("LC_ALL=C; export LC_ALL; sha256sum release/*.fingerprint | sha256sum | cut -c1-64")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), rel_key(&sums));
    assert_ne!(rel_key(&sums[..1]), rel_key(&sums), "each fingerprint counts");
}

#[test]
fn only_a_releases_fingerprint_is_one() {
    assert!(is_fingerprint("release/hello.fingerprint"));
    assert!(is_fingerprint("./release/hello.fingerprint"));
    assert!(!is_fingerprint("release/hello/x.fingerprint"));
    assert!(!is_fingerprint("release/.fingerprint"));
    assert!(!is_fingerprint("src/hello.fingerprint"));
}
