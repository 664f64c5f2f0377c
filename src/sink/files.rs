//! The files in an image's layers (`release-oci inspect --files`): each layer blob of a layout or
//! archive read as the tar it is, entries listed as stored.

use super::report::LayerInfo;
use super::{SinkError, Target};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// One entry of a layer tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// As stored, without a leading `./` or `/`, without a trailing `/`.
    pub path: String,
    pub kind: EntryType,
    pub mode: u32,
    /// Bytes of a regular file (0 for the rest).
    pub size: u64,
    /// The target of a symlink or hard link.
    pub link: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    File,
    Dir,
    Symlink,
    HardLink,
    Other,
}

impl EntryType {
    /// One letter, as `ls -l` shows it (`-`, `d`, `l`, `h`, `?`).
    pub fn letter(self) -> char {
        match self {
            EntryType::File => '-',
            EntryType::Dir => 'd',
            EntryType::Symlink => 'l',
            EntryType::HardLink => 'h',
            EntryType::Other => '?',
        }
    }
}

/// A layer's entries, and the bytes of the one file asked for (when the layer has it).
#[derive(Debug, Clone, Default)]
pub struct LayerListing {
    pub entries: Vec<LayerEntry>,
    pub captured: Option<Vec<u8>>,
}

/// Lists the layer `layer` of the image at `target`; keeps the content of the regular file at
/// `capture` (a layer path) if the layer has one.
pub fn list_layer(target: &Target, layer: &LayerInfo, capture: Option<&str>) -> Result<LayerListing, SinkError> {
    let location = target.to_string();
    let blob = open_blob(target, layer.digest.hex())?;
    let opened = crate::layer::decoder(&layer.media_type, blob)
        .map_err(|e| SinkError::Io { path: format!("{location} layer {}", layer.digest).into(), source: e })?;
    let Some(reader) = opened else {
        let reason = format!("cannot list a layer of type {}", layer.media_type);
        return Err(SinkError::Unsupported { location, reason });
    };
    let io = |e| SinkError::Io { path: format!("{location} layer {}", layer.digest).into(), source: e };
    let mut archive = tar::Archive::new(reader);
    let mut out = LayerListing::default();
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_string();
        if path.is_empty() {
            continue;
        }
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryType::File,
            tar::EntryType::Directory => EntryType::Dir,
            tar::EntryType::Symlink => EntryType::Symlink,
            tar::EntryType::Link => EntryType::HardLink,
            _ => EntryType::Other,
        };
        let mode = header.mode().unwrap_or(0);
        let size = if kind == EntryType::File { entry.size() } else { 0 };
        let link = entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
        if kind == EntryType::File && capture == Some(path.as_str()) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(io)?;
            out.captured = Some(bytes);
        }
        out.entries.push(LayerEntry { path, kind, mode, size, link });
    }
    Ok(out)
}

/// The blob `blobs/sha256/HEX` of a layout directory, or of an archive (read in place).
fn open_blob(target: &Target, hex: &str) -> Result<Box<dyn Read>, SinkError> {
    let name = format!("blobs/sha256/{hex}");
    match target {
        Target::OciLayout { dir, .. } => {
            let path = dir.join(&name);
            Ok(Box::new(io::BufReader::new(File::open(&path).map_err(SinkError::io(path))?)))
        }
        Target::Archive { path } => archive_member(path, &name),
    }
}

fn archive_member(path: &Path, name: &str) -> Result<Box<dyn Read>, SinkError> {
    let file = File::open(path).map_err(SinkError::io(path))?;
    let mut found = None;
    for entry in tar::Archive::new(&file).entries().map_err(SinkError::io(path))? {
        let entry = entry.map_err(SinkError::io(path))?;
        if String::from_utf8_lossy(&entry.path_bytes()).trim_start_matches("./") == name {
            found = Some((entry.raw_file_position(), entry.size()));
            break;
        }
    }
    let (offset, size) = found.ok_or_else(|| SinkError::NotALayout {
        location: format!("docker-archive:{}", path.display()),
        reason: format!("{name} is missing"),
    })?;
    let mut file = File::open(path).map_err(SinkError::io(path))?;
    file.seek(SeekFrom::Start(offset)).map_err(SinkError::io(path))?;
    Ok(Box::new(io::BufReader::new(file.take(size))))
}
