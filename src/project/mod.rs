//! The project to build: a folder with a `mix.exs` or a `rebar.config`, which of its files
//! are source ([`Project::source_files`], see [`sources`] for the exclusion rules: built-in ones,
//! `.gitignore` and git's `info/exclude` ([`gitignore`]), and `.dockerignore`; a file is source only
//! when none leaves it out), a deterministic tar of them ([`Project::write_source_tar`]) and where
//! they come from in git.

mod archive;
mod gitignore;
mod links;
pub mod native_code;
mod source_tar;
mod sources;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use links::LinkProblem;
pub use source_tar::{KEEP_AT_MOST, SourceTar};
pub use sources::DockerIgnore;

/// What builds the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProjectKind {
    /// Elixir (or mixed) project built with `mix`: has a `mix.exs`.
    Mix,
    /// Erlang project built with `rebar3` and relx: has a `rebar.config` (and no `mix.exs`).
    Rebar3,
}

impl ProjectKind {
    /// The name the builder script knows it by (`PROJECT_KIND`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectKind::Mix => "mix",
            ProjectKind::Rebar3 => "rebar3",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("cannot open project {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("{path} is not a mix or rebar3 project: no mix.exs or rebar.config found")]
    NotMixProject { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("bad pattern in {path}: {message}")]
    DockerIgnore { path: PathBuf, message: String },
    /// A `.gitignore` or `info/exclude` line the `ignore` crate cannot read.
    #[error("bad pattern in {path}: {message}")]
    GitIgnore { path: PathBuf, message: String },
    /// A bad pattern given to [`Project::include_gitignored`].
    #[error("bad pattern among the gitignored files to include in the sources of {root}: {message}")]
    IncludeGitignored { root: PathBuf, message: String },
    #[error("cannot write the source tar (at {path}): {source}")]
    Tar { path: PathBuf, source: std::io::Error },
    #[error(
        "{} is a symbolic link to {}, {problem}: the release build would hang or fail on it; fix or \
         remove the link, or leave it out of the sources with .dockerignore",
        path.display(),
        target.display()
    )]
    BadLink { path: PathBuf, target: PathBuf, problem: LinkProblem },
}

/// A project on disk. `root` is canonical (absolute, symlinks resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub root: PathBuf,
    pub kind: ProjectKind,
    /// See [`Project::include_gitignored`] (empty: git's rules apply to every path).
    include_gitignored: Vec<String>,
}

impl Project {
    /// Opens the project at `path`: a directory with a `mix.exs` (a mix project, even when it
    /// also has a `rebar.config`) or a `rebar.config` (a rebar3 project).
    pub fn open(path: impl AsRef<Path>) -> Result<Project, ProjectError> {
        let path = path.as_ref();
        let root = path.canonicalize().map_err(|source| ProjectError::Open { path: path.to_path_buf(), source })?;
        if !root.is_dir() {
            return Err(ProjectError::NotADirectory { path: root });
        }
        let kind = if root.join("mix.exs").is_file() {
            ProjectKind::Mix
        } else if root.join("rebar.config").is_file() {
            ProjectKind::Rebar3
        } else {
            return Err(ProjectError::NotMixProject { path: root });
        };
        Ok(Project { root, kind, include_gitignored: Vec::new() })
    }

    /// What builds this project.
    pub fn kind(&self) -> ProjectKind {
        self.kind
    }

    /// The escape hatch for files a team wants uploaded although git ignores them (say
    /// `priv/static/assets`, when CI builds the assets on the host before release-oci runs):
    /// `patterns`, one per entry in `.dockerignore` syntax (anchored at the root, `**` spans
    /// directories, a directory covers what is below it, `!` takes a path back out), name the
    /// paths that the project's `.gitignore` files and git's `info/exclude` do not apply to.
    /// `.dockerignore` and the built-in exclusions (`.git`, `node_modules`, `_build`, `deps`)
    /// still do. `["**"]` turns git's rules off. Replaces the patterns given before; none (the
    /// default): git's rules apply everywhere. Not a `release-oci.toml` key (yet).
    ///
    /// A bad pattern is [`ProjectError::IncludeGitignored`].
    pub fn include_gitignored<I>(mut self, patterns: I) -> Result<Project, ProjectError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let patterns: Vec<String> = patterns.into_iter().map(Into::into).collect();
        sources::include_gitignored_matcher(&self.root, &patterns)?;
        self.include_gitignored = patterns;
        Ok(self)
    }

    /// The source files (regular files and symlinks), relative to the root, sorted. Left out:
    /// `.git` and `node_modules` anywhere, `_build` and `deps` directories next to a `mix.exs`,
    /// what the project's `.gitignore` files and its repository's `info/exclude` ignore (but see
    /// [`Self::include_gitignored`]), and what the root's `.dockerignore` lists (see
    /// [`DockerIgnore`]): a file is source only when none of them leaves it out. A symlink that
    /// would break the release build (a loop, or a dangling link in `priv/` or `rel/`; see
    /// [`LinkProblem`]) is an error, [`ProjectError::BadLink`].
    pub fn source_files(&self) -> Result<Vec<PathBuf>, ProjectError> {
        sources::source_files(&self.root, &self.include_gitignored)
    }

    /// Writes a deterministic tar of [`Self::source_files`] (and their parent directories) to
    /// `w`: sorted, uid/gid 0, mtime 0, modes 0644/0755, symlinks stored as links.
    pub fn write_source_tar<W: std::io::Write>(&self, w: W) -> Result<W, ProjectError> {
        self.write_source_tar_under(w, Path::new(""))
    }

    /// Like [`Self::write_source_tar`], every entry under `prefix` (a relative `/`-separated
    /// path such as `build/src`; its directories get entries too).
    pub fn write_source_tar_under<W: std::io::Write>(&self, w: W, prefix: &Path) -> Result<W, ProjectError> {
        let files = self.source_files()?;
        archive::write(&self.root, &files, prefix, w)
    }

    /// The commit checked out (`git rev-parse HEAD`), when the project is in a git repository
    /// and `git` runs.
    pub fn git_revision(&self) -> Option<String> {
        git(&self.root, &["rev-parse", "--verify", "HEAD"])
    }

    /// The URL of the `origin` remote (else the first remote), credentials, query and fragment
    /// removed, when the project is in a git repository whose remote is on the network and
    /// `git` runs. A remote that is a local path or `file://` URL names nothing others can
    /// reach, and is left out.
    pub fn git_remote_url(&self) -> Option<String> {
        let remotes = git(&self.root, &["remote"])?;
        let name = remotes.lines().find(|r| *r == "origin").or_else(|| remotes.lines().next())?.to_string();
        let url = git(&self.root, &["remote", "get-url", &name])?;
        public_source_url(&url)
    }
}

