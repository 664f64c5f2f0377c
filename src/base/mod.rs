//! Base image sources: where the runtime base comes from (a local Docker image, an OCI layout,
//! or nothing), turned into a [`BaseImage`] whose layers are in the blob store.
//! or a registry reference, pulled into the store).

mod daemon;
mod files;
mod registry;

use crate::image::BaseImage;
use crate::store::BlobStore;
use std::path::PathBuf;
use std::str::FromStr;

pub use files::{read_file_from_layers, read_files_from_layers};

/// Where a base image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseRef {
    /// An image in the local Docker engine (`docker-daemon:NAME` or a plain name).
    Daemon(String),
    /// An OCI image layout directory (`oci:DIR[:TAG]`).
    Layout { dir: PathBuf, tag: Option<String> },
    /// No base at all (`scratch`): only the release and what release-oci adds.
    Scratch,
    /// An image in a registry: a reference whose first component is a host (`HOST[:PORT]/...`,
    /// `localhost/...`) or any reference after `docker://`.
    Registry(crate::registry::Reference),
    /// The minimal base (`minimal`): made from the builder's files by [`crate::minimal`] during the
    /// build, not loaded.
    Minimal,
}

/// `--base debian`: the local Debian runtime image (base-images/build-local.sh makes it).
pub const DEBIAN_ALIAS: (&str, &str) = ("debian", "release-oci/runtime:debian-bookworm");

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error(
        "base image {name} is not in the Docker engine (a base is never pulled into it): run `make setup` \
         (scripts/setup.sh) to build release-oci's own, `docker pull` another image first, or pass another --base"
    )]
    NotFound { name: String },
    #[error("cannot read base image {name} from the Docker engine")]
    Docker {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("cannot read base image {name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("cannot read base image {name}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot store base image {name}")]
    Store {
        name: String,
        #[source]
        source: crate::store::StoreError,
    },
    #[error("cannot import a layer of base image {name}")]
    Layer {
        name: String,
        #[source]
        source: Box<crate::layer::LayerError>,
    },
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    #[error("cannot pull base image {name}")]
    Registry {
        name: String,
        #[source]
        source: Box<crate::registry::RegistryError>,
    },
    #[error("base image {name} is for {found}, but the target triple needs {wanted}")]
    Platform { name: String, found: String, wanted: String },
}

impl FromStr for BaseRef {
    type Err = crate::registry::ParseReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "scratch" {
            return Ok(BaseRef::Scratch);
        }
        if s == crate::minimal::BASE_NAME {
            return Ok(BaseRef::Minimal);
        }
        if s == DEBIAN_ALIAS.0 {
            return Ok(BaseRef::Daemon(DEBIAN_ALIAS.1.to_string()));
        }
        if let Some(r) = s.strip_prefix("docker://") {
            return Ok(BaseRef::Registry(r.parse()?));
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            // oci:DIR[:TAG] — a tag never contains '/', a directory may contain ':'.
            return Ok(match rest.rsplit_once(':') {
                Some((dir, tag)) if !tag.contains('/') && !dir.is_empty() => {
                    BaseRef::Layout { dir: dir.into(), tag: Some(tag.to_string()) }
                }
                _ => BaseRef::Layout { dir: rest.into(), tag: None },
            });
        }
        // Explicit transports first: `oci:/abs/dir` and `docker-daemon:a/b` are not registry hosts.
        if let Some(name) = s.strip_prefix("docker-daemon:") {
            return Ok(BaseRef::Daemon(name.to_string()));
        }
        if crate::registry::names_registry(s) {
            return Ok(BaseRef::Registry(s.parse()?));
        }
        Ok(BaseRef::Daemon(s.to_string()))
    }
}

impl std::fmt::Display for BaseRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaseRef::Daemon(n) => write!(f, "docker-daemon:{n}"),
            BaseRef::Layout { dir, tag: Some(t) } => write!(f, "oci:{}:{t}", dir.display()),
            BaseRef::Layout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            BaseRef::Scratch => f.write_str("scratch"),
            BaseRef::Registry(r) => write!(f, "{r}"),
            BaseRef::Minimal => f.write_str(crate::minimal::BASE_NAME),
        }
    }
}

impl BaseRef {
    pub fn needs_docker(&self) -> bool {
        matches!(self, BaseRef::Daemon(_))
    }
}

