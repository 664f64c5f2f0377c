//! The `build` flags read into typed [`BuildOptions`]: every string parsed (an error names the
//! flag and its value), nothing defaulted yet.

use super::build::BuildArgs;
use super::build_options::{BuildOptions, BuilderOptions, ImageOptions, InputOptions, OutputOptions};
use super::supply::SupplyArgs;
use super::values::{ca_choice, check_tags, key_value, parse_catalogue, parse_port, parse_user, pids};
use crate::builder::endpoint::BuilderHosts;
use crate::builder::inputs::parse_build_env;
use crate::builder::limits::parse_memory;
use crate::sink::Target;
use anyhow::Context;

impl BuildArgs {
    /// The flags as typed values.
    pub(super) fn options(self) -> anyhow::Result<BuildOptions> {
        // Every flag by name: a new flag does not compile until it is read here.
        #[rustfmt::skip]
        let BuildArgs {
            project, config: _, no_config: _, triple, builder, builder_image, builder_hosts, builder_catalogue, pull, mix_env,
            profile, release, from_release, tini, cmd, base, slim_erts, tzdata, user, env, ports, labels, annotations,
            outputs, load, tags, push, cache_repo, registry, supply, include_cookie, source_url, cache_dir, no_cache, cross_compile,
            compression, timeout, memory, pids_limit, warm_builder, warm_builder_idle, build_env, secrets, ssh, build_ca, hex_client, assets, hot,
        } = self;
        let builder = BuilderOptions {
            triples: triple.iter().map(|t| t.parse()).collect::<Result<_, _>>()?,
            builder,
            builder_image,
            builder_hosts: BuilderHosts::from_specs(&builder_hosts).context("--builder-host")?,
            builder_catalogue: flag("builder-catalogue", builder_catalogue, parse_catalogue)?,
            pull,
            mix_env,
            profile,
            release,
            from_release,
            tini,
            no_cache,
            cross_compile,
            timeout: flag("timeout", timeout, crate::time::parse_duration)?,
            memory: flag("memory", memory, parse_memory)?,
            pids_limit: pids_limit.map(|n| pids(n).with_context(|| format!("--pids-limit {n}"))).transpose()?,
            warm_builder,
            warm_builder_idle: flag("warm-builder-idle", warm_builder_idle, crate::time::parse_duration)?,
        };
        let image = ImageOptions {
            name: None,
            base: flag("base", base, str::parse)?,
            slim_erts,
            tzdata,
            user: flag("user", user, parse_user)?,
            cmd,
            env: pairs("env", &env)?,
            ports: list("port", ports, parse_port)?,
            labels: pairs("label", &labels)?,
            annotations: pairs("annotation", &annotations)?,
            include_cookie,
            source_url,
            compression: flag("compression", compression, str::parse)?,
        };
        let mut output = output_options(outputs, load, tags, push, cache_dir, supply, registry)?;
        output.cache_repo = cache_repo;
        let inputs = InputOptions {
            build_env: build_env.iter().map(|e| parse_build_env(e)).collect::<Result<_, _>>()?,
            secrets,
            ssh,
            build_ca: build_ca.map(ca_choice),
            hex_client,
            assets: flag("assets", assets, str::parse)?,
            hex_repos: Vec::new(),
        };
        Ok(BuildOptions { project, builder, image, output, inputs, hot: hot.options()? })
    }
}

/// Where the image goes: `--output`, `--load`, `--tag`, `--push`, `--cache-dir`, the supply-chain
/// and registry flags.
fn output_options(
    outputs: Vec<String>,
    load: bool,
    tags: Vec<String>,
    push: Option<String>,
    cache_dir: Option<std::path::PathBuf>,
    supply: SupplyArgs,
    registry: super::registry::RegistryArgs,
) -> anyhow::Result<OutputOptions> {
    let SupplyArgs { sbom, sbom_dir, sign_key } = supply;
    Ok(OutputOptions {
        outputs: list("output", outputs, str::parse::<Target>)?,
        load,
        tags: check_tags("--tag", tags)?,
        push,
        cache_repo: None,
        cache_dir,
        sbom,
        sbom_dir,
        sign_key,
        registry,
    })
}

/// `--NAME VALUE` parsed; an error names the flag and the value.
fn flag<T, E: Into<anyhow::Error>>(
    name: &str,
    value: Option<String>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> anyhow::Result<Option<T>> {
    value.map(|v| parse(&v).map_err(Into::into).with_context(|| format!("--{name} {v:?}"))).transpose()
}

/// Each `--NAME VALUE` of a repeatable flag, parsed.
fn list<T, E: Into<anyhow::Error>>(
    name: &str,
    values: Vec<String>,
    parse: impl Fn(&str) -> Result<T, E>,
) -> anyhow::Result<Vec<T>> {
    values.iter().map(|v| parse(v).map_err(Into::into).with_context(|| format!("--{name} {v:?}"))).collect()
}

/// `--NAME KEY=VALUE` pairs.
fn pairs(name: &str, values: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    values.iter().map(|v| key_value(name, v)).collect()
}
