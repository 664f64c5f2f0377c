//! The build's side: the [`Facts`] of an image gathered from what the build knows (release,
//! project, builder, base, flags), kept in the blob store, and the SBOM written to `--sbom-dir`;
//! and, when pushing, the attachments rendered from the facts kept for the image.
//!
//! The build's settings come in as a [`BuildContext`] (`commands/build/supply_facts.rs` makes it
//! from the flags), the builder's run as an [`Assembly`]: this module knows neither `cli` nor
//! `builder` (docs/architecture.md, module layers).

use super::attach::Attachments;
use super::builder_out::{self, DistroPackage};
use super::facts::{AppFact, Facts, FactsError, ImageFact, LockFact, SourceFact, origin};
use super::{SbomFormat, SupplySettings, lock, provenance, rebar_lock};
use crate::digest::Digest;
use crate::image::BaseImage;
use crate::project::{Project, ProjectKind};
use crate::release::Release;
use crate::store::BlobStore;
use crate::triple::Triple;
use anyhow::Context;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What the facts take from the build's settings.
#[derive(Debug, Clone)]
pub struct BuildContext {
    pub triple: Triple,
    /// SOURCE_DATE_EPOCH (the image's `created`).
    pub epoch: u64,
    /// The builder image asked for (recorded with the id the builder ran as).
    pub builder_image: String,
    /// `--from-release`: no builder ran, there is no builder output.
    pub from_release: bool,
    /// `--source-url`, else the project's git remote.
    pub source_url: Option<String>,
    /// `org.opencontainers.image.vendor`, as an annotation or a label.
    pub vendor: Option<String>,
    /// The flags that shape the image, by name (never a secret value).
    pub parameters: BTreeMap<String, Value>,
    pub supply: SupplySettings,
}

/// What the facts take from the builder's run (`builder::Assembled`).
#[derive(Debug, Clone, Default)]
pub struct Assembly {
    pub own_apps: BTreeSet<String>,
    pub dep_apps: BTreeSet<String>,
    /// The builder image's id (None for host builds).
    pub builder_image_id: Option<String>,
    /// `OUT/base`, when the builder gathered the minimal base's files.
    pub base_dir: Option<PathBuf>,
    /// The (first) release directory: `OUT/rel` or `OUT/rel/NAME`.
    pub release_dir: PathBuf,
}

