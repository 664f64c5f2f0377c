use super::*;
use crate::layer::{Entry, write_layer};
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};

const AMD64: Platform = Platform { os: "linux", architecture: "amd64", variant: None };
const OPTS: TarOptions = TarOptions { mtime: 0 };

/// `OUT/` as the builder leaves it: `rel/` with one ERTS program, `base/rootfs` and `base/why`.
fn gathered() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let out = d.path();
    fs::create_dir_all(out.join("rel/erts-13.1.5/bin")).unwrap();
    fs::write(out.join("rel/erts-13.1.5/bin/beam.smp"), b"elf").unwrap();
    let root = out.join("base/rootfs");
    fs::create_dir_all(root.join("usr/lib")).unwrap();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("etc/ssl/certs")).unwrap();
    symlink("usr/lib", root.join("lib")).unwrap();
    fs::write(root.join("usr/lib/libc.so.6"), b"libc").unwrap();
    fs::write(root.join("usr/lib/libtool-only.so.1"), b"x").unwrap();
    fs::write(root.join("usr/bin/busybox"), b"bb").unwrap();
    symlink("busybox", root.join("usr/bin/sh")).unwrap();
    fs::write(root.join("etc/ssl/certs/ca-certificates.crt"), b"certs").unwrap();
    fs::write(
        out.join("base/why"),
        "need\terts-13.1.5/bin/beam.smp\t/lib/libc.so.6\n\
         need\terts-13.1.5/bin/erlc\t/lib/libtool-only.so.1\n\
         add\t/usr/bin/sh\tbusybox applet: sh\n\
         add\t/etc/ssl/certs/ca-certificates.crt\tCA certificates\n",
    )
    .unwrap();
    d
}

fn entry<'a>(spec: &'a LayerSpec, path: &str) -> Option<&'a Entry> {
    spec.entries.iter().find(|e| e.path == path)
}

#[test]
fn plan_takes_what_is_needed_and_adds_the_generated_files() {
    let d = gathered();
    let base = plan(&d.path().join("base"), &d.path().join("rel")).unwrap();
    let spec = &base.spec;
    assert_eq!(spec.name, LAYER_NAME);
    for path in ["lib", "usr/lib/libc.so.6", "usr/bin/sh", "usr/bin/busybox", "etc/ssl/certs/ca-certificates.crt"] {
        assert!(entry(spec, path).is_some(), "{path} is missing");
    }
    assert!(entry(spec, "usr/lib/libtool-only.so.1").is_none(), "a library only erlc needs was taken");
    assert_eq!(entry(spec, "tmp").map(|e| e.mode), Some(0o1777));
    assert!(
        matches!(&entry(spec, "etc/nsswitch.conf").unwrap().kind, EntryKind::Bytes(b) if b.starts_with(b"passwd: files"))
    );
    assert!(entry(spec, "etc/hosts").is_some());
    let EntryKind::Bytes(json) = &entry(spec, REASONS_PATH).unwrap().kind else { panic!("no reasons") };
    let reasons = Reasons::from_json(json).unwrap();
    assert_eq!(reasons, base.reasons);
    let libc: Vec<&String> = reasons.lookup("usr/lib/libc.so.6").unwrap().iter().collect();
    assert_eq!(libc, ["needed by erts/bin/beam.smp"]);
    assert!(reasons.lookup(REASONS_PATH).is_some());
}

#[test]
fn build_is_deterministic_and_reuses_an_identical_layer() {
    let d = gathered();
    let store_dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(store_dir.path()).unwrap();
    let (base_dir, rel) = (d.path().join("base"), d.path().join("rel"));
    let one = build(&base_dir, &rel, &AMD64, "1970-01-01T00:00:00Z", &OPTS, &store).unwrap();
    assert_eq!(one.name, BASE_NAME);
    assert_eq!(one.layers.len(), 1);
    assert_eq!(one.config.rootfs().diff_ids(), &vec![one.layers[0].diff_id.to_string()]);
    let blob = store.blob_path(&one.layers[0].digest);
    let inode = fs::metadata(&blob).unwrap().ino();

    let two = build(&base_dir, &rel, &AMD64, "1970-01-01T00:00:00Z", &OPTS, &store).unwrap();
    assert_eq!(two, one);
    assert_eq!(fs::metadata(&blob).unwrap().ino(), inode, "the blob was written again");
    // What write_layer would have made: the cache changes nothing.
    let plain = write_layer(&plan(&base_dir, &rel).unwrap().spec, &OPTS, &store).unwrap();
    assert_eq!(plain, two.layers[0]);
}

