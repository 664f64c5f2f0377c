//! The builder's inputs from `build` flags and `release-oci.toml` (docs/builder-inputs.md):
//! `--build-env` merged key by key with `build_env` (flags win), `--secret` and `--ssh` added to
//! those of a `--config` file (a project's own file may not name them), `--build-ca`,
//! `--hex-client` and `--assets` over their keys, and `[[hex.repos]]` from the file.

use super::build::BuildArgs;
use crate::builder::inputs::{self, AssetsMode, BuilderInputs, HexRepo};
use crate::config::ProjectConfig;
use anyhow::Context;
use std::path::PathBuf;

impl BuildArgs {
    /// Fills the input flags that were not given from the file.
    pub(super) fn merge_inputs(&mut self, c: &ProjectConfig) -> anyhow::Result<()> {
        if let Some(file_env) = &c.build_env {
            let mut merged: Vec<String> = file_env
                .iter()
                .filter(|(k, _)| !self.build_env.iter().any(|e| e.split_once('=').is_some_and(|(fk, _)| fk == *k)))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            merged.append(&mut self.build_env);
            self.build_env = merged;
        }
        let mut secrets = c.secrets.clone().unwrap_or_default();
        secrets.append(&mut self.secrets);
        self.secrets = secrets;
        let mut ssh = c.ssh.clone().unwrap_or_default();
        ssh.append(&mut self.ssh);
        self.ssh = ssh;
        if self.build_ca.is_none() {
            self.build_ca = c.build_ca.as_deref().map(|p| c.resolve_path(p).display().to_string());
        }
        fill_path(&mut self.hex_client, c.hex.as_ref().and_then(|h| h.client.as_deref()).map(|p| c.resolve_path(p)));
        if self.assets.is_none() {
            self.assets = c.assets.clone();
        }
        for r in c.hex.iter().flat_map(|h| h.repos.iter().flatten()) {
            let public_key = match &r.public_key {
                Some(p) => {
                    let path = c.resolve_path(p);
                    let text = std::fs::read_to_string(&path).with_context(|| {
                        format!("hex.repos {}: cannot read the public key {}", r.name, path.display())
                    })?;
                    Some(text)
                }
                None => None,
            };
            self.hex_repos.push(HexRepo {
                name: r.name.clone(),
                url: r.url.trim_end_matches('/').to_string(),
                public_key,
                auth_secret: r.auth_secret.clone(),
            });
        }
        Ok(())
    }

    /// The validated inputs: secrets read (a missing one fails here), agents and files checked.
    pub(super) fn builder_inputs(&self) -> anyhow::Result<BuilderInputs> {
        let getenv = |k: &str| std::env::var(k).ok();
        let env = self.build_env.iter().map(|e| inputs::parse_build_env(e)).collect::<Result<Vec<_>, _>>()?;
        let mut secrets = Vec::new();
        for spec in &self.secrets {
            let secret = inputs::parse_secret(spec, getenv)?;
            if secrets.iter().any(|s: &inputs::Secret| s.id == secret.id) {
                anyhow::bail!("--secret: the id {:?} is given twice", secret.id);
            }
            secrets.push(secret);
        }
        let ssh = self.ssh.iter().map(|s| inputs::parse_ssh(s, getenv)).collect::<Result<Vec<_>, _>>()?;
        let ca_bundle = match self.build_ca.as_deref() {
            Some("none") => None,
            Some(file) => Some(existing(file, "--build-ca")?),
            None => inputs::host_ca_bundle(getenv),
        };
        let hex_client = match &self.hex_client {
            Some(p) => Some(existing(&p.display().to_string(), "--hex-client")?),
            None => None,
        };
        let assets = match &self.assets {
            Some(a) => a.parse::<AssetsMode>()?,
            None => AssetsMode::Auto,
        };
        let built =
            BuilderInputs { env, secrets, ssh, hex_repos: self.hex_repos.clone(), hex_client, ca_bundle, assets };
        built.check()?;
        Ok(built)
    }
}

fn existing(file: &str, flag: &str) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(file);
    if !path.is_file() {
        anyhow::bail!("{flag} {file}: no such file");
    }
    Ok(path)
}

fn fill_path(slot: &mut Option<PathBuf>, value: Option<PathBuf>) {
    if slot.is_none() {
        *slot = value;
    }
}
