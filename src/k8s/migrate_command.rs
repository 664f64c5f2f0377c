//! Which command migrates the database, as the container's `args`. The image's entrypoint
//! (`tini -- release-oci-entry`, docs/runtime.md) takes a command of the release (`eval EXPR`)
//! or a path (`/app/bin/migrate`), so the Job never overrides `command`.
//!
//! Without a command given, the project's files decide, without running mix: the release's own
//! `bin/migrate` (the `rel/overlays/bin/migrate` that `mix phx.gen.release` writes, or
//! `bin/migrate` of the release directory the image is built from), else an `eval` of
//! `APP.Release.migrate/0` when the project defines that module (`lib/**/release.ex`).

use super::K8sError;
use std::path::{Path, PathBuf};

/// Where the release is in the image.
pub const APP_DIR: &str = "/app";

/// The release overlay `mix phx.gen.release` writes: it becomes the release's `bin/migrate`.
pub const MIGRATE_OVERLAY: &str = "rel/overlays/bin/migrate";

/// How deep under `lib/` a `release.ex` is looked for.
const MAX_DEPTH: usize = 8;

/// The container args of a command as written (`--migrate=COMMAND`, `migrate = "COMMAND"`):
/// `eval EXPR` and `rpc EXPR` keep the expression as one argument (without quotes around all of
/// it, as a shell would take them: a quoted expression would evaluate to a string and migrate
/// nothing), anything else is split at blanks (`/app/bin/migrate`, `bin/migrate --step 1`).
pub fn parse(command: &str) -> Result<Vec<String>, K8sError> {
    let bad = |reason: &str| K8sError::MigrateSyntax { command: command.to_string(), reason: reason.to_string() };
    let text = command.trim();
    let (first, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let rest = rest.trim();
    match first {
        "" => Err(bad("it is empty")),
        "eval" | "rpc" if rest.is_empty() => Err(bad("it has no expression after the command")),
        "eval" | "rpc" => Ok(vec![first.to_string(), unquote(rest).to_string()]),
        _ => Ok(text.split_whitespace().map(str::to_string).collect()),
    }
}

/// `'EXPR'` or `"EXPR"` → `EXPR` when the quotes enclose all of it.
fn unquote(expr: &str) -> &str {
    for q in ['\'', '"'] {
        if let Some(inner) = expr.strip_prefix(q).and_then(|e| e.strip_suffix(q))
            && !inner.is_empty()
            && !inner.contains(q)
        {
            return inner;
        }
    }
    expr
}

/// The default command for the project at `project` (and the release directory the image is
/// built from, when the project's `release-oci.toml` names one).
pub fn default_command(project: &Path, release_dir: Option<&Path>) -> Result<Vec<String>, K8sError> {
    let script =
        project.join(MIGRATE_OVERLAY).is_file() || release_dir.is_some_and(|dir| dir.join("bin/migrate").is_file());
    if script {
        return Ok(vec![format!("{APP_DIR}/bin/migrate")]);
    }
    match release_module(project) {
        Some(module) => Ok(vec!["eval".to_string(), format!("{module}.migrate()")]),
        None => Err(K8sError::NoMigrateCommand { project: project.to_path_buf() }),
    }
}

/// The first `defmodule X.Release` with a `def migrate` of arity 0 in a `release.ex` under the
/// project's `lib/` (or an umbrella's `apps/*/lib/`), in path order.
pub fn release_module(project: &Path) -> Option<String> {
    lib_dirs(project).into_iter().flat_map(release_files).find_map(|file| {
        let text = std::fs::read_to_string(file).ok()?;
        release_module_in(&text)
    })
}

/// `lib/` and, for an umbrella, each `apps/*/lib/`, sorted.
fn lib_dirs(project: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![project.join("lib")];
    if let Ok(apps) = std::fs::read_dir(project.join("apps")) {
        let mut more: Vec<PathBuf> = apps.filter_map(|e| Some(e.ok()?.path().join("lib"))).collect();
        more.sort();
        dirs.extend(more);
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

fn release_files(dir: PathBuf) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .max_depth(MAX_DEPTH)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.file_name() == "release.ex")
        .map(walkdir::DirEntry::into_path)
        .collect()
}

/// The module name when `text` defines `X.Release` and a `def migrate` of arity 0.
pub fn release_module_in(text: &str) -> Option<String> {
    let module = text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix("defmodule ")?;
        let name: String =
            rest.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || "_.".contains(*c)).collect();
        (name.ends_with(".Release") && name.starts_with(|c: char| c.is_ascii_uppercase())).then_some(name)
    })?;
    defines_migrate0(text).then_some(module)
}

/// `def migrate do`, `def migrate() do`, `def migrate, do: ...` (not `migrate(repo)` or
/// `migrate_all`).
fn defines_migrate0(text: &str) -> bool {
    text.match_indices("def migrate").any(|(i, m)| {
        let starts_word = text[..i].chars().next_back().is_none_or(char::is_whitespace);
        let after = &text[i + m.len()..];
        let after = after.strip_prefix("()").unwrap_or(after);
        starts_word && (after.is_empty() || after.starts_with(|c: char| c.is_whitespace() || c == ','))
    })
}