/// Loads the base into the store. `docker` is needed for [`BaseRef::Daemon`]; registries are
/// reached with default options (see [`load_with`]).
pub async fn load(
    base: &BaseRef,
    docker: Option<&bollard::Docker>,
    platform: &crate::triple::Platform,
    store: &BlobStore,
) -> Result<Option<BaseImage>, BaseError> {
    load_with(base, docker, platform, store, &crate::registry::RegistryOptions::default()).await
}

/// What the engine says of its image `name`: the image id (the config's digest) and the layers'
/// diff_ids, and whether `store` holds them all (then reading it exports nothing).
#[derive(Debug, Clone)]
pub struct DaemonImage {
    pub id: crate::digest::Digest,
    pub diff_ids: Vec<crate::digest::DiffId>,
    pub stored: bool,
}

/// [`DaemonImage`] of `name` in the engine.
pub async fn daemon_image(docker: &bollard::Docker, name: &str, store: &BlobStore) -> Result<DaemonImage, BaseError> {
    daemon::image(docker, name, store).await
}

/// [`load`], reaching registries with `registry` (CAs, insecure hosts, login, retries).
pub async fn load_with(
    base: &BaseRef,
    docker: Option<&bollard::Docker>,
    platform: &crate::triple::Platform,
    store: &BlobStore,
    registry: &crate::registry::RegistryOptions,
) -> Result<Option<BaseImage>, BaseError> {
    let image = match base {
        BaseRef::Registry(r) => registry::load(r, registry, platform, store).await?,
        BaseRef::Scratch => return Ok(None),
        BaseRef::Minimal => {
            return Err(BaseError::Invalid {
                name: base.to_string(),
                reason: "the minimal base is made from the builder's files during a build, not loaded".into(),
            });
        }
        BaseRef::Daemon(name) => {
            let docker = docker.ok_or_else(|| BaseError::Invalid {
                name: name.clone(),
                reason: "no Docker engine connection".into(),
            })?;
            daemon::load(docker, name, store).await?
        }
        BaseRef::Layout { dir, tag } => {
            let (dir, tag, store, platform) = (dir.clone(), tag.clone(), store.clone(), platform.clone());
            tokio::task::spawn_blocking(move || {
                crate::sink::load_base_from_layout_for(&dir, tag.as_deref(), Some(&platform), &store)
            })
            .await
            .map_err(|e| BaseError::Invalid { name: base.to_string(), reason: e.to_string() })??
        }
    };
    let arch = image.config.architecture().to_string();
    if arch != platform.architecture {
        return Err(BaseError::Platform {
            name: base.to_string(),
            found: format!("{}/{arch}", image.config.os()),
            wanted: platform.to_string(),
        });
    }
    Ok(Some(image))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_refs() {
        assert_eq!("scratch".parse::<BaseRef>().unwrap(), BaseRef::Scratch);
        assert_eq!(
            "release-oci/runtime:debian-bookworm".parse::<BaseRef>().unwrap(),
            BaseRef::Daemon("release-oci/runtime:debian-bookworm".into())
        );
        assert_eq!("docker-daemon:x:1".parse::<BaseRef>().unwrap(), BaseRef::Daemon("x:1".into()));
        assert_eq!(
            "oci:./out:v1".parse::<BaseRef>().unwrap(),
            BaseRef::Layout { dir: "./out".into(), tag: Some("v1".into()) }
        );
        assert_eq!("oci:/tmp/a/b".parse::<BaseRef>().unwrap(), BaseRef::Layout { dir: "/tmp/a/b".into(), tag: None });
        let r = "127.0.0.1:5000/base/runtime:1".parse::<BaseRef>().unwrap();
        assert_eq!(r, BaseRef::Registry("127.0.0.1:5000/base/runtime:1".parse().unwrap()));
        assert_eq!(r.to_string(), "127.0.0.1:5000/base/runtime:1");
        assert!(!r.needs_docker());
        assert!(matches!("docker://debian:bookworm".parse::<BaseRef>().unwrap(), BaseRef::Registry(_)));
        assert!("registry.example.com/Bad".parse::<BaseRef>().is_err());
        assert_eq!("minimal".parse::<BaseRef>().unwrap(), BaseRef::Minimal);
        assert_eq!(BaseRef::Minimal.to_string(), "minimal");
        assert!(!BaseRef::Minimal.needs_docker());
        assert_eq!("debian".parse::<BaseRef>().unwrap(), BaseRef::Daemon("release-oci/runtime:debian-bookworm".into()));
    }
}
