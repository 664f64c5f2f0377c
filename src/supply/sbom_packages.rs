//! The SBOM's packages, one constructor per kind: applications of the release, lock entries (Hex,
//! git), distribution packages of the minimal base, the base image. Declared licences go through
//! [`Refs`] so names that are no SPDX identifier become the document's `LicenseRef-`s.

use super::builder_out::{DistroPackage, deb_purl};
use super::facts::{AppFact, Facts, ImageFact, Origin};
use super::license::Refs;
use super::lock::{LockEntry, LockSource};
use super::sbom::{Checksum, ExternalRef, NOASSERTION, Package, image_purl, spdx_id};
use crate::digest::Digest;

const OTP_SUPPLIER: &str = "Organization: Ericsson AB";
const ELIXIR_SUPPLIER: &str = "Organization: The Elixir Team";

pub(super) fn purl_ref(locator: String) -> ExternalRef {
    ExternalRef { category: "PACKAGE-MANAGER", kind: "purl", locator }
}

pub(super) fn simple_package(
    id: &str,
    name: &str,
    version: &str,
    supplier: &str,
    license: &str,
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
        license_declared: license.to_string(),
        copyright_text: NOASSERTION,
        external_refs: Vec::new(),
        purpose,
        comment: None,
    }
}

pub(super) fn erts_package(id: &str, version: &str) -> Package {
    simple_package(id, "erts", version, OTP_SUPPLIER, "Apache-2.0", "LIBRARY")
}

pub(super) fn image_package(facts: &Facts, digest: &Digest, vendor: &str) -> Package {
    let mut p = simple_package("SPDXRef-Image", &facts.release, &facts.version, vendor, NOASSERTION, "CONTAINER");
    let (os, arch) = facts.platform.split_once('/').unwrap_or(("linux", &facts.platform));
    let arch = arch.split('/').next().unwrap_or(arch);
    p.external_refs.push(purl_ref(format!("{}?arch={arch}&os={os}", image_purl(&facts.release, digest.as_str()))));
    p.checksums.push(Checksum { algorithm: "SHA256", value: digest.hex().to_string() });
    p.comment = Some(format!("OCI image manifest {digest} for {} ({})", facts.platform, facts.triple));
    p
}

/// What the packages of one document share: the facts, the vendor as a supplier, the licence
/// references made so far.
pub(super) struct Ctx<'a> {
    pub facts: &'a Facts,
    pub vendor: String,
    pub refs: Refs,
}

