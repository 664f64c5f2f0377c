use super::literal_braces;
use crate::project::sources::source_files;
use crate::project::{Project, ProjectError};
use std::fs;
use std::path::Path;

/// Writes `(path, content)` files under a new temporary directory.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    dir
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (f, content) in files {
        let p = root.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
}

fn list(root: &Path) -> Vec<String> {
    names(source_files(root, &[]).unwrap())
}

fn names(files: Vec<std::path::PathBuf>) -> Vec<String> {
    files.iter().map(|p| p.to_string_lossy().into_owned()).collect()
}

/// The `.gitignore` `mix phx.new hello` writes.
const PHOENIX_GITIGNORE: &str = "\
# The directory Mix will write compiled artifacts to.
/_build/

# If you run \"mix test --cover\", coverage assets end up here.
/cover/

# The directory Mix downloads your dependencies sources to.
/deps/

# Where 3rd-party dependencies like ExDoc output generated docs.
/doc/

# If the VM crashes, it generates a dump, let's ignore it too.
erl_crash.dump

# Also ignore archive artifacts (built via \"mix archive.build\").
*.ez

# Temporary files, for example, from tests.
/tmp/

# Ignore package tarball (built via \"mix hex.build\").
hello-*.tar

# Ignore assets that are produced by build tools.
/priv/static/assets/

# Ignore digested assets cache.
/priv/static/cache_manifest.json

# In case you use Node.js/npm, you want to ignore these.
npm-debug.log
/assets/node_modules/
";

/// A Phoenix app as a developer's machine has it: stale assets, archives, logs, a test database.
const PHOENIX_FILES: &[(&str, &str)] = &[
    (".gitignore", PHOENIX_GITIGNORE),
    ("mix.exs", ""),
    ("mix.lock", ""),
    ("config/config.exs", ""),
    ("lib/hello.ex", ""),
    ("lib/tmp/kept.ex", ""),
    ("assets/js/app.js", ""),
    ("assets/npm-debug.log", ""),
    ("npm-debug.log", ""),
    ("priv/static/assets/app.js", ""),
    ("priv/static/assets/app.css", ""),
    ("priv/static/cache_manifest.json", ""),
    ("priv/static/favicon.ico", ""),
    ("priv/static/images/logo.svg", ""),
    ("priv/gettext/default.pot", ""),
    ("lib/priv/static/assets/kept.ex", ""),
    ("hello_tool-0.1.0.ez", ""),
    ("vendor/tools/other.ez", ""),
    ("tmp/test.db", ""),
    ("cover/index.html", ""),
    ("doc/index.html", ""),
    ("erl_crash.dump", ""),
    ("hello-0.1.0.tar", ""),
];

#[test]
fn phoenix_gitignore_leaves_out_host_build_outputs() {
    let dir = tree(PHOENIX_FILES);
    assert_eq!(
        list(dir.path()),
        [
            ".gitignore",
            "assets/js/app.js",
            "config/config.exs",
            "lib/hello.ex",
            "lib/priv/static/assets/kept.ex",
            "lib/tmp/kept.ex",
            "mix.exs",
            "mix.lock",
            "priv/gettext/default.pot",
            "priv/static/favicon.ico",
            "priv/static/images/logo.svg",
        ]
    );
}

#[test]
fn nested_gitignores_negation_and_ignored_directories() {
    let dir = tree(&[
        ("mix.exs", ""),
        (".gitignore", "*.txt\n!keep.txt\n/out/\n!out/keep.txt\n"),
        ("a.txt", ""),
        ("keep.txt", ""),
        ("lib/keep.txt", ""),
        // A deeper .gitignore overrides the root's `!keep.txt`.
        ("lib/sub/.gitignore", "keep.txt\n"),
        ("lib/sub/keep.txt", ""),
        ("lib/sub/a.ex", ""),
        // ... and the root's `*.txt`; its patterns only reach below docs/.
        ("docs/.gitignore", "!*.txt\ngenerated/\ndraft.txt\n"),
        ("docs/a.txt", ""),
        ("docs/draft.txt", ""),
        ("docs/generated/x.md", ""),
        ("generated/y.md", ""),
        // Nothing below an ignored directory comes back, not even by a .gitignore inside it.
        ("out/.gitignore", "!*\n"),
        ("out/keep.txt", ""),
        ("out/x.md", ""),
    ]);
    assert_eq!(
        list(dir.path()),
        [
            ".gitignore",
            "docs/.gitignore",
            "docs/a.txt",
            "generated/y.md",
            "keep.txt",
            "lib/keep.txt",
            "lib/sub/.gitignore",
            "lib/sub/a.ex",
            "mix.exs",
        ]
    );
}

