//! Builders on other machines (docs/builder.md): a second Docker engine on this machine
//! (scripts/remote-engine.sh: its own data root, exec root, pid file and socket, no bridge), with
//! the builder images loaded into it, reached as another machine's engine would be:
//! - through `ssh://root@127.0.0.1:PORT` (an OpenSSH server of the test's own on 127.0.0.1, with its
//!   own host key and configuration, root login with the test's key only; its sessions' DOCKER_HOST
//!   is the second engine's socket, so `docker system dial-stdio` reaches it), as `--builder-host`;
//! - through `tcp://127.0.0.1:PORT` with TLS client certificates of a test CA, as `DOCKER_HOST` with
//!   `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`;
//!
//! and hello_web built there has the digest of this machine's engine's build. The builder's
//! containers are seen in the second engine's events. Two platforms, x86_64 on this machine's
//! engine and aarch64 on the second one, build at the same time. Errors name the endpoint: a
//! builder image the engine lacks (with how to load it), `--ssh` on an engine elsewhere, an
//! endpoint that does not answer. Nothing is left behind: no ssh process, no control socket.
//!
//! The engine and the OpenSSH server are shared by the tests that run at the same time and stopped
//! when the last one ends ([`RemoteEngine`]).

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

const SCRIPT: &str = "scripts/remote-engine.sh";
/// The second engine's socket (scripts/remote-engine.sh).
const SOCKET: &str = "/run/release-oci-remote-engine.sock";
const X86_64: &str = "x86_64-unknown-linux-gnu";
const AARCH64: &str = "aarch64-unknown-linux-gnu";
const BUILDER: &str = "release-oci/builder:debian-bookworm";
const BUILDER_ARM64: &str = "release-oci/builder:debian-bookworm-arm64";

/// The second engine and an OpenSSH server in front of it; stopped (the engine, its containerd,
/// sshd) when the last test holding it drops it.
struct RemoteEngine {
    dir: tempfile::TempDir,
    tls_port: u16,
    ssh_port: u16,
    sshd: Mutex<Child>,
}

impl Drop for RemoteEngine {
    fn drop(&mut self) {
        if let Ok(mut sshd) = self.sshd.lock() {
            let _ = sshd.kill();
            let _ = sshd.wait();
        }
        let o = script(&["stop"]);
        assert!(o.status.success() || std::thread::panicking(), "stopping the second engine: {}", text(&o.stderr));
    }
}

fn script(args: &[&str]) -> std::process::Output {
    let mut c = Command::new("bash");
    c.arg(repo_root().join(SCRIPT)).args(args);
    run(c)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0)).expect("port").local_addr().expect("addr").port()
}

/// The running second engine (started by the first caller).
fn engine() -> Arc<RemoteEngine> {
    static ENGINE: Mutex<Weak<RemoteEngine>> = Mutex::new(Weak::new());
    let mut slot = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = slot.upgrade() {
        return e;
    }
    require_docker();
    let dir = tempfile::Builder::new().prefix("release-oci-remote-").tempdir().expect("tempdir");
    let tls_port = free_port();
    let o = script(&["start", &dir.path().join("certs").display().to_string(), &tls_port.to_string()]);
    assert!(o.status.success(), "scripts/remote-engine.sh start failed:\n{}", text(&o.stderr));
    let (sshd, ssh_port) = sshd(dir.path());
    let e = Arc::new(RemoteEngine { dir, tls_port, ssh_port, sshd: Mutex::new(sshd) });
    load(&[BUILDER]);
    *slot = Arc::downgrade(&e);
    e
}

/// Copies images from this machine's engine into the second one (skipped when it has them).
fn load(images: &[&str]) {
    let o = script(&[&["load"][..], images].concat());
    assert!(o.status.success(), "loading {images:?} into the second engine:\n{}", text(&o.stderr));
}

