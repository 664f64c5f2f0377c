//! Fast rebuilds: the builder's cache volume (deps/ and _build/ kept between builds), `cache ls`
//! and `cache prune`, `--no-cache`, the layer cache (an unchanged layer is not compressed again)
//! and zstd layers.

use crate::util::*;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// Removes the cache volumes of a test's project when the test ends (passed or not).
struct PruneOnDrop<'a>(&'a Path);

impl Drop for PruneOnDrop<'_> {
    fn drop(&mut self) {
        let mut c = release_oci();
        c.args(["cache", "prune", "--project"]).arg(self.0);
        let _ = c.output();
    }
}

fn set_greeting(project: &Path, greeting: &str) {
    let router = project.join("lib/hello_web/router.ex");
    let src = std::fs::read_to_string(&router).expect("router.ex");
    let start = src.find("{200, \"").expect("the greeting") + "{200, \"".len();
    let end = start + src[start..].find(" from hello_web").expect("the greeting's end");
    std::fs::write(&router, format!("{}{greeting}{}", &src[..start], &src[end..])).expect("write router.ex");
}

/// `release-oci build PROJECT --load -t TAG ...`; returns (digest, stderr).
fn build(project: &Path, tag: &str, extra: &[&str]) -> (String, String) {
    let mut c = release_oci();
    c.arg("build").arg(project).args(["--load", "--tag", tag, "--port", "4000"]).args(extra);
    let desc = format!("{c:?}");
    let o: Output = run(c);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{desc} failed ({}):\n--- stderr\n{stderr}\n--- stdout\n{stdout}", o.status);
    (stdout.trim().to_string(), stderr)
}

fn answer(tag: &str) -> String {
    let c = Container::start(&[], tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(30));
    assert_eq!(status, 200, "{body}");
    body
}

fn cache_ls(project: &Path) -> Vec<String> {
    let mut c = release_oci();
    c.args(["cache", "ls", "--project"]).arg(project);
    ok(c).lines().map(|l| l.split('\t').next().unwrap_or_default().to_string()).collect()
}

/// The log line of a build that received only what changed (send_out.sh, src/builder/kept.rs).
const ONLY_CHANGED: &str = "files changed since the last build, only those sent";

/// Where the host keeps the output the last build with cache volume `volume` sent, if it does.
fn kept_tree(volume: &str) -> Option<std::path::PathBuf> {
    let uid = ok({
        let mut c = std::process::Command::new("id");
        c.arg("-u");
        c
    });
    [std::path::PathBuf::from("/dev/shm"), std::env::temp_dir()]
        .iter()
        .map(|parent| parent.join(format!("release-oci-kept-{}", uid.trim())).join(volume))
        .find(|p| p.join("tree").is_dir())
}

fn compiled(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("Compiling ")).collect()
}

#[test]
fn a_one_line_change_recompiles_one_file_and_prune_removes_the_volume() {
    require_docker();
    let project = copy_example("hello_web");
    let _prune = PruneOnDrop(project.path());
    let tag = format!("release-oci-test/cache-one-line:{}", std::process::id());
    let (_, first) = build(project.path(), &tag, &[]);
    assert!(first.contains("build cache: building in /build/cache/src"), "the cache was not used:\n{first}");
    let volumes = cache_ls(project.path());
    assert_eq!(volumes.len(), 1, "one cache volume for the project: {volumes:?}");
    assert!(volumes[0].starts_with("release-oci-cache-"), "{volumes:?}");
    let labels = docker_ok(&["volume", "inspect", "-f", "{{json .Labels}}", &volumes[0]]);
    assert!(labels.contains("\"org.release-oci.role\":\"build-cache\""), "{labels}");

    // Same length as "hello": the change must be seen by content, not by size.
    set_greeting(project.path(), "howdy");
    let (_, second) = build(project.path(), &tag, &[]);
    assert_eq!(compiled(&second), ["  │ Compiling 1 file (.ex)"], "only the changed module compiles:\n{second}");
    assert!(second.contains("build cache: 1 changed or new files copied"), "{second}");
    assert!(second.contains(ONLY_CHANGED), "the whole release was sent again:\n{second}");
    assert_eq!(answer(&tag), "howdy from hello_web 0.1.0\n", "the image runs the new code");
    assert_eq!(cache_ls(project.path()), volumes, "the same volume is reused");
    assert!(kept_tree(&volumes[0]).is_some(), "the host keeps the last output of {}", volumes[0]);

    let mut c = release_oci();
    c.args(["cache", "prune", "--project"]).arg(project.path());
    let pruned = ok(c);
    assert!(pruned.contains(&format!("removed {}", volumes[0])), "{pruned}");
    assert_eq!(cache_ls(project.path()), Vec::<String>::new(), "prune leaves no volume of the project");
    let gone = docker(&["volume", "inspect", &volumes[0]]);
    assert!(!gone.status.success(), "volume {} still exists", volumes[0]);
    assert_eq!(kept_tree(&volumes[0]), None, "prune leaves the volume's kept output behind");

    // After the prune a build starts cold, and works.
    set_greeting(project.path(), "hi");
    let (_, third) = build(project.path(), &tag, &[]);
    assert_eq!(compiled(&third), ["  │ Compiling 3 files (.ex)"], "a cold build compiles everything:\n{third}");
    assert!(!third.contains(ONLY_CHANGED), "a new volume's first build sends the whole release:\n{third}");
    assert_eq!(answer(&tag), "hi from hello_web 0.1.0\n");
    let _ = docker(&["rmi", &tag]);
}

