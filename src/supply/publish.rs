//! Pushing with attachments: the image (or index) by digest first, then its SBOM, signature and
//! provenance ([`attach`]), and only then its tags. A failed signature push fails the push, and
//! leaves no tag naming an image without its signature.

use super::Signer;
use super::attach::{Attached, Attachments, Subject, attach};
use super::index_sbom::PlatformSbom;
use crate::digest::Digest;
use crate::registry::{Bars, PushImage, PushSummary, PushTarget, Registry, RegistryError};
use crate::ui;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Attach(#[from] super::attach::AttachError),
}

/// Pushes `image` with `a` (and signatures by `signer`) to `target`; `docker_reference` is
/// `host/repository`.
pub async fn push_image<R: Registry>(
    reg: &R,
    image: &PushImage,
    target: &PushTarget,
    bars: &Bars,
    docker_reference: &str,
    a: &Attachments,
    signer: Option<&Signer>,
) -> Result<PushSummary, PublishError> {
    let by_digest = PushTarget { tags: Vec::new(), ..target.clone() };
    let summary = crate::registry::push_image(reg, image, &by_digest, bars).await?;
    let subject = Subject {
        digest: image.manifest_digest.clone(),
        media_type: image.media_type.clone(),
        size: image.manifest.len() as u64,
    };
    let done = attach(reg, &target.repository, docker_reference, &subject, a, signer).await?;
    report(&subject.digest, &done);
    put_tags(reg, target, &image.media_type, &image.manifest).await?;
    Ok(summary)
}

/// An index: each image (by digest) with its own attachments (`per_image`, in the order of
/// `images`), then the index by digest, its signature and a provenance made from its images'
/// (its SBOMs are the platforms'), then the index's tags.
#[allow(clippy::too_many_arguments)]
pub async fn push_index<R: Registry>(
    reg: &R,
    images: &[PushImage],
    per_image: &[Attachments],
    index: (&[u8], &str),
    target: &PushTarget,
    bars: &Bars,
    docker_reference: &str,
    signer: Option<&Signer>,
) -> Result<PushSummary, PublishError> {
    let (bytes, media_type) = index;
    let by_digest = PushTarget { tags: Vec::new(), ..target.clone() };
    let summary = crate::registry::push::push_index(reg, images, bytes, media_type, &by_digest, bars).await?;
    for (image, a) in images.iter().zip(per_image) {
        let subject = Subject {
            digest: image.manifest_digest.clone(),
            media_type: image.media_type.clone(),
            size: image.manifest.len() as u64,
        };
        let done = attach(reg, &target.repository, docker_reference, &subject, a, signer).await?;
        report(&subject.digest, &done);
    }
    let subject = Subject { digest: Digest::of(bytes), media_type: media_type.to_string(), size: bytes.len() as u64 };
    // The index's own provenance, made from its images' (so `cosign verify-attestation` of the
    // tag, which names the index, finds one); its SBOMs are the images'.
    let statements: Vec<(&Digest, &[u8])> = images
        .iter()
        .zip(per_image)
        .filter_map(|(i, a)| Some((&i.manifest_digest, a.provenance.as_deref()?)))
        .collect();
    let own = Attachments {
        sbom: index_sbom(&subject.digest, images, per_image),
        sbom_format: super::SbomFormat::Spdx,
        provenance: super::provenance::index_statement(&subject.digest, &statements),
        created: per_image.first().and_then(|a| a.created.clone()),
    };
    let done = attach(reg, &target.repository, docker_reference, &subject, &own, signer).await?;
    report(&subject.digest, &done);
    put_tags(reg, target, media_type, bytes).await?;
    Ok(summary)
}

