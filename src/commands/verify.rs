//! `release-oci verify REF --key PUB`: checks the signature, the SBOM and the provenance of an
//! image in a registry (and of every image of an index); prints one line per check and fails,
//! naming what is missing or wrong, unless all pass.

use crate::cli::VerifyArgs;
use crate::digest::Digest;
use crate::registry::{Client, MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX, Reference, Registry};
use crate::store::BlobStore;
use crate::supply::{keys, verify};
use anyhow::{Context, bail};

/// Returns the report for stdout; an error when a check did not pass.
pub async fn run(args: VerifyArgs) -> anyhow::Result<String> {
    let r: Reference = args.reference.parse().with_context(|| format!("{:?}", args.reference))?;
    let key = keys::read_public_key(&args.key)?;
    let opts = args.registry.options(None)?;
    let scopes = vec![format!("repository:{}:pull", r.repository)];
    let client = Client::connect(&r.registry, &opts, scopes).await?;
    let top = client.get_manifest(&r.repository, &r.api_reference()).await?;
    let is_index = top.media_type == MEDIA_OCI_INDEX || top.media_type == MEDIA_DOCKER_LIST;
    let mut digests = vec![(top.digest.clone(), String::new())];
    if is_index {
        digests.extend(index_entries(&top.bytes)?);
    }
    // A scratch store: what is read for checking is not kept.
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    let store = BlobStore::open(scratch.path())?;
    let mut out = String::new();
    let mut failed = Vec::new();
    for (digest, platform) in digests {
        let mut report = verify::verify_manifest(&client, &r.repository, &digest, &key, &store).await?;
        if is_index && digest == top.digest {
            // An index is signed; its SBOMs and provenance are those of its images (below).
            let per_platform = verify::Outcome::Ok("an index: see each platform image".into());
            (report.sbom, report.provenance) = (per_platform.clone(), per_platform);
        }
        out.push_str(&format!("{}@{digest}{platform}\n", r.repository_ref()));
        for (what, o) in [("signature", &report.signature), ("SBOM", &report.sbom), ("provenance", &report.provenance)]
        {
            out.push_str(&format!("  {what:<10} {o}\n"));
            if !o.passed() {
                failed.push(format!("{what} of {digest}: {o}"));
            }
        }
    }
    if !failed.is_empty() {
        // The report goes to stderr with the error: stdout is for results.
        eprint!("{out}");
        bail!("verification of {} failed:\n  {}", args.reference, failed.join("\n  "));
    }
    Ok(out)
}

/// The images an index lists, with their platform for the report.
fn index_entries(bytes: &[u8]) -> anyhow::Result<Vec<(Digest, String)>> {
    let v: serde_json::Value = serde_json::from_slice(bytes).context("the index is not JSON")?;
    let mut out = Vec::new();
    for m in v["manifests"].as_array().into_iter().flatten() {
        let digest: Digest = m["digest"].as_str().unwrap_or_default().parse()?;
        let p = &m["platform"];
        let platform = match (p["os"].as_str(), p["architecture"].as_str()) {
            (Some(os), Some(arch)) => format!(" ({os}/{arch})"),
            _ => String::new(),
        };
        out.push((digest, platform));
    }
    Ok(out)
}
