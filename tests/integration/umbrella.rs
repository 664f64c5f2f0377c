//! An umbrella with two releases (`web_only`, `worker_only`): `--release all` builds both from one
//! builder run into two images (one OCI layout with one entry each, two engine tags); each runs on
//! a read-only root and stops cleanly. The web release reads `config/runtime.exs` at boot.

use crate::projects_util::*;
use crate::util::*;
use std::time::Duration;

const HARDENED: &[&str] = &["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"];

#[test]
fn one_builder_run_makes_an_image_per_release() {
    require_docker();
    let project = copy_example("umbrella");
    let out = crate::util::tempdir().expect("tempdir");
    let layout = out.path().join("oci");
    let tag_template = format!("release-oci-test/{{release}}:{}", std::process::id());
    let mut c = release_oci();
    c.arg("build")
        .arg(project.path())
        .args(["--release", "all", "--load", "--tag", &tag_template, "--port", "4000"])
        .arg("--output")
        .arg(format!("oci:{}", layout.display()))
        .arg("--output")
        .arg(format!("docker-archive:{}/{{release}}.tar", out.path().display()));
    let o = run(c);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "build failed:\n{stderr}");

    // stdout: `RELEASE DIGEST` per image.
    let lines: Vec<(&str, &str)> = stdout.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(lines.iter().map(|l| l.0).collect::<Vec<_>>(), ["web_only", "worker_only"], "{stdout}");
    assert!(lines.iter().all(|l| l.1.starts_with("sha256:")), "{stdout}");
    assert_ne!(lines[0].1, lines[1].1);
    // One builder run assembled both.
    assert_eq!(stderr.matches("Assembling the releases in a builder container").count(), 1, "{stderr}");
    assert!(stderr.contains("mix release web_only") && stderr.contains("mix release worker_only"), "{stderr}");

    // One layout, one entry per release; one archive per release.
    assert_eq!(layout_tags(&layout), ["web_only", "worker_only"]);
    assert!(out.path().join("web_only.tar").is_file() && out.path().join("worker_only.tar").is_file());
    let web = tagged_manifest(&layout, "web_only");
    let worker = tagged_manifest(&layout, "worker_only");
    // In-umbrella apps are the project's own ("app" layer); no dependencies here.
    let web_app = named_layer(&layout, &web, "app").expect("app layer");
    assert!(web_app.iter().any(|p| p.starts_with("app/lib/web-0.1.0")), "{web_app:?}");
    assert!(!web_app.iter().any(|p| p.starts_with("app/lib/worker-")), "{web_app:?}");
    let worker_app = named_layer(&layout, &worker, "app").expect("app layer");
    assert!(worker_app.iter().any(|p| p.starts_with("app/lib/worker-0.1.0")), "{worker_app:?}");
    assert!(named_layer(&layout, &web, "deps").is_none(), "the umbrella has no dependencies");
    // Both releases share tini and ERTS: the same layer blobs.
    for shared in ["runtime", "erts"] {
        let (a, b) = (named_layer_digest(&layout, &web, shared), named_layer_digest(&layout, &worker, shared));
        assert!(a.is_some() && a == b, "{shared} layers differ: {a:?} {b:?}");
    }

    let web_tag = tag_template.replace("{release}", "web_only");
    let worker_tag = tag_template.replace("{release}", "worker_only");
    // One entrypoint script each, naming its release's bin/NAME.
    for (tag, name) in [(&web_tag, "web_only"), (&worker_tag, "worker_only")] {
        assert_eq!(engine_config(tag)["Entrypoint"][2], "/usr/local/bin/release-oci-entry");
        let o = docker(&["run", "--rm", "--entrypoint", "cat", tag, "/usr/local/bin/release-oci-entry"]);
        assert!(text(&o.stdout).contains(&format!("exec /app/bin/{name} \"$@\"")), "{}", text(&o.stdout));
    }

    // Each image takes a release command and a path as its one-off command (docs/runtime.md).
    let o = docker(&["run", "--rm", &web_tag, "eval", "IO.puts(:web_eval)"]);
    assert_eq!(text(&o.stdout).trim(), "web_eval", "{}", text(&o.stderr));
    let o = docker(&["run", "--rm", &web_tag, "/app/bin/web_only", "version"]);
    assert!(text(&o.stdout).starts_with("web_only "), "{}{}", text(&o.stdout), text(&o.stderr));

    // web_only: config/runtime.exs reads GREETING at boot, on a read-only root.
    let mut args = HARDENED.to_vec();
    args.extend(["-e", "GREETING=bonjour"]);
    let web_c = Container::start(&args, &web_tag, &[]);
    let (status, body) = web_c.get("/", Duration::from_secs(60));
    assert_eq!((status, body.as_str()), (200, "bonjour from web (start)\n"));
    // The project's own rel/env.sh.eex and rel/vm.args.eex were used (and the cookie hook added).
    let (_, env) = web_c.get("/env", Duration::from_secs(5));
    assert_eq!(env, "env.sh=web_only vm.args=web_only\n");
    let (code, _) = web_c.stop(10);
    assert_eq!(code, 0, "{}", web_c.logs());
    assert!(web_c.logs().contains("web: application stopped"), "{}", web_c.logs());

    // worker_only: up (its log says so), then stopped cleanly.
    let worker_c = Container::start(HARDENED, &worker_tag, &[]);
    wait_for_log(&worker_c, "worker: ready", Duration::from_secs(60));
    let o = worker_c.exec(&["/app/bin/worker_only", "rpc", "IO.puts(Worker.Ticker.ticks() >= 0)"]);
    assert_eq!(text(&o.stdout).trim(), "true", "{}", text(&o.stderr));
    let (code, _) = worker_c.stop(10);
    assert_eq!(code, 0, "{}", worker_c.logs());
    assert!(worker_c.logs().contains("worker: application stopped"), "{}", worker_c.logs());
    drop((web_c, worker_c));
    remove_images(&[&web_tag, &worker_tag]);
}

#[test]
fn without_a_release_name_the_releases_are_listed() {
    require_docker();
    let project = copy_example("umbrella");
    let mut c = release_oci();
    c.arg("build").arg(project.path());
    let o = run(c);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("several releases") && err.contains("web_only, worker_only"), "{err}");
    assert!(err.contains("--release"), "{err}");
}
