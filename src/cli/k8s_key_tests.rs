//! One test per key of the `[k8s]` table: the key alone changes the spec (a key the merge ignored
//! would fail here), and its flag wins over it. `push_to` is `resolve`'s (commands/resolve.rs).

use super::*;
use crate::k8s::MigrationMode;

/// The spec of the table `c` under the flags `f` (for the release `my_app`).
fn try_spec(f: impl FnOnce(&mut K8sArgs), c: K8sConfig) -> anyhow::Result<Spec> {
    let mut a = K8sArgs {
        project: PathBuf::from("/nonexistent/my_app"),
        release: Some("my_app".into()),
        no_config: true,
        ..Default::default()
    };
    f(&mut a);
    a.merge(c, TopLevel::default()).map(|(s, _)| s)
}

fn spec(f: impl FnOnce(&mut K8sArgs), c: K8sConfig) -> Spec {
    try_spec(f, c).unwrap_or_else(|e| panic!("{e:#}"))
}

fn file(c: K8sConfig) -> Spec {
    spec(|_| {}, c)
}

fn default() -> Spec {
    file(K8sConfig::default())
}

/// The clustering that the clustering keys need.
fn clustered(c: K8sConfig) -> K8sConfig {
    K8sConfig { cluster: Some("dns".into()), cookie_secret: Some("app-cookie".into()), ..c }
}

#[test]
fn image() {
    let c = K8sConfig { image: Some("r.io/app@sha256:aa".into()), ..Default::default() };
    assert_eq!(default().image, "release-oci:///nonexistent/my_app");
    assert_eq!(file(c.clone()).image, "r.io/app@sha256:aa");
    assert_eq!(spec(|a| a.image = Some("r.io/b@sha256:bb".into()), c).image, "r.io/b@sha256:bb");
}

#[test]
fn namespace() {
    let c = K8sConfig { namespace: Some("team".into()), ..Default::default() };
    assert_eq!(default().namespace, None);
    assert_eq!(file(c.clone()).namespace.as_deref(), Some("team"));
    assert_eq!(spec(|a| a.namespace = Some("other".into()), c).namespace.as_deref(), Some("other"));
}

#[test]
fn name() {
    let c = K8sConfig { name: Some("web".into()), ..Default::default() };
    assert_eq!(default().name, "my-app");
    assert_eq!(file(c.clone()).name, "web");
    assert_eq!(spec(|a| a.name = Some("api".into()), c).name, "api");
}

#[test]
fn replicas() {
    let c = K8sConfig { replicas: Some(3), ..Default::default() };
    assert_eq!(default().replicas, 1);
    assert_eq!(file(c.clone()).replicas, 3);
    assert_eq!(spec(|a| a.replicas = Some(5), c).replicas, 5);
}

#[test]
fn port() {
    let c = K8sConfig { port: Some(8080), ..Default::default() };
    assert_eq!(default().port, 4000);
    assert_eq!(file(c.clone()).port, 8080);
    assert_eq!(spec(|a| a.port = Some(4001), c).port, 4001);
}

#[test]
fn health() {
    let c = K8sConfig { health: Some("/healthz".into()), ..Default::default() };
    assert_eq!(default().health, None);
    assert_eq!(file(c.clone()).health.as_deref(), Some("/healthz"));
    assert_eq!(spec(|a| a.health = Some("/ready".into()), c).health.as_deref(), Some("/ready"));
}

#[test]
fn cluster() {
    assert!(default().cluster.is_none());
    assert!(file(clustered(K8sConfig::default())).cluster.is_some());
    let flag = spec(
        |a| a.cluster = Some(ClusterArg::Dns),
        K8sConfig { cookie_secret: Some("c".into()), ..Default::default() },
    );
    assert!(flag.cluster.is_some());
    let c = K8sConfig { cluster: Some("gossip".into()), ..Default::default() };
    let e = format!("{:#}", try_spec(|_| {}, c).unwrap_err());
    assert!(e.contains("[k8s] cluster = \"gossip\": the only strategy is \"dns\""), "{e}");
}

#[test]
fn cookie_secret() {
    let c = K8sConfig { cookie_secret: Some("app-cookie".into()), ..Default::default() };
    assert_eq!(default().cookie_secret, None);
    assert_eq!(file(c.clone()).cookie_secret, Some(("app-cookie".into(), "cookie".into())));
    let s = spec(|a| a.cookie_secret = Some("cli-cookie".into()), c);
    assert_eq!(s.cookie_secret, Some(("cli-cookie".into(), "cookie".into())));
}

#[test]
fn cookie_secret_key() {
    let c = K8sConfig {
        cookie_secret: Some("app-cookie".into()),
        cookie_secret_key: Some("erlang-cookie".into()),
        ..Default::default()
    };
    assert_eq!(file(c.clone()).cookie_secret, Some(("app-cookie".into(), "erlang-cookie".into())));
    let s = spec(|a| a.cookie_secret_key = Some("k2".into()), c);
    assert_eq!(s.cookie_secret, Some(("app-cookie".into(), "k2".into())));
}

#[test]
fn cluster_domain() {
    let c = clustered(K8sConfig { cluster_domain: Some("corp.internal".into()), ..Default::default() });
    assert_eq!(file(clustered(K8sConfig::default())).cluster.map(|c| c.domain).as_deref(), Some("cluster.local"));
    assert_eq!(file(c.clone()).cluster.map(|c| c.domain).as_deref(), Some("corp.internal"));
    let s = spec(|a| a.cluster_domain = Some("cli.local".into()), c);
    assert_eq!(s.cluster.map(|c| c.domain).as_deref(), Some("cli.local"));
}

