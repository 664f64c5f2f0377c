//! What a build knows that the SBOM and the provenance describe, gathered once when the image is
//! made and kept in the blob store under the image's manifest digest
//! (`<store>/supply/<hex>.json`, pointing at the facts blob): a build whose result is reused (the
//! result cache) or pushed later describes the image it pushes with the facts of the build that
//! made it. Paths of this machine are left out, so two builds of the same inputs in different
//! directories have the same facts.

use super::builder_out::DistroPackage;
use super::lock::LockEntry;
use crate::digest::Digest;
use crate::store::BlobStore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Changes when the meaning of a field changes.
pub const FORMAT: u32 = 1;
const DIR: &str = "supply";

/// Applications that come with Elixir (every other application not the project's or a
/// dependency's comes with Erlang/OTP).
pub const ELIXIR_APPS: &[&str] = &["eex", "elixir", "ex_unit", "iex", "logger", "mix"];

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("cannot keep the build's SBOM facts in the blob store {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot keep the build's SBOM facts in the blob store")]
    Store(#[from] crate::store::StoreError),
    #[error(
        "the blob store has no SBOM facts for image {digest} (made by another release-oci?); build it again with --no-cache"
    )]
    Missing { digest: Digest },
    #[error(
        "the SBOM facts of image {digest} in the blob store are damaged ({reason}); build it again with --no-cache"
    )]
    Damaged { digest: Digest, reason: String },
}

/// Where an application of the release comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The project's own application.
    Own,
    /// A dependency of the project (Hex, git or path).
    Dependency,
    /// Comes with Elixir.
    Elixir,
    /// Comes with Erlang/OTP.
    Otp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppFact {
    pub name: String,
    pub version: String,
    pub origin: Origin,
}

/// The lock file (`mix.lock`, or `rebar.lock` for rebar3 projects) and its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFact {
    pub file: String,
    /// `sha256:<hex>` of the file.
    pub digest: Digest,
    pub entries: Vec<LockEntry>,
}

/// An image this build used (builder, base): its name and digest or id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFact {
    pub name: String,
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFact {
    pub revision: Option<String>,
    pub repository: Option<String>,
}

/// Everything the SBOM and provenance say besides the image digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub format: u32,
    pub release: String,
    pub version: String,
    /// The ERTS the release includes (None: `include_erts: false`, the base provides
    /// `required_erts`).
    pub erts: Option<String>,
    pub required_erts: String,
    /// The `.rel` file's applications, in its order.
    pub apps: Vec<AppFact>,
    pub lock: Option<LockFact>,
    pub base: Option<ImageFact>,
    pub builder: Option<ImageFact>,
    pub triple: String,
    /// `os/architecture[/variant]`.
    pub platform: String,
    /// RFC 3339, from SOURCE_DATE_EPOCH (the image's `created`).
    pub created: String,
    pub source: SourceFact,
    /// `org.opencontainers.image.vendor` (annotation or label): the supplier of the image and the
    /// project's applications.
    pub vendor: Option<String>,
    /// The licences the dependencies' package metadata declares, by application name, as written
    /// there (Hex's `licenses`; see [`super::builder_out`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub licenses: BTreeMap<String, Vec<String>>,
    /// The distribution packages whose files the minimal base took.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_packages: Vec<DistroPackage>,
    /// The build's parameters (flags that shape the image; never a secret value).
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// release-oci's version.
    pub tool_version: String,
}

impl Facts {
    /// Keeps the facts for the image `image` in `store`.
    pub fn save(&self, store: &BlobStore, image: &Digest) -> Result<(), FactsError> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| FactsError::Write { path: store.root().to_path_buf(), source: std::io::Error::other(e) })?;
        let (digest, _) = store.put(&bytes)?;
        let dir = store.root().join(DIR);
        let write_err = |source| FactsError::Write { path: dir.clone(), source };
        std::fs::create_dir_all(&dir).map_err(write_err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(write_err)?;
        tmp.write_all(digest.as_str().as_bytes()).map_err(write_err)?;
        tmp.persist(dir.join(format!("{}.json", image.hex()))).map_err(|e| write_err(e.error))?;
        Ok(())
    }

    /// The facts kept for `image`.
    pub fn load(store: &BlobStore, image: &Digest) -> Result<Facts, FactsError> {
        let pointer = store.root().join(DIR).join(format!("{}.json", image.hex()));
        let damaged = |reason: String| FactsError::Damaged { digest: image.clone(), reason };
        let text = match std::fs::read_to_string(&pointer) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(FactsError::Missing { digest: image.clone() });
            }
            Err(e) => return Err(damaged(e.to_string())),
        };
        let digest: Digest = text.trim().parse().map_err(|e| damaged(format!("{e}")))?;
        let bytes = std::fs::read(store.blob_path(&digest)).map_err(|e| damaged(e.to_string()))?;
        if Digest::of(&bytes) != digest {
            return Err(damaged(format!("blob {digest} does not match its digest")));
        }
        let facts: Facts = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
        if facts.format != FORMAT {
            return Err(damaged(format!("format {} where {FORMAT} is read", facts.format)));
        }
        Ok(facts)
    }
}

