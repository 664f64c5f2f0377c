//! `release-oci.toml`: its settings take effect (release, start command, env, labels, ports,
//! tags), flags win over it, and an unknown key is an error naming the key and its line.

use crate::projects_util::*;
use crate::util::*;
use std::time::Duration;

#[test]
fn settings_take_effect_and_flags_win() {
    require_docker();
    let project = copy_example("umbrella");
    let tag = format!("release-oci-test/toml-{{release}}:{}", std::process::id());
    let toml = format!(
        r#"# settings of the umbrella example
release = "web_only"
cmd = "server"            # rel/web_overlays/bin/server
tags = ["{tag}"]
ports = [4000]

[env]
GREETING = "from-toml"
POOL_SIZE = "7"

[labels]
"org.example.team" = "toml"
"org.example.kept" = "yes"
"#
    );
    std::fs::write(project.path().join("release-oci.toml"), toml).expect("write toml");
    let mut c = release_oci();
    c.arg("build").arg(project.path()).args(["--load", "-e", "GREETING=from-flag", "--label", "org.example.team=flag"]);
    let digest = ok(c);
    assert!(digest.trim().starts_with("sha256:"), "{digest}");

    let tag = tag.replace("{release}", "web_only");
    let cfg = engine_config(&tag);
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/usr/local/bin/tini", "--", "/usr/local/bin/release-oci-entry"]));
    assert_eq!(cfg["Cmd"], serde_json::json!(["/app/bin/server"]));
    let env: Vec<&str> = cfg["Env"].as_array().expect("env").iter().filter_map(|v| v.as_str()).collect();
    assert!(env.contains(&"GREETING=from-flag") && !env.contains(&"GREETING=from-toml"), "{env:?}");
    assert!(env.contains(&"POOL_SIZE=7"), "{env:?}");
    assert_eq!(cfg["Labels"]["org.example.team"], "flag");
    assert_eq!(cfg["Labels"]["org.example.kept"], "yes");
    assert!(cfg["ExposedPorts"].get("4000/tcp").is_some(), "{cfg}");

    // bin/server (an overlay) starts the release in server mode; runtime.exs reads GREETING.
    let c = Container::start(&["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"], &tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(60));
    assert_eq!((status, body.as_str()), (200, "from-flag from web (server)\n"));
    let (code, _) = c.stop(10);
    assert_eq!(code, 0, "{}", c.logs());
    drop(c);
    remove_images(&[&tag]);
}

#[test]
fn unknown_keys_are_reported_with_their_line() {
    let project = copy_example("umbrella");
    std::fs::write(
        project.path().join("release-oci.toml"),
        "release = \"web_only\"\n\n[k8s]\nreplicas = 2\nreplica = 3\n",
    )
    .expect("write toml");
    let mut c = release_oci();
    c.arg("build").arg(project.path());
    let o = run(c);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("release-oci.toml:5:1: unknown key `replica` in [k8s]"), "{err}");
    assert!(err.contains("replicas"), "the message lists the known keys: {err}");
    // Refused before anything was built.
    assert!(!err.contains("Assembling"), "{err}");
}

/// The checkout's own file cannot make the build act on this machine (docs/trust.md): refused
/// before anything runs, naming the key and the flag; the same value as a flag is taken.
#[test]
fn a_project_file_cannot_act_on_the_host() {
    let project = copy_example("hello_web");
    for (toml, flag) in [
        ("builder = \"host\"\n", "--builder host"),
        ("outputs = [\"docker-archive:/tmp/release-oci-any-file.tar\"]\n", "--output"),
        ("cache_dir = \"/tmp/elsewhere\"\n", "--cache-dir DIR"),
        ("load = true\n", "--load"),
    ] {
        std::fs::write(project.path().join("release-oci.toml"), toml).expect("write toml");
        let mut c = release_oci();
        c.arg("build").arg(project.path());
        let o = run(c);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{toml}: {err}");
        assert!(err.contains(&format!("pass {flag} on the command line")), "{toml}: {err}");
        assert!(err.contains("release-oci.toml"), "{toml}: {err}");
        assert!(!err.contains("Assembling"), "refused before anything was built: {err}");
    }
    assert!(!std::path::Path::new("/tmp/release-oci-any-file.tar").exists());
}
