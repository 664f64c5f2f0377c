//! The minimal base of a compile-once release: reused when this machine knows the one of its ELF
//! files, else gathered in the target's builder with the native builder's busybox, in a container
//! started while the native build runs when the build is cold ([`start_ahead`]).

use super::checks::Images;
use crate::builder::cross::{self, gather};
use crate::cancel::Signals;
use crate::minimal::ElfListing;
use crate::ui;
use bollard::Docker;
use std::path::Path;

/// Starts the gathering container of `req` (with the native busybox), to wait for the release;
/// None when there is nothing to start or it did not start (then it starts when needed, and says
/// why it cannot).
pub(super) async fn start_ahead(
    engine: &Docker,
    images: &Images,
    req: Option<&gather::GatherRequest<'_>>,
) -> Option<gather::Started> {
    let mut req = req?.clone();
    let started = async {
        req.native_busybox = cross::native_tools::busybox(&images.native_reader, &images.native).await?;
        gather::start(engine, &req).await
    };
    match started.await {
        Ok(started) => Some(started),
        Err(e) => {
            tracing::debug!(error = %e, "the minimal base's container did not start ahead");
            None
        }
    }
}

/// The minimal base: the one an earlier build made for these ELF files when this machine knows
/// it (nothing runs), else gathered in the target's builder, in the container `early` started
/// ahead when there is one.
pub(super) async fn minimal_base(
    engine: &Docker,
    images: &Images,
    mut req: gather::GatherRequest<'_>,
    known: &[String],
    out: &Path,
    early: &mut Option<gather::Started>,
    signals: &Signals,
) -> anyhow::Result<()> {
    let rel = out.join("rel");
    let (rel, listing) = tokio::task::spawn_blocking(move || ElfListing::of_dir(&rel).map(|l| (rel, l))).await??;
    let digest = listing.digest();
    if known.contains(&digest) {
        let base = out.join("base");
        let text = listing.text().to_vec();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&base)?;
            std::fs::write(base.join("elf"), text)?;
            std::fs::write(base.join("reused"), format!("{digest}\n"))
        })
        .await??;
        ui::detail(format!("minimal base: known for these {} ELF files, nothing gathered", listing.files()));
        return Ok(());
    }
    let task = ui::task(format!("Gathering the minimal base in {} ({})", req.image, req.platform));
    let files = listing.clone();
    let groups = tokio::task::spawn_blocking(move || crate::minimal::elf_groups(&rel, &files));
    let ahead = early.is_some();
    match early.take() {
        Some(started) => {
            req.elf_groups = Some(groups.await?);
            gather::finish(engine, started, &req, out, signals).await?;
        }
        None => {
            let (busybox, groups) =
                tokio::join!(cross::native_tools::busybox(&images.native_reader, &images.native), groups);
            (req.native_busybox, req.elf_groups) = (busybox?, Some(groups?));
            gather::gather(engine, &req, out, signals).await?;
        }
    }
    let when = if ahead { ", in a container started while the release was compiled" } else { "" };
    task.done(format!("{} ELF files{when}", listing.files()));
    Ok(())
}
