//! Hot code upgrades, opt-in (docs/hot-upgrades.md): the deployed image's release upgraded in
//! place, in the running container, by `release_handler`.
//!
//! - `build --hot-upgrades`: the image declares a volume where the release root lives while it
//!   runs (`plan::hot`), and carries `releases/RELEASES`;
//! - `build --upgrade-from REF`: besides the new image, the upgrade package from exactly the
//!   release in REF ([`make`]): the releases compared and the refusals ([`compare`], [`beam`]),
//!   appups drafted or the project's ([`appup`]), the relup by `systools` ([`relup`]), a release
//!   tarball ([`package`]), shipped as an OCI artifact whose subject is the new image
//!   ([`artifact`]);
//! - `release-oci upgrade CONTAINER --from-image REF [--rollback]`: the package put into the
//!   container and applied through the release's RPC ([`apply`]).

pub mod apply;
pub mod appup;
pub mod artifact;
pub mod beam;
pub mod compare;
mod draft;
pub mod make;
pub mod package;
pub mod relup;
pub mod source;
mod start_up;

pub use compare::Refused;
pub use make::{PackageRequest, make, publish};
pub use source::ImageRef;

use crate::digest::Digest;
use crate::registry::{Client, Registry, RegistryOptions};
use crate::store::BlobStore;
use artifact::UpgradeArtifact;

#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(
        "no upgrade package for {image}: build it with `release-oci build --upgrade-from DEPLOYED-IMAGE` and write \
         it where this image is (an oci: layout, or --push)"
    )]
    NotFound { image: String },
    #[error("cannot read the image {image}")]
    Image {
        image: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Artifact(#[from] artifact::ArtifactError),
}

/// The upgrade package whose subject is the image `r` (the new one): in its OCI layout, its
/// registry's referrers, or the blob store (an image of the local engine, built on this machine).
pub async fn find_package(
    r: &ImageRef,
    docker: Option<&bollard::Docker>,
    store: &BlobStore,
    registry: &RegistryOptions,
) -> Result<UpgradeArtifact, FindError> {
    let image = r.to_string();
    let boxed = |e: Box<dyn std::error::Error + Send + Sync>| FindError::Image { image: image.clone(), source: e };
    let found = match r {
        ImageRef::Layout { dir, tag, digest } => {
            let subject = match digest {
                Some(d) => d.clone(),
                None => {
                    let target = crate::sink::Target::OciLayout { dir: dir.clone(), tag: tag.clone() };
                    crate::sink::read_image(&target).map_err(|e| boxed(Box::new(e)))?.manifest_digest
                }
            };
            match artifact::read_layout(dir, &subject, store)? {
                Some(a) => Some(a),
                None => artifact::find_in_store(store, &subject)?,
            }
        }
        ImageRef::Registry(reference) => {
            let scopes = vec![format!("repository:{}:pull", reference.repository)];
            let client =
                Client::connect(&reference.registry, registry, scopes).await.map_err(|e| boxed(Box::new(e)))?;
            let subject: Digest = match &reference.digest {
                Some(d) => d.clone(),
                None => {
                    client
                        .get_manifest(&reference.repository, &reference.api_reference())
                        .await
                        .map_err(|e| boxed(Box::new(e)))?
                        .digest
                }
            };
            match artifact::find_in_store(store, &subject)? {
                Some(a) => Some(a),
                None => artifact::fetch(&client, &reference.repository, &subject, store).await?,
            }
        }
        ImageRef::Engine(name) => {
            let docker = docker.ok_or_else(|| boxed("no Docker engine".into()))?;
            let info = docker.inspect_image(name).await.map_err(|e| boxed(Box::new(e)))?;
            let id: Option<Digest> = info.id.as_deref().and_then(|i| i.parse().ok());
            match id {
                Some(id) => artifact::find_in_store(store, &id)?,
                None => None,
            }
        }
    };
    found.ok_or(FindError::NotFound { image })
}
