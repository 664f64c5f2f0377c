//! Hot upgrades (docs/hot-upgrades.md), end to end with examples/counter: 0.1.0 built with
//! `--hot-upgrades` runs read-only and non-root with its volume; its counter is bumped; 0.2.0
//! (examples/counter/upgrade-0.2.0: the state becomes `{count, max_bump}` through code_change/3,
//! and `bump N` and `max` are new) is built with `--upgrade-from` the deployed image by digest;
//! `release-oci upgrade` applies it to the running container, which keeps its start time, its
//! beam.smp process, its state and an open TCP connection; `--rollback` goes back to 0.1.0 and
//! converts the state back. And the refusals, with their messages.

use crate::util::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A build of examples/counter: its layout (tagged with the version), digest and engine tag.
struct CounterBuild {
    // Kept while the build is in use: dropping it removes the copy and its cache volumes.
    _project: ProjectCopy,
    out: tempfile::TempDir,
    digest: String,
    tag: String,
}

impl CounterBuild {
    fn layout(&self) -> PathBuf {
        self.out.path().join("oci")
    }
    /// The image by digest in its layout: what `--upgrade-from` is given.
    fn pinned(&self) -> String {
        format!("oci:{}@{}", self.layout().display(), self.digest)
    }
}

impl Drop for CounterBuild {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.tag]).output();
    }
}

/// The counter project at 0.1.0, or with the 0.2.0 files copied over it.
fn counter_project(version: &str) -> ProjectCopy {
    let p = copy_example("counter");
    if version == "0.2.0" {
        let overlay = p.path().join("upgrade-0.2.0");
        let status =
            Command::new("cp").arg("-a").arg(format!("{}/.", overlay.display())).arg(p.path()).status().expect("cp");
        assert!(status.success());
    }
    p
}

/// `release-oci build` of `project` into a fresh layout tagged `version`, loaded as a test tag.
fn build(project: ProjectCopy, version: &str, extra: &[&str]) -> Result<CounterBuild, (ProjectCopy, String)> {
    require_docker();
    let out = crate::util::tempdir().expect("tempdir");
    let tag = format!("release-oci-test/counter:{version}-{}", std::process::id());
    let mut c = release_oci();
    c.arg("build")
        .arg(project.path())
        .arg("--output")
        .arg(format!("oci:{}:{version}", out.path().join("oci").display()))
        .args(["--load", "--tag", &tag, "--port", "4000", "--no-cache"])
        .args(extra);
    let o = run(c);
    if !o.status.success() {
        return Err((project, format!("{}{}", text(&o.stderr), text(&o.stdout))));
    }
    // `REPO@sha256:...` with --push.
    let stdout = text(&o.stdout);
    let digest = stdout.trim().rsplit('@').next().unwrap_or_default().to_string();
    assert!(digest.starts_with("sha256:"), "stdout is not a digest: {stdout:?}\n{}", text(&o.stderr));
    Ok(CounterBuild { _project: project, out, digest, tag })
}

fn build_ok(project: ProjectCopy, version: &str, extra: &[&str]) -> CounterBuild {
    build(project, version, extra).unwrap_or_else(|(_, log)| panic!("build of counter {version} failed:\n{log}"))
}

/// 0.1.0 with --hot-upgrades, built once per run.
fn v1() -> &'static CounterBuild {
    static B: OnceLock<CounterBuild> = OnceLock::new();
    B.get_or_init(|| build_ok(counter_project("0.1.0"), "0.1.0", &["--hot-upgrades"]))
}

/// 0.2.0 with its upgrade package from 0.1.0 (by digest), built once per run.
fn v2() -> &'static CounterBuild {
    static B: OnceLock<CounterBuild> = OnceLock::new();
    B.get_or_init(|| build_ok(counter_project("0.2.0"), "0.2.0", &["--upgrade-from", &v1().pinned()]))
}

/// A running container (its anonymous volume removed with it).
struct Running {
    id: String,
}

