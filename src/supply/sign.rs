//! cosign's formats, made here so that `cosign verify` and `cosign verify-attestation` accept what
//! release-oci pushes (sigstore/cosign specs/SIGNATURE_SPEC.md):
//!
//! - the simple-signing payload (`critical.image.docker-manifest-digest`), signed as it is;
//! - the signature image at the tag `sha256-<hex>.sig`: one layer per signature
//!   (`application/vnd.dev.cosign.simplesigning.v1+json`, the payload, with the base64 DER
//!   signature in the annotation `dev.cosignproject.cosign/signature`), and a config listing the
//!   layers as diff_ids, as cosign writes it;
//! - DSSE envelopes (in-toto statements) signed over the pre-authentication encoding, at the tag
//!   `sha256-<hex>.att` as layers `application/vnd.dsse.envelope.v1+json`.

use super::keys::Signer;
use crate::digest::Digest;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MEDIA_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const MEDIA_DSSE: &str = "application/vnd.dsse.envelope.v1+json";
pub const MEDIA_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
pub const ANNOTATION_PREDICATE_TYPE: &str = "predicateType";
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
const SIGNATURE_TYPE: &str = "cosign container image signature";

/// The tag of the signatures of `digest` (`sha256-<hex>.sig`), or of its attestations (`.att`).
pub fn cosign_tag(digest: &Digest, suffix: &str) -> String {
    format!("sha256-{}.{suffix}", digest.hex())
}

/// cosign's simple-signing payload for `repository` (`host/path`, no tag) at `digest`.
pub fn simple_signing_payload(repository: &str, digest: &Digest) -> Vec<u8> {
    let v = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest.as_str()},
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The digest a simple-signing payload names, when it is one.
pub fn payload_digest(payload: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if v["critical"]["type"] != SIGNATURE_TYPE {
        return None;
    }
    v["critical"]["image"]["docker-manifest-digest"].as_str().map(String::from)
}

/// An OCI descriptor as manifests and indexes list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
    pub digest: String,
    #[serde(rename = "artifactType", default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            size: bytes.len() as u64,
            digest: Digest::of(bytes).to_string(),
            artifact_type: None,
            data: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// An OCI image manifest (what signature, attestation and SBOM artifacts are).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactManifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    #[serde(rename = "artifactType", default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A signature layer: the payload's descriptor with its signature annotation.
pub fn signature_layer(payload: &[u8], signer: &Signer) -> Descriptor {
    let mut d = Descriptor::of(MEDIA_SIMPLE_SIGNING, payload);
    let sig = base64::engine::general_purpose::STANDARD.encode(signer.sign(payload));
    d.annotations.insert(ANNOTATION_SIGNATURE.into(), sig);
    d
}

/// An attestation layer: a DSSE envelope, its predicate type annotated as cosign does.
pub fn attestation_layer(envelope: &[u8], predicate_type: &str) -> Descriptor {
    let mut d = Descriptor::of(MEDIA_DSSE, envelope);
    d.annotations.insert(ANNOTATION_SIGNATURE.into(), String::new());
    d.annotations.insert(ANNOTATION_PREDICATE_TYPE.into(), predicate_type.into());
    d
}

/// The config cosign gives its signature and attestation images (empty platform, epoch-zero
/// dates, one diff_id per layer: the layers are uncompressed).
pub fn cosign_config(layers: &[Descriptor]) -> Vec<u8> {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let v = serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The signature (or attestation) image for `layers`: the manifest and its config.
pub fn cosign_manifest(layers: Vec<Descriptor>) -> (Vec<u8>, Vec<u8>) {
    let config = cosign_config(&layers);
    let m = ArtifactManifest {
        schema_version: 2,
        media_type: crate::registry::MEDIA_OCI_MANIFEST.into(),
        artifact_type: None,
        config: Descriptor::of(MEDIA_IMAGE_CONFIG, &config),
        layers,
        subject: None,
        annotations: BTreeMap::new(),
    };
    (serde_json::to_vec(&m).unwrap_or_default(), config)
}

/// Adds `new` to `existing` layers (another signer's are kept); the same layer twice is kept once.
pub fn merge_layers(existing: Vec<Descriptor>, new: Descriptor) -> Vec<Descriptor> {
    let mut out: Vec<Descriptor> = existing.into_iter().filter(|d| d != &new).collect();
    out.push(new);
    out
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: String,
    pub sig: String,
}

/// DSSE's pre-authentication encoding: `DSSEv1 LEN(type) type LEN(body) body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Signs `payload` (an in-toto statement) into a DSSE envelope, as JSON bytes.
pub fn dsse_envelope(payload: &[u8], signer: &Signer) -> Vec<u8> {
    let b64 = &base64::engine::general_purpose::STANDARD;
    let env = Envelope {
        payload_type: IN_TOTO_PAYLOAD_TYPE.into(),
        payload: b64.encode(payload),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig: b64.encode(signer.sign(&pae(IN_TOTO_PAYLOAD_TYPE, payload))),
        }],
    };
    serde_json::to_vec(&env).unwrap_or_default()
}

/// The payload of an envelope whose signature `key` verifies; None otherwise.
pub fn open_envelope(envelope: &[u8], key: &p256::ecdsa::VerifyingKey) -> Option<Vec<u8>> {
    let b64 = &base64::engine::general_purpose::STANDARD;
    let env: Envelope = serde_json::from_slice(envelope).ok()?;
    let payload = b64.decode(&env.payload).ok()?;
    let message = pae(&env.payload_type, &payload);
    let ok =
        env.signatures.iter().any(|s| b64.decode(&s.sig).is_ok_and(|sig| super::keys::verify(key, &message, &sig)));
    ok.then_some(payload)
}

#[cfg(test)]
#[path = "sign_tests.rs"]
mod tests;
