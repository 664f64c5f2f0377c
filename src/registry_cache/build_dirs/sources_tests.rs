//! The sources restored with their listed mtimes (a project's own `src/` too), and when the app
//! build is too new for this machine's clock to restore.

use super::tests::{sample_volume, store};
use super::*;
use std::path::PathBuf;

#[test]
fn unchanged_sources_get_their_listed_mtime_and_changed_ones_are_left_to_the_sync() {
    let project = tempfile::tempdir().unwrap();
    let root = project.path();
    std::fs::create_dir_all(root.join("lib")).unwrap();
    std::fs::write(root.join("mix.exs"), "defmodule Hello.MixProject do end").unwrap();
    std::fs::write(root.join("lib/hello.ex"), "defmodule Hello do :changed end").unwrap();
    std::fs::write(root.join("lib/new.ex"), "defmodule New do end").unwrap();
    std::fs::write(root.join("run.sh"), "#!/bin/sh").unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/hello_erl.erl"), "-module(hello_erl).").unwrap();
    let (_d, store) = store();
    let req = SplitRequest { deps: false, app: true, ..Default::default() };
    let listing = split::split(sample_volume().as_slice(), &req, &store).unwrap().listing;
    // run.sh lost its exec bit here: not the listed file.
    let files: Vec<PathBuf> =
        ["lib/hello.ex", "lib/new.ex", "mix.exs", "run.sh", "src/hello_erl.erl"].iter().map(PathBuf::from).collect();
    let (tar, found) = restore_sources(root, &files, &listing, Vec::new()).unwrap();
    assert_eq!(found, RestoredSources { unchanged: 2, files: 5 });
    let mut a = tar::Archive::new(tar.as_slice());
    let entries: Vec<(String, u64, u32)> = a
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path().unwrap().to_string_lossy().into_owned(), e.header().mtime().unwrap(), e.header().mode().unwrap())
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("src/mix.exs".to_string(), 1_700_000_000, 0o644),
            ("src/src/hello_erl.erl".to_string(), 1_700_000_050, 0o644)
        ]
    );
    // The listing goes through its layer unchanged.
    let layer = listing.to_layer(&store).unwrap();
    let back = Listing::from_layer(std::fs::File::open(store.blob_path(&layer.digest)).unwrap()).unwrap();
    assert_eq!(back, listing);
}

#[test]
fn a_build_dated_at_or_after_this_clock_is_not_restored() {
    let (_d, store) = store();
    let req = SplitRequest { deps: false, app: true, ..Default::default() };
    let listing = split::split(sample_volume().as_slice(), &req, &store).unwrap().listing;
    // The manifest (1_700_000_201) is newer than every source (1_700_000_100): it decides.
    assert!(listing.dated_after(1_700_000_201));
    assert!(listing.dated_after(1_700_000_150), "sources older than now, the manifest not");
    assert!(!listing.dated_after(1_700_000_202));
    // A listing without the build's mtime: only its sources' are known.
    let old: Listing =
        serde_json::from_str(r#"{"format":"release-oci sources listing 1","files":[]}"#).expect("an older listing");
    assert_eq!(old.built, 0);
    let sources_only = Listing { built: 0, ..listing };
    assert!(sources_only.dated_after(1_700_000_100));
    assert!(!sources_only.dated_after(1_700_000_101));
}
