//! Compile once, assemble per platform (`--cross-compile auto`, docs/multi-platform.md): for a
//! target the engine would emulate (aarch64 on an x86_64 engine), a project without native code is
//! compiled and its release assembled in the native builder of the same distribution, Erlang/OTP
//! and Elixir, and only ERTS and the Erlang/OTP applications' files are taken from the target's
//! builder image, read out of it without running it. The release is then checked for ELF files of
//! another machine, and its minimal base gathered in the target's builder (or reused). Whenever a
//! condition does not hold, the build goes on under emulation as before, and the log says why.

mod base;
mod checks;

use crate::builder::cross::{self, gather, splice};
use crate::builder::{self, Assembled, BuildRequest, PullPolicy};
use crate::cancel::Signals;
use crate::cli::{BuildSettings, CrossCompile};
use crate::prebuilt;
use crate::project::Project;
use crate::triple::Triple;
use crate::ui;
use bollard::Docker;
use checks::{Images, Outcome};
use std::path::{Path, PathBuf};

/// The release assembled the compile-once way, or None: then the caller builds in the target's
/// builder (the log has said why, when the target is emulated). `engine` runs both the native build
/// and the reading of the target's image: it is the engine of the target's platform, on which that
/// platform would be emulated.
pub(super) async fn assemble(
    s: &BuildSettings,
    project: &Project,
    engine: &Docker,
    req: &BuildRequest,
    signals: &mut Signals,
) -> anyhow::Result<Option<Assembled>> {
    let Some(native) = checks::emulated(engine, &s.triple).await else { return Ok(None) };
    if s.cross_compile == CrossCompile::Never {
        ui::step(format!("Building under emulation ({}): --cross-compile never", s.triple.platform()));
        return Ok(None);
    }
    let images = match checks::images(s, project, engine, &native).await? {
        Outcome::Go(images) => images,
        Outcome::Fallback(why) => return Ok(fall_back(s, &why)),
    };
    let result = compile_once(s, engine, req, &images, signals).await;
    images.remove().await;
    match result? {
        Outcome::Go(assembled) => Ok(Some(assembled)),
        Outcome::Fallback(why) => Ok(fall_back(s, &why)),
    }
}

fn fall_back(s: &BuildSettings, why: &str) -> Option<Assembled> {
    ui::step(format!(
        "compile-once not used: {why}; building everything in {} under emulation ({})",
        s.builder_image,
        s.triple.platform()
    ));
    None
}

/// The native build, then the release made the target's.
async fn compile_once(
    s: &BuildSettings,
    engine: &Docker,
    req: &BuildRequest,
    images: &Images,
    signals: &mut Signals,
) -> anyhow::Result<Outcome<Assembled>> {
    ui::step(format!(
        "Assembling the release in a builder container ({}, {}) for {}, compile-once: no native code in the \
         project, {} on both builders; ERTS and Erlang/OTP from {}, read without running it",
        images.native_image,
        images.native.platform(),
        s.triple.platform(),
        images.versions,
        s.builder_image,
    ));
    let mut native_req = req.clone();
    native_req.triple = images.native.clone();
    native_req.builder_image = images.native_image.clone();
    native_req.pull = PullPolicy::Never;
    native_req.minimal_base = None;
    let gathering = req.minimal_base.as_ref().map(|opts| gather::GatherRequest {
        image: &s.builder_image,
        platform: s.triple.platform().to_string(),
        env: opts.env(),
        limits: s.limits,
        timeout: Some(s.timeout),
        native_busybox: None,
        elf_groups: None,
    });
    // A cold build (no base known for these settings) will gather: its container starts now.
    let ahead = gathering.as_ref().filter(|_| req.minimal_base.as_ref().is_some_and(|o| o.known.is_empty()));
    let (assembled, mut early) =
        tokio::join!(builder::docker::assemble(engine, &native_req, signals), base::start_ahead(engine, images, ahead));
    let result = match assembled {
        Ok(assembled) => target_side(s, engine, req, images, assembled, (gathering, &mut early), signals).await,
        Err(e) => Err(e.into()),
    };
    if let Some(started) = early.take() {
        gather::abandon(engine, started).await;
    }
    result
}

