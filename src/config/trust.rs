//! What a project's own `release-oci.toml` may not decide. The file comes with the checkout, and
//! a checkout may be an untrusted pull request built in CI: its settings may shape the image, but
//! not act on the machine that builds it. So a project file cannot run the build on the host
//! (`builder = "host"`), write or read outside the project (`outputs`, `from_release`, `tini`, an
//! `oci:` base), move the blob cache (`cache_dir`) or load into the local engine (`load`). The
//! same values as flags, or in a file the user names with `--config`, are the user's own choice.
//! See docs/trust.md.

use super::{ConfigError, ProjectConfig};
use std::path::{Component, Path, PathBuf};

impl ProjectConfig {
    /// Refuses the keys of a project's own file (found at the project root, not named with
    /// `--config`) that would act on this machine, naming the key and the flag to pass instead.
    pub fn check_untrusted(&self) -> Result<(), ConfigError> {
        let refuse = |key: &str, reason: &str, flag: &str| ConfigError::Untrusted {
            path: self.dir.join(super::FILE_NAME),
            key: key.to_string(),
            reason: reason.to_string(),
            flag: flag.to_string(),
        };
        if self.builder.as_deref() == Some("host") {
            return Err(refuse("builder = \"host\"", "would run the project's code on this machine", "--builder host"));
        }
        if self.cache_dir.is_some() {
            return Err(refuse("cache_dir", "would move this machine's blob cache", "--cache-dir DIR"));
        }
        if self.cache_repo.is_some() {
            return Err(refuse(
                "cache_repo",
                "would read images from and push them to a registry with this machine's logins",
                "--cache-repo HOST/REPO",
            ));
        }
        if self.builder_host.is_some() {
            return Err(refuse(
                "builder_host",
                "would send the build, its secrets and build environment to an engine of the file's choosing, \
                 with this machine's SSH keys or certificates",
                "--builder-host",
            ));
        }
        if self.secrets.is_some() {
            return Err(refuse("secrets", "would hand this machine's secrets to the project's build", "--secret"));
        }
        if self.ssh.is_some() {
            return Err(refuse("ssh", "would hand this machine's SSH agent to the project's build", "--ssh"));
        }
        if self.load == Some(true) {
            return Err(refuse("load = true", "would load the image into this machine's engine", "--load"));
        }
        for (key, path, flag) in self.paths() {
            if !inside(&self.dir, &self.resolve_path(&path)) {
                return Err(refuse(&format!("{key} ({})", path.display()), "is outside the project", flag));
            }
        }
        Ok(())
    }

    /// The paths the file names, with their key and flag.
    fn paths(&self) -> Vec<(&'static str, PathBuf, &'static str)> {
        let mut out = Vec::new();
        if let Some(p) = &self.from_release {
            out.push(("from_release", p.clone(), "--from-release"));
        }
        if let Some(p) = &self.tini {
            out.push(("tini", p.clone(), "--tini"));
        }
        if let Some(p) = &self.build_ca {
            out.push(("build_ca", p.clone(), "--build-ca"));
        }
        if let Some(p) = &self.sbom_dir {
            out.push(("sbom_dir", p.clone(), "--sbom-dir"));
        }
        if let Some(hex) = &self.hex {
            if let Some(p) = &hex.client {
                out.push(("hex.client", p.clone(), "--hex-client"));
            }
            for r in hex.repos.iter().flatten() {
                if let Some(p) = &r.public_key {
                    out.push(("hex.repos.public_key", p.clone(), "--config FILE"));
                }
            }
        }
        if let Some(crate::base::BaseRef::Layout { dir, .. }) = self.base.as_deref().and_then(|b| b.parse().ok()) {
            out.push(("base", dir, "--base oci:DIR"));
        }
        if let Some(crate::upgrade::ImageRef::Layout { dir, .. }) =
            self.upgrade_from.as_deref().and_then(|r| r.parse().ok())
        {
            out.push(("upgrade_from", dir, "--upgrade-from oci:DIR"));
        }
        for o in self.outputs.iter().flatten() {
            match o.parse::<crate::sink::Target>() {
                Ok(crate::sink::Target::OciLayout { dir, .. }) => out.push(("outputs", dir, "--output")),
                Ok(crate::sink::Target::Archive { path }) => out.push(("outputs", path, "--output")),
                Err(_) => {}
            }
        }
        out
    }
}

