//! The release directory as `mix release` (or relx) lays it out: `bin/NAME`, `erts-VSN/`,
//! `lib/APP-VSN/`, `releases/start_erl.data`, `releases/VSN/NAME.rel`, `releases/COOKIE`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("cannot read release directory {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a release: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// An application in the release (`lib/NAME-VSN`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct App {
    pub name: String,
    pub version: String,
    /// Directory name under `lib/` (`NAME-VSN`).
    pub dir: String,
}

/// Which tool made the release: it decides the start command, where the cookie comes from and
/// which files are rendered at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `mix release`: `bin/NAME start`, `releases/VSN/env.sh`, `RELEASE_COOKIE`.
    Mix,
    /// relx (`rebar3 release`): `bin/NAME foreground`, `vm.args(.src)`, `RELX_COOKIE`.
    Relx,
}

#[derive(Debug, Clone)]
pub struct Release {
    pub root: PathBuf,
    pub name: String,
    pub version: String,
    /// `None` when the release was assembled with `include_erts: false`.
    pub erts_version: Option<String>,
    /// The ERTS version the release was built for (the `.rel` file's): the one it includes, or
    /// the one the image must provide when it includes none.
    pub required_erts: String,
    pub flavour: Flavour,
    /// The applications the `.rel` file lists, in its order.
    pub apps: Vec<App>,
}

impl Release {
    /// Reads the release at `root`. `name` is the release name when known (else the only
    /// `bin/` start script, i.e. the file whose `releases/VSN/NAME.rel` exists).
    pub fn open(root: &Path, name: Option<&str>) -> Result<Release, ReleaseError> {
        let invalid = |reason: String| ReleaseError::Invalid { path: root.to_path_buf(), reason };
        let start_erl = root.join("releases").join("start_erl.data");
        let data = fs::read_to_string(&start_erl).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => invalid("releases/start_erl.data is missing".into()),
            _ => ReleaseError::Io { path: start_erl.clone(), source: e },
        })?;
        let mut words = data.split_whitespace();
        let (erts_vsn, version) = match (words.next(), words.next()) {
            (Some(e), Some(v)) => (e.to_string(), v.to_string()),
            _ => return Err(invalid(format!("releases/start_erl.data is malformed: {data:?}"))),
        };
        let vsn_dir = root.join("releases").join(&version);
        let name = match name {
            Some(n) => n.to_string(),
            None => find_rel_name(&vsn_dir).map_err(&invalid)?,
        };
        let rel_file = vsn_dir.join(format!("{name}.rel"));
        let rel = fs::read_to_string(&rel_file).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => invalid(format!("releases/{version}/{name}.rel is missing")),
            _ => ReleaseError::Io { path: rel_file.clone(), source: e },
        })?;
        let parsed = parse_rel(&rel).ok_or_else(|| invalid(format!("cannot parse releases/{version}/{name}.rel")))?;
        if !root.join("bin").join(&name).is_file() {
            return Err(invalid(format!(
                "bin/{name} is missing: the release has no unix start script \
                 (is `include_executables_for` set without :unix in mix.exs?)"
            )));
        }
        let erts_dir = root.join(format!("erts-{}", parsed.erts));
        let erts_version = erts_dir.is_dir().then(|| parsed.erts.clone());
        if erts_vsn != parsed.erts {
            return Err(invalid(format!("start_erl.data names ERTS {erts_vsn} but {name}.rel names {}", parsed.erts)));
        }
        let apps = parsed.apps.into_iter().map(|(n, v)| App { dir: format!("{n}-{v}"), name: n, version: v }).collect();
        let script = root.join("bin").join(&name);
        let flavour = flavour(&fs::read(&script).map_err(|source| ReleaseError::Io { path: script, source })?);
        Ok(Release { root: root.to_path_buf(), name, version, erts_version, required_erts: parsed.erts, flavour, apps })
    }

    /// The command of `bin/NAME` that runs the release in the foreground.
    pub fn default_command(&self) -> &'static str {
        match self.flavour {
            Flavour::Mix => "start",
            Flavour::Relx => "foreground",
        }
    }

    /// The directory `releases/VSN`.
    pub fn version_dir(&self) -> PathBuf {
        self.root.join("releases").join(&self.version)
    }
}

/// relx start scripts are full of `RELX_` variables; mix's never mention relx.
fn flavour(start_script: &[u8]) -> Flavour {
    if start_script.windows(5).any(|w| w == b"RELX_") { Flavour::Relx } else { Flavour::Mix }
}

fn find_rel_name(vsn_dir: &Path) -> Result<String, String> {
    let entries = fs::read_dir(vsn_dir).map_err(|e| format!("cannot read {}: {e}", vsn_dir.display()))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".rel")).map(str::to_string))
        .collect();
    names.sort();
    match names.len() {
        1 => Ok(names.remove(0)),
        0 => Err(format!("no .rel file in {}", vsn_dir.display())),
        _ => Err(format!("several .rel files in {}: {}", vsn_dir.display(), names.join(", "))),
    }
}

