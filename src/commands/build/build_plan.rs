//! What one `release-oci build` does, decided before anything runs: one image per release, or one
//! image index of several platforms ([`BuildPlan`]); the outputs are checked against that kind up
//! front (an archive cannot take an index), and one function runs it. See docs/architecture.md.

use super::BuiltImage;
use crate::cli::BuildSettings;
use crate::digest::Digest;
use crate::output::ArtifactKind;

/// A build, checked: run it with [`BuildPlan::run`].
pub struct BuildPlan {
    settings: BuildSettings,
    kind: ArtifactKind,
}

/// What a build made.
#[derive(Debug)]
pub enum Built {
    /// One image per release (several with `--release all`).
    Images(Vec<BuiltImage>),
    /// The index of a multi-platform build.
    Index(Digest),
}

impl BuildPlan {
    pub fn new(settings: BuildSettings) -> anyhow::Result<BuildPlan> {
        let kind = match settings.platforms.len() {
            0 => ArtifactKind::Image,
            platforms => ArtifactKind::Index { platforms },
        };
        super::outputs::check(&settings, kind)?;
        Ok(BuildPlan { settings, kind })
    }

    pub fn kind(&self) -> ArtifactKind {
        self.kind
    }

    /// Builds, writes every output; SIGINT/SIGTERM stop it (exit 130/143).
    pub async fn run(self) -> anyhow::Result<Built> {
        Ok(match self.kind {
            ArtifactKind::Image => Built::Images(super::run_all(self.settings).await?),
            ArtifactKind::Index { .. } => Built::Index(super::multi::run(self.settings).await?),
        })
    }
}

impl Built {
    /// What stdout shows: the digest (`REPOSITORY@DIGEST` when `pushed` to that repository), or
    /// one `RELEASE DIGEST` line per release when there are several.
    pub fn stdout(&self, pushed: Option<&str>) -> String {
        let named = |d: &Digest| match pushed {
            Some(repo) => format!("{repo}@{d}"),
            None => d.to_string(),
        };
        match self {
            Built::Index(d) => format!("{}\n", named(d)),
            Built::Images(images) if images.len() > 1 && pushed.is_none() => {
                images.iter().map(|b| format!("{} {}\n", b.release, b.image.manifest_digest)).collect()
            }
            Built::Images(images) => images.iter().map(|b| format!("{}\n", named(&b.image.manifest_digest))).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn settings(flags: &[&str]) -> BuildSettings {
        match crate::cli::Cli::try_parse_from([&["x", "build", "--no-config"], flags].concat()).unwrap().command {
            crate::cli::Command::Build(args) => args.validate().unwrap(),
            _ => unreachable!(),
        }
    }

    const TWO: [&str; 4] = ["--triple", "x86_64-unknown-linux-gnu", "--triple", "aarch64-unknown-linux-gnu"];

    #[test]
    fn the_kind_follows_the_triples_and_an_archive_is_refused_for_an_index() {
        assert_eq!(BuildPlan::new(settings(&[])).unwrap().kind(), ArtifactKind::Image);
        assert_eq!(BuildPlan::new(settings(&TWO)).unwrap().kind(), ArtifactKind::Index { platforms: 2 });
        let archive = settings(&[&TWO[..], &["-o", "docker-archive:/tmp/x.tar"]].concat());
        let err = format!("{:#}", BuildPlan::new(archive).err().unwrap());
        assert!(err.contains("docker-archive:/tmp/x.tar") && err.contains("makes 2"), "{err}");
        let one = settings(&["-o", "docker-archive:/tmp/x.tar"]);
        assert_eq!(BuildPlan::new(one).unwrap().kind(), ArtifactKind::Image);
    }

    #[test]
    fn stdout_names_the_digest_or_the_pushed_reference() {
        let d: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        assert_eq!(Built::Index(d.clone()).stdout(None), format!("{d}\n"));
        assert_eq!(Built::Index(d.clone()).stdout(Some("r.test/app")), format!("r.test/app@{d}\n"));
        assert_eq!(Built::Images(vec![]).stdout(None), "");
    }
}
