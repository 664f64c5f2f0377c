//! `release-oci upgrade CONTAINER`: the package put into the running container's release root
//! (on its volume) through the engine's archive API, and `release_handler` driven through the
//! release's own RPC (`docker exec … release-oci-entry rpc`): `unpack_release`,
//! `check_install_release`, `install_release`, `make_permanent`; or, to roll back, the earlier
//! release installed and made permanent again (its relup's downgrade part).

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::UploadToContainerOptionsBuilder;
use futures_util::StreamExt;

const SCRIPT: &str = include_str!("apply.exs");
/// What every line the script reports starts with.
const MARK: &str = "release-oci: ";

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{action}")]
    Docker {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("container {container} is not running")]
    NotRunning { container: String },
    #[error(
        "container {container} runs an image built without --hot-upgrades (no {label} label): its release cannot \
         be upgraded in place; roll out the new image instead"
    )]
    NotHot { container: String, label: String },
    #[error("the upgrade of container {container} failed at {step}: {reason}\n{log}")]
    Failed { container: String, step: String, reason: String, log: String },
    #[error(
        "`{command}` in container {container} gave no answer release-oci understands (exit code {exit_code}):\n{log}"
    )]
    NoAnswer { container: String, command: String, exit_code: i64, log: String },
}

/// The running container, as the upgrade needs it.
#[derive(Debug, Clone)]
pub struct Running {
    pub id: String,
    pub name: String,
    /// The release root on the volume (the image's hot-upgrades label).
    pub root: String,
    /// The image's id (its config digest).
    pub image: String,
    pub user: Option<String>,
}

/// Inspects `container`: running, from an image built with `--hot-upgrades`.
pub async fn inspect(docker: &Docker, container: &str) -> Result<Running, ApplyError> {
    let info = docker
        .inspect_container(container, None)
        .await
        .map_err(|source| ApplyError::Docker { action: format!("inspecting container {container}"), source })?;
    if !info.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
        return Err(ApplyError::NotRunning { container: container.to_string() });
    }
    let config = info.config.unwrap_or_default();
    let label = crate::plan::hot::LABEL;
    let root = config
        .labels
        .as_ref()
        .and_then(|l| l.get(label))
        .cloned()
        .ok_or_else(|| ApplyError::NotHot { container: container.to_string(), label: label.to_string() })?;
    Ok(Running {
        id: info.id.unwrap_or_else(|| container.to_string()),
        name: container.to_string(),
        root,
        image: info.image.unwrap_or_default(),
        user: config.user.filter(|u| !u.is_empty()),
    })
}

/// Puts `bytes` as `releases/FILE` of the release root (where `unpack_release` looks).
pub async fn upload(docker: &Docker, c: &Running, file: &str, bytes: &[u8]) -> Result<(), ApplyError> {
    let (uid, gid) = ids(c.user.as_deref());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_uid(uid);
    h.set_gid(gid);
    let mut b = tar::Builder::new(Vec::new());
    let action = format!("uploading {file} into container {}", c.name);
    let pack = |e: std::io::Error| ApplyError::Failed {
        container: c.name.clone(),
        step: "packing".into(),
        reason: e.to_string(),
        log: String::new(),
    };
    b.append_data(&mut h, file, bytes).map_err(pack)?;
    let tar = b.into_inner().map_err(pack)?;
    let options = UploadToContainerOptionsBuilder::default().path(&format!("{}/releases", c.root)).build();
    docker
        .upload_to_container(&c.id, Some(options), bollard::body_full(tar.into()))
        .await
        .map_err(|source| ApplyError::Docker { action, source })
}

/// The numeric `uid:gid` of the container's user, when it is numeric (else root's).
fn ids(user: Option<&str>) -> (u64, u64) {
    let Some(u) = user else { return (0, 0) };
    let (a, b) = u.split_once(':').unwrap_or((u, u));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

/// What to do in the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Unpack `NAME-TO`, install `to` and make it permanent; the node must run `from`.
    Upgrade { name: String, from: String, to: String },
    /// Install `to` (None: the newest earlier release) and make it permanent.
    Rollback { to: Option<String> },
}

/// The Elixir code `release-oci-entry rpc` runs in the node for `op`, the release root being
/// `root` (`/var/lib/release-oci/root` in images built with `--hot-upgrades`).
pub fn script(op: &Op, root: &str) -> String {
    let s = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace("#{", "\\#{"));
    let opt = |v: Option<&str>| v.map_or("nil".to_string(), s);
    let bindings = match op {
        Op::Upgrade { name, from, to } => {
            format!("op = \"upgrade\"\nname = {}\nfrom = {}\nto = {}\n", s(name), s(from), s(to))
        }
        Op::Rollback { to } => format!("op = \"rollback\"\nname = nil\nfrom = {}\nto = nil\n", opt(to.as_deref())),
    };
    format!("{bindings}root = {}\n{SCRIPT}", s(root))
}

