//! The build's side: the [`Facts`] of an image gathered from what the build knows (release,
//! project, builder, base, flags), kept in the blob store, and the SBOM written to `--sbom-dir`;
//! and, when pushing, the attachments rendered from the facts kept for the image.

use super::attach::Attachments;
use super::builder_out::{self, DistroPackage};
use super::facts::{AppFact, Facts, FactsError, ImageFact, LockFact, SourceFact, origin};
use super::{SbomFormat, SupplySettings, lock, provenance, rebar_lock};
use crate::builder::Assembled;
use crate::cli::BuildSettings;
use crate::digest::Digest;
use crate::image::{BaseImage, Image};
use crate::project::{Project, ProjectKind};
use crate::release::Release;
use crate::store::BlobStore;
use anyhow::Context;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const VENDOR: &str = "org.opencontainers.image.vendor";

/// Gathers the facts of `image`, keeps them in `store` and writes the SBOM to `--sbom-dir`.
pub fn record(
    s: &BuildSettings,
    project: Option<&Project>,
    release: &Release,
    assembled: &Assembled,
    base: Option<&BaseImage>,
    image: &Image,
    store: &BlobStore,
) -> anyhow::Result<()> {
    let apps = release
        .apps
        .iter()
        .map(|a| AppFact {
            name: a.name.clone(),
            version: a.version.clone(),
            origin: origin(&a.name, &assembled.own_apps, &assembled.dep_apps),
        })
        .collect();
    let builder = match (&s.from_release, &assembled.builder_image_id) {
        (None, id) => Some(ImageFact { name: s.builder_image.clone(), digest: id.clone() }),
        (Some(_), _) => None,
    };
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
        triple: s.triple.to_string(),
        platform: s.triple.platform().to_string(),
        created: crate::time::rfc3339(s.epoch),
        source: SourceFact {
            revision: project.and_then(Project::git_revision),
            repository: s.source_url.clone().or_else(|| project.and_then(Project::git_remote_url)),
        },
        vendor: s.annotations.get(VENDOR).or_else(|| s.labels.get(VENDOR)).cloned(),
        licenses: match builder_out_dir(s, assembled) {
            Some(out) => builder_out::read_licenses(&out)?,
            None => BTreeMap::new(),
        },
        base_packages: minimal_base_packages(base, assembled)?,
        parameters: parameters(s),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    facts.save(store, &image.manifest_digest)?;
    write_sbom_file(&s.supply, &facts, &image.manifest_digest)
}

/// For an image an earlier build made (the result cache): the SBOM to `--sbom-dir` again.
pub fn reused(s: &BuildSettings, image: &Image, store: &BlobStore) -> anyhow::Result<()> {
    if s.supply.sbom_dir.is_none() || s.supply.sbom == SbomFormat::None {
        return Ok(());
    }
    let facts = Facts::load(store, &image.manifest_digest)?;
    write_sbom_file(&s.supply, &facts, &image.manifest_digest)
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
fn builder_out_dir(s: &BuildSettings, assembled: &Assembled) -> Option<PathBuf> {
    if s.from_release.is_some() {
        return None;
    }
    if let Some(base) = &assembled.base_dir {
        return base.parent().map(Path::to_path_buf);
    }
    // OUT/rel, or OUT/rel/NAME when several releases were assembled.
    assembled.release_dir.ancestors().skip(1).take(2).find(|d| d.join("apps").is_file()).map(Path::to_path_buf)
}

/// The distribution packages of the files the minimal base's layer has (none for other bases).
fn minimal_base_packages(base: Option<&BaseImage>, assembled: &Assembled) -> anyhow::Result<Vec<DistroPackage>> {
    let (Some(base), Some(base_dir)) = (base, &assembled.base_dir) else { return Ok(Vec::new()) };
    if base.name != crate::minimal::BASE_NAME || base.digest.is_some() {
        return Ok(Vec::new());
    }
    // The layer's files taken from the builder, as the base was planned (the release after
    // --slim-erts); links and generated files belong to no package.
    let plan = crate::minimal::plan(base_dir, &base_dir.with_file_name("rel"))?;
    let files: BTreeSet<String> = plan
        .spec
        .entries
        .iter()
        .filter(|e| matches!(e.kind, crate::layer::EntryKind::File { .. }))
        .map(|e| e.path.trim_start_matches('/').to_string())
        .collect();
    Ok(builder_out::read_base_packages(base_dir, &files)?)
}

/// The flags that shape the image, by name; values that may be secret are left out (`--env`
/// values: only the names; logins, build secrets and key paths are not flags of the image).
fn parameters(s: &BuildSettings) -> BTreeMap<String, Value> {
    let env_names: Vec<&str> = s.env.iter().map(|(k, _)| k.as_str()).collect();
    BTreeMap::from([
        ("builder".into(), json!(format!("{:?}", s.builder).to_lowercase())),
        ("builder_image".into(), json!(s.builder_image)),
        ("mix_env".into(), json!(s.mix_env)),
        ("profile".into(), json!(s.profile)),
        ("release".into(), json!(s.release)),
        ("cmd".into(), json!(s.cmd)),
        ("base".into(), json!(s.base.to_string())),
        ("slim_erts".into(), json!(s.slim_erts)),
        ("tzdata".into(), json!(s.tzdata)),
        ("user".into(), json!(format!("{:?}", s.user))),
        ("env_names".into(), json!(env_names)),
        ("ports".into(), json!(s.ports)),
        ("labels".into(), json!(s.labels)),
        ("annotations".into(), json!(s.annotations)),
        ("include_cookie".into(), json!(s.include_cookie)),
        ("compression".into(), json!(s.compression.to_string())),
        ("source_date_epoch".into(), json!(s.epoch)),
    ])
}
