//! The build-dirs keys (each input changes them; order, `./` and line ends do not; the toolchain
//! is in every restorable key), the split of the volume's tar (the deps and app layers, mtimes
//! kept, the sources listed and not kept, a secret stops its layer), and the artifacts as a registry gets them (blobs before the manifest, an
//! image config, tar+gzip layers; a lookup refuses another toolchain).

use super::artifact::Mismatch;
use super::*;
use crate::registry::Registry;
use crate::registry::fake::FakeRegistry;
use crate::store::BlobStore;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

fn inputs() -> KeyInputs {
    KeyInputs {
        toolchain: Toolchain { builder_image_id: "sha256:aaaa".into(), triple: "x86_64-unknown-linux-gnu".into() },
        project_kind: "mix".into(),
        mix_env: "prod".into(),
        profile: "prod".into(),
        locks: vec![("mix.lock".into(), b"%{\n  \"jason\": {:hex, :jason, \"1.4.1\"},\n}\n".to_vec())],
        config: vec![
            ("config/config.exs".into(), b"import Config\n".to_vec()),
            ("config/prod.exs".into(), b"import Config\nconfig :app, a: 1\n".to_vec()),
        ],
        build_env: vec![("HEX_MIRROR".into(), "https://mirror".into()), ("CFLAGS".into(), "-O2".into())],
        sources: "sha256:1111".into(),
    }
}

