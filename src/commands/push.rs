//! `release-oci push IMAGE REF` and `build --push REF`: an image (from a layout, an archive, or
//! just built in the blob store) to a registry; the result is `REPOSITORY@DIGEST`.

use crate::base::BaseRef;
use crate::cli::{BuildSettings, PushArgs, PushSettings};
use crate::digest::Digest;
use crate::image::{BaseImage, Image, MEDIA_TYPE_MANIFEST};
use crate::registry::{self, BlobRef, BlobSource, Client, PushImage, PushTarget, RegistryOptions};
use crate::sink::{self, Target};
use crate::store::BlobStore;
use crate::ui;
use anyhow::Context;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// `release-oci push`: returns `REPOSITORY@DIGEST` for stdout.
pub async fn run(args: PushArgs) -> anyhow::Result<String> {
    let target: Target = args.image.parse().with_context(|| format!("image {:?}", args.image))?;
    let settings = PushSettings::new(&args.reference, &args.tags).with_context(|| format!("{:?}", args.reference))?;
    let opts = args.registry.options(Some(&settings.reference.registry))?;
    let what = target.to_string();
    let image =
        tokio::task::spawn_blocking(move || from_target(&target)).await?.with_context(|| format!("reading {what}"))?;
    push(&settings, &opts, image, None, None).await
}

/// The `--push` sink of `build`: base layers are mounted when the base came from the same
/// registry. Returns `REPOSITORY@DIGEST`.
pub async fn push_built(
    s: &BuildSettings,
    image: &Image,
    base: Option<&BaseImage>,
    store: &BlobStore,
) -> anyhow::Result<Option<String>> {
    let Some(settings) = &s.push else { return Ok(None) };
    let mount = match (&s.base, base) {
        (BaseRef::Registry(r), Some(b)) if r.registry == settings.reference.registry => {
            Some((r.repository.clone(), b.layers.iter().map(|l| l.digest.clone()).collect()))
        }
        _ => None,
    };
    // The SBOM, signature and provenance, from what the build recorded for this image.
    let attachments = crate::supply::gather::for_push(&s.supply, &image.manifest_digest, store)?;
    let supply = attachments.as_ref().map(|a| (a, s.supply.signer()));
    push(settings, &s.registry, from_store(image, store), mount, supply).await.map(Some)
}

async fn push(
    settings: &PushSettings,
    opts: &RegistryOptions,
    image: PushImage,
    mount: Option<(String, HashSet<Digest>)>,
    supply: Option<(&crate::supply::attach::Attachments, Option<&crate::supply::Signer>)>,
) -> anyhow::Result<String> {
    let r = &settings.reference;
    let mut scopes = vec![format!("repository:{}:pull,push", r.repository)];
    if let Some((from, _)) = &mount {
        scopes.push(format!("repository:{from}:pull"));
    }
    // A plain step line, not a spinner: the per-blob bars own the terminal while they run.
    ui::step(format!("Pushing to {} (tags: {})", r.repository_ref(), settings.tags.join(", ")));
    let start = std::time::Instant::now();
    let client = Client::connect(&r.registry, opts, scopes).await?;
    let (mount_from, mountable) = mount.unzip();
    let target = PushTarget {
        repository: r.repository.clone(),
        tags: settings.tags.clone(),
        mount_from,
        mountable: mountable.unwrap_or_default(),
    };
    let bars = registry::Bars::new();
    let summary = match supply {
        None => registry::push_image(&client, &image, &target, &bars).await?,
        // By digest, then the attachments, then the tags: no tag names an image without them.
        Some((a, signer)) => {
            crate::supply::publish::push_image(&client, &image, &target, &bars, &r.repository_ref(), a, signer).await?
        }
    };
    let pushed = format!("{}@{}", r.repository_ref(), image.manifest_digest);
    ui::detail(format!("done in {:.1}s: {pushed}: {summary}", start.elapsed().as_secs_f64()));
    Ok(pushed)
}

