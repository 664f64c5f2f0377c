//! aarch64 and multi-platform builds, under emulation (qemu-user 10 through binfmt_misc, set up by
//! `make setup-arm64`, scripts/setup-emulation.sh):
//! - hello_web for aarch64-unknown-linux-gnu runs with `--platform linux/arm64`, answers HTTP, its
//!   `beam.smp` is an AArch64 ELF and the BEAM in the image is Debian's JIT build (`emu_flavor` is
//!   `jit`, in the running node and in a one-off `eval`);
//! - zlib_nif for aarch64: its C NIF is compiled in the arm64 builder (an AArch64 ELF linking
//!   zlib), loads and answers;
//! - `--triple` twice makes one image index, pushed under one tag: skopeo sees both platforms and
//!   the pure-Elixir application layers are the same blobs in both manifests;
//! - native code for another machine is refused, naming the file inside the release.

use crate::util::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub(crate) const AARCH64: &str = "aarch64-unknown-linux-gnu";
pub(crate) const X86_64: &str = "x86_64-unknown-linux-gnu";
const ARM64_IMAGES: [&str; 2] =
    ["release-oci/builder:debian-bookworm-arm64", "release-oci/runtime:debian-bookworm-arm64"];
const BINFMT_AARCH64: &str = "/proc/sys/fs/binfmt_misc/qemu-aarch64";
/// ELF e_machine of AArch64 and x86-64.
pub(crate) const EM_AARCH64: u16 = 183;
const EM_X86_64: u16 = 62;

/// Fails (never skips) when arm64 binaries cannot run here or the arm64 images are missing.
pub(crate) fn require_emulation() {
    require_docker();
    let entry = std::fs::read_to_string(BINFMT_AARCH64).unwrap_or_default();
    assert!(
        entry.lines().any(|l| l == "enabled") && entry.lines().any(|l| l.starts_with("flags:") && l.contains('F')),
        "qemu-aarch64 is not registered in binfmt_misc with the F flag ({BINFMT_AARCH64}: {entry:?}): \
         `make setup-arm64` (scripts/setup-emulation.sh) sets it up"
    );
    for image in ARM64_IMAGES {
        let o = docker(&["image", "inspect", "--format", "{{.Architecture}}", image]);
        assert!(
            o.status.success() && text(&o.stdout).trim() == "arm64",
            "the arm64 image {image} is missing (or not arm64: {:?}): `make setup-arm64` builds it\n{}",
            text(&o.stdout).trim(),
            text(&o.stderr)
        );
    }
    // The builder carries Debian's own arm64 Erlang/OTP, the JIT build, which needs qemu 10 or
    // newer (7.2 crashed it). The interpreter beam.smp of the old set-up must be gone.
    let o = docker(&[
        "image",
        "inspect",
        "--format",
        r#"{{index .Config.Labels "org.release-oci.erts-flavor"}}"#,
        ARM64_IMAGES[0],
    ]);
    assert_eq!(
        text(&o.stdout).trim(),
        "",
        "{} carries the interpreter beam.smp of the old set-up: `make setup-arm64` rebuilds it with Debian's JIT ERTS",
        ARM64_IMAGES[0]
    );
    // The registered path is a link named `*-binfmt-P` (qemu then takes its arguments as binfmt_misc
    // passes them): the version is asked of the file it names.
    let registered = entry.lines().find_map(|l| l.strip_prefix("interpreter ")).unwrap_or_default();
    let interpreter = std::fs::canonicalize(registered).unwrap_or_else(|_| PathBuf::from(registered));
    let interpreter = interpreter.display();
    let o = Command::new(interpreter.to_string()).arg("--version").output();
    let version = o.as_ref().map(|o| text(&o.stdout)).unwrap_or_default();
    let major: u32 = version
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("qemu-aarch64 version "))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 10,
        "the registered qemu-aarch64 ({interpreter}) is not version 10 or newer ({version:?}): the BEAM's JIT \
         crashes under older ones; `make setup-arm64` installs qemu-user from bookworm-backports"
    );
}

