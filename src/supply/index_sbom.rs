//! The SBOM of a multi-platform image index (SPDX 2.3): the index as the described package, each
//! platform's image as a package it CONTAINS (name, version, purl and digest copied from that
//! image's own SBOM), and each image's SBOM named as an external document (its namespace and
//! SHA-256) that DESCRIBES it. The contents (applications, packages) stay in the platform SBOMs:
//! one document per image, one that ties them together.

use super::sbom::{NOASSERTION, image_purl};
use crate::digest::Digest;
use serde_json::{Value, json};

/// One platform's image with its own SPDX SBOM.
pub struct PlatformSbom<'a> {
    pub image: &'a Digest,
    pub sbom: &'a [u8],
}

/// The index's SPDX document (JSON bytes), or None when an image's SBOM is missing or not SPDX.
pub fn render(index: &Digest, images: &[PlatformSbom], created: &str) -> Option<Vec<u8>> {
    let docs: Vec<Value> = images.iter().map(|p| serde_json::from_slice(p.sbom).ok()).collect::<Option<_>>()?;
    let first = image_package(docs.first()?)?;
    let (name, version) = (first["name"].as_str()?.to_string(), first["versionInfo"].as_str()?.to_string());
    let supplier = first["supplier"].as_str().unwrap_or(NOASSERTION).to_string();
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Index",
        "name": name,
        "versionInfo": version,
        "supplier": supplier,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "checksums": [{"algorithm": "SHA256", "checksumValue": index.hex()}],
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                          "referenceLocator": image_purl(&name, index.as_str())}],
        "primaryPackagePurpose": "CONTAINER",
        "comment": format!("OCI image index {index}"),
    })];
    let mut relationships = vec![rel("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Index")];
    let mut external = Vec::new();
    for (n, (p, doc)) in images.iter().zip(&docs).enumerate() {
        let id = format!("SPDXRef-Image-{}", n + 1);
        let mut pkg = image_package(doc)?.clone();
        pkg["SPDXID"] = json!(id);
        packages.push(pkg);
        relationships.push(rel("SPDXRef-Index", "CONTAINS", &id));
        let doc_ref = format!("DocumentRef-Platform-{}", n + 1);
        external.push(json!({
            "externalDocumentId": doc_ref,
            "spdxDocument": doc["documentNamespace"].as_str()?,
            "checksum": {"algorithm": "SHA256", "checksumValue": Digest::of(p.sbom).hex()},
        }));
        relationships.push(rel(&id, "DESCRIBED_BY", &format!("{doc_ref}:SPDXRef-DOCUMENT")));
        if p.image.as_str() != pkg_digest(doc)? {
            return None;
        }
    }
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{name}-{version} index"),
        "documentNamespace": format!("https://spdx.org/spdxdocs/release-oci/{name}-{version}-{}", index.hex()),
        "creationInfo": {"created": created, "creators": docs[0]["creationInfo"]["creators"].clone()},
        "externalDocumentRefs": external,
        "packages": packages,
        "relationships": relationships,
    });
    let mut bytes = serde_json::to_vec_pretty(&doc).ok()?;
    bytes.push(b'\n');
    Some(bytes)
}

/// The package a platform SBOM describes (its image).
fn image_package(doc: &Value) -> Option<&Value> {
    doc["packages"].as_array()?.iter().find(|p| p["SPDXID"] == "SPDXRef-Image")
}

/// The image digest (`sha256:HEX`) a platform SBOM describes.
fn pkg_digest(doc: &Value) -> Option<String> {
    let sums = image_package(doc)?["checksums"].as_array()?;
    let hex = sums.iter().find(|c| c["algorithm"] == "SHA256")?["checksumValue"].as_str()?;
    Some(format!("sha256:{hex}"))
}

fn rel(from: &str, kind: &str, to: &str) -> Value {
    json!({"spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform_sbom(digest: &Digest, arch: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "documentNamespace": format!("https://spdx.org/spdxdocs/release-oci/hello-0.1.0-{}", digest.hex()),
            "creationInfo": {"created": "1970-01-01T00:00:00Z", "creators": ["Tool: release-oci-0.1.0"]},
            "packages": [{"SPDXID": "SPDXRef-Image", "name": "hello", "versionInfo": "0.1.0",
                          "supplier": "Organization: Acme",
                          "checksums": [{"algorithm": "SHA256", "checksumValue": digest.hex()}],
                          "externalRefs": [{"referenceLocator": format!("pkg:oci/hello@x?arch={arch}")}]}],
        }))
        .unwrap()
    }

    #[test]
    fn the_index_contains_each_image_described_by_its_own_sbom() {
        let (a, b) = (Digest::of(b"amd64"), Digest::of(b"arm64"));
        let (sa, sb) = (platform_sbom(&a, "amd64"), platform_sbom(&b, "arm64"));
        let index = Digest::of(b"index");
        let images = [PlatformSbom { image: &a, sbom: &sa }, PlatformSbom { image: &b, sbom: &sb }];
        let bytes = render(&index, &images, "1970-01-01T00:00:00Z").unwrap();
        assert_eq!(render(&index, &images, "1970-01-01T00:00:00Z").unwrap(), bytes, "deterministic");
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["packages"][0]["checksums"][0]["checksumValue"], index.hex());
        assert_eq!(doc["packages"][0]["supplier"], "Organization: Acme");
        assert_eq!(doc["packages"][2]["checksums"][0]["checksumValue"], b.hex());
        assert_eq!(doc["externalDocumentRefs"][1]["checksum"]["checksumValue"], Digest::of(&sb).hex());
        let rels: Vec<String> = doc["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let f = |k: &str| r[k].as_str().unwrap().to_string();
                format!("{} {} {}", f("spdxElementId"), f("relationshipType"), f("relatedSpdxElement"))
            })
            .collect();
        assert!(rels.contains(&"SPDXRef-Index CONTAINS SPDXRef-Image-2".to_string()), "{rels:?}");
        assert!(rels.contains(&"SPDXRef-Image-1 DESCRIBED_BY DocumentRef-Platform-1:SPDXRef-DOCUMENT".to_string()));
        // An image whose SBOM describes another digest, or is no SPDX JSON, gives no index SBOM.
        assert!(render(&index, &[PlatformSbom { image: &b, sbom: &sa }], "x").is_none());
        assert!(render(&index, &[PlatformSbom { image: &a, sbom: b"<cyclonedx/>" }], "x").is_none());
    }
}
