use super::*;
use crate::cli::BuildArgs;
use clap::Parser;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

#[derive(Parser)]
struct Wrap {
    #[command(flatten)]
    args: BuildArgs,
}

const IMAGE_ID: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn settings(project: &Path, extra: &[&str]) -> BuildSettings {
    let mut argv = vec!["x".to_string(), project.display().to_string(), "--no-config".to_string()];
    argv.extend(extra.iter().map(|s| s.to_string()));
    Wrap::parse_from(argv).args.validate().unwrap()
}

fn key(project: &Path, extra: &[&str]) -> String {
    key_settings(&settings(project, extra), IMAGE_ID).hex()
}

#[test]
fn the_settings_that_shape_the_base_are_in_its_key_and_no_others() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::write(p.join("mix.exs"), "").unwrap();
    let plain = key(p, &[]);
    assert_eq!(key(p, &[]), plain, "stable");
    let s = settings(p, &[]);
    assert_ne!(key_settings(&s, "sha256:2").hex(), plain, "the builder image");
    let other = tempfile::tempdir().unwrap();
    fs::write(other.path().join("mix.exs"), "").unwrap();
    assert_ne!(key(other.path(), &[]), plain, "the project");
    let ca = p.join("ca.pem");
    fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
    // The CAs the build trusts stay out of the base (it takes the builder image's bundle).
    assert_eq!(key(p, &["--build-ca", ca.to_str().unwrap()]), plain, "the CA bundle is not part of the base");
    for changed in [
        &["--tzdata"][..],
        &["--slim-erts"],
        &["--compression", "zstd"],
        &["--build-env", "LD_LIBRARY_PATH=/opt/lib"],
        &["--triple", "x86_64-unknown-linux-musl"],
    ] {
        assert_ne!(key(p, changed), plain, "{changed:?}");
    }
    // What the image says on top of its base does not touch the base.
    for same in [&["--env", "A=1"][..], &["--label", "a=b"], &["--port", "4000"], &["--no-cache"]] {
        assert_eq!(key(p, same), plain, "{same:?}");
    }
}

