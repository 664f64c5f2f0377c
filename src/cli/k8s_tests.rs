use super::*;
use crate::config::MigrateValue;
use crate::k8s::{Migration, MigrationMode};

fn args(f: impl FnOnce(&mut K8sArgs)) -> K8sArgs {
    let mut a = K8sArgs {
        project: PathBuf::from("/nonexistent/my_app"),
        release: Some("my_app".into()),
        cookie_secret_key: None,
        cluster_domain: None,
        no_config: true,
        ..Default::default()
    };
    f(&mut a);
    a
}

fn spec(f: impl FnOnce(&mut K8sArgs)) -> anyhow::Result<Spec> {
    args(f).merge(K8sConfig::default(), TopLevel::default()).map(|(s, _)| s)
}

#[test]
fn defaults() {
    let (s, warnings) = args(|_| {}).merge(K8sConfig::default(), TopLevel::default()).unwrap();
    assert_eq!((s.name.as_str(), s.release.as_str(), s.port, s.replicas), ("my-app", "my_app", 4000, 1));
    assert_eq!(s.image, "release-oci:///nonexistent/my_app");
    assert_eq!((s.uid, s.gid), (10001, 10001));
    assert_eq!(s.termination.shutdown_time_ms(), 20_000);
    assert!(s.cluster.is_none() && s.cookie_secret.is_none() && warnings.is_empty());
}

#[test]
fn flags_win_over_the_config_file() {
    let c = K8sConfig { replicas: Some(3), port: Some(8080), cpu: Some("2".into()), ..Default::default() };
    let (s, _) = args(|a| a.port = Some(4001))
        .merge(c, TopLevel { user: Some(UserValue::Id(2000)), ..Default::default() })
        .unwrap();
    assert_eq!((s.replicas, s.port, s.uid, s.gid), (3, 4001, 2000, 2000));
    assert_eq!(s.cpu.unwrap().schedulers(), 2);
}

#[test]
fn every_documented_key_of_the_table_takes_effect() {
    let c = K8sConfig {
        cluster: Some("dns".into()),
        cookie_secret: Some("app-cookie".into()),
        cookie_secret_key: Some("erlang-cookie".into()),
        cluster_domain: Some("corp.internal".into()),
        tmp_size: Some("64Mi".into()),
        ..Default::default()
    };
    let (s, _) = args(|_| {}).merge(c.clone(), TopLevel::default()).unwrap();
    assert_eq!(s.cookie_secret, Some(("app-cookie".to_string(), "erlang-cookie".to_string())));
    assert_eq!(s.cluster.as_ref().map(|c| c.domain.as_str()), Some("corp.internal"));
    assert_eq!(s.tmp_size.as_ref().map(|m| m.as_str().to_string()), Some("64Mi".to_string()));
    let (s, _) = args(|a| a.cluster_domain = Some("cli.local".into())).merge(c, TopLevel::default()).unwrap();
    assert_eq!(s.cluster.map(|c| c.domain), Some("cli.local".to_string()), "the flag wins");
}

#[test]
fn rejects_what_kubernetes_or_the_beam_would() {
    type Change = Box<dyn FnOnce(&mut K8sArgs)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|a| a.cluster = Some(ClusterArg::Dns)), "needs --cookie-secret"),
        (Box::new(|a| a.dist_port = Some(9000)), "add --cluster dns"),
        (Box::new(|a| a.user = Some("0".into())), "does not allow root"),
        (Box::new(|a| a.user = Some("app".into())), "must be numeric"),
        (Box::new(|a| a.name = Some("My_App".into())), "not a valid Kubernetes name"),
        (Box::new(|a| a.health = Some("health".into())), "starting with `/`"),
        (Box::new(|a| a.cpu = Some("lots".into())), "--cpu: \"lots\" is not a CPU quantity"),
        (Box::new(|a| a.tmp_size = Some("1GB".into())), "--tmp-size: \"1GB\" is not a memory quantity"),
        (Box::new(|a| a.grace_period = Some(10)), "leaves the BEAM no time"),
        (Box::new(|a| a.env = vec!["RELEASE_COOKIE=x".into()]), "must not be a literal"),
        (Box::new(|a| a.env = vec!["=x".into()]), "not KEY=VALUE"),
    ];
    for (f, want) in cases {
        let e = format!("{:#}", spec(f).unwrap_err());
        assert!(e.contains(want), "{e:?} does not say {want:?}");
    }
}

