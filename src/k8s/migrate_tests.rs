//! The migration Job and init container (`--migrate`, `--migrate-init`), `--env-from`,
//! `--phx-host`, and the choice of the migration command.

use super::tests::{container, deployment, docs, env_value, kinds, spec};
use super::*;
use serde_json::{Value, json};

const DIGEST_A: &str = "aaaaaaaaaa";

fn migrating(mode: MigrationMode) -> Spec {
    Spec {
        migration: Some(Migration { args: vec!["/app/bin/migrate".into()], mode }),
        env_from: vec!["app-secrets".into()],
        phx_host: Some("app.example.com".into()),
        ..spec()
    }
}

fn job(docs: &[Value]) -> &Value {
    docs.iter().find(|d| d["kind"] == "Job").unwrap()
}

/// name → value of a container's environment.
fn env_of(c: &Value) -> Vec<(String, Value)> {
    c["env"].as_array().unwrap().iter().map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].clone())).collect()
}

#[test]
fn a_migration_job_runs_the_command_under_the_deployments_restrictions() {
    let d = docs(&migrating(MigrationMode::Job));
    assert_eq!(
        kinds(&d),
        [format!("Job/hello-web-migrate-{DIGEST_A}"), "Service/hello-web".into(), "Deployment/hello-web".into()]
    );
    let j = job(&d);
    assert_eq!(j["apiVersion"], "batch/v1");
    assert_eq!(j["spec"]["backoffLimit"], 2);
    assert_eq!(j["spec"]["ttlSecondsAfterFinished"], 86_400);
    let pod = &j["spec"]["template"]["spec"];
    let dep_pod = &deployment(&d)["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    for same in ["securityContext", "volumes", "automountServiceAccountToken", "enableServiceLinks"] {
        assert_eq!(pod[same], dep_pod[same], "{same}");
    }
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["volumes"], json!([{"name": "tmp", "emptyDir": {}}]));
    let c = &pod["containers"][0];
    assert_eq!(c["name"], "migrate");
    assert_eq!(c["image"], spec().image.as_str());
    // The entrypoint stays the image's (tini -- release-oci-entry): only args.
    assert_eq!(c["args"], json!(["/app/bin/migrate"]));
    assert!(c.get("command").is_none());
    assert_eq!(c["securityContext"], container(&d)["securityContext"]);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"], json!({"drop": ["ALL"]}));
    assert_eq!(c["volumeMounts"], json!([{"name": "tmp", "mountPath": "/tmp"}]));
    assert_eq!(c["envFrom"], json!([{"secretRef": {"name": "app-secrets"}}]));
    let env = env_of(c);
    assert!(env.contains(&("PHX_HOST".into(), json!("app.example.com"))), "{env:?}");
    assert!(env.iter().all(|(n, _)| !n.starts_with("RELEASE_") && n != "POD_IP"), "{env:?}");
    for probe in ["startupProbe", "readinessProbe", "livenessProbe", "lifecycle", "ports"] {
        assert!(c.get(probe).is_none(), "{probe}");
    }
    // Not selected by the Services (the headless one would give it to the cluster's DNS).
    let labels = &j["spec"]["template"]["metadata"]["labels"];
    assert!(labels.get(NAME_LABEL).is_none(), "{labels}");
    assert_eq!(labels["app.kubernetes.io/component"], "migration");
    assert_eq!(labels["app.kubernetes.io/part-of"], "hello-web");
    assert_eq!(j["metadata"]["labels"], *labels);
    assert!(dep_pod.get("initContainers").is_none());
}

#[test]
fn the_job_is_named_after_the_image_digest() {
    let name = |image: &str, name: &str| {
        migrate::job_name(&Spec { image: image.into(), name: name.into(), ..migrating(MigrationMode::Job) })
    };
    let pinned = |c: char| format!("registry.test/hello_web@sha256:{}", c.to_string().repeat(64));
    assert_eq!(name(&pinned('b'), "web"), "web-migrate-bbbbbbbbbb");
    assert_ne!(name(&pinned('b'), "web"), name(&pinned('c'), "web"), "a new image migrates again");
    assert_eq!(name(&pinned('b'), "web"), name(&pinned('b'), "web"), "the same image does not");
    // At most 63 characters, a valid name, whatever the Deployment's name.
    let long = format!("{}-x", "a".repeat(60));
    let n = name(&pinned('d'), &long);
    assert!(n.len() <= 63 && n.ends_with("-migrate-dddddddddd"), "{n}");
    check_name("job", &n).unwrap();
    // A tag: the reference's hash (stable, different per tag).
    let t1 = name("registry.test/web:1.0", "web");
    assert_eq!(t1, name("registry.test/web:1.0", "web"));
    assert_ne!(t1, name("registry.test/web:1.1", "web"));
    check_name("job", &t1).unwrap();
    // release-oci://PATH: resolve names it when it pins the image.
    assert_eq!(name("release-oci://./web", "web"), "release-oci://./web#name=web-migrate");
}

#[test]
fn migrate_init_puts_the_command_in_an_init_container() {
    let d = docs(&migrating(MigrationMode::InitContainer));
    assert_eq!(kinds(&d), ["Service/hello-web", "Deployment/hello-web"]);
    let pod = &deployment(&d)["spec"]["template"]["spec"];
    let init = pod["initContainers"].as_array().unwrap();
    assert_eq!(init.len(), 1);
    let c = &init[0];
    assert_eq!((c["name"].as_str(), c["image"].as_str()), (Some("migrate"), Some(spec().image.as_str())));
    assert_eq!(c["args"], json!(["/app/bin/migrate"]));
    assert!(c.get("command").is_none() && c.get("startupProbe").is_none() && c.get("lifecycle").is_none());
    assert_eq!(c["securityContext"], container(&d)["securityContext"]);
    assert_eq!(c["volumeMounts"], json!([{"name": "tmp", "mountPath": "/tmp"}]));
    assert_eq!(c["envFrom"], json!([{"secretRef": {"name": "app-secrets"}}]));
    assert!(env_of(c).contains(&("PHX_HOST".into(), json!("app.example.com"))));
    // A Deployment named `migrate` keeps container names unique.
    let d = docs(&Spec { name: "migrate".into(), ..migrating(MigrationMode::InitContainer) });
    assert_eq!(deployment(&d)["spec"]["template"]["spec"]["initContainers"][0]["name"], "migrate-init");
}

