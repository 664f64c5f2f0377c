//! Hot upgrades (docs/hot-upgrades.md): `build`'s `--hot-upgrades`, `--upgrade-from` and
//! `--upgrade-deps` (and their `release-oci.toml` keys), and `release-oci upgrade`.

use crate::upgrade::ImageRef;
use anyhow::{Context, bail};
use std::path::PathBuf;

/// `build`'s hot-upgrade flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HotUpgradeArgs {
    /// Build the image for hot upgrades: it declares a volume at /var/lib/release-oci where the
    /// release root lives while it runs (so release_handler can write under a read-only root),
    /// carries releases/RELEASES, and needs :sasl in the release. See docs/hot-upgrades.md.
    #[arg(long)]
    pub hot_upgrades: bool,
    /// Also make the upgrade package from the release in this deployed image (by digest:
    /// oci:DIR@sha256:..., HOST/REPO@sha256:..., or an image of the local engine) to the one
    /// built, as an OCI artifact referring to the new image; implies --hot-upgrades. Refused,
    /// saying why, when a hot upgrade cannot be made (then roll out).
    #[arg(long, value_name = "IMAGE")]
    pub upgrade_from: Option<String>,
    /// With --upgrade-from: dependencies may change too (their appups drafted or their own).
    #[arg(long)]
    pub upgrade_deps: bool,
}

/// The hot-upgrade options, typed, before defaults (flags over the file).
#[derive(Debug, Clone, Default)]
pub struct HotUpgradeOptions {
    pub hot_upgrades: bool,
    pub upgrade_from: Option<ImageRef>,
    pub upgrade_deps: bool,
}

/// What a build does for hot upgrades.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HotUpgradeSettings {
    /// The image is built for hot upgrades (`--hot-upgrades`, or implied by `--upgrade-from`).
    pub hot_upgrades: bool,
    /// The deployed image to make the upgrade package from.
    pub from: Option<ImageRef>,
    pub upgrade_deps: bool,
}

impl HotUpgradeArgs {
    pub(super) fn options(self) -> anyhow::Result<HotUpgradeOptions> {
        let HotUpgradeArgs { hot_upgrades, upgrade_from, upgrade_deps } = self;
        let upgrade_from =
            upgrade_from.map(|r| r.parse().with_context(|| format!("--upgrade-from {r:?}"))).transpose()?;
        Ok(HotUpgradeOptions { hot_upgrades, upgrade_from, upgrade_deps })
    }
}

impl HotUpgradeOptions {
    /// From `release-oci.toml`: `hot_upgrades`, `upgrade_from` (an `oci:` path relative to the
    /// file's directory), `upgrade_deps`.
    pub(super) fn from_file(
        hot_upgrades: Option<bool>,
        upgrade_from: Option<String>,
        upgrade_deps: Option<bool>,
        dir: &std::path::Path,
    ) -> anyhow::Result<HotUpgradeOptions> {
        let upgrade_from = upgrade_from
            .map(|r| {
                let parsed: ImageRef = r.parse().with_context(|| format!("upgrade_from = {r:?}"))?;
                Ok::<_, anyhow::Error>(match parsed {
                    ImageRef::Layout { dir: d, tag, digest } if d.is_relative() => {
                        ImageRef::Layout { dir: dir.join(d), tag, digest }
                    }
                    other => other,
                })
            })
            .transpose()?;
        Ok(HotUpgradeOptions {
            hot_upgrades: hot_upgrades == Some(true),
            upgrade_from,
            upgrade_deps: upgrade_deps == Some(true),
        })
    }

    /// The flags (`self`) over the file's.
    pub(super) fn over(self, file: HotUpgradeOptions) -> HotUpgradeOptions {
        let HotUpgradeOptions { hot_upgrades, upgrade_from, upgrade_deps } = self;
        HotUpgradeOptions {
            hot_upgrades: hot_upgrades || file.hot_upgrades,
            upgrade_from: upgrade_from.or(file.upgrade_from),
            upgrade_deps: upgrade_deps || file.upgrade_deps,
        }
    }

    /// The settings, checked against the build's shape: one platform, one release.
    pub(super) fn settings(self, platforms: usize, release: Option<&str>) -> anyhow::Result<HotUpgradeSettings> {
        let HotUpgradeOptions { hot_upgrades, upgrade_from, upgrade_deps } = self;
        if upgrade_deps && upgrade_from.is_none() {
            bail!("--upgrade-deps goes with --upgrade-from: it lets the upgrade package change dependencies");
        }
        if upgrade_from.is_some() && platforms > 1 {
            bail!("--upgrade-from makes the upgrade package of one platform's image: build one --triple");
        }
        if upgrade_from.is_some() && release == Some("all") {
            bail!("--upgrade-from makes the upgrade package of one release: name it with --release NAME");
        }
        Ok(HotUpgradeSettings {
            hot_upgrades: hot_upgrades || upgrade_from.is_some(),
            from: upgrade_from,
            upgrade_deps,
        })
    }
}

