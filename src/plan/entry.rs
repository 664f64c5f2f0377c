//! One entrypoint for every image (docs/runtime.md): `tini -- /usr/local/bin/release-oci-entry`,
//! a small POSIX shell script that runs a command of the release (`start`, `eval`, `rpc`,
//! `remote`, `version`, ...) with `bin/NAME`, a path or a script of the release's `bin/`
//! (`/app/bin/migrate`, `bin/server`, `server`) as it is, and anything else (`sh`, `ls`) as given.
//! So `docker run IMAGE eval '...'` and `docker run IMAGE /app/bin/migrate` both work whatever the
//! image's default command is, and tini stays PID 1 (it forwards SIGTERM and reaps) in every case.

use crate::release::Flavour;

/// Where the script is in the image (no leading `/`, as layer paths are written).
pub const ENTRY_PATH: &str = "usr/local/bin/release-oci-entry";

/// The commands of `bin/NAME` by flavour (mix's `bin/NAME` help; relx's `bin/NAME` script).
fn release_commands(flavour: Flavour) -> &'static [&'static str] {
    match flavour {
        Flavour::Mix => &[
            "start",
            "start_iex",
            "daemon",
            "daemon_iex",
            "eval",
            "rpc",
            "remote",
            "restart",
            "stop",
            "pid",
            "version",
        ],
        Flavour::Relx => &[
            "foreground",
            "console",
            "console_clean",
            "console_boot",
            "start",
            "stop",
            "restart",
            "reboot",
            "pid",
            "ping",
            "daemon",
            "daemon_attach",
            "remote_console",
            "remote",
            "rpc",
            "rpcterms",
            "eval",
            "status",
            "upgrade",
            "downgrade",
            "install",
            "uninstall",
            "versions",
            "escript",
            "attach",
        ],
    }
}

/// The script for release `name` (its `bin/NAME` under `/app_dir`) of `flavour`.
pub fn entry_script(name: &str, flavour: Flavour, app_dir: &str) -> String {
    entry_script_with(name, flavour, app_dir, None)
}

