//! Symbolic links in the sources that would break the release build: checked before the sources
//! are sent, so the build fails at once naming the link, rather than hanging or failing inside
//! `mix release` (which copies `priv/` following links: a loop there never ends).
//!
//! - A loop (`priv/loop -> loop`, or `a -> b`, `b -> a`), or a link to a directory that holds the
//!   link (`priv/up -> ..`: a walk that follows links never ends), anywhere in the sources.
//! - A dangling link (its target does not exist) in what the release copies: a `priv/` directory
//!   (an application's, at any depth) and `rel/` (overlays, templates). Elsewhere a dangling link
//!   (say, a `.envrc` to a file kept out of git) does not reach the release and is left alone.
//!
//! Targets are resolved on this machine, where the sources are; a link to an absolute path that
//! only the builder has is not caught here.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// What is wrong with a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// Resolving it never ends (the system gives up: ELOOP).
    Loop,
    /// It points to a directory that holds it.
    ToAncestor,
    /// Its target does not exist.
    Dangling,
}

impl fmt::Display for LinkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkProblem::Loop => "which leads back to itself (a symlink loop)",
            LinkProblem::ToAncestor => "a directory that holds the link (a symlink loop for whatever follows links)",
            LinkProblem::Dangling => "which does not exist (a dangling link)",
        })
    }
}

/// Checks the link at `root/rel`: what is wrong with it, if anything (see the module docs).
pub(super) fn check(root: &Path, rel: &Path) -> Option<LinkProblem> {
    let path = root.join(rel);
    match std::fs::metadata(&path) {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Some(LinkProblem::Loop),
        Err(_) => is_copied_by_release(rel).then_some(LinkProblem::Dangling),
        Ok(meta) if meta.is_dir() => {
            let target = std::fs::canonicalize(&path).ok()?;
            // The link's directory, with links resolved: the target holds it when it is a prefix.
            let here = path.parent().and_then(|p| std::fs::canonicalize(p).ok())?;
            here.starts_with(&target).then_some(LinkProblem::ToAncestor)
        }
        Ok(_) => None,
    }
}

/// Whether the release copies what is at `rel`: under a `priv` directory, or under the root's
/// (or an umbrella app's) `rel/`.
pub(super) fn is_copied_by_release(rel: &Path) -> bool {
    let dirs: Vec<&std::ffi::OsStr> = match rel.parent() {
        Some(parent) => parent
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name),
                _ => None,
            })
            .collect(),
        None => Vec::new(),
    };
    dirs.iter().any(|d| *d == "priv") || dirs.first().is_some_and(|d| *d == "rel") || is_umbrella_rel(&dirs)
}

/// `apps/APP/rel/...`.
fn is_umbrella_rel(dirs: &[&std::ffi::OsStr]) -> bool {
    dirs.len() >= 3 && dirs[0] == "apps" && dirs[2] == "rel"
}

/// What the link at `path` says (for the error), or `?` when it cannot be read.
pub(super) fn target_of(path: &Path) -> PathBuf {
    std::fs::read_link(path).unwrap_or_else(|_| PathBuf::from("?"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn loops_anywhere_and_dangling_links_in_what_the_release_copies() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["priv/static", "lib", "rel/overlays", "apps/web/priv", "apps/web/rel", "vendor/x"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("lib/a.ex"), "").unwrap();
        let link = |target: &str, at: &str| symlink(target, root.join(at)).unwrap();
        link("loop", "priv/loop");
        link("b", "lib/a");
        link("a", "lib/b");
        link("..", "priv/static/up");
        link(".", "vendor/x/self");
        link("missing.txt", "priv/static/gone");
        link("../../missing", "rel/overlays/gone");
        link("nope", "apps/web/priv/gone");
        link("nope", "apps/web/rel/gone");
        link("/nonexistent", "dangling_at_root");
        link("../lib/a.ex", "priv/ok_file");
        link("../lib", "priv/ok_dir");
        link("lib", "ok_root_dir");
        let p = |rel: &str| check(root, Path::new(rel));
        assert_eq!(p("priv/loop"), Some(LinkProblem::Loop));
        assert_eq!(p("lib/a"), Some(LinkProblem::Loop));
        assert_eq!(p("priv/static/up"), Some(LinkProblem::ToAncestor));
        assert_eq!(p("vendor/x/self"), Some(LinkProblem::ToAncestor));
        assert_eq!(p("priv/static/gone"), Some(LinkProblem::Dangling));
        assert_eq!(p("rel/overlays/gone"), Some(LinkProblem::Dangling));
        assert_eq!(p("apps/web/priv/gone"), Some(LinkProblem::Dangling));
        assert_eq!(p("apps/web/rel/gone"), Some(LinkProblem::Dangling));
        assert_eq!(p("dangling_at_root"), None, "not copied into the release");
        assert_eq!(p("priv/ok_file"), None);
        assert_eq!(p("priv/ok_dir"), None);
        assert_eq!(p("ok_root_dir"), None);
    }

    #[test]
    fn what_the_release_copies() {
        for yes in ["priv/a", "priv/static/x/y", "apps/web/priv/x", "deps_local/x/priv/y", "rel/env.sh.eex"] {
            assert!(is_copied_by_release(Path::new(yes)), "{yes}");
        }
        for no in ["priv", "lib/priv.ex", "release/x", "lib/rel/x", "apps/web/lib/x", ".envrc"] {
            assert!(!is_copied_by_release(Path::new(no)), "{no}");
        }
    }
}
