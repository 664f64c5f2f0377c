//! The checks and merges of `release-oci k8s`'s settings (flag, else the `[k8s]` table of
//! `release-oci.toml`, else the default), one concern each.

use super::ClusterArg;
use crate::config::MigrateValue;
use crate::k8s::{self, Cluster, Migration, MigrationMode, Spec, migrate_command, naming};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::Path;

/// The clustering inputs (each the flag, else the file's value).
pub(super) struct ClusterInputs {
    pub(super) cluster: Option<ClusterArg>,
    pub(super) cookie_secret: Option<String>,
    pub(super) cookie_secret_key: Option<String>,
    pub(super) dist_port: Option<u16>,
    pub(super) domain: Option<String>,
}

/// The migration inputs.
pub(super) struct MigrateInputs<'a> {
    pub(super) flag: Option<Option<String>>,
    pub(super) flag_init: bool,
    pub(super) file: Option<MigrateValue>,
    pub(super) file_init: Option<bool>,
    pub(super) project: &'a Path,
    pub(super) release_dir: Option<&'a Path>,
}

/// An unpinned image: pods of one Deployment may run different images, and the migration Job's
/// name (one per image) cannot follow the image.
pub(super) fn image_warnings(spec: &Spec) -> Vec<String> {
    let image = &spec.image;
    if image.starts_with(k8s::resolve::SCHEME) || image.contains("@sha256:") {
        return Vec::new();
    }
    let mut w = vec![format!(
        "--image {image} is not pinned by digest: pods of one Deployment may run different images; \
         use REPO@sha256:... (`release-oci build --push` prints it)"
    )];
    if spec.migration.as_ref().is_some_and(|m| m.mode == MigrationMode::Job) {
        w.push(format!(
            "--migrate: the Job is named after the reference {image}, so a new image under the same tag does not \
             migrate again; pin the image by digest"
        ));
    }
    w
}

pub(super) fn check_namespace(namespace: Option<String>) -> anyhow::Result<Option<String>> {
    if let Some(ns) = &namespace {
        naming::check_subdomain("--namespace", ns, 63)?;
        if ns.contains('.') {
            bail!("--namespace {ns:?} must not contain `.`");
        }
    }
    Ok(namespace)
}

pub(super) fn check_health(health: Option<String>) -> anyhow::Result<Option<String>> {
    if let Some(h) = &health
        && !h.starts_with('/')
    {
        bail!("--health {h:?} must be an HTTP path starting with `/`");
    }
    Ok(health)
}

/// The clustering, and the cookie's Secret and key.
pub(super) type ClusterAndCookie = (Option<Cluster>, Option<(String, String)>);

/// The clustering (`--cluster dns`, epmd-less port, DNS domain) and the cookie's Secret and key.
pub(super) fn cluster_settings(i: ClusterInputs, port: u16) -> anyhow::Result<ClusterAndCookie> {
    let cluster = i.cluster == Some(ClusterArg::Dns);
    if cluster && i.cookie_secret.is_none() {
        bail!(
            "--cluster dns needs --cookie-secret NAME: every node must share one cookie, read from a Secret \
             (create it with `kubectl create secret generic NAME --from-literal=cookie=$(openssl rand -hex 32)`)"
        );
    }
    if let Some(s) = &i.cookie_secret {
        naming::check_subdomain("--cookie-secret", s, 253)?;
    }
    let key = i.cookie_secret_key.unwrap_or_else(|| "cookie".into());
    if key.is_empty() || !key.chars().all(|ch| ch.is_ascii_alphanumeric() || "-._".contains(ch)) {
        bail!("--cookie-secret-key {key:?} is not a Secret key (letters, digits, `-`, `_`, `.`)");
    }
    match i.dist_port {
        Some(_) if !cluster => bail!("--dist-port is for Erlang distribution; add --cluster dns"),
        Some(p) if p == port || p == 0 => bail!("--dist-port {p} must differ from --port and be non-zero"),
        _ => {}
    }
    let domain = i.domain.unwrap_or_else(|| "cluster.local".into());
    let cluster = cluster.then_some(Cluster { dist_port: i.dist_port, domain });
    Ok((cluster, i.cookie_secret.map(|s| (s, key))))
}

/// The file's `env`, then each `--env KEY=VALUE` (a key given again replaces the earlier value).
pub(super) fn merge_env(
    file: Option<BTreeMap<String, String>>,
    flags: &[String],
) -> anyhow::Result<Vec<(String, String)>> {
    let mut env: Vec<(String, String)> = file.unwrap_or_default().into_iter().collect();
    for e in flags {
        let (k, v) = e
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .with_context(|| format!("--env {e:?} is not KEY=VALUE"))?;
        env.retain(|(old, _)| old != k);
        env.push((k.to_string(), v.to_string()));
    }
    if env.iter().any(|(k, _)| k == "RELEASE_COOKIE") {
        bail!("RELEASE_COOKIE must not be a literal in a manifest; use --cookie-secret NAME");
    }
    Ok(env)
}

/// The file's `env_from`, then the flags' (envFrom: a later Secret wins for a key), each once.
pub(super) fn merge_env_from(file: Option<Vec<String>>, flags: Vec<String>) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for secret in file.unwrap_or_default().into_iter().chain(flags) {
        naming::check_subdomain("--env-from", &secret, 253)?;
        if !out.contains(&secret) {
            out.push(secret);
        }
    }
    Ok(out)
}

/// `PHX_HOST`: a host name (no scheme, path or port), and not also given with `--env`.
pub(super) fn check_phx_host(host: Option<String>, env: &[(String, String)]) -> anyhow::Result<Option<String>> {
    let Some(h) = host else { return Ok(None) };
    let ok = !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c));
    if !ok {
        bail!(
            "--phx-host {h:?} is not a host name: give the name clients use, e.g. app.example.com (no scheme, path or port)"
        );
    }
    if env.iter().any(|(k, _)| k == k8s::objects::PHX_HOST) {
        bail!("PHX_HOST is given twice, by --phx-host (or phx_host) and by --env (or [k8s] env); keep one");
    }
    Ok(Some(h))
}

/// `--migrate[=COMMAND]`, `--migrate-init` and the file's `migrate`, `migrate_init`: the flag's
/// command, else the file's, else the project's default ([`migrate_command::default_command`]).
pub(super) fn migration(i: MigrateInputs) -> anyhow::Result<Option<Migration>> {
    let file_command = match &i.file {
        Some(MigrateValue::Command(c)) => Some(c.clone()),
        _ => None,
    };
    let file_on = matches!(i.file, Some(MigrateValue::Command(_)) | Some(MigrateValue::Enabled(true)));
    let file_off = matches!(i.file, Some(MigrateValue::Enabled(false)));
    let file_init = i.file_init == Some(true);
    let on = i.flag.is_some() || i.flag_init || file_on || (file_init && !file_off);
    if !on {
        if file_init {
            bail!("[k8s] migrate_init = true with migrate = false: remove one (migrate_init alone migrates)");
        }
        return Ok(None);
    }
    let args = match i.flag.flatten().or(file_command) {
        Some(command) => migrate_command::parse(&command)?,
        None => migrate_command::default_command(i.project, i.release_dir)?,
    };
    let mode = if i.flag_init || file_init { MigrationMode::InitContainer } else { MigrationMode::Job };
    Ok(Some(Migration { args, mode }))
}
