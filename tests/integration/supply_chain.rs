//! The supply chain, checked by the real verifiers (scripts/setup-supply-chain.sh installs them):
//! hello_web built and pushed to Debian's docker-registry (no referrers API: the referrers tag
//! schema) with a key from `cosign generate-key-pair`; `cosign verify` and `cosign
//! verify-attestation --type slsaprovenance1` pass, and so does `release-oci verify`; the SBOM
//! read back through the referrers tag passes pyspdxtools and sbomcheck (NTIA) and lists every
//! application of the `.rel` file and every `mix.lock` entry with their versions; one changed byte
//! of a signed manifest fails verification; two builds give the same SBOM and provenance; a wrong
//! password fails before anything is sent.

use crate::registry_util::*;
use crate::util::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) const PASSWORD: &str = "release-oci test password";
pub(crate) const VENDOR: &str = "org.opencontainers.image.vendor=release-oci tests";
/// A git dependency the project does not use (mix ignores unused lock entries, and a lock with Hex
/// entries would need Hex in the builder): the SBOM lists it all the same.
pub(crate) const GIT_LOCK: &str = r#"%{
  "plug_x": {:git, "https://github.com/acme/plug_x.git", "0123456789abcdef0123456789abcdef01234567", [branch: "main"]},
}
"#;
/// Hex and git entries, for a build from a prebuilt release (no mix runs).
const HEX_LOCK: &str = r#"%{
  "decimal": {:hex, :decimal, "2.1.1", "5611dca5d4b2c3dd497dec8f68751f1f1a54755e8ed2a966c2633cf885973ad6", [:mix], [], "hexpm", "53cfe5f497ed0e7771ae1a475575603d77425099ba5faef9394932b35020ffcc"},
  "jason": {:hex, :jason, "1.4.4", "b9226785a9aa77b6857ca22832cffa5d5011a667207eb2a0ad56adb5db443b8a", [:mix], [{:decimal, "~> 1.0 or ~> 2.0", [hex: :decimal, repo: "hexpm", optional: true]}], "hexpm", "c5eb0cab91f094599f94d55bc63409236a8ec69a21a67814529e8d5f6cc90b3b"},
  "plug_x": {:git, "https://github.com/acme/plug_x.git", "0123456789abcdef0123456789abcdef01234567", [branch: "main"]},
}
"#;

pub(crate) fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    assert!(found, "this test needs `{name}`; run `make setup` (scripts/setup-supply-chain.sh installs it)");
    Command::new(name)
}

/// `cosign generate-key-pair` in `dir`: (cosign.key, cosign.pub).
pub(crate) fn key_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let mut c = tool("cosign");
    c.arg("generate-key-pair").current_dir(dir).env("COSIGN_PASSWORD", PASSWORD);
    ok(c);
    (dir.join("cosign.key"), dir.join("cosign.pub"))
}

pub(crate) fn cosign(args: &[&str], reference: &str, public: &Path) -> std::process::Output {
    let mut c = tool("cosign");
    c.args(args).arg("--key").arg(public).args(["--insecure-ignore-tlog=true", "--allow-insecure-registry", reference]);
    run(c)
}

/// GET `/v2/...` of the registry (manifests of any kind).
pub(crate) fn get(addr: &str, path: &str) -> Vec<u8> {
    let mut c = tool("curl");
    c.args(["-sSf", "-H"])
        .arg("Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
        .arg(format!("http://{addr}/v2/{path}"));
    let o = run(c);
    assert!(o.status.success(), "GET {path}: {}", text(&o.stderr));
    o.stdout
}

/// The SBOM of `digest`, found through the referrers tag `sha256-<hex>`.
pub(crate) fn sbom_through_referrers_tag(addr: &str, repo: &str, digest: &str) -> Vec<u8> {
    let tag = digest.replace(':', "-");
    let index: Value = serde_json::from_slice(&get(addr, &format!("{repo}/manifests/{tag}"))).expect("index");
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let entry = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["artifactType"] == "application/spdx+json")
        .unwrap_or_else(|| panic!("no SPDX referrer in {index}"));
    let referrer: Value =
        serde_json::from_slice(&get(addr, &format!("{repo}/manifests/{}", entry["digest"].as_str().expect("d"))))
            .expect("referrer");
    assert_eq!(referrer["subject"]["digest"], digest);
    get(addr, &format!("{repo}/blobs/{}", referrer["layers"][0]["digest"].as_str().expect("layer")))
}