/// `OUT/`: a release with one ELF program and a NIF, and the builder's files for its base.
fn builder_out(nif: &[u8], gathered: bool) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let rel = d.path().join("rel");
    fs::create_dir_all(rel.join("erts-13.1.5/bin")).unwrap();
    fs::create_dir_all(rel.join("lib/nif-0.1.0/priv")).unwrap();
    fs::write(rel.join("erts-13.1.5/bin/beam.smp"), b"\x7fELF beam").unwrap();
    fs::set_permissions(rel.join("erts-13.1.5/bin/beam.smp"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(rel.join("lib/nif-0.1.0/priv/nif.so"), nif).unwrap();
    let base = d.path().join("base");
    fs::create_dir_all(&base).unwrap();
    fs::write(base.join("elf"), ElfListing::of_dir(&rel).unwrap().text()).unwrap();
    if gathered {
        let root = base.join("rootfs");
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        fs::write(root.join("usr/lib/libc.so.6"), b"libc").unwrap();
        fs::write(root.join("usr/lib/libz.so.1"), b"libz").unwrap();
        fs::write(
            base.join("why"),
            "need\terts-13.1.5/bin/beam.smp\t/lib/libc.so.6\nneed\tlib/nif-0.1.0/priv/nif.so\t/lib/libz.so.1\n",
        )
        .unwrap();
        fs::write(base.join("packages"), "/usr/lib/libc.so.6\tlibc6:amd64\t2.36-9\tamd64\n").unwrap();
        fs::write(base.join("distro"), "debian\n").unwrap();
    }
    d
}

fn make(s: &BuildSettings, store: &BlobStore, out: &Path) -> Result<(BaseImage, bool), MinimalError> {
    let cache = Some(BaseCache::new(store, &key_settings(s, IMAGE_ID)));
    MakeBase { cache, store: store.clone(), s: s.clone(), base_dir: out.join("base") }.run()
}

#[test]
fn a_known_base_is_reused_as_it_was_made_with_its_packages() {
    let (project, store_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = BlobStore::open(store_dir.path()).unwrap();
    let s = settings(project.path(), &[]);
    let cache = BaseCache::new(&store, &key_settings(&s, IMAGE_ID));

    let first = builder_out(b"\x7fELF nif", true);
    let (made, reused) = make(&s, &store, first.path()).unwrap();
    assert!(!reused);
    let listing = ElfListing::of_dir(&first.path().join("rel")).unwrap().digest();
    assert_eq!(cache.known(), std::slice::from_ref(&listing), "recorded for the next build");

    // The next build: the builder found the listing known and gathered nothing.
    let second = builder_out(b"\x7fELF nif", false);
    fs::write(second.path().join("base/reused"), &listing).unwrap();
    let (again, reused) = make(&s, &store, second.path()).unwrap();
    assert!(reused);
    assert_eq!(again, made, "the same base, config and layer");
    let base = second.path().join("base");
    assert_eq!(fs::read_to_string(base.join("packages")).unwrap(), "/usr/lib/libc.so.6\tlibc6:amd64\t2.36-9\tamd64\n");
    let files = minimal::layer_files(&base).unwrap();
    assert!(files.contains("usr/lib/libc.so.6") && files.contains("usr/lib/libz.so.1"), "{files:?}");
}

#[test]
fn a_reuse_that_does_not_hold_fails_and_forgets_the_record() {
    let (project, store_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = BlobStore::open(store_dir.path()).unwrap();
    let s = settings(project.path(), &[]);
    let cache = BaseCache::new(&store, &key_settings(&s, IMAGE_ID));
    let first = builder_out(b"\x7fELF nif", true);
    make(&s, &store, first.path()).unwrap();
    let listing = cache.known().pop().unwrap();

    // The builder claims the known listing, but the NIF it sent is another.
    let other = builder_out(b"\x7fELF nif, changed", false);
    fs::copy(first.path().join("base/elf"), other.path().join("base/elf")).unwrap();
    fs::write(other.path().join("base/reused"), &listing).unwrap();
    let err = make(&s, &store, other.path()).unwrap_err().to_string();
    assert!(err.contains(&listing) && err.contains("building again gathers"), "{err}");
    assert!(cache.known().is_empty(), "the record stays");

    // A changed NIF, gathered: recorded under its own listing beside the first.
    let changed = builder_out(b"\x7fELF nif, changed", true);
    let (_, reused) = make(&s, &store, changed.path()).unwrap();
    assert!(!reused);
    assert_eq!(cache.known().len(), 1);
    assert_ne!(cache.known()[0], listing);
}

#[test]
fn no_record_without_the_builders_listing_or_with_a_file_the_build_wrote() {
    let (project, store_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = BlobStore::open(store_dir.path()).unwrap();
    let s = settings(project.path(), &[]);
    let cache = BaseCache::new(&store, &key_settings(&s, IMAGE_ID));
    let out = builder_out(b"\x7fELF nif", true);
    fs::remove_file(out.path().join("base/elf")).unwrap();
    assert!(!make(&s, &store, out.path()).unwrap().1);
    assert!(cache.known().is_empty(), "a builder without sha256sum");

    let out = builder_out(b"\x7fELF nif", true);
    let root = out.path().join("base/rootfs");
    fs::create_dir_all(root.join("build/cache/src/priv")).unwrap();
    fs::write(root.join("build/cache/src/priv/libx.so"), b"x").unwrap();
    let why = out.path().join("base/why");
    let mut lines = fs::read_to_string(&why).unwrap();
    lines.push_str("need\tlib/nif-0.1.0/priv/nif.so\t/build/cache/src/priv/libx.so\n");
    fs::write(&why, lines).unwrap();
    assert!(!make(&s, &store, out.path()).unwrap().1);
    assert!(cache.known().is_empty(), "a library from the build's own directories");
}
