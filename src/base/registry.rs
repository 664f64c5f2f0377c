//! A base image from a registry: pulled into the store (an index resolved to the target's
//! platform; blobs already in the store are not fetched again).

use super::BaseError;
use crate::image::BaseImage;
use crate::registry::{self, Client, Reference, RegistryOptions};
use crate::store::BlobStore;
use crate::triple::Platform;

pub(super) async fn load(
    reference: &Reference,
    opts: &RegistryOptions,
    platform: &Platform,
    store: &BlobStore,
) -> Result<BaseImage, BaseError> {
    let name = reference.to_string();
    let err = |source| BaseError::Registry { name: name.clone(), source: Box::new(source) };
    let scopes = vec![format!("repository:{}:pull", reference.repository)];
    let client = Client::connect(&reference.registry, opts, scopes).await.map_err(err)?;
    let pulled =
        registry::pull_image(&client, reference, platform, store, &registry::Bars::new()).await.map_err(err)?;
    Ok(BaseImage { name, config: pulled.config, layers: pulled.layers, digest: Some(pulled.manifest_digest) })
}
