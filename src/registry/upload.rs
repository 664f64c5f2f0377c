//! Blob uploads: `POST` an upload session, then one `PUT ?digest=` with the whole blob (small
//! blobs) or `PATCH` chunks with `Content-Range` and a closing `PUT ?digest=` (large ones). A
//! transient failure is retried from where the registry says the session stands (`GET` on the
//! session's `Range`); a session the registry has forgotten is started over after a `HEAD`
//! (the lost answer may have been to the final `PUT`).

use super::client::Client;
use super::retry::retry_resumable;
use super::{BlobRef, Progress, Registry, RegistryError};
use reqwest::{Method, Response, StatusCode, Url};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
struct Session {
    url: Option<Url>,
    offset: u64,
}

impl Client {
    pub(super) async fn upload(&self, repo: &str, blob: &BlobRef, progress: &Progress) -> Result<(), RegistryError> {
        let what = format!("uploading {} ({})", blob.label, blob.digest);
        let session = Mutex::new(Session::default());
        // The furthest offset the registry acknowledged: moving it counts as progress.
        let acknowledged = AtomicU64::new(0);
        let reached = || acknowledged.load(Ordering::SeqCst);
        retry_resumable(&self.retry, self.registry(), &what, &reached, |attempt| {
            self.upload_attempt(repo, blob, progress, &session, &acknowledged, attempt, &what)
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_attempt(
        &self,
        repo: &str,
        blob: &BlobRef,
        progress: &Progress,
        session: &Mutex<Session>,
        acknowledged: &AtomicU64,
        attempt: u32,
        what: &str,
    ) -> Result<(), RegistryError> {
        let (url, offset) = {
            let s = session.lock().unwrap_or_else(|e| e.into_inner());
            (s.url.clone(), s.offset)
        };
        let (url, offset) = match url {
            // Where does the session stand? (The failed request may have reached the registry.)
            Some(u) if attempt > 0 => self.session_state(repo, u, what).await?,
            known => (known, offset),
        };
        let (url, offset) = match url {
            Some(u) => (u, offset),
            // A lost answer to the final PUT leaves the blob there and the session gone.
            None if attempt > 0 && self.blob_exists(repo, &blob.digest).await? => {
                progress.set_position(blob.size);
                return Ok(());
            }
            None => (self.open_session(repo, what).await?, 0),
        };
        let remember = |url: &Url, offset: u64| {
            let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
            (s.url, s.offset) = (Some(url.clone()), offset);
            acknowledged.fetch_max(offset, Ordering::SeqCst);
        };
        remember(&url, offset);
        progress.set_position(offset);
        if offset == 0 && blob.size <= self.chunk_size as u64 {
            // Monolithic: the whole blob with the closing PUT.
            let resp = self.put_whole(&url, blob, what).await?;
            return self.finish(resp, session, blob, progress, repo, what).await;
        }
        let url = self.patch_chunks(repo, blob, (url, offset), &remember, progress, session, what).await?;
        let req = self.request(Method::PUT, with_digest(&url, blob).as_str()).header("Content-Length", "0");
        let resp = self.send(req, what).await?;
        self.finish(resp, session, blob, progress, repo, what).await
    }

    /// The session's URL and offset as the registry has them (`GET` on the session); no URL when
    /// the registry has forgotten the session.
    async fn session_state(&self, repo: &str, url: Url, what: &str) -> Result<(Option<Url>, u64), RegistryError> {
        let resp = self.send(self.request(Method::GET, url.as_str()), what).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok((None, 0));
        }
        let resp = self.check(resp, what, repo).await?;
        let offset = range_end(&resp).unwrap_or(0);
        Ok((Some(self.location(&resp, what)?.unwrap_or(url)), offset))
    }

    /// `POST` a new upload session; its URL.
    async fn open_session(&self, repo: &str, what: &str) -> Result<Url, RegistryError> {
        let req = self.request(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).header("Content-Length", "0");
        let resp = self.check(self.send(req, what).await?, what, repo).await?;
        self.location(&resp, what)?.ok_or_else(|| self.protocol(what, "no Location for the upload"))
    }

    /// The whole blob with the closing `PUT ?digest=`.
    async fn put_whole(&self, url: &Url, blob: &BlobRef, what: &str) -> Result<Response, RegistryError> {
        let body = blob.source.read(0, blob.size).await?;
        let req = self
            .request(Method::PUT, with_digest(url, blob).as_str())
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", blob.size.to_string())
            .body(body);
        self.send(req, what).await
    }

    /// `PATCH`es the rest of the blob from `at` (the session's URL and offset), a chunk at a time,
    /// remembering after each where the registry stands; the session's URL for the closing PUT.
    #[allow(clippy::too_many_arguments)]
    async fn patch_chunks(
        &self,
        repo: &str,
        blob: &BlobRef,
        at: (Url, u64),
        remember: &(dyn Fn(&Url, u64) + Sync),
        progress: &Progress,
        session: &Mutex<Session>,
        what: &str,
    ) -> Result<Url, RegistryError> {
        let (mut url, mut offset) = at;
        let chunk = self.chunk_size as u64;
        while offset < blob.size {
            let n = chunk.min(blob.size - offset);
            let body = blob.source.read(offset, n).await?;
            let req = self
                .request(Method::PATCH, url.as_str())
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{offset}-{}", offset + n - 1))
                .header("Content-Length", n.to_string())
                .body(body);
            let resp = self.send(req, what).await?;
            if resp.status() == StatusCode::NOT_FOUND || resp.status() == StatusCode::RANGE_NOT_SATISFIABLE {
                return Err(self.lost_session(session, resp.status(), what));
            }
            let resp = self.check(resp, what, repo).await?;
            offset = range_end(&resp).unwrap_or(offset + n);
            if let Some(u) = self.location(&resp, what)? {
                url = u;
            }
            remember(&url, offset);
            progress.set_position(offset);
        }
        Ok(url)
    }

    /// The closing PUT's answer: 201 with the digest, or a forgotten session (retried).
    async fn finish(
        &self,
        resp: Response,
        session: &Mutex<Session>,
        blob: &BlobRef,
        progress: &Progress,
        repo: &str,
        what: &str,
    ) -> Result<(), RegistryError> {
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(self.lost_session(session, resp.status(), what));
        }
        let resp = self.check(resp, what, repo).await?;
        super::api::check_digest_header(&resp, &blob.digest, self.registry(), repo, what)?;
        progress.set_position(blob.size);
        Ok(())
    }

    /// The session is unknown (404) or out of step (416): forget it and let the retry loop
    /// start over (after a HEAD: the blob may be complete).
    fn lost_session(&self, session: &Mutex<Session>, status: StatusCode, what: &str) -> RegistryError {
        *session.lock().unwrap_or_else(|e| e.into_inner()) = Session::default();
        RegistryError::Transient {
            registry: self.registry().to_string(),
            what: what.to_string(),
            detail: format!("the upload session answered {status}; starting over"),
            retry_after: None,
        }
    }

    /// The `Location` header as an absolute URL (registries may send a relative one).
    pub(super) fn location(&self, resp: &Response, what: &str) -> Result<Option<Url>, RegistryError> {
        let Some(loc) = resp.headers().get(reqwest::header::LOCATION) else { return Ok(None) };
        let loc = loc.to_str().map_err(|_| self.protocol(what, "a Location header that is not text"))?;
        resp.url().join(loc).map(Some).map_err(|e| self.protocol(what, &format!("a bad Location {loc:?} ({e})")))
    }

    pub(super) fn protocol(&self, what: &str, detail: &str) -> RegistryError {
        RegistryError::Protocol { registry: self.registry().to_string(), what: what.to_string(), detail: detail.into() }
    }
}

fn with_digest(url: &Url, blob: &BlobRef) -> Url {
    let mut u = url.clone();
    u.query_pairs_mut().append_pair("digest", blob.digest.as_str());
    u
}

/// The offset after the last byte the registry has, from `Range: 0-N` (N+1), if any.
/// Distribution says `0-0` for an empty session too; taking it as 0 is safe (a registry that
/// has one byte answers the re-sent one with 416, and the upload starts over).
fn range_end(resp: &Response) -> Option<u64> {
    parse_range_end(resp.headers().get(reqwest::header::RANGE)?.to_str().ok()?)
}

fn parse_range_end(v: &str) -> Option<u64> {
    let v = v.trim().trim_start_matches("bytes=");
    let (_, end) = v.split_once('-')?;
    let end = end.trim().parse::<u64>().ok()?;
    Some(if end == 0 { 0 } else { end + 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers() {
        assert_eq!(parse_range_end("0-1023"), Some(1024));
        assert_eq!(parse_range_end("bytes=0-9"), Some(10));
        assert_eq!(parse_range_end("0-0"), Some(0));
        assert_eq!(parse_range_end("junk"), None);
    }
}
