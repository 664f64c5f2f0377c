use super::*;

impl Known {
    fn names(&self) -> Vec<&str> {
        self.releases.iter().map(String::as_str).collect()
    }
}

fn mix(text: &str) -> Option<Vec<String>> {
    mix_releases(text).map(|k| k.names().into_iter().map(str::to_string).collect())
}

#[test]
fn mix_releases_from_a_literal_keyword_list() {
    let hello = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello_web/mix.exs")).unwrap();
    assert_eq!(mix(&hello).unwrap(), ["hello_web"]);
    let umbrella = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/umbrella/mix.exs")).unwrap();
    assert_eq!(mix(&umbrella).unwrap(), ["web_only", "worker_only"]);
    let text =
        "[app: :x, releases: [\n  a: [applications: [x: :permanent], steps: [:assemble, &copy/1]],\n  b_2: []\n]]";
    assert_eq!(mix(text).unwrap(), ["a", "b_2"]);
    // A trailing comma, a comment and a string holding a bracket.
    let text = "[releases: [a: [path: \"x]\"], # releases: [c: 1]\n b: [],], app: :x]";
    assert_eq!(mix(text).unwrap(), ["a", "b"]);
    let text = "[app: :x, releases: [a: [strip_beams: prod?(), quote: ?\"], b: []]]";
    assert_eq!(mix(text).unwrap(), ["a", "b"]);
}

#[test]
fn a_mix_project_without_releases_has_one_named_after_its_app() {
    let text = "def project do\n  [app: :my_app, deps: [{:dep, app: false}], extra_applications: [:logger]]\nend\n# releases: [other: []]";
    let known = mix_releases(text).unwrap();
    assert_eq!(known.names(), ["my_app"]);
    assert!(known.how.contains("no `releases:`"), "{}", known.how);
    // An umbrella without releases, or no app name to be found: the builder decides.
    assert_eq!(mix("[apps_path: \"apps\"]"), None);
    assert_eq!(mix("[app: @app]"), None);
    assert_eq!(mix("[app: :a, deps: [{:b, path: \"b\", app: :c}]]"), None);
}

#[test]
fn mix_releases_that_are_not_literal_are_left_to_the_builder() {
    for text in [
        "[app: :x, releases: releases()]",
        "[app: :x, releases: [a: []] ++ more()]",
        "[app: :x, releases: [{:a, []}]]",
        "[app: :x, releases: [\"a-b\": []]]",
        "if prod?, do: [releases: [a: []]], else: [releases: [b: []]]",
        "[app: :x, releases: []]",
        "[app: :x] ++ [{:releases, [a: []]}]",
        "[app: :x, releases: [a: []]] |> Keyword.put(:releases, b: [])",
        "c = ?\"\n[app: :x, releases: releases()]\nd = ?\"",
    ] {
        assert_eq!(mix(text), None, "{text}");
    }
}

#[test]
fn rebar3_releases_from_relx_sections_and_profiles() {
    let web =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/rebar3_web/rebar.config")).unwrap();
    assert_eq!(rebar3_releases(&web).unwrap().names(), ["rebar3_web"]);
    let text = "%% {release, {commented, \"0\"}, []}\n{relx, [{release, {a, \"0.1.0\"}, [a]}, {release,{b,\"1\"},[b]}]}.\n\
                {profiles, [{prod, [{relx, [{release, {c, \"2\"}, [c]}, {release_name, x}]}]}]}.";
    assert_eq!(rebar3_releases(text).unwrap().names(), ["a", "b", "c"]);
    assert!(rebar3_releases("{relx, [{release, {'my-rel', \"1\"}, []}]}.").is_none());
    assert!(rebar3_releases("{erl_opts, []}.").is_none());
}

#[test]
fn check_names_the_releases_and_passes_what_it_cannot_decide() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mix.exs"), "[app: :hello, releases: [hello: [], admin: []]]").unwrap();
    let project = Project::open(dir.path()).unwrap();
    for ok in [None, Some("all"), Some("hello"), Some("admin")] {
        assert!(check(&project, ok).is_ok(), "{ok:?}");
    }
    let e = check(&project, Some("nope")).unwrap_err().to_string();
    assert!(e.starts_with("--release nope: the project has no such release"), "{e}");
    assert!(e.contains("mix.exs configures `releases:`: hello, admin") && e.contains("--release all"), "{e}");
    std::fs::write(dir.path().join("mix.exs"), "[app: :hello, releases: releases()]").unwrap();
    assert!(check(&project, Some("nope")).is_ok());
}