impl Ctx<'_> {
    /// The declared licence of the dependency `name` (its package metadata's, else NOASSERTION).
    fn declared(&mut self, name: &str) -> String {
        match self.facts.licenses.get(name) {
            Some(l) => self.refs.expression(l),
            None => NOASSERTION.to_string(),
        }
    }

    fn lock_file(&self) -> &str {
        self.facts.lock.as_ref().map_or("lock", |l| l.file.as_str())
    }

    pub(super) fn app_package(&mut self, app: &AppFact, lock: Option<&LockEntry>) -> Package {
        let id = spdx_id("App", &app.name);
        let purpose = if app.origin == Origin::Own { "APPLICATION" } else { "LIBRARY" };
        match (app.origin, lock) {
            (Origin::Dependency, Some(entry)) => self.lock_package(&id, entry, Some(&app.version)),
            (Origin::Otp, _) => simple_package(&id, &app.name, &app.version, OTP_SUPPLIER, "Apache-2.0", purpose),
            (Origin::Elixir, _) => simple_package(&id, &app.name, &app.version, ELIXIR_SUPPLIER, "Apache-2.0", purpose),
            // A dependency without a lock entry is a path dependency: the project's own code.
            (Origin::Own | Origin::Dependency, _) => {
                let license =
                    if app.origin == Origin::Dependency { self.declared(&app.name) } else { NOASSERTION.into() };
                simple_package(&id, &app.name, &app.version, &self.vendor.clone(), &license, purpose)
            }
        }
    }

    /// A lock entry as a package; `version` is the release's (the lock's when it has none).
    pub(super) fn lock_package(&mut self, id: &str, entry: &LockEntry, version: Option<&str>) -> Package {
        let license = self.declared(&entry.name);
        let file = self.lock_file().to_string();
        match &entry.source {
            LockSource::Hex { package, version: lock_version, repo, outer_checksum, inner_checksum, .. } => {
                let version = version.unwrap_or(lock_version);
                let supplier = format!("Organization: Hex repository {repo}");
                let mut p = simple_package(id, &entry.name, version, &supplier, &license, "LIBRARY");
                let checksum = outer_checksum.as_deref().unwrap_or(inner_checksum);
                if !checksum.is_empty() {
                    p.checksums.push(Checksum { algorithm: "SHA256", value: checksum.to_lowercase() });
                }
                let namespace = repo.split_once(':').map(|(_, org)| format!("{org}/")).unwrap_or_default();
                p.external_refs.push(purl_ref(format!("pkg:hex/{namespace}{package}@{lock_version}")));
                p.comment = Some(format!("{file}: hex {package} {lock_version} from {repo}"));
                p
            }
            LockSource::Git { url, rev } => {
                let mut p =
                    simple_package(id, &entry.name, version.unwrap_or(rev), &git_supplier(url), &license, "LIBRARY");
                p.download_location = format!("git+{url}@{rev}");
                if let Some(purl) = github_purl(url, rev) {
                    p.external_refs.push(purl_ref(purl));
                }
                p.comment = Some(format!("{file}: git {url} at {rev}"));
                p
            }
            LockSource::Other { scm } => {
                let version = version.unwrap_or(NOASSERTION);
                let mut p = simple_package(id, &entry.name, version, NOASSERTION, &license, "LIBRARY");
                p.comment = Some(format!("{file}: {scm} dependency"));
                p
            }
        }
    }
}

/// A distribution package whose files the minimal base took.
pub(super) fn distro_package(d: &DistroPackage) -> Package {
    let supplier = match d.distro.as_str() {
        "debian" => "Organization: Debian".to_string(),
        other => format!("Organization: {other}"),
    };
    let id = spdx_id("Deb", &format!("{}-{}", d.name, d.arch));
    let mut p = simple_package(&id, &d.name, &d.version, &supplier, NOASSERTION, "LIBRARY");
    p.external_refs.push(purl_ref(deb_purl(d)));
    let files = match d.files {
        0 => "installed in the base image".to_string(),
        1 => "1 file in the minimal base".to_string(),
        n => format!("{n} files in the minimal base"),
    };
    p.comment = Some(format!("{} package {} {} ({}): {files}", d.distro, d.name, d.version, d.arch));
    p
}

/// `https://HOST/OWNER/REPO.git` → `Organization: HOST/OWNER`.
pub(super) fn git_supplier(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r).replace(':', "/");
    let mut parts = rest.split('/').filter(|p| !p.is_empty());
    match (parts.next(), parts.next()) {
        (Some(host), Some(owner)) => format!("Organization: {host}/{owner}"),
        _ => NOASSERTION.to_string(),
    }
}

/// `pkg:github/OWNER/REPO@COMMIT` for a GitHub URL.
pub(super) fn github_purl(url: &str, rev: &str) -> Option<String> {
    let rest = url.split_once("github.com").map(|(_, r)| r.trim_start_matches([':', '/']))?;
    let mut parts = rest.trim_end_matches('/').trim_end_matches(".git").split('/');
    let (owner, repo) = (parts.next()?, parts.next()?);
    Some(format!("pkg:github/{}/{}@{rev}", owner.to_lowercase(), repo.to_lowercase()))
}

pub(super) fn base_package(base: &ImageFact) -> Package {
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
pub(super) fn split_image_name(full: &str) -> (String, Option<String>) {
    let last = full.rsplit('/').next().unwrap_or(full);
    let last = last.split('@').next().unwrap_or(last);
    match last.split_once(':') {
        Some((n, t)) => (n.to_string(), Some(t.to_string())),
        None => (last.to_string(), None),
    }
}
