//! `release-oci verify`'s checks of one image in a registry against a public key: the cosign
//! signature (`.sig`) of the manifest the registry serves under the digest, the SBOM (an SPDX or
//! CycloneDX referrer, through the referrers API or the referrers tag, and its signed
//! attestation), and the SLSA provenance (`.att`). Each check says whether it
//! passed, is missing, or is wrong, and why.

use super::SbomFormat;
use super::attach::{parse_index, referrers_tag};
use super::sign::{self, ArtifactManifest, Descriptor};
use crate::digest::Digest;
use crate::registry::{Progress, Registry, RegistryError};
use crate::store::BlobStore;
use base64::Engine as _;
use p256::ecdsa::VerifyingKey;
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok(String),
    Missing(String),
    Wrong(String),
}

impl Outcome {
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok(s) => write!(f, "ok: {s}"),
            Outcome::Missing(s) => write!(f, "MISSING: {s}"),
            Outcome::Wrong(s) => write!(f, "WRONG: {s}"),
        }
    }
}

/// The three checks of one manifest.
#[derive(Debug, Clone)]
pub struct Report {
    pub digest: Digest,
    pub signature: Outcome,
    pub sbom: Outcome,
    pub provenance: Outcome,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.signature.passed() && self.sbom.passed() && self.provenance.passed()
    }
}

/// Reads blobs of one repository into a (scratch) store.
struct Reader<'a, R> {
    reg: &'a R,
    repo: &'a str,
    store: &'a BlobStore,
}

impl<R: Registry> Reader<'_, R> {
    async fn blob(&self, d: &Descriptor) -> Result<Vec<u8>, RegistryError> {
        let digest: Digest = d.digest.parse().map_err(|_| RegistryError::Unsupported {
            reference: self.repo.to_string(),
            reason: format!("a descriptor names {:?}, not a sha256 digest", d.digest),
        })?;
        // Checking a stored blob may hash it: off the async runtime.
        let (store, wanted) = (self.store.clone(), digest.clone());
        let stored =
            crate::registry::blocking(self.reg.name(), "checking the blob store", move || store.contains(&wanted));
        if !stored.await? {
            self.reg.get_blob(self.repo, &digest, d.size, self.store, &Progress::hidden()).await?;
        }
        let path = self.store.blob_path(&digest);
        tokio::fs::read(&path).await.map_err(|source| RegistryError::Io { path, source })
    }

    /// The layers of the cosign image at `tag`; None when there is none.
    async fn cosign_layers(&self, tag: &str) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        match self.reg.get_manifest(self.repo, tag).await {
            Ok(m) => {
                Ok(Some(serde_json::from_slice::<ArtifactManifest>(&m.bytes).map(|m| m.layers).unwrap_or_default()))
            }
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The statements of `.att` with `predicate_type` that `key` signed.
    async fn attestations(
        &self,
        digest: &Digest,
        predicate_type: &str,
        key: &VerifyingKey,
    ) -> Result<Option<Vec<Value>>, RegistryError> {
        let Some(layers) = self.cosign_layers(&sign::cosign_tag(digest, "att")).await? else { return Ok(None) };
        let mut out = Vec::new();
        for l in layers
            .iter()
            .filter(|l| l.annotations.get(sign::ANNOTATION_PREDICATE_TYPE).map(String::as_str) == Some(predicate_type))
        {
            let envelope = self.blob(l).await?;
            if let Some(payload) = sign::open_envelope(&envelope, key)
                && let Ok(v) = serde_json::from_slice::<Value>(&payload)
            {
                out.push(v);
            }
        }
        Ok(Some(out))
    }
}

