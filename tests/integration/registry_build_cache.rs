//! deps/ and _build/ shared through a registry (`--cache-repo`, docs/build-cache.md): runner A
//! builds and publishes its build dirs; runner B (another blob store, no cache volume) builds a
//! one-line change, restores them first and recompiles one module, and its image runs the new
//! code; runner C (the trixie builder: Erlang/OTP 27) and runner D (the bookworm builder with one
//! label more: another image id) restore nothing and say why. skopeo reads the artifacts. A build
//! with a `--secret` publishes its deps without the secret, and a fresh runner restores them with
//! the Hex repository gone: the dependency is not compiled again.

use crate::hex_kit::*;
use crate::registry_util::*;
use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub(crate) const RESTORING: &str = "Restoring the build cache from";
pub(crate) const PUBLISHING: &str = "Publishing the build cache to";
/// What mix compiles of hello_web (with an Erlang module) from nothing.
const COLD: [&str; 2] = ["  │ Compiling 1 file (.erl)", "  │ Compiling 3 files (.ex)"];

/// `release-oci build PROJECT EXTRA` with its own blob store; (stdout, stderr).
pub(crate) fn build(project: &Path, store: &Path, extra: &[&str]) -> (String, String) {
    let mut c = release_oci();
    c.env("RELEASE_OCI_CACHE", store).arg("build").arg(project).args(extra);
    let desc = format!("{c:?}");
    let o = run(c);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{desc} failed ({}):\n--- stderr\n{stderr}\n--- stdout\n{stdout}", o.status);
    (stdout.trim().to_string(), stderr)
}

/// The first `PREFIX<64 hex>` tag a log names.
const TASK_COMPILED: &str = "build cache: compiling the Mix task";

fn tag_in(log: &str, prefix: &str) -> String {
    let at = log.find(prefix).unwrap_or_else(|| panic!("the log names no {prefix} tag:\n{log}"));
    log[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect()
}

fn compiled(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("Compiling ")).collect()
}

/// Removes the build cache volumes of `project` (a runner without them).
/// The project's volumes gone, with the outputs kept for them on the host (as on another runner).
pub(crate) fn remove_volumes(project: &Path) {
    let dir = project.canonicalize().expect("canonical");
    forget_project(&dir);
    let label = format!("label=org.release-oci.project={}", dir.display());
    let left = docker_ok(&["volume", "ls", "-q", "--filter", &label]);
    assert!(left.trim().is_empty(), "volumes of {} left: {left}", dir.display());
}

fn set_greeting(project: &Path, greeting: &str) {
    let router = project.join("lib/hello_web/router.ex");
    let src = std::fs::read_to_string(&router).expect("router.ex");
    std::fs::write(&router, src.replace("hello from hello_web", &format!("{greeting} from hello_web")))
        .expect("write router.ex");
}

/// The builder image with one label more: another image id, the same toolchain inside.
struct DerivedBuilder(String);

impl DerivedBuilder {
    fn new() -> DerivedBuilder {
        let tag = format!("release-oci-test/build-dirs-builder:{}", std::process::id());
        let dockerfile =
            format!("FROM release-oci/builder:debian-bookworm\nLABEL org.release-oci.test.build-dirs=\"{tag}\"\n");
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

/// Removes an image tag when the test ends.
pub(crate) struct RmiOnDrop(pub(crate) String);

impl Drop for RmiOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", &self.0]).output();
    }
}

/// Removes the project's cache volumes when the test ends.
pub(crate) struct VolumesOnDrop(pub(crate) PathBuf);

impl Drop for VolumesOnDrop {
    fn drop(&mut self) {
        if self.0.exists() {
            remove_volumes(&self.0);
        }
    }
}

/// The build's log, shown with `--nocapture`: what a failure is read against.
pub(crate) fn show(runner: &str, log: &str) {
    eprintln!("--- runner {runner}\n{log}");
}

fn builder_id(image: &str) -> String {
    docker_ok(&["image", "inspect", "-f", "{{.Id}}", image]).trim().to_string()
}

