use super::*;
use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::process::Command;

const SEND_OUT: &str = include_str!("send_out.sh");

/// What a tree holds: each entry's kind, mode and content (or link target).
pub(crate) fn listing(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut all = BTreeMap::new();
    for entry in WalkDir::new(root).min_depth(1) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(root).unwrap().to_path_buf();
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        let what = if meta.is_dir() {
            format!("dir {mode:o}")
        } else if meta.file_type().is_symlink() {
            format!("link {}", fs::read_link(entry.path()).unwrap().display())
        } else {
            format!("file {mode:o} {}", String::from_utf8_lossy(&fs::read(entry.path()).unwrap()))
        };
        all.insert(rel, what);
    }
    all
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    // A new file each time, as the release cache makes one (another inode).
    let _ = fs::remove_file(path);
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The builder's side of one build (send_out.sh, as at the end of the build script): the tar it
/// sends, and its log.
fn send(cache: &Path, env: &[String]) -> (Vec<u8>, String) {
    send_with(Some(cache), &cache.join("out"), env)
}

/// [`send`], with the build cache at `cache` or without one (OUT elsewhere, CACHE unset).
fn send_with(cache: Option<&Path>, out: &Path, env: &[String]) -> (Vec<u8>, String) {
    let tar = out.with_extension("tar");
    let script = format!(
        "set -eu\nsay() {{ printf '==> %s\\n' \"$*\" >&2; }}\ndie() {{ printf 'error: %s\\n' \"$*\" >&2; exit 1; }}\n\
         use_cache={}\nexec 3>\"$TAR\"\n{SEND_OUT}",
        if cache.is_some() { "1" } else { "" }
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).env("OUT", out).env("STREAM_OUT", "1").env("TAR", &tar).env_remove("CACHE");
    if let Some(cache) = cache {
        cmd.env("CACHE", cache);
    }
    for pair in env {
        let (k, v) = pair.split_once('=').unwrap();
        cmd.env(k, v);
    }
    let done = cmd.output().unwrap();
    let log = String::from_utf8_lossy(&done.stderr).to_string();
    assert!(done.status.success(), "send_out.sh failed: {log}");
    (fs::read(&tar).unwrap(), log)
}

/// The host's side: the tar unpacked into a new output directory, completed from the kept tree.
fn receive(parent: &Path, volume: &str, cache: &Path, n: u32) -> (PathBuf, Vec<u8>, String) {
    let kept = Kept::open_in(parent, volume).expect("the kept output opens");
    let (tar, log) = send(cache, &kept.env());
    let out = parent.join(format!("out{n}"));
    fs::create_dir(&out).unwrap();
    let mut archive = tar::Archive::new(tar.as_slice());
    archive.set_preserve_permissions(true);
    archive.unpack(&out).unwrap();
    kept.complete(&out).unwrap();
    (out, tar, log)
}

fn entries(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect()
}

/// A scratch place for builds: (its directory, the output directories' parent, the build cache,
/// OUT in it), OUT holding a release script and `apps`.
fn builds() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (parent, cache) = (dir.path().join("shm"), dir.path().join("cache"));
    fs::create_dir_all(&parent).unwrap();
    let out = cache.join("out");
    write(&out.join("rel/bin/app"), "#!/bin/sh\n", 0o755);
    write(&out.join("apps"), "own a\n", 0o644);
    (dir, parent, cache, out)
}

