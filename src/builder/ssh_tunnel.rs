//! `ssh://[USER@]HOST[:PORT]` endpoints, reached as the docker CLI reaches them: every connection
//! to the engine is `ssh HOST docker system dial-stdio` (the remote `docker` CLI passes the bytes
//! on to that machine's engine, the one its own `DOCKER_HOST` names). One master connection
//! (`ssh -M`, its control socket in a private temporary directory) logs in once, and the
//! connections run through it.
//!
//! The [`SshSession`] belongs to the Docker client made here (its transport holds the only
//! reference): when the client is dropped — the build ended, failed, or was stopped by a signal —
//! the master is stopped and its directory removed, and the `dial-stdio` processes, killed with
//! their connections, go with it. None of them is in this process's process group, so a Ctrl-C on
//! the terminal does not cut the connection the builder container is removed through. Should this
//! process die without cleaning up (`kill -9`), their standard input closes: the master's own
//! session (`cat >/dev/null` on the remote side) and each `dial-stdio` end, and with them every ssh
//! process.
//!
//! `ssh` is the program run, with the user's own configuration (`~/.ssh/config`: keys, known
//! hosts, jump hosts); `RELEASE_OCI_SSH_COMMAND` replaces it (run by `sh`, as git runs
//! `GIT_SSH_COMMAND`), e.g. `ssh -i KEY -o UserKnownHostsFile=FILE`. Logins are never interactive
//! (`BatchMode=yes`): a key the agent or the configuration gives, and a known host key.

use super::endpoint::Endpoint;
use bollard::Docker;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The environment variable that replaces `ssh` (a command line, run by `sh`).
pub const SSH_COMMAND_VAR: &str = "RELEASE_OCI_SSH_COMMAND";
/// How long the master may take to connect and log in.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How many of ssh's last stderr lines an error shows.
const STDERR_LINES: usize = 8;

/// The master connection to one `ssh://` endpoint; dropping it stops the master and removes its
/// directory.
pub(super) struct SshSession {
    endpoint: Endpoint,
    /// Holds the control socket (`ctl`); private to this user.
    dir: tempfile::TempDir,
    master: Mutex<Option<Child>>,
    /// The last lines ssh (the master, each `dial-stdio`) wrote on stderr.
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Drop for SshSession {
    fn drop(&mut self) {
        let child = self.master.lock().ok().and_then(|mut m| m.take());
        if let Some(mut child) = child {
            // SIGTERM: ssh closes the connection and removes its control socket.
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
            // Reaped in the background by tokio; SIGKILL should SIGTERM not do.
            let _ = child.start_kill();
        }
        tracing::debug!(endpoint = %self.endpoint, dir = %self.dir.path().display(), "ssh master stopped");
    }
}

impl SshSession {
    /// Connects and logs in (the master), within [`LOGIN_TIMEOUT`]. The error is what ssh said.
    pub(super) async fn start(endpoint: &Endpoint) -> Result<Arc<SshSession>, String> {
        let dir = tempfile::Builder::new()
            .prefix("release-oci-dial-")
            .tempdir()
            .map_err(|e| format!("cannot make a directory for ssh's control socket: {e}"))?;
        let control = dir.path().join("ctl");
        let mut cmd = ssh_command(endpoint, &control, true);
        cmd.arg("cat >/dev/null");
        cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("cannot run {}: {e}", program()))?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        keep_stderr(&mut child, &stderr);
        let session = Arc::new(SshSession { endpoint: endpoint.clone(), dir, master: Mutex::new(Some(child)), stderr });
        session.wait_ready(&control).await?;
        Ok(session)
    }

