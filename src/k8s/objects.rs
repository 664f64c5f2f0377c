//! The objects: a Deployment, its Service, and for clustering a headless Service (plus the
//! `remote.vm.args` ConfigMap when epmd-less); with `--migrate` a migration Job first
//! ([`migrate`](super::migrate)). Each is a typed `k8s-openapi` struct; nothing is written as
//! YAML text by hand.

use super::{Spec, beam, clustering, migrate, security};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, EnvFromSource, EnvVar, PodSpec, PodTemplateSpec, ResourceRequirements,
    SecretEnvSource, Service, ServicePort, ServiceSpec, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use std::collections::BTreeMap;

/// One Kubernetes object of the output (serialised with its `apiVersion` and `kind`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Object {
    Job(Box<Job>),
    Deployment(Box<Deployment>),
    Service(Box<Service>),
    ConfigMap(Box<ConfigMap>),
}

/// The environment variable Phoenix's generated `runtime.exs` builds URLs with.
pub const PHX_HOST: &str = "PHX_HOST";

/// The objects for `spec`, in apply order: the migration Job, ConfigMap, Services, then the
/// Deployment (the Job is applied and waited for on its own first: docs/kubernetes.md).
pub fn manifests(spec: &Spec) -> Vec<Object> {
    let mut out = Vec::new();
    if let Some(job) = migrate::job(spec) {
        out.push(Object::Job(Box::new(job)));
    }
    if let Some(cm) = clustering::remote_vm_args_config_map(spec) {
        out.push(Object::ConfigMap(Box::new(cm)));
    }
    out.push(Object::Service(Box::new(service(spec))));
    if let Some(headless) = clustering::headless_service(spec) {
        out.push(Object::Service(Box::new(headless)));
    }
    out.push(Object::Deployment(Box::new(deployment(spec))));
    out
}

pub(crate) fn object_meta(spec: &Spec, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: spec.namespace.clone(),
        labels: Some(spec.labels()),
        ..Default::default()
    }
}

/// The Service in front of the application port.
pub fn service(spec: &Spec) -> Service {
    Service {
        metadata: object_meta(spec, &spec.name),
        spec: Some(ServiceSpec {
            selector: Some(spec.selector()),
            ports: Some(vec![ServicePort {
                name: Some(beam::HTTP_PORT_NAME.to_string()),
                port: spec.port.into(),
                target_port: Some(IntOrString::String(beam::HTTP_PORT_NAME.to_string())),
                protocol: Some("TCP".to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn deployment(spec: &Spec) -> Deployment {
    let mut volumes = vec![security::tmp_volume(spec)];
    let mut mounts = vec![security::tmp_mount()];
    if let Some((v, m)) = clustering::remote_vm_args_volume(spec) {
        volumes.push(v);
        mounts.push(m);
    }
    if spec.hot_upgrades {
        let (v, m) = security::hot_upgrades_volume();
        volumes.push(v);
        mounts.push(m);
    }
    let (startup, readiness, liveness) = beam::probes(spec);
    let mut ports = vec![ContainerPort {
        name: Some(beam::HTTP_PORT_NAME.to_string()),
        container_port: spec.port.into(),
        protocol: Some("TCP".to_string()),
        ..Default::default()
    }];
    ports.extend(clustering::container_ports(spec));
    let container = Container {
        name: spec.name.clone(),
        image: Some(spec.image.clone()),
        env: Some(env(spec)),
        env_from: env_from(spec),
        ports: Some(ports),
        resources: resources(spec),
        startup_probe: Some(startup),
        readiness_probe: Some(readiness),
        liveness_probe: Some(liveness),
        lifecycle: beam::lifecycle(spec),
        security_context: Some(security::container_security_context(spec)),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        init_containers: migrate::init_container(spec).map(|c| vec![c]),
        security_context: Some(security::pod_security_context(spec)),
        termination_grace_period_seconds: Some(spec.termination.grace_period.into()),
        // The DNS strategies need no API access; no token in the pod unless asked for.
        automount_service_account_token: Some(false),
        // `NAME_PORT=tcp://...` variables for every Service would shadow what a release reads.
        enable_service_links: Some(false),
        topology_spread_constraints: spread(spec),
        volumes: Some(volumes),
        ..Default::default()
    };
    Deployment {
        metadata: object_meta(spec, &spec.name),
        spec: Some(DeploymentSpec {
            replicas: Some(spec.replicas),
            selector: LabelSelector { match_labels: Some(spec.selector()), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(spec.labels()), ..Default::default() }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The container's environment: distribution, the cookie, then [`app_env`].
fn env(spec: &Spec) -> Vec<EnvVar> {
    let mut env = clustering::env(spec);
    if let Some((secret, key)) = &spec.cookie_secret {
        env.push(clustering::cookie_env(secret, key));
    }
    app_env(spec, env)
}

fn plain(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.to_string(), value: Some(value.to_string()), ..Default::default() }
}

/// `env`, then what the application reads: `PORT`, `PHX_HOST`, `ERL_FLAGS`, then `--env` (which
/// replaces a variable of the same name, and is appended to `ERL_FLAGS`).
pub(crate) fn app_env(spec: &Spec, mut env: Vec<EnvVar>) -> Vec<EnvVar> {
    env.push(plain("PORT", &spec.port.to_string()));
    if let Some(host) = &spec.phx_host {
        env.push(plain(PHX_HOST, host));
    }
    env.push(beam::erl_flags_env(spec));
    for (k, v) in &spec.env {
        if k == beam::ERL_FLAGS {
            continue; // merged into the generated ERL_FLAGS
        }
        match env.iter_mut().find(|e| &e.name == k) {
            Some(e) => *e = EnvVar { name: k.clone(), value: Some(v.clone()), ..Default::default() },
            None => env.push(EnvVar { name: k.clone(), value: Some(v.clone()), ..Default::default() }),
        }
    }
    env
}

/// `envFrom` of every container: each Secret's keys as variables (a later Secret wins for a key;
/// `env` wins over them all).
pub(crate) fn env_from(spec: &Spec) -> Option<Vec<EnvFromSource>> {
    let sources: Vec<EnvFromSource> = spec
        .env_from
        .iter()
        .map(|name| EnvFromSource {
            secret_ref: Some(SecretEnvSource { name: name.clone(), ..Default::default() }),
            ..Default::default()
        })
        .collect();
    (!sources.is_empty()).then_some(sources)
}

/// Requests equal limits (Guaranteed QoS: no CPU stolen by neighbours, no eviction first).
pub(crate) fn resources(spec: &Spec) -> Option<ResourceRequirements> {
    let mut limits = BTreeMap::new();
    if let Some(cpu) = &spec.cpu {
        limits.insert("cpu".to_string(), Quantity(cpu.as_str().to_string()));
    }
    if let Some(mem) = &spec.memory {
        limits.insert("memory".to_string(), Quantity(mem.as_str().to_string()));
    }
    if limits.is_empty() {
        return None;
    }
    Some(ResourceRequirements { requests: Some(limits.clone()), limits: Some(limits), ..Default::default() })
}

/// With several replicas, prefer spreading them over nodes (a cluster that lives on one node
/// dies with it), without blocking scheduling when there are fewer nodes.
fn spread(spec: &Spec) -> Option<Vec<TopologySpreadConstraint>> {
    (spec.replicas > 1).then(|| {
        vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "kubernetes.io/hostname".to_string(),
            when_unsatisfiable: "ScheduleAnyway".to_string(),
            label_selector: Some(LabelSelector { match_labels: Some(spec.selector()), ..Default::default() }),
            ..Default::default()
        }]
    })
}