#[test]
fn a_fresh_runner_restores_the_build_dirs_and_recompiles_only_the_changed_module() {
    require_docker();
    let reg = Registry::plain();
    let cache = format!("{}/cache/hello", reg.addr());
    let project = copy_example("hello_web");
    let _volumes = VolumesOnDrop(project.path().canonicalize().expect("canonical"));
    // An Erlang module too: mix recompiles an .erl file whose mtime is newer than its .beam even
    // when its content is the same (an .ex file it compares by digest), so only sources restored
    // with their mtimes keep runner B from compiling it again.
    std::fs::create_dir_all(project.path().join("src")).expect("mkdir src");
    std::fs::write(project.path().join("src/hello_erl.erl"), "-module(hello_erl).\n-export([hi/0]).\nhi() -> hi.\n")
        .expect("write hello_erl.erl");
    let bookworm = builder_id("release-oci/builder:debian-bookworm");

    // Runner A: a cold build, its build dirs published; nothing loaded into the engine. Both
    // runners take the engine's Debian base (which the registry cache records for runner B).
    let store_a = crate::util::tempdir().unwrap();
    let out_a = crate::util::tempdir().unwrap();
    let layout_a = format!("oci:{}", out_a.path().join("layout").display());
    let (_, log_a) =
        build(project.path(), store_a.path(), &["--cache-repo", &cache, "--base", "debian", "-o", &layout_a]);
    show("A", &log_a);
    assert_eq!(compiled(&log_a), COLD, "{log_a}");
    assert!(!log_a.contains(RESTORING), "{log_a}");
    assert!(log_a.contains("Build cache: nothing to restore from"), "{log_a}");
    assert!(log_a.contains(PUBLISHING), "{log_a}");
    let app_tag = tag_in(&log_a, "bd-app-");
    assert_eq!(app_tag.len(), "bd-app-".len() + 64, "{app_tag}");
    inspect_app_artifact(&format!("{cache}:{app_tag}"), &bookworm);
    // The engine base, recorded for runners without it in their blob store.
    let runtime = builder_id("release-oci/runtime:debian-bookworm");
    let base_tag = format!("base-{}", runtime.trim_start_matches("sha256:"));
    assert!(log_a.contains(&format!("base release-oci/runtime:debian-bookworm recorded ({base_tag})")), "{log_a}");
    inspect_base_record(&format!("{cache}:{base_tag}"), &runtime);

    // Runner B: another blob store, no cache volume, the set-up images only; a one-line change
    // (same length: seen by content). The build dirs come from the registry; one module compiles.
    remove_volumes(project.path());
    set_greeting(project.path(), "howdy");
    let store_b = crate::util::tempdir().unwrap();
    let tag = RmiOnDrop(format!("release-oci-test/build-dirs:{}", std::process::id()));
    let load =
        ["--cache-repo", cache.as_str(), "--base", "debian", "--load", "--tag", tag.0.as_str(), "--port", "4000"];
    let (digest_b, log_b) = build(project.path(), store_b.path(), &load);
    show("B", &log_b);
    assert!(log_b.contains(RESTORING), "runner B restored nothing:\n{log_b}");
    assert!(log_b.contains("app built from other sources (bd-last-"), "{log_b}");
    // Runner A's release cache too (published once: B's fingerprints are A's), which B's build
    // reuses for all but the project's own application, as a kept volume would.
    let rel_tag = tag_in(&log_a[log_a.find(PUBLISHING).unwrap()..], "bd-rel-");
    assert!(log_b.contains(&format!("releases ({rel_tag})")), "{log_b}");
    assert!(log_b.contains("build cache: restored into the new volume: app rel"), "{log_b}");
    assert!(log_b.contains("release cache: unchanged but for hello_web: copied just those"), "{log_b}");
    // Runner A's layers (gzip, published with its build dirs; B's `--load` writes plain tars).
    let layers_tag = tag_in(&log_a[log_a.find(PUBLISHING).unwrap()..], "bd-layers-");
    inspect_layers_artifact(&format!("{cache}:{layers_tag}"));
    assert!(log_b[log_b.find(PUBLISHING).unwrap()..].contains("releases already there"), "{log_b}");
    assert_eq!(compiled(&log_b), ["  │ Compiling 1 file (.ex)"], "only the changed module compiles:\n{log_b}");
    // Its empty blob store gets the base from the cache repository, not from the engine's export
    // (the image loaded into the engine below checks every layer against the config's diff_ids).
    assert!(log_b.contains(&format!("1 layers, from {cache} ({base_tag}, ")), "{log_b}");
    // The restored volume has the compiled Mix task, and the restored compile's end (`.built`):
    // the changed sources' copy does not wait for the next second.
    assert!(log_a.contains(TASK_COMPILED), "{log_a}");
    assert!(!log_b.contains(TASK_COMPILED), "the Mix task was compiled again:\n{log_b}");
    assert!(!log_b.contains("copied within the second of the last compile"), "{log_b}");
    let c = Container::start(&[], &tag.0, &[]);
    let (status, body) = c.get("/", Duration::from_secs(30));
    assert_eq!((status, body.as_str()), (200, "howdy from hello_web 0.1.0\n"), "the image runs the new code");
    drop(c);
    // Its app build was published in turn (another tag), the moving tag now points at it.
    assert_ne!(tag_in(&log_b[log_b.find(PUBLISHING).unwrap()..], "bd-app-"), app_tag);
    // The image a build without any cache makes.
    let cold = ["--no-cache", "--base", "debian", "--load", "--tag", tag.0.as_str(), "--port", "4000"];
    let (digest_cold, log_cold) = build(project.path(), store_b.path(), &cold);
    assert_eq!(digest_b, digest_cold, "runner B's image is not the cold build's:\n{log_b}\n{log_cold}");
    a_fresh_runner_compresses_only_new_layers(project.path(), &cache);

    other_toolchains_restore_nothing(project.path(), &cache, &bookworm);
}

