//! A kubelet in miniature: runs the pod template of a Deployment that `release-oci k8s` wrote as
//! a Docker container, as faithfully as Docker allows (environment with `$(VAR)` expansion and the
//! downward API, the security context, emptyDir and ConfigMap volumes, CPU and memory limits,
//! the preStop hook, the grace period).

#![allow(dead_code)]

use crate::util::*;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `release-oci k8s ARGS` and parses the YAML stream it prints.
pub fn k8s_manifests(args: &[&str]) -> (String, Vec<Value>) {
    let mut c = release_oci();
    c.arg("k8s").args(args);
    let text = ok(c);
    (text.clone(), parse_yaml(&text))
}

pub fn parse_yaml(text: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(text).map(|d| Value::deserialize(d).expect("YAML document")).collect()
}

pub fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind} in {docs:?}"))
}

/// What the cluster would provide: the pod's IP, Secrets, ConfigMaps.
pub struct PodContext<'a> {
    pub pod_ip: Option<&'a str>,
    pub namespace: &'a str,
    /// (secret name, key) → value
    pub secrets: BTreeMap<(String, String), String>,
    /// The ConfigMaps of the manifest.
    pub config_maps: Vec<Value>,
}

/// The pod as `docker run` arguments (before the image), plus its preStop command and grace.
pub struct PodRun {
    pub args: Vec<String>,
    pub pre_stop: Option<Vec<String>>,
    pub grace_seconds: u64,
    /// The probes' HTTP path (None: TCP).
    pub health: Option<String>,
    pub port: u16,
    /// The environment as the container sees it.
    pub env: Vec<(String, String)>,
    /// Holds the files of ConfigMap volumes while the container runs.
    pub files: tempfile::TempDir,
}