#[test]
fn a_missing_file_or_step_is_an_error_naming_it() {
    let d = gathered();
    let e = plan(&d.path().join("nothing"), &d.path().join("rel")).unwrap_err().to_string();
    assert!(e.contains("gathered no minimal base"), "{e}");
    fs::remove_file(d.path().join("base/rootfs/usr/lib/libc.so.6")).unwrap();
    let e = plan(&d.path().join("base"), &d.path().join("rel")).unwrap_err().to_string();
    assert!(e.contains("/lib/libc.so.6") && e.contains("builder image"), "{e}");
}

#[test]
fn gather_options_ask_the_builder_for_the_base() {
    assert_eq!(GatherOptions::default().env(), [("MINIMAL_BASE".to_string(), "1".to_string())]);
    let opts = GatherOptions { tzdata: true, known: Vec::new() };
    assert!(opts.env().contains(&("TZDATA".to_string(), "1".to_string())));
    assert!(!opts.env().iter().any(|(k, _)| k == "MINIMAL_BASE_KNOWN"));
    let opts = GatherOptions { tzdata: false, known: vec!["a".repeat(64), "b".repeat(64)] };
    let known = format!("{} {}", "a".repeat(64), "b".repeat(64));
    assert!(opts.env().contains(&("MINIMAL_BASE_KNOWN".to_string(), known)));
}

#[test]
fn a_base_from_its_recorded_layer_is_the_base_made() {
    let d = gathered();
    fs::write(
        d.path().join("base/packages"),
        "/usr/lib/libc.so.6\tlibc6:amd64\t2.36-9\tamd64\n\
         /usr/lib/libtool-only.so.1\tlibtool:amd64\t1\tamd64\n\
         not four fields\n",
    )
    .unwrap();
    fs::write(d.path().join("base/distro"), "debian\n").unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(store_dir.path()).unwrap();
    let (base_dir, rel) = (d.path().join("base"), d.path().join("rel"));
    let created = "1970-01-01T00:00:00Z";
    let (base, facts) = build_gathered(&base_dir, &rel, &AMD64, created, &OPTS, Compression::Gzip, &store).unwrap();
    assert_eq!(base, build(&base_dir, &rel, &AMD64, created, &OPTS, &store).unwrap());
    assert_eq!(from_layer(base.layers[0].clone(), &AMD64, created).unwrap(), base);

    // The files the layer took (links and generated files are no package's), and only their lines.
    assert_eq!(facts.files, ["etc/ssl/certs/ca-certificates.crt", "usr/bin/busybox", "usr/lib/libc.so.6"]);
    assert_eq!(facts.packages.as_deref(), Some("/usr/lib/libc.so.6\tlibc6:amd64\t2.36-9\tamd64\nnot four fields\n"));
    assert_eq!(facts.distro.as_deref(), Some("debian\n"));
}

#[test]
fn the_layer_files_are_what_the_build_wrote_or_planned_again() {
    let d = gathered();
    let base_dir = d.path().join("base");
    let planned = layer_files(&base_dir).unwrap();
    assert!(planned.contains("usr/lib/libc.so.6") && !planned.contains("usr/lib/libtool-only.so.1"), "{planned:?}");
    let facts = LayerFacts {
        files: vec!["usr/lib/libz.so.1".into()],
        packages: Some("/usr/lib/libz.so.1\tzlib1g:amd64\t1\tamd64\n".into()),
        distro: Some("debian\n".into()),
    };
    facts.write(&base_dir, false).unwrap();
    assert_eq!(layer_files(&base_dir).unwrap().into_iter().collect::<Vec<_>>(), ["usr/lib/libz.so.1"]);
    assert!(!base_dir.join("packages").exists(), "a gathered base keeps the builder's files");

    // A reused base: nothing gathered; the SBOM's files come back from the record.
    let reused = tempfile::tempdir().unwrap();
    facts.write(reused.path(), true).unwrap();
    assert_eq!(fs::read_to_string(reused.path().join("packages")).unwrap(), facts.packages.clone().unwrap());
    assert_eq!(fs::read_to_string(reused.path().join("distro")).unwrap(), "debian\n");
    assert_eq!(layer_files(reused.path()).unwrap().len(), 1);
}

#[test]
fn the_builder_says_when_it_reused_a_known_base() {
    let d = gathered();
    assert_eq!(reused_listing(&d.path().join("base")).unwrap(), None);
    fs::write(d.path().join("base/reused"), format!("{}\n", "a".repeat(64))).unwrap();
    assert_eq!(reused_listing(&d.path().join("base")).unwrap(), Some("a".repeat(64)));
}
