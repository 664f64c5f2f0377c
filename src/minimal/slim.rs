//! `--slim-erts`: leaves out the parts of ERTS a server never runs — compilers, analysers, test
//! runners and code generators, and the directories only a build uses. What was left out is
//! recorded in the image (label [`SLIM_LABEL`]) and shown by `release-oci inspect`.

use super::MinimalError;
use std::fs;
use std::path::Path;

/// ERTS programs a running release never starts (`bin/NAME start|eval|rpc|remote|daemon` use
/// erl, erlexec, beam.smp, erl_child_setup, epmd, inet_gethost, heart, run_erl and to_erl).
pub const SLIM_ERTS_PROGRAMS: &[&str] = &["ct_run", "dialyzer", "erlc", "escript", "typer", "yielding_c_fun"];

/// ERTS directories only a build uses: headers, static libraries, documentation, sources.
pub const SLIM_ERTS_DIRS: &[&str] = &["doc", "include", "lib", "man", "src"];

/// The image label that lists what `--slim-erts` left out (paths relative to the release,
/// separated by spaces; empty when there was nothing to leave out).
pub const SLIM_LABEL: &str = "org.release-oci.slim-erts";

/// What `--slim-erts` leaves out of the release at `release_root`: the [`SLIM_ERTS_PROGRAMS`]
/// and [`SLIM_ERTS_DIRS`] of its `erts-VSN/` that exist, relative to the release, sorted.
/// Nothing is removed (for a release used in place, such as `--from-release DIR`).
pub fn slim_erts_paths(release_root: &Path, erts_version: Option<&str>) -> Vec<String> {
    let Some(vsn) = erts_version else { return Vec::new() };
    let erts = format!("erts-{vsn}");
    let mut paths: Vec<String> = SLIM_ERTS_PROGRAMS
        .iter()
        .map(|p| format!("{erts}/bin/{p}"))
        .filter(|rel| fs::symlink_metadata(release_root.join(rel)).is_ok())
        .chain(SLIM_ERTS_DIRS.iter().map(|d| format!("{erts}/{d}")).filter(|rel| release_root.join(rel).is_dir()))
        .collect();
    paths.sort();
    paths
}

/// Whether `path` (relative to the builder's `OUT/rel`: `erts-VSN/...`, or `NAME/erts-VSN/...`
/// when several releases were built) is one [`slim_erts`] removes, or inside one.
pub(crate) fn is_slimmed(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let Some(i) = parts.iter().take(2).position(|p| p.starts_with("erts-")) else { return false };
    match &parts[i + 1..] {
        ["bin", program] => SLIM_ERTS_PROGRAMS.contains(program),
        [dir, _, ..] => SLIM_ERTS_DIRS.contains(dir),
        _ => false,
    }
}

/// Removes [`slim_erts_paths`] from the release at `release_root` (a directory release-oci
/// owns: the builder's output), so that the minimal base leaves out what only they need.
/// Returns what was removed.
pub fn slim_erts(release_root: &Path, erts_version: Option<&str>) -> Result<Vec<String>, MinimalError> {
    let removed = slim_erts_paths(release_root, erts_version);
    for rel in &removed {
        let path = release_root.join(rel);
        let result = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        result.map_err(|source| MinimalError::Io { action: "cannot remove", path, source })?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_the_tools_and_keeps_what_a_server_runs() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("erts-13.1.5/bin");
        fs::create_dir_all(&bin).unwrap();
        fs::create_dir_all(d.path().join("erts-13.1.5/include/internal")).unwrap();
        for f in ["beam.smp", "erlexec", "epmd", "erl", "erlc", "typer", "yielding_c_fun", "inet_gethost"] {
            fs::write(bin.join(f), b"").unwrap();
        }
        let removed = slim_erts(d.path(), Some("13.1.5")).unwrap();
        assert_eq!(
            removed,
            ["erts-13.1.5/bin/erlc", "erts-13.1.5/bin/typer", "erts-13.1.5/bin/yielding_c_fun", "erts-13.1.5/include"]
        );
        for kept in ["beam.smp", "erlexec", "epmd", "erl", "inet_gethost"] {
            assert!(bin.join(kept).exists(), "{kept} was removed");
        }
        assert!(slim_erts(d.path(), Some("13.1.5")).unwrap().is_empty());
        assert!(slim_erts(d.path(), None).unwrap().is_empty());
    }

    #[test]
    fn slimmed_paths_are_those_slim_erts_removes() {
        for yes in ["erts-13.1.5/bin/erlc", "web/erts-13.1.5/bin/typer", "erts-13.1.5/include/x.h", "erts-1/lib/a/b.a"]
        {
            assert!(is_slimmed(yes), "{yes}");
        }
        for no in [
            "erts-13.1.5/bin/beam.smp",
            "erts-13.1.5/include",
            "a/b/erts-13.1.5/bin/erlc",
            "lib/crypto-5.1/priv/lib/crypto.so",
        ] {
            assert!(!is_slimmed(no), "{no}");
        }
    }

    #[test]
    fn the_paths_alone_remove_nothing() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("erts-13.1.5/bin");
        fs::create_dir_all(&bin).unwrap();
        fs::write(bin.join("erlc"), b"").unwrap();
        assert_eq!(slim_erts_paths(d.path(), Some("13.1.5")), ["erts-13.1.5/bin/erlc"]);
        assert!(bin.join("erlc").exists());
    }
}
