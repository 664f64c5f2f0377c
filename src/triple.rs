//! Target triples (`ARCH-VENDOR-OS-ABI`, as Rust and GCC spell them) and what they mean for an
//! image: the OCI platform, the libc, and the default builder and runtime images.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Libc {
    Gnu,
    Musl,
}

/// A supported target triple.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Triple {
    pub arch: Arch,
    pub vendor: String,
    pub libc: Libc,
}

/// The OCI platform of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub architecture: &'static str,
    pub variant: Option<&'static str>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The repository namespace of release-oci's own builder and runtime images. They are made on
/// this machine (`make setup`: scripts/setup.sh, base-images/build-local.sh) and only ever looked
/// up in the local engine: unqualified, `release-oci/...` is a Docker Hub name, and whoever holds
/// it there would get the sources of every build that pulled it.
pub const OWN_IMAGES: &str = "release-oci/";

/// How the minimal base is named (`--base minimal`); the default runtime base of most triples.
/// The `minimal` module re-exports it as `BASE_NAME`; it lives here so that `triple` stays below
/// `minimal` in the module layers (docs/architecture.md).
pub const MINIMAL_BASE_NAME: &str = "minimal";

/// Whether `image` is one of release-oci's own (made locally, never pulled).
pub fn is_own_image(image: &str) -> bool {
    image.starts_with(OWN_IMAGES)
}

/// Why a builder image the engine does not have is not pulled, or `None` when it is:
/// release-oci's own images never are, others when `allowed` (`--pull missing` on an image the
/// user named).
pub fn pull_refusal(image: &str, allowed: bool) -> Option<String> {
    if is_own_image(image) {
        Some(format!(
            "release-oci's own images are made on this machine, never pulled: run `make setup` \
             (scripts/setup.sh) to build {image}"
        ))
    } else if !allowed {
        Some("not in the engine's image store, and pulling is off".to_string())
    } else {
        None
    }
}

pub const SUPPORTED: &[&str] = &[
    "x86_64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-gnu",
    "aarch64-unknown-linux-musl",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unsupported target triple {triple:?}: {reason}; supported triples: {}", SUPPORTED.join(", "))]
pub struct TripleError {
    pub triple: String,
    pub reason: String,
}

impl FromStr for Triple {
    type Err = TripleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| TripleError { triple: s.to_string(), reason: reason.to_string() };
        let parts: Vec<&str> = s.split('-').collect();
        // ARCH-VENDOR-OS-ABI, or ARCH-OS-ABI with the vendor left out (as Debian writes them).
        let (arch, vendor, os, abi) = match parts.as_slice() {
            [a, v, o, b] => (*a, *v, *o, *b),
            [a, o, b] => (*a, "unknown", *o, *b),
            _ => return Err(err("expected ARCH-VENDOR-OS-ABI")),
        };
        let arch = match arch {
            "x86_64" | "amd64" => Arch::X86_64,
            "aarch64" | "arm64" => Arch::Aarch64,
            other => return Err(err(&format!("architecture {other:?} is not supported"))),
        };
        if os != "linux" {
            return Err(err(&format!("operating system {os:?} is not supported (images are linux)")));
        }
        let libc = match abi {
            "gnu" => Libc::Gnu,
            "musl" => Libc::Musl,
            other => return Err(err(&format!("ABI {other:?} is not supported (gnu or musl)"))),
        };
        if vendor.is_empty() {
            return Err(err("empty vendor"));
        }
        Ok(Triple { arch, vendor: vendor.to_string(), libc })
    }
}

impl fmt::Display for Triple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arch = match self.arch {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        };
        let abi = match self.libc {
            Libc::Gnu => "gnu",
            Libc::Musl => "musl",
        };
        write!(f, "{arch}-{}-linux-{abi}", self.vendor)
    }
}

impl Triple {
    pub fn platform(&self) -> Platform {
        match self.arch {
            Arch::X86_64 => Platform { os: "linux", architecture: "amd64", variant: None },
            Arch::Aarch64 => Platform { os: "linux", architecture: "arm64", variant: Some("v8") },
        }
    }

