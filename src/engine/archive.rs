//! The `docker load` archive for the engine when some of the image's layers are already there:
//! `manifest.json` names every layer, but the first `present` ones have no file in the archive.
//! moby's loader (image/tarexport/load.go) looks up each layer's chain id first and opens the
//! layer file only when the chain is missing, so these files are never read. Layers are sent as
//! stored (gzip or plain tar; the engine decompresses), zstd ones as their tar (Docker before 23
//! cannot read zstd).

use super::EngineError;
use crate::image::Image;
use crate::layer::MEDIA_TYPE_LAYER_ZSTD;
use crate::store::BlobStore;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use tar::{EntryType, Header};

/// Writes the archive to `w`; zstd layers are unpacked into temp files in `scratch`.
pub(super) fn write<W: Write>(
    image: &Image,
    store: &BlobStore,
    w: W,
    repo_tags: &[String],
    present: usize,
    scratch: &Path,
) -> Result<W, EngineError> {
    let mut tar = tar::Builder::new(w);
    let mut names = Vec::new();
    // Name → what to write (each file once).
    let mut files: BTreeMap<String, (bool, &crate::layer::LayerBlob)> = BTreeMap::new();
    for (i, layer) in image.layers.iter().enumerate() {
        let zstd = layer.media_type == MEDIA_TYPE_LAYER_ZSTD;
        let name = match zstd {
            true => format!("layers/{}.tar", layer.diff_id.hex()),
            false => format!("blobs/sha256/{}", layer.digest.hex()),
        };
        if i >= present {
            files.entry(name.clone()).or_insert((zstd, layer));
        }
        names.push(name);
    }
    let config = format!("blobs/sha256/{}", image.config_digest.hex());
    append(&mut tar, &config, image.config.len() as u64, image.config.as_slice())?;
    for (name, (zstd, layer)) in files {
        let src = store.blob_path(&layer.digest);
        let file = File::open(&src)?;
        if zstd {
            let mut tmp = tempfile::tempfile_in(scratch)?;
            let mut decoder = crate::layer::decoder_for(&layer.media_type, file)?;
            let len = io::copy(&mut decoder, &mut tmp)?;
            tmp.seek(SeekFrom::Start(0))?;
            append(&mut tar, &name, len, io::Read::take(tmp, len))?;
        } else {
            let len = file.metadata()?.len();
            append(&mut tar, &name, len, io::Read::take(file, len))?;
        }
    }
    let manifest = serde_json::json!([{ "Config": config, "RepoTags": repo_tags, "Layers": names }]);
    let manifest = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    append(&mut tar, "manifest.json", manifest.len() as u64, manifest.as_slice())?;
    Ok(tar.into_inner()?)
}

fn append<W: Write>(tar: &mut tar::Builder<W>, name: &str, size: u64, data: impl io::Read) -> io::Result<()> {
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    tar.append_data(&mut h, name, data)
}
