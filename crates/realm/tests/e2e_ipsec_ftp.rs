//! End-to-end, issue 4 acceptance (IPsec, IKE, FTP and GRE): real `realm
//! gateway` and `realm host` processes in the `realm_lab` namespaces, traffic
//! made by scapy, Python's `ftplib`/pyftpdlib and sockets opened inside the
//! namespaces, and only between them.
//!
//! * ESP and AH for SPIs leased through RSIPSEC reach the host holding the
//!   SPI; an SPI nobody holds reaches no host (RFC 3104 s5, RFC 3102 s3.2).
//! * Two hosts sharing UDP source port 500 get their own IKE replies, told
//!   apart by the initiator cookie (RFC 3104 s6.1).
//! * Active-mode FTP works with no ALG: the server's data connection comes to
//!   the public address and a port the host leased (RFC 3102 s2: RSIP needs
//!   no ALG, nothing is translated).
//! * A host whose binding's tunnel type is GRE (RFC 2784) reaches the public
//!   host over TCP.
//! * ESP-in-UDP on the shared port 4500 (RFC 3948) leaves from two hosts and
//!   comes back to each by its leased SPI (RFC 3104 s5, s6.1).
//!
//! Needs root (namespaces, raw sockets), iproute2, nftables, python3 with
//! scapy and pyftpdlib: the project's `scripts/ensure-scapy` and
//! `scripts/ensure-pyftpdlib` install the Python packages when missing, and
//! every test fails loudly when something is missing; none is skipped. The
//! labs run one at a time (each has four namespaces and three daemons).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use realm_io::netns::{self, LabStdio};
use realm_lab::topology::{GATEWAY_PUBLIC, PUBLIC_HOST};
use realm_lab::{HostSpec, LabSpec, RsipLab, Transport, traffic};
use serde_json::Value;
use socket2::{Domain, Protocol, Socket, Type};

/// One lab at a time in this binary.
static LAB: Mutex<()> = Mutex::new(());

fn one_lab() -> MutexGuard<'static, ()> {
    LAB.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn realm() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_realm"))
}

/// Runs one of the project's `scripts/ensure-*` (they install only what is
/// missing); panics if it fails.
fn ensure(script: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(script);
    let status = Command::new("bash")
        .arg(&path)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    assert!(status.success(), "{} failed: {status}", path.display());
}

/// Builds the lab and starts the gateway and every host, host `i` holding
/// `bindings[i]` bindings.
fn start(hosts: Vec<HostSpec>, bindings: &[usize]) -> RsipLab {
    let mut spec = LabSpec::new(realm());
    spec.hosts = hosts;
    spec.log_level = "info".into();
    let mut lab = RsipLab::build(spec).expect("building the lab (root, iproute2 and nft needed)");
    lab.start_gateway().expect("starting realm gateway");
    for (i, &n) in bindings.iter().enumerate() {
        lab.start_host(i, n)
            .unwrap_or_else(|e| panic!("starting realm host {}: {e:#}", i + 1));
    }
    lab
}

/// A host holding an RSAP-IP binding of 8 ports and an RSIPSEC binding of
/// `spis` SPIs.
fn ports_and_spis(spis: u16) -> HostSpec {
    let mut h = HostSpec::ports(Transport::Tcp, 8);
    h.args.extend(["--spis".to_owned(), spis.to_string()]);
    h
}

/// The SPIs of a binding as `realm ctl bindings --json` shows them.
fn spis_of(binding: &Value) -> Vec<u32> {
    let v = &binding["spis"];
    if let Some(r) = v.get("Range") {
        let first = r["first"].as_u64().unwrap_or(0);
        let count = r["count"].as_u64().unwrap_or(0);
        (first..first + count)
            .filter_map(|s| u32::try_from(s).ok())
            .collect()
    } else if let Some(l) = v.get("List").and_then(Value::as_array) {
        l.iter()
            .filter_map(|s| u32::try_from(s.as_u64()?).ok())
            .collect()
    } else {
        Vec::new()
    }
}

/// Every SPI host `i` holds.
fn host_spis(lab: &RsipLab, i: usize) -> Vec<u32> {
    let bindings = lab.bindings_of(i).expect("realm ctl bindings");
    let spis: Vec<u32> = bindings.iter().flat_map(spis_of).collect();
    assert!(
        !spis.is_empty(),
        "host{} holds no SPI: {bindings:#?}",
        i + 1
    );
    spis
}

