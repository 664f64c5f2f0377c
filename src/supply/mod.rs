//! The supply chain of an image (docs/supply-chain.md): its SBOM (SPDX 2.3), signatures and
//! SLSA provenance in cosign's formats, attached in the registry as OCI referrers (or the
//! referrers tag schema) and cosign's `.sig`/`.att` tags, and checked by `release-oci verify`.
//!
//! [`facts`] are gathered when the image is made ([`gather`]) and kept in the blob store; the
//! SBOM ([`sbom`]) and the provenance ([`provenance`]) are rendered from them, deterministic;
//! [`keys`] opens signing keys, [`sign`] makes cosign's payloads and envelopes, [`attach`]
//! pushes them, [`verify`] checks them.
//!
//! Keyless signing (Fulcio certificates, Rekor entries) is designed in the docs; it drops in as
//! another [`SignerSource`].

pub mod attach;
pub mod facts;
pub mod gather;
pub mod keys;
pub mod lock;
pub mod provenance;
pub mod publish;
pub mod sbom;
pub mod sign;
pub mod verify;

pub use keys::Signer;

use std::path::PathBuf;

/// `--sbom`: which SBOM every image gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomFormat {
    /// SPDX 2.3 JSON.
    #[default]
    Spdx,
    /// No SBOM.
    None,
}

/// Where signatures come from. Only keys today; keyless signing (an OIDC token exchanged for a
/// short-lived Fulcio certificate, the signature logged in Rekor) would be a second variant
/// (docs/supply-chain.md).
#[derive(Debug, Clone)]
pub enum SignerSource {
    /// `--sign-key FILE`, opened (and its password checked) before the build.
    Key { path: PathBuf, signer: Signer },
}

impl SignerSource {
    pub fn signer(&self) -> &Signer {
        match self {
            SignerSource::Key { signer, .. } => signer,
        }
    }
}

/// The supply-chain settings of a build.
#[derive(Debug, Clone, Default)]
pub struct SupplySettings {
    pub sbom: SbomFormat,
    /// `--sbom-dir`: each image's SBOM is also written there.
    pub sbom_dir: Option<PathBuf>,
    /// `--sign-key`: pushed images (and indexes) are signed, with provenance attached.
    pub signing: Option<SignerSource>,
}

impl SupplySettings {
    /// Whether a push has anything to attach.
    pub fn attaches(&self) -> bool {
        self.sbom != SbomFormat::None || self.signing.is_some()
    }

    pub fn signer(&self) -> Option<&Signer> {
        self.signing.as_ref().map(SignerSource::signer)
    }
}
