//! Reading an image back from a layout directory or an archive: for `inspect`, and for using a
//! layout as the base image.

use super::blobs::LayoutFiles;
use super::layout::ref_name;
use super::report::{ImageInfo, LayerInfo};
use super::{SinkError, Target};
use crate::digest::{DiffId, Digest};
use crate::image::{BaseImage, Image};
use crate::layer::LayerBlob;
use crate::store::BlobStore;
use crate::triple::Platform;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use std::fs::{self, File};
use std::io;
use std::path::Path;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Reads the image at `target` (the tagged one, or the only one), checking the manifest and
/// config digests.
pub fn read_image(target: &Target) -> Result<ImageInfo, SinkError> {
    let (loaded, location) = match target {
        Target::OciLayout { dir, tag } => {
            let src = LayoutFiles::Dir(dir.clone());
            (load(&src, tag.as_deref())?, target.to_string())
        }
        Target::Archive { path } => {
            let src = LayoutFiles::archive(path)?;
            (load(&src, None)?, target.to_string())
        }
    };
    let diff_ids = loaded.config.rootfs().diff_ids();
    let history = loaded.config.history().clone().unwrap_or_default();
    let mut created_by = history.iter().filter(|h| h.empty_layer() != Some(true)).map(|h| h.created_by().clone());
    let mut layers = Vec::new();
    for (i, d) in loaded.manifest.layers().iter().enumerate() {
        layers.push(LayerInfo {
            digest: sha256_of(d, &location)?,
            size: d.size(),
            diff_id: diff_ids.get(i).and_then(|s| s.parse::<DiffId>().ok()),
            media_type: d.media_type().to_string(),
            created_by: created_by.next().flatten(),
        });
    }
    Ok(ImageInfo {
        location,
        manifest_digest: loaded.manifest_digest,
        manifest: loaded.manifest,
        config_digest: loaded.config_digest,
        config: loaded.config,
        layers,
    })
}

/// The image at `target` (the tagged one, or the only one) as the image model, its blobs left
/// where they are: what `release-oci push` sends on.
pub fn image_at(target: &Target) -> Result<(Image, LayoutFiles), SinkError> {
    let (src, tag) = match target {
        Target::OciLayout { dir, tag } => (LayoutFiles::Dir(dir.clone()), tag.as_deref()),
        Target::Archive { path } => (LayoutFiles::archive(path)?, None),
    };
    let loaded = load(&src, tag)?;
    let location = target.to_string();
    let diff_ids = loaded.config.rootfs().diff_ids();
    if diff_ids.len() != loaded.manifest.layers().len() {
        let reason = format!(
            "the manifest has {} layers but the config lists {} diff_ids",
            loaded.manifest.layers().len(),
            diff_ids.len()
        );
        return Err(SinkError::Unsupported { location, reason });
    }
    let mut layers = Vec::new();
    for (d, diff_id) in loaded.manifest.layers().iter().zip(diff_ids) {
        let digest = sha256_of(d, &location)?;
        let diff_id: DiffId = diff_id.parse().map_err(|_| SinkError::Unsupported {
            location: location.clone(),
            reason: format!("diff_id {diff_id:?} is not a sha256 digest"),
        })?;
        let name = format!("layer {}", &digest.hex()[..12]);
        layers.push(LayerBlob { name, digest, diff_id, size: d.size(), media_type: d.media_type().to_string() });
    }
    let image = Image {
        manifest: loaded.manifest_bytes,
        manifest_digest: loaded.manifest_digest,
        config: loaded.config_bytes,
        config_digest: loaded.config_digest,
        layers,
        os: loaded.config.os().to_string(),
        architecture: loaded.config.architecture().to_string(),
        variant: loaded.config.variant().clone(),
    };
    Ok((image, src))
}

/// Uses the image tagged `tag` (or the only one) of the layout at `dir` as a base: copies its
/// layer blobs into `store`, checking their digests.
pub fn load_base_from_layout(dir: &Path, tag: Option<&str>, store: &BlobStore) -> Result<BaseImage, SinkError> {
    load_base_from_layout_for(dir, tag, None, store)
}

