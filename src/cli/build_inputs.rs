//! The builder's inputs (docs/builder-inputs.md): `--build-env` merged key by key with
//! `build_env` (flags win), `--secret` and `--ssh` added to those of a `--config` file (a
//! project's own file may not name them), `--build-ca`, `--hex-client` and `--assets` over their
//! keys, and `[[hex.repos]]` from the file; here the merged options become [`BuilderInputs`].

use super::build_options::{CaChoice, InputOptions};
use crate::builder::inputs::{self, AssetsMode, BuilderInputs};
use anyhow::Context;
use std::path::{Path, PathBuf};

impl InputOptions {
    /// The validated inputs: secrets read (a missing one fails here), agents and files checked.
    pub(super) fn settings(self) -> anyhow::Result<BuilderInputs> {
        let InputOptions { build_env, secrets, ssh, build_ca, hex_client, assets, hex_repos } = self;
        let getenv = |k: &str| std::env::var(k).ok();
        let mut read: Vec<inputs::Secret> = Vec::new();
        for spec in &secrets {
            let secret = inputs::parse_secret(spec, getenv)?;
            if read.iter().any(|s| s.id == secret.id) {
                anyhow::bail!("--secret: the id {:?} is given twice", secret.id);
            }
            read.push(secret);
        }
        let ssh = ssh.iter().map(|s| inputs::parse_ssh(s, getenv)).collect::<Result<Vec<_>, _>>()?;
        let ca_bundle = match build_ca {
            Some(CaChoice::None) => None,
            Some(CaChoice::File(file)) => Some(existing(&file, "--build-ca")?),
            None => inputs::host_ca_bundle(getenv),
        };
        let hex_client = hex_client.map(|p| existing(&p, "--hex-client")).transpose()?;
        let built = BuilderInputs {
            env: build_env,
            secrets: read,
            ssh,
            hex_repos,
            hex_client,
            ca_bundle,
            assets: assets.unwrap_or(AssetsMode::Auto),
        };
        built.check()?;
        Ok(built)
    }
}

fn existing(path: &Path, flag: &str) -> anyhow::Result<PathBuf> {
    if !path.is_file() {
        anyhow::bail!("{flag} {}: no such file", path.display());
    }
    Ok(path.to_path_buf())
}

/// A `[[hex.repos]]` entry of the file: its public key read (relative to the file).
pub(super) fn hex_repo(
    r: crate::config::HexRepoConfig,
    resolve: impl Fn(&Path) -> PathBuf,
) -> anyhow::Result<inputs::HexRepo> {
    let crate::config::HexRepoConfig { name, url, public_key, auth_secret } = r;
    let public_key = match public_key {
        Some(p) => {
            let path = resolve(&p);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("hex.repos {name}: cannot read the public key {}", path.display()))?;
            Some(text)
        }
        None => None,
    };
    Ok(inputs::HexRepo { name, url: url.trim_end_matches('/').to_string(), public_key, auth_secret })
}
