//! Attaching the SBOM, signatures and attestations to a pushed image (or index):
//!
//! - the SBOM as an OCI 1.1 referrer: a manifest with `artifactType: application/spdx+json` (or
//!   `application/vnd.cyclonedx+json`), the empty config, the document as its layer and the image
//!   as its `subject`. A registry that answers without `OCI-Subject` has no referrers API: then
//!   the referrers tag schema of the distribution spec is kept by the client (the tag `sha256-<hex>` holds an image index of the
//!   referrers; read, the descriptor added once, written back);
//! - with a signing key, cosign's signature image at `sha256-<hex>.sig` and its attestation
//!   image at `sha256-<hex>.att` (the SLSA provenance, and the SBOM as a signed predicate),
//!   each merged with what is there (other signers' layers are kept).
//!
//! Every failure is an error: a push whose signature could not be written fails.

use super::SbomFormat;
use super::keys::Signer;
use super::sign::{self, ArtifactManifest, Descriptor};
use crate::digest::Digest;
use crate::registry::{BlobRef, BlobSource, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, Progress, Registry, RegistryError};
use std::collections::BTreeMap;

pub const MEDIA_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const SPDX_PREDICATE_TYPE: &str = "https://spdx.dev/Document";

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("pushing the {what} of {subject} to {repository}")]
    Registry {
        what: &'static str,
        subject: Digest,
        repository: String,
        #[source]
        source: RegistryError,
    },
    #[error(
        "the referrers tag {tag} in {repository} holds {found}, not an image index; delete that tag (it is the referrers list of the distribution spec) and push again"
    )]
    NotAnIndex { tag: String, repository: String, found: String },
}

/// The image an attachment is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// What is attached to one image.
#[derive(Debug, Clone, Default)]
pub struct Attachments {
    /// The SBOM document.
    pub sbom: Option<Vec<u8>>,
    /// Its format (media type and attestation predicate type).
    pub sbom_format: super::SbomFormat,
    /// The in-toto statement (signed and attached only with a signer).
    pub provenance: Option<Vec<u8>>,
    /// `org.opencontainers.image.created` of the SBOM's referrer manifest.
    pub created: Option<String>,
}

/// What [`attach`] wrote (for the summary line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attached {
    pub sbom: Option<Digest>,
    /// The referrers tag was written (the registry has no referrers API).
    pub referrers_tag: bool,
    pub signed: bool,
    pub attestations: usize,
}

/// Pushes `a` for `subject` into `repo` of `reg`; `docker_reference` is `host/repo` (what
/// cosign's signature payload names).
pub async fn attach<R: Registry>(
    reg: &R,
    repo: &str,
    docker_reference: &str,
    subject: &Subject,
    a: &Attachments,
    signer: Option<&Signer>,
) -> Result<Attached, AttachError> {
    let err = |what: &'static str| {
        move |source| AttachError::Registry {
            what,
            subject: subject.digest.clone(),
            repository: repo.to_string(),
            source,
        }
    };
    let mut done = Attached::default();
    if let Some(sbom) = &a.sbom {
        let (digest, tag) = push_sbom(reg, repo, subject, (sbom, a.sbom_format), a.created.as_deref()).await?;
        done.sbom = Some(digest);
        done.referrers_tag = tag;
    }
    let Some(signer) = signer else { return Ok(done) };
    let payload = sign::simple_signing_payload(docker_reference, &subject.digest);
    let layer = sign::signature_layer(&payload, signer);
    put_blob(reg, repo, &payload, "signature").await.map_err(err("signature"))?;
    merge_push(reg, repo, &sign::cosign_tag(&subject.digest, "sig"), vec![layer]).await.map_err(err("signature"))?;
    done.signed = true;
    let mut layers = Vec::new();
    if let Some(statement) = &a.provenance {
        let envelope = sign::dsse_envelope(statement, signer);
        put_blob(reg, repo, &envelope, "provenance").await.map_err(err("provenance"))?;
        layers.push(sign::attestation_layer(&envelope, super::provenance::PREDICATE_TYPE));
    }
    if let Some(sbom) = &a.sbom {
        let predicate_type = a.sbom_format.predicate_type();
        let envelope = sign::dsse_envelope(&sbom_statement(sbom, predicate_type, &subject.digest), signer);
        put_blob(reg, repo, &envelope, "SBOM attestation").await.map_err(err("SBOM attestation"))?;
        layers.push(sign::attestation_layer(&envelope, predicate_type));
    }
    if !layers.is_empty() {
        done.attestations = layers.len();
        merge_push(reg, repo, &sign::cosign_tag(&subject.digest, "att"), layers).await.map_err(err("attestations"))?;
    }
    Ok(done)
}

