//! `release-oci inspect TARGET`: what an image written by release-oci (or anyone) holds.

mod files;

use crate::cli::InspectArgs;
use crate::sink::{self, Target};
use anyhow::Context;

pub fn run(args: &InspectArgs) -> anyhow::Result<String> {
    let target: Target = args.image.parse().with_context(|| format!("image {:?}", args.image))?;
    // A multi-platform image: its platforms and their manifests.
    if let Some((digest, entries)) = sink::read_index(&target).with_context(|| format!("reading {target}"))? {
        let mut out = format!("Image index {digest} ({target})\nPlatforms:\n");
        for e in &entries {
            out.push_str(&format!("  {:<16} {} ({})\n", e.platform, e.manifest_digest, sink::human_size(e.size)));
        }
        return Ok(out);
    }
    let info = sink::read_image(&target).with_context(|| format!("reading {target}"))?;
    if args.raw {
        let manifest = serde_json::to_string_pretty(&info.manifest)?;
        let config = serde_json::to_string_pretty(&info.config)?;
        return Ok(format!("{manifest}\n{config}\n"));
    }
    let mut out = info.to_string();
    out.push_str(&files::slimmed(&info));
    if args.files {
        out.push_str(&files::list(&target, &info)?);
    }
    Ok(out)
}
