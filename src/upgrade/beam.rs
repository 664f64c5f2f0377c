//! What an appup draft needs to know of a compiled module, read from its `.beam` file (the IFF
//! container `FOR1 … BEAM` and its chunks): whether its code changed (a digest of the chunks
//! `beam_lib:md5/1` hashes: atoms, code, strings, imports, exports, funs, literals), what it
//! exports (`code_change/3`) and which behaviours it declares (`-behaviour(gen_server)`, Elixir's
//! `@behaviour GenServer` compiles to the same attribute).

use flate2::read::GzDecoder;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::io::Read;

/// The chunks `beam_lib:md5/1` hashes: a module whose chunks are the same has the same code.
const CODE_CHUNKS: &[&[u8; 4]] = &[b"Atom", b"AtU8", b"Code", b"StrT", b"ImpT", b"ExpT", b"FunT", b"LitT", b"Meth"];

#[derive(Debug, thiserror::Error)]
#[error("{module}: not a BEAM file we can read: {reason}")]
pub struct BeamError {
    pub module: String,
    pub reason: String,
}

/// One compiled module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    /// SHA-256 of the code chunks (what `beam_lib:md5/1` hashes, in the file's order).
    pub code: String,
    /// `{Function, Arity}`.
    pub exports: BTreeSet<(String, u32)>,
    /// The `behaviour` (and `behavior`) attributes, as atoms (`gen_server`, `supervisor`,
    /// `Elixir.GenServer` is not one: `use GenServer` declares `gen_server`).
    pub behaviours: Vec<String>,
}

impl Module {
    pub fn exports(&self, function: &str, arity: u32) -> bool {
        self.exports.contains(&(function.to_string(), arity))
    }

    pub fn has_behaviour(&self, b: &str) -> bool {
        self.behaviours.iter().any(|x| x == b)
    }
}

/// Reads the module `name` (for messages) from the bytes of its `.beam` file (gzip-compressed
/// ones too).
pub fn read(name: &str, bytes: &[u8]) -> Result<Module, BeamError> {
    let err = |reason: String| BeamError { module: name.to_string(), reason };
    let plain;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(bytes).read_to_end(&mut out).map_err(|e| err(format!("gzip: {e}")))?;
        plain = out;
        &plain[..]
    } else {
        bytes
    };
    let chunks = chunks(bytes).map_err(err)?;
    let mut h = Sha256::new();
    for (id, data) in &chunks {
        if CODE_CHUNKS.contains(id) {
            h.update(id.as_slice());
            h.update((data.len() as u64).to_be_bytes());
            h.update(data);
        }
    }
    let find = |want: &[u8; 4]| chunks.iter().find(|(id, _)| *id == want).map(|(_, d)| *d);
    let atoms = match (find(b"AtU8"), find(b"Atom")) {
        (Some(d), _) | (None, Some(d)) => atoms(d).map_err(err)?,
        (None, None) => return Err(err("no atom table".into())),
    };
    let exports = match find(b"ExpT") {
        Some(d) => exports(d, &atoms).map_err(err)?,
        None => BTreeSet::new(),
    };
    let behaviours = match find(b"Attr") {
        Some(d) => behaviours(d).map_err(err)?,
        None => Vec::new(),
    };
    Ok(Module { name: name.to_string(), code: hex::encode(h.finalize()), exports, behaviours })
}

/// A BEAM file's chunks: `(id, data)`.
type Chunks<'a> = Vec<(&'a [u8; 4], &'a [u8])>;

/// The chunks of a BEAM file, in order.
fn chunks(b: &[u8]) -> Result<Chunks<'_>, String> {
    if b.len() < 12 || &b[..4] != b"FOR1" || &b[8..12] != b"BEAM" {
        return Err("no FOR1/BEAM header".into());
    }
    let mut out = Vec::new();
    let mut i = 12;
    while i + 8 <= b.len() {
        let id: &[u8; 4] = b[i..i + 4].try_into().map_err(|_| "short chunk id")?;
        let len = u32::from_be_bytes(b[i + 4..i + 8].try_into().map_err(|_| "short chunk size")?) as usize;
        let start = i + 8;
        let end = start.checked_add(len).filter(|e| *e <= b.len()).ok_or("a chunk runs past the end")?;
        out.push((id, &b[start..end]));
        i = start + len.div_ceil(4) * 4;
    }
    Ok(out)
}

fn u32_at(d: &[u8], at: usize) -> Result<u32, String> {
    d.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok_or_else(|| "truncated chunk".into())
}