#[test]
fn info_exclude_of_the_enclosing_repository_applies_and_gitignores_above_the_project_do_not() {
    let dir = tree(&[
        ("repo/.git/HEAD", "ref: refs/heads/main\n"),
        ("repo/.git/info/exclude", "# git ls-files --others --exclude-from=.git/info/exclude\n/app/local.exs\n*.env\n"),
        // Above the project: not read.
        ("repo/.gitignore", "*.md\n"),
        // `.gitignore` files come first: this one takes back what info/exclude leaves out.
        ("repo/app/.gitignore", "!keep.env\n"),
        ("repo/app/mix.exs", ""),
        ("repo/app/README.md", ""),
        ("repo/app/local.exs", ""),
        ("repo/app/lib/local.exs", ""),
        ("repo/app/dev.env", ""),
        ("repo/app/config/prod.env", ""),
        ("repo/app/keep.env", ""),
    ]);
    let app = dir.path().join("repo/app");
    assert_eq!(list(&app), [".gitignore", "README.md", "keep.env", "lib/local.exs", "mix.exs"]);
    // The project at the work tree's root: `/app/local.exs` is anchored there.
    fs::write(dir.path().join("repo/mix.exs"), "").unwrap();
    assert_eq!(
        list(&dir.path().join("repo")),
        [".gitignore", "app/.gitignore", "app/keep.env", "app/lib/local.exs", "app/mix.exs", "mix.exs"]
    );
}

#[test]
fn a_worktree_git_file_leads_to_the_shared_info_exclude() {
    let dir = tree(&[
        ("main/.git/info/exclude", "*.local\n"),
        ("main/.git/worktrees/wt/commondir", "../..\n"),
        ("wt/.git", "gitdir: ../main/.git/worktrees/wt\n"),
        ("wt/mix.exs", ""),
        ("wt/dev.local", ""),
        ("wt/lib/a.ex", ""),
    ]);
    assert_eq!(list(&dir.path().join("wt")), ["lib/a.ex", "mix.exs"]);
    // A `.git` file that names no gitdir: no info/exclude.
    fs::write(dir.path().join("wt/.git"), "not a gitfile\n").unwrap();
    assert_eq!(list(&dir.path().join("wt")), ["dev.local", "lib/a.ex", "mix.exs"]);
}

#[test]
fn a_nested_repository_is_a_boundary() {
    let dir = tree(&[
        ("mix.exs", ""),
        (".gitignore", "*.ez\n"),
        ("a.ez", ""),
        ("vendor/c.tmp", ""),
        ("vendor/lib/.git/info/exclude", "*.tmp\n"),
        ("vendor/lib/.gitignore", "/cache/\n"),
        ("vendor/lib/b.ez", ""),
        ("vendor/lib/c.tmp", ""),
        ("vendor/lib/cache/d", ""),
        ("vendor/lib/src/e.erl", ""),
    ]);
    assert_eq!(
        list(dir.path()),
        [".gitignore", "mix.exs", "vendor/c.tmp", "vendor/lib/.gitignore", "vendor/lib/b.ez", "vendor/lib/src/e.erl"]
    );
}

#[test]
fn a_file_is_source_only_when_neither_dockerignore_nor_gitignore_leaves_it_out() {
    let dir = tree(&[
        ("mix.exs", ""),
        (".gitignore", "/priv/static/assets/\n*.log\n!important.log\n"),
        // `!` only takes back the file's own exclusions.
        (".dockerignore", "*.md\n!README.md\nimportant.log\n!priv/static/assets\n"),
        ("README.md", ""),
        ("NOTES.md", ""),
        ("debug.log", ""),
        ("important.log", ""),
        ("priv/static/assets/app.js", ""),
        ("priv/static/robots.txt", ""),
        ("lib/a.ex", ""),
    ]);
    assert_eq!(
        list(dir.path()),
        [".dockerignore", ".gitignore", "README.md", "lib/a.ex", "mix.exs", "priv/static/robots.txt"]
    );
}

