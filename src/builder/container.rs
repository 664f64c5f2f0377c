//! The builder container: its name and how it is made (image, script, environment, mounts,
//! labels). [`super::docker`] runs it.

use super::docker::{OUT_DIR, SRC_DIR, SRC_TAR, STAGE_DIR, docker_err};
use super::inputs::{SECRETS_DIR, SSH_DIR};
use super::owner::{OWNER_LABEL, Owner};
use super::{ASSEMBLE_SH, BuildRequest, BuilderError, ROLE_BUILDER, ROLE_LABEL};
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
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

/// The uid:gid the build runs as (`build_user.sh`): not root, and not a user of the image.
pub(super) const BUILD_USER: &str = "10001:10001";
/// BUILD_USER's home: HOME, MIX_HOME and HEX_HOME.
pub(super) const BUILD_HOME: &str = "/build/home";
/// All the capabilities the container has, for `build_user.sh` to hand /build and the cache
/// volume to [`BUILD_USER`] (CHOWN) and become it (SETUID, SETGID); the build has none.
pub(super) const CAPABILITIES: &[&str] = &["CHOWN", "SETUID", "SETGID"];
/// The container's command: `build_user.sh`, which runs [`ASSEMBLE_SH`] as [`BUILD_USER`].
const BUILD_USER_SH: &str = include_str!("build_user.sh");

/// Creates the builder container; with `volume`, the build cache volume is mounted at
/// [`CACHE_DIR`](super::cache::CACHE_DIR) and named in the container's labels.
pub(super) async fn create(
    docker: &Docker,
    req: &BuildRequest,
    name: &str,
    volume: Option<&str>,
    ssh: Option<&std::path::Path>,
    extra_env: Vec<String>,
) -> Result<(), BuilderError> {
    let platform = req.triple.platform().to_string();
    let options = CreateContainerOptionsBuilder::default().name(name).platform(&platform).build();
    let action = format!("creating container {name} from image {} for {platform}", req.builder_image);
    let mut body = body(req, volume, ssh);
    body.env.get_or_insert_with(Vec::new).extend(extra_env);
    docker.create_container(Some(options), body).await.map_err(docker_err(action))?;
    Ok(())
}

/// What the container is made of.
pub(super) fn body(req: &BuildRequest, volume: Option<&str>, ssh: Option<&std::path::Path>) -> ContainerCreateBody {
    let mut labels = HashMap::from([
        (ROLE_LABEL.to_string(), ROLE_BUILDER.to_string()),
        (super::cache::PROJECT_LABEL.to_string(), req.project.root.display().to_string()),
    ]);
    // Which process made it: a later build removes it if that process died without doing so
    // (see [`super::leftovers`]); tests find their own builder among concurrent ones.
    labels.extend(owner_labels());
    if let Some(volume) = volume {
        labels.insert(super::cache::VOLUME_LABEL.to_string(), volume.to_string());
    }
    ContainerCreateBody {
        image: Some(req.builder_image.clone()),
        // An empty entrypoint replaces the image's, if it has one.
        entrypoint: Some(vec![]),
        cmd: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            BUILD_USER_SH.into(),
            "build_user.sh".into(),
            ASSEMBLE_SH.into(),
        ]),
        env: Some(env(req, volume)),
        working_dir: Some(SRC_DIR.into()),
        // Root only until `build_user.sh` has handed /build to BUILD_USER.
        user: Some("0:0".into()),
        labels: Some(labels),
        host_config: Some(host_config(req, volume, ssh)),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        open_stdin: Some(false),
        ..Default::default()
    }
}

fn env(req: &BuildRequest, volume: Option<&str>) -> Vec<String> {
    let mut env = vec![
        format!("SRC={SRC_DIR}"),
        format!("OUT={OUT_DIR}"),
        format!("SRC_TAR={SRC_TAR}"),
        format!("STAGE={STAGE_DIR}"),
        format!("MIX_ENV={}", req.mix_env),
        format!("PROFILE={}", req.profile),
        format!("PROJECT_KIND={}", req.project.kind().as_str()),
        "LANG=C.UTF-8".to_string(),
        format!("BUILD_USER={BUILD_USER}"),
        format!("BUILD_HOME={BUILD_HOME}"),
    ];
    if let Some(release) = &req.release {
        env.push(format!("RELEASE_NAME={release}"));
    }
    for (k, v) in req.minimal_base.iter().flat_map(|m| m.env()) {
        env.push(format!("{k}={v}"));
    }
    if volume.is_some() {
        env.push(format!("CACHE={}", super::cache::CACHE_DIR));
        if req.restore.is_some() {
            env.push(format!("{}=/{}", super::restore::ENV, super::restore::DIR));
        }
    }
    // The output comes as a tar on stdout, the log on stderr (see `docker::run`).
    env.push("STREAM_OUT=1".to_string());
    env.extend(req.inputs.container_env());
    env
}