/// [`entry_script`]; with `hot` (`--hot-upgrades`: the volume's directory and the image release's
/// stamp), the release runs from the root on the volume that [`super::hot::entry_snippet`] makes
/// (`bin/NAME` and the scripts of `bin/` there).
pub fn entry_script_with(name: &str, flavour: Flavour, app_dir: &str, hot: Option<(&str, &str)>) -> String {
    let commands = release_commands(flavour).join("|");
    let (root_setup, bin) = match hot {
        Some((hot_dir, id)) => (super::hot::entry_snippet(app_dir, hot_dir, id), "$release_root/bin".to_string()),
        None => (String::new(), format!("/{app_dir}/bin")),
    };
    format!(
        r#"#!/bin/sh
# The entrypoint of this image, made by release-oci (docs/runtime.md). tini runs it as PID 1's
# child, and it exec's what it runs, so signals reach the BEAM.
#   a command of the release (start, eval, rpc, remote, version, ...)  /{app_dir}/bin/{name} COMMAND ARGS
#   a path (/{app_dir}/bin/migrate, bin/server) or a script of /{app_dir}/bin (server)   that script
#   anything else (sh, ls, env)  as given
{root_setup}case "${{1-}}" in
  {commands}) exec {bin}/{name} "$@" ;;
  */*) exec "$@" ;;
esac
if [ "$#" -gt 0 ] && [ -n "$1" ] && [ -f "/{app_dir}/bin/$1" ] && [ -x "/{app_dir}/bin/$1" ]; then
  script={bin}/$1
  shift
  exec "$script" "$@"
fi
if [ "$#" -eq 0 ]; then
  echo "release-oci-entry: no command: give a command of /{app_dir}/bin/{name} ({commands}), a script of /{app_dir}/bin, or a program" >&2
  exit 2
fi
exec "$@"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs the script with `bin/` in a temp dir standing in for /app: each stub prints its name
    /// and arguments.
    fn run(flavour: Flavour, args: &[&str]) -> (i32, String) {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        std::fs::create_dir_all(app.join("bin")).unwrap();
        for stub in ["web", "migrate", "server"] {
            let p = app.join("bin").join(stub);
            std::fs::write(&p, format!("#!/bin/sh\necho {stub} \"$@\"\n")).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        let app_dir = app.display().to_string();
        let script = entry_script("web", flavour, app_dir.trim_start_matches('/'));
        let o = Command::new("sh").arg("-c").arg(&script).arg("entry").args(args).current_dir(&app).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        )
    }

    #[test]
    fn release_commands_go_to_bin_name() {
        assert_eq!(run(Flavour::Mix, &["start"]), (0, "web start\n".into()));
        assert_eq!(run(Flavour::Mix, &["eval", "IO.puts(1)"]), (0, "web eval IO.puts(1)\n".into()));
        assert_eq!(run(Flavour::Mix, &["remote"]), (0, "web remote\n".into()));
        assert_eq!(run(Flavour::Relx, &["foreground"]), (0, "web foreground\n".into()));
    }

    #[test]
    fn paths_and_scripts_of_bin_run_as_they_are() {
        let (code, out) = run(Flavour::Mix, &["bin/migrate", "now"]);
        assert_eq!((code, out.as_str()), (0, "migrate now\n"));
        assert_eq!(run(Flavour::Mix, &["server"]), (0, "server\n".into()));
        assert_eq!(run(Flavour::Mix, &["sh", "-c", "echo plain"]), (0, "plain\n".into()));
    }

    #[test]
    fn no_command_says_what_to_give() {
        let (code, out) = run(Flavour::Mix, &[]);
        assert_eq!(code, 2);
        assert!(out.contains("no command") && out.contains("start|start_iex"), "{out}");
    }

    /// The hot-upgrade script with /app and the volume in a temp dir: the first start makes the
    /// root on the volume (bin/ and releases/ copied, lib/* and erts-* linked) and runs from it.
    fn run_hot(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
        let app = dir.join("app");
        let app_dir = app.display().to_string();
        let hot_dir = dir.join("vol").display().to_string();
        let script = entry_script_with(
            "web",
            Flavour::Mix,
            app_dir.trim_start_matches('/'),
            Some((hot_dir.trim_start_matches('/'), "id1")),
        );
        let o = Command::new("sh").arg("-c").arg(&script).arg("entry").args(args).current_dir(&app).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        )
    }

    fn hot_app(dir: &std::path::Path) {
        let app = dir.join("app");
        for d in ["bin", "releases/0.1.0", "lib/web-0.1.0/ebin", "erts-13.1.5/bin"] {
            std::fs::create_dir_all(app.join(d)).unwrap();
        }
        std::fs::write(app.join("releases/start_erl.data"), "13.1.5 0.1.0").unwrap();
        let p = app.join("bin/web");
        std::fs::write(&p, "#!/bin/sh\necho \"web $* from $(cd \"$(dirname \"$0\")/..\" && pwd) root=$ERL_ROOTDIR\"\n")
            .unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }

    #[test]
    fn hot_upgrades_run_the_release_from_a_root_on_the_volume() {
        let dir = tempfile::tempdir().unwrap();
        hot_app(dir.path());
        std::fs::create_dir_all(dir.path().join("vol")).unwrap();
        let root = dir.path().join("vol/root");
        let (code, out) = run_hot(dir.path(), &["start"]);
        assert_eq!(code, 0, "{out}");
        assert_eq!(out.trim(), format!("web start from {} root={}", root.display(), root.display()));
        assert!(std::fs::read_link(root.join("lib/web-0.1.0")).unwrap().ends_with("app/lib/web-0.1.0"));
        assert!(std::fs::read_link(root.join("erts-13.1.5")).unwrap().ends_with("app/erts-13.1.5"));
        assert_eq!(std::fs::read_to_string(root.join("releases/start_erl.data")).unwrap(), "13.1.5 0.1.0");
        // What the running release wrote there stays while the stamp is the image's.
        std::fs::write(root.join("releases/start_erl.data"), "13.1.5 0.2.0").unwrap();
        let (code, out) = run_hot(dir.path(), &["rpc", "1"]);
        assert_eq!(
            (code, out.trim().to_string()),
            (0, format!("web rpc 1 from {} root={}", root.display(), root.display()))
        );
        run_hot(dir.path(), &["start"]);
        assert_eq!(std::fs::read_to_string(root.join("releases/start_erl.data")).unwrap(), "13.1.5 0.2.0");
        // A root another image made is made again.
        std::fs::write(root.join(super::super::hot::STAMP_FILE), "other").unwrap();
        run_hot(dir.path(), &["start"]);
        assert_eq!(std::fs::read_to_string(root.join("releases/start_erl.data")).unwrap(), "13.1.5 0.1.0");
    }

    #[test]
    fn hot_upgrades_without_a_writable_volume_run_from_app_and_say_why() {
        let dir = tempfile::tempdir().unwrap();
        hot_app(dir.path());
        // No volume directory, and its parent is a file: nothing can be made there.
        std::fs::write(dir.path().join("vol"), "").unwrap();
        let (code, out) = run_hot(dir.path(), &["start"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("hot upgrades are off") && out.contains("not writable"), "{out}");
        let app = dir.path().join("app").canonicalize().unwrap();
        assert!(out.contains(&format!("web start from {} root=\n", app.display())), "{out}");
    }
}