impl Running {
    /// `docker run` with a read-only root, /tmp a tmpfs, no capabilities, the image's user.
    fn start(image: &str) -> Running {
        let id = docker_ok(&[
            "run",
            "-d",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--cap-drop",
            "ALL",
            "-p",
            "127.0.0.1::4000",
            image,
        ])
        .trim()
        .to_string();
        Running { id }
    }

    fn port(&self) -> u16 {
        let out = docker_ok(&["port", &self.id, "4000/tcp"]);
        out.lines().next().and_then(|l| l.rsplit(':').next()).and_then(|p| p.trim().parse().ok()).expect("port")
    }

    fn logs(&self) -> String {
        let o = docker(&["logs", &self.id]);
        format!("{}{}", text(&o.stdout), text(&o.stderr))
    }

    /// A connection to the counter, once it answers.
    fn connect(&self) -> Conn {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", self.port())) {
                let mut c = Conn::new(s);
                if c.try_ask("get").is_ok() {
                    return c;
                }
            }
            assert!(Instant::now() < deadline, "the counter does not answer; logs:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn inspect(&self, format: &str) -> String {
        docker_ok(&["inspect", "-f", format, &self.id]).trim().to_string()
    }

    /// The host PID of the container's beam.smp.
    fn beam_pid(&self) -> String {
        let top = docker_ok(&["top", &self.id, "-eo", "pid,args"]);
        let line = top.lines().find(|l| l.contains("beam.smp")).unwrap_or_else(|| panic!("no beam.smp in:\n{top}"));
        line.split_whitespace().next().expect("pid").to_string()
    }

    /// `release-oci-entry rpc EXPR` in the container: its stdout.
    fn rpc(&self, expr: &str) -> String {
        let o = docker(&["exec", &self.id, "/usr/local/bin/release-oci-entry", "rpc", expr]);
        assert!(o.status.success(), "rpc {expr}: {}{}", text(&o.stdout), text(&o.stderr));
        text(&o.stdout)
    }

    fn which_releases(&self) -> String {
        self.rpc("for {_, v, _, s} <- :release_handler.which_releases(), do: IO.puts(\"#{v} #{s}\")")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &self.id]).output();
    }
}

/// One open TCP connection: one line out, one line in.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn new(s: TcpStream) -> Conn {
        s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        Conn { writer: s.try_clone().expect("clone"), reader: BufReader::new(s) }
    }

    fn try_ask(&mut self, line: &str) -> std::io::Result<String> {
        writeln!(self.writer, "{line}")?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            return Err(std::io::Error::other("the connection was closed"));
        }
        Ok(answer.trim_end().to_string())
    }

    fn ask(&mut self, line: &str) -> String {
        self.try_ask(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }
}

fn upgrade(container: &str, args: &[&str]) -> std::process::Output {
    let mut c = release_oci();
    c.args(["upgrade", container]).args(args);
    run(c)
}

