//! What builds that could not clean up after themselves (`kill -9`, a crash, a reboot) left:
//! builder containers (labelled with their [`Owner`], [`OWNER_LABEL`]) — an exited one still holds
//! its build cache volume "in use" — and output directories in `/dev/shm` or the temporary
//! directory ([`super::scratch`], named after their owner). Those whose owner is dead are removed at
//! the start of every build ([`sweep`]) and by `release-oci cache prune` ([`super::cache::prune`]);
//! those of builds that still run, or that this process cannot judge (another machine or pid
//! namespace, made before owners were recorded), are left alone.

use super::owner::{Liveness, OWNER_LABEL, Owner, proc_start};
use super::scratch::{DIR_PREFIX, parents};
use super::{BuilderError, ROLE_BUILDER, ROLE_LABEL};
use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A leftover that was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// `container NAME`, or `directory PATH`.
    pub what: String,
    /// The pid of its owner, which is gone.
    pub pid: u32,
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (left by process {}, which is gone)", self.what, self.pid)
    }
}

/// Removes every leftover of a dead owner: directories, and containers when `docker` is given.
/// Never fails: what cannot be removed is left, with a warning.
pub async fn sweep(docker: Option<&Docker>) -> Vec<Removed> {
    let mut removed = remove_dead_dirs().await;
    // Outputs kept for the next build (kept.rs) that no build used for a day.
    let _ = tokio::task::spawn_blocking(|| super::kept::sweep(super::kept::KEPT_UNUSED_FOR, None)).await;
    if let Some(docker) = docker {
        match remove_dead_containers(docker, None).await {
            Ok(containers) => removed.extend(containers),
            Err(e) => tracing::warn!(error = %e, "could not remove the builder containers of dead builds"),
        }
    }
    removed
}

/// Force-removes the builder containers whose owner is dead (of `project`, a canonical
/// directory, only when given); returns them.
pub async fn remove_dead_containers(docker: &Docker, project: Option<&str>) -> Result<Vec<Removed>, BuilderError> {
    let Some(me) = Owner::current() else { return Ok(Vec::new()) };
    let mut labels = vec![format!("{ROLE_LABEL}={ROLE_BUILDER}"), OWNER_LABEL.to_string()];
    if let Some(p) = project {
        labels.push(format!("{}={p}", super::cache::PROJECT_LABEL));
    }
    let filters = HashMap::from([("label".to_string(), labels)]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(|source| BuilderError::Docker { action: "listing builder containers".into(), source })?;
    let mut removed = Vec::new();
    for c in containers {
        let owner = c.labels.as_ref().and_then(|l| l.get(OWNER_LABEL)).and_then(|l| Owner::parse_label(l));
        let Some(owner) = owner.filter(|o| o.liveness(&me, proc_start) == Liveness::Dead) else { continue };
        let name = c.names.and_then(|n| n.into_iter().next()).map(|n| n.trim_start_matches('/').to_string());
        let Some(name) = name.or(c.id) else { continue };
        super::docker::remove(docker, &name).await?;
        tracing::debug!(container = %name, pid = owner.pid, "removed the builder container of a dead build");
        removed.push(Removed { what: format!("container {name}"), pid: owner.pid });
    }
    Ok(removed)
}

/// Deletes the output directories ([`super::scratch::parents`]) of dead owners that belong to
/// this user; returns them. What cannot be deleted is left, with a warning.
pub async fn remove_dead_dirs() -> Vec<Removed> {
    let Some(me) = Owner::current() else { return Vec::new() };
    let work = move || parents().iter().flat_map(|parent| remove_dead_dirs_in(parent, &me)).collect();
    tokio::task::spawn_blocking(work).await.unwrap_or_default()
}

fn remove_dead_dirs_in(parent: &Path, me: &Owner) -> Vec<Removed> {
    let Ok(entries) = std::fs::read_dir(parent) else { return Vec::new() };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(|n| Owner::parse_dir_name(n, DIR_PREFIX)) else { continue };
        // Not through a link, and only this user's (another user's is not ours to judge).
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        if !meta.is_dir() || meta.uid() != uid || owner.liveness(me, proc_start) != Liveness::Dead {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_dir_all(&path) {
            Ok(()) => removed.push(Removed { what: format!("directory {}", path.display()), pid: owner.pid }),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not remove a dead build's directory"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_directories_of_dead_owners_are_removed() {
        let me = Owner::current().unwrap();
        let parent = tempfile::tempdir().unwrap();
        let dead = Owner { pid: u32::MAX - 1, ..me.clone() };
        let dead_dir = parent.path().join(format!("{DIR_PREFIX}{}-aaaaaa", dead.dir_tag()));
        let live_dir = parent.path().join(format!("{DIR_PREFIX}{}-bbbbbb", me.dir_tag()));
        let old_style = parent.path().join(format!("{DIR_PREFIX}cccccc"));
        let other_ns =
            parent.path().join(format!("{DIR_PREFIX}{}-dddddd", Owner { pidns: 1, ..dead.clone() }.dir_tag()));
        for d in [&dead_dir, &live_dir, &old_style, &other_ns] {
            std::fs::create_dir_all(d.join("out/rel")).unwrap();
        }
        // A link named like a dead owner's directory is not followed.
        let elsewhere = tempfile::tempdir().unwrap();
        let link = parent.path().join(format!("{DIR_PREFIX}{}-eeeeee", dead.dir_tag()));
        std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();

        let removed = remove_dead_dirs_in(parent.path(), &me);
        assert_eq!(removed, [Removed { what: format!("directory {}", dead_dir.display()), pid: dead.pid }]);
        assert!(!dead_dir.exists());
        assert!(live_dir.exists() && old_style.exists() && other_ns.exists() && elsewhere.path().exists());
        assert!(removed[0].to_string().ends_with(&format!("(left by process {}, which is gone)", dead.pid)));
    }
}
