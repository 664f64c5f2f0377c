//! A builder from the registry catalogue (`--builder-catalogue`, docs/toolchain.md): the
//! repository's tags are listed through the distribution API (the client of pushes, with its
//! logins, CAs and `--insecure-registry`), the newest that meets the pins is chosen
//! (`toolchain::catalogue`), pulled into the engine by digest, and made into
//! `release-oci/builder-derived:TAG`: the image plus what release-oci needs and the official
//! images lack (a static tini, a static busybox, the CA bundle), copied from the triple's default
//! builder with the engine's build API. The derived image is labelled with its versions and its
//! source's digest, and reused while the tag points at the same digest.

use crate::cli::BuildSettings;
use crate::registry::{Client, Reference, Registry, RegistryError};
use crate::toolchain::catalogue::{CatalogueError, CatalogueTag, choose_tag};
use crate::toolchain::{Builder, Pin};
use crate::ui;
use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

/// The repository of derived builders in the engine; the tag is the catalogue's.
pub const DERIVED_REPO: &str = "release-oci/builder-derived";
/// The catalogue image (`REPO@sha256:...`) a derived builder was made from.
pub const SOURCE_LABEL: &str = "org.release-oci.builder-source";
const PULL_TIMEOUT: Duration = Duration::from_secs(1800);
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// What release-oci needs from the tools image, by path (the same path in the derived image).
const TOOLS: [&str; 4] =
    ["/usr/bin/tini-static", "/usr/bin/tini", "/bin/busybox", "/etc/ssl/certs/ca-certificates.crt"];

#[derive(Debug, thiserror::Error)]
pub enum DeriveError {
    #[error(transparent)]
    Choose(#[from] CatalogueError),
    #[error(
        "cannot read the builder catalogue {catalogue} (registry {registry}, repository {repository}); check --builder-catalogue (builder_catalogue in release-oci.toml), the login (docker login {registry}) and --insecure-registry/--ca-cert"
    )]
    List {
        catalogue: String,
        registry: String,
        repository: String,
        #[source]
        cause: RegistryError,
    },
    #[error(
        "the Docker engine cannot pull {reference} (builder catalogue {catalogue}, tag {tag}): {detail}; the engine pulls by itself: it needs to reach registry {registry} (plain HTTP only for 127.0.0.0/8 or its insecure-registries, else a CA it trusts) and a `docker login {registry}` for a private one"
    )]
    Pull { reference: String, catalogue: String, tag: String, registry: String, detail: String },
    #[error("cannot make the builder {image} from {from_image} (builder catalogue tag {tag}): {detail}; it copies {} from {tools}, which must be present (make setup), or pass --builder-image with a builder of your own", TOOLS.join(", "))]
    Build { image: String, from_image: String, tag: String, tools: String, detail: String },
}

/// The builder made from the catalogue.
pub struct Chosen {
    pub builder: Builder,
    pub tag: CatalogueTag,
    /// `REGISTRY/REPO:TAG`, for the step line.
    pub reference: String,
}

/// The newest tag of `catalogue` that meets `pins`, as a derived builder in the engine.
pub async fn builder(
    docker: &Docker,
    s: &BuildSettings,
    catalogue: &Reference,
    pins: &[Pin],
) -> Result<Chosen, DeriveError> {
    let name = catalogue.repository_ref();
    let project = s.project.display().to_string();
    let (triple, libc) = (s.triple.to_string(), s.triple.libc);
    let list_error = |cause| DeriveError::List {
        catalogue: name.clone(),
        registry: catalogue.registry.clone(),
        repository: catalogue.repository.clone(),
        cause,
    };
    let scope = vec![format!("repository:{}:pull", catalogue.repository)];
    let client = Client::connect(&catalogue.registry, &s.registry, scope).await.map_err(list_error)?;
    let tags = client.list_tags(&catalogue.repository).await.map_err(list_error)?;
    let tag = choose_tag(&name, &project, pins, &tags, libc, &triple)?;
    let manifest = client.get_manifest(&catalogue.repository, &tag.tag).await.map_err(list_error)?;
    let from_image = format!("{name}@{}", manifest.digest);
    let image = format!("{DERIVED_REPO}:{}", tag.tag);
    if !is_current(docker, &image, &from_image).await {
        ui::step(format!("Pulling {name}:{} ({})", tag.tag, manifest.digest));
        pull(docker, s, catalogue, &tag, &manifest.digest.to_string()).await?;
        ui::step(format!("Deriving builder {image} from {from_image}"));
        derive(docker, &image, &from_image, &tag, s.triple.default_builder_image()).await?;
    }
    let reference = format!("{name}:{}", tag.tag);
    Ok(Chosen { builder: tag.builder(&image), tag, reference })
}

