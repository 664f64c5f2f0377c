use super::*;
use crate::digest::DiffId;
use crate::triple::Platform;
use oci_spec::image::{ConfigBuilder, ImageManifest, RootFsBuilder};

const AMD64: Platform = Platform { os: "linux", architecture: "amd64", variant: None };

fn layer(store: &BlobStore, name: &str) -> LayerBlob {
    let (digest, size) = store.put(format!("gz of {name}").as_bytes()).unwrap();
    LayerBlob {
        name: name.into(),
        digest,
        diff_id: DiffId::of(format!("tar of {name}").as_bytes()),
        size,
        media_type: crate::layer::MEDIA_TYPE_LAYER_GZIP.into(),
    }
}

fn settings() -> ConfigSettings {
    ConfigSettings {
        platform: AMD64,
        entrypoint: vec!["/sbin/tini".into(), "--".into()],
        cmd: vec!["/app/bin/hello".into(), "start".into()],
        user: Some("1000:1000".into()),
        working_dir: Some("/app".into()),
        env: vec![("LANG".into(), "C.UTF-8".into()), ("PHX_SERVER".into(), "true".into())],
        exposed_ports: vec!["4000/tcp".into()],
        labels: (0..20).map(|i| (format!("l{i}"), format!("v{i}"))).collect(),
        stop_signal: Some("SIGTERM".into()),
        volumes: vec![],
        created: "1970-01-01T00:00:00Z".into(),
    }
}

fn base(store: &BlobStore) -> BaseImage {
    let layers = vec![layer(store, "b1"), layer(store, "b2")];
    let exec = ConfigBuilder::default()
        .env(vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_string(), "LANG=en_US.UTF-8".into(), "TZ=UTC".into()])
        .exposed_ports(vec!["22/tcp".to_string()])
        .cmd(vec!["bash".to_string()])
        .labels(HashMap::from([("l1".to_string(), "base".to_string()), ("vendor".into(), "debian".into())]))
        .build()
        .unwrap();
    let config = oci_spec::image::ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(exec)
        .rootfs(
            RootFsBuilder::default()
                .diff_ids(layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>())
                .build()
                .unwrap(),
        )
        .history(vec![HistoryBuilder::default().created_by("debootstrap").build().unwrap()])
        .build()
        .unwrap();
    BaseImage { name: "debian:bookworm-slim".into(), config, layers, digest: None }
}

fn annotations() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("org.opencontainers.image.title".to_string(), "hello".to_string()),
        ("org.opencontainers.image.version".into(), "0.1.0".into()),
    ])
}

#[test]
fn two_assemblies_of_the_same_input_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let s1 = BlobStore::open(dir.path().join("1")).unwrap();
    let s2 = BlobStore::open(dir.path().join("2")).unwrap();
    let a = assemble(Some(&base(&s1)), vec![layer(&s1, "app")], &settings(), &annotations(), &s1).unwrap();
    let b = assemble(Some(&base(&s2)), vec![layer(&s2, "app")], &settings(), &annotations(), &s2).unwrap();
    assert_eq!(a, b);
    assert_eq!(std::fs::read(s1.blob_path(&a.manifest_digest)).unwrap(), a.manifest);
    assert_eq!(std::fs::read(s1.blob_path(&a.config_digest)).unwrap(), a.config);
    assert_eq!(Digest::of(&a.manifest), a.manifest_digest);
    assert!(!a.config.contains(&b'\n') && !a.manifest.contains(&b' '));
}

#[test]
fn env_is_merged_by_name_base_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let img = assemble(Some(&base(&store)), vec![], &settings(), &BTreeMap::new(), &store).unwrap();
    let config: ImageConfiguration = serde_json::from_slice(&img.config).unwrap();
    let exec = config.config().clone().unwrap();
    assert_eq!(
        exec.env().clone().unwrap(),
        ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "TZ=UTC", "PHX_SERVER=true"]
    );
    assert_eq!(exec.cmd().clone().unwrap(), ["/app/bin/hello", "start"]);
    assert_eq!(exec.entrypoint().clone().unwrap(), ["/sbin/tini", "--"]);
    assert_eq!(exec.user().as_deref(), Some("1000:1000"));
    assert_eq!(exec.working_dir().as_deref(), Some("/app"));
    assert_eq!(exec.stop_signal().as_deref(), Some("SIGTERM"));
    let mut ports = exec.exposed_ports().clone().unwrap();
    ports.sort();
    assert_eq!(ports, ["22/tcp", "4000/tcp"]);
    let labels = exec.labels().clone().unwrap();
    assert_eq!(labels["l1"], "v1");
    assert_eq!(labels["vendor"], "debian");
    assert_eq!(config.created().as_deref(), Some("1970-01-01T00:00:00Z"));
}