/// The statement of the provenance (`.att`) of `digest`.
pub(crate) fn provenance_payload(addr: &str, repo: &str, digest: &str) -> Vec<u8> {
    use base64::Engine as _;
    let att: Value =
        serde_json::from_slice(&get(addr, &format!("{repo}/manifests/{}.att", digest.replace(':', "-")))).expect("att");
    let layer = att["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| l["annotations"]["predicateType"] == "https://slsa.dev/provenance/v1")
        .unwrap_or_else(|| panic!("no provenance in {att}"));
    let envelope: Value =
        serde_json::from_slice(&get(addr, &format!("{repo}/blobs/{}", layer["digest"].as_str().expect("d"))))
            .expect("dsse");
    base64::engine::general_purpose::STANDARD.decode(envelope["payload"].as_str().expect("payload")).expect("base64")
}

pub(crate) fn validators_pass(sbom: &Path) {
    for (name, args) in [("pyspdxtools", vec!["-i"]), ("sbomcheck", vec![])] {
        let mut c = tool(name);
        c.args(args).arg(sbom);
        let o = run(c);
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(o.status.success() && !all.to_lowercase().contains("error"), "{name} {}:\n{all}", sbom.display());
    }
}

/// `{app, "vsn"}` pairs of a `.rel` file (erts left out).
pub(crate) fn rel_apps(rel: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in rel.split('{').skip(1) {
        let Some((name, rest)) = part.split_once(',') else { continue };
        let Some(vsn) = rest.trim_start().strip_prefix('"').and_then(|r| r.split('"').next()) else { continue };
        let name = name.trim();
        if !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && name != "erts"
        {
            out.push((name.to_string(), vsn.to_string()));
        }
    }
    out
}

/// `"name": {:hex, :name, "vsn", ...}` → (name, vsn); `{:git, url, rev, ...}` → (name, rev).
pub(crate) fn lock_entries(lock: &str) -> Vec<(String, String)> {
    lock.lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().strip_prefix('"')?.split_once("\":")?;
            let quoted: Vec<&str> = rest.split('"').skip(1).step_by(2).collect();
            let version = if rest.contains("{:git,") { quoted.get(1)? } else { quoted.first()? };
            Some((name.to_string(), version.to_string()))
        })
        .collect()
}

pub(crate) fn assert_lists(sbom: &Value, wanted: &[(String, String)], what: &str) {
    let packages = sbom["packages"].as_array().expect("packages");
    assert!(!wanted.is_empty(), "no {what} to look for");
    for (name, version) in wanted {
        assert!(
            packages.iter().any(|p| p["name"] == name.as_str() && p["versionInfo"] == version.as_str()),
            "the SBOM lacks {what} {name} {version}"
        );
    }
}

/// The `.rel` file of hello_web from the image's layers in an OCI layout.
pub(crate) fn rel_from_layout(layout: &Path) -> String {
    rel_in_manifest(layout, &layout_manifest(layout))
}

/// The `.rel` file of hello_web from the layers of `manifest` (its blobs in the layout `layout`).
pub(crate) fn rel_in_manifest(layout: &Path, manifest: &Value) -> String {
    use std::io::Read;
    for l in manifest["layers"].as_array().expect("layers") {
        let hex = l["digest"].as_str().expect("digest").trim_start_matches("sha256:");
        let f = std::fs::File::open(layout.join("blobs/sha256").join(hex)).expect("layer");
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        for e in a.entries().expect("tar") {
            let mut e = e.expect("entry");
            let path = e.path().expect("path").to_string_lossy().into_owned();
            if path.contains("releases/") && path.ends_with("/hello_web.rel") {
                let mut s = String::new();
                e.read_to_string(&mut s).expect("rel");
                return s;
            }
        }
    }
    panic!("no hello_web.rel in {}", layout.display())
}

/// The version of the Debian package `name` in `image` (`dpkg-query -W`).
pub(crate) fn deb_version(image: &str, platform: &str, name: &str) -> String {
    let o = docker(&[
        "run",
        "--rm",
        "--platform",
        platform,
        "--entrypoint",
        "dpkg-query",
        image,
        "-W",
        "-f",
        "${Version}",
        name,
    ]);
    assert!(o.status.success(), "dpkg-query {name} in {image}: {}", text(&o.stderr));
    text(&o.stdout).trim().to_string()
}

