//! git's rules for which files are not source: the project's `.gitignore` files and, when the
//! project sits in a git work tree, that repository's `info/exclude`. [`super::sources`] combines
//! them with `.dockerignore`: a file is source only when neither leaves it out.
//!
//! Read as git reads them (gitignore(5)), for the paths inside the project:
//! - a `.gitignore` covers its own directory and everything below it: a pattern without a `/`
//!   (a trailing one aside) matches at any depth, a leading or inner `/` anchors it at the
//!   `.gitignore`'s directory, a trailing `/` matches directories only, `*` and `?` stop at `/`,
//!   `**` spans directories, `!` re-includes, and the last matching line of a file wins;
//! - a deeper `.gitignore` overrides the ones above it, and `info/exclude` (its patterns anchored
//!   at the work tree's root) comes after every `.gitignore`;
//! - an ignored directory is not descended into: nothing below it can be re-included, and a
//!   `.gitignore` inside it is not read;
//! - a directory holding its own `.git` (a nested repository or a submodule) is a boundary: the
//!   `.gitignore` files above it do not apply inside it, its repository's `info/exclude` does;
//! - `{` and `}` are literal, as in git (the `ignore` crate alone would read `{a,b}` as a choice);
//! - a `.gitignore` that is a symlink is not followed (git does not follow it either).
//!
//! Deliberately not read, so that the sources are the same on every machine that has the same
//! project files:
//! - `core.excludesFile` (`~/.config/git/ignore`, or whatever the user's or the repository's git
//!   config names): it belongs to one user on one machine, and the sources decide the build
//!   cache key. `info/exclude` is read because it belongs to the repository (a fresh clone's holds
//!   only comments), and it can only leave files out;
//! - `.gitignore` files above the project root (a monorepo's, or those of a home directory kept in
//!   git), and whether the project root itself is ignored: the project is what was asked for;
//! - `GIT_DIR` and the other git variables; the `git` binary is never run. The repository is the
//!   nearest of the root and its ancestors holding a `.git` directory, or a `.git` file saying
//!   `gitdir: PATH` (worktrees, submodules; `PATH/commondir` is followed to the shared `info`).

use super::ProjectError;
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::borrow::Cow;
use std::path::Path;

/// The rules of one directory on the walk's current path.
#[derive(Debug)]
struct Frame {
    /// How deep the directory is below the project root (the root: 0).
    depth: usize,
    /// Its `.gitignore`.
    gitignore: Option<Gitignore>,
    /// Whether the rules of the directories above do not reach in: the project root, or the work
    /// tree of a nested repository.
    boundary: bool,
    /// At a boundary: the repository's `info/exclude`.
    exclude: Option<Gitignore>,
    /// Whether the directory is ignored itself (then so is everything below it).
    ignored: bool,
}

/// git's rules along a depth-first walk of the project (parents before their contents).
#[derive(Debug)]
pub(super) struct GitRules {
    /// The directories from the root down to the current one, depths increasing.
    frames: Vec<Frame>,
}

impl GitRules {
    /// The rules at `root`: its `.gitignore` and the `info/exclude` of the repository whose work
    /// tree holds it, if any.
    pub(super) fn load(root: &Path) -> Result<GitRules, ProjectError> {
        let exclude = match root.ancestors().find(|dir| has_dot_git(dir)) {
            Some(work_tree) => repo_exclude(work_tree)?,
            None => None,
        };
        let gitignore = read_gitignore(root)?;
        Ok(GitRules { frames: vec![Frame { depth: 0, gitignore, boundary: true, exclude, ignored: false }] })
    }

    /// Whether git ignores `path`, the walk's entry `depth` levels below the root (at least 1),
    /// met after its parent directory was [`Self::enter`]ed.
    pub(super) fn is_ignored(&mut self, path: &Path, depth: usize, is_dir: bool) -> bool {
        self.leave_to(depth);
        if self.frames.last().is_some_and(|parent| parent.ignored) {
            return true;
        }
        for frame in self.frames.iter().rev() {
            if let Some(ignored) = verdict(frame.gitignore.as_ref(), path, is_dir) {
                return ignored;
            }
            if frame.boundary {
                return verdict(frame.exclude.as_ref(), path, is_dir).unwrap_or(false);
            }
        }
        false
    }

    /// The walk goes into the directory `path`, `depth` levels below the root; `ignored` is what
    /// [`Self::is_ignored`] said of it (its `.gitignore` is then not read).
    pub(super) fn enter(&mut self, path: &Path, depth: usize, ignored: bool) -> Result<(), ProjectError> {
        self.leave_to(depth);
        let frame = if ignored {
            Frame { depth, gitignore: None, boundary: false, exclude: None, ignored }
        } else if has_dot_git(path) {
            Frame { depth, gitignore: read_gitignore(path)?, boundary: true, exclude: repo_exclude(path)?, ignored }
        } else {
            Frame { depth, gitignore: read_gitignore(path)?, boundary: false, exclude: None, ignored }
        };
        self.frames.push(frame);
        Ok(())
    }