/// Runner E: another one-line change, to an OCI layout (gzip layers): the layers the registry
/// has (published by the runners before) are reused, not compressed again, and the image is the
/// one a build without any cache makes.
fn a_fresh_runner_compresses_only_new_layers(project: &Path, cache: &str) {
    remove_volumes(project);
    let router = project.join("lib/hello_web/router.ex");
    let src = std::fs::read_to_string(&router).expect("router.ex");
    std::fs::write(&router, src.replace("howdy from hello_web", "hiya! from hello_web")).expect("write router.ex");
    let (store_e, out) = (crate::util::tempdir().unwrap(), crate::util::tempdir().unwrap());
    let layout = |name: &str| format!("oci:{}", out.path().join(name).display());
    let (digest_e, log_e) =
        build(project, store_e.path(), &["--cache-repo", cache, "--base", "debian", "-o", &layout("e")]);
    show("E", &log_e);
    let reused = reused_layers(&log_e);
    assert!(reused.0 >= 3 && reused.0 < reused.1, "runner E reused {reused:?} of the published layers:\n{log_e}");
    let store_cold = crate::util::tempdir().unwrap();
    let (digest_cold, log_cold) =
        build(project, store_cold.path(), &["--no-cache", "--base", "debian", "-o", &layout("cold")]);
    assert_eq!(digest_e, digest_cold, "runner E's image is not the cold build's:\n{log_e}\n{log_cold}");
}

/// (reused, of how many) from the log's "N of M reused from the layer cache".
fn reused_layers(log: &str) -> (usize, usize) {
    let line = log.lines().find(|l| l.contains("reused from the layer cache")).expect("the layers' line");
    let words: Vec<&str> = line.split([' ', ',']).collect();
    let at = words.iter().position(|w| *w == "reused").expect("reused");
    (words[at - 3].parse().expect("N"), words[at - 1].parse().expect("M"))
}

/// Runners C and D: builds with another builder image restore nothing.
fn other_toolchains_restore_nothing(project: &Path, cache: &str, bookworm: &str) {
    // Runner C: the project pins Elixir 1.18, so the trixie builder (Erlang/OTP 27) builds it:
    // nothing restored, and the log says why.
    std::fs::write(project.join(".tool-versions"), "erlang 27.3\nelixir 1.18.3-otp-27\n").expect("pin");
    let log_c = build_elsewhere(project, cache, &[]);
    show("C", &log_c);
    assert!(log_c.contains("Builder release-oci/builder:debian-trixie (Elixir 1.18."), "{log_c}");
    let trixie = builder_id("release-oci/builder:debian-trixie");
    assert!(log_c.contains(&format!("for builder image {trixie}")), "{log_c}");
    assert_restored_nothing(&log_c, bookworm);
    std::fs::remove_file(project.join(".tool-versions")).expect("unpin");

    // Runner D: the bookworm builder with one label more (another image id, the same files).
    // The latest build dirs for these locks are runner C's now: the log names its builder.
    let derived = DerivedBuilder::new();
    let log_d = build_elsewhere(project, cache, &["--builder-image", &derived.0]);
    show("D", &log_d);
    assert!(log_d.contains(&format!("for builder image {}", builder_id(&derived.0))), "{log_d}");
    assert_restored_nothing(&log_d, &trixie);
}

