//! The image's layers through the cache repository (docs/build-cache.md, "Layers a fresh runner
//! need not compress"): a build publishes the layers it wrote as a build-dirs artifact of kind
//! `layers` (tag `bd-layers-<deps key>`; each layer titled with its diff_id, the blobs the
//! image's). A build on a runner without them downloads those blobs while the builder runs,
//! checks each one's diff_id by decompressing it, and records it in the store's layer cache:
//! writing the image's layers then compresses only those whose content is new. Reused only when
//! the same release-oci made them with the same gzip level (the artifact's `made-by`
//! annotation, [`dirs::made_by`]): another compressor's blob of the same content would give
//! another image digest than a `--no-cache` build's.

use super::Plan;
use crate::cli::BuildSettings;
use crate::commands::build::registry_cache::connect_scopes;
use crate::digest::{DiffId, Digest, HashingWriter};
use crate::layer::{Compression, LayerBlob};
use crate::registry::{Client, Progress, Registry};
use crate::registry_cache::build_dirs::{self as dirs, Artifact, Found, Kind, Meta, Packed};
use crate::store::BlobStore;
use anyhow::Context;

/// The download of the published layers into the store's layer cache, running beside the builder.
pub(in crate::commands::build) struct Prefetch(tokio::task::JoinHandle<()>);

impl Prefetch {
    /// Waits for it; it never fails the build (a layer it could not get is compressed as usual).
    pub(in crate::commands::build) async fn done(self) {
        let _ = self.0.await;
    }
}

/// Starts getting the layers `found` lists that the store's layer cache lacks (gzip builds only).
pub(super) fn prefetch(s: &BuildSettings, plan: &Plan, store: &BlobStore, found: Found) -> Option<Prefetch> {
    if s.compression != Compression::Gzip || found.annotation(dirs::ANN_MADE_BY) != dirs::made_by() {
        tracing::debug!(tag = %found.tag, "build cache: layers of another compressor; not used");
        return None;
    }
    let index = Compression::Gzip.index_name();
    let wanted: Vec<(DiffId, dirs::FoundLayer)> = found
        .layers
        .iter()
        .filter_map(|l| Some((l.title.parse::<DiffId>().ok()?, l.clone())))
        .filter(|(d, _)| store.lookup_layer_blob(&index, d).is_none())
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let (repo, settings, store) = (plan.repo.clone(), s.registry.clone(), store.clone());
    Some(Prefetch(tokio::spawn(async move {
        let client = match Client::connect(&repo.registry, &settings, connect_scopes(&repo, false, None)).await {
            Ok(c) => c,
            Err(e) => return tracing::warn!(error = %e, "build cache: the layers not reused"),
        };
        for (diff_id, layer) in wanted {
            if let Err(e) = get(&client, &repo.repository, &store, &diff_id, &layer).await {
                tracing::warn!(error = format!("{e:#}"), tag = %found.tag, "build cache: a layer not reused");
            }
        }
    })))
}

/// Downloads one layer (unless the store has the blob), checks its diff_id, records it.
async fn get(
    client: &Client,
    repo: &str,
    store: &BlobStore,
    diff_id: &DiffId,
    layer: &dirs::FoundLayer,
) -> anyhow::Result<()> {
    if !store.contains(&layer.digest) {
        client.get_blob(repo, &layer.digest, layer.size, store, &Progress::hidden()).await?;
    }
    let (store, diff_id, digest) = (store.clone(), diff_id.clone(), layer.digest.clone());
    tokio::task::spawn_blocking(move || record_checked(&store, &diff_id, &digest)).await?
}

/// Records `digest` as the gzip blob of `diff_id` once its decompressed content has that digest.
fn record_checked(store: &BlobStore, diff_id: &DiffId, digest: &Digest) -> anyhow::Result<()> {
    let path = store.blob_path(digest);
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut gz = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
    let mut hashing = HashingWriter::new(std::io::sink());
    std::io::copy(&mut gz, &mut hashing).with_context(|| format!("decompressing {}", path.display()))?;
    let (_, hasher, _) = hashing.finish();
    let got = DiffId::from_hasher(hasher);
    anyhow::ensure!(&got == diff_id, "blob {digest} holds the layer {got}, not {diff_id} as its title says");
    store.record_layer(&Compression::Gzip.index_name(), diff_id, digest)?;
    Ok(())
}

/// The artifact of the layers the build wrote (not the base's), gzip ones only.
pub(super) fn artifact(meta: &Meta, keys: &dirs::Keys, image: &[LayerBlob], store: &BlobStore) -> Option<Artifact> {
    let gzip = Compression::Gzip.media_type();
    let packed: Vec<(String, Packed)> = image
        .iter()
        .filter(|l| l.name != "base" && l.media_type == gzip)
        .map(|l| {
            let p = Packed {
                digest: l.digest.clone(),
                diff_id: l.diff_id.clone(),
                size: l.size,
                entries: 0,
                content_bytes: 0,
            };
            (l.diff_id.to_string(), p)
        })
        .collect();
    if packed.is_empty() {
        return None;
    }
    let layers: Vec<(&str, &Packed)> = packed.iter().map(|(t, p)| (t.as_str(), p)).collect();
    let key = Digest::of(packed.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>().join("\n").as_bytes());
    let meta = Meta { kind: Kind::Layers, key: key.hex().to_string(), ..meta.clone() };
    Some(Artifact::new(&meta, &layers, store, vec![dirs::layers_tag(keys)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A gzip blob of `content` in the store, and the diff_id of `content`.
    fn stored_gzip(store: &BlobStore, content: &[u8]) -> (Digest, DiffId) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(content).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(&gz.finish().unwrap()).unwrap();
        let (digest, _) = w.commit().unwrap();
        let mut h = HashingWriter::new(std::io::sink());
        h.write_all(content).unwrap();
        (digest, DiffId::from_hasher(h.finish().1))
    }

    #[test]
    fn a_blob_is_recorded_for_the_diff_id_its_content_has() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (digest, diff_id) = stored_gzip(&store, b"a layer's tar");
        record_checked(&store, &diff_id, &digest).unwrap();
        let index = Compression::Gzip.index_name();
        assert_eq!(store.lookup_layer_blob(&index, &diff_id).map(|(d, _)| d), Some(digest));
    }

    #[test]
    fn a_blob_titled_with_another_diff_id_is_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (digest, _) = stored_gzip(&store, b"a layer's tar");
        let (_, claimed) = stored_gzip(&store, b"another layer's tar");
        let e = record_checked(&store, &claimed, &digest).unwrap_err().to_string();
        assert!(e.contains(&claimed.to_string()) && e.contains(&digest.to_string()), "{e}");
        assert_eq!(store.lookup_layer_blob(&Compression::Gzip.index_name(), &claimed), None);
    }
}
