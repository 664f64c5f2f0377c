//! Which applications of a release assembled elsewhere are the project's own and which its
//! dependencies, without asking the build tool: the applications of Erlang/OTP and Elixir are
//! known by name, dependencies are the ones the project's lock file (`mix.lock`, `rebar.lock`)
//! names, and the rest are the project's own.

use std::collections::BTreeSet;
use std::path::Path;

/// The applications Erlang/OTP (up to 27) and Elixir ship.
pub const OTP_AND_ELIXIR_APPS: &[&str] = &[
    "asn1",
    "common_test",
    "compiler",
    "crypto",
    "debugger",
    "dialyzer",
    "diameter",
    "edoc",
    "eldap",
    "erl_docgen",
    "erl_interface",
    "erts",
    "et",
    "eunit",
    "ftp",
    "hipe",
    "inets",
    "jinterface",
    "kernel",
    "megaco",
    "mnesia",
    "observer",
    "odbc",
    "os_mon",
    "otp_mibs",
    "parsetools",
    "public_key",
    "reltool",
    "runtime_tools",
    "sasl",
    "snmp",
    "ssh",
    "ssl",
    "stdlib",
    "syntax_tools",
    "tftp",
    "tools",
    "wx",
    "xmerl",
    // Elixir
    "eex",
    "elixir",
    "ex_unit",
    "iex",
    "logger",
    "mix",
];

/// The dependency names a lock file lists: `mix.lock` (`"name": {...}`) or `rebar.lock`
/// (`{<<"name">>, ...}`). Unknown text gives no names.
pub fn locked_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    // mix.lock: a map whose keys are strings at the start of a line: `  "jason": {:hex, ...`.
    for line in text.lines() {
        let l = line.trim_start();
        if let Some(rest) = l.strip_prefix('"')
            && let Some((name, after)) = rest.split_once('"')
            && after.trim_start().starts_with(':')
        {
            names.insert(name.to_string());
        }
    }
    // rebar.lock: `{<<"name">>,{pkg,...},0}` tuples.
    let mut rest = text;
    while let Some(i) = rest.find("{<<\"") {
        rest = &rest[i + 4..];
        if let Some(end) = rest.find("\">>") {
            names.insert(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    names
}

/// (own, dependencies) among `apps` (the release's applications), with `project` the project
/// directory whose lock files name the dependencies (when there is one).
pub fn classify(apps: &[String], project: Option<&Path>) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut locked = BTreeSet::new();
    if let Some(dir) = project {
        for file in ["mix.lock", "rebar.lock"] {
            if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
                locked.extend(locked_names(&text));
            }
        }
    }
    let (mut own, mut deps) = (BTreeSet::new(), BTreeSet::new());
    for app in apps {
        if OTP_AND_ELIXIR_APPS.contains(&app.as_str()) {
            continue;
        }
        if locked.contains(app) {
            deps.insert(app.clone());
        } else {
            own.insert(app.clone());
        }
    }
    (own, deps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mix_and_rebar_locks() {
        let mix = r#"%{
  "jason": {:hex, :jason, "1.4.0", "e855647b", [:mix], [{:decimal, "~> 1.0 or ~> 2.0", [hex: :decimal, repo: "hexpm", optional: true]}], "hexpm", "79a3791"},
  "plug": {:git, "https://example.com/plug.git", "abc", []},
}
"#;
        assert_eq!(locked_names(mix), BTreeSet::from(["jason".into(), "plug".into()]));
        let rebar = r#"{"1.2.0",
[{<<"cowboy">>,{pkg,<<"cowboy">>,<<"2.9.0">>},0},
 {<<"ranch">>,{pkg,<<"ranch">>,<<"1.8.0">>},1}]}.
[{pkg_hash,[{<<"cowboy">>, <<"2A">>}]}].
"#;
        assert_eq!(locked_names(rebar), BTreeSet::from(["cowboy".into(), "ranch".into()]));
    }

    #[test]
    fn otp_apps_are_neither_own_nor_deps() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mix.lock"), "%{\n  \"jason\": {:hex, :jason, \"1.4.0\"},\n}\n").unwrap();
        let apps: Vec<String> =
            ["kernel", "stdlib", "elixir", "logger", "jason", "my_app", "sasl"].iter().map(|s| s.to_string()).collect();
        let (own, deps) = classify(&apps, Some(dir.path()));
        assert_eq!(own, BTreeSet::from(["my_app".into()]));
        assert_eq!(deps, BTreeSet::from(["jason".into()]));
        let (own, deps) = classify(&apps, None);
        assert_eq!(own, BTreeSet::from(["jason".into(), "my_app".into()]));
        assert!(deps.is_empty());
    }
}
