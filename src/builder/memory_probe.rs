//! For tests that bound the memory some work uses: the test runs again as a child process of the
//! test binary (itself, by its exact name, with [`CHILD_ENV`] set), where nothing else runs, and
//! the child reports how far its peak resident set size (`VmHWM` in /proc/self/status) grew over
//! the work. Robust where an in-process measure is not: other tests' threads do not count.

use std::path::Path;
use std::process::Command;

/// Set in the child: the directory the work is about.
pub const CHILD_ENV: &str = "RELEASE_OCI_TEST_MEMORY_CHILD";
const MARK: &str = "memory-probe:";

/// This process's peak resident set size, in bytes.
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/self/status");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmHWM value");
    kib * 1024
}

/// In the child (when [`CHILD_ENV`] is set): runs `work` on its directory (it returns how many
/// bytes it produced), prints the peak's growth, and returns true. In the parent: false.
pub fn child(work: impl FnOnce(&Path) -> u64) -> bool {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return false };
    let before = peak_rss();
    let produced = work(Path::new(&dir));
    let grown = peak_rss().saturating_sub(before);
    println!("\n{MARK} {grown} {produced}");
    true
}

/// Runs the test `name` (its full path, e.g. `builder::upload::tests::NAME`) in a child process
/// about `dir`; returns how far its peak grew and how many bytes the work produced.
pub fn run_child(name: &str, dir: &Path) -> (u64, u64) {
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the child failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout
        .lines()
        .find_map(|l| l.split_once(MARK).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no result:\n{stdout}"));
    let mut numbers = line.split_whitespace().map(|n| n.parse::<u64>().expect("a number"));
    (numbers.next().expect("growth"), numbers.next().expect("bytes"))
}

/// A mix project in a temporary directory with a sparse file of `size` bytes at
/// `priv/static/big.bin` (no disk space taken).
pub fn project_with_large_file(size: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("mix.exs"), "defmodule Big.MixProject do end\n").expect("mix.exs");
    let assets = dir.path().join("priv/static");
    std::fs::create_dir_all(&assets).expect("priv/static");
    let big = std::fs::File::create(assets.join("big.bin")).expect("big.bin");
    big.set_len(size).expect("set_len");
    dir
}
