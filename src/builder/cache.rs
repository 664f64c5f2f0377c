//! The build cache of the Docker builder: one named Docker volume per (project directory, triple,
//! builder image id, MIX_ENV, rebar3 profile), mounted at [`CACHE_DIR`] in the builder container.
//! `assemble.sh` keeps a copy of the sources there (files whose content changed get a new mtime,
//! the others keep theirs) with `deps/` and `_build/` beside them, so mix and rebar3 recompile only
//! what changed. See docs/build-cache.md.

use super::{BuildRequest, BuilderError, ROLE_LABEL};
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveVolumeOptionsBuilder};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap};

/// Where the cache volume is mounted in the builder container.
pub const CACHE_DIR: &str = "/build/cache";
/// `org.release-oci.role` of a cache volume.
pub const ROLE_BUILD_CACHE: &str = "build-cache";
/// On a builder container: the cache volume it mounts.
pub const VOLUME_LABEL: &str = "org.release-oci.cache-volume";
/// The project directory a cache volume or builder container is for.
pub const PROJECT_LABEL: &str = "org.release-oci.project";
const TRIPLE_LABEL: &str = "org.release-oci.triple";
const IMAGE_LABEL: &str = "org.release-oci.builder-image";
const IMAGE_ID_LABEL: &str = "org.release-oci.builder-image-id";
const MIX_ENV_LABEL: &str = "org.release-oci.mix-env";
const PROFILE_LABEL: &str = "org.release-oci.profile";
const NAME_PREFIX: &str = "release-oci-cache-";
/// Bumped when the layout inside the volume changes: old volumes are then not reused.
const KEY_VERSION: &str = "1";

/// What a cache volume is for: everything that makes its `_build` and `deps` reusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// The project's canonical directory on the host.
    pub project: String,
    pub triple: String,
    /// The builder image's id (`sha256:…`): a new image (another OTP/Elixir) gets a new volume.
    pub builder_image_id: String,
    pub mix_env: String,
    pub profile: String,
}

impl CacheKey {
    pub fn of(req: &BuildRequest, builder_image_id: &str) -> CacheKey {
        CacheKey {
            project: req.project.root.display().to_string(),
            triple: req.triple.to_string(),
            builder_image_id: builder_image_id.to_string(),
            mix_env: req.mix_env.clone(),
            profile: req.profile.clone(),
        }
    }

    /// `release-oci-cache-<project directory name>-<16 hex digits of the key's sha256>`: stable
    /// for the same key, a Docker volume name (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`) whatever the path.
    pub fn volume_name(&self) -> String {
        let mut h = Sha256::new();
        for part in [KEY_VERSION, &self.project, &self.triple, &self.builder_image_id, &self.mix_env, &self.profile] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let hash = hex::encode(h.finalize());
        let base = self.project.rsplit('/').find(|s| !s.is_empty()).unwrap_or("project");
        format!("{NAME_PREFIX}{}-{}", slug(base), &hash[..16])
    }

    fn labels(&self, image: &str) -> HashMap<String, String> {
        HashMap::from([
            (ROLE_LABEL.to_string(), ROLE_BUILD_CACHE.to_string()),
            (PROJECT_LABEL.to_string(), self.project.clone()),
            (TRIPLE_LABEL.to_string(), self.triple.clone()),
            (IMAGE_LABEL.to_string(), image.to_string()),
            (IMAGE_ID_LABEL.to_string(), self.builder_image_id.clone()),
            (MIX_ENV_LABEL.to_string(), self.mix_env.clone()),
            (PROFILE_LABEL.to_string(), self.profile.clone()),
        ])
    }
}

/// Lowercase ASCII letters, digits, `_`, `.` and `-` (others become `-`), at most 32, never empty.
fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c.to_ascii_lowercase() } else { '-' })
        .take(32)
        .collect();
    if out.is_empty() || !out.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        out.insert(0, 'p');
    }
    out
}

fn docker_err(action: String) -> impl FnOnce(DockerError) -> BuilderError {
    move |source| BuilderError::Docker { action, source }
}

/// Creates the volume for `key` (labelled) unless it exists; returns its name.
pub async fn ensure_volume(docker: &Docker, key: &CacheKey, image: &str) -> Result<String, BuilderError> {
    let name = key.volume_name();
    match docker.inspect_volume(&name).await {
        Ok(_) => return Ok(name),
        Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => return Err(docker_err(format!("inspecting volume {name}"))(e)),
    }
    let request =
        VolumeCreateRequest { name: Some(name.clone()), labels: Some(key.labels(image)), ..Default::default() };
    // Creating a volume that another build just created returns that volume.
    docker.create_volume(request).await.map_err(docker_err(format!("creating volume {name}")))?;
    Ok(name)
}

/// A cache volume as `cache ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheVolume {
    pub name: String,
    pub project: String,
    pub triple: String,
    pub builder_image: String,
    pub mix_env: String,
    /// Names of the builder containers that mount it now.
    pub used_by: Vec<String>,
}

fn label_filter(label: String) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![label])])
}

