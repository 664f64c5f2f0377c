//! The releases a project's files name, read without building it, so that `--release NAME` for a
//! release the project cannot have fails before any builder runs ([`check`]). Only what the files
//! say for sure is used:
//! - a mix project whose `mix.exs` has one `releases: [NAME: ..., ...]`, a literal keyword list:
//!   those names; or no `releases` key at all (and no `apps_path`: not an umbrella) and one
//!   `app: :NAME`: that one release, named after the app (as `mix release` names it);
//! - a rebar3 project (without a `rebar.config.script`): the `{release, {NAME, VSN}, ...}` entries
//!   of `rebar.config`, those of its profiles included.
//!
//! Anything else (releases made by a function, a `releases:` that is not the only one, quoted
//! names) is left to the builder, which knows for sure. Strings, charlists, sigils and comments
//! are skipped: a `releases:` in a comment does not count.

use super::BuilderError;
use crate::project::{Project, ProjectKind};

/// Fails when `release` (a name; `all` and none always pass) is not one of the releases the
/// project's files name, listing them.
pub fn check(project: &Project, release: Option<&str>) -> Result<(), BuilderError> {
    let Some(wanted) = release.filter(|r| *r != "all") else { return Ok(()) };
    let Some(known) = known(project) else { return Ok(()) };
    if known.releases.iter().any(|r| r == wanted) {
        return Ok(());
    }
    Err(BuilderError::UnknownRelease {
        release: wanted.to_string(),
        file: project.root.join(known.file),
        how: known.how.to_string(),
        releases: known.releases,
    })
}

/// What the files say: the release names and where they come from.
#[derive(Debug, PartialEq, Eq)]
struct Known {
    file: &'static str,
    how: &'static str,
    releases: Vec<String>,
}

fn known(project: &Project) -> Option<Known> {
    let read = |name: &str| std::fs::read_to_string(project.root.join(name)).ok();
    match project.kind() {
        ProjectKind::Mix => mix_releases(&read("mix.exs")?),
        ProjectKind::Rebar3 if !project.root.join("rebar.config.script").exists() => {
            rebar3_releases(&read("rebar.config")?)
        }
        ProjectKind::Rebar3 => None,
    }
}

fn mix_releases(text: &str) -> Option<Known> {
    let code = code_only(text, Lang::Elixir);
    let releases = keys(&code, "releases");
    // `{:releases, ...}`, `Keyword.put(c, :releases, ...)`: another way in, not read here.
    if code.matches("releases").count() != releases.len() {
        return None;
    }
    let file = "mix.exs";
    match releases.as_slice() {
        [] if keys(&code, "apps_path").is_empty() => {
            let apps: Vec<String> = keys(&code, "app").into_iter().filter_map(|at| atom_after(&code[at..])).collect();
            match apps.as_slice() {
                [app] => Some(Known {
                    file,
                    how: "has no `releases:`: its one release is named after `app:`",
                    releases: vec![app.clone()],
                }),
                _ => None,
            }
        }
        [at] => {
            let releases = keyword_names(&code[*at..])?;
            Some(Known { file, how: "configures `releases:`", releases }).filter(|k| !k.releases.is_empty())
        }
        _ => None,
    }
}

