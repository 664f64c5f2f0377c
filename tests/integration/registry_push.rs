//! Pushing to a real registry (Debian's docker-registry on 127.0.0.1): the digest is the local
//! one for skopeo and the Docker engine, which runs the pulled image; a second push uploads no
//! blob, and after a one-line change only the changed layers and the config are uploaded.

use crate::registry_util::*;
use crate::util::*;
use std::time::Duration;

fn push_cmd(image: &str, reference: &str, extra: &[&str]) -> std::process::Command {
    let mut c = release_oci();
    c.args(["push", image, reference]).args(extra);
    c
}

#[test]
fn pushed_image_has_the_local_digest_and_runs_after_docker_pull() {
    let b = hello();
    let reg = Registry::plain();
    let reference = format!("{}/hello/web:1", reg.addr());
    let layout = format!("oci:{}", b.layout().display());
    let out = ok(push_cmd(&layout, &reference, &["--tag", "latest"]));
    assert_eq!(out.trim(), format!("{}/hello/web@{}", reg.addr(), b.digest));
    for tag in ["1", "latest"] {
        assert_eq!(skopeo_digest(&format!("{}/hello/web:{tag}", reg.addr()), &[]), b.digest);
    }
    // The archive pushes the same image.
    let archive = format!("docker-archive:{}", b.archive().display());
    let out = ok(push_cmd(&archive, &format!("{}/hello/archive:a", reg.addr()), &[]));
    assert_eq!(out.trim(), format!("{}/hello/archive@{}", reg.addr(), b.digest));

    require_docker();
    docker_ok(&["pull", &reference]);
    let id = docker_ok(&["image", "inspect", "-f", "{{.Id}}", &reference]);
    assert_eq!(id.trim(), layout_manifest(&b.layout())["config"]["digest"].as_str().expect("config digest"));
    let c = Container::start(&[], &reference, &[]);
    let (status, body) = c.get("/", Duration::from_secs(30));
    assert_eq!(status, 200);
    assert!(body.contains("hello from hello_web"), "{body}");
    drop(c);
    let _ = docker(&["rmi", &reference]);
}

#[test]
fn repush_uploads_nothing_and_a_one_line_change_uploads_only_what_changed() {
    let b = hello();
    let reg = Registry::plain();
    let proxy = Proxy::counting(reg.port);
    let layout = format!("oci:{}", b.layout().display());
    let reference = format!("{}/team/hello:1", proxy.addr());
    ok(push_cmd(&layout, &reference, &[]));
    let manifest = layout_manifest(&b.layout());
    let mut all: Vec<String> = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect();
    all.push(manifest["config"]["digest"].as_str().expect("config").to_string());
    all.sort();
    all.dedup();
    assert_eq!(proxy.uploaded_digests(), all, "the first push uploads every blob");

    // Again: HEADs and the manifest, no upload at all.
    proxy.clear();
    let mut c = push_cmd(&layout, &reference, &[]);
    c.env("RUST_LOG", "release_oci=warn");
    let o = run(c);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("0 uploaded"), "{}", text(&o.stderr));
    assert_eq!(proxy.count("POST", "/blobs/uploads/"), 0, "{:#?}", proxy.requests());
    assert_eq!(proxy.count("PATCH", "/blobs/uploads/"), 0);
    assert_eq!(proxy.count("PUT", "/blobs/uploads/"), 0);
    assert_eq!(proxy.count("PUT", "/manifests/1"), 1);

    // A one-line change in the app, built and pushed with `build --push` to the same repository.
    proxy.clear();
    let project = copy_example("hello_web");
    let router = project.path().join("lib/hello_web/router.ex");
    let src = std::fs::read_to_string(&router).expect("router.ex");
    std::fs::write(&router, src.replace("hello from hello_web", "hello again from hello_web")).expect("write");
    let out = crate::util::tempdir().expect("tempdir");
    let mut c = release_oci();
    // No SBOM: its blobs would go up too (tests/integration/supply_chain.rs checks those).
    c.arg("build")
        .arg(project.path())
        .args(["--port", "4000", "--sbom", "none", "--push", &format!("{}/team/hello:2", proxy.addr())])
        .arg("--output")
        .arg(format!("oci:{}", out.path().display()));
    let pushed = ok(c);
    let new_manifest = layout_manifest(out.path());
    let (repo, digest) = pushed.trim().split_once('@').expect("REPO@DIGEST on stdout");
    assert_eq!(repo, format!("{}/team/hello", proxy.addr()));
    let new_layers: Vec<String> = new_manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect();
    let mut changed: Vec<String> = new_layers.iter().filter(|d| !all.contains(d)).cloned().collect();
    changed.push(new_manifest["config"]["digest"].as_str().expect("config").to_string());
    changed.sort();
    assert_eq!(proxy.uploaded_digests(), changed, "only the changed layers and the config go up");
    assert!(changed.len() <= 3, "a one-line change touches app (and release) only: {changed:?}");
    assert!(new_layers.len() - (changed.len() - 1) >= 4, "base, runtime, erts and otp are reused");
    assert_eq!(skopeo_digest(&format!("{}/team/hello:2", reg.addr()), &[]), digest);
}
