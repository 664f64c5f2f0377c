//! The upgrade package as an OCI artifact that refers to the new image: a manifest with
//! `artifactType` [`ARTIFACT_TYPE`], the empty config, the package as its one layer, the new
//! image as its `subject`, and annotations naming the release, both versions and both image
//! digests. It goes where the image goes: into an OCI layout (an untagged `index.json` entry
//! with its `artifactType`, as the SBOM), to a registry (its referrers API, or the referrers tag),
//! and into the blob store, recorded under the new image's manifest and config digests, so that
//! `release-oci upgrade --from-image` finds it for an image of the local engine too.

use super::compare::UpgradePlan;
use crate::digest::Digest;
use crate::registry::{BlobRef, MEDIA_OCI_MANIFEST, Progress, Registry, RegistryError};
use crate::store::BlobStore;
use crate::supply::attach::{MEDIA_EMPTY, ReferrersIndex, parse_index, referrers_tag};
use crate::supply::sign::{ArtifactManifest, Descriptor};
use std::collections::BTreeMap;
use std::path::Path;

pub const ARTIFACT_TYPE: &str = "application/vnd.release-oci.hot-upgrade.v1";
pub const MEDIA_PACKAGE: &str = "application/vnd.release-oci.hot-upgrade.release.v1.tar+gzip";
pub const ANNOTATION_RELEASE: &str = "org.release-oci.upgrade.release";
pub const ANNOTATION_FROM_VERSION: &str = "org.release-oci.upgrade.from.version";
pub const ANNOTATION_FROM_DIGEST: &str = "org.release-oci.upgrade.from.digest";
pub const ANNOTATION_TO_VERSION: &str = "org.release-oci.upgrade.to.version";
pub const ANNOTATION_TO_DIGEST: &str = "org.release-oci.upgrade.to.digest";
const TITLE: &str = "org.opencontainers.image.title";
/// Where the store records which artifact belongs to which image.
const RECORDS: &str = "upgrades";

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("the upgrade package in the blob store")]
    Store(#[source] crate::store::StoreError),
    #[error("cannot read {path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the upgrade package into {location}")]
    Sink {
        location: String,
        #[source]
        source: Box<crate::sink::SinkError>,
    },
    #[error("pushing the upgrade package of {subject} to {repository}")]
    Registry {
        subject: Digest,
        repository: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("{location}: {reason}")]
    Invalid { location: String, reason: String },
}

/// The image the package upgrades to.
#[derive(Debug, Clone)]
pub struct Subject {
    pub digest: Digest,
    pub size: u64,
    /// Its config digest: the engine's image id.
    pub config: Digest,
}

/// The artifact, its blobs in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeArtifact {
    pub manifest: Vec<u8>,
    pub digest: Digest,
    pub package: Digest,
    pub package_size: u64,
    /// The package's file name (`NAME-VSN.tar.gz`).
    pub file_name: String,
    pub annotations: BTreeMap<String, String>,
}

impl UpgradeArtifact {
    pub fn from_version(&self) -> &str {
        self.annotations.get(ANNOTATION_FROM_VERSION).map_or("", String::as_str)
    }
    pub fn to_version(&self) -> &str {
        self.annotations.get(ANNOTATION_TO_VERSION).map_or("", String::as_str)
    }
    pub fn release(&self) -> &str {
        self.annotations.get(ANNOTATION_RELEASE).map_or("", String::as_str)
    }
    fn blobs(&self) -> [Digest; 2] {
        [self.package.clone(), Digest::of(b"{}")]
    }
}

/// The artifact's manifest for `plan`'s `package`, from the image `from` to `subject`.
pub fn manifest(
    plan: &UpgradePlan,
    package: &[u8],
    file_name: &str,
    from: &Digest,
    subject: &Subject,
    created: &str,
) -> (Vec<u8>, BTreeMap<String, String>) {
    let mut layer = Descriptor::of(MEDIA_PACKAGE, package);
    layer.annotations.insert(TITLE.into(), file_name.into());
    let mut config = Descriptor::of(MEDIA_EMPTY, b"{}");
    config.data = Some("e30=".into());
    let annotations = BTreeMap::from([
        (ANNOTATION_RELEASE.to_string(), plan.name.clone()),
        (ANNOTATION_FROM_VERSION.to_string(), plan.from.clone()),
        (ANNOTATION_FROM_DIGEST.to_string(), from.to_string()),
        (ANNOTATION_TO_VERSION.to_string(), plan.to.clone()),
        (ANNOTATION_TO_DIGEST.to_string(), subject.digest.to_string()),
        ("org.opencontainers.image.created".to_string(), created.to_string()),
    ]);
    let m = ArtifactManifest {
        schema_version: 2,
        media_type: MEDIA_OCI_MANIFEST.into(),
        artifact_type: Some(ARTIFACT_TYPE.into()),
        config,
        layers: vec![layer],
        subject: Some(Descriptor {
            media_type: crate::image::MEDIA_TYPE_MANIFEST.into(),
            size: subject.size,
            digest: subject.digest.to_string(),
            artifact_type: None,
            data: None,
            annotations: BTreeMap::new(),
        }),
        annotations: annotations.clone(),
    };
    (serde_json::to_vec(&m).unwrap_or_default(), annotations)
}