#[test]
fn include_gitignored_is_the_escape_hatch() {
    let dir = tree(PHOENIX_FILES);
    write(
        dir.path(),
        &[(".dockerignore", "priv/static/assets/*.css\n"), ("_build/prod/x", ""), ("deps/a/mix.exs", "")],
    );
    let project = Project::open(dir.path()).unwrap();
    let project = project.include_gitignored(["priv/static/assets", "tmp", "!tmp/*.db"]).unwrap();
    let files = names(project.source_files().unwrap());
    assert!(files.contains(&"priv/static/assets/app.js".to_string()), "{files:?}");
    // .dockerignore still applies; so does git, where the patterns do not reach.
    for out in ["priv/static/assets/app.css", "tmp/test.db", "hello_tool-0.1.0.ez", "npm-debug.log"] {
        assert!(!files.contains(&out.to_string()), "{out} in {files:?}");
    }
    // `**`: git's rules are off; the built-in exclusions stay.
    let files = names(project.include_gitignored(["**"]).unwrap().source_files().unwrap());
    assert_eq!(
        files,
        [
            ".dockerignore",
            ".gitignore",
            "assets/js/app.js",
            "assets/npm-debug.log",
            "config/config.exs",
            "cover/index.html",
            "doc/index.html",
            "erl_crash.dump",
            "hello-0.1.0.tar",
            "hello_tool-0.1.0.ez",
            "lib/hello.ex",
            "lib/priv/static/assets/kept.ex",
            "lib/tmp/kept.ex",
            "mix.exs",
            "mix.lock",
            "npm-debug.log",
            "priv/gettext/default.pot",
            "priv/static/assets/app.js",
            "priv/static/cache_manifest.json",
            "priv/static/favicon.ico",
            "priv/static/images/logo.svg",
            "tmp/test.db",
            "vendor/tools/other.ez",
        ]
    );
}

#[test]
fn bad_patterns_are_named_with_their_file() {
    let dir = tree(&[("mix.exs", ""), ("lib/.gitignore", "# ok\n[z-a].ex\n")]);
    let err = source_files(dir.path(), &[]).unwrap_err();
    let ProjectError::GitIgnore { path, message } = &err else { panic!("expected GitIgnore, got {err}") };
    assert_eq!(path, &dir.path().join("lib/.gitignore"));
    assert!(message.starts_with("line 2: ") && message.contains("[z-a]"), "{message}");
    let project = Project::open(dir.path()).unwrap();
    let err = project.clone().include_gitignored(["a{b"]).unwrap_err();
    assert!(matches!(err, ProjectError::IncludeGitignored { .. }), "{err:?}");
    assert!(err.to_string().contains("a{b"), "{err}");
    let err = project.include_gitignored(["a\nb"]).unwrap_err();
    assert!(err.to_string().contains("more than one line"), "{err}");
}

#[test]
fn braces_are_literal_and_a_symlinked_gitignore_is_not_followed() {
    let dir = tree(&[
        ("mix.exs", ""),
        (".gitignore", "/{a,b}.log\n"),
        ("{a,b}.log", ""),
        ("a.log", ""),
        ("rules", "*.ex\n"),
        ("lib/x.ex", ""),
    ]);
    std::os::unix::fs::symlink("../rules", dir.path().join("lib/.gitignore")).unwrap();
    assert_eq!(list(dir.path()), [".gitignore", "a.log", "lib/.gitignore", "lib/x.ex", "mix.exs", "rules"]);
    assert_eq!(literal_braces("*.ex"), "*.ex");
    assert_eq!(literal_braces("{a,b}"), "\\{a,b\\}");
    assert_eq!(literal_braces("\\{a[{}]}"), "\\{a[{}]\\}");
    assert_eq!(literal_braces("[]{]{"), "[]{]\\{");
    assert_eq!(literal_braces("[!]{]x"), "[!]{]x");
    assert_eq!(literal_braces("[{x"), "[\\{x");
}
