//! Private dependencies (docs/builder-inputs.md): a package in a second Hex repository that demands
//! an auth key, given with `--secret` (whose value is then found nowhere), and a `git:` dependency
//! over SSH (OpenSSH on the docker bridge, the key only in an agent) given with `--ssh default`.

use crate::hex_kit::*;
use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const AUTH_KEY: &str = "acme-auth-5f1c0ffee0ddba11";

/// A mix project `dir/NAME` with `deps` and `extra` in its mix.exs, and lib/NAME.ex.
fn mix_project(dir: &Path, name: &str, deps: &str, extra: &str, body: &str) -> PathBuf {
    let root = dir.join(name);
    let module = name.split('_').map(|w| format!("{}{}", &w[..1].to_uppercase(), &w[1..])).collect::<String>();
    std::fs::create_dir_all(root.join("lib")).expect("mkdir");
    let mix = format!(
        "{extra}\ndefmodule {module}.MixProject do\n  use Mix.Project\n  def project, do: [app: :{name}, version: \"0.1.0\", elixir: \"~> 1.14\", deps: [{deps}], description: \"test package\", package: [licenses: [\"Apache-2.0\"], links: %{{}}]]\n  def application, do: [extra_applications: [:logger]]\nend\n"
    );
    std::fs::write(root.join("mix.exs"), mix).expect("mix.exs");
    std::fs::write(root.join(format!("lib/{name}.ex")), format!("defmodule {module} do\n  {body}\nend\n"))
        .expect("lib");
    root
}

/// A Hex repository named `acme` with one package, `acme_secret` 0.1.0, signed with a key of its own.
fn private_repository(home: &MixHome, dir: &Path) -> PathBuf {
    let pkg = mix_project(dir, "acme_secret", "", "", "def hello, do: :from_the_private_repository");
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

#[test]
fn a_private_hex_package_builds_with_its_secret_and_the_key_is_found_nowhere() {
    require_docker();
    let home = MixHome::new();
    let work = crate::util::tempdir().expect("tempdir");
    let public = private_repository(&home, work.path());
    let server = Server::start(&public, None, Some(AUTH_KEY));
    let project = ProjectCopy::empty();
    // The project prints the key it was given: the log must show it redacted.
    let root = mix_project(
        project.path(),
        "uses_private",
        "{:acme_secret, \"~> 0.1\", repo: \"acme\"}",
        "IO.puts(\"build key: #{System.get_env(\"ACME_BUILD_KEY\")}\")",
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
    let out = crate::util::tempdir().expect("tempdir");
    let layout = out.path().join("image");
    let build = |secret: bool| {
        let mut c = release_oci();
        c.arg("build").arg(&root).arg("--hex-client").arg(hex_client());
        c.arg("-o").arg(format!("oci:{}", layout.display())).args(["--base", "debian"]);
        if secret {
            c.args(["--secret", "id=acme_key,env=ACME_KEY,build_env=ACME_BUILD_KEY"]).env("ACME_KEY", AUTH_KEY);
        }
        run(c)
    };

    let o = build(false);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("acme_key") && err.contains("--secret id=acme_key"), "{err}");

    let o = build(true);
    let log = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{log}");
    assert!(log.contains("build key: [secret]"), "the project's echo of the key is not redacted:\n{log}");
    assert!(!log.contains(AUTH_KEY), "the key is in the build log");
    assert_not_in_dir(&layout, "the OCI layout (layers, config, manifests)");
    assert_not_in_dir(cache_dir(), "the blob store");
    let canonical = root.canonicalize().expect("canonical");
    let volumes = docker_ok(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("label=org.release-oci.project={}", canonical.display()),
    ]);
    let volume = volumes.lines().next().expect("a build cache volume");
    let mount = format!("{volume}:/v:ro");
    let found =
        docker(&["run", "--rm", "-v", &mount, "release-oci/builder:debian-bookworm", "grep", "-rlaF", AUTH_KEY, "/v"]);
    assert_eq!(found.status.code(), Some(1), "the key is in the cache volume: {}", text(&found.stdout));
}

/// Fails when `needle` appears in any file under `dir`, gzip-compressed blobs unpacked.
fn assert_not_in_dir(dir: &Path, what: &str) {
    let script = format!(
        "cd {} && find . -type f | while read -r f; do \
           if grep -qaF -- \"$1\" \"$f\"; then echo \"$f\"; fi; \
           if gzip -t \"$f\" 2>/dev/null && gzip -dc \"$f\" | grep -qaF -- \"$1\"; then echo \"$f (unpacked)\"; fi; \
         done",
        dir.display()
    );
    let o = Command::new("sh").args(["-c", &script, "sh", AUTH_KEY]).output().expect("sh");
    let hits = text(&o.stdout);
    assert!(hits.trim().is_empty(), "the key is in {what}: {hits}");
}

/// An OpenSSH server for git on [`BRIDGE`], with one authorized key; killed on drop.
struct GitSshd {
    child: Child,
    port: u16,
    host_key_pub: String,
}

