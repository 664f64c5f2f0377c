//! The upgrade package: a release tarball `release_handler:unpack_release/1` takes, named
//! `NAME-VSN.tar.gz` (it looks for `releases/NAME-VSN.tar.gz` and reads `releases/NAME-VSN.rel`
//! out of it). It holds:
//!
//! - `releases/NAME-VSN.rel` and `releases/VSN/` of the new release (its boot script, `sys.config`,
//!   `vm.args`, consolidated protocols, ...) with the `relup`, and `env.sh` with the cookie hook
//!   the image's has;
//! - the `lib/APP-VSN/` directories of the applications whose version changed, each with its
//!   appup in `ebin/`. The others are the deployed release's own, already in the root.
//!
//! No `RELEASES`: release_handler reads that file when it starts, so the deployed image carries
//! it (`--hot-upgrades`); `unpack_release` adds the new release to it. Entries are written in
//! order with fixed times and owners: the same inputs give the same bytes.

use super::compare::UpgradePlan;
use crate::release::Release;
use std::io::{self, Write};
use std::path::Path;

/// What goes into the package besides the new release's files.
pub struct PackageInput<'a> {
    pub new: &'a Release,
    pub plan: &'a UpgradePlan,
    pub relup: &'a str,
    /// Appended to `releases/VSN/env.sh` (the image's cookie hook), or empty.
    pub env_sh_hook: &'a str,
    /// Every entry's time (SOURCE_DATE_EPOCH).
    pub mtime: u64,
}

/// The file name release_handler unpacks: `NAME-VSN.tar.gz`.
pub fn file_name(plan: &UpgradePlan) -> String {
    format!("{}-{}.tar.gz", plan.name, plan.to)
}

/// The package's bytes (gzip).
pub fn build(i: &PackageInput<'_>) -> io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(crate::layer::GZIP_LEVEL));
    let mut b = tar::Builder::new(gz);
    let (rel, plan) = (i.new, i.plan);
    let rel_file = format!("releases/{}/{}.rel", rel.version, rel.name);
    dir(&mut b, "releases", i.mtime)?;
    file(
        &mut b,
        &format!("releases/{}-{}.rel", plan.name, plan.to),
        &std::fs::read(rel.root.join(&rel_file))?,
        0o644,
        i.mtime,
    )?;
    let vsn_dir = format!("releases/{}", rel.version);
    tree(&mut b, &rel.root.join(&vsn_dir), &vsn_dir, i.mtime, &mut |path, bytes| {
        if path == format!("{vsn_dir}/env.sh") {
            bytes.extend_from_slice(i.env_sh_hook.as_bytes());
        }
        path != format!("{vsn_dir}/relup")
    })?;
    file(&mut b, &format!("{vsn_dir}/relup"), i.relup.as_bytes(), 0o644, i.mtime)?;
    dir(&mut b, "lib", i.mtime)?;
    for app in &plan.apps {
        let appup = format!("{}/ebin/{}.appup", app.dir, app.name);
        tree(&mut b, &rel.root.join(&app.dir), &app.dir, i.mtime, &mut |path, _| path != appup)?;
        file(&mut b, &appup, app.appup_text().as_bytes(), 0o644, i.mtime)?;
    }
    b.into_inner()?.finish()
}

