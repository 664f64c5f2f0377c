//! Registries (the OCI distribution API): push images, pull base images, log in, survive faults.
//!
//! [`Client`] speaks the API over reqwest (rustls, the system trust store plus `--ca-cert`);
//! [`Registry`] is the narrow interface the push and pull algorithms ([`push`], [`pull`]) use,
//! so they are tested against an in-memory fake as well as a real registry. Retries with backoff
//! and jitter for transient failures live in [`retry`]; logins in [`auth`] and [`credentials`].

mod api;
mod auth;
mod client;
pub mod credentials;
mod download;
#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
pub(crate) mod http_fake;
mod progress;
pub mod pull;
pub mod push;
mod reference;
mod retry;
mod tags;
mod upload;

pub use client::Client;
pub use credentials::{Credential, Secret};
pub use progress::{Bars, Progress};
pub use pull::{PulledImage, pull_image};
pub use push::{BlobRef, BlobSource, PushImage, PushSummary, PushTarget, push_image};
pub use reference::{ParseReferenceError, Reference, is_bare_tag, is_loopback, names_registry};
pub use retry::RetryPolicy;

use crate::digest::Digest;
use crate::store::BlobStore;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// Media types of manifests and indexes a registry may return or accept.
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// How to reach registries: which may use plain HTTP, extra CAs, a login, retries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) that may use plain HTTP or an unverified certificate.
    pub insecure: Vec<String>,
    /// PEM files with CA certificates trusted besides the system's.
    pub ca_certs: Vec<PathBuf>,
    /// A login given on the command line; used for its registry instead of Docker's config.
    pub login: Option<Login>,
    /// Docker's client config directory (default `$DOCKER_CONFIG` or `~/.docker`).
    pub docker_config: Option<PathBuf>,
    pub retry: RetryPolicy,
}

/// `--username` / `--password-stdin` for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub registry: String,
    pub username: String,
    pub password: Secret,
}

impl RegistryOptions {
    /// Whether `registry` may be reached over plain HTTP: loopback ones and those named
    /// with `--insecure-registry`.
    pub fn allows_http(&self, registry: &str) -> bool {
        is_loopback(registry) || self.is_insecure(registry)
    }
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.insecure.iter().any(|r| r == registry)
    }
}

/// A manifest or index as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub digest: Digest,
}

/// What a blob transfer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    Uploaded,
    Mounted,
    AlreadyThere,
}

