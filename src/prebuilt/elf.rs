//! Does a release's native code run on the target triple? `erts-VSN/bin/beam.smp` (and every
//! other ELF file of `erts-*/bin` and `lib/*/priv`) must be for the triple's machine, and
//! executables must use its libc's loader (`ld-linux-*` for gnu, `ld-musl-*` for musl); shared
//! objects must not link the other libc.

use crate::triple::{Arch, Libc, Triple};
use goblin::elf::Elf;
use goblin::elf::header::{EM_AARCH64, EM_X86_64};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "{path} is for {found}, but the target triple {triple} needs {wanted}: build the release for \
         {triple} (or pass the --triple it was built for)"
    )]
    Mismatch { path: PathBuf, found: String, wanted: String, triple: String },
    /// `detail`: "is for X, but the target triple T needs Y: ...".
    #[error("{path} ({what}) in the release at {root} {detail}")]
    InRelease { path: PathBuf, what: &'static str, root: PathBuf, detail: String },
}

/// What an ELF file is built for, as far as the check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfTarget {
    pub machine: u16,
    /// The libc it needs: from the interpreter (executables) or DT_NEEDED (libraries).
    pub libc: Option<Libc>,
    /// The program interpreter (dynamic loader) of a dynamically linked executable.
    pub interpreter: Option<String>,
}

/// Reads `bytes` as ELF; `None` when it is not an ELF file.
pub fn elf_target(bytes: &[u8]) -> Option<ElfTarget> {
    if !bytes.starts_with(b"\x7fELF") {
        return None;
    }
    let elf = Elf::parse(bytes).ok()?;
    let libc = match elf.interpreter {
        Some(i) if i.contains("ld-musl") => Some(Libc::Musl),
        Some(i) if i.contains("ld-linux") => Some(Libc::Gnu),
        _ => elf.libraries.iter().find_map(|l| {
            if l.starts_with("libc.musl") {
                Some(Libc::Musl)
            } else if *l == "libc.so.6" {
                Some(Libc::Gnu)
            } else {
                None
            }
        }),
    };
    let interpreter = elf.interpreter.map(|i| i.trim_end_matches(char::from(0)).to_string());
    Some(ElfTarget { machine: elf.header.e_machine, libc, interpreter })
}

/// Whether `bytes` is a statically linked ELF program (no interpreter, no libraries) for the
/// machine of `triple`: one that runs there whatever the image around it has.
pub fn is_static_for(bytes: &[u8], triple: &Triple) -> bool {
    let Some(found) = elf_target(bytes) else { return false };
    let Ok(elf) = Elf::parse(bytes) else { return false };
    found.machine == machine_of(triple) && found.interpreter.is_none() && elf.libraries.is_empty()
}

fn machine_of(triple: &Triple) -> u16 {
    match triple.arch {
        Arch::X86_64 => EM_X86_64,
        Arch::Aarch64 => EM_AARCH64,
    }
}

fn machine_name(m: u16) -> String {
    match m {
        EM_X86_64 => "x86_64".into(),
        EM_AARCH64 => "aarch64".into(),
        goblin::elf::header::EM_386 => "i386".into(),
        goblin::elf::header::EM_ARM => "arm (32-bit)".into(),
        other => format!("ELF machine {other}"),
    }
}

fn libc_name(l: Libc) -> &'static str {
    match l {
        Libc::Gnu => "glibc",
        Libc::Musl => "musl",
    }
}

/// Checks one file; not an ELF file is fine.
pub fn check_file(path: &Path, triple: &Triple) -> Result<(), ElfError> {
    let Some(bytes) = read_elf(path).map_err(|source| ElfError::Read { path: path.to_path_buf(), source })? else {
        return Ok(());
    };
    let Some(found) = elf_target(&bytes) else { return Ok(()) };
    let wanted_machine = machine_of(triple);
    let mismatch = |found: String, wanted: String| ElfError::Mismatch {
        path: path.to_path_buf(),
        found,
        wanted,
        triple: triple.to_string(),
    };
    if found.machine != wanted_machine {
        return Err(mismatch(machine_name(found.machine), machine_name(wanted_machine)));
    }
    if let Some(libc) = found.libc
        && libc != triple.libc
    {
        let what = |l| format!("{} with {}", machine_name(found.machine), libc_name(l));
        return Err(mismatch(what(libc), what(triple.libc)));
    }
    // The loader's name says its machine: `ld-linux-x86-64.so.2`, `ld-musl-aarch64.so.1`.
    if let Some(interp) = &found.interpreter {
        let wanted = loader_name(triple);
        let name = Path::new(interp).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.starts_with(wanted) {
            let m = machine_name(found.machine);
            return Err(mismatch(format!("{m} with the loader {interp}"), format!("{m} with the loader {wanted}*")));
        }
    }
    Ok(())
}