/// Puts the artifact's blobs into the store and records it under the subject's manifest and
/// config digests.
pub fn store(
    store: &BlobStore,
    manifest: Vec<u8>,
    annotations: BTreeMap<String, String>,
    package: &[u8],
    file_name: &str,
    subject: &Subject,
) -> Result<UpgradeArtifact, ArtifactError> {
    let (package_digest, package_size) = store.put(package).map_err(ArtifactError::Store)?;
    store.put(b"{}").map_err(ArtifactError::Store)?;
    let (digest, _) = store.put(&manifest).map_err(ArtifactError::Store)?;
    let dir = store.root().join(RECORDS);
    std::fs::create_dir_all(&dir).map_err(|source| ArtifactError::Io { path: dir.clone(), source })?;
    for key in [&subject.digest, &subject.config] {
        let path = dir.join(key.hex());
        let tmp = dir.join(format!(".tmp-{}-{}", key.hex(), std::process::id()));
        std::fs::write(&tmp, digest.as_str()).map_err(|source| ArtifactError::Io { path: tmp.clone(), source })?;
        std::fs::rename(&tmp, &path).map_err(|source| ArtifactError::Io { path: path.clone(), source })?;
    }
    Ok(UpgradeArtifact {
        manifest,
        digest,
        package: package_digest,
        package_size,
        file_name: file_name.to_string(),
        annotations,
    })
}

/// Reads an artifact manifest.
fn parse(manifest: Vec<u8>, location: &str) -> Result<UpgradeArtifact, ArtifactError> {
    let invalid = |reason: String| ArtifactError::Invalid { location: location.to_string(), reason };
    let m: ArtifactManifest =
        serde_json::from_slice(&manifest).map_err(|e| invalid(format!("not an artifact manifest: {e}")))?;
    if m.artifact_type.as_deref() != Some(ARTIFACT_TYPE) {
        return Err(invalid(format!("artifact type {:?}, not {ARTIFACT_TYPE}", m.artifact_type)));
    }
    let layer =
        m.layers.iter().find(|l| l.media_type == MEDIA_PACKAGE).ok_or_else(|| invalid("no package layer".into()))?;
    let package: Digest = layer.digest.parse().map_err(|_| invalid("the package digest is not sha256".into()))?;
    Ok(UpgradeArtifact {
        digest: Digest::of(&manifest),
        package,
        package_size: layer.size,
        file_name: layer.annotations.get(TITLE).cloned().unwrap_or_else(|| "release.tar.gz".into()),
        annotations: m.annotations,
        manifest,
    })
}

/// The artifact the store recorded for the image `digest` (manifest or config digest), when its
/// blobs are there.
pub fn find_in_store(store: &BlobStore, digest: &Digest) -> Result<Option<UpgradeArtifact>, ArtifactError> {
    let path = store.root().join(RECORDS).join(digest.hex());
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
    let Ok(d) = text.trim().parse::<Digest>() else { return Ok(None) };
    let Ok(bytes) = std::fs::read(store.blob_path(&d)) else { return Ok(None) };
    let a = parse(bytes, "the blob store")?;
    Ok(store.contains(&a.package).then_some(a))
}

/// The package's bytes, from the store.
pub fn package_bytes(store: &BlobStore, a: &UpgradeArtifact) -> Result<Vec<u8>, ArtifactError> {
    let path = store.blob_path(&a.package);
    let bytes = std::fs::read(&path).map_err(|source| ArtifactError::Io { path, source })?;
    if Digest::of(&bytes) != a.package {
        return Err(ArtifactError::Invalid {
            location: "the blob store".into(),
            reason: "the package is damaged".into(),
        });
    }
    Ok(bytes)
}