/// Whether the engine has `image` made from `from_image` (same digest).
async fn is_current(docker: &Docker, image: &str, from_image: &str) -> bool {
    let Ok(info) = docker.inspect_image(image).await else { return false };
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    labels.get(SOURCE_LABEL).is_some_and(|l| l == from_image)
}

/// Pulls the catalogue image by digest, for the triple's platform.
async fn pull(
    docker: &Docker,
    s: &BuildSettings,
    catalogue: &Reference,
    tag: &CatalogueTag,
    digest: &str,
) -> Result<(), DeriveError> {
    let name = catalogue.repository_ref();
    let platform = s.triple.platform().to_string();
    let options = CreateImageOptionsBuilder::default().from_image(&name).tag(digest).platform(&platform).build();
    let failed = |detail: String| DeriveError::Pull {
        reference: format!("{name}@{digest}"),
        catalogue: name.clone(),
        tag: tag.tag.clone(),
        registry: catalogue.registry.clone(),
        detail,
    };
    let mut progress = docker.create_image(Some(options), None, None);
    let drain = async {
        while let Some(step) = progress.next().await {
            step.map_err(|e| failed(e.to_string()))?;
        }
        Ok(())
    };
    tokio::time::timeout(PULL_TIMEOUT, drain)
        .await
        .map_err(|_| failed(format!("it took more than {} s", PULL_TIMEOUT.as_secs())))?
}

/// The Dockerfile of a derived builder: the catalogue image, the tools copied from `tools`.
pub fn dockerfile(from_image: &str, tools: &str) -> String {
    let mut text = format!("FROM {tools} AS tools\nFROM {from_image}\n");
    for path in TOOLS {
        text.push_str(&format!("COPY --from=tools {path} {path}\n"));
    }
    text.push_str("WORKDIR /build\n");
    text
}

/// Builds `image` from `from_image` with the engine's build API (classic builder, no network
/// needed: the tools are copied from the local `tools` image).
async fn derive(
    docker: &Docker,
    image: &str,
    from_image: &str,
    tag: &CatalogueTag,
    tools: &str,
) -> Result<(), DeriveError> {
    let failed = |detail: String| DeriveError::Build {
        image: image.to_string(),
        from_image: from_image.to_string(),
        tag: tag.tag.clone(),
        tools: tools.to_string(),
        detail,
    };
    let context = context_tar(&dockerfile(from_image, tools)).map_err(|e| failed(e.to_string()))?;
    let labels = HashMap::from([
        (super::ELIXIR_LABEL.to_string(), tag.elixir.to_string()),
        (super::OTP_LABEL.to_string(), tag.otp_text()),
        (SOURCE_LABEL.to_string(), from_image.to_string()),
    ]);
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(image)
        .labels(&labels)
        .rm(true)
        .forcerm(true)
        .build();
    let mut progress = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let drain = async {
        while let Some(step) = progress.next().await {
            let info = step.map_err(|e| failed(e.to_string()))?;
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                return Err(failed(message));
            }
            if let Some(line) = info.stream.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
                tracing::debug!("deriving {image}: {line}");
            }
        }
        Ok(())
    };
    tokio::time::timeout(BUILD_TIMEOUT, drain)
        .await
        .map_err(|_| failed(format!("it took more than {} s", BUILD_TIMEOUT.as_secs())))?
}

/// A tar holding only `Dockerfile`.
fn context_tar(dockerfile: &str) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())?;
    tar.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dockerfile_copies_the_tools() {
        let d = dockerfile("127.0.0.1:5000/hexpm/elixir@sha256:ab", "release-oci/builder:debian-bookworm");
        assert!(
            d.starts_with(
                "FROM release-oci/builder:debian-bookworm AS tools\nFROM 127.0.0.1:5000/hexpm/elixir@sha256:ab\n"
            ),
            "{d}"
        );
        assert!(d.contains("COPY --from=tools /usr/bin/tini-static /usr/bin/tini-static\n"), "{d}");
        assert!(d.contains("COPY --from=tools /bin/busybox /bin/busybox\n"), "{d}");
        let tar = context_tar(&d).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> =
            archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
        assert_eq!(names, ["Dockerfile"]);
    }
}
