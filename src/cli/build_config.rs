//! `release-oci.toml` under the `build` flags: the file's keys read into typed [`FileOptions`]
//! (relative paths made relative to the file), for [`super::build_options::BuildOptions::over`].
//! A project's own file is checked first: it may shape the image, not act on this machine.

use super::build::{ConfigSource, PullArg};
use super::build_inputs::hex_repo;
use super::build_options::{
    BaseChoice, BuilderOptions, CaChoice, FileOptions, ImageOptions, InputOptions, OutputOptions,
};
use super::build_settings::{DEFAULT_TIMEOUT, UserSpec};
use super::values::{check_tags, parse_catalogue, parse_port, parse_user, pids};
use crate::base::BaseRef;
use crate::builder::endpoint::BuilderHosts;
use crate::builder::limits::{DEFAULT_MEMORY, DEFAULT_PIDS_LIMIT, format_memory, parse_memory};
use crate::config::{BuilderHostValue, ConfigError, HexConfig, PortValue, ProjectConfig, UserValue};
use crate::sink::Target;
use anyhow::Context;
use clap::ValueEnum;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The settings file `source` names, read; `None` when there is none.
pub(super) fn load(project: &Path, source: &ConfigSource) -> anyhow::Result<Option<FileOptions>> {
    let (config, path) = match source {
        ConfigSource::None => return Ok(None),
        ConfigSource::File(path) => (ProjectConfig::load(path)?, path.clone()),
        ConfigSource::Project => match ProjectConfig::load_for_project(project)? {
            None => return Ok(None),
            // The checkout's own file: it may shape the image, not act on this machine.
            Some(c) => {
                c.check_untrusted()?;
                check_untrusted_limits(&c)?;
                (c, project.join(crate::config::FILE_NAME))
            }
        },
    };
    file_options(config).with_context(|| format!("in {}", path.display())).map(Some)
}

/// The file's keys as typed options.
fn file_options(c: ProjectConfig) -> anyhow::Result<FileOptions> {
    // Every key by name: a new key does not compile until it is read here.
    #[rustfmt::skip]
    let ProjectConfig {
        name, tags, triple, triples, builder, builder_image, builder_host, builder_catalogue, pull, mix_env, profile, release,
        from_release, tini, base, slim_erts, tzdata, user, cmd, env, ports, labels, annotations, outputs, load,
        include_cookie, source_url, sbom, sbom_dir, cache_dir, cache_repo, no_cache, cross_compile, compression, timeout, memory, pids_limit,
        warm_builder, warm_builder_idle,
        build_env, build_ca, assets, secrets, ssh, hex, hot_upgrades, upgrade_from, upgrade_deps,
        // `release-oci k8s`'s table (`cli::k8s`), not a build setting.
        k8s: _,
        dir,
    } = c;
    let at = Dir(dir);
    let triples = crate::config::triple_list(triple.as_deref(), triples.as_deref()).map_err(anyhow::Error::msg)?;
    let builder = BuilderOptions {
        triples: triples.iter().map(|t| t.parse()).collect::<Result<_, _>>()?,
        builder: key("builder", builder, enum_value)?,
        builder_image,
        builder_hosts: key("builder_host", builder_host, builder_hosts)?.unwrap_or_default(),
        builder_catalogue: key("builder_catalogue", builder_catalogue, |r| parse_catalogue(&r))?,
        pull: key("pull", pull, enum_value::<PullArg>)?,
        mix_env,
        profile,
        release,
        from_release: from_release.map(|p| at.path(&p)),
        tini: tini.map(|p| at.path(&p)),
        no_cache: no_cache == Some(true),
        cross_compile: key("cross_compile", cross_compile, enum_value)?,
        timeout: key("timeout", timeout, |t| crate::time::parse_duration(&t))?,
        memory: key("memory", memory, |m| parse_memory(&m))?,
        pids_limit: key("pids_limit", pids_limit, pids)?,
        warm_builder: warm_builder == Some(true),
        warm_builder_idle: key("warm_builder_idle", warm_builder_idle, |t| crate::time::parse_duration(&t))?,
    };
    let image = ImageOptions {
        name,
        base: key("base", base, |b| at.base(&b))?,
        slim_erts: slim_erts == Some(true),
        tzdata: tzdata == Some(true),
        user: key("user", user, user_value)?,
        cmd,
        env: pairs(env),
        ports: ports.into_iter().flatten().map(port_value).collect::<anyhow::Result<_>>()?,
        labels: pairs(labels),
        annotations: pairs(annotations),
        include_cookie: include_cookie == Some(true),
        source_url,
        compression: key("compression", compression, |c| c.parse())?,
    };
    let output = OutputKeys { outputs, load, tags, cache_dir, sbom, sbom_dir, cache_repo }.options(&at)?;
    let inputs = at.inputs(build_env, build_ca, assets, secrets, ssh, hex)?;
    let hot = super::upgrade::HotUpgradeOptions::from_file(hot_upgrades, upgrade_from, upgrade_deps, &at.0)?;
    Ok(FileOptions { builder, image, output, inputs, hot })
}

