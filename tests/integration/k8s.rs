//! `release-oci k8s`: the manifests validate strictly against the official Kubernetes schemas
//! (kubernetes-validate), and the built image, run the way the manifest says, stops cleanly
//! within the grace period and forms an Erlang cluster with the manifest's distribution env.

use crate::k8s_pod::*;
use crate::util::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Kubernetes versions to validate against: the one the typed structs are generated for
/// (k8s-openapi's v1_34) and the newest kubernetes-validate ships.
const VERSIONS: &[&str] = &["1.34.0", "1.37.0"];

fn validate(file: &Path, version: &str) -> std::process::Output {
    let mut c = Command::new("kubernetes-validate");
    c.args(["--strict", "--no-warn", "-k", version]).arg(file);
    c.output().unwrap_or_else(|e| {
        panic!("cannot run kubernetes-validate ({e}); run `make setup` (scripts/setup.sh installs it from PyPI)")
    })
}

fn hello_dir() -> String {
    repo_root().join("examples/hello_web").display().to_string()
}

#[test]
fn manifests_validate_strictly_against_the_kubernetes_schemas() {
    let dir = crate::util::tempdir().unwrap();
    let digest = format!("registry.example.com/team/hello_web@sha256:{}", "0".repeat(64));
    let hello = hello_dir();
    let cases: Vec<Vec<&str>> = vec![
        vec![&hello, "--image", &digest],
        vec![&hello, "--health", "/health", "--cpu", "1500m", "--memory", "512Mi", "--pre-stop-delay", "0"],
        vec![&hello, "--cluster", "dns", "--cookie-secret", "hello-cookie", "--replicas", "3", "-n", "prod"],
        vec![
            &hello,
            "--cluster",
            "dns",
            "--cookie-secret",
            "hello-cookie",
            "--dist-port",
            "9100",
            "--tmp-size",
            "64Mi",
            "--grace-period",
            "60",
            "--env",
            "ERL_FLAGS=+sbwt none",
            "--name",
            "web",
        ],
    ];
    for (i, args) in cases.iter().enumerate() {
        let (text, docs) = k8s_manifests(args);
        let file = dir.path().join(format!("case{i}.yaml"));
        std::fs::write(&file, &text).unwrap();
        for v in VERSIONS {
            let o = validate(&file, v);
            let out = text_of(&o);
            assert!(o.status.success(), "case {i} ({args:?}) fails against {v}:\n{out}\n{text}");
            assert_eq!(out.matches(" passed for resource ").count(), docs.len(), "{out}");
        }
    }
}

/// What `mix phx.gen.release` writes: the module `--migrate` finds without a command.
const RELEASE_EX: &str = "defmodule HelloWeb.Release do\n  @app :hello_web\n\n  def migrate do\n    \
                          Application.ensure_all_started(:ssl)\n  end\nend\n";

/// `--migrate --env-from`: the migration Job (and the init-container variant) validate strictly
/// too, with the Secret's envFrom on every container and the command as args.
#[test]
fn migration_manifests_validate_strictly_against_the_kubernetes_schemas() {
    let dir = crate::util::tempdir().unwrap();
    let project = copy_example("hello_web");
    std::fs::write(project.path().join("lib/hello_web/release.ex"), RELEASE_EX).unwrap();
    let p = project.path().to_str().unwrap();
    let digest = format!("registry.example.com/team/hello_web@sha256:{}", "0123456789abcdef".repeat(4));
    let cases: Vec<Vec<&str>> = vec![
        vec![p, "--migrate", "--env-from", "app-secrets"],
        vec![p, "--image", &digest, "--migrate", "--env-from", "app-secrets", "--phx-host", "app.example.com"],
        vec![p, "--migrate=/app/bin/migrate", "--migrate-init", "--env-from", "app-secrets", "--cpu", "1"],
    ];
    for (i, args) in cases.iter().enumerate() {
        let (text, docs) = k8s_manifests(args);
        let file = dir.path().join(format!("migrate{i}.yaml"));
        std::fs::write(&file, &text).unwrap();
        for v in VERSIONS {
            let o = validate(&file, v);
            let out = text_of(&o);
            assert!(o.status.success(), "case {i} ({args:?}) fails against {v}:\n{out}\n{text}");
            assert_eq!(out.matches(" passed for resource ").count(), docs.len(), "{out}");
        }
        let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
        let secret = serde_json::json!([{"secretRef": {"name": "app-secrets"}}]);
        assert_eq!(pod["containers"][0]["envFrom"], secret);
        let migrate = match i {
            2 => &pod["initContainers"][0],
            _ => &find(&docs, "Job")["spec"]["template"]["spec"]["containers"][0],
        };
        assert_eq!(migrate["envFrom"], secret, "case {i}");
        assert!(migrate.get("command").is_none(), "case {i}: the image's entrypoint runs the args");
    }
    let (_, docs) = k8s_manifests(&cases[1]);
    let job = find(&docs, "Job");
    assert_eq!(job["metadata"]["name"], "hello-web-migrate-0123456789");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["args"],
        serde_json::json!(["eval", "HelloWeb.Release.migrate()"])
    );
}