/// The release cache (assemble_mix.exs): after a change to one module's code, the cached release
/// is updated by copying the project's own application only; the image is byte for byte the one
/// a full assembly without any cache gives. A new module (the release's module list changes)
/// takes the full assembly, with the same result as without the cache.
#[test]
fn the_release_cache_gives_the_image_a_full_assembly_gives() {
    require_docker();
    let project = copy_example("hello_web");
    let _prune = PruneOnDrop(project.path());
    let out = crate::util::tempdir().expect("tempdir");
    // `cached`: the build cache volume; `fresh`: --no-cache and an empty store (so no result
    // cache either): the builder assembles the release from nothing.
    let build = |name: &str, fresh: bool| {
        let store = crate::util::tempdir().expect("tempdir");
        let mut c = release_oci();
        if fresh {
            c.env("RELEASE_OCI_CACHE", store.path());
        }
        c.arg("build").arg(project.path()).arg("--output").arg(format!("oci:{}", out.path().join(name).display()));
        if fresh {
            c.arg("--no-cache");
        }
        let o = run(c);
        let stderr = text(&o.stderr);
        assert!(o.status.success(), "build {name} failed:\n{stderr}");
        assert!(stderr.contains("Assembling the release in a builder container"), "{stderr}");
        (text(&o.stdout).trim().to_string(), stderr)
    };
    let (_, first) = build("first", false);
    assert!(first.contains("release cache: full assembly (no release of an earlier build)"), "{first}");

    set_greeting(project.path(), "howdy");
    let (cached, log) = build("cached", false);
    assert!(
        log.contains("release cache: unchanged but for hello_web: copied just those into the release"),
        "a one-line change did not take the fast path:\n{log}"
    );
    assert!(log.contains(ONLY_CHANGED), "the whole release was sent again:\n{log}");
    let (fresh, _) = build("fresh", true);
    assert_eq!(cached, fresh, "the fast path's image differs from a full assembly's");

    // The host's kept output under another token (as after a build the builder did not see):
    // the builder sends the whole release, and the image is the same.
    let volume = cache_ls(project.path()).pop().expect("the volume");
    let kept = kept_tree(&volume).expect("the kept output");
    std::fs::write(kept.join("token"), "not-the-builders\n").expect("write the token");
    set_greeting(project.path(), "hiya!");
    let (again, log) = build("cached-again", false);
    assert!(!log.contains(ONLY_CHANGED), "a delta against a tree the host does not have:\n{log}");
    assert_eq!(again, build("fresh-again", true).0);

    std::fs::write(project.path().join("lib/hello_web/extra.ex"), "defmodule HelloWeb.Extra do\n  def x, do: 1\nend\n")
        .expect("write extra.ex");
    let (cached, log) = build("cached-new-module", false);
    assert!(
        log.contains("release cache: full assembly (something `mix release` reads has changed)"),
        "a new module must assemble the release anew:\n{log}"
    );
    assert!(log.contains(ONLY_CHANGED), "{log}");
    let (fresh, _) = build("fresh-new-module", true);
    assert_eq!(cached, fresh, "the cached full assembly's image differs from a fresh one's");
}

#[test]
fn no_cache_uses_no_volume_and_unchanged_layers_are_not_compressed_again() {
    require_docker();
    let project = copy_example("hello_web");
    let _prune = PruneOnDrop(project.path());
    let store = crate::util::tempdir().expect("tempdir");
    let out = crate::util::tempdir().expect("tempdir");
    let build = |layout: &str| {
        let mut c = release_oci();
        c.env("RELEASE_OCI_CACHE", store.path())
            .arg("build")
            .arg(project.path())
            .args(["--no-cache", "-v", "--output"])
            .arg(format!("oci:{}", out.path().join(layout).display()));
        let o = run(c);
        let stderr = text(&o.stderr);
        assert!(o.status.success(), "build failed:\n{stderr}");
        (text(&o.stdout).trim().to_string(), stderr)
    };
    let (digest, first) = build("one");
    assert!(!first.contains("build cache:"), "--no-cache used the cache:\n{first}");
    assert_eq!(compiled(&first), ["  │ Compiling 3 files (.ex)"], "{first}");
    assert_eq!(cache_ls(project.path()), Vec::<String>::new(), "--no-cache made a volume");
    let compressed = first.lines().filter(|l| l.contains("layer compressed")).count();
    assert_eq!(compressed, 6, "the first build compresses the minimal base and 5 layers:\n{first}");

    let manifest = layout_manifest(&out.path().join("one"));
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").trim_start_matches("sha256:").to_string())
        .collect();
    let mtimes = || -> Vec<std::time::SystemTime> {
        layers
            .iter()
            .map(|hex| {
                std::fs::metadata(store.path().join("blobs/sha256").join(hex)).expect("blob").modified().unwrap()
            })
            .collect()
    };
    let before = mtimes();
    let (again, second) = build("two");
    assert_eq!(again, digest, "same source, same image");
    assert_eq!(second.lines().filter(|l| l.contains("layer compressed")).count(), 0, "recompressed:\n{second}");
    assert_eq!(second.lines().filter(|l| l.contains("layer cache hit")).count(), 6, "{second}");
    assert!(second.contains("gzip, 5 of 5 reused from the layer cache"), "{second}");
    assert_eq!(mtimes(), before, "the blobs were written again");
}

