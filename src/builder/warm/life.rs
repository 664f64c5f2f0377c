//! A warm builder's container: its name (one per project, target and user), how it is made (the
//! cold builder's container, labelled as a warm builder, running `idle.sh` instead of a build, and
//! removed by the engine when it ends), found again, replaced when it is not running or was made
//! for another [`WarmKey`], and removed (`cache prune`, `builder stop`).

use super::key::WarmKey;
use super::{IDLE_LABEL, KEY_LABEL, ROLE_WARM_BUILDER, USER_LABEL, WARM_DIR, WARM_REQS};
use crate::builder::container::{PID_LABEL, body};
use crate::builder::docker::{docker_err, remove};
use crate::builder::input_files::InputFile;
use crate::builder::owner::OWNER_LABEL;
use crate::builder::{BuildRequest, BuilderError, ROLE_LABEL, cache};
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, UploadToContainerOptionsBuilder,
};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::time::Duration;

/// What a warm builder runs between builds (as `build_user.sh`'s script).
const IDLE_SH: &str = include_str!("idle.sh");
/// Label with the builder image's id a warm builder runs.
const IMAGE_ID_LABEL: &str = "org.release-oci.builder-image-id";

/// The user this process runs as: warm builders are kept per user.
pub(super) fn uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// `release-oci-warm-<project directory name>-<16 hex digits>`: the same for the same project
/// directory, target triple, `MIX_ENV`, rebar3 profile and user (as the build cache volume, one
/// per environment: builds for two environments do not replace each other's warm builder).
pub fn name(req: &BuildRequest) -> String {
    let mut h = Sha256::new();
    let root = req.project.root.to_string_lossy().into_owned();
    for part in [root, req.triple.to_string(), req.mix_env.clone(), req.profile.clone(), uid().to_string()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let base = req.project.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let slug: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c.to_ascii_lowercase() } else { '-' })
        .take(32)
        .collect();
    let slug = if slug.is_empty() { "project".to_string() } else { slug };
    format!("release-oci-warm-{slug}-{}", &hex::encode(h.finalize())[..16])
}

/// The warm builder named `name` as the engine has it.
pub(super) enum Found {
    /// Running, made for this key.
    Ready,
    /// Running for another key, or not running (killed, crashed, ending): to be replaced.
    Stale,
    Missing,
}

pub(super) async fn find(docker: &Docker, name: &str, key: &WarmKey) -> Result<Found, BuilderError> {
    let info = match docker.inspect_container(name, None).await {
        Ok(info) => info,
        Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => return Ok(Found::Missing),
        Err(e) => return Err(docker_err(format!("inspecting container {name}"))(e)),
    };
    let running = info.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    let same =
        labels.get(KEY_LABEL) == Some(&key.0) && labels.get(ROLE_LABEL).map(String::as_str) == Some(ROLE_WARM_BUILDER);
    Ok(if running && same { Found::Ready } else { Found::Stale })
}

/// What makes a warm builder: the cold builder's container with the cache volume, labelled as a
/// warm builder (no owner process: it outlives this one), running `idle.sh`, auto-removed.
pub(super) fn warm_body(
    req: &BuildRequest,
    volume: &str,
    image_id: &str,
    key: &WarmKey,
    idle: Duration,
) -> ContainerCreateBody {
    let mut b = body(req, Some(volume), None);
    let labels = b.labels.get_or_insert_with(HashMap::new);
    labels.remove(PID_LABEL);
    labels.remove(OWNER_LABEL);
    labels.insert(ROLE_LABEL.to_string(), ROLE_WARM_BUILDER.to_string());
    labels.insert(KEY_LABEL.to_string(), key.0.clone());
    labels.insert(USER_LABEL.to_string(), uid().to_string());
    labels.insert(IMAGE_ID_LABEL.to_string(), image_id.to_string());
    labels.insert(IDLE_LABEL.to_string(), idle.as_secs().to_string());
    if let Some(cmd) = b.cmd.as_mut().and_then(|c| c.last_mut()) {
        *cmd = IDLE_SH.to_string();
    }
    let env = b.env.get_or_insert_with(Vec::new);
    // Given to each build instead (the minimal base's step differs from build to build: a base
    // already known is not gathered again).
    let per_build = per_build_env(req);
    env.retain(|e| !per_build.contains(e));
    // A new volume's restore comes with the build that has one (`run.rs`), never with the builder.
    let restore = format!("{}=", crate::builder::restore::ENV);
    env.retain(|e| !e.starts_with(&restore));
    env.push(format!("WARM_DIR={WARM_DIR}"));
    env.push(format!("WARM_REQS={WARM_REQS}"));
    env.push(format!("WARM_IDLE={}", idle.as_secs().max(1)));
    if let Some(hc) = b.host_config.as_mut() {
        hc.auto_remove = Some(true);
    }
    b.attach_stdout = Some(false);
    b.attach_stderr = Some(false);
    b
}

