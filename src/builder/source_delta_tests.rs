use super::*;
use crate::builder::kept::tests::listing;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::process::Command;

const SOURCE_BASE: &str = include_str!("source_base.sh");

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// The builder's side (source_base.sh): `tar` unpacked into `base`, as a delta when
/// `description` is given. Its exit code and log.
fn unpack(base: &Path, tar: &[u8], description: Option<&[u8]>, token: &str) -> (i32, String) {
    let work = base.parent().unwrap();
    let tar_file = work.join("src.tar");
    fs::write(&tar_file, tar).unwrap();
    let script = format!(
        "set -eu\nsay() {{ printf '==> %s\\n' \"$*\" >&2; }}\ndie() {{ printf 'error: %s\\n' \"$*\" >&2; exit 1; }}\n\
         {SOURCE_BASE}\nunpack_base \"$BASE\"\n"
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).env("BASE", base).env("SRC_TAR", &tar_file).env("SRC_TOKEN", token);
    cmd.env_remove("SRC_DELTA");
    if let Some(d) = description {
        let file = work.join("src.delta");
        fs::write(&file, d).unwrap();
        cmd.env("SRC_DELTA", file);
    }
    let done = cmd.output().unwrap();
    (done.status.code().unwrap_or(-1), String::from_utf8_lossy(&done.stderr).into_owned())
}

/// A project, its sources unpacked from their tar into a fresh directory (what a whole tar makes).
fn whole(project: &crate::project::Project, dir: &Path) -> BTreeMap<PathBuf, String> {
    let fresh = dir.join(format!("fresh-{}", listing(dir).len()));
    fs::create_dir(&fresh).unwrap();
    tar::Archive::new(project.write_source_tar(Vec::new()).unwrap().as_slice()).unpack(&fresh).unwrap();
    listing(&fresh)
}

fn project() -> (tempfile::TempDir, crate::project::Project) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "mix.exs", "defmodule X.MixProject do end\n");
    write(root, "lib/x.ex", "defmodule X do end\n");
    write(root, "lib/gone.ex", "defmodule Gone do end\n");
    write(root, "lib/becomes_dir", "a file\n");
    write(root, "lib/becomes_file/inner/deep.ex", "deep\n");
    write(root, "priv/run.sh", "#!/bin/sh\n");
    symlink("x.ex", root.join("lib/link")).unwrap();
    let project = crate::project::Project::open(root).unwrap();
    (dir, project)
}

