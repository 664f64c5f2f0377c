//! hello_web built in the builder container, loaded, started: it answers HTTP, runs as non-root
//! with a read-only root and no capabilities, and `docker stop` stops it gracefully.

use crate::util::*;
use std::time::Duration;

#[test]
fn hello_web_runs_answers_and_stops_gracefully() {
    let b = hello();
    let c = Container::start(&["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"], &b.tag, &[]);
    let (status, body) = c.get("/", Duration::from_secs(60));
    assert_eq!(status, 200, "body: {body}");
    assert!(body.contains("hello from hello_web"), "{body}");
    assert_eq!(c.get("/health", Duration::from_secs(5)).0, 200);

    // Non-root: the BEAM's uid inside the container.
    let id = c.exec(&["id", "-u"]);
    let uid: u32 = text(&id.stdout).trim().parse().expect("uid");
    assert_ne!(uid, 0, "the container runs as root");
    // PID 1 is tini, the BEAM is its child (so signals and zombies are handled).
    let comm = c.exec(&["cat", "/proc/1/comm"]);
    assert_eq!(text(&comm.stdout).trim(), "tini");
    // The root filesystem is read-only and the release is not writable by the runtime user.
    let w = c.exec(&["sh", "-c", "touch /app/lib/x 2>&1; echo rc=$?"]);
    assert!(text(&w.stdout).contains("rc=1"), "{}", text(&w.stdout));

    let (code, secs) = c.stop(10);
    assert_eq!(code, 0, "exit code after docker stop; logs:\n{}", c.logs());
    assert!(secs < 10.0, "docker stop took {secs:.1}s (it waited for the kill timeout)");
    let logs = c.logs();
    assert!(logs.contains("hello_web: application stopped"), "the stop callback did not run:\n{logs}");
}

#[test]
fn image_config_has_entrypoint_user_env_and_annotations() {
    let b = hello();
    let cfg = layout_config(&b.layout());
    let c = &cfg["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/local/bin/tini", "--", "/usr/local/bin/release-oci-entry"]));
    assert_eq!(c["Cmd"], serde_json::json!(["start"]));
    assert_eq!(c["User"], "10001:10001");
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(c["WorkingDir"], "/app");
    assert!(c["ExposedPorts"].get("4000/tcp").is_some(), "{c}");
    let env: Vec<&str> = c["Env"].as_array().expect("env").iter().filter_map(|v| v.as_str()).collect();
    assert!(env.contains(&"LANG=C.UTF-8"), "{env:?}");
    assert!(env.contains(&"RELEASE_TMP=/tmp"), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "the base image's PATH was lost: {env:?}");
    assert_eq!(cfg["created"], "1970-01-01T00:00:00Z");
    let m = layout_manifest(&b.layout());
    assert_eq!(m["annotations"]["org.opencontainers.image.version"], "0.1.0");
    // The default base is the minimal one (minimal_base.rs keeps a test on the Debian image).
    assert_eq!(m["annotations"]["org.release-oci.base"], "minimal");
}

#[test]
fn eval_runs_as_a_one_off_command() {
    let b = hello();
    let o = docker(&["run", "--rm", "--read-only", "--cap-drop", "ALL", &b.tag, "eval", "IO.puts(1 + 41)"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "42");
}

#[test]
fn passwd_has_the_runtime_user() {
    let b = hello();
    let o = docker(&["run", "--rm", "--entrypoint", "sh", &b.tag, "-c", "grep :10001: /etc/passwd; whoami"]);
    let out = text(&o.stdout);
    assert!(out.contains("app:x:10001:10001"), "{out}");
    assert!(out.lines().last() == Some("app"), "{out}");
}

/// One entrypoint contract (docs/runtime.md): a release command, a path, a script of bin/ and a
/// plain program all run from `docker run IMAGE ...`, whatever the default command.
#[test]
fn every_form_of_one_off_command_runs() {
    let b = hello();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", b.tag.as_str()];
        all.extend_from_slice(args);
        let o = docker(&all);
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    };
    assert_eq!(run(&["eval", "IO.puts(:erlang.system_info(:otp_release))"]).trim().len(), 2);
    assert_eq!(run(&["version"]).trim(), "hello_web 0.1.0");
    assert_eq!(run(&["/app/bin/hello_web", "version"]).trim(), "hello_web 0.1.0");
    assert_eq!(run(&["bin/hello_web", "version"]).trim(), "hello_web 0.1.0");
    assert_eq!(run(&["sh", "-c", "echo $((6 * 7))"]).trim(), "42");
    // Under tini as PID 1 in every form.
    assert_eq!(
        run(&["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"]).split_whitespace().next(),
        Some("/usr/local/bin/tini")
    );
    let o = docker(&["run", "--rm", &b.tag, "no-such-program"]);
    assert!(!o.status.success());
}
