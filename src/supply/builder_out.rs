//! Facts the builder writes beside the release (`src/builder/assemble.sh` and friends), read into
//! [`Facts`](super::facts::Facts):
//!
//! - `OUT/licenses`: the licences each dependency's package metadata declares, one line per
//!   application, `NAME<TAB>LICENCE<TAB>LICENCE...` (mix: `deps/NAME/hex_metadata.config`;
//!   rebar3: the `licenses` of the dependency's `.app`);
//! - `OUT/base/packages` (with `--base minimal`): the distribution package of each regular file
//!   the builder gathered for the minimal base, `PATH<TAB>PACKAGE<TAB>VERSION<TAB>ARCH` (dpkg's
//!   names: `libc6:amd64`), and `OUT/base/distro`: the builder's `/etc/os-release` `ID`.
//!
//! A missing file means the builder knew nothing of that kind (an older builder script, Alpine's
//! apk): nothing is listed, which the SBOM says as NOASSERTION.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BuilderFactsError {
    #[error("cannot read the builder's {what} {path}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the builder's {what} {path}, line {line}: expected {expected}")]
    Line { what: &'static str, path: PathBuf, line: usize, expected: &'static str },
}

/// A distribution package some files of the image come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DistroPackage {
    /// `debian` (os-release `ID`): the purl namespace.
    pub distro: String,
    pub name: String,
    pub version: String,
    pub arch: String,
    /// How many files of the image it gave.
    pub files: usize,
}

/// The file at `path`, or None when there is none.
fn read_optional(path: &Path, what: &'static str) -> Result<Option<String>, BuilderFactsError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(BuilderFactsError::Read { what, path: path.to_path_buf(), source }),
    }
}

/// `OUT/licenses`: licences by application name (empty when the builder wrote none).
pub fn read_licenses(out: &Path) -> Result<BTreeMap<String, Vec<String>>, BuilderFactsError> {
    let path = out.join("licenses");
    let Some(text) = read_optional(&path, "licence list")? else { return Ok(BTreeMap::new()) };
    let mut map = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut fields = line.split('\t');
        let name = fields.next().unwrap_or_default().trim();
        if name.is_empty() {
            let expected = "NAME<TAB>LICENCE...";
            return Err(BuilderFactsError::Line { what: "licence list", path, line: i + 1, expected });
        }
        // Control characters say nothing about a licence (and are no part of an SPDX name).
        let clean = |l: &str| l.chars().filter(|c| !c.is_control()).collect::<String>().trim().to_string();
        let licenses: Vec<String> = fields.map(clean).filter(|l| !l.is_empty()).collect();
        if !licenses.is_empty() {
            map.insert(name.to_string(), licenses);
        }
    }
    Ok(map)
}

/// `OUT/base/packages` of the minimal base in `base_dir`, restricted to the files `in_layer`
/// keeps (layer paths, no leading `/`): the packages with how many of those files each gave.
pub fn read_base_packages(
    base_dir: &Path,
    in_layer: &BTreeSet<String>,
) -> Result<Vec<DistroPackage>, BuilderFactsError> {
    let path = base_dir.join("packages");
    let Some(text) = read_optional(&path, "package list of the minimal base")? else { return Ok(Vec::new()) };
    let distro = read_optional(&base_dir.join("distro"), "distribution name")?
        .map(|d| d.trim().to_lowercase())
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        .unwrap_or_else(|| "debian".to_string());
    let mut counts: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [file, package, version, arch] = fields.as_slice() else {
            let expected = "PATH<TAB>PACKAGE<TAB>VERSION<TAB>ARCH";
            return Err(BuilderFactsError::Line { what: "package list", path, line: i + 1, expected });
        };
        if !in_layer.contains(file.trim_start_matches('/')) {
            continue;
        }
        // dpkg's `libc6:amd64` is the package `libc6`.
        let name = package.split_once(':').map_or(*package, |(n, _)| n);
        *counts.entry((name.to_string(), version.to_string(), arch.to_string())).or_default() += 1;
    }
    Ok(counts
        .into_iter()
        .map(|((name, version, arch), files)| DistroPackage { distro: distro.clone(), name, version, arch, files })
        .collect())
}

/// `pkg:deb/DISTRO/NAME@VERSION?arch=ARCH`, the version percent-encoded as purl requires
/// (`1:2.3+dfsg` → `1%3A2.3%2Bdfsg`).
pub fn deb_purl(p: &DistroPackage) -> String {
    let mut version = String::new();
    for b in p.version.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            version.push(char::from(b));
        } else {
            version.push_str(&format!("%{b:02X}"));
        }
    }
    format!("pkg:deb/{}/{}@{version}?arch={}", p.distro, p.name.to_lowercase(), p.arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licences_by_application() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_licenses(dir.path()).unwrap().is_empty());
        std::fs::write(
            dir.path().join("licenses"),
            "jason\tApache-2.0\nplug\tApache 2.0\tMIT\nbare\nodd\t\u{1}\u{2}\t I\u{7}SC \n\n",
        )
        .unwrap();
        let map = read_licenses(dir.path()).unwrap();
        assert_eq!(map["jason"], ["Apache-2.0"]);
        assert_eq!(map["plug"], ["Apache 2.0", "MIT"]);
        assert!(!map.contains_key("bare"));
        assert_eq!(map["odd"], ["ISC"]);
        std::fs::write(dir.path().join("licenses"), "\tMIT\n").unwrap();
        let err = read_licenses(dir.path()).unwrap_err().to_string();
        assert!(err.contains("licenses") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn packages_of_the_files_the_layer_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let layer: BTreeSet<String> =
            ["usr/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libm.so.6", "usr/bin/busybox"]
                .map(String::from)
                .into();
        assert!(read_base_packages(dir.path(), &layer).unwrap().is_empty());
        std::fs::write(
            dir.path().join("packages"),
            "/usr/bin/busybox\tbusybox-static\t1:1.35.0-4+b3\tamd64\n\
             /usr/lib/x86_64-linux-gnu/libc.so.6\tlibc6:amd64\t2.36-9+deb12u7\tamd64\n\
             /usr/lib/x86_64-linux-gnu/libm.so.6\tlibc6:amd64\t2.36-9+deb12u7\tamd64\n\
             /usr/lib/x86_64-linux-gnu/libz.so.1.2.13\tzlib1g:amd64\t1:1.2.13.dfsg-1\tamd64\n",
        )
        .unwrap();
        let p = read_base_packages(dir.path(), &layer).unwrap();
        let names: Vec<(&str, usize)> = p.iter().map(|p| (p.name.as_str(), p.files)).collect();
        // zlib's file is not in the layer (--slim-erts left out what needed it).
        assert_eq!(names, [("busybox-static", 1), ("libc6", 2)]);
        assert_eq!(deb_purl(&p[0]), "pkg:deb/debian/busybox-static@1%3A1.35.0-4%2Bb3?arch=amd64");
        assert_eq!(deb_purl(&p[1]), "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64");
        std::fs::write(dir.path().join("distro"), "ubuntu\n").unwrap();
        assert_eq!(read_base_packages(dir.path(), &layer).unwrap()[0].distro, "ubuntu");
        std::fs::write(dir.path().join("packages"), "/x\tonly-two\n").unwrap();
        let err = read_base_packages(dir.path(), &layer).unwrap_err().to_string();
        assert!(err.contains("packages") && err.contains("line 1"), "{err}");
    }
}
