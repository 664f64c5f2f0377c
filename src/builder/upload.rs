//! The upload of the sources into the builder container: a tar holding one file, `build/src.tar`
//! ([`SRC_TAR`](super::docker::SRC_TAR)), the tar of the sources, which the script unpacks (the
//! engine unpacking a thousand small files into the container took seconds).
//!
//! It is streamed with constant memory: a thread writes the tar into a bounded channel of chunks
//! ([`crate::UPLOAD_CHUNK`]) that is the body of the upload request, and every source file is
//! copied through a small buffer (`project::archive`); nothing is held whole, in memory or in a
//! temporary file. The outer tar's header needs the size of the inner one first. Usually the
//! build read the tar already, for its result cache key ([`SourceTar`]): then its bytes, when it
//! kept them (up to [`crate::project::KEEP_AT_MOST`]), are sent as they are, and otherwise the
//! files are read again and must give the same size and digest. Without it a first pass counts
//! the tar ([`SourceUpload::new`]: every file read, nothing kept) and the second one must come to
//! the same size. Either way sources that changed in between fail the upload
//! ([`BuilderError::SourcesChanged`]), rather than build what the key does not name.
//!
//! A warm build writes the same stream into its `docker exec`'s stdin instead
//! ([`SourceUpload::write_into`]), with a last empty entry, the seal, once the sources' tar went
//! out whole ([`SourceUpload::sealed`]; docs/warm-builder.md).

use super::BuilderError;
use super::docker::docker_err;
use super::input_files::InputFile;
use crate::digest::{Digest, HashingWriter};
use crate::project::{Project, SourceTar};
use bollard::Docker;
use bollard::query_parameters::UploadToContainerOptionsBuilder;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use std::io::Write;
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Chunks that may wait between the writing thread and the engine.
const IN_FLIGHT: usize = 4;
const BLOCK: u64 = 512;

/// The sources of a project, with the size of their tar counted.
#[derive(Debug, Clone)]
pub(super) struct SourceUpload {
    project: Project,
    /// The size of the sources' tar.
    inner_len: u64,
    /// Small files sent before the sources' tar (the builder's inputs: see `input_files.rs`).
    extra: Vec<InputFile>,
    body: Body,
    /// An empty file written after the sources' tar, once it is known whole (see [`Self::sealed`]).
    seal: Option<String>,
}

/// Where the sources' tar comes from.
#[derive(Debug, Clone)]
enum Body {
    /// The files, read now (counted before).
    Files,
    /// The tar as the build read it: its bytes, or the files again, which must match its digest.
    Read(Arc<SourceTar>),
    /// These bytes (the changes a warm builder is sent: `source_delta.rs`).
    Bytes(Arc<Vec<u8>>),
}

/// Why the writing thread stopped early.
#[derive(Debug)]
enum Stopped {
    /// The receiving end went away: the upload failed or was dropped, and says why itself.
    Closed,
    Failed(BuilderError),
}

impl SourceUpload {
    /// The upload of `project`'s sources, as the build read them (`read`), else counted now
    /// (blocking: reads every source file, keeps none).
    pub(super) fn new(
        project: Project,
        extra: Vec<InputFile>,
        read: Option<Arc<SourceTar>>,
    ) -> Result<SourceUpload, BuilderError> {
        let (inner_len, body) = match read {
            Some(tar) => (tar.len(), Body::Read(tar)),
            None => (project.write_source_tar(Counter::default())?.0, Body::Files),
        };
        Ok(SourceUpload { project, inner_len, extra, body, seal: None })
    }

    /// The upload of `tar` (not the project's whole source tar: the changes to it that a warm
    /// builder applies), after `extra`.
    pub(super) fn of_bytes(project: Project, extra: Vec<InputFile>, tar: Vec<u8>) -> SourceUpload {
        SourceUpload { project, inner_len: tar.len() as u64, extra, body: Body::Bytes(Arc::new(tar)), seal: None }
    }

    /// The upload with `files` sent first too (a new cache volume's restore: `restore.rs`).
    pub(super) fn with_extra(mut self, files: Vec<InputFile>) -> SourceUpload {
        self.extra.extend(files);
        self
    }

