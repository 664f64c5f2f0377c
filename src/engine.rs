//! The local Docker engine as a sink: `docker load` of the image through the engine API.
//!
//! Cheapest first: an engine that already has the image (its id is the config digest) only gets
//! the tags; otherwise the layers the engine already has (a prefix of the image's layers that an
//! image it holds, such as the base or the last build under the same tag, starts with) are left
//! out of the archive ([`archive`]); see docs/build-cache.md.

mod archive;

use crate::image::Image;
use crate::store::BlobStore;
use crate::ui;
use bollard::Docker;
use futures_util::StreamExt;
use std::io::Write;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot prepare the image for the Docker engine")]
    Archive(#[from] crate::sink::SinkError),
    #[error("cannot write the load archive")]
    Io(#[from] std::io::Error),
    #[error("the Docker engine refused the image ({tags})")]
    Load {
        tags: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("the Docker engine cannot tag image {id} as {tag}")]
    Tag {
        id: String,
        tag: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// Loads `image` into the engine under `tags` (`NAME:TAG`).
pub async fn load(docker: &Docker, image: &Image, store: &BlobStore, tags: &[String]) -> Result<(), EngineError> {
    load_with_hints(docker, image, store, tags, &[]).await
}

/// [`load`]; `hints` name engine images that may share the image's first layers (its base).
pub async fn load_with_hints(
    docker: &Docker,
    image: &Image,
    store: &BlobStore,
    tags: &[String],
    hints: &[String],
) -> Result<(), EngineError> {
    let id = image.config_digest.as_str();
    if !tags.is_empty() && layers_of(docker, id).await.is_some() {
        tag(docker, id, tags).await?;
        ui::detail(format!("the engine has image {id} already: tagged only"));
        return Ok(());
    }
    let mut present = 0;
    for candidate in tags.iter().chain(hints) {
        if let Some(theirs) = layers_of(docker, candidate).await {
            let shared = image.layers.iter().zip(&theirs).take_while(|(l, d)| l.diff_id.as_str() == *d).count();
            present = present.max(shared);
        }
    }
    if present > 0 {
        ui::detail(format!("{present} of {} layers are in the engine already: not sent", image.layers.len()));
        match post(docker, image, store, tags, Some(present)).await {
            Ok(()) => return Ok(()),
            // An image removed meanwhile takes its layers along: send them all.
            Err(e) => tracing::warn!(error = %e, "loading without the engine's layers failed; sending every layer"),
        }
    }
    post(docker, image, store, tags, None).await
}

/// The diff_ids of the engine's image `name`, when it has it.
async fn layers_of(docker: &Docker, name: &str) -> Option<Vec<String>> {
    let info = docker.inspect_image(name).await.ok()?;
    info.root_fs.and_then(|r| r.layers)
}

async fn tag(docker: &Docker, id: &str, tags: &[String]) -> Result<(), EngineError> {
    for t in tags {
        let (repo, tag) = split_tag(t);
        let opts = bollard::query_parameters::TagImageOptionsBuilder::default().repo(repo).tag(tag).build();
        docker.tag_image(id, Some(opts)).await.map_err(|source| EngineError::Tag {
            id: id.to_string(),
            tag: t.clone(),
            source,
        })?;
    }
    Ok(())
}

/// `host:5000/a/b:1` → (`host:5000/a/b`, `1`); no tag → `latest`.
fn split_tag(t: &str) -> (&str, &str) {
    let last = t.rfind('/').map_or(0, |i| i + 1);
    match t[last..].rfind(':') {
        Some(i) => (&t[..last + i], &t[last + i + 1..]),
        None => (t, "latest"),
    }
}

/// Writes the load archive (without the first `present` layers' files when given) and posts it.
async fn post(
    docker: &Docker,
    image: &Image,
    store: &BlobStore,
    tags: &[String],
    present: Option<usize>,
) -> Result<(), EngineError> {
    let (image2, store2, tags2) = (image.clone(), store.clone(), tags.to_vec());
    let file = tokio::task::spawn_blocking(move || -> Result<tempfile::NamedTempFile, EngineError> {
        let tmp = tempfile::NamedTempFile::new_in(store2.root())?;
        let mut w = std::io::BufWriter::new(tmp.reopen()?);
        w = match present {
            Some(n) => archive::write(&image2, &store2, w, &tags2, n, store2.root())?,
            None => crate::sink::write_engine_archive_to(&image2, &store2, w, &tags2, store2.root())?,
        };
        w.flush()?;
        Ok(tmp)
    })
    .await
    .map_err(std::io::Error::other)??;
    let reader = tokio::fs::File::open(file.path()).await?;
    let body = tokio_util::io::ReaderStream::with_capacity(reader, crate::UPLOAD_CHUNK);
    let opts = bollard::query_parameters::ImportImageOptionsBuilder::default().quiet(true).build();
    let mut stream = docker.import_image_stream(opts, body, None);
    while let Some(msg) = stream.next().await {
        msg.map_err(|source| EngineError::Load { tags: tags.join(", "), source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn splits_tags() {
        assert_eq!(split_tag("a:1"), ("a", "1"));
        assert_eq!(split_tag("a"), ("a", "latest"));
        assert_eq!(split_tag("127.0.0.1:5000/x/y:v2"), ("127.0.0.1:5000/x/y", "v2"));
        assert_eq!(split_tag("127.0.0.1:5000/x/y"), ("127.0.0.1:5000/x/y", "latest"));
    }
}
