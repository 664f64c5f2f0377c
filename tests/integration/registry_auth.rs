//! Logging in: htpasswd Basic auth over TLS with a private CA (`--ca-cert`), Docker's
//! config.json, and the Bearer token flow; wrong credentials fail clearly, exit non-zero, never
//! show the secret, and tag nothing.

use crate::registry_token::{ISSUER, SERVICE};
use crate::registry_util::*;
use crate::util::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `release-oci push` with `password` on stdin.
fn push_with_password(args: &[&str], password: &str, env: &[(&str, &std::path::Path)]) -> std::process::Output {
    let mut c = release_oci();
    c.arg("push").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("release-oci");
    child.stdin.take().expect("stdin").write_all(password.as_bytes()).expect("password");
    child.wait_with_output().expect("wait")
}

fn assert_not_tagged(reference: &str, creds: &str, ca_dir: &std::path::Path) {
    let o = skopeo_inspect(reference, &["--creds", creds, "--cert-dir", &ca_dir.display().to_string()]);
    assert!(!o.status.success(), "{reference} exists after a failed push");
    let err = text(&o.stderr);
    assert!(err.contains("manifest unknown") || err.contains("not found"), "{err}");
}

#[test]
fn basic_auth_over_tls_with_ca_cert_and_wrong_credentials() {
    let b = hello();
    let dir = crate::util::tempdir().expect("tempdir");
    let certs = make_certs(dir.path());
    let htpasswd = make_htpasswd(dir.path(), "alice", "s3cret-pw");
    let reg = Registry::start(Some(&certs), RegistryAuth::Htpasswd(htpasswd));
    let layout = format!("oci:{}", b.layout().display());
    let reference = format!("{}/secure/hello:1", reg.addr());
    let ca = certs.ca.display().to_string();
    // skopeo trusts *.crt files in --cert-dir.
    let ca_dir = dir.path().join("ca-dir");
    std::fs::create_dir(&ca_dir).expect("mkdir");
    std::fs::copy(&certs.ca, ca_dir.join("ca.crt")).expect("copy ca");

    // Wrong password: a clear message, non-zero exit, no secret in it, nothing tagged.
    let o = push_with_password(
        &[&layout, &reference, "--ca-cert", &ca, "--username", "alice", "--password-stdin"],
        "wrong-pw-123",
        &[],
    );
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("refused the login") && err.contains(&reg.addr()), "{err}");
    assert!(!err.contains("wrong-pw-123") && !text(&o.stdout).contains("wrong-pw-123"), "{err}");
    assert_not_tagged(&reference, "alice:s3cret-pw", &ca_dir);

    // Without the CA: the certificate cannot be verified, and the message says what to pass.
    let o = push_with_password(&[&layout, &reference, "--username", "alice", "--password-stdin"], "s3cret-pw", &[]);
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("--ca-cert") && err.contains("certificate"), "{err}");

    // Right password and CA: pushed, and skopeo (trusting the same CA) sees the same digest.
    let o = push_with_password(
        &[&layout, &reference, "--ca-cert", &ca, "--username", "alice", "--password-stdin"],
        "s3cret-pw",
        &[],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), format!("{}/secure/hello@{}", reg.addr(), b.digest));
    let o = skopeo_inspect(&reference, &["--creds", "alice:s3cret-pw", "--cert-dir", &ca_dir.display().to_string()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["Digest"], b.digest.as_str());

    // Docker's config.json (DOCKER_CONFIG) logs in too, with no flag.
    let cfg = docker_config(&reg.addr(), "alice", "s3cret-pw");
    let mut c = release_oci();
    c.args(["push", &layout, &format!("{}/secure/hello:2", reg.addr()), "--ca-cert", &ca])
        .env("DOCKER_CONFIG", cfg.path());
    assert_eq!(ok(c).trim(), format!("{}/secure/hello@{}", reg.addr(), b.digest));
}

#[test]
fn bearer_token_flow_and_refused_token() {
    let b = hello();
    let tokens = TokenServer::start("bob", "token-pw");
    let reg = Registry::start(
        None,
        RegistryAuth::Token {
            realm: tokens.realm(),
            service: SERVICE.into(),
            issuer: ISSUER.into(),
            cert: tokens.cert.clone(),
        },
    );
    let layout = format!("oci:{}", b.layout().display());
    let reference = format!("{}/tok/hello:1", reg.addr());

    let bad = docker_config(&reg.addr(), "bob", "not-the-pw");
    let mut c = release_oci();
    c.args(["push", &layout, &reference]).env("DOCKER_CONFIG", bad.path());
    let o = run(c);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("refused the login") && err.contains("token service"), "{err}");
    assert!(!err.contains("not-the-pw"), "{err}");

    let good = docker_config(&reg.addr(), "bob", "token-pw");
    let mut c = release_oci();
    c.args(["push", &layout, &reference, "--tag", "latest"]).env("DOCKER_CONFIG", good.path());
    assert_eq!(ok(c).trim(), format!("{}/tok/hello@{}", reg.addr(), b.digest));
    let granted: Vec<String> =
        tokens.requests.lock().expect("log").iter().filter(|(_, g)| *g).map(|(s, _)| s.clone()).collect();
    assert!(granted.iter().any(|s| s.contains("repository:tok/hello:pull,push")), "{granted:?}");
    // The first token held only `pull`: the push renewed it after the registry's 401.
    assert!(granted.len() >= 2, "{granted:?}");
    // skopeo goes through the same token flow and finds the image.
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--creds", "bob:token-pw", &format!("docker://{reference}")])
        .output()
        .expect("skopeo");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["Digest"], b.digest.as_str());
}
