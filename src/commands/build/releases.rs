//! What each release's image is called, where it goes, and how it starts. A build makes one
//! image per release (`--release all` may give several, from one builder run):
//! - `--tag`, `name` (release-oci.toml), `oci:DIR[:TAG]` and `docker-archive:PATH` may contain
//!   `{release}`, replaced by the release name; with several releases a tag or archive path
//!   without it is refused (every image would get the same name);
//! - `oci:DIR` without a tag gets one entry per release tagged with the release name when there
//!   are several (one layout, several images);
//! - the default tags are `NAME:VERSION` (NAME: `name` or the release name).

use crate::cli::BuildSettings;
use crate::release::{Flavour, Release};
use crate::sink::Target;
use anyhow::bail;
use std::path::PathBuf;

pub(super) const RELEASE_PLACEHOLDER: &str = "{release}";

/// Where one release's image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReleaseOutputs {
    /// Names for `--load` and `docker-archive` outputs.
    pub tags: Vec<String>,
    pub targets: Vec<Target>,
}

fn fill(template: &str, release: &str, several: bool, what: &str) -> anyhow::Result<String> {
    if several && !template.contains(RELEASE_PLACEHOLDER) {
        bail!(
            "{what} {template:?} would name every release's image the same: with several releases, put \
             {RELEASE_PLACEHOLDER} in it (e.g. registry.example.com/team/{RELEASE_PLACEHOLDER}:1.0), or build \
             one release with --release NAME"
        );
    }
    Ok(template.replace(RELEASE_PLACEHOLDER, release))
}

/// The tags and outputs of release `name` (version `version`); `several`: more than one release
/// is being built.
pub(super) fn outputs_for(
    s: &BuildSettings,
    name: &str,
    version: &str,
    several: bool,
) -> anyhow::Result<ReleaseOutputs> {
    let tags = if s.tags.is_empty() {
        let repo = match &s.image_name {
            Some(n) => fill(n, name, several, "image name")?,
            None => name.to_string(),
        };
        vec![format!("{repo}:{version}")]
    } else {
        s.tags.iter().map(|t| fill(t, name, several, "--tag")).collect::<anyhow::Result<_>>()?
    };
    let mut targets = Vec::new();
    for out in &s.outputs {
        targets.push(match out {
            Target::OciLayout { dir, tag } => {
                let dir = PathBuf::from(dir.to_string_lossy().replace(RELEASE_PLACEHOLDER, name));
                let tag = match tag {
                    Some(t) => Some(fill(t, name, several, "the tag of output")?),
                    None if several => Some(name.to_string()),
                    None => None,
                };
                Target::OciLayout { dir, tag }
            }
            Target::Archive { path } => {
                let path = fill(&path.to_string_lossy(), name, several, "output docker-archive:")?;
                Target::Archive { path: path.into() }
            }
        });
    }
    Ok(ReleaseOutputs { tags, targets })
}

/// Commands of `bin/NAME` that run the release in the foreground (what a container runs).
fn foreground_commands(flavour: Flavour) -> &'static [&'static str] {
    match flavour {
        Flavour::Mix => &["start", "start_iex"],
        Flavour::Relx => &["foreground", "console", "console_clean"],
    }
}

/// The image's entrypoint and command. `cmd` None: `tini -- /app/bin/NAME start` (mix) or
/// `foreground` (relx); a foreground command of `bin/NAME`: the same with that command; the name
/// of another executable in the release's `bin/` (an overlay such as Phoenix's `bin/server`):
/// entrypoint `tini --` and command `/app/bin/CMD`, so `docker run IMAGE /app/bin/migrate` runs
/// another one.
pub(super) fn start_command(
    release: &Release,
    cmd: Option<&str>,
    tini: &str,
    app_dir: &str,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let script = format!("/{app_dir}/bin/{}", release.name);
    let tini = vec![tini.to_string(), "--".to_string()];
    let with_script = |c: &str| {
        let mut e = tini.clone();
        e.push(script.clone());
        (e, vec![c.to_string()])
    };
    let cmd = match cmd {
        None => return Ok(with_script(release.default_command())),
        Some(c) => c,
    };
    let commands = foreground_commands(release.flavour);
    if commands.contains(&cmd) {
        return Ok(with_script(cmd));
    }
    let valid_name = !cmd.is_empty() && !cmd.contains('/') && cmd != "." && cmd != "..";
    if valid_name && cmd != release.name && release.root.join("bin").join(cmd).is_file() {
        return Ok((tini, vec![format!("/{app_dir}/bin/{cmd}")]));
    }
    let mut scripts: Vec<String> = std::fs::read_dir(release.root.join("bin"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| *n != release.name)
        .collect();
    scripts.sort();
    bail!(
        "--cmd {cmd:?} is neither a foreground command of bin/{} ({}) nor a script in the release's bin/ ({})",
        release.name,
        commands.join(", "),
        if scripts.is_empty() { "it has none besides bin/NAME".to_string() } else { scripts.join(", ") }
    )
}

/// Environment the release's flavour needs: relx renders `vm.args.src`/`sys.config.src` at boot
/// into `RELX_OUT_FILE_PATH` (the release directory is read-only in the image).
pub(super) fn flavour_env(release: &Release) -> Vec<(String, String)> {
    match release.flavour {
        Flavour::Mix => Vec::new(),
        Flavour::Relx => vec![("RELX_OUT_FILE_PATH".to_string(), "/tmp".to_string())],
    }
}

#[cfg(test)]
mod tests;
