//! The native builder's release made the target's: each file of its ERTS and Erlang/OTP
//! directories is compared with the same file in the two builder images' Erlang/OTP, and
//! - copied unchanged by `mix release` (the native image's bytes): the target image's file takes
//!   its place (ELF programs and NIFs, but also anything else the installation has per machine);
//! - changed by `mix release` (`.beam` files stripped of their debug chunks, start scripts): kept,
//!   when the two images' originals are the same bytes (the same input gives the same output);
//! - made by `mix release` (no original): kept.
//!
//! Anything else (a changed file whose originals differ, a file only one image has) is an error
//! that names the file: the release would not be what the target's builder makes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

#[derive(Debug, thiserror::Error)]
pub enum SpliceError {
    #[error("{path}: the target's builder image has no such file in its Erlang/OTP (the native builder's has)")]
    MissingInTarget { path: PathBuf },
    #[error("{path}: the native builder image has no such file, the target's has")]
    MissingInNative { path: PathBuf },
    #[error(
        "{path}: mix release changed this file, and its originals differ between the builder images: the \
         target's builder would make another one"
    )]
    Differs { path: PathBuf },
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

/// The three trees: the release, and each image's Erlang/OTP root (`erts-VSN/`, `lib/NAME-VSN/`).
pub struct Trees<'a> {
    pub release: &'a Path,
    pub native: &'a Path,
    pub target: &'a Path,
}

/// What the splice did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Spliced {
    /// Files now the target image's.
    pub replaced: usize,
    /// Files mix release changed or made, the same for both machines.
    pub kept: usize,
    /// Bytes of the target's files written.
    pub bytes: u64,
}

/// Splices `dirs` (relative to the release root: `erts-13.1.5`, `lib/crypto-5.1.2`).
pub fn splice(trees: &Trees<'_>, dirs: &[String]) -> Result<Spliced, SpliceError> {
    let mut done = Spliced::default();
    for dir in dirs {
        let walk = WalkDir::new(trees.release.join(dir)).follow_links(false).sort_by_file_name();
        for item in walk {
            let item = item.map_err(|e| SpliceError::Io {
                action: "cannot list",
                path: e.path().unwrap_or(trees.release).to_path_buf(),
                source: e.into(),
            })?;
            if !item.file_type().is_file() {
                continue;
            }
            let rel = item.path().strip_prefix(trees.release).unwrap_or(item.path()).to_path_buf();
            splice_file(trees, &rel, &mut done)?;
        }
    }
    Ok(done)
}

