//! Blob downloads into the content-addressed store: streamed to a temp file (hashed as written),
//! resumed with `Range: bytes=N-` after a transient failure when the registry allows it (206),
//! and committed only when the digest is the one asked for.

use super::client::{Client, transport_error};
use super::retry::retry_resumable;
use super::{Progress, RegistryError};
use crate::digest::Digest;
use crate::store::{BlobStore, BlobWriter};
use reqwest::{Method, StatusCode};
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

impl Client {
    pub(super) async fn download(
        &self,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
        store: &BlobStore,
        progress: &Progress,
    ) -> Result<u64, RegistryError> {
        let what = format!("downloading blob {digest}");
        // The partial download survives failed attempts.
        let partial: Mutex<Option<(BlobWriter, u64)>> = Mutex::new(None);
        let store_err = |source| RegistryError::Store { registry: self.registry().to_string(), source };
        let received = AtomicU64::new(0);
        let reached = || received.load(Ordering::SeqCst);
        let writer = retry_resumable(&self.retry, self.registry(), &what, &reached, |_| async {
            let taken = partial.lock().unwrap_or_else(|e| e.into_inner()).take();
            let (mut w, mut have) = match taken {
                Some(p) => p,
                None => (store.writer().map_err(store_err)?, 0),
            };
            let result = self.download_attempt(repo, digest, size, store, progress, &mut w, &mut have, &what).await;
            received.fetch_max(have, Ordering::SeqCst);
            match result {
                Ok(()) => Ok(w),
                Err(e) => {
                    *partial.lock().unwrap_or_else(|e| e.into_inner()) = Some((w, have));
                    Err(e)
                }
            }
        })
        .await?;
        let (found, size) = writer.commit().map_err(store_err)?;
        if found != *digest {
            return Err(RegistryError::DigestMismatch {
                registry: self.registry().to_string(),
                repository: repo.to_string(),
                what: format!("blob {digest}"),
                expected: digest.to_string(),
                found: found.to_string(),
            });
        }
        Ok(size)
    }

    #[allow(clippy::too_many_arguments)]
    async fn download_attempt(
        &self,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
        store: &BlobStore,
        progress: &Progress,
        w: &mut BlobWriter,
        have: &mut u64,
        what: &str,
    ) -> Result<(), RegistryError> {
        let mut req = self.request(Method::GET, &format!("/v2/{repo}/blobs/{digest}"));
        if *have > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let resp = self.check(self.send(req, what).await?, what, repo).await?;
        if *have > 0 && resp.status() != StatusCode::PARTIAL_CONTENT {
            // The registry sent the whole blob again: start the file over.
            *w = store.writer().map_err(|source| RegistryError::Store { registry: self.registry().into(), source })?;
            *have = 0;
        }
        if let Some(total) = resp.content_length() {
            progress.set_length(*have + total);
        }
        let mut resp = resp;
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(self.registry(), what, &e))? {
            if let Some(max) = size
                && *have + chunk.len() as u64 > max
            {
                // A registry (or something in between) that sends without end must not fill the
                // disk: the descriptor says how much there is.
                return Err(self.protocol(what, &format!("the registry sent more than the descriptor's {max} bytes")));
            }
            w.write_all(&chunk).map_err(|source| RegistryError::Io { path: store.root().to_path_buf(), source })?;
            *have += chunk.len() as u64;
            progress.set_position(*have);
        }
        Ok(())
    }
}
