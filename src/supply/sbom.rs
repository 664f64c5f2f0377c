//! The SBOM: an SPDX 2.3 JSON document for one image, a pure function of the build's
//! [`Facts`] and the image's manifest digest, so two builds of the same inputs give the same
//! bytes (no random UUID: the document namespace is derived from the digest; the time is the
//! image's `created`, from SOURCE_DATE_EPOCH).
//!
//! Packages: the image (`pkg:oci/NAME@sha256%3A...`, described by the document), ERTS and every
//! application of the release's `.rel` file (contained in the image), every entry of the lock
//! file (`mix.lock` or `rebar.lock`: `pkg:hex/NAME@VERSION` with the lock's SHA-256, git ones with
//! their URL and commit; the same package as the application when the release has it), the
//! distribution packages whose files the minimal base took (`pkg:deb/...`), and the base image
//! (the image is its `DESCENDANT_OF`). Dependencies declare the licences their package metadata
//! names. See docs/supply-chain.md for the relationships and suppliers.

use super::facts::{Facts, Origin};
use super::license::Refs;
use super::lock::{LockEntry, LockSource};
use super::sbom_packages::{Ctx, base_package, distro_package, erts_package, image_package};
use crate::digest::Digest;
use serde::Serialize;
use std::collections::BTreeMap;

pub const MEDIA_SPDX: &str = "application/spdx+json";
pub(crate) const NOASSERTION: &str = "NOASSERTION";
const IMAGE_ID: &str = "SPDXRef-Image";

#[derive(Debug, Serialize)]
pub struct Document {
    #[serde(rename = "spdxVersion")]
    pub spdx_version: &'static str,
    #[serde(rename = "dataLicense")]
    pub data_license: &'static str,
    #[serde(rename = "SPDXID")]
    pub spdx_id: &'static str,
    pub name: String,
    #[serde(rename = "documentNamespace")]
    pub document_namespace: String,
    #[serde(rename = "creationInfo")]
    pub creation_info: CreationInfo,
    pub packages: Vec<Package>,
    pub relationships: Vec<Relationship>,
    /// The licences named by `LicenseRef-`s (names that are no SPDX identifier).
    #[serde(rename = "hasExtractedLicensingInfos", skip_serializing_if = "Vec::is_empty")]
    pub extracted_licenses: Vec<ExtractedLicense>,
}