/// The environment of one build rather than of its warm builder: the minimal base's step.
pub(super) fn per_build_env(req: &BuildRequest) -> Vec<String> {
    req.minimal_base.iter().flat_map(|m| m.env()).map(|(k, v)| format!("{k}={v}")).collect()
}

/// Creates and starts a warm builder `name` from `body`, the builder's input files uploaded
/// first (`build_user.sh` reads the CA bundle when the container starts). A failure removes what
/// was made.
pub(super) async fn start(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
    platform: &str,
    files: &[InputFile],
) -> Result<(), BuilderError> {
    let options = CreateContainerOptionsBuilder::default().name(name).platform(platform).build();
    let image = body.image.clone().unwrap_or_default();
    let action = format!("creating warm builder container {name} from image {image} for {platform}");
    docker.create_container(Some(options), body).await.map_err(docker_err(action))?;
    let started = async {
        if !files.is_empty() {
            let tar = bytes::Bytes::from(input_tar(files).map_err(|source| BuilderError::Io {
                action: "cannot archive the builder's inputs for",
                path: name.into(),
                source,
            })?);
            let options = UploadToContainerOptionsBuilder::default().path("/").build();
            let action = format!("uploading the builder's inputs into container {name}");
            docker
                .upload_to_container(name, Some(options), bollard::body_full(tar))
                .await
                .map_err(docker_err(action))?;
        }
        docker.start_container(name, None).await.map_err(docker_err(format!("starting container {name}")))
    };
    if let Err(e) = started.await {
        let _ = remove(docker, name).await;
        return Err(e);
    }
    Ok(())
}

/// The input files as one tar (they are small: a CA bundle, keys, a Hex client).
fn input_tar(files: &[InputFile]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for f in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(f.mode);
        header.set_size(f.content.len() as u64);
        header.set_mtime(0);
        tar.append_data(&mut header, &f.path, f.content.as_slice())?;
    }
    tar.into_inner()
}

/// A warm builder as `builder ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmBuilder {
    pub name: String,
    /// The project directory it builds.
    pub project: String,
    /// The engine's state: `running`, or `exited` while the engine removes it.
    pub state: String,
    pub builder_image: String,
}