/// `emu_flavor` of the BEAM of a running aarch64 container: in the node (rpc) and in a one-off
/// `eval` (a second VM from the same ERTS).
pub(crate) fn assert_jit(c: &Container, name: &str) {
    let bin = format!("/app/bin/{name}");
    for how in ["rpc", "eval"] {
        let o = c.exec(&[&bin, how, "IO.puts(:erlang.system_info(:emu_flavor))"]);
        assert!(
            o.status.success(),
            "{name} {how} failed:\n{}{}\nlogs:\n{}",
            text(&o.stdout),
            text(&o.stderr),
            c.logs()
        );
        assert_eq!(text(&o.stdout).trim(), "jit", "{name} {how}: emu_flavor of the image's BEAM");
    }
}

/// The JSON blob `digest` of the layout at `dir`.
fn blob(dir: &Path, digest: &str) -> Value {
    blob_json(dir, digest)
}

/// The bytes of `path` in the gzip layer `digest` of the layout at `dir`, if it is there.
fn file_in_layer(dir: &Path, digest: &str, want: &dyn Fn(&str) -> bool) -> Option<(String, Vec<u8>)> {
    let f = std::fs::File::open(dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).expect("layer");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    for entry in archive.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        if entry.header().entry_type().is_file() && want(&path) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read");
            return Some((path, bytes));
        }
    }
    None
}

