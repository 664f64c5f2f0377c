use super::*;
use std::collections::HashMap;

/// The signs of a project made of `files` (path, contents).
fn signs(files: &[(&str, &[u8])]) -> Vec<NativeSign> {
    let map: HashMap<PathBuf, Vec<u8>> = files.iter().map(|(p, b)| (PathBuf::from(p), b.to_vec())).collect();
    let mut paths: Vec<PathBuf> = map.keys().cloned().collect();
    paths.sort();
    scan(&paths, &|p: &Path| map.get(p).cloned())
}

const PURE_MIX: &str = r#"defmodule HelloWeb.MixProject do
  use Mix.Project
  # elixir_make is not used here: {:elixir_make, "~> 0.6"} in a comment
  def project, do: [app: :hello_web, version: "0.1.0", deps: [{:plug_cowboy, "~> 2.6"}]]
end
"#;

const PURE_LOCK: &str = r#"%{
  "cowboy": {:hex, :cowboy, "2.10.0", "ff9ffeff", [:make, :rebar3], [{:cowlib, "2.12.1", [hex: :cowlib, repo: "hexpm", optional: false]}], "hexpm", "3afdccb7"},
  "plug": {:hex, :plug, "1.14.2", "cff7d4ec", [:mix], [{:mime, "~> 1.0 or ~> 2.0", [hex: :mime, repo: "hexpm", optional: false]}], "hexpm", "842fc50"},
}
"#;

#[test]
fn a_pure_elixir_project_has_no_native_code() {
    let found = signs(&[
        ("mix.exs", PURE_MIX.as_bytes()),
        ("lib/hello_web.ex", b"defmodule HelloWeb do\n  def hello, do: :world # load_nif in a comment\nend\n"),
        ("priv/static/app.css", b"body {}"),
        ("config/config.exs", b"import Config\n"),
        ("README.md", b"make sure"),
    ]);
    assert_eq!(found, Vec::<NativeSign>::new());
}

#[test]
fn erlang_mk_packages_in_the_lock_are_no_sign() {
    // cowboy's lock entry lists [:make, :rebar3] (erlang.mk): pure Erlang all the same.
    let found = signs(&[("mix.exs", PURE_MIX.as_bytes()), ("mix.lock", PURE_LOCK.as_bytes())]);
    assert_eq!(found, Vec::<NativeSign>::new());
}

#[test]
fn native_build_tools_in_the_lock_and_mix_exs() {
    let lock = r#"%{
  "bcrypt_elixir": {:hex, :bcrypt_elixir, "3.0.1", "9be8", [:mix], [{:comeonin, "~> 5.3", [hex: :comeonin, repo: "hexpm", optional: false]}, {:elixir_make, "~> 0.6", [hex: :elixir_make, repo: "hexpm", optional: false]}], "hexpm", "486b"},
  "elixir_make": {:hex, :elixir_make, "0.7.7", "7128", [:mix], [], "hexpm", "5bc1"},
  "rustler": {:hex, :rustler, "0.29.1", "8806", [:mix], [], "hexpm", "47f4"},
}
"#;
    let found: Vec<String> = signs(&[("mix.lock", lock.as_bytes())]).iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "mix.lock: bcrypt_elixir depends on elixir_make (native code)",
            "mix.lock: elixir_make is locked (it builds or fetches native code)",
            "mix.lock: rustler is locked (it builds or fetches native code)",
        ]
    );
    let mix = "def project, do: [compilers: [:elixir_make] ++ Mix.compilers(), make_targets: [\"all\"], deps: [{:rustler, \"~> 0.29\"}, {:cc_precompiler, \"~> 0.1\", runtime: false}]]";
    let found: Vec<String> = signs(&[("apps/fast/mix.exs", mix.as_bytes())]).iter().map(ToString::to_string).collect();
    assert!(found.iter().any(|s| s.contains("the dependency elixir_make")), "{found:?}");
    assert!(found.iter().any(|s| s.contains("the dependency rustler")), "{found:?}");
    assert!(found.iter().any(|s| s.contains("the dependency cc_precompiler")), "{found:?}");
    assert!(found.iter().any(|s| s.contains("make_targets")), "{found:?}");
    assert!(found.iter().all(|s| s.starts_with("apps/fast/mix.exs: ")), "{found:?}");
}

#[test]
fn c_src_makefiles_and_shared_objects_count() {
    let found: Vec<String> = signs(&[
        ("c_src/zlib_nif.c", b"#include <erl_nif.h>"),
        ("c_src/Makefile", b"all:"),
        ("apps/b/Makefile", b"all:"),
        ("native/fast/Cargo.toml", b"[package]"),
        ("priv/fast.so", b"\x7fELF"),
        ("priv/libx.so.1", b"\x7fELF"),
        ("priv/bin/helper", b"\x7fELF\x02\x01"),
        ("priv/bin/helper.sh", b"#!/bin/sh"),
    ])
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        found,
        [
            "apps/b/Makefile: a Makefile (native code built outside the BEAM)",
            "c_src: a c_src/ directory (C sources of a NIF or port)",
            "native/fast/Cargo.toml: a Cargo.toml (native code built outside the BEAM)",
            "priv/bin/helper: an ELF program in priv/ (a port program)",
            "priv/fast.so: a shared object (a NIF or driver)",
            "priv/libx.so.1: a shared object (a NIF or driver)",
        ]
    );
}

#[test]
fn load_nif_in_the_sources_and_rebar3_port_compilers() {
    let found: Vec<String> = signs(&[
        ("lib/fast.ex", b"def init, do: :erlang.load_nif('./priv/fast', 0)"),
        ("src/slow.erl", b"%% erlang:load_nif is not called here\n-module(slow).\n"),
        ("rebar.config", b"{plugins, [pc]}.\n{port_specs, [{\"priv/x.so\", [\"c_src/*.c\"]}]}.\n"),
        ("rebar.lock", b"{\"1.2.0\",\n[{<<\"jiffy\">>,{pkg,<<\"jiffy\">>,<<\"1.1.1\">>},0},\n {<<\"pc\">>,{pkg,<<\"pc\">>,<<\"1.14.0\">>},0}]}.\n"),
    ])
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        found,
        [
            "lib/fast.ex: loads a NIF (load_nif)",
            "rebar.config: port_specs (rebar's port compiler)",
            "rebar.config: the pc plugin (rebar3's port compiler)",
            "rebar.lock: pc is locked (it builds or fetches native code)",
        ]
    );
}

#[test]
fn the_examples_are_told_apart() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for (example, native) in [("hello_web", false), ("path_deps", false), ("umbrella", false), ("zlib_nif", true)] {
        let project = crate::project::Project::open(root.join(example)).unwrap();
        let found = scan_project(&project.root, &project.source_files().unwrap());
        assert_eq!(!found.is_empty(), native, "{example}: {found:?}");
    }
}
