//! What the SBOM says about an image's contents, from real builds (the validators as in
//! supply_chain.rs):
//! - Hex dependencies fetched by the builder (from the test Hex repository, `../shared/hex`)
//!   declare the licences of their package metadata (`hex_metadata.config`); the project's own
//!   application does not claim one;
//! - a rebar3 project's `rebar.lock` (version 1.2.0, with `pkg_hash` and `pkg_hash_ext`) gives
//!   `pkg:hex/NAME@VSN` packages with the tarball checksum, and git entries with their commit;
//! - the minimal base lists the builder's Debian packages it took files from;
//! - `--sbom cyclonedx`: a CycloneDX 1.6 referrer and attestation that `cosign verify-attestation
//!   --type cyclonedx` and `release-oci verify` accept.

use crate::hex_kit::*;
use crate::supply_chain::*;
use crate::util::*;
use serde_json::Value;

/// Level-1 entries: locked but needed by no dependency of the project, so rebar3 fetches none of
/// them (the builder has no Hex repository), and the SBOM lists them all the same.
const REBAR_LOCK: &str = r#"{"1.2.0",
[{<<"cowlib">>,{pkg,<<"cowlib">>,<<"2.12.1">>},1},
 {<<"recon">>,
  {git,"https://github.com/ferd/recon.git",
       {ref,"0123456789abcdef0123456789abcdef01234567"}},
  1},
 {<<"uuid">>,{pkg,<<"uuid_erl">>,<<"2.0.1">>},1}]}.
[
{pkg_hash,[
 {<<"cowlib">>, <<"A9FA9A625F1D2025FE6B462CB865881329B5CAFF8F1854D1CBC9F9533F00E1E1">>},
 {<<"uuid">>, <<"C13F30F291F9E91278BC7B7ADF56D8D89AFD26F5DB5F6E10F13FA24C0C90FED2">>}]},
{pkg_hash_ext,[
 {<<"cowlib">>, <<"163B73F6367A7341B33C794C4E88E7DBFE6498AC42DCD69EF44C5BC5507C8DB0">>},
 {<<"uuid">>, <<"BC4E71DACC2E7A50B3B33FA1BCE0C3501CAE0E64ECF6F4A79A576DA9A62353F4">>}]}
].
"#;

fn package<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let packages = doc["packages"].as_array().expect("packages");
    packages.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no package {name} in the SBOM"))
}

#[test]
fn hex_dependencies_declare_the_licences_of_their_package_metadata() {
    require_docker();
    let home = MixHome::new();
    let project = copy_example("hello_web");
    let root = project.path();
    let mix_exs = std::fs::read_to_string(root.join("mix.exs")).expect("mix.exs");
    let with_deps =
        mix_exs.replace("deps: [],", "deps: [{:jason, \"1.4.4\"}, {:decimal, \"2.4.1\"}, {:mime, \"2.0.7\"}],");
    assert_ne!(with_deps, mix_exs);
    std::fs::write(root.join("mix.exs"), with_deps).expect("mix.exs");
    let server = Server::start(&kit().join("repository"), None, None);
    home.deps_get(root, &server.url);
    for out in ["deps", "_build"] {
        let _ = std::fs::remove_dir_all(root.join(out));
    }
    std::fs::create_dir_all(root.join("keys")).expect("mkdir");
    std::fs::copy(kit().join("repository/public_key"), root.join("keys/hex.pem")).expect("key");
    let toml = format!("[[hex.repos]]\nname = \"hexpm\"\nurl = \"{}\"\npublic_key = \"keys/hex.pem\"\n", server.url);
    std::fs::write(root.join("release-oci.toml"), toml).expect("release-oci.toml");
    let sboms = crate::util::tempdir().expect("tmp");
    let mut c = release_oci();
    c.arg("build").arg(root).arg("--hex-client").arg(hex_client()).args(["--annotation", VENDOR, "--sbom-dir"]);
    c.arg(sboms.path());
    ok(c);
    let file = only_file(sboms.path());
    validators_pass(&file);
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).expect("sbom")).expect("json");
    for (name, version) in [("jason", "1.4.4"), ("decimal", "2.4.1"), ("mime", "2.0.7")] {
        let p = package(&doc, name);
        assert_eq!(p["versionInfo"], version);
        assert_eq!(p["licenseDeclared"], "Apache-2.0", "{name}: {p:#}");
        assert_eq!(p["externalRefs"][0]["referenceLocator"], format!("pkg:hex/{name}@{version}").as_str());
    }
    assert_eq!(package(&doc, "hello_web")["licenseDeclared"], "NOASSERTION");
    assert_eq!(package(&doc, "kernel")["licenseDeclared"], "Apache-2.0");
    assert!(doc.get("hasExtractedLicensingInfos").is_none(), "{}", doc["hasExtractedLicensingInfos"]);
    assert_debian_packages(&doc, "release-oci/builder:debian-bookworm", "linux/amd64", "amd64");
}

