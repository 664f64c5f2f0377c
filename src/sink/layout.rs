//! Writing an OCI image layout directory (`oci-layout`, `blobs/sha256/…`, `index.json`).

use super::SinkError;
use super::fsutil::{checked_blob, place_blob, write_atomic};
use super::lock::{LayoutLock, refuse_foreign};
use crate::digest::Digest;
use crate::image::{ANNOTATION_REF_NAME, BuiltIndex, Image, canonical_json};
use crate::store::BlobStore;
use oci_spec::image::{Arch, Descriptor, ImageIndex, ImageIndexBuilder, MediaType, Os, PlatformBuilder};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

pub(crate) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes `image` into the layout at `dir` (created if needed), tagged `tag`. Blobs already there
/// are kept; `index.json` keeps other entries and replaces the one with the same tag. Every file
/// is written to a temp file and renamed, blobs before the index that names them; concurrent
/// writers of one layout take turns (a lock file in it), so none loses another's tag.
pub fn write_oci_layout(image: &Image, store: &BlobStore, dir: &Path, tag: Option<&str>) -> Result<(), SinkError> {
    write_entry(&image.blob_digests(), descriptor(image, tag)?, store, dir, tag)
}

/// Writes a multi-platform image into the layout at `dir`: every image's blobs and the index
/// blob; `index.json` names the index (media type image index, tagged `tag`), as the OCI layout
/// spec allows, so one tag stands for every platform.
pub fn write_oci_index(index: &BuiltIndex, store: &BlobStore, dir: &Path, tag: Option<&str>) -> Result<(), SinkError> {
    let digest = crate::image::oci_digest(&index.digest)?;
    let mut entry = Descriptor::new(MediaType::ImageIndex, index.bytes.len() as u64, digest);
    if let Some(tag) = tag {
        entry.set_annotations(Some(HashMap::from([(ANNOTATION_REF_NAME.to_string(), tag.to_string())])));
    }
    write_entry(&index.blob_digests(), entry, store, dir, tag)
}

/// Writes an artifact that refers to an image of the layout (an SBOM referrer: `manifest` has a
/// `subject`) into the layout at `dir`: its blobs, and an untagged `index.json` entry with its
/// `artifactType`, which readers that pick an image leave aside.
pub fn write_oci_referrer(
    manifest: (&Digest, u64, &str),
    blob_digests: &[&Digest],
    store: &BlobStore,
    dir: &Path,
) -> Result<(), SinkError> {
    let (digest, size, artifact_type) = manifest;
    let mut entry = Descriptor::new(MediaType::ImageManifest, size, crate::image::oci_digest(digest)?);
    entry.set_artifact_type(Some(MediaType::Other(artifact_type.to_string())));
    write_entry(blob_digests, entry, store, dir, None)
}

/// Places `blobs` (from the store) into the layout at `dir` and puts `ours` into its `index.json`,
/// holding the layout's lock throughout (see [`LayoutLock`]). A failed first write into a layout
/// removes it again (and the directories made for it); a failed write into an existing layout
/// leaves its `index.json` as it was and removes the blobs it added.
fn write_entry(
    blob_digests: &[&Digest],
    ours: Descriptor,
    store: &BlobStore,
    dir: &Path,
    tag: Option<&str>,
) -> Result<(), SinkError> {
    // Nothing is created unless every blob is at hand and passes the store's check.
    for digest in blob_digests.iter().copied() {
        checked_blob(store, digest)?;
    }
    let location = format!("oci:{}", dir.display());
    let lock = LayoutLock::acquire(dir, &location)?;
    let fresh = check_marker(dir, &location)?;
    let mut added = Vec::new();
    let result = fill(blob_digests, ours, store, dir, tag, fresh, &mut added);
    if result.is_err() {
        if fresh {
            lock.undo_new_layout();
        } else {
            for path in &added {
                let _ = fs::remove_file(path);
            }
        }
    }
    result
}

