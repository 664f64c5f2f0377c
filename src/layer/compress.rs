//! Layer compression: gzip (the default, one pinned configuration), zstd at a chosen level (the
//! zstd crate pinned exactly, single-threaded, so the bytes are the same on every machine), or
//! none (plain tar: what the Docker engine stores anyway; the default when it is the only output).
//! And the other way: a reader for a layer blob of any media type release-oci carries.

use super::MEDIA_TYPE_LAYER_GZIP;
use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

pub const MEDIA_TYPE_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// The zstd level when `zstd` is given without one.
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;
/// The highest zstd level accepted (higher ones need the "ultra" mode and much memory).
pub const ZSTD_MAX_LEVEL: i32 = 19;

/// How release-oci compresses the layers it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// gzip, level [`super::GZIP_LEVEL`], no name, mtime 0 (flate2 on zlib-rs).
    #[default]
    Gzip,
    /// zstd at this level (1..=19), single-threaded, no checksum, no content size.
    Zstd { level: i32 },
    /// The plain tar: the blob is the layer's tar, its digest the diff_id.
    None,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown compression {value:?}: expected gzip, zstd, zstd:LEVEL (LEVEL 1 to {ZSTD_MAX_LEVEL}) or none")]
pub struct CompressionParseError {
    pub value: String,
}

impl FromStr for Compression {
    type Err = CompressionParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CompressionParseError { value: s.to_string() };
        match s.split_once(':') {
            None if s == "gzip" => Ok(Compression::Gzip),
            None if s == "zstd" => Ok(Compression::Zstd { level: ZSTD_DEFAULT_LEVEL }),
            None if s == "none" => Ok(Compression::None),
            Some(("zstd", level)) => match level.parse::<i32>() {
                Ok(level) if (1..=ZSTD_MAX_LEVEL).contains(&level) => Ok(Compression::Zstd { level }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::Gzip => f.write_str("gzip"),
            Compression::Zstd { level } => write!(f, "zstd:{level}"),
            Compression::None => f.write_str("none"),
        }
    }
}

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => MEDIA_TYPE_LAYER_GZIP,
            Compression::Zstd { .. } => MEDIA_TYPE_LAYER_ZSTD,
            Compression::None => MEDIA_TYPE_LAYER_TAR,
        }
    }

    /// The store's diff_id → digest index for layers compressed this way (a directory under the
    /// store root). gzip keeps the original `diffids` (there is one gzip configuration); every
    /// zstd level has its own, so a blob is only ever reused for the same settings.
    pub fn index_name(self) -> String {
        match self {
            Compression::Gzip => "diffids".to_string(),
            Compression::Zstd { level } => format!("diffids-zstd-{level}"),
            Compression::None => "diffids-tar".to_string(),
        }
    }

    /// A compressor writing into `w`; [`Encoder::finish`] ends the stream and returns `w`.
    pub fn encoder<W: Write>(self, w: W) -> io::Result<Encoder<W>> {
        Ok(match self {
            Compression::Gzip => Encoder::Gzip(super::write::gzip(w)),
            Compression::Zstd { level } => {
                let mut z = zstd::stream::write::Encoder::new(w, level)?;
                // Fixed frame parameters: what a streaming encoder does by default, spelled out.
                z.include_checksum(false)?;
                z.include_contentsize(false)?;
                z.include_dictid(false)?;
                z.long_distance_matching(false)?;
                Encoder::Zstd(z)
            }
            Compression::None => Encoder::Plain(w),
        })
    }
}

/// A gzip or zstd compressor, or none.
pub enum Encoder<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Plain(W),
}

impl<W: Write> Encoder<W> {
    /// Ends the compressed stream; returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(g) => g.finish(),
            Encoder::Zstd(z) => z.finish(),
            Encoder::Plain(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(g) => g.write(buf),
            Encoder::Zstd(z) => z.write(buf),
            Encoder::Plain(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(g) => g.flush(),
            Encoder::Zstd(z) => z.flush(),
            Encoder::Plain(w) => w.flush(),
        }
    }
}

/// The layer tar inside a blob of `media_type` (gzip, zstd or plain; OCI or Docker names), or
/// None for a media type release-oci cannot read.
pub fn decoder<'a>(media_type: &str, blob: impl Read + 'a) -> io::Result<Option<Box<dyn Read + 'a>>> {
    Ok(Some(match media_type {
        MEDIA_TYPE_LAYER_GZIP | "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            Box::new(flate2::read::GzDecoder::new(blob))
        }
        MEDIA_TYPE_LAYER_ZSTD => Box::new(zstd::stream::read::Decoder::new(blob)?),
        MEDIA_TYPE_LAYER_TAR | "application/vnd.docker.image.rootfs.diff.tar" => Box::new(blob),
        _ => return Ok(None),
    }))
}

/// [`decoder`], with an unknown media type as an error.
pub fn decoder_for<'a>(media_type: &str, blob: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    decoder(media_type, blob)?.ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("cannot read a layer of media type {media_type}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!("gzip".parse::<Compression>().unwrap(), Compression::Gzip);
        assert_eq!("zstd".parse::<Compression>().unwrap(), Compression::Zstd { level: ZSTD_DEFAULT_LEVEL });
        assert_eq!("zstd:19".parse::<Compression>().unwrap(), Compression::Zstd { level: 19 });
        for bad in ["zstd:0", "zstd:20", "zstd:", "gzip:6", "xz", ""] {
            assert!(bad.parse::<Compression>().is_err(), "{bad}");
        }
        assert_eq!(Compression::Zstd { level: 7 }.to_string(), "zstd:7");
        assert_eq!("none".parse::<Compression>().unwrap(), Compression::None);
        assert_eq!(Compression::None.to_string(), "none");
        assert_eq!(Compression::default().to_string(), "gzip");
    }

    #[test]
    fn every_setting_has_its_own_index_and_media_type() {
        let all =
            [Compression::Gzip, Compression::Zstd { level: 3 }, Compression::Zstd { level: 9 }, Compression::None];
        let names: std::collections::HashSet<String> = all.iter().map(|c| c.index_name()).collect();
        assert_eq!(names.len(), all.len());
        assert_eq!(Compression::Gzip.index_name(), "diffids");
        assert_eq!(Compression::Zstd { level: 9 }.media_type(), MEDIA_TYPE_LAYER_ZSTD);
        assert_eq!(Compression::None.media_type(), MEDIA_TYPE_LAYER_TAR);
        assert_eq!(compress(Compression::None, b"tar bytes"), b"tar bytes");
    }

    fn compress(c: Compression, data: &[u8]) -> Vec<u8> {
        let mut e = c.encoder(Vec::new()).unwrap();
        // Uneven chunks: the output must not depend on how the input was written.
        for chunk in data.chunks(7777) {
            e.write_all(chunk).unwrap();
        }
        e.finish().unwrap()
    }

    #[test]
    fn zstd_is_deterministic_and_round_trips() {
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let z = Compression::Zstd { level: 3 };
        let one = compress(z, &data);
        assert_eq!(one, compress(z, &data));
        assert_eq!(&one[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd frame magic");
        assert_ne!(one, compress(Compression::Zstd { level: 9 }, &data));
        let mut back = Vec::new();
        decoder_for(MEDIA_TYPE_LAYER_ZSTD, one.as_slice()).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let gz = compress(Compression::Gzip, &data);
        let mut back = Vec::new();
        decoder_for(MEDIA_TYPE_LAYER_GZIP, gz.as_slice()).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert!(decoder("application/x-unknown", &b""[..]).unwrap().is_none());
    }
}
