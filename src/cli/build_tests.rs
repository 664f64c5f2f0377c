use super::*;
use crate::cli::build_settings::may_pull_builder;
use clap::Parser as _;

fn settings(flags: &[&str]) -> anyhow::Result<BuildSettings> {
    match crate::cli::Cli::try_parse_from([&["x", "build", "--no-config"], flags].concat())?.command {
        crate::cli::Command::Build(args) => args.validate(),
        _ => unreachable!(),
    }
}

#[test]
fn warm_builder_flags() {
    let warm = |flags: &[&str]| settings(flags).unwrap().warm_builder;
    assert_eq!(warm(&[]), None);
    assert_eq!(warm(&["--warm-builder"]), Some(crate::builder::warm::DEFAULT_IDLE));
    assert_eq!(warm(&["--warm-builder", "--warm-builder-idle", "90s"]), Some(std::time::Duration::from_secs(90)));
    assert_eq!(warm(&["--warm-builder-idle", "90s"]), None, "the idle time alone keeps no builder");
    let e = format!("{:#}", settings(&["--warm-builder", "--warm-builder-idle", "90"]).unwrap_err());
    assert!(e.starts_with("--warm-builder-idle \"90\": "), "{e}");
}

#[test]
fn timeout_flag() {
    assert_eq!(settings(&[]).unwrap().timeout, std::time::Duration::from_secs(3600));
    assert_eq!(settings(&["--timeout", "30m"]).unwrap().timeout, std::time::Duration::from_secs(1800));
    let e = format!("{:#}", settings(&["--timeout", "30"]).unwrap_err());
    assert!(e.starts_with("--timeout \"30\": ") && e.contains("no unit"), "{e}");
}

#[test]
fn builder_limit_flags() {
    let get = |t: &[&str]| settings(t).map(|s| s.limits);
    assert_eq!(get(&[]).unwrap(), crate::builder::Limits { memory: 4 << 30, pids: 4096 });
    assert_eq!(
        get(&["--memory", "2g", "--pids-limit", "64"]).unwrap(),
        crate::builder::Limits { memory: 2 << 30, pids: 64 }
    );
    let e = format!("{:#}", get(&["--memory", "2x"]).unwrap_err());
    assert!(e.starts_with("--memory \"2x\": \"2x\" is not a size"), "{e}");
    let e = format!("{:#}", get(&["--pids-limit", "0"]).unwrap_err());
    assert!(e.starts_with("--pids-limit 0: ") && e.contains("at least 1"), "{e}");
}

#[test]
fn flag_values_name_the_flag() {
    for (flags, want) in [
        (&["--user", "1000:x"][..], "--user \"1000:x\": the group must be a number"),
        (&["--port", "http"], "--port \"http\": not a port number"),
        (&["-e", "=x"], "--env \"=x\" is not KEY=VALUE"),
        (&["-t", "App"], "--tag \"App\" is not a valid image name"),
        (&["--compression", "lzma"], "--compression \"lzma\""),
        (&["--output", "tar:x"], "--output \"tar:x\""),
    ] {
        let e = format!("{:#}", settings(flags).unwrap_err());
        assert!(e.starts_with(want), "{flags:?}: {e}");
    }
}

/// Regression: the default builder image was pulled when the engine lacked it (`--pull missing`
/// is the default), and unqualified, `release-oci/builder:...` is Docker Hub's, whoever owns it.
#[test]
fn only_a_builder_image_the_user_names_is_ever_pulled() {
    let s = settings(&[]).unwrap();
    assert_eq!(s.builder_image, "release-oci/builder:debian-bookworm");
    assert!(!s.pull_missing, "the default builder image must only be looked up locally");
    let s = settings(&["--triple", "x86_64-unknown-linux-musl", "--pull", "missing"]).unwrap();
    assert!(!s.pull_missing, "{}", s.builder_image);
    let s = settings(&["--builder-image", "ghcr.io/team/builder:1"]).unwrap();
    assert!(s.pull_missing, "a builder the user names is pulled by default");
    assert!(!settings(&["--builder-image", "ghcr.io/team/builder:1", "--pull", "never"]).unwrap().pull_missing);
    // Named or not, release-oci's own names are made by `make setup`, never pulled.
    let s = settings(&["--builder-image", "release-oci/builder:debian-trixie"]).unwrap();
    assert!(!s.pull_missing);
    assert!(!may_pull_builder(None, None) && !may_pull_builder(None, Some(PullArg::Missing)));
    assert!(may_pull_builder(Some("hexpm/elixir:1.18"), None));
}

#[test]
fn a_template_makes_each_projects_settings_with_its_own_file() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::write(a.path().join("release-oci.toml"), "mix_env = \"staging\"\nports = [4000]\n").unwrap();
    let t = BuildTemplate::parse(&["--triple".into(), "aarch64-unknown-linux-gnu".into(), "-p".into(), "9000".into()])
        .unwrap();
    let s = t.settings(a.path(), "127.0.0.1:5000/team/a").unwrap();
    assert_eq!((s.project.as_path(), s.mix_env.as_str()), (a.path(), "staging"));
    assert_eq!(s.triple.to_string(), "aarch64-unknown-linux-gnu");
    assert_eq!(s.ports, ["4000/tcp", "9000/tcp"]);
    assert_eq!(s.push.as_ref().map(|p| p.reference.repository_ref()).as_deref(), Some("127.0.0.1:5000/team/a"));
    let s = t.settings(b.path(), "127.0.0.1:5000/team/b").unwrap();
    assert_eq!((s.mix_env.as_str(), s.ports.len()), ("prod", 1));
    let e = BuildTemplate::parse(&["--push".into(), "r.io/x".into()]).unwrap_err().to_string();
    assert!(e.contains("--push-to"), "{e}");
    let e = BuildTemplate::parse(&["./elsewhere".into()]).unwrap_err().to_string();
    assert!(e.contains("project directory"), "{e}");
    assert!(BuildTemplate::parse(&["--no-such-flag".into()]).is_err());
}