/// Under the lock: whether the layout is new (no `oci-layout` yet: this writer makes it), or an
/// error when `dir` is not a layout.
fn check_marker(dir: &Path, location: &str) -> Result<bool, SinkError> {
    let marker = dir.join("oci-layout");
    if !marker.exists() {
        refuse_foreign(dir, location)?;
        return Ok(true);
    }
    let text = fs::read(&marker).map_err(SinkError::io(&marker))?;
    let v: serde_json::Value = serde_json::from_slice(&text).map_err(|source| SinkError::Json {
        location: location.to_string(),
        what: "oci-layout".into(),
        source,
    })?;
    if !v["imageLayoutVersion"].as_str().is_some_and(|s| s.starts_with("1.")) {
        let reason = "oci-layout has no 1.x imageLayoutVersion".into();
        return Err(SinkError::NotALayout { location: location.to_string(), reason });
    }
    Ok(false)
}

/// Under the lock: `oci-layout` (when `fresh`), the blobs (each one this writer adds is pushed
/// onto `added`), then `index.json` with `ours` in it.
fn fill(
    blob_digests: &[&Digest],
    ours: Descriptor,
    store: &BlobStore,
    dir: &Path,
    tag: Option<&str>,
    fresh: bool,
    added: &mut Vec<PathBuf>,
) -> Result<(), SinkError> {
    if fresh {
        write_atomic(&dir.join("oci-layout"), OCI_LAYOUT)?;
    }
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(SinkError::io(&blobs))?;
    for digest in blob_digests.iter().copied() {
        let dest = blobs.join(digest.hex());
        let there = fs::symlink_metadata(&dest).is_ok();
        place_blob(store, digest, &dest)?;
        if !there {
            added.push(dest);
        }
    }
    update_index(dir, ours, tag)
}

/// The read-modify-write of `index.json` (the caller holds the lock): other entries are kept,
/// the one with the same tag is replaced; written to a temp file and renamed into place.
fn update_index(dir: &Path, ours: Descriptor, tag: Option<&str>) -> Result<(), SinkError> {
    let index_path = dir.join("index.json");
    let mut index = if index_path.exists() {
        let bytes = fs::read(&index_path).map_err(SinkError::io(&index_path))?;
        serde_json::from_slice::<ImageIndex>(&bytes).map_err(|source| SinkError::Json {
            location: format!("oci:{}", dir.display()),
            what: "index.json".into(),
            source,
        })?
    } else {
        empty_index()?
    };
    let mut manifests: Vec<Descriptor> = index.manifests().clone();
    manifests.retain(|d| match tag {
        Some(t) => ref_name(d) != Some(t),
        // Untagged: replace only an untagged entry for the same manifest.
        None => !(ref_name(d).is_none() && d.digest() == ours.digest()),
    });
    manifests.push(ours);
    index.set_manifests(manifests);
    let bytes = canonical_json(&index).map_err(|source| SinkError::Serialise { what: "index.json", source })?;
    write_atomic(&index_path, &bytes)
}

/// `{"schemaVersion":2,"mediaType":…index…,"manifests":[]}`.
pub(crate) fn empty_index() -> Result<ImageIndex, SinkError> {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::<Descriptor>::new())
        .build()
        .map_err(|e| SinkError::Unsupported { location: "index.json".into(), reason: e.to_string() })
}

/// The index entry for `image`: manifest digest and size, platform, and the tag as ref name.
pub(crate) fn descriptor(image: &Image, tag: Option<&str>) -> Result<Descriptor, SinkError> {
    let digest = crate::image::oci_digest(&image.manifest_digest)?;
    let mut d = Descriptor::new(MediaType::ImageManifest, image.manifest.len() as u64, digest);
    let mut platform = PlatformBuilder::default()
        .architecture(Arch::from(image.architecture.as_str()))
        .os(Os::from(image.os.as_str()));
    if let Some(v) = &image.variant {
        platform = platform.variant(v.clone());
    }
    let platform = platform
        .build()
        .map_err(|e| SinkError::Unsupported { location: "index.json".into(), reason: e.to_string() })?;
    d.set_platform(Some(platform));
    if let Some(tag) = tag {
        d.set_annotations(Some(HashMap::from([(ANNOTATION_REF_NAME.to_string(), tag.to_string())])));
    }
    Ok(d)
}

pub(crate) fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations().as_ref()?.get(ANNOTATION_REF_NAME).map(String::as_str)
}
