//! The conditions of compile-once, each checked before the work it would waste: the engine would
//! emulate the target; the native counterpart of the target's builder image is there, with the
//! same Erlang/OTP and Elixir labels; the project shows no native code; both images' distribution
//! and Erlang/OTP installation (ERTS and every application's version) are the same.

use crate::builder::cross::otp::{self, OtpInstall};
use crate::builder::cross::{self, ImageReader};
use crate::cli::BuildSettings;
use crate::project::Project;
use crate::project::native_code;
use crate::triple::{Arch, Triple};
use bollard::Docker;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const OTP_LABEL: &str = "org.release-oci.otp-version";
const ELIXIR_LABEL: &str = "org.release-oci.elixir-version";

/// Go on with this, or build under emulation for the reason given.
pub(in crate::commands::build) enum Outcome<T> {
    Go(T),
    Fallback(String),
}

/// The native triple, when `engine` would emulate `target` (its machine is another): the
/// engine's `GOARCH` from `/version`, the lighter of the two answers that name it (`/info` also
/// counts containers and images, and reads the storage driver's status).
pub(super) async fn emulated(engine: &Docker, target: &Triple) -> Option<Triple> {
    let version = engine.version().await.ok()?;
    let arch = match version.arch.as_deref()? {
        "x86_64" | "amd64" => Arch::X86_64,
        "aarch64" | "arm64" => Arch::Aarch64,
        _ => return None,
    };
    (arch != target.arch).then(|| Triple { arch, vendor: target.vendor.clone(), libc: target.libc })
}

/// The native builder image of the same distribution as the target's `image`: release-oci's
/// arm64 images are its amd64 ones with `-arm64` added to the tag.
pub(super) fn native_counterpart(image: &str, target: Arch, native: Arch) -> Option<String> {
    match (target, native) {
        (Arch::Aarch64, Arch::X86_64) => image.strip_suffix("-arm64").map(str::to_string),
        (Arch::X86_64, Arch::Aarch64) => image.contains(':').then(|| format!("{image}-arm64")),
        _ => None,
    }
}

/// The two builder images, with a container of each to read files out of.
pub(in crate::commands::build) struct Images {
    pub native: Triple,
    pub native_image: String,
    pub native_image_id: String,
    pub target_image_id: String,
    /// `Erlang/OTP X and Elixir Y`.
    pub versions: String,
    pub native_reader: ImageReader,
    pub target_reader: ImageReader,
    pub target_otp: OtpInstall,
}

impl Images {
    pub async fn remove(self) {
        tokio::join!(self.native_reader.remove(), self.target_reader.remove());
    }
}

/// The builder images, when compile-once can use them for this project.
pub(super) async fn images(
    s: &BuildSettings,
    project: &Project,
    engine: &Docker,
    native: &Triple,
) -> anyhow::Result<Outcome<Images>> {
    let target_image = s.builder_image.as_str();
    let Some(native_image) = native_counterpart(target_image, s.triple.arch, native.arch) else {
        return Ok(Outcome::Fallback(format!("no native builder image is known for {target_image}")));
    };
    let (t, n) = tokio::join!(engine.inspect_image(target_image), engine.inspect_image(&native_image));
    // A target image that is not there is reported by the build under emulation.
    let Ok(t) = t else { return Ok(Outcome::Fallback(format!("the image {target_image} cannot be inspected"))) };
    let Ok(n) = n else {
        return Ok(Outcome::Fallback(format!("the native builder image {native_image} is not in the engine")));
    };
    let (otp, elixir) = match same_versions(&t, &n, target_image, &native_image) {
        Ok(versions) => versions,
        Err(why) => return Ok(Outcome::Fallback(why)),
    };
    if let Some(why) = native_code(project).await? {
        return Ok(Outcome::Fallback(why));
    }
    let native_reader = ImageReader::create(engine, &native_image, &native.platform().to_string()).await?;
    let target_reader = match ImageReader::create(engine, target_image, &s.triple.platform().to_string()).await {
        Ok(r) => r,
        Err(e) => {
            native_reader.remove().await;
            return Err(e.into());
        }
    };
    let mut images = Images {
        native: native.clone(),
        native_image,
        native_image_id: n.id.unwrap_or_default(),
        target_image_id: t.id.unwrap_or_default(),
        versions: format!("Erlang/OTP {otp} and Elixir {elixir}"),
        native_reader,
        target_reader,
        target_otp: OtpInstall {
            root: String::new(),
            otp_version: otp,
            erts_version: String::new(),
            apps: Default::default(),
        },
    };
    match installations(&images).await {
        Ok(Outcome::Go(otp)) => {
            images.target_otp = otp;
            Ok(Outcome::Go(images))
        }
        other => {
            images.remove().await;
            match other? {
                Outcome::Fallback(why) => Ok(Outcome::Fallback(why)),
                Outcome::Go(_) => unreachable!("handled above"),
            }
        }
    }
}

