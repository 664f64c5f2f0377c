//! `--triple x86_64-unknown-linux-musl` end to end, in the musl builder that
//! base-images/musl/build.sh makes (`make base-musl`): hello_web answers HTTP on the default
//! (minimal) base, `:crypto` and `:ssl` work, `docker stop` exits 0, `beam.smp` uses musl's loader
//! and the image holds no glibc; it also runs on release-oci/runtime:musl; zlib_nif's C NIF is
//! compiled with musl-gcc against musl's zlib and runs. `bin/hello_web remote` opens IEx's remote
//! shell on the running node (the musl ERTS has ncurses' terminal library with the common
//! terminals built in) on both bases. A glibc ERTS built for the musl triple (and a musl ERTS for
//! the gnu triple) is refused, naming the file.

use crate::minimal_base::{TLS_ROUND_TRIP, layer_digest, layer_files, remote, rpc};
use crate::util::*;
use sha2::Digest as _;
use std::sync::OnceLock;
use std::time::Duration;

const TRIPLE: &str = "x86_64-unknown-linux-musl";
const MUSL_BUILDER: &str = "release-oci/builder:musl";
const GNU_BUILDER: &str = "release-oci/builder:debian-bookworm";
const MUSL_LOADER: &str = "/lib/ld-musl-x86_64.so.1";
const MUSL_RUNTIME: &str = "release-oci/runtime:musl";

/// Fails (never skips) when the musl builder image is missing, saying how to make it.
fn require_musl_builder() {
    require_docker();
    let o = docker(&["image", "inspect", "--format", "{{.Id}}", MUSL_BUILDER]);
    assert!(
        o.status.success(),
        "the musl builder image {MUSL_BUILDER} is missing: `make base-musl` (base-images/musl/build.sh) builds it\n{}",
        text(&o.stderr)
    );
}

/// hello_web with `:crypto` and `:ssl` in its release, for the musl triple with the defaults
/// (builder release-oci/builder:musl, minimal base), as an OCI layout and loaded.
fn musl_hello() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| {
        require_musl_builder();
        let project = copy_example("hello_web");
        let mix_exs = project.path().join("mix.exs");
        let src = std::fs::read_to_string(&mix_exs).expect("mix.exs");
        let apps = "extra_applications: [:logger]";
        assert!(src.contains(apps), "hello_web's mix.exs changed: {src}");
        std::fs::write(&mix_exs, src.replace(apps, "extra_applications: [:logger, :crypto, :ssl]")).expect("mix.exs");
        let out = crate::util::tempdir().expect("tempdir");
        let tag = format!("release-oci-test/hello_web_musl:{}", std::process::id());
        let mut c = release_oci();
        c.arg("build")
            .arg(project.path())
            .arg("--output")
            .arg(format!("oci:{}", out.path().join("oci").display()))
            .args(["--load", "--tag", &tag, "--port", "4000", "--triple", TRIPLE]);
        let digest = ok(c).trim().to_string();
        assert!(digest.starts_with("sha256:"), "stdout is not a digest: {digest:?}");
        Built { project, out, digest, tag }
    })
}

