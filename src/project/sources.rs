//! Which files of a project are source.
//!
//! Always left out (never descended into, whatever `.dockerignore` says): `.git` and
//! `node_modules` anywhere, `_build` and `deps` directories that sit next to a `mix.exs` (the
//! build output and fetched dependencies of that Mix project, root or umbrella child), and
//! `_build` directories next to a `rebar.config` (rebar3's, dependencies included).
//!
//! `.dockerignore` at the root follows Docker's rules: every pattern is anchored at the root
//! (`*.log` is only the root's, `**/*.log` is any), `**` spans directories, `!` re-includes, the
//! last matching line wins, and a line that matches a directory also matches everything below
//! it (unlike gitignore, a file below an excluded directory can be re-included). We map each
//! Docker line `P` (cleaned: surrounding blanks, leading `/` and `./`, and trailing `/` removed)
//! to the two gitignore lines `/P` and `/P/**` (with the `!` kept), and ask the `ignore` crate's
//! gitignore matcher about every path itself (never about its parents): the leading `/` anchors
//! the pattern like Docker does, and `/P/**` makes "matches a parent directory" a match of the
//! path, so gitignore's "last matching line wins" is Docker's rule.

use super::ProjectError;
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// Directory names left out wherever they are.
const ALWAYS_EXCLUDED: &[&str] = &[".git", "node_modules"];
/// Directory names left out when they sit next to a `mix.exs`.
const MIX_OUTPUT_DIRS: &[&str] = &["_build", "deps"];

/// The patterns of a `.dockerignore`, as a matcher of paths relative to the project root.
#[derive(Debug)]
pub struct DockerIgnore {
    root: PathBuf,
    matcher: Gitignore,
}

impl DockerIgnore {
    /// Reads `ROOT/.dockerignore` (no file: nothing is ignored).
    pub fn load(root: &Path) -> Result<DockerIgnore, ProjectError> {
        let path = root.join(".dockerignore");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(ProjectError::Read { path, source }),
        };
        Self::parse(root, &text).map_err(|message| ProjectError::DockerIgnore { path, message })
    }

    /// Builds the matcher from the text of a `.dockerignore`.
    pub fn parse(root: &Path, text: &str) -> Result<DockerIgnore, String> {
        let mut builder = GitignoreBuilder::new(root);
        for line in text.lines() {
            let Some((exception, pattern)) = docker_pattern(line) else { continue };
            let bang = if exception { "!" } else { "" };
            for gitignore_line in [format!("{bang}/{pattern}"), format!("{bang}/{pattern}/**")] {
                builder.add_line(None, &gitignore_line).map_err(|e| e.to_string())?;
            }
        }
        let matcher = builder.build().map_err(|e| e.to_string())?;
        Ok(DockerIgnore { root: root.to_path_buf(), matcher })
    }

    /// Whether `rel` (relative to the root) is excluded.
    pub fn is_excluded(&self, rel: &Path, is_dir: bool) -> bool {
        matches!(self.matcher.matched(self.root.join(rel), is_dir), Match::Ignore(_))
    }

    /// Whether some line re-includes paths (then excluded directories must still be walked).
    fn has_exceptions(&self) -> bool {
        self.matcher.num_whitelists() > 0
    }
}

/// One `.dockerignore` line → (is an exception, cleaned pattern), or None for blanks/comments.
fn docker_pattern(line: &str) -> Option<(bool, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (exception, mut p) = match line.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, line),
    };
    loop {
        let before = p;
        p = p.trim_start_matches('/');
        if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        }
        if p == before {
            break;
        }
    }
    let p = p.trim_end_matches('/');
    if p.is_empty() || p == "." {
        return None;
    }
    Some((exception, p.to_string()))
}