#[test]
fn a_build_after_the_first_receives_only_what_changed_and_completes_the_same_tree() {
    let (_dir, parent, cache, out) = builds();
    write(&out.join("rel/lib/a-1/ebin/a.beam"), "a one", 0o644);
    write(&out.join("rel/lib/b-1/ebin/b.beam"), "b one", 0o644);
    write(&out.join("rel/lib/b-1/priv/data"), "data", 0o600);
    symlink("lib", out.join("rel/link")).unwrap();

    let (first, tar, log) = receive(&parent, "vol", &cache, 1);
    assert!(!log.contains("changed since the last build"), "the first build sends everything: {log}");
    assert!(entries(&tar).iter().any(|e| e.ends_with("rel/bin/app")));
    assert_eq!(listing(&first), listing(&out));

    // A changed module, a dependency gone, a new one, a link gone, a directory's mode changed.
    write(&out.join("rel/lib/a-1/ebin/a.beam"), "a two", 0o644);
    fs::remove_dir_all(out.join("rel/lib/b-1")).unwrap();
    write(&out.join("rel/lib/c-1/ebin/c.beam"), "c one", 0o644);
    fs::remove_file(out.join("rel/link")).unwrap();
    fs::set_permissions(out.join("rel/bin"), fs::Permissions::from_mode(0o750)).unwrap();

    let (second, tar, log) = receive(&parent, "vol", &cache, 2);
    assert!(log.contains("2 of 4 files changed since the last build"), "{log}");
    let sent = entries(&tar);
    assert!(!sent.iter().any(|e| e.ends_with("rel/bin/app") || e.ends_with("apps")), "unchanged files sent: {sent:?}");
    assert!(sent.iter().any(|e| e.ends_with("a.beam")) && sent.iter().any(|e| e.ends_with("c.beam")), "{sent:?}");
    assert_eq!(listing(&second), listing(&out), "the completed tree is the builder's");
    assert!(!second.join(DELTA_FILE).exists());
    assert!(!out.join(DELTA_FILE).exists(), "the description stays out of the builder's OUT");

    // The tree this build received was kept for the next: an unchanged build sends no file.
    let (third, tar, log) = receive(&parent, "vol", &cache, 3);
    assert!(log.contains("0 of 4 files changed"), "{log}");
    assert!(!entries(&tar).iter().any(|e| e.ends_with(".beam")));
    assert_eq!(listing(&third), listing(&out));
    // Removing an earlier build's directory (as every build does) leaves the kept tree whole.
    fs::remove_dir_all(&second).unwrap();
    fs::remove_dir_all(&third).unwrap();
    let (fourth, _, _) = receive(&parent, "vol", &cache, 4);
    assert_eq!(listing(&fourth), listing(&out));
}

#[test]
fn another_token_on_either_side_means_the_whole_tree() {
    let (_dir, parent, cache, out) = builds();
    receive(&parent, "vol", &cache, 1);

    // The builder's record names another build's output (one the host did not keep).
    fs::write(cache.join("sent/token"), "someone-else\n").unwrap();
    let (out2, tar, log) = receive(&parent, "vol", &cache, 2);
    assert!(!log.contains("changed since the last build"), "{log}");
    assert!(entries(&tar).iter().any(|e| e.ends_with("rel/bin/app")));
    assert_eq!(listing(&out2), listing(&out));

    // The host kept nothing (its tree was removed): the whole tree again.
    fs::remove_dir_all(kept_root(&parent).join("vol")).unwrap();
    let (out3, tar, _) = receive(&parent, "vol", &cache, 3);
    assert!(entries(&tar).iter().any(|e| e.ends_with("rel/bin/app")));
    assert_eq!(listing(&out3), listing(&out));
}

#[test]
fn a_delta_against_another_base_or_without_a_kept_tree_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join(DELTA_FILE), "base abc\n./rel/gone\n").unwrap();
    let err = read_delta(&out, None).unwrap_err().to_string();
    assert!(err.contains("\"abc\"") && err.contains("none") && err.contains("cache prune"), "{err}");
    let err = read_delta(&out, Some("def")).unwrap_err().to_string();
    assert!(err.contains("\"def\""), "{err}");
    let removed = read_delta(&out, Some("abc")).unwrap().unwrap();
    assert_eq!(removed.into_iter().collect::<Vec<_>>(), vec![PathBuf::from("rel/gone")]);
    assert!(!out.join(DELTA_FILE).exists());
    assert!(read_delta(&out, Some("abc")).unwrap().is_none(), "no description: the whole tree");
}

#[test]
fn one_build_at_a_time_holds_a_kept_output() {
    let dir = tempfile::tempdir().unwrap();
    let first = Kept::open_in(dir.path(), "vol").unwrap();
    assert!(Kept::open_in(dir.path(), "vol").is_none(), "a second build of the same cache gets none");
    assert!(Kept::open_in(dir.path(), "other").is_some(), "another cache's is its own");
    let token = first.env();
    drop(first);
    let again = Kept::open_in(dir.path(), "vol").unwrap();
    assert!(again.env().iter().all(|e| e.starts_with("OUT_TOKEN=")), "nothing kept yet: no OUT_HAVE");
    assert_ne!(again.env(), token, "each build has its own token");
}

#[test]
fn without_the_build_cache_the_whole_tree_goes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    write(&out.join("rel/bin/app"), "#!/bin/sh\n", 0o755);
    let env = ["OUT_TOKEN=abc".to_string(), "OUT_HAVE=def".to_string()];
    let (tar, log) = send_with(None, &out, &env);
    assert!(!log.contains("changed since"), "{log}");
    assert!(entries(&tar).iter().any(|e| e.ends_with("rel/bin/app")), "{:?}", entries(&tar));
    assert!(!dir.path().join("sent").exists() && !Path::new("/sent").exists());
}

