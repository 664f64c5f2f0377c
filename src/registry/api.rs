//! [`Registry`] for [`Client`]: HEAD, mount, manifests; uploads and downloads are in their own
//! files. Each call is retried as a whole on transient failures.

use super::client::Client;
use super::retry::retry;
use super::{
    BlobRef, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, Manifest, Progress,
    Registry, RegistryError,
};
use crate::digest::Digest;
use crate::store::BlobStore;
use reqwest::{Method, StatusCode};

/// Registries need not accept manifests over 4 MiB (distribution spec), so none is read past it.
const MANIFEST_LIMIT: u64 = 4 << 20;

impl Registry for Client {
    async fn blob_exists(&self, repo: &str, digest: &Digest) -> Result<bool, RegistryError> {
        let what = format!("checking for blob {digest}");
        retry(&self.retry, self.registry(), &what, |_| async {
            let resp = self.send(self.request(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}")), &what).await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(false);
            }
            self.check(resp, &what, repo).await.map(|_| true)
        })
        .await
    }

    async fn mount_blob(&self, repo: &str, digest: &Digest, from: &str) -> Result<bool, RegistryError> {
        let what = format!("mounting blob {digest} from {from}");
        let path = format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}");
        let result = retry(&self.retry, self.registry(), &what, |_| async {
            let resp = self.send(self.request(Method::POST, &path).header("Content-Length", "0"), &what).await?;
            let status = resp.status();
            let resp = self.check(resp, &what, repo).await?;
            drop(resp);
            // 201: mounted. 202: the registry opened an upload instead (it may not mount).
            Ok(status == StatusCode::CREATED)
        })
        .await;
        match result {
            Ok(m) => Ok(m),
            // No read access to the source, or it is gone: upload instead.
            Err(RegistryError::Denied { .. } | RegistryError::NotFound { .. } | RegistryError::Unauthorized { .. }) => {
                tracing::debug!("{}: mounting {digest} from {from} was refused; uploading it", self.registry());
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn upload_blob(&self, repo: &str, blob: &BlobRef, progress: &Progress) -> Result<(), RegistryError> {
        self.upload(repo, blob, progress).await
    }

    async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), RegistryError> {
        let what = format!("putting the manifest as {repo}:{reference}");
        let expected = Digest::of(bytes);
        let body = bytes::Bytes::copy_from_slice(bytes);
        retry(&self.retry, self.registry(), &what, |_| async {
            let req = self
                .request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
                .header("Content-Type", media_type)
                .body(body.clone());
            let resp = self.check(self.send(req, &what).await?, &what, repo).await?;
            check_digest_header(&resp, &expected, self.registry(), repo, &what)
        })
        .await
    }

    async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Manifest, RegistryError> {
        let what = format!("getting manifest {repo}:{reference}");
        let accept = [MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST, MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST].join(", ");
        retry(&self.retry, self.registry(), &what, |_| async {
            let req = self.request(Method::GET, &format!("/v2/{repo}/manifests/{reference}")).header("Accept", &accept);
            let resp = self.check(self.send(req, &what).await?, &what, repo).await?;
            let header_type = resp
                .headers()
                .get("Content-Type")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
            let bytes = super::client::read_limited(resp, MANIFEST_LIMIT)
                .await
                .map_err(|e| super::client::transport_error(self.registry(), &what, &e))?
                .ok_or_else(|| RegistryError::Protocol {
                    registry: self.registry().to_string(),
                    what: what.clone(),
                    detail: format!(
                        "the manifest is larger than {MANIFEST_LIMIT} bytes (the distribution spec's limit)"
                    ),
                })?;
            let digest = Digest::of(&bytes);
            if let Ok(wanted) = reference.parse::<Digest>()
                && wanted != digest
            {
                return Err(RegistryError::DigestMismatch {
                    registry: self.registry().to_string(),
                    repository: repo.to_string(),
                    what: "the manifest".into(),
                    expected: wanted.to_string(),
                    found: digest.to_string(),
                });
            }
            // The body's mediaType wins over a generic Content-Type (application/json).
            let body_type = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(String::from));
            let media_type = body_type.or(header_type).unwrap_or_else(|| MEDIA_OCI_MANIFEST.to_string());
            Ok(Manifest { media_type, bytes, digest })
        })
        .await
    }

    async fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        store: &BlobStore,
        progress: &Progress,
    ) -> Result<u64, RegistryError> {
        self.download(repo, digest, size, store, progress).await
    }

    fn name(&self) -> &str {
        self.registry()
    }

    async fn put_referrer(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<bool, RegistryError> {
        let what = format!("putting the referrer manifest {repo}@{reference}");
        let expected = Digest::of(bytes);
        let body = bytes::Bytes::copy_from_slice(bytes);
        retry(&self.retry, self.registry(), &what, |_| async {
            let req = self
                .request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
                .header("Content-Type", media_type)
                .body(body.clone());
            let resp = self.check(self.send(req, &what).await?, &what, repo).await?;
            check_digest_header(&resp, &expected, self.registry(), repo, &what)?;
            Ok(resp.headers().contains_key("OCI-Subject"))
        })
        .await
    }

    async fn get_referrers(&self, repo: &str, digest: &Digest) -> Result<Option<Manifest>, RegistryError> {
        let what = format!("listing the referrers of {repo}@{digest}");
        retry(&self.retry, self.registry(), &what, |_| async {
            let req =
                self.request(Method::GET, &format!("/v2/{repo}/referrers/{digest}")).header("Accept", MEDIA_OCI_INDEX);
            let resp = self.send(req, &what).await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let resp = self.check(resp, &what, repo).await?;
            let bytes = super::client::read_limited(resp, MANIFEST_LIMIT)
                .await
                .map_err(|e| super::client::transport_error(self.registry(), &what, &e))?
                .ok_or_else(|| RegistryError::Protocol {
                    registry: self.registry().to_string(),
                    what: what.clone(),
                    detail: format!("the referrers index is larger than {MANIFEST_LIMIT} bytes"),
                })?;
            let digest = Digest::of(&bytes);
            Ok(Some(Manifest { media_type: MEDIA_OCI_INDEX.to_string(), bytes, digest }))
        })
        .await
    }
}

/// The registry's `Docker-Content-Digest`, when it sends one, must be what was sent.
pub(super) fn check_digest_header(
    resp: &reqwest::Response,
    expected: &Digest,
    registry: &str,
    repo: &str,
    what: &str,
) -> Result<(), RegistryError> {
    match resp.headers().get("Docker-Content-Digest").and_then(|v| v.to_str().ok()) {
        Some(found) if found != expected.as_str() => Err(RegistryError::DigestMismatch {
            registry: registry.to_string(),
            repository: repo.to_string(),
            what: what.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        }),
        _ => Ok(()),
    }
}