    /// The upload with an empty file `path` as its last entry, written only once the sources'
    /// tar was sent whole and (read again) of the digest the build read. A stream that ends
    /// without it was cut short, wherever the cut fell: the receiver checks for the file.
    pub(super) fn sealed(self, path: &str) -> SourceUpload {
        SourceUpload { seal: Some(path.trim_start_matches('/').to_string()), ..self }
    }

    /// The size of the whole upload: the extra files (a header each, padded contents), a header,
    /// the sources' tar padded to a block, the end.
    pub(super) fn len(&self) -> u64 {
        let extra: u64 = self.extra.iter().map(|f| BLOCK + (f.content.len() as u64).div_ceil(BLOCK) * BLOCK).sum();
        let seal = if self.seal.is_some() { BLOCK } else { 0 };
        extra + BLOCK + self.inner_len.div_ceil(BLOCK) * BLOCK + seal + 2 * BLOCK
    }

    /// Starts the thread that writes the upload (`path` holding the sources' tar) into the
    /// returned stream, and returns it with the thread's handle.
    fn start(
        self,
        path: &str,
    ) -> (impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, tokio::task::JoinHandle<Result<(), Stopped>>)
    {
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        let path = path.trim_start_matches('/').to_string();
        let writing = tokio::task::spawn_blocking(move || {
            let mut out = ChannelWriter { tx, buf: BytesMut::new() };
            let result = self.write(&path, &mut out);
            if let Err(Stopped::Failed(e)) = &result {
                // The engine must not take a cut-off body for a whole one.
                let _ = out.tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
            result
        });
        let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
        (body, writing)
    }

    fn write(&self, path: &str, out: &mut ChannelWriter) -> Result<(), Stopped> {
        let root = &self.project.root;
        let io = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::BrokenPipe => Stopped::Closed,
            _ => Stopped::Failed(BuilderError::Io { action: "cannot send the sources of", path: root.clone(), source }),
        };
        for file in &self.extra {
            let size = file.content.len() as u64;
            out.write_all(header(&file.path, size, file.mode).map_err(io)?.as_bytes()).map_err(io)?;
            out.write_all(&file.content).map_err(io)?;
            out.write_all(&vec![0u8; ((BLOCK - size % BLOCK) % BLOCK) as usize]).map_err(io)?;
        }
        out.write_all(header(path, self.inner_len, 0o600).map_err(io)?.as_bytes()).map_err(io)?;
        let in_memory = match &self.body {
            Body::Bytes(bytes) => Some(bytes.as_slice()),
            Body::Read(tar) => tar.bytes(),
            Body::Files => None,
        };
        match in_memory {
            Some(bytes) => out.write_all(bytes).map_err(io)?,
            None => self.write_files(out)?,
        }
        out.write_all(&vec![0u8; ((BLOCK - self.inner_len % BLOCK) % BLOCK) as usize]).map_err(io)?;
        if let Some(seal) = &self.seal {
            out.write_all(header(seal, 0, 0o600).map_err(io)?.as_bytes()).map_err(io)?;
        }
        out.write_all(&[0u8; 2 * BLOCK as usize]).map_err(io)?;
        out.flush().map_err(io)
    }