#[test]
fn upgrades_a_running_container_in_place_and_rolls_back() {
    let v1 = v1();
    let c = Running::start(&v1.tag);
    let mut conn = c.connect();
    for n in 1..=5 {
        assert_eq!(conn.ask("bump"), n.to_string());
    }
    assert_eq!(conn.ask("version"), "0.1.0");
    assert_eq!(c.inspect("{{.Config.User}}"), "10001:10001");
    assert_eq!(c.inspect("{{.HostConfig.ReadonlyRootfs}}"), "true");
    let started = c.inspect("{{.State.StartedAt}}");
    let pid = c.beam_pid();

    // 0.2.0 and its package from exactly the deployed image.
    let v2 = v2();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(v2.layout().join("index.json")).expect("index.json")).expect("json");
    let artifact = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["artifactType"] == "application/vnd.release-oci.hot-upgrade.v1")
        .unwrap_or_else(|| panic!("no upgrade package in the layout: {index:#}"));
    let m = blob_json(&v2.layout(), artifact["digest"].as_str().expect("digest"));
    assert_eq!(m["subject"]["digest"], v2.digest.as_str());
    assert_eq!(m["annotations"]["org.release-oci.upgrade.from.digest"], v1.digest.as_str());
    assert_eq!(m["annotations"]["org.release-oci.upgrade.from.version"], "0.1.0");
    assert_eq!(m["annotations"]["org.release-oci.upgrade.to.version"], "0.2.0");

    let o = upgrade(&c.id, &["--from-image", &format!("oci:{}:0.2.0", v2.layout().display())]);
    assert!(o.status.success(), "upgrade failed:\n{}{}\nlogs:\n{}", text(&o.stderr), text(&o.stdout), c.logs());
    assert_eq!(text(&o.stdout).trim(), "0.2.0");

    // Same container, same emulator process, same state, the same connection still open.
    assert_eq!(c.inspect("{{.State.StartedAt}}"), started, "the container was restarted");
    assert_eq!(c.beam_pid(), pid, "beam.smp is another process");
    assert_eq!(conn.ask("get"), "5");
    assert_eq!(conn.ask("version"), "0.2.0");
    assert_eq!(conn.ask("bump 3"), "8");
    assert_eq!(conn.ask("max"), "3");
    assert_eq!(c.connect().ask("get"), "8");
    let releases = c.which_releases();
    assert!(releases.contains("0.2.0 permanent") && releases.contains("0.1.0 old"), "{releases}");
    assert_eq!(c.rpc("IO.inspect(:sys.get_state(Counter.Server))").trim(), "{8, 3}");

    // Applying it again changes nothing; the engine's image finds its package in the blob store.
    let o = upgrade(&c.id, &["--from-image", &v2.tag]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "0.2.0");

    // Back to 0.1.0: code_change({:down, _}, ...) makes the count an integer again.
    let o = upgrade(&c.id, &["--from-image", &format!("oci:{}:0.2.0", v2.layout().display()), "--rollback"]);
    assert!(o.status.success(), "rollback failed:\n{}{}\nlogs:\n{}", text(&o.stderr), text(&o.stdout), c.logs());
    assert_eq!(text(&o.stdout).trim(), "0.1.0");
    assert_eq!(c.inspect("{{.State.StartedAt}}"), started, "the container was restarted");
    assert_eq!(c.beam_pid(), pid, "beam.smp is another process");
    assert_eq!(conn.ask("version"), "0.1.0");
    assert_eq!(conn.ask("get"), "8");
    assert!(conn.ask("bump 3").starts_with("error"), "0.1.0 has no bump N");
    assert_eq!(c.rpc("IO.inspect(:sys.get_state(Counter.Server))").trim(), "8");
    let releases = c.which_releases();
    assert!(releases.contains("0.1.0 permanent") && releases.contains("0.2.0 old"), "{releases}");
}

