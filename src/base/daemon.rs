//! A base image from the local Docker engine: `docker save` (the export API) streamed to a temp
//! file, its uncompressed layers compressed into the store once and found again by diff_id. The
//! store's work (checks, reads, the import) runs off the async runtime.

use super::BaseError;
use crate::digest::{DiffId, Digest};
use crate::image::BaseImage;
use crate::layer::{LayerBlob, MEDIA_TYPE_LAYER_GZIP};
use crate::store::BlobStore;
use bollard::Docker;
use futures_util::StreamExt;
use oci_spec::image::ImageConfiguration;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use tokio::io::AsyncWriteExt;

pub(super) async fn load(docker: &Docker, name: &str, store: &BlobStore) -> Result<BaseImage, BaseError> {
    let engine = inspect(docker, name).await?;
    let (store2, engine2) = (store.clone(), engine.clone());
    // Everything cached already? Then no export at all.
    let cached = blocking(name, move || engine2.cached_in(&store2)).await?;
    if !cached {
        export(docker, name, store).await?;
    }
    let repo_digest = engine.repo_digest.clone();
    let (store2, name2) = (store.clone(), name.to_string());
    let (config, layers) = blocking(name, move || read_stored(&name2, &engine, &store2)).await??;
    Ok(BaseImage { name: name.to_string(), config, layers, digest: repo_digest })
}

/// The engine's id and layers of `name`, and whether the store has them all.
pub(super) async fn image(docker: &Docker, name: &str, store: &BlobStore) -> Result<super::DaemonImage, BaseError> {
    let engine = inspect(docker, name).await?;
    let (store, e) = (store.clone(), engine.clone());
    let stored = blocking(name, move || e.cached_in(&store)).await?;
    Ok(super::DaemonImage { id: engine.config_digest, diff_ids: engine.diff_ids, stored })
}

/// What the engine says of an image.
#[derive(Debug, Clone)]
struct Engine {
    /// The image id: the config's digest.
    config_digest: Digest,
    diff_ids: Vec<DiffId>,
    /// The registry digest it was pulled by, if any.
    repo_digest: Option<Digest>,
}

impl Engine {
    /// Whether the store has the config and every layer (checking them may hash them).
    fn cached_in(&self, store: &BlobStore) -> bool {
        store.contains(&self.config_digest) && self.diff_ids.iter().all(|d| store.lookup_diff_id(d).is_some())
    }
}

/// Runs store work (checks that may hash blobs, reads, the import) off the async runtime.
async fn blocking<T: Send + 'static>(name: &str, work: impl FnOnce() -> T + Send + 'static) -> Result<T, BaseError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BaseError::Invalid { name: name.to_string(), reason: e.to_string() })
}

async fn inspect(docker: &Docker, name: &str) -> Result<Engine, BaseError> {
    let inspect = docker.inspect_image(name).await.map_err(|e| match e {
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. } => {
            BaseError::NotFound { name: name.to_string() }
        }
        source => BaseError::Docker { name: name.to_string(), source },
    })?;
    let invalid = |reason: &str| BaseError::Invalid { name: name.to_string(), reason: reason.to_string() };
    let config_digest: Digest = inspect
        .id
        .as_deref()
        .ok_or_else(|| invalid("the engine reports no image id"))?
        .parse()
        .map_err(|_| invalid("the engine's image id is not a sha256 digest"))?;
    let diff_ids: Vec<DiffId> = inspect
        .root_fs
        .and_then(|r| r.layers)
        .unwrap_or_default()
        .iter()
        .map(|d| d.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| invalid("the engine reports a layer that is not a sha256 digest"))?;
    let repo_digest = inspect
        .repo_digests
        .unwrap_or_default()
        .first()
        .and_then(|d| d.rsplit_once('@'))
        .and_then(|(_, d)| d.parse().ok());
    Ok(Engine { config_digest, diff_ids, repo_digest })
}

