//! The result cache shared through a registry (`--cache-repo`, docs/build-cache.md): runner A
//! builds and publishes; runner B (another checkout of the same sources, its own empty blob
//! store) reuses A's image without any builder, its `--push` mounting every blob from the cache
//! repository (none downloaded, none uploaded); `-o oci:DIR` on a hit downloads the layers and
//! writes the same image; a one-line change misses and builds. skopeo reads the cache artifact.

use crate::registry_util::*;
use crate::util::*;
use std::path::Path;

const ASSEMBLING: &str = "Assembling the release";
const REUSING: &str = "Reusing the image built for this fingerprint from";

/// This test's copy of the binary: the executable's digest is part of the fingerprint, and the
/// one in target/ may be rebuilt (by another cargo command) while the test runs.
fn binary() -> &'static Path {
    static COPY: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> = std::sync::OnceLock::new();
    let (_, path) = COPY.get_or_init(|| {
        let dir = crate::util::tempdir().expect("tempdir");
        let path = dir.path().join("release-oci");
        std::fs::copy(release_oci().get_program(), &path).expect("copy the binary");
        (dir, path)
    });
    path
}

/// `release-oci build PROJECT EXTRA` with its own blob store; (stdout, stderr).
fn build(project: &Path, store: &Path, extra: &[&str]) -> (String, String) {
    let mut c = std::process::Command::new(binary());
    c.env_remove("SOURCE_DATE_EPOCH").stdin(std::process::Stdio::null());
    c.env("RELEASE_OCI_CACHE", store).arg("build").arg(project).args(extra);
    let desc = format!("{c:?}");
    let o = run(c);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{desc} failed ({}):\n--- stderr\n{stderr}\n--- stdout\n{stdout}", o.status);
    (stdout.trim().to_string(), stderr)
}

/// The digest of `REPO@sha256:…` (or of a bare digest).
fn digest_of(stdout: &str) -> String {
    stdout.rsplit('@').next().unwrap_or(stdout).to_string()
}

/// The `rc-…` tag a log names.
fn cache_tag(log: &str) -> String {
    let at = log.find(":rc-").or_else(|| log.find("(rc-")).expect("the log names the cache tag");
    log[at + 1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect()
}

/// The config and layer digests of the image at `reference`.
fn blobs_of(reference: &str) -> Vec<String> {
    let raw = skopeo_inspect(reference, &["--tls-verify=false", "--raw"]);
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).expect("manifest");
    let mut out = vec![manifest["config"]["digest"].as_str().expect("config").to_string()];
    for l in manifest["layers"].as_array().expect("layers") {
        out.push(l["digest"].as_str().expect("digest").to_string());
    }
    out
}

/// Removes the result-cache records and build cache volumes of `project` in `store`.
fn prune(project: &Path, store: &Path) {
    let mut c = release_oci();
    c.env("RELEASE_OCI_CACHE", store).args(["cache", "prune", "--project"]).arg(project);
    let _ = c.output();
}

