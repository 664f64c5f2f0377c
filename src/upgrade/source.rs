//! The deployed image (`--upgrade-from`, `upgrade --from-image`): where it is, loaded into the
//! blob store, and its release (`/app`) extracted from its layers.

use crate::base::{self, BaseRef};
use crate::digest::{DiffId, Digest};
use crate::image::BaseImage;
use crate::layer::LayerBlob;
use crate::registry::Reference;
use crate::store::BlobStore;
use crate::triple::Platform;
use oci_spec::image::{ImageConfiguration, ImageManifest};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// An image, by name: `oci:DIR[:TAG]` or `oci:DIR@sha256:…` (an OCI layout), a registry
/// reference (`HOST/REPO@sha256:…`, or with a tag), or an image of the local engine
/// (`docker-daemon:NAME`, or a plain name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Layout { dir: PathBuf, tag: Option<String>, digest: Option<Digest> },
    Registry(Reference),
    Engine(String),
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid image {input:?}: {reason}; expected oci:DIR[:TAG], oci:DIR@sha256:..., HOST/REPO@sha256:... or an image of the local engine"
)]
pub struct ParseImageRefError {
    pub input: String,
    pub reason: String,
}

impl FromStr for ImageRef {
    type Err = ParseImageRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ParseImageRefError { input: s.to_string(), reason };
        if let Some(rest) = s.strip_prefix("oci:") {
            if let Some((dir, digest)) = rest.rsplit_once('@') {
                let digest = digest.parse().map_err(|_| err("the digest is not sha256:<64 hex>".into()))?;
                if dir.is_empty() {
                    return Err(err("the directory is empty".into()));
                }
                return Ok(ImageRef::Layout { dir: dir.into(), tag: None, digest: Some(digest) });
            }
            if rest.is_empty() {
                return Err(err("the directory is empty".into()));
            }
            return match format!("oci:{rest}").parse::<BaseRef>() {
                Ok(BaseRef::Layout { dir, tag }) => Ok(ImageRef::Layout { dir, tag, digest: None }),
                _ => Err(err("not an OCI layout".into())),
            };
        }
        if let Some(name) = s.strip_prefix("docker-daemon:") {
            return Ok(ImageRef::Engine(name.to_string()));
        }
        match s.parse::<BaseRef>().map_err(|e| err(e.to_string()))? {
            BaseRef::Registry(r) => Ok(ImageRef::Registry(r)),
            BaseRef::Daemon(name) => Ok(ImageRef::Engine(name)),
            other => Err(err(format!("{other} is not an image"))),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Layout { dir, digest: Some(d), .. } => write!(f, "oci:{}@{d}", dir.display()),
            ImageRef::Layout { dir, tag: Some(t), .. } => write!(f, "oci:{}:{t}", dir.display()),
            ImageRef::Layout { dir, .. } => write!(f, "oci:{}", dir.display()),
            ImageRef::Registry(r) => write!(f, "{r}"),
            ImageRef::Engine(n) => write!(f, "docker-daemon:{n}"),
        }
    }
}

impl ImageRef {
    /// Whether the reference names one image for good (a digest), rather than a tag that moves.
    pub fn pinned(&self) -> bool {
        matches!(self, ImageRef::Layout { digest: Some(_), .. })
            || matches!(self, ImageRef::Registry(r) if r.digest.is_some())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read the image {image}")]
    Base {
        image: String,
        #[source]
        source: Box<base::BaseError>,
    },
    #[error("cannot read the image {image}: {reason}")]
    Invalid { image: String, reason: String },
    #[error("cannot read the image {image}")]
    Io {
        image: String,
        #[source]
        source: io::Error,
    },
}

/// The deployed image, its layers in the store.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub name: String,
    pub config: ImageConfiguration,
    pub layers: Vec<LayerBlob>,
    /// The manifest digest (an engine image has none: then the config digest, its image id).
    pub digest: Digest,
}

impl LoadedImage {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.config.config().as_ref()?.labels().as_ref()?.get(key).map(String::as_str)
    }
}

