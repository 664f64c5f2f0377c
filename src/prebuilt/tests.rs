use super::*;
use std::fs;

/// A release directory like `mix release` makes, with this machine's `sh` as `beam.smp`.
fn fake_release(dir: &Path) {
    let r = dir.join("releases/0.1.0");
    fs::create_dir_all(&r).unwrap();
    fs::write(dir.join("releases/start_erl.data"), "13.1.5 0.1.0").unwrap();
    fs::write(
        r.join("shop.rel"),
        r#"{release,{"shop","0.1.0"},{erts,"13.1.5"},[{kernel,"8.5.3"},{elixir,"1.14.0"},{shop,"0.1.0"},{jason,"1.4.0"}]}."#,
    )
    .unwrap();
    fs::create_dir_all(dir.join("erts-13.1.5/bin")).unwrap();
    fs::copy(fs::canonicalize("/bin/sh").unwrap(), dir.join("erts-13.1.5/bin/beam.smp")).unwrap();
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::write(dir.join("bin/shop"), "#!/bin/sh\n").unwrap();
    for app in ["kernel-8.5.3", "elixir-1.14.0", "shop-0.1.0", "jason-1.4.0"] {
        fs::create_dir_all(dir.join("lib").join(app).join("ebin")).unwrap();
    }
}

fn host_tini(dir: &Path) -> PathBuf {
    let p = dir.join("tini");
    fs::copy(fs::canonicalize("/bin/sh").unwrap(), &p).unwrap();
    p
}

#[tokio::test]
async fn opens_a_directory_and_a_tarball() {
    let tmp = tempfile::tempdir().unwrap();
    let rel = tmp.path().join("rel");
    fake_release(&rel);
    let project = tmp.path().join("project");
    fs::create_dir_all(&project).unwrap();
    fs::write(project.join("mix.lock"), "%{\n  \"jason\": {:hex, :jason, \"1.4.0\"},\n}\n").unwrap();
    let host = Triple::host().unwrap();
    let tini = host_tini(tmp.path());

    let a = open(&rel, Some(&project), &host, TiniSource::File(tini.clone())).await.unwrap();
    assert_eq!(a.release_name, "shop");
    assert_eq!(a.release_dir, rel.canonicalize().unwrap());
    assert_eq!(a.own_apps.iter().collect::<Vec<_>>(), ["shop"]);
    assert_eq!(a.dep_apps.iter().collect::<Vec<_>>(), ["jason"]);

    // The same release as a .tar.gz (what mix's :tar step makes).
    let tarball = tmp.path().join("shop-0.1.0.tar.gz");
    let gz = flate2::write::GzEncoder::new(fs::File::create(&tarball).unwrap(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    b.append_dir_all(".", &rel).unwrap();
    b.into_inner().unwrap().finish().unwrap();
    let a = open(&tarball, None, &host, TiniSource::File(tini)).await.unwrap();
    assert_eq!(a.release_name, "shop");
    assert!(a.release_dir.join("erts-13.1.5/bin/beam.smp").is_file());
    let dir = a.release_dir.clone();
    drop(a);
    assert!(!dir.exists(), "the extracted tarball outlived Assembled");
}

#[tokio::test]
async fn refuses_other_triples_and_non_releases() {
    let tmp = tempfile::tempdir().unwrap();
    let rel = tmp.path().join("rel");
    fake_release(&rel);
    let tini = host_tini(tmp.path());
    let host = Triple::host().unwrap();
    let other: Triple = match host.arch {
        crate::triple::Arch::X86_64 => "aarch64-unknown-linux-gnu",
        crate::triple::Arch::Aarch64 => "x86_64-unknown-linux-gnu",
    }
    .parse()
    .unwrap();
    let e = open(&rel, None, &other, TiniSource::File(tini.clone())).await.unwrap_err().to_string();
    assert!(e.contains("beam.smp") && e.contains(&other.to_string()), "{e}");
    let e = open(tmp.path(), None, &host, TiniSource::File(tini.clone())).await.unwrap_err().to_string();
    assert!(e.contains("holds no release"), "{e}");
    let e = open(&rel, None, &host, TiniSource::File(tmp.path().join("nope"))).await.unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("does not exist"), "{e}");
}