/// The migration Job's container, and the `--migrate-init` init container, run as the kubelet
/// would (restricted, read-only root, the Secret's keys from envFrom): the image's entrypoint
/// runs the command given as args, a release command (`eval`) or a program of the image.
#[test]
fn the_migration_runs_its_command_through_the_images_entrypoint() {
    let b = hello();
    let secrets = [(("app-secrets".to_string(), "DATABASE_URL".to_string()), "ecto://db/app".to_string())].into();
    let ctx = PodContext { pod_ip: None, namespace: "default", secrets, config_maps: vec![] };
    let eval = r#"--migrate=eval IO.puts("migrated " <> System.fetch_env!("DATABASE_URL") <> " " <> System.fetch_env!("PHX_HOST"))"#;
    let cases = [
        (eval, false, "migrated ecto://db/app app.example.com\n"),
        (eval, true, "migrated ecto://db/app app.example.com\n"),
        ("--migrate=/app/bin/hello_web version", false, "hello_web 0.1.0\n"),
    ];
    let hello = hello_dir();
    for (migrate, init, want) in cases {
        let mut args = vec![hello.as_str(), "--image", &b.tag, migrate, "--env-from", "app-secrets"];
        args.extend(["--phx-host", "app.example.com", "--cpu", "1"]);
        if init {
            args.push("--migrate-init");
        }
        let (_, docs) = k8s_manifests(&args);
        let kind = if init { "Deployment" } else { "Job" };
        let pod = &find(&docs, kind)["spec"]["template"]["spec"];
        let c = if init { &pod["initContainers"][0] } else { &pod["containers"][0] };
        let run = one_shot(pod, c, &ctx);
        let mut docker_args = vec!["run", "--rm"];
        docker_args.extend(run.args.iter().map(String::as_str));
        docker_args.push(&b.tag);
        docker_args.extend(run.cmd.iter().map(String::as_str));
        let o = docker(&docker_args);
        assert!(o.status.success(), "{migrate} (init: {init}): {}{}", text(&o.stdout), text(&o.stderr));
        assert!(text(&o.stdout).ends_with(want), "{migrate} (init: {init}): {}", text(&o.stdout));
    }
}

fn text_of(o: &std::process::Output) -> String {
    format!("{}{}", text(&o.stdout), text(&o.stderr))
}

