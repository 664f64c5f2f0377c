//! What names this executable's code on any machine (the registry cache's fingerprint has it: a
//! result is reused only by the same tool): the linker's GNU build ID when the executable has one
//! (`.note.gnu.build-id`, a hash the linker takes over the whole output; a few pages are read),
//! else the sha256 of the file (about 70 ms for a 140 MB executable with debug info: that is what
//! a fresh CI runner paid on every build before the build ID was read). See docs/build-cache.md.

use sha2::Digest as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes read from the start of the file for the ELF and program headers.
const HEAD: usize = 64 * 1024;
/// A note segment bigger than this is not read (build ID notes are tens of bytes).
const MAX_NOTES: u64 = 64 * 1024;
const PT_NOTE: u32 = 4;
const NT_GNU_BUILD_ID: u32 = 3;

/// `build-id:HEX`, or `sha256:HEX` of the file when it has no build ID.
pub fn identity(exe: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(exe)?;
    if let Some(id) = build_id(&mut file)? {
        return Ok(format!("build-id:{}", hex::encode(id)));
    }
    file.seek(SeekFrom::Start(0))?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut file, &mut h)?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// The GNU build ID of the ELF file `f`; None when it is not ELF or has none.
fn build_id<F: Read + Seek>(f: &mut F) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(HEAD);
    f.by_ref().take(HEAD as u64).read_to_end(&mut head)?;
    let Some(elf) = Header::parse(&head) else { return Ok(None) };
    for i in 0..elf.phnum {
        let Some((kind, offset, size)) = elf.program_header(&head, i) else { return Ok(None) };
        if kind != PT_NOTE || size > MAX_NOTES {
            continue;
        }
        let notes = match head.get(offset as usize..(offset + size) as usize) {
            Some(n) => n.to_vec(),
            None => {
                let mut n = vec![0; size as usize];
                f.seek(SeekFrom::Start(offset))?;
                f.read_exact(&mut n)?;
                n
            }
        };
        if let Some(id) = elf.gnu_build_id(&notes) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// What the ELF header says about the program headers.
struct Header {
    wide: bool,
    little: bool,
    phoff: u64,
    phentsize: u64,
    phnum: u64,
}

impl Header {
    fn parse(b: &[u8]) -> Option<Header> {
        if b.get(..4)? != b"\x7fELF" {
            return None;
        }
        let wide = match b.get(4)? {
            1 => false,
            2 => true,
            _ => return None,
        };
        let little = match b.get(5)? {
            1 => true,
            2 => false,
            _ => return None,
        };
        let mut h = Header { wide, little, phoff: 0, phentsize: 0, phnum: 0 };
        let (phoff, after) = if wide { (h.u64(b, 32)?, 54) } else { (h.u32(b, 28)? as u64, 42) };
        h.phoff = phoff;
        h.phentsize = h.u16(b, after)? as u64;
        h.phnum = h.u16(b, after + 2)? as u64;
        Some(h)
    }

    /// The type, file offset and file size of program header `i`.
    fn program_header(&self, b: &[u8], i: u64) -> Option<(u32, u64, u64)> {
        let at = usize::try_from(self.phoff.checked_add(i.checked_mul(self.phentsize)?)?).ok()?;
        let kind = self.u32(b, at)?;
        if self.wide {
            Some((kind, self.u64(b, at + 8)?, self.u64(b, at + 32)?))
        } else {
            Some((kind, self.u32(b, at + 4)? as u64, self.u32(b, at + 16)? as u64))
        }
    }

    /// The description of the first `GNU` note of type build ID in `notes`.
    fn gnu_build_id(&self, notes: &[u8]) -> Option<Vec<u8>> {
        let pad = |n: usize| n.checked_add(3).map(|n| n & !3);
        let mut at = 0;
        while at + 12 <= notes.len() {
            let (namesz, descsz) = (self.u32(notes, at)? as usize, self.u32(notes, at + 4)? as usize);
            let kind = self.u32(notes, at + 8)?;
            let name = notes.get(at + 12..at + 12 + namesz)?;
            let desc_at = at + 12 + pad(namesz)?;
            let desc = notes.get(desc_at..desc_at.checked_add(descsz)?)?;
            if kind == NT_GNU_BUILD_ID && name == b"GNU\0" && !desc.is_empty() {
                return Some(desc.to_vec());
            }
            at = desc_at + pad(descsz)?;
        }
        None
    }

    fn u16(&self, b: &[u8], at: usize) -> Option<u16> {
        let a: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.little { u16::from_le_bytes(a) } else { u16::from_be_bytes(a) })
    }

    fn u32(&self, b: &[u8], at: usize) -> Option<u32> {
        let a: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.little { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) })
    }

    fn u64(&self, b: &[u8], at: usize) -> Option<u64> {
        let a: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
        Some(if self.little { u64::from_le_bytes(a) } else { u64::from_be_bytes(a) })
    }
}

#[cfg(test)]
mod tests;
