//! `--triple` given several times (or `triples` in release-oci.toml): one build per platform, each
//! with its triple's builder image and base, combined into one image index by the build command.

use super::build::BuilderKind;
use super::build_options::{BaseChoice, BuilderOptions};
use crate::base::{BaseRef, DEBIAN_ALIAS};
use crate::triple::{Libc, Triple};
use anyhow::{Context, bail};

/// The target when none is asked for.
const DEFAULT_TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// One platform of a multi-platform build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformBuild {
    pub triple: Triple,
    pub builder_image: String,
    pub base: BaseRef,
}

/// The target triple, its base, and each platform's settings when several triples are asked for.
pub(super) fn targets(
    b: &BuilderOptions,
    base: Option<&BaseChoice>,
) -> anyhow::Result<(Triple, BaseRef, Vec<PlatformBuild>)> {
    let triples = check_triples(&b.triples)?;
    let triple = triples[0].clone();
    let base_ref = base_for(&triple, base, b.from_release.is_some())?;
    let platforms = platforms(b, base, &triples)?;
    Ok((triple, base_ref, platforms))
}

/// The triples asked for (the default when none), each platform once.
fn check_triples(given: &[Triple]) -> anyhow::Result<Vec<Triple>> {
    if given.is_empty() {
        return Ok(vec![DEFAULT_TRIPLE.parse()?]);
    }
    let mut out: Vec<Triple> = Vec::new();
    for triple in given {
        if out.iter().any(|o| o.platform() == triple.platform()) {
            bail!(
                "--triple {triple}: the platform {} is already asked for; an image index has one image per platform",
                triple.platform()
            );
        }
        out.push(triple.clone());
    }
    Ok(out)
}

/// The base for `triple`: the one asked for (`debian`: the Debian runtime image of the triple's
/// architecture), else the triple's default. No builder runs for a prebuilt release, so there is
/// nothing to make a minimal base from: its default is the distribution image.
pub(super) fn base_for(triple: &Triple, choice: Option<&BaseChoice>, prebuilt: bool) -> anyhow::Result<BaseRef> {
    let distro = || BaseRef::Daemon(triple.distro_base_image().to_string());
    Ok(match choice {
        Some(BaseChoice::Debian) if triple.libc == Libc::Gnu => distro(),
        Some(BaseChoice::Debian) => BaseRef::Daemon(DEBIAN_ALIAS.1.to_string()),
        Some(BaseChoice::Image(b)) => b.clone(),
        None if prebuilt => distro(),
        None => triple.default_base_image().parse()?,
    })
}

/// Each platform's settings when several triples are asked for; empty for one.
fn platforms(
    args: &BuilderOptions,
    base: Option<&BaseChoice>,
    triples: &[Triple],
) -> anyhow::Result<Vec<PlatformBuild>> {
    if triples.len() < 2 {
        return Ok(Vec::new());
    }
    let names = triples.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let why = |what: &str| format!("several target triples ({names}): {what}");
    if let Some(image) = &args.builder_image {
        bail!(why(&format!(
            "--builder-image {image} is one image of one platform; leave it out and each triple gets its own \
             default builder, or build each platform on its own"
        )));
    }
    if args.builder == Some(BuilderKind::Host) {
        bail!(why("--builder host builds for this machine only; use the Docker builder"));
    }
    if let Some(path) = &args.from_release {
        bail!(why(&format!("--from-release {} is a release of one platform", path.display())));
    }
    if args.release.as_deref() == Some("all") {
        bail!(why("--release all is not supported with several platforms; build one release with --release NAME"));
    }
    triples
        .iter()
        .map(|t| {
            let base = base_for(t, base, false)?;
            if let BaseRef::Daemon(name) = &base
                && name != t.distro_base_image()
            {
                bail!(why(&format!(
                    "the base docker-daemon:{name} is an image of the Docker engine, which holds one platform per \
                     name; use a registry or oci: base that is an image index, or minimal, debian or scratch"
                )));
            }
            Ok(PlatformBuild { triple: t.clone(), builder_image: t.default_builder_image().to_string(), base })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .context("multi-platform build")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::BuildArgs;
    use clap::Parser;

    fn args(extra: &[&str]) -> BuildArgs {
        #[derive(clap::Parser)]
        struct W {
            #[command(flatten)]
            a: BuildArgs,
        }
        let mut argv = vec!["x", "--no-config"];
        argv.extend_from_slice(extra);
        W::parse_from(argv).a
    }

    const TWO: [&str; 4] = ["--triple", "x86_64-unknown-linux-gnu", "--triple", "aarch64-unknown-linux-gnu"];

    #[test]
    fn two_triples_give_each_its_builder_and_base() {
        let s = args(&TWO).validate().unwrap();
        assert_eq!(s.triple.to_string(), "x86_64-unknown-linux-gnu");
        let p: Vec<(String, String, String)> =
            s.platforms.iter().map(|p| (p.triple.to_string(), p.builder_image.clone(), p.base.to_string())).collect();
        assert_eq!(p[0].1, "release-oci/builder:debian-bookworm");
        assert_eq!(p[1].1, "release-oci/builder:debian-bookworm-arm64");
        assert_eq!((p[0].2.as_str(), p[1].2.as_str()), ("minimal", "minimal"));
        let s = args(&[&TWO[..], &["--base", "debian"]].concat()).validate().unwrap();
        assert_eq!(s.platforms[1].base.to_string(), "docker-daemon:release-oci/runtime:debian-bookworm-arm64");
        let s = args(&["--triple", "x86_64-unknown-linux-gnu,aarch64-unknown-linux-gnu"]).validate().unwrap();
        assert_eq!(s.platforms.len(), 2);
        assert!(args(&["--triple", "x86_64-unknown-linux-gnu"]).validate().unwrap().platforms.is_empty());
    }

    #[test]
    fn one_platform_settings_are_refused_with_several() {
        for extra in [
            &["--builder-image", "release-oci/builder:debian-bookworm"][..],
            &["--base", "my-runtime:1"],
            &["--builder", "host"],
            &["--release", "all"],
        ] {
            let e = format!("{:#}", args(&[&TWO[..], extra].concat()).validate().unwrap_err());
            assert!(e.contains("several target triples") && e.contains(extra[1]), "{e}");
        }
        let e = args(&["--triple", "aarch64-linux-gnu", "--triple", "aarch64-unknown-linux-gnu"])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("already asked for"), "{e}");
    }

    #[test]
    fn debian_follows_the_triple() {
        let t: Triple = "aarch64-unknown-linux-gnu".parse().unwrap();
        assert_eq!(
            base_for(&t, Some(&BaseChoice::Debian), false).unwrap(),
            BaseRef::Daemon("release-oci/runtime:debian-bookworm-arm64".into())
        );
        assert_eq!(base_for(&t, None, true).unwrap(), BaseRef::Daemon(t.distro_base_image().into()));
        assert_eq!(base_for(&t, None, false).unwrap(), BaseRef::Minimal);
    }
}