/// The distribution API calls push and pull need (one registry, any repository in it).
pub trait Registry: Sync {
    /// `HEAD /v2/REPO/blobs/DIGEST`: whether the repository has the blob.
    fn blob_exists(&self, repo: &str, digest: &Digest) -> impl Future<Output = Result<bool, RegistryError>> + Send;
    /// Cross-repository mount from `from` (same registry); `false` when the registry declined.
    fn mount_blob(
        &self,
        repo: &str,
        digest: &Digest,
        from: &str,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;
    /// Uploads a blob (monolithic or chunked; retried and resumed on transient failures).
    fn upload_blob(
        &self,
        repo: &str,
        blob: &BlobRef,
        progress: &Progress,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;
    /// `PUT /v2/REPO/manifests/REFERENCE` (a tag or the digest).
    fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;
    /// `GET /v2/REPO/manifests/REFERENCE` accepting OCI and Docker manifests and indexes.
    fn get_manifest(&self, repo: &str, reference: &str)
    -> impl Future<Output = Result<Manifest, RegistryError>> + Send;
    /// Downloads a blob into the store, verified by digest (retried and resumed); returns its size.
    /// `size` is the descriptor's: a registry that sends more is cut off there, before a byte
    /// past it is written, and one that sends less fails too ([`RegistryError::BlobSize`]).
    fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        store: &BlobStore,
        progress: &Progress,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;
    /// The registry's name (`host[:port]`), for messages.
    fn name(&self) -> &str;
    /// [`Registry::put_manifest`] of a manifest with a `subject`: whether the registry answered
    /// with `OCI-Subject` (it keeps the referrers list itself). Without it (Debian's
    /// docker-registry 2.8) the client maintains the referrers tag (`supply::attach`).
    fn put_referrer(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send {
        async move { self.put_manifest(repo, reference, media_type, bytes).await.map(|()| false) }
    }
    /// `GET /v2/REPO/referrers/DIGEST`: the referrers index, or None where the registry has no
    /// referrers API.
    fn get_referrers(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> impl Future<Output = Result<Option<Manifest>, RegistryError>> + Send {
        let _ = (repo, digest);
        async { Ok(None) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "registry {registry}: {what} failed {attempts} times over {secs:.0}s; the registry is down, unreachable or overloaded: check that it runs and that the address is right, then try again"
    )]
    GaveUp {
        registry: String,
        what: String,
        attempts: u32,
        secs: f64,
        #[source]
        last: Box<RegistryError>,
    },
    #[error("registry {registry}: {what}: {detail}")]
    Transient { registry: String, what: String, detail: String, retry_after: Option<Duration> },
    #[error(
        "registry {registry} refused the login for {repository} ({detail}); check the credentials (docker login {registry}, or --username with --password-stdin)"
    )]
    Unauthorized { registry: String, repository: String, detail: String },
    #[error(
        "registry {registry} denied {what} in {repository} ({detail}); the account needs permission for that repository"
    )]
    Denied { registry: String, repository: String, what: String, detail: String },
    #[error("registry {registry}: {what} is not in {repository} ({detail}); check the repository name and tag")]
    NotFound { registry: String, repository: String, what: String, detail: String },
    #[error(
        "registry {registry}, {repository}: {what} has digest {found}, but {expected} was expected; the registry or something in between altered the data"
    )]
    DigestMismatch { registry: String, repository: String, what: String, expected: String, found: String },
    #[error("registry {registry}, {repository}: {what} was rejected: {detail}")]
    Rejected { registry: String, repository: String, what: String, detail: String },
    #[error(
        "registry {registry} refused {label} ({digest}): its bytes do not hash to that digest, so the local copy ({local}) may be damaged; run `release-oci cache verify --repair`, then build and push again"
    )]
    LocalBlobSuspect {
        registry: String,
        label: String,
        digest: String,
        local: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("registry {registry}: {what}: unexpected answer: {detail}")]
    Protocol { registry: String, what: String, detail: String },
    #[error(
        "registry {registry}: blob {digest} from {url} is {found} bytes, but its descriptor says {expected}; the registry (or something in between) serves other data than the manifest describes: check the image there, or use another"
    )]
    BlobSize { registry: String, digest: String, url: String, expected: u64, found: String },
    #[error("registry {registry}: {what}: its worker thread failed")]
    Task {
        registry: String,
        what: String,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error(
        "cannot verify the TLS certificate of registry {registry} ({detail}); pass the CA that signed it with --ca-cert FILE"
    )]
    Tls { registry: String, detail: String },
    #[error(
        "registry {registry} does not answer over HTTPS ({detail}); plain HTTP is used only for loopback registries and those named with --insecure-registry"
    )]
    NoHttps { registry: String, detail: String },
    #[error("registry {registry}: the host name does not resolve ({detail}); check the reference")]
    UnknownHost { registry: String, detail: String },
    #[error("credentials for registry {registry}: {reason}")]
    Credentials { registry: String, reason: String },
    #[error("CA certificate {path}: {reason}; pass a PEM file with --ca-cert")]
    CaCert { path: PathBuf, reason: String },
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot store a blob from registry {registry}")]
    Store {
        registry: String,
        #[source]
        source: crate::store::StoreError,
    },
    #[error("{reference} has no image for {wanted} (it has: {available}); pick another --base or --triple")]
    Platform { reference: String, wanted: String, available: String },
    #[error("{reference}: {reason}")]
    Unsupported { reference: String, reason: String },
    #[error(transparent)]
    Reference(#[from] ParseReferenceError),
}

/// Runs blocking work (the blob store's checks, which may hash a blob, its reads and writes) off
/// the async runtime, so that a signal or another transfer is not held up meanwhile.
pub(crate) async fn blocking<T: Send + 'static>(
    registry: &str,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(work).await.map_err(|source| RegistryError::Task {
        registry: registry.to_string(),
        what: what.to_string(),
        source,
    })
}

impl RegistryError {
    /// Transient failures are retried (connection trouble, timeouts, 408/429/5xx).
    pub fn is_transient(&self) -> bool {
        matches!(self, RegistryError::Transient { .. })
    }
}
