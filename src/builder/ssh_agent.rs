//! `--ssh`: the caller's SSH agent, forwarded into the builder container for private `git:`
//! dependencies. No key leaves the agent: a forwarding socket in a private temporary directory
//! (`ID/agent.sock`) passes each connection on to the agent's own socket, and that directory is
//! mounted at [`SSH_DIR`](super::inputs::SSH_DIR). The forwarding socket belongs to the build's
//! user (uid 10001) when this process may give it away (root, as Docker usually needs), else it is
//! open to every local user for the build's duration (docs/builder-inputs.md). It stops when the
//! [`AgentForward`] is dropped. The engine must run on this machine (a bind mount): another
//! engine (`tcp://`, `ssh://`) is refused, naming it.

use super::BuilderError;
use super::endpoint::Endpoint;
use super::input_files::SSH_SOCKET;
use super::inputs::{InputError, SshAgent};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// The forwarding sockets of one build; dropping it stops them and removes the directory.
#[derive(Debug)]
pub(super) struct AgentForward {
    dir: tempfile::TempDir,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for AgentForward {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl AgentForward {
    /// The directory to mount (holding `ID/agent.sock` for each agent).
    pub(super) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts a forwarding socket for each agent (None when there is none). Needs a runtime, and
    /// the builder's engine (`engine`) on this machine: the directory is bind-mounted.
    pub(super) fn start(
        agents: &[SshAgent],
        uid: u32,
        gid: u32,
        engine: &Endpoint,
    ) -> Result<Option<AgentForward>, BuilderError> {
        if agents.is_empty() {
            return Ok(None);
        }
        if !engine.is_local() {
            return Err(BuilderError::NeedsLocalEngine {
                what: format!("--ssh {} (the SSH agent, forwarded through a socket on this machine)", agents[0].id),
                endpoint: engine.to_string(),
                instead: "build this platform on an engine of this machine (unix://) to use --ssh, or give the \
                          build its credentials with --secret"
                    .to_string(),
            });
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BuilderError::Io { action: "cannot set up the SSH agent's forwarding socket", path, source }
        };
        let dir = tempfile::Builder::new().prefix("release-oci-ssh-").tempdir().map_err(io(Path::new("(temp dir)")))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).map_err(io(dir.path()))?;
        let mut tasks = Vec::new();
        for agent in agents {
            check_agent(agent)?;
            let sub = dir.path().join(&agent.id);
            std::fs::create_dir(&sub).map_err(io(&sub))?;
            let sock = sub.join(SSH_SOCKET);
            let listener = UnixListener::bind(&sock).map_err(io(&sock))?;
            let owned = std::os::unix::fs::chown(&sub, Some(uid), Some(gid))
                .and_then(|()| std::os::unix::fs::chown(&sock, Some(uid), Some(gid)))
                .is_ok();
            let (dir_mode, sock_mode) = if owned { (0o700, 0o600) } else { (0o755, 0o666) };
            std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(dir_mode)).map_err(io(&sub))?;
            std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(sock_mode)).map_err(io(&sock))?;
            tasks.push(tokio::spawn(forward(listener, agent.socket.clone())));
        }
        Ok(Some(AgentForward { dir, tasks }))
    }
}

/// The agent's socket must be there: a missing agent fails before the build, naming it.
fn check_agent(agent: &SshAgent) -> Result<(), InputError> {
    match std::os::unix::net::UnixStream::connect(&agent.socket) {
        Ok(_) => Ok(()),
        Err(e) => Err(InputError::Ssh {
            spec: format!("{}={}", agent.id, agent.socket.display()),
            message: format!("no SSH agent answers at {}: {e}", agent.socket.display()),
        }),
    }
}

/// Passes every connection to `listener` on to the agent at `agent`, both ways.
async fn forward(listener: UnixListener, agent: PathBuf) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else { return };
        let agent = agent.clone();
        tokio::spawn(async move {
            match UnixStream::connect(&agent).await {
                Ok(mut outbound) => {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
                Err(e) => tracing::warn!(agent = %agent.display(), error = %e, "cannot reach the SSH agent"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn connections_reach_the_agent_and_stop_with_the_forward() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("agent");
        let agent = UnixListener::bind(&real).unwrap();
        let echo = tokio::spawn(async move {
            loop {
                let (mut s, _) = agent.accept().await.unwrap();
                let mut buf = [0u8; 5];
                if s.read_exact(&mut buf).await.is_ok() {
                    s.write_all(&buf).await.unwrap();
                }
            }
        });
        let agents = [SshAgent { id: "default".into(), socket: real.clone() }];
        let local: Endpoint = "unix:///var/run/docker.sock".parse().unwrap();
        let remote: Endpoint = "ssh://build@arm64-1".parse().unwrap();
        let err = AgentForward::start(&agents, 10001, 10001, &remote).unwrap_err().to_string();
        assert!(
            err.starts_with("--ssh default (the SSH agent") && err.contains("the engine at ssh://build@arm64-1 is not"),
            "{err}"
        );
        let fwd = AgentForward::start(&agents, 10001, 10001, &local).unwrap().unwrap();
        let sock = fwd.dir().join("default").join(SSH_SOCKET);
        let mut c = UnixStream::connect(&sock).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        let dir = fwd.dir().to_path_buf();
        drop(fwd);
        assert!(!dir.exists(), "the forwarding directory is left behind");
        echo.abort();
        let missing = [SshAgent { id: "x".into(), socket: tmp.path().join("none") }];
        let err = AgentForward::start(&missing, 10001, 10001, &local).unwrap_err().to_string();
        assert!(err.contains("no SSH agent answers at") && err.contains("none"), "{err}");
    }
}
