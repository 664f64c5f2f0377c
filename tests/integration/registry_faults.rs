//! Faults: through a proxy that drops connections, answers 500 and 429, cuts request bodies and
//! loses answers, a push completes and the registry holds the image byte for byte; a registry
//! that stays down fails the command within a bounded time with a clear message.

use crate::registry_util::*;
use crate::util::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The first time each request (method and path; upload sessions count as one path) is seen it
/// fails, in turn, in each of these ways; later tries go through, so the push must retry (and
/// resume or restart uploads) to finish.
const FAULTS: [Fault; 5] = [Fault::Drop, Fault::Status(500), Fault::Status(429), Fault::CutBody, Fault::DropResponse];

#[test]
fn push_through_a_faulty_proxy_completes_and_verifies_byte_for_byte() {
    let b = hello();
    let reg = Registry::plain();
    let turn = std::sync::atomic::AtomicUsize::new(0);
    let proxy = Proxy::start(reg.port, move |_, _, n| {
        if n == 0 {
            FAULTS[turn.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % FAULTS.len()]
        } else {
            Fault::Forward
        }
    });
    let reference = format!("{}/faulty/hello:1", proxy.addr());
    let layout = format!("oci:{}", b.layout().display());
    let mut c = release_oci();
    c.args(["push", &layout, &reference]);
    let out = ok(c);
    assert_eq!(out.trim(), format!("{}/faulty/hello@{}", proxy.addr(), b.digest));
    let faults: Vec<Fault> = proxy.requests().iter().map(|r| r.fault).filter(|f| *f != Fault::Forward).collect();
    for f in FAULTS {
        assert!(faults.contains(&f), "fault {f:?} was not injected: {faults:?}");
    }

    // Straight from the registry: same digest, and every blob equal to the local one.
    assert_eq!(skopeo_digest(&format!("{}/faulty/hello:1", reg.addr()), &[]), b.digest);
    assert_registry_matches_layout(&format!("{}/faulty/hello:1", reg.addr()), &b.layout());
}

/// Copies `reference` out of the registry (skopeo, blobs as they are) and compares every blob
/// with the one of the same digest in `layout`, byte for byte.
fn assert_registry_matches_layout(reference: &str, layout: &std::path::Path) {
    let copy = crate::util::tempdir().expect("tempdir");
    skopeo_copy_to_layout(reference, &copy.path().join("oci"), &[]);
    let local = layout.join("blobs/sha256");
    let pulled = copy.path().join("oci/blobs/sha256");
    let mut compared = 0;
    for e in std::fs::read_dir(&pulled).expect("pulled blobs") {
        let name = e.expect("entry").file_name();
        let (a, b) = (std::fs::read(pulled.join(&name)).expect("pulled"), std::fs::read(local.join(&name)));
        assert_eq!(Some(&a), b.as_ref().ok(), "blob {name:?} differs from the local one");
        compared += 1;
    }
    assert!(compared >= 3, "manifest, config and layers: {compared}");
}

#[test]
fn a_registry_that_stays_down_fails_in_bounded_time() {
    let b = hello();
    let layout = format!("oci:{}", b.layout().display());
    let port = free_port();
    let reference = format!("127.0.0.1:{port}/down/hello:1");
    let mut c = release_oci();
    c.args(["push", &layout, &reference]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = wait_bounded(c, Duration::from_secs(120));
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("check that it runs"), "{err}");
    assert!(err.contains("failed 6 times"), "{err}");

    // A registry answering 503 to everything: the same, naming the registry.
    let reg = Registry::plain();
    let proxy = Proxy::start(reg.port, |_, _, _| Fault::Status(503));
    let mut c = release_oci();
    c.args(["push", &layout, &format!("{}/down/hello:1", proxy.addr())]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = wait_bounded(c, Duration::from_secs(120));
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&proxy.addr()) && err.contains("503"), "{err}");
}

