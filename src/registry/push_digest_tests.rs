//! A blob the registry refuses as not matching its digest points at the local copy and at
//! `release-oci cache verify --repair`; other refusals are reported as before. Against the
//! hermetic HTTP fake, through the real client.

use super::*;
use crate::registry::http_fake::{Reply, Request, Server};
use crate::registry::{Client, RegistryOptions, RetryPolicy};

/// A registry without login whose closing upload `PUT` answers 400 with `code`.
fn registry(req: &Request, code: &'static str, message: &'static str) -> Reply {
    let p = req.path();
    match req.method.as_str() {
        "GET" if p == "/v2/" => Reply::status(200),
        "HEAD" => Reply::status(404),
        "POST" if p == "/v2/team/app/blobs/uploads/" => {
            Reply::status(202).header("Location", "/v2/team/app/blobs/uploads/u1")
        }
        "PUT" if p.starts_with("/v2/team/app/blobs/uploads/") => {
            Reply::status(400).body(format!(r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#))
        }
        "PUT" if p.starts_with("/v2/team/app/manifests/") => Reply::status(201),
        _ => Reply::status(404),
    }
}

/// Pushes a one-layer image whose blobs are files in `dir`; the error's whole chain.
async fn push_refused(code: &'static str, message: &'static str) -> (RegistryError, String, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        BlobRef {
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            label: name.into(),
            source: BlobSource::File(path),
        }
    };
    let manifest = b"{\"schemaVersion\":2}".to_vec();
    let image = PushImage {
        manifest_digest: Digest::of(&manifest),
        manifest,
        media_type: crate::registry::MEDIA_OCI_MANIFEST.into(),
        config: file("config", b"{}"),
        layers: vec![file("layer app", b"layer bytes")],
    };
    let layer_path = dir.path().join("layer app");
    let server = Server::start(move |r| registry(r, code, message)).await;
    let opts = RegistryOptions {
        docker_config: Some(dir.path().join("docker")),
        retry: RetryPolicy { attempts: 1, ..Default::default() },
        ..Default::default()
    };
    let client =
        Client::connect(&server.addr(), &opts, vec!["repository:team/app:pull,push".into()]).await.expect("connect");
    let target = PushTarget { repository: "team/app".into(), tags: vec!["1".into()], ..Default::default() };
    let err = push_image(&client, &image, &target, &Bars::hidden()).await.expect_err("the push must fail");
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    (err, chain, layer_path)
}

#[tokio::test]
async fn digest_invalid_points_at_the_local_copy_and_cache_verify() {
    let (err, chain, layer) = push_refused("DIGEST_INVALID", "provided digest did not match uploaded content").await;
    assert!(matches!(err, RegistryError::LocalBlobSuspect { .. }), "{chain}");
    assert!(chain.contains("release-oci cache verify --repair"), "{chain}");
    assert!(chain.contains(&layer.display().to_string()) && chain.contains("layer app"), "{chain}");
    assert!(chain.contains("DIGEST_INVALID provided digest did not match uploaded content"), "{chain}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn another_refusal_is_reported_as_before() {
    let (err, chain, _) = push_refused("BLOB_UPLOAD_INVALID", "blob upload invalid").await;
    assert!(matches!(err, RegistryError::Rejected { .. }), "{chain}");
    assert!(!chain.contains("cache verify"), "{chain}");
}
