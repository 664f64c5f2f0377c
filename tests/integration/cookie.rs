//! No Erlang cookie in any layer; `rpc` via `docker exec` works with a generated cookie and with
//! one given in RELEASE_COOKIE.

use crate::util::*;
use std::time::Duration;

#[test]
fn no_layer_contains_the_cookie() {
    let b = hello();
    let m = layout_manifest(&b.layout());
    let mut all = Vec::new();
    for l in m["layers"].as_array().expect("layers") {
        all.extend(layer_paths(&b.layout(), l["digest"].as_str().expect("digest")));
    }
    assert!(all.iter().any(|p| p.ends_with("releases/start_erl.data")), "release layer not found");
    let cookies: Vec<_> = all.iter().filter(|p| p.ends_with("COOKIE")).collect();
    assert!(cookies.is_empty(), "cookie in the image: {cookies:?}");
}

fn rpc_works(env: &[&str]) {
    let b = hello();
    let mut args = vec!["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"];
    args.extend_from_slice(env);
    let c = Container::start(&args, &b.tag, &[]);
    assert_eq!(c.get("/health", Duration::from_secs(60)).0, 200);
    let o = c.exec(&["/app/bin/hello_web", "rpc", "IO.puts(:ok)"]);
    assert!(o.status.success(), "rpc failed: {}{}\nlogs:\n{}", text(&o.stdout), text(&o.stderr), c.logs());
    assert_eq!(text(&o.stdout).trim(), "ok");
}

#[test]
fn rpc_works_with_a_generated_cookie() {
    rpc_works(&[]);
}

#[test]
fn rpc_works_with_release_cookie_from_the_environment() {
    rpc_works(&["-e", "RELEASE_COOKIE=test-cookie-from-env"]);
}
