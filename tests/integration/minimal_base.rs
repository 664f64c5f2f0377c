//! The minimal base (`--base minimal`, the default for gnu triples): releases run on exactly the
//! files they need, taken from the builder. hello_web and path_deps answer HTTP and every release
//! command works (as a non-root user, read-only root, no capabilities); zlib_nif (a C NIF linking
//! zlib) runs, `:crypto` and `:ssl` work, its base holds the release's library closure and nothing
//! else, `inspect --files` says why; `--slim-erts` and `--tzdata`; `--base debian` still works.

use crate::util::*;
use sha2::Digest as _;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const HARDENED: &[&str] = &["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"];
const HTTP_WAIT: Duration = Duration::from_secs(60);
const REMOTE_WAIT: Duration = Duration::from_secs(60);

/// A TLS server and client in the node, with certificates made on the spot: a handshake that
/// verifies the peer, and one message each way.
pub(crate) const TLS_ROUND_TRIP: &str = r##"
chain = %{root: [key: {:rsa, 2048, 65537}], intermediates: [], peer: [key: {:rsa, 2048, 65537}]}
%{server_config: s, client_config: c} = :public_key.pkix_test_data(%{server_chain: chain, client_chain: chain})
{:ok, l} = :ssl.listen(0, [reuseaddr: true, active: false, mode: :binary] ++ s)
{:ok, {_, port}} = :ssl.sockname(l)
server = spawn(fn ->
  {:ok, t} = :ssl.transport_accept(l)
  {:ok, ss} = :ssl.handshake(t)
  {:ok, data} = :ssl.recv(ss, 0)
  :ok = :ssl.send(ss, "pong " <> data)
  receive do: (:done -> :ok)
end)
opts = [verify: :verify_peer, server_name_indication: :disable, active: false, mode: :binary]
{:ok, cs} = :ssl.connect(~c"localhost", port, opts ++ c)
:ok = :ssl.send(cs, "ping")
{:ok, reply} = :ssl.recv(cs, 0, 5000)
{:ok, info} = :ssl.connection_information(cs, [:protocol])
send(server, :done)
IO.puts("#{reply} over #{info[:protocol]}")
"##;

/// zlib_nif, built once per run, with `--slim-erts` and `--tzdata`.
fn zlib_nif() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| build_example("zlib_nif", &["--slim-erts", "--tzdata"]))
}

/// The digest of the layer whose history says `release-oci: NAME`.
pub(crate) fn layer_digest(layout: &Path, name: &str) -> String {
    let cfg = layout_config(layout);
    let names: Vec<String> = cfg["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["empty_layer"] != serde_json::Value::Bool(true))
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_string())
        .collect();
    let i = names.iter().position(|n| *n == format!("release-oci: {name}")).unwrap_or_else(|| panic!("{names:?}"));
    layout_manifest(layout)["layers"][i]["digest"].as_str().expect("digest").to_string()
}

/// Regular files (path → bytes when `keep` names them) of a gzip layer blob of a layout.
pub(crate) fn layer_files(layout: &Path, digest: &str, keep: &str) -> (BTreeSet<String>, Option<Vec<u8>>) {
    let f = std::fs::File::open(layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).expect("blob");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let (mut files, mut kept) = (BTreeSet::new(), None);
    for entry in archive.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        if entry.header().entry_type().is_file() {
            if path == keep {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).expect("read");
                kept = Some(bytes);
            }
            files.insert(path);
        }
    }
    (files, kept)
}

pub(crate) fn exec_ok(c: &Container, args: &[&str]) -> String {
    let o = c.exec(args);
    assert!(
        o.status.success(),
        "docker exec {args:?} failed:\n{}\n{}\nlogs:\n{}",
        text(&o.stdout),
        text(&o.stderr),
        c.logs()
    );
    text(&o.stdout)
}

pub(crate) fn rpc(c: &Container, name: &str, expr: &str) -> String {
    exec_ok(c, &[&format!("/app/bin/{name}"), "rpc", expr])
}