/// Runs `git -C dir ARGS`; its trimmed stdout when it succeeds with some output. Not run at all
/// for a directory git would not find a repository for (no `GIT_DIR`, no `.git` in it or above):
/// a build asks several times, a few milliseconds each.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    if std::env::var_os("GIT_DIR").is_none() && !dir.ancestors().any(|d| d.join(".git").exists()) {
        return None;
    }
    let out =
        Command::new("git").arg("-C").arg(dir).args(args).stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// A remote as it may go into an image label: `https://user:token@host/x?private_token=t` →
/// `https://host/x`; scp-like `git@host:a/b.git` is kept; local paths and `file://` are `None`.
fn public_source_url(url: &str) -> Option<String> {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    if let Some((scheme, rest)) = url.split_once("://") {
        if !matches!(scheme, "http" | "https" | "ssh" | "git" | "git+ssh") {
            return None;
        }
        let host_end = rest.find('/').unwrap_or(rest.len());
        let rest = match rest[..host_end].rfind('@') {
            Some(at) => &rest[at + 1..],
            None => rest,
        };
        return (!rest.is_empty() && !rest.starts_with('/')).then(|| format!("{scheme}://{rest}"));
    }
    // scp-like `[user@]host:path`: a host before the first `:`, and no `/` before it.
    let (host, path) = url.split_once(':')?;
    (!host.is_empty() && !host.contains('/') && !path.is_empty()).then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_requires_mix_exs() {
        let dir = tempfile::tempdir().unwrap();
        let e = Project::open(dir.path()).unwrap_err();
        let canonical = dir.path().canonicalize().unwrap();
        assert_eq!(
            e.to_string(),
            format!("{} is not a mix or rebar3 project: no mix.exs or rebar.config found", canonical.display())
        );
        std::fs::write(dir.path().join("rebar.config"), "{relx, []}.").unwrap();
        assert_eq!(Project::open(dir.path()).unwrap().kind(), ProjectKind::Rebar3);
        std::fs::write(dir.path().join("mix.exs"), "").unwrap();
        let p = Project::open(dir.path().join(".")).unwrap();
        assert_eq!(p.root, canonical);
        assert_eq!(p.kind(), ProjectKind::Mix);
        assert!(matches!(Project::open(dir.path().join("nope")), Err(ProjectError::Open { .. })));
    }

    #[test]
    fn source_urls_lose_credentials_and_tokens_and_local_paths_are_none() {
        let url = |u| public_source_url(u);
        assert_eq!(url("https://u:t@example.com/a/b.git").as_deref(), Some("https://example.com/a/b.git"));
        assert_eq!(url("https://example.com/a@b").as_deref(), Some("https://example.com/a@b"));
        assert_eq!(url("git@example.com:a/b.git").as_deref(), Some("git@example.com:a/b.git"));
        assert_eq!(url("ssh://git@example.com/a").as_deref(), Some("ssh://example.com/a"));
        assert_eq!(
            url("https://example.com/a.git?private_token=s3cr3t#x").as_deref(),
            Some("https://example.com/a.git")
        );
        assert_eq!(url("/home/me/src/app"), None);
        assert_eq!(url("../app.git"), None);
        assert_eq!(url("file:///srv/git/app.git"), None);
    }

    #[test]
    fn git_metadata() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mix.exs"), "").unwrap();
        let p = Project::open(dir.path()).unwrap();
        assert_eq!(p.git_revision(), None);
        assert_eq!(p.git_remote_url(), None);
        let run = |args: &[&str]| {
            let ok = Command::new("git").arg("-C").arg(&p.root).args(args).output().unwrap().status.success();
            assert!(ok, "git {args:?}");
        };
        run(&["init", "-q"]);
        run(&["-c", "user.name=t", "-c", "user.email=t@t", "add", "mix.exs"]);
        run(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x"]);
        run(&["remote", "add", "origin", "https://me:secret@example.com/x.git"]);
        let rev = p.git_revision().unwrap();
        assert_eq!(rev.len(), 40, "{rev}");
        assert_eq!(p.git_remote_url().as_deref(), Some("https://example.com/x.git"));
    }
}
