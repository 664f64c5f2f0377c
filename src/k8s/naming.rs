//! Names: Kubernetes object names, and the release name guessed from the project's files
//! without running `mix` (which takes seconds and needs the project's dependencies).

use super::K8sError;
use std::path::Path;

/// Checks an RFC 1035 label (what Service names must be; fine for every other object too).
pub fn check_name(what: &'static str, value: &str) -> Result<(), K8sError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok { Ok(()) } else { Err(K8sError::Name { what, value: value.to_string(), max: 63 }) }
}

/// Checks an RFC 1123 subdomain (Secret and namespace names): lowercase letters, digits, `-`
/// and `.`, starting and ending with a letter or digit.
pub fn check_subdomain(what: &'static str, value: &str, max: usize) -> Result<(), K8sError> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = !value.is_empty()
        && value.len() <= max
        && value.starts_with(alnum)
        && value.ends_with(alnum)
        && value.chars().all(|c| alnum(c) || c == '-' || c == '.');
    if ok { Ok(()) } else { Err(K8sError::Name { what, value: value.to_string(), max }) }
}

/// Hex digits of an image digest that name an object made for that image (the migration Job).
pub const DIGEST_CHARS: usize = 10;

/// The longest prefix of a name that gets `-` and [`DIGEST_CHARS`] digits appended (the result is
/// an RFC 1035 label: at most 63 characters).
pub const MAX_DIGEST_PREFIX: usize = 63 - 1 - DIGEST_CHARS;

/// The hex of `REPO@sha256:HEX`, when the reference is pinned by a well-formed digest.
pub fn digest_hex(reference: &str) -> Option<&str> {
    let (_, hex) = reference.rsplit_once("@sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then_some(hex)
}

/// `PREFIX-` and the first [`DIGEST_CHARS`] digits of `hex`: one name per image.
pub fn name_for_digest(prefix: &str, hex: &str) -> String {
    let digits: String = hex.chars().take(DIGEST_CHARS).collect();
    format!("{prefix}-{digits}")
}

/// A Kubernetes name from a release or directory name: lowercase, `_` and other characters
/// become `-`, at most 63 characters, no leading or trailing `-`, a letter first.
pub fn name_from(raw: &str) -> String {
    let mapped: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let mut name: String = mapped.trim_start_matches(|c: char| !c.is_ascii_lowercase()).chars().take(63).collect();
    while name.ends_with('-') {
        name.pop();
    }
    name
}

/// The release name of the project at `dir`, read from its files: `app: :NAME` in `mix.exs`,
/// the first `{release, {NAME, ...}` in `rebar.config`; else the directory's name. A project
/// whose release is named differently from its app takes `--release`.
pub fn release_name(dir: &Path) -> Option<String> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    if let Some(name) = read("mix.exs").as_deref().and_then(mix_app_name) {
        return Some(name);
    }
    if let Some(name) = read("rebar.config").as_deref().and_then(rebar_release_name) {
        return Some(name);
    }
    let base = dir.canonicalize().ok()?.file_name()?.to_string_lossy().replace('-', "_");
    (!base.is_empty()).then_some(base)
}

/// `app: :hello_web` in a `mix.exs` (the `project/0` keyword list).
pub fn mix_app_name(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(i) = rest.find("app:") {
        let before = rest[..i].chars().next_back();
        let after = rest[i + 4..].trim_start();
        rest = &rest[i + 4..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(atom) = after.strip_prefix(':') {
            let name = atom_prefix(atom);
            if !name.is_empty() {
                return Some(name);
            }
        }
    }
    None
}

/// `{release, {NAME, "VSN"}, ...}` in a `rebar.config`.
pub fn rebar_release_name(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(i) = rest.find("{release,") {
        rest = &rest[i + "{release,".len()..];
        if let Some(after) = rest.trim_start().strip_prefix('{') {
            let name = atom_prefix(after.trim_start());
            if !name.is_empty() {
                return Some(name);
            }
        }
    }
    None
}

fn atom_prefix(s: &str) -> String {
    let name: String = s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    if name.starts_with(|c: char| c.is_ascii_lowercase()) { name } else { String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name_from("hello_web"), "hello-web");
        assert_eq!(name_from("_My.App_"), "my-app");
        assert_eq!(name_from("9lives"), "lives");
        assert_eq!(name_from(&"a".repeat(70)).len(), 63);
        assert!(check_name("--name", "hello-web").is_ok());
        for bad in ["", "hello_web", "Hello", "-a", "a-", "1a", &"a".repeat(64)] {
            assert!(check_name("--name", bad).is_err(), "{bad:?}");
        }
        assert!(check_subdomain("--cookie-secret", "erlang.cookie-1", 253).is_ok());
        assert!(check_subdomain("--cookie-secret", "Cookie", 253).is_err());
        let e = check_name("--name", "x_y").unwrap_err().to_string();
        assert!(e.starts_with("--name \"x_y\" is not a valid Kubernetes name"), "{e}");
    }

    #[test]
    fn release_names_from_project_files() {
        let mix = "defmodule X.MixProject do\n  def project do\n    [\n      my_app: 1,\n      app: :hello_web,\n";
        assert_eq!(mix_app_name(mix).as_deref(), Some("hello_web"));
        assert_eq!(mix_app_name("[app:   :x2]").as_deref(), Some("x2"));
        assert_eq!(mix_app_name("[myapp: :x]"), None);
        assert_eq!(rebar_release_name("{relx, [{release, {web_rel, \"0.1.0\"}, [web]}]}.").as_deref(), Some("web_rel"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("my-service");
        std::fs::create_dir(&p).unwrap();
        assert_eq!(release_name(&p).as_deref(), Some("my_service"));
        std::fs::write(p.join("mix.exs"), mix).unwrap();
        assert_eq!(release_name(&p).as_deref(), Some("hello_web"));
    }
}
