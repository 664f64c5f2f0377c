//! The project's own toolchain: the Elixir and Erlang/OTP versions it asks for, read from
//! `.tool-versions` (asdf, mise), `mix.exs` (`elixir: "~> 1.15"`) and `rebar.config`
//! (`{minimum_otp_vsn, "25"}`), and the choice of a builder whose versions (its image labels
//! `org.release-oci.elixir-version` and `org.release-oci.otp-version`) satisfy them: the newest
//! that does, or an error before anything is compiled that names each requirement, its file and
//! every builder's versions. See docs/toolchain.md.

#[path = "toolchain_catalogue.rs"]
pub mod catalogue;

use std::cmp::Ordering;
use std::fmt;
use std::path::Path;

/// A version `MAJOR[.MINOR[.PATCH]]` (missing parts are 0; anything after them is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// `1.18.3`, `27.1.2`, `1.17.3-otp-27` (→ 1.17.3), `25` (→ 25.0.0).
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim().trim_start_matches('v');
        let core = s.split(['-', '+', ' ']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>());
        let major = parts.next()?.ok()?;
        let minor = parts.next().transpose().ok()?.unwrap_or(0);
        let patch = parts.next().transpose().ok()?.unwrap_or(0);
        Some(Version(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One comparison of an Elixir requirement (`~> 1.14`, `>= 1.12.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Clause {
    op: String,
    version: Version,
    /// How many parts were written (`~> 1.14` is 2, `~> 1.14.1` is 3).
    parts: usize,
}

impl Clause {
    fn matches(&self, v: Version) -> bool {
        let want = self.version;
        match self.op.as_str() {
            "==" => v == want,
            "!=" => v != want,
            ">" => v > want,
            ">=" => v >= want,
            "<" => v < want,
            "<=" => v <= want,
            // `~> 1.14` allows 1.x from 1.14 on; `~> 1.14.1` allows 1.14.x from 1.14.1 on.
            "~>" if self.parts >= 3 => v >= want && (v.0, v.1) == (want.0, want.1),
            "~>" => v >= want && v.0 == want.0,
            _ => false,
        }
    }
}

/// An Elixir version requirement as Mix writes it: clauses joined by `and`, alternatives by `or`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    text: String,
    any_of: Vec<Vec<Clause>>,
}

impl Requirement {
    pub fn parse(text: &str) -> Option<Requirement> {
        let mut any_of = Vec::new();
        for alternative in text.split(" or ") {
            let mut all = Vec::new();
            for clause in alternative.split(" and ") {
                let clause = clause.trim();
                let split = clause.find(|c: char| c.is_ascii_digit())?;
                let (op, version) = clause.split_at(split);
                let op = match op.trim() {
                    "" => "==",
                    op => op,
                };
                let parts = version.trim().split(['-', '+']).next()?.split('.').count();
                all.push(Clause { op: op.to_string(), version: Version::parse(version)?, parts });
            }
            any_of.push(all);
        }
        Some(Requirement { text: text.trim().to_string(), any_of })
    }

    pub fn matches(&self, v: Version) -> bool {
        self.any_of.iter().any(|all| all.iter().all(|c| c.matches(v)))
    }
}

/// What one file of the project asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// `.tool-versions`' `elixir X.Y.Z`: the same major and minor version (a patch release of
    /// Elixir is a bug fix; Debian ships one patch level per suite).
    ElixirPin(Version),
    /// `.tool-versions`' `erlang X.Y.Z`: the same OTP release (major version).
    OtpPin(Version),
    /// `mix.exs`' `elixir:` requirement.
    Elixir(Requirement),
    /// `rebar.config`'s `minimum_otp_vsn`.
    MinOtp(Version),
}

/// A requirement and the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub want: Want,
    pub file: &'static str,
}

impl Pin {
    /// Whether builder `b` (by its labelled versions) satisfies this pin.
    pub fn allows(&self, b: &Builder) -> bool {
        match &self.want {
            Want::ElixirPin(v) => b.elixir.is_some_and(|e| (e.0, e.1) == (v.0, v.1)),
            Want::OtpPin(v) => b.otp.is_some_and(|o| o.0 == v.0),
            Want::Elixir(r) => b.elixir.is_some_and(|e| r.matches(e)),
            Want::MinOtp(v) => b.otp.is_some_and(|o| o >= *v),
        }
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.want {
            Want::ElixirPin(v) => write!(f, "Elixir {}.{} ({}: elixir {v})", v.0, v.1, self.file),
            Want::OtpPin(v) => write!(f, "Erlang/OTP {} ({}: erlang {v})", v.0, self.file),
            Want::Elixir(r) => write!(f, "Elixir {} ({})", r.text, self.file),
            Want::MinOtp(v) => write!(f, "Erlang/OTP >= {v} ({}: minimum_otp_vsn)", self.file),
        }
    }
}

/// A builder image and the versions its labels give (`None`: not labelled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builder {
    pub image: String,
    pub elixir: Option<Version>,
    pub otp: Option<Version>,
}

impl fmt::Display for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: Option<Version>| v.map_or_else(|| "unknown".to_string(), |v| v.to_string());
        write!(f, "{} (Elixir {}, Erlang/OTP {})", self.image, show(self.elixir), show(self.otp))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "no builder has the toolchain {project} asks for: it wants {}; the builders here are {}; change the requirement, or pass --builder-image with an image that has it",
    wants.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and "),
    if builders.is_empty() { "none".to_string() } else { builders.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ") }
)]
pub struct NoBuilder {
    pub project: String,
    pub wants: Vec<Pin>,
    pub builders: Vec<Builder>,
}

/// Reads what the project at `root` asks for (files that are missing or say nothing add nothing).
pub fn project_pins(root: &Path) -> Vec<Pin> {
    let read = |name: &str| std::fs::read_to_string(root.join(name)).ok();
    let mut pins = Vec::new();
    if let Some(text) = read(".tool-versions") {
        pins.extend(tool_versions(&text));
    }
    if let Some(text) = read("mix.exs")
        && let Some(r) = mix_elixir_requirement(&text)
    {
        pins.push(Pin { want: Want::Elixir(r), file: "mix.exs" });
    }
    if let Some(text) = read("rebar.config")
        && let Some(v) = rebar_minimum_otp(&text)
    {
        pins.push(Pin { want: Want::MinOtp(v), file: "rebar.config" });
    }
    pins
}

fn tool_versions(text: &str) -> Vec<Pin> {
    let mut pins = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(tool), Some(version)) = (words.next(), words.next()) else { continue };
        match (tool, Version::parse(version)) {
            ("elixir", Some(v)) => pins.push(Pin { want: Want::ElixirPin(v), file: ".tool-versions" }),
            ("erlang", Some(v)) => pins.push(Pin { want: Want::OtpPin(v), file: ".tool-versions" }),
            _ => {}
        }
    }
    pins
}

/// The `elixir: "..."` of a `mix.exs` project (the first one: the project's own).
fn mix_elixir_requirement(text: &str) -> Option<Requirement> {
    let at = text.find("elixir:")?;
    let rest = text[at + "elixir:".len()..].trim_start().strip_prefix('"')?;
    Requirement::parse(&rest[..rest.find('"')?])
}

fn rebar_minimum_otp(text: &str) -> Option<Version> {
    let at = text.find("minimum_otp_vsn")?;
    let rest = &text[at..];
    let quoted = rest.split('"').nth(1)?;
    Version::parse(quoted)
}

/// The newest builder that satisfies every pin (by Elixir, then OTP version); with no pins, the
/// newest builder. Builders without version labels are taken only when nothing is pinned.
pub fn choose<'a>(project: &str, pins: &[Pin], builders: &'a [Builder]) -> Result<&'a Builder, NoBuilder> {
    let newest = |a: &&Builder, b: &&Builder| -> Ordering { (a.elixir, a.otp).cmp(&(b.elixir, b.otp)) };
    builders.iter().filter(|b| pins.iter().all(|p| p.allows(b))).max_by(newest).ok_or_else(|| NoBuilder {
        project: project.to_string(),
        wants: pins.to_vec(),
        builders: builders.to_vec(),
    })
}

#[cfg(test)]
#[path = "toolchain_tests.rs"]
mod tests;