/// An image built in the store.
pub(crate) fn from_store(image: &Image, store: &BlobStore) -> PushImage {
    let blob = |digest: &Digest, size: u64, label: String| BlobRef {
        digest: digest.clone(),
        size,
        label,
        source: BlobSource::File(store.blob_path(digest)),
    };
    PushImage {
        manifest: image.manifest.clone(),
        manifest_digest: image.manifest_digest.clone(),
        media_type: MEDIA_TYPE_MANIFEST.to_string(),
        config: blob(&image.config_digest, image.config.len() as u64, "config".into()),
        layers: image.layers.iter().map(|l| blob(&l.digest, l.size, format!("layer {}", l.name))).collect(),
    }
}

/// An image in an OCI layout or an archive (checked by `sink::read_image`), blobs read in place.
fn from_target(target: &Target) -> anyhow::Result<PushImage> {
    let info = sink::read_image(target)?;
    let blobs = match target {
        Target::OciLayout { dir, .. } => Blobs::Dir(dir.join("blobs/sha256")),
        Target::Archive { path } => Blobs::Archive { path: path.clone(), entries: archive_entries(path)? },
    };
    let manifest = blobs.read(&info.manifest_digest)?;
    anyhow::ensure!(
        Digest::of(&manifest) == info.manifest_digest,
        "{}: the manifest's bytes do not match its digest {}",
        info.location,
        info.manifest_digest
    );
    let media_type =
        info.manifest.media_type().as_ref().map_or_else(|| MEDIA_TYPE_MANIFEST.to_string(), |m| m.to_string());
    let layers = info
        .layers
        .iter()
        .map(|l| {
            let label = format!("layer {}", &l.digest.hex()[..12]);
            Ok(BlobRef { digest: l.digest.clone(), size: l.size, label, source: blobs.source(&l.digest)? })
        })
        .collect::<anyhow::Result<_>>()?;
    let config = BlobRef {
        digest: info.config_digest.clone(),
        size: info.manifest.config().size(),
        label: "config".into(),
        source: blobs.source(&info.config_digest)?,
    };
    Ok(PushImage { manifest, manifest_digest: info.manifest_digest.clone(), media_type, config, layers })
}

/// Where the blobs of a layout are: its `blobs/sha256` directory, or entries of a tar.
enum Blobs {
    Dir(PathBuf),
    Archive { path: PathBuf, entries: HashMap<String, (u64, u64)> },
}

impl Blobs {
    fn source(&self, d: &Digest) -> anyhow::Result<BlobSource> {
        match self {
            Blobs::Dir(dir) => {
                let p = dir.join(d.hex());
                anyhow::ensure!(p.is_file(), "blob {d} is missing: {} does not exist", p.display());
                Ok(BlobSource::File(p))
            }
            Blobs::Archive { path, entries } => {
                let (offset, _) =
                    entries.get(d.hex()).with_context(|| format!("{} has no blob {d}", path.display()))?;
                Ok(BlobSource::Slice { path: path.clone(), offset: *offset })
            }
        }
    }

    /// A small blob (the manifest) in memory.
    fn read(&self, d: &Digest) -> anyhow::Result<Vec<u8>> {
        match self {
            Blobs::Dir(dir) => {
                let p = dir.join(d.hex());
                std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
            }
            Blobs::Archive { path, entries } => {
                let (offset, size) =
                    entries.get(d.hex()).with_context(|| format!("{} has no blob {d}", path.display()))?;
                let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
                let mut buf = vec![0u8; *size as usize];
                file.read_exact_at(&mut buf, *offset).with_context(|| format!("reading {}", path.display()))?;
                Ok(buf)
            }
        }
    }
}

/// Offsets and sizes of the `blobs/sha256/HEX` entries of a tar, by HEX.
fn archive_entries(path: &Path) -> anyhow::Result<HashMap<String, (u64, u64)>> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = HashMap::new();
    let mut ar = tar::Archive::new(file);
    for entry in ar.entries().with_context(|| format!("reading {}", path.display()))? {
        let entry = entry.with_context(|| format!("reading {}", path.display()))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).trim_start_matches("./").to_string();
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            out.insert(hex.to_string(), (entry.raw_file_position(), entry.size()));
        }
    }
    Ok(out)
}
