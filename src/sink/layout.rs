//! Writing an OCI image layout directory (`oci-layout`, `blobs/sha256/…`, `index.json`).

use super::SinkError;
use super::fsutil::{checked_blob, place_blob, write_atomic};
use crate::digest::Digest;
use crate::image::{ANNOTATION_REF_NAME, BuiltIndex, Image, canonical_json};
use crate::store::BlobStore;
use oci_spec::image::{Arch, Descriptor, ImageIndex, ImageIndexBuilder, MediaType, Os, PlatformBuilder};
use std::collections::HashMap;
use std::fs;
use std::path::Path;

pub(crate) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes `image` into the layout at `dir` (created if needed), tagged `tag`. Blobs already there
/// are kept; `index.json` keeps other entries and replaces the one with the same tag. Every file
/// is written to a temp file and renamed, blobs before the index that names them.
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

/// Places `blobs` (from the store) into the layout at `dir` and puts `ours` into its `index.json`.
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
    fs::create_dir_all(dir).map_err(SinkError::io(dir))?;
    let location = format!("oci:{}", dir.display());
    let marker = dir.join("oci-layout");
    if marker.exists() {
        let text = fs::read(&marker).map_err(SinkError::io(&marker))?;
        let v: serde_json::Value = serde_json::from_slice(&text).map_err(|source| SinkError::Json {
            location: location.clone(),
            what: "oci-layout".into(),
            source,
        })?;
        if !v["imageLayoutVersion"].as_str().is_some_and(|s| s.starts_with("1.")) {
            return Err(SinkError::NotALayout { location, reason: "oci-layout has no 1.x imageLayoutVersion".into() });
        }
    } else {
        let mut entries = fs::read_dir(dir).map_err(SinkError::io(dir))?;
        if entries.next().is_some() {
            return Err(SinkError::NotALayout {
                location,
                reason: "the directory is not empty and has no oci-layout file (not writing into it)".into(),
            });
        }
        write_atomic(&marker, OCI_LAYOUT)?;
    }
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(SinkError::io(&blobs))?;
    for digest in blob_digests.iter().copied() {
        place_blob(store, digest, &blobs.join(digest.hex()))?;
    }

    let index_path = dir.join("index.json");
    let mut index = if index_path.exists() {
        let bytes = fs::read(&index_path).map_err(SinkError::io(&index_path))?;
        serde_json::from_slice::<ImageIndex>(&bytes).map_err(|source| SinkError::Json {
            location: location.clone(),
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