/// Checks the image `digest` in `repo`.
pub async fn verify_manifest<R: Registry>(
    reg: &R,
    repo: &str,
    digest: &Digest,
    key: &VerifyingKey,
    store: &BlobStore,
) -> Result<Report, RegistryError> {
    let r = Reader { reg, repo, store };
    // A signature is worth something only for the bytes the registry serves under the digest.
    let signature = match served(reg, repo, digest).await? {
        Some(wrong) => wrong,
        None => signature(&r, digest, key).await?,
    };
    Ok(Report {
        digest: digest.clone(),
        signature,
        sbom: sbom(&r, digest, key).await?,
        provenance: provenance(&r, digest, key).await?,
    })
}

/// None when the registry serves the manifest `digest` names (its bytes hash to it), else what
/// is wrong.
async fn served<R: Registry>(reg: &R, repo: &str, digest: &Digest) -> Result<Option<Outcome>, RegistryError> {
    let other = |found: &str| {
        Outcome::Wrong(format!(
            "the registry serves a manifest with digest {found} for {digest}: not the image that was signed"
        ))
    };
    match reg.get_manifest(repo, digest.as_str()).await {
        Ok(m) if Digest::of(&m.bytes) == *digest => Ok(None),
        Ok(m) => Ok(Some(other(Digest::of(&m.bytes).as_str()))),
        Err(RegistryError::DigestMismatch { found, .. }) => Ok(Some(other(&found))),
        Err(RegistryError::NotFound { .. }) => Ok(Some(Outcome::Missing(format!("no manifest {digest} in {repo}")))),
        Err(e) => Err(e),
    }
}

async fn signature<R: Registry>(
    r: &Reader<'_, R>,
    digest: &Digest,
    key: &VerifyingKey,
) -> Result<Outcome, RegistryError> {
    let tag = sign::cosign_tag(digest, "sig");
    let Some(layers) = r.cosign_layers(&tag).await? else {
        return Ok(Outcome::Missing(format!("no signature ({tag})")));
    };
    let mut other_image = false;
    for l in layers.iter().filter(|l| l.media_type == sign::MEDIA_SIMPLE_SIGNING) {
        let payload = r.blob(l).await?;
        let Some(sig) = l.annotations.get(sign::ANNOTATION_SIGNATURE) else { continue };
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig) else { continue };
        if !super::keys::verify(key, &payload, &sig) {
            continue;
        }
        if sign::payload_digest(&payload).as_deref() == Some(digest.as_str()) {
            return Ok(Outcome::Ok(format!("cosign signature in {tag}")));
        }
        other_image = true;
    }
    Ok(Outcome::Wrong(if other_image {
        format!("{tag} has a signature by this key, but for another image")
    } else {
        format!("{tag} has {} signature(s), none by this key", layers.len())
    }))
}

async fn provenance<R: Registry>(
    r: &Reader<'_, R>,
    digest: &Digest,
    key: &VerifyingKey,
) -> Result<Outcome, RegistryError> {
    let pt = super::provenance::PREDICATE_TYPE;
    let Some(statements) = r.attestations(digest, pt, key).await? else {
        return Ok(Outcome::Missing(format!("no attestations ({})", sign::cosign_tag(digest, "att"))));
    };
    if statements.is_empty() {
        return Ok(Outcome::Missing(format!("no {pt} attestation signed by this key")));
    }
    if statements.iter().any(|s| names_subject(s, digest)) {
        return Ok(Outcome::Ok(format!("SLSA provenance v1, signed (DSSE) in {}", sign::cosign_tag(digest, "att"))));
    }
    Ok(Outcome::Wrong("the signed provenance is about another image".into()))
}

fn names_subject(statement: &Value, digest: &Digest) -> bool {
    statement["subject"].as_array().is_some_and(|s| s.iter().any(|s| s["digest"]["sha256"] == digest.hex()))
}