/// An OpenSSH server on 127.0.0.1 (own port, host key and configuration): root logs in with the
/// test's key only, and its sessions' DOCKER_HOST is the second engine.
fn sshd(dir: &Path) -> (Child, u16) {
    for key in ["host_key", "client_key"] {
        let o = run_cmd("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-f", &dir.join(key).display().to_string()]);
        assert!(o.status.success(), "ssh-keygen: {}", text(&o.stderr));
    }
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).expect("authorized_keys");
    let port = free_port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
         AllowUsers root\nPermitRootLogin prohibit-password\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nPidFile {d}/sshd.pid\n\
         SetEnv DOCKER_HOST=unix://{SOCKET}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), config).expect("sshd_config");
    std::fs::create_dir_all("/run/sshd").expect("privilege separation directory");
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stderr(std::fs::File::create(dir.join("sshd.log")).expect("sshd.log"))
        .spawn()
        .expect("start sshd (package openssh-server)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not start on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let host_key = std::fs::read_to_string(dir.join("host_key.pub")).expect("host key");
    std::fs::write(dir.join("known_hosts"), format!("[127.0.0.1]:{port} {host_key}")).expect("known_hosts");
    (child, port)
}

fn run_cmd(program: &str, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(program);
    c.args(args);
    run(c)
}

impl RemoteEngine {
    fn ssh_url(&self) -> String {
        format!("ssh://root@127.0.0.1:{}", self.ssh_port)
    }

    fn tls_url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.tls_port)
    }

    fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs/client")
    }

    /// `ssh` with the test's key and known host, and nothing of the user's configuration or agent.
    fn ssh_command(&self) -> String {
        let d = self.dir.path().display();
        format!(
            "ssh -F /dev/null -i {d}/client_key -o IdentitiesOnly=yes -o IdentityAgent=none \
             -o UserKnownHostsFile={d}/known_hosts -o StrictHostKeyChecking=yes"
        )
    }

    /// `release-oci` whose ssh logs in to this engine's server, with `tmp` for its temporary files
    /// (where the ssh control sockets go: [`tunnels_left`] looks there).
    fn release_oci(&self, tmp: &Path) -> Command {
        let mut c = release_oci();
        c.env("RELEASE_OCI_SSH_COMMAND", self.ssh_command()).env("TMPDIR", tmp);
        c
    }

    /// `docker` against the second engine.
    fn docker(&self, args: &[&str]) -> String {
        let mut c = Command::new("docker");
        c.arg("-H").arg(format!("unix://{SOCKET}")).args(args);
        ok(c)
    }

    /// The builder containers the second engine created since `since` (a Unix time): their
    /// triples, from the events.
    fn builders_since(&self, since: u64) -> Vec<String> {
        let until = now() + 1;
        let events = self.docker(&[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            "type=container",
            "--filter",
            "event=create",
            "--filter",
            &format!("label={BUILDER_LABEL}"),
            "--format",
            "{{.Actor.Attributes.image}}",
        ]);
        events.lines().map(str::to_string).collect()
    }

    /// Removes the build cache volumes of `project` on the second engine.
    fn remove_volumes(&self, project: &Path) {
        let dir = project.canonicalize().expect("project dir");
        let label = format!("label=org.release-oci.project={}", dir.display());
        let names = self.docker(&["volume", "ls", "-q", "--filter", &label]);
        let names: Vec<&str> = names.lines().collect();
        if !names.is_empty() {
            self.docker(&[&["volume", "rm", "-f"][..], &names].concat());
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs()
}

/// Builds hello_web (a copy) into an OCI layout; stdout is its digest.
fn build(mut c: Command, project: &Path, out: &Path, extra: &[&str]) -> (String, String) {
    c.arg("build").arg(project).arg("-o").arg(format!("oci:{}", out.display())).args(extra);
    let o = run(c);
    let err = text(&o.stderr);
    assert!(o.status.success(), "build failed:\n{err}");
    let digest = text(&o.stdout).trim().to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "stdout is not a digest: {digest:?}\n{err}");
    (digest, err)
}

