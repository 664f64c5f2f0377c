//! The result cache (a build with no change since the last one reuses its image: no builder, no
//! layering) and the fast `--load` (an image the engine has is only tagged; layers it has are not
//! sent).

use crate::util::*;
use std::path::Path;
use std::time::Duration;

const REUSED: &str = "No change since the last build: reusing";
const ASSEMBLING: &str = "Assembling the release";

/// A project copy with its own blob store; its cache volume and tags are removed at the end.
struct Fixture {
    project: ProjectCopy,
    store: tempfile::TempDir,
    tags: std::cell::RefCell<Vec<String>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let mut c = release_oci();
        c.args(["cache", "prune", "--project"]).arg(self.project.path());
        let _ = c.output();
        for t in self.tags.borrow().iter() {
            let _ = docker(&["rmi", t]);
        }
    }
}

impl Fixture {
    fn new() -> Fixture {
        require_docker();
        let store = crate::util::tempdir().expect("tempdir");
        Fixture { project: copy_example("hello_web"), store, tags: Default::default() }
    }

    fn tag(&self, name: &str) -> String {
        let t = format!("release-oci-test/result-cache-{name}:{}", std::process::id());
        self.tags.borrow_mut().push(t.clone());
        t
    }

    /// `release-oci build PROJECT --load -t TAG --port 4000 EXTRA`; (digest, stderr).
    fn build(&self, tag: &str, extra: &[&str]) -> (String, String) {
        let mut c = release_oci();
        c.env("RELEASE_OCI_CACHE", self.store.path())
            .arg("build")
            .arg(self.project.path())
            .args(["--load", "--tag", tag, "--port", "4000"])
            .args(extra);
        let desc = format!("{c:?}");
        let o = run(c);
        let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
        assert!(o.status.success(), "{desc} failed ({}):\n--- stderr\n{stderr}\n--- stdout\n{stdout}", o.status);
        let digest = stdout.trim().to_string();
        assert!(digest.starts_with("sha256:") && digest.len() == 71, "stdout is not a digest: {digest:?}");
        (digest, stderr)
    }
}

fn set_greeting(project: &Path, greeting: &str) {
    let router = project.join("lib/hello_web/router.ex");
    let src = std::fs::read_to_string(&router).expect("router.ex");
    std::fs::write(&router, src.replace("hello from hello_web", &format!("{greeting} from hello_web"))).expect("write");
}

fn answer(tag: &str) -> String {
    let c = Container::start(&[], tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(30));
    assert_eq!(status, 200, "{body}");
    body
}

fn image_id(tag: &str) -> String {
    docker_ok(&["image", "inspect", "-f", "{{.Id}}", tag]).trim().to_string()
}

#[test]
fn a_rebuild_without_change_reuses_the_image_and_a_change_of_source_or_setting_builds() {
    let f = Fixture::new();
    let (t1, t2) = (f.tag("first"), f.tag("again"));
    let (d1, log1) = f.build(&t1, &[]);
    assert!(log1.contains(ASSEMBLING) && !log1.contains(REUSED), "the first build must run the builder:\n{log1}");

    // No change, another tag: the recorded image, outputs only; the engine has it, so it is only
    // tagged, and the tag works.
    let (d2, log2) = f.build(&t2, &[]);
    assert_eq!(d2, d1, "same inputs, same image");
    assert!(log2.contains(&format!("{REUSED} hello_web 0.1.0 {d1}")), "not reused:\n{log2}");
    assert!(!log2.contains(ASSEMBLING), "the builder ran on a no-change rebuild:\n{log2}");
    assert!(log2.contains("already: tagged only"), "the engine's image was loaded again:\n{log2}");
    assert_eq!(image_id(&t2), image_id(&t1));
    assert_eq!(answer(&t2), "hello from hello_web 0.1.0\n");

    // One source file changed: built, and the image runs the new code. The layers the image under
    // the tag shares with it are not sent to the engine, and the image still runs. (The greeting is
    // this run's own: an image of an earlier run would be in the engine already.)
    let greeting = format!("howdy-{}", std::process::id());
    let howdy = format!("{greeting} from hello_web 0.1.0\n");
    set_greeting(f.project.path(), &greeting);
    let (d3, log3) = f.build(&t1, &[]);
    assert!(log3.contains(ASSEMBLING) && !log3.contains(REUSED), "a source change must rebuild:\n{log3}");
    assert_ne!(d3, d1);
    assert!(log3.contains("layers are in the engine already: not sent"), "{log3}");
    assert_eq!(answer(&t1), howdy);

    // A setting that changes the image: built.
    for extra in [&["--env", "GREETING_SOURCE=test"][..], &["--user", "1000"][..]] {
        let (d, log) = f.build(&t2, extra);
        assert!(log.contains(ASSEMBLING) && !log.contains(REUSED), "{extra:?} must rebuild:\n{log}");
        assert_ne!(d, d3, "{extra:?}");
        let cfg = docker_ok(&["image", "inspect", "-f", "{{json .Config}}", &t2]);
        let wanted = if extra[0] == "--env" { "GREETING_SOURCE=test" } else { "\"User\":\"1000:1000\"" };
        assert!(cfg.contains(wanted), "{extra:?} is not in the loaded image: {cfg}");
    }

    // Back to the settings of the third build: its result is still there.
    let (d, log) = f.build(&t2, &[]);
    assert_eq!(d, d3);
    assert!(log.contains(&format!("{REUSED} hello_web 0.1.0 {d3}")), "{log}");
    assert_eq!(answer(&t2), howdy);

    // --no-cache: no lookup, the builder runs, the same image.
    let (d, log) = f.build(&t2, &["--no-cache"]);
    assert!(log.contains(ASSEMBLING) && !log.contains(REUSED), "--no-cache reused a result:\n{log}");
    assert_eq!(d, d3, "same source without any cache, same image");
}

