//! The SBOM: an SPDX 2.3 JSON document for one image, a pure function of the build's
//! [`Facts`] and the image's manifest digest, so two builds of the same inputs give the same
//! bytes (no random UUID: the document namespace is derived from the digest; the time is the
//! image's `created`, from SOURCE_DATE_EPOCH).
//!
//! Packages: the image (`pkg:oci/NAME@sha256%3A...`, described by the document), ERTS and every
//! application of the release's `.rel` file (contained in the image), every `mix.lock` entry
//! (`pkg:hex/NAME@VERSION` with the lock's SHA-256, git ones with their URL and commit; the same
//! package as the application when the release has it), and the base image (the image is its
//! `DESCENDANT_OF`). See docs/supply-chain.md for the relationships and suppliers.

use super::facts::{AppFact, Facts, ImageFact, Origin};
use super::lock::{LockEntry, LockSource};
use crate::digest::Digest;
use serde::Serialize;
use std::collections::BTreeMap;

pub const MEDIA_SPDX: &str = "application/spdx+json";
const OTP_SUPPLIER: &str = "Organization: Ericsson AB";
const ELIXIR_SUPPLIER: &str = "Organization: The Elixir Team";
const NOASSERTION: &str = "NOASSERTION";

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
    pub license_declared: &'static str,
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
    let image_id = "SPDXRef-Image".to_string();
    let vendor = facts.vendor.as_deref().map_or_else(|| NOASSERTION.to_string(), |v| format!("Organization: {v}"));
    let mut packages = vec![image_package(facts, digest, &vendor)];
    let mut rels = vec![rel("SPDXRef-DOCUMENT", "DESCRIBES", &image_id)];
    if let Some(erts) = &facts.erts {
        let id = spdx_id("ERTS", erts);
        packages.push(simple_package(&id, "erts", erts, OTP_SUPPLIER, "Apache-2.0", "LIBRARY"));
        rels.push(rel(&image_id, "CONTAINS", &id));
    }
    let lock: BTreeMap<&str, &LockEntry> =
        facts.lock.iter().flat_map(|l| &l.entries).map(|e| (e.name.as_str(), e)).collect();
    let own: Vec<String> =
        facts.apps.iter().filter(|a| a.origin == Origin::Own).map(|a| spdx_id("App", &a.name)).collect();
    for app in &facts.apps {
        let id = spdx_id("App", &app.name);
        packages.push(app_package(app, lock.get(app.name.as_str()).copied(), &vendor));
        rels.push(rel(&image_id, "CONTAINS", &id));
        if app.origin == Origin::Dependency {
            rels.extend(own.iter().map(|o| rel(o, "DEPENDS_ON", &id)));
        }
    }
    let in_release = |name: &str| facts.apps.iter().any(|a| a.name == name);
    for entry in lock.values().filter(|e| !in_release(&e.name)) {
        let id = spdx_id("Lock", &entry.name);
        packages.push(lock_package(&id, entry, None));
        // In the lock but not in the release: a dependency of another environment (dev, test)
        // or of the build alone (runtime: false).
        rels.extend(own.iter().map(|o| rel(&id, "DEV_DEPENDENCY_OF", o)));
    }
    rels.extend(lock_dependencies(&lock, &in_release));
    if let Some(base) = &facts.base {
        packages.push(base_package(base));
        rels.push(rel(&image_id, "DESCENDANT_OF", "SPDXRef-Base"));
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

fn purl_ref(locator: String) -> ExternalRef {
    ExternalRef { category: "PACKAGE-MANAGER", kind: "purl", locator }
}

fn simple_package(
    id: &str,
    name: &str,
    version: &str,
    supplier: &str,
    license: &'static str,
    purpose: &'static str,
) -> Package {
    Package {
        spdx_id: id.to_string(),
        name: name.to_string(),
        version_info: version.to_string(),
        supplier: supplier.to_string(),
        download_location: NOASSERTION.into(),
        files_analyzed: false,
        checksums: Vec::new(),
        license_concluded: NOASSERTION,
        license_declared: license,
        copyright_text: NOASSERTION,
        external_refs: Vec::new(),
        purpose,
        comment: None,
    }
}

fn image_package(facts: &Facts, digest: &Digest, vendor: &str) -> Package {
    let mut p = simple_package("SPDXRef-Image", &facts.release, &facts.version, vendor, NOASSERTION, "CONTAINER");
    let (os, arch) = facts.platform.split_once('/').unwrap_or(("linux", &facts.platform));
    let arch = arch.split('/').next().unwrap_or(arch);
    p.external_refs.push(purl_ref(format!("{}?arch={arch}&os={os}", image_purl(&facts.release, digest.as_str()))));
    p.checksums.push(Checksum { algorithm: "SHA256", value: digest.hex().to_string() });
    p.comment = Some(format!("OCI image manifest {digest} for {} ({})", facts.platform, facts.triple));
    p
}

fn app_package(app: &AppFact, lock: Option<&LockEntry>, vendor: &str) -> Package {
    let id = spdx_id("App", &app.name);
    let (supplier, license) = match app.origin {
        Origin::Otp => (OTP_SUPPLIER, "Apache-2.0"),
        Origin::Elixir => (ELIXIR_SUPPLIER, "Apache-2.0"),
        // A dependency without a lock entry is a path dependency: the project's own code.
        Origin::Own | Origin::Dependency => (vendor, NOASSERTION),
    };
    let purpose = if app.origin == Origin::Own { "APPLICATION" } else { "LIBRARY" };
    match lock {
        Some(entry) if app.origin == Origin::Dependency => lock_package(&id, entry, Some(&app.version)),
        _ => simple_package(&id, &app.name, &app.version, supplier, license, purpose),
    }
}

/// A lock entry as a package; `version` is the release's (the lock's when it has none).
fn lock_package(id: &str, entry: &LockEntry, version: Option<&str>) -> Package {
    match &entry.source {
        LockSource::Hex { package, version: lock_version, repo, outer_checksum, inner_checksum, .. } => {
            let version = version.unwrap_or(lock_version);
            let supplier = format!("Organization: Hex repository {repo}");
            let mut p = simple_package(id, &entry.name, version, &supplier, NOASSERTION, "LIBRARY");
            let checksum = outer_checksum.as_deref().unwrap_or(inner_checksum);
            p.checksums.push(Checksum { algorithm: "SHA256", value: checksum.to_lowercase() });
            let (namespace, download) = match repo.split_once(':') {
                Some((_, org)) => (format!("{org}/"), NOASSERTION.to_string()),
                None if repo == "hexpm" => {
                    (String::new(), format!("https://repo.hex.pm/tarballs/{package}-{lock_version}.tar"))
                }
                None => (String::new(), NOASSERTION.to_string()),
            };
            p.download_location = download;
            p.external_refs.push(purl_ref(format!("pkg:hex/{namespace}{package}@{lock_version}")));
            p.comment = Some(format!("mix.lock: hex {package} {lock_version} from {repo}"));
            p
        }
        LockSource::Git { url, rev } => {
            let mut p =
                simple_package(id, &entry.name, version.unwrap_or(rev), &git_supplier(url), NOASSERTION, "LIBRARY");
            p.download_location = format!("git+{url}@{rev}");
            if let Some(purl) = github_purl(url, rev) {
                p.external_refs.push(purl_ref(purl));
            }
            p.comment = Some(format!("mix.lock: git {url} at {rev}"));
            p
        }
        LockSource::Other { scm } => {
            let mut p =
                simple_package(id, &entry.name, version.unwrap_or(NOASSERTION), NOASSERTION, NOASSERTION, "LIBRARY");
            p.comment = Some(format!("mix.lock: {scm} dependency"));
            p
        }
    }
}

/// `https://HOST/OWNER/REPO.git` → `Organization: HOST/OWNER`.
fn git_supplier(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r).replace(':', "/");
    let mut parts = rest.split('/').filter(|p| !p.is_empty());
    match (parts.next(), parts.next()) {
        (Some(host), Some(owner)) => format!("Organization: {host}/{owner}"),
        _ => NOASSERTION.to_string(),
    }
}