#[test]
fn a_rebar3_projects_lock_gives_hex_packages_with_their_checksums() {
    require_docker();
    let project = copy_example("rebar3_web");
    std::fs::write(project.path().join("rebar.lock"), REBAR_LOCK).expect("rebar.lock");
    let sboms = crate::util::tempdir().expect("tmp");
    let mut c = release_oci();
    c.arg("build").arg(project.path()).args(["--annotation", VENDOR, "--sbom-dir"]).arg(sboms.path());
    ok(c);
    let file = only_file(sboms.path());
    validators_pass(&file);
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).expect("sbom")).expect("json");
    let cowlib = package(&doc, "cowlib");
    assert_eq!(cowlib["versionInfo"], "2.12.1");
    assert_eq!(cowlib["externalRefs"][0]["referenceLocator"], "pkg:hex/cowlib@2.12.1");
    assert_eq!(
        cowlib["checksums"][0]["checksumValue"],
        "163b73f6367a7341b33c794c4e88e7dbfe6498ac42dcd69ef44c5bc5507c8db0"
    );
    assert!(cowlib["comment"].as_str().expect("comment").starts_with("rebar.lock: hex cowlib"));
    // The entry `uuid` is the Hex package `uuid_erl`.
    assert_eq!(package(&doc, "uuid")["externalRefs"][0]["referenceLocator"], "pkg:hex/uuid_erl@2.0.1");
    let recon = package(&doc, "recon");
    assert_eq!(
        recon["downloadLocation"],
        "git+https://github.com/ferd/recon.git@0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(
        recon["externalRefs"][0]["referenceLocator"],
        "pkg:github/ferd/recon@0123456789abcdef0123456789abcdef01234567"
    );
    // The release's own application and OTP's are there as for mix projects.
    assert_eq!(package(&doc, "rebar3_web")["versionInfo"], "0.1.0");
    assert_eq!(package(&doc, "sasl")["supplier"], "Organization: Ericsson AB");
    assert_debian_packages(&doc, "release-oci/builder:debian-bookworm", "linux/amd64", "amd64");
}

#[test]
fn a_cyclonedx_sbom_is_pushed_signed_and_verified_by_cosign_and_release_oci() {
    use crate::registry_util::Registry;
    require_docker();
    let keys = crate::util::tempdir().expect("tmp");
    let (key, public) = key_pair(keys.path());
    let reg = Registry::plain();
    let repo_ref = format!("{}/cdx/web", reg.addr());
    let project = copy_example("hello_web");
    std::fs::write(project.path().join("mix.lock"), GIT_LOCK).expect("mix.lock");
    let sboms = crate::util::tempdir().expect("tmp");
    let mut c = release_oci();
    c.arg("build")
        .arg(project.path())
        .args(["--sbom", "cyclonedx", "--annotation", VENDOR, "--push", &format!("{repo_ref}:1"), "--sign-key"])
        .arg(&key)
        .arg("--sbom-dir")
        .arg(sboms.path())
        .env("COSIGN_PASSWORD", PASSWORD);
    let digest = ok(c).trim().split_once('@').expect("REPO@DIGEST").1.to_string();
    let by_digest = format!("{repo_ref}@{digest}");
    for kind in ["cyclonedx", "slsaprovenance1"] {
        let o = cosign(&["verify-attestation", "--type", kind], &by_digest, &public);
        assert!(o.status.success(), "cosign verify-attestation --type {kind}:\n{}", text(&o.stderr));
    }
    let mut c = release_oci();
    c.args(["verify", &by_digest, "--key"]).arg(&public);
    let report = ok(c);
    assert!(report.contains("ok: CycloneDX 1.6"), "{report}");

    // Through the referrers tag: the file --sbom-dir wrote, about this image, with its contents.
    let tag: Value =
        serde_json::from_slice(&get(&reg.addr(), &format!("cdx/web/manifests/{}", digest.replace(':', "-"))))
            .expect("referrers index");
    let entry = &tag["manifests"][0];
    assert_eq!(entry["artifactType"], "application/vnd.cyclonedx+json");
    let referrer: Value = serde_json::from_slice(&get(
        &reg.addr(),
        &format!("cdx/web/manifests/{}", entry["digest"].as_str().expect("d")),
    ))
    .expect("referrer");
    let bom = get(&reg.addr(), &format!("cdx/web/blobs/{}", referrer["layers"][0]["digest"].as_str().expect("layer")));
    let file = only_file(sboms.path());
    assert!(file.to_string_lossy().ends_with("-linux-amd64.cdx.json"), "{}", file.display());
    assert_eq!(bom, std::fs::read(&file).expect("file"));
    let doc: Value = serde_json::from_slice(&bom).expect("json");
    assert_eq!((doc["bomFormat"].as_str(), doc["specVersion"].as_str()), (Some("CycloneDX"), Some("1.6")));
    assert_eq!(doc["metadata"]["component"]["hashes"][0]["content"], digest.trim_start_matches("sha256:"));
    let components = doc["components"].as_array().expect("components");
    let named = |n: &str| components.iter().find(|c| c["name"] == n).unwrap_or_else(|| panic!("no component {n}"));
    assert_eq!(named("kernel")["licenses"][0]["expression"], "Apache-2.0");
    assert_eq!(named("plug_x")["scope"], "excluded");
    assert!(named("libc6")["purl"].as_str().expect("purl").starts_with("pkg:deb/debian/libc6@"));
}

/// A distribution base (`--base debian`): the SBOM lists the base image's installed Debian
/// packages (its dpkg database) at the versions `dpkg-query` reports in that image.
#[test]
fn a_distribution_base_lists_its_installed_debian_packages() {
    let project = copy_example("hello_web");
    let sboms = crate::util::tempdir().expect("tempdir");
    let mut c = release_oci();
    c.arg("build").arg(project.path()).args(["--base", "debian", "--no-cache"]).arg("--sbom-dir").arg(sboms.path());
    ok(c);
    let file = std::fs::read_dir(sboms.path()).expect("sbom dir").flatten().next().expect("an SBOM").path();
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
    let runtime = "release-oci/runtime:debian-bookworm";
    for name in ["libc6", "base-files", "libssl3"] {
        let p = package(&doc, name);
        let version = deb_version(runtime, "linux/amd64", name);
        assert_eq!(p["versionInfo"], version.as_str(), "{p}");
        let purl = p["externalRefs"][0]["referenceLocator"].as_str().expect("purl");
        assert!(purl.starts_with(&format!("pkg:deb/debian/{name}@")) && purl.ends_with("?arch=amd64"), "{purl}");
    }
}
