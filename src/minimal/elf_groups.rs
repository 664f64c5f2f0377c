//! The groups of a release's ELF files that ask the dynamic loader the same question, made on the
//! host: what `src/builder/elf_groups.pl` prints in the builder, for a gathering that runs under
//! emulation ([`crate::builder::cross::gather`]), where starting perl alone costs a quarter of a
//! second. `minimal_base.sh` runs `ldd` once a group and takes these groups only when they list
//! exactly its ELF files in its order; else it asks perl.
//!
//! The key is the perl script's, with the glibc-or-musl part always in (the host does not know
//! whether the target has musl's loader; the part only ever splits a group, which costs a loader
//! run, never a wrong answer): machine, class, byte order and type; the program interpreter; the
//! dynamic entries NEEDED, SONAME, RPATH, RUNPATH, AUXILIARY, FILTER (strings) and FLAGS, FLAGS_1
//! (numbers) in their order; and the file's directory when a string has a `$` or a NEEDED a `/`.
//! A file this cannot read or parse is a group of its own. A test holds the two to one partition.

use super::ElfListing;
use goblin::elf::Elf;
use goblin::elf::dynamic::{DT_FLAGS, DT_FLAGS_1, DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The dynamic entries of the GNU loader's filters (not in goblin).
const DT_AUXILIARY: u64 = 0x7fff_fffd;
const DT_FILTER: u64 = 0x7fff_ffff;

/// `GROUP<TAB>PATH` a line for each file of `listing` (paths relative to `rel`), in its order.
pub fn groups(rel: &Path, listing: &ElfListing) -> Vec<u8> {
    let mut known: HashMap<String, usize> = HashMap::new();
    let mut alone = 0;
    let mut out = Vec::new();
    for path in listing.paths() {
        let key = std::fs::read(rel.join(OsStr::from_bytes(path))).ok().and_then(|bytes| key(&bytes, path));
        let id = match key {
            Some(key) => {
                let next = known.len() + 1;
                format!("g{}", known.entry(key).or_insert(next))
            }
            None => {
                alone += 1;
                format!("u{alone}")
            }
        };
        out.extend_from_slice(id.as_bytes());
        out.push(b'\t');
        out.extend_from_slice(path);
        out.push(b'\n');
    }
    out
}

/// What the loader's answer for this file depends on (`path`: relative to the release).
fn key(bytes: &[u8], path: &[u8]) -> Option<String> {
    let elf = Elf::parse(bytes).ok()?;
    let h = &elf.header;
    let data = h.e_ident[goblin::elf::header::EI_DATA];
    let class = h.e_ident[goblin::elf::header::EI_CLASS];
    let mut parts = vec![
        format!("machine={} class={class} data={data} type={}", h.e_machine, h.e_type),
        format!("interp={}", elf.interpreter.unwrap_or("-")),
    ];
    let mut origin = false;
    if let Some(dynamic) = &elf.dynamic {
        parts.push("dynamic".into());
        for d in &dynamic.dyns {
            let tag = d.d_tag;
            if [DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH, DT_AUXILIARY, DT_FILTER].contains(&tag) {
                let s = elf.dynstrtab.get_at(usize::try_from(d.d_val).ok()?)?;
                origin |= s.contains('$') || (tag == DT_NEEDED && s.contains('/'));
                parts.push(format!("{tag}={s}"));
            } else if tag == DT_FLAGS || tag == DT_FLAGS_1 {
                parts.push(format!("{tag}={}", d.d_val));
            }
        }
    }
    let mentions = |needle: &[u8]| memchr::memmem::find(bytes, needle).is_some();
    parts.push(format!("glibc={}", u8::from(mentions(b"libc.so.6") || mentions(b"ld-linux"))));
    if origin {
        let dir = path.iter().rposition(|b| *b == b'/').map_or(&path[..0], |i| &path[..i]);
        parts.push(format!("dir={}", String::from_utf8_lossy(dir)));
    }
    Some(parts.join("\n"))
}

#[cfg(test)]
#[path = "elf_groups_tests.rs"]
mod tests;
