//! Builds writing into one `oci:DIR` at once keep every tag (the layout's lock serialises their
//! index updates; files are renamed into place), and a build whose write into a new directory
//! fails leaves no directory behind.

use crate::util::*;
use std::path::Path;
use std::time::Instant;

/// Pairs of builds run at the same time, one pair after another.
const PAIRS: usize = 20;

/// `release-oci build` of the warm hello_web project into `target` (a result-cache hit: no
/// builder, outputs only); the command's output, unchecked.
fn build_into(project: &Path, target: &str) -> std::process::Output {
    let mut c = release_oci();
    c.arg("build").arg(project).args(["--output", target, "--port", "4000"]);
    run(c)
}

/// The tags of the layout's images; the SBOM referrers a tagged output adds (untagged, with an
/// artifactType) are left aside, and there must be exactly one: every build made the same image.
fn tags_in(layout: &Path) -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json")).expect("json");
    let entries = index["manifests"].as_array().expect("manifests");
    let (referrers, images): (Vec<_>, Vec<_>) = entries.iter().partition(|m| m.get("artifactType").is_some());
    assert_eq!(referrers.len(), 1, "one SBOM referrer for the one image: {index}");
    let mut tags: Vec<String> = images
        .iter()
        .map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap_or("").to_string())
        .collect();
    tags.sort();
    tags
}

#[test]
fn concurrent_builds_into_one_layout_keep_every_tag() {
    let b = hello();
    let out = crate::util::tempdir().expect("tempdir");
    // Not there yet: the first pair also races to make the layout.
    let layout = out.path().join("shared/oci");
    let started = Instant::now();
    for pair in 0..PAIRS {
        let [x, y] = [format!("p{pair}-a"), format!("p{pair}-b")];
        let outputs = std::thread::scope(|s| {
            let run = |tag: &str| {
                let target = format!("oci:{}:{tag}", layout.display());
                s.spawn(move || build_into(b.project.path(), &target))
            };
            let (hx, hy) = (run(&x), run(&y));
            [hx.join().expect("build a"), hy.join().expect("build b")]
        });
        for o in outputs {
            assert!(o.status.success(), "pair {pair} failed:\n{}", text(&o.stderr));
            assert_eq!(text(&o.stdout).trim(), b.digest, "{}", text(&o.stderr));
        }
    }
    eprintln!("{} builds, two at a time, took {:.1?}", 2 * PAIRS, started.elapsed());
    let mut want: Vec<String> = (0..PAIRS).flat_map(|p| [format!("p{p}-a"), format!("p{p}-b")]).collect();
    want.sort();
    assert_eq!(tags_in(&layout), want);
    for tag in &want {
        let mut c = std::process::Command::new("skopeo");
        c.args(["inspect", &format!("oci:{}:{tag}", layout.display())]);
        let v: serde_json::Value = serde_json::from_str(&ok(c)).expect("skopeo json");
        assert_eq!(v["Digest"], b.digest.as_str(), "{tag}");
    }
}

#[test]
fn a_build_whose_write_into_a_new_directory_fails_leaves_no_directory() {
    let b = hello();
    let out = crate::util::tempdir().expect("tempdir");
    // A directory of 4040 bytes takes `oci-layout` but not `blobs/sha256/<64 hex digits>`
    // (past PATH_MAX): the write fails at its first blob, with ENAMETOOLONG, as root too.
    let mut padding = out.path().to_path_buf();
    while padding.as_os_str().len() + 201 + "/made/oci".len() + 2 <= 4040 {
        padding.push("x".repeat(200));
    }
    let n = 4040 - padding.as_os_str().len() - 1 - "/made/oci".len();
    padding.push("y".repeat(n));
    std::fs::create_dir_all(&padding).expect("padding");
    let layout = padding.join("made/oci");
    assert_eq!(layout.as_os_str().len(), 4040);
    let o = build_into(b.project.path(), &format!("oci:{}:v1", layout.display()));
    assert!(!o.status.success(), "the build wrote a layout it cannot have written");
    assert!(text(&o.stderr).to_lowercase().contains("name too long"), "{}", text(&o.stderr));
    assert!(!padding.join("made").exists(), "the new directory was left behind");
    assert!(padding.is_dir());
}
