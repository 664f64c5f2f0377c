//! One tar entry of a layer: its header (mode, owner, time; GNU long names and link names) and,
//! for a file, exactly the bytes it had when opened (a file that changes meanwhile fails the
//! layer rather than giving a tar that lies about its size).

use super::{Entry, EntryKind, LayerError, TarOptions};
use crate::digest::HashingWriter;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use tar::{EntryType, Header};

/// A layer's tar, hashed (the diff_id) as it is written.
pub(super) type TarOut<W> = tar::Builder<HashingWriter<W>>;

/// Appends `e` (its header: mode, owner, `opts.mtime`; a long name in a GNU long-name entry).
pub(super) fn append_entry<W: Write>(
    tar: &mut TarOut<W>,
    e: &Entry,
    opts: &TarOptions,
    layer: &str,
) -> Result<(), LayerError> {
    let write_err = |source| LayerError::Write { layer: layer.to_string(), source };
    let mut header = Header::new_gnu();
    header.set_mode(e.mode & 0o7777);
    header.set_uid(e.uid);
    header.set_gid(e.gid);
    header.set_mtime(opts.mtime);
    header.set_size(0);
    let mut name = e.path.as_bytes().to_vec();
    match &e.kind {
        EntryKind::Dir => {
            header.set_entry_type(EntryType::Directory);
            name.push(b'/');
            set_name(tar, &mut header, &name).map_err(write_err)?;
            header.set_cksum();
            tar.append(&header, io::empty()).map_err(write_err)
        }
        EntryKind::Bytes(bytes) => {
            header.set_entry_type(EntryType::Regular);
            header.set_size(bytes.len() as u64);
            set_name(tar, &mut header, &name).map_err(write_err)?;
            header.set_cksum();
            tar.append(&header, bytes.as_slice()).map_err(write_err)
        }
        EntryKind::Symlink { target } => append_symlink(tar, header, &name, target.as_os_str().as_bytes(), e, layer),
        EntryKind::File { source } => append_file(tar, header, &name, source, layer),
    }
}

/// A symlink entry: `header` (mode, owner, time set) named `name`, pointing at `target`.
fn append_symlink<W: Write>(
    tar: &mut TarOut<W>,
    mut header: Header,
    name: &[u8],
    target: &[u8],
    e: &Entry,
    layer: &str,
) -> Result<(), LayerError> {
    let write_err = |source| LayerError::Write { layer: layer.to_string(), source };
    if target.is_empty() || target.contains(&0) {
        return Err(LayerError::InvalidPath {
            path: e.path.clone(),
            reason: "has an empty symlink target or one with NUL",
        });
    }
    header.set_entry_type(EntryType::Symlink);
    set_name(tar, &mut header, name).map_err(write_err)?;
    set_link_name(tar, &mut header, target).map_err(write_err)?;
    header.set_cksum();
    tar.append(&header, io::empty()).map_err(write_err)
}

/// A regular file's entry, its bytes read from `source`: exactly the size it had when opened (a
/// file that changes meanwhile fails the layer).
fn append_file<W: Write>(
    tar: &mut TarOut<W>,
    mut header: Header,
    name: &[u8],
    source: &Path,
    layer: &str,
) -> Result<(), LayerError> {
    let write_err = |source| LayerError::Write { layer: layer.to_string(), source };
    let file = File::open(source).map_err(|err| LayerError::io(source, err))?;
    let meta = file.metadata().map_err(|err| LayerError::io(source, err))?;
    if !meta.is_file() {
        return Err(LayerError::UnsupportedFileType { path: source.to_path_buf(), kind: "directory or special file" });
    }
    header.set_entry_type(EntryType::Regular);
    header.set_size(meta.len());
    set_name(tar, &mut header, name).map_err(write_err)?;
    header.set_cksum();
    let mut reader = ExactReader { inner: file, remaining: meta.len(), problem: None };
    match tar.append(&header, &mut reader) {
        Ok(()) => Ok(()),
        Err(err) => Err(match reader.problem.take() {
            Some(Problem::Read(source_err)) => LayerError::io(source, source_err),
            Some(Problem::Shrunk) => {
                LayerError::SourceChanged { layer: layer.to_string(), source_path: source.to_path_buf() }
            }
            None => write_err(err),
        }),
    }
}

const NAME_LEN: usize = 100;

/// Puts `name` in the header, preceded by a GNU long-name entry when it does not fit.
fn set_name<W: Write>(tar: &mut TarOut<W>, header: &mut Header, name: &[u8]) -> io::Result<()> {
    if name.len() > NAME_LEN {
        long_entry(tar, b'L', name)?;
    }
    let field = &mut header.as_old_mut().name;
    let n = name.len().min(NAME_LEN);
    field.fill(0);
    field[..n].copy_from_slice(&name[..n]);
    Ok(())
}

/// Puts a symlink target in the header, preceded by a GNU long-link entry when it does not fit.
fn set_link_name<W: Write>(tar: &mut TarOut<W>, header: &mut Header, target: &[u8]) -> io::Result<()> {
    if target.len() > NAME_LEN {
        long_entry(tar, b'K', target)?;
    }
    let field = &mut header.as_old_mut().linkname;
    let n = target.len().min(NAME_LEN);
    field.fill(0);
    field[..n].copy_from_slice(&target[..n]);
    Ok(())
}

/// A GNU `././@LongLink` entry (as GNU tar and the tar crate write it, with fixed metadata).
fn long_entry<W: Write>(tar: &mut TarOut<W>, kind: u8, data: &[u8]) -> io::Result<()> {
    let mut h = Header::new_gnu();
    let name = b"././@LongLink";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64 + 1);
    h.set_entry_type(EntryType::new(kind));
    h.set_cksum();
    tar.append(&h, data.chain(&[0u8][..]))
}

enum Problem {
    Read(io::Error),
    Shrunk,
}

/// Reads exactly `remaining` bytes of a source file: fewer is an error (the file shrank while
/// being written), more are not read. Remembers why it failed, so that the error can name the file.
struct ExactReader {
    inner: File,
    remaining: u64,
    problem: Option<Problem>,
}

impl Read for ExactReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let max = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..max]) {
            Ok(0) => {
                self.problem = Some(Problem::Shrunk);
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "source file shrank"))
            }
            Ok(n) => {
                self.remaining -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let msg = e.to_string();
                self.problem = Some(Problem::Read(e));
                Err(io::Error::other(msg))
            }
        }
    }
}
