//! `realm gateway` throughput and memory, against a real gateway process over
//! loopback TCP (run: `cargo bench -p realm --bench gateway_grants`; the
//! gateway binary is then a release build):
//!
//! 1. durable ASSIGN_REQUEST_RSAP-IP grants per second from 16 concurrent
//!    hosts (one TCP connection each), with `Normal` and `Full` durability,
//!    each host waiting for every answer (window 1) and keeping 8 requests in
//!    flight (window 8); beside it, the loopback rate of 64-byte TCP
//!    request/response round trips (an echo server, 16 clients, window 1)
//!    measured in the same run: the ceiling a window-1 protocol can reach;
//! 2. gateway memory per binding: VmRSS growth of the gateway process
//!    (`/proc/PID/status`) while 100,000 bindings are granted through the
//!    protocol (16 hosts, pipelined), divided by 100,000. It includes
//!    everything the process grows by: engine state, allocator slack, SQLite's
//!    page cache (bounded by SQLite's cache size), channel buffers.
//!
//! The store lives under `CARGO_TARGET_TMPDIR` (the target directory's disk,
//! not a tmpfs), so `Full` pays real fsyncs. Loopback only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use realm_wire::rsip::{
    Address, ClientId, Flow, Message, Ports, RequestOptions, StreamDecoder, View,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const HOSTS: u8 = 16;
const RUN: Duration = Duration::from_secs(3);
const BINDINGS: u64 = 100_000;
const BIN: &str = env!("CARGO_BIN_EXE_realm");

fn net_base() -> u8 {
    (std::process::id() % 200) as u8 + 20
}

fn addr(b: u8, last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, net_base(), b, last)
}

struct Gw {
    child: Child,
    at: SocketAddrV4,
    _dir: tempfile::TempDir,
}

