//! The ERTS and Erlang/OTP directories compile-once reads out of the builder images, kept on this
//! machine by image id (`CACHE/image-files/<id>/<dir>`): an image id names its content, so a
//! directory read once is the same on every later build and is not read again (1-1.5 s a build
//! for hello_web). Each directory arrives whole or not at all (unpacked beside it, then renamed
//! into place); splicing only reads them. `release-oci cache prune` (without `--project`) removes
//! them all.

use std::path::{Path, PathBuf};

/// Where the files of the image `image_id` (`sha256:…`) are kept under the cache directory
/// `cache`; None for an id that is not a plain digest (then nothing is kept).
pub fn tree(cache: &Path, image_id: &str) -> Option<PathBuf> {
    let hex = image_id.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| cache.join("image-files").join(hex))
}

/// Removes every kept directory; the path when there was something to remove.
pub fn forget(cache: &Path) -> std::io::Result<Option<PathBuf>> {
    let dir = cache.join("image-files");
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(Some(dir)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Unpacks `tar` (a directory as the engine's archive API sends it: entries under its last
/// component) as `tree/dir`, through a staging directory beside it renamed into place; a `dir`
/// another build put there first is kept.
pub fn put(tree: &Path, dir: &str, tar: &[u8]) -> Result<(), super::CrossError> {
    let io = |path: &Path, source| super::CrossError::Io {
        action: "cannot keep files in",
        path: path.to_path_buf(),
        source,
    };
    let dest = tree.join(dir);
    let parent = dest.parent().unwrap_or(tree);
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let staging = tempfile::Builder::new().prefix(".partial-").tempdir_in(parent).map_err(|e| io(parent, e))?;
    super::unpack(tar, staging.path())?;
    let name = dest.file_name().unwrap_or_default();
    match std::fs::rename(staging.path().join(name), &dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.is_dir() => Ok(()),
        Err(e) => Err(io(&dest, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(dir: &str, file: &str, body: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, format!("{dir}/{file}"), body).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn a_directory_arrives_whole_and_the_first_one_stays() {
        let cache = tempfile::tempdir().unwrap();
        let id = format!("sha256:{}", "a".repeat(64));
        let tree = tree(cache.path(), &id).unwrap();
        assert_eq!(tree, cache.path().join("image-files").join("a".repeat(64)));
        put(&tree, "lib/kernel-8.5", &tar_of("kernel-8.5", "ebin/kernel.app", b"first")).unwrap();
        put(&tree, "lib/kernel-8.5", &tar_of("kernel-8.5", "ebin/kernel.app", b"second")).unwrap();
        assert_eq!(std::fs::read(tree.join("lib/kernel-8.5/ebin/kernel.app")).unwrap(), b"first");
        let left: Vec<_> = std::fs::read_dir(tree.join("lib")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["kernel-8.5"], "no staging directory is left");
        assert_eq!(forget(cache.path()).unwrap(), Some(cache.path().join("image-files")));
        assert!(!tree.exists());
        assert_eq!(forget(cache.path()).unwrap(), None);
    }

    #[test]
    fn only_a_digest_names_a_tree() {
        let cache = Path::new("/c");
        assert!(tree(cache, "").is_none());
        assert!(tree(cache, "sha256:../../etc").is_none());
        assert!(tree(cache, &format!("sha512:{}", "a".repeat(64))).is_none());
    }
}
