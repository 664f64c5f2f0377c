//! `release-oci.toml` under the `build` flags: every flag left out on the command line takes the
//! file's value (flags and their environment variables win). Lists of pairs (`env`, `labels`,
//! `annotations`) are merged key by key, `ports` are added together, `tags` and `outputs` given
//! on the command line replace the file's. Relative paths in the file are relative to the file.

use super::build::{BuildArgs, BuilderKind, DEFAULT_TIMEOUT, PullArg};
use crate::base::BaseRef;
use crate::builder::limits::{DEFAULT_MEMORY, DEFAULT_PIDS_LIMIT, format_memory, parse_memory};
use crate::config::{ConfigError, ProjectConfig};
use crate::sink::Target;
use anyhow::Context;
use clap::ValueEnum;
use std::collections::BTreeMap;

impl BuildArgs {
    /// Reads the project's settings file (unless `--no-config`) and fills in the flags that were
    /// not given. Returns the image name (`name`) the file sets, if any.
    pub(super) fn apply_config(&mut self) -> anyhow::Result<Option<String>> {
        let config = if self.no_config {
            None
        } else if let Some(path) = &self.config {
            Some(ProjectConfig::load(path)?)
        } else {
            // The checkout's own file: it may shape the image, not act on this machine.
            let found = ProjectConfig::load_for_project(&self.project)?;
            if let Some(c) = &found {
                c.check_untrusted()?;
                check_untrusted_limits(c)?;
            }
            found
        };
        match config {
            Some(c) => {
                self.merge(&c).with_context(|| format!("in {}", c.dir.join(crate::config::FILE_NAME).display()))?;
                Ok(c.name)
            }
            None => Ok(None),
        }
    }

    fn merge(&mut self, c: &ProjectConfig) -> anyhow::Result<()> {
        if self.triple.is_empty() {
            self.triple = c.triple_list().map_err(anyhow::Error::msg)?;
        }
        self.merge_builder(c)?;
        fill(&mut self.mix_env, c.mix_env.clone());
        fill(&mut self.profile, c.profile.clone());
        fill(&mut self.release, c.release.clone());
        fill(&mut self.cmd, c.cmd.clone());
        fill(&mut self.source_url, c.source_url.clone());
        fill(&mut self.user, c.user.as_ref().map(ToString::to_string));
        fill(&mut self.from_release, c.from_release.as_deref().map(|p| c.resolve_path(p)));
        fill(&mut self.tini, c.tini.as_deref().map(|p| c.resolve_path(p)));
        fill(&mut self.cache_dir, c.cache_dir.as_deref().map(|p| c.resolve_path(p)));
        fill(&mut self.compression, c.compression.clone());
        if self.base.is_none()
            && let Some(b) = &c.base
        {
            let base = match b.parse::<BaseRef>()? {
                BaseRef::Layout { dir, tag } => BaseRef::Layout { dir: c.resolve_path(&dir), tag },
                other => other,
            };
            self.base = Some(base.to_string());
        }
        self.env = merge_pairs(c.env.as_ref(), &self.env);
        self.labels = merge_pairs(c.labels.as_ref(), &self.labels);
        self.annotations = merge_pairs(c.annotations.as_ref(), &self.annotations);
        if let Some(ports) = &c.ports {
            let mut all: Vec<String> = ports.iter().map(ToString::to_string).collect();
            all.append(&mut self.ports);
            self.ports = all;
        }
        if self.tags.is_empty() {
            self.tags = c.tags.clone().unwrap_or_default();
        }
        if self.outputs.is_empty()
            && let Some(outputs) = &c.outputs
        {
            for o in outputs {
                let target = match o.parse::<Target>().with_context(|| format!("outputs: {o:?}"))? {
                    Target::OciLayout { dir, tag } => Target::OciLayout { dir: c.resolve_path(&dir), tag },
                    Target::Archive { path } => Target::Archive { path: c.resolve_path(&path) },
                };
                self.outputs.push(target.to_string());
            }
        }
        self.load |= c.load == Some(true);
        self.include_cookie |= c.include_cookie == Some(true);
        self.no_cache |= c.no_cache == Some(true);
        self.merge_inputs(c)
    }
}

impl BuildArgs {
    /// The keys of the builder: which, its image, pulling it, and its limits.
    fn merge_builder(&mut self, c: &ProjectConfig) -> anyhow::Result<()> {
        if self.builder.is_none()
            && let Some(b) = &c.builder
        {
            self.builder = Some(enum_value::<BuilderKind>("builder", b)?);
        }
        if self.pull.is_none()
            && let Some(p) = &c.pull
        {
            self.pull = Some(enum_value::<PullArg>("pull", p)?);
        }
        fill(&mut self.builder_image, c.builder_image.clone());
        fill(&mut self.builder_catalogue, c.builder_catalogue.clone());
        if self.timeout.is_none()
            && let Some(t) = &c.timeout
        {
            crate::time::parse_duration(t).with_context(|| format!("timeout = {t:?}"))?;
            self.timeout = Some(t.clone());
        }
        if self.memory.is_none()
            && let Some(m) = &c.memory
        {
            parse_memory(m).with_context(|| format!("memory = {m:?}"))?;
            self.memory = Some(m.clone());
        }
        if self.pids_limit.is_none() {
            self.pids_limit = c.pids_limit;
        }
        Ok(())
    }
}