/// The Erlang/OTP and Elixir versions both images' labels name, when they are the same.
fn same_versions(
    t: &bollard::models::ImageInspect,
    n: &bollard::models::ImageInspect,
    target_image: &str,
    native_image: &str,
) -> Result<(String, String), String> {
    let label = |i: &bollard::models::ImageInspect, k: &str| {
        i.config.as_ref().and_then(|c| c.labels.as_ref()).and_then(|l| l.get(k)).cloned().unwrap_or_default()
    };
    let (otp, elixir) = (label(t, OTP_LABEL), label(t, ELIXIR_LABEL));
    if otp.is_empty() || elixir.is_empty() {
        return Err(format!("{target_image} has no {OTP_LABEL} and {ELIXIR_LABEL} labels"));
    }
    if (label(n, OTP_LABEL), label(n, ELIXIR_LABEL)) != (otp.clone(), elixir.clone()) {
        let theirs = format!("Erlang/OTP {} and Elixir {}", label(n, OTP_LABEL), label(n, ELIXIR_LABEL));
        return Err(format!("{native_image} has {theirs}, {target_image} Erlang/OTP {otp} and Elixir {elixir}"));
    }
    Ok((otp, elixir))
}

/// Why the project's sources show native code (its first signs), or None.
async fn native_code(project: &Project) -> anyhow::Result<Option<String>> {
    let p = project.clone();
    let signs = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        Ok(native_code::scan_project(&p.root, &p.source_files()?))
    })
    .await??;
    if signs.is_empty() {
        return Ok(None);
    }
    let shown: Vec<String> = signs.iter().take(3).map(ToString::to_string).collect();
    let more = if signs.len() > 3 { format!(" and {} more", signs.len() - 3) } else { String::new() };
    Ok(Some(format!("the project has native code ({}{more})", shown.join("; "))))
}

/// Both images' distribution and Erlang/OTP installation, which must be the same: the target's.
async fn installations(images: &Images) -> anyhow::Result<Outcome<OtpInstall>> {
    let (n, t) = (&images.native_reader, &images.target_reader);
    let (dn, dt) = tokio::join!(distribution(n), distribution(t));
    let (dn, dt) = (dn?, dt?);
    if dn != dt {
        return Ok(Outcome::Fallback(format!("{} is {dn}, {} is {dt}", n.image, t.image)));
    }
    let mut found = None;
    for root in otp::OTP_ROOTS {
        if let Some(tar) = t.download(&format!("{root}/releases")).await? {
            found = Some((root, tar));
            break;
        }
    }
    let Some((root, target_tar)) = found else {
        return Ok(Outcome::Fallback(format!("no Erlang/OTP in {} ({})", t.image, otp::OTP_ROOTS.join(", "))));
    };
    let Some(native_tar) = n.download(&format!("{root}/releases")).await? else {
        return Ok(Outcome::Fallback(format!("{} has no {root}/releases", n.image)));
    };
    let parse = |tar: &[u8], image: &str| otp::parse_releases(root, tar).map_err(|e| format!("{image}: {e}"));
    let (native, target) = match (parse(&native_tar, &n.image), parse(&target_tar, &t.image)) {
        (Ok(n), Ok(t)) => (n, t),
        (Err(why), _) | (_, Err(why)) => return Ok(Outcome::Fallback(why)),
    };
    Ok(match otp::difference(&native, &target) {
        Some(why) => Outcome::Fallback(why),
        None => Outcome::Go(target),
    })
}

/// `ID VERSION_ID` of the image's os-release (`debian 12`).
async fn distribution(reader: &ImageReader) -> anyhow::Result<String> {
    for path in ["/usr/lib/os-release", "/etc/os-release"] {
        let Some(tar) = reader.download(path).await? else { continue };
        let Some(bytes) = cross::first_file(&tar)? else { continue };
        return Ok(os_release_id(&String::from_utf8_lossy(&bytes)));
    }
    Ok("an unknown distribution (no os-release)".to_string())
}

pub(super) fn os_release_id(text: &str) -> String {
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    format!("{} {}", field("ID"), field("VERSION_ID")).trim().to_string()
}

