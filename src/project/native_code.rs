//! Does a project carry native code (NIFs, ports, shared objects in `priv/`)? Decided from its
//! sources and its lock files before anything is built: compiling once on the native builder and
//! taking only ERTS and Erlang/OTP from the target's builder (docs/multi-platform.md) is right only
//! for a project whose compiled files are the same on every machine. The decision errs on the
//! side of native code (a root `Makefile` for tooling counts too): a wrong "native" costs an
//! emulated build, a wrong "none" is caught afterwards by the ELF check of the release.

use std::path::{Path, PathBuf};

/// Build tools and packages whose presence means a NIF or port is compiled or downloaded.
pub const NATIVE_BUILD_DEPS: &[&str] =
    &["elixir_make", "rustler", "rustler_precompiled", "cc_precompiler", "zigler", "bundlex", "unifex", "pc"];

/// Files whose presence means something is compiled outside the BEAM.
const BUILD_FILES: &[&str] = &["Makefile", "makefile", "GNUmakefile", "CMakeLists.txt", "Cargo.toml", "build.zig"];

/// One sign of native code, with where it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeSign {
    /// The file (relative to the project root) that shows it.
    pub path: PathBuf,
    pub what: String,
}

impl std::fmt::Display for NativeSign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

/// The signs of native code among `files` (relative to `root`, as [`super::Project::source_files`]
/// lists them), read from disk; empty: none.
pub fn scan_project(root: &Path, files: &[PathBuf]) -> Vec<NativeSign> {
    scan(files, &|rel: &Path| std::fs::read(root.join(rel)).ok())
}

/// The signs of native code among `files`; `read` gives a file's bytes (None: unreadable, then it
/// shows nothing).
pub fn scan(files: &[PathBuf], read: &dyn Fn(&Path) -> Option<Vec<u8>>) -> Vec<NativeSign> {
    let mut signs = Vec::new();
    let mut c_src_dirs = Vec::new();
    for rel in files {
        let sign = |what: String| NativeSign { path: rel.clone(), what };
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some(dir) = c_src_dir(rel) {
            if !c_src_dirs.contains(&dir) {
                signs.push(NativeSign {
                    path: dir.clone(),
                    what: "a c_src/ directory (C sources of a NIF or port)".into(),
                });
                c_src_dirs.push(dir);
            }
            continue;
        }
        if BUILD_FILES.contains(&name) {
            signs.push(sign(format!("a {name} (native code built outside the BEAM)")));
        } else if is_shared_object(name) {
            signs.push(sign("a shared object (a NIF or driver)".into()));
        } else if in_priv(rel) && read(rel).is_some_and(|b| b.starts_with(b"\x7fELF")) {
            signs.push(sign("an ELF program in priv/ (a port program)".into()));
        } else if let Some(text) = text_to_read(name).and_then(|_| read(rel)) {
            let text = String::from_utf8_lossy(&text);
            signs.extend(text_signs(name, &text).into_iter().map(sign));
        }
    }
    signs
}

/// The `c_src` directory `rel` is in, if any.
fn c_src_dir(rel: &Path) -> Option<PathBuf> {
    let mut dir = PathBuf::new();
    let parent = rel.parent()?;
    for c in parent.components() {
        dir.push(c);
        if c.as_os_str() == "c_src" {
            return Some(dir);
        }
    }
    None
}

fn in_priv(rel: &Path) -> bool {
    rel.parent().is_some_and(|p| p.components().any(|c| c.as_os_str() == "priv"))
}

/// `x.so`, `x.so.1`, `x.dylib`, `x.dll`, `x.a`, `x.o`.
fn is_shared_object(name: &str) -> bool {
    let ext = |e: &str| name.len() > e.len() && name.ends_with(e);
    ext(".so") || name.contains(".so.") || ext(".dylib") || ext(".dll") || ext(".a") || ext(".o")
}

/// Which of the files are read for text signs.
fn text_to_read(name: &str) -> Option<()> {
    let read = matches!(name, "mix.exs" | "mix.lock" | "rebar.config" | "rebar.lock")
        || name.ends_with(".ex")
        || name.ends_with(".erl");
    read.then_some(())
}

/// The signs in one text file, by its name.
fn text_signs(name: &str, text: &str) -> Vec<String> {
    let code = without_comments(text, if name.ends_with(".erl") || name.starts_with("rebar.") { '%' } else { '#' });
    match name {
        "mix.lock" | "rebar.lock" => lock_signs(&code),
        "mix.exs" => {
            let mut found: Vec<String> = NATIVE_BUILD_DEPS
                .iter()
                .filter(|d| code.contains(&format!("{{:{d},")) || code.contains(&format!("compilers: [:{d}")))
                .map(|d| format!("the dependency {d} (it builds or fetches native code)"))
                .collect();
            for (needle, what) in [("make_targets", "make_targets (elixir_make)"), ("use Rustler", "use Rustler")] {
                if code.contains(needle) {
                    found.push(format!("{what} (native code)"));
                }
            }
            found
        }
        "rebar.config" => {
            let mut found = Vec::new();
            if code.contains("port_specs") {
                found.push("port_specs (rebar's port compiler)".to_string());
            }
            if code.contains("{pc,") || code.contains("[pc]") || code.contains("[pc,") || code.contains(" pc]") {
                found.push("the pc plugin (rebar3's port compiler)".to_string());
            }
            if code.contains("\"make") {
                found.push("a make hook".to_string());
            }
            found
        }
        _ if code.contains("load_nif") => vec!["loads a NIF (load_nif)".to_string()],
        _ => Vec::new(),
    }
}

/// The signs in `mix.lock` (an entry per line, as mix writes it) or `rebar.lock`: an entry of a
/// native build tool, or a dependency on one. A Hex package whose build tools include `:make` is
/// no sign: cowboy, cowlib and ranch list it (erlang.mk) and are pure Erlang; a package that does
/// build native code that way is caught by the ELF check of the release.
fn lock_signs(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in code.lines() {
        let key = line.trim_start().strip_prefix('"').and_then(|l| l.split_once('"')).map(|(k, _)| k);
        // rebar.lock: {<<"jiffy">>,{pkg,<<"jiffy">>,<<"1.1.1">>},0}
        let key = key.or_else(|| line.split("<<\"").nth(1).and_then(|l| l.split_once('"')).map(|(k, _)| k));
        let Some(key) = key else { continue };
        if NATIVE_BUILD_DEPS.contains(&key) {
            found.push(format!("{key} is locked (it builds or fetches native code)"));
            continue;
        }
        if let Some(tool) = NATIVE_BUILD_DEPS.iter().find(|d| line.contains(&format!("hex: :{d},"))) {
            found.push(format!("{key} depends on {tool} (native code)"));
        }
    }
    found
}

/// `text` with line comments (from `marker` outside a string to the line's end) left out.
fn without_comments(text: &str, marker: char) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut prev = '\0';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_string = !in_string;
            }
            if c == marker && !in_string {
                break;
            }
            out.push(c);
            prev = c;
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[path = "native_code_tests.rs"]
mod tests;