/// [`load_base_from_layout`]; an entry that is an image index is resolved to `platform`.
pub fn load_base_from_layout_for(
    dir: &Path,
    tag: Option<&str>,
    platform: Option<&Platform>,
    store: &BlobStore,
) -> Result<BaseImage, SinkError> {
    let location = match tag {
        Some(t) => format!("oci:{}:{t}", dir.display()),
        None => format!("oci:{}", dir.display()),
    };
    let loaded = load_for(&LayoutFiles::Dir(dir.to_path_buf()), tag, platform)?;
    let diff_ids = loaded.config.rootfs().diff_ids();
    if diff_ids.len() != loaded.manifest.layers().len() {
        return Err(SinkError::Unsupported {
            location,
            reason: format!(
                "the manifest has {} layers but the config lists {} diff_ids",
                loaded.manifest.layers().len(),
                diff_ids.len()
            ),
        });
    }
    let mut layers = Vec::new();
    for (d, diff_id) in loaded.manifest.layers().iter().zip(diff_ids) {
        let digest = sha256_of(d, &location)?;
        let media_type =
            crate::layer::oci_layer_media_type(d.media_type().as_ref()).ok_or_else(|| SinkError::Unsupported {
                location: location.clone(),
                reason: format!("layer media type {} is not supported", d.media_type()),
            })?;
        let diff_id: DiffId = diff_id.parse().map_err(|_| SinkError::Unsupported {
            location: location.clone(),
            reason: format!("diff_id {diff_id:?} is not a sha256 digest"),
        })?;
        let size = if store.contains(&digest) {
            fs::metadata(store.blob_path(&digest)).map_err(SinkError::io(store.blob_path(&digest)))?.len()
        } else {
            copy_into_store(&dir.join("blobs/sha256").join(digest.hex()), &digest, store, &location)?
        };
        layers.push(LayerBlob { name: "base".into(), digest, diff_id, size, media_type: media_type.into() });
    }
    Ok(BaseImage { name: location, config: loaded.config, layers, digest: Some(loaded.manifest_digest) })
}

fn copy_into_store(src: &Path, expected: &Digest, store: &BlobStore, location: &str) -> Result<u64, SinkError> {
    let store_err = |source| SinkError::Store { location: location.to_string(), source };
    let mut file = File::open(src).map_err(SinkError::io(src))?;
    let mut w = store.writer().map_err(store_err)?;
    io::copy(&mut file, &mut w).map_err(SinkError::io(src))?;
    let (digest, size) = w.commit().map_err(store_err)?;
    if digest != *expected {
        return Err(SinkError::DigestMismatch {
            location: location.to_string(),
            what: format!("blob {}", src.display()),
            expected: expected.to_string(),
            found: digest.to_string(),
        });
    }
    Ok(size)
}

struct Loaded {
    manifest_digest: Digest,
    manifest: ImageManifest,
    manifest_bytes: Vec<u8>,
    config_digest: Digest,
    config: ImageConfiguration,
    config_bytes: Vec<u8>,
}

fn load(src: &LayoutFiles, tag: Option<&str>) -> Result<Loaded, SinkError> {
    load_for(src, tag, None)
}

/// One platform's entry of an image index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// `os/arch[/variant]`.
    pub platform: String,
    pub manifest_digest: Digest,
    pub size: u64,
}

/// The platforms of the image at `target` when it is an image index (`None` for one image).
pub fn read_index(target: &Target) -> Result<Option<(Digest, Vec<IndexEntry>)>, SinkError> {
    let src = match target {
        Target::OciLayout { dir, .. } => LayoutFiles::Dir(dir.clone()),
        Target::Archive { path } => LayoutFiles::archive(path)?,
    };
    let tag = match target {
        Target::OciLayout { tag, .. } => tag.as_deref(),
        Target::Archive { .. } => None,
    };
    let location = src.location();
    let index: ImageIndex = serde_json::from_slice(&src.read("index.json")?).map_err(|source| SinkError::Json {
        location: location.clone(),
        what: "index.json".into(),
        source,
    })?;
    let desc = select(&index, tag, &location)?;
    let media = desc.media_type().to_string();
    if media != crate::image::MEDIA_TYPE_INDEX && media != DOCKER_LIST {
        return Ok(None);
    }
    let digest = sha256_of(&desc, &location)?;
    let (_, entries) = index_entries(&src, &digest)?;
    Ok(Some((digest, entries)))
}

