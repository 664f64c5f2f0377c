//! Erlang distribution between pods (`--cluster dns`): long node names on the pod IP, the cookie
//! from a Secret, a headless Service whose A records are the pods (for libcluster's
//! `Kubernetes.DNS` strategy or `dns_cluster`), and optionally a fixed distribution port without
//! epmd.

use super::{Spec, objects::object_meta};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, ContainerPort, EnvVar, EnvVarSource, ObjectFieldSelector, SecretKeySelector,
    Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// epmd's port: nodes find each other's distribution port through it unless epmd-less.
pub const EPMD_PORT: u16 = 4369;
/// Where the ConfigMap with `remote.vm.args` is mounted (epmd-less only).
pub const REMOTE_VM_ARGS_DIR: &str = "/etc/release-oci";
pub const REMOTE_VM_ARGS_FILE: &str = "remote.vm.args";
const REMOTE_VM_ARGS_VOLUME: &str = "remote-vm-args";

/// VM flags for epmd-less distribution on `port` (OTP 23+): no epmd is started, the node listens
/// on `port` and connects to every other node on the same port.
pub fn epmdless_flags(port: u16) -> Vec<String> {
    vec!["-start_epmd false".to_string(), format!("-erl_epmd_port {port}")]
}

/// The `remote.vm.args` for `bin/NAME rpc|remote` when epmd-less: they share `ERL_FLAGS` with the
/// node, so they would try to listen on the same fixed port; `-dist_listen false` (OTP 23+) lets
/// them connect without listening.
pub const REMOTE_VM_ARGS: &str = "## release-oci: rpc/remote connect to the node without listening on the fixed \
                                  distribution port (it is the node's)\n-dist_listen false\n";

fn plain(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.to_string(), value: Some(value.into()), ..Default::default() }
}

fn field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: path.to_string(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `RELEASE_COOKIE` from the Secret (never a literal in the manifest).
pub fn cookie_env(secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: "RELEASE_COOKIE".to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The distribution environment, in dependency order (`$(POD_IP)` is expanded by the kubelet
/// from a variable defined before it).
pub fn env(spec: &Spec) -> Vec<EnvVar> {
    let Some(cluster) = &spec.cluster else { return Vec::new() };
    let mut env = vec![
        field("POD_IP", "status.podIP"),
        field("POD_NAMESPACE", "metadata.namespace"),
        plain("RELEASE_DISTRIBUTION", "name"),
        plain("RELEASE_NODE", format!("{}@$(POD_IP)", spec.release)),
        // dns_cluster (Phoenix ≥ 1.7.11 reads it in runtime.exs) and anyone else: the name whose A
        // records are the pods.
        plain(
            "DNS_CLUSTER_QUERY",
            format!("{}.$(POD_NAMESPACE).svc.{}", spec.headless_name(), cluster.domain.trim_end_matches('.')),
        ),
    ];
    if cluster.dist_port.is_some() {
        env.push(plain("RELEASE_REMOTE_VM_ARGS", format!("{REMOTE_VM_ARGS_DIR}/{REMOTE_VM_ARGS_FILE}")));
    }
    env
}

/// The container ports distribution needs: the fixed port, or epmd's.
pub fn container_ports(spec: &Spec) -> Vec<ContainerPort> {
    match spec.cluster.as_ref().map(|c| c.dist_port) {
        None => Vec::new(),
        Some(Some(p)) => {
            vec![ContainerPort { name: Some("dist".into()), container_port: p.into(), ..Default::default() }]
        }
        Some(None) => {
            vec![ContainerPort { name: Some("epmd".into()), container_port: EPMD_PORT.into(), ..Default::default() }]
        }
    }
}

/// The headless Service: no cluster IP, an A record per pod, published before the pods are
/// ready (nodes must find each other to become ready in the first place).
pub fn headless_service(spec: &Spec) -> Option<Service> {
    spec.cluster.as_ref()?;
    let ports = container_ports(spec)
        .into_iter()
        .map(|p| ServicePort {
            name: p.name.clone(),
            port: p.container_port,
            target_port: Some(IntOrString::Int(p.container_port)),
            ..Default::default()
        })
        .collect();
    Some(Service {
        metadata: object_meta(spec, &spec.headless_name()),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            publish_not_ready_addresses: Some(true),
            selector: Some(spec.selector()),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn remote_vm_args_name(spec: &Spec) -> String {
    format!("{}-remote-vm-args", spec.name)
}

/// The ConfigMap with `remote.vm.args` (epmd-less only).
pub fn remote_vm_args_config_map(spec: &Spec) -> Option<ConfigMap> {
    spec.cluster.as_ref()?.dist_port?;
    Some(ConfigMap {
        metadata: object_meta(spec, &remote_vm_args_name(spec)),
        data: Some([(REMOTE_VM_ARGS_FILE.to_string(), REMOTE_VM_ARGS.to_string())].into_iter().collect()),
        ..Default::default()
    })
}

/// The volume and mount of that ConfigMap.
pub fn remote_vm_args_volume(spec: &Spec) -> Option<(Volume, VolumeMount)> {
    spec.cluster.as_ref()?.dist_port?;
    let volume = Volume {
        name: REMOTE_VM_ARGS_VOLUME.to_string(),
        config_map: Some(ConfigMapVolumeSource { name: remote_vm_args_name(spec), ..Default::default() }),
        ..Default::default()
    };
    let mount = VolumeMount {
        name: REMOTE_VM_ARGS_VOLUME.to_string(),
        mount_path: REMOTE_VM_ARGS_DIR.to_string(),
        read_only: Some(true),
        ..Default::default()
    };
    Some((volume, mount))
}
