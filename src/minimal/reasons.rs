//! Why each file of the minimal base is there: read from the builder's `why` file, written into the
//! base layer as [`REASONS_PATH`] (canonical JSON), and read back by `release-oci inspect --files`.

use super::MinimalError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Where the reasons live in the image (inside the base layer they describe).
pub const REASONS_PATH: &str = "usr/share/release-oci/minimal-base.json";

/// One line of the builder's `why` file (see `src/builder/minimal_base.sh`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhyLine {
    /// The ELF file `consumer` (relative to the release, or absolute for a file of the base)
    /// needs the library at `path` (absolute, as the builder's loader resolved it).
    Need { consumer: String, path: String },
    /// `path` (absolute; a file, a link or a directory tree) is there for `reason`.
    Add { path: String, reason: String },
}

/// Parses the `why` file; `source` names it in errors.
pub fn parse_why(text: &str, source: &Path) -> Result<Vec<WhyLine>, MinimalError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: &str| MinimalError::Why {
            path: source.to_path_buf(),
            line: i + 1,
            message: format!("{message}: {line:?}"),
        };
        let fields: Vec<&str> = line.splitn(3, '\t').collect();
        let parsed = match fields.as_slice() {
            ["need", consumer, path] if !consumer.is_empty() => {
                WhyLine::Need { consumer: consumer.to_string(), path: path.to_string() }
            }
            ["add", path, reason] if !reason.is_empty() => {
                WhyLine::Add { path: path.to_string(), reason: reason.to_string() }
            }
            _ => return Err(bad("expected `need<TAB>CONSUMER<TAB>PATH` or `add<TAB>PATH<TAB>REASON`")),
        };
        let path = match &parsed {
            WhyLine::Need { path, .. } | WhyLine::Add { path, .. } => path,
        };
        if !path.starts_with('/') {
            return Err(bad("the path is not absolute"));
        }
        out.push(parsed);
    }
    Ok(out)
}

/// How a consumer is named in a reason: without the versions of ERTS and of applications, so
/// that the base layer (which holds the reasons) does not change when only a version does.
/// `erts-13.1.5/bin/beam.smp` → `erts/bin/beam.smp`, `lib/zlib_nif-0.1.0/priv/x.so` →
/// `zlib_nif/priv/x.so` (a leading release directory, `NAME/` when several releases were built,
/// is left out too); anything else as given.
pub fn consumer_label(consumer: &str) -> String {
    let parts: Vec<&str> = consumer.split('/').collect();
    if !consumer.starts_with('/') {
        for (i, part) in parts.iter().enumerate() {
            if part.starts_with("erts-") && i + 1 < parts.len() {
                return format!("erts/{}", parts[i + 1..].join("/"));
            }
            if *part == "lib" && i + 2 < parts.len() {
                let app = parts[i + 1].rsplit_once('-').map_or(parts[i + 1], |(name, _)| name);
                return format!("{app}/{}", parts[i + 2..].join("/"));
            }
        }
    }
    consumer.to_string()
}

/// Reasons by layer path (relative, no leading `/`). A path without reasons takes those of its
/// nearest ancestor that has some (a directory tree is recorded once, at its root).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reasons {
    pub files: BTreeMap<String, BTreeSet<String>>,
}

impl Reasons {
    pub fn add(&mut self, path: &str, reason: impl Into<String>) {
        self.files.entry(path.trim_start_matches('/').to_string()).or_default().insert(reason.into());
    }

    /// The reasons for `path`, or for its nearest ancestor that has some.
    pub fn lookup(&self, path: &str) -> Option<&BTreeSet<String>> {
        let mut p = path.trim_start_matches('/').trim_end_matches('/');
        loop {
            if let Some(r) = self.files.get(p) {
                return Some(r);
            }
            p = p.rsplit_once('/')?.0;
        }
    }

    /// Canonical JSON (what goes into the layer).
    pub fn to_json(&self) -> Result<Vec<u8>, MinimalError> {
        crate::image::canonical_json(self).map_err(MinimalError::Json)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Reasons, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_need_and_add_lines() {
        let text = "need\terts-13.1.5/bin/beam.smp\t/lib/x86_64-linux-gnu/libz.so.1\n\n\
                    add\t/bin/busybox\tbusybox: the shell\n";
        let lines = parse_why(text, Path::new("why")).unwrap();
        assert_eq!(
            lines,
            vec![
                WhyLine::Need {
                    consumer: "erts-13.1.5/bin/beam.smp".into(),
                    path: "/lib/x86_64-linux-gnu/libz.so.1".into()
                },
                WhyLine::Add { path: "/bin/busybox".into(), reason: "busybox: the shell".into() },
            ]
        );
        for bad in ["need\tx", "what\ta\tb", "add\trelative\treason", "add\t/x\t"] {
            let e = parse_why(bad, Path::new("/out/base/why")).unwrap_err().to_string();
            assert!(e.contains("/out/base/why") && e.contains("line 1"), "{e}");
        }
    }

    #[test]
    fn consumer_labels_leave_versions_out() {
        assert_eq!(consumer_label("erts-13.1.5/bin/beam.smp"), "erts/bin/beam.smp");
        assert_eq!(consumer_label("lib/zlib_nif-0.1.0/priv/zlib_nif.so"), "zlib_nif/priv/zlib_nif.so");
        assert_eq!(consumer_label("lib/my-app-1.2.0/priv/x"), "my-app/priv/x");
        assert_eq!(consumer_label("/usr/lib/ossl-modules/legacy.so"), "/usr/lib/ossl-modules/legacy.so");
        assert_eq!(consumer_label("web/erts-13.1.5/bin/epmd"), "erts/bin/epmd");
        assert_eq!(consumer_label("web/lib/crypto-5.1/priv/lib/crypto.so"), "crypto/priv/lib/crypto.so");
    }

    #[test]
    fn lookup_falls_back_to_the_nearest_ancestor() {
        let mut r = Reasons::default();
        r.add("/usr/share/zoneinfo", "tz");
        r.add("usr/lib/libz.so.1", "needed by a");
        r.add("usr/lib/libz.so.1", "needed by b");
        assert_eq!(r.lookup("usr/share/zoneinfo/Europe/Paris").unwrap().len(), 1);
        assert_eq!(r.lookup("usr/lib/libz.so.1").unwrap().len(), 2);
        assert!(r.lookup("usr/lib/libc.so.6").is_none());
        let json = r.to_json().unwrap();
        assert_eq!(Reasons::from_json(&json).unwrap(), r);
        assert_eq!(r.to_json().unwrap(), json, "not deterministic");
    }
}
