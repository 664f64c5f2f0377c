//! The registry catalogue of builders (docs/toolchain.md): the tags of a repository laid out like
//! the official `hexpm/elixir` one, `ELIXIR-erlang-OTP-debian-SUITE-DATE-slim`
//! (`1.18.3-erlang-27.3.4.1-debian-trixie-20250428-slim`), read as builders and chosen by the
//! project's pins. Pure: listing the tags and deriving a builder from the chosen one are in
//! `commands/build/toolchain`.

use super::{Builder, Pin, Version};
use crate::triple::Libc;
use std::cmp::Ordering;
use std::fmt;

/// One tag of the catalogue that follows the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueTag {
    pub tag: String,
    pub elixir: Version,
    /// Every part of the OTP version (`27.3.4.1`), for ordering and labels.
    pub otp: Vec<u32>,
    /// The Debian suite (`trixie`).
    pub suite: String,
    /// The image's date (`20250428`).
    pub date: String,
}

impl CatalogueTag {
    /// `1.18.3-erlang-27.3.4.1-debian-trixie-20250428-slim`; None for anything else (release
    /// candidates, Alpine and Ubuntu variants, Debian images that are not `-slim`).
    pub fn parse(tag: &str) -> Option<CatalogueTag> {
        let (elixir, rest) = tag.split_once("-erlang-")?;
        let (otp, rest) = rest.split_once("-debian-")?;
        let rest = rest.strip_suffix("-slim")?;
        let (suite, date) = rest.split_once('-')?;
        let valid_suite = !suite.is_empty() && suite.bytes().all(|b| b.is_ascii_lowercase());
        let valid_date = date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit());
        if !valid_suite || !valid_date {
            return None;
        }
        let elixir_parts = numbers(elixir)?;
        let otp = numbers(otp)?;
        if elixir_parts.len() != 3 {
            return None;
        }
        let elixir = Version(elixir_parts[0], elixir_parts[1], elixir_parts[2]);
        Some(CatalogueTag { tag: tag.to_string(), elixir, otp, suite: suite.to_string(), date: date.to_string() })
    }

    /// The OTP version as [`Version`] (its first three parts), for the pins.
    pub fn otp_version(&self) -> Version {
        let part = |i: usize| self.otp.get(i).copied().unwrap_or(0);
        Version(part(0), part(1), part(2))
    }

    /// The OTP version as written in the tag (`27.3.4.1`).
    pub fn otp_text(&self) -> String {
        self.otp.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
    }

    /// As a builder with these versions, named `image`.
    pub fn builder(&self, image: &str) -> Builder {
        Builder { image: image.to_string(), elixir: Some(self.elixir), otp: Some(self.otp_version()) }
    }

    /// Newer first by Elixir, then OTP (every part), then date.
    fn newness(&self, other: &CatalogueTag) -> Ordering {
        (self.elixir, &self.otp, &self.date).cmp(&(other.elixir, &other.otp, &other.date))
    }
}

impl fmt::Display for CatalogueTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (Elixir {}, Erlang/OTP {})", self.tag, self.elixir, self.otp_text())
    }
}

/// `1.18.3` → [1, 18, 3]; None unless only numbers separated by dots.
fn numbers(s: &str) -> Option<Vec<u32>> {
    s.split('.').map(|p| if p.is_empty() { None } else { p.parse::<u32>().ok() }).collect()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogueError {
    #[error(
        "the builder catalogue {catalogue} has Debian (glibc) images only, and {triple} is a musl target; build for a gnu triple, or drop --builder-catalogue (builder_catalogue in release-oci.toml) and pass --builder-image with a musl image that has the toolchain"
    )]
    Musl { catalogue: String, triple: String },
    #[error(
        "no tag of the builder catalogue {catalogue} has the toolchain {project} asks for: it wants {}; the catalogue has {}; change the requirement, pick another catalogue with --builder-catalogue, or pass --builder-image with an image that has it",
        wants.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and "),
        describe(tags, *ignored)
    )]
    NoTag { catalogue: String, project: String, wants: Vec<Pin>, tags: Vec<CatalogueTag>, ignored: usize },
}

fn describe(tags: &[CatalogueTag], ignored: usize) -> String {
    let listed = if tags.is_empty() {
        "no tag of the form ELIXIR-erlang-OTP-debian-SUITE-DATE-slim".to_string()
    } else {
        tags.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    };
    if ignored == 0 { listed } else { format!("{listed} ({ignored} other tags not of that form)") }
}

/// The newest tag (by Elixir, then OTP, then date) of `tags` that satisfies every pin; tags not
/// of the pattern are left out. The catalogue's images are Debian's: a musl target is refused.
pub fn choose_tag(
    catalogue: &str,
    project: &str,
    pins: &[Pin],
    tags: &[String],
    libc: Libc,
    triple: &str,
) -> Result<CatalogueTag, CatalogueError> {
    if libc == Libc::Musl {
        return Err(CatalogueError::Musl { catalogue: catalogue.to_string(), triple: triple.to_string() });
    }
    let mut parsed: Vec<CatalogueTag> = tags.iter().filter_map(|t| CatalogueTag::parse(t)).collect();
    parsed.sort_by(|a, b| b.newness(a));
    let ignored = tags.len() - parsed.len();
    let fits = |t: &&CatalogueTag| {
        let b = t.builder(&t.tag);
        pins.iter().all(|p| p.allows(&b))
    };
    match parsed.iter().find(fits) {
        Some(t) => Ok(t.clone()),
        None => Err(CatalogueError::NoTag {
            catalogue: catalogue.to_string(),
            project: project.to_string(),
            wants: pins.to_vec(),
            tags: parsed,
            ignored,
        }),
    }
}

#[cfg(test)]
#[path = "toolchain_catalogue_tests.rs"]
mod tests;
