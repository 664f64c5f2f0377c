//! Reading files out of an image's layers (top layer first, whiteouts respected), for the few
//! files release-oci extends rather than replaces (`/etc/passwd`, `/etc/group`) and those the SBOM
//! reads (the dpkg database, os-release).

use crate::layer::LayerBlob;
use crate::store::BlobStore;
use std::fs::File;
use std::io::{self, Read};

/// The content of `path` (relative, e.g. `etc/passwd`) in the image made of `layers`, or `None`
/// when no layer has it (or the topmost mention deletes it).
pub fn read_file_from_layers(store: &BlobStore, layers: &[LayerBlob], path: &str) -> io::Result<Option<Vec<u8>>> {
    Ok(read_files_from_layers(store, layers, &[path])?.pop().flatten())
}

/// [`read_file_from_layers`] for each of `paths`, each layer read at most once for all of them
/// (a compressed Debian base layer takes about half a second to read through).
pub fn read_files_from_layers(
    store: &BlobStore,
    layers: &[LayerBlob],
    paths: &[&str],
) -> io::Result<Vec<Option<Vec<u8>>>> {
    // None: not decided yet (no layer above mentioned the path).
    let mut decided: Vec<Option<Option<Vec<u8>>>> = vec![None; paths.len()];
    for layer in layers.iter().rev() {
        let open: Vec<usize> = (0..paths.len()).filter(|i| decided[*i].is_none()).collect();
        if open.is_empty() {
            break;
        }
        let wanted: Vec<&str> = open.iter().map(|i| paths[*i]).collect();
        for (i, m) in open.into_iter().zip(mentions(store, layer, &wanted)?) {
            match m {
                Mention::File(bytes) => decided[i] = Some(Some(bytes)),
                Mention::Deleted => decided[i] = Some(None),
                Mention::Absent => {}
            }
        }
    }
    Ok(decided.into_iter().map(Option::flatten).collect())
}

/// What one layer says about a path.
enum Mention {
    File(Vec<u8>),
    Deleted,
    Absent,
}

/// What `layer` says about each of `paths`, remembered in the store by the layer's diff_id (its
/// exact content) and the path: every build reads `/etc/passwd` and `/etc/group` from the base
/// (and the SBOM its dpkg database), and scanning a compressed base layer takes a noticeable
/// part of a second. The paths not remembered yet are found in one scan.
fn mentions(store: &BlobStore, layer: &LayerBlob, paths: &[&str]) -> io::Result<Vec<Mention>> {
    let memo = |path: &str| {
        let digest = crate::digest::Digest::of(path.as_bytes());
        store.root().join("layer-files").join(format!("{}-{}", layer.diff_id.hex(), &digest.hex()[..16]))
    };
    let mut known: Vec<Option<Mention>> = paths.iter().map(|p| recall(&memo(p))).collect();
    if known.iter().all(Option::is_some) {
        return Ok(known.into_iter().flatten().collect());
    }
    let deletions: Vec<[String; 2]> = paths
        .iter()
        .map(|path| {
            let dir = path.rsplit_once('/').map_or(String::new(), |(d, _)| format!("{d}/"));
            let base = path.rsplit_once('/').map_or(*path, |(_, b)| b);
            [format!("{dir}.wh.{base}"), format!("{dir}.wh..wh..opq")]
        })
        .collect();
    let (mut found, mut deleted) = (vec![None; paths.len()], vec![false; paths.len()]);
    let file = File::open(store.blob_path(&layer.digest))?;
    let mut archive = tar::Archive::new(crate::layer::decoder_for(&layer.media_type, file)?);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let p = entry.path()?.to_string_lossy().trim_start_matches("./").trim_start_matches('/').to_string();
        for i in (0..paths.len()).filter(|i| known[*i].is_none()) {
            if p == paths[i] && entry.header().entry_type().is_file() {
                let mut buf = Vec::new();
                entry.read_to_end(&mut buf)?;
                found[i] = Some(buf);
                break;
            } else if deletions[i].contains(&p) {
                deleted[i] = true;
            }
        }
    }
    for (i, slot) in known.iter_mut().enumerate().filter(|(_, k)| k.is_none()) {
        let (m, record) = match found[i].take() {
            Some(bytes) => {
                let mut r = vec![b'F'];
                r.extend_from_slice(&bytes);
                (Mention::File(bytes), r)
            }
            None if deleted[i] => (Mention::Deleted, vec![b'D']),
            None => (Mention::Absent, vec![b'A']),
        };
        // Only a cache: a failure to write it changes nothing.
        let _ = remember(&memo(paths[i]), &record);
        *slot = Some(m);
    }
    Ok(known.into_iter().flatten().collect())
}

