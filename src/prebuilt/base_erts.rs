//! A release assembled with `include_erts: false` runs on the ERTS of the image: the base must
//! have exactly the version the release was built with (`erts-VSN/bin/beam.smp` somewhere, as
//! Debian's `/usr/lib/erlang/erts-VSN` or an official image's `/usr/local/lib/erlang/erts-VSN`),
//! and the start script finds it through `erl` on `PATH`.

use crate::layer::LayerBlob;
use crate::store::BlobStore;
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BaseErtsError {
    #[error("cannot read a layer of the base image ({path}): {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "release {release} was assembled without ERTS (include_erts: false) and needs ERTS {wanted} from the \
         base image, but base image {base} has {}: use a base image with exactly ERTS {wanted} (Erlang/OTP \
         of the builder), or set include_erts: true (the default) in the release",
        found_list(.found)
    )]
    Missing { release: String, wanted: String, base: String, found: Vec<String> },
}

fn found_list(found: &[String]) -> String {
    if found.is_empty() { "no ERTS at all".into() } else { format!("only ERTS {}", found.join(", ")) }
}

/// The ERTS versions the layers hold (`.../erts-VSN/bin/beam.smp`), as found (whiteouts of later
/// layers are not applied: a base that deletes its ERTS is not worth the work).
pub fn erts_versions(store: &BlobStore, layers: &[LayerBlob]) -> Result<BTreeSet<String>, BaseErtsError> {
    let mut found = BTreeSet::new();
    for layer in layers {
        let path = store.blob_path(&layer.digest);
        let read = |source| BaseErtsError::Read { path: path.clone(), source };
        let file = std::fs::File::open(&path).map_err(read)?;
        let mut archive = tar::Archive::new(crate::layer::decoder_for(&layer.media_type, file).map_err(read)?);
        for entry in archive.entries().map_err(read)? {
            let entry = entry.map_err(read)?;
            let p = entry.path().map_err(read)?.to_string_lossy().into_owned();
            if let Some(v) = erts_version_of(&p) {
                found.insert(v);
            }
        }
    }
    Ok(found)
}

/// `usr/lib/erlang/erts-13.1.5/bin/beam.smp` → `13.1.5`.
fn erts_version_of(path: &str) -> Option<String> {
    let dir = path.strip_suffix("/bin/beam.smp")?;
    let name = dir.rsplit('/').next()?;
    name.strip_prefix("erts-").map(str::to_string)
}

/// Checks that a release needing ERTS `wanted` can run on a base with `found`.
pub fn check(release: &str, wanted: &str, base: &str, found: &BTreeSet<String>) -> Result<(), BaseErtsError> {
    if found.contains(wanted) {
        return Ok(());
    }
    Err(BaseErtsError::Missing {
        release: release.to_string(),
        wanted: wanted.to_string(),
        base: base.to_string(),
        found: found.iter().cloned().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_versions_in_paths() {
        assert_eq!(erts_version_of("usr/lib/erlang/erts-13.1.5/bin/beam.smp").as_deref(), Some("13.1.5"));
        assert_eq!(erts_version_of("./usr/local/lib/erlang/erts-14.0/bin/beam.smp").as_deref(), Some("14.0"));
        assert_eq!(erts_version_of("usr/lib/erlang/erts-13.1.5/bin/erlexec"), None);
        assert_eq!(erts_version_of("app/bin/beam.smp"), None);
    }

    #[test]
    fn refuses_a_base_without_the_exact_erts() {
        let found = BTreeSet::from(["13.1.4".to_string()]);
        let e = check("web", "13.1.5", "docker-daemon:x", &found).unwrap_err().to_string();
        assert!(e.contains("needs ERTS 13.1.5") && e.contains("only ERTS 13.1.4"), "{e}");
        let e = check("web", "13.1.5", "scratch", &BTreeSet::new()).unwrap_err().to_string();
        assert!(e.contains("has no ERTS at all"), "{e}");
        check("web", "13.1.4", "x", &found).unwrap();
    }
}
