//! From the root the builder gathered to the base layer's entries: each path the `why` file names
//! is resolved inside that root the way the loader resolves it inside the image (every link on
//! the way followed, absolute targets from the root), and every link and file met is taken, with
//! the reason. Nothing else in the root is taken: a library needed only by a program that
//! `--slim-erts` left out is dropped here.

use super::MinimalError;
use super::reasons::{Reasons, WhyLine, consumer_label};
use crate::layer::{Entry, EntryKind};
use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use walkdir::WalkDir;

/// Links followed while resolving one path before giving up (the kernel's limit).
const MAX_LINKS: usize = 40;

/// A path resolved inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The links met on the way, in order (layer paths).
    pub links: Vec<String>,
    /// The path with every link resolved (layer path; empty for the root itself).
    pub target: String,
}

/// Resolves `path` (absolute) inside `root`; the target must exist.
pub(crate) fn resolve(root: &Path, path: &str) -> Result<Resolved, MinimalError> {
    let missing = |detail: String| MinimalError::Missing { root: root.to_path_buf(), path: path.to_string(), detail };
    let mut pending: VecDeque<String> = components(path);
    let mut dir: Vec<String> = Vec::new();
    let mut links = Vec::new();
    let mut followed = 0;
    while let Some(comp) = pending.pop_front() {
        match comp.as_str() {
            "" | "." => continue,
            ".." => {
                dir.pop();
                continue;
            }
            _ => {}
        }
        let mut cur = dir.clone();
        cur.push(comp);
        let rel = cur.join("/");
        let meta = fs::symlink_metadata(root.join(&rel)).map_err(|e| missing(format!("{rel}: {e}")))?;
        if meta.file_type().is_symlink() {
            followed += 1;
            if followed > MAX_LINKS {
                return Err(missing(format!("more than {MAX_LINKS} symbolic links")));
            }
            let target = fs::read_link(root.join(&rel)).map_err(|e| missing(format!("{rel}: {e}")))?;
            let target = target.to_str().ok_or_else(|| missing(format!("{rel} points to a non-UTF-8 path")))?;
            if target.starts_with('/') {
                dir.clear();
            }
            let mut next = components(target);
            next.extend(pending);
            pending = next;
            if !links.contains(&rel) {
                links.push(rel);
            }
        } else if meta.is_dir() {
            dir = cur;
        } else if pending.iter().any(|c| !c.is_empty() && c != ".") {
            return Err(missing(format!("{rel} is not a directory")));
        } else {
            dir = cur;
        }
    }
    Ok(Resolved { links, target: dir.join("/") })
}

/// Whether the last component of `path` (its directory resolved in `root`) is a link.
fn ends_in_link(root: &Path, path: &str) -> Result<bool, MinimalError> {
    let Some((parent, name)) = path.trim_end_matches('/').rsplit_once('/') else { return Ok(false) };
    let dir = resolve(root, if parent.is_empty() { "/" } else { parent })?;
    let at = if dir.target.is_empty() { root.join(name) } else { root.join(&dir.target).join(name) };
    Ok(fs::symlink_metadata(at).is_ok_and(|m| m.file_type().is_symlink()))
}

fn components(path: &str) -> VecDeque<String> {
    path.split('/').filter(|c| !c.is_empty()).map(str::to_string).collect()
}

/// What the base layer takes from the root, and why.
#[derive(Debug, Default)]
pub(crate) struct Selection {
    /// By layer path.
    pub entries: BTreeMap<String, Entry>,
    pub reasons: Reasons,
}

/// Resolves every line of the `why` file in `root`. A `need` line whose consumer is a file of the
/// release that is no longer in `release_root` (left out by `--slim-erts`) is skipped.
pub(crate) fn select(root: &Path, lines: &[WhyLine], release_root: &Path) -> Result<Selection, MinimalError> {
    let mut sel = Selection::default();
    for line in lines {
        // A library's reason goes to every link on the way and to the file; an added path that is
        // itself a link (a busybox applet) does not lend its reason to what it points to.
        let (path, reason, target_too) = match line {
            WhyLine::Need { consumer, path } => {
                if !consumer.starts_with('/') && !release_root.join(consumer).exists() {
                    continue;
                }
                (path, format!("needed by {}", consumer_label(consumer)), true)
            }
            WhyLine::Add { path, reason } => (path, reason.clone(), !ends_in_link(root, path)?),
        };
        let resolved = resolve(root, path)?;
        for p in resolved.links.iter().chain(std::iter::once(&resolved.target)) {
            if p.is_empty() {
                continue;
            }
            if target_too || *p != resolved.target {
                sel.reasons.add(p, reason.clone());
            }
            take(&mut sel.entries, root, p)?;
        }
        if !resolved.target.is_empty() && root.join(&resolved.target).is_dir() {
            take_tree(&mut sel.entries, root, &resolved.target)?;
        }
    }
    Ok(sel)
}