/// The gateway's inbound data plane counters (`realm ctl dataplane --json`).
fn inbound_counters(lab: &RsipLab) -> Value {
    let d = lab
        .gateway_ctl("dataplane", &[])
        .expect("realm ctl dataplane");
    let inbound = d
        .pointer("/counters/inbound")
        .or_else(|| d.get("inbound"))
        .cloned();
    inbound.unwrap_or_else(|| panic!("no inbound counters in {d:#}"))
}

fn counter(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no counter {path} in {v:#}"))
}

/// A raw IPv4 socket for `protocol` opened inside namespace `ns` (it keeps
/// receiving there), with a read timeout long enough for a loaded machine
/// (readers stop at an end marker, never at a quiet spell).
fn raw_socket_in(ns: &str, protocol: u8) -> Socket {
    let s = netns::block_on_in(ns, || async move {
        Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(protocol))),
        )
    })
    .expect("entering the namespace")
    .expect("raw socket");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s
}

/// Reads what `socket` receives up to the first packet carrying `end`
/// (sent after everything else on the same path, so whatever the gateway
/// delivered before it has arrived); returns the SPI (bytes 4-7 of the ESP
/// header, RFC 4303 s2; of the AH header, RFC 4302 s2) of each packet that
/// carries `marker`. Fails if the end packet does not come.
fn spis_received(socket: &Socket, protocol: u8, marker: &[u8], end: &[u8]) -> Vec<u32> {
    let mut spis = Vec::new();
    let mut buf = [0u8; 2048];
    let mut reader = socket;
    loop {
        let n = reader
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("protocol {protocol}: no end packet: {e}; got {spis:x?}"));
        let bytes = &buf[..n];
        if bytes.windows(end.len()).any(|w| w == end) {
            return spis;
        }
        let ihl = usize::from(bytes[0] & 0x0f) * 4;
        assert_eq!(bytes[9], protocol, "raw socket {protocol} got {bytes:02x?}");
        let spi_at = if protocol == ESP { ihl } else { ihl + 4 };
        if bytes.windows(marker.len()).any(|w| w == marker) {
            spis.push(u32::from_be_bytes(
                bytes[spi_at..spi_at + 4].try_into().expect("4 bytes"),
            ));
        }
    }
}

const ESP: u8 = 50;
const AH: u8 = 51;

/// Sends, from the public host, one ESP and one AH packet to the gateway's
/// public address per SPI given as an argument (hex), each carrying the
/// marker. AH: 12-byte ICV, so Payload Len (RFC 4302 s2.2) is
/// (12 + 12) / 4 - 2 = 4; next header 59 (none). Contents are not
/// authentic: the gateway does not verify IPsec, it demultiplexes by SPI.
/// Then the same pair carrying the end marker to each SPI of the fourth
/// argument: the receivers read up to it.
const SEND_ESP_AH: &str = r#"
import sys
from scapy.all import IP, Raw, send, conf
from scapy.layers.ipsec import ESP, AH
conf.verb = 0
dst, marker, end = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
def pair(spi, tag):
    send(IP(dst=dst) / ESP(spi=spi, seq=1, data=tag + b"-esp-" + b"\0" * 16))
    send(IP(dst=dst) / AH(spi=spi, seq=1, nh=59, payloadlen=4, icv=b"\0" * 12)
         / Raw(tag + b"-ah"))
for spi in (int(s, 16) for s in sys.argv[4].split(",")):
    pair(spi, marker)
for spi in (int(s, 16) for s in sys.argv[5].split(",")):
    pair(spi, end)
"#;

