use super::*;
use crate::supply::keys::{Signer, verify};
use p256::ecdsa::SigningKey;

fn signer() -> Signer {
    Signer::new(SigningKey::from_bytes(&[7u8; 32].into()).unwrap())
}

fn digest() -> Digest {
    Digest::of(b"an image manifest")
}

#[test]
fn simple_signing_payload_is_cosigns_shape() {
    let p = simple_signing_payload("127.0.0.1:5000/hello/web", &digest());
    let expected = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5000/hello/web"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature"}},"optional":null}}"#,
        digest()
    );
    assert_eq!(String::from_utf8(p.clone()).unwrap(), expected);
    assert_eq!(payload_digest(&p).as_deref(), Some(digest().as_str()));
    assert_eq!(payload_digest(b"{}"), None);
}

#[test]
fn signature_image_has_cosigns_layout() {
    let s = signer();
    let payload = simple_signing_payload("r/a", &digest());
    let layer = signature_layer(&payload, &s);
    assert_eq!(layer.media_type, MEDIA_SIMPLE_SIGNING);
    assert_eq!(layer.digest, Digest::of(&payload).to_string());
    let sig = base64::engine::general_purpose::STANDARD.decode(&layer.annotations[ANNOTATION_SIGNATURE]).unwrap();
    assert!(verify(s.public_key(), &payload, &sig));
    let (manifest, config) = cosign_manifest(vec![layer.clone()]);
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], crate::registry::MEDIA_OCI_MANIFEST);
    assert_eq!(m["config"]["mediaType"], MEDIA_IMAGE_CONFIG);
    assert_eq!(m["config"]["digest"], Digest::of(&config).to_string());
    assert_eq!(m["layers"][0]["annotations"][ANNOTATION_SIGNATURE], layer.annotations[ANNOTATION_SIGNATURE]);
    assert!(m.get("subject").is_none() && m.get("artifactType").is_none());
    let c: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(c["rootfs"]["diff_ids"][0], layer.digest);
    assert_eq!(c["created"], "0001-01-01T00:00:00Z");
    assert_eq!(cosign_tag(&digest(), "sig"), format!("sha256-{}.sig", digest().hex()));
}

#[test]
fn merging_keeps_other_signatures_and_drops_duplicates() {
    let s = signer();
    let a = signature_layer(b"a", &s);
    let b = signature_layer(b"b", &s);
    assert_eq!(merge_layers(vec![a.clone()], b.clone()), vec![a.clone(), b.clone()]);
    assert_eq!(merge_layers(vec![a.clone(), b.clone()], a.clone()), vec![b, a]);
}

#[test]
fn dsse_envelope_signs_the_pre_authentication_encoding() {
    assert_eq!(pae("t", b"hello"), b"DSSEv1 1 t 5 hello");
    let s = signer();
    let env = dsse_envelope(br#"{"_type":"x"}"#, &s);
    assert_eq!(env, dsse_envelope(br#"{"_type":"x"}"#, &s), "deterministic");
    let e: Envelope = serde_json::from_slice(&env).unwrap();
    assert_eq!(e.payload_type, IN_TOTO_PAYLOAD_TYPE);
    assert_eq!(open_envelope(&env, s.public_key()).as_deref(), Some(&br#"{"_type":"x"}"#[..]));
    let other = Signer::new(SigningKey::from_bytes(&[9u8; 32].into()).unwrap());
    assert_eq!(open_envelope(&env, other.public_key()), None);
    let layer = attestation_layer(&env, "https://slsa.dev/provenance/v1");
    assert_eq!(layer.media_type, MEDIA_DSSE);
    assert_eq!(layer.annotations[ANNOTATION_PREDICATE_TYPE], "https://slsa.dev/provenance/v1");
    assert_eq!(layer.annotations[ANNOTATION_SIGNATURE], "");
}
