use super::*;
use serde::Deserialize;
use serde_json::{Value, json};

pub(super) fn spec() -> Spec {
    Spec {
        name: "hello-web".into(),
        release: "hello_web".into(),
        namespace: None,
        image: format!("registry.test/hello_web@sha256:{}", "a".repeat(64)),
        replicas: 1,
        port: 4000,
        health: None,
        uid: 10001,
        gid: 10001,
        cpu: None,
        memory: None,
        tmp_size: None,
        termination: Termination::new(30, 5).unwrap(),
        cookie_secret: None,
        cluster: None,
        env: vec![],
        env_from: vec![],
        phx_host: None,
        migration: None,
        hot_upgrades: false,
    }
}

pub(super) fn clustered(dist_port: Option<u16>) -> Spec {
    Spec {
        replicas: 3,
        cookie_secret: Some(("hello-cookie".into(), "cookie".into())),
        cluster: Some(Cluster { dist_port, domain: "cluster.local".into() }),
        ..spec()
    }
}

/// The objects as JSON values (what the YAML holds).
pub(super) fn docs(s: &Spec) -> Vec<Value> {
    manifests(s).iter().map(|o| serde_json::to_value(o).unwrap()).collect()
}

pub(super) fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| format!("{}/{}", d["kind"].as_str().unwrap(), d["metadata"]["name"].as_str().unwrap()))
        .collect()
}

pub(super) fn deployment(docs: &[Value]) -> &Value {
    docs.iter().find(|d| d["kind"] == "Deployment").unwrap()
}

pub(super) fn container(docs: &[Value]) -> &Value {
    &deployment(docs)["spec"]["template"]["spec"]["containers"][0]
}

