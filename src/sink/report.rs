//! What `release-oci inspect` prints about an image.

use crate::digest::{DiffId, Digest};
use oci_spec::image::{ImageConfiguration, ImageManifest};
use std::fmt;

/// An image as read back from a layout or an archive.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// Where it was read from (`oci:DIR:TAG`, `docker-archive:PATH`).
    pub location: String,
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
    /// In manifest order.
    pub layers: Vec<LayerInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub digest: Digest,
    /// Compressed size, from the manifest.
    pub size: u64,
    /// From the config's `rootfs.diff_ids`, when it lists this layer.
    pub diff_id: Option<DiffId>,
    pub media_type: String,
    /// From the config's history (entries that made a layer), when there is one for this layer.
    pub created_by: Option<String>,
}

impl ImageInfo {
    /// `os/arch[/variant]` from the config.
    pub fn platform(&self) -> String {
        let c = &self.config;
        match c.variant() {
            Some(v) => format!("{}/{}/{v}", c.os(), c.architecture()),
            None => format!("{}/{}", c.os(), c.architecture()),
        }
    }

    /// Sum of the compressed layer sizes.
    pub fn total_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

/// `1.5 MiB`-style sizes (binary units, one decimal above bytes).
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn json_list(v: &Option<Vec<String>>) -> String {
    match v {
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
        None => "(none)".into(),
    }
}

fn sorted_pairs(map: Option<&std::collections::HashMap<String, String>>) -> Vec<String> {
    let mut v: Vec<String> = map.into_iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    v.sort();
    v
}

impl fmt::Display for ImageInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exec = self.config.config().clone().unwrap_or_default();
        let field = |f: &mut fmt::Formatter<'_>, name: &str, value: &str| writeln!(f, "{name:<12}{value}");
        let many = |f: &mut fmt::Formatter<'_>, name: &str, values: &[String]| {
            if values.is_empty() {
                return field(f, name, "(none)");
            }
            for (i, v) in values.iter().enumerate() {
                field(f, if i == 0 { name } else { "" }, v)?;
            }
            Ok(())
        };
        field(f, "Image", &self.location)?;
        field(f, "Digest", self.manifest_digest.as_str())?;
        field(f, "Config", self.config_digest.as_str())?;
        field(f, "Platform", &self.platform())?;
        field(f, "Created", self.config.created().as_deref().unwrap_or("(unknown)"))?;
        field(f, "Entrypoint", &json_list(exec.entrypoint()))?;
        field(f, "Cmd", &json_list(exec.cmd()))?;
        field(f, "User", exec.user().as_deref().unwrap_or("(default: root)"))?;
        field(f, "Workdir", exec.working_dir().as_deref().unwrap_or("(default: /)"))?;
        many(f, "Env", exec.env().as_deref().unwrap_or_default())?;
        let mut ports = exec.exposed_ports().clone().unwrap_or_default();
        ports.sort();
        many(f, "Ports", &ports)?;
        many(f, "Labels", &sorted_pairs(exec.labels().as_ref()))?;
        many(f, "Annotations", &sorted_pairs(self.manifest.annotations().as_ref()))?;
        writeln!(f, "Layers      {} ({} compressed)", self.layers.len(), human_size(self.total_size()))?;
        writeln!(f, "  {:>3}  {:>10}  {:<19}  CREATED BY", "#", "SIZE", "DIGEST")?;
        for (i, l) in self.layers.iter().enumerate() {
            let short = format!("sha256:{}", &l.digest.hex()[..12]);
            let by = l.created_by.as_deref().unwrap_or("");
            writeln!(f, "  {i:>3}  {:>10}  {short:<19}  {by}", human_size(l.size))?;
        }
        Ok(())
    }
}