/// A project's own file may lower the builder's limits, not raise them: more time, memory or
/// processes for the build of an untrusted checkout would act on the machine that builds it.
fn check_untrusted_limits(c: &ProjectConfig) -> Result<(), ConfigError> {
    let refuse = |key: String, default: String, flag: String| ConfigError::Untrusted {
        path: c.dir.join(crate::config::FILE_NAME),
        key,
        reason: format!("is more than the default, {default}, and would let the build take more of this machine"),
        flag,
    };
    if let Some(t) = &c.timeout
        && crate::time::parse_duration(t).is_ok_and(|d| d > DEFAULT_TIMEOUT)
    {
        let default = crate::time::format_duration(DEFAULT_TIMEOUT);
        return Err(refuse(format!("timeout = {t:?}"), default, format!("--timeout {t}")));
    }
    if let Some(m) = &c.memory
        && parse_memory(m).is_ok_and(|b| b > DEFAULT_MEMORY)
    {
        return Err(refuse(format!("memory = {m:?}"), format_memory(DEFAULT_MEMORY), format!("--memory {m}")));
    }
    if let Some(n) = c.pids_limit
        && n > DEFAULT_PIDS_LIMIT
    {
        return Err(refuse(format!("pids_limit = {n}"), DEFAULT_PIDS_LIMIT.to_string(), format!("--pids-limit {n}")));
    }
    Ok(())
}

fn fill<T>(flag: &mut Option<T>, from_file: Option<T>) {
    if flag.is_none() {
        *flag = from_file;
    }
}

fn enum_value<T: ValueEnum>(key: &str, value: &str) -> anyhow::Result<T> {
    T::from_str(value, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|p| p.get_name().to_string())
            .collect();
        anyhow::anyhow!("{key} = {value:?}: expected one of {}", names.join(", "))
    })
}