/// The SBOM lists the Debian packages the minimal base took from `builder` (its `arch`): libc6 and
/// busybox-static at the versions the builder has, as `pkg:deb/debian/NAME@VERSION?arch=ARCH`
/// with Debian as the supplier; none of another architecture.
pub(crate) fn assert_debian_packages(sbom: &Value, builder: &str, platform: &str, arch: &str) {
    let packages = sbom["packages"].as_array().expect("packages");
    let debs: Vec<&Value> = packages
        .iter()
        .filter(|p| p["externalRefs"][0]["referenceLocator"].as_str().is_some_and(|l| l.starts_with("pkg:deb/")))
        .collect();
    for name in ["libc6", "busybox-static"] {
        let version = deb_version(builder, platform, name);
        let encoded = version.replace(':', "%3A").replace('+', "%2B");
        let want = format!("pkg:deb/debian/{name}@{encoded}?arch={arch}");
        let p = debs
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no Debian package {name} in the SBOM: {debs:#?}"));
        assert_eq!(p["externalRefs"][0]["referenceLocator"], want.as_str());
        assert_eq!(p["versionInfo"], version.as_str());
        assert_eq!(p["supplier"], "Organization: Debian");
    }
    for p in &debs {
        let purl = p["externalRefs"][0]["referenceLocator"].as_str().expect("purl");
        assert!(purl.ends_with(&format!("?arch={arch}")) || purl.ends_with("?arch=all"), "{purl}");
    }
}

struct SignedBuild {
    digest: String,
    sbom_dir: tempfile::TempDir,
    layout: tempfile::TempDir,
    _project: ProjectCopy,
}

/// Builds a copy of hello_web (with `GIT_LOCK`) and pushes it to `reference`, signed with `key`.
fn signed_build(reference: &str, key: &Path) -> SignedBuild {
    require_docker();
    let project = copy_example("hello_web");
    std::fs::write(project.path().join("mix.lock"), GIT_LOCK).expect("mix.lock");
    let (sbom_dir, layout) = (crate::util::tempdir().expect("tmp"), crate::util::tempdir().expect("tmp"));
    let mut c = release_oci();
    c.arg("build")
        .arg(project.path())
        .args(["--port", "4000", "--annotation", VENDOR, "--push", reference, "--sign-key"])
        .arg(key)
        .arg("--sbom-dir")
        .arg(sbom_dir.path())
        .arg("--output")
        .arg(format!("oci:{}", layout.path().display()))
        .env("COSIGN_PASSWORD", PASSWORD);
    let out = ok(c);
    let digest = out.trim().split_once('@').expect("REPO@DIGEST").1.to_string();
    SignedBuild { digest, sbom_dir, layout, _project: project }
}

pub(crate) fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir).expect("dir").map(|e| e.expect("entry").path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn signed_push_passes_cosign_and_release_oci_verify_and_a_changed_byte_fails() {
    let keys = crate::util::tempdir().expect("tmp");
    let (key, public) = key_pair(keys.path());
    let reg = Registry::plain();
    let repo_ref = format!("{}/hello/web", reg.addr());
    let b = signed_build(&format!("{repo_ref}:1"), &key);
    let by_digest = format!("{repo_ref}@{}", b.digest);

    for reference in [by_digest.as_str(), &format!("{repo_ref}:1")] {
        let o = cosign(&["verify"], reference, &public);
        assert!(o.status.success(), "cosign verify {reference}:\n{}", text(&o.stderr));
    }
    let o = cosign(&["verify-attestation", "--type", "slsaprovenance1"], &by_digest, &public);
    assert!(o.status.success(), "cosign verify-attestation:\n{}", text(&o.stderr));
    let mut c = release_oci();
    c.args(["verify", &format!("{repo_ref}:1"), "--key"]).arg(&public);
    let report = ok(c);
    assert_eq!(report.matches(" ok: ").count(), 3, "{report}");
    assert!(report.contains("referrers tag"), "{report}");

    // The SBOM through the referrers tag: the file --sbom-dir wrote, valid, complete.
    let sbom = sbom_through_referrers_tag(&reg.addr(), "hello/web", &b.digest);
    let file = only_file(b.sbom_dir.path());
    assert_eq!(sbom, std::fs::read(&file).expect("sbom file"), "pushed and written SBOMs differ");
    validators_pass(&file);
    let doc: Value = serde_json::from_slice(&sbom).expect("json");
    assert_lists(&doc, &rel_apps(&rel_from_layout(b.layout.path())), "application");
    assert_lists(&doc, &lock_entries(GIT_LOCK), "mix.lock entry");
    // The minimal base (the default) came from the builder's Debian packages.
    assert_debian_packages(&doc, "release-oci/builder:debian-bookworm", "linux/amd64", "amd64");

    // One byte changed in the manifest pushed under the tag: no signature for it.
    let manifest = String::from_utf8(get(&reg.addr(), "hello/web/manifests/1")).expect("utf-8");
    let tampered = manifest.replacen("\"0.1.0\"", "\"0.1.1\"", 1);
    assert_ne!(tampered, manifest);
    let mut c = tool("curl");
    c.args(["-sSf", "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary"])
        .arg(&tampered)
        .arg(format!("http://{}/v2/hello/web/manifests/1", reg.addr()));
    ok(c);
    let o = cosign(&["verify"], &format!("{repo_ref}:1"), &public);
    assert!(!o.status.success(), "cosign verified a changed manifest");
    let mut c = release_oci();
    c.args(["verify", &format!("{repo_ref}:1"), "--key"]).arg(&public);
    let o = run(c);
    assert!(!o.status.success() && text(&o.stderr).contains("signature"), "{}", text(&o.stderr));

    // One byte changed in the registry's copy of the signed manifest itself: the signature still
    // names the right digest (cosign checks no more), but what the registry serves no longer has
    // it, and release-oci verify reads the manifest and says so.
    let hex = b.digest.trim_start_matches("sha256:");
    let stored = reg.dir.path().join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
    let bytes = std::fs::read(&stored).expect("stored manifest");
    std::fs::write(&stored, String::from_utf8(bytes).expect("utf-8").replacen("\"0.1.0\"", "\"0.1.1\"", 1)).expect("w");
    let mut c = release_oci();
    c.args(["verify", &by_digest, "--key"]).arg(&public);
    let o = run(c);
    assert!(!o.status.success() && text(&o.stderr).contains("digest"), "{}", text(&o.stderr));
}

#[test]
fn two_builds_give_the_same_sbom_and_provenance() {
    let keys = crate::util::tempdir().expect("tmp");
    let (key, _) = key_pair(keys.path());
    let reg = Registry::plain();
    let a = signed_build(&format!("{}/twice/a:1", reg.addr()), &key);
    let b = signed_build(&format!("{}/twice/b:1", reg.addr()), &key);
    assert_eq!(a.digest, b.digest, "the image itself is reproducible");
    let (sa, sb) = (only_file(a.sbom_dir.path()), only_file(b.sbom_dir.path()));
    assert_eq!(std::fs::read(&sa).expect("a"), std::fs::read(&sb).expect("b"), "SBOMs differ");
    let pa = provenance_payload(&reg.addr(), "twice/a", &a.digest);
    let pb = provenance_payload(&reg.addr(), "twice/b", &b.digest);
    assert_eq!(text(&pa), text(&pb), "provenance differs");
    assert_eq!(
        sbom_through_referrers_tag(&reg.addr(), "twice/a", &a.digest),
        sbom_through_referrers_tag(&reg.addr(), "twice/b", &b.digest)
    );
}

#[test]
fn a_wrong_password_fails_before_anything_is_sent() {
    let keys = crate::util::tempdir().expect("tmp");
    let (key, _) = key_pair(keys.path());
    let reg = Registry::plain();
    let proxy = Proxy::counting(reg.port);
    let project = copy_example("hello_web");
    let mut c = release_oci();
    c.arg("build")
        .arg(project.path())
        .args(["--push", &format!("{}/hello/web:1", proxy.addr()), "--sign-key"])
        .arg(&key)
        .env("COSIGN_PASSWORD", "not the password");
    let o = run(c);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("COSIGN_PASSWORD") && err.contains("cosign.key"), "{err}");
    assert!(!err.contains("not the password"), "the password is shown: {err}");
    assert!(!err.contains("Assembling"), "a build started: {err}");
    assert!(proxy.requests().is_empty(), "{:#?}", proxy.requests());
}