/// The native build's release made the target's, with its tini and minimal base.
async fn target_side(
    s: &BuildSettings,
    engine: &Docker,
    req: &BuildRequest,
    images: &Images,
    mut assembled: Assembled,
    (gathering, early): (Option<gather::GatherRequest<'_>>, &mut Option<gather::Started>),
    signals: &Signals,
) -> anyhow::Result<Outcome<Assembled>> {
    let out = out_dir(&assembled)?;
    let (made, tini) = tokio::join!(make_target_release(s, &assembled, images, &out), tini(images, &s.triple, &out));
    if let Outcome::Fallback(why) = made? {
        return Ok(Outcome::Fallback(why));
    }
    tini?;
    assembled.tini = out.join("tini");
    if let (Some(opts), Some(gathering)) = (&req.minimal_base, gathering) {
        base::minimal_base(engine, images, gathering, &opts.known, &out, early, signals).await?;
        assembled.base_dir = Some(out.join("base"));
    }
    assembled.builder_image_id = Some(images.target_image_id.clone());
    Ok(Outcome::Go(assembled))
}

/// The builder's OUT on the host: where `tini` and `rel/` are.
fn out_dir(assembled: &Assembled) -> anyhow::Result<PathBuf> {
    let out = assembled.tini.parent().map(Path::to_path_buf);
    out.filter(|o| o.join("rel").is_dir())
        .ok_or_else(|| anyhow::anyhow!("the native builder's output has no rel/ beside {}", assembled.tini.display()))
}

/// Each release's ERTS and Erlang/OTP files become the target image's; then no ELF file of
/// another machine may be left (a dependency's NIF the sources did not show).
async fn make_target_release(
    s: &BuildSettings,
    assembled: &Assembled,
    images: &Images,
    out: &Path,
) -> anyhow::Result<Outcome<()>> {
    let project_apps = assembled.own_apps.iter().chain(&assembled.dep_apps).cloned().collect();
    let releases: Vec<PathBuf> = assembled.releases.iter().map(|r| r.dir.clone()).collect();
    let dirs = match checks::release_dirs(&releases, &project_apps, &images.target_otp)? {
        Outcome::Go(dirs) => dirs,
        Outcome::Fallback(why) => return Ok(Outcome::Fallback(why)),
    };
    let (native_tree, target_tree, scratch) = trees(s, images, out);
    let task =
        ui::task(format!("Reading ERTS and {} Erlang/OTP applications out of the builder images", dirs.len() - 1));
    let (n, t) = tokio::join!(
        checks::download(&images.native_reader, &images.target_otp.root, &dirs, &native_tree),
        checks::download(&images.target_reader, &images.target_otp.root, &dirs, &target_tree)
    );
    let ((n, n_read), (t, t_read)) = (n?, t?);
    if let Some(missing) = n.or(t) {
        return Ok(Outcome::Fallback(missing));
    }
    let (total_dirs, kept) = (2 * dirs.len(), 2 * dirs.len() - n_read - t_read);
    let triple = s.triple.clone();
    let spliced = tokio::task::spawn_blocking(move || {
        let spliced = splice_releases(&releases, &dirs, (&native_tree, &target_tree), &triple);
        if let Some(scratch) = scratch {
            let _ = std::fs::remove_dir_all(scratch);
        }
        spliced
    })
    .await?;
    match spliced {
        Ok(done) => {
            task.done(format!(
                "{} files the target's ({}), {} kept (changed or made by mix release); no ELF file of another machine; \
                 {kept} of {total_dirs} directories read before (cache)",
                done.replaced,
                ui::bytes(done.bytes),
                done.kept
            ));
            Ok(Outcome::Go(()))
        }
        Err(why) => {
            task.done("not usable");
            Ok(Outcome::Fallback(why))
        }
    }
}

/// Splices each release (`dirs` of it from the `(native, target)` trees), then checks it has no
/// ELF file of another machine; the fallback's reason when either fails.
fn splice_releases(
    releases: &[PathBuf],
    dirs: &[String],
    (native, target): (&Path, &Path),
    triple: &Triple,
) -> Result<splice::Spliced, String> {
    let mut total = splice::Spliced::default();
    for release in releases {
        let trees = splice::Trees { release, native, target };
        let done = splice::splice(&trees, dirs).map_err(|e| format!("the release cannot be made the target's: {e}"))?;
        total.replaced += done.replaced;
        total.kept += done.kept;
        total.bytes += done.bytes;
        prebuilt::elf::check_release(release, triple)
            .map_err(|e| format!("the release has native code the sources did not show: {e}"))?;
    }
    Ok(total)
}

/// Where the native and the target image's directories go: kept by image id in the cache
/// directory ([`cross::image_files`]), else in a scratch directory beside `out` (the third value,
/// removed after splicing).
fn trees(s: &BuildSettings, images: &Images, out: &Path) -> (PathBuf, PathBuf, Option<PathBuf>) {
    let kept = |id: &str| cross::image_files::tree(&s.cache_dir, id);
    match (kept(&images.native_image_id), kept(&images.target_image_id)) {
        (Some(n), Some(t)) => (n, t, None),
        _ => {
            let scratch = out.with_file_name("compile-once");
            (scratch.join("native"), scratch.join("target"), Some(scratch))
        }
    }
}

/// The target image's static tini in `out/tini` (the native build put its own there).
async fn tini(images: &Images, triple: &Triple, out: &Path) -> anyhow::Result<()> {
    for candidate in prebuilt::tini::CANDIDATES {
        let Some(tar) = images.target_reader.download(candidate).await? else { continue };
        let Some(bytes) = cross::first_file(&tar)? else { continue };
        let (path, triple) = (out.join("tini"), triple.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&path, &bytes)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            Ok(prebuilt::elf::check_file(&path, &triple)?)
        })
        .await??;
        return Ok(());
    }
    anyhow::bail!(
        "the target's builder image {} has no tini (looked for {})",
        images.target_reader.image,
        prebuilt::tini::CANDIDATES.join(", ")
    )
}