/// Adds the entry at `rel` and the directories above it.
fn take(entries: &mut BTreeMap<String, Entry>, root: &Path, rel: &str) -> Result<(), MinimalError> {
    let mut parent = rel;
    while let Some((p, _)) = parent.rsplit_once('/') {
        if !entries.contains_key(p) {
            entries.insert(p.to_string(), entry_for(root, p)?);
        }
        parent = p;
    }
    if !entries.contains_key(rel) {
        entries.insert(rel.to_string(), entry_for(root, rel)?);
    }
    Ok(())
}

/// Adds everything below the directory `rel` (links kept as links).
fn take_tree(entries: &mut BTreeMap<String, Entry>, root: &Path, rel: &str) -> Result<(), MinimalError> {
    let top = root.join(rel);
    for item in WalkDir::new(&top).follow_links(false).sort_by_file_name().min_depth(1) {
        let item = item.map_err(|e| MinimalError::Io {
            action: "cannot list",
            path: e.path().unwrap_or(&top).to_path_buf(),
            source: e.into(),
        })?;
        let inner =
            item.path().strip_prefix(root).ok().and_then(|p| p.to_str()).ok_or_else(|| MinimalError::Missing {
                root: root.to_path_buf(),
                path: item.path().display().to_string(),
                detail: "not a UTF-8 path inside the root".into(),
            })?;
        if !entries.contains_key(inner) {
            entries.insert(inner.to_string(), entry_for(root, inner)?);
        }
    }
    Ok(())
}

