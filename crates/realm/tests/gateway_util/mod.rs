//! Shared by the `gateway_*` integration tests: a real `realm gateway`
//! process on its own loopback address (127.A.B.1, unique per test), test
//! hosts on 127.A.B.2.. (RSIP knows hosts by their private address), a
//! blocking RSIP client over TCP and UDP built on realm-wire, and `realm ctl`.
//! Loopback only; every wait is bounded and fails loudly.
#![allow(
    dead_code,
    unreachable_pub,
    missing_debug_implementations,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use realm_wire::rsip::{
    Address, BindId, ClientId, Flow, Message, Ports, RequestOptions, StreamDecoder, View,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_realm");
pub const RSIP_PORT: u16 = 4555;
pub const METRICS_PORT: u16 = 9555;

static NEXT_NET: AtomicU8 = AtomicU8::new(1);

/// A /24 of loopback addresses for one test: 127.A.B.0, A from the process
/// ID, B a per-process counter.
#[derive(Debug, Clone, Copy)]
pub struct Net {
    a: u8,
    b: u8,
}

impl Net {
    pub fn new() -> Net {
        let a = (std::process::id() % 250) as u8 + 2;
        let b = NEXT_NET.fetch_add(1, Ordering::Relaxed);
        Net { a, b }
    }

    /// 127.A.B.last
    pub fn addr(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.a, self.b, last)
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.addr(1)
    }
}

/// Lines added to the helper's daemon sections.
#[derive(Debug, Default, Clone)]
pub struct Sections {
    /// Top-level keys (before every table), e.g. `on_tcp_close = "deregister"`.
    pub top: String,
    /// `[store]` keys, e.g. `durability = "full"`.
    pub store: String,
    /// `[limits]` keys.
    pub limits: String,
    /// Leave out `[metrics]`.
    pub no_metrics: bool,
}

/// A `realm gateway` process with its directory (config, store, log).
pub struct GatewayProc {
    pub net: Net,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    child: Option<Child>,
}

impl GatewayProc {
    /// Writes a config (the daemon sections for this test's addresses and
    /// directory, then `extra`, which holds `[gateway]` and may add keys of
    /// its own) and starts the gateway.
    pub fn start(extra: &str) -> GatewayProc {
        Self::start_on(Net::new(), &Sections::default(), extra)
    }

    /// Like [`GatewayProc::start`] with more daemon settings.
    pub fn start_with(sections: &Sections, extra: &str) -> GatewayProc {
        Self::start_on(Net::new(), sections, extra)
    }