/// The file's `KEY = VALUE` pairs whose key the command line does not set, then the command line's.
fn merge_pairs(from_file: Option<&BTreeMap<String, String>>, cli: &[String]) -> Vec<String> {
    let cli_keys: Vec<&str> = cli.iter().map(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k)).collect();
    let mut out: Vec<String> = from_file
        .into_iter()
        .flatten()
        .filter(|(k, _)| !cli_keys.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    out.extend(cli.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: BuildArgs,
    }

    fn args(project: &std::path::Path, extra: &[&str]) -> BuildArgs {
        let mut argv = vec!["x".to_string(), project.display().to_string()];
        argv.extend(extra.iter().map(|s| s.to_string()));
        Wrap::parse_from(argv).args
    }

    const FILE: &str = r#"
release = "web_only"
mix_env = "staging"
user = 1000
builder = "host"
ports = [4000]
env = { A = "from-file", B = "from-file" }
tags = ["app:{release}"]
outputs = ["oci:out", "docker-archive:/abs/img.tar"]
base = "oci:base-layout:v1"
load = true
"#;

    /// `FILE` as the user's own settings (`--config`): every key is taken.
    fn users_file(dir: &std::path::Path) -> String {
        let file = dir.join("release-oci.toml");
        std::fs::write(&file, FILE).unwrap();
        file.display().to_string()
    }

    #[test]
    fn the_file_fills_in_what_the_command_line_leaves_out() {
        let dir = tempfile::tempdir().unwrap();
        let file = users_file(dir.path());
        let s = args(dir.path(), &["--config", &file]).validate().unwrap();
        assert_eq!(s.release.as_deref(), Some("web_only"));
        assert_eq!(s.mix_env, "staging");
        assert_eq!(s.builder, BuilderKind::Host);
        assert_eq!(s.ports, ["4000/tcp"]);
        assert_eq!(s.tags, ["app:{release}"]);
        assert!(s.load);
        let env: BTreeMap<_, _> = s.env.iter().cloned().collect();
        assert_eq!(env["A"], "from-file");
        let out: Vec<String> = s.outputs.iter().map(ToString::to_string).collect();
        assert_eq!(out, [format!("oci:{}", dir.path().join("out").display()), "docker-archive:/abs/img.tar".into()]);
        assert_eq!(s.base, BaseRef::Layout { dir: dir.path().join("base-layout"), tag: Some("v1".into()) });
    }

    #[test]
    fn flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let file = users_file(dir.path());
        let s = args(
            dir.path(),
            &[
                "--config",
                &file,
                "--release",
                "all",
                "--mix-env",
                "prod",
                "--user",
                "2000",
                "-e",
                "A=cli",
                "-p",
                "5000",
                "-t",
                "x:y",
            ],
        )
        .validate()
        .unwrap();
        assert_eq!(s.release.as_deref(), Some("all"));
        assert_eq!(s.mix_env, "prod");
        assert_eq!(s.tags, ["x:y"]);
        assert_eq!(s.ports, ["4000/tcp", "5000/tcp"]);
        let env: BTreeMap<_, _> = s.env.iter().cloned().collect();
        assert_eq!((env["A"].as_str(), env["B"].as_str()), ("cli", "from-file"));
        assert_eq!(s.env.iter().filter(|(k, _)| k == "A").count(), 1);
        let s = args(dir.path(), &["--no-config"]).validate().unwrap();
        assert_eq!((s.release, s.mix_env.as_str(), s.load), (None, "prod", false));
    }

    #[test]
    fn the_projects_own_file_cannot_act_on_the_host_but_the_same_flags_can() {
        let dir = tempfile::tempdir().unwrap();
        users_file(dir.path());
        let e = format!("{:#}", args(dir.path(), &[]).validate().unwrap_err());
        assert!(
            e.contains("builder = \"host\" would run the project's code") && e.contains("pass --builder host"),
            "{e}"
        );
        std::fs::write(dir.path().join("release-oci.toml"), "release = \"web_only\"\n").unwrap();
        let s =
            args(dir.path(), &["--builder", "host", "--load", "-o", "docker-archive:/abs/img.tar"]).validate().unwrap();
        assert_eq!((s.builder, s.load, s.release.as_deref()), (BuilderKind::Host, true, Some("web_only")));
    }

    #[test]
    fn builder_limits_come_from_the_file_and_only_a_users_file_may_raise_them() {
        use crate::builder::Limits;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("release-oci.toml");
        std::fs::write(&file, "timeout = \"30m\"\nmemory = \"2g\"\npids_limit = 1000\n").unwrap();
        let s = args(dir.path(), &[]).validate().unwrap();
        assert_eq!((s.timeout.as_secs(), s.limits), (1800, Limits { memory: 2 << 30, pids: 1000 }));
        let s = args(dir.path(), &["--memory", "512m", "--pids-limit", "50", "--timeout", "5m"]).validate().unwrap();
        assert_eq!((s.timeout.as_secs(), s.limits), (300, Limits { memory: 512 << 20, pids: 50 }));
        std::fs::write(&file, "memory = \"64g\"\ntimeout = \"3h\"\n").unwrap();
        let e = format!("{:#}", args(dir.path(), &[]).validate().unwrap_err());
        assert!(e.contains("timeout = \"3h\" is more than the default, 1h") && e.contains("pass --timeout 3h"), "{e}");
        let s = args(dir.path(), &["--config", &file.display().to_string()]).validate().unwrap();
        assert_eq!((s.timeout.as_secs(), s.limits.memory), (3 * 3600, 64 << 30));
        std::fs::write(&file, "pids_limit = 100000\n").unwrap();
        let e = format!("{:#}", args(dir.path(), &[]).validate().unwrap_err());
        assert!(e.contains("pids_limit = 100000 is more than the default, 4096"), "{e}");
        std::fs::write(&file, "memory = \"lots\"\n").unwrap();
        let e = format!("{:#}", args(dir.path(), &[]).validate().unwrap_err());
        assert!(
            e.contains(&file.display().to_string()) && e.contains("memory = \"lots\": \"lots\" is not a size"),
            "{e}"
        );
    }

    #[test]
    fn the_builder_catalogue_comes_from_the_projects_own_file_or_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("release-oci.toml"), "builder_catalogue = \"127.0.0.1:5000/hexpm/elixir\"\n")
            .unwrap();
        let s = args(dir.path(), &[]).validate().unwrap();
        let c = s.builder_catalogue.unwrap();
        assert_eq!((c.registry.as_str(), c.repository.as_str()), ("127.0.0.1:5000", "hexpm/elixir"));
        let s = args(dir.path(), &["--builder-catalogue", "ghcr.io/team/elixir"]).validate().unwrap();
        assert_eq!(s.builder_catalogue.unwrap().repository_ref(), "ghcr.io/team/elixir");
        let e = format!(
            "{:#}",
            args(dir.path(), &["--builder-catalogue", "r.io/hexpm/elixir:1.18"]).validate().unwrap_err()
        );
        assert!(e.contains("name the repository only") && e.contains("r.io/hexpm/elixir"), "{e}");
    }

    #[test]
    fn bad_values_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("release-oci.toml");
        std::fs::write(&file, "builder = \"podman\"\n").unwrap();
        let e = format!("{:#}", args(dir.path(), &[]).validate().unwrap_err());
        assert!(e.contains(&file.display().to_string()) && e.contains("expected one of docker, host"), "{e}");
        std::fs::write(&file, "[k8s]\nreplicas = 1\nflavour = 2\n").unwrap();
        let e = format!("{:#}", args(dir.path(), &[]).validate().unwrap_err());
        assert!(e.contains(":3:1: unknown key `flavour` in [k8s]"), "{e}");
    }
}
