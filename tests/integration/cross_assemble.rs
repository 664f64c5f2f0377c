//! Compile once, assemble per platform (`--cross-compile auto`, docs/multi-platform.md), under
//! qemu-user on this x86_64 machine (`make setup-arm64`):
//! - hello_web for linux/amd64 + linux/arm64: the arm64 platform is compiled on the amd64 builder
//!   (the log says so), its layers other than ERTS, Erlang/OTP, the runtime (tini) and the minimal
//!   base are the amd64 image's blobs, its `beam.smp` is AArch64, and the image runs under
//!   emulation, answers HTTP and reports the JIT;
//! - zlib_nif (a C NIF) for aarch64 is built under emulation, the log naming its native code, and
//!   runs;
//! - `--cross-compile never` (the old path) gives the same app and deps layers as compile-once, and
//!   the same minimal base although compile-once gathers it with the native builder's busybox and
//!   asks ldd once a group of ELF files (the log says both);
//! - the gathering container started during the native build (a cold build) and the one started
//!   when the release is there (a cache that knows another base) gather the same base; Ctrl-C
//!   during the native build removes both containers.

use crate::multi_platform::{
    AARCH64, EM_AARCH64, X86_64, assert_jit, beam_smp, elf_machine, named_layers, require_emulation,
};
use crate::util::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const COMPILE_ONCE: &str = "[linux/arm64/v8] ==> Assembling the release in a builder container \
                            (release-oci/builder:debian-bookworm, linux/amd64) for linux/arm64/v8, compile-once: no native code";

/// `release-oci build PROJECT ARGS...`: stdout and stderr, the build having succeeded.
fn build(project: &Path, args: &[&str]) -> (String, String) {
    let mut c = release_oci();
    c.arg("build").arg(project).args(args);
    let o = run(c);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "release-oci build {args:?} failed:\n{stderr}");
    (stdout, stderr)
}

/// The manifests of the index tagged `tag` in the layout at `dir`, by architecture.
fn index_manifests(dir: &Path) -> Vec<(String, String, Value)> {
    let index_json: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json")).expect("json");
    let index = blob_json(dir, index_json["manifests"][0]["digest"].as_str().expect("index digest"));
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            let digest = m["digest"].as_str().expect("digest").to_string();
            let arch = m["platform"]["architecture"].as_str().expect("architecture").to_string();
            (arch, digest.clone(), blob_json(dir, &digest))
        })
        .collect()
}

#[test]
fn hello_web_for_two_platforms_is_compiled_once_and_the_arm64_image_runs_with_the_jit() {
    require_emulation();
    let project = copy_example("hello_web");
    let out = crate::util::tempdir().expect("tempdir");
    let layout = out.path().join("oci");
    let target = format!("oci:{}:1", layout.display());
    let (_, log) = build(project.path(), &["--triple", X86_64, "--triple", AARCH64, "--port", "4000", "-o", &target]);
    assert!(log.lines().any(|l| l.starts_with(COMPILE_ONCE)), "the arm64 platform did not compile once:\n{log}");
    assert!(!log.contains("compile-once not used"), "{log}");
    assert!(!log.lines().any(|l| l.starts_with("[linux/amd64]") && l.contains("compile-once")), "{log}");

    let manifests = index_manifests(&layout);
    let arches: Vec<&str> = manifests.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(arches, ["amd64", "arm64"]);
    let (amd, arm) = (named_layers(&layout, &manifests[0].2), named_layers(&layout, &manifests[1].2));
    assert!(amd.contains_key("app") && amd.contains_key("release"), "{amd:?}");
    // Every layer but ERTS, Erlang/OTP, the runtime files (tini) and the minimal base is the same
    // blob (hello_web's Erlang/OTP applications carry no native code: its otp layer is too).
    for (name, digest) in &amd {
        if !["erts", "otp", "runtime", "minimal base"].contains(&name.as_str()) {
            assert_eq!(arm.get(name), Some(digest), "layer {name} differs:\namd64 {amd:#?}\narm64 {arm:#?}");
        }
    }
    assert_ne!(amd.get("erts"), arm.get("erts"), "{amd:#?} {arm:#?}");
    let (path, bytes) = beam_smp(&layout, &manifests[1].2);
    assert_eq!(elf_machine(&bytes), EM_AARCH64, "{path}");

    // The same build for arm64 alone, loaded (and written with the same gzip compression: `--load`
    // alone would leave the layers uncompressed): the same image, the compile being deterministic.
    let tag = format!("release-oci-test/cross-hello:{}", std::process::id());
    let alone = format!("oci:{}", out.path().join("alone").display());
    let args = ["--triple", AARCH64, "--port", "4000", "--load", "--tag", &tag, "-o", &alone];
    let (digest, _) = build(project.path(), &args);
    assert_eq!(digest.trim(), manifests[1].1, "the arm64 image built alone differs from the index's");
    let c = Container::start(&["--platform", "linux/arm64"], &tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(180));
    assert_eq!(status, 200, "body: {body}\nlogs:\n{}", c.logs());
    assert!(body.contains("hello from hello_web"), "{body}");
    assert_jit(&c, "hello_web");
    drop(c);
    let _ = docker(&["rmi", "-f", &tag]);
}