    /// Like [`GatewayProc::start_with`] on a given net.
    pub fn start_on(net: Net, sections: &Sections, extra: &str) -> GatewayProc {
        let Sections {
            top,
            store,
            limits,
            no_metrics,
        } = sections;
        let metrics = if *no_metrics {
            String::new()
        } else {
            format!("[metrics]\nlisten = \"{}:{METRICS_PORT}\"", net.gateway())
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let config = d.join("gateway.toml");
        let text = format!(
            r#"
{top}
[listen]
addresses = ["{gw}"]
port = {RSIP_PORT}

[store]
path = "{db}"
alloc_log = "{alloc}"
{store}

{metrics}

[control]
socket = "{sock}"

[log]
level = "info,realm=debug"

[limits]
{limits}

{extra}
"#,
            gw = net.gateway(),
            db = d.join("gateway.db").display(),
            alloc = d.join("alloc.log").display(),
            sock = d.join("ctl.sock").display(),
        );
        std::fs::write(&config, text).unwrap();
        let mut g = GatewayProc {
            net,
            dir,
            config,
            child: None,
        };
        g.spawn();
        g
    }

    /// Starts the process (again) on the same config and store, and waits
    /// until it accepts TCP and answers on its control socket.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("gateway.log"))
            .unwrap();
        let child = Command::new(BIN)
            .args(["gateway", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn realm gateway");
        self.child = Some(child);
        let deadline = realm_io::clock::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("gateway exited at start: {status}\n{}", self.log());
            }
            let up = TcpStream::connect_timeout(
                &SocketAddr::V4(self.tcp_addr()),
                Duration::from_millis(200),
            )
            .is_ok()
                && self.ctl_raw(&["status"]).status.success();
            if up {
                return;
            }
            assert!(
                realm_io::clock::now() < deadline,
                "gateway did not come up\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn tcp_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.net.gateway(), RSIP_PORT)
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("gateway.db")
    }

    pub fn alloc_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alloc.log")).unwrap_or_default()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().expect("running");
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// SIGTERM; the exit status (waits at most 20 s).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        terminate_child(&mut c, "gateway", || self.log())
    }

    pub fn ctl_raw(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .arg("ctl")
            .arg("--socket")
            .arg(self.dir.path().join("ctl.sock"))
            .args(args)
            .output()
            .unwrap()
    }

    /// `realm ctl --json ARGS`, parsed.
    pub fn ctl(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ctl_raw(&all);
        assert!(
            out.status.success(),
            "realm ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The bind IDs `realm ctl bindings --json` lists.
    pub fn bind_ids(&self) -> Vec<u32> {
        self.ctl(&["bindings"])
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["bind"].as_u64().unwrap() as u32)
            .collect()
    }

    /// CPU time the process has used (user + system), in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name (which is in parentheses).
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    /// The metrics text.
    pub fn metrics(&self) -> String {
        http_get(
            SocketAddrV4::new(self.net.gateway(), METRICS_PORT),
            "/metrics",
        )
    }

    /// One sample's value (`name` with its labels, exactly as exposed).
    pub fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics();
        metric_in(&text, sample).unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn metric_in(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// A minimal HTTP/1.0 GET for the test (the gateway's server is hyper).
pub fn http_get(at: SocketAddrV4, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&at.into(), Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    body.to_owned()
}

/// A blocking RSIP client over TCP from a chosen loopback address.
pub struct TcpHost {
    pub stream: TcpStream,
    decoder: StreamDecoder,
}

impl TcpHost {
    pub fn connect(from: Ipv4Addr, to: SocketAddrV4) -> TcpHost {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::V4(SocketAddrV4::new(from, 0)).into())
            .unwrap();
        s.connect_timeout(&SocketAddr::V4(to).into(), Duration::from_secs(5))
            .unwrap();
        let stream: TcpStream = s.into();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        TcpHost {
            stream,
            decoder: StreamDecoder::new(65535),
        }
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn send(&mut self, m: &Message) {
        self.send_bytes(&m.to_bytes());
    }

    /// [`TcpHost::send`] that reports a failed write instead of panicking
    /// (for tests that kill the gateway mid-run).
    #[allow(dead_code)]
    pub fn try_send(&mut self, m: &Message) -> bool {
        self.stream.write_all(&m.to_bytes()).is_ok()
    }

    /// The next message, or None at end of stream (or on a read error).
    pub fn try_recv(&mut self) -> Option<Message> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(f) = self.decoder.next_frame().unwrap() {
                return Some(Message::parse(f).expect("the gateway sent a valid message"));
            }
            let n = match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => n,
            };
            let mut data = &buf[..n];
            while !data.is_empty() {
                let took = self.decoder.push(data);
                data = &data[took..];
                if !data.is_empty() {
                    panic!("decoder full");
                }
            }
        }
    }

    pub fn recv(&mut self) -> Message {
        self.try_recv().expect("an answer from the gateway")
    }

    pub fn exchange(&mut self, m: &Message) -> Message {
        self.send(m);
        self.recv()
    }

    /// True when the gateway closed the connection (EOF within `within`).
    pub fn closed_within(&mut self, within: Duration) -> bool {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut buf = [0u8; 1024];
        let deadline = realm_io::clock::now() + within;
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
            if realm_io::clock::now() > deadline {
                return false;
            }
        }
    }

