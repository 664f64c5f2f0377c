//! The supply chain of an image (docs/supply-chain.md): its SBOM (SPDX 2.3, or CycloneDX 1.6),
//! signatures and SLSA provenance in cosign's formats, attached in the registry as OCI referrers
//! (or the referrers tag schema) and cosign's `.sig`/`.att` tags, and checked by `release-oci
//! verify`.
//!
//! [`facts`] are gathered when the image is made ([`gather`], with what the builder wrote:
//! [`builder_out`]) and kept in the blob store; the SBOM ([`sbom`], [`cyclonedx`]) and the
//! provenance ([`provenance`]) are rendered from them, deterministic;
//! [`keys`] opens signing keys, [`sign`] makes cosign's payloads and envelopes, [`attach`]
//! pushes them, [`verify`] checks them.
//!
//! Keyless signing (Fulcio certificates, Rekor entries) is designed in the docs; it drops in as
//! another [`SignerSource`].

pub mod attach;
pub mod builder_out;
pub mod cyclonedx;
pub mod dpkg_status;
pub mod erl_term;
pub mod facts;
pub mod gather;
pub mod index_sbom;
pub mod keys;
pub mod license;
pub mod lock;
pub mod provenance;
pub mod publish;
pub mod rebar_lock;
pub mod sbom;
mod sbom_packages;
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
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// No SBOM.
    None,
}

impl SbomFormat {
    /// The SBOM of the image `digest` built with `facts` (None for [`SbomFormat::None`]).
    pub fn render(self, facts: &facts::Facts, digest: &crate::digest::Digest) -> Option<Vec<u8>> {
        match self {
            SbomFormat::Spdx => Some(sbom::render(facts, digest)),
            SbomFormat::Cyclonedx => Some(cyclonedx::render(facts, digest)),
            SbomFormat::None => None,
        }
    }

    /// Its file name in `--sbom-dir`.
    pub fn file_name(self, facts: &facts::Facts) -> Option<String> {
        match self {
            SbomFormat::Spdx => Some(sbom::file_name(facts)),
            SbomFormat::Cyclonedx => Some(cyclonedx::file_name(facts)),
            SbomFormat::None => None,
        }
    }

    /// The media type of the document (the referrer's `artifactType` and layer).
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::Cyclonedx => cyclonedx::MEDIA_CYCLONEDX,
            SbomFormat::Spdx | SbomFormat::None => sbom::MEDIA_SPDX,
        }
    }

    /// The predicate type of its signed attestation.
    pub fn predicate_type(self) -> &'static str {
        match self {
            SbomFormat::Cyclonedx => cyclonedx::PREDICATE_TYPE,
            SbomFormat::Spdx | SbomFormat::None => attach::SPDX_PREDICATE_TYPE,
        }
    }
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
