//! The outputs are accepted by independent tools: skopeo and umoci read the OCI layout, the
//! Docker engine loads the archive, and `release-oci inspect` describes both.

use crate::util::*;

#[test]
fn skopeo_accepts_the_layout_with_the_same_digest() {
    let b = hello();
    let out = docker_free_ok("skopeo", &["inspect", &format!("oci:{}", b.layout().display())]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("skopeo json");
    assert_eq!(v["Digest"], b.digest.as_str());
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
}

#[test]
fn umoci_unpacks_the_layout() {
    let b = hello();
    // umoci wants a tag: index the image under one in a copy of the layout.
    let dir = crate::util::tempdir().expect("tempdir");
    let layout = dir.path().join("oci");
    let st = std::process::Command::new("cp").arg("-a").arg(b.layout()).arg(&layout).status().expect("cp");
    assert!(st.success());
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index")).expect("json");
    index["manifests"][0]["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "t"});
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).expect("json")).expect("write");
    let bundle = dir.path().join("bundle");
    docker_free_ok(
        "umoci",
        &["unpack", "--rootless", "--image", &format!("{}:t", layout.display()), &bundle.display().to_string()],
    );
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("app/bin/hello_web").is_file());
    assert!(rootfs.join("usr/local/bin/tini").is_file());
    assert!(rootfs.join("app/releases/start_erl.data").is_file());
    assert!(!rootfs.join("app/releases/COOKIE").exists());
}

#[test]
fn docker_loads_the_archive() {
    let b = hello();
    require_docker();
    let out = docker_ok(&["load", "-i", &b.archive().display().to_string()]);
    assert!(out.contains(&format!("Loaded image: {}", b.tag)), "{out}");
    // The engine's image id is the config digest of the image we wrote.
    let id = docker_ok(&["image", "inspect", "-f", "{{.Id}}", &b.tag]);
    let m = layout_manifest(&b.layout());
    assert_eq!(id.trim(), m["config"]["digest"].as_str().expect("config digest"));
}

#[test]
fn inspect_describes_layout_and_archive() {
    let b = hello();
    for target in [format!("oci:{}", b.layout().display()), format!("docker-archive:{}", b.archive().display())] {
        let mut c = release_oci();
        c.args(["inspect", &target]);
        let out = ok(c);
        assert!(out.contains(&b.digest), "{target}: {out}");
        assert!(out.contains("/usr/local/bin/release-oci-entry"), "{target}: {out}");
        assert!(out.contains("release-oci: erts"), "{target}: {out}");
    }
}

#[test]
fn rewriting_a_layout_keeps_existing_blobs() {
    let b = hello();
    let blob_dir = b.layout().join("blobs/sha256");
    let before: Vec<_> = std::fs::read_dir(&blob_dir)
        .expect("blobs")
        .map(|e| {
            let e = e.expect("entry");
            (e.file_name(), e.metadata().expect("meta").modified().expect("mtime"))
        })
        .collect();
    // Build the same image into the same layout again: nothing is rewritten.
    let mut c = release_oci();
    c.arg("build")
        .arg(b.project.path())
        .arg("--output")
        .arg(format!("oci:{}", b.layout().display()))
        .args(["--port", "4000"]);
    assert_eq!(ok(c).trim(), b.digest);
    for (name, mtime) in before {
        let now = std::fs::metadata(blob_dir.join(&name)).expect("meta").modified().expect("mtime");
        assert_eq!(now, mtime, "blob {name:?} was rewritten");
    }
}

fn docker_free_ok(tool: &str, args: &[&str]) -> String {
    let mut c = std::process::Command::new(tool);
    c.args(args);
    ok(c)
}

/// A reader that goes away (`release-oci inspect --files ... | head -1`) ends the output quietly:
/// no panic, no "failed printing to stdout".
#[test]
fn inspect_into_a_closed_pipe_does_not_panic() {
    use std::io::{BufRead, BufReader};
    let b = hello();
    let mut c = release_oci();
    c.args(["inspect", "--files", &format!("oci:{}", b.layout().display())]);
    c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("read");
    // stdout is closed here: the rest (well over a pipe's 64 KiB) has no reader.
    let o = child.wait_with_output().expect("wait");
    let err = text(&o.stderr);
    assert!(!first.is_empty());
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(o.status.code(), Some(101), "{err}");
}

/// A tagged layout gets each image's SBOM next to it as an OCI referrer (an untagged entry with
/// an artifactType whose manifest's subject is the image); tools that pick by tag, and
/// `inspect` of the layout without a tag, still find the image. An untagged layout stays one entry.
#[test]
fn a_tagged_layout_carries_the_sbom_as_a_referrer_of_the_image() {
    let project = copy_example("hello_web");
    let dir = crate::util::tempdir().expect("tempdir");
    let (layout, sboms, plain) = (dir.path().join("oci"), dir.path().join("sbom"), dir.path().join("plain"));
    let mut c = release_oci();
    c.arg("build").arg(project.path());
    c.arg("-o").arg(format!("oci:{}:1.0", layout.display())).arg("-o").arg(format!("oci:{}", plain.display()));
    c.arg("--sbom-dir").arg(&sboms);
    let digest = ok(c).trim().to_string();
    let read = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")
    };
    let index = read(layout.join("index.json"));
    let entries = index["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), 2, "{index}");
    let image =
        entries.iter().find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == "1.0").expect("tagged");
    assert_eq!(image["digest"], digest.as_str());
    let referrer = entries.iter().find(|e| e["artifactType"] == "application/spdx+json").expect("SBOM entry");
    let blob = |d: &serde_json::Value| {
        layout.join("blobs/sha256").join(d.as_str().expect("digest").trim_start_matches("sha256:"))
    };
    let manifest = read(blob(&referrer["digest"]));
    assert_eq!(manifest["subject"]["digest"], digest.as_str(), "{manifest}");
    let sbom = std::fs::read(blob(&manifest["layers"][0]["digest"])).expect("SBOM blob");
    let written = std::fs::read_dir(&sboms).expect("sbom dir").flatten().next().expect("an SBOM file").path();
    assert_eq!(sbom, std::fs::read(&written).expect("SBOM file"), "{}", written.display());
    // The image is still what the layout means, by tag and without one.
    let out = docker_free_ok("skopeo", &["inspect", &format!("oci:{}:1.0", layout.display())]);
    assert!(out.contains(&digest), "{out}");
    let mut c = release_oci();
    c.arg("inspect").arg(format!("oci:{}", layout.display()));
    assert!(ok(c).contains(&digest));
    assert_eq!(read(plain.join("index.json"))["manifests"].as_array().expect("manifests").len(), 1);
}