    pub fn register(&mut self) -> ClientId {
        let r = self.exchange(&Message::register_request(None));
        match r.view() {
            View::RegisterResponse { client_id, .. } => client_id,
            other => panic!("expected REGISTER_RESPONSE, got {other:?}"),
        }
    }
}

/// A blocking RSIP client over UDP from a chosen loopback address.
pub struct UdpHost {
    pub socket: UdpSocket,
    pub to: SocketAddrV4,
}

impl UdpHost {
    pub fn bind(from: Ipv4Addr, to: SocketAddrV4) -> UdpHost {
        let socket = UdpSocket::bind(SocketAddrV4::new(from, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        UdpHost { socket, to }
    }

    pub fn send_bytes(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.to).unwrap();
    }

    pub fn recv(&self) -> Message {
        let mut buf = [0u8; 65536];
        let (n, _) = self.socket.recv_from(&mut buf).expect("a UDP answer");
        Message::parse(&buf[..n]).expect("the gateway sent a valid message")
    }

    pub fn exchange(&self, m: &Message) -> Message {
        self.send_bytes(&m.to_bytes());
        self.recv()
    }
}

/// ASSIGN_REQUEST_RSAP-IP for `count` "don't care" ports, no remote.
pub fn assign_ports(client: ClientId, count: u8, counter: Option<u32>) -> Message {
    Message::assign_request_rsap_ip(
        client,
        Flow {
            local_address: Address::DONT_CARE_V4,
            local_ports: Ports::DontCare { count },
            remote_address: Address::DONT_CARE_V4,
            remote_ports: Ports::DONT_CARE_ONE,
        },
        RequestOptions {
            message_counter: counter,
            ..RequestOptions::default()
        },
    )
    .unwrap()
}

/// The bind ID of an ASSIGN_RESPONSE_*.
pub fn bind_of(m: &Message) -> BindId {
    m.bind_id()
        .unwrap_or_else(|| panic!("expected a binding, got {:?}", m.view()))
}

pub fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

pub fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = realm_io::clock::now() + within;
    while !f() {
        assert!(
            realm_io::clock::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}

/// SIGTERM to `child`; its exit status, waiting at most 20 s (then SIGKILL
/// and a panic with `what` and `log()`).
pub fn terminate_child(
    child: &mut Child,
    what: &str,
    log: impl Fn() -> String,
) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = realm_io::clock::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if realm_io::clock::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not stop on SIGTERM\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- RFC 3103 Appendix C: gateway configurations matching each example ----

/// 16.1: macro local policy, no remote policy, local network 10.20.60.0/24.
pub const CONFIG_16_1: &str = r#"
[gateway]
methods = ["rsap-ip"]
tunnel_types = ["ip-ip"]
registration_lease_secs = 600
max_binding_lease_secs = 1800
local_networks = ["10.20.60.0/24"]
[[gateway.pool]]
addresses = "149.112.240.156"
ports = ["1234-65535"]
"#;

/// 16.2: micro/micro policy; the LISTEN admin override (RFC 3103 10.6)
/// names `host`.
pub fn config_16_2(host: Ipv4Addr) -> String {
    format!(
        r#"
[gateway]
methods = ["rsap-ip", "rsa-ip"]
tunnel_types = ["ip-ip", "gre"]
local_flow_policy = "micro"
remote_flow_policy = "micro"
registration_lease_secs = 600
default_binding_lease_secs = 600
listen = {{ admin_override = ["{host}"] }}
[[gateway.pool]]
addresses = "149.112.240.156"
ports = ["2049-65535"]
"#
    )
}

/// 16.3: macro remote policy, RSA-IP, www.foo.com denied.
pub const CONFIG_16_3: &str = r#"
[gateway]
methods = ["rsap-ip", "rsa-ip"]
tunnel_types = ["ip-ip", "l2tp"]
remote_flow_policy = "macro"
registration_lease_secs = 600
[[gateway.pool]]
addresses = "149.112.240.17"
shared = false
[[gateway.remote_rules]]
action = "deny"
name = "www.foo.com"
"#;
