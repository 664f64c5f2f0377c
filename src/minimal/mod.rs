//! The minimal runtime base (`--base minimal`): instead of a distribution image, exactly the files
//! the release needs, taken from the builder that built it, as one deterministic layer.
//!
//! 1. The builder (`src/builder/minimal_base.sh`, run after the release is assembled when
//!    [`GatherOptions::env`] asks for it) copies into `OUT/base/rootfs` the loader and libraries of
//!    every ELF file of the release as its `ldd` resolves them (glibc or musl alike), busybox with
//!    the applets the start scripts call, CA certificates, the C.UTF-8 locale, OpenSSL's provider
//!    modules and, with `--tzdata`, the time zone database; `OUT/base/why` says why for each.
//! 2. [`plan`] turns that into a [`LayerSpec`]: every path the `why` file names, resolved in the
//!    gathered root (links on the way kept), plus generated files (`/etc/nsswitch.conf`,
//!    `/etc/hosts`, a sticky world-writable `/tmp`, and the reasons as [`REASONS_PATH`]).
//! 3. [`build`] writes it ([`write_layer_cached_with`]: an unchanged base is not compressed again) and
//!    synthesises the base's config ([`base_config`]). `/etc/passwd` and `/etc/group` come from the
//!    plan's runtime layer, which starts from a root entry when the base has none.
//! 4. [`cache`] keeps the base made: the next build whose key is the same (the builder image, the
//!    settings, the release's ELF files by content: [`ElfListing`]) gathers nothing and reuses
//!    the layer ([`from_layer`]).

pub mod cache;
mod config;
mod elf_groups;
mod elf_list;
mod layer_facts;
mod reasons;
mod slim;
mod tree;

pub use config::{PATH, SSL_CERT_FILE, base_config};
pub use elf_groups::groups as elf_groups;
pub use elf_list::ElfListing;
pub use layer_facts::{LAYER_FILES, LayerFacts, layer_files};
pub use reasons::{REASONS_PATH, Reasons, WhyLine, consumer_label, parse_why};
pub use slim::{SLIM_ERTS_DIRS, SLIM_ERTS_PROGRAMS, SLIM_LABEL, slim_erts, slim_erts_paths};

use crate::image::BaseImage;
use crate::layer::{Compression, EntryKind, LayerBlob, LayerError, LayerSpec, TarOptions, write_layer_cached_with};
use crate::store::BlobStore;
use crate::triple::Platform;
use std::path::{Path, PathBuf};

/// How the minimal base is named (`--base minimal`, [`BASE_ANNOTATION`]).
pub use crate::triple::MINIMAL_BASE_NAME as BASE_NAME;
/// The name of its layer (history: `release-oci: minimal base`).
pub const LAYER_NAME: &str = "minimal base";
/// Manifest annotation and label of an image on the minimal base (value [`BASE_NAME`]); such an
/// image has no `org.opencontainers.image.base.name`, there being no base image to name.
pub const BASE_ANNOTATION: &str = "org.release-oci.base";

/// glibc ≥ 2.34 has `files` and `dns` built in; musl ignores this file.
pub const NSSWITCH_CONF: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n\
                                 networks: files\nprotocols: files\nservices: files\n";
/// What a runtime that does not bind-mount its own `/etc/hosts` (Docker and Kubernetes do) finds.
pub const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// What the builder gathers for the minimal base.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatherOptions {
    /// The time zone database (`--tzdata`).
    pub tzdata: bool,
    /// The ELF listings ([`ElfListing::digest`]) whose base release-oci has for this build's key
    /// ([`cache`]): when the release's is one of them, the builder gathers nothing.
    pub known: Vec<String>,
}

impl GatherOptions {
    /// The environment that makes the builder's script gather the base.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![("MINIMAL_BASE".to_string(), "1".to_string())];
        if self.tzdata {
            env.push(("TZDATA".to_string(), "1".to_string()));
        }
        if !self.known.is_empty() {
            env.push(("MINIMAL_BASE_KNOWN".to_string(), self.known.join(" ")));
        }
        env
    }
}

/// What the builder says it did for the minimal base in `base_dir` (`OUT/base`): the ELF listing
/// whose known base it reused instead of gathering (`OUT/base/reused`), or None (it gathered).
pub fn reused_listing(base_dir: &Path) -> Result<Option<String>, MinimalError> {
    let path = base_dir.join("reused");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(MinimalError::Io { action: "cannot read", path, source }),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MinimalError {
    #[error(
        "the builder gathered no minimal base ({path} is missing): its assemble script did not run the \
         minimal-base step; use --base debian or another image to build without it"
    )]
    NotGathered { path: PathBuf },
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path}, line {line}: {message}")]
    Why { path: PathBuf, line: usize, message: String },
    #[error(
        "the minimal base needs {path}, but the files the builder gathered ({root}) do not have it \
         ({detail}); the builder image may lack a package the release needs"
    )]
    Missing { root: PathBuf, path: String, detail: String },
    #[error("cannot serialise the reasons of the minimal base: {0}")]
    Json(serde_json::Error),
    #[error("cannot build the minimal base's {what}: {source}")]
    Spec { what: &'static str, source: oci_spec::OciSpecError },
    #[error("cannot write the minimal base layer: {0}")]
    Layer(#[from] LayerError),
    #[error(
        "the builder reused the minimal base of the ELF listing sha256:{listing}, but release-oci \
         cannot: {detail}; its record ({record}) is removed, so building again gathers the base"
    )]
    Reuse { listing: String, record: PathBuf, detail: String },
}