/// [`BUILD_USER`] as numbers.
pub(super) fn build_ids() -> (u32, u32) {
    let (u, g) = BUILD_USER.split_once(':').unwrap_or((BUILD_USER, BUILD_USER));
    (u.parse().unwrap_or(10001), g.parse().unwrap_or(10001))
}

/// The limits (memory with swap, processes), the capabilities and no-new-privileges; no log
/// driver (stdout carries the release: a log file of it would cost a copy, and the log is read
/// from the attached stream); the tmpfs and the cache volume.
fn host_config(req: &BuildRequest, volume: Option<&str>, ssh: Option<&std::path::Path>) -> HostConfig {
    let memory = i64::try_from(req.limits.memory).unwrap_or(i64::MAX);
    let mut tmpfs = HashMap::from([(STAGE_DIR.to_string(), String::new())]);
    if !req.inputs.secrets.is_empty() {
        // Secrets live in memory only: build_user.sh moves them here from the upload.
        tmpfs.insert(SECRETS_DIR.to_string(), "mode=0700".to_string());
    }
    let mut binds: Vec<String> = volume.map(|v| format!("{v}:{}", super::cache::CACHE_DIR)).into_iter().collect();
    if let Some(dir) = ssh {
        binds.push(format!("{}:{SSH_DIR}:ro", dir.display()));
    }
    HostConfig {
        log_config: Some(HostConfigLogConfig { typ: Some("none".into()), config: None }),
        tmpfs: Some(tmpfs),
        binds: (!binds.is_empty()).then_some(binds),
        memory: Some(memory),
        // The same: no swap beyond the memory limit.
        memory_swap: Some(memory),
        pids_limit: Some(req.limits.pids),
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: Some(CAPABILITIES.iter().map(|c| c.to_string()).collect()),
        security_opt: Some(vec!["no-new-privileges".into()]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::Limits;

    fn request(limits: Limits) -> (tempfile::TempDir, BuildRequest) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mix.exs"), "[app: :x]").unwrap();
        let req = BuildRequest { limits, ..BuildRequest::for_test(dir.path()) };
        (dir, req)
    }

    #[test]
    fn the_builder_has_limits_few_capabilities_and_no_new_privileges() {
        let (_dir, req) = request(Limits::default());
        let body = body(&req, Some("release-oci-cache-x"), None);
        let hc = body.host_config.unwrap();
        assert_eq!((hc.memory, hc.memory_swap, hc.pids_limit), (Some(4 << 30), Some(4 << 30), Some(4096)));
        assert_eq!(hc.cap_drop.unwrap(), ["ALL"]);
        assert_eq!(hc.cap_add.unwrap(), ["CHOWN", "SETUID", "SETGID"]);
        assert_eq!(hc.security_opt.unwrap(), ["no-new-privileges"]);
        assert_eq!(hc.binds.unwrap(), ["release-oci-cache-x:/build/cache"]);
        let env = body.env.unwrap();
        assert!(env.contains(&"BUILD_USER=10001:10001".to_string()), "{env:?}");
        assert!(env.contains(&"CACHE=/build/cache".to_string()), "{env:?}");
        let cmd = body.cmd.unwrap();
        assert_eq!(&cmd[..2], ["/bin/sh", "-c"]);
        assert!(cmd[2].contains("exec setpriv --reuid=") && cmd[4] == ASSEMBLE_SH);
        let (_dir, req) = request(Limits { memory: 512 << 20, pids: 100 });
        let hc = super::body(&req, None, None).host_config.unwrap();
        assert_eq!((hc.memory, hc.pids_limit, hc.binds), (Some(512 << 20), Some(100), None));
    }
}
