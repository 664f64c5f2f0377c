use super::*;

/// A minimal ELF file: the header, `phnum` program headers (the last one a PT_NOTE over
/// `notes`, placed at `notes_at`), nothing else of meaning.
fn elf(wide: bool, little: bool, notes: &[u8], notes_at: usize) -> Vec<u8> {
    let (ehsize, phentsize) = if wide { (64, 56) } else { (52, 32) };
    let mut b = vec![0u8; notes_at.max(ehsize + 2 * phentsize)];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = if wide { 2 } else { 1 };
    b[5] = if little { 1 } else { 2 };
    let put = |b: &mut Vec<u8>, at: usize, v: u64, n: usize| {
        let bytes = if little { v.to_le_bytes() } else { v.to_be_bytes() };
        let bytes = if little { &bytes[..n] } else { &bytes[8 - n..] };
        b[at..at + n].copy_from_slice(bytes);
    };
    let ph = ehsize as u64;
    if wide {
        put(&mut b, 32, ph, 8);
        put(&mut b, 54, phentsize as u64, 2);
        put(&mut b, 56, 2, 2);
    } else {
        put(&mut b, 28, ph, 4);
        put(&mut b, 42, phentsize as u64, 2);
        put(&mut b, 44, 2, 2);
    }
    // The first program header: PT_LOAD (1); the second: PT_NOTE.
    let second = ehsize + phentsize;
    put(&mut b, ehsize, 1, 4);
    put(&mut b, second, u64::from(PT_NOTE), 4);
    if wide {
        put(&mut b, second + 8, notes_at as u64, 8);
        put(&mut b, second + 32, notes.len() as u64, 8);
    } else {
        put(&mut b, second + 4, notes_at as u64, 4);
        put(&mut b, second + 16, notes.len() as u64, 4);
    }
    b.resize(notes_at, 0);
    b.extend_from_slice(notes);
    b
}

fn note(little: bool, name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
    let word = |v: u32| if little { v.to_le_bytes() } else { v.to_be_bytes() };
    let mut n = Vec::new();
    n.extend_from_slice(&word(name.len() as u32));
    n.extend_from_slice(&word(desc.len() as u32));
    n.extend_from_slice(&word(kind));
    n.extend_from_slice(name);
    n.resize(n.len().div_ceil(4) * 4, 0);
    n.extend_from_slice(desc);
    n.resize(n.len().div_ceil(4) * 4, 0);
    n
}

fn identity_of(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exe");
    std::fs::write(&path, bytes).unwrap();
    identity(&path).unwrap()
}

fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

const ID: &[u8] =
    &[0xbe, 0xac, 0x21, 0x48, 0x15, 0x4c, 0xf5, 0x0b, 0xb2, 0xcf, 0xb0, 0xfc, 0x88, 0xcd, 0x41, 0x19, 0x55];

#[test]
fn the_gnu_build_id_names_an_elf_file_of_any_class_and_byte_order() {
    for (wide, little) in [(true, true), (true, false), (false, true), (false, false)] {
        // An ABI tag note first (another type), then the build ID: the build ID is found.
        let mut notes = note(little, b"GNU\0", 1, &[0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        notes.extend(note(little, b"GNU\0", NT_GNU_BUILD_ID, ID));
        let file = elf(wide, little, &notes, 0x400);
        assert_eq!(identity_of(&file), format!("build-id:{}", hex::encode(ID)), "wide {wide}, little {little}");
    }
}

#[test]
fn notes_past_the_first_pages_are_read_where_they_are() {
    let notes = note(true, b"GNU\0", NT_GNU_BUILD_ID, ID);
    let file = elf(true, true, &notes, HEAD + 4096);
    assert_eq!(identity_of(&file), format!("build-id:{}", hex::encode(ID)));
}

#[test]
fn without_a_build_id_the_file_is_hashed() {
    // A note of another owner with the build ID's type, an ELF without notes, and no ELF at all.
    let other = elf(true, true, &note(true, b"Go\0\0", NT_GNU_BUILD_ID, ID), 0x400);
    let empty = elf(true, true, &[], 0x400);
    let script = b"#!/bin/sh\necho not ELF\n".to_vec();
    let truncated = other[..40].to_vec();
    for bytes in [other, empty, script, truncated] {
        assert_eq!(identity_of(&bytes), sha256_of(&bytes));
    }
}

#[test]
fn a_changed_build_id_changes_the_identity() {
    let mut other_id = ID.to_vec();
    other_id[0] ^= 1;
    let a = identity_of(&elf(true, true, &note(true, b"GNU\0", NT_GNU_BUILD_ID, ID), 0x400));
    let b = identity_of(&elf(true, true, &note(true, b"GNU\0", NT_GNU_BUILD_ID, &other_id), 0x400));
    assert_ne!(a, b);
}
