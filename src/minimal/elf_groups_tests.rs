use super::*;
use std::path::PathBuf;

/// Up to `n` ELF files of each of this machine's program and library directories (under 3 MiB
/// each), copied into `rel/bin` and `rel/lib`; how many.
fn release_of_host_files(rel: &Path, n: usize) -> usize {
    let mut copied = 0;
    let sources: [(&str, &str); 3] =
        [("/usr/bin", "bin"), ("/usr/lib/x86_64-linux-gnu", "lib"), ("/usr/lib/aarch64-linux-gnu", "lib")];
    for (dir, to) in sources {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let mut from_here = 0;
        for path in paths {
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            let Ok(bytes) = std::fs::read(&path) else { continue };
            if !meta.is_file() || meta.len() > 3 << 20 || !bytes.starts_with(b"\x7fELF") || from_here >= n {
                continue;
            }
            let name = path.file_name().unwrap();
            std::fs::create_dir_all(rel.join(to)).unwrap();
            std::fs::write(rel.join(to).join(name), &bytes).unwrap();
            std::fs::set_permissions(rel.join(to).join(name), std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            copied += 1;
            from_here += 1;
        }
    }
    copied
}

/// elf_groups.pl's output for the files of `listing` (MUSL=1: the part the host always keys on).
fn perl_groups(rel: &Path, listing: &ElfListing) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("elf-files");
    let mut text = Vec::new();
    for p in listing.paths() {
        text.extend_from_slice(p);
        text.push(b'\n');
    }
    std::fs::write(&list, text).unwrap();
    let out = std::process::Command::new("perl")
        .arg("-e")
        .arg(include_str!("../builder/elf_groups.pl"))
        .arg(rel)
        .arg("1")
        .arg(&list)
        .output()
        .expect("perl runs (Debian's perl-base is essential)");
    assert!(out.status.success(), "elf_groups.pl failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn the_hosts_groups_are_elf_groups_pl_s() {
    let dir = tempfile::tempdir().unwrap();
    let rel = dir.path();
    let copied = release_of_host_files(rel, 80);
    assert!(copied >= 20, "this machine has only {copied} ELF files under /usr/bin and /usr/lib/<triple>");
    let listing = ElfListing::of_dir(rel).unwrap();
    let ours = groups(rel, &listing);
    assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&perl_groups(rel, &listing)));
    let text = String::from_utf8(ours).unwrap();
    let distinct: std::collections::BTreeSet<&str> = text.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(text.lines().count(), copied);
    assert!(distinct.len() < copied, "some of {copied} files share a group: {text}");
    assert!(distinct.len() > 1, "not all of them ask the same: {text}");
}

#[test]
fn a_file_that_does_not_parse_is_a_group_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let rel = dir.path();
    let ls = std::fs::read("/bin/ls").or_else(|_| std::fs::read("/usr/bin/ls")).unwrap();
    std::fs::create_dir_all(rel.join("a")).unwrap();
    for (name, bytes) in [("a/one", &ls[..]), ("a/two", &ls[..]), ("a/broken", &ls[..200]), ("a/short", &ls[..70])] {
        std::fs::write(rel.join(name), bytes).unwrap();
        std::fs::set_permissions(rel.join(name), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let listing = ElfListing::of_dir(rel).unwrap();
    let ours = String::from_utf8(groups(rel, &listing)).unwrap();
    assert_eq!(ours, "u1\ta/broken\ng1\ta/one\nu2\ta/short\ng1\ta/two\n");
    std::fs::remove_file(rel.join("a/two")).unwrap();
    let gone = String::from_utf8(groups(rel, &listing)).unwrap();
    assert_eq!(gone, "u1\ta/broken\ng1\ta/one\nu2\ta/short\nu3\ta/two\n", "a file gone since the listing");
}
