//! The YAML that `resolve` reads (`-f FILE`, `-f DIR`, `-f -`) and how it is printed back.

use super::ResolveError;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One YAML stream: a file or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The path as given (or `<stdin>`), for messages.
    pub name: String,
    pub text: String,
}

/// Reads each input in order: `-` is standard input; a directory gives its `*.yaml` and `*.yml`
/// files (not its subdirectories) sorted by name; anything else is read as a file.
pub fn read_inputs(inputs: &[PathBuf]) -> Result<Vec<Source>, ResolveError> {
    let mut out = Vec::new();
    for input in inputs {
        if input.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| ResolveError::Read { path: input.clone(), source })?;
            out.push(Source { name: "<stdin>".to_string(), text });
        } else if input.is_dir() {
            let files = yaml_files(input)?;
            if files.is_empty() {
                return Err(ResolveError::EmptyDir { path: input.clone() });
            }
            for f in files {
                out.push(read_file(&f)?);
            }
        } else {
            out.push(read_file(input)?);
        }
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<Source, ResolveError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ResolveError::Read { path: path.to_path_buf(), source })?;
    Ok(Source { name: path.display().to_string(), text })
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, ResolveError> {
    let read = |source| ResolveError::Read { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The sources as one YAML stream: each ends with a line break, and a `---` line separates two
/// of them unless the next one starts with its own.
pub fn join(sources: &[Source]) -> String {
    let mut out = String::new();
    for (i, src) in sources.iter().enumerate() {
        if i > 0 && !starts_with_document_marker(&src.text) {
            out.push_str("---\n");
        }
        out.push_str(&src.text);
        if !src.text.is_empty() && !src.text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn starts_with_document_marker(text: &str) -> bool {
    text.strip_prefix("---").is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
}