/// `docker save` of `name` streamed to a temp file beside the store, then its config and layers
/// imported into the store.
async fn export(docker: &Docker, name: &str, store: &BlobStore) -> Result<(), BaseError> {
    tracing::info!("exporting base image {name} from the Docker engine");
    let io = |e| BaseError::Io { name: name.into(), source: e };
    let root = store.root().to_path_buf();
    let (tmp, file) = blocking(name, move || {
        let tmp = tempfile::NamedTempFile::new_in(root)?;
        let file = tmp.reopen()?;
        Ok((tmp, file))
    })
    .await?
    .map_err(io)?;
    let mut file = tokio::fs::File::from_std(file);
    let mut stream = docker.export_image(name);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| BaseError::Docker { name: name.into(), source })?;
        file.write_all(&chunk).await.map_err(io)?;
    }
    // Every write done before the file is read.
    file.flush().await.map_err(io)?;
    drop(file);
    let (store, name2) = (store.clone(), name.to_string());
    blocking(name, move || {
        let imported = import_saved(tmp.path(), &name2, &store);
        drop(tmp);
        imported
    })
    .await?
}

/// The config and layers of the engine's image from the store, checked against the engine's
/// image id and layer list.
fn read_stored(
    name: &str,
    engine: &Engine,
    store: &BlobStore,
) -> Result<(ImageConfiguration, Vec<LayerBlob>), BaseError> {
    let invalid = |reason: &str| BaseError::Invalid { name: name.to_string(), reason: reason.to_string() };
    let io = |e| BaseError::Io { name: name.into(), source: e };
    let bytes = std::fs::read(store.blob_path(&engine.config_digest)).map_err(io)?;
    if Digest::of(&bytes) != engine.config_digest {
        return Err(invalid("the exported config does not match the engine's image id"));
    }
    let config: ImageConfiguration =
        serde_json::from_slice(&bytes).map_err(|e| invalid(&format!("bad config JSON: {e}")))?;
    let config_ids: Vec<String> = config.rootfs().diff_ids().clone();
    if config_ids.iter().map(String::as_str).ne(engine.diff_ids.iter().map(DiffId::as_str)) {
        return Err(invalid("the config's diff_ids differ from the engine's layer list"));
    }
    let layers = engine
        .diff_ids
        .iter()
        .map(|diff_id| {
            let digest = store.lookup_diff_id(diff_id).ok_or_else(|| invalid("a layer is missing after export"))?;
            let size = std::fs::metadata(store.blob_path(&digest)).map_err(io)?.len();
            let (diff_id, media_type) = (diff_id.clone(), MEDIA_TYPE_LAYER_GZIP.into());
            Ok(LayerBlob { name: "base".into(), digest, diff_id, size, media_type })
        })
        .collect::<Result<Vec<_>, BaseError>>()?;
    Ok((config, layers))
}

#[derive(serde::Deserialize)]
struct SavedManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Reads a `docker save` archive: stores its config blob and compresses each layer not yet in
/// the store (checked by diff_id).
fn import_saved(path: &Path, name: &str, store: &BlobStore) -> Result<(), BaseError> {
    let io = |e| BaseError::Io { name: name.to_string(), source: e };
    let invalid = |reason: String| BaseError::Invalid { name: name.to_string(), reason };
    // Pass 1: manifest.json and the config.
    let mut manifest: Option<Vec<SavedManifest>> = None;
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut archive = tar::Archive::new(File::open(path).map_err(io)?);
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let p = entry.path().map_err(io)?.to_string_lossy().trim_start_matches("./").to_string();
        if p == "manifest.json" {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).map_err(io)?;
            manifest = Some(serde_json::from_slice(&buf).map_err(|e| invalid(format!("bad manifest.json: {e}")))?);
        } else if p.ends_with(".json") && entry.size() < 1 << 20 || p.starts_with("blobs/") && entry.size() < 1 << 16 {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).map_err(io)?;
            small.insert(p, buf);
        }
    }
    let manifest =
        manifest.and_then(|m| m.into_iter().next()).ok_or_else(|| invalid("the export has no manifest.json".into()))?;
    let config = small
        .get(&manifest.config)
        .ok_or_else(|| invalid(format!("the export lacks its config {}", manifest.config)))?;
    store.put(config).map_err(|source| BaseError::Store { name: name.into(), source })?;

    // Pass 2: the layers, in any order the archive has them.
    let mut archive = tar::Archive::new(File::open(path).map_err(io)?);
    for entry in archive.entries().map_err(io)? {
        let entry = entry.map_err(io)?;
        let p = entry.path().map_err(io)?.to_string_lossy().trim_start_matches("./").to_string();
        if manifest.layers.contains(&p) {
            crate::layer::import_tar("base", entry, store)
                .map_err(|source| BaseError::Layer { name: name.into(), source: Box::new(source) })?;
        }
    }
    Ok(())
}
