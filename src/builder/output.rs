//! The Docker builder's output on the host: the tar the container writes to its stdout (see
//! `send_out.sh`) arrives in chunks through a channel and is unpacked by a blocking thread as it
//! comes, into a temporary directory ([`super::scratch`]), then read as an [`Assembled`].

use super::kept::Kept;
use super::{Assembled, BuilderError};
use std::path::{Path, PathBuf};

/// The thread that unpacks and reads the builder's output.
pub(super) type Reading = tokio::task::JoinHandle<Result<Assembled, BuilderError>>;

pub(super) async fn finish_reading(reading: Reading) -> Result<Assembled, BuilderError> {
    reading.await.map_err(|e| BuilderError::Io {
        action: "background task failed for",
        path: PathBuf::from("(the builder's output)"),
        source: std::io::Error::other(e.to_string()),
    })?
}

/// A thread that unpacks the tar of OUT sent into the channel into a temporary directory as it
/// arrives (no archive on disk), completes it from `kept` when it is a delta, then reads it; the
/// channel's end is the archive's end.
pub(super) fn unpacker(
    image_id: Option<String>,
    kept: Option<Kept>,
) -> Result<(tokio::sync::mpsc::Sender<bytes::Bytes>, Reading), BuilderError> {
    let parent = super::scratch::output_parent();
    let dir = tempfile::Builder::new()
        .prefix(&super::scratch::dir_prefix())
        .tempdir_in(&parent)
        .map_err(|source| BuilderError::Io { action: "cannot create a directory in", path: parent, source })?;
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
    let reading = tokio::task::spawn_blocking(move || {
        let out = dir.path().join("out");
        std::fs::create_dir(&out).map_err(|source| BuilderError::Io {
            action: "cannot create",
            path: out.clone(),
            source,
        })?;
        unpack_from(ChannelReader { rx, buf: bytes::Bytes::new() }, &out)?;
        // Only what changed, when the builder knew the output kept on the host (kept.rs).
        match &kept {
            Some(kept) => kept.complete(&out)?,
            None => drop(super::kept::read_delta(&out, None)?),
        }
        Assembled::from_output(dir, &out, image_id)
    });
    Ok((tx, reading))
}

/// A blocking reader of the bytes a channel brings; the end of the channel is the end of file.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    buf: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.buf = chunk,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

/// Extracts a tar into `dest`, modes kept; the tar crate refuses entries that would land outside
/// `dest` (`..`, absolute paths, writes through symlinks).
fn unpack_from(reader: impl std::io::Read, dest: &Path) -> Result<(), BuilderError> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    archive.unpack(dest).map_err(|source| BuilderError::Io {
        action: "cannot extract the builder's output into",
        path: dest.to_path_buf(),
        source,
    })
}