    /// Drops the frames of the directories the walk has left: those not above `depth`. The
    /// root's frame stays.
    fn leave_to(&mut self, depth: usize) {
        let keep = self.frames.partition_point(|frame| frame.depth < depth).max(1);
        self.frames.truncate(keep);
    }
}

/// What one matcher says of `path`: ignored (true), re-included (false) or nothing.
fn verdict(matcher: Option<&Gitignore>, path: &Path, is_dir: bool) -> Option<bool> {
    match matcher?.matched(path, is_dir) {
        Match::Ignore(_) => Some(true),
        Match::Whitelist(_) => Some(false),
        Match::None => None,
    }
}

/// Whether `dir` holds a `.git` (a directory, or a file as in worktrees and submodules).
fn has_dot_git(dir: &Path) -> bool {
    dir.join(".git").symlink_metadata().is_ok()
}

/// `DIR/.gitignore`, when it is a regular file.
fn read_gitignore(dir: &Path) -> Result<Option<Gitignore>, ProjectError> {
    matcher(dir, &dir.join(".gitignore"), false)
}

/// The `info/exclude` of the repository whose work tree is `work_tree`, when there is one.
fn repo_exclude(work_tree: &Path) -> Result<Option<Gitignore>, ProjectError> {
    let dot_git = work_tree.join(".git");
    let git_dir = if dot_git.is_dir() {
        dot_git
    } else {
        let Some(text) = read_text(&dot_git, true)? else { return Ok(None) };
        let gitdir = text.lines().next().and_then(|line| line.strip_prefix("gitdir:"));
        let Some(gitdir) = gitdir else { return Ok(None) };
        work_tree.join(gitdir.trim())
    };
    let common_dir = match read_text(&git_dir.join("commondir"), true)? {
        Some(text) => git_dir.join(text.trim()),
        None => git_dir,
    };
    matcher(work_tree, &common_dir.join("info").join("exclude"), true)
}

/// The patterns of `file`, anchored at `dir`; None when there is no such regular file.
fn matcher(dir: &Path, file: &Path, follow_links: bool) -> Result<Option<Gitignore>, ProjectError> {
    let Some(text) = read_text(file, follow_links)? else { return Ok(None) };
    let bad = |line: Option<usize>, e: ignore::Error| {
        let at = line.map(|n| format!("line {n}: ")).unwrap_or_default();
        ProjectError::GitIgnore { path: file.to_path_buf(), message: format!("{at}{e}") }
    };
    let mut builder = GitignoreBuilder::new(dir);
    for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        builder.add_line(Some(file.to_path_buf()), &literal_braces(line)).map_err(|e| bad(Some(i + 1), e))?;
    }
    builder.build().map(Some).map_err(|e| bad(None, e))
}

/// The text of `path` (bytes that are not UTF-8 replaced), or None when it is not there or not a
/// regular file (`follow_links`: whether a symlink counts as what it points to).
fn read_text(path: &Path, follow_links: bool) -> Result<Option<String>, ProjectError> {
    let read_error = |source| ProjectError::Read { path: path.to_path_buf(), source };
    let metadata = if follow_links { std::fs::metadata(path) } else { std::fs::symlink_metadata(path) };
    match metadata {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Ok(None),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            return Ok(None);
        }
        Err(e) => return Err(read_error(e)),
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// A gitignore line with `{` and `}` outside character classes escaped: literal for git, a
/// choice (`{a,b}`) for the `ignore` crate's globs. `\x` pairs and classes are copied as they are.
fn literal_braces(line: &str) -> Cow<'_, str> {
    if !line.contains(['{', '}']) {
        return Cow::Borrowed(line);
    }
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        let end = match chars[i] {
            '\\' => (i + 2).min(chars.len()),
            '[' => class_end(&chars, i).map_or(i + 1, |close| close + 1),
            '{' | '}' => {
                out.push('\\');
                i + 1
            }
            _ => i + 1,
        };
        out.extend(&chars[i..end]);
        i = end;
    }
    Cow::Owned(out)
}

/// Where the class opened by the `[` at `open` closes, as the globs read classes (a `]` right
/// after `[`, `[!` or `[^` is a member); None when it does not (the `[` is then literal).
fn class_end(chars: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if matches!(chars.get(i), Some('!' | '^')) {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    chars.get(i..)?.iter().position(|&c| c == ']').map(|at| i + at)
}

#[cfg(test)]
#[path = "gitignore_tests.rs"]
mod tests;
