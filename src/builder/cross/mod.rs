//! Compile once, assemble per platform (docs/multi-platform.md), the builder's side: files read out
//! of a builder image without running it ([`ImageReader`]: a container created, never started,
//! its paths downloaded as tars through the engine's archive API, then removed); the release of
//! the native builder made the target's ([`splice`]: its ERTS and Erlang/OTP files replaced by the
//! target image's); and the minimal base of that release gathered in the target's builder
//! ([`gather`]: the one step that runs there, under emulation, and only when the host does not
//! know the base of the release's ELF files already).

pub mod gather;
pub mod image_files;
pub mod native_tools;
pub mod otp;
pub mod splice;

use super::{ROLE_BUILDER, ROLE_LABEL};
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CrossError {
    #[error("Docker failed {action}: {source}")]
    Docker { action: String, source: DockerError },
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error(
        "gathering the minimal base in container {container} (image {image}) failed with exit code {exit_code}; \
         last lines of its log:\n{}",
        log_tail.iter().map(|l| format!("  │ {l}")).collect::<Vec<_>>().join("\n")
    )]
    GatherFailed { container: String, image: String, exit_code: i64, log_tail: Vec<String> },
    #[error(
        "gathering the minimal base in container {container} (image {image}) took longer than --timeout {}: \
         it was stopped and removed",
        crate::time::format_duration(*timeout)
    )]
    TimedOut { container: String, image: String, timeout: std::time::Duration },
    #[error("interrupted by {signal} (container {container} removed)")]
    Interrupted { signal: crate::cancel::StopSignal, container: String },
}

fn docker_err(action: impl Into<String>) -> impl FnOnce(DockerError) -> CrossError {
    let action = action.into();
    move |source| CrossError::Docker { action, source }
}

/// A container of a builder image, created and never started, to read files out of: removed by
/// [`ImageReader::remove`] (and swept as a leftover, like builder containers, should this process
/// die first).
pub struct ImageReader {
    docker: Docker,
    name: String,
    pub image: String,
}

impl ImageReader {
    /// Creates the container of `image` for `platform` (`linux/arm64`).
    pub async fn create(docker: &Docker, image: &str, platform: &str) -> Result<ImageReader, CrossError> {
        let name = super::container::name().replacen("-build-", "-read-", 1);
        let options = CreateContainerOptionsBuilder::default().name(&name).platform(platform).build();
        let mut labels: HashMap<String, String> = super::docker::owner_labels().into_iter().collect();
        labels.insert(ROLE_LABEL.to_string(), ROLE_BUILDER.to_string());
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            entrypoint: Some(vec![]),
            cmd: Some(vec!["/bin/true".into()]),
            labels: Some(labels),
            network_disabled: Some(true),
            ..Default::default()
        };
        let action = format!("creating container {name} of image {image} (to read files, never started)");
        docker.create_container(Some(options), body).await.map_err(docker_err(action))?;
        Ok(ImageReader { docker: docker.clone(), name, image: image.to_string() })
    }

    /// `path` (a file or a directory) as a tar whose entries start with its last component; None
    /// when the image has no such path.
    pub async fn download(&self, path: &str) -> Result<Option<Vec<u8>>, CrossError> {
        let options = DownloadFromContainerOptionsBuilder::default().path(path).build();
        let mut stream = self.docker.download_from_container(&self.name, Some(options));
        let mut tar = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => tar.extend_from_slice(&bytes),
                Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => return Ok(None),
                Err(e) => {
                    return Err(docker_err(format!(
                        "reading {path} out of image {} (container {})",
                        self.image, self.name
                    ))(e));
                }
            }
        }
        Ok(Some(tar))
    }

    /// Removes the container; a failure is a warning (the sweep of leftovers removes it later).
    pub async fn remove(self) {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        if let Err(e) = self.docker.remove_container(&self.name, Some(options)).await {
            tracing::warn!(container = %self.name, error = %e, "could not remove the container files were read from");
        }
    }
}

/// Extracts `tar` into `dest` (created), modes kept; the tar crate refuses entries that would land
/// outside `dest`.
pub fn unpack(tar: &[u8], dest: &Path) -> Result<(), CrossError> {
    let io =
        |source| CrossError::Io { action: "cannot extract an image's files into", path: dest.to_path_buf(), source };
    std::fs::create_dir_all(dest).map_err(io)?;
    let mut archive = tar::Archive::new(tar);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    archive.unpack(dest).map_err(io)
}

/// The bytes of the first regular file in `tar`, when there is one.
pub fn first_file(tar: &[u8]) -> Result<Option<Vec<u8>>, std::io::Error> {
    use std::io::Read;
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_file() {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}