/// Expands `$(VAR)` from variables defined earlier, as the kubelet does (`$$` escapes).
fn expand(value: &str, defined: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some((name, tail)) = after.strip_prefix('(').and_then(|a| a.split_once(')')) {
            match defined.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The environment: each key of each `envFrom` Secret (a later one wins), then `env` (which wins
/// over them and may refer to them with `$(VAR)`).
fn env_of(container: &Value, ctx: &PodContext) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for source in container["envFrom"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let secret = source["secretRef"]["name"].as_str().unwrap_or_else(|| panic!("unsupported envFrom {source}"));
        let keys: Vec<_> = ctx.secrets.iter().filter(|((s, _), _)| s == secret).collect();
        assert!(!keys.is_empty(), "no Secret {secret} in the test cluster");
        for ((_, key), value) in keys {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
    }
    for e in container["env"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let name = e["name"].as_str().expect("env name").to_string();
        let value = if let Some(v) = e.get("value") {
            expand(v.as_str().expect("env value is a string"), &env)
        } else if let Some(f) = e["valueFrom"].get("fieldRef") {
            match f["fieldPath"].as_str() {
                Some("status.podIP") => ctx.pod_ip.expect("the manifest needs a pod IP").to_string(),
                Some("metadata.namespace") => ctx.namespace.to_string(),
                other => panic!("unsupported fieldRef {other:?}"),
            }
        } else if let Some(s) = e["valueFrom"].get("secretKeyRef") {
            let key = (s["name"].as_str().unwrap().to_string(), s["key"].as_str().unwrap().to_string());
            ctx.secrets.get(&key).unwrap_or_else(|| panic!("no Secret {key:?} in the test cluster")).clone()
        } else {
            panic!("unsupported env entry {e}");
        };
        env.push((name, value));
    }
    env
}

/// The container's security settings as Docker flags (container values override the pod's).
fn security_args(pod: &Value, container: &Value, args: &mut Vec<String>) {
    let (psc, csc) = (&pod["securityContext"], &container["securityContext"]);
    let pick = |k: &str| csc.get(k).or(psc.get(k)).cloned().unwrap_or(Value::Null);
    let uid = pick("runAsUser").as_i64().expect("runAsUser");
    let gid = pick("runAsGroup").as_i64().expect("runAsGroup");
    if pick("runAsNonRoot") == Value::Bool(true) {
        assert_ne!(uid, 0, "runAsNonRoot with uid 0 would not start");
    }
    args.extend(["--user".into(), format!("{uid}:{gid}")]);
    if csc["readOnlyRootFilesystem"] == Value::Bool(true) {
        args.push("--read-only".into());
    }
    for cap in csc["capabilities"]["drop"].as_array().map(Vec::as_slice).unwrap_or_default() {
        args.extend(["--cap-drop".into(), cap.as_str().unwrap().to_string()]);
    }
    assert!(csc["capabilities"].get("add").is_none(), "capabilities added");
    if csc["allowPrivilegeEscalation"] == Value::Bool(false) {
        args.extend(["--security-opt".into(), "no-new-privileges".into()]);
    }
    assert_ne!(csc["privileged"], Value::Bool(true));
    // RuntimeDefault is what Docker applies anyway.
    assert_eq!(pick("seccompProfile")["type"], "RuntimeDefault");
}

fn volume_args(pod: &Value, container: &Value, ctx: &PodContext, files: &Path, args: &mut Vec<String>) {
    let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
    for m in container["volumeMounts"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let name = m["name"].as_str().unwrap();
        let path = m["mountPath"].as_str().unwrap();
        let v = volumes.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no volume {name}"));
        if v.get("emptyDir").is_some() {
            // An emptyDir is writable by anyone and allows exec, like this tmpfs.
            args.extend(["--tmpfs".into(), format!("{path}:rw,exec,mode=1777")]);
        } else if let Some(cm) = v.get("configMap") {
            let cm_name = cm["name"].as_str().unwrap();
            let map = ctx
                .config_maps
                .iter()
                .find(|c| c["metadata"]["name"] == cm_name)
                .unwrap_or_else(|| panic!("the manifest has no ConfigMap {cm_name}"));
            let dir = files.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            for (k, val) in map["data"].as_object().unwrap() {
                std::fs::write(dir.join(k), val.as_str().unwrap()).unwrap();
            }
            set_mode(files, 0o755);
            set_mode(&dir, 0o755);
            args.extend(["-v".into(), format!("{}:{path}:ro", dir.display())]);
        } else {
            panic!("unsupported volume {v}");
        }
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn resource_args(container: &Value, args: &mut Vec<String>) {
    let limits = &container["resources"]["limits"];
    if let Some(cpu) = limits["cpu"].as_str() {
        let cores = match cpu.strip_suffix('m') {
            Some(m) => m.parse::<f64>().unwrap() / 1000.0,
            None => cpu.parse::<f64>().unwrap(),
        };
        args.extend(["--cpus".into(), cores.to_string()]);
    }
    if let Some(mem) = limits["memory"].as_str() {
        let docker = mem.replace("Ki", "k").replace("Mi", "m").replace("Gi", "g");
        args.extend(["--memory".into(), docker]);
    }
}

/// A container that runs to completion (the migration Job's, or an init container) as
/// `docker run` flags (before the image), and the args it gives the image's entrypoint.
pub struct OneShot {
    pub args: Vec<String>,
    pub cmd: Vec<String>,
    /// Holds the files of ConfigMap volumes while the container runs.
    pub files: tempfile::TempDir,
}

pub fn one_shot(pod: &Value, c: &Value, ctx: &PodContext) -> OneShot {
    // The image's entrypoint (tini → release-oci-entry) runs the args: no command override.
    assert!(c.get("command").is_none(), "{c}");
    let files = crate::util::tempdir().unwrap();
    let mut args = Vec::new();
    for (k, v) in env_of(c, ctx) {
        args.extend(["-e".into(), format!("{k}={v}")]);
    }
    security_args(pod, c, &mut args);
    volume_args(pod, c, ctx, files.path(), &mut args);
    resource_args(c, &mut args);
    let cmd = c["args"].as_array().expect("args").iter().map(|a| a.as_str().unwrap().to_string()).collect();
    OneShot { args, cmd, files }
}

/// Turns the Deployment's pod template into a Docker run.
pub fn pod_run(deployment: &Value, ctx: &PodContext) -> PodRun {
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "one container per pod");
    let c = &containers[0];
    // The image's own entrypoint (tini → bin/NAME start) runs: the manifest must not override it.
    assert!(c.get("command").is_none() && c.get("args").is_none(), "{c}");
    let files = crate::util::tempdir().unwrap();
    let env = env_of(c, ctx);
    let mut args = Vec::new();
    for (k, v) in &env {
        args.extend(["-e".into(), format!("{k}={v}")]);
    }
    security_args(pod, c, &mut args);
    volume_args(pod, c, ctx, files.path(), &mut args);
    resource_args(c, &mut args);
    let port = c["ports"].as_array().unwrap().iter().find(|p| p["name"] == "http").expect("http port")["containerPort"]
        .as_u64()
        .unwrap() as u16;
    let health = c["readinessProbe"]["httpGet"]["path"].as_str().map(str::to_string);
    let pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect());
    let grace_seconds = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    PodRun { args, pre_stop, grace_seconds, health, port, env, files }
}

impl PodRun {
    /// Starts the pod's container (`extra` adds network flags) and waits for its readiness probe.
    pub fn start(&self, image: &str, extra: &[String]) -> Container {
        assert_eq!(self.port, 4000, "Container::start publishes port 4000");
        let mut all: Vec<&str> = self.args.iter().map(String::as_str).collect();
        all.extend(extra.iter().map(String::as_str));
        let c = Container::start(&all, image, &[]);
        match &self.health {
            Some(path) => {
                let (status, body) = c.get(path, Duration::from_secs(60));
                assert_eq!(status, 200, "readiness probe {path}: {body}");
            }
            None => {
                c.get("/", Duration::from_secs(60));
            }
        }
        c
    }

    /// What the kubelet does to stop a pod: the preStop hook, then SIGTERM, then waiting out the
    /// rest of the grace period before SIGKILL. Returns whether the container exited by itself
    /// within the grace period, and its exit code.
    pub fn terminate(&self, c: &Container) -> (bool, i64) {
        let deadline = Instant::now() + Duration::from_secs(self.grace_seconds);
        if let Some(cmd) = &self.pre_stop {
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let o = c.exec(&args);
            assert!(o.status.success(), "preStop {cmd:?} failed: {}{}", text(&o.stdout), text(&o.stderr));
        }
        docker_ok(&["kill", "-s", "TERM", &c.id]);
        let exited = loop {
            let running = docker_ok(&["inspect", "-f", "{{.State.Running}}", &c.id]);
            if running.trim() == "false" {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if !exited {
            docker(&["kill", "-s", "KILL", &c.id]);
        }
        let code = docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &c.id]).trim().parse().expect("exit code");
        (exited, code)
    }
}

/// A user-defined Docker network with a subnet of its own (so containers get the IPs the test
/// chooses, as pods get theirs before the env is made); removed when dropped.
pub struct Network {
    pub name: String,
    /// The subnet's first three octets (`a.b.c`), /24.
    prefix: String,
}

impl Network {
    pub fn create(name: &str) -> Network {
        let name = format!("{name}-{}", std::process::id());
        let _ = docker(&["network", "rm", &name]);
        // Let Docker pick a free subnet, then pin it (only a configured subnet allows --ip).
        docker_ok(&["network", "create", &name]);
        let subnet = docker_ok(&["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", &name]);
        docker_ok(&["network", "rm", &name]);
        let subnet = subnet.trim().to_string();
        let prefix = subnet.split('.').take(3).collect::<Vec<_>>().join(".");
        docker_ok(&["network", "create", "--subnet", &format!("{prefix}.0/24"), &name]);
        Network { name, prefix }
    }

    /// The address of "pod" `n` (n ≥ 1; .1 is the gateway).
    pub fn ip(&self, n: u8) -> String {
        format!("{}.{}", self.prefix, 10 + n)
    }

    /// Flags that attach a container at the address of pod `n`.
    pub fn attach(&self, n: u8) -> Vec<String> {
        vec!["--network".into(), self.name.clone(), "--ip".into(), self.ip(n)]
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["network", "rm", &self.name]).output();
    }
}

#[test]
fn kubelet_style_expansion() {
    let defined = vec![("POD_IP".to_string(), "10.0.0.7".to_string())];
    assert_eq!(expand("app@$(POD_IP)", &defined), "app@10.0.0.7");
    assert_eq!(expand("$(MISSING) $$(POD_IP) $x", &defined), "$(MISSING) $(POD_IP) $x");
}