impl Drop for Gw {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start_gateway(b: u8, durability: &str) -> Gw {
    start_gateway_with(b, durability, "")
}

/// [`start_gateway`] with more `[limits]` keys.
fn start_gateway_with(b: u8, durability: &str, limits: &str) -> Gw {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(root).unwrap();
    let dir = tempfile::tempdir_in(root).unwrap();
    let d = dir.path();
    let at = SocketAddrV4::new(addr(b, 1), 4555);
    let config = format!(
        r#"
[listen]
addresses = ["{ip}"]
[store]
path = "{db}"
durability = "{durability}"
alloc_log = "{log}"
[metrics]
listen = "{ip}:9555"
[control]
socket = "{sock}"
[log]
level = "warn"
[limits]
messages_per_sec = 1000000
burst = 1000000
{limits}
[gateway]
methods = ["rsap-ip"]
max_hosts = 64
[gateway.quota]
ports = 1000000
bindings = 1000000
[[gateway.pool]]
addresses = "198.18.0.0/22"
shared = false
"#,
        ip = at.ip(),
        db = d.join("gateway.db").display(),
        log = d.join("alloc.log").display(),
        sock = d.join("ctl.sock").display(),
    );
    let path = d.join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(BIN)
        .args(["gateway", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = realm_io::clock::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect_timeout(&at.into(), Duration::from_millis(100)).is_err() {
        assert!(realm_io::clock::now() < deadline, "gateway did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Gw {
        child,
        at,
        _dir: dir,
    }
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

struct Host {
    stream: TcpStream,
    decoder: StreamDecoder,
    buf: Vec<u8>,
    client: ClientId,
    assign: Vec<u8>,
}

impl Host {
    async fn connect(from: Ipv4Addr, to: SocketAddrV4) -> Host {
        let s = TcpSocket::new_v4().unwrap();
        s.bind(SocketAddr::V4(SocketAddrV4::new(from, 0))).unwrap();
        let stream = s.connect(to.into()).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut h = Host {
            stream,
            decoder: StreamDecoder::new(65535),
            buf: vec![0; 64 * 1024],
            client: ClientId(0),
            assign: Vec::new(),
        };
        h.stream
            .write_all(&Message::register_request(None).to_bytes())
            .await
            .unwrap();
        let r = h.recv().await;
        h.client = r.client_id().unwrap();
        h.assign = Message::assign_request_rsap_ip(
            h.client,
            Flow {
                local_address: Address::DONT_CARE_V4,
                local_ports: Ports::DontCare { count: 1 },
                remote_address: Address::DONT_CARE_V4,
                remote_ports: Ports::DONT_CARE_ONE,
            },
            RequestOptions::default(),
        )
        .unwrap()
        .to_bytes();
        h
    }

    async fn recv(&mut self) -> Message {
        loop {
            if let Some(f) = self.decoder.next_frame().unwrap() {
                return Message::parse(f).unwrap();
            }
            let n = self.stream.read(&mut self.buf).await.unwrap();
            assert!(n > 0, "gateway closed the connection");
            let took = self.decoder.push(&self.buf[..n]);
            assert_eq!(took, n);
        }
    }

    /// Sends `window` requests ahead; counts grants until `stop` (or `limit`).
    async fn grant_loop(&mut self, window: usize, stop: &AtomicBool, limit: &AtomicU64) -> u64 {
        let mut granted = 0;
        let mut outstanding = 0;
        loop {
            let more = !stop.load(Ordering::Relaxed)
                && limit
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok();
            if more {
                self.stream.write_all(&self.assign).await.unwrap();
                outstanding += 1;
                if outstanding < window {
                    continue;
                }
            }
            if outstanding == 0 {
                return granted;
            }
            let r = self.recv().await;
            outstanding -= 1;
            match r.view() {
                View::AssignResponseRsapIp { .. } => granted += 1,
                other => panic!("not a grant: {other:?}"),
            }
        }
    }
}

async fn grants_per_sec(gw: &Gw, b: u8, window: usize, run: Duration) -> f64 {
    let mut hosts = Vec::new();
    for i in 0..HOSTS {
        hosts.push(Host::connect(addr(b, 10 + i), gw.at).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let limit = Arc::new(AtomicU64::new(u64::MAX));
    let t0 = realm_io::clock::now();
    let tasks: Vec<_> = hosts
        .into_iter()
        .map(|mut h| {
            let stop = Arc::clone(&stop);
            let limit = Arc::clone(&limit);
            tokio::spawn(async move { h.grant_loop(window, &stop, &limit).await })
        })
        .collect();
    tokio::time::sleep(run).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / t0.elapsed().as_secs_f64()
}

async fn echo_round_trips_per_sec(run: Duration) -> f64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while s.read_exact(&mut buf).await.is_ok() {
                    if s.write_all(&buf).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = realm_io::clock::now();
    let mut tasks = Vec::new();
    for _ in 0..HOSTS {
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(at).await.unwrap();
            s.set_nodelay(true).unwrap();
            let mut buf = [7u8; 64];
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                s.write_all(&buf).await.unwrap();
                s.read_exact(&mut buf).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(run).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    server.abort();
    total as f64 / t0.elapsed().as_secs_f64()
}

/// One sample of the gateway's metrics.
fn metric(at: SocketAddrV4, name: &str) -> f64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(SocketAddrV4::new(*at.ip(), 9555)).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap()
}

async fn memory_per_binding() -> (u64, u64, f64, f64) {
    let gw = start_gateway(90, "normal");
    let mut hosts = Vec::new();
    for i in 0..HOSTS {
        hosts.push(Host::connect(addr(90, 10 + i), gw.at).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(gw.child.id());
    let lease_before = metric(gw.at, "realm_gateway_lease_state_bytes");
    let stop = Arc::new(AtomicBool::new(false));
    let limit = Arc::new(AtomicU64::new(BINDINGS));
    let tasks: Vec<_> = hosts
        .into_iter()
        .map(|mut h| {
            let stop = Arc::clone(&stop);
            let limit = Arc::clone(&limit);
            tokio::spawn(async move {
                let n = h.grant_loop(32, &stop, &limit).await;
                (n, h)
            })
        })
        .collect();
    let mut total = 0;
    let mut keep = Vec::new();
    for t in tasks {
        let (n, h) = t.await.unwrap();
        total += n;
        keep.push(h);
    }
    assert_eq!(total, BINDINGS);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(gw.child.id());
    let per = (after.saturating_sub(before) * 1024) as f64 / BINDINGS as f64;
    let lease = (metric(gw.at, "realm_gateway_lease_state_bytes") - lease_before) / BINDINGS as f64;
    drop(keep);
    (before, after, per, lease)
}

const STALLED_ADDRESSES: u16 = 1000;
const STALLED_PER_ADDRESS: u16 = 4;

/// 3. Memory of connections that stall in the middle of a message: VmRSS of
///    a fresh gateway (the baseline), with 1,000 addresses x 4 connections
///    that each sent the first two bytes of a message (so each holds a read
///    buffer) and then nothing, and after `message_timeout_secs` closed them
///    all (the buffers go back to the system: `realm_io::release_free_heap`).
async fn memory_of_stalled_connections() -> (u64, u64, u64) {
    use tokio::io::AsyncWriteExt;
    let gw = start_gateway_with(
        100,
        "normal",
        "message_timeout_secs = 2\nfirst_message_timeout_secs = 30\nmax_connections = 8192",
    );
    let open = |gw: &Gw| metric(gw.at, "realm_gateway_connections");
    while open(&gw) > 0.0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = rss_kib(gw.child.id());
    let mut conns = Vec::new();
    for a in 0..STALLED_ADDRESSES {
        let from = addr(101 + (a / 250) as u8, (a % 250) as u8 + 1);
        for _ in 0..STALLED_PER_ADDRESS {
            let sock = TcpSocket::new_v4().unwrap();
            sock.bind(SocketAddr::V4(SocketAddrV4::new(from, 0)))
                .unwrap();
            let mut s = sock.connect(SocketAddr::V4(gw.at)).await.unwrap();
            // RSIP version 1, REGISTER_REQUEST: the length never comes.
            s.write_all(&[1, 2]).await.unwrap();
            conns.push(s);
        }
    }
    let all = f64::from(STALLED_ADDRESSES * STALLED_PER_ADDRESS);
    let deadline = realm_io::clock::now() + Duration::from_secs(30);
    while open(&gw) < all {
        assert!(
            realm_io::clock::now() < deadline,
            "not all connections were accepted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let with = rss_kib(gw.child.id());
    while open(&gw) > 0.0 {
        assert!(
            realm_io::clock::now() < deadline + Duration::from_secs(30),
            "the stalled connections stayed open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(gw.child.id());
    drop(conns);
    (before, with, after)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass
    // nothing: run only as a benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("gateway_grants: run with `cargo bench -p realm --bench gateway_grants`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("realm gateway bench: {HOSTS} hosts over loopback TCP, {RUN:?} per row");
        println!(
            "store under {} (fs: {})",
            env!("CARGO_TARGET_TMPDIR"),
            fs_type(Path::new(env!("CARGO_TARGET_TMPDIR")))
        );
        let echo = echo_round_trips_per_sec(RUN).await;
        println!("loopback TCP 64-byte request/response, 16 clients:     {echo:>9.0} round trips/s");
        for (b, durability) in [(60u8, "normal"), (70, "full")] {
            let gw = start_gateway(b, durability);
            for (i, window) in [1usize, 8].into_iter().enumerate() {
                // A fresh net per row: hosts register again.
                let rate = grants_per_sec(&gw, b + 1 + i as u8, window, RUN).await;
                println!(
                    "durable grants/s, {durability:<6} durability, window {window}:           {rate:>9.0} grants/s ({:.0}% of echo)",
                    100.0 * rate / echo
                );
            }
            drop(gw);
        }
        let (before, after, per, lease) = memory_per_binding().await;
        println!(
            "memory: VmRSS {before} KiB with 16 hosts -> {after} KiB with {BINDINGS} bindings: {per:.0} bytes per binding"
        );
        println!(
            "        of which the lease manager's own estimate: {lease:.0} bytes per binding"
        );
        let (before, with, after) = memory_of_stalled_connections().await;
        let n = STALLED_ADDRESSES * STALLED_PER_ADDRESS;
        println!(
            "memory: VmRSS {before} KiB fresh (baseline) -> {with} KiB with {n} connections stalled mid-message -> {after} KiB after the message timeout closed them ({:.2}x the baseline)",
            after as f64 / before as f64
        );
    });
}

fn fs_type(p: &Path) -> String {
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(p)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