fn rebar3_releases(text: &str) -> Option<Known> {
    let code = code_only(text, Lang::Erlang);
    let mut names = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("release") {
        let before = rest[..i].trim_end();
        rest = &rest[i + "release".len()..];
        // `{release, {NAME, VSN}, ...}` and nothing else (not `{release_name, ...}`).
        if !before.ends_with('{') || rest.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let after = rest.trim_start().strip_prefix(',')?.trim_start().strip_prefix('{')?.trim_start();
        let name = ident(after).filter(|n| n.starts_with(|c: char| c.is_ascii_lowercase()))?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let how = "names these releases in its relx sections";
    (!names.is_empty()).then_some(Known { file: "rebar.config", how, releases: names })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    Elixir,
    Erlang,
}

/// `text` with every comment, string, charlist and sigil (Elixir) or string and quoted atom
/// (Erlang) replaced by spaces, so that what is left is code; the positions stay the same.
fn code_only(text: &str, lang: Lang) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let end = match (lang, c) {
            // A character literal: `?"` or `?\"` (Elixir), `$"` or `$\"` (Erlang).
            (Lang::Elixir, '?') | (Lang::Erlang, '$') if i + 1 < chars.len() && !after_name(&chars, i) => {
                let escaped = chars[i + 1] == '\\';
                out.push(c);
                out.push(' ');
                if escaped && i + 2 < chars.len() {
                    out.push(' ');
                }
                i += if escaped { 3 } else { 2 };
                continue;
            }
            (Lang::Elixir, '#') | (Lang::Erlang, '%') => {
                chars[i..].iter().position(|&c| c == '\n').map_or(chars.len(), |n| i + n)
            }
            (_, '"') if chars[i..].starts_with(&['"', '"', '"']) => closing(&chars, i + 3, &['"', '"', '"']),
            (_, '"') | (_, '\'') => closing(&chars, i + 1, &[c]),
            (Lang::Elixir, '~') if chars.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic()) => {
                let open = chars.get(i + 2).copied().unwrap_or(' ');
                let close = match open {
                    '(' => ')',
                    '[' => ']',
                    '{' => '}',
                    '<' => '>',
                    other => other,
                };
                closing(&chars, i + 3, &[close])
            }
            _ => {
                out.push(c);
                i += 1;
                continue;
            }
        };
        for &skipped in &chars[i..end.min(chars.len())] {
            out.push(if skipped == '\n' { '\n' } else { ' ' });
        }
        i = end;
    }
    out
}

/// Whether `chars[i]` ends a name (`valid?`), rather than starting a character literal.
fn after_name(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// The index just past the first `close` at or after `from` that no backslash escapes.
fn closing(chars: &[char], from: usize, close: &[char]) -> usize {
    let mut i = from;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i..].starts_with(close) {
            return i + close.len();
        }
        i += 1;
    }
    chars.len()
}

/// Where the values of the keyword keys `KEY:` start in `code` (a key: not part of a longer
/// name, an atom or a module attribute).
fn keys(code: &str, key: &str) -> Vec<usize> {
    let pattern = format!("{key}:");
    let mut found = Vec::new();
    for (i, _) in code.match_indices(&pattern) {
        let before = code[..i].chars().next_back();
        let after = code[i + pattern.len()..].chars().next();
        let part_of_name =
            before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '@' | '.' | '?' | '!'));
        // `key::Type` is not a key, and a key is followed by a blank.
        if !part_of_name && after.is_some_and(char::is_whitespace) {
            found.push(i + pattern.len());
        }
    }
    found
}

/// `:NAME` (an atom) at the start of `s` (after blanks).
fn atom_after(s: &str) -> Option<String> {
    ident(s.trim_start().strip_prefix(':')?)
}

/// A lowercase name (`[a-z_][a-zA-Z0-9_]*`) at the start of `s`.
fn ident(s: &str) -> Option<String> {
    let name: String = s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_').then_some(name)
}

/// The keys of the literal keyword list at the start of `s` (after blanks): `[a: ..., b: ...]`,
/// followed by `,` or `]` (so not `[...] ++ more()`). None for anything else.
fn keyword_names(s: &str) -> Option<Vec<String>> {
    let body = s.trim_start().strip_prefix('[')?;
    let mut names = Vec::new();
    let mut depth = 0usize;
    // The next non-blank starts an entry (or closes the list).
    let mut at_entry = true;
    for (i, c) in body.char_indices() {
        if at_entry && !c.is_whitespace() && c != ']' {
            at_entry = false;
            let key = ident(&body[i..])?;
            let after = &body[i + key.len()..];
            if !after.strip_prefix(':')?.starts_with(char::is_whitespace) {
                return None;
            }
            names.push(key);
            continue;
        }
        match c {
            '[' | '(' | '{' => depth += 1,
            ')' | '}' => depth = depth.checked_sub(1)?,
            ']' if depth == 0 => {
                let after = body[i + 1..].trim_start();
                return (after.starts_with(',') || after.starts_with(']')).then_some(names);
            }
            ']' => depth -= 1,
            ',' if depth == 0 => at_entry = true,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
#[path = "known_releases_tests.rs"]
mod tests;