#[test]
fn a_nif_project_for_aarch64_is_built_under_emulation_saying_why_and_runs() {
    require_emulation();
    let project = copy_example("zlib_nif");
    let tag = format!("release-oci-test/cross-zlib:{}", std::process::id());
    let (_, log) = build(project.path(), &["--triple", AARCH64, "--port", "4000", "--load", "--tag", &tag]);
    let why = "compile-once not used: the project has native code (c_src: a c_src/ directory";
    assert!(log.contains(why), "the log does not say why compile-once was not used:\n{log}");
    assert!(log.contains("under emulation (linux/arm64/v8)"), "{log}");
    let c = Container::start(&["--platform", "linux/arm64"], &tag, &[]);
    let mut crc = flate2::Crc::new();
    crc.update(b"release-oci");
    let (status, body) = c.get("/?release-oci", Duration::from_secs(180));
    assert_eq!((status, body), (200, format!("crc32(release-oci) = {}\n", crc.sum())), "logs:\n{}", c.logs());
    drop(c);
    let _ = docker(&["rmi", "-f", &tag]);
}

/// "minimal base: libraries of N ELF files (ldd run M times)" in a build log: (N, M).
fn ldd_runs(log: &str) -> (usize, usize) {
    let line = log.lines().find(|l| l.contains("minimal base: libraries of ")).unwrap_or_else(|| panic!("{log}"));
    let numbers: Vec<usize> =
        line.split(|c: char| !c.is_ascii_digit()).filter(|w| !w.is_empty()).filter_map(|w| w.parse().ok()).collect();
    match numbers[..] {
        [.., files, runs] => (files, runs),
        _ => panic!("{line}"),
    }
}

#[test]
fn the_forced_emulated_build_has_the_same_app_and_deps_layers() {
    require_emulation();
    let project = copy_example("hello_web");
    let out = crate::util::tempdir().expect("tempdir");
    let (mut layers, mut bases) = (Vec::new(), Vec::new());
    for (mode, says) in [("never", "under emulation (linux/arm64/v8): --cross-compile never"), ("auto", COMPILE_ONCE)] {
        let layout = out.path().join(mode);
        let target = format!("oci:{}", layout.display());
        let (_, log) =
            build(project.path(), &["--triple", AARCH64, "--cross-compile", mode, "--no-cache", "-o", &target]);
        let says = says.trim_start_matches("[linux/arm64/v8] ");
        assert!(log.contains(says), "--cross-compile {mode}: the log does not say {says:?}:\n{log}");
        let manifest = layout_manifest(&layout);
        let (path, bytes) = beam_smp(&layout, &manifest);
        assert_eq!(elf_machine(&bytes), EM_AARCH64, "{mode}: {path}");
        layers.push(named_layers(&layout, &manifest));
        bases.push(manifest["layers"][0]["digest"].as_str().expect("base layer").to_string());
        let (files, runs) = ldd_runs(&log);
        assert!(runs < files, "{mode}: ldd ran {runs} times for {files} ELF files:\n{log}");
        let native = log.contains("minimal base: the shell tools run natively");
        assert_eq!(native, mode == "auto", "{mode}: native tools in the gathering\n{log}");
    }
    for name in ["app", "deps"] {
        assert!(layers[0].contains_key(name) || name == "deps", "{:#?}", layers[0]);
        assert_eq!(layers[0].get(name), layers[1].get(name), "layer {name}: {layers:#?}");
    }
    assert_eq!(bases[0], bases[1], "the minimal base gathered natively differs from the emulated one");
}

