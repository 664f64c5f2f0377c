//! The builder container: its name and how it is made (image, script, environment, mounts,
//! labels). [`super::docker`] runs it.

use super::docker::{OUT_DIR, SRC_DIR, SRC_TAR, STAGE_DIR, docker_err};
use super::owner::{OWNER_LABEL, Owner};
use super::{ASSEMBLE_SH, BuildRequest, BuilderError, ROLE_BUILDER, ROLE_LABEL};
use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::CreateContainerOptionsBuilder;
use std::collections::HashMap;

/// Label with the id of the process that made the builder container (its [`Owner`], which tells
/// it from a later process with the same pid, is in [`OWNER_LABEL`]).
pub const PID_LABEL: &str = "org.release-oci.pid";

/// The labels that say who made a container: [`PID_LABEL`] and [`OWNER_LABEL`] (when known).
pub fn owner_labels() -> Vec<(String, String)> {
    let mut labels = vec![(PID_LABEL.to_string(), std::process::id().to_string())];
    if let Some(me) = Owner::current() {
        labels.push((OWNER_LABEL.to_string(), me.label()));
    }
    labels
}

/// `release-oci-build-` and 12 random hex digits.
pub(super) fn name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.write_u32(std::process::id());
    format!("release-oci-build-{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// Creates the builder container; with `volume`, the build cache volume is mounted at
/// [`CACHE_DIR`](super::cache::CACHE_DIR) and named in the container's labels.
pub(super) async fn create(
    docker: &Docker,
    req: &BuildRequest,
    name: &str,
    volume: Option<&str>,
) -> Result<(), BuilderError> {
    let platform = req.triple.platform().to_string();
    let options = CreateContainerOptionsBuilder::default().name(name).platform(&platform).build();
    let mut env = vec![
        format!("SRC={SRC_DIR}"),
        format!("OUT={OUT_DIR}"),
        format!("SRC_TAR={SRC_TAR}"),
        format!("STAGE={STAGE_DIR}"),
        format!("MIX_ENV={}", req.mix_env),
        format!("PROFILE={}", req.profile),
        format!("PROJECT_KIND={}", req.project.kind().as_str()),
        "LANG=C.UTF-8".to_string(),
    ];
    if let Some(release) = &req.release {
        env.push(format!("RELEASE_NAME={release}"));
    }
    for (k, v) in req.minimal_base.iter().flat_map(|m| m.env()) {
        env.push(format!("{k}={v}"));
    }
    if volume.is_some() {
        env.push(format!("CACHE={}", super::cache::CACHE_DIR));
    }
    // The output comes as a tar on stdout, the log on stderr (see `docker::run`).
    env.push("STREAM_OUT=1".to_string());
    let mut labels = HashMap::from([
        (ROLE_LABEL.to_string(), ROLE_BUILDER.to_string()),
        (super::cache::PROJECT_LABEL.to_string(), req.project.root.display().to_string()),
    ]);
    // Which process made it: a later build removes it if that process died without doing so
    // (see [`super::leftovers`]); tests find their own builder among concurrent ones.
    labels.extend(owner_labels());
    // No log driver: stdout carries the release (a log file of it would cost a copy of it), and
    // the log is read from the attached stream.
    let mut host_config = bollard::models::HostConfig {
        log_config: Some(bollard::models::HostConfigLogConfig { typ: Some("none".into()), config: None }),
        tmpfs: Some(HashMap::from([(STAGE_DIR.to_string(), String::new())])),
        ..Default::default()
    };
    if let Some(volume) = volume {
        labels.insert(super::cache::VOLUME_LABEL.to_string(), volume.to_string());
        host_config.binds = Some(vec![format!("{volume}:{}", super::cache::CACHE_DIR)]);
    }
    let body = ContainerCreateBody {
        image: Some(req.builder_image.clone()),
        // An empty entrypoint replaces the image's, if it has one.
        entrypoint: Some(vec![]),
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), ASSEMBLE_SH.into(), "assemble.sh".into()]),
        env: Some(env),
        working_dir: Some(SRC_DIR.into()),
        // The uploaded sources belong to root.
        user: Some("0:0".into()),
        labels: Some(labels),
        host_config: Some(host_config),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        open_stdin: Some(false),
        ..Default::default()
    };
    let action = format!("creating container {name} from image {} for {platform}", req.builder_image);
    docker.create_container(Some(options), body).await.map_err(docker_err(action))?;
    Ok(())
}