/// A remembered mention, when there is a readable one.
fn recall(memo: &std::path::Path) -> Option<Mention> {
    let bytes = std::fs::read(memo).ok()?;
    match bytes.split_first() {
        Some((b'F', rest)) => Some(Mention::File(rest.to_vec())),
        Some((b'D', _)) => Some(Mention::Deleted),
        Some((b'A', _)) => Some(Mention::Absent),
        _ => None,
    }
}

fn remember(memo: &std::path::Path, record: &[u8]) -> io::Result<()> {
    let dir = memo.parent().ok_or_else(|| io::Error::other("no parent"))?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::with_prefix_in(".tmp-", dir)?;
    io::Write::write_all(&mut tmp, record)?;
    tmp.persist(memo).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::DiffId;

    /// An uncompressed layer of `entries` (path, content; None: an empty whiteout file) in `store`.
    fn layer(store: &BlobStore, entries: &[(&str, Option<&str>)]) -> LayerBlob {
        let mut b = tar::Builder::new(Vec::new());
        for (path, body) in entries {
            let body = body.unwrap_or("");
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, body.as_bytes()).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let (digest, size) = store.put(&tar).unwrap();
        LayerBlob {
            name: "base".into(),
            digest,
            diff_id: DiffId::of(&tar),
            size,
            media_type: crate::layer::MEDIA_TYPE_LAYER_TAR.into(),
        }
    }

    #[test]
    fn each_path_from_its_topmost_mention_in_one_scan_a_layer() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let bottom = layer(
            &store,
            &[("etc/passwd", Some("root\n")), ("etc/group", Some("g\n")), ("var/lib/dpkg/status", Some("old"))],
        );
        let top = layer(&store, &[("etc/.wh.group", None), ("./var/lib/dpkg/status", Some("new"))]);
        let layers = [bottom.clone(), top.clone()];
        let paths = ["etc/passwd", "etc/group", "var/lib/dpkg/status", "etc/os-release"];
        let got = read_files_from_layers(&store, &layers, &paths).unwrap();
        let text: Vec<Option<String>> = got.into_iter().map(|b| b.map(|b| String::from_utf8(b).unwrap())).collect();
        assert_eq!(text, [Some("root\n".into()), None, Some("new".into()), None]);
        assert_eq!(read_file_from_layers(&store, &layers, "etc/passwd").unwrap().as_deref(), Some(&b"root\n"[..]));
        // Remembered by layer and path: the answers stay with the blobs gone.
        let memos = std::fs::read_dir(dir.path().join("layer-files")).unwrap().count();
        assert_eq!(memos, 6, "four paths asked of the top layer; of the bottom one only the two the top left open");
        for l in &layers {
            std::fs::remove_file(store.blob_path(&l.digest)).unwrap();
        }
        let again = read_files_from_layers(&store, &layers, &paths).unwrap();
        assert_eq!(again[2].as_deref(), Some(&b"new"[..]));
        assert_eq!(again[1], None);
    }

    #[test]
    fn an_opaque_directory_hides_the_layers_below() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let bottom = layer(&store, &[("etc/passwd", Some("root\n")), ("etc/os-release", Some("ID=debian\n"))]);
        let top = layer(&store, &[("etc/.wh..wh..opq", None), ("etc/os-release", Some("ID=other\n"))]);
        let got = read_files_from_layers(&store, &[bottom, top], &["etc/passwd", "etc/os-release"]).unwrap();
        assert_eq!(got, [None, Some(b"ID=other\n".to_vec())]);
    }
}