/// The source files under `root` (see the module docs), relative and sorted.
pub(super) fn source_files(root: &Path) -> Result<Vec<PathBuf>, ProjectError> {
    let ignore = DockerIgnore::load(root)?;
    let prune_ignored_dirs = !ignore.has_exceptions();
    let walker = WalkDir::new(root).follow_links(false).sort_by_file_name().into_iter();
    let walker = walker.filter_entry(|entry| {
        if entry.depth() == 0 || !entry.file_type().is_dir() {
            return true;
        }
        let name = entry.file_name();
        if ALWAYS_EXCLUDED.iter().any(|x| name == *x) {
            return false;
        }
        let next_to_mix_exs = entry.path().parent().is_some_and(|p| p.join("mix.exs").is_file());
        if next_to_mix_exs && MIX_OUTPUT_DIRS.iter().any(|x| name == *x) {
            return false;
        }
        // rebar3's build output, fetched dependencies included.
        if name == "_build" && entry.path().parent().is_some_and(|p| p.join("rebar.config").is_file()) {
            return false;
        }
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        !(prune_ignored_dirs && ignore.is_excluded(rel, true))
    });
    let mut files = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            let source = e.into_io_error().unwrap_or_else(|| std::io::Error::other("filesystem loop"));
            ProjectError::Read { path, source }
        })?;
        let file_type = entry.file_type();
        if file_type.is_dir() {
            continue;
        }
        // `.git` can be a file too (worktrees, submodules).
        if ALWAYS_EXCLUDED.iter().any(|x| entry.file_name() == *x) {
            continue;
        }
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path()).to_path_buf();
        if ignore.is_excluded(&rel, false) {
            continue;
        }
        if file_type.is_symlink()
            && let Some(problem) = super::links::check(root, &rel)
        {
            let path = root.join(&rel);
            return Err(ProjectError::BadLink { target: super::links::target_of(&path), path, problem });
        }
        if file_type.is_file() || file_type.is_symlink() {
            files.push(rel);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "x").unwrap();
        }
        dir
    }

    fn list(dir: &Path) -> Vec<String> {
        source_files(dir).unwrap().iter().map(|p| p.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn builtin_exclusions() {
        let dir = tree(&[
            "mix.exs",
            "lib/a.ex",
            "_build/prod/x",
            "deps/jason/mix.exs",
            ".git/HEAD",
            "assets/node_modules/x/index.js",
            "assets/app.js",
            "apps/web/mix.exs",
            "apps/web/deps/y",
            "apps/web/_build/z",
            "apps/web/lib/deps/keep.ex",
            "lib/_build/kept_no_mix_exs_here",
            "vendor/.git",
        ]);
        assert_eq!(
            list(dir.path()),
            [
                "apps/web/lib/deps/keep.ex",
                "apps/web/mix.exs",
                "assets/app.js",
                "lib/_build/kept_no_mix_exs_here",
                "lib/a.ex",
                "mix.exs",
            ]
        );
    }

    #[test]
    fn dockerignore_patterns_are_anchored_at_the_root() {
        let dir = tree(&["mix.exs", "a.log", "lib/b.log", "tmp/x", "lib/tmp/y", "docs/a.md", "docs/sub/b.md"]);
        fs::write(dir.path().join(".dockerignore"), "# comment\n\n*.log\n/tmp/\n./docs/**/*.md\n").unwrap();
        // `**` spans zero or more directories: docs/a.md is left out too.
        assert_eq!(list(dir.path()), [".dockerignore", "lib/b.log", "lib/tmp/y", "mix.exs"]);
        fs::write(dir.path().join(".dockerignore"), "**/*.log\n  docs  \n").unwrap();
        assert_eq!(list(dir.path()), [".dockerignore", "lib/tmp/y", "mix.exs", "tmp/x"]);
    }

    #[test]
    fn dockerignore_exceptions_last_line_wins() {
        let dir = tree(&[
            "mix.exs",
            "a.md",
            "README.md",
            "CHANGELOG.md",
            "priv/static/a.js",
            "priv/static/keep/b.js",
            "priv/repo/x.exs",
        ]);
        let di = "*.md\n!README.md\npriv/static\n!priv/static/keep\nCHANGELOG.md\n!CHANGELOG.md\n";
        fs::write(dir.path().join(".dockerignore"), di).unwrap();
        assert_eq!(
            list(dir.path()),
            [".dockerignore", "CHANGELOG.md", "README.md", "mix.exs", "priv/repo/x.exs", "priv/static/keep/b.js"]
        );
        // An exclusion after the exception wins again.
        fs::write(dir.path().join(".dockerignore"), "!README.md\n*.md\n").unwrap();
        assert_eq!(
            list(dir.path()),
            [".dockerignore", "mix.exs", "priv/repo/x.exs", "priv/static/a.js", "priv/static/keep/b.js"]
        );
    }

    #[test]
    fn dockerignore_directory_match_covers_contents_and_doublestar() {
        let dir = tree(&["mix.exs", "a/b/c/d.txt", "x/a/b/e.txt", "cover/x.html", "lib/cover/y.ex"]);
        fs::write(dir.path().join(".dockerignore"), "**/b\ncover\n").unwrap();
        assert_eq!(list(dir.path()), [".dockerignore", "lib/cover/y.ex", "mix.exs"]);
    }

    #[test]
    fn cannot_reinclude_builtin_exclusions_and_keeps_symlinks() {
        let dir = tree(&["mix.exs", "deps/a/mix.exs", "lib/a.ex"]);
        fs::write(dir.path().join(".dockerignore"), "!deps\n").unwrap();
        std::os::unix::fs::symlink("lib", dir.path().join("link_to_dir")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", dir.path().join("dangling")).unwrap();
        assert_eq!(list(dir.path()), [".dockerignore", "dangling", "lib/a.ex", "link_to_dir", "mix.exs"]);
    }

    #[test]
    fn a_symlink_loop_in_priv_is_named_and_dockerignore_can_leave_it_out() {
        let dir = tree(&["mix.exs", "priv/static/app.js"]);
        std::os::unix::fs::symlink("loop", dir.path().join("priv/loop")).unwrap();
        let err = source_files(dir.path()).unwrap_err();
        let ProjectError::BadLink { path, target, problem } = &err else { panic!("expected BadLink, got {err}") };
        assert_eq!((path, target), (&dir.path().join("priv/loop"), &PathBuf::from("loop")));
        assert_eq!(*problem, crate::project::LinkProblem::Loop);
        let msg = err.to_string();
        assert!(msg.contains("priv/loop is a symbolic link to loop") && msg.contains("symlink loop"), "{msg}");
        fs::write(dir.path().join(".dockerignore"), "priv/loop\n").unwrap();
        assert_eq!(list(dir.path()), [".dockerignore", "mix.exs", "priv/static/app.js"]);
    }

    #[test]
    fn pattern_cleaning() {
        assert_eq!(docker_pattern("  # x"), None);
        assert_eq!(docker_pattern("/"), None);
        assert_eq!(docker_pattern("."), None);
        assert_eq!(docker_pattern("!/a/b/"), Some((true, "a/b".into())));
        assert_eq!(docker_pattern("././/x"), Some((false, "x".into())));
        let e = DockerIgnore::parse(Path::new("/r"), "a{b\n").unwrap_err();
        assert!(e.contains("a{b"), "{e}");
    }
}
