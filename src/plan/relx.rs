//! relx releases (`rebar3 release`) in the image. They have no `env.sh` and no `COOKIE` file: the
//! cookie is a `-setcookie` line of `releases/VSN/vm.args` (relx's default one is the release's
//! name: guessable), and the start script reads it from there for every command.
//!
//! Unless the cookie is to be kept, the release layer gets:
//! - `releases/VSN/vm.args.src` (replacing `vm.args`): the same arguments, literal `-setcookie`
//!   lines removed and `-setcookie ${RELX_COOKIE}` added. relx renders `.src` files at every
//!   start into `RELX_OUT_FILE_PATH` (the image sets `/tmp`), so the node and `bin/NAME rpc|eval`
//!   get the same cookie;
//! - [`relx_cookie_hook`] at the top of `bin/NAME` (and `bin/NAME-VSN`): when `RELX_COOKIE` is not
//!   set it makes a per-container cookie, kept in `$RELEASE_TMP` like the mix hook does.
//!
//! A `-setcookie ${VAR}` line (a cookie from the environment, not baked in) is left alone, and
//! then nothing is added.

use super::APP_DIR;
use crate::layer::{Entry, EntryKind, LayerError, LayerSpec};
use crate::release::Release;
use std::fs;

/// Inserted after the first line of relx's `bin/NAME`: no `RELX_COOKIE` → a per-container cookie.
pub fn relx_cookie_hook() -> String {
    super::cookie_hook("RELX_COOKIE", r#"[ -z "${RELX_COOKIE:-}" ]"#)
}

/// The line that takes the cookie from the environment at boot.
pub const COOKIE_LINE: &str = "-setcookie ${RELX_COOKIE}";

/// Rewrites `vm.args` and the start scripts in the release layer (see the module docs).
pub(super) fn mutate_release_layer(
    layer: &mut LayerSpec,
    rel: &Release,
    include_cookie: bool,
) -> Result<(), LayerError> {
    if include_cookie {
        return Ok(());
    }
    let vsn_dir = rel.version_dir();
    let (source, had_src) = match (vsn_dir.join("vm.args.src"), vsn_dir.join("vm.args")) {
        (src, _) if src.is_file() => (src, true),
        (_, plain) if plain.is_file() => (plain, false),
        // No vm.args: relx's script refuses to start anyway; nothing to protect.
        _ => return Ok(()),
    };
    let text = fs::read_to_string(&source).map_err(|e| LayerError::io(&source, e))?;
    let Some(rewritten) = rewrite_vm_args(&text) else { return Ok(()) };
    let prefix = format!("{APP_DIR}/releases/{}", rel.version);
    let (src_path, plain_path) = (format!("{prefix}/vm.args.src"), format!("{prefix}/vm.args"));
    layer.entries.retain(|e| e.path != src_path && (had_src || e.path != plain_path));
    layer.entries.push(Entry {
        path: src_path,
        kind: EntryKind::Bytes(rewritten.into_bytes()),
        mode: 0o644,
        uid: 0,
        gid: 0,
    });

    for script in [rel.name.clone(), format!("{}-{}", rel.name, rel.version)] {
        let path = rel.root.join("bin").join(&script);
        if !path.is_file() {
            continue;
        }
        let original = fs::read(&path).map_err(|e| LayerError::io(&path, e))?;
        let entry_path = format!("{APP_DIR}/bin/{script}");
        layer.entries.retain(|e| e.path != entry_path);
        layer.entries.push(Entry {
            path: entry_path,
            kind: EntryKind::Bytes(insert_hook(&original)),
            mode: 0o755,
            uid: 0,
            gid: 0,
        });
    }
    Ok(())
}

/// `vm.args` without literal `-setcookie` lines and with [`COOKIE_LINE`]; `None` when a
/// `-setcookie` takes its value from the environment (then it stays as it is).
fn rewrite_vm_args(text: &str) -> Option<String> {
    let is_cookie = |l: &str| l.trim_start().starts_with("-setcookie");
    if text.lines().any(|l| is_cookie(l) && l.contains("${")) {
        return None;
    }
    let mut out: String = text.lines().filter(|l| !is_cookie(l)).map(|l| format!("{l}\n")).collect();
    out.push_str("## added by release-oci: the cookie comes from RELX_COOKIE (made per container when unset)\n");
    out.push_str(COOKIE_LINE);
    out.push('\n');
    Some(out)
}

/// The script with the hook after its first line (the `#!`).
fn insert_hook(script: &[u8]) -> Vec<u8> {
    let split = script.iter().position(|&b| b == b'\n').map_or(script.len(), |i| i + 1);
    let mut out = script[..split].to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(relx_cookie_hook().as_bytes());
    out.extend_from_slice(&script[split..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_cookies_are_replaced() {
        let out = rewrite_vm_args("-sname app\n-setcookie app\n  -setcookie other\n+K true\n").unwrap();
        assert!(!out.contains("-setcookie app") && !out.contains("other"), "{out}");
        assert!(out.starts_with("-sname app\n+K true\n"), "{out}");
        assert!(out.ends_with("-setcookie ${RELX_COOKIE}\n"), "{out}");
        assert_eq!(rewrite_vm_args("-sname a\n-setcookie ${MY_COOKIE}\n"), None);
    }

    #[test]
    fn the_hook_follows_the_shebang() {
        let out = String::from_utf8(insert_hook(b"#!/bin/sh\n\nset -e\n")).unwrap();
        assert!(out.starts_with("#!/bin/sh\n# --- added by release-oci"), "{out}");
        assert!(out.ends_with("# ----\n\nset -e\n") || out.ends_with("-\n\nset -e\n"), "{out}");
        assert!(out.contains("export RELX_COOKIE"));
    }

    #[test]
    fn the_hook_is_valid_sh_and_makes_one_cookie_per_uid() {
        let tmp = tempfile::tempdir().unwrap();
        let script = format!("{}\nprintf '%s' \"$RELX_COOKIE\"\n", relx_cookie_hook());
        let run = |env: &[(&str, &str)]| {
            let mut c = std::process::Command::new("sh");
            c.arg("-c").arg(&script).env("RELEASE_TMP", tmp.path()).env_remove("RELX_COOKIE");
            for (k, v) in env {
                c.env(k, v);
            }
            let o = c.output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8(o.stdout).unwrap()
        };
        let first = run(&[]);
        assert_eq!(first.len(), 64, "{first}");
        assert_eq!(run(&[]), first, "a second command must find the same cookie");
        assert_eq!(run(&[("RELX_COOKIE", "given")]), "given");
    }
}