/// Writes the artifact into the OCI layout at `dir`, beside its image.
pub fn write_layout(a: &UpgradeArtifact, store: &BlobStore, dir: &Path) -> Result<(), ArtifactError> {
    let blobs = a.blobs();
    let refs: Vec<&Digest> = blobs.iter().chain(std::iter::once(&a.digest)).collect();
    crate::sink::write_oci_referrer((&a.digest, a.manifest.len() as u64, ARTIFACT_TYPE), &refs, store, dir)
        .map_err(|source| ArtifactError::Sink { location: format!("oci:{}", dir.display()), source: Box::new(source) })
}

/// The artifact in the layout at `dir` whose subject is the image `subject`; its package copied
/// into the store.
pub fn read_layout(dir: &Path, subject: &Digest, store: &BlobStore) -> Result<Option<UpgradeArtifact>, ArtifactError> {
    let location = format!("oci:{}", dir.display());
    let index_path = dir.join("index.json");
    let index = std::fs::read(&index_path).map_err(|source| ArtifactError::Io { path: index_path.clone(), source })?;
    let index: serde_json::Value = serde_json::from_slice(&index)
        .map_err(|e| ArtifactError::Invalid { location: location.clone(), reason: format!("index.json: {e}") })?;
    let mut found = Vec::new();
    for entry in index["manifests"].as_array().into_iter().flatten() {
        if entry["artifactType"].as_str() != Some(ARTIFACT_TYPE) {
            continue;
        }
        let Some(d) = entry["digest"].as_str().and_then(|d| d.parse::<Digest>().ok()) else { continue };
        let path = dir.join("blobs/sha256").join(d.hex());
        let bytes = std::fs::read(&path).map_err(|source| ArtifactError::Io { path, source })?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if v["subject"]["digest"].as_str() == Some(subject.as_str()) {
            found.push(parse(bytes, &location)?);
        }
    }
    let Some(a) = found.pop() else { return Ok(None) };
    let path = dir.join("blobs/sha256").join(a.package.hex());
    let bytes = std::fs::read(&path).map_err(|source| ArtifactError::Io { path, source })?;
    let (got, _) = store.put(&bytes).map_err(ArtifactError::Store)?;
    if got != a.package {
        return Err(ArtifactError::Invalid { location, reason: "the package does not hash to its digest".into() });
    }
    Ok(Some(a))
}

/// Pushes the artifact to `repo` of `reg`: its blobs, the manifest by digest (the registry's
/// referrers API lists it), or else the referrers tag `sha256-<hex>` of the subject updated.
pub async fn push<R: Registry>(
    reg: &R,
    repo: &str,
    a: &UpgradeArtifact,
    subject: &Digest,
    store: &BlobStore,
) -> Result<(), ArtifactError> {
    let err = |source| ArtifactError::Registry {
        subject: subject.clone(),
        repository: repo.to_string(),
        source: Box::new(source),
    };
    for (digest, size, label) in
        [(Digest::of(b"{}"), 2u64, "empty config"), (a.package.clone(), a.package_size, "upgrade package")]
    {
        if reg.blob_exists(repo, &digest).await.map_err(err)? {
            continue;
        }
        let blob = BlobRef::stored(store, &digest, size, label);
        reg.upload_blob(repo, &blob, &Progress::hidden()).await.map_err(err)?;
    }
    if reg.put_referrer(repo, a.digest.as_str(), MEDIA_OCI_MANIFEST, &a.manifest).await.map_err(err)? {
        return Ok(());
    }
    let tag = referrers_tag(subject);
    let mut index = match reg.get_manifest(repo, &tag).await {
        Ok(m) => parse_index(&m.bytes, &m.media_type).unwrap_or_default(),
        Err(RegistryError::NotFound { .. }) => ReferrersIndex::default(),
        Err(e) => return Err(err(e)),
    };
    if !index.manifests.iter().any(|m| m.digest == a.digest.as_str()) {
        let mut d = Descriptor::of(MEDIA_OCI_MANIFEST, &a.manifest);
        d.artifact_type = Some(ARTIFACT_TYPE.into());
        d.annotations = a.annotations.clone();
        index.manifests.push(d);
        let bytes = serde_json::to_vec(&index).unwrap_or_default();
        reg.put_manifest(repo, &tag, crate::registry::MEDIA_OCI_INDEX, &bytes).await.map_err(err)?;
    }
    Ok(())
}

