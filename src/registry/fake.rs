//! An in-memory registry implementing [`Registry`], recording every call, for the push and pull
//! algorithms' unit tests.

use super::{BlobRef, Manifest, Progress, Registry, RegistryError};
use crate::digest::Digest;
use crate::store::BlobStore;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Mutex;

#[derive(Default)]
pub struct FakeRegistry {
    /// (repository, digest) pairs the registry has.
    pub blobs: Mutex<HashSet<(String, Digest)>>,
    /// Blob contents by digest (for pulls).
    pub contents: Mutex<HashMap<Digest, Vec<u8>>>,
    /// (repository, reference) → manifest.
    pub manifests: Mutex<HashMap<(String, String), Manifest>>,
    /// `HEAD repo digest`, `MOUNT repo digest from`, `UPLOAD repo digest`, `PUT repo ref`, ...
    pub calls: Mutex<Vec<String>>,
    /// Mounts are refused (as a registry without cross-repository mounts).
    pub refuse_mounts: bool,
    /// Answers manifests with a `subject` with `OCI-Subject` (a registry with the referrers API).
    pub referrers_api: bool,
}

impl FakeRegistry {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    pub fn count(&self, prefix: &str) -> usize {
        self.calls().iter().filter(|c| c.starts_with(prefix)).count()
    }
    fn log(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }
    pub fn add_blob(&self, repo: &str, bytes: &[u8]) -> Digest {
        let d = Digest::of(bytes);
        self.blobs.lock().unwrap().insert((repo.to_string(), d.clone()));
        self.contents.lock().unwrap().insert(d.clone(), bytes.to_vec());
        d
    }
    pub fn add_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Digest {
        let m = Manifest { media_type: media_type.into(), bytes: bytes.to_vec(), digest: Digest::of(bytes) };
        let mut ms = self.manifests.lock().unwrap();
        ms.insert((repo.into(), reference.into()), m.clone());
        ms.insert((repo.into(), m.digest.to_string()), m.clone());
        m.digest
    }
}

impl Registry for FakeRegistry {
    async fn blob_exists(&self, repo: &str, digest: &Digest) -> Result<bool, RegistryError> {
        self.log(format!("HEAD {repo} {digest}"));
        Ok(self.blobs.lock().unwrap().contains(&(repo.to_string(), digest.clone())))
    }
    async fn mount_blob(&self, repo: &str, digest: &Digest, from: &str) -> Result<bool, RegistryError> {
        self.log(format!("MOUNT {repo} {digest} {from}"));
        let mut blobs = self.blobs.lock().unwrap();
        if self.refuse_mounts || !blobs.contains(&(from.to_string(), digest.clone())) {
            return Ok(false);
        }
        blobs.insert((repo.to_string(), digest.clone()));
        Ok(true)
    }
    async fn upload_blob(&self, repo: &str, blob: &BlobRef, _: &Progress) -> Result<(), RegistryError> {
        let bytes = blob.source.read(0, blob.size).await?;
        assert_eq!(Digest::of(&bytes), blob.digest, "uploaded bytes match the digest");
        self.log(format!("UPLOAD {repo} {}", blob.digest));
        self.blobs.lock().unwrap().insert((repo.to_string(), blob.digest.clone()));
        self.contents.lock().unwrap().insert(blob.digest.clone(), bytes.to_vec());
        Ok(())
    }
    async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), RegistryError> {
        self.log(format!("PUT {repo} {reference}"));
        self.add_manifest(repo, reference, media_type, bytes);
        Ok(())
    }
    async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Manifest, RegistryError> {
        self.log(format!("GETM {repo} {reference}"));
        self.manifests.lock().unwrap().get(&(repo.to_string(), reference.to_string())).cloned().ok_or_else(|| {
            RegistryError::NotFound {
                registry: "fake".into(),
                repository: repo.into(),
                what: format!("manifest {reference}"),
                detail: "404".into(),
            }
        })
    }
    async fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        _: u64,
        store: &BlobStore,
        _: &Progress,
    ) -> Result<u64, RegistryError> {
        self.log(format!("GET {repo} {digest}"));
        let bytes = self.contents.lock().unwrap().get(digest).cloned().unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(&bytes).unwrap();
        Ok(w.commit().unwrap().1)
    }
    fn name(&self) -> &str {
        "fake"
    }
    async fn put_referrer(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<bool, RegistryError> {
        self.put_manifest(repo, reference, media_type, bytes).await?;
        Ok(self.referrers_api)
    }
}