    /// The sources' tar made from the files again: exactly `inner_len` bytes, of the digest the
    /// build read when it has one.
    fn write_files(&self, out: &mut ChannelWriter) -> Result<(), Stopped> {
        let mut limited = HashingWriter::new(Limit { out, left: self.inner_len, over: false });
        let written = self.project.write_source_tar(&mut limited).map(|_| ());
        let (limited, hasher, _) = limited.finish();
        match written {
            _ if limited.over => Err(self.changed(None)),
            Err(crate::project::ProjectError::Tar { source, .. })
                if source.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                Err(Stopped::Closed)
            }
            Err(e) => Err(Stopped::Failed(e.into())),
            Ok(()) if limited.left != 0 => Err(self.changed(Some(self.inner_len - limited.left))),
            Ok(()) => match &self.body {
                Body::Read(tar) if tar.digest() != &Digest::from_hasher(hasher) => {
                    Err(self.changed(Some(self.inner_len)))
                }
                _ => Ok(()),
            },
        }
    }

    /// `actual`: the size the tar came to (the same: its contents differ), None when it grew
    /// past the one read before.
    fn changed(&self, actual: Option<u64>) -> Stopped {
        Stopped::Failed(BuilderError::SourcesChanged {
            root: self.project.root.clone(),
            expected: self.inner_len,
            actual,
        })
    }

    /// Writes the upload into `to` (a `docker exec`'s stdin, which unpacks it at `/`) while the
    /// thread makes it, then closes `to`. Writing into an input that went away is not an error
    /// here (what ran there says why it stopped reading); the sources failing to read is, and
    /// then the rest of [`Self::len`] goes as zeros: a reader that takes exactly that length
    /// (through ssh the input's end may never arrive) gets it, without the seal.
    pub(super) async fn write_into<W: AsyncWrite + Unpin>(self, mut to: W, tar_path: &str) -> Result<(), BuilderError> {
        let len = self.len();
        let (body, writing) = self.start(tar_path);
        let (mut sent, mut open) = (0u64, true);
        {
            // Dropped before the thread is waited for: one blocked on a full channel then stops.
            let mut body = std::pin::pin!(body);
            // An error chunk ends it too: the thread's handle says what it was.
            while let Some(Ok(chunk)) = body.next().await {
                open = to.write_all(&chunk).await.is_ok();
                if !open {
                    break;
                }
                sent += chunk.len() as u64;
            }
        }
        let result = match writing.await {
            Ok(Err(Stopped::Failed(e))) => Err(e),
            Ok(Ok(()) | Err(Stopped::Closed)) => Ok(()),
            Err(e) => Err(thread_failed(e)),
        };
        if result.is_err() && open {
            let zeros = vec![0u8; crate::UPLOAD_CHUNK];
            while sent < len {
                let n = (len - sent).min(zeros.len() as u64);
                if to.write_all(&zeros[..n as usize]).await.is_err() {
                    break;
                }
                sent += n;
            }
        }
        let _ = to.shutdown().await;
        result
    }

    /// Sends the upload into container `name` at `/` while the thread writes it.
    pub(super) async fn send(self, docker: &Docker, name: &str) -> Result<(), BuilderError> {
        let tar_path = super::docker::SRC_TAR;
        let options = UploadToContainerOptionsBuilder::default().path("/").build();
        let (body, writing) = self.start(tar_path);
        let uploaded = docker.upload_to_container(name, Some(options), bollard::body_try_stream(body)).await;
        let written = writing.await.map_err(thread_failed)?;
        let action = format!("uploading the sources to {tar_path} in container {name}");
        match (uploaded, written) {
            // What went wrong in the writing says more than the broken upload.
            (_, Err(Stopped::Failed(e))) => Err(e),
            (Err(e), _) => Err(docker_err(action)(e)),
            (Ok(_), Err(Stopped::Closed)) => Err(BuilderError::Docker {
                action,
                source: bollard::errors::Error::IOError { err: std::io::ErrorKind::BrokenPipe.into() },
            }),
            (Ok(_), Ok(())) => Ok(()),
        }
    }
}

/// The upload's writing thread panicked or was cancelled.
fn thread_failed(e: tokio::task::JoinError) -> BuilderError {
    BuilderError::Io {
        action: "background task failed for",
        path: "(the sources' upload)".into(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// A regular file's tar header.
fn header(path: &str, size: u64, mode: u32) -> std::io::Result<tar::Header> {
    let mut header = tar::Header::new_gnu();
    header.set_path(path)?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_cksum();
    Ok(header)
}

/// Counts what is written, keeps nothing.
#[derive(Default)]
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Passes on at most `left` bytes: more (`over`) means the sources grew since they were counted.
struct Limit<'a> {
    out: &'a mut ChannelWriter,
    left: u64,
    over: bool,
}

impl Write for Limit<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() as u64 > self.left {
            self.over = true;
            return Err(std::io::Error::other("the sources grew since their tar was counted"));
        }
        let n = self.out.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Writes chunks of [`crate::UPLOAD_CHUNK`] bytes into the channel (blocking while it is full);
/// a closed channel is a broken pipe.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: BytesMut,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        let chunk = std::mem::take(&mut self.buf).freeze();
        self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::ErrorKind::BrokenPipe.into())
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.capacity() == 0 {
            self.buf.reserve(crate::UPLOAD_CHUNK);
        }
        let n = data.len().min(crate::UPLOAD_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == crate::UPLOAD_CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "upload_tests.rs"]
mod tests;
