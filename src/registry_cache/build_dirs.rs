//! The builder's `deps/` and `_build/` shared through the registry (`--cache-repo`, issue 21 item
//! 1; docs/build-cache.md): what a build leaves in its cache volume is pushed as two OCI
//! artifacts, and a runner whose volume is new fills it from them before the builder compiles.
//!
//! - **deps**: `deps/`, `_build/ENV/lib/DEP` of every locked dependency, Hex's package cache and
//!   mix's archives (`hex/`, `mix/archives/` in the volume). Keyed by [`Keys::deps`]: the
//!   toolchain (builder image id, triple), the project kind, `MIX_ENV`, the rebar3 profile, the
//!   lock files, the compile-time configuration files and the `--build-env` (values hashed).
//! - **app**: the rest of `_build/` (the project's own applications, consolidated protocols), and
//!   a listing of the sources as they were in the volume (path, sha256, mtime, exec bit: no
//!   content). Keyed by [`Keys::app`]: the deps key and the source tar's digest; also tagged as
//!   the latest of its deps key ([`last_tag`]), which a build with other sources restores.
//! - **rel**: the release cache (`release/` in the volume: each release kept with its
//!   fingerprint, which `assemble_mix.exs` compares before it reuses one). Tagged as the latest of
//!   its deps key ([`rel_tag`]) and keyed by its fingerprints ([`rel_key`]): published only when
//!   a build's differ from the registry's, so a code change uploads nothing of it.
//!
//! All are ordinary OCI image manifests (an image config, tar+gzip layers) with an
//! `artifactType`, annotations naming the toolchain they were built with; a lookup never takes
//! one whose toolchain is not this build's ([`Toolchain::matches`]). Publishing goes through the
//! result cache's push: blobs first, then the manifest under its tags.

mod artifact;
mod sources;
mod split;

pub use artifact::{Artifact, Found, FoundLayer, Meta, Mismatch, Want, find, publish};
pub use sources::{ListedFile, Listing, RestoredSources, restore_sources};
pub use split::{Leak, Packed, Part, Split, SplitRequest, is_fingerprint, split};

use crate::result_cache::{Fingerprint, KeyBuilder};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;

/// Changes when what the artifacts hold or how they are keyed changes.
const FORMAT: &str = "release-oci build dirs 1";

/// The `artifactType` of both artifacts.
pub const ARTIFACT_TYPE: &str = "application/vnd.release-oci.build-dirs.v1";
/// The annotations (on the manifest, and as labels of its config).
pub const ANN_KIND: &str = "org.release-oci.build-dirs.kind";
pub const ANN_KEY: &str = "org.release-oci.build-dirs.key";
pub const ANN_DEPS_KEY: &str = "org.release-oci.build-dirs.deps-key";
pub const ANN_BUILDER: &str = "org.release-oci.build-dirs.builder-image-id";
pub const ANN_TRIPLE: &str = "org.release-oci.build-dirs.triple";
pub const ANN_MIX_ENV: &str = "org.release-oci.build-dirs.mix-env";
pub const ANN_PROFILE: &str = "org.release-oci.build-dirs.profile";
/// Which release-oci, with which gzip level, made the artifact ([`made_by`]).
pub const ANN_MADE_BY: &str = "org.release-oci.build-dirs.made-by";
/// A layer's name (`deps.tar.gz`, `app.tar.gz`, `sources.tar.gz`; a layers artifact's diff_ids).
pub const ANN_TITLE: &str = "org.opencontainers.image.title";

/// What one artifact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Deps,
    App,
    Rel,
    /// The layers an image build wrote, each titled with its diff_id.
    Layers,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deps => "deps",
            Kind::App => "app",
            Kind::Rel => "rel",
            Kind::Layers => "layers",
        }
    }
}

/// What the compiled code is valid for: the builder image (its OTP, Elixir, C compiler and libc)
/// and the target. Restored only into a build with the very same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// The builder image's id (`sha256:…`), not its name.
    pub builder_image_id: String,
    pub triple: String,
}

impl Toolchain {
    /// Whether code built by `other` may be restored into a build with `self`: the same builder
    /// image id and triple, both known.
    pub fn matches(&self, other: &Toolchain) -> bool {
        !self.builder_image_id.trim().is_empty() && !self.triple.trim().is_empty() && self == other
    }
}

/// Everything the keys are made of.
#[derive(Debug, Clone)]
pub struct KeyInputs {
    pub toolchain: Toolchain,
    /// `mix` or `rebar3`.
    pub project_kind: String,
    pub mix_env: String,
    pub profile: String,
    /// The lock files (path relative to the project, content); a missing one is left out.
    pub locks: Vec<(String, Vec<u8>)>,
    /// The compile-time configuration files (path, content): `config/config.exs` and
    /// `config/ENV.exs` (not `runtime.exs`), `rebar.config`.
    pub config: Vec<(String, Vec<u8>)>,
    /// `--build-env` (name, value): values are hashed, never kept.
    pub build_env: Vec<(String, String)>,
    /// The digest of the source tar (only the app key has it).
    pub sources: String,
}

/// The keys of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// Of the deps artifact, and of "the latest app artifact for these deps".
    pub deps: Fingerprint,
    /// Of the app artifact: the deps key and the sources.
    pub app: Fingerprint,
    /// The deps key without the toolchain: only to say why nothing was restored.
    pub loose: Fingerprint,
}

