//! `--hot-upgrades` (docs/hot-upgrades.md): what an image needs so that `release_handler` can
//! upgrade the running release in place while the root file system stays read-only.
//!
//! `release_handler` writes under the release root (`code:root_dir()`): it unpacks new `lib/`
//! directories there and rewrites `releases/` (`RELEASES`, `start_erl.data`, the new version's
//! directory). In the image the root, `/app`, is read-only. So the entrypoint makes a release root
//! on a volume at [`HOT_DIR`] when the release starts: `bin/` and `releases/` copied (a few KB),
//! every `lib/APP-VSN` and `erts-VSN` a symbolic link into `/app`, and runs the release from there
//! (`ERL_ROOTDIR` points the emulator at it). The image declares the volume, owned by the runtime
//! user. A stamp of the image's release ([`hot_id`]) in that root tells a root made from this
//! image (kept across `docker restart`, with any upgrade applied to it) from one another image
//! made (then it is made again).
//!
//! `release_handler` reads `releases/RELEASES` once, when it starts; `mix release` writes none,
//! so the image carries one ([`releases_file`]) naming the release as permanent, with the
//! application directories relative to the root (as `release_handler:create_RELEASES/4` writes
//! them for the root `""`).

use crate::release::Release;
use sha2::{Digest as _, Sha256};

/// Where the writable release root lives: the image's volume (no leading `/`, as layer paths are
/// written).
pub const HOT_DIR: &str = "var/lib/release-oci";
/// The release root the entrypoint makes on the volume.
pub const HOT_ROOT: &str = "var/lib/release-oci/root";
/// The file in that root that names the image release it was made from.
pub const STAMP_FILE: &str = ".release-oci-image";
/// The image label that marks an image built with `--hot-upgrades`; its value is the release root
/// on the volume (`/var/lib/release-oci/root`).
pub const LABEL: &str = "org.release-oci.hot-upgrades";

/// `releases/RELEASES` for `release` as the permanent one, its applications' directories
/// relative to the release root (`lib/NAME-VSN`): what `release_handler:create_RELEASES("",
/// RelDir, RelFile, [])` writes.
pub fn releases_file(release: &Release) -> String {
    let erts = &release.required_erts;
    let libs: Vec<String> =
        release.apps.iter().map(|a| format!("{{{},\"{}\",\"lib/{}\"}}", atom(&a.name), a.version, a.dir)).collect();
    format!(
        "%% coding: utf-8\n[{{release,\"{}\",\"{}\",\"{erts}\",\n          [{}],\n          permanent}}].\n",
        release.name,
        release.version,
        libs.join(",\n           ")
    )
}

/// An atom as Erlang writes it: bare when it is a plain lowercase name, else quoted.
fn atom(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@');
    if plain { name.to_string() } else { format!("'{}'", name.replace('\\', "\\\\").replace('\'', "\\'")) }
}

/// The stamp of the image's release: its name, version, `RELEASES` and boot script. A root on the
/// volume with another stamp was made from another image and is made again at start.
pub fn hot_id(release: &Release, releases: &str) -> String {
    let mut h = Sha256::new();
    for part in [release.name.as_bytes(), release.version.as_bytes(), releases.as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    let boot = std::fs::read(release.version_dir().join("start.boot")).unwrap_or_default();
    h.update((boot.len() as u64).to_be_bytes());
    h.update(&boot);
    hex::encode(&h.finalize()[..16])
}

/// The part of the entrypoint script that picks the release root (sets `release_root`): the one
/// on the volume (`/hot_dir/root`, [`HOT_DIR`] in images), made from `/app_dir` when it is missing
/// or stale (unless the command only talks to a running release), or `/app_dir` when the volume is
/// not writable.
pub fn entry_snippet(app_dir: &str, hot_dir: &str, id: &str) -> String {
    format!(
        r#"# Hot upgrades (docs/hot-upgrades.md): the release runs from a root on the volume /{hot_dir},
# made at start from /{app_dir} (bin/ and releases/ copied, lib/* and erts-* linked), where
# release_handler can write; /{app_dir} when the volume is not writable.
hot_root=/{hot_dir}/root
hot_id={id}
case "${{1-}}" in
  rpc|remote|pid|stop|version) ;;
  *)
    if [ "$(cat "$hot_root/{STAMP_FILE}" 2>/dev/null)" != "$hot_id" ]; then
      if ! (
        umask 022
        tmp=/{hot_dir}/.root.$$
        rm -rf "$tmp" && mkdir -p "$tmp/lib" && cp -R /{app_dir}/bin /{app_dir}/releases "$tmp/" || exit 1
        for d in /{app_dir}/lib/*; do ln -s "$d" "$tmp/lib/" || exit 1; done
        for d in /{app_dir}/erts-*; do [ ! -e "$d" ] || ln -s "$d" "$tmp/" || exit 1; done
        printf '%s' "$hot_id" >"$tmp/{STAMP_FILE}" && rm -rf "$hot_root" && mv "$tmp" "$hot_root"
      ) 2>/dev/null; then
        echo "release-oci-entry: hot upgrades are off: /{hot_dir} is not writable by $(id -u); mount a volume there (docs/hot-upgrades.md)" >&2
      fi
    fi
    ;;
esac
release_root=/{app_dir}
if [ "$(cat "$hot_root/{STAMP_FILE}" 2>/dev/null)" = "$hot_id" ]; then
  release_root=$hot_root
  ERL_ROOTDIR=$hot_root
  export ERL_ROOTDIR
fi
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{App, Flavour};

    fn release() -> Release {
        let app = |n: &str, v: &str| App { name: n.into(), version: v.into(), dir: format!("{n}-{v}") };
        Release {
            root: "/nonexistent".into(),
            name: "counter".into(),
            version: "0.1.0".into(),
            erts_version: Some("13.1.5".into()),
            required_erts: "13.1.5".into(),
            flavour: Flavour::Mix,
            apps: vec![app("kernel", "8.5.3"), app("counter", "0.1.0"), app("Elixir.Odd", "1")],
        }
    }

    #[test]
    fn releases_names_the_release_permanent_with_relative_lib_dirs() {
        let text = releases_file(&release());
        assert!(text.starts_with("%% coding: utf-8\n[{release,\"counter\",\"0.1.0\",\"13.1.5\","), "{text}");
        assert!(text.contains("{kernel,\"8.5.3\",\"lib/kernel-8.5.3\"}"), "{text}");
        assert!(text.contains("{'Elixir.Odd',\"1\",\"lib/Elixir.Odd-1\"}"), "{text}");
        assert!(text.trim_end().ends_with("permanent}]."), "{text}");
    }

    #[test]
    fn the_stamp_follows_the_release() {
        let r = release();
        let a = hot_id(&r, &releases_file(&r));
        assert_eq!(a, hot_id(&r, &releases_file(&r)));
        let mut other = r.clone();
        other.version = "0.2.0".into();
        assert_ne!(a, hot_id(&other, &releases_file(&other)));
        assert_eq!(a.len(), 32);
    }
}
