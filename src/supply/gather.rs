//! The build's side: the [`Facts`] of an image gathered from what the build knows (release,
//! project, builder, base, flags), kept in the blob store, and the SBOM written to `--sbom-dir`;
//! and, when pushing, the attachments rendered from the facts kept for the image.

use super::attach::Attachments;
use super::facts::{AppFact, Facts, FactsError, ImageFact, LockFact, SourceFact, origin};
use super::{SbomFormat, SupplySettings, lock, provenance, sbom};
use crate::builder::Assembled;
use crate::cli::BuildSettings;
use crate::digest::Digest;
use crate::image::{BaseImage, Image};
use crate::project::Project;
use crate::release::Release;
use crate::store::BlobStore;
use anyhow::Context;
use serde_json::{Value, json};
use std::collections::BTreeMap;

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
    let (Some(dir), SbomFormat::Spdx) = (&supply.sbom_dir, supply.sbom) else { return Ok(()) };
    std::fs::create_dir_all(dir).with_context(|| format!("--sbom-dir {}: cannot create it", dir.display()))?;
    let path = dir.join(sbom::file_name(facts));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("--sbom-dir {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, &sbom::render(facts, digest))
        .with_context(|| format!("writing {}", path.display()))?;
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
        sbom: (supply.sbom == SbomFormat::Spdx).then(|| sbom::render(&facts, image)),
        provenance: supply.signing.is_some().then(|| provenance::statement(&facts, image)),
        created: Some(facts.created.clone()),
    }))
}

/// `mix.lock` of the project: its digest and entries (None when there is none).
fn lock_fact(project: &Project) -> anyhow::Result<Option<LockFact>> {
    let path = project.root.join("mix.lock");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let text = String::from_utf8_lossy(&bytes);
    let entries = lock::parse_mix_lock(&text, &path.display().to_string())?;
    Ok(Some(LockFact { file: "mix.lock".into(), digest: Digest::of(&bytes), entries }))
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
