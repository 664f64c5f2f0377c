//! A rebar3/relx project (examples/rebar3_web): built with `rebar3 as prod release` in the builder,
//! it runs `bin/NAME foreground` under tini on a read-only root (relx renders `sys.config.src`
//! and `vm.args.src` into RELX_OUT_FILE_PATH=/tmp), answers, has no cookie baked in (a
//! per-container one, or RELX_COOKIE), and stops cleanly with exit code 0.

use crate::projects_util::*;
use crate::util::*;
use std::sync::OnceLock;
use std::time::Duration;

const HARDENED: &[&str] = &["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"];

fn rebar3_web() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| build_example("rebar3_web", &[]))
}

#[test]
fn rebar3_web_runs_in_the_foreground_answers_and_stops_cleanly() {
    let b = rebar3_web();
    let cfg = layout_config(&b.layout());
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/tini", "--", "/usr/local/bin/release-oci-entry"])
    );
    assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["foreground"]));
    let env: Vec<&str> = cfg["config"]["Env"].as_array().expect("env").iter().filter_map(|v| v.as_str()).collect();
    assert!(env.contains(&"RELX_OUT_FILE_PATH=/tmp"), "{env:?}");

    let mut args = HARDENED.to_vec();
    args.extend(["-e", "GREETING=hej"]);
    let c = Container::start(&args, &b.tag, &[]);
    // sys.config.src was rendered at boot with the container's GREETING.
    let (status, body) = c.get("/", Duration::from_secs(60));
    assert_eq!((status, body.as_str()), (200, "hej from rebar3_web 0.1.0\n"));
    assert_eq!(c.get("/health", Duration::from_secs(5)).0, 200);
    assert_eq!(text(&c.exec(&["cat", "/proc/1/comm"]).stdout).trim(), "tini");
    let uid = text(&c.exec(&["id", "-u"]).stdout).trim().to_string();
    assert_eq!(uid, "10001");
    // The start script reaches the node with the per-container cookie.
    let o = c.exec(&["/app/bin/rebar3_web", "eval", "erlang:node() =/= nonode@nohost."]);
    assert_eq!(text(&o.stdout).trim(), "true", "{}{}", text(&o.stderr), c.logs());

    let (code, _) = c.stop(10);
    assert_eq!(code, 0, "exit code after docker stop; logs:\n{}", c.logs());
    assert!(c.logs().contains("rebar3_web: application stopped"), "{}", c.logs());
}

#[test]
fn relx_cookie_is_not_baked_in_and_relx_cookie_is_honoured() {
    let b = rebar3_web();
    let m = layout_manifest(&b.layout());
    let release = named_layer(&b.layout(), &m, "release").expect("release layer");
    assert!(release.iter().any(|p| p.ends_with("releases/0.1.0/vm.args.src")), "{release:?}");
    // The layer's vm.args.src takes the cookie from RELX_COOKIE, and no literal one is left.
    let o = docker(&["run", "--rm", "--entrypoint", "cat", &b.tag, "/app/releases/0.1.0/vm.args.src"]);
    let vm_args = text(&o.stdout);
    let cookies: Vec<&str> = vm_args.lines().filter(|l| l.starts_with("-setcookie")).collect();
    assert_eq!(cookies, ["-setcookie ${RELX_COOKIE}"], "{vm_args}");

    let mut args = HARDENED.to_vec();
    args.extend(["-e", "RELX_COOKIE=cookie-from-env"]);
    let c = Container::start(&args, &b.tag, &[]);
    assert_eq!(c.get("/health", Duration::from_secs(60)).0, 200);
    let o = c.exec(&["/app/bin/rebar3_web", "eval", "erlang:get_cookie()."]);
    assert_eq!(text(&o.stdout).trim(), "'cookie-from-env'", "{}", text(&o.stderr));
    let (code, _) = c.stop(10);
    assert_eq!(code, 0, "{}", c.logs());
}
