//! A build-dirs artifact as the registry has it: an OCI image manifest with
//! `artifactType: application/vnd.release-oci.build-dirs.v1`, an image config (so `skopeo inspect`
//! and any image tool read it; its labels repeat the annotations) and tar+gzip layers named by
//! `org.opencontainers.image.title`. Publishing pushes the blobs, then the manifest under each of
//! its tags (the exact one first); finding one reads the manifest under a tag and checks it is a
//! build-dirs artifact of the kind, toolchain and key wanted.

use super::split::Packed;
use super::{
    ANN_BUILDER, ANN_DEPS_KEY, ANN_KEY, ANN_KIND, ANN_MADE_BY, ANN_MIX_ENV, ANN_PROFILE, ANN_TITLE, ANN_TRIPLE,
    ARTIFACT_TYPE, Kind, Toolchain,
};
use crate::digest::Digest;
use crate::registry::{
    Bars, BlobRef, BlobSource, MEDIA_OCI_MANIFEST, PushImage, PushSummary, PushTarget, Registry, RegistryError,
};
use crate::store::BlobStore;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// What an artifact says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    /// Its own key (hex): the deps key, the app key, or the release cache's ([`super::rel_key`]).
    pub key: String,
    pub deps_key: String,
    pub toolchain: Toolchain,
    pub mix_env: String,
    pub profile: String,
    /// The image config's `architecture` (the target's).
    pub architecture: String,
}

impl Meta {
    fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (ANN_KIND.to_string(), self.kind.as_str().to_string()),
            (ANN_KEY.to_string(), self.key.clone()),
            (ANN_DEPS_KEY.to_string(), self.deps_key.clone()),
            (ANN_BUILDER.to_string(), self.toolchain.builder_image_id.clone()),
            (ANN_TRIPLE.to_string(), self.toolchain.triple.clone()),
            (ANN_MIX_ENV.to_string(), self.mix_env.clone()),
            (ANN_PROFILE.to_string(), self.profile.clone()),
            (ANN_MADE_BY.to_string(), super::made_by()),
        ])
    }
}

/// An artifact ready to push, with its tags (the first is the exact one).
#[derive(Debug, Clone)]
pub struct Artifact {
    pub kind: Kind,
    pub push: PushImage,
    pub tags: Vec<String>,
    /// The layers' compressed bytes.
    pub bytes: u64,
}

impl Artifact {
    /// The artifact of `layers` (title, layer) from the store, described by `meta`.
    pub fn new(meta: &Meta, layers: &[(&str, &Packed)], store: &BlobStore, tags: Vec<String>) -> Artifact {
        let annotations = meta.annotations();
        let diff_ids: Vec<&str> = layers.iter().map(|(_, p)| p.diff_id.as_str()).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": meta.architecture,
            "os": "linux",
            "config": { "Labels": annotations },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        }))
        .unwrap_or_default();
        let descriptors: Vec<Value> = layers
            .iter()
            .map(|(title, p)| {
                json!({
                    "mediaType": MEDIA_LAYER,
                    "digest": p.digest.as_str(),
                    "size": p.size,
                    "annotations": { ANN_TITLE: title },
                })
            })
            .collect();
        let config_digest = Digest::of(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": { "mediaType": MEDIA_CONFIG, "digest": config_digest.as_str(), "size": config.len() },
            "layers": descriptors,
            "annotations": annotations,
        }))
        .unwrap_or_default();
        let push = PushImage {
            manifest_digest: Digest::of(&manifest),
            manifest,
            media_type: MEDIA_OCI_MANIFEST.into(),
            config: BlobRef {
                digest: config_digest,
                size: config.len() as u64,
                label: format!("{} build cache config", meta.kind.as_str()),
                source: BlobSource::Bytes(config.into()),
            },
            layers: layers
                .iter()
                .map(|(title, p)| BlobRef::stored(store, &p.digest, p.size, format!("build cache {title}")))
                .collect(),
        };
        let bytes = layers.iter().map(|(_, p)| p.size).sum();
        Artifact { kind: meta.kind, push, tags, bytes }
    }
}

/// Pushes `artifact` to `repo`: its blobs (a blob the repository has is not sent again), then
/// the manifest under each tag in order.
pub async fn publish<R: Registry>(reg: &R, repo: &str, artifact: &Artifact) -> Result<PushSummary, RegistryError> {
    let target = PushTarget {
        repository: repo.to_string(),
        tags: artifact.tags.clone(),
        mount_from: None,
        mountable: HashSet::new(),
    };
    crate::registry::push_image(reg, &artifact.push, &target, &Bars::hidden()).await
}

