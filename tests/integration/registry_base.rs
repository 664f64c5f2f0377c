//! `--base` from a registry: the runtime base is pulled (into the blob cache, by digest), the
//! image runs, records the base's name and digest, and pushing to the same registry mounts the
//! base layer instead of uploading it.

use crate::registry_util::*;
use crate::util::*;
use std::time::Duration;

#[test]
fn base_from_the_registry_gives_an_image_that_runs_with_base_layers_mounted() {
    require_docker();
    let reg = Registry::plain();
    let base = format!("{}/base/runtime:1", reg.addr());
    push_runtime_base(&base);
    let base_digest = skopeo_digest(&base, &[]);

    // Base and target through the same address, so they are the same registry.
    let proxy = Proxy::counting(reg.port);
    let base = format!("{}/base/runtime:1", proxy.addr());
    let project = copy_example("hello_web");
    let out = crate::util::tempdir().expect("tempdir");
    let tag = format!("release-oci-test/registry-base:{}", std::process::id());
    let target = format!("{}/apps/hello:1", proxy.addr());
    let mut c = release_oci();
    c.arg("build")
        .arg(project.path())
        .args(["--base", &base, "--push", &target, "--load", "--tag", &tag, "--port", "4000"])
        .arg("--output")
        .arg(format!("oci:{}", out.path().display()));
    let o = run(c);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("1 mounted"), "{err}");
    let manifest = layout_manifest(out.path());
    let digest = text(&o.stdout).trim().rsplit_once('@').map(|(_, d)| d.to_string()).expect("REPO@DIGEST");
    assert_eq!(skopeo_digest(&format!("{}/apps/hello:1", reg.addr()), &[]), digest);

    // The base layer came by mount: one mount request, and no upload of it.
    let base_layer = manifest["layers"][0]["digest"].as_str().expect("base layer").to_string();
    assert_eq!(proxy.count("POST", &format!("mount={base_layer}")), 1, "{:#?}", proxy.requests());
    assert!(!proxy.uploaded_digests().contains(&base_layer));
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["org.opencontainers.image.base.name"], base.as_str());
    assert_eq!(annotations["org.opencontainers.image.base.digest"], base_digest.as_str());

    let c = Container::start(&[], &tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(30));
    assert_eq!(status, 200);
    assert!(body.contains("hello from hello_web"), "{body}");
    drop(c);
    let _ = docker(&["rmi", &tag]);
}