/// `bin/NAME remote` in the container under a pseudo-terminal (IEx's remote shell needs one, and
/// `docker exec -it` needs one on this side: util-linux's `script` makes it). Types `expr` once
/// the prompt of the release's node shows, and returns what was printed once `until` appears.
pub(crate) fn remote(c: &Container, name: &str, expr: &str, until: &str) -> String {
    let inner = format!("docker exec -it {} timeout 60 /app/bin/{name} remote", c.id);
    let mut child = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("`script` (util-linux) must be installed: it gives docker exec -it a terminal");
    let seen = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().expect("stdout");
    let sink = Arc::clone(&seen);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().expect("lock").push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut stdin = child.stdin.take().expect("stdin");
    let prompt = format!("iex({name}@");
    let deadline = Instant::now() + REMOTE_WAIT;
    let mut typed = false;
    while Instant::now() < deadline {
        let now = seen.lock().expect("lock").clone();
        if !typed && now.contains(&prompt) {
            writeln!(stdin, "{expr}").expect("type into the remote shell");
            typed = true;
        }
        if typed && now.contains(until) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(stdin);
    let _ = reader.join();
    seen.lock().expect("lock").clone()
}

/// version, pid, eval, rpc and remote, run by `docker exec` as the image's (non-root) user.
fn check_release_commands(c: &Container, name: &str, version: &str) {
    let uid: u32 = exec_ok(c, &["id", "-u"]).trim().parse().expect("uid");
    assert_ne!(uid, 0, "the container runs as root");
    let bin = format!("/app/bin/{name}");

    assert_eq!(exec_ok(c, &[&bin, "version"]).trim(), format!("{name} {version}"));

    let pid = exec_ok(c, &[&bin, "pid"]);
    let pid: u32 = pid.trim().parse().unwrap_or_else(|_| panic!("`pid` printed {pid:?}"));
    assert_eq!(exec_ok(c, &["cat", &format!("/proc/{pid}/comm")]).trim(), "beam.smp");

    let eval = exec_ok(c, &[&bin, "eval", "IO.puts(6 * 7)"]);
    assert_eq!(eval.lines().last(), Some("42"), "{eval}");

    let node = rpc(c, name, "IO.puts(node())");
    assert!(node.trim().starts_with(&format!("{name}@")), "{node}");

    // The expression's own echo does not contain the marker; only its output does.
    let out = remote(c, name, r#"IO.puts("remote-" <> "node=" <> to_string(node()))"#, "remote-node=");
    assert!(out.contains(&format!("remote-node={}", node.trim())), "the remote shell did not reach the node:\n{out}");
}

fn runs_on_the_minimal_base(b: &Built, name: &str) {
    let m = layout_manifest(&b.layout());
    assert_eq!(m["annotations"]["org.release-oci.base"], "minimal", "{m}");
    assert!(m["annotations"].get("org.opencontainers.image.base.name").is_none(), "{m}");
    let version = m["annotations"]["org.opencontainers.image.version"].as_str().expect("version").to_string();

    let c = Container::start(HARDENED, &b.tag, &[]);
    let (status, body) = c.get("/", HTTP_WAIT);
    assert_eq!(status, 200, "{body}");
    check_release_commands(&c, name, &version);
    let (code, _) = c.stop(10);
    assert_eq!(code, 0, "exit code after docker stop; logs:\n{}", c.logs());
}

#[test]
fn hello_web_runs_every_release_command_on_the_minimal_base() {
    runs_on_the_minimal_base(hello(), "hello_web");
}

#[test]
fn path_deps_runs_every_release_command_on_the_minimal_base() {
    runs_on_the_minimal_base(path_deps(), "path_deps");
}

#[test]
fn releases_on_the_same_erts_share_one_base_layer() {
    let (a, b) = (hello(), path_deps());
    let base_a = layer_digest(&a.layout(), "minimal base");
    assert_eq!(base_a, layer_digest(&b.layout(), "minimal base"), "the base differs though only the app does");
    let (files, _) = layer_files(&a.layout(), &base_a, "");
    assert!(files.contains("usr/bin/busybox") && files.contains("etc/ssl/certs/ca-certificates.crt"), "{files:?}");
    assert!(!files.iter().any(|f| f.starts_with("usr/share/zoneinfo/")), "time zones without --tzdata");
    assert!(!files.iter().any(|f| f.contains("libcrypto")), "libcrypto without :crypto in the release");
}

#[test]
fn zlib_nif_runs_with_its_zlib_and_openssl() {
    let b = zlib_nif();
    let mut args = HARDENED.to_vec();
    args.extend(["-e", "TZ=Asia/Tokyo"]);
    let c = Container::start(&args, &b.tag, &[]);
    let crc = |data: &[u8]| {
        let mut h = flate2::Crc::new();
        h.update(data);
        h.sum()
    };
    let (status, body) = c.get("/?release-oci", HTTP_WAIT);
    assert_eq!((status, body), (200, format!("crc32(release-oci) = {}\n", crc(b"release-oci"))));
    assert_eq!(rpc(&c, "zlib_nif", r#"IO.puts(ZlibNif.crc32("abc"))"#).trim(), crc(b"abc").to_string());

    let sha = hex::encode(sha2::Sha256::digest(b"release-oci"));
    let got = rpc(&c, "zlib_nif", r#"IO.puts(Base.encode16(:crypto.hash(:sha256, "release-oci"), case: :lower))"#);
    assert_eq!(got.trim(), sha);
    let tls = rpc(&c, "zlib_nif", TLS_ROUND_TRIP);
    assert!(tls.contains("pong ping over tlsv1."), "{tls}");
    let cacerts: usize =
        rpc(&c, "zlib_nif", "IO.puts(length(:public_key.cacerts_get()))").trim().parse().expect("count");
    assert!(cacerts > 0, "no CA certificates");
    assert_eq!(exec_ok(&c, &["date", "+%Z"]).trim(), "JST", "TZ=Asia/Tokyo with --tzdata");

    let version = layout_manifest(&b.layout())["annotations"]["org.opencontainers.image.version"]
        .as_str()
        .expect("version")
        .to_string();
    check_release_commands(&c, "zlib_nif", &version);
    let (code, _) = c.stop(10);
    assert_eq!(code, 0, "exit code after docker stop; logs:\n{}", c.logs());
}

/// The libraries the image's own loader resolves for every ELF file of the release, as real paths.
const LOADER_CLOSURE: &str = r#"
for f in $(find /app -type f); do
  [ "$(od -An -tx1 -N4 "$f" | tr -d ' \n')" = 7f454c46 ] && /lib64/ld-linux-x86-64.so.2 --list "$f" 2>/dev/null
done | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u | xargs -n 1 readlink -f | sort -u
"#;

#[test]
fn zlib_nif_base_holds_the_library_closure_and_nothing_else() {
    let b = zlib_nif();
    let reasons_path = "usr/share/release-oci/minimal-base.json";
    let (files, reasons) = layer_files(&b.layout(), &layer_digest(&b.layout(), "minimal base"), reasons_path);

    // The libraries: exactly those the image's loader resolves for the release's ELF files (the
    // dlopen()ed OpenSSL providers aside).
    let o = docker(&["run", "--rm", "--read-only", "--entrypoint", "sh", &b.tag, "-c", LOADER_CLOSURE]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let closure: BTreeSet<String> = text(&o.stdout).lines().map(|l| l.trim_start_matches('/').to_string()).collect();
    let libs: BTreeSet<String> = files
        .iter()
        .filter(|f| f.starts_with("usr/lib/x86_64-linux-gnu/") && !f.contains("/ossl-modules/"))
        .cloned()
        .collect();
    assert_eq!(libs, closure, "the base's libraries are not the release's closure");
    let libz = libs.iter().find(|l| l.contains("/libz.so.")).expect("libz in the base").clone();
    assert!(libs.iter().any(|l| l.contains("/libcrypto.so.")), "{libs:?}");

    // Everything else is one of the things the base is for.
    let allowed = [
        "usr/bin/busybox",
        "usr/lib/x86_64-linux-gnu/",
        "usr/lib/locale/C.utf8/",
        "usr/lib/terminfo/",
        "etc/terminfo/",
        "usr/share/terminfo/",
        "usr/share/zoneinfo/",
        "etc/ssl/certs/ca-certificates.crt",
        "etc/hosts",
        "etc/nsswitch.conf",
        reasons_path,
    ];
    let extra: Vec<&String> = files.iter().filter(|f| !allowed.iter().any(|a| f.starts_with(a))).collect();
    assert!(extra.is_empty(), "unexpected files in the base: {extra:?}");
    assert!(files.iter().any(|f| f.starts_with("usr/share/zoneinfo/Asia/")), "--tzdata");

    // Why libz is there, in the layer and as `inspect --files` prints it.
    let reasons: serde_json::Value = serde_json::from_slice(&reasons.expect("the reasons file")).expect("json");
    let why: Vec<&str> =
        reasons["files"][&libz].as_array().expect("reasons of libz").iter().filter_map(|v| v.as_str()).collect();
    assert!(why.contains(&"needed by zlib_nif/priv/zlib_nif.so"), "{why:?}");
    assert!(why.contains(&"needed by erts/bin/beam.smp"), "{why:?}");
    let mut c = release_oci();
    c.args(["inspect", "--files", &format!("oci:{}", b.layout().display())]);
    let report = ok(c);
    let line = report.lines().find(|l| l.contains(&format!(" {libz}  # "))).unwrap_or_else(|| panic!("{report}"));
    assert!(line.contains("zlib_nif/priv/zlib_nif.so"), "{line}");
    assert!(report.contains("layer 0  sha256:") && report.contains("release-oci: minimal base"), "{report}");
}

#[test]
fn slim_erts_leaves_the_tools_out_and_says_so() {
    let b = zlib_nif();
    let erts = layer_paths(&b.layout(), &layer_digest(&b.layout(), "erts"));
    for gone in ["erlc", "typer", "yielding_c_fun", "escript"] {
        assert!(!erts.iter().any(|p| p.ends_with(&format!("/bin/{gone}"))), "{gone} is still there: {erts:?}");
    }
    for kept in ["beam.smp", "erlexec", "epmd", "erl_child_setup", "inet_gethost"] {
        assert!(erts.iter().any(|p| p.ends_with(&format!("/bin/{kept}"))), "{kept} was left out: {erts:?}");
    }
    let label = layout_config(&b.layout())["config"]["Labels"]["org.release-oci.slim-erts"].clone();
    assert!(label.as_str().is_some_and(|l| l.contains("/bin/erlc")), "{label}");
    let mut c = release_oci();
    c.args(["inspect", &format!("oci:{}", b.layout().display())]);
    let report = ok(c);
    let left_out = report.lines().skip_while(|l| !l.starts_with("Left out")).take(8).collect::<Vec<_>>().join("\n");
    assert!(left_out.contains("/bin/erlc") && left_out.contains("--slim-erts"), "{report}");
}

#[test]
fn debian_base_still_builds_an_image_that_runs() {
    require_docker();
    let project = copy_example("hello_web");
    let out = crate::util::tempdir().expect("tempdir");
    let tag = format!("release-oci-test/hello_web_debian:{}", std::process::id());
    let mut c = release_oci();
    c.arg("build")
        .arg(project.path())
        .args(["--base", "debian", "--load", "--tag", &tag, "--port", "4000"])
        .arg("--output")
        .arg(format!("oci:{}", out.path().display()));
    ok(c);
    let m = layout_manifest(out.path());
    assert_eq!(m["annotations"]["org.opencontainers.image.base.name"], "release-oci/runtime:debian-bookworm");
    assert!(m["annotations"].get("org.release-oci.base").is_none(), "{m}");
    let c = Container::start(HARDENED, &tag, &[]);
    let (status, body) = c.get("/", HTTP_WAIT);
    assert_eq!(status, 200, "{body}");
    let (code, _) = c.stop(10);
    assert_eq!(code, 0, "{}", c.logs());
}

/// The CAs the build trusts (`--build-ca`; by default this machine's bundle, a TLS-intercepting
/// proxy's CA among them) are the build's alone: the image's bundle is the builder image's own,
/// byte for byte. It used to be the builder's file with the build's CAs appended.
#[test]
fn the_cas_the_build_trusts_stay_out_of_the_image() {
    require_docker();
    let project = copy_example("hello_web");
    let out = crate::util::tempdir().expect("tempdir");
    let marker = format!("release-oci-test-ca-{}", std::process::id());
    let ca = out.path().join("build-ca.pem");
    std::fs::write(&ca, format!("-----BEGIN CERTIFICATE-----\n{marker}\n-----END CERTIFICATE-----\n")).expect("ca");
    let layout = out.path().join("oci");
    let mut c = release_oci();
    c.arg("build").arg(project.path()).arg("--build-ca").arg(&ca).arg("--no-cache");
    c.arg("--output").arg(format!("oci:{}", layout.display()));
    ok(c);
    let base = layout_manifest(&layout)["layers"][0]["digest"].as_str().expect("base layer").to_string();
    let (_, bundle) = layer_files(&layout, &base, "etc/ssl/certs/ca-certificates.crt");
    let bundle = bundle.expect("the base has no etc/ssl/certs/ca-certificates.crt");
    assert!(!String::from_utf8_lossy(&bundle).contains(&marker), "the build's CA is in the image");
    let builders = docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "cat",
        "release-oci/builder:debian-bookworm",
        "/etc/ssl/certs/ca-certificates.crt",
    ]);
    assert!(
        bundle == builders.as_bytes(),
        "the image's bundle ({} bytes) is not the builder image's ({} bytes)",
        bundle.len(),
        builders.len()
    );
}