/// The directories of the releases to take from the target's Erlang/OTP (relative to a release:
/// `erts-VSN` first, then `lib/NAME-VSN`), when the releases' ERTS is the target's.
pub(super) fn release_dirs(
    releases: &[PathBuf],
    project_apps: &BTreeSet<String>,
    otp: &OtpInstall,
) -> anyhow::Result<Outcome<Vec<String>>> {
    let mut apps = BTreeSet::new();
    for release in releases {
        let names = |dir: &Path| -> anyhow::Result<Vec<String>> {
            let mut v: Vec<String> = std::fs::read_dir(dir)?
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            Ok(v)
        };
        let erts: Vec<String> = names(release)?.into_iter().filter(|n| n.starts_with("erts-")).collect();
        if erts != [format!("erts-{}", otp.erts_version)] {
            let has = if erts.is_empty() { "no ERTS".to_string() } else { erts.join(", ") };
            return Ok(Outcome::Fallback(format!(
                "the release has {has}, the target's builder ERTS {}",
                otp.erts_version
            )));
        }
        match otp::otp_dirs(&names(&release.join("lib"))?, project_apps, otp) {
            Ok(dirs) => apps.extend(dirs),
            Err(why) => return Ok(Outcome::Fallback(why)),
        }
    }
    let mut dirs = vec![format!("erts-{}", otp.erts_version)];
    dirs.extend(apps.into_iter().map(|a| format!("lib/{a}")));
    Ok(Outcome::Go(dirs))
}

/// Downloads `root/DIR` of each of `dirs` from the image into `tree/DIR`, leaving out those
/// already there ([`cross::image_files`]), all at once (one at a time took 0.1 s each); a
/// directory the image does not have is the fallback's reason. Returns that reason and how many
/// were read.
pub(super) async fn download(
    reader: &ImageReader,
    root: &str,
    dirs: &[String],
    tree: &Path,
) -> anyhow::Result<(Option<String>, usize)> {
    let missing = dirs.iter().filter(|dir| !tree.join(dir).is_dir()).map(|dir| async move {
        let Some(tar) = reader.download(&format!("{root}/{dir}")).await? else {
            return anyhow::Ok(Some(format!("{} has no {root}/{dir}", reader.image)));
        };
        let (tree, dir) = (tree.to_path_buf(), dir.clone());
        tokio::task::spawn_blocking(move || cross::image_files::put(&tree, &dir, &tar)).await??;
        Ok(None)
    });
    let results = futures_util::future::try_join_all(missing).await?;
    let read = results.iter().filter(|r| r.is_none()).count();
    Ok((results.into_iter().flatten().next(), read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_native_counterpart_follows_the_arm64_tag_convention() {
        let n = |i, t, h| native_counterpart(i, t, h);
        assert_eq!(
            n("release-oci/builder:debian-bookworm-arm64", Arch::Aarch64, Arch::X86_64).as_deref(),
            Some("release-oci/builder:debian-bookworm")
        );
        assert_eq!(
            n("release-oci/builder:debian-trixie-arm64", Arch::Aarch64, Arch::X86_64).as_deref(),
            Some("release-oci/builder:debian-trixie")
        );
        assert_eq!(n("ghcr.io/team/builder:1", Arch::Aarch64, Arch::X86_64), None);
        assert_eq!(
            n("release-oci/builder:debian-bookworm", Arch::X86_64, Arch::Aarch64).as_deref(),
            Some("release-oci/builder:debian-bookworm-arm64")
        );
        assert_eq!(n("x", Arch::X86_64, Arch::X86_64), None);
    }

    #[test]
    fn os_release_gives_the_distribution_and_its_version() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n";
        assert_eq!(os_release_id(text), "debian 12");
    }

    #[test]
    fn the_release_must_carry_the_targets_erts() {
        let dir = tempfile::tempdir().unwrap();
        let rel = dir.path().join("rel");
        for d in ["erts-13.1.5/bin", "lib/kernel-8.5.3", "lib/hello-0.1.0", "lib/elixir-1.14.0", "releases"] {
            std::fs::create_dir_all(rel.join(d)).unwrap();
        }
        let otp = OtpInstall {
            root: "/usr/lib/erlang".into(),
            otp_version: "25.2.3".into(),
            erts_version: "13.1.5".into(),
            apps: [("kernel".to_string(), "8.5.3".to_string())].into(),
        };
        let own: BTreeSet<String> = ["hello".to_string()].into();
        match release_dirs(std::slice::from_ref(&rel), &own, &otp).unwrap() {
            Outcome::Go(dirs) => assert_eq!(dirs, ["erts-13.1.5", "lib/kernel-8.5.3"]),
            Outcome::Fallback(why) => panic!("{why}"),
        }
        let other = OtpInstall { erts_version: "13.2".into(), ..otp };
        match release_dirs(&[rel], &own, &other).unwrap() {
            Outcome::Fallback(why) => assert_eq!(why, "the release has erts-13.1.5, the target's builder ERTS 13.2"),
            Outcome::Go(_) => panic!("another ERTS must fall back"),
        }
    }
}
