//! The SBOM as CycloneDX 1.6 JSON (`--sbom cyclonedx`), made from the same model as the SPDX
//! document ([`sbom::document`]), so both say the same: the image is `metadata.component` (a
//! `container` with the manifest digest as its SHA-256 and its `pkg:oci` purl, the base image as its
//! pedigree's ancestor), every other package a component with its `bom-ref` (the SPDX id), purl,
//! hash, supplier and declared licences; `DEPENDS_ON` relationships are `dependencies`, lock entries
//! the release does not contain have scope `excluded`. No `serialNumber`: it would have to be a
//! random UUID, and the same inputs give the same bytes.

use super::facts::Facts;
use super::license::identifier;
use super::sbom::{self, NOASSERTION, Package};
use crate::digest::Digest;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const MEDIA_CYCLONEDX: &str = "application/vnd.cyclonedx+json";
/// The predicate type of a CycloneDX attestation (`cosign verify-attestation --type cyclonedx`).
pub const PREDICATE_TYPE: &str = "https://cyclonedx.org/bom";
pub const SPEC_VERSION: &str = "1.6";

/// The CycloneDX document (JSON bytes) of the image `digest` built with `facts`.
pub fn render(facts: &Facts, digest: &Digest) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(&bom(facts, digest)).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The file name in `--sbom-dir`: `NAME-VERSION-OS-ARCH.cdx.json`.
pub fn file_name(facts: &Facts) -> String {
    format!("{}-{}-{}.cdx.json", facts.release, facts.version, facts.platform.replace('/', "-"))
}

pub fn bom(facts: &Facts, digest: &Digest) -> Value {
    let doc = sbom::document(facts, digest);
    // In the lock, not in the release: a dependency of another environment, or of the build.
    let excluded = |id: &str| doc.relationships.iter().any(|r| r.kind == "DEV_DEPENDENCY_OF" && r.from == id);
    let mut image = Value::Null;
    let mut ancestors = Vec::new();
    let mut components = Vec::new();
    for p in &doc.packages {
        let mut c = component(p, facts);
        match p.spdx_id.as_str() {
            "SPDXRef-Image" => image = c,
            "SPDXRef-Base" => ancestors.push(c),
            id => {
                c["scope"] = json!(if excluded(id) { "excluded" } else { "required" });
                components.push(c);
            }
        }
    }
    if !ancestors.is_empty() {
        image["pedigree"] = json!({"ancestors": ancestors});
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "timestamp": facts.created,
            "tools": {"components": [{"type": "application", "name": "release-oci", "version": facts.tool_version}]},
            "component": image,
        },
        "components": components,
        "dependencies": dependencies(&doc),
    })
}

/// `DEPENDS_ON` as CycloneDX dependencies (every component listed, with what it depends on).
fn dependencies(doc: &sbom::Document) -> Vec<Value> {
    let mut on: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in doc.packages.iter().filter(|p| p.spdx_id != "SPDXRef-Base") {
        on.entry(p.spdx_id.as_str()).or_default();
    }
    for r in doc.relationships.iter().filter(|r| r.kind == "DEPENDS_ON") {
        on.entry(r.from.as_str()).or_default().push(r.to.as_str());
    }
    on.into_iter().map(|(id, deps)| json!({"ref": id, "dependsOn": deps})).collect()
}

fn component(p: &Package, facts: &Facts) -> Value {
    let kind = match p.purpose {
        "CONTAINER" => "container",
        "APPLICATION" => "application",
        _ => "library",
    };
    let mut c = json!({"type": kind, "bom-ref": p.spdx_id, "name": p.name, "version": p.version_info});
    if let Some(org) = p.supplier.strip_prefix("Organization: ") {
        c["supplier"] = json!({"name": org});
    }
    if let Some(purl) = p.external_refs.iter().find(|r| r.kind == "purl") {
        c["purl"] = json!(purl.locator);
    }
    if !p.checksums.is_empty() {
        c["hashes"] = p.checksums.iter().map(|h| json!({"alg": "SHA-256", "content": h.value})).collect();
    }
    if let Some(l) = licenses(p, facts) {
        c["licenses"] = l;
    }
    if let Some(url) = p.download_location.strip_prefix("git+").and_then(|u| u.rsplit_once('@')).map(|(u, _)| u) {
        c["externalReferences"] = json!([{"type": "vcs", "url": url}]);
    }
    if let Some(comment) = &p.comment {
        c["description"] = json!(comment);
    }
    c
}