#[test]
fn concurrent_builds_of_different_projects_and_of_the_same_project() {
    require_docker();
    let (a, b) = (copy_example("hello_web"), copy_example("hello_web"));
    let (_pa, _pb) = (PruneOnDrop(a.path()), PruneOnDrop(b.path()));
    set_greeting(a.path(), "alpha");
    set_greeting(b.path(), "bravo");
    let pid = std::process::id();
    let (tag_a, tag_a2, tag_b) = (
        format!("release-oci-test/cache-a:{pid}"),
        format!("release-oci-test/cache-a2:{pid}"),
        format!("release-oci-test/cache-b:{pid}"),
    );
    let ((da, _), (da2, log_a2), (db, _)) = std::thread::scope(|s| {
        let ha = s.spawn(|| build(a.path(), &tag_a, &[]));
        // The same project again, at the same time: it waits for no one (the cache is locked by
        // whichever build comes first; the other builds without it).
        let ha2 = s.spawn(|| build(a.path(), &tag_a2, &[]));
        let hb = s.spawn(|| build(b.path(), &tag_b, &[]));
        (ha.join().expect("a"), ha2.join().expect("a again"), hb.join().expect("b"))
    });
    assert!(log_a2.contains("build cache:"), "{log_a2}");
    assert_eq!(da, da2, "two builds of the same project at once give the same image");
    assert_ne!(da, db);
    assert_eq!(answer(&tag_a), "alpha from hello_web 0.1.0\n");
    assert_eq!(answer(&tag_a2), "alpha from hello_web 0.1.0\n");
    assert_eq!(answer(&tag_b), "bravo from hello_web 0.1.0\n");
    let (va, vb) = (cache_ls(a.path()), cache_ls(b.path()));
    assert_eq!((va.len(), vb.len()), (1, 1), "{va:?} {vb:?}");
    assert_ne!(va, vb, "each project has its own volume");
    for t in [&tag_a, &tag_a2, &tag_b] {
        let _ = docker(&["rmi", t]);
    }
}

fn media_types(layout: &Path) -> Vec<String> {
    layout_manifest(layout)["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["mediaType"].as_str().expect("mediaType").to_string())
        .collect()
}

#[test]
fn zstd_layers_are_deterministic_load_and_run_and_gzip_stays_the_default() {
    require_docker();
    let project = copy_example("hello_web");
    let out = crate::util::tempdir().expect("tempdir");
    let tag = format!("release-oci-test/cache-zstd:{}", std::process::id());
    // Two builds that share nothing (no build cache, separate blob stores): compressed twice.
    let build = |name: &str, load: bool| {
        let store = crate::util::tempdir().expect("tempdir");
        let mut c = release_oci();
        c.env("RELEASE_OCI_CACHE", store.path())
            .arg("build")
            .arg(project.path())
            .args(["--no-cache", "--compression", "zstd", "--port", "4000", "--output"])
            .arg(format!("oci:{}", out.path().join(name).display()));
        if load {
            c.args(["--load", "--tag", &tag]);
        }
        ok(c).trim().to_string()
    };
    let one = build("one", true);
    let two = build("two", false);
    assert_eq!(one, two, "zstd layers are byte-identical across builds");
    let types = media_types(&out.path().join("one"));
    assert_eq!(types.len(), 6, "{types:?}");
    assert!(types.iter().all(|t| t == "application/vnd.oci.image.layer.v1.tar+zstd"), "{types:?}");
    assert_eq!(answer(&tag), "hello from hello_web 0.1.0\n", "the loaded zstd image runs");

    let mut c = release_oci();
    c.args(["inspect", "--files"]).arg(format!("oci:{}", out.path().join("one").display()));
    let files = ok(c);
    assert!(files.contains("app/bin/hello_web"), "inspect reads zstd layers:\n{files}");

    // gzip by default.
    let gzip = media_types(&hello().layout());
    assert!(gzip.iter().all(|t| t == "application/vnd.oci.image.layer.v1.tar+gzip"), "{gzip:?}");
    let _ = docker(&["rmi", &tag]);
}