/// The whole of `path` when it starts as an ELF file does; None, having read 4 bytes, when it
/// does not (most files in an application's priv/ are not: assets, scripts, data).
fn read_elf(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut bytes = vec![0u8; 4];
    match file.read_exact(&mut bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
        Ok(()) if bytes != b"\x7fELF" => return Ok(None),
        Ok(()) => {}
    }
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// The start of the dynamic loader's file name on `triple`.
fn loader_name(triple: &Triple) -> &'static str {
    match (triple.arch, triple.libc) {
        (Arch::X86_64, Libc::Gnu) => "ld-linux-x86-64.so.",
        (Arch::Aarch64, Libc::Gnu) => "ld-linux-aarch64.so.",
        (Arch::X86_64, Libc::Musl) => "ld-musl-x86_64.so.",
        (Arch::Aarch64, Libc::Musl) => "ld-musl-aarch64.so.",
    }
}

/// Checks one file of the release at `root`; a mismatch names the file by its path in the release
/// and what it is.
fn check_in_release(root: &Path, path: &Path, triple: &Triple) -> Result<(), ElfError> {
    match check_file(path, triple) {
        Err(ElfError::Mismatch { found, wanted, triple, .. }) => {
            let rel = path.strip_prefix(root).unwrap_or(path).to_path_buf();
            let in_erts = rel.components().next().is_some_and(|c| c.as_os_str().to_string_lossy().starts_with("erts-"));
            let what = match (in_erts, rel.file_name().and_then(|n| n.to_str())) {
                (true, Some("beam.smp")) => "the ERTS emulator",
                (true, _) => "an ERTS program",
                (false, Some(n)) if n.ends_with(".so") => "a NIF or driver (shared object)",
                (false, _) => "a program in an application's priv",
            };
            let detail = format!(
                "is for {found}, but the target triple {triple} needs {wanted}: build it for {triple} (or pass the \
                 --triple the release was built for)"
            );
            Err(ElfError::InRelease { path: rel, what, root: root.to_path_buf(), detail })
        }
        other => other,
    }
}

