//! Shared helpers: the binary, docker, the example builds made once per test run.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_release-oci");
pub const BUILDER_LABEL: &str = "org.release-oci.role=builder";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory under which this run's temp dirs are made. What the run keeps in statics (the
/// shared blob cache, the examples built once) is never dropped, so the directory is removed
/// when the process exits, with the build cache volumes of the projects under it.
pub fn run_root() -> &'static Path {
    RUN_ROOT.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("release-oci-tests-").tempdir().expect("the run's temp dir").keep();
        // Traversable by the users the tests' servers run as (PostgreSQL, sshd).
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        // SAFETY: registers a plain function that only runs at process exit.
        let registered = unsafe { libc::atexit(remove_run_root) };
        assert_eq!(registered, 0, "atexit");
        dir
    })
}

static RUN_ROOT: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_run_root() {
    let Some(root) = RUN_ROOT.get() else { return };
    let volumes = Command::new("docker")
        .args(["volume", "ls", "-q", "--filter", "label=org.release-oci.project"])
        .args(["--format", "{{.Label \"org.release-oci.project\"}}"])
        .output();
    let mut projects: Vec<String> = match volumes {
        Ok(o) => text(&o.stdout).lines().filter(|dir| Path::new(dir).starts_with(root)).map(str::to_string).collect(),
        Err(_) => Vec::new(),
    };
    projects.sort();
    projects.dedup();
    for dir in projects {
        forget_project(Path::new(&dir));
    }
    let _ = std::fs::remove_dir_all(root);
}

/// Removes what the builds of the project directory `dir` (canonical) left:
/// `cache prune --project` (its volumes with the outputs kept for them on the host, in
/// /dev/shm: `docker volume rm` alone left those for a day; its warm builders), then any volume
/// still labelled with it.
pub fn forget_project(dir: &Path) {
    let mut prune = release_oci();
    prune.args(["-q", "cache", "prune", "--project"]).arg(dir).stdout(Stdio::null()).stderr(Stdio::null());
    let _ = prune.status();
    let label = format!("label=org.release-oci.project={}", dir.display());
    let Ok(out) = Command::new("docker").args(["volume", "ls", "-q", "--filter", &label]).output() else { return };
    let names: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    if !names.is_empty() {
        let _ = Command::new("docker").args(["volume", "rm", "-f"]).args(&names).output();
    }
}

/// A temp dir under [`run_root`] (removed on drop, or with the run's directory at exit).
pub fn tempdir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().tempdir_in(run_root())
}

/// A blob cache shared by every test in this run (the store is safe for concurrent builds).
pub fn cache_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new().prefix("release-oci-test-cache-").tempdir_in(run_root()).expect("temp cache")
    })
    .path()
}

/// Panics with a clear message when no Docker engine answers: these tests must not skip.
pub fn require_docker() {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    let r =
        OK.get_or_init(|| match Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]).output() {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => Err(e.to_string()),
        });
    if let Err(e) = r {
        panic!("these tests need a Docker engine and none answers ({e}); run `make setup` (scripts/setup.sh) first");
    }
}

pub fn release_oci() -> Command {
    let mut c = Command::new(BIN);
    c.env("RELEASE_OCI_CACHE", cache_dir()).env_remove("SOURCE_DATE_EPOCH").stdin(Stdio::null());
    c
}

/// Runs a command, returning its output (no assertion).
pub fn run(mut c: Command) -> Output {
    c.output().unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs and asserts success, showing stderr on failure; returns stdout.
pub fn ok(c: Command) -> String {
    let desc = format!("{c:?}");
    let o = run(c);
    assert!(
        o.status.success(),
        "{desc} failed ({}):\n--- stderr\n{}\n--- stdout\n{}",
        o.status,
        text(&o.stderr),
        text(&o.stdout)
    );
    text(&o.stdout)
}

pub fn docker(args: &[&str]) -> Output {
    let mut c = Command::new("docker");
    c.args(args);
    run(c)
}

pub fn docker_ok(args: &[&str]) -> String {
    let mut c = Command::new("docker");
    c.args(args);
    ok(c)
}

/// A copy of an example in a temp dir. Dropping it removes the directory and what the builds of
/// that directory left ([`forget_project`]: its build cache volumes, `org.release-oci.project=DIR`).
pub struct ProjectCopy(tempfile::TempDir);

impl std::ops::Deref for ProjectCopy {
    type Target = tempfile::TempDir;
    fn deref(&self) -> &tempfile::TempDir {
        &self.0
    }
}

impl Drop for ProjectCopy {
    fn drop(&mut self) {
        let Ok(dir) = self.0.path().canonicalize() else { return };
        forget_project(&dir);
    }
}

impl ProjectCopy {
    /// An empty project directory (its cache volumes removed on drop, like a copy's).
    pub fn empty() -> ProjectCopy {
        ProjectCopy(tempfile::Builder::new().prefix("release-oci-project-").tempdir_in(run_root()).expect("tempdir"))
    }
}

/// Copies an example into a temp dir (so tests can change it).
pub fn copy_example(name: &str) -> ProjectCopy {
    let dir = tempfile::Builder::new().prefix(&format!("release-oci-{name}-")).tempdir_in(run_root()).expect("tempdir");
    let src = repo_root().join("examples").join(name);
    let status = Command::new("cp").arg("-a").arg(format!("{}/.", src.display())).arg(dir.path()).status().expect("cp");
    assert!(status.success());
    for junk in ["_build", "deps"] {
        let _ = std::fs::remove_dir_all(dir.path().join(junk));
    }
    ProjectCopy(dir)
}

/// A finished build of an example: its OCI layout, archive, loaded tag and digest.
pub struct Built {
    pub project: ProjectCopy,
    pub out: tempfile::TempDir,
    pub digest: String,
    pub tag: String,
}

impl Built {
    pub fn layout(&self) -> PathBuf {
        self.out.path().join("oci")
    }
    pub fn archive(&self) -> PathBuf {
        self.out.path().join("image.tar")
    }
}

/// Builds `examples/NAME` with every output at once: OCI layout, docker archive, --load.
pub fn build_example(name: &str, extra: &[&str]) -> Built {
    require_docker();
    let project = copy_example(name);
    let out = crate::util::tempdir().expect("tempdir");
    let tag = format!("release-oci-test/{name}:{}", std::process::id());
    let mut c = release_oci();
    c.arg("build")
        .arg(project.path())
        .arg("--output")
        .arg(format!("oci:{}", out.path().join("oci").display()))
        .arg("--output")
        .arg(format!("docker-archive:{}", out.path().join("image.tar").display()))
        .args(["--load", "--tag", &tag, "--port", "4000"])
        .args(extra);
    let digest = ok(c).trim().to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "stdout is not a digest: {digest:?}");
    Built { project, out, digest, tag }
}