/// The declared licences: an SPDX expression when every name is an identifier, else each name as
/// CycloneDX's `license.id` or `license.name`.
fn licenses(p: &Package, facts: &Facts) -> Option<Value> {
    if p.license_declared == NOASSERTION {
        return None;
    }
    if !p.license_declared.contains("LicenseRef-") {
        return Some(json!([{"expression": p.license_declared}]));
    }
    let names = facts.licenses.get(&p.name)?;
    let list = names
        .iter()
        .map(|n| match identifier(n) {
            Some(id) => json!({"license": {"id": id}}),
            None => json!({"license": {"name": n}}),
        })
        .collect();
    Some(Value::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supply::facts::tests::sample;

    fn doc() -> Value {
        serde_json::from_slice(&render(&sample(), &Digest::of(b"manifest"))).unwrap()
    }

    fn comp<'a>(doc: &'a Value, bom_ref: &str) -> &'a Value {
        let list = doc["components"].as_array().unwrap();
        list.iter().find(|c| c["bom-ref"] == bom_ref).unwrap_or_else(|| panic!("no {bom_ref}"))
    }

    #[test]
    fn the_image_is_the_subject_and_every_package_a_component() {
        let d = Digest::of(b"manifest");
        assert_eq!(render(&sample(), &d), render(&sample(), &d), "deterministic");
        let doc = doc();
        assert_eq!((doc["bomFormat"].as_str(), doc["specVersion"].as_str()), (Some("CycloneDX"), Some("1.6")));
        assert!(doc.get("serialNumber").is_none());
        let image = &doc["metadata"]["component"];
        assert_eq!(image["type"], "container");
        assert_eq!(image["hashes"][0]["content"], d.hex());
        assert!(image["purl"].as_str().unwrap().starts_with("pkg:oci/hello_web@sha256%3A"));
        assert_eq!(image["supplier"]["name"], "ACME");
        assert_eq!(image["pedigree"]["ancestors"][0]["bom-ref"], "SPDXRef-Base");
        assert_eq!(doc["metadata"]["timestamp"], "2024-01-02T03:04:05Z");
        let spdx: Value = serde_json::from_slice(&sbom::render(&sample(), &d)).unwrap();
        // Every SPDX package but the image and the base is a component, and nothing else.
        assert_eq!(doc["components"].as_array().unwrap().len(), spdx["packages"].as_array().unwrap().len() - 2);
    }

    #[test]
    fn components_carry_purl_hash_licences_scope_and_dependencies() {
        let doc = doc();
        let jason = comp(&doc, "SPDXRef-App-jason");
        assert_eq!(jason["purl"], "pkg:hex/jason@1.4.4");
        assert_eq!(jason["hashes"][0], json!({"alg": "SHA-256", "content": "ab".repeat(32)}));
        assert_eq!(jason["licenses"], json!([{"expression": "Apache-2.0"}]));
        assert_eq!(jason["scope"], "required");
        let plug_x = comp(&doc, "SPDXRef-App-plug-x");
        assert_eq!(plug_x["licenses"], json!([{"license": {"id": "MIT"}}, {"license": {"name": "Acme Licence"}}]));
        assert_eq!(plug_x["externalReferences"][0]["url"], "https://github.com/acme/plug_x.git");
        assert_eq!(comp(&doc, "SPDXRef-Lock-credo")["scope"], "excluded");
        assert!(comp(&doc, "SPDXRef-App-hello-web").get("licenses").is_none());
        let libc = comp(&doc, "SPDXRef-Deb-libc6-amd64");
        assert_eq!(libc["purl"], "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64");
        let deps = doc["dependencies"].as_array().unwrap();
        let own = deps.iter().find(|d| d["ref"] == "SPDXRef-App-hello-web").unwrap();
        assert!(own["dependsOn"].as_array().unwrap().contains(&json!("SPDXRef-App-jason")), "{own}");
        assert!(deps.iter().any(|d| d["ref"] == "SPDXRef-Image"));
        assert_eq!(file_name(&sample()), "hello_web-0.1.0-linux-amd64.cdx.json");
    }
}