#[test]
fn diff_ids_history_and_manifest_layers_are_base_then_ours() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let b = base(&store);
    let ours = vec![layer(&store, "erts"), layer(&store, "app")];
    let img = assemble(Some(&b), ours.clone(), &settings(), &annotations(), &store).unwrap();
    let config: ImageConfiguration = serde_json::from_slice(&img.config).unwrap();
    let want: Vec<String> = b.layers.iter().chain(&ours).map(|l| l.diff_id.to_string()).collect();
    assert_eq!(*config.rootfs().diff_ids(), want);
    let history: Vec<String> =
        config.history().clone().unwrap().iter().map(|h| h.created_by().clone().unwrap()).collect();
    assert_eq!(
        history,
        [
            "debootstrap",
            "release-oci: layer of base image debian:bookworm-slim",
            "release-oci: erts",
            "release-oci: app"
        ]
    );

    let manifest: ImageManifest = serde_json::from_slice(&img.manifest).unwrap();
    assert_eq!(manifest.schema_version(), 2);
    assert_eq!(
        manifest.media_type().as_ref().map(|m| m.to_string()).as_deref(),
        Some(super::super::MEDIA_TYPE_MANIFEST)
    );
    assert_eq!(manifest.config().media_type().to_string(), super::super::MEDIA_TYPE_CONFIG);
    assert_eq!(manifest.config().digest().to_string(), img.config_digest.to_string());
    assert_eq!(manifest.config().size(), img.config.len() as u64);
    let layer_digests: Vec<String> = manifest.layers().iter().map(|d| d.digest().to_string()).collect();
    let want: Vec<String> = b.layers.iter().chain(&ours).map(|l| l.digest.to_string()).collect();
    assert_eq!(layer_digests, want);
    assert_eq!(img.layers.len(), 4);
    assert_eq!(manifest.annotations().clone().unwrap()["org.opencontainers.image.title"], "hello");
}

#[test]
fn without_a_base_only_our_settings_are_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let mut s = settings();
    s.platform = Platform { os: "linux", architecture: "arm64", variant: Some("v8") };
    let img = assemble(None, vec![layer(&store, "app")], &s, &BTreeMap::new(), &store).unwrap();
    assert_eq!(img.platform(), "linux/arm64/v8");
    let v: serde_json::Value = serde_json::from_slice(&img.config).unwrap();
    assert_eq!(v["architecture"], "arm64");
    assert_eq!(v["variant"], "v8");
    assert_eq!(v["rootfs"]["type"], "layers");
    assert_eq!(v["config"]["Env"], serde_json::json!(["LANG=C.UTF-8", "PHX_SERVER=true"]));
    assert_eq!(v["config"]["ExposedPorts"], serde_json::json!({"4000/tcp": {}}));
    let m: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
    assert!(m.get("annotations").is_none());
}

#[test]
fn a_base_for_another_platform_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let mut s = settings();
    s.platform = Platform { os: "linux", architecture: "arm64", variant: Some("v8") };
    let err = assemble(Some(&base(&store)), vec![], &s, &BTreeMap::new(), &store).unwrap_err();
    assert!(matches!(err, ImageError::Platform { .. }), "{err}");
    assert!(err.to_string().contains("linux/amd64") && err.to_string().contains("linux/arm64"), "{err}");

    let mut b = base(&store);
    b.layers.pop();
    let err = assemble(Some(&b), vec![], &settings(), &BTreeMap::new(), &store).unwrap_err();
    assert!(matches!(err, ImageError::BaseLayers { .. }), "{err}");
}

#[test]
fn merge_env_keeps_base_order_and_lines_without_values() {
    let base = vec!["A=1".to_string(), "NOVALUE".into(), "B=2".into()];
    let ours = vec![("B".to_string(), "x=y".to_string()), ("C".into(), "".into()), ("A".into(), "3".into())];
    assert_eq!(merge_env(&base, &ours), ["A=3", "NOVALUE", "B=x=y", "C="]);
}