#[test]
fn musl_hello_web_runs_answers_does_crypto_and_stops() {
    let b = musl_hello();
    let c = Container::start(&["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"], &b.tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(60));
    assert_eq!(status, 200, "body: {body}\nlogs:\n{}", c.logs());
    assert!(body.contains("hello from hello_web"), "{body}");

    // :crypto (OpenSSL linked into the NIF) hashes as this machine does.
    let input = format!("release-oci musl {}", std::process::id());
    let expr = format!(r#":crypto.hash(:sha256, "{input}") |> Base.encode16(case: :lower) |> IO.puts()"#);
    let want: String = sha2::Sha256::digest(input.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(rpc(&c, "hello_web", &expr).trim(), want);
    // A one-off `eval` loads the NIF in a second VM too.
    let o = c.exec(&["/app/bin/hello_web", "eval", &expr]);
    assert!(o.status.success(), "eval failed:\n{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), want);
    // TLS: key generation, a verified handshake and a message each way.
    let tls = rpc(&c, "hello_web", TLS_ROUND_TRIP);
    assert!(tls.contains("pong ping over tlsv1."), "{tls}");

    let (code, _) = c.stop(10);
    assert_eq!(code, 0, "exit code after docker stop; logs:\n{}", c.logs());
    let logs = c.logs();
    assert!(logs.contains("hello_web: application stopped"), "the stop callback did not run:\n{logs}");
}

/// `bin/NAME remote` (IEx's remote shell, under the terminal `docker exec -it` gives, TERM=xterm)
/// reaches the running node and evaluates an expression there: the line editor's driver opens, so
/// IEx does not fall back to its limited shell (which ignores --remsh and starts a local node).
fn assert_remote_shell_reaches_the_node(c: &Container, name: &str) {
    let node = rpc(c, name, "IO.puts(node())");
    let node = node.trim();
    assert!(node.starts_with(&format!("{name}@")), "{node}");
    // The expression's own echo does not contain the marker; only its output does.
    let out = remote(c, name, r#"IO.puts("remote-" <> "node=" <> to_string(node()))"#, "remote-node=");
    assert!(!out.contains("limited shell"), "IEx ran its limited shell (no terminal driver):\n{out}");
    assert!(out.contains(&format!("remote-node={node}")), "the remote shell did not reach the node:\n{out}");
}

#[test]
fn musl_remote_shell_reaches_the_running_node() {
    let b = musl_hello();
    let c = Container::start(&["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"], &b.tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(60));
    assert_eq!(status, 200, "body: {body}\nlogs:\n{}", c.logs());
    assert_remote_shell_reaches_the_node(&c, "hello_web");
}

#[test]
fn musl_beam_smp_uses_the_musl_loader_and_the_image_has_no_glibc() {
    let b = musl_hello();
    let layout = b.layout();
    let erts = layer_digest(&layout, "erts");
    let names = layer_paths(&layout, &erts);
    let beam = names
        .iter()
        .find(|p| p.starts_with("app/erts-") && p.ends_with("/bin/beam.smp"))
        .unwrap_or_else(|| panic!("no beam.smp in the erts layer: {names:?}"))
        .clone();
    let (_, bytes) = layer_files(&layout, &erts, &beam);
    let bytes = bytes.expect("beam.smp's bytes");
    let elf = goblin::elf::Elf::parse(&bytes).expect("beam.smp is ELF");
    assert_eq!(elf.interpreter, Some(MUSL_LOADER), "{beam}'s interpreter");
    assert!(elf.libraries.iter().all(|l| !l.starts_with("libc.so.6")), "{:?}", elf.libraries);

    // The minimal base brings musl's loader (which is also its libc) and no glibc.
    let manifest = layout_manifest(&layout);
    let mut all = Vec::new();
    for layer in manifest["layers"].as_array().expect("layers") {
        all.extend(layer_paths(&layout, layer["digest"].as_str().expect("digest")));
    }
    assert!(all.iter().any(|p| p.ends_with("ld-musl-x86_64.so.1")), "no musl loader in the image");
    let glibc: Vec<&String> =
        all.iter().filter(|p| p.ends_with("/libc.so.6") || p.contains("ld-linux-x86-64.so")).collect();
    assert!(glibc.is_empty(), "glibc in a musl image: {glibc:?}");
    assert_eq!(layout_config(&layout)["architecture"], "amd64");
    assert_eq!(manifest["annotations"]["org.release-oci.base"], "minimal");
}

/// A build whose assembled release must be refused; returns its stderr.
fn refused_build(extra: &[&str]) -> String {
    require_musl_builder();
    let project = copy_example("hello_web");
    let out = crate::util::tempdir().expect("tempdir");
    let mut c = release_oci();
    c.arg("build").arg(project.path()).arg("--output").arg(format!("oci:{}", out.path().join("oci").display()));
    c.args(extra);
    let o = run(c);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "the build was not refused:\n{err}");
    assert!(!out.path().join("oci").join("index.json").exists(), "an image was written");
    err
}

#[test]
fn a_glibc_erts_for_the_musl_triple_is_refused_naming_beam_smp() {
    let err = refused_build(&["--triple", TRIPLE, "--builder-image", GNU_BUILDER]);
    assert!(err.contains("/bin/beam.smp") && err.contains("erts-"), "the message names no file:\n{err}");
    assert!(err.contains("with glibc") && err.contains("with musl"), "{err}");
}

#[test]
fn a_musl_erts_for_the_gnu_triple_is_refused_naming_beam_smp() {
    let err = refused_build(&["--triple", "x86_64-unknown-linux-gnu", "--builder-image", MUSL_BUILDER]);
    assert!(err.contains("/bin/beam.smp") && err.contains("erts-"), "the message names no file:\n{err}");
    assert!(err.contains("with musl") && err.contains("with glibc"), "{err}");
}

#[test]
fn musl_hello_web_runs_on_the_musl_runtime_image() {
    require_musl_builder();
    let b = build_example("hello_web", &["--triple", TRIPLE, "--base", MUSL_RUNTIME]);
    let m = layout_manifest(&b.layout());
    assert_eq!(m["annotations"]["org.opencontainers.image.base.name"], MUSL_RUNTIME, "{m}");
    let c = Container::start(&["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"], &b.tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(60));
    assert_eq!(status, 200, "body: {body}\nlogs:\n{}", c.logs());
    assert_remote_shell_reaches_the_node(&c, "hello_web");
    let (code, _) = c.stop(10);
    assert_eq!(code, 0, "exit code after docker stop; logs:\n{}", c.logs());
}

#[test]
fn musl_zlib_nif_is_compiled_for_musl_and_runs() {
    require_musl_builder();
    let b = build_example("zlib_nif", &["--triple", TRIPLE]);
    let layout = b.layout();
    let mut nif = None;
    for layer in layout_manifest(&layout)["layers"].as_array().expect("layers") {
        let digest = layer["digest"].as_str().expect("digest");
        if let Some(path) = layer_paths(&layout, digest).into_iter().find(|p| p.ends_with("/priv/zlib_nif.so")) {
            nif = layer_files(&layout, digest, &path).1;
        }
    }
    let nif = nif.expect("zlib_nif.so in a layer");
    let elf = goblin::elf::Elf::parse(&nif).expect("zlib_nif.so is ELF");
    assert!(elf.libraries.contains(&"libc.so"), "zlib_nif.so does not link musl's libc: {:?}", elf.libraries);
    assert!(!elf.libraries.iter().any(|l| l.starts_with("libc.so.6")), "{:?}", elf.libraries);

    let c = Container::start(&["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"], &b.tag, &[]);
    let mut crc = flate2::Crc::new();
    crc.update(b"release-oci");
    let (status, body) = c.get("/?release-oci", Duration::from_secs(60));
    assert_eq!((status, body), (200, format!("crc32(release-oci) = {}\n", crc.sum())), "logs:\n{}", c.logs());
    let cacerts: usize =
        rpc(&c, "zlib_nif", "IO.puts(length(:public_key.cacerts_get()))").trim().parse().expect("count");
    assert!(cacerts > 0, "no CA certificates");
    let (code, _) = c.stop(10);
    assert_eq!(code, 0, "exit code after docker stop; logs:\n{}", c.logs());
}
