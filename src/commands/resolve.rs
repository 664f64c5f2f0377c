//! `release-oci resolve -f FILE|DIR --push-to PREFIX`: builds and pushes every project that a
//! `release-oci://PATH` image reference names (each once, several at a time), and prints the YAML
//! with those references pinned by digest. The build flags after `--` are parsed once; each
//! project's settings are made from them and its own `release-oci.toml` by the library
//! ([`BuildTemplate::settings`]), as `release-oci build PATH --push PREFIX/RELEASE FLAGS` would.

use crate::cli::{BuildSettings, BuildTemplate, ResolveArgs};
use crate::config::ProjectConfig;
use crate::k8s::naming;
use crate::k8s::resolve::{self, PublishError, Publisher};
use anyhow::Context;
use std::path::Path;

/// The resolved YAML, for stdout.
pub async fn run(args: ResolveArgs) -> anyhow::Result<String> {
    let base = std::env::current_dir().context("the current directory")?;
    let from_config = match &args.push_to {
        Some(_) => None,
        None => config_push_to(&base)?,
    };
    let prefix = args.push_prefix(from_config)?;
    let template =
        BuildTemplate::parse(&args.build_flags).with_context(|| format!("build flags {:?}", args.build_flags))?;
    let sources = resolve::read_inputs(&args.files)?;
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let publisher = BuildAndPush { prefix, template };
    let resolved = resolve::resolve(&sources, &base, &publisher, jobs).await?;
    Ok(resolve::join(&resolved))
}

/// `push_to` of the `[k8s]` table of `dir`'s `release-oci.toml`, if any.
fn config_push_to(dir: &Path) -> anyhow::Result<Option<String>> {
    Ok(ProjectConfig::load_for_project(dir)?.and_then(|c| c.k8s).and_then(|k| k.push_to))
}

/// Publishes each project as `release-oci build PATH --push PREFIX/RELEASE [BUILD_FLAGS]` does.
struct BuildAndPush {
    prefix: String,
    template: BuildTemplate,
}

impl BuildAndPush {
    /// The build settings of the project at `path`, and the repository it is pushed to.
    fn settings(&self, path: &Path) -> anyhow::Result<(BuildSettings, String)> {
        let release = naming::release_name(path)
            .with_context(|| format!("cannot tell the release name of {}", path.display()))?;
        let target = format!("{}/{release}", self.prefix);
        let settings = self.template.settings(path, &target)?;
        let repository = settings
            .push
            .as_ref()
            .map(|p| p.reference.repository_ref())
            .with_context(|| format!("--push {target} was not taken"))?;
        Ok((settings, repository))
    }

    async fn build(&self, path: &Path) -> anyhow::Result<String> {
        let (settings, repository) = self.settings(path)?;
        let image = super::build::run(settings).await?;
        Ok(format!("{repository}@{}", image.manifest_digest))
    }
}

impl Publisher for BuildAndPush {
    async fn publish(&self, path: &Path) -> Result<String, PublishError> {
        self.build(path).await.map_err(|e| format!("{e:#}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mix project `my_app` with `release-oci.toml` holding `toml`.
    fn project(toml: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mix = "defmodule MyApp.MixProject do\n  def project, do: [app: :my_app, version: \"0.1.0\"]\nend\n";
        std::fs::write(dir.path().join("mix.exs"), mix).unwrap();
        std::fs::write(dir.path().join("release-oci.toml"), toml).unwrap();
        dir
    }

    fn publisher(flags: &[&str]) -> BuildAndPush {
        let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        BuildAndPush { prefix: "127.0.0.1:5000/team".into(), template: BuildTemplate::parse(&flags).unwrap() }
    }

    #[test]
    fn each_project_is_built_with_the_flags_over_its_own_file_and_pushed_under_its_release() {
        let p = project("mix_env = \"staging\"\nenv = { A = \"file\" }\n[k8s]\npush_to = \"r.io/from-file\"\n");
        let (s, repository) = publisher(&["-e", "A=flag", "--slim-erts"]).settings(p.path()).unwrap();
        assert_eq!(repository, "127.0.0.1:5000/team/my_app");
        assert_eq!((s.project.as_path(), s.mix_env.as_str(), s.slim_erts), (p.path(), "staging", true));
        assert_eq!(s.env, [("A".to_string(), "flag".to_string())]);
        let (s, _) = publisher(&["--no-config"]).settings(p.path()).unwrap();
        assert_eq!(s.mix_env, "prod");
        // A project's own file may not act on this machine, through resolve either.
        let q = project("load = true\n");
        let e = format!("{:#}", publisher(&[]).settings(q.path()).unwrap_err());
        assert!(e.contains("pass --load"), "{e}");
    }

    #[test]
    fn push_to_comes_from_the_k8s_table() {
        let p = project("[k8s]\npush_to = \"r.io/from-file\"\n");
        assert_eq!(config_push_to(p.path()).unwrap().as_deref(), Some("r.io/from-file"));
        assert_eq!(config_push_to(&p.path().join("nonexistent")).unwrap(), None);
    }
}