    /// Until the control socket exists (the master is logged in), the master ends, or time runs out.
    async fn wait_ready(&self, control: &std::path::Path) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + LOGIN_TIMEOUT;
        loop {
            if control.exists() {
                return Ok(());
            }
            let exited = self.master.lock().ok().and_then(|mut m| m.as_mut().and_then(|c| c.try_wait().ok().flatten()));
            if let Some(status) = exited {
                // Its last words may still be on their way through the pipe.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Err(format!("ssh could not connect ({status}){}", self.said()));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("ssh did not log in within {} s{}", LOGIN_TIMEOUT.as_secs(), self.said()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `: LINE; LINE` of ssh's last stderr lines, or nothing.
    pub(super) fn said(&self) -> String {
        let lines = self.stderr.lock().map(|l| l.iter().cloned().collect::<Vec<_>>()).unwrap_or_default();
        if lines.is_empty() { String::new() } else { format!(": {}", lines.join("; ")) }
    }

    /// A new connection to the engine: `ssh HOST docker system dial-stdio` through the master.
    fn dial(&self) -> std::io::Result<DialStdio> {
        let mut cmd = ssh_command(&self.endpoint, &self.dir.path().join("ctl"), false);
        cmd.args(["docker", "system", "dial-stdio"]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        keep_stderr(&mut child, &self.stderr);
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("ssh's standard input or output is missing"));
        };
        Ok(DialStdio { _child: child, stdin: TokioIo::new(stdin), stdout: TokioIo::new(stdout) })
    }
}

/// `ssh` (or [`SSH_COMMAND_VAR`]'s command) with the options every call has, then the host; the
/// remote command follows. `master`: the one that logs in and owns the control socket.
fn ssh_command(endpoint: &Endpoint, control: &std::path::Path, master: bool) -> Command {
    let mut cmd = match std::env::var(SSH_COMMAND_VAR).ok().filter(|c| !c.trim().is_empty()) {
        Some(line) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!("exec {line} \"$@\"")).arg("ssh");
            c
        }
        None => Command::new("ssh"),
    };
    cmd.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-T", "-S"]).arg(control);
    if master {
        cmd.args(["-M", "-o", "ControlPersist=no", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]);
    } else {
        cmd.args(["-o", "ControlMaster=no"]);
    }
    let Endpoint::Ssh { user, host, port } = endpoint else {
        unreachable!("an ssh command for {endpoint}");
    };
    if let Some(port) = port {
        cmd.arg("-p").arg(port.to_string());
    }
    if let Some(user) = user {
        cmd.arg("-l").arg(user);
    }
    cmd.arg("--").arg(host);
    // Not in our process group: a Ctrl-C on the terminal is ours to handle (the builder container
    // is removed through this connection first).
    cmd.process_group(0).kill_on_drop(true);
    cmd
}

fn program() -> String {
    std::env::var(SSH_COMMAND_VAR).ok().filter(|c| !c.trim().is_empty()).unwrap_or_else(|| "ssh".into())
}

/// Keeps the child's last stderr lines in `tail`.
fn keep_stderr(child: &mut Child, tail: &Arc<Mutex<VecDeque<String>>>) {
    let Some(stderr) = child.stderr.take() else { return };
    let tail = tail.clone();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = line.trim().to_string();
            if line.is_empty() {
                continue;
            }
            tracing::debug!(line, "ssh");
            if let Ok(mut t) = tail.lock() {
                if t.len() == STDERR_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        }
    });
}

/// One connection: the standard input and output of `ssh HOST docker system dial-stdio` (killed
/// when the connection is dropped).
pub(super) struct DialStdio {
    _child: Child,
    stdin: TokioIo<ChildStdin>,
    stdout: TokioIo<ChildStdout>,
}

impl hyper::rt::Read for DialStdio {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stdout).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for DialStdio {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stdin).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stdin).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stdin).poll_shutdown(cx)
    }
}

impl Connection for DialStdio {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// Makes a [`DialStdio`] per connection the HTTP client opens.
#[derive(Clone)]
struct Connector(Arc<SshSession>);

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = DialStdio;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<DialStdio>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let session = self.0.clone();
        Box::pin(async move { session.dial() })
    }
}

/// A Docker client whose connections go through `session`, which it owns from now on: it lives
/// as long as the client (and its clones).
pub(super) fn docker(session: Arc<SshSession>, timeout: u64) -> Result<Docker, bollard::errors::Error> {
    let mut builder = Client::builder(TokioExecutor::new());
    // Idle connections (each an ssh process) are closed after a while.
    builder.pool_idle_timeout(Duration::from_secs(30));
    let client = builder.build(Connector(session));
    Docker::connect_with_custom_transport(
        move |req: bollard::BollardRequest| {
            let client = client.clone();
            Box::pin(async move { client.request(req).await.map_err(bollard::errors::Error::from) })
                as Pin<Box<dyn Future<Output = _> + Send>>
        },
        Some("http://ssh-dial-stdio"),
        timeout,
        bollard::API_DEFAULT_VERSION,
    )
}