/// The ERTS and Erlang/OTP directories read out of the two builder images are kept by image id
/// in the cache directory: a rebuild after a change reads none of them again, its ERTS and
/// Erlang/OTP layers are the first build's, and `cache prune` removes them.
#[test]
fn a_rebuild_reads_nothing_out_of_the_builder_images_again() {
    require_emulation();
    let project = copy_example("hello_web");
    let dir = crate::util::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let mut layers = Vec::new();
    for (n, read_before) in [(1, "0 of 10 directories read before"), (2, "10 of 10 directories read before")] {
        if n == 2 {
            let router = project.path().join("lib/hello_web/router.ex");
            let src = std::fs::read_to_string(&router).expect("router.ex");
            std::fs::write(&router, src.replace("from hello_web", "again from hello_web")).expect("router.ex");
        }
        let layout = dir.path().join(format!("oci-{n}"));
        let target = format!("oci:{}", layout.display());
        let cache_arg = cache.display().to_string();
        let (_, log) = build(project.path(), &["--triple", AARCH64, "--cache-dir", &cache_arg, "-o", &target]);
        assert!(log.contains(COMPILE_ONCE.trim_start_matches("[linux/arm64/v8] ")), "build {n}:\n{log}");
        assert!(log.contains(read_before), "build {n} does not say {read_before:?}:\n{log}");
        layers.push(named_layers(&layout, &layout_manifest(&layout)));
    }
    for name in ["erts", "otp"] {
        assert!(layers[0].contains_key(name), "{:#?}", layers[0]);
        assert_eq!(layers[0].get(name), layers[1].get(name), "layer {name}: {layers:#?}");
    }
    assert_ne!(layers[0].get("app"), layers[1].get("app"), "the change is in the second image");
    let mut c = release_oci();
    c.args(["cache", "prune", "--cache-dir"]).arg(&cache);
    let pruned = ok(c);
    assert!(pruned.contains("removed the files read out of builder images"), "{pruned}");
    assert!(!cache.join("image-files").exists());
}

/// A cold build starts the gathering container while the native build runs; a build whose ELF
/// files are new to a cache that knows another base starts it when the release is there. Both
/// gather the same base for the same release.
#[test]
fn the_gathering_started_ahead_or_when_needed_gives_the_same_base() {
    require_emulation();
    let project = copy_example("hello_web");
    let dir = crate::util::tempdir().expect("tempdir");
    const AHEAD: &str = "ELF files, in a container started while the release was compiled";
    let base_of = |n: &str, cache: &str, ahead: bool| {
        let layout = dir.path().join(n);
        let target = format!("oci:{}", layout.display());
        let cache = dir.path().join(cache).display().to_string();
        let (_, log) = build(project.path(), &["--triple", AARCH64, "--cache-dir", &cache, "-o", &target]);
        assert!(log.contains("==> Gathering the minimal base in"), "build {n} gathered nothing:\n{log}");
        assert_eq!(log.contains(AHEAD), ahead, "build {n}: started ahead should be {ahead}:\n{log}");
        layout_manifest(&layout)["layers"][0]["digest"].as_str().expect("base layer").to_string()
    };
    let plain = base_of("plain", "one", true);
    // :crypto brings crypto.so (and libcrypto) into the release: other ELF files, another base.
    let mix = project.path().join("mix.exs");
    let src = std::fs::read_to_string(&mix).expect("mix.exs");
    std::fs::write(&mix, src.replace("extra_applications: [:logger]", "extra_applications: [:logger, :crypto]"))
        .expect("mix.exs");
    let late = base_of("late", "one", false);
    let ahead = base_of("ahead", "two", true);
    assert_ne!(plain, late, "the release with crypto has the same base as without");
    assert_eq!(late, ahead, "the base gathered when needed differs from the one gathered ahead");
}

/// Ctrl-C while the native build runs also removes the gathering container started ahead.
#[test]
fn ctrl_c_during_the_native_build_removes_the_gathering_container_too() {
    require_emulation();
    let project = crate::interrupt::slow_project();
    let dir = crate::util::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let mut c = release_oci();
    c.arg("build").arg(project.path()).args(["--triple", AARCH64, "--cache-dir"]).arg(dir.path().join("cache"));
    c.arg("-o").arg(format!("oci:{}", out.display()));
    c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = c.spawn().expect("spawn");
    let pid = child.id();
    let label = format!("label=org.release-oci.pid={pid}");
    let names = || docker_ok(&["ps", "-a", "--filter", &label, "--format", "{{.Names}}"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    // Both the native builder (compiling a module that sleeps a minute) and the gathering one.
    while !["-base-", "-build-"].iter().all(|kind| names().lines().any(|n| n.contains(kind))) {
        assert!(std::time::Instant::now() < deadline, "process {pid} did not start both containers: {}", names());
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    let st = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().expect("kill");
    assert!(st.success());
    let output = crate::interrupt::wait_at_most(child, Duration::from_secs(30));
    let err = text(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert_eq!(names().trim(), "", "containers of the interrupted build are left:\n{err}");
    assert!(!out.exists(), "output left behind");
}
