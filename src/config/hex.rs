//! `[hex]` in `release-oci.toml`: the Hex repositories a build fetches from, as `mix hex.repo
//! add|set` would configure them, and a Hex client archive for builders that have none.
//!
//! ```toml
//! [hex]
//! client = "vendor/hex-2.5.1.ez"       # optional: installed when the builder has no Hex
//!
//! [[hex.repos]]
//! name = "acme"                        # or "hexpm": replaces the public repository's URL and key
//! url = "https://hex.acme.example"
//! public_key = "keys/acme.pem"         # relative to the file
//! auth_secret = "acme_key"             # the id of a --secret; optional
//! ```

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HexConfig {
    /// `--hex-client`: a Hex client archive (`hex-VERSION.ez`).
    pub client: Option<PathBuf>,
    /// The repositories, in order.
    pub repos: Option<Vec<HexRepoConfig>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HexRepoConfig {
    pub name: String,
    pub url: String,
    /// The PEM public key that signs the repository's registry (relative to the file).
    pub public_key: Option<PathBuf>,
    /// The id of the `--secret` whose value is the repository's auth key.
    pub auth_secret: Option<String>,
}

impl HexConfig {
    /// Names: letters, digits, `_`, `-` (and `:` as in `hexpm:org`); URLs: http(s), no blanks; no
    /// name twice.
    pub(super) fn check(&self) -> Result<(), String> {
        let mut seen = Vec::new();
        for r in self.repos.iter().flatten() {
            let name_ok = !r.name.is_empty() && r.name.chars().all(|c| c.is_ascii_alphanumeric() || "_-:".contains(c));
            if !name_ok {
                return Err(format!("hex.repos: name {:?} is not a repository name", r.name));
            }
            let url_ok = (r.url.starts_with("https://") || r.url.starts_with("http://"))
                && !r.url.chars().any(char::is_whitespace);
            if !url_ok {
                return Err(format!("hex.repos {}: url {:?} is not an http(s) URL", r.name, r.url));
            }
            if seen.contains(&&r.name) {
                return Err(format!("hex.repos: {} is configured twice", r.name));
            }
            seen.push(&r.name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ProjectConfig;

    #[test]
    fn hex_repos_parse_and_are_checked() {
        let text = "build_env = { HEX_MIRROR = \"http://m\" }\nassets = \"skip\"\n[hex]\nclient = \"hex.ez\"\n\
                    [[hex.repos]]\nname = \"acme\"\nurl = \"https://hex.acme.example\"\npublic_key = \"keys/acme.pem\"\nauth_secret = \"k\"\n";
        let c = ProjectConfig::parse(text).unwrap();
        let hex = c.hex.clone().unwrap();
        let repo = &hex.repos.as_ref().unwrap()[0];
        assert_eq!((repo.name.as_str(), repo.auth_secret.as_deref()), ("acme", Some("k")));
        assert!(hex.check().is_ok());
        assert_eq!(c.assets.as_deref(), Some("skip"));
        for (bad, why) in [
            ("[[hex.repos]]\nname = \"a b\"\nurl = \"https://x\"\n", "not a repository name"),
            ("[[hex.repos]]\nname = \"a\"\nurl = \"ftp://x\"\n", "not an http(s) URL"),
            (
                "[[hex.repos]]\nname = \"a\"\nurl = \"https://x\"\n[[hex.repos]]\nname = \"a\"\nurl = \"https://y\"\n",
                "twice",
            ),
        ] {
            let err = ProjectConfig::parse(bad).unwrap().hex.unwrap().check().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(ProjectConfig::parse("[[hex.repos]]\nname = \"a\"\nurl = \"https://x\"\ntoken = \"t\"\n").is_err());
    }

    #[test]
    fn a_projects_own_file_may_not_name_secrets_or_agents_or_paths_outside() {
        let dir = tempfile::tempdir().unwrap();
        for (text, key) in [
            ("secrets = [\"id=k,env=HOME\"]\n", "secrets"),
            ("ssh = [\"default\"]\n", "ssh"),
            ("build_ca = \"/etc/ssl/other.pem\"\n", "build_ca"),
            ("[hex]\nclient = \"../hex.ez\"\n", "hex.client"),
        ] {
            let mut c = ProjectConfig::parse(text).unwrap();
            c.dir = dir.path().to_path_buf();
            let err = c.check_untrusted().unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