    /// The triple of the machine this program runs on, when it is a supported one.
    pub fn host() -> Option<Triple> {
        let arch = match std::env::consts::ARCH {
            "x86_64" => Arch::X86_64,
            "aarch64" => Arch::Aarch64,
            _ => return None,
        };
        if std::env::consts::OS != "linux" {
            return None;
        }
        // The libc of the host is the one its dynamic loader belongs to. A glibc system may have
        // musl's loader too (Debian's musl package puts it in /lib): glibc's wins.
        let has = |dir: &str, prefix: &str| {
            std::fs::read_dir(dir)
                .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with(prefix)))
                .unwrap_or(false)
        };
        let glibc = has("/lib64", "ld-linux-") || has("/lib", "ld-linux-");
        let musl = !glibc && has("/lib", "ld-musl-");
        let libc = if musl { Libc::Musl } else { Libc::Gnu };
        Some(Triple { arch, vendor: "unknown".into(), libc })
    }

    /// The default builder image: built from `base-images/<flavour>/Dockerfile` (on top of the
    /// hexpm Elixir images) or, offline, by `base-images/build-local.sh` from Debian packages.
    /// The Docker engine (without the containerd image store) keeps one platform per name, so the
    /// aarch64 images have their own tags (`ARCH=arm64 base-images/build-local.sh`).
    pub fn default_builder_image(&self) -> &'static str {
        match self.libc {
            Libc::Gnu if self.arch == Arch::Aarch64 => "release-oci/builder:debian-bookworm-arm64",
            Libc::Gnu => "release-oci/builder:debian-bookworm",
            // Built from Debian's sources and musl toolchain by base-images/musl/build.sh.
            Libc::Musl if self.arch == Arch::X86_64 => "release-oci/builder:musl",
            Libc::Musl => "release-oci/builder:alpine",
        }
    }

    /// The builder images release-oci knows for this triple, the default first: a project's
    /// pinned toolchain may pick another one that is present (docs/toolchain.md).
    pub fn known_builder_images(&self) -> Vec<&'static str> {
        match (self.libc, self.arch) {
            (Libc::Gnu, Arch::Aarch64) => {
                vec!["release-oci/builder:debian-bookworm-arm64", "release-oci/builder:debian-trixie-arm64"]
            }
            (Libc::Gnu, _) => vec!["release-oci/builder:debian-bookworm", "release-oci/builder:debian-trixie"],
            _ => vec![self.default_builder_image()],
        }
    }

    /// The default runtime base for this triple (a `--base` value): the minimal base for gnu and
    /// for x86_64 musl (release-oci/builder:musl), the distribution image for the Alpine builder.
    pub fn default_base_image(&self) -> &'static str {
        match self.libc {
            Libc::Gnu => MINIMAL_BASE_NAME,
            Libc::Musl if self.arch == Arch::X86_64 => MINIMAL_BASE_NAME,
            Libc::Musl => self.distro_base_image(),
        }
    }

    /// The distribution runtime image for this triple (same libc as the builder): the base when
    /// no builder runs (`--from-release`), and `--base debian`.
    pub fn distro_base_image(&self) -> &'static str {
        match self.libc {
            Libc::Gnu if self.arch == Arch::Aarch64 => "release-oci/runtime:debian-bookworm-arm64",
            Libc::Gnu => "release-oci/runtime:debian-bookworm",
            Libc::Musl if self.arch == Arch::X86_64 => "release-oci/runtime:musl",
            Libc::Musl => "release-oci/runtime:alpine",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_supported_triples() {
        for s in SUPPORTED {
            let t: Triple = s.parse().unwrap();
            assert_eq!(t.to_string(), *s);
        }
        let t: Triple = "aarch64-unknown-linux-musl".parse().unwrap();
        assert_eq!(t.platform(), Platform { os: "linux", architecture: "arm64", variant: Some("v8") });
        assert_eq!(t.libc, Libc::Musl);
        let t: Triple = "x86_64-linux-gnu".parse().unwrap();
        assert_eq!(t.platform().to_string(), "linux/amd64");
        assert_eq!(t.default_builder_image(), "release-oci/builder:debian-bookworm");
        assert_eq!(t.default_base_image(), "minimal");
        assert_eq!(t.distro_base_image(), "release-oci/runtime:debian-bookworm");
        let t: Triple = "x86_64-unknown-linux-musl".parse().unwrap();
        assert_eq!(t.default_builder_image(), "release-oci/builder:musl");
        assert_eq!(t.default_base_image(), "minimal");
        assert_eq!(t.distro_base_image(), "release-oci/runtime:musl");
        let t: Triple = "aarch64-unknown-linux-gnu".parse().unwrap();
        assert_eq!(t.default_builder_image(), "release-oci/builder:debian-bookworm-arm64");
        assert_eq!(t.distro_base_image(), "release-oci/runtime:debian-bookworm-arm64");
    }

    /// Regression: a default image missing from the engine was pulled (`--pull missing` is the
    /// default), i.e. fetched from Docker Hub's `release-oci/*`, whoever holds it.
    #[test]
    fn own_images_are_never_pulled() {
        for t in SUPPORTED {
            let t: Triple = t.parse().unwrap();
            let images = [t.default_builder_image(), t.distro_base_image()];
            for image in images.into_iter().chain(t.known_builder_images()) {
                let why = pull_refusal(image, true).unwrap_or_else(|| panic!("{image} would be pulled"));
                assert!(why.contains("make setup") && why.contains(image), "{why}");
            }
        }
        assert_eq!(pull_refusal("ghcr.io/team/builder:1", true), None);
        assert_eq!(pull_refusal("hexpm/elixir:1.18.4-erlang-27.3-debian-bookworm-20250610-slim", true), None);
        assert!(pull_refusal("ghcr.io/team/builder:1", false).unwrap().contains("pulling is off"));
        assert!(!is_own_image("docker.io/release-oci/builder:x"), "a qualified name is the user's choice");
    }

    #[test]
    fn rejects_unsupported_with_the_list() {
        for bad in [
            "x86_64-apple-darwin",
            "riscv64gc-unknown-linux-gnu",
            "x86_64-pc-windows-msvc",
            "x86_64",
            "x86_64-unknown-linux-uclibc",
        ] {
            let e = bad.parse::<Triple>().unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(bad), "{msg}");
            assert!(msg.contains("x86_64-unknown-linux-musl"), "{msg}");
        }
    }
}
