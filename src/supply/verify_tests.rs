use super::*;
use crate::registry::MEDIA_OCI_MANIFEST;
use crate::registry::fake::FakeRegistry;
use crate::supply::attach::{Attachments, Subject, attach};
use crate::supply::facts::tests::sample;
use crate::supply::keys::Signer;
use p256::ecdsa::SigningKey;

fn signer(seed: u8) -> Signer {
    Signer::new(SigningKey::from_bytes(&[seed; 32].into()).unwrap())
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

/// An image pushed with its attachments by `signer` into the fake.
fn pushed(reg: &FakeRegistry, signer: Option<&Signer>) -> Digest {
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let digest = reg.add_manifest("r", "1", MEDIA_OCI_MANIFEST, manifest);
    let subject =
        Subject { digest: digest.clone(), media_type: MEDIA_OCI_MANIFEST.into(), size: manifest.len() as u64 };
    let a = Attachments {
        sbom: Some(crate::supply::sbom::render(&sample(), &digest)),
        sbom_format: crate::supply::SbomFormat::Spdx,
        provenance: Some(crate::supply::provenance::statement(&sample(), &digest)),
        created: Some("1970-01-01T00:00:00Z".into()),
    };
    run(attach(reg, "r", "h/r", &subject, &a, signer)).unwrap();
    digest
}

fn check(reg: &FakeRegistry, digest: &Digest, key: &Signer) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    run(verify_manifest(reg, "r", digest, key.public_key(), &store)).unwrap()
}

#[test]
fn a_signed_push_passes_every_check() {
    let reg = FakeRegistry::default();
    let digest = pushed(&reg, Some(&signer(1)));
    let r = check(&reg, &digest, &signer(1));
    assert!(r.passed(), "{r:?}");
    assert!(matches!(&r.sbom, Outcome::Ok(s) if s.contains("referrers tag")), "{r:?}");
}

#[test]
fn another_key_is_wrong_and_nothing_pushed_is_missing() {
    let reg = FakeRegistry::default();
    let digest = pushed(&reg, Some(&signer(1)));
    let r = check(&reg, &digest, &signer(2));
    assert!(matches!(r.signature, Outcome::Wrong(_)), "{r:?}");
    assert!(matches!(r.provenance, Outcome::Missing(_)), "{r:?}");
    assert!(matches!(r.sbom, Outcome::Wrong(_)), "{r:?}");

    let reg = FakeRegistry::default();
    let digest = pushed(&reg, None);
    let r = check(&reg, &digest, &signer(1));
    assert!(matches!(r.signature, Outcome::Missing(_)), "{r:?}");
    assert!(matches!(r.provenance, Outcome::Missing(_)), "{r:?}");
    assert!(matches!(r.sbom, Outcome::Wrong(_)), "unsigned SBOM: {r:?}");
}

#[test]
fn a_signature_moved_to_another_image_is_wrong() {
    let reg = FakeRegistry::default();
    let digest = pushed(&reg, Some(&signer(1)));
    let other = reg.add_manifest("r", "2", MEDIA_OCI_MANIFEST, br#"{"schemaVersion":2,"x":1}"#);
    let sig = reg.manifests.lock().unwrap()[&("r".to_string(), sign::cosign_tag(&digest, "sig"))].clone();
    reg.add_manifest("r", &sign::cosign_tag(&other, "sig"), MEDIA_OCI_MANIFEST, &sig.bytes);
    let r = check(&reg, &other, &signer(1));
    assert!(matches!(&r.signature, Outcome::Wrong(s) if s.contains("another image")), "{r:?}");
}

#[test]
fn other_bytes_served_under_a_signed_digest_are_wrong() {
    let reg = FakeRegistry::default();
    let digest = pushed(&reg, Some(&signer(1)));
    let key = ("r".to_string(), digest.to_string());
    let mut stored = reg.manifests.lock().unwrap()[&key].clone();
    stored.bytes = br#"{"schemaVersion":2,"changed":1}"#.to_vec();
    reg.manifests.lock().unwrap().insert(key, stored);
    let r = check(&reg, &digest, &signer(1));
    assert!(matches!(&r.signature, Outcome::Wrong(s) if s.contains("serves a manifest with digest")), "{r:?}");
    assert!(!r.passed());
}

#[test]
fn a_cyclonedx_sbom_passes_when_signed() {
    let reg = FakeRegistry::default();
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","c":1}"#;
    let digest = reg.add_manifest("r", "1", MEDIA_OCI_MANIFEST, manifest);
    let subject =
        Subject { digest: digest.clone(), media_type: MEDIA_OCI_MANIFEST.into(), size: manifest.len() as u64 };
    let a = Attachments {
        sbom: Some(crate::supply::cyclonedx::render(&sample(), &digest)),
        sbom_format: crate::supply::SbomFormat::Cyclonedx,
        provenance: Some(crate::supply::provenance::statement(&sample(), &digest)),
        created: None,
    };
    run(attach(&reg, "r", "h/r", &subject, &a, Some(&signer(1)))).unwrap();
    let r = check(&reg, &digest, &signer(1));
    assert!(r.passed(), "{r:?}");
    assert!(matches!(&r.sbom, Outcome::Ok(s) if s.starts_with("CycloneDX 1.6")), "{r:?}");
    let r = check(&reg, &digest, &signer(2));
    assert!(matches!(&r.sbom, Outcome::Wrong(s) if s.contains("signed by this key")), "{r:?}");
}
