//! What goes into the gathering container: the release's ELF files and what the host gives
//! besides, as one tar owned by the build user.

use super::{CrossError, ELF_GROUPS_GIVEN, GO, NATIVE_BUSYBOX, OUT, UPLOAD_DIR};
use std::path::{Path, PathBuf};

/// The files the host gives the gathering besides the release's ELF files.
pub(super) struct Given {
    pub busybox: Option<Vec<u8>>,
    pub elf_groups: Option<Vec<u8>>,
    /// The `go` file, last: the script goes on once it is there.
    pub go: bool,
}

/// A tar of the ELF files under `rel` (and their directories) at `release-oci-gather/out/rel/`,
/// and of what else is `given` (a busybox at `NATIVE_BUSYBOX`, the groups at `ELF_GROUPS_GIVEN`,
/// then `GO`), owned by the build user; `release-oci-gather/` is always in it.
pub(super) fn upload_tar(rel: Option<&Path>, given: &Given) -> Result<Vec<u8>, CrossError> {
    let io = |path: &Path, source| CrossError::Io { action: "cannot read", path: path.to_path_buf(), source };
    let in_upload = |at: &str| PathBuf::from(at.strip_prefix(&format!("{UPLOAD_DIR}/")).unwrap_or(at));
    let mut dirs = std::collections::BTreeSet::new();
    dirs.insert(in_upload(GO).parent().map(Path::to_path_buf).unwrap_or_default());
    let mut files = match rel {
        Some(rel) => elf_files(rel, &in_upload(OUT).join("rel"), &mut dirs)?,
        None => Vec::new(),
    };
    let go = given.go.then(Vec::new);
    let uploaded =
        [(NATIVE_BUSYBOX, &given.busybox, 0o755), (ELF_GROUPS_GIVEN, &given.elf_groups, 0o644), (GO, &go, 0o644)];
    for (at, bytes, mode) in uploaded {
        let Some(bytes) = bytes else { continue };
        let path = in_upload(at);
        dirs.extend(path.parent().map(Path::to_path_buf));
        files.push((path, bytes.clone(), mode));
    }
    let header = crate::builder::build_user_header;
    let write = |e: std::io::Error| io(rel.unwrap_or(Path::new(UPLOAD_DIR)), e);
    let mut b = tar::Builder::new(Vec::new());
    for dir in dirs.iter().filter(|d| !d.as_os_str().is_empty()) {
        let mut h = header(tar::EntryType::Directory, 0, 0o755);
        b.append_data(&mut h, dir, std::io::empty()).map_err(write)?;
    }
    for (path, bytes, mode) in files {
        let mut h = header(tar::EntryType::Regular, bytes.len() as u64, mode & 0o7777);
        b.append_data(&mut h, &path, bytes.as_slice()).map_err(write)?;
    }
    b.into_inner().map_err(write)
}

type File = (PathBuf, Vec<u8>, u32);

/// The ELF files under `rel`, at `prefix` (their directories added to `dirs`).
fn elf_files(
    rel: &Path,
    prefix: &Path,
    dirs: &mut std::collections::BTreeSet<PathBuf>,
) -> Result<Vec<File>, CrossError> {
    let io = |path: &Path, source| CrossError::Io { action: "cannot read", path: path.to_path_buf(), source };
    for ancestor in prefix.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        dirs.insert(ancestor.to_path_buf());
    }
    let mut files = Vec::new();
    for item in walkdir::WalkDir::new(rel).follow_links(false).sort_by_file_name() {
        let item = item.map_err(|e| io(rel, e.into()))?;
        if !item.file_type().is_file() {
            continue;
        }
        let bytes = std::fs::read(item.path()).map_err(|e| io(item.path(), e))?;
        if !bytes.starts_with(b"\x7fELF") {
            continue;
        }
        let relative = prefix.join(item.path().strip_prefix(rel).unwrap_or(item.path()));
        for ancestor in relative.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
            dirs.insert(ancestor.to_path_buf());
        }
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &item.metadata().map_err(|e| io(item.path(), e.into()))?.permissions(),
        );
        files.push((relative, bytes, mode));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::super::GATHER_SH;
    use super::*;

    #[test]
    fn only_the_elf_files_go_up_owned_by_the_build_user() {
        let dir = tempfile::tempdir().unwrap();
        let rel = dir.path().join("rel");
        std::fs::create_dir_all(rel.join("erts-1/bin")).unwrap();
        std::fs::write(rel.join("erts-1/bin/beam.smp"), b"\x7fELF\x02").unwrap();
        std::fs::write(rel.join("erts-1/bin/start"), b"#!/bin/sh").unwrap();
        let given = Given {
            busybox: Some(b"busybox".to_vec()),
            elf_groups: Some(b"g1\terts-1/bin/beam.smp\n".to_vec()),
            go: true,
        };
        let tar = upload_tar(Some(&rel), &given).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.header().uid().unwrap())
            })
            .collect();
        let paths: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "release-oci-gather",
                "release-oci-gather/native",
                "release-oci-gather/out",
                "release-oci-gather/out/rel",
                "release-oci-gather/out/rel/erts-1",
                "release-oci-gather/out/rel/erts-1/bin",
                "release-oci-gather/out/rel/erts-1/bin/beam.smp",
                "release-oci-gather/native/busybox",
                "release-oci-gather/elf-groups",
                "release-oci-gather/go"
            ]
        );
        assert!(entries.iter().all(|(_, uid)| *uid == 10001));
        assert!(
            GATHER_SH.contains("MINIMAL_BASE")
                && GATHER_SH.ends_with("base >&3 || die \"cannot send the minimal base (tar failed)\"\n")
        );
    }
}