#[derive(Debug, Serialize)]
pub struct ExtractedLicense {
    #[serde(rename = "licenseId")]
    pub id: String,
    pub name: String,
    #[serde(rename = "extractedText")]
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct CreationInfo {
    pub created: String,
    pub creators: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Package {
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    pub name: String,
    #[serde(rename = "versionInfo")]
    pub version_info: String,
    pub supplier: String,
    #[serde(rename = "downloadLocation")]
    pub download_location: String,
    #[serde(rename = "filesAnalyzed")]
    pub files_analyzed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<Checksum>,
    #[serde(rename = "licenseConcluded")]
    pub license_concluded: &'static str,
    #[serde(rename = "licenseDeclared")]
    pub license_declared: String,
    #[serde(rename = "copyrightText")]
    pub copyright_text: &'static str,
    #[serde(rename = "externalRefs", skip_serializing_if = "Vec::is_empty")]
    pub external_refs: Vec<ExternalRef>,
    #[serde(rename = "primaryPackagePurpose")]
    pub purpose: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Checksum {
    pub algorithm: &'static str,
    #[serde(rename = "checksumValue")]
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct ExternalRef {
    #[serde(rename = "referenceCategory")]
    pub category: &'static str,
    #[serde(rename = "referenceType")]
    pub kind: &'static str,
    #[serde(rename = "referenceLocator")]
    pub locator: String,
}

#[derive(Debug, Serialize)]
pub struct Relationship {
    #[serde(rename = "spdxElementId")]
    pub from: String,
    #[serde(rename = "relationshipType")]
    pub kind: &'static str,
    #[serde(rename = "relatedSpdxElement")]
    pub to: String,
}

/// `SPDXRef-KIND-NAME` with the characters SPDX ids do not allow (`_`) as `-`.
pub fn spdx_id(kind: &str, name: &str) -> String {
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
    format!("SPDXRef-{kind}-{clean}")
}

/// `pkg:oci/NAME@sha256%3AHEX` for the image (purl's `oci` type: the digest is the version).
pub fn image_purl(name: &str, digest: &str) -> String {
    format!("pkg:oci/{}@{}", name.to_lowercase(), digest.replace(':', "%3A"))
}

/// The SPDX document (JSON bytes) of the image `digest` built with `facts`.
pub fn render(facts: &Facts, digest: &Digest) -> Vec<u8> {
    let doc = document(facts, digest);
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The file name an SBOM gets in `--sbom-dir`: `NAME-VERSION-OS-ARCH.spdx.json`.
pub fn file_name(facts: &Facts) -> String {
    format!("{}-{}-{}.spdx.json", facts.release, facts.version, facts.platform.replace('/', "-"))
}

pub fn document(facts: &Facts, digest: &Digest) -> Document {
    let vendor = facts.vendor.as_deref().map_or_else(|| NOASSERTION.to_string(), |v| format!("Organization: {v}"));
    let mut packages = vec![image_package(facts, digest, &vendor)];
    let mut rels = vec![rel("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)];
    if let Some(erts) = &facts.erts {
        let id = spdx_id("ERTS", erts);
        packages.push(erts_package(&id, erts));
        rels.push(rel(IMAGE_ID, "CONTAINS", &id));
    }
    let mut ctx = Ctx { facts, vendor, refs: Refs::default() };
    release_packages(&mut ctx, &mut packages, &mut rels);
    for d in &facts.base_packages {
        let p = distro_package(d);
        rels.push(rel(IMAGE_ID, "CONTAINS", &p.spdx_id));
        packages.push(p);
    }
    if let Some(base) = &facts.base {
        packages.push(base_package(base));
        rels.push(rel(IMAGE_ID, "DESCENDANT_OF", "SPDXRef-Base"));
    }
    Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: format!("{}-{} {}", facts.release, facts.version, facts.platform),
        document_namespace: format!(
            "https://spdx.org/spdxdocs/release-oci/{}-{}-{}",
            facts.release,
            facts.version,
            digest.hex()
        ),
        creation_info: CreationInfo {
            created: facts.created.clone(),
            creators: vec![format!("Tool: release-oci-{}", facts.tool_version)],
        },
        packages,
        relationships: rels,
        extracted_licenses: ctx.refs.extracted().iter().map(extracted_license).collect(),
    }
}

/// The release's applications and the lock's entries, with their relationships.
fn release_packages(ctx: &mut Ctx, packages: &mut Vec<Package>, rels: &mut Vec<Relationship>) {
    let facts = ctx.facts;
    let lock: BTreeMap<&str, &LockEntry> =
        facts.lock.iter().flat_map(|l| &l.entries).map(|e| (e.name.as_str(), e)).collect();
    let own: Vec<String> =
        facts.apps.iter().filter(|a| a.origin == Origin::Own).map(|a| spdx_id("App", &a.name)).collect();
    for app in &facts.apps {
        let id = spdx_id("App", &app.name);
        packages.push(ctx.app_package(app, lock.get(app.name.as_str()).copied()));
        rels.push(rel(IMAGE_ID, "CONTAINS", &id));
        if app.origin == Origin::Dependency {
            rels.extend(own.iter().map(|o| rel(o, "DEPENDS_ON", &id)));
        }
    }
    let in_release = |name: &str| facts.apps.iter().any(|a| a.name == name);
    for entry in lock.values().filter(|e| !in_release(&e.name)) {
        let id = spdx_id("Lock", &entry.name);
        packages.push(ctx.lock_package(&id, entry, None));
        // In the lock but not in the release: a dependency of another environment (dev, test)
        // or of the build alone (runtime: false).
        rels.extend(own.iter().map(|o| rel(&id, "DEV_DEPENDENCY_OF", o)));
    }
    rels.extend(lock_dependencies(&lock, &in_release));
}

fn extracted_license(e: &super::license::Extracted) -> ExtractedLicense {
    ExtractedLicense {
        id: e.id.clone(),
        name: e.name.clone(),
        text: format!(
            "The package metadata names the licence \"{}\", which is no SPDX license identifier; its text is not in the metadata.",
            e.name
        ),
    }
}

/// `A DEPENDS_ON B` for the dependencies each Hex entry of the lock lists.
fn lock_dependencies(lock: &BTreeMap<&str, &LockEntry>, in_release: &dyn Fn(&str) -> bool) -> Vec<Relationship> {
    let id_of = |name: &str| if in_release(name) { spdx_id("App", name) } else { spdx_id("Lock", name) };
    let mut out = Vec::new();
    for entry in lock.values() {
        let LockSource::Hex { deps, .. } = &entry.source else { continue };
        for dep in deps.iter().filter(|d| lock.contains_key(d.as_str())) {
            out.push(rel(&id_of(&entry.name), "DEPENDS_ON", &id_of(dep)));
        }
    }
    out
}

fn rel(from: &str, kind: &'static str, to: &str) -> Relationship {
    Relationship { from: from.to_string(), kind, to: to.to_string() }
}

#[cfg(test)]
use super::sbom_packages::{git_supplier, github_purl, split_image_name};

#[cfg(test)]
#[path = "sbom_tests.rs"]
mod tests;