#[test]
fn the_changes_applied_to_the_kept_sources_give_the_new_sources() {
    let (dir, project) = project();
    let scratch = tempfile::tempdir().unwrap();
    let base = scratch.path().join("src.base");
    let first = project.write_source_tar(Vec::new()).unwrap();
    let (code, log) = unpack(&base, &first, None, "t1");
    assert_eq!(code, 0, "{log}");
    assert_eq!(fs::read_to_string(scratch.path().join("src.base.token")).unwrap(), "t1\n");
    let old = SourceIndex::of(&first).unwrap().unwrap();
    // Every kind of change.
    let root = dir.path();
    write(root, "lib/x.ex", "defmodule X do def y, do: 1 end\n");
    write(root, "lib/new.ex", "defmodule New do end\n");
    fs::remove_file(root.join("lib/gone.ex")).unwrap();
    fs::remove_file(root.join("lib/becomes_dir")).unwrap();
    write(root, "lib/becomes_dir/now.ex", "now a directory\n");
    fs::remove_dir_all(root.join("lib/becomes_file")).unwrap();
    write(root, "lib/becomes_file", "now a file\n");
    fs::set_permissions(root.join("priv/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(root.join("lib/link")).unwrap();
    symlink("new.ex", root.join("lib/link")).unwrap();
    let second = project.write_source_tar(Vec::new()).unwrap();
    let new = SourceIndex::of(&second).unwrap().unwrap();
    let delta = old.delta(&second, &new, "t1").unwrap();
    // mix.exs did not change: it does not go.
    assert_eq!((delta.sent, delta.removed), (6, 3), "{}", String::from_utf8_lossy(&delta.description));
    assert!(delta.tar.len() < second.len());
    let (code, log) = unpack(&base, &delta.tar, Some(&delta.description), "t2");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("sources: 6 changed files received, 3 gone"), "{log}");
    assert_eq!(listing(&base), whole(&project, scratch.path()));
    assert_eq!(fs::read_to_string(scratch.path().join("src.base.token")).unwrap(), "t2\n");
}

#[test]
fn changes_to_sources_the_builder_does_not_have_are_refused() {
    let (dir, project) = project();
    let scratch = tempfile::tempdir().unwrap();
    let base = scratch.path().join("src.base");
    let first = project.write_source_tar(Vec::new()).unwrap();
    assert_eq!(unpack(&base, &first, None, "t1").0, 0);
    let before = listing(&base);
    write(dir.path(), "lib/x.ex", "changed\n");
    let second = project.write_source_tar(Vec::new()).unwrap();
    let old = SourceIndex::of(&first).unwrap().unwrap();
    let delta = old.delta(&second, &SourceIndex::of(&second).unwrap().unwrap(), "another").unwrap();
    let (code, log) = unpack(&base, &delta.tar, Some(&delta.description), "t2");
    assert_eq!(code, NOT_MY_BASE as i32, "{log}");
    assert!(log.contains("does not have the sources the changes sent apply to"), "{log}");
    assert_eq!(listing(&base), before);
    // Without its token (a build cut off while it changed them), nothing is theirs either.
    fs::remove_file(scratch.path().join("src.base.token")).unwrap();
    let delta = old.delta(&second, &SourceIndex::of(&second).unwrap().unwrap(), "t1").unwrap();
    assert_eq!(unpack(&base, &delta.tar, Some(&delta.description), "t2").0, NOT_MY_BASE as i32);
}

#[test]
fn the_plan_sends_the_whole_tar_first_then_only_the_changes_once_the_build_ended_well() {
    let (dir, project) = project();
    let kept = tempfile::tempdir().unwrap();
    let first = project.write_source_tar(Vec::new()).unwrap();
    let plan = SourcePlan::new(kept.path(), &first).unwrap();
    assert!(plan.delta().is_none());
    let env = plan.env(None);
    assert_eq!(env.len(), 1);
    assert!(env[0].starts_with("SRC_TOKEN="));
    plan.keep();
    let token = fs::read_to_string(kept.path().join("sources.token")).unwrap();
    assert_eq!(format!("SRC_TOKEN={}", token.trim()), env[0]);
    // Unchanged: the directories go, no file.
    let plan = SourcePlan::new(kept.path(), &first).unwrap();
    let delta = plan.delta().expect("changes against the kept index");
    assert_eq!((delta.sent, delta.removed), (0, 0));
    assert_eq!(delta.description, format!("base {}\n", token.trim()).into_bytes());
    assert_eq!(plan.env(Some("/d")).last().map(String::as_str), Some("SRC_DELTA=/d"));
    // Until that build ends well, the next one has no token to send changes against.
    assert!(!kept.path().join("sources.token").exists());
    write(dir.path(), "lib/x.ex", "changed\n");
    let second = project.write_source_tar(Vec::new()).unwrap();
    assert!(SourcePlan::new(kept.path(), &second).unwrap().delta().is_none());
}

#[test]
fn a_path_the_index_cannot_hold_sends_the_whole_tar() {
    let (dir, project) = project();
    write(dir.path(), "lib/a\tb.ex", "tab\n");
    let tar = project.write_source_tar(Vec::new()).unwrap();
    assert_eq!(SourceIndex::of(&tar).unwrap(), None);
    let kept = tempfile::tempdir().unwrap();
    assert!(SourcePlan::new(kept.path(), &tar).is_none());
}

#[test]
fn the_index_survives_being_written_and_read() {
    let (_dir, project) = project();
    let tar = project.write_source_tar(Vec::new()).unwrap();
    let index = SourceIndex::of(&tar).unwrap().unwrap();
    let kept = tempfile::tempdir().unwrap();
    index.write(&kept.path().join("sources")).unwrap();
    assert_eq!(SourceIndex::read(&kept.path().join("sources")), Some(index));
}
