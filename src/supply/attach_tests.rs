use super::*;
use crate::registry::fake::FakeRegistry;
use crate::supply::keys::Signer;
use p256::ecdsa::SigningKey;

fn subject() -> Subject {
    let bytes = br#"{"schemaVersion":2}"#;
    Subject { digest: Digest::of(bytes), media_type: MEDIA_OCI_MANIFEST.into(), size: bytes.len() as u64 }
}

fn signer(seed: u8) -> Signer {
    Signer::new(SigningKey::from_bytes(&[seed; 32].into()).unwrap())
}

fn attachments() -> Attachments {
    Attachments {
        sbom: Some(br#"{"spdxVersion":"SPDX-2.3","name":"a"}"#.to_vec()),
        sbom_format: SbomFormat::Spdx,
        provenance: Some(br#"{"_type":"https://in-toto.io/Statement/v1"}"#.to_vec()),
        created: Some("1970-01-01T00:00:00Z".into()),
    }
}

fn manifest(reg: &FakeRegistry, reference: &str) -> serde_json::Value {
    let m = reg.manifests.lock().unwrap();
    let found = m.get(&("r".to_string(), reference.to_string())).unwrap_or_else(|| panic!("no {reference}"));
    serde_json::from_slice(&found.bytes).unwrap()
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

#[test]
fn without_the_referrers_api_the_referrers_tag_lists_the_sbom_once() {
    let reg = FakeRegistry::default();
    let s = subject();
    let done = run(attach(&reg, "r", "h/r", &s, &attachments(), None)).unwrap();
    assert!(done.referrers_tag && !done.signed);
    let sbom_digest = done.sbom.clone().unwrap();
    let referrer = manifest(&reg, sbom_digest.as_str());
    assert_eq!(referrer["artifactType"], "application/spdx+json");
    assert_eq!(referrer["subject"]["digest"], s.digest.as_str());
    assert_eq!(referrer["config"]["mediaType"], MEDIA_EMPTY);
    assert_eq!(referrer["layers"][0]["mediaType"], "application/spdx+json");
    let index = manifest(&reg, &referrers_tag(&s.digest));
    assert_eq!(index["mediaType"], MEDIA_OCI_INDEX);
    assert_eq!(index["manifests"][0]["digest"], sbom_digest.as_str());
    assert_eq!(index["manifests"][0]["artifactType"], "application/spdx+json");
    assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.created"], "1970-01-01T00:00:00Z");
    // Again: the list keeps one entry; another referrer already listed stays.
    run(attach(&reg, "r", "h/r", &s, &attachments(), None)).unwrap();
    assert_eq!(manifest(&reg, &referrers_tag(&s.digest))["manifests"].as_array().unwrap().len(), 1);
}

#[test]
fn with_the_referrers_api_no_tag_is_written() {
    let reg = FakeRegistry { referrers_api: true, ..Default::default() };
    let done = run(attach(&reg, "r", "h/r", &subject(), &attachments(), None)).unwrap();
    assert!(!done.referrers_tag);
    assert!(!reg.calls().iter().any(|c| c.contains("sha256-") && c.starts_with("PUT")), "{:?}", reg.calls());
}

#[test]
fn a_referrers_tag_that_is_not_an_index_is_an_error() {
    let reg = FakeRegistry::default();
    let s = subject();
    reg.add_manifest("r", &referrers_tag(&s.digest), MEDIA_OCI_MANIFEST, br#"{"schemaVersion":2,"layers":[]}"#);
    let err = run(attach(&reg, "r", "h/r", &s, &attachments(), None)).unwrap_err();
    assert!(err.to_string().contains("not an image index"), "{err}");
}

#[test]
fn signatures_and_attestations_in_cosigns_tags_other_signers_kept() {
    let reg = FakeRegistry::default();
    let s = subject();
    run(attach(&reg, "r", "h/r", &s, &attachments(), Some(&signer(1)))).unwrap();
    let sig_tag = sign::cosign_tag(&s.digest, "sig");
    let att_tag = sign::cosign_tag(&s.digest, "att");
    let sig = manifest(&reg, &sig_tag);
    assert_eq!(sig["layers"].as_array().unwrap().len(), 1);
    assert_eq!(sig["layers"][0]["mediaType"], sign::MEDIA_SIMPLE_SIGNING);
    let att = manifest(&reg, &att_tag);
    let types: Vec<&str> =
        att["layers"].as_array().unwrap().iter().map(|l| l["annotations"]["predicateType"].as_str().unwrap()).collect();
    assert_eq!(types, ["https://slsa.dev/provenance/v1", SPDX_PREDICATE_TYPE]);
    // The same signer again: nothing added. Another signer: added beside.
    run(attach(&reg, "r", "h/r", &s, &attachments(), Some(&signer(1)))).unwrap();
    assert_eq!(manifest(&reg, &sig_tag)["layers"].as_array().unwrap().len(), 1);
    run(attach(&reg, "r", "h/r", &s, &attachments(), Some(&signer(2)))).unwrap();
    assert_eq!(manifest(&reg, &sig_tag)["layers"].as_array().unwrap().len(), 2);
    assert_eq!(manifest(&reg, &att_tag)["layers"].as_array().unwrap().len(), 4);
    // Every blob a manifest names was uploaded.
    for tag in [&sig_tag, &att_tag] {
        let m = manifest(&reg, tag);
        let blobs = reg.blobs.lock().unwrap();
        for d in m["layers"].as_array().unwrap().iter().chain([&m["config"]]) {
            let digest: Digest = d["digest"].as_str().unwrap().parse().unwrap();
            assert!(blobs.contains(&("r".to_string(), digest)), "{tag}: {d}");
        }
    }
}

#[test]
fn sbom_statement_wraps_the_document() {
    let s = sbom_statement(br#"{"name":"x 1 linux/amd64"}"#, SPDX_PREDICATE_TYPE, &subject().digest);
    let v: serde_json::Value = serde_json::from_slice(&s).unwrap();
    assert_eq!(v["predicateType"], SPDX_PREDICATE_TYPE);
    assert_eq!(v["predicate"]["name"], "x 1 linux/amd64");
    assert_eq!(v["subject"][0]["digest"]["sha256"], subject().digest.hex());
    let cdx = br#"{"bomFormat":"CycloneDX","metadata":{"component":{"name":"x"}}}"#;
    let v: serde_json::Value =
        serde_json::from_slice(&sbom_statement(cdx, crate::supply::cyclonedx::PREDICATE_TYPE, &subject().digest))
            .unwrap();
    assert_eq!(v["predicateType"], "https://cyclonedx.org/bom");
    assert_eq!(v["subject"][0]["name"], "x");
}

#[test]
fn a_cyclonedx_sbom_is_a_referrer_of_its_media_type_and_attested_as_cyclonedx() {
    let reg = FakeRegistry::default();
    let s = subject();
    let a = Attachments {
        sbom: Some(br#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#.to_vec()),
        sbom_format: SbomFormat::Cyclonedx,
        ..attachments()
    };
    let done = run(attach(&reg, "r", "h/r", &s, &a, Some(&signer(1)))).unwrap();
    let referrer = manifest(&reg, done.sbom.unwrap().as_str());
    assert_eq!(referrer["artifactType"], "application/vnd.cyclonedx+json");
    assert_eq!(referrer["layers"][0]["mediaType"], "application/vnd.cyclonedx+json");
    let tag = manifest(&reg, &referrers_tag(&s.digest));
    assert_eq!(tag["manifests"][0]["artifactType"], "application/vnd.cyclonedx+json");
    let att = manifest(&reg, &sign::cosign_tag(&s.digest, "att"));
    let types: Vec<&str> =
        att["layers"].as_array().unwrap().iter().map(|l| l["annotations"]["predicateType"].as_str().unwrap()).collect();
    assert_eq!(types, ["https://slsa.dev/provenance/v1", "https://cyclonedx.org/bom"]);
}
