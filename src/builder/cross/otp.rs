//! What an image's Erlang/OTP installation is, read from its `ROOT/releases` directory (no
//! program runs): the OTP release, the ERTS version and every application's version
//! (`releases/OTP/installed_application_versions`, which lists `erts-VSN` too). Compile-once needs
//! both builder images to have exactly the same, and tells the release's OTP applications from
//! Elixir's and the project's by it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// Where builder images keep Erlang/OTP: Debian's packages, then a source build's default.
pub const OTP_ROOTS: &[&str] = &["/usr/lib/erlang", "/usr/local/lib/erlang"];

/// An image's Erlang/OTP installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpInstall {
    /// The directory it is in (`/usr/lib/erlang`).
    pub root: String,
    /// `OTP_VERSION` (`25.2.3`).
    pub otp_version: String,
    pub erts_version: String,
    /// Application name → version, as installed.
    pub apps: BTreeMap<String, String>,
}

impl std::fmt::Display for OtpInstall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Erlang/OTP {} (ERTS {}) in {}", self.otp_version, self.erts_version, self.root)
    }
}

/// Reads the tar of `ROOT/releases` (entries `releases/...`).
pub fn parse_releases(root: &str, tar: &[u8]) -> Result<OtpInstall, String> {
    let mut archive = tar::Archive::new(tar);
    let (mut otp_version, mut installed) = (None, None);
    let entries = archive.entries().map_err(|e| format!("{root}/releases: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{root}/releases: {e}"))?;
        let path = entry.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        if name != "OTP_VERSION" && name != "installed_application_versions" {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).map_err(|e| format!("{root}/{path}: {e}"))?;
        if name == "OTP_VERSION" {
            otp_version = Some(text.trim().to_string());
        } else {
            installed = Some(text);
        }
    }
    let otp_version = otp_version.ok_or_else(|| format!("no {root}/releases/*/OTP_VERSION"))?;
    let installed = installed.ok_or_else(|| format!("no {root}/releases/*/installed_application_versions"))?;
    let mut apps = BTreeMap::new();
    for line in installed.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, vsn) = split_versioned(line).ok_or_else(|| format!("{root}: {line:?} is not NAME-VERSION"))?;
        apps.insert(name.to_string(), vsn.to_string());
    }
    let erts_version =
        apps.remove("erts").ok_or_else(|| format!("{root}: installed_application_versions names no erts"))?;
    Ok(OtpInstall { root: root.to_string(), otp_version, erts_version, apps })
}

/// `kernel-8.5.3` → (`kernel`, `8.5.3`): the name ends at the last `-` before a digit.
pub fn split_versioned(dir: &str) -> Option<(&str, &str)> {
    let (name, vsn) = dir.rsplit_once('-')?;
    (!name.is_empty() && vsn.starts_with(|c: char| c.is_ascii_digit())).then_some((name, vsn))
}

/// Why the two installations are not the same, or None when they are.
pub fn difference(native: &OtpInstall, target: &OtpInstall) -> Option<String> {
    if native.root != target.root {
        return Some(format!(
            "Erlang/OTP is in {} on the native builder, in {} on the target's",
            native.root, target.root
        ));
    }
    if native.otp_version != target.otp_version || native.erts_version != target.erts_version {
        return Some(format!("the native builder has {native}, the target's {target}"));
    }
    let differing: Vec<String> = native
        .apps
        .iter()
        .filter(|(name, vsn)| target.apps.get(*name) != Some(vsn))
        .map(|(name, vsn)| match target.apps.get(name) {
            Some(other) => format!("{name} {vsn} and {other}"),
            None => format!("{name} {vsn} only on the native builder"),
        })
        .chain(
            target.apps.keys().filter(|n| !native.apps.contains_key(*n)).map(|n| format!("{n} only on the target's")),
        )
        .collect();
    (!differing.is_empty()).then(|| format!("the Erlang/OTP applications differ: {}", differing.join(", ")))
}