/// The file's keys about where the image goes.
struct OutputKeys {
    outputs: Option<Vec<String>>,
    load: Option<bool>,
    tags: Option<Vec<String>>,
    cache_dir: Option<PathBuf>,
    sbom: Option<String>,
    sbom_dir: Option<PathBuf>,
    cache_repo: Option<String>,
}

impl OutputKeys {
    fn options(self, at: &Dir) -> anyhow::Result<OutputOptions> {
        let OutputKeys { outputs, load, tags, cache_dir, sbom, sbom_dir, cache_repo } = self;
        Ok(OutputOptions {
            outputs: outputs.into_iter().flatten().map(|o| at.output(&o)).collect::<anyhow::Result<_>>()?,
            load: load == Some(true),
            tags: check_tags("tags", tags.unwrap_or_default())?,
            cache_dir: cache_dir.map(|p| at.path(&p)),
            sbom: key("sbom", sbom, enum_value)?,
            sbom_dir: sbom_dir.map(|p| at.path(&p)),
            // Flags only: where the image is pushed, with which key and credentials.
            push: None,
            // Only from a `--config` file: a project's own is refused (`check_untrusted`).
            cache_repo,
            sign_key: None,
            registry: Default::default(),
        })
    }
}

/// `KEY = VALUE` parsed; an error names the key and the value.
fn key<T: std::fmt::Debug, U, E: Into<anyhow::Error>>(
    name: &str,
    value: Option<T>,
    parse: impl FnOnce(T) -> Result<U, E>,
) -> anyhow::Result<Option<U>> {
    value
        .map(|v| {
            let shown = format!("{name} = {v:?}");
            parse(v).map_err(Into::into).context(shown)
        })
        .transpose()
}

/// The directory of the file: its relative paths are relative to it.
struct Dir(PathBuf);

impl Dir {
    fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() { p.to_path_buf() } else { self.0.join(p) }
    }

    fn base(&self, b: &str) -> anyhow::Result<BaseChoice> {
        Ok(match b.parse()? {
            BaseChoice::Image(BaseRef::Layout { dir, tag }) => {
                BaseChoice::Image(BaseRef::Layout { dir: self.path(&dir), tag })
            }
            other => other,
        })
    }

    fn output(&self, o: &str) -> anyhow::Result<Target> {
        Ok(match o.parse::<Target>().with_context(|| format!("outputs: {o:?}"))? {
            Target::OciLayout { dir, tag } => Target::OciLayout { dir: self.path(&dir), tag },
            Target::Archive { path } => Target::Archive { path: self.path(&path) },
        })
    }

    /// The builder's inputs; `secrets` and `ssh` only reach here from a `--config` file.
    fn inputs(
        &self,
        build_env: Option<BTreeMap<String, String>>,
        build_ca: Option<PathBuf>,
        assets: Option<String>,
        secrets: Option<Vec<String>>,
        ssh: Option<Vec<String>>,
        hex: Option<HexConfig>,
    ) -> anyhow::Result<InputOptions> {
        let HexConfig { client, repos } = hex.unwrap_or_default();
        Ok(InputOptions {
            build_env: pairs(build_env),
            secrets: secrets.unwrap_or_default(),
            ssh: ssh.unwrap_or_default(),
            build_ca: build_ca
                .map(|p| if p == Path::new("none") { CaChoice::None } else { CaChoice::File(self.path(&p)) }),
            hex_client: client.map(|p| self.path(&p)),
            assets: key("assets", assets, |a| a.parse())?,
            hex_repos: repos.into_iter().flatten().map(|r| hex_repo(r, |p| self.path(p))).collect::<Result<_, _>>()?,
        })
    }
}

fn pairs(map: Option<BTreeMap<String, String>>) -> Vec<(String, String)> {
    map.unwrap_or_default().into_iter().collect()
}

fn builder_hosts(v: BuilderHostValue) -> Result<BuilderHosts, crate::builder::endpoint::BuilderHostError> {
    match v {
        BuilderHostValue::All(url) => BuilderHosts::from_table([("*", url)]),
        BuilderHostValue::Platforms(table) => BuilderHosts::from_table(table),
    }
}

fn user_value(u: UserValue) -> anyhow::Result<UserSpec> {
    match u {
        UserValue::Id(uid) => Ok(UserSpec::Ids { uid, gid: uid }),
        UserValue::Text(s) => parse_user(&s),
    }
}

fn port_value(p: PortValue) -> anyhow::Result<String> {
    match &p {
        PortValue::Number(n) => parse_port(&n.to_string()),
        PortValue::Text(s) => parse_port(s),
    }
    .with_context(|| format!("ports: {p}"))
}

fn enum_value<T: ValueEnum>(value: String) -> anyhow::Result<T> {
    T::from_str(&value, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|p| p.get_name().to_string())
            .collect();
        anyhow::anyhow!("expected one of {}", names.join(", "))
    })
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

#[cfg(test)]
#[path = "build_config_tests.rs"]
mod tests;
