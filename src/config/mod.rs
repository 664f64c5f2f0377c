//! `release-oci.toml`: the project's own settings, at the project root. Every `build` flag has a
//! key (the flag's name with `_` for `-`), except those of registries and credentials (`--push`,
//! `--insecure-registry`, `--ca-cert`, `--username`, `--password-stdin`, `--sign-key`); flags
//! given on the command line win (the typed merge is in `cli::build_config` and
//! `cli::build_options`). Unknown keys and wrong types are errors that name the key and its line.
//!
//! ```toml
//! release = "web_only"                # or "all"
//! tags = ["registry.example.com/team/{release}:1.4.2"]
//! triple = "x86_64-unknown-linux-gnu"
//! ports = [4000]
//! env = { POOL_SIZE = "10" }
//!
//! [k8s]
//! replicas = 3
//! ```
//!
//! See docs/config.md for every key.

mod hex;
mod k8s;
mod trust;

pub use hex::{HexConfig, HexRepoConfig};
pub use k8s::{K8sConfig, MigrateValue};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file's name, at the project root.
pub const FILE_NAME: &str = "release-oci.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Parse { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "{path}: {key} {reason}; a project's own file cannot choose that, so that building an untrusted checkout cannot act on this machine: pass {flag} on the command line, or in a file named with --config"
    )]
    Untrusted { path: PathBuf, key: String, reason: String, flag: String },
}

/// A port: `4000` or `"4000"`, `"53/udp"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PortValue {
    Number(u16),
    Text(String),
}

impl std::fmt::Display for PortValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortValue::Number(n) => write!(f, "{n}"),
            PortValue::Text(s) => f.write_str(s),
        }
    }
}

/// A user: `10001`, `"10001:10001"`, `"root"` or a name the base has.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum UserValue {
    Id(u32),
    Text(String),
}

impl std::fmt::Display for UserValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserValue::Id(n) => write!(f, "{n}"),
            UserValue::Text(s) => f.write_str(s),
        }
    }
}

/// `builder_host`: `"URL"` (every platform) or `{ aarch64 = "URL", ... }`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum BuilderHostValue {
    All(String),
    Platforms(BTreeMap<String, String>),
}

/// As the file writes it (errors show it).
impl std::fmt::Debug for BuilderHostValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuilderHostValue::All(url) => write!(f, "{url:?}"),
            BuilderHostValue::Platforms(table) => {
                let entries: Vec<String> = table.iter().map(|(k, v)| format!("{k:?} = {v:?}")).collect();
                write!(f, "{{ {} }}", entries.join(", "))
            }
        }
    }
}

