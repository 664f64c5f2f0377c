use super::*;
use std::os::unix::fs::symlink;
use std::process::Command;

/// `OUT/rel` with ELF files and files that are not, in names whose order differs between
/// locales and between sorting paths and sorting their components.
fn release() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let rel = d.path().join("rel");
    for dir in ["erts-13.1.5/bin", "lib/a-1/priv", "lib/a/priv", "lib/a.b/priv", "bin"] {
        fs::create_dir_all(rel.join(dir)).unwrap();
    }
    let write = |path: &str, bytes: &[u8], mode: u32| {
        fs::write(rel.join(path), bytes).unwrap();
        fs::set_permissions(rel.join(path), fs::Permissions::from_mode(mode)).unwrap();
    };
    write("erts-13.1.5/bin/beam.smp", b"\x7fELF beam", 0o755);
    write("erts-13.1.5/bin/erl", b"#!/bin/sh\nexec beam\n", 0o755);
    write("lib/a-1/priv/x.so", b"\x7fELF a-1", 0o644);
    write("lib/a/priv/x.so.1", b"\x7fELF a", 0o644);
    write("lib/a/priv/with space.so", b"\x7fELF space", 0o644);
    write("lib/a.b/priv/Upper.so", b"\x7fELF a.b", 0o644);
    write("lib/a.b/priv/data.bin", b"\x7fELF but neither executable nor .so", 0o644);
    write("lib/a.b/priv/short.so", b"\x7fE", 0o644);
    write("bin/app", b"#!/bin/sh\n", 0o755);
    symlink("../erts-13.1.5/bin/beam.smp", rel.join("bin/beam")).unwrap();
    d
}

#[test]
fn lists_elf_files_by_content_in_byte_order() {
    let d = release();
    let listing = ElfListing::of_dir(&d.path().join("rel")).unwrap();
    let text = String::from_utf8(listing.text().to_vec()).unwrap();
    let paths: Vec<&str> = text.lines().map(|l| l.split_once("  ").unwrap().1).collect();
    assert_eq!(
        paths,
        [
            "erts-13.1.5/bin/beam.smp",
            "lib/a-1/priv/x.so",
            "lib/a.b/priv/Upper.so",
            "lib/a/priv/with space.so",
            "lib/a/priv/x.so.1"
        ]
    );
    assert_eq!(listing.files(), 5);
    let beam = hex::encode(Sha256::digest(b"\x7fELF beam"));
    assert!(text.starts_with(&format!("{beam}  erts-13.1.5/bin/beam.smp\n")), "{text}");
    assert_eq!(listing.digest(), hex::encode(Sha256::digest(text.as_bytes())));

    // A changed byte in one file changes the listing.
    fs::write(d.path().join("rel/lib/a/priv/x.so.1"), b"\x7fELF A").unwrap();
    assert_ne!(ElfListing::of_dir(&d.path().join("rel")).unwrap().digest(), listing.digest());
}

/// The builder's script, run up to its decision with this listing's digest known: it writes the
/// same listing byte for byte, and says the base is reused instead of gathering it.
#[test]
fn the_builder_script_lists_the_same_files_and_reuses_a_known_base() {
    let d = release();
    let listing = ElfListing::of_dir(&d.path().join("rel")).unwrap();
    let script = format!(
        "set -eu\nsay() {{ printf '==> %s\\n' \"$*\"; }}\ndie() {{ printf 'error: %s\\n' \"$*\"; exit 1; }}\n{}",
        include_str!("../builder/minimal_base.sh")
    );
    let run = |known: &str| {
        let out = Command::new("sh")
            .args(["-c", &script])
            .env("OUT", d.path())
            .env("MINIMAL_BASE", "1")
            .env("MINIMAL_BASE_KNOWN", known)
            .env("BUSYBOX", "/nonexistent")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let log = run(&format!("{} {}", "0".repeat(64), listing.digest()));
    assert!(log.contains("minimal base: reused, not gathered") && log.contains("these 5 ELF files"), "{log}");
    let base = d.path().join("base");
    assert_eq!(fs::read_to_string(base.join("reused")).unwrap().trim(), listing.digest());
    assert_eq!(ElfListing::from_builder(&base).unwrap(), Some(listing.clone()));
    assert!(!base.join("rootfs").exists() && !base.join("elf-files").exists());

    // Not known: the script gathers (and here fails for want of a busybox, after listing).
    let log = run(&"0".repeat(64));
    assert!(log.contains("minimal base: gathering"), "{log}");
    assert!(!base.join("reused").exists());
    assert_eq!(ElfListing::from_builder(&base).unwrap(), Some(listing));
}

#[test]
fn the_builders_listing_must_be_the_release_as_it_is_but_for_what_slim_erts_removed() {
    let d = release();
    let rel = d.path().join("rel");
    fs::write(rel.join("erts-13.1.5/bin/erlc"), b"\x7fELF erlc").unwrap();
    fs::set_permissions(rel.join("erts-13.1.5/bin/erlc"), fs::Permissions::from_mode(0o755)).unwrap();
    let builder = ElfListing::of_dir(&rel).unwrap();
    assert!(builder.matches_release(&rel, false).unwrap());

    // --slim-erts removed erlc after the builder listed it.
    fs::remove_file(rel.join("erts-13.1.5/bin/erlc")).unwrap();
    assert!(!builder.matches_release(&rel, false).unwrap());
    assert!(builder.matches_release(&rel, true).unwrap());

    // Anything else is another release.
    fs::remove_file(rel.join("lib/a/priv/x.so.1")).unwrap();
    assert!(!builder.matches_release(&rel, true).unwrap(), "a NIF is gone");
    fs::write(rel.join("lib/a/priv/x.so.1"), b"\x7fELF a").unwrap();
    assert!(builder.matches_release(&rel, true).unwrap());
    fs::write(rel.join("lib/a/priv/new.so"), b"\x7fELF new").unwrap();
    assert!(!builder.matches_release(&rel, true).unwrap(), "a new NIF");
    fs::remove_file(rel.join("lib/a/priv/new.so")).unwrap();
    fs::write(rel.join("erts-13.1.5/bin/beam.smp"), b"\x7fELF beam 2").unwrap();
    assert!(!builder.matches_release(&rel, true).unwrap(), "another beam.smp");
    let garbled = ElfListing { text: b"no separator\n".to_vec(), files: 1 };
    assert!(!garbled.matches_release(&rel, true).unwrap());
}