#[test]
fn a_reused_result_writes_every_output_and_a_missing_blob_means_a_build() {
    let f = Fixture::new();
    let tag = f.tag("outputs");
    // --load alone: uncompressed layers, another manifest, the same image id in the engine.
    let (d0, _) = f.build(&tag, &[]);
    let id0 = docker_ok(&["image", "inspect", "-f", "{{.Id}}", &tag]);
    let (d1, log) = f.build(&tag, &["--compression", "gzip"]);
    assert!(log.contains(ASSEMBLING) && !log.contains(REUSED), "gzip reused the plain-tar result:\n{log}");
    assert_ne!(d0, d1, "the manifests name the layers as stored");
    assert_eq!(docker_ok(&["image", "inspect", "-f", "{{.Id}}", &tag]), id0, "the image id changed");
    let out = crate::util::tempdir().expect("tempdir");
    let layout = out.path().join("oci");
    let archive = out.path().join("image.tar");
    let outputs = [
        "--output".to_string(),
        format!("oci:{}", layout.display()),
        "--output".to_string(),
        format!("docker-archive:{}", archive.display()),
    ];
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let (d2, log) = f.build(&tag, &outputs);
    assert_eq!(d2, d1);
    assert!(log.contains(REUSED), "{log}");
    // The layout holds the image: its manifest is the digest printed, every blob is there.
    let manifest = layout_manifest(&layout);
    let hex = d1.trim_start_matches("sha256:");
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).expect("the manifest blob");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&bytes).expect("json"), manifest);
    for l in manifest["layers"].as_array().expect("layers") {
        let h = l["digest"].as_str().expect("digest").trim_start_matches("sha256:");
        assert!(layout.join("blobs/sha256").join(h).is_file(), "layer {h} missing from the layout");
    }
    let loaded = docker_ok(&["load", "-i", archive.to_str().expect("path")]);
    assert!(loaded.contains(&tag), "{loaded}");

    // A layer gone from the blob store: the result cannot be reused, the build runs again.
    let layer = manifest["layers"].as_array().expect("layers").last().expect("a layer")["digest"]
        .as_str()
        .expect("digest")
        .trim_start_matches("sha256:")
        .to_string();
    std::fs::remove_file(f.store.path().join("blobs/sha256").join(&layer)).expect("remove a blob");
    let (d3, log) = f.build(&tag, &["--compression", "gzip"]);
    assert!(log.contains(ASSEMBLING) && !log.contains(REUSED), "{log}");
    assert_eq!(d3, d1);
    assert!(f.store.path().join("blobs/sha256").join(&layer).is_file(), "the layer was written again");
}

/// Regressions: an image removed from the engine is loaded again when its result is reused (not
/// assumed there), and `cache prune --project` forgets the project's results, so the next build
/// runs the builder instead of "reusing" an image.
#[test]
fn a_removed_image_is_loaded_again_and_prune_forgets_the_result() {
    let f = Fixture::new();
    let tag = f.tag("pruned");
    // A setting of this run only: the image id is this test's alone, so removing the tag removes
    // the image (and no other test's).
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let unique = format!("RESULT_CACHE_RUN={}-{nanos}", std::process::id());
    let (d1, log) = f.build(&tag, &["--env", &unique]);
    assert!(log.contains(ASSEMBLING), "{log}");
    let id = image_id(&tag);
    docker_ok(&["rmi", &tag]);
    assert!(!docker(&["image", "inspect", &id]).status.success(), "the image {id} is still in the engine");

    let (d2, log) = f.build(&tag, &["--env", &unique]);
    assert_eq!(d2, d1);
    assert!(log.contains(&format!("{REUSED} hello_web 0.1.0 {d1}")), "not reused:\n{log}");
    assert!(!log.contains("tagged only"), "the removed image was taken as present:\n{log}");
    assert_eq!(image_id(&tag), id, "the same image is in the engine again");
    assert_eq!(answer(&tag), "hello from hello_web 0.1.0\n");

    let mut c = release_oci();
    c.env("RELEASE_OCI_CACHE", f.store.path()).args(["cache", "prune", "--project"]).arg(f.project.path());
    let pruned = ok(c);
    assert!(pruned.contains("removed result cache record "), "{pruned}");
    let (d3, log) = f.build(&tag, &["--env", &unique]);
    assert!(log.contains(ASSEMBLING) && !log.contains(REUSED), "a pruned project's result was reused:\n{log}");
    assert_eq!(d3, d1, "built again, the same image");
}
