//! Which files of a project are source: the files uploaded to the builder. Host build outputs
//! must never be among them.
//!
//! Always left out (never descended into, whatever `.dockerignore` or `.gitignore` says): `.git`
//! and `node_modules` anywhere, `_build` and `deps` directories that sit next to a `mix.exs` (the
//! build output and fetched dependencies of that Mix project, root or umbrella child), and
//! `_build` directories next to a `rebar.config` (rebar3's, dependencies included).
//!
//! Then two sets of rules, and **a file is source only when neither leaves it out**:
//! - git's: the project's `.gitignore` files (the root's and nested ones) and, when the project is
//!   in a git work tree, the repository's `info/exclude`; with gitignore semantics, see
//!   [`super::gitignore`] (which also says what is deliberately not read: `core.excludesFile`,
//!   `.gitignore` files above the project). A Phoenix app's `.gitignore` thus keeps a developer's
//!   `priv/static/assets/`, `*.ez` and `/tmp/` out of the upload even without a `.dockerignore`.
//! - `.dockerignore`'s (below).
//!
//! Neither can take back what the other leaves out: a `.dockerignore` `!pattern` only undoes that
//! file's own lines, and a `.gitignore` `!pattern` only git's. So the outcome never depends on
//! which rule "wins": a file is in the upload only if git's rules (as read here) do not ignore it
//! and `docker build` would send it. The one way to upload gitignored files is
//! [`super::Project::include_gitignored`] (patterns in `.dockerignore` syntax whose paths git's
//! rules do not apply to; `.dockerignore` and the built-in exclusions still do).
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
//!
//! A directory is not walked into when git's rules leave it out (unless
//! [`super::Project::include_gitignored`] has patterns), or `.dockerignore` does and has no `!`
//! line.

use super::ProjectError;
use super::gitignore::GitRules;
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::path::{Path, PathBuf};
use walkdir::{DirEntry, WalkDir};

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

/// The source files under `root` (see the module docs), relative and sorted. `include_gitignored`:
/// see [`super::Project::include_gitignored`].
pub(super) fn source_files(root: &Path, include_gitignored: &[String]) -> Result<Vec<PathBuf>, ProjectError> {
    let mut selector = Selector {
        docker: DockerIgnore::load(root)?,
        git: GitRules::load(root)?,
        include_gitignored: include_gitignored_matcher(root, include_gitignored)?,
    };
    let mut walker = WalkDir::new(root).follow_links(false).sort_by_file_name().into_iter();
    let mut files = Vec::new();
    while let Some(entry) = walker.next() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            let source = e.into_io_error().unwrap_or_else(|| std::io::Error::other("filesystem loop"));
            ProjectError::Read { path, source }
        })?;
        if entry.depth() == 0 {
            continue;
        }
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path()).to_path_buf();
        let admitted = selector.admits(&entry, &rel)?;
        let file_type = entry.file_type();
        if file_type.is_dir() {
            if !admitted {
                walker.skip_current_dir();
            }
            continue;
        }
        if !admitted {
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

/// The patterns of [`super::Project::include_gitignored`] as a matcher (None: there are none).
pub(super) fn include_gitignored_matcher(
    root: &Path,
    patterns: &[String],
) -> Result<Option<DockerIgnore>, ProjectError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let bad = |message: String| ProjectError::IncludeGitignored { root: root.to_path_buf(), message };
    if let Some(p) = patterns.iter().find(|p| p.contains(['\n', '\r'])) {
        return Err(bad(format!("{p:?} is more than one line")));
    }
    DockerIgnore::parse(root, &patterns.join("\n")).map(Some).map_err(bad)
}

/// Everything that decides, for one walk, whether an entry is source.
struct Selector {
    docker: DockerIgnore,
    git: GitRules,
    include_gitignored: Option<DockerIgnore>,
}

impl Selector {
    /// For a directory: whether the walk goes into it; for anything else: whether it is source.
    /// Entries come depth first, a directory before its contents.
    fn admits(&mut self, entry: &DirEntry, rel: &Path) -> Result<bool, ProjectError> {
        if builtin_excluded(entry) {
            return Ok(false);
        }
        let is_dir = entry.file_type().is_dir();
        let git_ignored = self.git.is_ignored(entry.path(), entry.depth(), is_dir);
        let included_anyway = self.include_gitignored.as_ref().is_some_and(|m| m.is_excluded(rel, is_dir));
        let git_excluded = git_ignored && !included_anyway;
        let docker_excluded = self.docker.is_excluded(rel, is_dir);
        if !is_dir {
            return Ok(!git_excluded && !docker_excluded);
        }
        // Into a left-out directory only when some pattern may take back what is below it.
        let prune =
            (git_excluded && self.include_gitignored.is_none()) || (docker_excluded && !self.docker.has_exceptions());
        if !prune {
            self.git.enter(entry.path(), entry.depth(), git_ignored)?;
        }
        Ok(!prune)
    }
}

/// The built-in exclusions (module docs): `.git` and `node_modules` (directories, or files as
/// `.git` is in worktrees and submodules), and the build output next to a `mix.exs` or a
/// `rebar.config`.
fn builtin_excluded(entry: &DirEntry) -> bool {
    let name = entry.file_name();
    if ALWAYS_EXCLUDED.iter().any(|x| name == *x) {
        return true;
    }
    if !entry.file_type().is_dir() {
        return false;
    }
    let next_to = |file: &str| entry.path().parent().is_some_and(|p| p.join(file).is_file());
    (MIX_OUTPUT_DIRS.iter().any(|x| name == *x) && next_to("mix.exs"))
        // rebar3's build output, fetched dependencies included.
        || (name == "_build" && next_to("rebar.config"))
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
        source_files(dir, &[]).unwrap().iter().map(|p| p.to_string_lossy().into_owned()).collect()
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
        let err = source_files(dir.path(), &[]).unwrap_err();
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