/// Whether `path` stays inside `root`: lexically (no `..` out of it) and through the links that
/// exist already (the longest existing ancestor is resolved).
pub(super) fn inside(root: &Path, path: &Path) -> bool {
    let Some(root) = real(root) else { return false };
    real(path).is_some_and(|p| p.starts_with(&root))
}

/// `path` with its longest existing ancestor resolved (links followed) and the rest appended;
/// `None` when the rest climbs with `..`.
fn real(path: &Path) -> Option<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while existing.symlink_metadata().is_err() {
        rest.push(existing.file_name()?.to_os_string());
        if !existing.pop() {
            return None;
        }
    }
    // A name that failed to exist may be `..` itself (`a/../..`): file_name() is None for it.
    let mut out = existing.canonicalize().ok()?;
    for part in rest.iter().rev() {
        match Path::new(part).components().next() {
            Some(Component::Normal(_)) => out.push(part),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, text: &str) -> ProjectConfig {
        let mut c = ProjectConfig::parse(text).unwrap();
        c.dir = dir.to_path_buf();
        c
    }

    #[test]
    fn host_acting_keys_are_refused_with_the_flag_to_pass() {
        let dir = tempfile::tempdir().unwrap();
        for (text, flag) in [
            ("builder = \"host\"", "--builder host"),
            ("cache_dir = \"cache\"", "--cache-dir"),
            ("load = true", "--load"),
            ("outputs = [\"docker-archive:/tmp/any/file.tar\"]", "--output"),
            ("outputs = [\"oci:../sibling\"]", "--output"),
            ("from_release = \"/etc\"", "--from-release"),
            ("tini = \"../../bin/tini\"", "--tini"),
            ("base = \"oci:/var/lib/layout\"", "--base oci:DIR"),
            ("sbom_dir = \"../sboms\"", "--sbom-dir"),
            ("builder_host = \"ssh://build@arm64-1\"", "--builder-host"),
            ("builder_host = { aarch64 = \"tcp://b:2376\" }", "--builder-host"),
            ("upgrade_from = \"oci:/srv/deployed:0.1.0\"", "--upgrade-from oci:DIR"),
        ] {
            let err = config(dir.path(), text).check_untrusted().unwrap_err().to_string();
            assert!(err.contains(&format!("pass {flag}")), "{text}: {err}");
            assert!(err.contains("release-oci.toml"), "{text}: {err}");
        }
    }

    #[test]
    fn what_shapes_the_image_inside_the_project_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let text = "builder = \"docker\"\nload = false\noutputs = [\"oci:out\", \"docker-archive:dist/app.tar\"]\n\
                    from_release = \"rel\"\nbase = \"oci:base:v1\"\nports = [4000]\n\
                    slim_erts = true\ntzdata = true\nsbom = \"none\"\nsbom_dir = \"dist/sbom\"\n\
                    hot_upgrades = true\nupgrade_from = \"oci:deployed:0.1.0\"\n";
        config(dir.path(), text).check_untrusted().unwrap();
    }

    #[test]
    fn a_link_out_of_the_project_is_outside() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let err = config(dir.path(), "outputs = [\"oci:link/out\"]").check_untrusted().unwrap_err();
        assert!(err.to_string().contains("outside the project"), "{err}");
        assert!(!inside(dir.path(), &dir.path().join("a/../../x")));
        assert!(inside(dir.path(), &dir.path().join("a/b/c")));
    }
}
