//! Content digests. A layer has two: its [`Digest`] (of the compressed blob, what registries and
//! manifests address) and its [`DiffId`] (of the uncompressed tar, what the image config lists).
//! They are different types so one cannot be passed where the other is meant.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
#[error("not a sha256 digest: {0:?} (expected sha256:<64 hex digits>)")]
pub struct ParseDigestError(pub String);

fn parse_sha256(s: &str) -> Result<String, ParseDigestError> {
    let hex = s.strip_prefix("sha256:").ok_or_else(|| ParseDigestError(s.to_string()))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ParseDigestError(s.to_string()));
    }
    Ok(s.to_string())
}

macro_rules! sha256_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// From a finished SHA-256 hasher.
            pub fn from_hasher(h: Sha256) -> Self {
                Self(format!("sha256:{}", hex::encode(h.finalize())))
            }
            /// The digest of a byte string.
            pub fn of(bytes: &[u8]) -> Self {
                let mut h = Sha256::new();
                h.update(bytes);
                Self::from_hasher(h)
            }
            /// `sha256:<hex>`.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// The 64 hex digits alone (the file name under `blobs/sha256/`).
            pub fn hex(&self) -> &str {
                &self.0["sha256:".len()..]
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
        impl FromStr for $name {
            type Err = ParseDigestError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_sha256(s).map(Self)
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseDigestError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
        impl From<$name> for String {
            fn from(d: $name) -> String {
                d.0
            }
        }
    };
}

sha256_type!(
    /// Digest of a blob as stored and transferred (for layers: the compressed bytes).
    Digest
);
sha256_type!(
    /// Digest of a layer's uncompressed tar stream, as listed in the image config's `rootfs.diff_ids`.
    DiffId
);

/// A writer that hashes and counts everything written through it: hash while writing, once.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), count: 0 }
    }
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
    /// The inner writer, the hasher and the number of bytes written.
    pub fn finish(self) -> (W, Sha256, u64) {
        (self.inner, self.hasher, self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_is_the_well_known_value() {
        assert_eq!(Digest::of(b"").as_str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn parse_rejects_malformed() {
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!("md5:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse::<Digest>().is_err());
        assert!("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855".parse::<DiffId>().is_err());
        let d: DiffId = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
        assert_eq!(d.hex().len(), 64);
    }

    #[test]
    fn hashing_writer_hashes_what_passes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (inner, h, n) = w.finish();
        assert_eq!(n, 11);
        assert_eq!(Digest::from_hasher(h), Digest::of(b"hello world"));
        assert_eq!(inner, b"hello world");
    }
}