#[test]
fn a_second_runner_reuses_the_first_runners_image_through_the_registry() {
    require_docker();
    let reg = Registry::plain();
    let proxy = Proxy::counting(reg.port);
    let cache = format!("{}/cache/hello", proxy.addr());
    let (store_a, store_b, store_c) =
        (crate::util::tempdir().unwrap(), crate::util::tempdir().unwrap(), crate::util::tempdir().unwrap());
    let (project_a, project_b) = (copy_example("hello_web"), copy_example("hello_web"));

    // Runner A: builds, pushes, publishes the result.
    let push_a = format!("{}/app/hello:1", proxy.addr());
    let (out_a, log_a) = build(project_a.path(), store_a.path(), &["--cache-repo", &cache, "--push", &push_a]);
    assert!(log_a.contains(ASSEMBLING) && !log_a.contains(REUSING), "runner A must build:\n{log_a}");
    assert!(log_a.contains("Publishing the result to the registry cache"), "{log_a}");
    let digest = digest_of(&out_a);
    let tag = cache_tag(&log_a);
    assert!(tag.len() == 67, "{tag}");
    // The cache artifact is an ordinary OCI index: skopeo reads it (and the image it lists).
    let inspected = format!("{}/cache/hello:{tag}", reg.addr());
    // (skopeo's `Digest` is the index's own; the image is the one it lists.)
    let index_digest = skopeo_digest(&inspected, &[]);
    assert_ne!(index_digest, digest);
    let raw = skopeo_inspect(&inspected, &["--tls-verify=false", "--raw"]);
    assert!(raw.status.success(), "{}", text(&raw.stderr));
    let raw = text(&raw.stdout);
    assert!(raw.contains("org.release-oci.result-cache.fingerprint") && raw.contains(&digest), "{raw}");

    // Runner B: another checkout, an empty store: no builder, every blob mounted.
    proxy.clear();
    let push_b = format!("{}/app/hello:2", proxy.addr());
    let (out_b, log_b) = build(project_b.path(), store_b.path(), &["--cache-repo", &cache, "--push", &push_b]);
    assert!(log_b.contains(&format!("{REUSING} {cache} ({tag})")), "not reused:\n{log_b}");
    assert!(!log_b.contains(ASSEMBLING), "the builder ran on a hit:\n{log_b}");
    assert_eq!(digest_of(&out_b), digest, "the pushed digest is runner A's");
    assert_eq!(skopeo_digest(&format!("{}/app/hello:2", reg.addr()), &[]), digest);
    assert!(proxy.uploaded_digests().is_empty(), "runner B uploaded blobs: {:?}", proxy.uploaded_digests());
    // (app/hello has every blob from runner A's push: each is "already there".)
    // Into a repository that has none of them: every blob is mounted from the cache repository.
    proxy.clear();
    let other = format!("{}/other/hello:1", proxy.addr());
    let (out_o, log_o) = build(project_b.path(), store_b.path(), &["--cache-repo", &cache, "--push", &other]);
    assert!(log_o.contains(REUSING) && !log_o.contains(ASSEMBLING), "{log_o}");
    assert_eq!(digest_of(&out_o), digest);
    // Only the attachments (the SBOM and its empty config) are new blobs; the image's are mounted.
    let image_blobs = blobs_of(&format!("{}/other/hello:1", reg.addr()));
    let uploaded = proxy.uploaded_digests();
    assert!(uploaded.iter().all(|d| !image_blobs.contains(d)), "image blobs uploaded: {uploaded:?}");
    assert!(proxy.count("POST", "mount=") > 0, "nothing was mounted:\n{log_o}");
    let manifest: serde_json::Value = serde_json::from_str(&text(
        &skopeo_inspect(&format!("{}/app/hello:2", reg.addr()), &["--tls-verify=false", "--raw"]).stdout,
    ))
    .expect("manifest");
    for layer in manifest["layers"].as_array().expect("layers") {
        let d = layer["digest"].as_str().expect("digest");
        assert_eq!(proxy.count("GET", &format!("/blobs/{d}")), 0, "runner B downloaded layer {d}");
    }

    // Runner C: `-o oci:DIR` on a hit downloads the layers and writes A's image.
    let out = crate::util::tempdir().unwrap();
    let layout = out.path().join("layout");
    let target = format!("oci:{}", layout.display());
    let (out_c, log_c) = build(project_b.path(), store_c.path(), &["--cache-repo", &cache, "-o", &target]);
    assert!(log_c.contains(REUSING) && !log_c.contains(ASSEMBLING), "{log_c}");
    assert_eq!(digest_of(&out_c), digest);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json")).expect("json");
    assert_eq!(index["manifests"][0]["digest"].as_str(), Some(digest.as_str()));
    for layer in layout_manifest(&layout)["layers"].as_array().expect("layers") {
        let hex = layer["digest"].as_str().expect("digest").trim_start_matches("sha256:").to_string();
        assert!(layout.join("blobs/sha256").join(hex).is_file(), "the layout lacks a layer");
    }

    // A one-line change on runner B: a miss, the builder runs.
    let router = project_b.path().join("lib/hello_web/router.ex");
    let src = std::fs::read_to_string(&router).expect("router.ex");
    std::fs::write(&router, src.replace("hello from hello_web", "changed from hello_web")).expect("write");
    let push_b3 = format!("{}/app/hello:3", proxy.addr());
    let (out_b3, log_b3) = build(project_b.path(), store_b.path(), &["--cache-repo", &cache, "--push", &push_b3]);
    assert!(log_b3.contains(ASSEMBLING) && !log_b3.contains(REUSING), "a change must build:\n{log_b3}");
    assert_ne!(digest_of(&out_b3), digest);

    prune(project_a.path(), store_a.path());
    prune(project_b.path(), store_b.path());
}
