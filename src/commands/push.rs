//! `release-oci push IMAGE REF`: an image from an OCI layout or an archive, its blobs read in
//! place, to the registry sink that `build --push` uses too; the result is `REPOSITORY@DIGEST`.

use crate::cli::{PushArgs, PushSettings};
use crate::image::Artifact;
use crate::output::{Outputs, RegistrySink};
use crate::sink::{self, Blobs, Target};
use anyhow::Context;

/// `release-oci push`: returns `REPOSITORY@DIGEST` for stdout.
pub async fn run(args: PushArgs) -> anyhow::Result<String> {
    let target: Target = args.image.parse().with_context(|| format!("image {:?}", args.image))?;
    let settings = PushSettings::new(&args.reference, &args.tags).with_context(|| format!("{:?}", args.reference))?;
    let options = args.registry.options(Some(&settings.reference.registry))?;
    let what = target.to_string();
    let (image, files) = tokio::task::spawn_blocking(move || sink::image_at(&target))
        .await?
        .with_context(|| format!("reading {what}"))?;
    let mut outputs = Outputs::new();
    // Nothing is attached: the facts an SBOM is made of are the build's, not the layout's.
    outputs.push(RegistrySink { settings, options, mount: None, supply: Default::default() });
    let pushed = outputs.write(&Artifact::Image(image), &Blobs::Layout(files)).await?;
    pushed.context("the registry sink reported no reference")
}
