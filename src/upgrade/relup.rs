//! The relup: `systools:make_relup/4` run where Erlang/OTP is, in a short-lived container of the
//! builder image (the Erlang/OTP both releases were built with; no network, no capabilities), or
//! on this machine for `--builder host`. It needs only each release's `.rel` file and the
//! applications' `.app` files, and the new appups ([`relup.escript`](relup.escript)).

use super::compare::UpgradePlan;
use crate::builder::BUILD_USER_IDS as USER;
use crate::release::Release;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use std::path::Path;

const SCRIPT: &str = include_str!("relup.escript");
const START: &str = "---- release-oci relup ----\n";
const END: &str = "---- release-oci end ----\n";
/// Where the inputs go in the container.
const WORK: &str = "/tmp/release-oci-relup";

#[derive(Debug, thiserror::Error)]
pub enum RelupError {
    #[error("{action}")]
    Docker {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("systools:make_relup failed (exit code {exit_code}) in {place}:\n{log}")]
    Failed { place: String, exit_code: i64, log: String },
}

/// The files `make_relup` reads, as `(path under the work directory, bytes)`: `old/` and `new/`
/// each with `releases/VSN/NAME.rel` and `lib/APP-VSN/ebin/APP.app`; `new/` also the appups of
/// `plan`; and the script.
pub fn inputs(old: &Release, new: &Release, plan: &UpgradePlan) -> Result<Vec<(String, Vec<u8>)>, RelupError> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|source| RelupError::Io { action: "read", path: p.to_path_buf(), source });
    let mut files = vec![("relup.escript".to_string(), SCRIPT.as_bytes().to_vec())];
    for (side, rel) in [("old", old), ("new", new)] {
        let rel_file = format!("releases/{}/{}.rel", rel.version, rel.name);
        files.push((format!("{side}/{rel_file}"), read(&rel.root.join(&rel_file))?));
        for app in &rel.apps {
            let app_file = format!("lib/{}/ebin/{}.app", app.dir, app.name);
            files.push((format!("{side}/{app_file}"), read(&rel.root.join(&app_file))?));
        }
    }
    for a in &plan.apps {
        files.push((format!("new/{}/ebin/{}.appup", a.dir, a.name), a.appup_text().into_bytes()));
    }
    Ok(files)
}

/// The relup's text, from the script's stdout.
fn relup_of(stdout: &str) -> Option<String> {
    let start = stdout.find(START)? + START.len();
    let len = stdout[start..].find(END)?;
    Some(stdout[start..start + len].to_string())
}

/// Runs the script on this machine (`escript` on the PATH).
pub fn on_host(files: &[(String, Vec<u8>)], plan: &UpgradePlan) -> Result<String, RelupError> {
    let dir = tempfile::Builder::new().prefix("release-oci-relup-").tempdir().map_err(|source| RelupError::Io {
        action: "make",
        path: std::env::temp_dir(),
        source,
    })?;
    for (path, bytes) in files {
        let p = dir.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|source| RelupError::Io {
                action: "make",
                path: parent.into(),
                source,
            })?;
        }
        std::fs::write(&p, bytes).map_err(|source| RelupError::Io { action: "write", path: p.clone(), source })?;
    }
    let out = std::process::Command::new("escript")
        .args(["relup.escript", &plan.name, &plan.from, &plan.to])
        .current_dir(dir.path())
        .output()
        .map_err(|source| RelupError::Io { action: "run escript in", path: dir.path().into(), source })?;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match (out.status.success(), relup_of(&stdout)) {
        (true, Some(relup)) => {
            warn(&stderr);
            Ok(relup)
        }
        _ => Err(RelupError::Failed {
            place: "this machine".into(),
            exit_code: out.status.code().unwrap_or(-1).into(),
            log: format!("{stdout}{stderr}"),
        }),
    }
}

fn warn(stderr: &str) {
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        crate::ui::detail(format!("make_relup: {line}"));
    }
}

