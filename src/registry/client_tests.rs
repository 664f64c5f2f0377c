//! The client on the wire, against the hermetic HTTP fake: credentials reach only the registry
//! (and its token service), whatever `Location` or redirect the registry answers with; HTTPS is
//! never left for plain HTTP; answers are read with limits. And which registries may be reached
//! over plain HTTP, and `--ca-cert` files.

use super::*;
use crate::digest::Digest;
use crate::registry::http_fake::{Reply, Request, Server};
use crate::registry::{Bars, BlobRef, BlobSource, Login, PushImage, PushTarget, Secret, push_image};
use bytes::Bytes;

const USER: &str = "ci";
const PASSWORD: &str = "hunter2-password";
const TOKEN: &str = "token-7f3a";

fn basic() -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")))
}

#[derive(Clone, Copy, PartialEq)]
enum Scheme {
    Basic,
    Bearer,
}

#[derive(Clone, Copy, PartialEq)]
enum Elsewhere {
    /// `202 Accepted` with a `Location` on the other server.
    Location,
    /// `307 Temporary Redirect` of the upload's POST to the other server.
    Redirect,
}

/// The other host: an upload endpoint that works (so the push completes) and records everything.
/// `received` counts the bytes of the open session (one upload at a time in these tests).
fn other_host(req: &Request, received: &std::sync::atomic::AtomicUsize) -> Reply {
    use std::sync::atomic::Ordering::SeqCst;
    let upload = "/v2/team/app/blobs/uploads/u1";
    match (req.method.as_str(), req.query("digest")) {
        ("POST", _) => {
            received.store(0, SeqCst);
            Reply::status(202).header("Location", upload)
        }
        ("PATCH", _) => {
            let total = received.fetch_add(req.body.len(), SeqCst) + req.body.len();
            Reply::status(202).header("Location", upload).header("Range", format!("0-{}", total.max(1) - 1))
        }
        ("PUT", Some(digest)) => {
            received.store(0, SeqCst);
            Reply::status(201).header("Docker-Content-Digest", digest)
        }
        _ => Reply::status(404),
    }
}

/// The registry: wants the login on every request, answers the upload's POST with the other host.
fn registry(req: &Request, scheme: Scheme, elsewhere: Elsewhere, own: u16, other: u16) -> Reply {
    let authorised = match scheme {
        Scheme::Basic => req.header("authorization") == Some(basic().as_str()),
        Scheme::Bearer => req.header("authorization") == Some(format!("Bearer {TOKEN}").as_str()),
    };
    if scheme == Scheme::Bearer && req.path() == "/token" {
        return if req.header("authorization") == Some(basic().as_str()) {
            Reply::status(200).body(format!("{{\"token\":\"{TOKEN}\",\"expires_in\":300}}"))
        } else {
            Reply::status(401)
        };
    }
    if !authorised {
        let challenge = match scheme {
            Scheme::Basic => "Basic realm=\"fake\"".to_string(),
            Scheme::Bearer => format!("Bearer realm=\"http://127.0.0.1:{own}/token\",service=\"fake\""),
        };
        return Reply::status(401).header("WWW-Authenticate", challenge);
    }
    let p = req.path();
    match req.method.as_str() {
        "GET" if p == "/v2/" => Reply::status(200),
        "HEAD" => Reply::status(404),
        "POST" if p == "/v2/team/app/blobs/uploads/" => {
            let to = format!("http://127.0.0.1:{other}/v2/team/app/blobs/uploads/");
            match elsewhere {
                Elsewhere::Location => Reply::status(202).header("Location", format!("{to}u1")),
                Elsewhere::Redirect => Reply::status(307).header("Location", to),
            }
        }
        "PUT" if p.starts_with("/v2/team/app/manifests/") => Reply::status(201),
        _ => Reply::status(404),
    }
}

fn blob(label: &str, bytes: &'static [u8]) -> BlobRef {
    BlobRef {
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        label: label.into(),
        source: BlobSource::Bytes(Bytes::from_static(bytes)),
    }
}

fn image() -> PushImage {
    let manifest = b"{\"schemaVersion\":2}".to_vec();
    PushImage {
        manifest_digest: Digest::of(&manifest),
        manifest,
        media_type: crate::registry::MEDIA_OCI_MANIFEST.into(),
        config: blob("config", b"{\"config\":{}}"),
        layers: vec![blob("layer", b"a layer of some bytes")],
    }
}

