//! The supply chain of a multi-platform image, checked by the real verifiers: hello_web for
//! x86_64 and aarch64 (the aarch64 half under qemu-user: `make setup-arm64`), signed with a key
//! from `cosign generate-key-pair` and pushed to Debian's docker-registry (no referrers API: the
//! referrers tag schema).
//! - `cosign verify` passes for the index and for each platform manifest;
//!   `cosign verify-attestation --type slsaprovenance1` passes for each too (the index's
//!   provenance names its images), and `release-oci verify` passes;
//! - each platform's SBOM, read back through the referrers tag, is the file `--sbom-dir` wrote,
//!   passes pyspdxtools and sbomcheck (NTIA), lists the `.rel` applications and the lock, and the
//!   Debian packages of its own architecture;
//! - one byte changed in the index or in a platform manifest (pushed under the tag, or changed in
//!   the registry's storage) fails `cosign verify` and `release-oci verify`.

use crate::registry_util::*;
use crate::supply_chain::*;
use crate::util::*;
use serde_json::Value;
use std::path::Path;

const X86_64: &str = "x86_64-unknown-linux-gnu";
const AARCH64: &str = "aarch64-unknown-linux-gnu";
const ARM64_BUILDER: &str = "release-oci/builder:debian-bookworm-arm64";
const AMD64_BUILDER: &str = "release-oci/builder:debian-bookworm";
const INDEX_MEDIA: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST_MEDIA: &str = "application/vnd.oci.image.manifest.v1+json";

/// Fails (never skips) without the arm64 images and qemu-aarch64 (`make setup-arm64`).
fn require_arm64() {
    require_docker();
    let binfmt = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64").unwrap_or_default();
    assert!(binfmt.lines().any(|l| l == "enabled"), "qemu-aarch64 is not registered: run `make setup-arm64`");
    for image in [ARM64_BUILDER, "release-oci/runtime:debian-bookworm-arm64"] {
        let o = docker(&["image", "inspect", "--format", "{{.Architecture}}", image]);
        assert!(o.status.success() && text(&o.stdout).trim() == "arm64", "{image} is missing: run `make setup-arm64`");
    }
}

/// PUTs `bytes` as a manifest of `media_type` at `reference` (a tag) of `repo`.
fn put_manifest(addr: &str, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
    let mut c = tool("curl");
    c.args(["-sSf", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {media_type}"))
        .arg("--data-binary")
        .arg("@-")
        .arg(format!("http://{addr}/v2/{repo}/manifests/{reference}"));
    let mut child = c.stdin(std::process::Stdio::piped()).spawn().expect("curl");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), bytes).expect("write");
    assert!(child.wait().expect("curl").success(), "PUT {repo}:{reference}");
}

/// One byte of `bytes` changed, keeping it JSON: the first version `0.1.0` becomes `0.1.1`, or a
/// space is added after the document.
fn changed_byte(bytes: &[u8]) -> Vec<u8> {
    let s = String::from_utf8(bytes.to_vec()).expect("utf-8");
    let out = if s.contains("\"0.1.0\"") { s.replacen("\"0.1.0\"", "\"0.1.1\"", 1) } else { format!("{s} ") };
    assert_ne!(out.as_bytes(), bytes);
    out.into_bytes()
}

fn verify_fails(reference: &str, public: &Path, why: &str) {
    let o = cosign(&["verify"], reference, public);
    assert!(!o.status.success(), "cosign verified {reference}");
    let mut c = release_oci();
    c.args(["verify", reference, "--key"]).arg(public);
    let o = run(c);
    let err = text(&o.stderr);
    assert!(!o.status.success() && err.contains(why), "release-oci verify {reference}:\n{err}");
}

/// The pushed index: where it is and what it lists.
struct Pushed {
    reg: Registry,
    repo: &'static str,
    index: String,
    index_bytes: Vec<u8>,
    /// (digest, architecture) of each platform image, in the index's order.
    platforms: Vec<(String, String)>,
    sboms: tempfile::TempDir,
    /// Holds the OCI layout `oci/` the build wrote.
    layout: tempfile::TempDir,
    _project: ProjectCopy,
}

