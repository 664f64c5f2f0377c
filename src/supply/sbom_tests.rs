use super::*;
use crate::supply::facts::tests::sample;
use serde_json::Value;
use std::collections::HashSet;

fn doc() -> Value {
    serde_json::from_slice(&render(&sample(), &Digest::of(b"manifest"))).unwrap()
}

fn package<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["packages"].as_array().unwrap().iter().find(|p| p["SPDXID"] == id).unwrap_or_else(|| panic!("no {id}"))
}

fn has_rel(doc: &Value, from: &str, kind: &str, to: &str) -> bool {
    doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["spdxElementId"] == from && r["relationshipType"] == kind && r["relatedSpdxElement"] == to)
}

#[test]
fn same_facts_same_bytes_and_namespace_from_the_digest() {
    let d = Digest::of(b"manifest");
    assert_eq!(render(&sample(), &d), render(&sample(), &d));
    let doc = doc();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert!(doc["documentNamespace"].as_str().unwrap().ends_with(d.hex()));
    assert_eq!(doc["creationInfo"]["created"], "2024-01-02T03:04:05Z");
    assert_eq!(doc["creationInfo"]["creators"][0], "Tool: release-oci-0.1.0");
    let other = serde_json::from_slice::<Value>(&render(&sample(), &Digest::of(b"other"))).unwrap();
    assert_ne!(doc["documentNamespace"], other["documentNamespace"]);
}

#[test]
fn describes_the_image_which_contains_erts_and_every_app() {
    let doc = doc();
    assert!(has_rel(&doc, "SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image"));
    let image = package(&doc, "SPDXRef-Image");
    let purl = image["externalRefs"][0]["referenceLocator"].as_str().unwrap();
    assert_eq!(purl, format!("pkg:oci/hello_web@sha256%3A{}?arch=amd64&os=linux", Digest::of(b"manifest").hex()));
    assert_eq!(image["supplier"], "Organization: ACME");
    assert!(has_rel(&doc, "SPDXRef-Image", "CONTAINS", "SPDXRef-ERTS-14.2.5"));
    for app in sample().apps {
        let id = spdx_id("App", &app.name);
        assert_eq!(package(&doc, &id)["versionInfo"], app.version.as_str());
        assert!(has_rel(&doc, "SPDXRef-Image", "CONTAINS", &id), "{id}");
    }
    assert_eq!(package(&doc, "SPDXRef-App-kernel")["supplier"], "Organization: Ericsson AB");
    assert_eq!(package(&doc, "SPDXRef-App-logger")["supplier"], "Organization: The Elixir Team");
    assert_eq!(package(&doc, "SPDXRef-App-hello-web")["supplier"], "Organization: ACME");
    assert!(has_rel(&doc, "SPDXRef-Image", "DESCENDANT_OF", "SPDXRef-Base"));
}

#[test]
fn every_lock_entry_with_purl_checksum_and_place() {
    let doc = doc();
    let jason = package(&doc, "SPDXRef-App-jason");
    assert_eq!(jason["externalRefs"][0]["referenceLocator"], "pkg:hex/jason@1.4.4");
    assert_eq!(jason["checksums"][0]["algorithm"], "SHA256");
    assert_eq!(jason["checksums"][0]["checksumValue"], "ab".repeat(32));
    assert_eq!(jason["supplier"], "Organization: Hex repository hexpm");
    assert!(has_rel(&doc, "SPDXRef-App-hello-web", "DEPENDS_ON", "SPDXRef-App-jason"));
    let git = package(&doc, "SPDXRef-App-plug-x");
    assert_eq!(git["downloadLocation"], format!("git+https://github.com/acme/plug_x.git@{}", "1".repeat(40)));
    assert_eq!(git["externalRefs"][0]["referenceLocator"], format!("pkg:github/acme/plug_x@{}", "1".repeat(40)));
    assert_eq!(git["supplier"], "Organization: github.com/acme");
    // Not in the release: a dev (or build-only) dependency, listed all the same.
    let credo = package(&doc, "SPDXRef-Lock-credo");
    assert_eq!(credo["versionInfo"], "1.7.0");
    assert!(has_rel(&doc, "SPDXRef-Lock-credo", "DEV_DEPENDENCY_OF", "SPDXRef-App-hello-web"));
}

#[test]
fn dependencies_declare_their_metadata_licences_and_others_noassertion() {
    let doc = doc();
    assert_eq!(package(&doc, "SPDXRef-App-jason")["licenseDeclared"], "Apache-2.0");
    // Not an SPDX identifier: a LicenseRef the document defines, with the name as given.
    assert_eq!(package(&doc, "SPDXRef-App-plug-x")["licenseDeclared"], "MIT AND LicenseRef-Acme-Licence");
    let extracted = doc["hasExtractedLicensingInfos"].as_array().unwrap();
    assert_eq!(extracted.len(), 1, "{extracted:?}");
    assert_eq!(extracted[0]["licenseId"], "LicenseRef-Acme-Licence");
    assert_eq!(extracted[0]["name"], "Acme Licence");
    assert!(extracted[0]["extractedText"].as_str().unwrap().contains("Acme Licence"));
    // A dev dependency in the lock with metadata, and the OTP, Elixir and own apps.
    assert_eq!(package(&doc, "SPDXRef-Lock-credo")["licenseDeclared"], "MIT");
    assert_eq!(package(&doc, "SPDXRef-App-kernel")["licenseDeclared"], "Apache-2.0");
    assert_eq!(package(&doc, "SPDXRef-App-hello-web")["licenseDeclared"], "NOASSERTION");
    let mut f = sample();
    f.licenses.clear();
    let doc: Value = serde_json::from_slice(&render(&f, &Digest::of(b"manifest"))).unwrap();
    assert_eq!(package(&doc, "SPDXRef-App-jason")["licenseDeclared"], "NOASSERTION");
    assert!(doc.get("hasExtractedLicensingInfos").is_none());
}

