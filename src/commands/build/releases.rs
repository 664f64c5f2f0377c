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

/// The image's entrypoint and command. The entrypoint is always `tini --
/// /usr/local/bin/release-oci-entry` (see [`crate::plan::entry`]), which accepts a command of
/// `bin/NAME` and a path or script alike. The command: `cmd` None gives `start` (mix) or
/// `foreground` (relx), or `/app/bin/server` for a Phoenix release that has Phoenix's
/// `bin/server` (see [`is_phoenix`]); a foreground command of `bin/NAME` gives that command; the
/// name of another executable in the release's `bin/` (an overlay such as `server`) gives its path.
pub(super) fn start_command(
    release: &Release,
    cmd: Option<&str>,
    tini: &str,
    app_dir: &str,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let entrypoint = vec![tini.to_string(), "--".to_string(), format!("/{}", crate::plan::entry::ENTRY_PATH)];
    let cmd = match cmd {
        None if is_phoenix(release) => return Ok((entrypoint, vec![format!("/{app_dir}/bin/server")])),
        None => return Ok((entrypoint, vec![release.default_command().to_string()])),
        Some(c) => c,
    };
    let with_command = |c: String| (entrypoint.clone(), vec![c]);
    let commands = foreground_commands(release.flavour);
    if commands.contains(&cmd) {
        return Ok(with_command(cmd.to_string()));
    }
    let valid_name = !cmd.is_empty() && !cmd.contains('/') && cmd != "." && cmd != "..";
    if valid_name && cmd != release.name && release.root.join("bin").join(cmd).is_file() {
        return Ok(with_command(format!("/{app_dir}/bin/{cmd}")));
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

/// A Phoenix release as `mix phx.gen.release` makes it: Phoenix among its applications and the
/// `bin/server` overlay (which sets PHX_SERVER and starts the release). Such an image starts the
/// server by default and exposes Phoenix's port (docs/runtime.md).
pub(super) fn is_phoenix(release: &Release) -> bool {
    release.flavour == Flavour::Mix
        && release.root.join("bin/server").is_file()
        && release.apps.iter().any(|a| a.name == "phoenix")
}

/// A Phoenix release without `mix phx.gen.release`'s `bin/server`: `start` would run the
/// endpoint without its server, so such an image sets PHX_SERVER=true (unless the user set it)
/// and exposes Phoenix's port too (docs/runtime.md).
pub(super) fn is_phoenix_without_server(release: &Release) -> bool {
    release.flavour == Flavour::Mix
        && !release.root.join("bin/server").is_file()
        && release.apps.iter().any(|a| a.name == "phoenix")
}

/// The port a Phoenix release listens on by default (`PORT` in its runtime.exs, else 4000).
pub(super) const PHOENIX_PORT: &str = "4000/tcp";

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