impl Drop for GitSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let mut c = Command::new("ssh-keygen");
    c.args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path);
    check(c);
}

fn sshd(dir: &Path, authorized: &Path) -> GitSshd {
    keygen(&dir.join("host_key"));
    let port = std::net::TcpListener::bind((BRIDGE, 0)).expect("port").local_addr().expect("addr").port();
    let config = format!(
        "Port {port}\nListenAddress {BRIDGE}\nHostKey {d}/host_key\nAuthorizedKeysFile {a}\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {d}/sshd.pid\n",
        d = dir.display(),
        a = authorized.display()
    );
    std::fs::write(dir.join("sshd_config"), config).expect("config");
    std::fs::create_dir_all("/run/sshd").expect("privilege separation directory");
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start sshd (package openssh-server)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect((BRIDGE, port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "sshd did not start on {BRIDGE}:{port}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let host_key_pub = std::fs::read_to_string(dir.join("host_key.pub")).expect("host key");
    GitSshd { child, port, host_key_pub }
}

/// An ssh-agent on a socket in `dir` holding `key` (whose file is then removed); killed on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent(dir: &Path, key: &Path) -> Agent {
    let socket = dir.join("agent.sock");
    let child =
        Command::new("ssh-agent").arg("-D").arg("-a").arg(&socket).stdout(Stdio::null()).spawn().expect("ssh-agent");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !socket.exists() {
        assert!(std::time::Instant::now() < deadline, "ssh-agent did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut c = Command::new("ssh-add");
    c.arg(key).env("SSH_AUTH_SOCK", &socket);
    check(c);
    std::fs::remove_file(key).expect("the key lives only in the agent");
    Agent { child, socket }
}

#[test]
fn a_private_git_dependency_over_ssh_builds_with_the_agent_forwarded() {
    require_docker();
    let work = crate::util::tempdir().expect("tempdir");
    let w = work.path();
    keygen(&w.join("user_key"));
    std::fs::copy(w.join("user_key.pub"), w.join("authorized_keys")).expect("authorized_keys");
    let server = sshd(w, &w.join("authorized_keys"));
    // The private library, as a bare repository with a tag.
    let lib = mix_project(w, "secret_git_lib", "", "", "def hello, do: :from_git_over_ssh");
    let git = |dir: &Path, args: &[&str]| {
        let mut c = Command::new("git");
        c.current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"])
            .args(args);
        check(c);
    };
    git(&lib, &["init", "-q"]);
    git(&lib, &["add", "."]);
    git(&lib, &["commit", "-q", "-m", "v0.1.0"]);
    git(&lib, &["tag", "v0.1.0"]);
    git(w, &["clone", "-q", "--bare", "secret_git_lib", "secret_git_lib.git"]);
    let agent = agent(w, &w.join("user_key"));
    // The caller's known_hosts (HOME/.ssh/known_hosts) names the server's key.
    let home = w.join("home");
    std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
    let known = format!("[{BRIDGE}]:{} {}", server.port, server.host_key_pub);
    std::fs::write(home.join(".ssh/known_hosts"), &known).expect("known_hosts");
    let url = format!("ssh://root@{BRIDGE}:{}{}", server.port, w.join("secret_git_lib.git").display());
    let project = ProjectCopy::empty();
    let root = mix_project(
        project.path(),
        "uses_git",
        &format!("{{:secret_git_lib, git: \"{url}\", tag: \"v0.1.0\"}}"),
        "",
        "def hello, do: SecretGitLib.hello()",
    );
    // mix.lock, made on this machine through the same agent.
    let mix_home = MixHome::new();
    let mut c = mix_home.mix(&root);
    c.arg("deps.get").env("SSH_AUTH_SOCK", &agent.socket).env("HOME", &home).env(
        "GIT_SSH_COMMAND",
        format!("ssh -o UserKnownHostsFile={} -o BatchMode=yes", home.join(".ssh/known_hosts").display()),
    );
    check(c);
    let _ = std::fs::remove_dir_all(root.join("deps"));
    let out = crate::util::tempdir().expect("tempdir");
    let build = |ssh: bool| {
        let mut c = release_oci();
        c.arg("build").arg(&root).arg("-o").arg(format!("oci:{}", out.path().join("image").display()));
        c.args(["--base", "debian", "--no-cache"]).env("HOME", &home).env("SSH_AUTH_SOCK", &agent.socket);
        if ssh {
            c.args(["--ssh", "default"]);
        }
        run(c)
    };
    let o = build(false);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("secret_git_lib") && err.contains("--ssh default"), "{err}");
    let o = build(true);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    let layout = out.path().join("image");
    let manifest = layout_manifest(&layout);
    let layers = manifest["layers"].as_array().expect("layers");
    let found = layers.iter().any(|l| {
        let digest = l["digest"].as_str().unwrap_or_default();
        layer_paths(&layout, digest).iter().any(|p| p.contains("lib/secret_git_lib-0.1.0/ebin/"))
    });
    assert!(found, "the git dependency is not in the image");
}
