//! A fault-injecting HTTP proxy between rinfra and LocalStack.
//!
//! It parses each HTTP/1.1 request, and with a seeded probability answers
//! it with a server error or a throttling error, drops the connection, or
//! delays it; otherwise it forwards the request on a fresh upstream
//! connection and relays the answer. Faults that fail a request are
//! injected before the request reaches LocalStack, as a refused connection
//! or an overloaded front end would.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy saw and did.
#[derive(Default)]
pub struct Stats {
    /// Requests received.
    pub requests: AtomicU64,
    /// Faults injected, by kind.
    pub faults: Mutex<BTreeMap<&'static str, u64>>,
    /// The operation of every request, in the order they arrived, as its
    /// JSON target or its RPC path names it (`CreateStream`,
    /// `PutMetricAlarm`).
    pub operations: Mutex<Vec<String>>,
}

/// The operation a request's head names, if any.
fn operation_of(head: &str) -> Option<String> {
    let lower = head.to_lowercase();
    if let Some(line) = head.lines().find(|l| l.to_lowercase().starts_with("x-amz-target:")) {
        return line.rsplit('.').next().map(|o| o.trim().to_string());
    }
    let path = head.lines().next()?.split_whitespace().nth(1)?;
    if lower.contains("rpc-v2-cbor") {
        return path.rsplit("/operation/").next().map(str::to_string);
    }
    None
}

impl Stats {
    /// Faults injected in all.
    pub fn injected(&self) -> u64 {
        self.faults.lock().unwrap().values().sum()
    }
}

/// A running proxy.
pub struct FaultProxy {
    /// Its URL, to pass as `--endpoint-url`.
    pub url: String,
    /// Its counters.
    pub stats: Arc<Stats>,
    /// The fault rate in per mille; change it at any time.
    pub rate: Arc<AtomicU32>,
    /// When set, only requests whose head contains this text are faulted
    /// (such as `/bucket` for S3's path-style requests), with S3's errors.
    pub only: Arc<Mutex<Option<String>>>,
    /// When set, requests whose head contains the text wait this long
    /// before they are forwarded; the counter tells how many arrived.
    pub delay: Arc<Mutex<Option<(String, Duration)>>>,
    /// How many requests matched `delay` so far.
    pub delayed: Arc<AtomicU64>,
}

/// The knobs a connection reads.
#[derive(Clone)]
struct Knobs {
    stats: Arc<Stats>,
    rate: Arc<AtomicU32>,
    rng: Arc<Mutex<Rng>>,
    only: Arc<Mutex<Option<String>>>,
    delay: Arc<Mutex<Option<(String, Duration)>>>,
    delayed: Arc<AtomicU64>,
}

/// A small deterministic generator (xorshift), so runs are repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Starts a proxy to `upstream` (such as `http://127.0.0.1:4566`) on a
/// free loopback port, with a fault rate in per mille and a seed.
pub async fn start(upstream: &str, rate_per_mille: u32, seed: u64) -> FaultProxy {
    let upstream: SocketAddr = upstream.trim_start_matches("http://").parse().expect("upstream address");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let stats = Arc::new(Stats::default());
    let rate = Arc::new(AtomicU32::new(rate_per_mille));
    let knobs = Knobs {
        stats: stats.clone(),
        rate: rate.clone(),
        rng: Arc::new(Mutex::new(Rng(seed.max(1)))),
        only: Arc::new(Mutex::new(None)),
        delay: Arc::new(Mutex::new(None)),
        delayed: Arc::new(AtomicU64::new(0)),
    };
    let k = knobs.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(serve(conn, upstream, k.clone()));
        }
    });
    FaultProxy { url, stats, rate, only: knobs.only, delay: knobs.delay, delayed: knobs.delayed }
}

/// Reads one request (head and body) from `conn`; `None` at end of stream.
async fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(Vec<u8>, bool)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                let mut chunk = [0u8; 16384];
                let n = conn.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let request: Vec<u8> = buf.drain(..total).collect();
            let cbor = head.contains("rpc-v2-cbor");
            return Some((request, cbor));
        }
        let mut chunk = [0u8; 16384];
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The request with `Connection: close`, so the upstream answer ends at EOF.
fn with_close(request: &[u8]) -> Vec<u8> {
    let end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(request.len());
    let head = String::from_utf8_lossy(&request[..end]);
    let mut out = String::new();
    for line in head.split("\r\n") {
        if !line.to_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&request[(end + 4).min(request.len())..]);
    bytes
}