#[test]
fn unpinned_images_warn() {
    let (_, w) =
        args(|a| a.image = Some("my_app:latest".into())).merge(K8sConfig::default(), TopLevel::default()).unwrap();
    assert!(w[0].contains("not pinned by digest"), "{w:?}");
}

#[test]
fn push_prefixes() {
    let r = |p: &str| ResolveArgs { files: vec![], push_to: Some(p.into()), jobs: None, build_flags: vec![] };
    assert_eq!(r("127.0.0.1:5000/team/").push_prefix(None).unwrap(), "127.0.0.1:5000/team");
    assert_eq!(r("a/b").push_prefix(Some("c/d".into())).unwrap(), "a/b");
    assert!(r("x/y@sha256:ab").push_prefix(None).is_err());
    assert!(r("X/y").push_prefix(None).is_err());
    let none = ResolveArgs { push_to: None, ..r("") };
    assert_eq!(none.push_prefix(Some("c/d".into())).unwrap(), "c/d");
    assert!(none.push_prefix(None).unwrap_err().to_string().contains("needs --push-to"));
}

/// A project directory with `files` (path → contents).
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

const RELEASE_EX: &str = "defmodule MyApp.Release do\n  @app :my_app\n  def migrate do\n    :ok\n  end\nend\n";

#[test]
fn migrate_flags_and_keys_choose_the_command_and_the_mode() {
    let dir = project(&[("lib/my_app/release.ex", RELEASE_EX)]);
    let at = |f: &dyn Fn(&mut K8sArgs), c: K8sConfig| {
        let mut a = args(|a| a.project = dir.path().to_path_buf());
        f(&mut a);
        a.merge(c, TopLevel::default()).map(|(s, _)| s.migration)
    };
    let job = |args: &[&str]| {
        Some(Migration { args: args.iter().map(|s| s.to_string()).collect(), mode: MigrationMode::Job })
    };
    let eval = ["eval", "MyApp.Release.migrate()"];
    assert_eq!(at(&|_| {}, K8sConfig::default()).unwrap(), None);
    assert_eq!(at(&|a| a.migrate = Some(None), K8sConfig::default()).unwrap(), job(&eval));
    let flag = |a: &mut K8sArgs| a.migrate = Some(Some("/app/bin/migrate".into()));
    assert_eq!(at(&flag, K8sConfig::default()).unwrap(), job(&["/app/bin/migrate"]));
    // The file's command; the flag's command wins over it; `--migrate` alone keeps it.
    let file =
        K8sConfig { migrate: Some(MigrateValue::Command("eval X.Release.migrate(:all)".into())), ..Default::default() };
    assert_eq!(at(&|_| {}, file.clone()).unwrap(), job(&["eval", "X.Release.migrate(:all)"]));
    assert_eq!(at(&flag, file.clone()).unwrap(), job(&["/app/bin/migrate"]));
    assert_eq!(at(&|a| a.migrate = Some(None), file).unwrap(), job(&["eval", "X.Release.migrate(:all)"]));
    let on = K8sConfig { migrate: Some(MigrateValue::Enabled(true)), ..Default::default() };
    assert_eq!(at(&|_| {}, on).unwrap(), job(&eval));
    // An init container: the flag or the key (which implies migrate).
    let init = Some(Migration { args: eval.map(String::from).to_vec(), mode: MigrationMode::InitContainer });
    assert_eq!(at(&|a| a.migrate_init = true, K8sConfig::default()).unwrap(), init);
    assert_eq!(at(&|_| {}, K8sConfig { migrate_init: Some(true), ..Default::default() }).unwrap(), init);
    let off = K8sConfig { migrate: Some(MigrateValue::Enabled(false)), migrate_init: Some(true), ..Default::default() };
    assert!(format!("{:#}", at(&|_| {}, off).unwrap_err()).contains("migrate_init = true with migrate = false"));
    let off = K8sConfig { migrate: Some(MigrateValue::Enabled(false)), ..Default::default() };
    assert_eq!(at(&|_| {}, off.clone()).unwrap(), None);
    assert_eq!(at(&|a| a.migrate = Some(None), off).unwrap(), job(&eval), "the flag wins");
}

