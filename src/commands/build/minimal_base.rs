//! The build's side of the minimal base (`--base minimal`) and of `--slim-erts`: what to ask the
//! builder for, leaving ERTS tools out, making the base from what the builder gathered, and
//! saying so in the image's annotations and labels.

use crate::base::BaseRef;
use crate::builder::Assembled;
use crate::cli::BuildSettings;
use crate::image::BaseImage;
use crate::layer::TarOptions;
use crate::minimal::{self, GatherOptions};
use crate::release::Release;
use crate::store::BlobStore;
use crate::{time, ui};
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};

/// What the builder must gather (None when the base is not the minimal one).
pub(super) fn gather_options(s: &BuildSettings) -> Option<GatherOptions> {
    (s.base == BaseRef::Minimal).then_some(GatherOptions { tzdata: s.tzdata })
}

/// `--slim-erts`: removes the ERTS tools from every release (before the base is made, so that
/// libraries only they need stay out too) and records what was left out in the
/// [`minimal::SLIM_LABEL`] label.
pub(super) fn slim_erts(mut s: BuildSettings, releases: &[Release]) -> anyhow::Result<BuildSettings> {
    if !s.slim_erts {
        return Ok(s);
    }
    // A release directory given with --from-release is the user's: nothing is removed from it,
    // the layers leave the paths out instead ([`leave_out_slimmed`]).
    let in_place = s.from_release.as_ref().is_some_and(|p| p.is_dir());
    let mut removed = BTreeSet::new();
    for release in releases {
        let vsn = release.erts_version.as_deref();
        let gone = match in_place {
            true => minimal::slim_erts_paths(&release.root, vsn),
            false => minimal::slim_erts(&release.root, vsn)
                .with_context(|| format!("--slim-erts on release {}", release.name))?,
        };
        removed.extend(gone);
    }
    ui::detail(if removed.is_empty() {
        "--slim-erts: nothing to leave out".to_string()
    } else {
        format!("--slim-erts: left out {}", removed.iter().cloned().collect::<Vec<_>>().join(", "))
    });
    let value = removed.into_iter().collect::<Vec<_>>().join(" ");
    s.labels.entry(minimal::SLIM_LABEL.to_string()).or_insert(value);
    Ok(s)
}

/// The layer entries of `--slim-erts`'s paths that are still in the release (one used in place)
/// are left out of the layers.
pub(super) fn leave_out_slimmed(specs: &mut [crate::layer::LayerSpec], release: &Release, app_dir: &str) {
    let paths: Vec<String> = minimal::slim_erts_paths(&release.root, release.erts_version.as_deref())
        .into_iter()
        .map(|p| format!("{app_dir}/{p}"))
        .collect();
    for spec in specs {
        spec.entries.retain(|e| !paths.iter().any(|p| e.path == *p || e.path.starts_with(&format!("{p}/"))));
    }
}

/// The minimal base, made from the files the builder gathered beside the release(s).
pub(super) async fn make_base(
    s: &BuildSettings,
    assembled: &Assembled,
    store: &BlobStore,
) -> anyhow::Result<BaseImage> {
    let base_dir = assembled.base_dir.clone().context(
        "the builder gathered no files for the minimal base (a release built elsewhere?): use --base debian or another image",
    )?;
    // The builder's OUT/rel: the release, or one directory per release.
    let rel_dir = base_dir.with_file_name("rel");
    let (platform, created, opts, store) =
        (s.triple.platform(), time::rfc3339(s.epoch), TarOptions { mtime: s.epoch }, store.clone());
    let compression = s.compression;
    let base = tokio::task::spawn_blocking(move || {
        minimal::build_with(&base_dir, &rel_dir, &platform, &created, &opts, compression, &store)
    })
    .await??;
    ui::detail(format!(
        "minimal base: {} compressed, made from the builder's files",
        ui::bytes(base.layers.iter().map(|l| l.size).sum())
    ));
    Ok(base)
}

/// The annotations naming the base: `org.release-oci.base=minimal` for the minimal base (there is
/// no image to name), else `org.opencontainers.image.base.name` and `.digest`.
pub(super) fn base_annotations(base: &BaseImage) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if base.name == minimal::BASE_NAME && base.digest.is_none() {
        out.insert(minimal::BASE_ANNOTATION.to_string(), minimal::BASE_NAME.to_string());
        return out;
    }
    out.insert("org.opencontainers.image.base.name".to_string(), base.name.clone());
    if let Some(d) = &base.digest {
        out.insert("org.opencontainers.image.base.digest".to_string(), d.to_string());
    }
    out
}
