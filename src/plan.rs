//! The layer plan: which files of a release go into which layer, ordered from least to most
//! often changed, and the small mutations the image needs (cookie hook, no `releases/COOKIE`).
//!
//! 1. `runtime`  — static tini and the `/etc/passwd`/`/etc/group` entries of the runtime user
//! 2. `erts`     — `erts-VSN/`
//! 3. `otp`      — OTP and Elixir applications (`lib/` entries that are neither deps nor own apps)
//! 4. `deps`     — the project's dependencies (hex, git and path deps)
//! 5. `app`      — the project's own applications
//! 6. `release`  — `releases/` and `bin/` (and any other top-level file of the release)

pub mod entry;
pub mod hot;
mod relx;

pub use relx::relx_cookie_hook;

use crate::layer::{Entry, EntryKind, LayerError, LayerSpec};
use crate::release::{Flavour, Release};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Where the release lives in the image.
pub const APP_DIR: &str = "app";
/// Where tini lives in the image.
pub const TINI_PATH: &str = "usr/local/bin/tini";

/// A POSIX sh snippet: when `guard` (a shell condition) holds, set and export `var` to a cookie
/// made at first start and kept in `$RELEASE_TMP` (mode 0600), so commands run later by
/// `docker exec` in the same container find the same cookie; when that file cannot be written the
/// cookie stays in memory. No cookie is ever in a layer. Used for mix (`RELEASE_COOKIE`, appended
/// to `env.sh`) and relx (`RELX_COOKIE`, at the top of `bin/NAME`) releases.
pub fn cookie_hook(var: &str, guard: &str) -> String {
    format!(
        r#"# --- added by release-oci: a per-container cookie when {var} is not given ---------------
if {guard}; then
  __ro_cookie_file="${{RELEASE_TMP:-/tmp}}/.release-oci-cookie-$(id -u)"
  if [ ! -s "$__ro_cookie_file" ]; then
    __ro_cookie="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
    ( umask 077 && mkdir -p "$(dirname "$__ro_cookie_file")" \
      && printf '%s' "$__ro_cookie" > "$__ro_cookie_file.$$" \
      && mv "$__ro_cookie_file.$$" "$__ro_cookie_file" ) 2>/dev/null || true
  fi
  if [ -s "$__ro_cookie_file" ]; then
    {var}="$(cat "$__ro_cookie_file")"
  else
    {var}="${{__ro_cookie:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}}"
  fi
  export {var}
  unset __ro_cookie __ro_cookie_file
fi
# ---------------------------------------------------------------------------------------------
"#
    )
}

/// The hook appended to a mix release's `releases/VSN/env.sh`: no `RELEASE_COOKIE` and no
/// `releases/COOKIE` → a per-container cookie.
pub fn mix_cookie_hook() -> String {
    let guard = r#"[ -z "${RELEASE_COOKIE:-}" ] && [ ! -f "$RELEASE_ROOT/releases/COOKIE" ]"#;
    format!("\n{}", cookie_hook("RELEASE_COOKIE", guard))
}

/// The runtime user's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// What the plan needs besides the release.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    pub release: &'a Release,
    pub own_apps: &'a BTreeSet<String>,
    pub dep_apps: &'a BTreeSet<String>,
    pub tini: &'a Path,
    /// `/etc/passwd` and `/etc/group` of the base image (empty when it has none).
    pub base_passwd: String,
    pub base_group: String,
    pub user: &'a User,
    pub include_cookie: bool,
    /// `--hot-upgrades` (mix releases): `releases/RELEASES`, the volume's directory owned by the
    /// runtime user, and the entrypoint that runs the release from a root on it ([`hot`]).
    pub hot_upgrades: bool,
}