/// ELF e_machine (little-endian ELF64, as both targets are).
pub(crate) fn elf_machine(bytes: &[u8]) -> u16 {
    assert!(bytes.starts_with(b"\x7fELF") && bytes.len() > 20, "not an ELF file");
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// `app/erts-*/bin/beam.smp` of the image `manifest` (a manifest blob of the layout at `dir`).
pub(crate) fn beam_smp(dir: &Path, manifest: &Value) -> (String, Vec<u8>) {
    let is_beam = |p: &str| p.starts_with("app/erts-") && p.ends_with("/bin/beam.smp");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find_map(|l| file_in_layer(dir, l["digest"].as_str().expect("digest"), &is_beam))
        .expect("no app/erts-*/bin/beam.smp in the image")
}

/// Layer digests by release-oci layer name (`release-oci: NAME` in the config history).
pub(crate) fn named_layers(dir: &Path, manifest: &Value) -> BTreeMap<String, String> {
    let config = blob(dir, manifest["config"]["digest"].as_str().expect("config digest"));
    let names = config["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["empty_layer"] != Value::Bool(true))
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_string());
    names
        .zip(manifest["layers"].as_array().expect("layers"))
        .filter_map(|(n, l)| {
            Some((n.strip_prefix("release-oci: ")?.to_string(), l["digest"].as_str().expect("digest").to_string()))
        })
        .collect()
}

#[test]
fn aarch64_hello_web_runs_under_emulation_and_its_erts_is_aarch64() {
    require_emulation();
    let b = build_example("hello_web", &["--triple", AARCH64]);
    let layout = b.layout();
    let cfg = layout_config(&layout);
    assert_eq!((cfg["os"].as_str(), cfg["architecture"].as_str()), (Some("linux"), Some("arm64")));
    let (path, bytes) = beam_smp(&layout, &layout_manifest(&layout));
    assert_eq!(elf_machine(&bytes), EM_AARCH64, "{path} is not an AArch64 ELF");

    let c = Container::start(&["--platform", "linux/arm64"], &b.tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(180));
    assert_eq!(status, 200, "body: {body}\nlogs:\n{}", c.logs());
    assert!(body.contains("hello from hello_web"), "{body}");
    let arch = c.exec(&["uname", "-m"]);
    assert_eq!(text(&arch.stdout).trim(), "aarch64", "{}", text(&arch.stderr));
    assert_jit(&c, "hello_web");
    drop(c);
    let _ = docker(&["rmi", "-f", &b.tag]);
}

#[test]
fn aarch64_zlib_nif_is_compiled_for_aarch64_and_runs_under_emulation() {
    require_emulation();
    let b = build_example("zlib_nif", &["--triple", AARCH64]);
    let layout = b.layout();
    let manifest = layout_manifest(&layout);
    let is_nif = |p: &str| p.ends_with("/priv/zlib_nif.so");
    let (path, nif) = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find_map(|l| file_in_layer(&layout, l["digest"].as_str().expect("digest"), &is_nif))
        .expect("no priv/zlib_nif.so in the image");
    assert_eq!(elf_machine(&nif), EM_AARCH64, "{path} is not an AArch64 ELF");
    let elf = goblin::elf::Elf::parse(&nif).expect("zlib_nif.so is ELF");
    assert!(elf.libraries.contains(&"libz.so.1"), "{path} does not link zlib: {:?}", elf.libraries);

    let c = Container::start(&["--platform", "linux/arm64"], &b.tag, &[]);
    let mut crc = flate2::Crc::new();
    crc.update(b"release-oci");
    let (status, body) = c.get("/?release-oci", Duration::from_secs(180));
    assert_eq!((status, body), (200, format!("crc32(release-oci) = {}\n", crc.sum())), "logs:\n{}", c.logs());
    assert_jit(&c, "zlib_nif");
    let (code, _) = c.stop(30);
    assert_eq!(code, 0, "exit code after docker stop; logs:\n{}", c.logs());
    drop(c);
    let _ = docker(&["rmi", "-f", &b.tag]);
}

#[test]
fn two_platforms_make_one_index_pushed_under_one_tag_with_shared_app_layers() {
    use crate::registry_util::{Registry, skopeo_inspect};
    require_emulation();
    let project = copy_example("hello_web");
    let out = crate::util::tempdir().expect("tempdir");
    let layout = out.path().join("oci");
    let reg = Registry::plain();
    let reference = format!("{}/multi/hello:1", reg.addr());
    let mut c = release_oci();
    c.arg("build")
        .arg(project.path())
        .args(["--triple", X86_64, "--triple", AARCH64, "--port", "4000", "--push", &reference])
        .arg("--output")
        .arg(format!("oci:{}:1", layout.display()));
    let o = run(c);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let pushed = text(&o.stdout);
    let (repo, index_digest) = pushed.trim().split_once('@').expect("REPO@DIGEST on stdout");
    // The platforms build at the same time: each one's lines are labelled, and the arm64
    // builder starts before the amd64 builder's log ends.
    let log = text(&o.stderr);
    let lines: Vec<&str> = log.lines().collect();
    let arm_starts = "[linux/arm64/v8] ==> Assembling the release in a builder container";
    let amd_log = "[linux/amd64]   │ ";
    let arm = lines.iter().position(|l| l.starts_with(arm_starts)).expect("the labelled arm64 builder step");
    let last_amd = lines.iter().rposition(|l| l.starts_with(amd_log)).expect("labelled amd64 builder lines");
    assert!(arm < last_amd, "the platforms were built one after the other:\n{log}");
    assert_eq!(repo, format!("{}/multi/hello", reg.addr()));

    // The registry holds an index under the tag, with one manifest per platform.
    let o = skopeo_inspect(&reference, &["--tls-verify=false", "--raw"]);
    assert!(o.status.success(), "skopeo inspect --raw: {}", text(&o.stderr));
    let raw = o.stdout;
    assert_eq!(format!("sha256:{}", sha256_hex(&raw)), index_digest, "the tag names another document");
    let index: Value = serde_json::from_slice(&raw).expect("index json");
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let entries = index["manifests"].as_array().expect("manifests");
    let platforms: Vec<String> = entries
        .iter()
        .map(|m| {
            let p = &m["platform"];
            format!("{}/{}", p["os"].as_str().unwrap_or("?"), p["architecture"].as_str().unwrap_or("?"))
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{index}");
    assert_eq!(entries[1]["platform"]["variant"], "v8");

    // The layout names the same index; its manifests are the registry's.
    let layout_index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
        .expect("index.json json");
    let entry = &layout_index["manifests"][0];
    assert_eq!(entry["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(entry["digest"], index_digest);
    assert_eq!(entry["annotations"]["org.opencontainers.image.ref.name"], "1");
    let mut layers = Vec::new();
    for (m, arch) in entries.iter().zip(["amd64", "arm64"]) {
        let digest = m["digest"].as_str().expect("digest");
        let o = skopeo_inspect(&format!("{}/multi/hello@{digest}", reg.addr()), &["--tls-verify=false", "--raw"]);
        assert!(o.status.success(), "skopeo inspect {digest}: {}", text(&o.stderr));
        let manifest: Value = serde_json::from_slice(&o.stdout).expect("manifest json");
        assert_eq!(manifest, blob(&layout, digest), "the registry's {arch} manifest differs from the layout's");
        let config = blob(&layout, manifest["config"]["digest"].as_str().expect("config"));
        assert_eq!(config["architecture"], arch);
        let (path, bytes) = beam_smp(&layout, &manifest);
        let want = if arch == "arm64" { EM_AARCH64 } else { EM_X86_64 };
        assert_eq!(elf_machine(&bytes), want, "{arch}: {path}");
        layers.push(named_layers(&layout, &manifest));
    }
    // The application layer of a project without native code is one blob for both platforms;
    // ERTS differs.
    assert!(layers[0].contains_key("app"), "{:?}", layers[0]);
    for name in ["app", "deps"] {
        assert_eq!(layers[0].get(name), layers[1].get(name), "layer {name}: {layers:#?}");
    }
    assert_ne!(layers[0].get("erts"), layers[1].get("erts"), "{layers:#?}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A minimal aarch64 ELF shared object (an ELF64 header alone: ET_DYN, EM_AARCH64), so this
/// test needs neither the arm64 images nor a cross compiler.
fn aarch64_shared_object(dest: &Path) {
    let mut h = Vec::with_capacity(64);
    h.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.extend_from_slice(&3u16.to_le_bytes()); // e_type: ET_DYN
    h.extend_from_slice(&EM_AARCH64.to_le_bytes()); // e_machine
    h.extend_from_slice(&1u32.to_le_bytes()); // e_version
    h.extend_from_slice(&[0; 24]); // e_entry, e_phoff, e_shoff
    h.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for v in [64u16, 56, 0, 64, 0, 0] {
        // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
        h.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(h.len(), 64);
    std::fs::write(dest, h).expect("write the aarch64 shared object");
}

/// hello_web assembled on the host by mix (x86_64, glibc): the release directory.
fn host_release(project: &Path) -> PathBuf {
    let mut c = Command::new("mix");
    c.args(["release", "--quiet"])
        .current_dir(project)
        .env("MIX_ENV", "prod")
        .env_remove("MIX_BUILD_ROOT")
        .env_remove("MIX_BUILD_PATH");
    ok(c);
    project.join("_build/prod/rel/hello_web")
}

#[test]
fn native_code_for_another_machine_is_refused_naming_the_file() {
    let project = copy_example("hello_web");
    let rel = host_release(project.path());
    // The x86_64 release for the aarch64 triple: its ERTS is named.
    let mut c = release_oci();
    c.arg("build").arg("--from-release").arg(&rel).args(["--triple", AARCH64, "--base", "scratch"]);
    let o = run(c);
    assert!(!o.status.success(), "an x86_64 release was accepted for {AARCH64}");
    let err = text(&o.stderr);
    assert!(err.contains("/bin/beam.smp (the ERTS emulator)") && err.contains("needs aarch64"), "{err}");
    assert!(err.contains("is for x86_64"), "{err}");

    // An aarch64 NIF planted into the x86_64 release: the NIF is named by its path in the release.
    let app = std::fs::read_dir(rel.join("lib"))
        .expect("lib")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("hello_web-"))
        .expect("lib/hello_web-*");
    let priv_dir = rel.join("lib").join(&app).join("priv");
    std::fs::create_dir_all(&priv_dir).expect("priv");
    aarch64_shared_object(&priv_dir.join("planted_nif.so"));
    let mut c = release_oci();
    c.arg("build").arg("--from-release").arg(&rel).args(["--triple", X86_64, "--base", "scratch"]);
    let o = run(c);
    assert!(!o.status.success(), "an aarch64 NIF was accepted for {X86_64}");
    let err = text(&o.stderr);
    let named = format!("lib/{app}/priv/planted_nif.so (a NIF or driver (shared object))");
    assert!(err.contains(&named), "{err}");
    assert!(err.contains("is for aarch64") && err.contains("needs x86_64"), "{err}");
}