/// The contents of `release-oci.toml`. Every field is optional; relative paths are relative to the
/// file's directory (see [`ProjectConfig::resolve_path`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Image name (repository) for the default tags `NAME:VERSION` (default: the release name).
    pub name: Option<String>,
    /// `--tag`: image names (`NAME[:TAG]`, `{release}` is replaced by the release name).
    pub tags: Option<Vec<String>>,
    /// `--triple`.
    pub triple: Option<String>,
    /// Several target triples: one image per platform, in one image index. Not with `triple`.
    pub triples: Option<Vec<String>>,
    /// `--builder`: `docker` or `host`.
    pub builder: Option<String>,
    /// `--builder-image`.
    pub builder_image: Option<String>,
    /// `--builder-host`: the engine of every platform's builder (a URL), or of each (a table of
    /// `PLATFORM = URL`). Only in a file named with `--config`.
    pub builder_host: Option<BuilderHostValue>,
    /// `--builder-catalogue`: a registry repository of builders (`HOST/hexpm/elixir`).
    pub builder_catalogue: Option<String>,
    /// `--pull`: `missing` or `never`.
    pub pull: Option<String>,
    /// `--mix-env`.
    pub mix_env: Option<String>,
    /// `--profile` (rebar3).
    pub profile: Option<String>,
    /// `--release`: a release name or `all`.
    pub release: Option<String>,
    /// `--from-release`: a release directory or tarball (skips the builder).
    pub from_release: Option<PathBuf>,
    /// `--tini`: the tini binary for `from_release` builds.
    pub tini: Option<PathBuf>,
    /// `--base`.
    pub base: Option<String>,
    /// `--slim-erts`: leave out the ERTS tools a server never runs.
    pub slim_erts: Option<bool>,
    /// `--tzdata`: the time zone database in the minimal base.
    pub tzdata: Option<bool>,
    /// `--user`.
    pub user: Option<UserValue>,
    /// `--cmd`: the start command (`start`, `foreground`, or a script in the release's `bin/`).
    pub cmd: Option<String>,
    /// `--env`: `KEY = "VALUE"` pairs.
    pub env: Option<BTreeMap<String, String>>,
    /// `--port`.
    pub ports: Option<Vec<PortValue>>,
    /// `--label`.
    pub labels: Option<BTreeMap<String, String>>,
    /// `--annotation`.
    pub annotations: Option<BTreeMap<String, String>>,
    /// `--output`.
    pub outputs: Option<Vec<String>>,
    /// `--load`.
    pub load: Option<bool>,
    /// `--include-cookie`.
    pub include_cookie: Option<bool>,
    /// `--source-url`.
    pub source_url: Option<String>,
    /// `--sbom`: `spdx`, `cyclonedx` or `none`.
    pub sbom: Option<String>,
    /// `--sbom-dir`: where each image's SBOM is also written.
    pub sbom_dir: Option<PathBuf>,
    /// `--cache-dir`.
    pub cache_dir: Option<PathBuf>,
    /// `--cache-repo`: only in a file named with `--config` (it reads and writes a registry).
    pub cache_repo: Option<String>,
    /// `--no-cache`: no build cache volume.
    pub no_cache: Option<bool>,
    /// `--cross-compile`: `auto` or `never`.
    pub cross_compile: Option<String>,
    /// `--compression`: `gzip`, `zstd` or `zstd:LEVEL`.
    pub compression: Option<String>,
    /// `--timeout`: the longest the builder container may run (`"30m"`).
    pub timeout: Option<String>,
    /// `--memory`: the builder container's memory limit (`"4g"`).
    pub memory: Option<String>,
    /// `--pids-limit`: the most processes the builder container may have.
    pub pids_limit: Option<i64>,
    /// `--warm-builder`: keep the builder container between builds.
    pub warm_builder: Option<bool>,
    /// `--warm-builder-idle`: how long a warm builder waits for a build (`"15m"`).
    pub warm_builder_idle: Option<String>,
    /// `--build-env`: the builder's environment, `KEY = "VALUE"` pairs.
    pub build_env: Option<BTreeMap<String, String>>,
    /// `--build-ca`: the CA bundle the build trusts (default: this machine's).
    pub build_ca: Option<PathBuf>,
    /// `--assets`: `auto` or `skip`.
    pub assets: Option<String>,
    /// `--secret` (only in a file named with `--config`, never the project's own).
    pub secrets: Option<Vec<String>>,
    /// `--ssh` (only in a file named with `--config`, never the project's own).
    pub ssh: Option<Vec<String>>,
    /// Hex repositories and client.
    pub hex: Option<HexConfig>,
    /// `--hot-upgrades`: the image is built for hot upgrades (docs/hot-upgrades.md).
    pub hot_upgrades: Option<bool>,
    /// `--upgrade-from`: the deployed image to make the upgrade package from.
    pub upgrade_from: Option<String>,
    /// `--upgrade-deps`: the upgrade package may change dependencies.
    pub upgrade_deps: Option<bool>,
    /// Settings of `release-oci k8s`.
    pub k8s: Option<K8sConfig>,
    /// The directory the file is in (set by [`ProjectConfig::load`], not a key).
    #[serde(skip)]
    pub dir: PathBuf,
}

impl ProjectConfig {
    /// Reads `PROJECT/release-oci.toml`; `None` when the project has none.
    pub fn load_for_project(project: &Path) -> Result<Option<ProjectConfig>, ConfigError> {
        let path = project.join(FILE_NAME);
        if !path.exists() {
            return Ok(None);
        }
        Self::load(&path).map(Some)
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<ProjectConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let mut config = Self::parse(&text).map_err(|e| e.at(path))?;
        config.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.check().map_err(|message| ConfigError::Invalid { path: path.to_path_buf(), message })?;
        Ok(config)
    }