/// Splits the release into layer specs (empty layers are left out).
pub fn plan(input: &PlanInput<'_>) -> Result<Vec<LayerSpec>, LayerError> {
    let rel = input.release;
    let runtime = runtime_layer(input);
    let mut erts = LayerSpec { name: "erts".into(), entries: Vec::new() };
    if let Some(v) = &rel.erts_version {
        let d = format!("erts-{v}");
        erts.add_tree(&rel.root.join(&d), &format!("{APP_DIR}/{d}"), 0, 0)?;
    }
    let [otp, deps, app] = lib_layers(input)?;
    let release = release_layer(input)?;
    // `release` before `app`: a one-line change gives a new `app` and leaves `release` as it was
    // (docs/layers.md), so only the last layer is new.
    Ok([runtime, erts, otp, deps, release, app]
        .into_iter()
        .filter(|l| l.entries.iter().any(|e| e.kind != EntryKind::Dir))
        .collect())
}

/// tini and the accounts (`/etc/passwd`, `/etc/group`: the base's with the runtime user's).
fn runtime_layer(input: &PlanInput<'_>) -> LayerSpec {
    let mut runtime = LayerSpec { name: "runtime".into(), entries: Vec::new() };
    push_parents(&mut runtime, TINI_PATH);
    runtime.entries.push(Entry {
        path: TINI_PATH.into(),
        kind: EntryKind::File { source: input.tini.to_path_buf() },
        mode: 0o755,
        uid: 0,
        gid: 0,
    });
    let (passwd, group) = accounts(&input.base_passwd, &input.base_group, input.user);
    push_parents(&mut runtime, "etc/passwd");
    runtime.entries.push(bytes_entry("etc/passwd", passwd.into_bytes()));
    runtime.entries.push(bytes_entry("etc/group", group.into_bytes()));
    runtime
}

/// `lib/`, application by application: `[otp, deps, app]`.
fn lib_layers(input: &PlanInput<'_>) -> Result<[LayerSpec; 3], LayerError> {
    let rel = input.release;
    let mut otp = LayerSpec { name: "otp".into(), entries: Vec::new() };
    let mut deps = LayerSpec { name: "deps".into(), entries: Vec::new() };
    let mut app = LayerSpec { name: "app".into(), entries: Vec::new() };
    for entry in sorted_dir(&rel.root.join("lib"))? {
        let name = file_name(&entry);
        let app_name = rel
            .apps
            .iter()
            .find(|a| a.dir == name)
            .map(|a| a.name.clone())
            .unwrap_or_else(|| name.rsplit_once('-').map_or(name.clone(), |(n, _)| n.to_string()));
        let spec = if input.own_apps.contains(&app_name) {
            &mut app
        } else if input.dep_apps.contains(&app_name) {
            &mut deps
        } else {
            &mut otp
        };
        spec.add_tree(&entry, &format!("{APP_DIR}/lib/{name}"), 0, 0)?;
    }
    Ok([otp, deps, app])
}

/// Everything else at the release's top (`releases/`, `bin/`, ...), mutated (the cookie), and
/// the entrypoint script.
fn release_layer(input: &PlanInput<'_>) -> Result<LayerSpec, LayerError> {
    let rel = input.release;
    let mut release = LayerSpec { name: "release".into(), entries: Vec::new() };
    for entry in sorted_dir(&rel.root)? {
        let name = file_name(&entry);
        if name == "lib" || rel.erts_version.as_ref().is_some_and(|v| name == format!("erts-{v}")) {
            continue;
        }
        release.add_tree(&entry, &format!("{APP_DIR}/{name}"), 0, 0)?;
    }
    mutate_release_layer(&mut release, input)?;
    let hot_id = input.hot_upgrades.then(|| hot_upgrade_files(&mut release, input));
    // The entrypoint script names the release, so it goes with the release: `runtime` stays
    // shared between the releases of one project.
    push_parents(&mut release, entry::ENTRY_PATH);
    let hot = hot_id.as_deref().map(|id| (hot::HOT_DIR, id));
    release.entries.push(Entry {
        path: entry::ENTRY_PATH.into(),
        kind: EntryKind::Bytes(entry::entry_script_with(&rel.name, rel.flavour, APP_DIR, hot).into_bytes()),
        mode: 0o755,
        uid: 0,
        gid: 0,
    });
    Ok(release)
}

