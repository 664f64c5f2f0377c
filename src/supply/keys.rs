//! Signing keys: ECDSA P-256, as `cosign generate-key-pair` writes them (`ENCRYPTED SIGSTORE
//! PRIVATE KEY`: JSON with scrypt parameters, a NaCl secretbox nonce and the sealed PKCS#8 key;
//! the password comes from `COSIGN_PASSWORD`), or plain PEM (`PRIVATE KEY`, PKCS#8, or `EC
//! PRIVATE KEY`, SEC1). Public keys are PEM `PUBLIC KEY` (PKIX), as `cosign.pub`.
//!
//! The password is never logged or kept: it lives in a [`Zeroizing`] buffer while the key is
//! opened, and errors name the file and the fix, never the password.

use base64::Engine as _;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The environment variable cosign reads the key password from.
pub const PASSWORD_ENV: &str = "COSIGN_PASSWORD";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the signing key {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a PEM key ({reason}); pass cosign.key from `cosign generate-key-pair` or a PEM PKCS#8 P-256 key"
    )]
    NotPem { path: PathBuf, reason: String },
    #[error("{path} is encrypted and {PASSWORD_ENV} is not set; set it to the key's password")]
    NoPassword { path: PathBuf },
    #[error("{path}: the password in {PASSWORD_ENV} does not open the key (wrong password, or a damaged key file)")]
    WrongPassword { path: PathBuf },
    #[error("{path}: {reason}; pass an ECDSA P-256 key (cosign generate-key-pair makes one)")]
    Unsupported { path: PathBuf, reason: String },
}

/// A P-256 signing key; `Debug` shows only the public key's fingerprint.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    fingerprint: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({})", self.fingerprint)
    }
}

impl Signer {
    pub fn new(key: SigningKey) -> Signer {
        let fingerprint = fingerprint(key.verifying_key());
        Signer { key, fingerprint }
    }

    /// Opens the key at `path`; an encrypted one with the password `password` (from
    /// `COSIGN_PASSWORD` for [`Signer::open_with_env`]).
    pub fn open(path: &Path, password: Option<&str>) -> Result<Signer, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read { path: path.into(), source })?;
        let (label, der) = pem_block(&text).map_err(|reason| KeyError::NotPem { path: path.into(), reason })?;
        let der = Zeroizing::new(der);
        let unsupported = |reason: String| KeyError::Unsupported { path: path.into(), reason };
        let key = match label.as_str() {
            "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                let password = password.ok_or_else(|| KeyError::NoPassword { path: path.into() })?;
                let pkcs8 = decrypt_cosign(&der, password, path)?;
                SigningKey::from_pkcs8_der(&pkcs8).map_err(|e| unsupported(format!("the decrypted key: {e}")))?
            }
            "PRIVATE KEY" => {
                SigningKey::from_pkcs8_der(&der).map_err(|e| unsupported(format!("not a P-256 PKCS#8 key: {e}")))?
            }
            "EC PRIVATE KEY" => {
                let secret = p256::SecretKey::from_sec1_der(&der)
                    .map_err(|e| unsupported(format!("not a P-256 SEC1 key: {e}")))?;
                SigningKey::from(secret)
            }
            other => return Err(unsupported(format!("a PEM block of type {other:?} is not a private key"))),
        };
        Ok(Signer::new(key))
    }

    /// [`Signer::open`] with the password from `COSIGN_PASSWORD` (when it is set).
    pub fn open_with_env(path: &Path) -> Result<Signer, KeyError> {
        let password = std::env::var(PASSWORD_ENV).ok().map(Zeroizing::new);
        Signer::open(path, password.as_deref().map(String::as_str))
    }

    /// An ASN.1 DER ECDSA-SHA256 signature of `message` (RFC 6979: the same message and key give
    /// the same signature).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = self.key.sign(message);
        sig.to_der().as_bytes().to_vec()
    }

    pub fn public_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }

    /// `sha256:HEX` of the public key's DER (PKIX), for messages and provenance.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

fn fingerprint(key: &VerifyingKey) -> String {
    let der = key.to_public_key_der().map(|d| d.as_bytes().to_vec()).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

/// A public key from PEM (`PUBLIC KEY`, as `cosign.pub`).
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read { path: path.into(), source })?;
    VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| KeyError::Unsupported {
        path: path.into(),
        reason: format!("not a PEM P-256 public key ({e}); pass cosign.pub"),
    })
}

/// The public key as PEM (for messages and tests).
pub fn public_key_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF).unwrap_or_default()
}

/// Verifies an ASN.1 DER ECDSA-SHA256 signature.
pub fn verify(key: &VerifyingKey, message: &[u8], der_signature: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier as _;
    match p256::ecdsa::Signature::from_der(der_signature) {
        Ok(sig) => key.verify(message, &sig).is_ok(),
        Err(_) => false,
    }
}

/// The first PEM block: its label and decoded bytes.
fn pem_block(text: &str) -> Result<(String, Vec<u8>), String> {
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")))
        .ok_or("no -----BEGIN ...----- line")?
        .to_string();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines.by_ref() {
        if line == end {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .map_err(|e| format!("its base64 is damaged: {e}"))?;
            return Ok((label, bytes));
        }
        if line.contains(':') {
            return Err("PEM headers (encrypted PEM) are not supported".into());
        }
        body.push_str(line);
    }
    Err(format!("no {end} line"))
}

#[derive(serde::Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(serde::Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
struct KdfParams {
    n: u64,
    #[serde(rename = "r")]
    r: u32,
    #[serde(rename = "p")]
    p: u32,
}

#[derive(serde::Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// cosign's encrypted key: scrypt(password, salt) → a NaCl secretbox key; the box opens to PKCS#8.
fn decrypt_cosign(json: &[u8], password: &str, path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let bad = |reason: &str| KeyError::Unsupported { path: path.into(), reason: reason.to_string() };
    let e: Encrypted = serde_json::from_slice(json).map_err(|_| bad("the encrypted key is not cosign's JSON"))?;
    if e.kdf.name != "scrypt" || e.cipher.name != "nacl/secretbox" {
        return Err(bad(&format!("the key uses {} and {}, not scrypt and nacl/secretbox", e.kdf.name, e.cipher.name)));
    }
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).map_err(|_| bad("damaged base64"));
    let (salt, nonce, mut sealed) = (b64(&e.kdf.salt)?, b64(&e.cipher.nonce)?, b64(&e.ciphertext)?);
    let log_n = e.kdf.params.n.checked_ilog2().filter(|l| 1u64 << l == e.kdf.params.n && *l < 64);
    let log_n = log_n.ok_or_else(|| bad("the scrypt N is not a power of two"))?;
    let params = scrypt::Params::new(log_n as u8, e.kdf.params.r, e.kdf.params.p, 32)
        .map_err(|_| bad("unusable scrypt parameters"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password.as_bytes(), &salt, &params, key.as_mut()).map_err(|_| bad("scrypt failed"))?;
    if nonce.len() != 24 || sealed.len() < 16 {
        return Err(bad("the nonce or the sealed key has the wrong length"));
    }
    // NaCl's layout: the 16-byte tag, then the ciphertext.
    let body = sealed.split_off(16);
    let tag = crypto_secretbox::Tag::clone_from_slice(&sealed);
    let mut plain = Zeroizing::new(body);
    let cipher = XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(key.as_ref()));
    cipher
        .decrypt_in_place_detached(crypto_secretbox::Nonce::from_slice(&nonce), b"", &mut plain, &tag)
        .map_err(|_| KeyError::WrongPassword { path: path.into() })?;
    Ok(plain)
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