impl Pushed {
    fn repo_ref(&self) -> String {
        format!("{}/{}", self.reg.addr(), self.repo)
    }

    fn by_digest(&self, d: &str) -> String {
        format!("{}@{d}", self.repo_ref())
    }
}

/// hello_web (with `GIT_LOCK`) for both triples, signed with `key`, pushed as `multi/web:1`.
fn signed_index(key: &Path) -> Pushed {
    let reg = Registry::plain();
    let repo = "multi/web";
    let project = copy_example("hello_web");
    std::fs::write(project.path().join("mix.lock"), GIT_LOCK).expect("mix.lock");
    let (sboms, layout) = (crate::util::tempdir().expect("tmp"), crate::util::tempdir().expect("tmp"));
    let mut c = release_oci();
    c.arg("build")
        .arg(project.path())
        .args(["--triple", X86_64, "--triple", AARCH64, "--port", "4000", "--annotation", VENDOR])
        .args(["--push", &format!("{}/{repo}:1", reg.addr()), "--sign-key"])
        .arg(key)
        .arg("--sbom-dir")
        .arg(sboms.path())
        .arg("--output")
        .arg(format!("oci:{}:1", layout.path().join("oci").display()))
        .env("COSIGN_PASSWORD", PASSWORD);
    let index = ok(c).trim().split_once('@').expect("REPO@DIGEST").1.to_string();
    let index_bytes = get(&reg.addr(), &format!("{repo}/manifests/{index}"));
    let v: Value = serde_json::from_slice(&index_bytes).expect("index");
    assert_eq!(v["mediaType"], INDEX_MEDIA);
    let platforms: Vec<(String, String)> = v["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| (text_of(&m["digest"]), text_of(&m["platform"]["architecture"])))
        .collect();
    assert_eq!(platforms.iter().map(|(_, a)| a.as_str()).collect::<Vec<_>>(), ["amd64", "arm64"]);
    Pushed { reg, repo, index, index_bytes, platforms, sboms, layout, _project: project }
}

fn text_of(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

/// cosign and release-oci verify: the index and each platform signed, with provenance; the
/// index's provenance names its images.
fn all_verify(p: &Pushed, public: &Path) {
    for d in std::iter::once(&p.index).chain(p.platforms.iter().map(|(d, _)| d)) {
        let o = cosign(&["verify"], &p.by_digest(d), public);
        assert!(o.status.success(), "cosign verify {d}:\n{}", text(&o.stderr));
        let o = cosign(&["verify-attestation", "--type", "slsaprovenance1"], &p.by_digest(d), public);
        assert!(o.status.success(), "cosign verify-attestation {d}:\n{}", text(&o.stderr));
    }
    let o = cosign(&["verify"], &format!("{}:1", p.repo_ref()), public);
    assert!(o.status.success(), "cosign verify of the tag:\n{}", text(&o.stderr));
    let statement: Value =
        serde_json::from_slice(&provenance_payload(&p.reg.addr(), p.repo, &p.index)).expect("statement");
    let deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"].as_array().expect("deps");
    for (d, _) in &p.platforms {
        let hex = d.trim_start_matches("sha256:");
        assert!(deps.iter().any(|r| r["digest"]["sha256"] == hex), "the index's provenance lacks {d}");
    }
    let mut c = release_oci();
    c.args(["verify", &format!("{}:1", p.repo_ref()), "--key"]).arg(public);
    let report = ok(c);
    assert_eq!(report.matches(" ok: ").count(), 9, "{report}");
}

/// Each platform's SBOM: through the referrers tag, the same as --sbom-dir's, valid, complete,
/// about its own image and architecture.
fn sboms_per_platform(p: &Pushed) {
    let files: Vec<_> = std::fs::read_dir(p.sboms.path()).expect("dir").map(|e| e.expect("e").path()).collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let layout = p.layout.path().join("oci");
    for ((d, arch), builder) in p.platforms.iter().zip([AMD64_BUILDER, ARM64_BUILDER]) {
        let sbom = sbom_through_referrers_tag(&p.reg.addr(), p.repo, d);
        let file = files
            .iter()
            .find(|f| f.to_string_lossy().contains(&format!("-linux-{arch}")))
            .unwrap_or_else(|| panic!("no --sbom-dir file for {arch}: {files:?}"));
        assert_eq!(sbom, std::fs::read(file).expect("sbom file"), "{arch}: pushed and written SBOMs differ");
        validators_pass(file);
        let doc: Value = serde_json::from_slice(&sbom).expect("json");
        let manifest: Value =
            serde_json::from_slice(&get(&p.reg.addr(), &format!("{}/manifests/{d}", p.repo))).expect("manifest");
        assert_lists(&doc, &rel_apps(&rel_in_manifest(&layout, &manifest)), "application");
        assert_lists(&doc, &lock_entries(GIT_LOCK), "mix.lock entry");
        let image = doc["packages"].as_array().expect("p").iter().find(|p| p["SPDXID"] == "SPDXRef-Image").expect("i");
        let purl = image["externalRefs"][0]["referenceLocator"].as_str().expect("purl");
        assert!(purl.contains(&d.replace(':', "%3A")) && purl.contains(&format!("arch={arch}")), "{purl}");
        assert_debian_packages(&doc, builder, &format!("linux/{arch}"), arch);
    }
}

/// The index's own SBOM: through the referrers tag, valid, the index CONTAINS each platform's
/// image, each described by that platform's SBOM (named with its SHA-256).
fn index_sbom(p: &Pushed) {
    let sbom = sbom_through_referrers_tag(&p.reg.addr(), p.repo, &p.index);
    let dir = crate::util::tempdir().expect("tmp");
    let file = dir.path().join("index.spdx.json");
    std::fs::write(&file, &sbom).expect("write");
    validators_pass(&file);
    let doc: Value = serde_json::from_slice(&sbom).expect("json");
    assert_eq!(doc["packages"][0]["checksums"][0]["checksumValue"], p.index.trim_start_matches("sha256:"), "{doc}");
    for (n, (d, _)) in p.platforms.iter().enumerate() {
        let package = &doc["packages"][n + 1];
        assert_eq!(package["checksums"][0]["checksumValue"], d.trim_start_matches("sha256:"), "{doc}");
        let platform_sbom = sbom_through_referrers_tag(&p.reg.addr(), p.repo, d);
        let sum = &doc["externalDocumentRefs"][n]["checksum"]["checksumValue"];
        assert_eq!(sum.as_str(), Some(sha256_hex(&platform_sbom).as_str()), "{doc}");
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn a_signed_multi_platform_index_verifies_per_platform_and_a_changed_byte_fails() {
    require_arm64();
    let keys = crate::util::tempdir().expect("tmp");
    let (key, public) = key_pair(keys.path());
    let p = signed_index(&key);
    all_verify(&p, &public);
    sboms_per_platform(&p);
    index_sbom(&p);
    let (addr, repo) = (p.reg.addr(), p.repo);

    // One byte changed in the index, pushed under the tag: no signature names it.
    put_manifest(&addr, repo, "1", INDEX_MEDIA, &changed_byte(&p.index_bytes));
    verify_fails(&format!("{}:1", p.repo_ref()), &public, "signature");
    // One byte changed in the arm64 manifest, pushed under a tag: no signature names it.
    let (arm, _) = &p.platforms[1];
    let arm_bytes = get(&addr, &format!("{repo}/manifests/{arm}"));
    put_manifest(&addr, repo, "arm-changed", MANIFEST_MEDIA, &changed_byte(&arm_bytes));
    verify_fails(&format!("{}:arm-changed", p.repo_ref()), &public, "signature");
    // One byte changed in the registry's copy of the signed arm64 manifest: verifying the signed
    // index reads it and finds another digest.
    let hex = arm.trim_start_matches("sha256:");
    let stored = p.reg.dir.path().join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
    std::fs::write(&stored, changed_byte(&std::fs::read(&stored).expect("stored manifest"))).expect("write");
    let mut c = release_oci();
    c.args(["verify", &p.by_digest(&p.index), "--key"]).arg(&public);
    let o = run(c);
    assert!(!o.status.success() && text(&o.stderr).contains("digest"), "{}", text(&o.stderr));
}