/// Checks `erts-*/bin/beam.smp` first (the message then names it), then every other regular file
/// in `erts-*/bin` and `lib/*/priv` of the release at `root`.
pub fn check_release(root: &Path, triple: &Triple) -> Result<(), ElfError> {
    let list = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
        v.sort();
        v
    };
    let erts_dirs: Vec<PathBuf> = list(root)
        .into_iter()
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("erts-")))
        .collect();
    for erts in &erts_dirs {
        let beam = erts.join("bin").join("beam.smp");
        if beam.is_file() {
            check_in_release(root, &beam, triple)?;
        }
    }
    let mut dirs: Vec<PathBuf> = erts_dirs.iter().map(|e| e.join("bin")).collect();
    dirs.extend(list(&root.join("lib")).into_iter().map(|app| app.join("priv")));
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        for entry in walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name().into_iter().flatten() {
            if entry.file_type().is_file() {
                check_in_release(root, entry.path(), triple)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Triple {
        s.parse().unwrap()
    }

    /// The ELF files of this machine: `sh` (an executable with an interpreter) and libc.
    fn host_sh() -> PathBuf {
        std::fs::canonicalize("/bin/sh").unwrap()
    }

    #[test]
    fn the_host_shell_matches_the_host_triple_only() {
        let sh = host_sh();
        let host = Triple::host().expect("a supported host");
        check_file(&sh, &host).unwrap();
        let other_arch = match host.arch {
            Arch::X86_64 => t("aarch64-unknown-linux-gnu"),
            Arch::Aarch64 => t("x86_64-unknown-linux-gnu"),
        };
        let e = check_file(&sh, &other_arch).unwrap_err().to_string();
        assert!(e.contains(&sh.display().to_string()) && e.contains("needs"), "{e}");
        let mut musl = host.clone();
        musl.libc = Libc::Musl;
        let e = check_file(&sh, &musl).unwrap_err().to_string();
        assert!(e.contains("with glibc") && e.contains("with musl"), "{e}");
    }

    /// A 64-bit little-endian ELF executable for `machine` with nothing but its header.
    fn bare_static_elf(machine: u16) -> Vec<u8> {
        let mut h = vec![0x7f, b'E', b'L', b'F', 2, 1, 1];
        h.resize(16, 0);
        for half in [2u16, machine] {
            h.extend_from_slice(&half.to_le_bytes());
        }
        h.extend_from_slice(&1u32.to_le_bytes());
        h.resize(52, 0);
        for half in [64u16, 56, 0, 64, 0, 0] {
            h.extend_from_slice(&half.to_le_bytes());
        }
        h
    }

    #[test]
    fn only_a_static_program_of_the_machine_counts_as_static_for_it() {
        let x86 = t("x86_64-unknown-linux-gnu");
        assert!(is_static_for(&bare_static_elf(EM_X86_64), &x86));
        assert!(!is_static_for(&bare_static_elf(EM_AARCH64), &x86));
        assert!(is_static_for(&bare_static_elf(EM_AARCH64), &t("aarch64-unknown-linux-musl")));
        let host = Triple::host().unwrap();
        assert!(!is_static_for(&std::fs::read(host_sh()).unwrap(), &host), "a dynamically linked program");
        assert!(!is_static_for(b"#!/bin/sh\n", &host));
    }

    #[test]
    fn non_elf_files_pass_and_beam_smp_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("erts-13.1.5/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("start.script"), "#!/bin/sh\n").unwrap();
        // Shorter than the ELF magic, and an ELF magic with nothing after it: not ELF files.
        std::fs::write(bin.join("empty"), "").unwrap();
        std::fs::write(bin.join("short"), "\x7fE").unwrap();
        std::fs::write(bin.join("magic-only"), "\x7fELF").unwrap();
        std::fs::copy(host_sh(), bin.join("beam.smp")).unwrap();
        let host = Triple::host().unwrap();
        check_release(dir.path(), &host).unwrap();
        let wrong = if host.arch == Arch::X86_64 { "aarch64-unknown-linux-gnu" } else { "x86_64-unknown-linux-gnu" };
        let e = check_release(dir.path(), &t(wrong)).unwrap_err().to_string();
        assert!(e.starts_with("erts-13.1.5/bin/beam.smp (the ERTS emulator) in the release at"), "{e}");
    }

    #[test]
    fn a_foreign_nif_in_priv_is_named_by_its_release_path() {
        let dir = tempfile::tempdir().unwrap();
        let priv_dir = dir.path().join("lib/zz-1.0/priv");
        std::fs::create_dir_all(&priv_dir).unwrap();
        std::fs::copy(host_sh(), priv_dir.join("zz_nif.so")).unwrap();
        let host = Triple::host().unwrap();
        check_release(dir.path(), &host).unwrap();
        let wrong = if host.arch == Arch::X86_64 { "aarch64-unknown-linux-gnu" } else { "x86_64-unknown-linux-gnu" };
        let e = check_release(dir.path(), &t(wrong)).unwrap_err().to_string();
        assert!(e.starts_with("lib/zz-1.0/priv/zz_nif.so (a NIF or driver (shared object))"), "{e}");
        assert!(
            e.contains(&format!("needs {}", if wrong.starts_with("aarch64") { "aarch64" } else { "x86_64" })),
            "{e}"
        );
    }

    #[test]
    fn the_loader_must_be_the_triples() {
        let host = Triple::host().unwrap();
        assert!(loader_name(&host).starts_with(if host.libc == Libc::Gnu { "ld-linux-" } else { "ld-musl-" }));
        let sh = elf_target(&std::fs::read(host_sh()).unwrap()).unwrap();
        let interp = sh.interpreter.expect("the host shell is dynamically linked");
        assert!(Path::new(&interp).file_name().unwrap().to_string_lossy().starts_with(loader_name(&host)), "{interp}");
    }
}