impl KeyInputs {
    pub fn keys(&self) -> Keys {
        let mut loose = KeyBuilder::new();
        loose.part("build-dirs", FORMAT);
        self.loose_parts(&mut loose);
        let mut deps = KeyBuilder::new();
        deps.part("build-dirs", FORMAT)
            .part("builder-image-id", self.toolchain.builder_image_id.trim())
            .part("triple", self.toolchain.triple.trim());
        self.loose_parts(&mut deps);
        let deps = deps.finish();
        let mut app = KeyBuilder::new();
        app.part("build-dirs", FORMAT).part("deps", deps.hex()).part("sources", self.sources.trim());
        Keys { deps, app: app.finish(), loose: loose.finish() }
    }

    fn loose_parts(&self, k: &mut KeyBuilder) {
        k.part("project-kind", &self.project_kind).part("mix-env", &self.mix_env).part("profile", &self.profile);
        for (what, files) in [("lock", &self.locks), ("config", &self.config)] {
            for (path, content) in normalised_files(files) {
                k.part(what, path).part("content", content);
            }
        }
        for (name, hash) in normalised_env(&self.build_env) {
            k.part("build-env", format!("{name}={hash}"));
        }
    }
}

/// Files sorted by path (a path given twice: the last content), paths without `./` and with `/`,
/// contents with LF line ends.
fn normalised_files(files: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let mut out = std::collections::BTreeMap::new();
    for (path, content) in files {
        let path = path.replace('\\', "/");
        let path = path.trim_start_matches("./").to_string();
        out.insert(path, crlf_to_lf(content));
    }
    out.into_iter().collect()
}

fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The build env sorted by name (a name given twice: the last value, as the environment has it),
/// each value as its sha256.
fn normalised_env(env: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = std::collections::BTreeMap::new();
    for (name, value) in env {
        out.insert(name.clone(), hex::encode(Sha256::digest(value.as_bytes())));
    }
    out.into_iter().collect()
}

/// The tag of the deps artifact (`bd-deps-` + 64 hex digits).
pub fn deps_tag(k: &Keys) -> String {
    format!("bd-deps-{}", k.deps.hex())
}

/// The tag of the app artifact of exactly these sources.
pub fn app_tag(k: &Keys) -> String {
    format!("bd-app-{}", k.app.hex())
}

/// The tag of the latest app artifact built with these deps (moved by every publish).
pub fn last_tag(k: &Keys) -> String {
    format!("bd-last-{}", k.deps.hex())
}

/// This release-oci and its gzip level: blobs of the same content it made are the same.
pub fn made_by() -> String {
    format!("release-oci {} gzip level {}", env!("CARGO_PKG_VERSION"), crate::layer::GZIP_LEVEL)
}

/// The tag of the layers of the latest image built with these deps.
pub fn layers_tag(k: &Keys) -> String {
    format!("bd-layers-{}", k.deps.hex())
}

/// The tag of the latest release cache published with these deps (moved when a build's
/// fingerprints differ from the one it names).
pub fn rel_tag(k: &Keys) -> String {
    format!("bd-rel-{}", k.deps.hex())
}

/// The key of a release cache: the sha256 (hex) of what `sha256sum` prints for its fingerprint
/// files (`release/NAME.fingerprint`, by path in byte order), as the volume's read helper
/// computes it to tell whether the registry has these releases.
pub fn rel_key(fingerprints: &[(String, [u8; 32])]) -> String {
    let mut sorted: Vec<&(String, [u8; 32])> = fingerprints.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha256::new();
    for (path, sum) in sorted {
        h.update(format!("{}  {path}\n", hex::encode(sum)));
    }
    hex::encode(h.finalize())
}

/// The tag of the latest app artifact of these locks and settings, whatever the toolchain: read
/// only to say why nothing was restored, never restored from.
pub fn any_tag(k: &Keys) -> String {
    format!("bd-any-{}", k.loose.hex())
}

/// The names of the dependencies a lock file pins: the keys of `mix.lock`, the packages and git
/// dependencies of `rebar.lock` (either format). Their `_build/ENV/lib/NAME` goes into the deps
/// artifact; everything else in `_build` into the app artifact.
pub fn locked_deps(file_name: &str, text: &str) -> BTreeSet<String> {
    if file_name.ends_with("rebar.lock") { rebar_lock_names(text) } else { mix_lock_names(text) }
}

fn is_app_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `  "name": {:hex, ...` lines.
fn mix_lock_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix('"') else { continue };
        let Some((name, after)) = rest.split_once('"') else { continue };
        if after.trim_start().starts_with(':') && is_app_name(name) {
            out.insert(name.to_string());
        }
    }
    out
}

/// `{<<"name">>,{pkg,...}` and `{<<"name">>,{git,...}` entries.
fn rebar_lock_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("{<<\"") {
        rest = &rest[at + 4..];
        let Some(end) = rest.find("\">>") else { break };
        let name = &rest[..end];
        let after = rest[end + 3..].trim_start().trim_start_matches(',').trim_start();
        if is_app_name(name) && (after.starts_with("{pkg") || after.starts_with("{git")) {
            out.insert(name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod rel_tests;
#[cfg(test)]
mod sources_tests;
#[cfg(test)]
mod tests;