/// `pkg:github/OWNER/REPO@COMMIT` for a GitHub URL.
fn github_purl(url: &str, rev: &str) -> Option<String> {
    let rest = url.split_once("github.com").map(|(_, r)| r.trim_start_matches([':', '/']))?;
    let mut parts = rest.trim_end_matches('/').trim_end_matches(".git").split('/');
    let (owner, repo) = (parts.next()?, parts.next()?);
    Some(format!("pkg:github/{}/{}@{rev}", owner.to_lowercase(), repo.to_lowercase()))
}

fn base_package(base: &ImageFact) -> Package {
    let (name, tag) = split_image_name(&base.name);
    let version = base.digest.clone().or(tag.clone()).unwrap_or_else(|| NOASSERTION.to_string());
    let mut p = simple_package("SPDXRef-Base", &base.name, &version, NOASSERTION, NOASSERTION, "CONTAINER");
    if let Some(d) = &base.digest {
        let mut purl = image_purl(&name, d);
        if let Some(t) = tag {
            purl.push_str(&format!("?tag={t}"));
        }
        p.external_refs.push(purl_ref(purl));
    }
    p.comment = Some("the base image".into());
    p
}

/// `host/path/name:tag` → (`name`, `tag`).
fn split_image_name(full: &str) -> (String, Option<String>) {
    let last = full.rsplit('/').next().unwrap_or(full);
    let last = last.split('@').next().unwrap_or(last);
    match last.split_once(':') {
        Some((n, t)) => (n.to_string(), Some(t.to_string())),
        None => (last.to_string(), None),
    }
}

#[cfg(test)]
#[path = "sbom_tests.rs"]
mod tests;