/// `release-oci upgrade`.
#[derive(Debug, clap::Args)]
pub struct UpgradeArgs {
    /// The running container (name or id) of an image built with --hot-upgrades. For a
    /// Kubernetes pod, see --package-out and --print-script (docs/hot-upgrades.md).
    #[arg(required_unless_present_any = ["package_out", "print_script"])]
    pub container: Option<String>,
    /// The new image, whose upgrade package `build --upgrade-from` made: oci:DIR[:TAG],
    /// oci:DIR@sha256:..., HOST/REPO@sha256:... (its referrers), or an image of the local engine
    /// built on this machine (the blob store recorded its package). With --rollback, optional: it
    /// names the version to go back to.
    #[arg(long, value_name = "IMAGE", required_unless_present = "rollback")]
    pub from_image: Option<String>,
    /// Go back to the release the container ran before (release_handler's downgrade, through the
    /// relup's down instructions): `code_change({down, Vsn}, ...)` converts the state back.
    #[arg(long)]
    pub rollback: bool,
    /// Touch no container: write the upgrade package (NAME-VSN.tar.gz) to FILE, to put into a
    /// pod's /var/lib/release-oci/root/releases/ (`kubectl exec -i POD -- sh -c 'cat >...'`).
    #[arg(long, value_name = "FILE")]
    pub package_out: Option<PathBuf>,
    /// Touch no container: print the Elixir code that `release-oci-entry rpc` runs in the node
    /// (release_handler's calls, with this package's versions), for `kubectl exec POD --
    /// /usr/local/bin/release-oci-entry rpc "$(cat FILE)"`.
    #[arg(long)]
    pub print_script: bool,
    /// Blob cache directory (default: $RELEASE_OCI_CACHE, else ~/.cache/release-oci).
    #[arg(long, env = "RELEASE_OCI_CACHE", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

/// `release-oci upgrade`'s settings.
#[derive(Debug, Clone)]
pub struct UpgradeSettings {
    /// None with `--package-out` or `--print-script` alone.
    pub container: Option<String>,
    pub from_image: Option<ImageRef>,
    pub rollback: bool,
    pub package_out: Option<PathBuf>,
    pub print_script: bool,
    pub cache_dir: PathBuf,
    pub registry: crate::registry::RegistryOptions,
}

impl UpgradeArgs {
    pub fn validate(self) -> anyhow::Result<UpgradeSettings> {
        let UpgradeArgs { container, from_image, rollback, package_out, print_script, cache_dir, registry } = self;
        if (package_out.is_some() || print_script) && container.is_some() {
            bail!("--package-out and --print-script touch no container: leave out {}", container.unwrap_or_default());
        }
        if package_out.is_some() && from_image.is_none() {
            bail!("--package-out needs --from-image: the image whose package to write");
        }
        let from_image = from_image.map(|r| r.parse().with_context(|| format!("--from-image {r:?}"))).transpose()?;
        let login = match &from_image {
            Some(ImageRef::Registry(r)) => Some(r.registry.clone()),
            _ => None,
        };
        Ok(UpgradeSettings {
            container,
            from_image,
            rollback,
            package_out,
            print_script,
            cache_dir: cache_dir.unwrap_or_else(crate::store::BlobStore::default_root),
            registry: registry.options(login.as_deref())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_from_implies_hot_upgrades_and_upgrade_deps_needs_it() {
        let o = HotUpgradeArgs { upgrade_from: Some("oci:/tmp/x:1".into()), ..Default::default() }.options().unwrap();
        let s = o.settings(0, None).unwrap();
        assert!(s.hot_upgrades && s.from.is_some());
        let o = HotUpgradeArgs { upgrade_deps: true, ..Default::default() }.options().unwrap();
        assert!(o.settings(0, None).unwrap_err().to_string().contains("--upgrade-deps goes with --upgrade-from"));
        let o = HotUpgradeArgs { upgrade_from: Some("oci:/tmp/x:1".into()), ..Default::default() }.options().unwrap();
        assert!(o.clone().settings(2, None).is_err() && o.settings(0, Some("all")).is_err());
        let e = HotUpgradeArgs { upgrade_from: Some("oci:".into()), ..Default::default() }.options().unwrap_err();
        assert!(format!("{e:#}").contains("--upgrade-from \"oci:\""), "{e:#}");
    }

    #[test]
    fn the_files_relative_layout_is_relative_to_it_and_flags_win() {
        let f =
            HotUpgradeOptions::from_file(Some(true), Some("oci:out:0.1.0".into()), None, std::path::Path::new("/p"))
                .unwrap();
        assert_eq!(
            f.upgrade_from,
            Some(ImageRef::Layout { dir: "/p/out".into(), tag: Some("0.1.0".into()), digest: None })
        );
        let flags = HotUpgradeOptions { upgrade_from: Some("x:1".parse().unwrap()), ..Default::default() };
        let merged = flags.over(f);
        assert!(merged.hot_upgrades);
        assert_eq!(merged.upgrade_from, Some(ImageRef::Engine("x:1".into())));
    }
}

#[cfg(test)]
mod upgrade_args_tests {
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    fn parse(args: &[&str]) -> anyhow::Result<super::UpgradeSettings> {
        let argv = ["release-oci", "upgrade"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Upgrade(a) => a.validate(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_container_or_an_offline_output() {
        let s = parse(&["c1", "--from-image", "oci:/tmp/o:0.2.0"]).unwrap();
        assert_eq!(s.container.as_deref(), Some("c1"));
        assert!(parse(&["c1", "--rollback"]).unwrap().rollback);
        assert!(parse(&["c1"]).is_err(), "--from-image or --rollback");
        let s = parse(&["--from-image", "oci:/tmp/o:0.2.0", "--print-script", "--package-out", "/tmp/p.tgz"]).unwrap();
        assert!(s.container.is_none() && s.print_script && s.package_out.is_some());
        assert!(parse(&["--print-script", "--rollback"]).is_ok());
        assert!(parse(&["--from-image", "oci:/tmp/o"]).is_err(), "no container, nothing to write");
        let e = parse(&["c1", "--from-image", "oci:/tmp/o", "--print-script"]).unwrap_err().to_string();
        assert!(e.contains("touch no container"), "{e}");
        assert!(parse(&["--package-out", "/tmp/p.tgz", "--rollback"]).is_err());
    }
}