/// Every build-cache volume of release-oci (by label), sorted by name; only those of `project`
/// (a canonical directory) when given.
pub async fn list(docker: &Docker, project: Option<&str>) -> Result<Vec<CacheVolume>, BuilderError> {
    let options =
        ListVolumesOptionsBuilder::default().filters(&label_filter(format!("{ROLE_LABEL}={ROLE_BUILD_CACHE}"))).build();
    let volumes = docker.list_volumes(Some(options)).await.map_err(docker_err("listing volumes".into()))?;
    let options = ListContainersOptionsBuilder::default().all(true).filters(&label_filter(VOLUME_LABEL.into())).build();
    let containers =
        docker.list_containers(Some(options)).await.map_err(docker_err("listing builder containers".into()))?;
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in containers {
        let volume = c.labels.as_ref().and_then(|l| l.get(VOLUME_LABEL)).cloned().unwrap_or_default();
        let name = c.names.and_then(|n| n.first().cloned()).unwrap_or_default();
        users.entry(volume).or_default().push(name.trim_start_matches('/').to_string());
    }
    let mut out: Vec<CacheVolume> = volumes
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            let label = |k: &str| v.labels.get(k).cloned().unwrap_or_default();
            CacheVolume {
                project: label(PROJECT_LABEL),
                triple: label(TRIPLE_LABEL),
                builder_image: label(IMAGE_LABEL),
                mix_env: label(MIX_ENV_LABEL),
                used_by: users.remove(&v.name).unwrap_or_default(),
                name: v.name,
            }
        })
        .filter(|v| project.is_none_or(|p| v.project == p))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// What `prune` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub removed: Vec<String>,
    /// Volumes a running build still uses (left alone), with the engine's reason.
    pub kept: Vec<(String, String)>,
}

/// Removes the build-cache volumes [`list`] finds (of `project` only, when given), except the ones
/// a builder container of a running build still mounts; the leftovers of killed builds first.
/// `removed` names the volumes, and the leftovers as `container NAME (left by process …)` and
/// `directory PATH (…)`.
pub async fn prune(docker: &Docker, project: Option<&str>) -> Result<Pruned, BuilderError> {
    let mut pruned = Pruned::default();
    // A warm builder keeps its volume mounted: it goes first (docs/warm-builder.md).
    for name in super::warm::remove_all(docker, project).await? {
        pruned.removed.push(format!("warm builder {name}"));
    }
    // A killed build's container keeps its volume "in use": it goes first, with the killed
    // builds' output directories (see [`super::leftovers`]).
    for leftover in super::leftovers::remove_dead_containers(docker, project).await? {
        pruned.removed.push(leftover.to_string());
    }
    for leftover in super::leftovers::remove_dead_dirs().await {
        pruned.removed.push(leftover.to_string());
    }
    let volumes = list(docker, project).await?;
    if project.is_none() {
        // Outputs kept for volumes that are gone (`docker volume rm`, a prune before kept.rs).
        let names = volumes.iter().map(|v| v.name.clone()).collect();
        let swept = tokio::task::spawn_blocking(move || super::kept::sweep(super::kept::KEPT_UNUSED_FOR, Some(&names)));
        for name in swept.await.unwrap_or_default() {
            pruned.removed.push(format!("the output kept for {name}"));
        }
    }
    for v in volumes {
        if !v.used_by.is_empty() {
            pruned.kept.push((v.name, format!("in use by {}", v.used_by.join(", "))));
            continue;
        }
        let options = RemoveVolumeOptionsBuilder::default().force(false).build();
        match docker.remove_volume(&v.name, Some(options)).await {
            Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {
                // The output its last build sent, kept on the host (kept.rs).
                super::kept::forget(&v.name);
                pruned.removed.push(v.name)
            }
            // 409: a build started using it meanwhile.
            Err(DockerError::DockerResponseServerError { status_code: 409, message }) => {
                pruned.kept.push((v.name, message));
            }
            Err(e) => return Err(docker_err(format!("removing volume {}", v.name))(e)),
        }
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey {
            project: "/home/me/src/My Project!".into(),
            triple: "x86_64-unknown-linux-gnu".into(),
            builder_image_id: "sha256:aaaa".into(),
            mix_env: "prod".into(),
            profile: "prod".into(),
        }
    }

    #[test]
    fn volume_names_are_stable_sanitised_and_depend_on_every_part() {
        let name = key().volume_name();
        assert!(name.starts_with("release-oci-cache-my-project--"), "{name}");
        assert_eq!(name.len(), "release-oci-cache-my-project--".len() + 16);
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')), "{name}");
        assert_eq!(name, key().volume_name(), "the same key gives the same name");
        let changes: [fn(&mut CacheKey); 5] = [
            |k| k.project = "/home/me/src/other/My Project!".into(),
            |k| k.triple = "aarch64-unknown-linux-gnu".into(),
            |k| k.builder_image_id = "sha256:bbbb".into(),
            |k| k.mix_env = "staging".into(),
            |k| k.profile = "test".into(),
        ];
        for change in changes {
            let mut k = key();
            change(&mut k);
            assert_ne!(k.volume_name(), name, "{k:?}");
        }
        // Parts are length-prefixed: moving a character from one part to the next is another key.
        let mut a = key();
        a.mix_env = "prodx".into();
        a.profile = "".into();
        let mut b = key();
        b.mix_env = "prod".into();
        b.profile = "xprod".into();
        assert_ne!(a.volume_name(), b.volume_name());
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("hello_web"), "hello_web");
        assert_eq!(slug("Été"), "p-t-");
        assert_eq!(slug(".tmpAbC"), "p.tmpabc");
        assert_eq!(slug(""), "p");
        assert_eq!(slug(&"x".repeat(80)).len(), 32);
        let root = CacheKey { project: "/".into(), ..key() };
        assert!(root.volume_name().starts_with("release-oci-cache-project-"));
    }
}