#[test]
fn every_input_changes_the_deps_and_app_keys_and_the_sources_only_the_app_key() {
    let base = inputs().keys();
    assert_eq!(base, inputs().keys(), "the same inputs give the same keys");
    type Change = (&'static str, fn(&mut KeyInputs));
    let changes: Vec<Change> = vec![
        ("builder image", |k| k.toolchain.builder_image_id = "sha256:bbbb".into()),
        ("triple", |k| k.toolchain.triple = "aarch64-unknown-linux-gnu".into()),
        ("kind", |k| k.project_kind = "rebar3".into()),
        ("MIX_ENV", |k| k.mix_env = "staging".into()),
        ("profile", |k| k.profile = "test".into()),
        ("lock content", |k| k.locks[0].1.extend_from_slice(b" ")),
        ("lock added", |k| k.locks.push(("rebar.lock".into(), b"[]".to_vec()))),
        ("lock removed", |k| k.locks.clear()),
        ("config content", |k| k.config[1].1 = b"import Config\nconfig :app, a: 2\n".to_vec()),
        ("config path", |k| k.config[1].0 = "config/staging.exs".into()),
        ("build env value", |k| k.build_env[0].1 = "https://other".into()),
        ("build env name", |k| k.build_env[0].0 = "HEX_CDN".into()),
        ("build env added", |k| k.build_env.push(("X".into(), "".into()))),
    ];
    for (what, change) in changes {
        let mut k = inputs();
        change(&mut k);
        let keys = k.keys();
        assert_ne!(keys.deps, base.deps, "{what}: the deps key");
        assert_ne!(keys.app, base.app, "{what}: the app key");
    }
    let mut k = inputs();
    k.sources = "sha256:2222".into();
    let keys = k.keys();
    assert_eq!((&keys.deps, &keys.loose), (&base.deps, &base.loose), "the sources are not in the deps key");
    assert_ne!(keys.app, base.app, "the sources are in the app key");
    // The toolchain is in the deps key (and so the app key), not in the loose one.
    let mut k = inputs();
    k.toolchain.builder_image_id = "sha256:cccc".into();
    assert_eq!(k.keys().loose, base.loose);
    assert_ne!(k.keys().deps, base.deps);
}

#[test]
fn keys_do_not_depend_on_order_dot_slash_or_line_ends() {
    let base = inputs().keys();
    let mut k = inputs();
    k.config.reverse();
    k.build_env.reverse();
    assert_eq!(k.keys(), base, "order");
    let mut k = inputs();
    k.locks[0].0 = "./mix.lock".into();
    k.config[0].0 = "./config/config.exs".into();
    assert_eq!(k.keys(), base, "./");
    let mut k = inputs();
    for (_, content) in k.locks.iter_mut().chain(k.config.iter_mut()) {
        *content = String::from_utf8(content.clone()).unwrap().replace('\n', "\r\n").into_bytes();
    }
    assert_eq!(k.keys(), base, "CRLF");
    // A variable given twice: the last value counts, as in the environment.
    let mut k = inputs();
    k.build_env.insert(0, ("CFLAGS".into(), "-O0".into()));
    assert_eq!(k.keys(), base, "an overridden value");
    k.build_env.push(("CFLAGS".into(), "-O0".into()));
    assert_ne!(k.keys(), base);
    // Values are hashed: the key parts hold no value.
    let mut k = inputs();
    k.build_env = vec![("TOKEN".into(), "s3cr3t-value".into())];
    let parts = format!("{:?}", normalised_env(&k.build_env));
    assert!(!parts.contains("s3cr3t-value"), "{parts}");
}

#[test]
fn tags_are_valid_and_distinct() {
    let k = inputs().keys();
    let tags = [deps_tag(&k), app_tag(&k), last_tag(&k), any_tag(&k)];
    for t in &tags {
        assert!(crate::registry::is_bare_tag(t) && t.len() <= 128, "{t}");
    }
    assert_eq!(tags.iter().collect::<BTreeSet<_>>().len(), 4);
    assert!(last_tag(&k).ends_with(k.deps.hex()));
}

#[test]
fn a_toolchain_mismatch_never_matches() {
    let t = inputs().toolchain;
    assert!(t.matches(&t.clone()));
    assert!(!t.matches(&Toolchain { builder_image_id: "sha256:bbbb".into(), ..t.clone() }));
    assert!(!t.matches(&Toolchain { triple: "x86_64-unknown-linux-musl".into(), ..t.clone() }));
    let unknown = Toolchain { builder_image_id: "".into(), triple: t.triple.clone() };
    assert!(!unknown.matches(&unknown.clone()), "an unknown builder image matches nothing, not even itself");
}

#[test]
fn locked_dependencies_of_mix_and_rebar3_locks() {
    let mix = "%{\n  \"cowboy\": {:hex, :cowboy, \"2.10.0\", \"ff\", [:make, :rebar3], [{:cowlib, \"2.12.1\", [hex: :cowlib]}], \"hexpm\", \"ab\"},\n  \"my_git\": {:git, \"https://x/y.git\", \"abc\", []},\n}\n";
    assert_eq!(locked_deps("mix.lock", mix), BTreeSet::from(["cowboy".to_string(), "my_git".to_string()]));
    let rebar = "{\"1.2.0\",\n[{<<\"cowboy\">>,{pkg,<<\"cowboy\">>,<<\"2.9.0\">>},0},\n {<<\"gun\">>, {git,\"https://x\",{ref,\"abc\"}},1}]}.\n[{pkg_hash,[{<<\"cowboy\">>, <<\"AB\">>}]}].\n";
    assert_eq!(locked_deps("rebar.lock", rebar), BTreeSet::from(["cowboy".to_string(), "gun".to_string()]));
    assert!(locked_deps("mix.lock", "").is_empty());
}

#[test]
fn volume_paths_are_classified() {
    use split::{Part, classify};
    let locked = BTreeSet::from(["jason".to_string()]);
    for (path, part) in [
        ("src/deps/jason/mix.exs", Part::Deps),
        ("src/deps", Part::Deps),
        ("src/_build/prod/lib/jason/ebin/jason.app", Part::Deps),
        ("src/_build/prod/lib/jason", Part::Deps),
        ("hex/packages/hexpm/jason-1.4.1.tar", Part::Deps),
        ("mix/archives/hex-2.0.6/hex-2.0.6/ebin/hex.app", Part::Deps),
        ("src/_build/prod/lib/hello/ebin/hello.app", Part::App),
        ("src/_build/prod/lib/jason_extra/ebin/x.beam", Part::App),
        ("src/_build/prod/consolidated/Elixir.Enumerable.beam", Part::App),
        ("task/0123456789abcdef/Elixir.Mix.Tasks.ReleaseOci.Assemble.beam", Part::App),
        ("src/lib/hello.ex", Part::Source),
        ("./src/mix.exs", Part::Source),
        ("lock", Part::Other),
        (".built", Part::Other),
        ("release/hello/bin/hello", Part::Rel),
        ("release/hello.fingerprint", Part::Rel),
        ("./release/hello/lib/hello-0.1.0/ebin/hello.app", Part::Rel),
        ("release/.lent", Part::Other),
        ("release", Part::Other),
    ] {
        assert_eq!(classify(path, &locked), part, "{path}");
    }
}

pub(super) fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    (dir, store)
}