/// The ssh processes and control sockets that builds with `TMPDIR=tmp` left.
fn tunnels_left(tmp: &Path) -> Vec<String> {
    let mut left = Vec::new();
    let tmp = tmp.display().to_string();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&format!("{tmp}/release-oci-dial-")) {
            left.push(cmdline);
        }
    }
    for entry in std::fs::read_dir(&tmp).expect("tmp").flatten() {
        if entry.file_name().to_string_lossy().starts_with("release-oci-dial-") {
            left.push(entry.path().display().to_string());
        }
    }
    left
}

/// No ssh process or control socket of builds with `TMPDIR=tmp` is left (a stopped ssh may take a
/// moment to go).
fn assert_no_tunnels(tmp: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = tunnels_left(tmp);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "ssh left behind: {left:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_second_engine_builds_the_same_image_over_ssh_and_over_tls() {
    let remote = engine();
    let project = copy_example("hello_web");
    let out = crate::util::tempdir().expect("tempdir");
    // This machine's engine: the reference.
    let (local, _) = build(release_oci(), project.path(), &out.path().join("local"), &["--no-cache"]);

    // ssh://, as --builder-host for every platform: its own blob store, so that the result cache
    // (keyed by the builder image's id, the same on both engines) cannot answer instead of the
    // builder, and with the build cache volume, made on the second engine.
    let since = now();
    let (store, tmp) = (crate::util::tempdir().expect("tempdir"), crate::util::tempdir().expect("tempdir"));
    let mut c = remote.release_oci(tmp.path());
    c.env("RELEASE_OCI_CACHE", store.path());
    let (over_ssh, log) = build(c, project.path(), &out.path().join("ssh"), &["--builder-host", &remote.ssh_url()]);
    assert_eq!(over_ssh, local, "the image built through ssh differs from this machine's:\n{log}");
    let url = remote.ssh_url();
    assert!(log.contains(&format!("==> Builder engine {url} for linux/amd64")), "{log}");
    assert!(
        log.contains(&format!("Assembling the release in a builder container ({BUILDER}, linux/amd64) on {url}")),
        "{log}"
    );
    assert_eq!(remote.builders_since(since), [BUILDER], "no builder container on the second engine");
    let label = format!("label=org.release-oci.project={}", project.path().canonicalize().unwrap().display());
    assert!(!remote.docker(&["volume", "ls", "-q", "--filter", &label]).trim().is_empty(), "no cache volume there");
    assert!(docker_ok(&["volume", "ls", "-q", "--filter", &label]).trim().is_empty(), "a cache volume here");
    remote.remove_volumes(project.path());
    assert_no_tunnels(tmp.path());

    // tcp:// with TLS client certificates, as the default engine (DOCKER_HOST).
    let since = now();
    let mut c = release_oci();
    c.env("DOCKER_HOST", remote.tls_url()).env("DOCKER_TLS_VERIFY", "1").env("DOCKER_CERT_PATH", remote.cert_dir());
    let (over_tls, log) = build(c, project.path(), &out.path().join("tls"), &["--no-cache"]);
    assert_eq!(over_tls, local, "the image built through TLS differs from this machine's:\n{log}");
    assert_eq!(remote.builders_since(since), [BUILDER], "no builder container on the second engine");

    // Without the client's certificate, the engine does not answer.
    let empty = crate::util::tempdir().expect("tempdir");
    std::fs::copy(remote.cert_dir().join("ca.pem"), empty.path().join("ca.pem")).expect("ca.pem");
    let mut c = release_oci();
    c.env("DOCKER_HOST", remote.tls_url()).env("DOCKER_TLS_VERIFY", "1").env("DOCKER_CERT_PATH", empty.path());
    c.arg("build").arg(project.path()).arg("-o").arg(format!("oci:{}", out.path().join("none").display()));
    let o = run(c);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains(&format!("no Docker engine answers at {}", remote.tls_url())), "{err}");
    assert!(
        err.contains(&format!("the client certificate {} is missing", empty.path().join("cert.pem").display())),
        "{err}"
    );
}