fn header(kind: tar::EntryType, size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn dir<W: Write>(b: &mut tar::Builder<W>, path: &str, mtime: u64) -> io::Result<()> {
    b.append_data(&mut header(tar::EntryType::Directory, 0, 0o755, mtime), format!("{path}/"), io::empty())
}

fn file<W: Write>(b: &mut tar::Builder<W>, path: &str, bytes: &[u8], mode: u32, mtime: u64) -> io::Result<()> {
    b.append_data(&mut header(tar::EntryType::Regular, bytes.len() as u64, mode, mtime), path, bytes)
}

/// The directory `src` as `at/...`, sorted; `keep(path, bytes)` may change a file's bytes and says
/// whether it goes in. Links are written as links.
fn tree<W: Write>(
    b: &mut tar::Builder<W>,
    src: &Path,
    at: &str,
    mtime: u64,
    keep: &mut dyn FnMut(&str, &mut Vec<u8>) -> bool,
) -> io::Result<()> {
    for e in walkdir::WalkDir::new(src).sort_by_file_name().follow_links(false) {
        let e = e.map_err(io::Error::other)?;
        let rel = e.path().strip_prefix(src).unwrap_or(e.path()).to_string_lossy().into_owned();
        let path = if rel.is_empty() { at.to_string() } else { format!("{at}/{rel}") };
        let meta = e.path().symlink_metadata()?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
        if meta.is_dir() {
            dir(b, &path, mtime)?;
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(e.path())?;
            let mut h = header(tar::EntryType::Symlink, 0, 0o777, mtime);
            b.append_link(&mut h, &path, target)?;
        } else {
            let mut bytes = std::fs::read(e.path())?;
            if keep(&path, &mut bytes) {
                file(b, &path, &bytes, mode, mtime)?;
            }
        }
    }
    Ok(())
}

/// The paths in a package (for tests and `inspect`-like checks).
pub fn list(package: &[u8]) -> io::Result<Vec<String>> {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(package));
    a.entries()?.map(|e| e.and_then(|e| Ok(e.path()?.to_string_lossy().into_owned()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{App, Flavour};
    use crate::upgrade::appup::Instruction;
    use crate::upgrade::compare::{AppUpgrade, Appup};
    use std::fs;

    #[test]
    fn holds_the_rel_file_the_version_dir_with_the_relup_and_the_new_lib_dirs() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for p in ["releases/0.2.0/consolidated", "lib/counter-0.2.0/ebin", "lib/kernel-8.5.3/ebin", "bin"] {
            fs::create_dir_all(root.join(p)).unwrap();
        }
        fs::write(root.join("releases/0.2.0/counter.rel"), "{release,...}.\n").unwrap();
        fs::write(root.join("releases/0.2.0/env.sh"), "#!/bin/sh\n").unwrap();
        fs::write(root.join("releases/0.2.0/start.boot"), "boot").unwrap();
        fs::write(root.join("releases/0.2.0/consolidated/Elixir.Enumerable.beam"), "e").unwrap();
        fs::write(root.join("releases/COOKIE"), "secret").unwrap();
        fs::write(root.join("lib/counter-0.2.0/ebin/counter.app"), "app").unwrap();
        fs::write(root.join("lib/kernel-8.5.3/ebin/kernel.app"), "k").unwrap();
        let app = |n: &str, v: &str| App { name: n.into(), version: v.into(), dir: format!("{n}-{v}") };
        let rel = Release {
            root: root.to_path_buf(),
            name: "counter".into(),
            version: "0.2.0".into(),
            erts_version: None,
            required_erts: "13.1.5".into(),
            flavour: Flavour::Mix,
            apps: vec![app("kernel", "8.5.3"), app("counter", "0.2.0")],
        };
        let plan = UpgradePlan {
            name: "counter".into(),
            from: "0.1.0".into(),
            to: "0.2.0".into(),
            apps: vec![AppUpgrade {
                name: "counter".into(),
                from: "0.1.0".into(),
                to: "0.2.0".into(),
                dir: "lib/counter-0.2.0".into(),
                appup: Appup::Drafted { instructions: vec![Instruction::Update("Elixir.Counter.Server".into())] },
            }],
        };
        let input =
            PackageInput { new: &rel, plan: &plan, relup: "{\"0.2.0\",[],[]}.\n", env_sh_hook: "# hook\n", mtime: 0 };
        let bytes = build(&input).unwrap();
        assert_eq!(bytes, build(&input).unwrap(), "the same inputs give the same bytes");
        assert_eq!(file_name(&plan), "counter-0.2.0.tar.gz");
        let paths = list(&bytes).unwrap();
        assert_eq!(
            paths,
            [
                "releases/",
                "releases/counter-0.2.0.rel",
                "releases/0.2.0/",
                "releases/0.2.0/consolidated/",
                "releases/0.2.0/consolidated/Elixir.Enumerable.beam",
                "releases/0.2.0/counter.rel",
                "releases/0.2.0/env.sh",
                "releases/0.2.0/start.boot",
                "releases/0.2.0/relup",
                "lib/",
                "lib/counter-0.2.0/",
                "lib/counter-0.2.0/ebin/",
                "lib/counter-0.2.0/ebin/counter.app",
                "lib/counter-0.2.0/ebin/counter.appup",
            ]
        );
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            match path.as_str() {
                "releases/0.2.0/env.sh" => assert_eq!(text, "#!/bin/sh\n# hook\n"),
                "lib/counter-0.2.0/ebin/counter.appup" => assert!(text.contains("{update, 'Elixir.Counter.Server'")),
                "releases/0.2.0/relup" => assert_eq!(text, "{\"0.2.0\",[],[]}.\n"),
                _ => {}
            }
        }
    }
}