#[test]
fn env_from_and_phx_host_reach_the_deployments_container() {
    let s = Spec {
        env_from: vec!["app-secrets".into(), "more".into()],
        phx_host: Some("app.example.com".into()),
        cpu: Some("2".parse().unwrap()),
        ..spec()
    };
    let d = docs(&s);
    assert_eq!(
        container(&d)["envFrom"],
        json!([{"secretRef": {"name": "app-secrets"}}, {"secretRef": {"name": "more"}}])
    );
    assert_eq!(env_value(&d, "PHX_HOST").unwrap(), "app.example.com");
    // Without them: no envFrom, no PHX_HOST.
    let d = docs(&spec());
    assert!(container(&d).get("envFrom").is_none() && env_value(&d, "PHX_HOST").is_none());
    // The Job gets the Deployment's resources and schedulers.
    let d = docs(&Spec { migration: Some(Migration { args: vec!["x".into()], mode: MigrationMode::Job }), ..s });
    let c = &job(&d)["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["resources"], container(&d)["resources"]);
    assert!(env_of(c).iter().any(|(n, v)| n == "ERL_FLAGS" && v.as_str().unwrap().starts_with("+S 2:2")));
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

const RELEASE_EX: &str = "defmodule HelloWeb.Release do\n  @moduledoc false\n  @app :hello_web\n\n  def migrate do\n    \
                          load_app()\n  end\n\n  def rollback(repo, version) do\n  end\nend\n";

#[test]
fn the_default_command_is_bin_migrate_then_the_release_module() {
    let default = |dir: &tempfile::TempDir| migrate_command::default_command(dir.path(), None);
    // Both: the release's own script wins.
    let both = project(&[("rel/overlays/bin/migrate", "#!/bin/sh\n"), ("lib/hello_web/release.ex", RELEASE_EX)]);
    assert_eq!(default(&both).unwrap(), ["/app/bin/migrate"]);
    let module = project(&[("lib/hello_web/release.ex", RELEASE_EX)]);
    assert_eq!(default(&module).unwrap(), ["eval", "HelloWeb.Release.migrate()"]);
    let umbrella = project(&[("apps/core/lib/core/release.ex", &RELEASE_EX.replace("HelloWeb", "Core"))]);
    assert_eq!(default(&umbrella).unwrap(), ["eval", "Core.Release.migrate()"]);
    // The release directory the image is built from (`from_release`).
    let release = project(&[("bin/migrate", "#!/bin/sh\n")]);
    let none = project(&[("lib/hello_web.ex", "defmodule HelloWeb do\nend\n")]);
    assert_eq!(migrate_command::default_command(none.path(), Some(release.path())).unwrap(), ["/app/bin/migrate"]);
    // Neither: the error says what to pass.
    let e = default(&none).unwrap_err().to_string();
    assert!(e.starts_with(&format!("--migrate: no migration command found for {}", none.path().display())), "{e}");
    for want in ["rel/overlays/bin/migrate", "--migrate=/app/bin/migrate", "--migrate='eval MyApp.Release.migrate()'"] {
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn a_release_module_needs_a_migrate_of_arity_zero() {
    let m = |body: &str| migrate_command::release_module_in(&format!("defmodule App.Release do\n{body}\nend\n"));
    for yes in ["  def migrate do", "  def migrate() do", "  def migrate, do: :ok", "  def migrate(), do: :ok"] {
        assert_eq!(m(yes).as_deref(), Some("App.Release"), "{yes}");
    }
    for no in ["  def migrate(repo) do", "  def migrate_all do", "  defp migrate do", "  # undef migrate do"] {
        assert_eq!(m(no), None, "{no}");
    }
    assert_eq!(migrate_command::release_module_in("defmodule App.Releases do\n  def migrate do\nend\n"), None);
}

#[test]
fn migrate_commands_become_args() {
    let p = |s: &str| migrate_command::parse(s).map_err(|e| e.to_string());
    assert_eq!(p("/app/bin/migrate").unwrap(), ["/app/bin/migrate"]);
    assert_eq!(p(" bin/migrate --step 1 ").unwrap(), ["bin/migrate", "--step", "1"]);
    assert_eq!(p("eval MyApp.Release.migrate()").unwrap(), ["eval", "MyApp.Release.migrate()"]);
    assert_eq!(
        p("eval  MyApp.Release.migrate(); IO.puts(:done)").unwrap(),
        ["eval", "MyApp.Release.migrate(); IO.puts(:done)"]
    );
    assert_eq!(p("eval 'App.Release.migrate()'").unwrap(), ["eval", "App.Release.migrate()"]);
    assert_eq!(p("eval \"App.Release.migrate()\"").unwrap(), ["eval", "App.Release.migrate()"]);
    assert_eq!(p("eval \"a\" <> \"b\"").unwrap(), ["eval", "\"a\" <> \"b\""]);
    assert!(p("").unwrap_err().contains("it is empty"));
    assert!(p("eval").unwrap_err().starts_with("--migrate=\"eval\": it has no expression"));
}