/// A build on a runner with a new blob store (its volume is new: another builder image), into a
/// layout; its log.
fn build_elsewhere(project: &Path, cache: &str, extra: &[&str]) -> String {
    let (store, out) = (crate::util::tempdir().unwrap(), crate::util::tempdir().unwrap());
    let layout = format!("oci:{}", out.path().join("layout").display());
    let mut args = vec!["--cache-repo", cache, "-o", &layout];
    args.extend_from_slice(extra);
    build(project, store.path(), &args).1
}

/// Nothing restored; the log names the toolchain of the latest build dirs for these locks
/// (`other_builder`) and says why; the project compiles in full.
fn assert_restored_nothing(log: &str, other_builder: &str) {
    assert!(!log.contains(RESTORING), "restored across toolchains:\n{log}");
    assert!(log.contains("never restored across toolchains"), "the log does not say why:\n{log}");
    assert!(log.contains(other_builder), "the log does not name the other builder image:\n{log}");
    assert_eq!(compiled(log), COLD, "{log}");
}

/// The app artifact is an ordinary OCI image manifest: skopeo reads it, its layers are tar+gzip,
/// its annotations name the builder image it was built with.
fn inspect_app_artifact(reference: &str, builder_id: &str) {
    let inspected = skopeo_inspect(reference, &["--tls-verify=false"]);
    assert!(inspected.status.success(), "skopeo inspect {reference}: {}", text(&inspected.stderr));
    let info: serde_json::Value = serde_json::from_slice(&inspected.stdout).expect("skopeo json");
    let raw = skopeo_inspect(reference, &["--tls-verify=false", "--raw"]);
    assert!(raw.status.success());
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).expect("manifest");
    assert_eq!(
        info["Digest"].as_str(),
        Some(format!("sha256:{}", sha256_hex(&raw.stdout)).as_str()),
        "skopeo's digest is the manifest's"
    );
    assert_eq!(manifest["artifactType"], "application/vnd.release-oci.build-dirs.v1");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
    let layers = manifest["layers"].as_array().expect("layers");
    let titles: Vec<&str> =
        layers.iter().map(|l| l["annotations"]["org.opencontainers.image.title"].as_str().unwrap_or("")).collect();
    assert_eq!(titles, ["app.tar.gz", "sources.tar.gz"]);
    for (l, skopeo) in layers.iter().zip(info["Layers"].as_array().expect("Layers")) {
        assert_eq!(l["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
        assert_eq!(&l["digest"], skopeo);
    }
    assert_eq!(info["Labels"]["org.release-oci.build-dirs.kind"], "app");
    assert_eq!(manifest["annotations"]["org.release-oci.build-dirs.builder-image-id"], builder_id);
}

/// The layers artifact is an ordinary OCI image manifest too (skopeo reads it): the gzip layers
/// a build wrote, each titled with its diff_id, and what made them.
fn inspect_layers_artifact(reference: &str) {
    let inspected = skopeo_inspect(reference, &["--tls-verify=false"]);
    assert!(inspected.status.success(), "skopeo inspect {reference}: {}", text(&inspected.stderr));
    let info: serde_json::Value = serde_json::from_slice(&inspected.stdout).expect("skopeo json");
    assert_eq!(info["Labels"]["org.release-oci.build-dirs.kind"], "layers");
    let made_by = info["Labels"]["org.release-oci.build-dirs.made-by"].as_str().unwrap_or("");
    assert!(made_by.starts_with("release-oci ") && made_by.contains("gzip level"), "{made_by}");
    let raw = skopeo_inspect(reference, &["--tls-verify=false", "--raw"]);
    assert!(raw.status.success());
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).expect("manifest");
    let layers = manifest["layers"].as_array().expect("layers");
    // runtime, erts, otp, release, app (not the base's).
    assert_eq!(layers.len(), 5, "{manifest}");
    for (l, skopeo) in layers.iter().zip(info["Layers"].as_array().expect("Layers")) {
        assert_eq!(l["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
        assert_eq!(&l["digest"], skopeo);
        let title = l["annotations"]["org.opencontainers.image.title"].as_str().unwrap_or("");
        let hex = title.strip_prefix("sha256:").unwrap_or("");
        assert!(hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()), "title {title:?}");
    }
}

/// The base record is an ordinary OCI image manifest (skopeo reads it): the engine image's config
/// (its digest is the image id) and its one compressed layer.
fn inspect_base_record(reference: &str, image_id: &str) {
    let raw = skopeo_inspect(reference, &["--tls-verify=false", "--raw"]);
    assert!(raw.status.success(), "skopeo inspect {reference}: {}", text(&raw.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).expect("manifest");
    assert_eq!(manifest["config"]["digest"], image_id);
    assert_eq!(manifest["annotations"]["org.release-oci.base.engine-image-id"], image_id);
    let inspected = skopeo_inspect(reference, &["--tls-verify=false"]);
    assert!(inspected.status.success(), "skopeo inspect {reference}: {}", text(&inspected.stderr));
    let info: serde_json::Value = serde_json::from_slice(&inspected.stdout).expect("skopeo json");
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(1), "{info}");
    assert_eq!(info["Layers"][0], manifest["layers"][0]["digest"]);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

const AUTH_KEY: &str = "acme-auth-7e57c0ffee5ec2e7";

/// A mix project `dir/NAME` with `deps` in its mix.exs (as private_deps.rs makes them).
fn mix_project(dir: &Path, name: &str, deps: &str, body: &str) -> PathBuf {
    let root = dir.join(name);
    let module = name.split('_').map(|w| format!("{}{}", &w[..1].to_uppercase(), &w[1..])).collect::<String>();
    std::fs::create_dir_all(root.join("lib")).expect("mkdir");
    let mix = format!(
        "defmodule {module}.MixProject do\n  use Mix.Project\n  def project, do: [app: :{name}, version: \"0.1.0\", elixir: \"~> 1.14\", deps: [{deps}], description: \"test package\", package: [licenses: [\"Apache-2.0\"], links: %{{}}]]\n  def application, do: [extra_applications: [:logger]]\nend\n"
    );
    std::fs::write(root.join("mix.exs"), mix).expect("mix.exs");
    std::fs::write(root.join(format!("lib/{name}.ex")), format!("defmodule {module} do\n  {body}\nend\n"))
        .expect("lib");
    root
}

/// A Hex repository `acme` with one package, `acme_secret` 0.1.0.
fn private_repository(home: &MixHome, dir: &Path) -> PathBuf {
    let pkg = mix_project(dir, "acme_secret", "", "def hello, do: :from_the_private_repository");
    let mut c = home.mix(&pkg);
    c.args(["hex.build"]);
    check(c);
    let public = dir.join("public");
    std::fs::create_dir_all(public.join("tarballs")).expect("mkdir");
    std::fs::rename(pkg.join("acme_secret-0.1.0.tar"), public.join("tarballs/acme_secret-0.1.0.tar")).expect("mv");
    let mut c = Command::new("openssl");
    c.args(["genrsa", "-out"]).arg(dir.join("acme.pem")).arg("2048");
    check(c);
    let mut c = home.mix(dir);
    c.args(["hex.registry", "build", "public", "--name=acme", "--private-key=acme.pem"]);
    check(c);
    public
}

/// The files under `dir` (gzip blobs also unpacked) that contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> String {
    let script = format!(
        "cd {} && find . -type f | while read -r f; do \
           if grep -qaF -- \"$1\" \"$f\"; then echo \"$f\"; fi; \
           if gzip -t \"$f\" 2>/dev/null && gzip -dc \"$f\" | grep -qaF -- \"$1\"; then echo \"$f (unpacked)\"; fi; \
         done",
        dir.display()
    );
    let o = Command::new("sh").args(["-c", &script, "sh", needle]).output().expect("sh");
    text(&o.stdout).trim().to_string()
}

/// A project with a locked dependency from a private Hex repository, `acme`, whose auth key is
/// a `--secret`; the build command (in `store`) and the server (stopped when dropped).
struct PrivateProject {
    _work: tempfile::TempDir,
    _project: ProjectCopy,
    root: PathBuf,
    server: Option<Server>,
}

impl PrivateProject {
    fn new(home: &MixHome) -> PrivateProject {
        let work = crate::util::tempdir().expect("tempdir");
        let public = private_repository(home, work.path());
        let server = Server::start(&public, None, Some(AUTH_KEY));
        let project = ProjectCopy::empty();
        let root = mix_project(
            project.path(),
            "uses_private",
            "{:acme_secret, \"~> 0.1\", repo: \"acme\"}",
            "def hello, do: AcmeSecret.hello()",
        );
        let mut c = home.mix(&root);
        c.args(["hex.repo", "add", "acme", &server.url, "--public-key"])
            .arg(public.join("public_key"))
            .args(["--auth-key", AUTH_KEY]);
        check(c);
        let mut c = home.mix(&root);
        c.arg("deps.get");
        check(c);
        let _ = std::fs::remove_dir_all(root.join("deps"));
        std::fs::create_dir_all(root.join("keys")).expect("mkdir");
        std::fs::copy(public.join("public_key"), root.join("keys/acme.pem")).expect("key");
        let toml = format!(
            "[[hex.repos]]\nname = \"acme\"\nurl = \"{}\"\npublic_key = \"keys/acme.pem\"\nauth_secret = \"acme_key\"\n",
            server.url
        );
        std::fs::write(root.join("release-oci.toml"), toml).expect("toml");
        PrivateProject { _work: work, _project: project, root, server: Some(server) }
    }

    /// Builds with its own blob store into a layout, pushing the build dirs to `cache`; the log.
    fn build(&self, cache: &str) -> String {
        let (store, out) = (crate::util::tempdir().expect("store"), crate::util::tempdir().expect("out"));
        let mut c = release_oci();
        c.env("RELEASE_OCI_CACHE", store.path()).env("ACME_KEY", AUTH_KEY);
        c.arg("build").arg(&self.root).arg("--hex-client").arg(hex_client());
        c.args(["--secret", "id=acme_key,env=ACME_KEY,build_env=ACME_BUILD_KEY", "--cache-repo", cache]);
        c.arg("-o").arg(format!("oci:{}", out.path().join("image").display()));
        ok_log(c)
    }
}

#[test]
fn a_build_with_a_secret_publishes_its_build_dirs_without_the_secret() {
    require_docker();
    let reg = Registry::plain();
    let cache = format!("{}/cache/private", reg.addr());
    let home = MixHome::new();
    let mut project = PrivateProject::new(&home);
    let _volumes = VolumesOnDrop(project.root.canonicalize().expect("canonical"));
    let log = project.build(&cache);
    show("A", &log);
    assert!(log.contains(PUBLISHING), "{log}");
    assert_eq!(compiled(&log), ["  │ Compiling 1 file (.ex)", "  │ Compiling 1 file (.ex)"], "{log}");
    assert!(log.contains("Generated acme_secret app"), "{log}");
    // The private package's deps and _build went up, in the deps artifact.
    let deps_tag = tag_in(&log[log.find(PUBLISHING).unwrap()..], "bd-deps-");
    let inspected = skopeo_inspect(&format!("{cache}:{deps_tag}"), &["--tls-verify=false"]);
    assert!(inspected.status.success(), "{}", text(&inspected.stderr));
    let info: serde_json::Value = serde_json::from_slice(&inspected.stdout).expect("json");
    assert_eq!(info["Labels"]["org.release-oci.build-dirs.kind"], "deps");
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(1));
    // No blob in the registry's storage holds the key, compressed or not.
    let storage = reg.dir.path().join("data");
    assert!(storage.is_dir());
    let found = files_containing(&storage, AUTH_KEY);
    assert!(found.is_empty(), "the secret is in the registry: {found}");
    // (And the deps artifact does hold the package: the search above can see into layers.)
    assert!(!files_containing(&storage, "from_the_private_repository").is_empty(), "no deps were published");

    // Runner B: no cache volume, another blob store, the Hex repository gone; a one-line change
    // in the project. The dependency comes compiled from the deps artifact: only the project's
    // module compiles.
    remove_volumes(&project.root);
    drop(project.server.take());
    let lib = project.root.join("lib/uses_private.ex");
    let src = std::fs::read_to_string(&lib).expect("lib");
    std::fs::write(&lib, src.replace("def hello,", "def hello(),")).expect("write lib");
    let log_b = project.build(&cache);
    show("B", &log_b);
    assert!(log_b.contains(&format!("deps ({deps_tag})")), "the deps artifact was not restored:\n{log_b}");
    assert_eq!(compiled(&log_b), ["  │ Compiling 1 file (.ex)"], "only the project's module compiles:\n{log_b}");
    assert!(!log_b.contains("acme_secret app"), "the dependency was compiled again:\n{log_b}");
}

/// Runs and asserts success; stderr and stdout together.
fn ok_log(c: Command) -> String {
    let desc = format!("{c:?}");
    let o = run(c);
    let log = format!("{}{}", text(&o.stderr), text(&o.stdout));
    assert!(o.status.success(), "{desc} failed ({}):\n{log}", o.status);
    log
}