#[test]
fn migrate_without_a_command_or_a_project_default_says_what_to_pass() {
    let e = format!("{:#}", spec(|a| a.migrate = Some(None)).unwrap_err());
    assert!(e.contains("no migration command found for /nonexistent/my_app"), "{e}");
    assert!(e.contains("--migrate=/app/bin/migrate") && e.contains("--migrate='eval MyApp.Release.migrate()'"), "{e}");
    let e = format!("{:#}", spec(|a| a.migrate = Some(Some("eval ".into()))).unwrap_err());
    assert!(e.contains("no expression"), "{e}");
}

#[test]
fn the_release_directory_of_from_release_has_the_migrate_script() {
    let dir = project(&[("rel/bin/migrate", "#!/bin/sh\n")]);
    let top = TopLevel { release_dir: Some(dir.path().join("rel")), ..Default::default() };
    let (s, _) = args(|a| a.migrate = Some(None)).merge(K8sConfig::default(), top).unwrap();
    assert_eq!(s.migration.unwrap().args, ["/app/bin/migrate"]);
}

#[test]
fn env_from_and_phx_host_merge_flags_over_the_file() {
    let c = K8sConfig {
        env_from: Some(vec!["shared".into(), "app-secrets".into()]),
        phx_host: Some("file.example.com".into()),
        ..Default::default()
    };
    let (s, _) = args(|a| a.env_from = vec!["app-secrets".into(), "extra".into()])
        .merge(c.clone(), TopLevel::default())
        .unwrap();
    assert_eq!(s.env_from, ["shared", "app-secrets", "extra"]);
    assert_eq!(s.phx_host.as_deref(), Some("file.example.com"));
    let (s, _) = args(|a| a.phx_host = Some("cli.example.com".into())).merge(c, TopLevel::default()).unwrap();
    assert_eq!(s.phx_host.as_deref(), Some("cli.example.com"));
    type Change = Box<dyn FnOnce(&mut K8sArgs)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|a| a.env_from = vec!["App_Secrets".into()]),
            "--env-from \"App_Secrets\" is not a valid Kubernetes name",
        ),
        (Box::new(|a| a.phx_host = Some("https://x.io".into())), "is not a host name"),
        (
            Box::new(|a| {
                a.phx_host = Some("x.io".into());
                a.env = vec!["PHX_HOST=y.io".into()];
            }),
            "PHX_HOST is given twice",
        ),
    ];
    for (f, want) in cases {
        let e = format!("{:#}", spec(f).unwrap_err());
        assert!(e.contains(want), "{e:?} does not say {want:?}");
    }
}

#[test]
fn a_job_for_a_tag_warns_that_the_tag_names_it() {
    let dir = project(&[("rel/overlays/bin/migrate", "#!/bin/sh\n")]);
    let (s, w) = args(|a| {
        a.project = dir.path().to_path_buf();
        a.image = Some("my_app:1.4.2".into());
        a.migrate = Some(None);
    })
    .merge(K8sConfig::default(), TopLevel::default())
    .unwrap();
    assert_eq!(s.migration.unwrap().args, ["/app/bin/migrate"]);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[1].contains("does not migrate again"), "{w:?}");
}

#[test]
fn migrate_takes_its_command_only_after_an_equals_sign() {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        k8s: K8sArgs,
    }
    let parse = |argv: &[&str]| <Cli as clap::Parser>::try_parse_from(argv).map(|c| c.k8s);
    let a = parse(&["k8s", "--migrate", "examples/hello_web"]).unwrap();
    assert_eq!((a.migrate, a.project), (Some(None), PathBuf::from("examples/hello_web")));
    let a = parse(&["k8s", "--migrate=eval A.Release.migrate()", "--env-from", "s1", "--env-from", "s2"]).unwrap();
    assert_eq!(a.migrate, Some(Some("eval A.Release.migrate()".to_string())));
    assert_eq!(a.env_from, ["s1", "s2"]);
    assert!(!a.migrate_init && parse(&["k8s", "--migrate-init"]).unwrap().migrate_init);
}
