//! `settle_mtimes` (assemble.sh): a same-size edit copied into the build cache within the second
//! of the last compile, or in the first moments of the next, is given an mtime Mix and rebar3
//! see as after that compile.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

const ASSEMBLE: &str = include_str!("assemble.sh");

/// The function's text, cut out of the script.
fn settle_mtimes() -> &'static str {
    let start = ASSEMBLE.find("settle_mtimes() {").expect("settle_mtimes in assemble.sh");
    let len = ASSEMBLE[start..].find("\n}\n").expect("the end of settle_mtimes") + 3;
    &ASSEMBLE[start..start + len]
}

/// A build cache whose last compile ended by the second `last`, with `lib/a.ex` copied at
/// `copy_started` and stamped `stamp`; runs the function and returns the file's mtime and the log.
fn settle(last: i64, copy_started: i64, stamp: i64) -> (i64, String) {
    let cache = tempfile::tempdir().unwrap();
    let src = cache.path().join("src");
    fs::create_dir_all(src.join("_build")).unwrap();
    fs::create_dir_all(src.join("lib")).unwrap();
    fs::write(src.join("lib/a.ex"), "a").unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(stamp as u64);
    fs::File::options().write(true).open(src.join("lib/a.ex")).unwrap().set_modified(when).unwrap();
    fs::write(cache.path().join(".built"), format!("{last}\n")).unwrap();
    fs::write(cache.path().join(".sync.copied"), "./lib/a.ex\n").unwrap();
    let script = format!(
        "set -eu\nsay() {{ printf '==> %s\\n' \"$*\" >&2; }}\ndie() {{ printf 'error: %s\\n' \"$*\" >&2; exit 1; }}\n\
         {}\ncopy_started={copy_started} locked_at=0\nsettle_mtimes \"$CACHE/src\" \"$CACHE/.sync.copied\"\n",
        settle_mtimes()
    );
    let done = Command::new("sh").arg("-c").arg(script).env("CACHE", cache.path()).output().unwrap();
    let log = String::from_utf8_lossy(&done.stderr).to_string();
    assert!(done.status.success(), "{log}");
    (fs::metadata(src.join("lib/a.ex")).unwrap().mtime(), log)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn a_copy_within_the_second_of_the_last_compile_gets_a_later_second() {
    let last = now();
    let (mtime, log) = settle(last, last, last);
    assert!(mtime > last, "mtime {mtime}, last compile {last}\n{log}");
    assert!(log.contains("copied within the second of the last compile"), "{log}");
}

/// The kernel stamps files from a coarse clock a few milliseconds behind `date`: a copy that
/// `date` says started in the next second may carry the last compile's.
#[test]
fn a_copy_in_the_next_second_stamped_with_the_last_one_gets_a_later_second() {
    let last = now() - 1;
    let (mtime, log) = settle(last, last + 1, last);
    assert!(mtime > last, "mtime {mtime}, last compile {last}\n{log}");
}

#[test]
fn a_copy_two_seconds_later_is_left_as_it_is() {
    let last = now() - 5;
    let (mtime, log) = settle(last, last + 2, last + 2);
    assert_eq!(mtime, last + 2, "{log}");
    assert!(!log.contains("copied within"), "{log}");
}
