//! The local Docker engine as a sink: `docker load` of the image through the engine API.

use crate::image::Image;
use crate::store::BlobStore;
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
}

/// Loads `image` into the engine under `tags` (`NAME:TAG`).
pub async fn load(docker: &Docker, image: &Image, store: &BlobStore, tags: &[String]) -> Result<(), EngineError> {
    let (image2, store2, tags2) = (image.clone(), store.clone(), tags.to_vec());
    let file = tokio::task::spawn_blocking(move || -> Result<tempfile::NamedTempFile, EngineError> {
        let tmp = tempfile::NamedTempFile::new_in(store2.root())?;
        let mut w = std::io::BufWriter::new(tmp.reopen()?);
        w = crate::sink::write_archive_to(&image2, &store2, w, &tags2)?;
        w.flush()?;
        Ok(tmp)
    })
    .await
    .map_err(std::io::Error::other)??;
    let reader = tokio::fs::File::open(file.path()).await?;
    let body = tokio_util::io::ReaderStream::new(reader);
    let opts = bollard::query_parameters::ImportImageOptionsBuilder::default().quiet(true).build();
    let mut stream = docker.import_image_stream(opts, body, None);
    while let Some(msg) = stream.next().await {
        msg.map_err(|source| EngineError::Load { tags: tags.join(", "), source })?;
    }
    Ok(())
}