/// The atom table (index 1 is the module's name). A negative count (OTP 26+) means the lengths
/// are in the compact term encoding.
fn atoms(d: &[u8]) -> Result<Vec<String>, String> {
    let count = u32_at(d, 0)? as i32;
    let (count, compact) = if count < 0 { (count.unsigned_abs() as usize, true) } else { (count as usize, false) };
    let mut out = Vec::with_capacity(count);
    let mut i = 4;
    for _ in 0..count {
        let len = if compact {
            let (len, used) = compact_len(&d[i.min(d.len())..])?;
            i += used;
            len
        } else {
            let len = *d.get(i).ok_or("truncated atom table")? as usize;
            i += 1;
            len
        };
        let name = d.get(i..i + len).ok_or("truncated atom table")?;
        out.push(String::from_utf8_lossy(name).into_owned());
        i += len;
    }
    Ok(out)
}

/// An unsigned value in the compact term encoding (the tag bits ignored): (value, bytes used).
fn compact_len(d: &[u8]) -> Result<(usize, usize), String> {
    let b = *d.first().ok_or("truncated atom length")? as usize;
    if b & 0x08 == 0 {
        Ok((b >> 4, 1))
    } else if b & 0x10 == 0 {
        let next = *d.get(1).ok_or("truncated atom length")? as usize;
        Ok((((b >> 5) << 8) | next, 2))
    } else {
        let n = (b >> 5) + 2;
        let bytes = d.get(1..1 + n).ok_or("truncated atom length")?;
        Ok((bytes.iter().fold(0usize, |acc, x| (acc << 8) | *x as usize), 1 + n))
    }
}

fn exports(d: &[u8], atoms: &[String]) -> Result<BTreeSet<(String, u32)>, String> {
    let count = u32_at(d, 0)? as usize;
    let mut out = BTreeSet::new();
    for k in 0..count {
        let at = 4 + k * 12;
        let (f, arity) = (u32_at(d, at)? as usize, u32_at(d, at + 4)?);
        let name = atoms.get(f.wrapping_sub(1)).ok_or("an export names no atom")?;
        out.insert((name.clone(), arity));
    }
    Ok(out)
}

/// The `behaviour`/`behavior` attributes of the `Attr` chunk (`term_to_binary` of the attribute
/// list).
fn behaviours(d: &[u8]) -> Result<Vec<String>, String> {
    let mut r = Etf { d, i: 0 };
    if r.byte()? != 131 {
        return Err("the attributes are not in the external term format".into());
    }
    let mut out = Vec::new();
    if let Term::List(attrs) = r.term()? {
        for a in attrs {
            if let Term::Tuple(kv) = a
                && let [Term::Atom(k), Term::List(vs)] = kv.as_slice()
                && (k == "behaviour" || k == "behavior")
            {
                out.extend(vs.iter().filter_map(|v| if let Term::Atom(a) = v { Some(a.clone()) } else { None }));
            }
        }
    }
    Ok(out)
}

/// The few shapes of the external term format attributes hold; the rest is skipped.
#[derive(Debug)]
enum Term {
    Atom(String),
    List(Vec<Term>),
    Tuple(Vec<Term>),
    Other,
}

struct Etf<'a> {
    d: &'a [u8],
    i: usize,
}

impl Etf<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let s = self.d.get(self.i..self.i + n).ok_or("truncated term")?;
        self.i += n;
        Ok(s)
    }
    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<usize, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }
    fn u32(&mut self) -> Result<usize, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn atom(&mut self, len: usize) -> Result<Term, String> {
        Ok(Term::Atom(String::from_utf8_lossy(self.take(len)?).into_owned()))
    }
    fn items(&mut self, n: usize) -> Result<Vec<Term>, String> {
        (0..n).map(|_| self.term()).collect()
    }

    fn term(&mut self) -> Result<Term, String> {
        let tag = self.byte()?;
        match tag {
            97 => self.take(1).map(|_| Term::Other),
            98 => self.take(4).map(|_| Term::Other),
            70 => self.take(8).map(|_| Term::Other),
            110 => {
                let n = self.byte()? as usize;
                self.take(n + 1).map(|_| Term::Other)
            }
            111 => {
                let n = self.u32()?;
                self.take(n + 1).map(|_| Term::Other)
            }
            100 | 118 => {
                let n = self.u16()?;
                self.atom(n)
            }
            115 | 119 => {
                let n = self.byte()? as usize;
                self.atom(n)
            }
            104 => {
                let n = self.byte()? as usize;
                self.items(n).map(Term::Tuple)
            }
            105 => {
                let n = self.u32()?;
                self.items(n).map(Term::Tuple)
            }
            106 => Ok(Term::List(Vec::new())),
            107 => {
                let n = self.u16()?;
                self.take(n).map(|_| Term::Other)
            }
            108 => {
                let n = self.u32()?;
                let items = self.items(n)?;
                self.term()?; // the tail
                Ok(Term::List(items))
            }
            109 => {
                let n = self.u32()?;
                self.take(n).map(|_| Term::Other)
            }
            77 => {
                let n = self.u32()?;
                self.take(n + 1).map(|_| Term::Other)
            }
            116 => {
                let n = self.u32()?;
                self.items(2 * n).map(|_| Term::Other)
            }
            other => Err(format!("term tag {other} in the attributes")),
        }
    }
}

