//! Supply-chain flags of `build` (`--sbom`, `--sbom-dir`, `--sign-key`) and `release-oci verify`.

use crate::supply::{SbomFormat, Signer, SignerSource, SupplySettings};
use anyhow::{Context, bail};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct SupplyArgs {
    /// The SBOM of every image: spdx (SPDX 2.3 JSON), cyclonedx (CycloneDX 1.6 JSON), attached to
    /// pushed images as an OCI referrer, or none [default: spdx].
    #[arg(long, value_enum, value_name = "spdx|cyclonedx|none")]
    pub sbom: Option<SbomFormat>,
    /// Also write each image's SBOM into DIR (NAME-VERSION-OS-ARCH.spdx.json, or .cdx.json).
    #[arg(long, value_name = "DIR")]
    pub sbom_dir: Option<PathBuf>,
    /// Sign the pushed image (cosign's format, `cosign verify --key` checks it) and attach its SLSA
    /// provenance and signed SBOM: a key from `cosign generate-key-pair` (password in
    /// COSIGN_PASSWORD) or a PEM ECDSA P-256 key. Needs --push.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
}

impl SupplyArgs {
    /// Validated settings: the key is opened here (a wrong key or password fails before the
    /// build, so before anything is pushed).
    pub fn settings(&self, pushes: bool) -> anyhow::Result<SupplySettings> {
        settings(self.sbom, self.sbom_dir.clone(), self.sign_key.clone(), pushes)
    }
}

/// The supply-chain settings of `--sbom` (or `sbom`), `--sbom-dir` (or `sbom_dir`) and
/// `--sign-key`, for a build that `pushes` or not.
pub(super) fn settings(
    sbom: Option<SbomFormat>,
    sbom_dir: Option<PathBuf>,
    sign_key: Option<PathBuf>,
    pushes: bool,
) -> anyhow::Result<SupplySettings> {
    let signing = match sign_key {
        Some(path) if !pushes => {
            bail!("--sign-key {} signs what is pushed: add --push REF", path.display())
        }
        Some(path) => {
            let signer = Signer::open_with_env(&path).with_context(|| format!("--sign-key {}", path.display()))?;
            Some(SignerSource::Key { path, signer })
        }
        None => None,
    };
    let sbom = sbom.unwrap_or_default();
    if sbom == SbomFormat::None && sbom_dir.is_some() {
        bail!("--sbom-dir (or sbom_dir) writes the SBOM, and --sbom none (or sbom = \"none\") makes none");
    }
    Ok(SupplySettings { sbom, sbom_dir, signing })
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The image in a registry: HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]. For an index, the index and
    /// every image it lists are checked.
    pub reference: String,
    /// The public key (PEM, as cosign.pub).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_refusals() {
        let s = SupplyArgs::default().settings(false).unwrap();
        assert_eq!(s.sbom, SbomFormat::Spdx);
        assert!(s.signing.is_none() && s.attaches());
        let a = SupplyArgs { sign_key: Some("k".into()), ..Default::default() };
        assert!(a.settings(false).unwrap_err().to_string().contains("--push"));
        let a = SupplyArgs { sbom: Some(SbomFormat::None), sbom_dir: Some("d".into()), ..Default::default() };
        assert!(a.settings(false).is_err());
        let a = SupplyArgs { sign_key: Some("/nonexistent/cosign.key".into()), ..Default::default() };
        let err = format!("{:#}", a.settings(true).unwrap_err());
        assert!(err.contains("/nonexistent/cosign.key"), "{err}");
    }
}
