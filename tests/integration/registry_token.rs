//! A small token server for the registry's token auth (Docker's token spec): `GET /token` with
//! Basic credentials and `scope`s answers a JWT (RS256, signed with openssl, the certificate in
//! `x5c`) granting what was asked, or 401 for wrong credentials. It logs the scopes asked for.
//! The first token it grants holds only `pull`, so a push must renew its token when the registry
//! answers 401 (insufficient scope) halfway through.

#![allow(dead_code)]

use base64::Engine as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const SERVICE: &str = "release-oci-test-registry";
pub const ISSUER: &str = "release-oci-test-issuer";

pub struct TokenServer {
    pub port: u16,
    /// The certificate of the signing key (the registry's `rootcertbundle`).
    pub cert: PathBuf,
    /// `scope` values of every token request, and whether it was granted.
    pub requests: Arc<Mutex<Vec<(String, bool)>>>,
    _dir: tempfile::TempDir,
    rt: Option<tokio::runtime::Runtime>,
}

struct Keys {
    key: PathBuf,
    x5c: String,
}

impl TokenServer {
    pub fn start(user: &'static str, password: &'static str) -> TokenServer {
        let dir = crate::util::tempdir().expect("tempdir");
        let (key, cert) = (dir.path().join("token.key"), dir.path().join("token.pem"));
        let o = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=release-oci token"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl (run `make setup`)");
        assert!(o.status.success(), "openssl req: {}", String::from_utf8_lossy(&o.stderr));
        let der =
            Command::new("openssl").args(["x509", "-outform", "der", "-in"]).arg(&cert).output().expect("openssl");
        assert!(der.status.success());
        let keys = Arc::new(Keys { key, x5c: base64::engine::general_purpose::STANDARD.encode(der.stdout) });
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reqs = requests.clone();
        let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let expected =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
        rt.spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (keys, reqs, expected, first) = (keys.clone(), reqs.clone(), expected.clone(), first.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).into_owned();
                    let target = head.split(' ').nth(1).unwrap_or_default().to_string();
                    let auth = head
                        .split("\r\n")
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("authorization").then(|| v.trim().to_string())
                        })
                        .unwrap_or_default();
                    let scopes: Vec<String> = target
                        .split_once('?')
                        .map(|(_, q)| q)
                        .unwrap_or_default()
                        .split('&')
                        .filter_map(|kv| kv.strip_prefix("scope="))
                        .map(|s| s.replace("%3A", ":").replace("%2C", ",").replace("%2F", "/").replace('+', " "))
                        .collect();
                    let granted = auth == expected;
                    reqs.lock().expect("log").push((scopes.join(" "), granted));
                    let answer = if granted {
                        let pull_only = first.swap(false, std::sync::atomic::Ordering::SeqCst);
                        let token = tokio::task::spawn_blocking(move || jwt(&keys, user, &scopes, pull_only))
                            .await
                            .expect("jwt");
                        let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                    };
                    let _ = sock.write_all(answer.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        TokenServer { port, cert, requests, _dir: dir, rt: Some(rt) }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A JWT granting every scope asked for (`repository:NAME:ACTIONS`), or only their `pull`.
fn jwt(keys: &Keys, user: &str, scopes: &[String], pull_only: bool) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .flat_map(|s| s.split(' '))
        .filter_map(|s| {
            let mut p = s.splitn(3, ':');
            let (kind, name, actions) = (p.next()?, p.next()?, p.next()?);
            let actions: Vec<&str> = actions.split(',').filter(|a| !pull_only || *a == "pull").collect();
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
        })
        .collect();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [keys.x5c]});
    let claims = serde_json::json!({"iss": ISSUER, "sub": user, "aud": SERVICE, "exp": now + 300,
        "nbf": now - 60, "iat": now - 60, "jti": format!("{now}-{}", scopes.len()), "access": access});
    let signing_input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&keys.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl dgst");
    {
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(signing_input.as_bytes()).expect("sign input");
    }
    let out = child.wait_with_output().expect("openssl dgst");
    assert!(out.status.success(), "openssl dgst failed");
    format!("{signing_input}.{}", b64url(&out.stdout))
}