#[test]
fn a_prebuilt_release_gets_every_hex_and_git_entry_of_mix_lock() {
    require_docker();
    let project = copy_example("hello_web");
    let mut c = Command::new("mix");
    c.args(["release", "--quiet"])
        .current_dir(project.path())
        .env("MIX_ENV", "prod")
        .env_remove("MIX_BUILD_ROOT")
        .env_remove("MIX_BUILD_PATH");
    ok(c);
    // The lock is written after `mix release` (whose mix would want Hex for it).
    std::fs::write(project.path().join("mix.lock"), HEX_LOCK).expect("mix.lock");
    let rel_dir = project.path().join("_build/prod/rel/hello_web");
    let sboms = crate::util::tempdir().expect("tmp");
    let mut c = release_oci();
    c.arg("build")
        .arg(project.path())
        .arg("--from-release")
        .arg(&rel_dir)
        .args(["--base", "debian", "--annotation", VENDOR, "--sbom-dir"])
        .arg(sboms.path());
    ok(c);
    let file = only_file(sboms.path());
    validators_pass(&file);
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).expect("sbom")).expect("json");
    let rel = std::fs::read_to_string(rel_dir.join("releases/0.1.0/hello_web.rel")).expect("rel");
    assert_lists(&doc, &rel_apps(&rel), "application");
    assert_lists(&doc, &lock_entries(HEX_LOCK), "mix.lock entry");
    let jason = doc["packages"].as_array().expect("p").iter().find(|p| p["name"] == "jason").expect("jason");
    assert_eq!(jason["externalRefs"][0]["referenceLocator"], "pkg:hex/jason@1.4.4");
    assert_eq!(
        jason["checksums"][0]["checksumValue"],
        "c5eb0cab91f094599f94d55bc63409236a8ec69a21a67814529e8d5f6cc90b3b"
    );
}