/// The SBOM referrer of `digest` (SPDX first, else CycloneDX): through the referrers API, else
/// the referrers tag.
async fn sbom_descriptor<R: Registry>(
    r: &Reader<'_, R>,
    digest: &Digest,
) -> Result<Option<(Descriptor, &'static str, SbomFormat)>, RegistryError> {
    let (index, via) = match r.reg.get_referrers(r.repo, digest).await? {
        Some(m) => (m, "the referrers API"),
        None => match r.reg.get_manifest(r.repo, &referrers_tag(digest)).await {
            Ok(m) => (m, "the referrers tag"),
            Err(RegistryError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        },
    };
    let list = parse_index(&index.bytes, &index.media_type).map(|i| i.manifests).unwrap_or_default();
    for format in [SbomFormat::Spdx, SbomFormat::Cyclonedx] {
        if let Some(d) = list.iter().find(|d| d.artifact_type.as_deref() == Some(format.media_type())) {
            return Ok(Some((d.clone(), via, format)));
        }
    }
    Ok(None)
}

/// Whether `doc` is an SBOM of `format` about the image `digest`: a summary, or what is wrong.
fn about(doc: &Value, format: SbomFormat, digest: &Digest) -> Result<String, String> {
    match format {
        SbomFormat::Cyclonedx => {
            let hashes = doc["metadata"]["component"]["hashes"].as_array().cloned().unwrap_or_default();
            if doc["bomFormat"] != "CycloneDX" || !hashes.iter().any(|h| h["content"] == digest.hex()) {
                return Err("the SBOM is not a CycloneDX document about this image".into());
            }
            let n = doc["components"].as_array().map_or(0, Vec::len);
            Ok(format!("CycloneDX {}, {n} components", doc["specVersion"].as_str().unwrap_or("?")))
        }
        SbomFormat::Spdx | SbomFormat::None => {
            let namespace = doc["documentNamespace"].as_str();
            if doc["spdxVersion"] != "SPDX-2.3" || !namespace.is_some_and(|n| n.ends_with(digest.hex())) {
                return Err("the SBOM is not an SPDX 2.3 document about this image".into());
            }
            Ok(format!("SPDX 2.3, {} packages", doc["packages"].as_array().map_or(0, Vec::len)))
        }
    }
}

async fn sbom<R: Registry>(r: &Reader<'_, R>, digest: &Digest, key: &VerifyingKey) -> Result<Outcome, RegistryError> {
    let Some((d, via, format)) = sbom_descriptor(r, digest).await? else {
        return Ok(Outcome::Missing(format!(
            "no SPDX or CycloneDX referrer (neither the referrers API nor {})",
            referrers_tag(digest)
        )));
    };
    let m = r.reg.get_manifest(r.repo, &d.digest).await?;
    let Ok(manifest) = serde_json::from_slice::<ArtifactManifest>(&m.bytes) else {
        return Ok(Outcome::Wrong(format!("the SBOM referrer {} is not an image manifest", d.digest)));
    };
    if manifest.subject.as_ref().map(|s| s.digest.as_str()) != Some(digest.as_str()) {
        return Ok(Outcome::Wrong(format!("the SBOM referrer {} has another subject", d.digest)));
    }
    let Some(layer) = manifest.layers.first() else {
        return Ok(Outcome::Wrong("the SBOM referrer has no layer".into()));
    };
    let doc: Value = match serde_json::from_slice(&r.blob(layer).await?) {
        Ok(v) => v,
        Err(e) => return Ok(Outcome::Wrong(format!("the SBOM is not JSON ({e})"))),
    };
    let summary = match about(&doc, format, digest) {
        Ok(s) => s,
        Err(wrong) => return Ok(Outcome::Wrong(wrong)),
    };
    let signed = r.attestations(digest, format.predicate_type(), key).await?.unwrap_or_default();
    if !signed.iter().any(|s| names_subject(s, digest) && s["predicate"] == doc) {
        return Ok(Outcome::Wrong(format!(
            "the SBOM (found through {via}) has no attestation of it signed by this key"
        )));
    }
    Ok(Outcome::Ok(format!("{summary}, through {via}, signed")))
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
