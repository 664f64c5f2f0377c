//! Kubernetes manifests that get the BEAM right, and ko-style image resolution.
//!
//! [`manifests`] turns a validated [`Spec`] into typed Kubernetes objects (`k8s-openapi`): a
//! Deployment, a Service and, when clustering, a headless Service (and a ConfigMap for
//! epmd-less `rpc`), and with `--migrate` a migration Job. Each concern has its file: [`beam`]
//! (schedulers, shutdown bound, probes, preStop), [`security`] (the "restricted" Pod Security
//! Standard), [`clustering`] (Erlang distribution), [`migrate`] (the migration Job or init
//! container) and [`migrate_command`] (which command migrates), [`objects`] (assembling the
//! objects), [`yaml`] (multi-document output).
//! [`resolve`] replaces `release-oci://PATH` image references in YAML with pushed digests.
//! Design notes: docs/kubernetes.md.

pub mod beam;
pub mod clustering;
pub mod migrate;
pub mod migrate_command;
pub mod naming;
pub mod objects;
pub mod quantity;
pub mod resolve;
pub mod security;
pub mod yaml;

#[cfg(test)]
mod migrate_tests;
#[cfg(test)]
mod tests;

pub use migrate::{Migration, MigrationMode};
pub use naming::{check_name, name_from};
pub use objects::{Object, manifests};
pub use quantity::{Cpu, Memory};

/// Labels every object carries; the selector uses [`NAME_LABEL`] only.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error(
        "{what} {value:?} is not a valid Kubernetes name: use at most {max} lowercase letters, digits and `-`, \
         starting with a letter and ending with a letter or digit"
    )]
    Name { what: &'static str, value: String, max: usize },
    #[error("{0:?} is not a CPU quantity: use cores (`2`, `0.5`) or millicores (`500m`), more than 0")]
    Cpu(String),
    #[error("{0:?} is not a memory quantity: use bytes with a suffix such as `512Mi` or `2Gi`")]
    Memory(String),
    #[error(
        "--grace-period {grace}s leaves the BEAM no time to stop: it must be at least the preStop delay \
         ({pre_stop}s) + {margin}s margin + 1s; raise --grace-period or lower --pre-stop-delay"
    )]
    Grace { grace: u32, pre_stop: u32, margin: u32 },
    #[error("cannot write the manifests as YAML: {0}")]
    Yaml(String),
    #[error(
        "--migrate: no migration command found for {project}: it has no {overlay} and no `defmodule APP.Release` \
         with `def migrate` in lib/**/release.ex; pass the command: --migrate=/app/bin/migrate (a script of the \
         release) or --migrate='eval MyApp.Release.migrate()' (`mix phx.gen.release` writes both), or set \
         `migrate = \"COMMAND\"` in the [k8s] table of release-oci.toml",
        project = project.display(),
        overlay = migrate_command::MIGRATE_OVERLAY
    )]
    NoMigrateCommand { project: std::path::PathBuf },
    #[error(
        "--migrate={command:?}: {reason}; give a command of the release with its expression \
         (`eval MyApp.Release.migrate()`) or a program of the image (`/app/bin/migrate`)"
    )]
    MigrateSyntax { command: String, reason: String },
}

/// Everything the manifests are made from (validated by `cli::k8s`).
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Name of the Deployment and Services (an RFC 1035 label: Services need one).
    pub name: String,
    /// The release's name: `bin/RELEASE` and the node name `RELEASE@POD_IP`.
    pub release: String,
    pub namespace: Option<String>,
    /// The image reference (`REPO@sha256:...`, or `release-oci://PATH` for `resolve`).
    pub image: String,
    pub replicas: i32,
    /// The port the application listens on (also given to it as `PORT`).
    pub port: u16,
    /// HTTP path for the probes; a TCP probe on the port when `None`.
    pub health: Option<String>,
    /// The image's numeric user and group (runAsUser / runAsGroup).
    pub uid: i64,
    pub gid: i64,
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
    /// Size limit of the `/tmp` emptyDir (`RELEASE_TMP`); none by default.
    pub tmp_size: Option<Memory>,
    pub termination: Termination,
    /// The Secret (name, key) with the Erlang cookie, for `RELEASE_COOKIE`.
    pub cookie_secret: Option<(String, String)>,
    pub cluster: Option<Cluster>,
    /// Extra container environment (after the generated variables; `ERL_FLAGS` is merged).
    pub env: Vec<(String, String)>,
    /// Secrets whose keys are every container's environment (`envFrom`), in order.
    pub env_from: Vec<String>,
    /// `PHX_HOST` of every container.
    pub phx_host: Option<String>,
    /// Database migrations before the rollout: a Job per image, or an init container.
    pub migration: Option<Migration>,
    /// `--hot-upgrades`: an `emptyDir` at the release root's volume (docs/hot-upgrades.md).
    pub hot_upgrades: bool,
}

/// How the pod stops: `terminationGracePeriodSeconds` covers the preStop delay, the BEAM's
/// shutdown bound (`-kernel shutdown_time`) and a margin, in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termination {
    pub grace_period: u32,
    pub pre_stop_delay: u32,
}

/// Seconds between the BEAM's own shutdown bound and the kubelet's SIGKILL.
pub const SHUTDOWN_MARGIN_SECS: u32 = 5;

impl Termination {
    pub fn new(grace_period: u32, pre_stop_delay: u32) -> Result<Termination, K8sError> {
        if grace_period < pre_stop_delay + SHUTDOWN_MARGIN_SECS + 1 {
            return Err(K8sError::Grace {
                grace: grace_period,
                pre_stop: pre_stop_delay,
                margin: SHUTDOWN_MARGIN_SECS,
            });
        }
        Ok(Termination { grace_period, pre_stop_delay })
    }

    /// The BEAM's shutdown bound in milliseconds: what is left of the grace period after the
    /// preStop delay and the margin (the grace period's clock starts before preStop runs).
    pub fn shutdown_time_ms(&self) -> u64 {
        u64::from(self.grace_period - self.pre_stop_delay - SHUTDOWN_MARGIN_SECS) * 1000
    }
}

/// Erlang distribution between the pods (`--cluster dns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// A fixed distribution port without epmd; epmd (4369) and a dynamic port when `None`.
    pub dist_port: Option<u16>,
    /// The cluster's DNS domain, for the headless Service's fully qualified name.
    pub domain: String,
}

impl Spec {
    /// The headless Service's name (DNS discovery: one A record per pod, ready or not).
    pub fn headless_name(&self) -> String {
        format!("{}-headless", self.name)
    }

    /// The labels of every object and of the pod template.
    pub fn labels(&self) -> std::collections::BTreeMap<String, String> {
        let mut l = self.selector();
        l.insert(MANAGED_BY_LABEL.to_string(), "release-oci".to_string());
        l
    }

    /// The label selector of the Deployment and the Services.
    pub fn selector(&self) -> std::collections::BTreeMap<String, String> {
        [(NAME_LABEL.to_string(), self.name.clone())].into_iter().collect()
    }
}