/// A tar as the volume's helper sends it: (path, content or None for a directory, mtime).
pub(super) fn volume_tar(entries: &[(&str, Option<&[u8]>, u64)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content, mtime) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(*mtime);
        h.set_uid(10001);
        h.set_gid(10001);
        match content {
            Some(c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if path.ends_with(".sh") { 0o755 } else { 0o644 });
                h.set_size(c.len() as u64);
                b.append_data(&mut h, path, *c).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// (path, mtime, content) of a gzip layer in the store.
pub(super) fn layer_entries(store: &BlobStore, p: &Packed) -> Vec<(String, u64, Vec<u8>)> {
    let f = std::fs::File::open(store.blob_path(&p.digest)).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut c = Vec::new();
        e.read_to_end(&mut c).unwrap();
        out.push((e.path().unwrap().to_string_lossy().into_owned(), e.header().mtime().unwrap(), c));
    }
    out
}

pub(super) fn sample_volume() -> Vec<u8> {
    let long = format!("src/_build/prod/lib/hello/ebin/{}.beam", "Elixir.Hello.".repeat(12));
    volume_tar(&[
        ("src/mix.exs", Some(b"defmodule Hello.MixProject do end"), 1_700_000_000),
        ("src/lib/hello.ex", Some(b"defmodule Hello do end"), 1_700_000_100),
        ("src/run.sh", Some(b"#!/bin/sh"), 1_700_000_000),
        ("src/src/hello_erl.erl", Some(b"-module(hello_erl)."), 1_700_000_050),
        ("src/deps/jason", None, 1_690_000_000),
        ("src/deps/jason/mix.exs", Some(b"jason"), 1_690_000_000),
        ("src/_build/prod/lib/jason/ebin/jason.app", Some(b"{application,jason}"), 1_690_000_500),
        ("src/_build/prod/lib/hello/ebin/hello.app", Some(b"{application,hello}"), 1_700_000_200),
        (&long, Some(b"BEAM"), 1_700_000_200),
        ("src/_build/prod/lib/hello/.mix/compile.elixir", Some(b"manifest"), 1_700_000_201),
        ("hex/packages/hexpm/jason-1.4.1.tar", Some(b"pkg"), 1_690_000_000),
    ])
}

#[test]
fn the_volume_splits_into_deps_and_app_layers_with_their_mtimes_and_a_listing_of_the_sources() {
    let (_d, store) = store();
    let req =
        SplitRequest { locked: BTreeSet::from(["jason".into()]), deps: true, app: true, rel: true, secrets: vec![] };
    let split = split::split(sample_volume().as_slice(), &req, &store).unwrap();
    assert!(split.leaks.is_empty());
    let deps = split.deps.expect("a deps layer");
    let paths: Vec<String> = layer_entries(&store, &deps).into_iter().map(|(p, ..)| p).collect();
    assert_eq!(
        paths,
        [
            "src/deps/jason",
            "src/deps/jason/mix.exs",
            "src/_build/prod/lib/jason/ebin/jason.app",
            "hex/packages/hexpm/jason-1.4.1.tar"
        ]
    );
    let app = split.app.expect("an app layer");
    let entries = layer_entries(&store, &app);
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries[0],
        ("src/_build/prod/lib/hello/ebin/hello.app".into(), 1_700_000_200, b"{application,hello}".to_vec())
    );
    assert!(entries[1].0.len() > 100, "a long name survives: {}", entries[1].0);
    assert_eq!(entries[2].1, 1_700_000_201, "mtimes are kept");
    // The diff_id is the uncompressed tar's digest.
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(store.blob_path(&app.digest)).unwrap())
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(app.diff_id, crate::digest::DiffId::of(&tar));
    // The sources: listed (no content), sorted.
    let listed: Vec<(&str, u64, bool)> =
        split.listing.files.iter().map(|f| (f.path.as_str(), f.mtime, f.exec)).collect();
    assert_eq!(
        listed,
        [
            ("lib/hello.ex", 1_700_000_100, false),
            ("mix.exs", 1_700_000_000, false),
            ("run.sh", 1_700_000_000, true),
            // The project's own src/ (Erlang sources) keeps its name.
            ("src/hello_erl.erl", 1_700_000_050, false)
        ]
    );
    assert_eq!(split.listing.files[0].sha256, hex::encode(sha2::Sha256::digest(b"defmodule Hello do end")));
    assert_eq!(split.listing.newest(), 1_700_000_100);
    assert_eq!(split.listing.built, 1_700_000_201, "the newest mtime of the app layer (its manifest)");
    // Only what is asked for is written.
    let req = SplitRequest { deps: false, ..req };
    let split = split::split(sample_volume().as_slice(), &req, &store).unwrap();
    assert!(split.deps.is_none() && split.app.is_some());
}