#[test]
fn kept_outputs_unused_for_long_or_of_gone_volumes_are_swept_but_not_one_in_use() {
    let dir = tempfile::tempdir().unwrap();
    for volume in ["old", "fresh", "gone", "held"] {
        let kept = Kept::open_in(dir.path(), volume).unwrap();
        fs::create_dir_all(kept.root.join("tree")).unwrap();
    }
    let root = kept_root(dir.path());
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
    for volume in ["old", "held"] {
        fs::File::options().write(true).open(root.join(volume).join("lock")).unwrap().set_modified(day_ago).unwrap();
    }
    let held = Kept::open_in(dir.path(), "held").unwrap();
    fs::File::options().write(true).open(root.join("held/lock")).unwrap().set_modified(day_ago).unwrap();
    let volumes: BTreeSet<String> = ["old", "fresh", "held"].map(String::from).into();
    let mut swept = sweep_in(dir.path(), KEPT_UNUSED_FOR, Some(&volumes));
    swept.sort();
    assert_eq!(swept, ["gone", "old"]);
    assert!(root.join("fresh/tree").is_dir() && root.join("held/tree").is_dir());
    drop(held);
    assert_eq!(sweep_in(dir.path(), KEPT_UNUSED_FOR, None), ["held"]);
}

#[test]
fn a_release_lent_to_out_is_sent_and_then_back_in_the_release_cache() {
    let (_dir, parent, cache, out) = builds();
    // As assemble_mix.exs lends it: the cached release moved to OUT/rel, listed in .lent.
    let release_cache = cache.join("release");
    fs::create_dir_all(&release_cache).unwrap();
    write(&out.join("rel/lib/a-1/ebin/a.beam"), "a one", 0o644);
    let lent = format!("{}\t{}\n", out.join("rel").display(), release_cache.join("app").display());
    fs::write(release_cache.join(".lent"), &lent).unwrap();
    let expected = listing(&out.join("rel"));

    let kept = Kept::open_in(&parent, "vol").expect("the kept output opens");
    let mut env = kept.env();
    env.push(format!("RELEASE_CACHE={}", release_cache.display()));
    let (tar, _) = send(&cache, &env);
    assert!(entries(&tar).iter().any(|e| e.ends_with("rel/lib/a-1/ebin/a.beam")), "the lent release is sent");
    assert!(!out.join("rel").exists(), "the release went back from OUT");
    assert_eq!(listing(&release_cache.join("app")), expected, "the release is back in the cache, whole");
    assert!(!release_cache.join(".lent").exists());
}

#[test]
fn a_send_that_fails_still_returns_the_lent_release() {
    let (_dir, _parent, cache, out) = builds();
    let release_cache = cache.join("release");
    fs::create_dir_all(&release_cache).unwrap();
    let lent = format!("{}\t{}\n", out.join("rel").display(), release_cache.join("app").display());
    fs::write(release_cache.join(".lent"), &lent).unwrap();
    // tar cannot write its output: send_out.sh dies.
    let script = format!(
        "set -eu\nsay() {{ :; }}\ndie() {{ printf 'error: %s\\n' \"$*\" >&2; exit 1; }}\nuse_cache=\nexec 3>&-\n{SEND_OUT}"
    );
    let done = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("OUT", &out)
        .env("STREAM_OUT", "1")
        .env("CACHE", &cache)
        .env("RELEASE_CACHE", &release_cache)
        .output()
        .unwrap();
    assert!(!done.status.success(), "the send was to fail");
    assert!(release_cache.join("app/bin/app").is_file(), "the release is back in the cache");
    assert!(!release_cache.join(".lent").exists());
}

#[test]
fn a_name_with_a_tab_or_a_newline_means_the_whole_tree_and_no_record() {
    for odd in ["a\tb.beam", "a\nb.beam"] {
        let (_dir, parent, cache, out) = builds();
        receive(&parent, "vol", &cache, 1);
        write(&out.join("rel/lib").join(odd), "odd", 0o644);
        let (second, tar, log) = receive(&parent, "vol", &cache, 2);
        assert!(!log.contains("changed since the last build"), "{odd:?}: {log}");
        assert!(entries(&tar).iter().any(|e| e.ends_with("rel/bin/app")), "{odd:?}: the whole tree goes");
        assert_eq!(listing(&second), listing(&out));
        let left: Vec<_> = fs::read_dir(cache.join("sent")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.iter().all(|n| !n.to_string_lossy().starts_with("list.new")), "{odd:?}: {left:?}");
    }
}
