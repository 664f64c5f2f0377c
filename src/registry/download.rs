//! Blob downloads into the content-addressed store: streamed to a temp file (written and hashed
//! on a blocking thread, a batch at a time), resumed with `Range: bytes=N-` after a transient
//! failure when the registry allows it (206), never past the descriptor's size, and committed only
//! when the size and the digest are the ones asked for.

use super::client::{Client, origin, transport_error};
use super::retry::retry_resumable;
use super::{Progress, RegistryError, blocking};
use crate::digest::Digest;
use crate::store::{BlobStore, BlobWriter};
use reqwest::{Method, Response, StatusCode, Url};
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Received bytes go to the blocking thread that writes them in batches of this size.
const BATCH: usize = 1 << 20;

/// A file being downloaded into. Its writes (and the hashing of the store's writer) run on a
/// blocking thread, a batch at a time: the async runtime never waits for the disk.
pub(super) struct Spool<W> {
    file: Option<W>,
    pending: Vec<u8>,
}

impl<W: Write + Send + 'static> Spool<W> {
    pub(super) fn new(file: W) -> Spool<W> {
        Spool { file: Some(file), pending: Vec::new() }
    }

    /// Takes `chunk`; writes a batch out once there is one.
    async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.pending.extend_from_slice(chunk);
        if self.pending.len() >= BATCH { self.flush().await } else { Ok(()) }
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut file = self.file.take().ok_or_else(|| io::Error::other("an earlier write of this download failed"))?;
        let batch = std::mem::take(&mut self.pending);
        let (file, written) = tokio::task::spawn_blocking(move || {
            let written = file.write_all(&batch);
            (file, written)
        })
        .await
        .map_err(io::Error::other)?;
        self.file = Some(file);
        written
    }

    /// The file, every byte taken written to it.
    pub(super) async fn finish(mut self) -> io::Result<W> {
        self.flush().await?;
        self.file.take().ok_or_else(|| io::Error::other("an earlier write of this download failed"))
    }
}

/// One blob to download, and where to.
pub(super) struct Wanted<'a> {
    pub repo: &'a str,
    pub digest: &'a Digest,
    /// The descriptor's size: the most that is read, and what must arrive.
    pub size: u64,
    pub store: &'a BlobStore,
    pub progress: &'a Progress,
    pub what: String,
}

impl Wanted<'_> {
    fn io_error(&self, source: io::Error) -> RegistryError {
        RegistryError::Io { path: self.store.root().to_path_buf(), source }
    }
}

impl Client {
    pub(super) async fn download(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        store: &BlobStore,
        progress: &Progress,
    ) -> Result<u64, RegistryError> {
        let want = Wanted { repo, digest, size, store, progress, what: format!("downloading blob {digest}") };
        // The partial download survives failed attempts.
        let partial: Mutex<Option<(Spool<BlobWriter>, u64)>> = Mutex::new(None);
        let received = AtomicU64::new(0);
        let reached = || received.load(Ordering::SeqCst);
        let spool = retry_resumable(&self.retry, self.registry(), &want.what, &reached, |_| async {
            let taken = partial.lock().unwrap_or_else(|e| e.into_inner()).take();
            let (mut spool, mut have) = match taken {
                Some(p) => p,
                None => (self.spool(&want).await?, 0),
            };
            let result = self.download_attempt(&want, &mut spool, &mut have).await;
            received.fetch_max(have, Ordering::SeqCst);
            match result {
                Ok(()) => Ok(spool),
                Err(e) => {
                    *partial.lock().unwrap_or_else(|e| e.into_inner()) = Some((spool, have));
                    Err(e)
                }
            }
        })
        .await?;
        self.commit(spool, &want).await
    }

    /// A new temp file in the store.
    async fn spool(&self, want: &Wanted<'_>) -> Result<Spool<BlobWriter>, RegistryError> {
        let store = want.store.clone();
        let writer = blocking(self.registry(), &want.what, move || store.writer()).await?;
        writer.map(Spool::new).map_err(|source| RegistryError::Store { registry: self.registry().into(), source })
    }

    /// Moves the complete download into place (fsync and rename, off the runtime), if it is the
    /// blob asked for.
    async fn commit(&self, spool: Spool<BlobWriter>, want: &Wanted<'_>) -> Result<u64, RegistryError> {
        let writer = spool.finish().await.map_err(|e| want.io_error(e))?;
        let (found, size) = blocking(self.registry(), &want.what, move || writer.commit())
            .await?
            .map_err(|source| RegistryError::Store { registry: self.registry().to_string(), source })?;
        if found != *want.digest {
            return Err(RegistryError::DigestMismatch {
                registry: self.registry().to_string(),
                repository: want.repo.to_string(),
                what: format!("blob {}", want.digest),
                expected: want.digest.to_string(),
                found: found.to_string(),
            });
        }
        Ok(size)
    }

    /// One GET of the blob (from `have` on, when a partial download is there).
    async fn download_attempt(
        &self,
        want: &Wanted<'_>,
        spool: &mut Spool<BlobWriter>,
        have: &mut u64,
    ) -> Result<(), RegistryError> {
        let what = &want.what;
        let mut req = self.request(Method::GET, &format!("/v2/{}/blobs/{}", want.repo, want.digest));
        if *have > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let resp = self.check(self.send(req, what).await?, what, want.repo).await?;
        if *have > 0 && resp.status() != StatusCode::PARTIAL_CONTENT {
            // The registry sent the whole blob again: start the file over.
            *spool = self.spool(want).await?;
            *have = 0;
        }
        if let Some(total) = resp.content_length().map(|n| *have + n)
            && total > want.size
        {
            // Announced too large: refused before a byte is written.
            return Err(self.size_error(want, resp.url(), total.to_string()));
        }
        want.progress.set_length(want.size);
        self.receive(resp, want, spool, have).await
    }

    /// Streams the body into `spool`, stopping before a byte past the descriptor's size; a body
    /// that ends short of it fails too.
    pub(super) async fn receive<W: Write + Send + 'static>(
        &self,
        mut resp: Response,
        want: &Wanted<'_>,
        spool: &mut Spool<W>,
        have: &mut u64,
    ) -> Result<(), RegistryError> {
        let url = resp.url().clone();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(self.registry(), &want.what, &e))? {
            let total = *have + chunk.len() as u64;
            if total > want.size {
                // A registry (or something in between) that sends without end must not fill the
                // disk: the descriptor says how much there is.
                return Err(self.size_error(want, &url, format!("at least {total}")));
            }
            spool.write(&chunk).await.map_err(|e| want.io_error(e))?;
            *have = total;
            want.progress.set_position(*have);
        }
        if *have < want.size {
            return Err(self.size_error(want, &url, have.to_string()));
        }
        Ok(())
    }

    fn size_error(&self, want: &Wanted<'_>, url: &Url, found: String) -> RegistryError {
        RegistryError::BlobSize {
            registry: self.registry().to_string(),
            digest: want.digest.to_string(),
            // Never the query: a storage redirect's URL may carry signed parameters.
            url: format!("{}{}", origin(url), url.path()),
            expected: want.size,
            found,
        }
    }
}

#[cfg(test)]
#[path = "download_tests.rs"]
mod tests;