/// A warm builder on an engine reached through ssh: the sources go in through the exec's input,
/// whose end `docker system dial-stdio` need not pass on (exec.sh reads the upload's length). A
/// one-line change goes up alone and gives this machine's cold build of it.
#[test]
fn a_warm_builder_through_ssh_takes_the_sources_and_then_the_change() {
    let remote = engine();
    let project = copy_example("hello_web");
    let out = crate::util::tempdir().expect("tempdir");
    let (store, tmp) = (crate::util::tempdir().expect("tempdir"), crate::util::tempdir().expect("tempdir"));
    let warm = |name: &str| {
        let mut c = remote.release_oci(tmp.path());
        c.env("RELEASE_OCI_CACHE", store.path());
        let args = ["--builder-host", &remote.ssh_url(), "--warm-builder", "--warm-builder-idle", "2m"];
        build(c, project.path(), &out.path().join(name), &args)
    };
    let (_, log) = warm("first");
    assert!(log.contains("a new warm builder"), "{log}");
    crate::warm_builder::set_greeting(project.path(), "warm through ssh");
    let (changed, log) = warm("second");
    assert!(log.contains("in the warm builder"), "the change did not go to the warm builder:\n{log}");
    assert!(log.contains("sources: 1 changed files received"), "{log}");
    let (local, _) = build(release_oci(), project.path(), &out.path().join("local"), &["--no-cache"]);
    assert_eq!(changed, local, "the warm build through ssh differs from this machine's cold build");
    let dir = project.path().canonicalize().expect("project dir");
    let label = format!("label=org.release-oci.project={}", dir.display());
    let ids =
        remote.docker(&["ps", "-a", "-q", "--filter", "label=org.release-oci.role=warm-builder", "--filter", &label]);
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 1, "expected one warm builder on the second engine: {ids:?}");
    remote.docker(&["rm", "-f", ids[0]]);
    remote.remove_volumes(project.path());
    assert_no_tunnels(tmp.path());
}

#[test]
fn two_platforms_build_at_the_same_time_on_two_engines() {
    require_arm64_images();
    let remote = engine();
    load(&[BUILDER_ARM64]);
    let project = copy_example("hello_web");
    let (out, tmp) = (crate::util::tempdir().expect("tempdir"), crate::util::tempdir().expect("tempdir"));
    let since = now();
    let host = format!("aarch64={}", remote.ssh_url());
    let (_, log) = build(
        remote.release_oci(tmp.path()),
        project.path(),
        &out.path().join("oci"),
        &["--triple", X86_64, "--triple", AARCH64, "--builder-host", &host, "--no-cache"],
    );
    let lines: Vec<&str> = log.lines().collect();
    let url = remote.ssh_url();
    assert!(lines.contains(&format!("[linux/arm64/v8] ==> Builder engine {url} for linux/arm64/v8").as_str()), "{log}");
    // The amd64 builder runs on this machine's engine, the arm64 one on the second engine.
    let amd = "[linux/amd64] ==> Assembling the release in a builder container";
    assert!(lines.iter().any(|l| l.starts_with(amd) && !l.contains(" on ")), "{log}");
    let arm = lines
        .iter()
        .position(|l| l.starts_with("[linux/arm64/v8] ==> Assembling the release in a builder container"))
        .unwrap_or_else(|| panic!("no arm64 builder step:\n{log}"));
    // At the same time: the arm64 builder's first step comes before the amd64 builder's last line.
    let last_amd = lines.iter().rposition(|l| l.starts_with("[linux/amd64]   │ ")).expect("amd64 builder lines");
    assert!(arm < last_amd, "the platforms were built one after the other:\n{log}");
    let there = remote.builders_since(since);
    assert!(!there.is_empty() && there.iter().all(|i| [BUILDER, BUILDER_ARM64].contains(&i.as_str())), "{there:?}");
    // One index of both platforms.
    let index = layout_manifest(&out.path().join("oci"));
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["platform"]["architecture"].as_str())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"], "{index}");
    assert_no_tunnels(tmp.path());
}