#[test]
fn dist_port() {
    let c = clustered(K8sConfig { dist_port: Some(9100), ..Default::default() });
    assert_eq!(file(clustered(K8sConfig::default())).cluster.and_then(|c| c.dist_port), None);
    assert_eq!(file(c.clone()).cluster.and_then(|c| c.dist_port), Some(9100));
    assert_eq!(spec(|a| a.dist_port = Some(9200), c).cluster.and_then(|c| c.dist_port), Some(9200));
}

#[test]
fn cpu() {
    let c = K8sConfig { cpu: Some("2".into()), ..Default::default() };
    assert!(default().cpu.is_none());
    assert_eq!(file(c.clone()).cpu.map(|c| c.schedulers()), Some(2));
    assert_eq!(spec(|a| a.cpu = Some("3".into()), c).cpu.map(|c| c.schedulers()), Some(3));
}

#[test]
fn memory() {
    let c = K8sConfig { memory: Some("512Mi".into()), ..Default::default() };
    assert!(default().memory.is_none());
    assert_eq!(file(c.clone()).memory.map(|m| m.as_str().to_string()).as_deref(), Some("512Mi"));
    let s = spec(|a| a.memory = Some("1Gi".into()), c);
    assert_eq!(s.memory.map(|m| m.as_str().to_string()).as_deref(), Some("1Gi"));
}

#[test]
fn tmp_size() {
    let c = K8sConfig { tmp_size: Some("64Mi".into()), ..Default::default() };
    assert!(default().tmp_size.is_none());
    assert_eq!(file(c.clone()).tmp_size.map(|m| m.as_str().to_string()).as_deref(), Some("64Mi"));
    let s = spec(|a| a.tmp_size = Some("128Mi".into()), c);
    assert_eq!(s.tmp_size.map(|m| m.as_str().to_string()).as_deref(), Some("128Mi"));
}

#[test]
fn grace_period() {
    let c = K8sConfig { grace_period: Some(60), ..Default::default() };
    assert_eq!(default().termination.grace_period, 30);
    assert_eq!(file(c.clone()).termination.grace_period, 60);
    assert_eq!(spec(|a| a.grace_period = Some(90), c).termination.grace_period, 90);
}

#[test]
fn pre_stop_delay() {
    let c = K8sConfig { pre_stop_delay: Some(0), ..Default::default() };
    assert_eq!(default().termination.pre_stop_delay, 5);
    assert_eq!(file(c.clone()).termination.pre_stop_delay, 0);
    assert_eq!(spec(|a| a.pre_stop_delay = Some(2), c).termination.pre_stop_delay, 2);
}

#[test]
fn env() {
    let table = [("A".to_string(), "file".to_string()), ("B".to_string(), "file".to_string())];
    let c = K8sConfig { env: Some(table.iter().cloned().collect()), ..Default::default() };
    assert!(default().env.is_empty());
    assert_eq!(file(c.clone()).env, table);
    let s = spec(|a| a.env = vec!["A=cli".into()], c);
    assert_eq!(s.env, [("B".to_string(), "file".to_string()), ("A".to_string(), "cli".to_string())]);
}

#[test]
fn migrate() {
    let c = K8sConfig { migrate: Some(MigrateValue::Command("eval X.Release.migrate()".into())), ..Default::default() };
    assert_eq!(default().migration, None);
    assert_eq!(file(c.clone()).migration.map(|m| m.args), Some(vec!["eval".into(), "X.Release.migrate()".into()]));
    let s = spec(|a| a.migrate = Some(Some("/app/bin/migrate".into())), c);
    assert_eq!(s.migration.map(|m| m.args), Some(vec!["/app/bin/migrate".to_string()]));
}

#[test]
fn migrate_init() {
    let command = Some(MigrateValue::Command("/app/bin/migrate".into()));
    let c = K8sConfig { migrate: command.clone(), migrate_init: Some(true), ..Default::default() };
    assert_eq!(
        file(K8sConfig { migrate: command.clone(), ..Default::default() }).migration.map(|m| m.mode),
        Some(MigrationMode::Job)
    );
    assert_eq!(file(c).migration.map(|m| m.mode), Some(MigrationMode::InitContainer));
    let s = spec(|a| a.migrate_init = true, K8sConfig { migrate: command, ..Default::default() });
    assert_eq!(s.migration.map(|m| m.mode), Some(MigrationMode::InitContainer));
}

#[test]
fn env_from() {
    let c = K8sConfig { env_from: Some(vec!["shared".into()]), ..Default::default() };
    assert!(default().env_from.is_empty());
    assert_eq!(file(c.clone()).env_from, ["shared"]);
    assert_eq!(spec(|a| a.env_from = vec!["extra".into()], c).env_from, ["shared", "extra"]);
}

#[test]
fn phx_host() {
    let c = K8sConfig { phx_host: Some("file.example.com".into()), ..Default::default() };
    assert_eq!(default().phx_host, None);
    assert_eq!(file(c.clone()).phx_host.as_deref(), Some("file.example.com"));
    let s = spec(|a| a.phx_host = Some("cli.example.com".into()), c);
    assert_eq!(s.phx_host.as_deref(), Some("cli.example.com"));
}

#[test]
fn hot_upgrades() {
    let c = K8sConfig { hot_upgrades: Some(true), ..Default::default() };
    assert!(!default().hot_upgrades);
    assert!(file(c).hot_upgrades);
    assert!(spec(|a| a.hot_upgrades = true, K8sConfig::default()).hot_upgrades);
}
