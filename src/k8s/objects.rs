//! The objects: a Deployment, its Service, and for clustering a headless Service (plus the
//! `remote.vm.args` ConfigMap when epmd-less). Each is a typed `k8s-openapi` struct; nothing is
//! written as YAML text by hand.

use super::{Spec, beam, clustering, security};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, EnvVar, PodSpec, PodTemplateSpec, ResourceRequirements, Service, ServicePort,
    ServiceSpec, TopologySpreadConstraint,
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
    Deployment(Box<Deployment>),
    Service(Box<Service>),
    ConfigMap(Box<ConfigMap>),
}

/// The objects for `spec`, in apply order: ConfigMap, Services, then the Deployment.
pub fn manifests(spec: &Spec) -> Vec<Object> {
    let mut out = Vec::new();
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

/// The container's environment: distribution, the cookie, `PORT`, `ERL_FLAGS`, then `--env`.
fn env(spec: &Spec) -> Vec<EnvVar> {
    let mut env = clustering::env(spec);
    if let Some((secret, key)) = &spec.cookie_secret {
        env.push(clustering::cookie_env(secret, key));
    }
    env.push(EnvVar { name: "PORT".to_string(), value: Some(spec.port.to_string()), ..Default::default() });
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

/// Requests equal limits (Guaranteed QoS: no CPU stolen by neighbours, no eviction first).
fn resources(spec: &Spec) -> Option<ResourceRequirements> {
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