fn options(registry: &str) -> RegistryOptions {
    RegistryOptions {
        login: Some(Login { registry: registry.into(), username: USER.into(), password: Secret::new(PASSWORD) }),
        retry: RetryPolicy { attempts: 1, ..Default::default() },
        ..Default::default()
    }
}

/// Pushes through the registry and returns what the other host saw.
async fn push_with(scheme: Scheme, elsewhere: Elsewhere, chunk: usize) -> (Vec<Request>, Vec<Request>) {
    let received = std::sync::atomic::AtomicUsize::new(0);
    let other = Server::start(move |r| other_host(r, &received)).await;
    let other_port = other.port;
    let own = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(0));
    let own2 = own.clone();
    let reg = Server::start(move |r| {
        registry(r, scheme, elsewhere, own2.load(std::sync::atomic::Ordering::SeqCst), other_port)
    })
    .await;
    own.store(reg.port, std::sync::atomic::Ordering::SeqCst);
    let name = reg.addr();
    let client = Client::connect(&name, &options(&name), vec!["repository:team/app:pull,push".into()])
        .await
        .expect("log in")
        .with_chunk_size(chunk);
    let target = PushTarget { repository: "team/app".into(), tags: vec!["1".into()], ..Default::default() };
    push_image(&client, &image(), &target, &Bars::hidden()).await.expect("push");
    (reg.requests(), other.requests())
}

fn assert_no_credentials(other: &[Request], registry: &[Request]) {
    assert!(!other.is_empty(), "the other host was never asked: the test proves nothing");
    for r in other {
        assert_eq!(r.header("authorization"), None, "{} {} got credentials", r.method, r.target);
    }
    let manifest = registry.iter().find(|r| r.method == "PUT").expect("the manifest went to the registry");
    assert!(manifest.header("authorization").is_some(), "the registry itself gets the login");
}

#[tokio::test]
async fn basic_login_never_goes_to_an_upload_location_on_another_port() {
    let (reg, other) = push_with(Scheme::Basic, Elsewhere::Location, CHUNK_SIZE).await;
    assert_no_credentials(&other, &reg);
    let (reg, other) = push_with(Scheme::Basic, Elsewhere::Location, 4).await;
    assert!(other.iter().any(|r| r.method == "PATCH"), "chunked upload expected: {:?}", other.len());
    assert_no_credentials(&other, &reg);
}

#[tokio::test]
async fn bearer_token_never_goes_to_an_upload_location_on_another_port() {
    let (reg, other) = push_with(Scheme::Bearer, Elsewhere::Location, CHUNK_SIZE).await;
    assert_no_credentials(&other, &reg);
    assert!(reg.iter().any(|r| r.path() == "/token"), "the token came from the realm");
}

#[tokio::test]
async fn a_redirect_to_another_port_carries_no_credentials() {
    for scheme in [Scheme::Basic, Scheme::Bearer] {
        let (reg, other) = push_with(scheme, Elsewhere::Redirect, CHUNK_SIZE).await;
        assert_no_credentials(&other, &reg);
    }
}

#[tokio::test]
async fn https_is_never_left_for_plain_http() {
    let other = Server::start(|_| Reply::status(200)).await;
    let client = Client {
        http: reqwest::Client::new(),
        registry: "registry.example:443".into(),
        base: Url::parse("https://registry.example/").unwrap(),
        auth: Auth::Basic { username: USER.into(), password: Secret::new(PASSWORD) },
        retry: RetryPolicy { attempts: 1, ..Default::default() },
        chunk_size: CHUNK_SIZE,
    };
    let url = format!("http://127.0.0.1:{}/v2/team/app/blobs/uploads/u1", other.port);
    let err = client.send(client.request(Method::PUT, &url), "uploading").await.unwrap_err().to_string();
    assert!(err.contains("refusing to leave HTTPS") && err.contains("http://127.0.0.1"), "{err}");
    assert!(!err.contains("/v2/team/app/blobs/uploads/u1"), "the URL's path is not printed: {err}");
    assert!(other.requests().is_empty(), "nothing was sent over plain HTTP");
}

#[test]
fn a_token_realm_over_plain_http_is_refused_for_an_https_registry() {
    let challenge = parse_challenge("Bearer realm=\"http://auth.example/token\",service=\"r\"").unwrap();
    let auth = Auth::from_challenge(&challenge, Credential::Anonymous, vec![], "r.example").unwrap();
    let err = check_realm(&auth, &Url::parse("https://r.example/").unwrap(), "r.example").unwrap_err().to_string();
    assert!(err.contains("plain HTTP") && err.contains("http://auth.example"), "{err}");
    assert!(check_realm(&auth, &Url::parse("http://127.0.0.1:5000/").unwrap(), "127.0.0.1:5000").is_ok());
}