/// One file of the release, `rel` from its root.
fn splice_file(trees: &Trees<'_>, rel: &Path, done: &mut Spliced) -> Result<(), SpliceError> {
    let release = trees.release.join(rel);
    let ours = read(&release)?.unwrap_or_default();
    let native = read(&trees.native.join(rel))?;
    let target = read(&trees.target.join(rel))?;
    match (native, target) {
        (Some(n), Some(t)) if n == ours => {
            if t != ours {
                replace(&release, &t)?;
            }
            done.replaced += 1;
            done.bytes += t.len() as u64;
        }
        (Some(_), None) => return Err(SpliceError::MissingInTarget { path: rel.to_path_buf() }),
        (None, Some(_)) => return Err(SpliceError::MissingInNative { path: rel.to_path_buf() }),
        (Some(n), Some(t)) if n != t => return Err(SpliceError::Differs { path: rel.to_path_buf() }),
        // Changed by mix from the same original, or made by it.
        _ => done.kept += 1,
    }
    Ok(())
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, SpliceError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SpliceError::Io { action: "cannot read", path: path.to_path_buf(), source }),
    }
    fs::read(path).map(Some).map_err(|source| SpliceError::Io {
        action: "cannot read",
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` in place of `path` (a new file renamed over it: a hard link elsewhere keeps the
/// old bytes), with the mode `path` had.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), SpliceError> {
    let io = |action, source| SpliceError::Io { action, path: path.to_path_buf(), source };
    let mode = fs::symlink_metadata(path).map_err(|e| io("cannot read", e))?.permissions().mode();
    let tmp = path.with_file_name(format!(
        ".{}.target",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    fs::write(&tmp, bytes).map_err(|e| io("cannot write", e))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(|e| io("cannot write", e))?;
    fs::rename(&tmp, path).map_err(|e| io("cannot replace", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture { dir: tempfile::tempdir().unwrap() }
        }
        fn put(&self, tree: &str, rel: &str, bytes: &[u8]) {
            let p = self.dir.path().join(tree).join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, bytes).unwrap();
        }
        fn get(&self, tree: &str, rel: &str) -> Vec<u8> {
            fs::read(self.dir.path().join(tree).join(rel)).unwrap()
        }
        fn run(&self, dirs: &[&str]) -> Result<Spliced, SpliceError> {
            let (r, n, t) = (self.dir.path().join("rel"), self.dir.path().join("n"), self.dir.path().join("t"));
            for d in [&r, &n, &t] {
                fs::create_dir_all(d).unwrap();
            }
            let dirs: Vec<String> = dirs.iter().map(|d| d.to_string()).collect();
            splice(&Trees { release: &r, native: &n, target: &t }, &dirs)
        }
    }

    #[test]
    fn copied_files_become_the_targets_changed_and_made_ones_stay() {
        let f = Fixture::new();
        // beam.smp: copied by mix (the native image's bytes) → the target's.
        f.put("rel", "erts-1/bin/beam.smp", b"\x7fELF x86");
        f.put("n", "erts-1/bin/beam.smp", b"\x7fELF x86");
        f.put("t", "erts-1/bin/beam.smp", b"\x7fELF arm");
        // A stripped .beam: changed by mix, same originals → kept.
        f.put("rel", "lib/kernel-8/ebin/k.beam", b"stripped");
        f.put("n", "lib/kernel-8/ebin/k.beam", b"full");
        f.put("t", "lib/kernel-8/ebin/k.beam", b"full");
        // Made by mix: kept.
        f.put("rel", "erts-1/bin/start.boot", b"made");
        // Not in the release: left alone.
        f.put("t", "lib/kernel-8/src/k.erl", b"source");
        let done = f.run(&["erts-1", "lib/kernel-8"]).unwrap();
        assert_eq!((done.replaced, done.kept, done.bytes), (1, 2, 8));
        assert_eq!(f.get("rel", "erts-1/bin/beam.smp"), b"\x7fELF arm");
        assert_eq!(f.get("rel", "lib/kernel-8/ebin/k.beam"), b"stripped");
        assert!(!f.dir.path().join("rel/lib/kernel-8/src").exists());
    }

    #[test]
    fn a_changed_file_with_differing_originals_and_a_missing_file_are_named() {
        let f = Fixture::new();
        f.put("rel", "lib/crypto-5/ebin/c.beam", b"stripped");
        f.put("n", "lib/crypto-5/ebin/c.beam", b"full x86");
        f.put("t", "lib/crypto-5/ebin/c.beam", b"full arm");
        let e = f.run(&["lib/crypto-5"]).unwrap_err().to_string();
        assert!(e.starts_with("lib/crypto-5/ebin/c.beam: mix release changed"), "{e}");

        let f = Fixture::new();
        f.put("rel", "lib/crypto-5/priv/lib/crypto.so", b"\x7fELF x86");
        f.put("n", "lib/crypto-5/priv/lib/crypto.so", b"\x7fELF x86");
        let e = f.run(&["lib/crypto-5"]).unwrap_err().to_string();
        assert!(e.starts_with("lib/crypto-5/priv/lib/crypto.so: the target's builder image has no such file"), "{e}");
    }

    #[test]
    fn the_mode_stays_and_a_hard_link_keeps_its_bytes() {
        let f = Fixture::new();
        f.put("rel", "erts-1/bin/epmd", b"x86");
        f.put("n", "erts-1/bin/epmd", b"x86");
        f.put("t", "erts-1/bin/epmd", b"arm");
        let path = f.dir.path().join("rel/erts-1/bin/epmd");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let link = f.dir.path().join("cached-epmd");
        fs::hard_link(&path, &link).unwrap();
        f.run(&["erts-1"]).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"arm");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(fs::read(&link).unwrap(), b"x86");
    }
}