#[test]
fn errors_name_the_endpoint() {
    let remote = engine();
    let project = copy_example("hello_web");
    let (out, tmp) = (crate::util::tempdir().expect("tempdir"), crate::util::tempdir().expect("tempdir"));
    let url = remote.ssh_url();
    let fails = |c: Command, extra: &[&str]| -> String {
        let mut c = c;
        c.arg("build").arg(project.path()).arg("-o").arg(format!("oci:{}", out.path().join("x").display()));
        c.args(extra);
        let o = run(c);
        let err = text(&o.stderr);
        assert!(!o.status.success(), "the build succeeded:\n{err}");
        assert!(!out.path().join("x").exists(), "output left behind");
        err
    };
    // A builder image the second engine does not have: never pulled, and how to load it.
    let trixie = "release-oci/builder:debian-trixie";
    let err =
        fails(remote.release_oci(tmp.path()), &["--builder-host", &format!("x86_64={url}"), "--builder-image", trixie]);
    assert!(
        err.contains(&format!("builder image {trixie} is not on the engine at {url}"))
            && err.contains(&format!("`docker save {trixie} | DOCKER_HOST={url} docker load`")),
        "{err}"
    );
    // --ssh needs the engine on this machine.
    let agent_dir = crate::util::tempdir().expect("tempdir");
    let sock = agent_dir.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("agent socket");
    let mut c = remote.release_oci(tmp.path());
    c.env("SSH_AUTH_SOCK", &sock);
    let err = fails(c, &["--builder-host", &url, "--ssh", "default", "--no-cache"]);
    assert!(err.contains("--ssh default") && err.contains(&format!("the engine at {url} is not")), "{err}");
    // An endpoint nobody answers at: what ssh said.
    let closed = format!("ssh://root@127.0.0.1:{}", free_port());
    let err = fails(remote.release_oci(tmp.path()), &["--builder-host", &closed]);
    assert!(err.contains(&format!("no Docker engine answers at {closed}, the builder host of linux/amd64")), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    // A login that is refused: another key.
    let mut c = remote.release_oci(tmp.path());
    c.env("RELEASE_OCI_SSH_COMMAND", remote.ssh_command().replace("client_key", "host_key"));
    let err = fails(c, &["--builder-host", &url]);
    assert!(err.contains(&format!("no Docker engine answers at {url}")) && err.contains("Permission denied"), "{err}");
    assert_no_tunnels(tmp.path());
}

/// Ctrl-C on a terminal (SIGINT to the whole foreground process group) during a build on an
/// `ssh://` engine: the builder container there is removed through the connection, which the
/// signal did not cut (ssh is not in release-oci's process group), and then no ssh is left.
#[test]
fn ctrl_c_removes_the_remote_builder_and_leaves_no_ssh() {
    use std::os::unix::process::CommandExt;
    let remote = engine();
    let project = crate::interrupt::slow_project();
    let (out, tmp) = (crate::util::tempdir().expect("tempdir"), crate::util::tempdir().expect("tempdir"));
    let layout = out.path().join("oci");
    let mut c = remote.release_oci(tmp.path());
    c.arg("build").arg(project.path()).arg("-o").arg(format!("oci:{}", layout.display()));
    c.args(["--builder-host", &remote.ssh_url(), "--no-cache"]);
    c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).process_group(0);
    let child = c.spawn().expect("spawn");
    let pid = child.id();
    let mine = format!("label=org.release-oci.pid={pid}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let container = loop {
        if let Some(id) = remote.docker(&["ps", "-q", "--filter", &mine]).lines().next() {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "no builder container of {pid} on the second engine");
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(2));
    let st = Command::new("kill").args(["-INT", "--", &format!("-{pid}")]).status().expect("kill");
    assert!(st.success());
    let output = crate::interrupt::wait_at_most(child, Duration::from_secs(60));
    let err = text(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted by SIGINT (builder container release-oci-build-"), "{err}");
    assert_eq!(remote.docker(&["ps", "-aq", "--filter", &mine]).trim(), "", "builder {container} left there");
    assert!(!layout.exists(), "output left behind");
    assert_no_tunnels(tmp.path());
}

/// The arm64 images of `make setup-arm64`, and qemu-aarch64 registered (the second engine runs the
/// arm64 builder under the same emulation).
fn require_arm64_images() {
    require_docker();
    let binfmt = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64").unwrap_or_default();
    assert!(binfmt.lines().any(|l| l == "enabled"), "qemu-aarch64 is not registered: `make setup-arm64`");
    let o = docker(&["image", "inspect", "--format", "{{.Architecture}}", BUILDER_ARM64]);
    assert!(o.status.success() && text(&o.stdout).trim() == "arm64", "{BUILDER_ARM64} is missing: `make setup-arm64`");
}

/// Podman 5's Docker-compatible API (`podman system service`, run by
/// scripts/remote-engine-podman.sh); stopped on drop.
struct Podman {
    dir: tempfile::TempDir,
}

impl Drop for Podman {
    fn drop(&mut self) {
        let o = podman_script(&["stop"]);
        assert!(o.status.success() || std::thread::panicking(), "stopping podman: {}", text(&o.stderr));
    }
}

fn podman_script(args: &[&str]) -> std::process::Output {
    let mut c = Command::new("bash");
    c.arg(repo_root().join("scripts/remote-engine-podman.sh")).args(args);
    run(c)
}

impl Podman {
    fn start() -> Podman {
        require_docker();
        let dir = tempfile::Builder::new().prefix("release-oci-podman-").tempdir().expect("tempdir");
        let o = podman_script(&["start", &dir.path().display().to_string()]);
        assert!(o.status.success(), "scripts/remote-engine-podman.sh start failed:\n{}", text(&o.stderr));
        let podman = Podman { dir };
        let o = podman_script(&["load", &podman.socket().display().to_string(), BUILDER]);
        assert!(o.status.success(), "loading {BUILDER} into podman:\n{}", text(&o.stderr));
        podman
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("podman.sock")
    }

    /// `docker` against podman's API.
    fn docker(&self, args: &[&str]) -> String {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.socket().display())).args(args);
        ok(c)
    }
}

