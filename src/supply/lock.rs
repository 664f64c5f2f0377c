//! `mix.lock` as data: the Elixir map literal `mix` writes (`%{"name": {:hex, :name, "1.2.3", ...}}`)
//! read by a small term parser (maps, tuples, lists, keyword lists, strings, atoms, numbers), and
//! its entries as Hex packages (version, repository, the lock's SHA-256 checksums, dependencies)
//! or git checkouts (URL, commit). Entries of another kind (`:path` never appears; future
//! SCMs) are kept by name alone.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}: cannot parse it ({reason} at offset {at}); is it a lock file written by mix or rebar3?")]
pub struct LockError {
    pub file: String,
    pub reason: String,
    pub at: usize,
}

/// One entry of the lock, by its key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockEntry {
    /// The key: the dependency's application name.
    pub name: String,
    pub source: LockSource,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LockSource {
    Hex {
        /// The Hex package name (usually the key).
        package: String,
        version: String,
        /// The repository (`hexpm`, or `hexpm:ORG` for organisation packages).
        repo: String,
        /// SHA-256 of the package tarball (the lock's outer checksum); None in old locks.
        outer_checksum: Option<String>,
        /// SHA-256 of the package contents (the lock's inner checksum).
        inner_checksum: String,
        /// The keys of the entries this one depends on.
        deps: Vec<String>,
    },
    Git {
        url: String,
        /// The commit checked out.
        rev: String,
    },
    Other {
        scm: String,
    },
}

/// A parsed Elixir term (only what locks contain).
#[derive(Debug, Clone, PartialEq)]
enum Term {
    Map(Vec<(Term, Term)>),
    Tuple(Vec<Term>),
    List(Vec<Term>),
    Str(String),
    Atom(String),
    Num(String),
}

impl Term {
    fn text(&self) -> Option<&str> {
        match self {
            Term::Str(s) | Term::Atom(s) => Some(s),
            _ => None,
        }
    }
}

/// Reads a `mix.lock`: its entries in key order.
pub fn parse_mix_lock(text: &str, file: &str) -> Result<Vec<LockEntry>, LockError> {
    let mut p = Parser { s: text.as_bytes(), i: 0, file };
    let term = p.term()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("text after the map"));
    }
    let Term::Map(pairs) = term else { return Err(p.err("the lock is not a map")) };
    let mut out = BTreeMap::new();
    for (k, v) in pairs {
        let name = k.text().ok_or_else(|| p.err("a key that is not a string"))?.to_string();
        out.insert(name.clone(), LockEntry { source: source(&v), name });
    }
    Ok(out.into_values().collect())
}