/// The validation is strict: one misspelled field anywhere fails it, naming the field.
#[test]
fn a_misspelled_field_fails_the_validation() {
    let dir = crate::util::tempdir().unwrap();
    let (good, _) = k8s_manifests(&[&hello_dir(), "--cluster", "dns", "--cookie-secret", "c"]);
    let file = dir.path().join("m.yaml");
    std::fs::write(&file, &good).unwrap();
    assert!(validate(&file, VERSIONS[0]).status.success());
    for (field, typo) in [
        ("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
        ("terminationGracePeriodSeconds", "terminationGracePeriodSecond"),
        ("publishNotReadyAddresses", "publishNotReadyAddress"),
    ] {
        assert_eq!(good.matches(field).count(), 1, "{field}");
        std::fs::write(&file, good.replace(field, typo)).unwrap();
        let o = validate(&file, VERSIONS[0]);
        let out = text_of(&o);
        assert!(!o.status.success(), "{typo} passed:\n{out}");
        assert!(out.contains(&format!("'{typo}' was unexpected")), "{out}");
    }
}

/// The manifest's pod, run with Docker the way it says; SIGTERM after the preStop hook; the
/// release stops its applications and exits 0 within the grace period. The VM runs with the
/// schedulers and shutdown bound the manifest sets.
#[test]
fn the_image_run_as_the_manifest_says_stops_cleanly_within_the_grace_period() {
    let b = hello();
    let (_, docs) = k8s_manifests(&[
        &hello_dir(),
        "--image",
        &b.tag,
        "--health",
        "/health",
        "--cpu",
        "1",
        "--memory",
        "256Mi",
        "--grace-period",
        "20",
        "--pre-stop-delay",
        "2",
    ]);
    let ctx = PodContext { pod_ip: None, namespace: "default", secrets: BTreeMap::new(), config_maps: vec![] };
    let pod = pod_run(find(&docs, "Deployment"), &ctx);
    assert!(pod.args.contains(&"--read-only".to_string()) && pod.args.contains(&"ALL".to_string()), "{:?}", pod.args);
    let c = pod.start(&b.tag, &[]);

    let uid = text(&c.exec(&["id", "-u"]).stdout).trim().to_string();
    assert_eq!(uid, "10001");
    let o = c.exec(&[
        "/app/bin/hello_web",
        "rpc",
        "IO.inspect({System.schedulers_online(), System.schedulers(), Application.get_env(:kernel, :shutdown_time)})",
    ]);
    assert!(o.status.success(), "rpc: {}{}", text(&o.stdout), text(&o.stderr));
    // --cpu 1 → one scheduler; shutdown bound = 20 s grace - 2 s preStop - 5 s margin.
    assert_eq!(text(&o.stdout).trim(), "{1, 1, 13000}");

    let (exited, code) = pod.terminate(&c);
    let logs = c.logs();
    assert!(exited, "still running after the {}s grace period; logs:\n{logs}", pod.grace_seconds);
    assert_eq!(code, 0, "exit code; logs:\n{logs}");
    assert!(logs.contains("hello_web: application stopped"), "the stop callback did not run:\n{logs}");
}

/// A running pod: its container, its IP, and what it was started from (holding its volumes' files).
type Pod = (Container, String, PodRun);

/// Starts a pod of the manifest per cookie on one network (pod IPs .11, .12, ...).
fn cluster(extra: &[&str], net: &Network, cookies: &[&str]) -> Vec<Pod> {
    let b = hello();
    let mut args = vec![hello_dir()];
    args.extend(["--image", &b.tag, "--cluster", "dns", "--cookie-secret", "hello-cookie"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, docs) = k8s_manifests(&args);
    let config_maps: Vec<_> = docs.iter().filter(|d| d["kind"] == "ConfigMap").cloned().collect();
    let mut pods = Vec::new();
    for (i, cookie) in cookies.iter().enumerate() {
        let n = i as u8 + 1;
        let ip = net.ip(n);
        let secrets = [(("hello-cookie".to_string(), "cookie".to_string()), cookie.to_string())].into();
        let ctx = PodContext { pod_ip: Some(&ip), namespace: "default", secrets, config_maps: config_maps.clone() };
        let pod = pod_run(find(&docs, "Deployment"), &ctx);
        assert!(pod.env.contains(&("RELEASE_NODE".into(), format!("hello_web@{ip}"))), "{:?}", pod.env);
        pods.push((pod.start(&b.tag, &net.attach(n)), ip, pod));
    }
    pods
}

fn rpc(c: &Container, expr: &str) -> String {
    let o = c.exec(&["/app/bin/hello_web", "rpc", expr]);
    assert!(o.status.success(), "rpc {expr}: {}{}\nlogs:\n{}", text(&o.stdout), text(&o.stderr), c.logs());
    text(&o.stdout)
}

fn connects(pods: &[Pod], other: &str) -> String {
    let expr = format!("Node.connect(:\"hello_web@{other}\") |> IO.inspect(); IO.inspect(Node.list())");
    rpc(&pods[0].0, &expr)
}

#[test]
fn two_pods_with_the_manifest_env_form_an_erlang_cluster() {
    let net = Network::create("release-oci-k8s-epmd");
    let pods = cluster(&[], &net, &["shared-cookie-1", "shared-cookie-1", "another-cookie"]);
    let out = connects(&pods, &pods[1].1);
    assert_eq!(out, format!("true\n[:\"hello_web@{}\"]\n", pods[1].1), "logs:\n{}", pods[1].0.logs());
    // The other node sees the first one: one cluster, over the pod IPs.
    let back = rpc(&pods[1].0, "IO.inspect(Node.list())");
    assert_eq!(back, format!("[:\"hello_web@{}\"]\n", pods[0].1));
    // A node with a different cookie is refused: the Secret's cookie is what lets nodes in.
    let out = connects(&pods, &pods[2].1);
    assert!(out.starts_with("false\n"), "{out}");
}

#[test]
fn epmdless_pods_cluster_on_the_fixed_port_and_rpc_still_works() {
    let net = Network::create("release-oci-k8s-dist");
    let pods = cluster(&["--dist-port", "9100"], &net, &["shared-cookie-2", "shared-cookie-2"]);
    // No epmd anywhere: the node listens for distribution on the fixed port only.
    let names = rpc(&pods[0].0, "IO.inspect(:erl_epmd.names())");
    assert!(names.starts_with("{:error"), "epmd answers: {names}");
    let ports = listening_ports(&pods[0].0);
    assert!(ports.contains(&9100) && !ports.contains(&4369), "{ports:?}");
    let out = connects(&pods, &pods[1].1);
    assert_eq!(out, format!("true\n[:\"hello_web@{}\"]\n", pods[1].1), "logs:\n{}", pods[1].0.logs());
}

/// TCP ports the container listens on (IPv4, from /proc/net/tcp).
fn listening_ports(c: &Container) -> Vec<u16> {
    let o = c.exec(&["cat", "/proc/net/tcp"]);
    text(&o.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = f.get(1)?.rsplit(':').next()?;
            (f.get(3) == Some(&"0A")).then(|| u16::from_str_radix(port, 16).ok()).flatten()
        })
        .collect()
}