/// This user's warm builders (of `project`, a canonical directory, only when given), by name.
pub async fn list(docker: &Docker, project: Option<&str>) -> Result<Vec<WarmBuilder>, BuilderError> {
    let mut labels = vec![format!("{ROLE_LABEL}={ROLE_WARM_BUILDER}"), format!("{USER_LABEL}={}", uid())];
    if let Some(p) = project {
        labels.push(format!("{}={p}", cache::PROJECT_LABEL));
    }
    let filters = HashMap::from([("label".to_string(), labels)]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let containers =
        docker.list_containers(Some(options)).await.map_err(docker_err("listing warm builder containers"))?;
    let mut out: Vec<WarmBuilder> = containers
        .into_iter()
        .filter_map(|c| {
            let name = c.names.and_then(|n| n.into_iter().next()).map(|n| n.trim_start_matches('/').to_string());
            let label = |k: &str| c.labels.as_ref().and_then(|l| l.get(k)).cloned().unwrap_or_default();
            Some(WarmBuilder {
                name: name.or(c.id.clone())?,
                project: label(cache::PROJECT_LABEL),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                builder_image: c.image.clone().unwrap_or_default(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes this user's warm builders (of `project`, a canonical directory, only when given);
/// returns their names. A build running in one fails.
pub async fn remove_all(docker: &Docker, project: Option<&str>) -> Result<Vec<String>, BuilderError> {
    let mut removed = Vec::new();
    for w in list(docker, project).await? {
        remove(docker, &w.name).await?;
        removed.push(w.name);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minimal::GatherOptions;

    fn request(root: &std::path::Path, known: &[&str]) -> BuildRequest {
        BuildRequest {
            minimal_base: Some(GatherOptions { tzdata: false, known: known.iter().map(|k| k.to_string()).collect() }),
            ..BuildRequest::for_test(root)
        }
    }

    #[test]
    fn a_warm_builder_outlives_its_maker_and_its_environment_is_not_one_builds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mix.exs"), "[app: :x]").unwrap();
        let key = WarmKey("k".repeat(64));
        let idle = Duration::from_secs(90);
        let gathering = warm_body(&request(dir.path(), &[]), "vol", "sha256:i", &key, idle);
        let known = warm_body(&request(dir.path(), &["sha256:aa"]), "vol", "sha256:i", &key, idle);
        // The minimal base's step is each build's: the warm builder is the same for both. So is
        // a new volume's restore (a build that had one found another warm builder: its key differed).
        assert_eq!(gathering.env, known.env);
        let restoring = BuildRequest {
            restore: Some(std::sync::Arc::new(crate::builder::restore::Restore::default())),
            ..request(dir.path(), &["sha256:aa"])
        };
        assert_eq!(warm_body(&restoring, "vol", "sha256:i", &key, idle).env, known.env);
        let env = known.env.unwrap();
        assert!(!env.iter().any(|e| e.starts_with("MINIMAL_BASE")), "{env:?}");
        assert!(env.contains(&"WARM_IDLE=90".to_string()) && env.contains(&"CACHE=/build/cache".to_string()));
        let per_build = per_build_env(&request(dir.path(), &["sha256:aa"]));
        assert_eq!(per_build, ["MINIMAL_BASE=1", "MINIMAL_BASE_KNOWN=sha256:aa"]);
        let labels = known.labels.unwrap();
        assert_eq!(labels.get(ROLE_LABEL).map(String::as_str), Some(ROLE_WARM_BUILDER));
        assert_eq!(labels.get(KEY_LABEL), Some(&key.0));
        assert_eq!(labels.get(USER_LABEL), Some(&uid().to_string()));
        // No owner process: a later build must not sweep it as a dead build's leftover.
        assert!(!labels.contains_key(PID_LABEL) && !labels.contains_key(OWNER_LABEL), "{labels:?}");
        let hc = known.host_config.unwrap();
        assert_eq!(hc.auto_remove, Some(true));
        assert_eq!(hc.cap_add.unwrap(), ["CHOWN", "SETUID", "SETGID"]);
        assert_eq!(known.cmd.unwrap().last().map(String::as_str), Some(IDLE_SH));
    }

    #[test]
    fn names_are_per_project_and_docker_names() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for d in [&a, &b] {
            std::fs::write(d.path().join("mix.exs"), "[app: :x]").unwrap();
        }
        let (na, nb) = (name(&request(a.path(), &[])), name(&request(b.path(), &[])));
        assert_ne!(na, nb);
        assert_eq!(na, name(&request(a.path(), &["sha256:aa"])));
        let staging = BuildRequest { mix_env: "staging".into(), ..request(a.path(), &[]) };
        assert_ne!(name(&staging), na, "another MIX_ENV has its own warm builder");
        assert!(na.starts_with("release-oci-warm-"), "{na}");
        assert!(na.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')), "{na}");
    }
}
