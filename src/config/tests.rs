use super::*;

#[test]
fn parses_every_kind_of_key() {
    let c = ProjectConfig::parse(
        r#"
name = "registry.example.com/team/app"
tags = ["a:{release}", "b"]
triple = "aarch64-unknown-linux-gnu"
builder = "host"
mix_env = "staging"
release = "all"
user = 1000
ports = [4000, "53/udp"]
env = { A = "1" }
load = true

[labels]
"org.example.team" = "core"

[k8s]
replicas = 3
cluster = "dns"
"#,
    )
    .unwrap();
    assert_eq!(c.name.as_deref(), Some("registry.example.com/team/app"));
    assert_eq!(c.tags.as_deref(), Some(&["a:{release}".to_string(), "b".to_string()][..]));
    assert_eq!(c.user, Some(UserValue::Id(1000)));
    assert_eq!(c.ports, Some(vec![PortValue::Number(4000), PortValue::Text("53/udp".into())]));
    assert_eq!(c.env.unwrap()["A"], "1");
    assert_eq!(c.labels.unwrap()["org.example.team"], "core");
    assert_eq!(c.load, Some(true));
    let k = c.k8s.unwrap();
    assert_eq!((k.replicas, k.cluster.as_deref()), (Some(3), Some("dns")));
}

#[test]
fn unknown_keys_name_the_key_and_line() {
    let e = ProjectConfig::parse("release = \"web\"\n\nbogus = 1\n").unwrap_err();
    assert_eq!((e.line, e.column), (3, 1));
    assert!(e.message.starts_with("unknown key `bogus`; known keys:"), "{}", e.message);
    let e = ProjectConfig::parse("release = \"web\"\n[k8s]\nreplicas = 2\nreplica = 1\n").unwrap_err();
    assert_eq!(e.line, 4);
    assert!(e.message.starts_with("unknown key `replica` in [k8s]"), "{}", e.message);
}

#[test]
fn wrong_types_name_the_line() {
    let e = ProjectConfig::parse("load = \"yes\"\n").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.message.contains("expected a boolean"), "{}", e.message);
    let e = ProjectConfig::parse("\n\nports = [true]\n").unwrap_err();
    assert_eq!(e.line, 3);
}

#[test]
fn load_reports_the_path_and_resolves_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(ProjectConfig::load_for_project(dir.path()).unwrap(), None);
    let path = dir.path().join(FILE_NAME);
    std::fs::write(&path, "from_release = \"rel\"\ncache_dir = \"/abs\"\n").unwrap();
    let c = ProjectConfig::load_for_project(dir.path()).unwrap().unwrap();
    assert_eq!(c.resolve_path(c.from_release.as_deref().unwrap()), dir.path().join("rel"));
    assert_eq!(c.resolve_path(c.cache_dir.as_deref().unwrap()), Path::new("/abs"));
    std::fs::write(&path, "x = 1\n").unwrap();
    let e = ProjectConfig::load(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:1:1: unknown key `x`", path.display())), "{e}");
}

#[test]
fn triples() {
    let c = ProjectConfig::parse("triples = [\"x86_64-unknown-linux-gnu\"]").unwrap();
    assert_eq!(c.triple_list().unwrap(), vec!["x86_64-unknown-linux-gnu".to_string()]);
    let c = ProjectConfig::parse("triples = [\"a\", \"b\"]").unwrap();
    assert_eq!(c.triple_list().unwrap(), vec!["a".to_string(), "b".to_string()]);
    let c = ProjectConfig::parse("triples = [\"a\", \"a\"]").unwrap();
    assert!(c.triple_list().unwrap_err().contains("twice"));
    let c = ProjectConfig::parse("triple = \"a\"\ntriples = [\"b\"]").unwrap();
    assert!(c.triple_list().is_err());
}

#[test]
fn bad_map_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    std::fs::write(&path, "[env]\n\"A=B\" = \"c\"\n").unwrap();
    let e = ProjectConfig::load(&path).unwrap_err().to_string();
    assert!(e.contains("env: key \"A=B\""), "{e}");
}

#[test]
fn k8s_migration_keys() {
    let c = ProjectConfig::parse(
        "[k8s]\nmigrate = true\nmigrate_init = true\nenv_from = [\"app-secrets\"]\nphx_host = \"app.example.com\"\n",
    )
    .unwrap();
    let k = c.k8s.unwrap();
    assert_eq!(k.migrate, Some(MigrateValue::Enabled(true)));
    assert_eq!(k.migrate_init, Some(true));
    assert_eq!(k.env_from, Some(vec!["app-secrets".to_string()]));
    assert_eq!(k.phx_host.as_deref(), Some("app.example.com"));
    let k = ProjectConfig::parse("[k8s]\nmigrate = \"eval App.Release.migrate()\"\n").unwrap().k8s.unwrap();
    assert_eq!(k.migrate, Some(MigrateValue::Command("eval App.Release.migrate()".into())));
    let e = ProjectConfig::parse("[k8s]\n\nmigrate = 1\n").unwrap_err();
    assert_eq!(e.line, 3, "{}", e.message);
    let e = ProjectConfig::parse("[k8s]\nenv_form = [\"a\"]\n").unwrap_err();
    assert!(e.message.contains("unknown key `env_form` in [k8s]") && e.message.contains("env_from"), "{}", e.message);
}

#[test]
fn a_projects_own_file_cannot_name_a_cache_repo() {
    let c = ProjectConfig::parse("cache_repo = \"r.example.com/ci/cache\"").unwrap();
    let e = c.check_untrusted().unwrap_err().to_string();
    assert!(e.contains("cache_repo") && e.contains("--cache-repo HOST/REPO"), "{e}");
}