fn source(v: &Term) -> LockSource {
    let Term::Tuple(items) = v else { return LockSource::Other { scm: "unknown".into() } };
    let text = |i: usize| items.get(i).and_then(Term::text).unwrap_or_default().to_string();
    match items.first().and_then(Term::text) {
        // {:hex, :name, "vsn", "inner", [managers], [deps], "repo", "outer"}
        Some("hex") => LockSource::Hex {
            package: text(1),
            version: text(2),
            inner_checksum: text(3),
            repo: items.get(6).and_then(Term::text).unwrap_or("hexpm").to_string(),
            outer_checksum: items.get(7).and_then(Term::text).map(String::from),
            deps: match items.get(5) {
                Some(Term::List(deps)) => deps
                    .iter()
                    .filter_map(|d| match d {
                        Term::Tuple(t) => t.first().and_then(Term::text).map(String::from),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            },
        },
        // {:git, "url", "rev", [opts]}
        Some("git") => LockSource::Git { url: text(1), rev: text(2) },
        Some(other) => LockSource::Other { scm: other.to_string() },
        None => LockSource::Other { scm: "unknown".into() },
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    file: &'a str,
}

impl Parser<'_> {
    fn err(&self, reason: &str) -> LockError {
        LockError { file: self.file.to_string(), reason: reason.to_string(), at: self.i }
    }

    fn ws(&mut self) {
        while let Some(&c) = self.s.get(self.i) {
            if c == b'#' {
                while self.s.get(self.i).is_some_and(|&c| c != b'\n') {
                    self.i += 1;
                }
            } else if c.is_ascii_whitespace() {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(token.as_bytes()) {
            self.i += token.len();
            true
        } else {
            false
        }
    }

    fn term(&mut self) -> Result<Term, LockError> {
        self.ws();
        if self.eat("%{") {
            return self.map();
        }
        if self.eat("{") {
            return self.seq(b'}').map(Term::Tuple);
        }
        if self.eat("[") {
            return self.seq(b']').map(Term::List);
        }
        match self.s.get(self.i) {
            Some(b'"') => self.string().map(Term::Str),
            Some(b':') => {
                self.i += 1;
                if self.s.get(self.i) == Some(&b'"') {
                    return self.string().map(Term::Atom);
                }
                Ok(Term::Atom(self.word()))
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => Ok(Term::Num(self.word())),
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                // A bare word: true/false/nil, or a keyword key (`hex: :jason`) handled by `seq`.
                Ok(Term::Atom(self.word()))
            }
            _ => Err(self.err("an unexpected character")),
        }
    }

    fn word(&mut self) -> String {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_alphanumeric() || b"_.?!@-".contains(c)) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn string(&mut self) -> Result<String, LockError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err(self.err("an unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    let c = *self.s.get(self.i + 1).ok_or_else(|| self.err("an unterminated escape"))?;
                    out.push(match c {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                    self.i += 2;
                }
                Some(&c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// Elements up to `close`; `key: value` items become `{:key, value}` tuples.
    fn seq(&mut self, close: u8) -> Result<Vec<Term>, LockError> {
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.s.get(self.i) == Some(&close) {
                self.i += 1;
                return Ok(items);
            }
            let t = self.term()?;
            let t = if self.s.get(self.i) == Some(&b':') && matches!(t, Term::Atom(_)) {
                self.i += 1;
                Term::Tuple(vec![t, self.term()?])
            } else {
                t
            };
            items.push(t);
            self.ws();
            if !self.eat(",") && self.s.get(self.i) != Some(&close) {
                return Err(self.err("a missing comma"));
            }
        }
    }

    /// `%{"key": value, ...}` or `%{"key" => value, ...}` (after `%{`).
    fn map(&mut self) -> Result<Term, LockError> {
        let mut pairs = Vec::new();
        loop {
            self.ws();
            if self.s.get(self.i) == Some(&b'}') {
                self.i += 1;
                return Ok(Term::Map(pairs));
            }
            let key = self.term()?;
            if !(self.eat(":") || self.eat("=>")) {
                return Err(self.err("a map key without `:` or `=>`"));
            }
            let value = self.term()?;
            pairs.push((key, value));
            if !self.eat(",") {
                self.ws();
                if self.s.get(self.i) != Some(&b'}') {
                    return Err(self.err("a missing comma in the map"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"%{
  "decimal": {:hex, :decimal, "2.1.1", "5611dca5d4b2c3dd497dec8f68751f1f1a54755e8ed2a966c2633cf885973ad6", [:mix], [], "hexpm", "53cfe5f497ed0e7771ae1a475575603d77425099ba5faef9394932b35020ffcc"},
  "jason": {:hex, :jason, "1.4.4", "b9226785a9aa77b6857ca22832cffa5d5011a667207eb2a0ad56adb5db443b8a", [:mix], [{:decimal, "~> 1.0 or ~> 2.0", [hex: :decimal, repo: "hexpm", optional: true]}], "hexpm", "c5eb0cab91f094599f94d55bc63409236a8ec69a21a67814529e8d5f6cc90b3b"},
  "old": {:hex, :old_pkg, "0.1.0", "aa"},
  "plug": {:git, "https://github.com/elixir-plug/plug.git", "0123456789abcdef0123456789abcdef01234567", [branch: "main"]},
}
"#;

    #[test]
    fn hex_and_git_entries_with_checksums_and_deps() {
        let entries = parse_mix_lock(LOCK, "mix.lock").unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["decimal", "jason", "old", "plug"]);
        let LockSource::Hex { package, version, repo, outer_checksum, deps, .. } = &entries[1].source else {
            panic!("{:?}", entries[1])
        };
        assert_eq!((package.as_str(), version.as_str(), repo.as_str()), ("jason", "1.4.4", "hexpm"));
        assert_eq!(outer_checksum.as_deref(), Some("c5eb0cab91f094599f94d55bc63409236a8ec69a21a67814529e8d5f6cc90b3b"));
        assert_eq!(deps, &["decimal"]);
        let LockSource::Hex { package, outer_checksum, inner_checksum, .. } = &entries[2].source else { panic!() };
        assert_eq!((package.as_str(), outer_checksum, inner_checksum.as_str()), ("old_pkg", &None, "aa"));
        assert_eq!(
            entries[3].source,
            LockSource::Git {
                url: "https://github.com/elixir-plug/plug.git".into(),
                rev: "0123456789abcdef0123456789abcdef01234567".into()
            }
        );
    }

    #[test]
    fn old_arrow_syntax_and_errors() {
        let e = parse_mix_lock(r#"%{"a" => {:hex, :a, "1.0.0", "x"}}"#, "f").unwrap();
        assert_eq!(e[0].name, "a");
        assert!(parse_mix_lock("%{}", "f").unwrap().is_empty());
        let err = parse_mix_lock(r#"%{"a": {:hex, :a "1"}}"#, "dir/mix.lock").unwrap_err();
        assert!(err.to_string().contains("dir/mix.lock") && err.to_string().contains("comma"), "{err}");
        assert!(parse_mix_lock(r#"%{"a": "#, "f").is_err());
    }
}
