//! The `[k8s]` table of `release-oci.toml`: defaults for `release-oci k8s` (each key is that
//! command's flag with `_` for `-`; its flags win). Stored and type-checked here, read by the
//! `k8s` command.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sConfig {
    /// The image reference to deploy (pinned by digest).
    pub image: Option<String>,
    /// Namespace of the objects.
    pub namespace: Option<String>,
    /// Name of the Deployment and Services (default: the release name).
    pub name: Option<String>,
    pub replicas: Option<u32>,
    /// The port the application listens on.
    pub port: Option<u16>,
    /// HTTP path for readiness/liveness probes (default: a TCP probe on the port).
    pub health: Option<String>,
    /// Clustering: `dns` (headless Service, `RELEASE_NODE=NAME@POD_IP`).
    pub cluster: Option<String>,
    /// Name of the Secret holding `RELEASE_COOKIE`, and its key.
    pub cookie_secret: Option<String>,
    pub cookie_secret_key: Option<String>,
    /// The cluster's DNS domain (for node names of the headless Service).
    pub cluster_domain: Option<String>,
    /// Fixed Erlang distribution port (epmd-less) when set.
    pub dist_port: Option<u16>,
    /// CPU and memory limits (Kubernetes quantities: `"500m"`, `"512Mi"`).
    pub cpu: Option<String>,
    pub memory: Option<String>,
    /// Size limit of the `emptyDir` mounted at `RELEASE_TMP` (`"64Mi"`).
    pub tmp_size: Option<String>,
    /// `terminationGracePeriodSeconds`.
    pub grace_period: Option<u32>,
    /// Seconds the `preStop` hook waits for endpoints to drain.
    pub pre_stop_delay: Option<u32>,
    /// Registry repository prefix for `resolve`.
    pub push_to: Option<String>,
    /// Extra environment variables of the container.
    pub env: Option<BTreeMap<String, String>>,
    /// Database migrations before the Deployment rolls out: `true` (the project's `bin/migrate`
    /// or `eval` of its `Release.migrate/0`) or the command (`"/app/bin/migrate"`,
    /// `"eval MyApp.Release.migrate()"`).
    pub migrate: Option<MigrateValue>,
    /// Run the migration as an init container of the Deployment instead of a Job.
    pub migrate_init: Option<bool>,
    /// Secrets whose keys become environment variables (`envFrom`) of every container.
    pub env_from: Option<Vec<String>>,
    /// `PHX_HOST` of the containers: the host name Phoenix builds URLs with.
    pub phx_host: Option<String>,
    /// An `emptyDir` at `/var/lib/release-oci` for images built with `--hot-upgrades`.
    pub hot_upgrades: Option<bool>,
}

/// `migrate = true | false | "COMMAND"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum MigrateValue {
    Enabled(bool),
    Command(String),
}