#[test]
fn podman_builds_the_same_image_as_docker() {
    let podman = Podman::start();
    let version = podman.docker(&["version", "--format", "{{.Server.Version}}"]);
    assert!(version.trim().starts_with("5."), "not Podman 5: {version}");
    let project = copy_example("hello_web");
    let out = crate::util::tempdir().expect("tempdir");
    let (docker_digest, _) = build(release_oci(), project.path(), &out.path().join("docker"), &["--no-cache"]);
    // With the build cache volume (a podman volume), and a blob store of its own: the builder runs.
    let store = crate::util::tempdir().expect("tempdir");
    let url = format!("unix://{}", podman.socket().display());
    let mut c = release_oci();
    c.env("RELEASE_OCI_CACHE", store.path());
    let (podman_digest, log) = build(c, project.path(), &out.path().join("podman"), &["--builder-host", &url]);
    assert_eq!(podman_digest, docker_digest, "the image built through podman differs from Docker's:\n{log}");
    assert!(
        log.contains(&format!("Assembling the release in a builder container ({BUILDER}, linux/amd64) on {url}")),
        "{log}"
    );
    let label = format!("label=org.release-oci.project={}", project.path().canonicalize().unwrap().display());
    let volumes = podman.docker(&["volume", "ls", "-q", "--filter", &label]);
    assert_eq!(volumes.lines().count(), 1, "no cache volume in podman: {volumes:?}");
    assert!(docker_ok(&["volume", "ls", "-q", "--filter", &label]).trim().is_empty(), "a cache volume in Docker");
    // A second build reuses that volume: deps and _build stay there.
    let store = crate::util::tempdir().expect("tempdir");
    let mut c = release_oci();
    c.env("RELEASE_OCI_CACHE", store.path());
    let (again, log) = build(c, project.path(), &out.path().join("again"), &["--builder-host", &url]);
    assert_eq!(again, docker_digest, "{log}");
    // No builder container is left in podman.
    assert_eq!(podman.docker(&["ps", "-aq", "--filter", &format!("label={BUILDER_LABEL}")]).trim(), "");
    for v in volumes.lines() {
        podman.docker(&["volume", "rm", "-f", v]);
    }
}
