//! Assembling an image: the base config with our settings applied, then the manifest.

use super::{BaseImage, ConfigSettings, Image, ImageError, canonical_json};
use crate::digest::Digest;
use crate::layer::LayerBlob;
use crate::store::BlobStore;
use oci_spec::image::{
    Arch, Config, Descriptor, History, HistoryBuilder, ImageConfiguration, ImageManifest, ImageManifestBuilder,
    MediaType, Os,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Builds the config and manifest of `base` (if any) plus `layers`, stores both, and returns
/// the image. Same input, same bytes.
///
/// The config is the base's with: `created` and the platform from `settings`, no `author`,
/// the execution parameters merged as [`ConfigSettings`] documents, `rootfs.diff_ids` and
/// `history` extended with one entry per layer (`release-oci: <name>`). The base must be for the
/// same OS and architecture and have one layer per diff_id.
pub fn assemble(
    base: Option<&BaseImage>,
    layers: Vec<LayerBlob>,
    settings: &ConfigSettings,
    annotations: &BTreeMap<String, String>,
    store: &BlobStore,
) -> Result<Image, ImageError> {
    let config = image_config(base, &layers, settings)?;
    let config_bytes = canonical_json(&config).map_err(|source| ImageError::Json { what: "config", source })?;
    let (config_digest, config_size) =
        store.put(&config_bytes).map_err(|source| ImageError::Store { what: "config", source })?;

    let mut all = base.map(|b| b.layers.clone()).unwrap_or_default();
    all.extend(layers);
    let manifest = manifest(&all, &config_digest, config_size, annotations)?;
    let manifest_bytes = canonical_json(&manifest).map_err(|source| ImageError::Json { what: "manifest", source })?;
    let (manifest_digest, _) =
        store.put(&manifest_bytes).map_err(|source| ImageError::Store { what: "manifest", source })?;

    let p = &settings.platform;
    Ok(Image {
        manifest: manifest_bytes,
        manifest_digest,
        config: config_bytes,
        config_digest,
        layers: all,
        os: p.os.to_string(),
        architecture: p.architecture.to_string(),
        variant: p.variant.map(String::from),
    })
}

/// The base's config (or an empty one) with `settings` applied and `layers` added to its
/// `rootfs.diff_ids` and `history`.
fn image_config(
    base: Option<&BaseImage>,
    layers: &[LayerBlob],
    settings: &ConfigSettings,
) -> Result<ImageConfiguration, ImageError> {
    let mut config = match base {
        Some(b) => {
            check_base(b, settings)?;
            b.config.clone()
        }
        None => ImageConfiguration::default(),
    };
    let p = &settings.platform;
    config.set_created(Some(settings.created.clone()));
    config.set_author(None);
    config.set_os(Os::from(p.os));
    config.set_architecture(Arch::from(p.architecture));
    config.set_variant(p.variant.map(String::from));
    config.set_config(Some(exec_config(config.config().clone().unwrap_or_default(), settings)));

    let mut diff_ids = config.rootfs().diff_ids().clone();
    diff_ids.extend(layers.iter().map(|l| l.diff_id.to_string()));
    config.rootfs_mut().set_diff_ids(diff_ids);
    config.set_history(Some(history(base, layers, settings)?));
    Ok(config)
}

/// The manifest of the config (`config_digest`, `config_size`) and every layer, base's first.
fn manifest(
    all: &[LayerBlob],
    config_digest: &Digest,
    config_size: u64,
    annotations: &BTreeMap<String, String>,
) -> Result<ImageManifest, ImageError> {
    let descriptors = all
        .iter()
        .map(|l| Ok(Descriptor::new(MediaType::from(l.media_type.as_str()), l.size, oci_digest(&l.digest)?)))
        .collect::<Result<Vec<_>, ImageError>>()?;
    let mut manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(MediaType::ImageConfig, config_size, oci_digest(config_digest)?))
        .layers(descriptors)
        .build()
        .map_err(|source| ImageError::Spec { what: "manifest", source })?;
    if !annotations.is_empty() {
        manifest.set_annotations(Some(annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect()));
    }
    Ok(manifest)
}

