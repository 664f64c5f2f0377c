use super::*;
use crate::cli::BuildArgs;
use clap::Parser;

#[derive(Parser)]
struct Wrap {
    #[command(flatten)]
    args: BuildArgs,
}

fn key(project: &std::path::Path, extra: &[&str]) -> Fingerprint {
    let mut argv = vec!["x".to_string(), project.display().to_string(), "--no-config".to_string()];
    argv.extend(extra.iter().map(|s| s.to_string()));
    let s = Wrap::parse_from(argv).args.validate().unwrap();
    let mut k = KeyBuilder::new();
    settings_parts(&mut k, &s);
    k.finish()
}

#[test]
fn every_setting_that_shapes_the_image_is_in_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mix.exs"), "").unwrap();
    let p = dir.path();
    let plain = key(p, &[]);
    assert_eq!(key(p, &[]), plain, "stable");
    let changes: &[&[&str]] = &[
        &["--env", "A=1"],
        &["--user", "1000"],
        &["--label", "a=b"],
        &["--annotation", "a=b"],
        &["--port", "4000"],
        &["--cmd", "server"],
        &["--mix-env", "staging"],
        &["--profile", "other"],
        &["--release", "other"],
        &["--compression", "zstd"],
        &["--slim-erts"],
        &["--tzdata"],
        &["--include-cookie"],
        &["--source-url", "https://example.com/x"],
        &["--triple", "aarch64-unknown-linux-gnu"],
        &["--builder", "host"],
    ];
    for extra in changes {
        assert_ne!(key(p, extra), plain, "{extra:?} must change the key");
    }
    // Where the image goes does not change what it is.
    let outputs: &[&[&str]] = &[
        &["--load", "--output", "oci:/tmp/x"],
        &["--tag", "x:1"],
        &["--output", "oci:/tmp/x"],
        &["--no-cache"],
        &["--pull", "never"],
        &["--builder-image", "release-oci/builder:debian-bookworm"],
        &["--cache-dir", "/tmp/elsewhere"],
    ];
    for extra in outputs {
        assert_eq!(key(p, extra), plain, "{extra:?} is output-only");
    }
    // --load alone means uncompressed layers: that is the image it makes.
    assert_eq!(key(p, &["--load"]), key(p, &["--compression", "none"]));
    assert_ne!(key(p, &["--load"]), plain);
}

#[test]
fn source_date_epoch_is_in_the_key() {
    // SOURCE_DATE_EPOCH becomes `epoch` in validate(); set here, the environment is left alone.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mix.exs"), "").unwrap();
    let args = |epoch: &str| {
        let argv = ["x", dir.path().to_str().unwrap(), "--no-config"];
        let mut s = Wrap::parse_from(argv).args.validate().unwrap();
        s.epoch = epoch.parse().unwrap();
        let mut k = KeyBuilder::new();
        settings_parts(&mut k, &s);
        k.finish()
    };
    assert_ne!(args("0"), args("1700000000"));
}

#[test]
fn a_reused_result_says_so_and_how_to_build_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let (manifest_digest, _) = store.put(b"{}").unwrap();
    let image = crate::image::Image {
        manifest: b"{}".to_vec(),
        manifest_digest: manifest_digest.clone(),
        config: b"{}".to_vec(),
        config_digest: manifest_digest.clone(),
        layers: Vec::new(),
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
    };
    let line = reuse_line(&CachedImage { release: "app".into(), version: "1.0.0".into(), image });
    assert!(
        line.starts_with(&format!("No change since the last build: reusing app 1.0.0 {manifest_digest}")),
        "{line}"
    );
    assert!(line.contains("--no-cache") && line.contains("cache prune --project"), "{line}");
}