/// Loads `r` into `store` (its layers), for `platform`.
pub async fn load(
    r: &ImageRef,
    docker: Option<&bollard::Docker>,
    platform: &Platform,
    store: &BlobStore,
    registry: &crate::registry::RegistryOptions,
) -> Result<LoadedImage, SourceError> {
    let image = r.to_string();
    let base_err = |source| SourceError::Base { image: image.clone(), source: Box::new(source) };
    let loaded = match r {
        ImageRef::Layout { dir, digest: Some(d), .. } => {
            let (dir, d, store) = (dir.clone(), d.clone(), store.clone());
            let name = image.clone();
            tokio::task::spawn_blocking(move || layout_by_digest(&dir, &d, &store, &name))
                .await
                .map_err(|e| SourceError::Invalid { image: image.clone(), reason: e.to_string() })??
        }
        ImageRef::Layout { dir, tag, digest: None } => {
            let b = BaseRef::Layout { dir: dir.clone(), tag: tag.clone() };
            from_base(base::load_with(&b, docker, platform, store, registry).await.map_err(base_err)?, &image)?
        }
        ImageRef::Registry(reference) => {
            let b = BaseRef::Registry(reference.clone());
            from_base(base::load_with(&b, docker, platform, store, registry).await.map_err(base_err)?, &image)?
        }
        ImageRef::Engine(name) => {
            let b = BaseRef::Daemon(name.clone());
            from_base(base::load_with(&b, docker, platform, store, registry).await.map_err(base_err)?, &image)?
        }
    };
    Ok(loaded)
}

fn from_base(b: Option<BaseImage>, image: &str) -> Result<LoadedImage, SourceError> {
    let b = b.ok_or_else(|| SourceError::Invalid { image: image.to_string(), reason: "no image".into() })?;
    let digest = match b.digest {
        Some(d) => d,
        None => {
            let bytes = serde_json::to_vec(&b.config).unwrap_or_default();
            Digest::of(&bytes)
        }
    };
    Ok(LoadedImage { name: image.to_string(), config: b.config, layers: b.layers, digest })
}

/// The image whose manifest is `digest` in the layout at `dir` (tagged or not): its layers copied
/// into the store, every blob checked against its digest.
fn layout_by_digest(dir: &Path, digest: &Digest, store: &BlobStore, image: &str) -> Result<LoadedImage, SourceError> {
    let invalid = |reason: String| SourceError::Invalid { image: image.to_string(), reason };
    let read_blob = |d: &Digest, what: &str| -> Result<Vec<u8>, SourceError> {
        let path = dir.join("blobs/sha256").join(d.hex());
        let bytes = fs::read(&path).map_err(|e| invalid(format!("{what} {d} ({}): {e}", path.display())))?;
        if Digest::of(&bytes) != *d {
            return Err(invalid(format!("{what} {} does not hash to its digest", path.display())));
        }
        Ok(bytes)
    };
    let manifest_bytes = read_blob(digest, "manifest")?;
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| invalid(format!("the manifest {digest} is not an image manifest: {e}")))?;
    let config_digest: Digest = manifest
        .config()
        .digest()
        .to_string()
        .parse()
        .map_err(|_| invalid("the config digest is not sha256".into()))?;
    let config: ImageConfiguration = serde_json::from_slice(&read_blob(&config_digest, "config")?)
        .map_err(|e| invalid(format!("the image config: {e}")))?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(invalid("the manifest's layers and the config's diff_ids differ in number".into()));
    }
    let mut layers = Vec::new();
    for (d, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let ld: Digest = d.digest().to_string().parse().map_err(|_| invalid("a layer digest is not sha256".into()))?;
        let diff_id: DiffId = diff_id.parse().map_err(|_| invalid(format!("diff_id {diff_id} is not sha256")))?;
        if !store.contains(&ld) {
            let src = dir.join("blobs/sha256").join(ld.hex());
            let mut file = fs::File::open(&src).map_err(|e| invalid(format!("layer {} : {e}", src.display())))?;
            let mut w = store.writer().map_err(|e| invalid(e.to_string()))?;
            io::copy(&mut file, &mut w).map_err(|source| SourceError::Io { image: image.to_string(), source })?;
            let (got, _) = w.commit().map_err(|e| invalid(e.to_string()))?;
            if got != ld {
                return Err(invalid(format!("layer {} does not hash to its digest", src.display())));
            }
        }
        layers.push(LayerBlob {
            name: "deployed".into(),
            digest: ld,
            diff_id,
            size: d.size(),
            media_type: d.media_type().to_string(),
        });
    }
    Ok(LoadedImage { name: image.to_string(), config, layers, digest: digest.clone() })
}