/// How an application is classified from the build's lists.
pub fn origin(
    name: &str,
    own: &std::collections::BTreeSet<String>,
    deps: &std::collections::BTreeSet<String>,
) -> Origin {
    if own.contains(name) {
        Origin::Own
    } else if deps.contains(name) {
        Origin::Dependency
    } else if ELIXIR_APPS.contains(&name) {
        Origin::Elixir
    } else {
        Origin::Otp
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::supply::lock::LockSource;

    /// Facts as a small Phoenix-like build would have them.
    pub(crate) fn sample() -> Facts {
        let app = |name: &str, version: &str, origin| AppFact { name: name.into(), version: version.into(), origin };
        let hex = |name: &str, version: &str, deps: &[&str]| LockEntry {
            name: name.into(),
            source: LockSource::Hex {
                package: name.into(),
                version: version.into(),
                repo: "hexpm".into(),
                outer_checksum: Some("ab".repeat(32)),
                inner_checksum: "cd".repeat(32),
                deps: deps.iter().map(|d| d.to_string()).collect(),
            },
        };
        let git = LockEntry {
            name: "plug_x".into(),
            source: LockSource::Git { url: "https://github.com/acme/plug_x.git".into(), rev: "1".repeat(40) },
        };
        Facts {
            format: FORMAT,
            release: "hello_web".into(),
            version: "0.1.0".into(),
            erts: Some("14.2.5".into()),
            required_erts: "14.2.5".into(),
            apps: vec![
                app("kernel", "9.2.4", Origin::Otp),
                app("stdlib", "5.2.3", Origin::Otp),
                app("elixir", "1.14.0", Origin::Elixir),
                app("logger", "1.14.0", Origin::Elixir),
                app("jason", "1.4.4", Origin::Dependency),
                app("plug_x", "0.3.0", Origin::Dependency),
                app("hello_web", "0.1.0", Origin::Own),
            ],
            lock: Some(LockFact {
                file: "mix.lock".into(),
                digest: Digest::of(b"lock"),
                entries: vec![hex("credo", "1.7.0", &[]), hex("jason", "1.4.4", &["decimal"]), git],
            }),
            base: Some(ImageFact {
                name: "release-oci/runtime:debian-bookworm".into(),
                digest: Some(Digest::of(b"base").to_string()),
            }),
            builder: Some(ImageFact {
                name: "release-oci/builder:debian-bookworm".into(),
                digest: Some(Digest::of(b"builder").to_string()),
            }),
            triple: "x86_64-unknown-linux-gnu".into(),
            platform: "linux/amd64".into(),
            created: "2024-01-02T03:04:05Z".into(),
            source: SourceFact {
                revision: Some("f".repeat(40)),
                repository: Some("https://example.com/acme/hello.git".into()),
            },
            vendor: Some("ACME".into()),
            licenses: BTreeMap::from([
                ("jason".to_string(), vec!["Apache-2.0".to_string()]),
                ("plug_x".to_string(), vec!["MIT License".to_string(), "Acme Licence".to_string()]),
                ("credo".to_string(), vec!["MIT".to_string()]),
            ]),
            base_packages: vec![DistroPackage {
                distro: "debian".into(),
                name: "libc6".into(),
                version: "2.36-9+deb12u7".into(),
                arch: "amd64".into(),
                files: 3,
            }],
            parameters: BTreeMap::from([("mix_env".to_string(), serde_json::json!("prod"))]),
            tool_version: "0.1.0".into(),
        }
    }

    #[test]
    fn saved_facts_load_back_and_missing_ones_say_how_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let image = Digest::of(b"manifest");
        let err = Facts::load(&store, &image).unwrap_err();
        assert!(err.to_string().contains("--no-cache"), "{err}");
        sample().save(&store, &image).unwrap();
        assert_eq!(Facts::load(&store, &image).unwrap(), sample());
    }

    #[test]
    fn origins() {
        let own = ["web".to_string()].into();
        let deps = ["jason".to_string()].into();
        assert_eq!(origin("web", &own, &deps), Origin::Own);
        assert_eq!(origin("jason", &own, &deps), Origin::Dependency);
        assert_eq!(origin("logger", &own, &deps), Origin::Elixir);
        assert_eq!(origin("crypto", &own, &deps), Origin::Otp);
    }
}
