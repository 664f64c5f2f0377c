//! The deterministic source tar: the same files with the same contents and modes give the same
//! bytes, whatever their owners, timestamps or the order the filesystem lists them in.

use super::ProjectError;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tar::{Builder, EntryType, Header};

const DIR_MODE: u32 = 0o755;
const EXEC_MODE: u32 = 0o755;
const FILE_MODE: u32 = 0o644;
const LINK_MODE: u32 = 0o777;

/// Writes `files` (relative to `root`, sorted) under `prefix`, each preceded by the directories
/// that hold it (once).
pub(super) fn write<W: Write>(root: &Path, files: &[PathBuf], prefix: &Path, w: W) -> Result<W, ProjectError> {
    let mut builder = Builder::new(w);
    let mut dirs_written = BTreeSet::new();
    for rel in files {
        let source = root.join(rel);
        let target = prefix.join(rel);
        let fail = |source_err: std::io::Error| ProjectError::Tar { path: source.clone(), source: source_err };
        for dir in parents(&target) {
            if dirs_written.insert(dir.clone()) {
                let mut h = header(EntryType::Directory, DIR_MODE, 0);
                builder.append_data(&mut h, &dir, std::io::empty()).map_err(fail)?;
            }
        }
        let meta = std::fs::symlink_metadata(&source).map_err(fail)?;
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&source).map_err(fail)?;
            let mut h = header(EntryType::Symlink, LINK_MODE, 0);
            builder.append_link(&mut h, &target, &link).map_err(fail)?;
        } else {
            // Streamed (the tar crate copies through a small buffer): a large asset is never
            // held in memory whole.
            let file = std::fs::File::open(&source).map_err(fail)?;
            let meta = file.metadata().map_err(fail)?;
            let mode = if meta.permissions().mode() & 0o111 != 0 { EXEC_MODE } else { FILE_MODE };
            let mut h = header(EntryType::Regular, mode, meta.len());
            let content = Exact { file, left: meta.len() };
            builder.append_data(&mut h, &target, content).map_err(fail)?;
        }
    }
    builder.into_inner().map_err(|source| ProjectError::Tar { path: root.to_path_buf(), source })
}

/// The `left` bytes of a file whose size went into its tar header: a file that shrinks or grows
/// while it is read is an error, not an entry whose size and content disagree.
struct Exact {
    file: std::fs::File,
    left: u64,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.file.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other("the file grew while it was read: build again")),
            };
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 && want > 0 {
            let e = "the file shrank while it was read: build again";
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// `a/b/c` → `a`, `a/b` (the directories above a path, outermost first).
fn parents(path: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        path.ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf).collect();
    dirs.reverse();
    dirs
}

#[cfg(test)]
mod tests {
    use crate::project::Project;
    use std::fs;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    fn entries(bytes: &[u8]) -> Vec<(String, tar::EntryType, u32, u64, String)> {
        let mut archive = tar::Archive::new(bytes);
        let mut out = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let h = e.header().clone();
            let mut content = String::new();
            if let Some(link) = e.link_name().unwrap() {
                content = link.to_string_lossy().into_owned();
            } else {
                e.read_to_string(&mut content).unwrap();
            }
            out.push((path, h.entry_type(), h.mode().unwrap(), h.mtime().unwrap(), content));
        }
        out
    }

    #[test]
    fn tar_is_deterministic_with_links_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("mix.exs"), "defmodule X do end").unwrap();
        fs::create_dir_all(root.join("rel/overlays/bin")).unwrap();
        fs::write(root.join("rel/overlays/bin/server"), "#!/bin/sh").unwrap();
        fs::set_permissions(root.join("rel/overlays/bin/server"), fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("../mix.exs", root.join("rel/link")).unwrap();
        let p = Project::open(root).unwrap();
        let a = p.write_source_tar(Vec::new()).unwrap();
        let b = p.write_source_tar(Vec::new()).unwrap();
        assert_eq!(a, b);
        use tar::EntryType::{Directory, Regular, Symlink};
        assert_eq!(
            entries(&a),
            [
                ("mix.exs".into(), Regular, 0o644, 0, "defmodule X do end".into()),
                ("rel".into(), Directory, 0o755, 0, String::new()),
                ("rel/link".into(), Symlink, 0o777, 0, "../mix.exs".into()),
                ("rel/overlays".into(), Directory, 0o755, 0, String::new()),
                ("rel/overlays/bin".into(), Directory, 0o755, 0, String::new()),
                ("rel/overlays/bin/server".into(), Regular, 0o755, 0, "#!/bin/sh".into()),
            ]
        );
        let prefixed = p.write_source_tar_under(Vec::new(), std::path::Path::new("build/src")).unwrap();
        let names: Vec<String> = entries(&prefixed).into_iter().map(|e| e.0).collect();
        assert_eq!(&names[..3], ["build", "build/src", "build/src/mix.exs"]);
    }

    /// Counts what is written, keeps nothing.
    struct Counter(u64);

    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A 200 MB file (sparse: no disk used) goes into the tar through a small buffer: the peak
    /// memory of a process that writes the tar grows by far less than the file (it grew by the
    /// whole file when each file was read into memory first).
    #[test]
    fn a_large_file_is_streamed_into_the_tar_not_read_whole() {
        use crate::builder::memory_probe;
        const SIZE: u64 = 200 << 20;
        if memory_probe::child(|dir| Project::open(dir).unwrap().write_source_tar(Counter(0)).unwrap().0) {
            return;
        }
        let dir = memory_probe::project_with_large_file(SIZE);
        let name = "project::archive::tests::a_large_file_is_streamed_into_the_tar_not_read_whole";
        let (grown, written) = memory_probe::run_child(name, dir.path());
        assert!(written > SIZE, "the tar has {written} bytes");
        assert!(grown < 16 << 20, "the peak memory grew by {grown} bytes writing a tar of {written}");
    }
}
