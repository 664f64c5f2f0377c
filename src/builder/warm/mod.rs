//! The warm builder (`--warm-builder`, `warm_builder = true`; docs/warm-builder.md): the builder
//! container of a project is kept between builds instead of made and removed for each one. A
//! build uploads its sources into it and runs the same build script there (`docker exec` of
//! `exec.sh`), with the same environment, limits, user and build cache volume as a cold build,
//! so the image is the same. Kept per project directory, target, environment and user
//! ([`name`]); made for one [`WarmKey`] (the build files, `config/`, the builder image, the
//! settings): another key, or a container that is not running (killed, crashed), gets a fresh one. It ends by itself after an
//! idle time (`idle.sh`; the engine then removes it) and is removed by `cache prune` and
//! `builder stop` ([`remove_all`]). A signal or `--timeout` during a warm build removes it.
//!
//! Builds that a warm builder would not serve the same way build cold: `--no-cache` (the warm
//! builder is the build cache volume kept mounted), secrets and SSH agents (given to one build,
//! never left in a container that outlives it).

mod key;
mod life;
mod run;

pub use key::{WarmKey, is_key_file};
pub use life::{WarmBuilder, list, name, remove_all};

use super::docker::{Engine, assemble_on as assemble_cold};
use super::{Assembled, BuildRequest, BuilderError};
use crate::cancel::Signals;
use std::time::Duration;

/// `org.release-oci.role` of a warm builder (cold ones are `builder`: swept when their process
/// is gone; a warm builder outlives the process that made it).
pub const ROLE_WARM_BUILDER: &str = "warm-builder";
/// The hash of what the warm builder was made for ([`WarmKey`]).
pub const KEY_LABEL: &str = "org.release-oci.warm-key";
/// The uid of the user whose builds it serves.
pub const USER_LABEL: &str = "org.release-oci.user";
/// Its idle time in seconds.
pub const IDLE_LABEL: &str = "org.release-oci.warm-idle";
/// The warm builder's own files in the container (`ready`, `last`, `busy`).
const WARM_DIR: &str = "/build/warm";
/// Where each build's directory is (its sources arrive there).
const WARM_REQS: &str = "/build/req";
/// How long a warm builder waits for the next build before it ends (`--warm-builder-idle`).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(15 * 60);

/// Why `req` builds cold even with `--warm-builder`.
pub fn refusal(req: &BuildRequest) -> Option<&'static str> {
    if !req.cache {
        return Some("--no-cache builds without the build cache volume a warm builder keeps");
    }
    if !req.inputs.secrets.is_empty() {
        return Some("secrets are given to one build's container, never to one that outlives it");
    }
    if !req.inputs.ssh.is_empty() {
        return Some("an SSH agent is forwarded into one build's container, never into one that outlives it");
    }
    None
}

/// Assembles the release of `req` in the project's warm builder on `engine` (made, or replaced,
/// when needed); cold ([`super::docker::assemble_on`]) when [`refusal`] says so, or when no warm
/// builder could be started (with a warning).
pub async fn assemble_on(
    engine: &Engine,
    req: &BuildRequest,
    idle: Duration,
    signals: &mut Signals,
) -> Result<Assembled, BuilderError> {
    if let Some(why) = refusal(req) {
        crate::ui::detail(format!("building without the warm builder: {why}"));
        return assemble_cold(engine, req, signals).await;
    }
    match run::assemble(engine, req, idle, signals.recv()).await {
        Ok(assembled) => Ok(assembled),
        Err(run::Warm::Failed(e)) => Err(e),
        Err(run::Warm::Unusable(e)) => {
            tracing::warn!(error = %e, "no warm builder could be used; building in a new builder container");
            crate::ui::detail(format!("building without the warm builder: {e}"));
            assemble_cold(engine, req, signals).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::inputs::{Secret, SecretValue, SshAgent};

    #[test]
    fn no_cache_secrets_and_ssh_agents_build_cold() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mix.exs"), "[app: :x]").unwrap();
        let req = BuildRequest::for_test(dir.path());
        assert_eq!(refusal(&req), None);
        assert!(refusal(&BuildRequest { cache: false, ..req.clone() }).unwrap().contains("--no-cache"));
        let mut secret = req.clone();
        secret.inputs.secrets.push(Secret { id: "k".into(), value: SecretValue::new(b"v".to_vec()), build_env: None });
        assert!(refusal(&secret).unwrap().starts_with("secrets"));
        let mut ssh = req.clone();
        ssh.inputs.ssh.push(SshAgent { id: "default".into(), socket: "/tmp/agent.sock".into() });
        assert!(refusal(&ssh).unwrap().contains("SSH agent"));
    }
}
