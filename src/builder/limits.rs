//! What the builder container may use: memory (`--memory`, the engine's cgroup limit, swap
//! included) and processes (`--pids-limit`). Its time is `--timeout` ([`super::BuildRequest`]).
//! See docs/builder.md for these and the container's capabilities and user.

/// `--memory`'s default: room for large projects (`examples/hello_web` builds in 512m).
pub const DEFAULT_MEMORY: u64 = 4 << 30;
/// `--pids-limit`'s default: the BEAM's threads, mix's ports and a few shells fit many times over.
pub const DEFAULT_PIDS_LIMIT: i64 = 4096;
/// The engine refuses less than this (6 MiB).
const MIN_MEMORY: u64 = 6 << 20;

/// The builder container's memory and process limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory, swap included (the engine's `Memory` and `MemorySwap`).
    pub memory: u64,
    /// Processes and threads (the engine's `PidsLimit`).
    pub pids: i64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { memory: DEFAULT_MEMORY, pids: DEFAULT_PIDS_LIMIT }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(
        "{text:?} is not a size: write a whole number with a unit, b, k, m or g (KiB, MiB, GiB), \
         e.g. 512m or 4g"
    )]
    NotASize { text: String },
    #[error("{text:?} is less than the 6m the engine allows a container: give the build more memory")]
    TooSmall { text: String },
    #[error("{value} is not a number of processes: give at least 1")]
    Pids { value: i64 },
}

impl Limits {
    /// The limits from `--memory` and `--pids-limit` (None: the defaults).
    pub fn from_flags(memory: Option<&str>, pids: Option<i64>) -> Result<Limits, LimitError> {
        let memory = memory.map(parse_memory).transpose()?.unwrap_or(DEFAULT_MEMORY);
        let pids = match pids {
            Some(n) if n < 1 => return Err(LimitError::Pids { value: n }),
            Some(n) => n,
            None => DEFAULT_PIDS_LIMIT,
        };
        Ok(Limits { memory, pids })
    }
}

/// `512m`, `2g`, `4G`, `1024k`, `536870912` (bytes), with `b`/`ib` after the unit allowed
/// (`512mb`, `2GiB`): binary units, as the engine reads them.
pub fn parse_memory(text: &str) -> Result<u64, LimitError> {
    let t = text.trim().to_ascii_lowercase();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let not_a_size = || LimitError::NotASize { text: text.to_string() };
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return Err(not_a_size()),
    };
    let n: u64 = number.parse().map_err(|_| not_a_size())?;
    let bytes = n.checked_mul(1 << shift).filter(|b| *b <= i64::MAX as u64).ok_or_else(not_a_size)?;
    if bytes < MIN_MEMORY {
        return Err(LimitError::TooSmall { text: text.to_string() });
    }
    Ok(bytes)
}

/// `bytes` as the flag would take it: `4g`, `512m`, or bytes.
pub fn format_memory(bytes: u64) -> String {
    match bytes {
        b if b % (1 << 30) == 0 => format!("{}g", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}m", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}k", b >> 10),
        b => b.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512m"), Ok(512 << 20));
        assert_eq!(parse_memory("2g"), Ok(2 << 30));
        assert_eq!(parse_memory(" 4G "), Ok(4 << 30));
        assert_eq!(parse_memory("10240k"), Ok(10 << 20));
        assert_eq!(parse_memory("1024k"), Err(LimitError::TooSmall { text: "1024k".into() }));
        assert_eq!(parse_memory("8192kb"), Ok(8 << 20));
        assert_eq!(parse_memory("2GiB"), Ok(2 << 30));
        assert_eq!(parse_memory("536870912"), Ok(512 << 20));
        for bad in ["", "g", "2x", "1.5g", "-1g", "2 g", "99999999999g"] {
            assert_eq!(parse_memory(bad), Err(LimitError::NotASize { text: bad.into() }), "{bad:?}");
        }
        let e = parse_memory("4").unwrap_err().to_string();
        assert!(e.contains("less than the 6m"), "{e}");
        assert_eq!(format_memory(4 << 30), "4g");
        assert_eq!(format_memory(1536 << 20), "1536m");
    }

    #[test]
    fn limits_from_flags() {
        assert_eq!(Limits::from_flags(None, None), Ok(Limits { memory: 4 << 30, pids: 4096 }));
        assert_eq!(Limits::from_flags(Some("512m"), Some(100)), Ok(Limits { memory: 512 << 20, pids: 100 }));
        assert_eq!(Limits::from_flags(None, Some(0)), Err(LimitError::Pids { value: 0 }));
    }
}