/// The base layer and why each of its files is there.
#[derive(Debug, Clone)]
pub struct MinimalBase {
    pub spec: LayerSpec,
    pub reasons: Reasons,
}

/// Reads what the builder gathered in `base_dir` (`OUT/base`: `rootfs/` and `why`) for the
/// release at `release_root` (after `--slim-erts`, if any) and makes the base layer's spec.
pub fn plan(base_dir: &Path, release_root: &Path) -> Result<MinimalBase, MinimalError> {
    let root = base_dir.join("rootfs");
    let why_path = base_dir.join("why");
    if !root.is_dir() || !why_path.is_file() {
        return Err(MinimalError::NotGathered { path: base_dir.to_path_buf() });
    }
    let text = std::fs::read_to_string(&why_path).map_err(|source| MinimalError::Io {
        action: "cannot read",
        path: why_path.clone(),
        source,
    })?;
    let lines = parse_why(&text, &why_path)?;
    let mut sel = tree::select(&root, &lines, release_root)?;

    let generated: [(&str, &[u8], &str); 2] = [
        ("etc/nsswitch.conf", NSSWITCH_CONF.as_bytes(), "generated: name service order (files, then DNS)"),
        ("etc/hosts", HOSTS.as_bytes(), "generated: localhost, for runtimes that do not mount their own"),
    ];
    let mut spec = LayerSpec::new(LAYER_NAME);
    for (path, bytes, reason) in generated {
        spec.add_file(path, EntryKind::Bytes(bytes.to_vec()), 0o644, 0, 0);
        sel.reasons.add(path, reason);
    }
    spec.add_file("tmp", EntryKind::Dir, 0o1777, 0, 0);
    sel.reasons.add("tmp", "generated: writable by anyone, sticky (RELEASE_TMP)");
    sel.reasons.add(REASONS_PATH, "generated: why each file of this layer is here (release-oci inspect --files)");
    for dir in ["etc", "usr", "usr/share", "usr/share/release-oci"] {
        spec.add_file(dir, EntryKind::Dir, 0o755, 0, 0);
    }
    spec.add_file(REASONS_PATH, EntryKind::Bytes(sel.reasons.to_json()?), 0o644, 0, 0);
    spec.entries.extend(sel.entries.into_values());
    Ok(MinimalBase { spec, reasons: sel.reasons })
}

/// [`plan`], then the layer in `store` (not compressed again when an identical one is there) and
/// the base image made of it.
pub fn build(
    base_dir: &Path,
    release_root: &Path,
    platform: &Platform,
    created: &str,
    opts: &TarOptions,
    store: &BlobStore,
) -> Result<BaseImage, MinimalError> {
    build_with(base_dir, release_root, platform, created, opts, Compression::Gzip, store)
}

/// [`build`] with the layer compressed as `compression`.
pub fn build_with(
    base_dir: &Path,
    release_root: &Path,
    platform: &Platform,
    created: &str,
    opts: &TarOptions,
    compression: Compression,
    store: &BlobStore,
) -> Result<BaseImage, MinimalError> {
    Ok(build_gathered(base_dir, release_root, platform, created, opts, compression, store)?.0)
}

/// [`build_with`], and the facts of the layer (what the SBOM reads of it, and the cache keeps).
pub fn build_gathered(
    base_dir: &Path,
    release_root: &Path,
    platform: &Platform,
    created: &str,
    opts: &TarOptions,
    compression: Compression,
    store: &BlobStore,
) -> Result<(BaseImage, LayerFacts), MinimalError> {
    let base = plan(base_dir, release_root)?;
    let facts = LayerFacts::of_gathered(base_dir, &base.spec)?;
    let layer = write_layer_cached_with(&base.spec, opts, compression, store)?.blob;
    Ok((from_layer(layer, platform, created)?, facts))
}

/// The base image of the one base `layer` (made now, or by an earlier build: [`cache`]); its
/// config is synthesised from the platform, the layer and `created` alone.
pub fn from_layer(layer: LayerBlob, platform: &Platform, created: &str) -> Result<BaseImage, MinimalError> {
    let config = base_config(platform, &layer.diff_id, created)?;
    Ok(BaseImage { name: BASE_NAME.to_string(), config, layers: vec![layer], digest: None })
}

#[cfg(test)]
mod tests;