struct ParsedRel {
    erts: String,
    apps: Vec<(String, String)>,
}

/// Parses the Erlang term in a `.rel` file:
/// `{release, {"Name","Vsn"}, {erts,"EVsn"}, [{App,"Vsn"} | {App,"Vsn",Type} | {App,"Vsn",Incl} ...]}.`
/// Only the shape `mix release` and relx write is understood; anything else gives `None`.
fn parse_rel(text: &str) -> Option<ParsedRel> {
    // Strip comments (%% to end of line), outside strings: .rel files contain no '%' in strings.
    let body: String = text.lines().map(|l| l.split('%').next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let erts_at = body.find("{erts")?;
    let erts = first_string(&body[erts_at..])?;
    let list_start = erts_at + body[erts_at..].find('[')?;
    let list = &body[list_start + 1..];
    let mut apps = Vec::new();
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.starts_with(']') {
            break;
        }
        let open = rest.strip_prefix('{')?;
        let name_end = open.find(',')?;
        let name = open[..name_end].trim().trim_matches('\'').to_string();
        let vsn = first_string(&open[name_end..])?;
        // Skip to the end of this tuple (an included-apps list may contain nested brackets).
        let mut depth = 1;
        let mut end = None;
        for (i, c) in open.char_indices() {
            match c {
                '{' | '[' => depth += 1,
                '}' | ']' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &open[end? + 1..];
        if name.is_empty() {
            return None;
        }
        apps.push((name, vsn));
    }
    Some(ParsedRel { erts, apps })
}

fn first_string(s: &str) -> Option<String> {
    let start = s.find('"')? + 1;
    let len = s[start..].find('"')?;
    Some(s[start..start + len].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REL: &str = r#"%% coding: utf-8
{release,{"relprobe","0.1.0"},
         {erts,"13.1.5"},
         [{kernel,"8.5.3",permanent},
          {stdlib,"4.2",permanent},
          {elixir,"1.14.0",permanent},
          {relprobe,"0.1.0",permanent},
          {iex,"1.14.0",none},
          {inc,"1.0",[dep_a, dep_b]},
          {logger,"1.14.0",permanent}]}.
"#;

    fn fake_release(dir: &Path, with_bin: bool) {
        let r = dir.join("releases/0.1.0");
        fs::create_dir_all(&r).unwrap();
        fs::write(dir.join("releases/start_erl.data"), "13.1.5 0.1.0").unwrap();
        fs::write(r.join("relprobe.rel"), REL).unwrap();
        fs::create_dir_all(dir.join("erts-13.1.5/bin")).unwrap();
        fs::create_dir_all(dir.join("bin")).unwrap();
        if with_bin {
            fs::write(dir.join("bin/relprobe"), "#!/bin/sh\n").unwrap();
        }
    }

    #[test]
    fn parses_a_mix_release() {
        let dir = tempfile::tempdir().unwrap();
        fake_release(dir.path(), true);
        let rel = Release::open(dir.path(), None).unwrap();
        assert_eq!(rel.name, "relprobe");
        assert_eq!(rel.version, "0.1.0");
        assert_eq!(rel.erts_version.as_deref(), Some("13.1.5"));
        assert_eq!((rel.flavour, rel.default_command()), (Flavour::Mix, "start"));
        let names: Vec<_> = rel.apps.iter().map(|a| a.dir.as_str()).collect();
        assert_eq!(
            names,
            ["kernel-8.5.3", "stdlib-4.2", "elixir-1.14.0", "relprobe-0.1.0", "iex-1.14.0", "inc-1.0", "logger-1.14.0"]
        );
    }

    #[test]
    fn missing_start_script_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fake_release(dir.path(), false);
        let e = Release::open(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("bin/relprobe is missing"), "{e}");
    }

    #[test]
    fn not_a_release() {
        let dir = tempfile::tempdir().unwrap();
        let e = Release::open(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("start_erl.data is missing"), "{e}");
    }

    #[test]
    fn relx_releases_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        fake_release(dir.path(), true);
        fs::write(dir.path().join("bin/relprobe"), "#!/bin/sh\nif [ -n \"$RELX_COOKIE\" ]; then :; fi\n").unwrap();
        let rel = Release::open(dir.path(), None).unwrap();
        assert_eq!((rel.flavour, rel.default_command()), (Flavour::Relx, "foreground"));
    }

    #[test]
    fn include_erts_false_has_no_erts_version() {
        let dir = tempfile::tempdir().unwrap();
        fake_release(dir.path(), true);
        fs::remove_dir_all(dir.path().join("erts-13.1.5")).unwrap();
        let rel = Release::open(dir.path(), None).unwrap();
        assert_eq!((rel.erts_version, rel.required_erts.as_str()), (None, "13.1.5"));
    }
}
