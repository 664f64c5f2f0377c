//! CPU and memory quantities as Kubernetes writes them, checked before they reach a manifest
//! (the API server would reject a bad one only at `kubectl apply`).

use super::K8sError;
use std::str::FromStr;

/// A CPU quantity: whole or fractional cores (`2`, `0.5`) or millicores (`500m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpu {
    text: String,
    millis: u64,
}

impl Cpu {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn millis(&self) -> u64 {
        self.millis
    }

    /// Schedulers for a VM limited to this much CPU: the limit rounded up, at least 1. More
    /// schedulers than the quota only add contention and throttling.
    pub fn schedulers(&self) -> u64 {
        self.millis.div_ceil(1000).max(1)
    }
}

impl FromStr for Cpu {
    type Err = K8sError;

    fn from_str(s: &str) -> Result<Cpu, K8sError> {
        let bad = || K8sError::Cpu(s.to_string());
        let millis = match s.strip_suffix('m') {
            Some(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => m.parse::<u64>().map_err(|_| bad())?,
            Some(_) => return Err(bad()),
            None => {
                let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
                let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
                if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) || frac.len() > 3 {
                    return Err(bad());
                }
                let w: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
                let f: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<3}").parse().map_err(|_| bad())? };
                w.checked_mul(1000).and_then(|w| w.checked_add(f)).ok_or_else(bad)?
            }
        };
        if millis == 0 {
            return Err(bad());
        }
        Ok(Cpu { text: s.to_string(), millis })
    }
}

/// A memory quantity: a whole number of bytes with an optional binary (`Ki` … `Ei`) or decimal
/// (`k`, `M` … `E`) suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memory {
    text: String,
}

impl Memory {
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

const MEMORY_SUFFIXES: &[&str] = &["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", ""];

impl FromStr for Memory {
    type Err = K8sError;

    fn from_str(s: &str) -> Result<Memory, K8sError> {
        let ok = MEMORY_SUFFIXES.iter().any(|suffix| {
            s.strip_suffix(suffix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n.bytes().any(|b| b != b'0'))
        });
        if ok { Ok(Memory { text: s.to_string() }) } else { Err(K8sError::Memory(s.to_string())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities_and_schedulers() {
        let cpu = |s: &str| s.parse::<Cpu>().map(|c| (c.millis(), c.schedulers()));
        assert_eq!(cpu("500m").unwrap(), (500, 1));
        assert_eq!(cpu("2").unwrap(), (2000, 2));
        assert_eq!(cpu("1.5").unwrap(), (1500, 2));
        assert_eq!(cpu("0.25").unwrap(), (250, 1));
        assert_eq!(cpu(".5").unwrap(), (500, 1));
        assert_eq!(cpu("2001m").unwrap(), (2001, 3));
        for bad in ["", "0", "0m", "m", "1.2345", "-1", "1e3", "two", "1.5m", "1 "] {
            assert!(cpu(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!("1.5".parse::<Cpu>().unwrap().as_str(), "1.5");
    }

    #[test]
    fn memory_quantities() {
        for good in ["512Mi", "2Gi", "1000000", "1G", "64k"] {
            assert_eq!(good.parse::<Memory>().unwrap().as_str(), good);
        }
        for bad in ["", "Mi", "0Mi", "1.5Gi", "512MB", "512mi", "-1Gi", "1 Gi"] {
            assert!(bad.parse::<Memory>().is_err(), "{bad:?} accepted");
        }
    }
}
