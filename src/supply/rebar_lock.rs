//! `rebar.lock` as [`LockEntry`]s: rebar3's lock file in both of its layouts (`rebar_config.erl`
//! writes the old one whenever no entry has a hash):
//!
//! - the list alone (rebar3 before 3.5, and locks without Hex packages since):
//!   `[{<<"NAME">>, SOURCE, LEVEL}, ...].`
//! - a version and the list, then the hashes by entry name: `{"1.2.0", [...]}.` followed by
//!   `[{pkg_hash, [{<<"NAME">>, <<"HEX">>}, ...]}, {pkg_hash_ext, [...]}].` (`pkg_hash`: the
//!   Hex registry's inner checksum; `pkg_hash_ext`, from 1.2.0: the outer one, SHA-256 of the
//!   package tarball).
//!
//! SOURCE is `{pkg, <<"PACKAGE">>, <<"VSN">>}` (a Hex package, whose name may differ from the
//! entry's), `{git, "URL", {ref, "SHA"}}` or `{git_subdir, "URL", {ref, "SHA"}, "DIR"}`. The lock
//! does not say which entry depends on which (only LEVEL, 0 for direct dependencies).

use super::erl_term::{ErlTerm, consult};
use super::lock::{LockEntry, LockError, LockSource};
use std::collections::BTreeMap;

/// Reads a `rebar.lock`: its entries in name order, checksums in lower case.
pub fn parse_rebar_lock(text: &str, file: &str) -> Result<Vec<LockEntry>, LockError> {
    let bad = |reason: &str| LockError { file: file.to_string(), reason: reason.to_string(), at: 0 };
    let terms = consult(text, file)?;
    let (locks, attrs) = match terms.as_slice() {
        [] => return Ok(Vec::new()),
        [ErlTerm::List(locks), rest @ ..] => (locks.as_slice(), rest.first()),
        [ErlTerm::Tuple(v), rest @ ..] => match v.as_slice() {
            [ErlTerm::Str(_), ErlTerm::List(locks)] => (locks.as_slice(), rest.first()),
            _ => return Err(bad("the first term is neither a list nor {\"VERSION\", [...]}")),
        },
        _ => return Err(bad("the first term is neither a list nor {\"VERSION\", [...]}")),
    };
    let inner = hashes(attrs, "pkg_hash");
    let outer = hashes(attrs, "pkg_hash_ext");
    let mut out = BTreeMap::new();
    for lock in locks {
        let Some([name, source, ..]) = lock.items() else {
            return Err(bad("an entry that is not {NAME, SOURCE, LEVEL}"));
        };
        let name = name.text().ok_or_else(|| bad("an entry whose name is not a binary"))?.to_string();
        let source = entry_source(source, inner.get(&name), outer.get(&name));
        out.insert(name.clone(), LockEntry { name, source });
    }
    Ok(out.into_values().collect())
}

/// `{KEY, [{<<"NAME">>, <<"HEX">>}, ...]}` of the attributes list, by name, lower case.
fn hashes(attrs: Option<&ErlTerm>, key: &str) -> BTreeMap<String, String> {
    let Some(ErlTerm::List(props)) = attrs else { return BTreeMap::new() };
    let section = props.iter().find_map(|p| match p.items() {
        Some([k, ErlTerm::List(pairs)]) if k.is_atom(key) => Some(pairs),
        _ => None,
    });
    section
        .into_iter()
        .flatten()
        .filter_map(|pair| match pair.items() {
            Some([n, h]) => Some((n.text()?.to_string(), h.text()?.to_lowercase())),
            _ => None,
        })
        .collect()
}

