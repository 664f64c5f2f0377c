use super::*;
use crate::minimal::LayerFacts;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

fn settings() -> KeySettings {
    KeySettings {
        tool: "release-oci 0.1.0 /usr/bin/release-oci 1234".into(),
        project: PathBuf::from("/src/app"),
        builder_image_id: format!("sha256:{}", "1".repeat(64)),
        triple: "x86_64-unknown-linux-gnu".into(),
        tzdata: false,
        slim_erts: false,
        compression: Compression::Gzip,
        epoch: 0,
        build_env: Vec::new(),
    }
}

/// A part of the key, and a change of it.
type Change = (&'static str, Box<dyn Fn(&mut KeySettings)>);

#[test]
fn every_part_of_the_key_counts() {
    let plain = settings();
    assert_eq!(plain.hex(), settings().hex(), "stable");
    assert_eq!(plain.hex().len(), 64);
    let changes: Vec<Change> = vec![
        ("tool", Box::new(|k| k.tool.push_str(" rebuilt"))),
        ("project", Box::new(|k| k.project = PathBuf::from("/src/other"))),
        ("builder image", Box::new(|k| k.builder_image_id = format!("sha256:{}", "2".repeat(64)))),
        ("triple", Box::new(|k| k.triple = "x86_64-unknown-linux-musl".into())),
        ("tzdata", Box::new(|k| k.tzdata = true)),
        ("slim-erts", Box::new(|k| k.slim_erts = true)),
        ("compression", Box::new(|k| k.compression = Compression::Zstd { level: 3 })),
        ("compression level", Box::new(|k| k.compression = Compression::Zstd { level: 4 })),
        ("epoch", Box::new(|k| k.epoch = 1_700_000_000)),
        ("build env", Box::new(|k| k.build_env = vec![("LD_LIBRARY_PATH".into(), "/opt/lib".into())])),
    ];
    let mut seen = BTreeSet::from([plain.hex()]);
    for (what, change) in &changes {
        let mut k = settings();
        change(&mut k);
        assert!(seen.insert(k.hex()), "changing the {what} left the key as it was (or made another's)");
    }
    // Parts are length-prefixed: moving a byte from one part to the next is another key.
    let (mut a, mut b) = (settings(), settings());
    a.tool = "ab".into();
    a.project = PathBuf::from("c");
    b.tool = "a".into();
    b.project = PathBuf::from("bc");
    assert_ne!(a.hex(), b.hex());
}

#[test]
fn the_listing_is_the_second_level_of_the_key() {
    let d = tempfile::tempdir().unwrap();
    let store = BlobStore::open(d.path()).unwrap();
    let (one, two) =
        (BaseCache::new(&store, &settings()), BaseCache::new(&store, &KeySettings { tzdata: true, ..settings() }));
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    assert_ne!(one.path(&a), one.path(&b));
    assert_ne!(one.path(&a), two.path(&a));
    assert!(one.path(&a).starts_with(d.path().join(DIR).join(settings().hex())));
}

/// A base layer blob in `store` and a record of it.
fn cached(store: &BlobStore, content: &[u8]) -> CachedBase {
    let (digest, size) = store.put(content).unwrap();
    let layer = LayerBlob {
        name: "minimal base".into(),
        digest,
        diff_id: DiffId::of(content),
        size,
        media_type: Compression::Gzip.media_type().into(),
    };
    let facts = LayerFacts {
        files: vec!["usr/lib/libc.so.6".into()],
        packages: Some("/usr/lib/libc.so.6\tlibc6:amd64\t2.36-9\tamd64\n".into()),
        distro: Some("debian\n".into()),
    };
    CachedBase { layer, facts }
}

#[test]
fn a_record_is_found_by_its_listing_while_its_layer_is_in_the_store() {
    let d = tempfile::tempdir().unwrap();
    let store = BlobStore::open(d.path()).unwrap();
    let cache = BaseCache::new(&store, &settings());
    let (elf, other) = ("e".repeat(64), "f".repeat(64));
    assert!(cache.known().is_empty() && cache.load(&elf).is_none());

    let base = cached(&store, b"a base layer");
    cache.record(&elf, &base).unwrap();
    assert_eq!(cache.load(&elf), Some(base.clone()));
    assert_eq!(cache.known(), std::slice::from_ref(&elf));
    assert!(cache.load(&other).is_none());
    assert!(BaseCache::new(&store, &KeySettings { slim_erts: true, ..settings() }).known().is_empty());
    let text = std::fs::read_to_string(cache.path(&elf)).unwrap();
    assert!(!text.contains("/src/app") && !text.contains("release-oci 0.1.0"), "the key's parts are hashed: {text}");

    // Its layer gone from the store: no base, not offered to the builder.
    std::fs::remove_file(store.blob_path(&base.layer.digest)).unwrap();
    assert!(cache.load(&elf).is_none() && cache.known().is_empty());
    // A record of another format, or unreadable: ignored.
    let base = cached(&store, b"another base layer");
    cache.record(&elf, &base).unwrap();
    std::fs::write(cache.path(&elf), "{").unwrap();
    assert!(cache.load(&elf).is_none());
    cache.record(&elf, &base).unwrap();
    cache.forget(&elf);
    assert!(!cache.path(&elf).exists() && cache.known().is_empty());
    cache.forget(&elf);
}

#[test]
fn known_listings_are_the_newest_first_and_at_most_a_few() {
    let d = tempfile::tempdir().unwrap();
    let store = BlobStore::open(d.path()).unwrap();
    let cache = BaseCache::new(&store, &settings());
    let base = cached(&store, b"layer");
    let names: Vec<String> = (0..MAX_KNOWN + 2).map(|i| format!("{i:064x}")).collect();
    let start = SystemTime::now() - Duration::from_secs(3600);
    for (i, name) in names.iter().enumerate() {
        cache.record(name, &base).unwrap();
        let f = std::fs::File::options().write(true).open(cache.path(name)).unwrap();
        f.set_modified(start + Duration::from_secs(i as u64)).unwrap();
    }
    std::fs::write(cache.path("not-a-listing"), "{}").unwrap();
    let known = cache.known();
    assert_eq!(known.len(), MAX_KNOWN);
    assert_eq!(known[0], names[MAX_KNOWN + 1]);
    assert_eq!(known[MAX_KNOWN - 1], names[2]);
}

#[test]
fn a_base_with_a_file_the_build_wrote_is_not_recorded() {
    let need = |path: &str| WhyLine::Need { consumer: "lib/x-1/priv/x.so".into(), path: path.into() };
    let system = vec![
        need("/lib/x86_64-linux-gnu/libz.so.1"),
        WhyLine::Add { path: "/usr/bin/busybox".into(), reason: "busybox".into() },
        need("/usr/lib/x86_64-linux-gnu/libbuild.so.1"),
    ];
    assert_eq!(written_by_the_build(&system), None);
    for written in ["/build/cache/src/deps/x/priv/libx.so", "/tmp/libx.so", "/build/home/.local/lib/libx.so.1"] {
        let mut lines = system.clone();
        lines.push(need(written));
        assert_eq!(written_by_the_build(&lines), Some(written));
    }
    let lines = vec![WhyLine::Add { path: "/tmp".into(), reason: "r".into() }];
    assert_eq!(written_by_the_build(&lines), Some("/tmp"));
}

#[test]
fn prune_forgets_the_bases_of_the_project_only_or_all() {
    let d = tempfile::tempdir().unwrap();
    let store = BlobStore::open(d.path()).unwrap();
    let other = KeySettings { project: PathBuf::from("/src/other"), ..settings() };
    let (mine, theirs) = (BaseCache::new(&store, &settings()), BaseCache::new(&store, &other));
    let elf = "e".repeat(64);
    let base = cached(&store, b"a base layer");
    mine.record(&elf, &base).unwrap();
    theirs.record(&elf, &base).unwrap();
    assert!(forget_project(&store, Some(Path::new("/src/nothing"))).unwrap().is_empty());

    let removed = forget_project(&store, Some(Path::new("/src/app"))).unwrap();
    assert_eq!(removed, vec![store.root().join(DIR).join(settings().hex())]);
    assert!(mine.load(&elf).is_none() && mine.known().is_empty());
    assert_eq!(theirs.load(&elf), Some(base.clone()));

    assert_eq!(forget_project(&store, None).unwrap(), vec![store.root().join(DIR).join(other.hex())]);
    assert!(theirs.load(&elf).is_none());
    // The layer itself stays until `cache gc`.
    assert!(store.blob_path(&base.layer.digest).exists());
    assert!(forget_project(&store, None).unwrap().is_empty());
}