/// Writes the files under `prefix` (`app`) of the image made of `layers` into `dest` (as the
/// layers stack: later layers win, whiteouts delete), leaving out what matches `skip` (a path
/// relative to `prefix`, such as `erts-13.1.5/bin/beam.smp`): only its directories are made.
pub fn extract(
    store: &BlobStore,
    layers: &[LayerBlob],
    prefix: &str,
    dest: &Path,
    skip: impl Fn(&str) -> bool,
) -> io::Result<()> {
    fs::create_dir_all(dest)?;
    let prefix = format!("{}/", prefix.trim_matches('/'));
    for layer in layers {
        let file = fs::File::open(store.blob_path(&layer.digest))?;
        let mut archive = tar::Archive::new(crate::layer::decoder_for(&layer.media_type, file)?);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let raw = entry.path()?.to_string_lossy().into_owned();
            let path = raw.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
            let Some(rel) = path.strip_prefix(&prefix) else { continue };
            if rel.split('/').any(|c| c == ".." || c.is_empty()) {
                continue;
            }
            apply_entry(&mut entry, rel, &prefix, dest, &skip)?;
        }
    }
    Ok(())
}

/// One layer entry at `rel` (under the prefix) applied to `dest`: a whiteout deletes, a directory
/// is made, anything else (unless skipped) replaces what was there.
fn apply_entry<R: io::Read>(
    entry: &mut tar::Entry<'_, R>,
    rel: &str,
    prefix: &str,
    dest: &Path,
    skip: &impl Fn(&str) -> bool,
) -> io::Result<()> {
    let (parent, base) = rel.rsplit_once('/').unwrap_or(("", rel));
    let target_dir = if parent.is_empty() { dest.to_path_buf() } else { dest.join(parent) };
    if base == ".wh..wh..opq" {
        if target_dir.is_dir() {
            for e in fs::read_dir(&target_dir)?.flatten() {
                remove(&e.path())?;
            }
        }
        return Ok(());
    }
    if let Some(gone) = base.strip_prefix(".wh.") {
        return remove(&target_dir.join(gone));
    }
    let out = dest.join(rel);
    if entry.header().entry_type().is_dir() {
        if fs::symlink_metadata(&out).is_ok_and(|m| !m.is_dir()) {
            remove(&out)?;
        }
        return fs::create_dir_all(&out);
    }
    fs::create_dir_all(&target_dir)?;
    if skip(rel) {
        return Ok(());
    }
    if fs::symlink_metadata(&out).is_ok() {
        remove(&out)?;
    }
    write_entry(entry, &out, prefix, dest)
}

/// A symlink, hard link (copied from its target under the prefix) or file entry written at `out`.
fn write_entry<R: io::Read>(entry: &mut tar::Entry<'_, R>, out: &Path, prefix: &str, dest: &Path) -> io::Result<()> {
    let kind = entry.header().entry_type();
    if kind.is_symlink() {
        if let Some(t) = entry.link_name()? {
            std::os::unix::fs::symlink(t, out)?;
        }
    } else if kind.is_hard_link() {
        if let Some(t) = entry.link_name()? {
            let t = t.to_string_lossy().trim_start_matches("./").trim_start_matches('/').to_string();
            if let Some(t) = t.strip_prefix(prefix) {
                fs::copy(dest.join(t), out)?;
            }
        }
    } else if kind.is_file() {
        let mut f = fs::File::create(out)?;
        io::copy(entry, &mut f)?;
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        fs::set_permissions(out, std::os::unix::fs::PermissionsExt::from_mode(mode | 0o600))?;
    }
    Ok(())
}