#[test]
fn a_secret_in_a_layer_drops_that_layer_and_nothing_of_it_is_stored() {
    let (dir, store) = store();
    let secret = b"acme-auth-5f1c0ffee0ddba11".to_vec();
    let volume = volume_tar(&[
        ("src/lib/hello.ex", Some(b"defmodule Hello do end"), 1),
        ("src/deps/priv/.git/config", Some(b"url = https://x:acme-auth-5f1c0ffee0ddba11@git/x"), 1),
        ("src/_build/prod/lib/hello/ebin/hello.app", Some(b"{application,hello}"), 1),
    ]);
    // A file secret ends with a newline: the value without it is looked for.
    let mut with_newline = secret.clone();
    with_newline.push(b'\n');
    let req = SplitRequest { locked: BTreeSet::new(), deps: true, app: true, rel: true, secrets: vec![with_newline] };
    let split = split::split(volume.as_slice(), &req, &store).unwrap();
    assert_eq!(split.leaks, [Leak { kind: Kind::Deps, path: "src/deps/priv/.git/config".into() }]);
    assert!(split.deps.is_none(), "the deps layer is dropped");
    assert!(split.app.is_some(), "the app layer has no secret");
    // Nothing in the store holds the value, compressed or not.
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        let mut plain = Vec::new();
        let _ = flate2::read::GzDecoder::new(bytes.as_slice()).read_to_end(&mut plain);
        for b in [&bytes, &plain] {
            assert!(!split::contains_any(b, std::slice::from_ref(&secret)), "{}", entry.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

fn meta(kind: Kind, toolchain: &Toolchain) -> Meta {
    Meta {
        kind,
        key: "k".repeat(64),
        deps_key: "d".repeat(64),
        toolchain: toolchain.clone(),
        mix_env: "prod".into(),
        profile: "prod".into(),
        architecture: "amd64".into(),
    }
}

#[tokio::test]
async fn an_artifact_is_an_image_manifest_pushed_blobs_first_and_found_only_for_its_toolchain() {
    let (_d, store) = store();
    let req =
        SplitRequest { locked: BTreeSet::from(["jason".into()]), deps: true, app: true, rel: true, secrets: vec![] };
    let split = split::split(sample_volume().as_slice(), &req, &store).unwrap();
    let listing = split.listing.to_layer(&store).unwrap();
    let ours = inputs().toolchain;
    let tags = vec!["bd-app-exact".to_string(), "bd-last-x".to_string()];
    let app = split.app.unwrap();
    let artifact =
        Artifact::new(&meta(Kind::App, &ours), &[("app.tar.gz", &app), ("sources.tar.gz", &listing)], &store, tags);
    let reg = FakeRegistry::default();
    publish(&reg, "cache/hello", &artifact).await.unwrap();
    let calls = reg.calls();
    let first_put = calls.iter().position(|c| c.starts_with("PUT")).unwrap();
    assert!(calls[..first_put].iter().filter(|c| c.starts_with("UPLOAD")).count() == 3, "{calls:?}");
    assert!(calls[first_put..].iter().all(|c| c.starts_with("PUT")), "the manifest last: {calls:?}");
    assert_eq!(calls[first_put..], ["PUT cache/hello bd-app-exact", "PUT cache/hello bd-last-x"]);
    // An ordinary image manifest: an image config whose diff_ids are the layers', tar+gzip layers.
    let m: serde_json::Value = serde_json::from_slice(&artifact.push.manifest).unwrap();
    assert_eq!(m["artifactType"], ARTIFACT_TYPE);
    assert_eq!(m["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
    assert_eq!(m["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    assert_eq!(m["annotations"][ANN_BUILDER], ours.builder_image_id);
    let config = match &artifact.push.config.source {
        crate::registry::BlobSource::Bytes(b) => serde_json::from_slice::<serde_json::Value>(b).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(config["rootfs"]["diff_ids"][0], app.diff_id.as_str());
    assert_eq!(config["config"]["Labels"][ANN_KIND], "app");

    let found = find(&reg, "cache/hello", "bd-last-x").await.unwrap().expect("found");
    assert_eq!(found.digest, artifact.push.manifest_digest);
    assert_eq!(found.layer("app.tar.gz").map(|l| &l.digest), Some(&app.digest));
    let deps_key = "d".repeat(64);
    let want = Want { kind: Kind::App, toolchain: &ours, key: None, deps_key: Some(&deps_key) };
    assert_eq!(found.check(&want), Ok(()));
    let other = Toolchain { builder_image_id: "sha256:bbbb".into(), ..ours.clone() };
    let err = found.check(&Want { toolchain: &other, deps_key: None, ..want }).unwrap_err();
    assert_eq!(err, Mismatch::Toolchain { found: ours.clone() });
    assert!(err.to_string().contains("never restored across toolchains"), "{err}");
    assert_eq!(
        found.check(&Want { kind: Kind::Deps, deps_key: None, ..want }).unwrap_err(),
        Mismatch::Kind { found: "app".into() }
    );
    assert_eq!(found.check(&Want { key: Some("other"), deps_key: None, ..want }).unwrap_err(), Mismatch::Key);
    assert!(find(&reg, "cache/hello", "bd-app-none").await.unwrap().is_none());
    let _ = reg.name();
}