    /// Parses the text of a `release-oci.toml`.
    pub fn parse(text: &str) -> Result<ProjectConfig, ParseError> {
        toml::from_str(text).map_err(|e| ParseError::new(text, &e))
    }

    /// `path` as written in the file, made relative to the file's directory when it is relative.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_path_buf() } else { self.dir.join(path) }
    }

    /// The triples the file asks for: `triple`, or the `triples` list (several build one image per
    /// platform, combined into one image index).
    pub fn triple_list(&self) -> Result<Vec<String>, String> {
        triple_list(self.triple.as_deref(), self.triples.as_deref())
    }

    fn check(&self) -> Result<(), String> {
        for (table, map) in [
            ("env", &self.env),
            ("labels", &self.labels),
            ("annotations", &self.annotations),
            ("build_env", &self.build_env),
        ] {
            if let Some(map) = map
                && let Some(key) = map.keys().find(|k| k.is_empty() || k.contains('='))
            {
                return Err(format!("{table}: key {key:?} is empty or contains `=`"));
            }
        }
        if let Some(c) = &self.compression {
            c.parse::<crate::layer::Compression>().map_err(|e| format!("compression: {e}"))?;
        }
        if let Some(a) = &self.assets {
            a.parse::<crate::builder::inputs::AssetsMode>().map_err(|e| format!("assets: {e}"))?;
        }
        if let Some(s) = &self.sbom {
            use clap::ValueEnum;
            crate::supply::SbomFormat::from_str(s, false).map_err(|_| {
                let known: Vec<String> = crate::supply::SbomFormat::value_variants()
                    .iter()
                    .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
                    .collect();
                format!("sbom: {s:?} is not one of {}", known.join(", "))
            })?;
        }
        if let Some(hex) = &self.hex {
            hex.check()?;
        }
        self.triple_list().map(|_| ())
    }
}

/// The triples of `triple` or of `triples` (one image per platform, in one image index): each
/// once, never both keys.
pub fn triple_list(triple: Option<&str>, triples: Option<&[String]>) -> Result<Vec<String>, String> {
    match (triple, triples) {
        (Some(t), None) => Ok(vec![t.to_string()]),
        (None, None) => Ok(Vec::new()),
        (None, Some(list)) => {
            let mut seen: Vec<String> = Vec::new();
            for t in list {
                if seen.contains(t) {
                    return Err(format!("`triples` lists {t} twice"));
                }
                seen.push(t.clone());
            }
            Ok(seen)
        }
        (Some(_), Some(_)) => Err("set either `triple` or `triples`, not both".into()),
    }
}

/// A syntax or type error in the file, with the 1-based line and column of what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ParseError {
    fn new(text: &str, e: &toml::de::Error) -> ParseError {
        let start = e.span().map_or(0, |s| s.start).min(text.len());
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let table = enclosing_table(before);
        let message = match e.message().strip_prefix("unknown field ") {
            Some(rest) => {
                let what = table.map_or_else(String::new, |t| format!(" in [{t}]"));
                let (key, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
                let expected = expected.trim_start_matches("one of ");
                format!("unknown key {key}{what}; known keys: {expected}")
            }
            None => e.message().to_string(),
        };
        ParseError { line, column, message }
    }

    fn at(self, path: &Path) -> ConfigError {
        ConfigError::Parse { path: path.to_path_buf(), line: self.line, column: self.column, message: self.message }
    }
}

/// The `[table]` header in effect at the end of `before`, if any.
fn enclosing_table(before: &str) -> Option<String> {
    before.lines().rev().map(str::trim).find_map(|l| {
        let inner = l.strip_prefix('[')?.split(']').next()?.trim_matches('[').trim();
        (!inner.is_empty()).then(|| inner.to_string())
    })
}

#[cfg(test)]
mod tests;
