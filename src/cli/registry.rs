//! Registry flags shared by `build` and `push`, `release-oci push` itself, and their validation.

use crate::registry::{Login, Reference, RegistryOptions, Secret, is_bare_tag};
use anyhow::{Context, bail};
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// Allow plain HTTP (and unverified TLS) for this registry HOST[:PORT] (repeatable). Loopback
    /// registries (localhost, 127.0.0.0/8, ::1) may always use plain HTTP.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
    /// Trust the CA certificates in this PEM file for registries, besides the system's (repeatable).
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_certs: Vec<PathBuf>,
    /// User name for the registry pushed to (with --password-stdin); otherwise Docker's login
    /// ($DOCKER_CONFIG/config.json: auths, credsStore, credHelpers) is used.
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password (or token) for --username from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

impl RegistryArgs {
    /// Options for reaching registries; the login (if any) is for `login_registry`. The
    /// password is read from stdin here, once.
    pub fn options(&self, login_registry: Option<&str>) -> anyhow::Result<RegistryOptions> {
        let login = match (&self.username, login_registry) {
            (Some(username), Some(registry)) => {
                let mut password = String::new();
                std::io::stdin().read_to_string(&mut password).context("reading the password from standard input")?;
                let password = password.trim_end_matches(['\r', '\n']).to_string();
                if password.is_empty() {
                    bail!("--password-stdin: standard input is empty; pipe the password in");
                }
                Some(Login {
                    registry: registry.to_string(),
                    username: username.clone(),
                    password: Secret::new(password),
                })
            }
            (Some(_), None) => bail!("--username is for the registry of --push; there is none"),
            _ => None,
        };
        for ca in &self.ca_certs {
            if !ca.is_file() {
                bail!("--ca-cert {}: no such file", ca.display());
            }
        }
        Ok(RegistryOptions {
            insecure: self.insecure_registries.clone(),
            ca_certs: self.ca_certs.clone(),
            login,
            ..Default::default()
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The image: oci:DIR[:TAG] or docker-archive:FILE.
    pub image: String,
    /// Where to: HOST[:PORT]/REPOSITORY[:TAG] (tag `latest` when none is given).
    pub reference: String,
    /// More tags for the same image in the same repository (repeatable).
    #[arg(long = "tag", short = 't')]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The registry sink's settings (`output::PushSettings`), made here from the flags.
pub use crate::output::PushSettings;

impl PushSettings {
    /// From the `--push`/`push` reference and `--tag`s: bare tags (`latest`) and full names in
    /// the same repository (`HOST/REPO:TAG`) add tags; other names are not for the registry.
    pub fn new(reference: &str, extra: &[String]) -> anyhow::Result<PushSettings> {
        let reference: Reference = reference.parse()?;
        if let Some(d) = &reference.digest {
            bail!(
                "push to {reference}: a pushed image's digest is computed, not chosen; drop @{d} and give a tag (or none)"
            );
        }
        let mut tags = vec![reference.tag.clone().unwrap_or_else(|| "latest".into())];
        for t in extra {
            let tag = if is_bare_tag(t) {
                Some(t.clone())
            } else {
                match t.parse::<Reference>() {
                    Ok(r) if r.registry == reference.registry && r.repository == reference.repository => r.tag,
                    _ => None,
                }
            };
            if let Some(tag) = tag
                && !tags.contains(&tag)
            {
                tags.push(tag);
            }
        }
        Ok(PushSettings { reference, tags })
    }

    /// `--tag T` as an image name for the engine and archives: bare tags become `REPO:T`.
    pub fn qualify(&self, tag: &str) -> String {
        if is_bare_tag(tag) { format!("{}:{tag}", self.reference.repository_ref()) } else { tag.to_string() }
    }
}

/// `--cache-repo HOST[:PORT]/REPOSITORY`: a repository of a registry (its tags are the
/// fingerprints: none may be given).
pub fn cache_repo(reference: &str) -> anyhow::Result<Reference> {
    let what = || format!("--cache-repo {reference:?}");
    let bare = reference.strip_prefix("docker://").unwrap_or(reference);
    if !crate::registry::names_registry(bare) {
        bail!("{}: name the registry too (HOST[:PORT]/REPOSITORY, e.g. registry.example.com/ci/cache)", what());
    }
    let parsed: Reference = bare.parse().with_context(what)?;
    if parsed.tag.is_some() || parsed.digest.is_some() {
        bail!("{}: a repository without tag or digest (the cache's tags are rc-FINGERPRINT)", what());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_repo_is_a_registry_repository_without_tag() {
        let r = cache_repo("127.0.0.1:5000/ci/cache").unwrap();
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("127.0.0.1:5000", "ci/cache"));
        assert!(cache_repo("ci/cache").unwrap_err().to_string().contains("name the registry"));
        assert!(cache_repo("r.example.com/ci/cache:x").unwrap_err().to_string().contains("without tag"));
    }

    #[test]
    fn push_tags() {
        let p = PushSettings::new("127.0.0.1:5000/team/app:1.4.2", &["latest".into(), "1.4.2".into()]).unwrap();
        assert_eq!(p.tags, vec!["1.4.2", "latest"]);
        assert_eq!(p.reference.repository_ref(), "127.0.0.1:5000/team/app");
        assert_eq!(p.qualify("latest"), "127.0.0.1:5000/team/app:latest");
        assert_eq!(p.qualify("other/name:x"), "other/name:x");
        let p = PushSettings::new("r.example.com/a", &["r.example.com/a:v2".into(), "other/b:v3".into()]).unwrap();
        assert_eq!(p.tags, vec!["latest", "v2"]);
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let err = PushSettings::new(&format!("r.example.com/a@{d}"), &[]).unwrap_err().to_string();
        assert!(err.contains("digest is computed"), "{err}");
        assert!(PushSettings::new("r.example.com/A", &[]).is_err());
    }

    #[test]
    fn username_without_a_push_target_is_refused() {
        let a = RegistryArgs { username: Some("u".into()), password_stdin: true, ..Default::default() };
        assert!(a.options(None).is_err());
        let a = RegistryArgs { ca_certs: vec!["/nonexistent/ca.pem".into()], ..Default::default() };
        assert!(a.options(None).unwrap_err().to_string().contains("/nonexistent/ca.pem"));
    }
}
