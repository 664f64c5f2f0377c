//! `release-oci upgrade CONTAINER --from-image IMAGE [--rollback]`: the upgrade package of IMAGE
//! (made by `build --upgrade-from`) applied to the release running in CONTAINER, without
//! restarting it; or, with `--rollback`, the release it ran before installed again. Prints the
//! version now permanent. `--package-out FILE` and `--print-script` touch no container: they give
//! what a pod needs (`kubectl cp`, `kubectl exec`). See docs/hot-upgrades.md.

use crate::cli::UpgradeSettings;
use crate::store::BlobStore;
use crate::ui;
use crate::upgrade::artifact::UpgradeArtifact;
use crate::upgrade::{self, apply};
use anyhow::Context;

pub async fn run(s: UpgradeSettings) -> anyhow::Result<String> {
    let docker = match &s.container {
        Some(_) => Some(crate::builder::docker::connect().await?),
        None => None,
    };
    let running = match (&docker, &s.container) {
        (Some(d), Some(c)) => Some(apply::inspect(d, c).await?),
        _ => None,
    };
    let store = BlobStore::open(&s.cache_dir).with_context(|| format!("blob cache {}", s.cache_dir.display()))?;
    let package = match &s.from_image {
        Some(image) => {
            let task = ui::task(format!("Finding the upgrade package of {image}"));
            let engine = match (&docker, image) {
                (None, upgrade::ImageRef::Engine(_)) => Some(crate::builder::docker::connect().await?),
                _ => None,
            };
            let a = upgrade::find_package(image, docker.as_ref().or(engine.as_ref()), &store, &s.registry).await?;
            task.done(format!("{} {} -> {} ({})", a.release(), a.from_version(), a.to_version(), a.digest));
            Some(a)
        }
        None => None,
    };
    let op = operation(package.as_ref(), s.rollback)?;
    let (Some(docker), Some(running)) = (docker, running) else {
        return offline(&s, package.as_ref(), &op, &store);
    };
    if let (apply::Op::Upgrade { .. }, Some(a)) = (&op, &package) {
        let bytes = upgrade::artifact::package_bytes(&store, a)?;
        ui::step(format!("Putting {} into {}:{}/releases", a.file_name, running.name, running.root));
        apply::upload(&docker, &running, &a.file_name, &bytes).await?;
    }
    let what = match &op {
        apply::Op::Upgrade { from, to, .. } => {
            format!("Upgrading {} from {from} to {to} (release_handler)", running.name)
        }
        apply::Op::Rollback { to: Some(to) } => format!("Rolling {} back to {to} (release_handler)", running.name),
        apply::Op::Rollback { to: None } => format!("Rolling {} back to its earlier release", running.name),
    };
    let task = ui::task(what);
    let outcome = apply::run(&docker, &running, &op).await?;
    let releases: Vec<String> = outcome.releases.iter().map(|(v, st)| format!("{v} {st}")).collect();
    task.done(if outcome.already {
        format!("{} was already permanent", outcome.permanent)
    } else {
        format!("{} permanent; releases: {}", outcome.permanent, releases.join(", "))
    });
    Ok(outcome.permanent)
}

/// What to do in the node: the package's upgrade, or a rollback (to its `from` version).
fn operation(package: Option<&UpgradeArtifact>, rollback: bool) -> anyhow::Result<apply::Op> {
    Ok(match (package, rollback) {
        (Some(a), true) => apply::Op::Rollback { to: Some(a.from_version().to_string()) },
        (None, true) => apply::Op::Rollback { to: None },
        (Some(a), false) => apply::Op::Upgrade {
            name: a.file_name.trim_end_matches(".tar.gz").to_string(),
            from: a.from_version().to_string(),
            to: a.to_version().to_string(),
        },
        (None, false) => anyhow::bail!("--from-image names the image to upgrade to"),
    })
}

/// `--package-out`, `--print-script`: the package written to a file, the node's code printed.
fn offline(
    s: &UpgradeSettings,
    package: Option<&UpgradeArtifact>,
    op: &apply::Op,
    store: &BlobStore,
) -> anyhow::Result<String> {
    if let (Some(path), Some(a)) = (&s.package_out, package) {
        let bytes = upgrade::artifact::package_bytes(store, a)?;
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
        ui::step(format!(
            "Wrote {} ({}): copy it to /{}/releases/{} in the pod",
            path.display(),
            ui::bytes(a.package_size),
            crate::plan::hot::HOT_ROOT,
            a.file_name
        ));
    }
    Ok(match s.print_script {
        true => apply::script(op, &format!("/{}", crate::plan::hot::HOT_ROOT)).trim_end().to_string(),
        false => package.map(|a| a.to_version().to_string()).unwrap_or_default(),
    })
}