/// Runs the script in a container of `image`; the container is removed however it ends.
pub async fn in_container(
    docker: &Docker,
    image: &str,
    files: &[(String, Vec<u8>)],
    plan: &UpgradePlan,
) -> Result<String, RelupError> {
    let name = format!(
        "release-oci-relup-{}",
        &crate::digest::Digest::of(format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes())
            .hex()[..12]
    );
    let err = |action: String| move |source| RelupError::Docker { action, source };
    let mut labels: std::collections::HashMap<String, String> =
        crate::builder::docker::owner_labels().into_iter().collect();
    labels.insert(crate::builder::ROLE_LABEL.to_string(), crate::builder::ROLE_BUILDER.to_string());
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec![]),
        cmd: Some(vec![
            "escript".into(),
            "relup.escript".into(),
            plan.name.clone(),
            plan.from.clone(),
            plan.to.clone(),
        ]),
        user: Some(format!("{}:{}", USER.0, USER.1)),
        working_dir: Some(WORK.into()),
        labels: Some(labels),
        network_disabled: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    docker
        .create_container(Some(options), body)
        .await
        .map_err(err(format!("creating container {name} from {image}")))?;
    let result = run(docker, &name, files).await;
    let remove = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = docker.remove_container(&name, Some(remove)).await;
    result
}

async fn run(docker: &Docker, name: &str, files: &[(String, Vec<u8>)]) -> Result<String, RelupError> {
    let err = |action: String| move |source| RelupError::Docker { action, source };
    let tar = tar_of(files).map_err(|source| RelupError::Io { action: "pack", path: WORK.into(), source })?;
    let options = UploadToContainerOptionsBuilder::default().path("/tmp").build();
    docker
        .upload_to_container(name, Some(options), bollard::body_full(tar.into()))
        .await
        .map_err(err(format!("uploading the releases' .rel and .app files into container {name}")))?;
    let attach = AttachContainerOptionsBuilder::default().stdout(true).stderr(true).stream(true).build();
    let mut output = docker
        .attach_container(name, Some(attach))
        .await
        .map_err(err(format!("attaching to container {name}")))?
        .output;
    docker.start_container(name, None).await.map_err(err(format!("starting container {name}")))?;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(chunk) = output.next().await {
        match chunk.map_err(err(format!("reading the output of container {name}")))? {
            LogOutput::StdOut { message } => stdout.extend_from_slice(&message),
            other => stderr.extend_from_slice(other.as_ref()),
        }
    }
    let exit_code = match docker.wait_container(name, None).next().await {
        Some(Ok(status)) => status.status_code,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(err(format!("waiting for container {name}"))(e)),
        None => -1,
    };
    let (stdout, stderr) = (String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    match (exit_code, relup_of(&stdout)) {
        (0, Some(relup)) => {
            warn(&stderr);
            Ok(relup)
        }
        _ => {
            Err(RelupError::Failed { place: format!("container {name}"), exit_code, log: format!("{stdout}{stderr}") })
        }
    }
}

/// The files under `release-oci-relup/`, owned by the container's user.
fn tar_of(files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let top = WORK.trim_start_matches("/tmp/");
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (path, _) in files {
        let full = format!("{top}/{path}");
        let mut acc = String::new();
        for part in full.split('/').collect::<Vec<_>>().iter().rev().skip(1).rev() {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            dirs.insert(acc.clone());
        }
    }
    let header = crate::builder::build_user_header;
    for d in &dirs {
        b.append_data(&mut header(tar::EntryType::Directory, 0, 0o755), d, std::io::empty())?;
    }
    for (path, bytes) in files {
        let mut h = header(tar::EntryType::Regular, bytes.len() as u64, 0o644);
        b.append_data(&mut h, format!("{top}/{path}"), bytes.as_slice())?;
    }
    b.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relup_is_read_between_the_markers() {
        let out = format!("noise\n{START}{{\"0.2.0\",[],[]}}.\n{END}more\n");
        assert_eq!(relup_of(&out).as_deref(), Some("{\"0.2.0\",[],[]}.\n"));
        assert_eq!(relup_of("nothing"), None);
    }

    #[test]
    fn the_upload_has_every_parent_directory_first() {
        let tar = tar_of(&[("new/lib/a-1/ebin/a.app".into(), b"x".to_vec())]).unwrap();
        let mut a = tar::Archive::new(&tar[..]);
        let paths: Vec<String> =
            a.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(
            paths,
            [
                "release-oci-relup",
                "release-oci-relup/new",
                "release-oci-relup/new/lib",
                "release-oci-relup/new/lib/a-1",
                "release-oci-relup/new/lib/a-1/ebin",
                "release-oci-relup/new/lib/a-1/ebin/a.app"
            ]
        );
    }
}