#[test]
fn the_minimal_base_lists_its_debian_packages() {
    let doc = doc();
    let libc = package(&doc, "SPDXRef-Deb-libc6-amd64");
    assert_eq!(libc["name"], "libc6");
    assert_eq!(libc["versionInfo"], "2.36-9+deb12u7");
    assert_eq!(libc["supplier"], "Organization: Debian");
    assert_eq!(libc["externalRefs"][0]["referenceLocator"], "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64");
    assert!(has_rel(&doc, "SPDXRef-Image", "CONTAINS", "SPDXRef-Deb-libc6-amd64"));
}

#[test]
fn rebar_lock_entries_are_hex_packages_with_their_checksum() {
    let mut f = sample();
    let text = "{\"1.2.0\",\n[{<<\"cowlib\">>,{pkg,<<\"cowlib\">>,<<\"2.12.1\">>},1}]}.\n[\n{pkg_hash,[\n \
                {<<\"cowlib\">>, <<\"AA\">>}]},\n{pkg_hash_ext,[\n {<<\"cowlib\">>, <<\"BB\">>}]}\n].\n";
    let entries = crate::supply::rebar_lock::parse_rebar_lock(text, "rebar.lock").unwrap();
    f.lock = Some(crate::supply::facts::LockFact { file: "rebar.lock".into(), digest: Digest::of(b"l"), entries });
    let doc: Value = serde_json::from_slice(&render(&f, &Digest::of(b"m"))).unwrap();
    let cowlib = package(&doc, "SPDXRef-Lock-cowlib");
    assert_eq!(cowlib["externalRefs"][0]["referenceLocator"], "pkg:hex/cowlib@2.12.1");
    assert_eq!(cowlib["checksums"][0]["checksumValue"], "bb");
    assert_eq!(cowlib["downloadLocation"], "NOASSERTION");
    assert!(cowlib["comment"].as_str().unwrap().starts_with("rebar.lock: hex cowlib 2.12.1"));
    // The old layout has no hash: no checksum rather than an empty one.
    let entries =
        crate::supply::rebar_lock::parse_rebar_lock("[{<<\"a\">>,{pkg,<<\"a\">>,<<\"1.0.0\">>},0}].", "r").unwrap();
    f.lock = Some(crate::supply::facts::LockFact { file: "rebar.lock".into(), digest: Digest::of(b"l"), entries });
    let doc: Value = serde_json::from_slice(&render(&f, &Digest::of(b"m"))).unwrap();
    assert!(package(&doc, "SPDXRef-Lock-a").get("checksums").is_none());
}

#[test]
fn ids_are_unique_and_every_relationship_names_a_package() {
    let doc = doc();
    let ids: Vec<&str> = doc["packages"].as_array().unwrap().iter().map(|p| p["SPDXID"].as_str().unwrap()).collect();
    let set: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(set.len(), ids.len(), "{ids:?}");
    for id in &ids {
        assert!(id.chars().skip(8).all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'), "{id}");
    }
    for r in doc["relationships"].as_array().unwrap() {
        for k in ["spdxElementId", "relatedSpdxElement"] {
            let id = r[k].as_str().unwrap();
            assert!(id == "SPDXRef-DOCUMENT" || set.contains(id), "{r}");
        }
    }
}

#[test]
fn no_vendor_is_noassertion_and_names() {
    let mut f = sample();
    f.vendor = None;
    let doc: Value = serde_json::from_slice(&render(&f, &Digest::of(b"m"))).unwrap();
    assert_eq!(package(&doc, "SPDXRef-Image")["supplier"], "NOASSERTION");
    assert_eq!(file_name(&f), "hello_web-0.1.0-linux-amd64.spdx.json");
    assert_eq!(git_supplier("git@github.com:acme/x.git"), "Organization: github.com/acme");
    assert_eq!(github_purl("https://gitlab.com/a/b.git", "r"), None);
    assert_eq!(split_image_name("r:5000/a/b:t"), ("b".to_string(), Some("t".to_string())));
}

/// The real validators (scripts/setup-supply-chain.sh installs them): only with the feature.
#[cfg(feature = "integration")]
#[test]
fn sample_sbom_passes_pyspdxtools_and_the_ntia_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.spdx.json");
    std::fs::write(&path, render(&sample(), &Digest::of(b"manifest"))).unwrap();
    for (tool, args) in [("pyspdxtools", vec!["-i"]), ("sbomcheck", vec![])] {
        let o = std::process::Command::new(tool)
            .args(args)
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}; run scripts/setup-supply-chain.sh"));
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "{tool} failed:\n{text}");
        assert!(!text.to_lowercase().contains("error"), "{tool}:\n{text}");
    }
}
