use super::*;
use crate::cli::BuildArgs;
use clap::Parser;
use std::fs;
use std::path::Path;

#[derive(Parser)]
struct Wrap {
    #[command(flatten)]
    args: BuildArgs,
}

fn settings(extra: &[&str]) -> BuildSettings {
    let mut argv = vec!["x", ".", "--no-config"];
    argv.extend_from_slice(extra);
    Wrap::parse_from(argv).args.validate().unwrap()
}

#[test]
fn one_release_keeps_the_plain_names() {
    let s = settings(&["-o", "oci:/o", "-o", "docker-archive:/a.tar"]);
    let o = outputs_for(&s, "web", "1.0.0", false).unwrap();
    assert_eq!(o.tags, ["web:1.0.0"]);
    assert_eq!(
        o.targets,
        [Target::OciLayout { dir: "/o".into(), tag: None }, Target::Archive { path: "/a.tar".into() }]
    );
}

#[test]
fn several_releases_need_the_placeholder() {
    let s = settings(&["-o", "oci:/o", "-o", "docker-archive:/out/{release}.tar", "-t", "r/{release}:x"]);
    let o = outputs_for(&s, "web", "1.0.0", true).unwrap();
    assert_eq!(o.tags, ["r/web:x"]);
    assert_eq!(
        o.targets,
        [
            Target::OciLayout { dir: "/o".into(), tag: Some("web".into()) },
            Target::Archive { path: "/out/web.tar".into() }
        ]
    );
    let s = settings(&["-t", "same:tag"]);
    let e = outputs_for(&s, "web", "1.0.0", true).unwrap_err().to_string();
    assert!(e.contains("\"same:tag\"") && e.contains("{release}"), "{e}");
    let s = settings(&["-o", "docker-archive:/a.tar"]);
    assert!(outputs_for(&s, "web", "1.0.0", true).is_err());
    let s = settings(&["-o", "oci:/o:v1"]);
    assert!(outputs_for(&s, "web", "1.0.0", true).is_err());
    // Default tags are per release already.
    let s = settings(&[]);
    assert_eq!(outputs_for(&s, "worker", "2.0.0", true).unwrap().tags, ["worker:2.0.0"]);
}

fn fake_release(dir: &Path, script: &str) -> Release {
    fs::create_dir_all(dir.join("releases/0.1.0")).unwrap();
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::write(dir.join("releases/start_erl.data"), "13.1.5 0.1.0").unwrap();
    fs::write(
        dir.join("releases/0.1.0/web.rel"),
        "{release,{\"web\",\"0.1.0\"},{erts,\"13.1.5\"},[{kernel,\"8.5\"}]}.",
    )
    .unwrap();
    fs::write(dir.join("bin/web"), script).unwrap();
    fs::write(dir.join("bin/server"), "#!/bin/sh\n").unwrap();
    Release::open(dir, None).unwrap()
}

#[test]
fn start_commands() {
    let dir = tempfile::tempdir().unwrap();
    let rel = fake_release(dir.path(), "#!/bin/sh\n");
    let tini = "/usr/local/bin/tini";
    let entry: Vec<String> = vec![tini.into(), "--".into(), "/usr/local/bin/release-oci-entry".into()];
    let (e, c) = start_command(&rel, None, tini, "app").unwrap();
    assert_eq!((e, c), (entry.clone(), vec!["start".to_string()]));
    let (e, c) = start_command(&rel, Some("server"), tini, "app").unwrap();
    assert_eq!((e, c), (entry.clone(), vec!["/app/bin/server".to_string()]));
    let e = start_command(&rel, Some("sever"), tini, "app").unwrap_err().to_string();
    assert!(e.contains("start, start_iex") && e.contains("(server)"), "{e}");
    assert!(start_command(&rel, Some("../web"), tini, "app").is_err());
    assert!(flavour_env(&rel).is_empty());

    let dir = tempfile::tempdir().unwrap();
    let rel = fake_release(dir.path(), "#!/bin/sh\n[ -n \"$RELX_COOKIE\" ]\n");
    assert_eq!(start_command(&rel, None, tini, "app").unwrap().1, ["foreground"]);
    assert_eq!(start_command(&rel, Some("console"), tini, "app").unwrap().1, ["console"]);
    assert_eq!(flavour_env(&rel), [("RELX_OUT_FILE_PATH".to_string(), "/tmp".to_string())]);
}

#[test]
fn a_phoenix_release_starts_its_server_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let mut rel = fake_release(dir.path(), "#!/bin/sh\n");
    assert!(!is_phoenix(&rel), "bin/server alone is not Phoenix");
    rel.apps.push(crate::release::App {
        name: "phoenix".into(),
        version: "1.7.24".into(),
        dir: "phoenix-1.7.24".into(),
    });
    assert!(is_phoenix(&rel) && !is_phoenix_without_server(&rel));
    std::fs::remove_file(rel.root.join("bin/server")).unwrap();
    assert!(!is_phoenix(&rel) && is_phoenix_without_server(&rel), "phx.new without phx.gen.release");
    std::fs::write(rel.root.join("bin/server"), "#!/bin/sh\n").unwrap();
    let tini = "/usr/local/bin/tini";
    assert_eq!(start_command(&rel, None, tini, "app").unwrap().1, ["/app/bin/server"]);
    assert_eq!(start_command(&rel, Some("start"), tini, "app").unwrap().1, ["start"], "--cmd start still works");
}
