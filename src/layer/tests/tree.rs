//! add_tree: walking, modes, symlinks, file types.

use super::*;

#[test]
fn symlink_stays_a_symlink() {
    let (dir, store) = store();
    let src = tree(dir.path());
    // A link to a directory outside the tree must not be followed either.
    symlink(dir.path(), src.join("outside")).unwrap();
    let blob = write_layer(&spec_of(&src), &OPTS, &store).unwrap();
    let rows = rows(&gunzip(&store, &blob));
    let link = rows.iter().find(|r| r.0 == "app/lib/foo-1.0/lib/link").unwrap();
    assert_eq!(link.1, tar::EntryType::Symlink);
    assert_eq!(link.8.as_deref(), Some("a.beam"));
    let outside = rows.iter().find(|r| r.0 == "app/lib/foo-1.0/outside").unwrap();
    assert_eq!(outside.1, tar::EntryType::Symlink);
    assert!(!rows.iter().any(|r| r.0.starts_with("app/lib/foo-1.0/outside/")));
}

#[test]
fn modes_drop_group_and_other_write() {
    let (dir, store) = store();
    let src = tree(dir.path());
    fs::write(src.join("suid"), b"x").unwrap();
    fs::set_permissions(src.join("suid"), fs::Permissions::from_mode(0o4777)).unwrap();
    let spec = spec_of(&src);
    let mode = |p: &str| spec.entries.iter().find(|e| e.path == p).unwrap().mode;
    assert_eq!(mode("app/lib/foo-1.0/bin/start"), 0o755);
    assert_eq!(mode("app/lib/foo-1.0/lib/a.beam"), 0o644);
    assert_eq!(mode("app/lib/foo-1.0/suid"), 0o755);
    let blob = write_layer(&spec, &OPTS, &store).unwrap();
    let rows = rows(&gunzip(&store, &blob));
    let start = rows.iter().find(|r| r.0 == "app/lib/foo-1.0/bin/start").unwrap();
    assert_eq!(start.2, 0o755);
}

#[test]
fn add_tree_adds_parents_and_owner() {
    let (dir, _store) = store();
    let src = tree(dir.path());
    let mut spec = LayerSpec::new("x");
    spec.add_tree(&src, "/app/lib/foo-1.0/", 1000, 1001).unwrap();
    let e = |p: &str| spec.entries.iter().find(|e| e.path == p).unwrap().clone();
    assert_eq!((e("app").uid, e("app/lib").gid, e("app/lib").mode), (0, 0, 0o755));
    assert_eq!((e("app/lib/foo-1.0").uid, e("app/lib/foo-1.0").gid), (1000, 1001));
    assert_eq!(e("app/lib/foo-1.0/lib/a.beam").uid, 1000);
    assert_eq!(e("app/lib/foo-1.0/lib/link").kind, EntryKind::Symlink { target: "a.beam".into() });
    assert!(!spec.entries.iter().any(|e| e.path.is_empty()));
}

#[test]
fn special_files_are_an_error_naming_the_path() {
    let (dir, _store) = store();
    let src = tree(dir.path());
    let sock = src.join("lib/erl.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let err = LayerSpec::new("x").add_tree(&src, "app", 0, 0).unwrap_err();
    assert!(matches!(err, LayerError::UnsupportedFileType { ref path, kind: "socket" } if *path == sock), "{err}");
    assert!(err.to_string().contains("erl.sock"));
}
