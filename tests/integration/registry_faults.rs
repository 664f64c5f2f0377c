//! Faults: through a proxy that drops connections, answers 500 and 429, cuts request bodies and
//! loses answers, a push completes and the registry holds the image byte for byte; a registry
//! that stays down fails the command within a bounded time with a clear message.

use crate::registry_util::*;
use crate::util::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The first time each request (method and path) is seen it fails, in turn, in each of these
/// ways; later tries of it go through, so the push must retry (and resume) to finish.
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
    let copy = tempfile::tempdir().expect("tempdir");
    skopeo_copy_to_layout(&format!("{}/faulty/hello:1", reg.addr()), &copy.path().join("oci"), &[]);
    let local = b.layout().join("blobs/sha256");
    let pulled = copy.path().join("oci/blobs/sha256");
    let mut compared = 0;
    for e in std::fs::read_dir(&pulled).expect("pulled blobs") {
        let name = e.expect("entry").file_name();
        let (a, b2) = (std::fs::read(pulled.join(&name)).expect("pulled"), std::fs::read(local.join(&name)));
        assert_eq!(Some(&a), b2.as_ref().ok(), "blob {name:?} differs from the local one");
        compared += 1;
    }
    assert!(compared >= 7, "manifest, config and layers: {compared}");
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