#[test]
fn the_hot_image_declares_its_volume_and_runs_from_it() {
    let v1 = v1();
    let config = layout_config(&v1.layout());
    assert_eq!(config["config"]["Volumes"], serde_json::json!({"/var/lib/release-oci": {}}));
    assert_eq!(config["config"]["Labels"]["org.release-oci.hot-upgrades"], "/var/lib/release-oci/root");
    let c = Running::start(&v1.tag);
    c.connect();
    assert_eq!(c.rpc("IO.puts(:code.root_dir())").trim(), "/var/lib/release-oci/root");
    // Without a writable volume (a read-only one here), it runs from /app and says so.
    let id = docker_ok(&[
        "run",
        "-d",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-v",
        "release-oci-test-ro-vol:/var/lib/release-oci:ro",
        &v1.tag,
    ]);
    let ro = Running { id: id.trim().to_string() };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ro.logs().contains("counter listening") {
        assert!(Instant::now() < deadline, "no start: {}", ro.logs());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(ro.logs().contains("hot upgrades are off"), "{}", ro.logs());
    drop(ro);
    let _ = Command::new("docker").args(["volume", "rm", "-f", "release-oci-test-ro-vol"]).output();
}

/// The refusals a build reports, from its stderr.
fn refused(project: ProjectCopy, version: &str, from: &str) -> String {
    match build(project, version, &["--upgrade-from", from]) {
        Ok(b) => panic!("the build with --upgrade-from {from} was not refused: {}", b.digest),
        Err((_, log)) => {
            assert!(log.contains("roll out the new image instead"), "{log}");
            log
        }
    }
}

#[test]
fn refuses_the_same_version() {
    let log = refused(counter_project("0.1.0"), "0.1.0-again", &v1().pinned());
    assert!(log.contains("both releases are version 0.1.0"), "{log}");
}

#[test]
fn refuses_an_image_built_without_hot_upgrades() {
    let plain = build_ok(counter_project("0.1.0"), "0.1.0-plain", &[]);
    let log = refused(counter_project("0.2.0"), "0.2.0-from-plain", &plain.pinned());
    assert!(log.contains("the deployed image was not built with --hot-upgrades"), "{log}");
}

/// One build that changes what the node read at start (vm.args, runtime.exs), the application
/// callback module (a supervision-tree change) and brings an appup asking for a new emulator.
#[test]
fn refuses_start_up_changes_tree_changes_and_emulator_restarts() {
    let p = counter_project("0.2.0");
    let root = p.path().to_path_buf();
    std::fs::create_dir_all(root.join("rel")).unwrap();
    std::fs::write(root.join("rel/vm.args.eex"), "+S 1\n").unwrap();
    std::fs::create_dir_all(root.join("config")).unwrap();
    std::fs::write(root.join("config/runtime.exs"), "import Config\nconfig :counter, greeting: \"hi\"\n").unwrap();
    let app = root.join("lib/counter/application.ex");
    let text = std::fs::read_to_string(&app).unwrap().replace("strategy: :one_for_one,", "strategy: :one_for_all,");
    std::fs::write(&app, text).unwrap();
    let log = refused(p, "0.2.0-changes", &v1().pinned());
    assert!(log.contains("vm.args changed"), "{log}");
    assert!(log.contains("config/runtime.exs is new"), "{log}");
    assert!(
        log.contains("Elixir.Counter.Application (counter 0.2.0) changed and is the application callback module"),
        "{log}"
    );

    let p = counter_project("0.2.0");
    std::fs::create_dir_all(p.path().join("rel/appups")).unwrap();
    let appup = "{\"0.2.0\", [{\"0.1.0\", [restart_new_emulator]}], [{\"0.1.0\", []}]}.\n";
    std::fs::write(p.path().join("rel/appups/counter.appup"), appup).unwrap();
    let log = refused(p, "0.2.0-restart", &v1().pinned());
    assert!(log.contains("the appup of counter asks for restart_new_emulator"), "{log}");
}

#[test]
fn upgrade_refuses_a_container_of_an_image_without_hot_upgrades() {
    let c = Running::start(&hello().tag);
    let o = upgrade(&c.id, &["--from-image", &format!("oci:{}", hello().layout().display())]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("built without --hot-upgrades") && e.contains("roll out the new image instead"), "{e}");
}

/// Through a registry: 0.1.0 pushed and deployed, 0.2.0 built `--upgrade-from REPO@DIGEST` and
/// pushed with its package (the registry has no referrers API: the referrers tag), and
/// `upgrade --from-image REPO@DIGEST` takes the package from there.
#[test]
fn upgrades_through_a_registry() {
    let reg = crate::registry_util::Registry::plain();
    let repo = format!("{}/hot/counter", reg.addr());
    let v1 = build_ok(counter_project("0.1.0"), "0.1.0-reg", &["--hot-upgrades", "--push", &format!("{repo}:0.1.0")]);
    let c = Running::start(&v1.tag);
    let mut conn = c.connect();
    assert_eq!(conn.ask("bump"), "1");
    let from = format!("{repo}@{}", v1.digest);
    let v2 =
        build_ok(counter_project("0.2.0"), "0.2.0-reg", &["--upgrade-from", &from, "--push", &format!("{repo}:0.2.0")]);
    let tag = format!("sha256-{}", v2.digest.trim_start_matches("sha256:"));
    let referrers = crate::registry_util::skopeo_inspect(&format!("{repo}:{tag}"), &["--raw", "--tls-verify=false"]);
    assert!(referrers.status.success(), "no referrers tag {tag}: {}", text(&referrers.stderr));
    assert!(
        text(&referrers.stdout).contains("application/vnd.release-oci.hot-upgrade.v1"),
        "{}",
        text(&referrers.stdout)
    );
    // Another blob store: the package comes from the registry, not from the build's records.
    let cache = crate::util::tempdir().expect("tempdir");
    let mut u = release_oci();
    u.env("RELEASE_OCI_CACHE", cache.path()).args(["upgrade", &c.id, "--from-image", &format!("{repo}@{}", v2.digest)]);
    let o = run(u);
    assert!(o.status.success(), "upgrade failed:\n{}{}\nlogs:\n{}", text(&o.stderr), text(&o.stdout), c.logs());
    assert_eq!(text(&o.stdout).trim(), "0.2.0");
    assert_eq!(conn.ask("version"), "0.2.0");
    assert_eq!(conn.ask("get"), "1");
}

/// With `config/runtime.exs` (the same in both versions), the environment it set at boot stays
/// through the upgrade and the rollback: its providers are run into the target's sys.config
/// before `install_release`, which sets the environment from it.
#[test]
fn runtime_configuration_survives_the_upgrade() {
    let with_runtime = |version: &str| {
        let p = counter_project(version);
        std::fs::create_dir_all(p.path().join("config")).unwrap();
        let runtime = "import Config\nconfig :counter, greeting: System.get_env(\"GREETING\", \"unset\")\n";
        std::fs::write(p.path().join("config/runtime.exs"), runtime).unwrap();
        p
    };
    let v1 = build_ok(with_runtime("0.1.0"), "0.1.0-rt", &["--hot-upgrades"]);
    let id = docker_ok(&[
        "run",
        "-d",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-e",
        "GREETING=hello",
        "-p",
        "127.0.0.1::4000",
        &v1.tag,
    ]);
    let c = Running { id: id.trim().to_string() };
    c.connect();
    let greeting = || c.rpc("IO.puts(Application.get_env(:counter, :greeting))").trim().to_string();
    assert_eq!(greeting(), "hello");
    let v2 = build_ok(with_runtime("0.2.0"), "0.2.0-rt", &["--upgrade-from", &v1.pinned()]);
    let layout = format!("oci:{}:0.2.0-rt", v2.layout().display());
    // As a pod is upgraded (docs/hot-upgrades.md: kubectl exec), here with docker exec.
    let dir = crate::util::tempdir().expect("tempdir");
    let package = dir.path().join("counter-0.2.0.tar.gz");
    let mut offline = release_oci();
    offline.args(["upgrade", "--from-image", &layout, "--print-script", "--package-out"]).arg(&package);
    let script = ok(offline);
    assert!(script.starts_with("op = \"upgrade\"\nname = \"counter-0.2.0\""), "{script}");
    let copy = Command::new("docker")
        .args(["exec", "-i", &c.id, "sh", "-c", "cat >/var/lib/release-oci/root/releases/counter-0.2.0.tar.gz"])
        .stdin(std::fs::File::open(&package).expect("package"))
        .output()
        .expect("docker exec");
    assert!(copy.status.success(), "{}", text(&copy.stderr));
    let answer = c.rpc(&script);
    assert!(answer.contains("release-oci: ok 0.2.0 permanent"), "{answer}");
    assert!(answer.contains("config providers of 0.2.0 run into its sys.config"), "{answer}");
    assert_eq!(greeting(), "hello", "install_release reset the environment to the build-time configuration");
    let o = upgrade(&c.id, &["--from-image", &layout, "--rollback"]);
    assert!(o.status.success(), "rollback failed:\n{}{}", text(&o.stderr), text(&o.stdout));
    assert_eq!(text(&o.stdout).trim(), "0.1.0");
    assert_eq!(greeting(), "hello");
}

/// The pod of `release-oci k8s --hot-upgrades` (validated against the schemas, run the way the
/// manifest says: read-only root, its user, the emptyDir), upgraded the way docs/hot-upgrades.md
/// says for pods: the package and the node's code from `upgrade --package-out --print-script`,
/// handed over with `exec`.
#[test]
fn a_pod_of_the_k8s_manifest_is_upgraded_by_hand() {
    let (v1, v2) = (v1(), v2());
    let image = format!("registry.example.com/team/counter@{}", v1.digest);
    let project = repo_root().join("examples/counter");
    let (yaml, docs) = crate::k8s_pod::k8s_manifests(&[project.to_str().unwrap(), "--image", &image, "--hot-upgrades"]);
    let dir = crate::util::tempdir().expect("tempdir");
    let file = dir.path().join("counter.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let o = Command::new("kubernetes-validate").args(["--strict", "--no-warn", "-k", "1.34.0"]).arg(&file).output();
    let o = o.expect("kubernetes-validate (make setup installs it)");
    assert!(o.status.success(), "{}{}\n{yaml}", text(&o.stdout), text(&o.stderr));
    let deployment = crate::k8s_pod::find(&docs, "Deployment");
    let ctx = crate::k8s_pod::PodContext {
        pod_ip: Some("10.0.0.7"),
        namespace: "default",
        secrets: Default::default(),
        config_maps: vec![],
    };
    let mut pod = crate::k8s_pod::pod_run(deployment, &ctx);
    // The emptyDir as a tmpfs: a kubelet's is mode 0777, but Docker gives a tmpfs over an image's
    // directory that directory's mode (0755) and root as owner, whatever `mode=` says; the runtime
    // user as its owner stands in for 0777.
    let emptydir = pod.args.iter_mut().find(|a| a.starts_with("/var/lib/release-oci:"));
    *emptydir.unwrap_or_else(|| panic!("no emptyDir at /var/lib/release-oci")) =
        "/var/lib/release-oci:rw,exec,uid=10001,gid=10001".into();
    let mut run_args: Vec<&str> = vec!["run", "-d", "-p", "127.0.0.1::4000"];
    run_args.extend(pod.args.iter().map(String::as_str));
    run_args.push(&v1.tag);
    let c = Running { id: docker_ok(&run_args).trim().to_string() };
    let mut conn = c.connect();
    assert_eq!(conn.ask("bump"), "1");
    let out = crate::util::tempdir().expect("tempdir");
    let package = out.path().join("counter-0.2.0.tar.gz");
    let mut offline = release_oci();
    let layout = format!("oci:{}:0.2.0", v2.layout().display());
    offline.args(["upgrade", "--from-image", &layout, "--print-script", "--package-out"]).arg(&package);
    let script = ok(offline);
    let copy = Command::new("docker")
        .args(["exec", "-i", &c.id, "sh", "-c", "cat >/var/lib/release-oci/root/releases/counter-0.2.0.tar.gz"])
        .stdin(std::fs::File::open(&package).expect("package"))
        .output()
        .expect("docker exec");
    assert!(copy.status.success(), "{}", text(&copy.stderr));
    let answer = c.rpc(&script);
    assert!(answer.contains("release-oci: ok 0.2.0 permanent"), "{answer}");
    assert_eq!(conn.ask("version"), "0.2.0");
    assert_eq!(conn.ask("bump 2"), "3");
}