fn remove(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_image_references() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            format!("oci:/tmp/out@{d}").parse::<ImageRef>().unwrap(),
            ImageRef::Layout { dir: "/tmp/out".into(), tag: None, digest: Some(d.parse().unwrap()) }
        );
        assert_eq!(
            "oci:./out:0.1.0".parse::<ImageRef>().unwrap(),
            ImageRef::Layout { dir: "./out".into(), tag: Some("0.1.0".into()), digest: None }
        );
        assert_eq!("counter:0.1.0".parse::<ImageRef>().unwrap(), ImageRef::Engine("counter:0.1.0".into()));
        assert_eq!("docker-daemon:counter".parse::<ImageRef>().unwrap(), ImageRef::Engine("counter".into()));
        let r = format!("127.0.0.1:5000/team/counter@{d}").parse::<ImageRef>().unwrap();
        assert!(matches!(&r, ImageRef::Registry(r) if r.digest.is_some()));
        assert!(r.pinned() && !"oci:x:1".parse::<ImageRef>().unwrap().pinned());
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/team/counter@{d}"));
        assert!("oci:x@sha256:12".parse::<ImageRef>().is_err());
        assert!("oci:".parse::<ImageRef>().is_err());
    }

    /// A gzip layer of `entries` (path, content; `None`: a directory), in the store.
    fn layer(store: &BlobStore, entries: &[(&str, Option<&str>)]) -> LayerBlob {
        let mut b = tar::Builder::new(Vec::new());
        for (path, content) in entries {
            let mut h = tar::Header::new_gnu();
            match content {
                Some(c) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(c.len() as u64);
                    h.set_mode(0o644);
                    b.append_data(&mut h, path, c.as_bytes()).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    b.append_data(&mut h, path, &[][..]).unwrap();
                }
            }
        }
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).unwrap();
        let bytes = gz.finish().unwrap();
        let (digest, size) = store.put(&bytes).unwrap();
        LayerBlob {
            name: "t".into(),
            digest,
            diff_id: DiffId::of(&tar),
            size,
            media_type: crate::layer::MEDIA_TYPE_LAYER_GZIP.into(),
        }
    }

    #[test]
    fn extracts_a_prefix_as_the_layers_stack() {
        let s = tempfile::tempdir().unwrap();
        let store = BlobStore::open(s.path()).unwrap();
        let l1 = layer(
            &store,
            &[
                ("app", None),
                ("app/releases/0.1.0/vm.args", Some("old")),
                ("app/lib/a-1/ebin/a.beam", Some("a")),
                ("app/lib/b-1/ebin/b.beam", Some("b")),
                ("app/erts-13/bin/beam.smp", Some("big")),
                ("etc/passwd", Some("root")),
            ],
        );
        let l2 = layer(
            &store,
            &[
                ("app/releases/0.1.0/vm.args", Some("new")),
                ("app/lib/.wh.b-1", Some("")),
                ("app/lib/a-1/ebin/.wh..wh..opq", Some("")),
            ],
        );
        let out = tempfile::tempdir().unwrap();
        extract(&store, &[l1, l2], "app", out.path(), |p| p.starts_with("erts-")).unwrap();
        assert_eq!(fs::read_to_string(out.path().join("releases/0.1.0/vm.args")).unwrap(), "new");
        assert!(!out.path().join("lib/b-1").exists());
        assert!(out.path().join("lib/a-1/ebin").is_dir() && !out.path().join("lib/a-1/ebin/a.beam").exists());
        assert!(out.path().join("erts-13/bin").is_dir() && !out.path().join("erts-13/bin/beam.smp").exists());
        assert!(!out.path().join("passwd").exists() && !out.path().join("etc").exists());
    }
}
