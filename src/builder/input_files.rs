//! The [`BuilderInputs`] as the builder container gets them: small files uploaded under
//! [`INPUTS_DIR`] beside the sources, and environment variables that name them (never a secret's
//! value). `build_user.sh` and `assemble.sh` read them; their names are documented there.

use super::inputs::{BuilderInputs, INPUTS_DIR, InputError, SECRETS_DIR, SSH_DIR};

/// One file of the upload: its path in the container (without the leading `/`), content, mode.
#[derive(Clone, PartialEq, Eq)]
pub struct InputFile {
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

impl std::fmt::Debug for InputFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The content may be a secret.
        write!(f, "InputFile({}, {} bytes, {:o})", self.path, self.content.len(), self.mode)
    }
}

/// The socket's name in [`SSH_DIR`].
pub const SSH_SOCKET: &str = "agent.sock";

impl BuilderInputs {
    /// The files to upload (reads the CA bundle and the Hex client archive).
    pub fn files(&self) -> Result<Vec<InputFile>, InputError> {
        let dir = INPUTS_DIR.trim_start_matches('/');
        let mut files = Vec::new();
        for s in &self.secrets {
            files.push(InputFile {
                path: format!("{dir}/secrets/{}", s.id),
                content: s.value.bytes().to_vec(),
                mode: 0o400,
            });
        }
        for repo in &self.hex_repos {
            if let Some(key) = &repo.public_key {
                files.push(InputFile {
                    path: format!("{dir}/hex/{}.pem", repo.name),
                    content: key.clone().into_bytes(),
                    mode: 0o444,
                });
            }
        }
        if let Some(path) = &self.ca_bundle {
            let content = std::fs::read(path).map_err(|source| InputError::Read {
                what: "the CA bundle",
                path: path.clone(),
                source,
            })?;
            files.push(InputFile { path: format!("{dir}/ca.pem"), content, mode: 0o444 });
        }
        if let Some(path) = &self.hex_client {
            let content = std::fs::read(path).map_err(|source| InputError::Read {
                what: "the Hex client",
                path: path.clone(),
                source,
            })?;
            let name = path.file_name().map_or_else(|| "hex.ez".into(), |n| n.to_string_lossy().into_owned());
            files.push(InputFile { path: format!("{dir}/archives/{name}"), content, mode: 0o444 });
        }
        if !self.ssh.is_empty() {
            let mut known = Vec::new();
            for place in known_hosts_files() {
                if let Ok(text) = std::fs::read(&place) {
                    known.extend_from_slice(&text);
                    known.push(b'\n');
                }
            }
            files.push(InputFile { path: format!("{dir}/known_hosts"), content: known, mode: 0o444 });
        }
        Ok(files)
    }

    /// The container's environment for the inputs: the `--build-env` pairs, then the variables
    /// that tell the scripts where the rest is.
    pub fn container_env(&self) -> Vec<String> {
        let mut env: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.push(format!("RELEASE_OCI_INPUTS={INPUTS_DIR}"));
        env.push(format!("RELEASE_OCI_ASSETS={}", self.assets.as_str()));
        if !self.secrets.is_empty() {
            env.push(format!("RELEASE_OCI_SECRETS={SECRETS_DIR}"));
            let pairs: Vec<String> =
                self.secrets.iter().filter_map(|s| s.build_env.as_ref().map(|e| format!("{e}={}", s.id))).collect();
            env.push(format!("RELEASE_OCI_SECRET_ENV={}", pairs.join(" ")));
        }
        if !self.hex_repos.is_empty() {
            env.push(format!(
                "RELEASE_OCI_HEX_REPOS={}",
                self.hex_repos_spec(&format!("{INPUTS_DIR}/hex"), SECRETS_DIR)
            ));
        }
        if self.ca_bundle.is_some() {
            env.push(format!("RELEASE_OCI_CA={INPUTS_DIR}/ca.pem"));
        }
        if let Some(agent) = self.ssh.first() {
            env.push(format!("SSH_AUTH_SOCK={SSH_DIR}/{}/{SSH_SOCKET}", agent.id));
            env.push(format!(
                "GIT_SSH_COMMAND=ssh -o UserKnownHostsFile={INPUTS_DIR}/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes"
            ));
        }
        env
    }

    /// `RELEASE_OCI_HEX_REPOS`: one line per repository, `NAME URL KEYFILE|- AUTHFILE|-`, read by
    /// `assemble_mix.exs` (which configures Hex in memory: no key is written to HEX_HOME).
    pub fn hex_repos_spec(&self, key_dir: &str, secrets_dir: &str) -> String {
        let lines: Vec<String> = self
            .hex_repos
            .iter()
            .map(|r| {
                let key =
                    r.public_key.as_ref().map_or_else(|| "-".to_string(), |_| format!("{key_dir}/{}.pem", r.name));
                let auth = r.auth_secret.as_ref().map_or_else(|| "-".to_string(), |id| format!("{secrets_dir}/{id}"));
                format!("{} {} {key} {auth}", r.name, r.url)
            })
            .collect();
        lines.join("\n")
    }
}

/// The known_hosts files of the caller (`~/.ssh/known_hosts`) and of the system.
fn known_hosts_files() -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        out.push(std::path::Path::new(&home).join(".ssh/known_hosts"));
    }
    out.push("/etc/ssh/ssh_known_hosts".into());
    out
}
