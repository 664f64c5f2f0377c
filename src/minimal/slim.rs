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

/// Removes [`SLIM_ERTS_PROGRAMS`] and [`SLIM_ERTS_DIRS`] from `erts-VSN/` of the release at
/// `release_root` (a directory release-oci owns: the builder's output). Returns what was removed,
/// relative to the release, sorted. Without ERTS in the release there is nothing to do.
pub fn slim_erts(release_root: &Path, erts_version: Option<&str>) -> Result<Vec<String>, MinimalError> {
    let Some(vsn) = erts_version else { return Ok(Vec::new()) };
    let erts = format!("erts-{vsn}");
    let mut removed = Vec::new();
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| MinimalError::Io { action, path, source }
    };
    for program in SLIM_ERTS_PROGRAMS {
        let rel = format!("{erts}/bin/{program}");
        let path = release_root.join(&rel);
        if fs::symlink_metadata(&path).is_ok() {
            fs::remove_file(&path).map_err(io("cannot remove", &path))?;
            removed.push(rel);
        }
    }
    for dir in SLIM_ERTS_DIRS {
        let rel = format!("{erts}/{dir}");
        let path = release_root.join(&rel);
        if path.is_dir() {
            fs::remove_dir_all(&path).map_err(io("cannot remove", &path))?;
            removed.push(rel);
        }
    }
    removed.sort();
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
}