/// The outcome: the version now permanent, and the releases release_handler knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub permanent: String,
    pub already: bool,
    /// `(version, status)`.
    pub releases: Vec<(String, String)>,
}

/// Runs `op` in the release's node through `release-oci-entry rpc` in the container.
pub async fn run(docker: &Docker, c: &Running, op: &Op) -> Result<Outcome, ApplyError> {
    let entry = format!("/{}", crate::plan::entry::ENTRY_PATH);
    let code = script(op, &c.root);
    let cmd = vec![entry.clone(), "rpc".to_string(), code];
    let shown = format!("{entry} rpc …");
    let exec = docker
        .create_exec(
            &c.id,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(cmd),
                ..Default::default()
            },
        )
        .await
        .map_err(|source| ApplyError::Docker { action: format!("docker exec in {}", c.name), source })?;
    let mut log = Vec::new();
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&exec.id, None)
        .await
        .map_err(|source| ApplyError::Docker { action: format!("docker exec in {}", c.name), source })?
    {
        while let Some(chunk) = output.next().await {
            match chunk {
                Ok(LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message }) => {
                    log.extend_from_slice(&message)
                }
                Ok(_) => {}
                Err(source) => {
                    return Err(ApplyError::Docker { action: format!("reading docker exec in {}", c.name), source });
                }
            }
        }
    }
    let exit_code = docker.inspect_exec(&exec.id).await.ok().and_then(|i| i.exit_code).unwrap_or(-1);
    let log = String::from_utf8_lossy(&log).into_owned();
    parse(&log)
        .ok_or_else(|| ApplyError::NoAnswer { container: c.name.clone(), command: shown, exit_code, log: log.clone() })?
        .map_err(|(step, reason)| ApplyError::Failed { container: c.name.clone(), step, reason, log: others(&log) })
}

/// The script's report: `Ok(outcome)`, `Err((step, reason))`, or None when it said nothing.
#[allow(clippy::type_complexity)]
fn parse(log: &str) -> Option<Result<Outcome, (String, String)>> {
    let mut releases = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.trim_end().strip_prefix(MARK) else { continue };
        if let Some(r) = rest.strip_prefix("release ") {
            let (v, s) = r.split_once(' ').unwrap_or((r, ""));
            releases.push((v.to_string(), s.to_string()));
        } else if let Some(ok) = rest.strip_prefix("ok ") {
            let permanent = ok.split_whitespace().next().unwrap_or_default().to_string();
            return Some(Ok(Outcome { permanent, already: ok.contains("(already)"), releases }));
        } else if let Some(e) = rest.strip_prefix("error ") {
            let (step, reason) = e.split_once(": ").unwrap_or((e, ""));
            return Some(Err((step.to_string(), reason.to_string())));
        }
    }
    None
}

/// The log without the script's own lines.
fn others(log: &str) -> String {
    log.lines().filter(|l| !l.starts_with(MARK)).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_binds_the_operation_first() {
        let s = script(&Op::Upgrade { name: "counter-0.2.0".into(), from: "0.1.0".into(), to: "0.2.0".into() }, "/r");
        assert!(s.starts_with(
            "op = \"upgrade\"\nname = \"counter-0.2.0\"\nfrom = \"0.1.0\"\nto = \"0.2.0\"\nroot = \"/r\"\n"
        ));
        let r = script(&Op::Rollback { to: None }, "/r\"#{x}");
        assert!(r.starts_with("op = \"rollback\"\nname = nil\nfrom = nil\nto = nil\nroot = \"/r\\\"\\#{x}\"\n"), "{r}");
    }

    #[test]
    fn reads_the_report() {
        let log = "noise\nrelease-oci: release 0.2.0 permanent\nrelease-oci: release 0.1.0 old\nrelease-oci: ok 0.2.0 permanent\n";
        let o = parse(log).unwrap().unwrap();
        assert_eq!(o.permanent, "0.2.0");
        assert!(!o.already);
        assert_eq!(o.releases, [("0.2.0".to_string(), "permanent".to_string()), ("0.1.0".into(), "old".into())]);
        let e = parse("release-oci: error install_release: {:error, :x}\n").unwrap().unwrap_err();
        assert_eq!(e, ("install_release".to_string(), "{:error, :x}".to_string()));
        assert!(parse("** (RuntimeError) boom").is_none());
        assert!(parse("release-oci: ok 0.2.0 permanent (already)").unwrap().unwrap().already);
        assert_eq!(ids(Some("10001:10002")), (10001, 10002));
        assert_eq!(ids(Some("app")), (0, 0));
    }
}