/// name → value (or valueFrom) of the container's environment, in order.
pub(super) fn env(docs: &[Value]) -> Vec<(String, Value)> {
    container(docs)["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.get("value").or(e.get("valueFrom")).unwrap().clone()))
        .collect()
}

pub(super) fn env_value(docs: &[Value], name: &str) -> Option<Value> {
    env(docs).into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

#[test]
fn a_plain_release_gets_a_service_and_a_restricted_deployment() {
    let d = docs(&spec());
    assert_eq!(kinds(&d), ["Service/hello-web", "Deployment/hello-web"]);
    assert_eq!(d[0]["apiVersion"], "v1");
    assert_eq!(d[1]["apiVersion"], "apps/v1");
    let pod = &deployment(&d)["spec"]["template"]["spec"];
    let c = container(&d);
    assert_eq!(c["image"], spec().image.as_str());
    assert_eq!(deployment(&d)["spec"]["selector"]["matchLabels"], json!({"app.kubernetes.io/name": "hello-web"}));
    assert_eq!(d[0]["spec"]["selector"], json!({"app.kubernetes.io/name": "hello-web"}));
    // Restricted Pod Security Standard.
    assert_eq!(
        pod["securityContext"],
        json!({"runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001,
               "seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert_eq!(
        c["securityContext"],
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "privileged": false,
               "readOnlyRootFilesystem": true, "runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001,
               "seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert_eq!(pod["volumes"], json!([{"name": "tmp", "emptyDir": {}}]));
    assert_eq!(c["volumeMounts"], json!([{"name": "tmp", "mountPath": "/tmp"}]));
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["enableServiceLinks"], false);
    // Termination: preStop sleep, then SIGTERM; the BEAM's bound fits in what is left.
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(c["lifecycle"]["preStop"]["exec"]["command"], json!(["/bin/sleep", "5"]));
    assert_eq!(env_value(&d, "ERL_FLAGS").unwrap(), "-kernel shutdown_time 20000");
    assert_eq!(env_value(&d, "PORT").unwrap(), "4000");
    // Probes: TCP on the named port without --health.
    for p in ["startupProbe", "readinessProbe", "livenessProbe"] {
        assert_eq!(c[p]["tcpSocket"], json!({"port": "http"}), "{p}");
        assert!(c[p].get("httpGet").is_none());
    }
    assert_eq!(c["ports"], json!([{"name": "http", "containerPort": 4000, "protocol": "TCP"}]));
    assert_eq!(d[0]["spec"]["ports"], json!([{"name": "http", "port": 4000, "targetPort": "http", "protocol": "TCP"}]));
    // No clustering, no cookie, no resources, no spreading for one replica.
    assert!(env_value(&d, "RELEASE_COOKIE").is_none() && env_value(&d, "RELEASE_DISTRIBUTION").is_none());
    assert!(c.get("resources").is_none() && pod.get("topologySpreadConstraints").is_none());
}

#[test]
fn health_paths_give_http_probes() {
    let d = docs(&Spec { health: Some("/health".into()), ..spec() });
    for p in ["startupProbe", "readinessProbe", "livenessProbe"] {
        assert_eq!(container(&d)[p]["httpGet"], json!({"path": "/health", "port": "http"}), "{p}");
    }
}

#[test]
fn schedulers_and_resources_follow_the_cpu_limit() {
    let s = Spec { cpu: Some("1500m".parse().unwrap()), memory: Some("512Mi".parse().unwrap()), ..spec() };
    let d = docs(&s);
    assert_eq!(env_value(&d, "ERL_FLAGS").unwrap(), "+S 2:2 +SDcpu 2:2 -kernel shutdown_time 20000");
    let r = &container(&d)["resources"];
    assert_eq!(r["limits"], json!({"cpu": "1500m", "memory": "512Mi"}));
    assert_eq!(r["requests"], r["limits"]);
}

#[test]
fn the_grace_period_always_covers_pre_stop_and_the_beam_bound() {
    for grace in [11, 30, 60, 600] {
        for pre_stop in [0, 1, 5, 10] {
            match Termination::new(grace, pre_stop) {
                Ok(t) => {
                    let bound_s = t.shutdown_time_ms() / 1000;
                    assert!(bound_s >= 1, "{grace}/{pre_stop}");
                    assert!(u64::from(pre_stop) + bound_s < u64::from(grace), "{grace}/{pre_stop}");
                }
                Err(e) => assert!(grace < pre_stop + SHUTDOWN_MARGIN_SECS + 1, "{grace}/{pre_stop}: {e}"),
            }
        }
    }
    let d = docs(&Spec { termination: Termination::new(60, 0).unwrap(), ..spec() });
    assert!(container(&d).get("lifecycle").is_none());
    assert_eq!(env_value(&d, "ERL_FLAGS").unwrap(), "-kernel shutdown_time 55000");
}

#[test]
fn dns_clustering_names_nodes_by_pod_ip_and_reads_the_cookie_from_a_secret() {
    let s = clustered(None);
    let d = docs(&s);
    assert_eq!(kinds(&d), ["Service/hello-web", "Service/hello-web-headless", "Deployment/hello-web"]);
    let names: Vec<String> = env(&d).into_iter().map(|(n, _)| n).collect();
    let pos = |n: &str| names.iter().position(|x| x == n).unwrap_or_else(|| panic!("{n} missing: {names:?}"));
    // $(POD_IP) and $(POD_NAMESPACE) expand only from variables defined before them.
    assert!(pos("POD_IP") < pos("RELEASE_NODE") && pos("POD_NAMESPACE") < pos("DNS_CLUSTER_QUERY"));
    assert_eq!(env_value(&d, "POD_IP").unwrap(), json!({"fieldRef": {"fieldPath": "status.podIP"}}));
    assert_eq!(env_value(&d, "RELEASE_DISTRIBUTION").unwrap(), "name");
    assert_eq!(env_value(&d, "RELEASE_NODE").unwrap(), "hello_web@$(POD_IP)");
    assert_eq!(
        env_value(&d, "RELEASE_COOKIE").unwrap(),
        json!({"secretKeyRef": {"name": "hello-cookie", "key": "cookie", "optional": false}})
    );
    assert_eq!(env_value(&d, "DNS_CLUSTER_QUERY").unwrap(), "hello-web-headless.$(POD_NAMESPACE).svc.cluster.local");
    let headless = &d[1]["spec"];
    assert_eq!(headless["clusterIP"], "None");
    assert_eq!(headless["publishNotReadyAddresses"], true);
    assert_eq!(headless["ports"], json!([{"name": "epmd", "port": 4369, "targetPort": 4369}]));
    assert!(!env_value(&d, "ERL_FLAGS").unwrap().as_str().unwrap().contains("epmd"));
    let spread = &deployment(&d)["spec"]["template"]["spec"]["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(spread["whenUnsatisfiable"], "ScheduleAnyway");
}

#[test]
fn epmdless_distribution_uses_one_port_and_lets_rpc_connect_without_listening() {
    let d = docs(&clustered(Some(9100)));
    assert_eq!(
        kinds(&d),
        [
            "ConfigMap/hello-web-remote-vm-args",
            "Service/hello-web",
            "Service/hello-web-headless",
            "Deployment/hello-web"
        ]
    );
    let flags = env_value(&d, "ERL_FLAGS").unwrap();
    assert_eq!(flags, "-kernel shutdown_time 20000 -start_epmd false -erl_epmd_port 9100");
    assert_eq!(d[0]["data"]["remote.vm.args"].as_str().unwrap().lines().last(), Some("-dist_listen false"));
    // RELEASE_REMOTE_VM_ARGS points at the file the ConfigMap volume puts there.
    let mounts = container(&d)["volumeMounts"].as_array().unwrap().clone();
    let mount = mounts.iter().find(|m| m["name"] == "remote-vm-args").unwrap();
    assert_eq!(mount["readOnly"], true);
    let file = format!("{}/remote.vm.args", mount["mountPath"].as_str().unwrap());
    assert_eq!(env_value(&d, "RELEASE_REMOTE_VM_ARGS").unwrap(), file.as_str());
    let volumes = &deployment(&d)["spec"]["template"]["spec"]["volumes"];
    assert!(volumes.as_array().unwrap().iter().any(|v| v["configMap"]["name"] == "hello-web-remote-vm-args"));
    assert_eq!(d[2]["spec"]["ports"], json!([{"name": "dist", "port": 9100, "targetPort": 9100}]));
    assert!(
        container(&d)["ports"].as_array().unwrap().iter().any(|p| p["name"] == "dist" && p["containerPort"] == 9100)
    );
}

#[test]
fn user_environment_is_merged() {
    let s = Spec {
        env: vec![("ERL_FLAGS".into(), "+sbwt none".into()), ("PORT".into(), "4001".into()), ("X".into(), "1".into())],
        ..spec()
    };
    let d = docs(&s);
    assert_eq!(env_value(&d, "ERL_FLAGS").unwrap(), "-kernel shutdown_time 20000 +sbwt none");
    assert_eq!(env_value(&d, "PORT").unwrap(), "4001");
    assert_eq!(env(&d).last().unwrap(), &("X".to_string(), json!("1")));
    assert_eq!(env(&d).iter().filter(|(n, _)| n == "PORT" || n == "ERL_FLAGS").count(), 2);
}

#[test]
fn yaml_output_reads_back_as_the_objects_and_has_no_literal_cookie() {
    let s = Spec { namespace: Some("prod".into()), ..clustered(Some(9100)) };
    let text = yaml::to_yaml(&manifests(&s)).unwrap();
    let back: Vec<Value> = yaml_serde::Deserializer::from_str(&text).map(|d| Value::deserialize(d).unwrap()).collect();
    assert_eq!(back, docs(&s));
    assert!(back.iter().all(|d| d["metadata"]["namespace"] == "prod"));
    assert!(text.starts_with("apiVersion: v1\nkind: ConfigMap\n"), "{text}");
    assert!(!text.contains("RELEASE_COOKIE\n    value"), "{text}");
}

#[test]
fn hot_upgrades_mount_an_empty_dir_at_the_release_roots_volume() {
    let d = docs(&Spec { hot_upgrades: true, ..spec() });
    let pod = &deployment(&d)["spec"]["template"]["spec"];
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(volumes.contains(&json!({"name": "release-root", "emptyDir": {}})), "{volumes:?}");
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    assert!(mounts.contains(&json!({"name": "release-root", "mountPath": "/var/lib/release-oci"})), "{mounts:?}");
    // The container's root stays read-only.
    assert_eq!(pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true);
    let plain = docs(&spec());
    assert!(!deployment(&plain)["spec"]["template"]["spec"]["volumes"].to_string().contains("release-root"));
}