#[tokio::test]
async fn an_endless_token_answer_or_manifest_is_not_read_whole() {
    use crate::registry::Registry;
    let big = vec![b' '; 5 << 20];
    let reg = Server::start(move |r| match r.path() {
        "/v2/" if r.header("authorization").is_none() => {
            Reply::status(401).header("WWW-Authenticate", "Bearer realm=\"/token\",service=\"fake\"")
        }
        "/token" => Reply::status(200).body(big.clone()),
        _ => Reply::status(200).body(big.clone()),
    })
    .await;
    // A relative realm is not a URL: refused before anything else.
    let name = reg.addr();
    let err = Client::connect(&name, &options(&name), vec![]).await.unwrap_err().to_string();
    assert!(err.contains("not a URL"), "{err}");

    let big = vec![b' '; 5 << 20];
    let own = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(0));
    let own2 = own.clone();
    let reg = Server::start(move |r| {
        let port = own2.load(std::sync::atomic::Ordering::SeqCst);
        match r.path() {
            "/v2/" if r.header("authorization").is_none() => {
                Reply::status(401).header("WWW-Authenticate", format!("Bearer realm=\"http://127.0.0.1:{port}/token\""))
            }
            "/token" => Reply::status(200).body(big.clone()),
            _ => Reply::status(200).body(big.clone()),
        }
    })
    .await;
    own.store(reg.port, std::sync::atomic::Ordering::SeqCst);
    let name = reg.addr();
    let err = Client::connect(&name, &options(&name), vec![]).await.unwrap_err().to_string();
    assert!(err.contains("longer than"), "{err}");

    let big = vec![b' '; 5 << 20];
    let reg = Server::start(move |_| Reply::status(200).body(big.clone())).await;
    let name = reg.addr();
    let client = Client::connect(&name, &RegistryOptions::default(), vec![]).await.expect("anonymous");
    let err = client.get_manifest("team/app", "1").await.unwrap_err().to_string();
    assert!(err.contains("larger than"), "{err}");
}

#[tokio::test]
async fn transport_errors_name_the_origin_not_the_signed_url() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/v2/x/blobs/uploads/u1?X-Amz-Signature=s3cr3t");
    let e = reqwest::Client::new().get(&url).send().await.unwrap_err();
    let err = transport_error("r", "uploading", &e).to_string();
    assert!(err.contains(&format!("http://127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("s3cr3t") && !err.contains("uploads/u1"), "{err}");
}

#[tokio::test]
async fn an_error_answer_is_read_only_up_to_its_limit() {
    use crate::registry::Registry;
    let codes = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no such tag"}]}"#.to_vec();
    // The same JSON after more whitespace than the limit: its codes are not read.
    let long = [codes.clone(), vec![b' '; ERROR_BODY_LIMIT as usize]].concat();
    let reg = Server::start(move |r| match r.path() {
        "/v2/" => Reply::status(200),
        "/v2/team/short/manifests/1" => Reply::status(404).body(codes.clone()),
        _ => Reply::status(404).body(long.clone()),
    })
    .await;
    let name = reg.addr();
    let client = Client::connect(&name, &options(&name), vec![]).await.expect("anonymous");
    let err = client.get_manifest("team/short", "1").await.unwrap_err().to_string();
    assert!(err.contains("MANIFEST_UNKNOWN no such tag"), "{err}");
    let err = client.get_manifest("team/long", "1").await.unwrap_err().to_string();
    assert!(err.contains("404") && !err.contains("MANIFEST_UNKNOWN"), "{err}");
}

#[test]
fn plain_http_only_for_loopback_or_named_registries() {
    let opts = RegistryOptions { insecure: vec!["build.internal:5000".into()], ..Default::default() };
    assert!(opts.allows_http("127.0.0.1:5000"));
    assert!(opts.allows_http("localhost:5000"));
    assert!(opts.allows_http("build.internal:5000"));
    assert!(!opts.allows_http("build.internal:5001"));
    assert!(!opts.allows_http("registry.example.com"));
}

#[test]
fn unreadable_ca_cert_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let opts = RegistryOptions { ca_certs: vec![bad.clone()], ..Default::default() };
    let err = http_client("r.example.com", &opts).unwrap_err().to_string();
    assert!(err.contains("ca.pem") && err.contains("--ca-cert"), "{err}");
}