/// The entries of the index blob `digest`, with their descriptors.
fn index_entries(src: &LayoutFiles, digest: &Digest) -> Result<(Vec<Descriptor>, Vec<IndexEntry>), SinkError> {
    let location = src.location();
    let bytes = src.read_blob(digest, "image index")?;
    let inner: ImageIndex = serde_json::from_slice(&bytes).map_err(|source| SinkError::Json {
        location: location.clone(),
        what: "the image index".into(),
        source,
    })?;
    let mut entries = Vec::new();
    for d in inner.manifests() {
        let platform = d.platform().as_ref().map_or_else(
            || "unknown platform".to_string(),
            |p| {
                let mut s = format!("{}/{}", p.os(), p.architecture());
                if let Some(v) = p.variant() {
                    s.push('/');
                    s.push_str(v);
                }
                s
            },
        );
        entries.push(IndexEntry { platform, manifest_digest: sha256_of(d, &location)?, size: d.size() });
    }
    Ok((inner.manifests().clone(), entries))
}

fn load_for(src: &LayoutFiles, tag: Option<&str>, platform: Option<&Platform>) -> Result<Loaded, SinkError> {
    let location = src.location();
    let json_err = |what: &str| {
        let location = location.clone();
        let what = what.to_string();
        move |source| SinkError::Json { location, what, source }
    };
    let index: ImageIndex = serde_json::from_slice(&src.read("index.json")?).map_err(json_err("index.json"))?;
    let mut desc = select(&index, tag, &location)?;
    let mut media = desc.media_type().to_string();
    if media == crate::image::MEDIA_TYPE_INDEX || media == DOCKER_LIST {
        let Some(want) = platform else {
            return Err(SinkError::Unsupported {
                location,
                reason: "the entry is a multi-platform index; name a platform, or copy one into a layout first \
                         (skopeo copy --override-arch ARCH)"
                    .into(),
            });
        };
        let (descs, entries) = index_entries(src, &sha256_of(&desc, &location)?)?;
        let matches = |d: &Descriptor| {
            d.platform().as_ref().is_some_and(|p| {
                p.os().to_string() == want.os
                    && p.architecture().to_string() == want.architecture
                    && match (want.variant, p.variant()) {
                        (Some(w), Some(h)) => w == h,
                        _ => true,
                    }
            })
        };
        desc = descs.iter().find(|d| matches(d)).cloned().ok_or_else(|| SinkError::NoPlatform {
            location: location.clone(),
            wanted: want.to_string(),
            available: if entries.is_empty() {
                "no images".into()
            } else {
                entries.iter().map(|e| e.platform.as_str()).collect::<Vec<_>>().join(", ")
            },
        })?;
        media = desc.media_type().to_string();
    }
    if media != crate::image::MEDIA_TYPE_MANIFEST && media != DOCKER_MANIFEST {
        return Err(SinkError::Unsupported {
            location,
            reason: format!("the entry has media type {media}, not an image manifest"),
        });
    }
    let manifest_digest = sha256_of(&desc, &location)?;
    let manifest_bytes = src.read_blob(&manifest_digest, "manifest")?;
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes).map_err(json_err("the manifest"))?;
    let config_digest = sha256_of(manifest.config(), &location)?;
    let config_bytes = src.read_blob(&config_digest, "config")?;
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(json_err("the image config"))?;
    Ok(Loaded { manifest_digest, manifest, manifest_bytes, config_digest, config, config_bytes })
}

/// The index entry tagged `tag`, or the only image.
fn select(index: &ImageIndex, tag: Option<&str>, location: &str) -> Result<Descriptor, SinkError> {
    let tags: Vec<String> = index.manifests().iter().filter_map(|d| ref_name(d).map(String::from)).collect();
    if let Some(tag) = tag {
        return index.manifests().iter().find(|d| ref_name(d) == Some(tag)).cloned().ok_or_else(|| {
            SinkError::NoSuchTag { location: location.to_string(), tag: tag.to_string(), available: tags }
        });
    }
    let mut distinct: Vec<&Descriptor> = Vec::new();
    // Referrers (an SBOM next to the image: an entry with an artifactType) are not images.
    for d in index.manifests().iter().filter(|d| d.artifact_type().is_none()) {
        if !distinct.iter().any(|x| x.digest() == d.digest()) {
            distinct.push(d);
        }
    }
    match distinct.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(SinkError::NotALayout { location: location.to_string(), reason: "index.json lists no image".into() }),
        many => Err(SinkError::Ambiguous { location: location.to_string(), count: many.len(), available: tags }),
    }
}

fn sha256_of(d: &Descriptor, location: &str) -> Result<Digest, SinkError> {
    d.digest().to_string().parse().map_err(|_| SinkError::Unsupported {
        location: location.to_string(),
        reason: format!("digest {} is not sha256", d.digest()),
    })
}
