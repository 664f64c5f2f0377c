//! What a warm builder is for ([`WarmKey`]): everything that, changed, makes a fresh one
//! necessary. The project's build files (`mix.exs`, `mix.lock`, `rebar.config`, `rebar.lock`
//! anywhere in the sources, so umbrella apps and path deps too) and its `config/` files, by
//! content; the builder image's id; the build settings (the container's whole environment, its
//! limits, the builder's input files by content), the build script (with the Mix server) of this
//! binary. Hashed as named, length-prefixed parts.

use crate::builder::input_files::InputFile;
use crate::builder::{BuildRequest, BuilderError};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

/// Bumped when what a warm builder holds changes shape: older ones are then replaced.
const KEY_VERSION: &str = "warm-1";
/// The files whose change starts a fresh warm builder, by name, wherever they are.
const BUILD_FILES: &[&str] = &["mix.exs", "mix.lock", "rebar.config", "rebar.lock"];

/// The hash (64 hex digits) of what a warm builder is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmKey(pub String);

/// Named, length-prefixed parts into one sha256.
struct Parts(Sha256);

impl Parts {
    fn part(&mut self, name: &str, value: &[u8]) {
        for bytes in [name.as_bytes(), value] {
            self.0.update((bytes.len() as u64).to_le_bytes());
            self.0.update(bytes);
        }
    }
}

/// Whether the source file `rel` (relative to the project root) is one whose change starts a
/// fresh warm builder: a build file by name, or a file under a `config` directory.
pub fn is_key_file(rel: &Path) -> bool {
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    BUILD_FILES.contains(&name) || rel.parent().is_some_and(|p| p.components().any(|c| c.as_os_str() == "config"))
}

impl WarmKey {
    /// The key of `req` on builder image `image_id`, with `env` (the warm container's environment)
    /// and `inputs` (the builder's input files). Blocking: reads the key files.
    pub fn of(
        req: &BuildRequest,
        image_id: &str,
        env: &[String],
        inputs: &[InputFile],
    ) -> Result<WarmKey, BuilderError> {
        let files = req.project.source_files()?;
        let mut p = Parts(Sha256::new());
        p.part("version", KEY_VERSION.as_bytes());
        p.part("project", req.project.root.to_string_lossy().as_bytes());
        p.part("builder_image_id", image_id.as_bytes());
        p.part("builder_image", req.builder_image.as_bytes());
        p.part("triple", req.triple.to_string().as_bytes());
        p.part("limits", format!("{:?}", req.limits).as_bytes());
        p.part("inputs", req.inputs.key_part().as_bytes());
        // The build script and the Mix server in it: a warm builder's server runs the version
        // of this binary that started it.
        p.part("script", crate::builder::ASSEMBLE_SH.as_bytes());
        p.part("exec", super::run::EXEC_SH.as_bytes());
        for e in env {
            p.part("env", e.as_bytes());
        }
        for f in inputs {
            p.part("input_file", f.path.as_bytes());
            p.part("input_mode", &f.mode.to_le_bytes());
            p.part("input_content", &f.content);
        }
        for rel in files.iter().filter(|f| is_key_file(f)) {
            p.part("file", rel.to_string_lossy().as_bytes());
            p.part("content", &read(&req.project.root.join(rel))?);
        }
        Ok(WarmKey(hex::encode(p.0.finalize())))
    }
}

/// A file's bytes, or its link target for a symlink (as the sources' tar has it).
fn read(path: &PathBuf) -> Result<Vec<u8>, BuilderError> {
    let io = |source| BuilderError::Io { action: "cannot read", path: path.clone(), source };
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    if meta.file_type().is_symlink() {
        return Ok(std::fs::read_link(path).map_err(io)?.to_string_lossy().into_owned().into_bytes());
    }
    std::fs::read(path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::Limits;

    fn request(root: &Path) -> BuildRequest {
        BuildRequest::for_test(root)
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn key_files_are_build_files_and_config() {
        for yes in [
            "mix.exs",
            "mix.lock",
            "apps/a/mix.exs",
            "libs/x/rebar.config",
            "config/runtime.exs",
            "apps/a/config/c.exs",
        ] {
            assert!(is_key_file(Path::new(yes)), "{yes}");
        }
        for no in ["lib/app.ex", "lib/config.ex", "priv/static/app.css", "config"] {
            assert!(!is_key_file(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn the_key_changes_with_build_files_config_image_and_settings_but_not_code() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "mix.exs", "defmodule A.MixProject do end");
        write(root, "lib/a.ex", "defmodule A do end");
        let key = |req: &BuildRequest, image: &str, env: &[String]| WarmKey::of(req, image, env, &[]).unwrap();
        let env = vec!["MIX_ENV=prod".to_string()];
        let req = request(root);
        let first = key(&req, "sha256:a", &env);
        assert_eq!(first.0.len(), 64);
        assert_eq!(key(&req, "sha256:a", &env), first, "the same inputs give the same key");
        write(root, "lib/a.ex", "defmodule A do def x, do: 1 end");
        assert_eq!(key(&req, "sha256:a", &env), first, "a code change keeps the warm builder");
        assert_ne!(key(&req, "sha256:b", &env), first, "another builder image");
        assert_ne!(key(&req, "sha256:a", &["MIX_ENV=dev".to_string()]), first, "another environment");
        let limited = BuildRequest { limits: Limits { memory: 1 << 30, pids: 10 }, ..request(root) };
        assert_ne!(key(&limited, "sha256:a", &env), first, "other limits");
        let files = [InputFile { path: "build/inputs/ca.pem".into(), content: b"x".to_vec(), mode: 0o444 }];
        assert_ne!(WarmKey::of(&req, "sha256:a", &env, &files).unwrap(), first, "an input file");
        let mut seen = vec![first];
        for (rel, text) in [("mix.lock", "%{}"), ("config/config.exs", "import Config"), ("mix.exs", "changed")] {
            write(root, rel, text);
            let k = key(&req, "sha256:a", &env);
            assert!(!seen.contains(&k), "{rel} changed, the key did not");
            seen.push(k);
        }
    }
}