/// One layer of a found artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundLayer {
    pub title: String,
    pub digest: Digest,
    pub size: u64,
}

/// A manifest found under a build-dirs tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub tag: String,
    pub digest: Digest,
    pub artifact_type: String,
    pub annotations: BTreeMap<String, String>,
    pub layers: Vec<FoundLayer>,
}

/// What a lookup accepts.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    pub kind: Kind,
    pub toolchain: &'a Toolchain,
    /// The artifact's own key, when the tag named an exact one.
    pub key: Option<&'a str>,
    /// Its deps key (for an app artifact found through the latest tag).
    pub deps_key: Option<&'a str>,
}

/// Why a found artifact is not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    NotBuildDirs {
        artifact_type: String,
    },
    Kind {
        found: String,
    },
    /// Built with another builder image or for another triple.
    Toolchain {
        found: Toolchain,
    },
    Key,
    /// A layer it must have is not there (or not a gzip tar).
    Layers,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::NotBuildDirs { artifact_type } => {
                write!(f, "not a release-oci build cache (artifactType {artifact_type:?})")
            }
            Mismatch::Kind { found } => write!(f, "a {found} artifact where another kind was expected"),
            Mismatch::Toolchain { found } => write!(
                f,
                "built by builder image {} for {}: never restored across toolchains",
                found.builder_image_id, found.triple
            ),
            Mismatch::Key => write!(f, "its key annotation is not the one its tag names"),
            Mismatch::Layers => write!(f, "its layers are not the ones a build cache has"),
        }
    }
}

impl Found {
    pub fn annotation(&self, key: &str) -> &str {
        self.annotations.get(key).map(String::as_str).unwrap_or_default()
    }

    /// The toolchain its annotations name.
    pub fn toolchain(&self) -> Toolchain {
        Toolchain {
            builder_image_id: self.annotation(ANN_BUILDER).to_string(),
            triple: self.annotation(ANN_TRIPLE).to_string(),
        }
    }

    pub fn layer(&self, title: &str) -> Option<&FoundLayer> {
        self.layers.iter().find(|l| l.title == title)
    }

    /// Whether it is what `want` accepts (the toolchain always compared).
    pub fn check(&self, want: &Want<'_>) -> Result<(), Mismatch> {
        if self.artifact_type != ARTIFACT_TYPE {
            return Err(Mismatch::NotBuildDirs { artifact_type: self.artifact_type.clone() });
        }
        if self.annotation(ANN_KIND) != want.kind.as_str() {
            return Err(Mismatch::Kind { found: self.annotation(ANN_KIND).to_string() });
        }
        if !want.toolchain.matches(&self.toolchain()) {
            return Err(Mismatch::Toolchain { found: self.toolchain() });
        }
        if want.key.is_some_and(|k| k != self.annotation(ANN_KEY))
            || want.deps_key.is_some_and(|k| k != self.annotation(ANN_DEPS_KEY))
        {
            return Err(Mismatch::Key);
        }
        let needs: &[&str] = match want.kind {
            Kind::Deps => &["deps.tar.gz"],
            Kind::App => &["app.tar.gz", "sources.tar.gz"],
            Kind::Rel => &["rel.tar.gz"],
            Kind::Layers => &[],
        };
        if needs.iter().any(|t| self.layer(t).is_none()) {
            return Err(Mismatch::Layers);
        }
        Ok(())
    }
}

/// The manifest under `tag` in `repo`; None when there is none.
pub async fn find<R: Registry>(reg: &R, repo: &str, tag: &str) -> Result<Option<Found>, RegistryError> {
    let m = match reg.get_manifest(repo, tag).await {
        Ok(m) => m,
        Err(RegistryError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let doc: Value = serde_json::from_slice(&m.bytes).unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let annotations = doc["annotations"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), text(v))).collect())
        .unwrap_or_default();
    let layers = doc["layers"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .filter(|l| l["mediaType"] == MEDIA_LAYER)
                .filter_map(|l| {
                    Some(FoundLayer {
                        title: text(&l["annotations"][ANN_TITLE]),
                        digest: l["digest"].as_str()?.parse().ok()?,
                        size: l["size"].as_u64()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(Found {
        tag: tag.to_string(),
        digest: Digest::of(&m.bytes),
        artifact_type: text(&doc["artifactType"]),
        annotations,
        layers,
    }))
}