/// Our digest as oci-spec's.
pub fn oci_digest(d: &Digest) -> Result<oci_spec::image::Digest, ImageError> {
    d.as_str().parse().map_err(|source| ImageError::Spec { what: "digest", source })
}

/// The base must be for the same OS and architecture, and list one layer per diff_id.
fn check_base(base: &BaseImage, settings: &ConfigSettings) -> Result<(), ImageError> {
    let p = &settings.platform;
    let (os, arch) = (base.config.os().to_string(), base.config.architecture().to_string());
    if os != p.os || arch != p.architecture {
        return Err(ImageError::Platform {
            base: base.name.clone(),
            found: format!("{os}/{arch}"),
            wanted: p.to_string(),
        });
    }
    let in_config = base.config.rootfs().diff_ids();
    let in_layers: Vec<String> = base.layers.iter().map(|l| l.diff_id.to_string()).collect();
    if *in_config != in_layers {
        return Err(ImageError::BaseLayers {
            base: base.name.clone(),
            reason: format!(
                "its config lists {} layer diff_ids that do not match its {} layers",
                in_config.len(),
                in_layers.len()
            ),
        });
    }
    Ok(())
}

/// The base's execution parameters with our settings applied.
fn exec_config(mut c: Config, s: &ConfigSettings) -> Config {
    c.set_env(non_empty(merge_env(c.env().as_deref().unwrap_or_default(), &s.env)));
    c.set_entrypoint(non_empty(s.entrypoint.clone()));
    c.set_cmd(non_empty(s.cmd.clone()));
    if s.user.is_some() {
        c.set_user(s.user.clone());
    }
    if s.working_dir.is_some() {
        c.set_working_dir(s.working_dir.clone());
    }
    if s.stop_signal.is_some() {
        c.set_stop_signal(s.stop_signal.clone());
    }
    let ports: BTreeSet<String> = c.exposed_ports().iter().flatten().chain(&s.exposed_ports).cloned().collect();
    c.set_exposed_ports(non_empty(ports.into_iter().collect()));
    if !s.volumes.is_empty() {
        // The base's first, then ours not already there (a base's volumes stay as they were).
        let mut volumes: Vec<String> = c.volumes().clone().unwrap_or_default();
        volumes.extend(s.volumes.iter().filter(|v| !volumes.contains(v)).cloned().collect::<Vec<_>>());
        c.set_volumes(Some(volumes));
    }
    let mut labels: BTreeMap<String, String> =
        c.labels().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
    labels.extend(s.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let labels: HashMap<String, String> = labels.into_iter().collect();
    c.set_labels((!labels.is_empty()).then_some(labels));
    c
}

fn non_empty(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

/// `NAME=VALUE` lines: the base's in order (our value replacing theirs), then our new names.
pub(crate) fn merge_env(base: &[String], ours: &[(String, String)]) -> Vec<String> {
    let name_of = |line: &str| line.split_once('=').map_or(line, |(k, _)| k).to_string();
    let mut merged: Vec<(String, String)> = Vec::new();
    for line in base {
        let name = name_of(line);
        match merged.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = line.clone(),
            None => merged.push((name, line.clone())),
        }
    }
    for (k, v) in ours {
        let line = format!("{k}={v}");
        match merged.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = line,
            None => merged.push((k.clone(), line)),
        }
    }
    merged.into_iter().map(|(_, line)| line).collect()
}

/// The base's history (padded so that every base layer has an entry), then one entry per layer.
fn history(base: Option<&BaseImage>, layers: &[LayerBlob], s: &ConfigSettings) -> Result<Vec<History>, ImageError> {
    let entry = |created_by: String| {
        HistoryBuilder::default()
            .created(s.created.clone())
            .created_by(created_by)
            .build()
            .map_err(|source| ImageError::Spec { what: "history", source })
    };
    let mut out: Vec<History> = Vec::new();
    if let Some(b) = base {
        out = b.config.history().clone().unwrap_or_default();
        let described = out.iter().filter(|h| h.empty_layer() != Some(true)).count();
        for _ in described..b.layers.len() {
            out.push(entry(format!("release-oci: layer of base image {}", b.name))?);
        }
    }
    for l in layers {
        out.push(entry(format!("release-oci: {}", l.name))?);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "assemble_tests.rs"]
mod tests;
