//! The builder image on the engine: present (pulled when missing and allowed) and for the
//! target's architecture; its id names what the builder runs ([`super::docker`], [`super::warm`]).

use super::docker::{docker_err, named};
use super::endpoint::Endpoint;
use super::{BuildRequest, BuilderError, PullPolicy};
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use std::time::Duration;

const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// The builder image's id: present locally (pulled, bounded in time, when missing and allowed;
/// release-oci's own images never are: [`crate::triple::pull_refusal`]) and for the target's
/// architecture. On another engine than this machine's usual one, a missing image that may not be
/// pulled is reported with how to load it there.
pub(super) async fn ensure_image(
    docker: &Docker,
    endpoint: &Endpoint,
    req: &BuildRequest,
) -> Result<String, BuilderError> {
    let image = &req.builder_image;
    let platform = req.triple.platform();
    let info = match docker.inspect_image(image).await {
        Ok(info) => info,
        Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {
            if let Some(detail) = crate::triple::pull_refusal(image, req.pull == PullPolicy::Missing) {
                if named(endpoint) {
                    let detail = match crate::triple::is_own_image(image) {
                        true => "release-oci's own images are never pulled".to_string(),
                        false => detail,
                    };
                    let load = endpoint.load_command(image);
                    return Err(BuilderError::ImageNotOnEngine {
                        image: image.clone(),
                        endpoint: endpoint.to_string(),
                        detail,
                        load,
                    });
                }
                return Err(BuilderError::ImageMissing { image: image.clone(), detail });
            }
            pull(docker, image, &platform.to_string()).await?;
            docker.inspect_image(image).await.map_err(docker_err(format!("inspecting image {image}")))?
        }
        Err(e) => return Err(docker_err(format!("inspecting image {image}"))(e)),
    };
    if let Some(actual) = info.architecture.as_deref().filter(|a| !a.is_empty())
        && actual != platform.architecture
    {
        return Err(BuilderError::ImagePlatform {
            image: image.clone(),
            triple: req.triple.to_string(),
            wanted: platform.to_string(),
            actual: format!("{}/{actual}", info.os.as_deref().unwrap_or("linux")),
        });
    }
    Ok(info.id.unwrap_or_default())
}

async fn pull(docker: &Docker, image: &str, platform: &str) -> Result<(), BuilderError> {
    tracing::info!(image, platform, "pulling the builder image");
    let options = CreateImageOptionsBuilder::default().from_image(image).platform(platform).build();
    let mut progress = docker.create_image(Some(options), None, None);
    let missing = |detail: String| BuilderError::ImageMissing { image: image.to_string(), detail };
    let drain = async {
        while let Some(step) = progress.next().await {
            step.map_err(|e| missing(format!("pulling it failed: {e}")))?;
        }
        Ok(())
    };
    tokio::time::timeout(PULL_TIMEOUT, drain)
        .await
        .map_err(|_| missing(format!("pulling it took more than {} s", PULL_TIMEOUT.as_secs())))?
}