fn entry_source(source: &ErlTerm, inner: Option<&String>, outer: Option<&String>) -> LockSource {
    let items = source.items().unwrap_or_default();
    let text = |i: usize| items.get(i).and_then(ErlTerm::text).unwrap_or_default().to_string();
    match items.first() {
        Some(t) if t.is_atom("pkg") => LockSource::Hex {
            package: text(1),
            version: text(2),
            repo: "hexpm".into(),
            // Older rebar3 kept the hash in the tuple: {pkg, Name, Vsn, Hash}.
            inner_checksum: inner.cloned().unwrap_or_else(|| text(3).to_lowercase()),
            outer_checksum: outer.cloned(),
            deps: Vec::new(),
        },
        Some(t) if t.is_atom("git") || t.is_atom("git_subdir") => {
            let rev = match items.get(2).and_then(ErlTerm::items) {
                Some([_, r]) => r.text().unwrap_or_default().to_string(),
                _ => String::new(),
            };
            LockSource::Git { url: text(1), rev }
        }
        Some(ErlTerm::Atom(scm)) => LockSource::Other { scm: scm.clone() },
        _ => LockSource::Other { scm: "unknown".into() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As rebar3 3.2x writes it (`rebar3 lock` of a project with Hex and git dependencies).
    const V120: &str = r#"{"1.2.0",
[{<<"certifi">>,{pkg,<<"certifi">>,<<"2.12.0">>},1},
 {<<"cowboy">>,
  {git,"https://github.com/ninenines/cowboy.git",
       {ref,"72d5f6c01204ad6b2f0acffcded9417c944b6b6c"}},
  0},
 {<<"uuid">>,{pkg,<<"uuid_erl">>,<<"2.0.1">>},0}]}.
[
{pkg_hash,[
 {<<"certifi">>, <<"2D1CCA2EC95F59643862AF91F001478C9863C2AC9CB6E2F89780BFD8DE987329">>},
 {<<"uuid">>, <<"C13F30F291F9E91278BC7B7ADF56D8D89AFD26F5DB5F6E10F13FA24C0C90FED2">>}]},
{pkg_hash_ext,[
 {<<"certifi">>, <<"266DA46BDB06D6C6BEC50941D0D1FDB69EDF4F345AA3E3BF6F14CE7E9C7BA2F7">>},
 {<<"uuid">>, <<"BC4E71DACC2E7A50B3B33FA1BCE0C3501CAE0E64ECF6F4A79A576DA9A62353F4">>}]}
].
"#;

    /// The 1.1.0 layout: inner hashes only.
    const V110: &str = r#"{"1.1.0",
[{<<"cowboy">>,{pkg,<<"cowboy">>,<<"2.6.1">>},0},
 {<<"cowlib">>,{pkg,<<"cowlib">>,<<"2.7.0">>},1}]}.
[
{pkg_hash,[
 {<<"cowboy">>, <<"F2E06F757C337B3B311F9437E6E072B678FCD71545A7B2865BDAA154D078593F">>},
 {<<"cowlib">>, <<"3EF16E77562F9855A2605900CEDB15C1462D76FB1BE6A32FC3AE91973EE543D2">>}]}
].
"#;

    /// The old list layout (rebar3 before 3.5; also any lock without Hex packages).
    const V100: &str = r#"[{<<"getopt">>,{pkg,<<"getopt">>,<<"1.0.1">>},0},
 {<<"recon">>,
  {git_subdir,"https://github.com/ferd/recon.git",
              {ref,"0123456789abcdef0123456789abcdef01234567"},
              "recon"},
  0}].
"#;

    fn hex(e: &LockEntry) -> (&str, &str, Option<&str>, &str) {
        let LockSource::Hex { package, version, outer_checksum, inner_checksum, .. } = &e.source else {
            panic!("{e:?}")
        };
        (package, version, outer_checksum.as_deref(), inner_checksum)
    }

    #[test]
    fn version_1_2_0_with_inner_and_outer_hashes_and_git() {
        let e = parse_rebar_lock(V120, "rebar.lock").unwrap();
        let names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["certifi", "cowboy", "uuid"]);
        assert_eq!(
            hex(&e[0]),
            (
                "certifi",
                "2.12.0",
                Some("266da46bdb06d6c6bec50941d0d1fdb69edf4f345aa3e3bf6f14ce7e9c7ba2f7"),
                "2d1cca2ec95f59643862af91f001478c9863c2ac9cb6e2f89780bfd8de987329"
            )
        );
        // The Hex package of the entry `uuid` is `uuid_erl`; the hashes are by entry name.
        assert_eq!(hex(&e[2]).0, "uuid_erl");
        assert_eq!(hex(&e[2]).2, Some("bc4e71dacc2e7a50b3b33fa1bce0c3501cae0e64ecf6f4a79a576da9a62353f4"));
        assert_eq!(
            e[1].source,
            LockSource::Git {
                url: "https://github.com/ninenines/cowboy.git".into(),
                rev: "72d5f6c01204ad6b2f0acffcded9417c944b6b6c".into()
            }
        );
    }

    #[test]
    fn version_1_1_0_has_inner_hashes_only() {
        let e = parse_rebar_lock(V110, "rebar.lock").unwrap();
        assert_eq!(
            hex(&e[1]),
            ("cowlib", "2.7.0", None, "3ef16e77562f9855a2605900cedb15c1462d76fb1be6a32fc3ae91973ee543d2")
        );
    }

    #[test]
    fn the_old_list_layout_without_hashes() {
        let e = parse_rebar_lock(V100, "rebar.lock").unwrap();
        assert_eq!(hex(&e[0]), ("getopt", "1.0.1", None, ""));
        assert_eq!(
            e[1].source,
            LockSource::Git {
                url: "https://github.com/ferd/recon.git".into(),
                rev: "0123456789abcdef0123456789abcdef01234567".into()
            }
        );
        assert!(parse_rebar_lock("[].\n", "f").unwrap().is_empty());
        assert!(parse_rebar_lock("", "f").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_file() {
        for bad in ["{\"1.2.0\", [{<<\"a\">>}]}.", "foo.", "[{<<\"a\">>,{pkg,<<\"a\">>,<<\"1\">>},0}]"] {
            let err = parse_rebar_lock(bad, "app/rebar.lock").unwrap_err();
            assert!(err.to_string().contains("app/rebar.lock"), "{bad}: {err}");
        }
    }
}