/// The layer entry for the file at `rel`: root-owned, files keep their permission bits less
/// group/other write, directories 0755, links as links.
fn entry_for(root: &Path, rel: &str) -> Result<Entry, MinimalError> {
    let full = root.join(rel);
    let io = |source| MinimalError::Io { action: "cannot read", path: full.clone(), source };
    let meta = fs::symlink_metadata(&full).map_err(io)?;
    let ft = meta.file_type();
    let (kind, mode) = if ft.is_symlink() {
        (EntryKind::Symlink { target: fs::read_link(&full).map_err(io)? }, 0o777)
    } else if ft.is_dir() {
        (EntryKind::Dir, 0o755)
    } else if ft.is_file() {
        (EntryKind::File { source: full.clone() }, meta.permissions().mode() & 0o755)
    } else {
        return Err(MinimalError::Missing {
            root: root.to_path_buf(),
            path: rel.to_string(),
            detail: "not a regular file, directory or link".into(),
        });
    };
    Ok(Entry { path: rel.to_string(), kind, mode, uid: 0, gid: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A merged-/usr root like Debian's: lib -> usr/lib, lib64 -> usr/lib64 with an absolute
    /// loader link, a SONAME link, busybox with an applet, a tree.
    fn debian_like() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("usr/lib/x86_64-linux-gnu")).unwrap();
        fs::create_dir_all(r.join("usr/lib64")).unwrap();
        fs::create_dir_all(r.join("usr/bin")).unwrap();
        fs::create_dir_all(r.join("usr/share/zoneinfo/Europe")).unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("usr/lib64", r.join("lib64")).unwrap();
        symlink("usr/bin", r.join("bin")).unwrap();
        fs::write(r.join("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), b"ld").unwrap();
        symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", r.join("usr/lib64/ld-linux-x86-64.so.2")).unwrap();
        fs::write(r.join("usr/lib/x86_64-linux-gnu/libz.so.1.2.13"), b"z").unwrap();
        symlink("libz.so.1.2.13", r.join("usr/lib/x86_64-linux-gnu/libz.so.1")).unwrap();
        fs::write(r.join("usr/lib/x86_64-linux-gnu/libcap.so.2"), b"cap").unwrap();
        fs::write(r.join("usr/bin/busybox"), b"bb").unwrap();
        fs::set_permissions(r.join("usr/bin/busybox"), fs::Permissions::from_mode(0o775)).unwrap();
        symlink("busybox", r.join("usr/bin/sh")).unwrap();
        fs::write(r.join("usr/share/zoneinfo/Europe/Paris"), b"tz").unwrap();
        symlink("Europe/Paris", r.join("usr/share/zoneinfo/Paris")).unwrap();
        d
    }

    #[test]
    fn resolves_links_on_the_way_and_at_the_end() {
        let d = debian_like();
        let r = resolve(d.path(), "/lib64/ld-linux-x86-64.so.2").unwrap();
        assert_eq!(r.links, ["lib64", "usr/lib64/ld-linux-x86-64.so.2", "lib"]);
        assert_eq!(r.target, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
        let r = resolve(d.path(), "/lib/x86_64-linux-gnu/../x86_64-linux-gnu/./libz.so.1").unwrap();
        assert_eq!(r.links, ["lib", "usr/lib/x86_64-linux-gnu/libz.so.1"]);
        assert_eq!(r.target, "usr/lib/x86_64-linux-gnu/libz.so.1.2.13");
        let e = resolve(d.path(), "/lib/x86_64-linux-gnu/libssl.so.3").unwrap_err().to_string();
        assert!(e.contains("/lib/x86_64-linux-gnu/libssl.so.3"), "{e}");
        let e = resolve(d.path(), "/usr/bin/busybox/sh").unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
        symlink("loop2", d.path().join("loop1")).unwrap();
        symlink("loop1", d.path().join("loop2")).unwrap();
        assert!(resolve(d.path(), "/loop1").unwrap_err().to_string().contains("symbolic links"));
    }

    #[test]
    fn selects_what_the_lines_name_with_reasons_and_skips_left_out_consumers() {
        let d = debian_like();
        let rel = tempfile::tempdir().unwrap();
        fs::create_dir_all(rel.path().join("erts-13.1.5/bin")).unwrap();
        fs::write(rel.path().join("erts-13.1.5/bin/beam.smp"), b"").unwrap();
        let lines = vec![
            WhyLine::Need {
                consumer: "erts-13.1.5/bin/beam.smp".into(),
                path: "/lib/x86_64-linux-gnu/libz.so.1".into(),
            },
            WhyLine::Need { consumer: "erts-13.1.5/bin/beam.smp".into(), path: "/lib64/ld-linux-x86-64.so.2".into() },
            // erlc was left out: its library is not taken.
            WhyLine::Need { consumer: "erts-13.1.5/bin/erlc".into(), path: "/lib/x86_64-linux-gnu/libcap.so.2".into() },
            WhyLine::Add { path: "/bin/sh".into(), reason: "shell".into() },
            WhyLine::Add { path: "/usr/share/zoneinfo".into(), reason: "tz".into() },
        ];
        let sel = select(d.path(), &lines, rel.path()).unwrap();
        let paths: Vec<&str> = sel.entries.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "bin",
                "lib",
                "lib64",
                "usr",
                "usr/bin",
                "usr/bin/busybox",
                "usr/bin/sh",
                "usr/lib",
                "usr/lib/x86_64-linux-gnu",
                "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                "usr/lib/x86_64-linux-gnu/libz.so.1",
                "usr/lib/x86_64-linux-gnu/libz.so.1.2.13",
                "usr/lib64",
                "usr/lib64/ld-linux-x86-64.so.2",
                "usr/share",
                "usr/share/zoneinfo",
                "usr/share/zoneinfo/Europe",
                "usr/share/zoneinfo/Europe/Paris",
                "usr/share/zoneinfo/Paris",
            ]
        );
        let why = |p: &str| sel.reasons.lookup(p).map(|r| r.iter().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(why("usr/lib/x86_64-linux-gnu/libz.so.1.2.13"), ["needed by erts/bin/beam.smp"]);
        // /bin/sh is a link: its reason stays with the links, not with busybox.
        assert_eq!(why("usr/bin/sh"), ["shell"]);
        assert_eq!(why("bin"), ["shell"]);
        assert!(why("usr/bin/busybox").is_empty());
        assert_eq!(why("usr/share/zoneinfo/Europe/Paris"), ["tz"]);
        assert!(why("usr/lib/x86_64-linux-gnu/libcap.so.2").is_empty());
        let bb = &sel.entries["usr/bin/busybox"];
        assert_eq!((bb.mode, bb.uid), (0o755, 0));
        assert_eq!(sel.entries["usr/bin/sh"].kind, EntryKind::Symlink { target: "busybox".into() });
        assert_eq!(sel.entries["usr/share"].kind, EntryKind::Dir);
    }
}