/// Gathers the facts of the image `image` (its manifest digest), keeps them in `store` and
/// writes the SBOM to `--sbom-dir`. Reads files (the lock file, the builder's output): run it off
/// the async runtime.
pub fn record(
    cx: &BuildContext,
    project: Option<&Project>,
    release: &Release,
    assembly: &Assembly,
    base: Option<&BaseImage>,
    image: &Digest,
    store: &BlobStore,
) -> anyhow::Result<()> {
    let apps = release
        .apps
        .iter()
        .map(|a| AppFact {
            name: a.name.clone(),
            version: a.version.clone(),
            origin: origin(&a.name, &assembly.own_apps, &assembly.dep_apps),
        })
        .collect();
    let builder = (!cx.from_release)
        .then(|| ImageFact { name: cx.builder_image.clone(), digest: assembly.builder_image_id.clone() });
    let facts = Facts {
        format: super::facts::FORMAT,
        release: release.name.clone(),
        version: release.version.clone(),
        erts: release.erts_version.clone(),
        required_erts: release.required_erts.clone(),
        apps,
        lock: project.map(lock_fact).transpose()?.flatten(),
        base: base
            .and_then(|b| b.digest.as_ref().map(|d| ImageFact { name: b.name.clone(), digest: Some(d.to_string()) })),
        builder,
        triple: cx.triple.to_string(),
        platform: cx.triple.platform().to_string(),
        created: crate::time::rfc3339(cx.epoch),
        source: SourceFact {
            revision: project.and_then(Project::git_revision),
            repository: cx.source_url.clone().or_else(|| project.and_then(Project::git_remote_url)),
        },
        vendor: cx.vendor.clone(),
        licenses: match builder_out_dir(cx.from_release, assembly) {
            Some(out) => builder_out::read_licenses(&out)?,
            None => BTreeMap::new(),
        },
        base_packages: base_packages(base, assembly, store)?,
        parameters: cx.parameters.clone(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    facts.save(store, image)?;
    write_sbom_file(&cx.supply, &facts, image)
}

/// For an image an earlier build made (the result cache): the SBOM to `--sbom-dir` again.
pub fn reused(supply: &SupplySettings, image: &Digest, store: &BlobStore) -> anyhow::Result<()> {
    if supply.sbom_dir.is_none() || supply.sbom == SbomFormat::None {
        return Ok(());
    }
    let facts = Facts::load(store, image)?;
    write_sbom_file(supply, &facts, image)
}

fn write_sbom_file(supply: &SupplySettings, facts: &Facts, digest: &Digest) -> anyhow::Result<()> {
    let Some(dir) = &supply.sbom_dir else { return Ok(()) };
    let (Some(name), Some(bytes)) = (supply.sbom.file_name(facts), supply.sbom.render(facts, digest)) else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("--sbom-dir {}: cannot create it", dir.display()))?;
    let path = dir.join(name);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("--sbom-dir {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, &bytes).with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(&path).with_context(|| format!("writing {}", path.display()))?;
    crate::ui::step(format!("Wrote the SBOM {}", path.display()));
    Ok(())
}

/// What a push of `image` attaches: None when nothing is asked for.
pub fn for_push(supply: &SupplySettings, image: &Digest, store: &BlobStore) -> Result<Option<Attachments>, FactsError> {
    if !supply.attaches() {
        return Ok(None);
    }
    let facts = Facts::load(store, image)?;
    Ok(Some(Attachments {
        sbom: supply.sbom.render(&facts, image),
        sbom_format: supply.sbom,
        provenance: supply.signing.is_some().then(|| provenance::statement(&facts, image)),
        created: Some(facts.created.clone()),
    }))
}

/// The project's lock file (`mix.lock`; `rebar.lock` for rebar3): its digest and entries (None
/// when there is none).
fn lock_fact(project: &Project) -> anyhow::Result<Option<LockFact>> {
    let file = match project.kind {
        ProjectKind::Mix => "mix.lock",
        ProjectKind::Rebar3 => "rebar.lock",
    };
    let path = project.root.join(file);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let text = String::from_utf8_lossy(&bytes);
    let shown = path.display().to_string();
    let entries = match project.kind {
        ProjectKind::Mix => lock::parse_mix_lock(&text, &shown)?,
        ProjectKind::Rebar3 => rebar_lock::parse_rebar_lock(&text, &shown)?,
    };
    Ok(Some(LockFact { file: file.into(), digest: Digest::of(&bytes), entries }))
}

/// The builder's output directory (`OUT`: `apps`, `tini`, `rel/`, `base/`), None for a release
/// built elsewhere (`--from-release`).
fn builder_out_dir(from_release: bool, assembly: &Assembly) -> Option<PathBuf> {
    if from_release {
        return None;
    }
    if let Some(base) = &assembly.base_dir {
        return base.parent().map(Path::to_path_buf);
    }
    // OUT/rel, or OUT/rel/NAME when several releases were assembled.
    assembly.release_dir.ancestors().skip(1).take(2).find(|d| d.join("apps").is_file()).map(Path::to_path_buf)
}

/// The distribution packages of the base: those whose files the minimal base took, or a
/// distribution base's installed ones (its dpkg database).
fn base_packages(
    base: Option<&BaseImage>,
    assembly: &Assembly,
    store: &BlobStore,
) -> anyhow::Result<Vec<DistroPackage>> {
    let minimal = minimal_base_packages(base, assembly)?;
    match base {
        Some(b) if minimal.is_empty() => Ok(super::dpkg_status::of_image(store, &b.layers)?),
        _ => Ok(minimal),
    }
}

/// The distribution packages of the files the minimal base's layer has (none for other bases).
fn minimal_base_packages(base: Option<&BaseImage>, assembly: &Assembly) -> anyhow::Result<Vec<DistroPackage>> {
    let (Some(base), Some(base_dir)) = (base, &assembly.base_dir) else { return Ok(Vec::new()) };
    if base.name != crate::minimal::BASE_NAME || base.digest.is_some() {
        return Ok(Vec::new());
    }
    // The layer's files taken from the builder, as the base was planned (the release after
    // --slim-erts; also for a base reused from the cache, which gathered nothing); links and
    // generated files belong to no package.
    let files = crate::minimal::layer_files(base_dir)?;
    Ok(builder_out::read_base_packages(base_dir, &files)?)
}
