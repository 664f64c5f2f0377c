//! A fault-injecting HTTP proxy in front of a registry on 127.0.0.1: it logs every request
//! (method and target) and, by a plan, forwards it, drops the connection, answers 500/429, cuts
//! the request body short, or forwards it and drops the answer. Every request goes upstream with
//! `Connection: close`, so each request is one connection and the plan sees every one.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Forward,
    /// Close the connection without an answer.
    Drop,
    /// Answer with this status (429 comes with `Retry-After: 1`).
    Status(u16),
    /// Forward the head and half the body, then close both sides.
    CutBody,
    /// Forward the whole request, then close without passing the answer on.
    DropResponse,
}

#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub target: String,
    pub fault: Fault,
}

type Plan = dyn Fn(&str, &str, usize) -> Fault + Send + Sync;

pub struct Proxy {
    pub port: u16,
    log: Arc<Mutex<Vec<Logged>>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// A proxy to `127.0.0.1:upstream`; `plan(method, target, n)` decides each request's fate,
    /// `n` counting earlier requests with the same method and path (query left out, every upload
    /// session the same path).
    pub fn start(upstream: u16, plan: impl Fn(&str, &str, usize) -> Fault + Send + Sync + 'static) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let plan: Arc<Plan> = Arc::new(plan);
        let seen = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let log2 = log.clone();
        rt.spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (log, plan, seen) = (log2.clone(), plan.clone(), seen.clone());
                tokio::spawn(async move {
                    let _ = handle(sock, upstream, log, plan, seen).await;
                });
            }
        });
        Proxy { port, log, rt: Some(rt) }
    }

    /// Forwards everything (a request counter).
    pub fn counting(upstream: u16) -> Proxy {
        Proxy::start(upstream, |_, _, _| Fault::Forward)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().expect("log").clone()
    }

    pub fn clear(&self) {
        self.log.lock().expect("log").clear();
    }

    /// Digests of the blobs whose upload was completed through the proxy (`PUT ...?digest=`).
    pub fn uploaded_digests(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.target.contains("/blobs/uploads/") && r.fault == Fault::Forward)
            .filter_map(|r| {
                r.target.split("digest=").nth(1).map(|d| d.split('&').next().unwrap_or(d).replace("%3A", ":"))
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// How many requests match `method` and contain `part` in their target.
    pub fn count(&self, method: &str, part: &str) -> usize {
        self.requests().iter().filter(|r| r.method == method && r.target.contains(part)).count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn handle(
    mut client: TcpStream,
    upstream: u16,
    log: Arc<Mutex<Vec<Logged>>>,
    plan: Arc<Plan>,
    seen: Arc<Mutex<HashMap<String, usize>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 8192];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
    let mut headers: Vec<String> = Vec::new();
    let mut content_length = 0usize;
    for l in lines.filter(|l| !l.is_empty()) {
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            headers.push(l.to_string());
        }
    }
    // Upload sessions count as one path (`.../blobs/uploads/*`), so a plan that fails "the first
    // of each" fails each kind of upload request once, not once per session it forces.
    let path = target.split('?').next().unwrap_or_default();
    let path = match path.split_once("/blobs/uploads/") {
        Some((repo, rest)) if !rest.is_empty() => format!("{repo}/blobs/uploads/*"),
        _ => path.to_string(),
    };
    let key = format!("{method} {path}");
    let n = {
        let mut seen = seen.lock().expect("seen");
        let n = seen.entry(key).or_insert(0);
        *n += 1;
        *n - 1
    };
    let fault = plan(&method, &target, n);
    log.lock().expect("log").push(Logged { method: method.clone(), target: target.clone(), fault });
    match fault {
        Fault::Drop => return Ok(()),
        Fault::Status(code) => {
            let extra = if code == 429 { "Retry-After: 1\r\n" } else { "" };
            let answer = format!("HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n");
            client.write_all(answer.as_bytes()).await?;
            return client.shutdown().await;
        }
        _ => {}
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).await?;
    let mut new_head = format!("{request_line}\r\n");
    for h in &headers {
        new_head.push_str(h);
        new_head.push_str("\r\n");
    }
    new_head.push_str("Connection: close\r\n\r\n");
    up.write_all(new_head.as_bytes()).await?;
    let already = &buf[head_end..];
    if fault == Fault::CutBody {
        let half = content_length / 2;
        up.write_all(&already[..already.len().min(half)]).await?;
        let mut left = half.saturating_sub(already.len());
        let mut chunk = vec![0u8; 64 * 1024];
        while left > 0 {
            let n = client.read(&mut chunk[..left.min(64 * 1024)]).await?;
            if n == 0 {
                break;
            }
            up.write_all(&chunk[..n]).await?;
            left -= n;
        }
        return Ok(());
    }
    up.write_all(already).await?;
    let mut left = content_length.saturating_sub(already.len());
    let mut chunk = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = client.read(&mut chunk[..left.min(64 * 1024)]).await?;
        if n == 0 {
            return Ok(());
        }
        up.write_all(&chunk[..n]).await?;
        left -= n;
    }
    if fault == Fault::DropResponse {
        let mut sink = Vec::new();
        up.read_to_end(&mut sink).await?;
        return Ok(());
    }
    tokio::io::copy(&mut up, &mut client).await?;
    client.shutdown().await
}