/// `--hot-upgrades`: `releases/RELEASES` and the volume's directory, owned by the runtime user (a
/// new volume takes the owner of the image's directory); returns the image release's stamp.
fn hot_upgrade_files(layer: &mut LayerSpec, input: &PlanInput<'_>) -> String {
    let rel = input.release;
    let releases = hot::releases_file(rel);
    let path = format!("{APP_DIR}/releases/RELEASES");
    layer.entries.retain(|e| e.path != path);
    layer.entries.push(bytes_entry(&path, releases.clone().into_bytes()));
    push_parents(layer, &format!("{}/x", hot::HOT_DIR));
    if let Some(dir) = layer.entries.iter_mut().rev().find(|e| e.path == hot::HOT_DIR) {
        (dir.uid, dir.gid) = (input.user.uid.into(), input.user.gid.into());
    }
    hot::hot_id(rel, &releases)
}

/// Drops `releases/COOKIE` (unless asked to keep it) and appends the cookie hook to `env.sh`
/// (mix); relx releases: see [`relx`].
fn mutate_release_layer(layer: &mut LayerSpec, input: &PlanInput<'_>) -> Result<(), LayerError> {
    let rel = input.release;
    if rel.flavour == Flavour::Relx {
        return relx::mutate_release_layer(layer, rel, input.include_cookie);
    }
    let cookie = format!("{APP_DIR}/releases/COOKIE");
    if !input.include_cookie {
        layer.entries.retain(|e| e.path != cookie);
    }
    let env_sh = format!("{APP_DIR}/releases/{}/env.sh", rel.version);
    let source = rel.version_dir().join("env.sh");
    let mut text = match fs::read(&source) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => b"#!/bin/sh\n".to_vec(),
        Err(source_err) => return Err(LayerError::io(&source, source_err)),
    };
    if !input.include_cookie {
        text.extend_from_slice(mix_cookie_hook().as_bytes());
    }
    layer.entries.retain(|e| e.path != env_sh);
    layer.entries.push(Entry { path: env_sh, kind: EntryKind::Bytes(text), mode: 0o755, uid: 0, gid: 0 });
    Ok(())
}

/// The base's account files with the runtime user (and its group) added when missing.
pub fn accounts(base_passwd: &str, base_group: &str, user: &User) -> (String, String) {
    let mut passwd = if base_passwd.trim().is_empty() {
        "root:x:0:0:root:/root:/bin/sh\n".to_string()
    } else {
        ensure_newline(base_passwd)
    };
    let mut group = if base_group.trim().is_empty() { "root:x:0:\n".to_string() } else { ensure_newline(base_group) };
    let has_uid = passwd.lines().any(|l| l.split(':').nth(2) == Some(&user.uid.to_string()));
    if !has_uid {
        passwd.push_str(&format!("{}:x:{}:{}::{}:/usr/sbin/nologin\n", user.name, user.uid, user.gid, user.home));
    }
    let has_gid = group.lines().any(|l| l.split(':').nth(2) == Some(&user.gid.to_string()));
    if !has_gid {
        group.push_str(&format!("{}:x:{}:\n", user.name, user.gid));
    }
    (passwd, group)
}

fn ensure_newline(s: &str) -> String {
    let mut s = s.to_string();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

fn bytes_entry(path: &str, bytes: Vec<u8>) -> Entry {
    Entry { path: path.into(), kind: EntryKind::Bytes(bytes), mode: 0o644, uid: 0, gid: 0 }
}

fn push_parents(spec: &mut LayerSpec, path: &str) {
    let mut acc = String::new();
    let parts: Vec<&str> = path.split('/').collect();
    for p in &parts[..parts.len() - 1] {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(p);
        spec.entries.push(Entry { path: acc.clone(), kind: EntryKind::Dir, mode: 0o755, uid: 0, gid: 0 });
    }
}

fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>, LayerError> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| LayerError::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|err| LayerError::io(dir, err)))
        .collect::<Result<_, _>>()?;
    v.sort();
    Ok(v)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}