/// A minimal BEAM file, for tests: the module `name` with `exports` (`(function, arity)`),
/// `behaviours`, and `code` standing for its compiled code.
#[cfg(test)]
pub(crate) fn fake_beam(name: &str, exports: &[(&str, u32)], behaviours: &[&str], code: &[u8]) -> Vec<u8> {
    let mut atoms: Vec<String> = vec![name.to_string()];
    for (f, _) in exports {
        if !atoms.iter().any(|a| a == f) {
            atoms.push(f.to_string());
        }
    }
    let mut atu8 = (atoms.len() as u32).to_be_bytes().to_vec();
    for a in &atoms {
        atu8.push(a.len() as u8);
        atu8.extend_from_slice(a.as_bytes());
    }
    let mut expt = (exports.len() as u32).to_be_bytes().to_vec();
    for (i, (f, arity)) in exports.iter().enumerate() {
        let idx = atoms.iter().position(|a| a == f).unwrap() as u32 + 1;
        for v in [idx, *arity, i as u32 + 2] {
            expt.extend_from_slice(&v.to_be_bytes());
        }
    }
    // [{vsn,[1]},{behaviour,[B...]}]
    let small_atom = |s: &str| {
        let mut v = vec![119, s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    };
    let mut attr = vec![131, 108, 0, 0, 0, 2];
    attr.extend_from_slice(&[104, 2]);
    attr.extend(small_atom("vsn"));
    attr.extend_from_slice(&[108, 0, 0, 0, 1, 110, 1, 0, 1, 106]);
    attr.extend_from_slice(&[104, 2]);
    attr.extend(small_atom("behaviour"));
    if behaviours.is_empty() {
        attr.push(106);
    } else {
        attr.push(108);
        attr.extend_from_slice(&(behaviours.len() as u32).to_be_bytes());
        for b in behaviours {
            attr.extend(small_atom(b));
        }
        attr.push(106);
    }
    attr.push(106);
    let mut body = b"BEAM".to_vec();
    for (id, data) in [(b"AtU8", &atu8), (b"Code", &code.to_vec()), (b"ExpT", &expt), (b"Attr", &attr)] {
        body.extend_from_slice(id);
        body.extend_from_slice(&(data.len() as u32).to_be_bytes());
        body.extend_from_slice(data);
        body.resize(body.len().div_ceil(4) * 4, 0);
    }
    let mut out = b"FOR1".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exports_behaviours_and_a_code_digest() {
        let b = fake_beam("Elixir.Counter.Server", &[("code_change", 3), ("init", 1)], &["gen_server"], b"code-1");
        let m = read("Elixir.Counter.Server", &b).unwrap();
        assert!(m.exports("code_change", 3) && m.exports("init", 1) && !m.exports("init", 2));
        assert_eq!(m.behaviours, ["gen_server"]);
        let other = read("x", &fake_beam("Elixir.Counter.Server", &[("init", 1)], &[], b"code-2")).unwrap();
        assert_ne!(m.code, other.code);
        let same = read("x", &fake_beam("Elixir.Counter.Server", &[("code_change", 3), ("init", 1)], &[], b"code-1"));
        // The attributes (behaviours, vsn) are not code: beam_lib:md5 leaves them out too.
        assert_eq!(m.code, same.unwrap().code);
    }

    #[test]
    fn gzipped_beams_are_read_and_garbage_is_an_error() {
        let b = fake_beam("m", &[("f", 0)], &["supervisor"], b"c");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &b).unwrap();
        let m = read("m", &gz.finish().unwrap()).unwrap();
        assert_eq!(m.behaviours, ["supervisor"]);
        let e = read("m", b"not a beam").unwrap_err().to_string();
        assert!(e.contains("m: not a BEAM file") && e.contains("FOR1"), "{e}");
    }

    #[test]
    fn compact_atom_lengths_of_otp_26() {
        assert_eq!(compact_len(&[0x50]).unwrap(), (5, 1));
        assert_eq!(compact_len(&[0x28, 0x10]).unwrap(), (0x110, 2));
    }
}
