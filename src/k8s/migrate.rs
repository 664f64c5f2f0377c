//! Database migrations before a rollout (`--migrate`): a `batch/v1` Job per image, named after
//! the image's digest so that each new image migrates once and re-applying the same manifest is a
//! no-op; or, with `--migrate-init`, an init container of the Deployment's pods. Both run the
//! image's entrypoint with the migration command as `args`, under the same restricted security
//! context as the Deployment, with its environment (`envFrom` Secrets, `PHX_HOST`, `--env`) but
//! without the distribution variables: a migration is no cluster node.

use super::{MANAGED_BY_LABEL, Spec, naming, objects, resolve, security};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// Labels of the Job and its pods. They leave out the Deployment's selector label
/// (`app.kubernetes.io/name`): the Services must not pick a migration pod as an endpoint (the
/// headless one would give it to the cluster's DNS).
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
pub const COMPONENT: &str = "migration";

/// Retries of a failed migration pod (a database that is still starting gets a second chance).
pub const BACKOFF_LIMIT: i32 = 2;
/// How long a finished Job stays for `kubectl wait` and its logs (one day).
pub const TTL_SECONDS_AFTER_FINISHED: i32 = 86_400;

/// The name of the migration container (in the Job, and as the Deployment's init container).
pub const CONTAINER_NAME: &str = "migrate";

/// How migrations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationMode {
    /// A Job per image digest, applied and waited for before the Deployment.
    Job,
    /// An init container of the Deployment's pods: every pod migrates before it starts.
    InitContainer,
}

/// The migration: the container's `args` and where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub args: Vec<String>,
    pub mode: MigrationMode,
}

fn migration(spec: &Spec, mode: MigrationMode) -> Option<&Migration> {
    spec.migration.as_ref().filter(|m| m.mode == mode)
}

/// The Job's name: `NAME-migrate-` and the first digits of the image's digest. For a
/// `release-oci://PATH` image, `resolve` writes the name when it pins the image (the value is
/// `release-oci://PATH#name=NAME-migrate`); for an image named by a tag, the digits are
/// the reference's SHA-256 (one Job per tag: a new image under the same tag does not migrate).
pub fn job_name(spec: &Spec) -> String {
    let prefix = name_prefix(&spec.name);
    if spec.image.starts_with(resolve::SCHEME) {
        return format!("{}{}{prefix}", spec.image, resolve::NAME_FRAGMENT);
    }
    match naming::digest_hex(&spec.image) {
        Some(hex) => naming::name_for_digest(&prefix, hex),
        None => naming::name_for_digest(&prefix, &hex::encode(Sha256::digest(spec.image.as_bytes()))),
    }
}

/// `NAME-migrate`, `NAME` shortened so that the digest's digits still fit in 63 characters.
fn name_prefix(name: &str) -> String {
    let suffix = "-migrate";
    let mut base: String = name.chars().take(naming::MAX_DIGEST_PREFIX - suffix.len()).collect();
    while base.ends_with('-') {
        base.pop();
    }
    format!("{base}{suffix}")
}

fn labels(spec: &Spec) -> BTreeMap<String, String> {
    [(PART_OF_LABEL, spec.name.as_str()), (COMPONENT_LABEL, COMPONENT), (MANAGED_BY_LABEL, "release-oci")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The migration container: the image, the command as `args`, the application's environment,
/// the restricted security context, `/tmp` and the Deployment's resources.
fn container(spec: &Spec, name: &str, args: &[String]) -> Container {
    Container {
        name: name.to_string(),
        image: Some(spec.image.clone()),
        args: Some(args.to_vec()),
        env: Some(objects::app_env(spec, Vec::new())),
        env_from: objects::env_from(spec),
        resources: objects::resources(spec),
        security_context: Some(security::container_security_context(spec)),
        volume_mounts: Some(vec![security::tmp_mount()]),
        ..Default::default()
    }
}

/// The Deployment's init container (`--migrate-init`).
pub fn init_container(spec: &Spec) -> Option<Container> {
    let m = migration(spec, MigrationMode::InitContainer)?;
    // Container names are unique in a pod; the application's is the Deployment's name.
    let name = if spec.name == CONTAINER_NAME { "migrate-init" } else { CONTAINER_NAME };
    Some(container(spec, name, &m.args))
}

/// The migration Job (`--migrate`).
pub fn job(spec: &Spec) -> Option<Job> {
    let m = migration(spec, MigrationMode::Job)?;
    let labels = labels(spec);
    let pod = PodSpec {
        containers: vec![container(spec, CONTAINER_NAME, &m.args)],
        restart_policy: Some("Never".to_string()),
        security_context: Some(security::pod_security_context(spec)),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        volumes: Some(vec![security::tmp_volume(spec)]),
        ..Default::default()
    };
    Some(Job {
        metadata: ObjectMeta {
            name: Some(job_name(spec)),
            namespace: spec.namespace.clone(),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(BACKOFF_LIMIT),
            ttl_seconds_after_finished: Some(TTL_SECONDS_AFTER_FINISHED),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    })
}