/// Runs `c`, killing it (and failing the test) if it is still running after `limit`: the
/// command must give up on its own.
fn wait_bounded(mut c: std::process::Command, limit: Duration) -> std::process::Output {
    let mut child = c.spawn().expect("spawn");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("still running after {limit:?}; stderr:\n{}", text(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Chunked uploads (64 KiB chunks, through the library) resume where the registry says the
/// session stands after chunks are cut short, lost or refused.
#[test]
fn chunked_uploads_resume_after_faults() {
    use release_oci::registry::{
        Bars, BlobRef, BlobSource, Client, PushImage, PushTarget, RegistryOptions, push_image,
    };
    let b = hello();
    let reg = Registry::plain();
    let proxy = Proxy::start(reg.port, |method, target, n| match (method, n) {
        ("PATCH", 3) => Fault::CutBody,
        ("PATCH", 7) => Fault::DropResponse,
        ("PATCH", 11) => Fault::Status(500),
        ("PATCH", 15) => Fault::Drop,
        ("GET", 0) if target.contains("/blobs/uploads/") => Fault::Status(503),
        _ => Fault::Forward,
    });
    let layout = b.layout();
    let manifest = layout_manifest(&layout);
    let blobs = layout.join("blobs/sha256");
    let blob = |d: &serde_json::Value, label: &str| BlobRef {
        digest: d["digest"].as_str().expect("digest").parse().expect("sha256"),
        size: d["size"].as_u64().expect("size"),
        label: label.to_string(),
        source: BlobSource::File(blobs.join(d["digest"].as_str().expect("digest").trim_start_matches("sha256:"))),
    };
    let manifest_digest = b.digest.clone();
    let image = PushImage {
        manifest: std::fs::read(blobs.join(manifest_digest.trim_start_matches("sha256:"))).expect("manifest"),
        manifest_digest: manifest_digest.parse().expect("sha256"),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        config: blob(&manifest["config"], "config"),
        layers: manifest["layers"].as_array().expect("layers").iter().map(|l| blob(l, "layer")).collect(),
    };
    let target = PushTarget { repository: "chunked/hello".into(), tags: vec!["1".into()], ..Default::default() };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let summary = rt
        .block_on(async {
            let client = Client::connect(
                &proxy.addr(),
                &RegistryOptions::default(),
                vec!["repository:chunked/hello:pull,push".into()],
            )
            .await?
            .with_chunk_size(64 * 1024);
            push_image(&client, &image, &target, &Bars::hidden()).await
        })
        .unwrap_or_else(|e| panic!("push failed: {e:?}"));
    assert_eq!(summary.uploaded, image.layers.len() + 1);
    let patches = proxy.count("PATCH", "/blobs/uploads/");
    let total: u64 = image.layers.iter().map(|l| l.size).sum::<u64>() + image.config.size;
    assert!(patches as u64 >= total / (64 * 1024), "uploaded in chunks: {patches} PATCHes for {total} bytes");
    assert!(proxy.count("GET", "/blobs/uploads/") >= 2, "resumed from the session's state: {:#?}", proxy.requests());
    // Sessions went on after a failed chunk (a session the registry dropped, as after a cut
    // body, is started over instead): at least the one whose answer was lost resumed.
    let reqs = proxy.requests();
    let session = |t: &str| t.split('?').next().unwrap_or(t).to_string();
    let resumed = reqs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.method == "PATCH" && r.fault != Fault::Forward)
        .filter(|(i, r)| {
            reqs[i + 1..]
                .iter()
                .any(|l| l.method == "PATCH" && l.fault == Fault::Forward && session(&l.target) == session(&r.target))
        })
        .count();
    assert!(resumed >= 1, "no session resumed after a fault: {reqs:#?}");
    assert_eq!(skopeo_digest(&format!("{}/chunked/hello:1", reg.addr()), &[]), b.digest);
    assert_registry_matches_layout(&format!("{}/chunked/hello:1", reg.addr()), &layout);
}
