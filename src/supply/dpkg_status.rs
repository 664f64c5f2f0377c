//! The packages of a distribution base image (`--base debian`, a base from a layout or the
//! engine), read from its layers: dpkg's `var/lib/dpkg/status` (installed packages), and the
//! distribution's `ID` from `etc/os-release`. The minimal base lists the packages of its files
//! instead (`builder_out::read_base_packages`).

use super::builder_out::DistroPackage;
use crate::layer::LayerBlob;
use crate::store::BlobStore;

/// The files read: dpkg's database and os-release (`etc/os-release` is a link on Debian). The
/// build reads them ahead, in one scan, while the base is preloaded (`commands/build/base_preload.rs`).
pub const FILES: [&str; 3] = ["var/lib/dpkg/status", "etc/os-release", "usr/lib/os-release"];

/// The installed packages of the image whose `layers` are in `store`; none when it has no dpkg
/// database (scratch, Alpine: apk is not read).
pub fn of_image(store: &BlobStore, layers: &[LayerBlob]) -> std::io::Result<Vec<DistroPackage>> {
    let [status, etc, usr] = <[_; 3]>::try_from(crate::base::read_files_from_layers(store, layers, &FILES)?)
        .map_err(|_| std::io::Error::other("one answer a file"))?;
    let Some(status) = status else { return Ok(Vec::new()) };
    let os_release = etc.or(usr);
    let distro = os_release.as_deref().map(|b| String::from_utf8_lossy(b).into_owned());
    Ok(parse(&String::from_utf8_lossy(&status), distro.as_deref()))
}

/// The `ID` of an os-release file (`debian` when there is none).
fn distro_id(os_release: Option<&str>) -> String {
    os_release
        .and_then(|text| text.lines().find_map(|l| l.strip_prefix("ID=")))
        .map(|id| id.trim().trim_matches('"').to_string())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| "debian".to_string())
}

/// The installed packages of a dpkg status file, by name.
pub fn parse(status: &str, os_release: Option<&str>) -> Vec<DistroPackage> {
    let distro = distro_id(os_release);
    let mut out: Vec<DistroPackage> = status
        .split("\n\n")
        .filter_map(|stanza| {
            let field = |name: &str| {
                stanza.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':'))).map(str::trim)
            };
            let installed = field("Status").is_some_and(|s| s.ends_with(" installed"));
            let (name, version) = (field("Package")?, field("Version")?);
            installed.then(|| DistroPackage {
                distro: distro.clone(),
                name: name.to_string(),
                version: version.to_string(),
                arch: field("Architecture").unwrap_or("all").to_string(),
                files: 0,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: libc6\nStatus: install ok installed\nPriority: optional\n\
Architecture: amd64\nVersion: 2.36-9+deb12u10\nDescription: GNU C Library\n continued: line\n\n\
Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u11\n\n\
Package: removed-one\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n";

    #[test]
    fn installed_packages_with_their_versions_and_the_distribution() {
        let p = parse(STATUS, Some("PRETTY_NAME=\"Debian GNU/Linux 12\"\nID=debian\nVERSION_ID=\"12\"\n"));
        let names: Vec<(&str, &str, &str)> =
            p.iter().map(|d| (d.name.as_str(), d.version.as_str(), d.arch.as_str())).collect();
        assert_eq!(names, [("base-files", "12.4+deb12u11", "amd64"), ("libc6", "2.36-9+deb12u10", "amd64")]);
        assert!(p.iter().all(|d| d.distro == "debian" && d.files == 0));
        assert_eq!(parse(STATUS, Some("ID=ubuntu\n"))[0].distro, "ubuntu");
        assert_eq!(parse(STATUS, None)[0].distro, "debian");
        assert!(parse("", None).is_empty());
    }
}