/// An in-toto statement with the SBOM as its predicate of `predicate_type` (what `cosign attest
/// --type spdxjson|cyclonedx` makes), named as the SBOM names its subject.
pub fn sbom_statement(sbom: &[u8], predicate_type: &str, digest: &Digest) -> Vec<u8> {
    let predicate: serde_json::Value = serde_json::from_slice(sbom).unwrap_or(serde_json::Value::Null);
    let name = predicate["name"].as_str().or(predicate["metadata"]["component"]["name"].as_str()).unwrap_or("image");
    let v = serde_json::json!({
        "_type": super::provenance::STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest.hex()}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Uploads a small blob unless the repository has it.
async fn put_blob<R: Registry>(reg: &R, repo: &str, bytes: &[u8], label: &str) -> Result<(), RegistryError> {
    let digest = Digest::of(bytes);
    if reg.blob_exists(repo, &digest).await? {
        return Ok(());
    }
    let source = BlobSource::Bytes(bytes::Bytes::copy_from_slice(bytes));
    let blob = BlobRef { digest, size: bytes.len() as u64, label: label.to_string(), source };
    reg.upload_blob(repo, &blob, &Progress::hidden()).await
}

/// The layers of the image at `tag` (none when the tag does not exist).
async fn existing_layers<R: Registry>(reg: &R, repo: &str, tag: &str) -> Result<Vec<Descriptor>, RegistryError> {
    match reg.get_manifest(repo, tag).await {
        Ok(m) => Ok(serde_json::from_slice::<ArtifactManifest>(&m.bytes).map(|m| m.layers).unwrap_or_default()),
        Err(RegistryError::NotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// cosign's read-modify-write of a `.sig`/`.att` image: `new` layers added to those at `tag`.
async fn merge_push<R: Registry>(reg: &R, repo: &str, tag: &str, new: Vec<Descriptor>) -> Result<(), RegistryError> {
    let mut layers = existing_layers(reg, repo, tag).await?;
    for l in new {
        layers = sign::merge_layers(layers, l);
    }
    let (manifest, config) = sign::cosign_manifest(layers);
    put_blob(reg, repo, &config, "signature config").await?;
    reg.put_manifest(repo, tag, MEDIA_OCI_MANIFEST, &manifest).await
}

/// The SBOM's referrer manifest for `subject`.
pub fn sbom_manifest(subject: &Subject, sbom: (&[u8], SbomFormat), created: Option<&str>) -> Vec<u8> {
    let (sbom, format) = sbom;
    let mut layer = Descriptor::of(format.media_type(), sbom);
    let title = if format == SbomFormat::Cyclonedx { "sbom.cdx.json" } else { "sbom.spdx.json" };
    layer.annotations.insert("org.opencontainers.image.title".into(), title.into());
    let mut config = Descriptor::of(MEDIA_EMPTY, b"{}");
    config.data = Some("e30=".into());
    let mut annotations = BTreeMap::new();
    if let Some(c) = created {
        annotations.insert("org.opencontainers.image.created".to_string(), c.to_string());
    }
    let m = ArtifactManifest {
        schema_version: 2,
        media_type: MEDIA_OCI_MANIFEST.into(),
        artifact_type: Some(format.media_type().into()),
        config,
        layers: vec![layer],
        subject: Some(Descriptor {
            media_type: subject.media_type.clone(),
            size: subject.size,
            digest: subject.digest.to_string(),
            artifact_type: None,
            data: None,
            annotations: BTreeMap::new(),
        }),
        annotations,
    };
    serde_json::to_vec(&m).unwrap_or_default()
}

/// Pushes the SBOM referrer; returns its digest and whether the referrers tag was written.
async fn push_sbom<R: Registry>(
    reg: &R,
    repo: &str,
    subject: &Subject,
    sbom: (&[u8], SbomFormat),
    created: Option<&str>,
) -> Result<(Digest, bool), AttachError> {
    let err = |source| AttachError::Registry {
        what: "SBOM",
        subject: subject.digest.clone(),
        repository: repo.to_string(),
        source,
    };
    put_blob(reg, repo, b"{}", "empty config").await.map_err(err)?;
    put_blob(reg, repo, sbom.0, "SBOM").await.map_err(err)?;
    let manifest = sbom_manifest(subject, sbom, created);
    let digest = Digest::of(&manifest);
    if reg.put_referrer(repo, digest.as_str(), MEDIA_OCI_MANIFEST, &manifest).await.map_err(err)? {
        return Ok((digest, false));
    }
    let mut d = Descriptor::of(MEDIA_OCI_MANIFEST, &manifest);
    d.artifact_type = Some(sbom.1.media_type().into());
    if let Some(c) = created {
        d.annotations.insert("org.opencontainers.image.created".into(), c.into());
    }
    add_referrer(reg, repo, &subject.digest, d).await?;
    Ok((digest, true))
}

/// `sha256-<hex>`: the referrers tag of `digest` (distribution spec, referrers tag schema).
pub fn referrers_tag(digest: &Digest) -> String {
    format!("sha256-{}", digest.hex())
}

/// The referrers tag schema's read-modify-write: `d` added to the index at `sha256-<hex>`.
async fn add_referrer<R: Registry>(reg: &R, repo: &str, subject: &Digest, d: Descriptor) -> Result<(), AttachError> {
    let tag = referrers_tag(subject);
    let err = |source| AttachError::Registry {
        what: "referrers tag",
        subject: subject.clone(),
        repository: repo.to_string(),
        source,
    };
    let mut index = match reg.get_manifest(repo, &tag).await {
        Ok(m) => parse_index(&m.bytes, &m.media_type).ok_or_else(|| AttachError::NotAnIndex {
            tag: tag.clone(),
            repository: repo.to_string(),
            found: if m.media_type.is_empty() { "something else".into() } else { m.media_type.clone() },
        })?,
        Err(RegistryError::NotFound { .. }) => ReferrersIndex::default(),
        Err(e) => return Err(err(e)),
    };
    if index.manifests.iter().any(|m| m.digest == d.digest) {
        return Ok(());
    }
    index.manifests.push(d);
    let bytes = serde_json::to_vec(&index).unwrap_or_default();
    reg.put_manifest(repo, &tag, MEDIA_OCI_INDEX, &bytes).await.map_err(err)
}

/// An image index as the referrers list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReferrersIndex {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

impl Default for ReferrersIndex {
    fn default() -> Self {
        ReferrersIndex { schema_version: 2, media_type: MEDIA_OCI_INDEX.into(), manifests: Vec::new() }
    }
}

/// The referrers list in `bytes`, when it is an OCI image index.
pub fn parse_index(bytes: &[u8], media_type: &str) -> Option<ReferrersIndex> {
    let index: ReferrersIndex = serde_json::from_slice(bytes).ok()?;
    (index.media_type == MEDIA_OCI_INDEX || media_type == MEDIA_OCI_INDEX).then_some(index)
}

#[cfg(test)]
#[path = "attach_tests.rs"]
mod tests;