/// The artifact a registry lists as a referrer of `subject` (its referrers API, else the referrers
/// tag), its package downloaded into the store.
pub async fn fetch<R: Registry>(
    reg: &R,
    repo: &str,
    subject: &Digest,
    store: &BlobStore,
) -> Result<Option<UpgradeArtifact>, ArtifactError> {
    let err = |source| ArtifactError::Registry {
        subject: subject.clone(),
        repository: repo.to_string(),
        source: Box::new(source),
    };
    let index = match reg.get_referrers(repo, subject).await.map_err(err)? {
        Some(m) => parse_index(&m.bytes, &m.media_type),
        None => match reg.get_manifest(repo, &referrers_tag(subject)).await {
            Ok(m) => parse_index(&m.bytes, &m.media_type),
            Err(RegistryError::NotFound { .. }) => None,
            Err(e) => return Err(err(e)),
        },
    };
    let Some(index) = index else { return Ok(None) };
    let Some(d) = index.manifests.iter().rev().find(|m| m.artifact_type.as_deref() == Some(ARTIFACT_TYPE)) else {
        return Ok(None);
    };
    let m = reg.get_manifest(repo, &d.digest).await.map_err(err)?;
    let a = parse(m.bytes, &format!("{}/{repo}", reg.name()))?;
    reg.get_blob(repo, &a.package, a.package_size, store, &Progress::hidden()).await.map_err(err)?;
    Ok(Some(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> UpgradePlan {
        UpgradePlan { name: "counter".into(), from: "0.1.0".into(), to: "0.2.0".into(), apps: vec![] }
    }

    fn subject() -> Subject {
        Subject { digest: Digest::of(b"image"), size: 5, config: Digest::of(b"config") }
    }

    #[test]
    fn the_manifest_refers_to_the_new_image_and_names_both_versions() {
        let (m, _) =
            manifest(&plan(), b"pkg", "counter-0.2.0.tar.gz", &Digest::of(b"old"), &subject(), "1970-01-01T00:00:00Z");
        let v: serde_json::Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(v["artifactType"], ARTIFACT_TYPE);
        assert_eq!(v["subject"]["digest"], Digest::of(b"image").as_str());
        assert_eq!(v["config"]["mediaType"], MEDIA_EMPTY);
        assert_eq!(v["layers"][0]["mediaType"], MEDIA_PACKAGE);
        assert_eq!(v["layers"][0]["annotations"][TITLE], "counter-0.2.0.tar.gz");
        assert_eq!(v["annotations"][ANNOTATION_FROM_VERSION], "0.1.0");
        assert_eq!(v["annotations"][ANNOTATION_TO_VERSION], "0.2.0");
        assert_eq!(v["annotations"][ANNOTATION_FROM_DIGEST], Digest::of(b"old").as_str());
        assert_eq!(v["annotations"][ANNOTATION_TO_DIGEST], Digest::of(b"image").as_str());
    }

    #[test]
    fn stored_found_by_manifest_or_config_digest_and_written_to_a_layout() {
        let s = tempfile::tempdir().unwrap();
        let st = BlobStore::open(s.path()).unwrap();
        let (m, ann) = manifest(&plan(), b"pkg", "counter-0.2.0.tar.gz", &Digest::of(b"old"), &subject(), "t");
        let a = store(&st, m, ann, b"pkg", "counter-0.2.0.tar.gz", &subject()).unwrap();
        assert_eq!(find_in_store(&st, &subject().digest).unwrap().as_ref(), Some(&a));
        assert_eq!(find_in_store(&st, &subject().config).unwrap().as_ref(), Some(&a));
        assert_eq!(find_in_store(&st, &Digest::of(b"other")).unwrap(), None);
        assert_eq!(package_bytes(&st, &a).unwrap(), b"pkg");
        assert_eq!((a.release(), a.from_version(), a.to_version()), ("counter", "0.1.0", "0.2.0"));
        let layout = tempfile::tempdir().unwrap();
        write_layout(&a, &st, layout.path()).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = BlobStore::open(other_dir.path()).unwrap();
        assert_eq!(read_layout(layout.path(), &subject().digest, &other).unwrap().as_ref(), Some(&a));
        assert!(other.contains(&a.package));
        assert_eq!(read_layout(layout.path(), &Digest::of(b"other"), &other).unwrap(), None);
    }
}
