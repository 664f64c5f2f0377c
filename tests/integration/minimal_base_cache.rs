//! The minimal base's cache (docs/minimal-base.md, "Cached by key"): after a one-line change the
//! builder gathers nothing and the base layer, and the image, are those a build without any cache
//! makes; the SBOM still lists the base's Debian packages; another NIF (its `.so` by content) or
//! another builder image gathers the base again.

use crate::minimal_base::layer_digest;
use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const GATHERED: &str = "minimal base: gathering the files the release needs";
const REUSED_BY_THE_BUILDER: &str = "minimal base: reused, not gathered";
const REUSED_BY_RELEASE_OCI: &str = "compressed, reused (the builder gathered nothing";

/// One build's outputs: an OCI layout and the SBOM directory.
struct Out {
    dir: tempfile::TempDir,
    digest: String,
    log: String,
}

impl Out {
    fn layout(&self) -> PathBuf {
        self.dir.path().join("oci")
    }

    fn base_layer(&self) -> String {
        layer_digest(&self.layout(), "minimal base")
    }

    /// The `pkg:deb/...` purls of the SBOM.
    fn debian_packages(&self) -> Vec<String> {
        let sboms = self.dir.path().join("sbom");
        let file = std::fs::read_dir(&sboms).expect("sbom dir").next().expect("an SBOM").expect("entry").path();
        let sbom: serde_json::Value = serde_json::from_slice(&std::fs::read(file).expect("sbom")).expect("json");
        let mut purls: Vec<String> = sbom["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
            .filter(|l| l.starts_with("pkg:deb/"))
            .map(str::to_string)
            .collect();
        purls.sort();
        purls
    }
}

/// `release-oci build PROJECT --base minimal -o oci:OUT/oci --sbom-dir OUT/sbom ...`.
fn build(project: &Path, extra: &[&str]) -> Out {
    let dir = crate::util::tempdir().expect("tempdir");
    let mut c = release_oci();
    c.arg("build")
        .arg(project)
        .args(["--base", "minimal", "--port", "4000"])
        .arg("--output")
        .arg(format!("oci:{}", dir.path().join("oci").display()))
        .arg("--sbom-dir")
        .arg(dir.path().join("sbom"))
        .args(extra);
    let desc = format!("{c:?}");
    let o = run(c);
    let (stdout, log) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{desc} failed ({}):\n--- stderr\n{log}\n--- stdout\n{stdout}", o.status);
    Out { dir, digest: stdout.trim().to_string(), log }
}

fn gathered(out: &Out) -> bool {
    let (gathered, reused) = (out.log.contains(GATHERED), out.log.contains(REUSED_BY_THE_BUILDER));
    assert!(gathered != reused, "the log should say either that the base was gathered or reused:\n{}", out.log);
    assert_eq!(reused, out.log.contains(REUSED_BY_RELEASE_OCI), "{}", out.log);
    gathered
}

/// Replaces `from` by `to` in the file `path` of `project` (one line).
fn edit(project: &Path, path: &str, from: &str, to: &str) {
    let file = project.join(path);
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains(from), "{} has no {from:?}", file.display());
    std::fs::write(&file, text.replacen(from, to, 1)).expect("write");
}

#[test]
fn a_one_line_change_reuses_the_minimal_base_and_makes_the_image_a_build_without_cache_makes() {
    require_docker();
    let project = copy_example("hello_web");
    let first = build(project.path(), &[]);
    assert!(gathered(&first), "a new project's first build gathers its base:\n{}", first.log);

    edit(project.path(), "lib/hello_web/router.ex", "{200, \"hello from", "{200, \"hello again from");
    let second = build(project.path(), &[]);
    assert!(!gathered(&second), "the base was gathered again after a one-line change:\n{}", second.log);
    assert_eq!(second.base_layer(), first.base_layer(), "the base layer changed");
    assert_ne!(second.digest, first.digest, "the change is in the image");
    let debs = second.debian_packages();
    assert!(debs.iter().any(|p| p.starts_with("pkg:deb/debian/libc6@")), "{debs:?}");
    assert!(debs.iter().any(|p| p.starts_with("pkg:deb/debian/busybox-static@")), "{debs:?}");
    assert_eq!(debs, first.debian_packages(), "the SBOM's Debian packages of a reused base");

    // The same sources without the build cache volume (nor the minimal base's: it gathers) give
    // the same image, byte for byte.
    let uncached = build(project.path(), &["--no-cache"]);
    assert!(gathered(&uncached), "{}", uncached.log);
    assert_eq!(uncached.digest, second.digest, "a reused base gives another image than a gathered one");
    assert_eq!(uncached.debian_packages(), debs);
}

/// An image of its own (a label added to the bookworm builder): same files, another id.
struct DerivedBuilder(String);

impl DerivedBuilder {
    fn new() -> DerivedBuilder {
        let tag = format!("release-oci-test/minimal-base-builder:{}", std::process::id());
        let dockerfile = format!(
            "FROM release-oci/builder:debian-bookworm\nLABEL org.release-oci.test.minimal-base-cache=\"{tag}\"\n"
        );
        let mut child = Command::new("docker")
            .args(["build", "-q", "-t", &tag, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker build");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), dockerfile.as_bytes()).expect("write");
        let o = child.wait_with_output().expect("docker build");
        assert!(o.status.success(), "docker build {tag}: {}", text(&o.stderr));
        DerivedBuilder(tag)
    }
}

impl Drop for DerivedBuilder {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", &self.0]).output();
    }
}

#[test]
fn another_nif_or_another_builder_image_gathers_the_base_again() {
    require_docker();
    let project = copy_example("zlib_nif");
    let first = build(project.path(), &[]);
    assert!(gathered(&first), "{}", first.log);
    let lib = "lib/zlib_nif.ex";
    edit(project.path(), lib, "crc32/1, compress/1 and", "crc32/1, compress/1, and");
    let elixir_only = build(project.path(), &[]);
    assert!(!gathered(&elixir_only), "an Elixir change gathered the base of a NIF project:\n{}", elixir_only.log);

    // The NIF's .so changes (a new string in it), its libraries do not: gathered again, and the
    // same layer comes out.
    edit(
        project.path(),
        "c_src/zlib_nif.c",
        "#include <zlib.h>",
        "#include <zlib.h>\nconst char *release_oci_test = \"x\";",
    );
    let nif = build(project.path(), &[]);
    assert!(nif.log.contains("zlib_nif.c -lz"), "the NIF was not compiled again:\n{}", nif.log);
    assert!(gathered(&nif), "the base was reused though the NIF changed:\n{}", nif.log);
    assert_eq!(nif.base_layer(), first.base_layer());
    // That NIF's base is recorded in turn.
    edit(project.path(), lib, "crc32/1, compress/1, and", "crc32/1, compress/1 and");
    let again = build(project.path(), &[]);
    assert!(!gathered(&again), "{}", again.log);

    let builder = DerivedBuilder::new();
    let other_image = build(project.path(), &["--builder-image", &builder.0]);
    assert!(gathered(&other_image), "the base was reused with another builder image:\n{}", other_image.log);
    assert_eq!(other_image.base_layer(), first.base_layer(), "the same files in the derived image");
}