/// The release's `lib/` directories (`NAME-VSN`) that come from the Erlang/OTP installation
/// `otp`: not the project's own applications or dependencies (`project_apps`), and installed
/// there at that version. An OTP application at another version is an error (the release is not
/// the installation's); what is neither (Elixir's applications) is left out.
pub fn otp_dirs(lib_dirs: &[String], project_apps: &BTreeSet<String>, otp: &OtpInstall) -> Result<Vec<String>, String> {
    let mut dirs = Vec::new();
    for dir in lib_dirs {
        let Some((name, vsn)) = split_versioned(dir) else { continue };
        if project_apps.contains(name) {
            continue;
        }
        match otp.apps.get(name) {
            Some(installed) if installed == vsn => dirs.push(dir.clone()),
            Some(installed) => {
                return Err(format!("the release has {dir}, the target's builder {name}-{installed}"));
            }
            None => {}
        }
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn releases_tar(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, text) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, text.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn install() -> OtpInstall {
        let tar = releases_tar(&[
            ("releases/25/OTP_VERSION", "25.2.3\n"),
            ("releases/25/installed_application_versions", "erts-13.1.5\nstdlib-4.2\nkernel-8.5.3\ncrypto-5.1.2\n"),
            ("releases/start_erl.data", "13.1.5 25\n"),
        ]);
        parse_releases("/usr/lib/erlang", &tar).unwrap()
    }

    #[test]
    fn an_installation_is_read_from_its_releases_directory() {
        let otp = install();
        assert_eq!((otp.otp_version.as_str(), otp.erts_version.as_str()), ("25.2.3", "13.1.5"));
        assert_eq!(otp.apps.get("crypto").map(String::as_str), Some("5.1.2"));
        assert!(!otp.apps.contains_key("erts"));
        assert_eq!(otp.to_string(), "Erlang/OTP 25.2.3 (ERTS 13.1.5) in /usr/lib/erlang");
        let e = parse_releases("/x", &releases_tar(&[("releases/25/OTP_VERSION", "25")])).unwrap_err();
        assert!(e.contains("installed_application_versions"), "{e}");
    }

    #[test]
    fn versions_must_match_exactly() {
        let native = install();
        assert_eq!(difference(&native, &native.clone()), None);
        let mut target = native.clone();
        target.apps.insert("crypto".into(), "5.1.3".into());
        assert_eq!(difference(&native, &target).unwrap(), "the Erlang/OTP applications differ: crypto 5.1.2 and 5.1.3");
        let mut target = native.clone();
        target.erts_version = "13.2".into();
        assert!(difference(&native, &target).unwrap().contains("ERTS 13.2"));
        target = native.clone();
        target.apps.insert("wx".into(), "2.2.1".into());
        assert!(difference(&native, &target).unwrap().contains("wx only on the target's"));
    }

    #[test]
    fn the_release_otp_directories_are_told_from_elixir_and_the_project() {
        let otp = install();
        let lib: Vec<String> =
            ["crypto-5.1.2", "elixir-1.14.0", "hello_web-0.1.0", "kernel-8.5.3", "logger-1.14.0", "stdlib-4.2"]
                .map(String::from)
                .to_vec();
        let project: BTreeSet<String> = ["hello_web".to_string()].into();
        assert_eq!(otp_dirs(&lib, &project, &otp).unwrap(), ["crypto-5.1.2", "kernel-8.5.3", "stdlib-4.2"]);
        let e = otp_dirs(&["kernel-8.5.4".to_string()], &project, &otp).unwrap_err();
        assert!(e.contains("kernel-8.5.4") && e.contains("kernel-8.5.3"), "{e}");
        assert_eq!(split_versioned("common_test-1.23.3"), Some(("common_test", "1.23.3")));
        assert_eq!(split_versioned("no_version"), None);
    }
}