/// The index's own SBOM, tying the platforms' SPDX SBOMs together (none for CycloneDX).
fn index_sbom(index: &Digest, images: &[PushImage], per_image: &[Attachments]) -> Option<Vec<u8>> {
    let platforms = images
        .iter()
        .zip(per_image)
        .map(|(i, a)| match (a.sbom_format, &a.sbom) {
            (super::SbomFormat::Spdx, Some(sbom)) => Some(PlatformSbom { image: &i.manifest_digest, sbom }),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    let created = per_image.first()?.created.as_deref().unwrap_or("1970-01-01T00:00:00Z");
    super::index_sbom::render(index, &platforms, created)
}

async fn put_tags<R: Registry>(
    reg: &R,
    target: &PushTarget,
    media_type: &str,
    bytes: &[u8],
) -> Result<(), RegistryError> {
    let mut done: Vec<&str> = Vec::new();
    for tag in &target.tags {
        if !done.contains(&tag.as_str()) {
            reg.put_manifest(&target.repository, tag, media_type, bytes).await?;
            done.push(tag);
        }
    }
    Ok(())
}

fn report(digest: &Digest, done: &Attached) {
    let mut parts = Vec::new();
    if let Some(sbom) = &done.sbom {
        let via = if done.referrers_tag { "referrers tag" } else { "referrers API" };
        parts.push(format!("SBOM {} ({via})", &sbom.hex()[..12]));
    }
    if done.signed {
        parts.push("signed".to_string());
    }
    if done.attestations > 0 {
        parts.push(format!("{} attestation(s)", done.attestations));
    }
    if !parts.is_empty() {
        ui::detail(format!("{}: {}", &digest.as_str()[..19], parts.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fake::FakeRegistry;
    use crate::registry::{BlobRef, BlobSource, MEDIA_OCI_MANIFEST};

    #[test]
    fn tags_come_after_the_signature() {
        let reg = FakeRegistry::default();
        let config = b"{}".to_vec();
        let manifest = br#"{"schemaVersion":2}"#.to_vec();
        let image = PushImage {
            manifest_digest: Digest::of(&manifest),
            manifest,
            media_type: MEDIA_OCI_MANIFEST.into(),
            config: BlobRef {
                digest: Digest::of(&config),
                size: 2,
                label: "config".into(),
                source: BlobSource::Bytes(config.into()),
            },
            layers: Vec::new(),
        };
        let target = PushTarget { repository: "r".into(), tags: vec!["1".into(), "1".into()], ..Default::default() };
        let signer = Signer::new(p256::ecdsa::SigningKey::from_bytes(&[3u8; 32].into()).unwrap());
        let a = Attachments {
            sbom: Some(b"{}".to_vec()),
            sbom_format: crate::supply::SbomFormat::Spdx,
            provenance: Some(b"{}".to_vec()),
            created: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(push_image(&reg, &image, &target, &Bars::hidden(), "h/r", &a, Some(&signer))).unwrap();
        let puts: Vec<String> = reg.calls().into_iter().filter(|c| c.starts_with("PUT ")).collect();
        let sig = puts.iter().position(|c| c.ends_with(".sig")).unwrap();
        let tag = puts.iter().position(|c| c == "PUT r 1").unwrap();
        assert!(puts[0].ends_with(image.manifest_digest.as_str()), "{puts:?}");
        assert!(sig < tag && tag == puts.len() - 1, "{puts:?}");
    }

    /// The fake, refusing every `.sig` manifest.
    struct RefusesSignatures(FakeRegistry);

    impl Registry for RefusesSignatures {
        async fn blob_exists(&self, repo: &str, d: &Digest) -> Result<bool, RegistryError> {
            self.0.blob_exists(repo, d).await
        }
        async fn mount_blob(&self, repo: &str, d: &Digest, from: &str) -> Result<bool, RegistryError> {
            self.0.mount_blob(repo, d, from).await
        }
        async fn upload_blob(
            &self,
            repo: &str,
            b: &BlobRef,
            p: &crate::registry::Progress,
        ) -> Result<(), RegistryError> {
            self.0.upload_blob(repo, b, p).await
        }
        async fn put_manifest(&self, repo: &str, r: &str, t: &str, bytes: &[u8]) -> Result<(), RegistryError> {
            if r.ends_with(".sig") {
                let (registry, repository) = ("fake".into(), repo.into());
                return Err(RegistryError::Denied { registry, repository, what: r.into(), detail: "403".into() });
            }
            self.0.put_manifest(repo, r, t, bytes).await
        }
        async fn get_manifest(&self, repo: &str, r: &str) -> Result<crate::registry::Manifest, RegistryError> {
            self.0.get_manifest(repo, r).await
        }
        async fn get_blob(
            &self,
            repo: &str,
            d: &Digest,
            size: u64,
            store: &crate::store::BlobStore,
            p: &crate::registry::Progress,
        ) -> Result<u64, RegistryError> {
            self.0.get_blob(repo, d, size, store, p).await
        }
        fn name(&self) -> &str {
            "fake"
        }
    }

    #[test]
    fn a_refused_signature_fails_the_push_and_sets_no_tag() {
        let reg = RefusesSignatures(FakeRegistry::default());
        let target = PushTarget { repository: "r".into(), tags: vec!["1".into()], ..Default::default() };
        let signer = Signer::new(p256::ecdsa::SigningKey::from_bytes(&[5u8; 32].into()).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let a = Attachments::default();
        let err =
            rt.block_on(push_image(&reg, &image(1), &target, &Bars::hidden(), "h/r", &a, Some(&signer))).unwrap_err();
        assert!(format!("{err}").contains("signature"), "{err}");
        assert!(!reg.0.calls().iter().any(|c| c == "PUT r 1"), "{:?}", reg.0.calls());
    }

    fn image(n: u8) -> PushImage {
        let config = vec![b'{', b'0' + n, b'}'];
        let manifest = format!(r#"{{"schemaVersion":2,"n":{n}}}"#).into_bytes();
        PushImage {
            manifest_digest: Digest::of(&manifest),
            manifest,
            media_type: MEDIA_OCI_MANIFEST.into(),
            config: BlobRef {
                digest: Digest::of(&config),
                size: 3,
                label: "config".into(),
                source: BlobSource::Bytes(config.into()),
            },
            layers: Vec::new(),
        }
    }

    #[test]
    fn an_index_signs_every_platform_and_itself_before_its_tags() {
        let reg = FakeRegistry::default();
        let images = [image(1), image(2)];
        let facts = crate::supply::facts::tests::sample();
        let per_image: Vec<Attachments> = images
            .iter()
            .map(|i| Attachments {
                sbom: Some(b"{}".to_vec()),
                sbom_format: crate::supply::SbomFormat::Spdx,
                provenance: Some(crate::supply::provenance::statement(&facts, &i.manifest_digest)),
                created: None,
            })
            .collect();
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        let target = PushTarget { repository: "r".into(), tags: vec!["v1".into()], ..Default::default() };
        let signer = Signer::new(p256::ecdsa::SigningKey::from_bytes(&[4u8; 32].into()).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let media = crate::registry::MEDIA_OCI_INDEX;
        rt.block_on(push_index(
            &reg,
            &images,
            &per_image,
            (index, media),
            &target,
            &Bars::hidden(),
            "h/r",
            Some(&signer),
        ))
        .unwrap();
        let puts: Vec<String> = reg.calls().into_iter().filter(|c| c.starts_with("PUT ")).collect();
        for d in images.iter().map(|i| &i.manifest_digest).chain([&Digest::of(index)]) {
            let sig = format!("PUT r sha256-{}.sig", d.hex());
            assert!(puts.contains(&sig), "{sig} in {puts:?}");
        }
        let att = |d: &Digest| puts.contains(&format!("PUT r sha256-{}.att", d.hex()));
        assert!(images.iter().all(|i| att(&i.manifest_digest)) && att(&Digest::of(index)), "{puts:?}");
        // The index's attestation is its provenance alone (no SBOM of its own).
        let tag = format!("sha256-{}.att", Digest::of(index).hex());
        let att_image = rt.block_on(reg.get_manifest("r", &tag)).unwrap();
        let m: crate::supply::sign::ArtifactManifest = serde_json::from_slice(&att_image.bytes).unwrap();
        let types: Vec<&str> = m.layers.iter().map(|l| l.annotations["predicateType"].as_str()).collect();
        assert_eq!(types, [crate::supply::provenance::PREDICATE_TYPE]);
        assert_eq!(puts.last().map(String::as_str), Some("PUT r v1"), "{puts:?}");
    }
}
