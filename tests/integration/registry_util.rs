//! Registries for the tests: Debian's `docker-registry` on 127.0.0.1 (plain, TLS with a CA made
//! here by openssl, htpasswd or token auth), a fault-injecting HTTP proxy and a token server, all
//! started by the tests and stopped when dropped.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::registry_proxy::{Fault, Proxy};
pub use crate::registry_token::TokenServer;

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn tool(name: &str) -> Command {
    let c = Command::new(name);
    if which(name).is_none() {
        panic!("this test needs `{name}`; run `make setup` (scripts/setup.sh installs it)");
    }
    c
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

fn run_ok(mut c: Command) {
    let o = c.output().unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    assert!(o.status.success(), "{c:?} failed: {}", String::from_utf8_lossy(&o.stderr));
}

/// A CA and a server certificate for 127.0.0.1 signed by it (PEM files in `dir`).
pub struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_certs(dir: &Path) -> Certs {
    let p = |n: &str| dir.join(n);
    let mut c = tool("openssl");
    c.args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=release-oci test CA"])
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.pem"));
    run_ok(c);
    let mut c = tool("openssl");
    c.args(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"])
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr"));
    run_ok(c);
    std::fs::write(p("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("ext");
    let mut c = tool("openssl");
    c.args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.pem"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("server.pem"))
        .arg("-extfile")
        .arg(p("ext.cnf"));
    run_ok(c);
    Certs { ca: p("ca.pem"), cert: p("server.pem"), key: p("server.key") }
}

/// An htpasswd file (bcrypt, as the registry requires) with one user.
pub fn make_htpasswd(dir: &Path, user: &str, password: &str) -> PathBuf {
    let mut c = tool("htpasswd");
    c.args(["-Bbn", user, password]);
    let o = c.output().expect("htpasswd");
    assert!(o.status.success(), "htpasswd failed");
    let path = dir.join("htpasswd");
    std::fs::write(&path, o.stdout).expect("write htpasswd");
    path
}

/// How the registry authenticates.
pub enum RegistryAuth {
    None,
    Htpasswd(PathBuf),
    /// Token auth: realm URL, service, issuer, and the certificate that signs tokens.
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert: PathBuf,
    },
}

/// A running `docker-registry` with its own storage, killed and removed when dropped.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub tls: bool,
}

impl Registry {
    pub fn plain() -> Registry {
        Registry::start(None, RegistryAuth::None)
    }

    pub fn start(tls: Option<&Certs>, auth: RegistryAuth) -> Registry {
        let dir = tempfile::Builder::new().prefix("release-oci-registry-").tempdir().expect("tempdir");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    \
             rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: release-oci-test\n",
            dir.path().join("data").display()
        );
        if let Some(c) = tls {
            config.push_str(&format!("  tls:\n    certificate: {}\n    key: {}\n", c.cert.display(), c.key.display()));
        }
        match &auth {
            RegistryAuth::None => {}
            RegistryAuth::Htpasswd(p) => {
                config.push_str(&format!("auth:\n  htpasswd:\n    realm: release-oci-test\n    path: {}\n", p.display()))
            }
            RegistryAuth::Token { realm, service, issuer, cert } => config.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                cert.display()
            )),
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = tool("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let mut r = Registry { child, port, dir, tls: tls.is_some() };
        r.wait_ready();
        r
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited ({status}):\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "docker-registry did not listen on {}:\n{}", self.port, self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `skopeo inspect` of `docker://REF` (JSON), with extra flags (credentials, certificates).
pub fn skopeo_inspect(reference: &str, extra: &[&str]) -> std::process::Output {
    let mut c = tool("skopeo");
    c.arg("inspect").args(extra).arg(format!("docker://{reference}"));
    c.output().expect("skopeo")
}

/// `skopeo inspect --tls-verify=false`, asserting success; returns the manifest digest.
pub fn skopeo_digest(reference: &str, extra: &[&str]) -> String {
    let mut args = vec!["--tls-verify=false"];
    args.extend_from_slice(extra);
    let o = skopeo_inspect(reference, &args);
    assert!(o.status.success(), "skopeo inspect {reference}: {}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("skopeo json");
    v["Digest"].as_str().expect("Digest").to_string()
}

/// `skopeo copy` from the registry into an OCI layout at `dest` (blobs kept as they are).
pub fn skopeo_copy_to_layout(reference: &str, dest: &Path, extra: &[&str]) {
    let mut c = tool("skopeo");
    c.args(["copy", "--src-tls-verify=false"])
        .args(extra)
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}", dest.display()));
    run_ok(c);
}

/// Copies the local runtime base image into the registry (as a user would with skopeo).
pub fn push_runtime_base(reference: &str) {
    let mut c = tool("skopeo");
    c.args(["copy", "--dest-tls-verify=false", "docker-daemon:release-oci/runtime:debian-bookworm"])
        .arg(format!("docker://{reference}"));
    run_ok(c);
}

/// A Docker client config directory with a login for `registry` in `auths`.
pub fn docker_config(registry: &str, user: &str, password: &str) -> tempfile::TempDir {
    use base64::Engine as _;
    let dir = crate::util::tempdir().expect("tempdir");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let json = serde_json::json!({"auths": {registry: {"auth": auth}}});
    std::fs::write(dir.path().join("config.json"), json.to_string()).expect("config.json");
    dir
}
