//! A hermetic HTTP/1.1 server on 127.0.0.1 for the client's tests: every request is answered by
//! a handler and recorded (method, target, `Authorization`), one request per connection. No
//! registry, no Docker: the client's wire behaviour (credentials, redirects, limits) is tested
//! by `cargo test` alone.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(&self.target)
    }
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(|v| v.replace("%3A", ":")))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Sent with `Transfer-Encoding: chunked` (no `Content-Length`), in chunks of 1000 bytes.
    pub chunked: bool,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply { status, ..Default::default() }
    }
    pub fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }
    /// The body without a `Content-Length`: the client learns its length only at its end.
    pub fn chunked(mut self) -> Reply {
        self.chunked = true;
        self
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

pub struct Server {
    pub port: u16,
    log: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// Starts serving on a free port of 127.0.0.1 in the current tokio runtime.
    pub async fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log2 = log.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (log, handler) = (log2.clone(), handler.clone());
                tokio::spawn(async move {
                    let _ = serve(sock, &*handler, &log).await;
                });
            }
        });
        Server { port, log }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().expect("log").clone()
    }
}

async fn serve(sock: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(sock);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut req = Request { method, target, headers, body: Vec::new() };
    if let Some(n) = req.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        req.body = vec![0; n];
        reader.read_exact(&mut req.body).await?;
    } else if req.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        req.body = read_chunked(&mut reader).await?;
    }
    log.lock().expect("log").push(req.clone());
    let reply = handler(&req);
    let length = match reply.chunked {
        true => "Transfer-Encoding: chunked".to_string(),
        false => format!("Content-Length: {}", reply.body.len()),
    };
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n{length}\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut sock = reader.into_inner();
    sock.write_all(head.as_bytes()).await?;
    match (req.method.as_str(), reply.chunked) {
        ("HEAD", _) => {}
        (_, false) => sock.write_all(&reply.body).await?,
        (_, true) => {
            for chunk in reply.body.chunks(1000) {
                sock.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
                sock.write_all(chunk).await?;
                sock.write_all(b"\r\n").await?;
            }
            sock.write_all(b"0\r\n\r\n").await?;
        }
    }
    sock.shutdown().await
}

async fn read_chunked(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).await?;
        let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        let mut chunk = vec![0; n + 2];
        reader.read_exact(&mut chunk).await?;
        if n == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..n]);
    }
}