#[test]
fn esp_and_ah_reach_the_spi_holder_and_unknown_spis_reach_nobody() {
    let _one = one_lab();
    ensure("ensure-scapy");
    let lab = start(vec![ports_and_spis(2), ports_and_spis(2)], &[2, 2]);
    let spis = [host_spis(&lab, 0), host_spis(&lab, 1)];
    let held: Vec<u32> = spis.iter().flatten().copied().collect();
    // An SPI from the lease space that nobody holds.
    let unknown = (0x1000_0000u32..)
        .find(|s| !held.contains(s))
        .expect("a free SPI");
    let sockets: Vec<[Socket; 2]> = lab
        .host_ns
        .iter()
        .map(|ns| [raw_socket_in(ns, ESP), raw_socket_in(ns, AH)])
        .collect();
    let before = inbound_counters(&lab);
    let kernel_before = gateway_kernel_discards(&lab);

    let marker = "realm-e2e-ipsec";
    let end = "realm-e2e-done";
    let targets = [spis[0][0], spis[1][0], unknown];
    let hex = |spis: &[u32]| {
        spis.iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let args = vec![
        GATEWAY_PUBLIC.to_string(),
        marker.to_owned(),
        end.to_owned(),
        hex(&targets),
        hex(&[spis[0][0], spis[1][0]]),
    ];
    let mut argv = vec!["-c".to_owned(), SEND_ESP_AH.to_owned()];
    argv.extend(args);
    lab.run_ok(
        &lab.public_ns,
        "python3",
        &argv.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .expect("scapy in the public namespace");

    for (i, [esp, ah]) in sockets.iter().enumerate() {
        let got_esp = spis_received(esp, ESP, marker.as_bytes(), end.as_bytes());
        let got_ah = spis_received(ah, AH, marker.as_bytes(), end.as_bytes());
        assert_eq!(
            got_esp,
            vec![spis[i][0]],
            "host{} ESP: got SPIs {got_esp:x?}, sent {targets:x?}\n{}",
            i + 1,
            lab.log_tails(20)
        );
        assert_eq!(
            got_ah,
            vec![spis[i][0]],
            "host{} AH: got SPIs {got_ah:x?}, sent {targets:x?}",
            i + 1
        );
    }

    let after = inbound_counters(&lab);
    let delta = |path: &str| counter(&after, path) - counter(&before, path);
    println!("inbound counters after: {after:#}");
    // Two per host tunnelled, and the two end packets per host; the unknown
    // SPI's two matched no binding.
    assert_eq!(delta("/passed"), 8, "before {before:#}\nafter {after:#}");
    // The unknown SPI's two matched no binding. 192.0.2.1 is also the
    // gateway's own address, so the data plane hands them to the gateway's
    // stack (`local`; `realm_rsip::dataplane` inbound step 6: an unmatched
    // packet to an address of the gateway's own goes there, never to another
    // host), which holds no SA for the SPI and discards them (RFC 4303 s3.4.2:
    // no SA, the packet MUST be discarded) and counts that.
    assert_eq!(delta("/local"), 2, "before {before:#}\nafter {after:#}");
    assert_eq!(delta("/drops/no_binding"), 0);
    let kernel_after = gateway_kernel_discards(&lab);
    println!("gateway kernel discards: before {kernel_before:?}, after {kernel_after:?}");
    assert_eq!(
        (kernel_after.0 - kernel_before.0) + (kernel_after.1 - kernel_before.1),
        2,
        "the gateway's stack discarded the unknown SPI's ESP and AH \
         (InUnknownProtos, XfrmInNoStates): before {kernel_before:?}, after {kernel_after:?}"
    );
}

/// The gateway namespace's counters of IPsec packets its own stack
/// discarded: `Ip: InUnknownProtos` (no ESP/AH handler) and `XfrmInNoStates`
/// (a handler, but no SA for the SPI).
fn gateway_kernel_discards(lab: &RsipLab) -> (u64, u64) {
    let snmp = lab
        .run_ok(&lab.gateway_ns, "cat", &["/proc/net/snmp"])
        .expect("/proc/net/snmp");
    let ip: Vec<Vec<&str>> = snmp
        .lines()
        .filter(|l| l.starts_with("Ip: "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let unknown = ip
        .first()
        .and_then(|names| names.iter().position(|n| *n == "InUnknownProtos"))
        .and_then(|at| ip.get(1)?.get(at)?.parse().ok())
        .expect("Ip: InUnknownProtos in /proc/net/snmp");
    let xfrm = lab
        .run_ok(&lab.gateway_ns, "cat", &["/proc/net/xfrm_stat"])
        .unwrap_or_default();
    let no_states = xfrm
        .lines()
        .find_map(|l| l.strip_prefix("XfrmInNoStates"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (unknown, no_states)
}

/// An ISAKMP header alone (RFC 2408 s3.1): initiator cookie, responder
/// cookie, next payload none, version 1.0, Identity Protection, no flags,
/// message ID 0, length 28.
fn isakmp_header(initiator: [u8; 8], responder: [u8; 8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(28);
    m.extend_from_slice(&initiator);
    m.extend_from_slice(&responder);
    m.extend_from_slice(&[0, 0x10, 2, 0, 0, 0, 0, 0, 0, 0, 0, 28]);
    m
}

/// A UDP socket bound to `(address, port)` inside namespace `ns`, with a
/// read timeout.
fn udp_in(ns: &str, address: Ipv4Addr, port: u16, timeout: Duration) -> std::net::UdpSocket {
    netns::block_on_in(ns, || async move {
        let s = std::net::UdpSocket::bind((address, port))?;
        s.set_read_timeout(Some(timeout))?;
        Ok::<_, std::io::Error>(s)
    })
    .expect("entering the namespace")
    .unwrap_or_else(|e| panic!("UDP {address}:{port} in {ns}: {e}"))
}

/// UDP port of IKE (RFC 2409 s5).
const IKE: u16 = 500;

#[test]
fn hosts_sharing_udp_500_get_their_own_ike_replies_by_initiator_cookie() {
    let _one = one_lab();
    let lab = start(vec![ports_and_spis(1), ports_and_spis(1)], &[2, 2]);
    let cookies = [*b"host1-ck", *b"host2-ck"];
    let step = Duration::from_secs(5);

    // The public host's IKE responder: answers each message to where it came
    // from, same initiator cookie, its own responder cookie.
    let responder = udp_in(&lab.public_ns, PUBLIC_HOST, IKE, step);
    // After both replies it sends each initiator an end message (responder
    // cookie "endofrun"): a host reads up to it, so whatever the gateway
    // delivered to it before has arrived.
    let server = std::thread::spawn(move || -> std::io::Result<Vec<(SocketAddrV4, [u8; 8])>> {
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        for _ in 0..2 {
            let (n, from) = responder.recv_from(&mut buf)?;
            let std::net::SocketAddr::V4(from) = from else {
                continue;
            };
            let cookie: [u8; 8] = buf[..8].try_into().unwrap_or_default();
            assert_eq!(n, 28, "an ISAKMP header");
            responder.send_to(&isakmp_header(cookie, *b"respondr"), from)?;
            seen.push((from, cookie));
        }
        for (from, cookie) in &seen {
            responder.send_to(&isakmp_header(*cookie, *b"endofrun"), from)?;
        }
        Ok(seen)
    });

    // Both hosts bind UDP 500 (each in its namespace) and send their first
    // phase 1 message from it.
    let sockets: Vec<std::net::UdpSocket> = lab
        .host_ns
        .iter()
        .map(|ns| udp_in(ns, Ipv4Addr::UNSPECIFIED, IKE, step))
        .collect();
    for (s, cookie) in sockets.iter().zip(&cookies) {
        s.send_to(&isakmp_header(*cookie, [0; 8]), (PUBLIC_HOST, IKE))
            .expect("send IKE");
    }
    let seen = server
        .join()
        .expect("responder thread")
        .unwrap_or_else(|e| {
            panic!(
                "the responder did not get both messages: {e}\n{}",
                lab.log_tails(20)
            )
        });
    // The responder saw both from the shared address and port (RFC 3104
    // s6.1: nothing is translated).
    for (from, cookie) in &seen {
        assert_eq!(
            *from,
            SocketAddrV4::new(GATEWAY_PUBLIC, IKE),
            "message {cookie:?} came from {from}"
        );
    }
    for (i, s) in sockets.iter().enumerate() {
        let mut buf = [0u8; 512];
        let (n, from) = s
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("host{}: no IKE reply: {e}\n{}", i + 1, lab.log_tails(20)));
        assert_eq!(from, (PUBLIC_HOST, IKE).into());
        assert_eq!(n, 28);
        assert_eq!(
            buf[..8],
            cookies[i],
            "host{} got the reply meant for the other host",
            i + 1
        );
        assert_eq!(&buf[8..16], b"respondr");
        // And nothing else: the next datagram is this host's end message,
        // so the other host's reply (sent before it) did not come here.
        let (n, _) = s.recv_from(&mut buf).unwrap_or_else(|e| {
            panic!("host{}: no end message: {e}\n{}", i + 1, lab.log_tails(20))
        });
        assert_eq!(
            (&buf[..8], &buf[8..16], n),
            (&cookies[i][..], &b"endofrun"[..], 28),
            "host{} got another datagram before its end message",
            i + 1
        );
    }
    let d = lab
        .gateway_ctl("dataplane", &[])
        .expect("realm ctl dataplane");
    println!("gateway data plane after IKE: {d:#}");
}

/// pyftpdlib on the public host: anonymous, read-only, serving argv[1] on
/// argv[2]:argv[3]; writes "ready" to argv[4] once listening and logs the
/// control connection's peer and each active data connection's two ends to
/// argv[5].
const FTP_SERVER: &str = r#"
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.handlers.ftp.dispatchers import ActiveDTP
from pyftpdlib.servers import FTPServer
root, host, port, ready, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
def note(line):
    with open(log, "a") as f:
        f.write(line + "\n")
class Active(ActiveDTP):
    def handle_connect(self):
        peer, me = self.socket.getpeername(), self.socket.getsockname()
        note(f"data {peer[0]}:{peer[1]} from {me[0]}:{me[1]}")
        super().handle_connect()
class Handler(FTPHandler):
    active_dtp = Active
    def on_connect(self):
        note(f"control {self.remote_ip}:{self.remote_port}")
    def on_file_sent(self, file):
        note("sent " + file)
auth = DummyAuthorizer()
auth.add_anonymous(root)
Handler.authorizer = auth
server = FTPServer((host, port), Handler)
with open(ready, "w") as f:
    f.write("ready")
server.serve_forever(timeout=0.2)
"#;

/// Python's ftplib in a host: active mode (PORT; the client listens, on an
/// ephemeral port, i.e. one it leased), RETR argv[3] into argv[4].
const FTP_CLIENT: &str = r#"
import ftplib, sys
ftp = ftplib.FTP()
ftp.connect(sys.argv[1], int(sys.argv[2]), timeout=10)
ftp.login()
ftp.set_pasv(False)
with open(sys.argv[4], "wb") as out:
    ftp.retrbinary("RETR " + sys.argv[3], out.write)
print("control", ftp.sock.getsockname())
ftp.quit()
"#;

const FTP_PORT: u16 = 2121;

/// What the FTP server logged.
#[derive(Debug)]
struct FtpSeen {
    control: SocketAddrV4,
    data_to: SocketAddrV4,
}

/// Host `i` fetches a file of `size` bytes over active-mode FTP from the
/// public host; panics unless the bytes arrive intact. Returns what the
/// server saw.
fn ftp_fetch(lab: &mut RsipLab, i: usize, size: usize) -> FtpSeen {
    ensure("ensure-pyftpdlib");
    let dir = lab.dir().join(format!("ftp{i}"));
    let root = dir.join("root");
    std::fs::create_dir_all(&root).expect("ftp root");
    // Bytes that are not all alike, so a reordered or repeated segment shows.
    let mut x: u32 = 0x1234_5678;
    let blob: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect();
    std::fs::write(root.join("blob.bin"), &blob).expect("write blob");
    let (ready, log, got) = (
        dir.join("ready"),
        dir.join("server.log"),
        dir.join("got.bin"),
    );
    let server_args: Vec<String> = vec![
        "-c".into(),
        FTP_SERVER.into(),
        root.display().to_string(),
        PUBLIC_HOST.to_string(),
        FTP_PORT.to_string(),
        ready.display().to_string(),
        log.display().to_string(),
    ];
    let ns = lab.public_ns.clone();
    let server = lab
        .lab()
        .spawn(&ns, "python3", &server_args, LabStdio::Capture)
        .expect("starting pyftpdlib");
    let start = realm_io::clock::now();
    while !ready.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pyftpdlib did not start: {:?}",
            lab.lab().kill(server).ok()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let client_args: Vec<String> = vec![
        "-c".into(),
        FTP_CLIENT.into(),
        PUBLIC_HOST.to_string(),
        FTP_PORT.to_string(),
        "blob.bin".into(),
        got.display().to_string(),
    ];
    let host_ns = lab.host_ns[i].clone();
    let client = lab.lab().run_ok(&host_ns, "python3", &client_args);
    let _ = lab.lab().kill(server);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let client = client.unwrap_or_else(|e| {
        panic!(
            "ftplib in host{} failed: {e}\nserver log:\n{text}\n{}",
            i + 1,
            lab.log_tails(20)
        )
    });
    let fetched = std::fs::read(&got).expect("the fetched file");
    assert!(
        fetched == blob,
        "host{} fetched {} bytes, not the {} served (or different ones)",
        i + 1,
        fetched.len(),
        blob.len()
    );
    let addr = |prefix: &str| -> SocketAddrV4 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix:?} line in the server log:\n{text}"))
    };
    println!("host{}: {}server log:\n{text}", i + 1, client);
    FtpSeen {
        control: addr("control "),
        data_to: addr("data "),
    }
}

#[test]
fn active_mode_ftp_works_without_an_alg() {
    let _one = one_lab();
    let mut lab = start(vec![HostSpec::ports(Transport::Tcp, 8)], &[1]);
    let leased = lab.leased_ports(0).expect("leased ports");
    let seen = ftp_fetch(&mut lab, 0, 300 * 1024);
    // The server saw the client as the gateway's public address, from a
    // leased port, and opened the data connection to that address and
    // another leased port: the PORT command's address needed no rewriting.
    assert_eq!(*seen.control.ip(), GATEWAY_PUBLIC, "{seen:?}");
    assert!(leased.contains(&seen.control.port()), "{seen:?} {leased:?}");
    assert_eq!(*seen.data_to.ip(), GATEWAY_PUBLIC, "{seen:?}");
    assert!(leased.contains(&seen.data_to.port()), "{seen:?} {leased:?}");
    assert_ne!(seen.control.port(), seen.data_to.port());
}

/// A host config holding one RSAP-IP binding of 8 ports over a GRE tunnel.
const GRE_HOST: &str = r#"
[host]
gateway = "10.0.0.1:4555"

[[host.bindings]]
method = "rsap-ip"
ports = 8
tunnel_type = "gre"
"#;

#[test]
fn a_host_with_a_gre_tunnel_reaches_the_public_host() {
    let _one = one_lab();
    let gre = HostSpec {
        transport: Transport::Tcp,
        args: Vec::new(),
        config: Some(GRE_HOST.to_owned()),
    };
    let mut lab = start(vec![gre], &[1]);
    let bindings = lab.bindings_of(0).expect("bindings");
    assert_eq!(bindings.len(), 1, "{bindings:#?}");
    assert_eq!(bindings[0]["tunnel"], "gre", "{bindings:#?}");
    let before = lab.gateway_ctl("dataplane", &[]).expect("dataplane");

    let check = traffic::http_get(&lab, 0, 8080);
    assert!(
        check.ok,
        "HTTP over GRE: {}\n{}",
        check.detail,
        lab.log_tails(30)
    );
    // Full-size segments both ways: the TUN MTU leaves room for GRE's
    // header, so no tunnel packet is fragmented (the gateway drops outer
    // fragments).
    let seen = ftp_fetch(&mut lab, 0, 256 * 1024);
    assert_eq!(*seen.control.ip(), GATEWAY_PUBLIC);
    assert_eq!(*seen.data_to.ip(), GATEWAY_PUBLIC);

    let after = lab.gateway_ctl("dataplane", &[]).expect("dataplane");
    let delta = |p: &str| counter(&after, p) - counter(&before, p);
    println!("gateway data plane after GRE: {after:#}");
    // At least one full-size packet per 1476 - 40 bytes of the file came in
    // (the gateway sees each segment), and ACKs went out.
    let size: u64 = 256 * 1024;
    assert!(
        delta("/counters/inbound/passed") >= size / (1476 - 40),
        "{after:#}"
    );
    assert!(delta("/counters/outbound/passed") >= 10, "{after:#}");
    let link = lab
        .run_ok(
            &lab.host_ns[0],
            "ip",
            &["-o", "link", "show", "dev", "realm0"],
        )
        .expect("ip link");
    assert!(
        link.contains("mtu 1476 "),
        "the TUN MTU with a GRE binding is 1480 - 4: {link}"
    );
    for dir in ["outbound", "inbound"] {
        let drops = &after["counters"][dir]["drops"];
        let total: u64 = drops
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        assert_eq!(total, 0, "{dir} drops: {drops:#}");
    }
}

/// UDP port of IKE and ESP-in-UDP after NAT traversal (RFC 3948 s2).
const NAT_T: u16 = 4500;

/// An ESP-in-UDP payload (RFC 3948 s2.2): the ESP header (SPI, which must
/// not be zero, then sequence number 1) and some bytes standing for the
/// encrypted rest.
fn esp_in_udp(spi: u32, tag: &[u8]) -> Vec<u8> {
    let mut m = spi.to_be_bytes().to_vec();
    m.extend_from_slice(&1u32.to_be_bytes());
    m.extend_from_slice(tag);
    m.extend_from_slice(&[0; 16]);
    m
}

#[test]
fn esp_in_udp_on_4500_is_demultiplexed_by_spi_for_two_hosts() {
    let _one = one_lab();
    let lab = start(vec![ports_and_spis(1), ports_and_spis(1)], &[2, 2]);
    let spis = [host_spis(&lab, 0)[0], host_spis(&lab, 1)[0]];
    let unknown = (0x1000_0000u32..)
        .find(|s| !spis.contains(s))
        .expect("a free SPI");
    let step = Duration::from_secs(5);

    let peer = udp_in(&lab.public_ns, PUBLIC_HOST, NAT_T, step);
    let sockets: Vec<std::net::UdpSocket> = lab
        .host_ns
        .iter()
        .map(|ns| udp_in(ns, Ipv4Addr::UNSPECIFIED, NAT_T, step))
        .collect();

    // Outbound: each host sends ESP-in-UDP from the shared port 4500 (its
    // outbound SA's SPI is the peer's choice, RFC 3104 s5).
    for (i, s) in sockets.iter().enumerate() {
        let peer_spi = 0x5000_0000 + u32::try_from(i).unwrap();
        s.send_to(&esp_in_udp(peer_spi, b"out"), (PUBLIC_HOST, NAT_T))
            .expect("send ESP-in-UDP");
    }
    let mut buf = [0u8; 512];
    for _ in 0..2 {
        let (n, from) = peer
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("the peer got no ESP-in-UDP: {e}\n{}", lab.log_tails(20)));
        assert_eq!(from, SocketAddrV4::new(GATEWAY_PUBLIC, NAT_T).into());
        assert_eq!(&buf[8..11], b"out", "{:02x?}", &buf[..n]);
    }

    // Inbound: the peer answers under each host's leased SPI, and under one
    // nobody holds, all to 192.0.2.1:4500.
    let to = SocketAddrV4::new(GATEWAY_PUBLIC, NAT_T);
    // Then an end packet under each host's SPI: a host reads up to it.
    for (spi, tag) in [
        (spis[0], &b"in1"[..]),
        (spis[1], b"in2"),
        (unknown, b"in?"),
        (spis[0], b"end"),
        (spis[1], b"end"),
    ] {
        peer.send_to(&esp_in_udp(spi, tag), to).expect("send");
    }
    for (i, s) in sockets.iter().enumerate() {
        let mut got = Vec::new();
        loop {
            let (n, from) = s.recv_from(&mut buf).unwrap_or_else(|e| {
                panic!(
                    "host{}: no end packet: {e}; got {got:x?}\n{}",
                    i + 1,
                    lab.log_tails(20)
                )
            });
            assert_eq!(from, SocketAddrV4::new(PUBLIC_HOST, NAT_T).into());
            if &buf[8..n.min(11)] == b"end" {
                assert_eq!(u32::from_be_bytes(buf[..4].try_into().unwrap()), spis[i]);
                break;
            }
            got.push((
                u32::from_be_bytes(buf[..4].try_into().unwrap()),
                buf[8..n.min(11)].to_vec(),
            ));
        }
        let tag = format!("in{}", i + 1).into_bytes();
        assert_eq!(
            got,
            vec![(spis[i], tag)],
            "host{} got {got:x?} (SPIs {spis:x?}, unknown {unknown:x})\n{}",
            i + 1,
            lab.log_tails(20)
        );
    }
    let d = lab.gateway_ctl("dataplane", &[]).expect("dataplane");
    println!("gateway data plane after ESP-in-UDP: {d:#}");
    // Two, and the two end packets.
    assert_eq!(counter(&d, "/counters/inbound/passed"), 4, "{d:#}");
    assert_eq!(counter(&d, "/counters/outbound/passed"), 2, "{d:#}");
    // The unknown SPI matched no binding: handed to the gateway's own stack
    // (192.0.2.1 is its address too), never to a host.
    assert_eq!(counter(&d, "/counters/inbound/local"), 1, "{d:#}");
}