/// S3's error, in its XML shape, so the SDK classifies it as it would a
/// real one (500 and 503 SlowDown are retried).
fn s3_error_response(status: &str, code: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
    );
    format!("HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

fn error_response(status: &str, kind: &str, cbor: bool) -> Vec<u8> {
    if cbor {
        // The CBOR protocol's errors need a CBOR body; a bare 5xx is
        // classified as transient without one.
        return format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").into_bytes();
    }
    let body = format!("{{\"__type\":\"{kind}\",\"message\":\"injected by the test proxy\"}}");
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {kind}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn serve(mut conn: TcpStream, upstream: SocketAddr, k: Knobs) {
    let mut buf = Vec::new();
    while let Some((request, cbor)) = read_request(&mut conn, &mut buf).await {
        k.stats.requests.fetch_add(1, Ordering::SeqCst);
        let end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(request.len());
        let head = String::from_utf8_lossy(&request[..end]).into_owned();
        if let Some(op) = operation_of(&head) {
            k.stats.operations.lock().unwrap().push(op);
        }
        let only = k.only.lock().unwrap().clone();
        let s3 = only.is_some();
        let in_scope = only.as_ref().is_none_or(|o| head.contains(o.as_str()));
        let rate = if in_scope { u64::from(k.rate.load(Ordering::SeqCst)) } else { 0 };
        // At 100% every request fails: a delay would let some through. S3
        // requests may also reach the store and lose their answer, which
        // makes a retried conditional write fail its own condition.
        let kinds = if rate >= 1000 {
            3
        } else if s3 {
            5
        } else {
            4
        };
        // Out-of-scope requests draw nothing, so the faults a scoped test
        // sees do not depend on how many other calls a run makes.
        let (roll, kind) = if in_scope {
            let mut r = k.rng.lock().unwrap();
            (r.next() % 1000, r.next() % kinds)
        } else {
            (1000, 0)
        };
        let fault = roll < rate;
        if fault {
            let name = ["server-error", "throttling", "dropped", "latency", "answer-lost"][kind as usize];
            *k.stats.faults.lock().unwrap().entry(name).or_insert(0) += 1;
            match kind {
                0 => {
                    let answer = if s3 {
                        s3_error_response("500 Internal Server Error", "InternalError")
                    } else {
                        error_response("500 Internal Server Error", "InternalFailure", cbor)
                    };
                    let _ = conn.write_all(&answer).await;
                    continue;
                }
                1 => {
                    let answer = if s3 {
                        s3_error_response("503 Slow Down", "SlowDown")
                    } else {
                        let status = if cbor { "503 Service Unavailable" } else { "400 Bad Request" };
                        error_response(status, "ThrottlingException", cbor)
                    };
                    let _ = conn.write_all(&answer).await;
                    continue;
                }
                2 => return,
                3 => tokio::time::sleep(Duration::from_millis(200 + roll % 400)).await,
                _ => {
                    // The request reaches the store; its answer never
                    // comes back.
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        if up.write_all(&with_close(&request)).await.is_ok() {
                            let mut answer = Vec::new();
                            let _ = up.read_to_end(&mut answer).await;
                        }
                    }
                    return;
                }
            }
        }
        let delay = k.delay.lock().unwrap().clone();
        if let Some((text, pause)) = delay.filter(|(t, _)| head.contains(t.as_str())) {
            let _ = text;
            k.delayed.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(pause).await;
        }
        let Ok(mut up) = TcpStream::connect(upstream).await else { return };
        if up.write_all(&with_close(&request)).await.is_err() {
            return;
        }
        let mut answer = Vec::new();
        if up.read_to_end(&mut answer).await.is_err() {
            return;
        }
        if conn.write_all(&answer).await.is_err() {
            return;
        }
    }
}
