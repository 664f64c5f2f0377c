//! What release-oci puts into an image's config and manifest besides the layers: annotations
//! (and the same facts as labels), the entrypoint contract, user, env, ports, stop signal.

use super::{minimal_base, releases};
use crate::cli::BuildSettings;
use crate::image::{self, ConfigSettings};
use crate::plan::{self, APP_DIR, TINI_PATH};
use crate::project::Project;
use crate::release::Release;
use std::collections::BTreeMap;

/// The PATH Docker itself gives a container whose image sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The manifest's annotations: the release's name and version, the build time, the source's
/// revision and repository, and the base's.
pub(super) fn annotations(
    s: &BuildSettings,
    project: Option<&Project>,
    release: &Release,
    base: Option<&image::BaseImage>,
    created: &str,
) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::new();
    annotations.insert("org.opencontainers.image.version".to_string(), release.version.clone());
    annotations.insert("org.opencontainers.image.title".to_string(), release.name.clone());
    annotations.insert("org.opencontainers.image.created".to_string(), created.to_string());
    if let Some(rev) = project.and_then(Project::git_revision) {
        annotations.insert("org.opencontainers.image.revision".to_string(), rev);
    }
    if let Some(src) = s.source_url.clone().or_else(|| project.and_then(Project::git_remote_url)) {
        annotations.insert("org.opencontainers.image.source".to_string(), src);
    }
    if let Some(b) = base {
        annotations.extend(minimal_base::base_annotations(b));
    }
    if s.upgrade.hot_upgrades {
        // `release-oci upgrade` reads it from the container: where the release root is.
        annotations.insert(crate::plan::hot::LABEL.to_string(), format!("/{}", crate::plan::hot::HOT_ROOT));
    }
    annotations
}

/// What the image config gets on top of the base's: the entrypoint contract, the user, the env
/// (PATH when the base has none, Phoenix's `PHX_SERVER`), ports, labels, the stop signal.
pub(super) fn config_settings(
    s: &BuildSettings,
    release: &Release,
    base: Option<&image::BaseImage>,
    user: &plan::User,
    labels: BTreeMap<String, String>,
    created: String,
) -> anyhow::Result<ConfigSettings> {
    let mut env = vec![
        ("LANG".to_string(), "C.UTF-8".to_string()),
        // The release writes runtime config, pipes and the cookie here; /tmp stays writable under
        // a read-only root filesystem (tmpfs / emptyDir).
        ("RELEASE_TMP".to_string(), "/tmp".to_string()),
        ("HOME".to_string(), user.home.clone()),
    ];
    env.extend(releases::flavour_env(release));
    // Engines fill in a PATH when an image has none, but not every runtime does: set the usual one.
    let base_has_path = base
        .and_then(|b| b.config.config().as_ref())
        .and_then(|c| c.env().as_ref())
        .is_some_and(|env| env.iter().any(|e| e.starts_with("PATH=")));
    if !base_has_path {
        env.insert(0, ("PATH".to_string(), DEFAULT_PATH.to_string()));
    }
    let phoenix_bare = releases::is_phoenix_without_server(release);
    if phoenix_bare && !s.env.iter().any(|(k, _)| k == "PHX_SERVER") {
        env.push(("PHX_SERVER".to_string(), "true".to_string()));
    }
    env.extend(s.env.clone());
    let (entrypoint, cmd) = releases::start_command(release, s.cmd.as_deref(), &format!("/{TINI_PATH}"), APP_DIR)?;
    Ok(ConfigSettings {
        platform: s.triple.platform(),
        entrypoint,
        cmd,
        user: Some(format!("{}:{}", user.uid, user.gid)),
        working_dir: Some(format!("/{APP_DIR}")),
        env,
        exposed_ports: match s.ports.is_empty() && (releases::is_phoenix(release) || phoenix_bare) {
            true => vec![releases::PHOENIX_PORT.to_string()],
            false => s.ports.clone(),
        },
        labels,
        stop_signal: Some("SIGTERM".into()),
        // `--hot-upgrades`: the release root's volume (docs/hot-upgrades.md).
        volumes: match s.upgrade.hot_upgrades {
            true => vec![format!("/{}", crate::plan::hot::HOT_DIR)],
            false => vec![],
        },
        created,
    })
}
