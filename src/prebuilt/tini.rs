//! tini for releases that were not assembled by a builder container: copied out of the builder
//! image through the Docker engine (a container is created, never started, and removed).

use crate::builder::{ROLE_BUILDER, ROLE_LABEL};
use crate::triple::Triple;
use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where builder images keep a static tini (the same list `assemble.sh` looks through).
pub const CANDIDATES: &[&str] = &[
    "/sbin/tini-static",
    "/usr/bin/tini-static",
    "/usr/local/bin/tini-static",
    "/sbin/tini",
    "/usr/bin/tini",
    "/usr/local/bin/tini",
];

#[derive(Debug, thiserror::Error)]
pub enum TiniError {
    #[error("tini {path} does not exist")]
    Missing { path: PathBuf },
    #[error(
        "image {image} is not in the Docker engine ({detail}): the tini for --from-release comes from \
         the builder image; build it (base-images/build-local.sh), pass another --builder-image, or --tini FILE"
    )]
    ImageMissing { image: String, detail: String },
    #[error("image {image} has no tini (looked for {}); pass --tini FILE", CANDIDATES.join(", "))]
    NotInImage { image: String },
    #[error("Docker failed {action}: {source}")]
    Docker { action: String, source: bollard::errors::Error },
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Copies tini out of `image` (for `triple`'s platform) into `dir`; returns its path.
pub async fn from_image(docker: &Docker, image: &str, triple: &Triple, dir: &Path) -> Result<PathBuf, TiniError> {
    docker
        .inspect_image(image)
        .await
        .map_err(|e| TiniError::ImageMissing { image: image.to_string(), detail: e.to_string() })?;
    let name = format!("release-oci-tini-{}-{}", std::process::id(), nanos());
    let platform = triple.platform().to_string();
    let options = CreateContainerOptionsBuilder::default().name(&name).platform(&platform).build();
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec![]),
        cmd: Some(vec!["/bin/true".into()]),
        labels: Some(
            [(ROLE_LABEL.to_string(), ROLE_BUILDER.to_string())]
                .into_iter()
                .chain(crate::builder::docker::owner_labels())
                .collect::<HashMap<_, _>>(),
        ),
        ..Default::default()
    };
    docker
        .create_container(Some(options), body)
        .await
        .map_err(|source| TiniError::Docker { action: format!("creating container {name} from {image}"), source })?;
    let found = copy_first(docker, &name, dir).await;
    let removed =
        docker.remove_container(&name, Some(RemoveContainerOptionsBuilder::default().force(true).build())).await;
    if let Err(e) = removed {
        tracing::warn!(container = %name, error = %e, "could not remove the container tini was copied from");
    }
    found?.ok_or_else(|| TiniError::NotInImage { image: image.to_string() })
}

/// The first candidate that is a regular file in the container, written to `dir/tini`.
async fn copy_first(docker: &Docker, container: &str, dir: &Path) -> Result<Option<PathBuf>, TiniError> {
    for candidate in CANDIDATES {
        let options = DownloadFromContainerOptionsBuilder::default().path(candidate).build();
        let mut stream = docker.download_from_container(container, Some(options));
        let mut tar_bytes = Vec::new();
        let mut ok = true;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => tar_bytes.extend_from_slice(&c),
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        let dest = dir.join("tini");
        if write_single_file(&tar_bytes, &dest)? {
            return Ok(Some(dest));
        }
    }
    Ok(None)
}

/// Writes the first regular file of the tar to `dest` (mode 0755); false when there is none.
fn write_single_file(tar_bytes: &[u8], dest: &Path) -> Result<bool, TiniError> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let io = |source| TiniError::Io { path: dest.to_path_buf(), source };
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        if entry.header().entry_type().is_file() {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(io)?;
            std::fs::write(dest, &bytes).map_err(io)?;
            std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
            return Ok(true);
        }
    }
    Ok(false)
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_first_regular_file() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "tini-link", "elsewhere").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, "tini", &b"ELF"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("tini");
        assert!(write_single_file(&bytes, &dest).unwrap());
        assert_eq!(std::fs::read(&dest).unwrap(), b"ELF");
        assert!(!write_single_file(&[0u8; 1024], &dir.path().join("none")).unwrap());
    }
}