/// hello_web, built once per test run. Without a build cache volume: a static is never dropped,
/// so nothing would remove the volume after the run (the cache has tests of its own).
pub fn hello() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| build_example("hello_web", &["--no-cache"]))
}

/// path_deps, built once per test run (without a build cache volume, as [`hello`]).
pub fn path_deps() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| build_example("path_deps", &["--no-cache"]))
}

/// A running container, removed on drop.
pub struct Container {
    pub id: String,
}

impl Container {
    pub fn start(args: &[&str], image: &str, cmd: &[&str]) -> Container {
        let mut all = vec!["run", "-d", "-p", "127.0.0.1::4000"];
        all.extend_from_slice(args);
        all.push(image);
        all.extend_from_slice(cmd);
        let id = docker_ok(&all).trim().to_string();
        Container { id }
    }

    pub fn port(&self) -> u16 {
        let out = docker_ok(&["port", &self.id, "4000/tcp"]);
        let line = out.lines().next().unwrap_or_default();
        line.rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no port mapping: {out:?}"))
    }

    pub fn logs(&self) -> String {
        let o = docker(&["logs", &self.id]);
        format!("{}{}", text(&o.stdout), text(&o.stderr))
    }

    /// GETs `path` until it answers (up to `wait`), returning (status, body).
    pub fn get(&self, path: &str, wait: Duration) -> (u16, String) {
        let port = self.port();
        let deadline = Instant::now() + wait;
        loop {
            match http_get(port, path) {
                Ok(r) => return r,
                Err(e) if Instant::now() > deadline => {
                    panic!("no HTTP answer from container {} on port {port}: {e}\nlogs:\n{}", self.id, self.logs())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["exec", self.id.as_str()];
        all.extend_from_slice(args);
        docker(&all)
    }

    /// `docker stop` with a timeout; returns (exit code, seconds it took).
    pub fn stop(&self, timeout_s: u32) -> (i64, f64) {
        let t = Instant::now();
        docker_ok(&["stop", "-t", &timeout_s.to_string(), &self.id]);
        let secs = t.elapsed().as_secs_f64();
        let code = docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &self.id]).trim().parse().expect("exit code");
        (code, secs)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.id]).output();
    }
}

pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {buf:?}")))?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// Builder containers (labelled) that exist right now.
pub fn builder_containers() -> Vec<String> {
    docker_ok(&["ps", "-a", "-q", "--filter", &format!("label={BUILDER_LABEL}")]).lines().map(str::to_string).collect()
}

/// The parsed manifest of the only image in an OCI layout.
pub fn layout_manifest(dir: &Path) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json")).expect("json");
    let digest = index["manifests"][0]["digest"].as_str().expect("digest").to_string();
    blob_json(dir, &digest)
}

pub fn blob_json(dir: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.trim_start_matches("sha256:");
    serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(hex)).expect("blob")).expect("json")
}

/// The image config of the only image in a layout.
pub fn layout_config(dir: &Path) -> serde_json::Value {
    let m = layout_manifest(dir);
    blob_json(dir, m["config"]["digest"].as_str().expect("config digest"))
}

/// Lists the paths in a gzip layer blob of a layout.
pub fn layer_paths(dir: &Path, digest: &str) -> Vec<String> {
    let f = std::fs::File::open(dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).expect("layer");
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    a.entries().expect("tar").map(|e| e.expect("entry").path().expect("path").to_string_lossy().into_owned()).collect()
}
