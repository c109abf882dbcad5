//! `realm peer` end to end: two daemons (the built binary) in two network
//! namespaces joined by a veth, manual keys, real TCP through their TUNs.
//! Each test proves, for one kind of SA, that
//! - 1 MiB goes each way over TCP and comes back intact,
//! - `realm ctl sas --json` counters moved on both sides, with no drops,
//! - a capture on the underlay veth holds only ESP (the payload's marker
//!   never appears in clear), and tshark decrypts it with the keys the
//!   daemons exported (`esp_sa_export`); for AH the payload is visible and
//!   tshark sees AH around TCP.
//!
//! Needs root, iproute2 and tshark (`scripts/install-deps`): without them
//! these tests FAIL, they never skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `side` indexes several per-side arrays at once.
#![allow(clippy::needless_range_loop)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use realm_io::netns::{self, ChildId, Lab, LabStdio};
use serde_json::Value;

const REALM: &str = env!("CARGO_BIN_EXE_realm");
const WAIT: Duration = Duration::from_secs(20);

/// Underlay addresses of peers A and B, on one veth link.
const UNDERLAY: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
/// Tunnel mode: the network behind each peer and its own address in it (on its TUN).
const NETS: [&str; 2] = ["203.0.113.0/24", "198.51.100.0/24"];
const INNER: [Ipv4Addr; 2] = [
    Ipv4Addr::new(203, 0, 113, 1),
    Ipv4Addr::new(198, 51, 100, 1),
];
/// SPI of the SA each side sends with (A->B, B->A).
const SPI: [u32; 2] = [0x0000_1001, 0x0000_2001];
const MARKER: &[u8] = b"REALM-PLAINTEXT-MARKER:";
const PORT: u16 = 5001;

#[derive(Clone, Copy, Debug)]
struct Suite {
    protocol: &'static str,
    mode: &'static str,
    encryption: &'static str,
    encryption_key_len: usize,
    integrity: &'static str,
    integrity_key_len: usize,
    udp_encap: bool,
}

fn key_hex(len: usize, seed: u32) -> String {
    let mut s = String::from("0x");
    for i in 0..len {
        s.push_str(&format!("{:02x}", (seed as usize * 37 + i * 11) as u8));
    }
    s
}

struct Pair {
    lab: Lab,
    ns: [String; 2],
    dir: PathBuf,
    peers: [Option<ChildId>; 2],
}

impl Pair {
    fn new() -> Pair {
        if let Err(e) = netns::require_privileges() {
            panic!(
                "realm peer tests build network namespaces: run them as root with iproute2: {e}"
            );
        }
        let mut lab = Lab::new().expect("lab");
        let a = lab.add_namespace("peer_a").unwrap();
        let b = lab.add_namespace("peer_b").unwrap();
        lab.veth((&a, "eth0"), (&b, "eth0")).unwrap();
        for (ns, addr) in [(&a, UNDERLAY[0]), (&b, UNDERLAY[1])] {
            lab.add_address(ns, "eth0", realm_io::Ipv4Prefix::new(addr, 24).unwrap())
                .unwrap();
        }
        let dir = std::env::temp_dir().join(format!("realm-peer-test-{}", lab.tag()));
        std::fs::create_dir_all(&dir).unwrap();
        Pair {
            lab,
            ns: [a, b],
            dir,
            peers: [None, None],
        }
    }

    fn socket(&self, side: usize) -> PathBuf {
        self.dir.join(format!("ctl-{side}.sock"))
    }

    fn log(&self, side: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("peer-{side}.log"))).unwrap_or_default()
    }

    fn export(&self, side: usize) -> PathBuf {
        self.dir.join(format!("esp_sa-{side}"))
    }

    /// The configuration of side 0 (A) or 1 (B): the mirror images of one SA pair.
    fn config(&self, side: usize, s: Suite, keys: [u32; 2]) -> String {
        let (me, other) = (side, 1 - side);
        let transport = s.mode == "transport";
        let (tun, sel_out, sel_in) = if transport {
            (
                format!("routes = [\"{}/32\"]", UNDERLAY[other]),
                format!(
                    "{{ src = \"{}\", dst = \"{}\" }}",
                    UNDERLAY[me], UNDERLAY[other]
                ),
                format!(
                    "{{ src = \"{}\", dst = \"{}\" }}",
                    UNDERLAY[other], UNDERLAY[me]
                ),
            )
        } else {
            (
                format!(
                    "addresses = [\"{}/32\"]\nroutes = [\"{}\"]",
                    INNER[me], NETS[other]
                ),
                format!("{{ src = \"{}\", dst = \"{}\" }}", NETS[me], NETS[other]),
                format!("{{ src = \"{}\", dst = \"{}\" }}", NETS[other], NETS[me]),
            )
        };
        let sa = |spi: u32, dir: &str, src: Ipv4Addr, dst: Ipv4Addr, sel: &str, key: u32| {
            let mut t = format!(
                "[[sa]]\nspi = \"{spi:#010x}\"\ndirection = \"{dir}\"\nprotocol = \"{}\"\nmode = \"{}\"\n\
                 src = \"{src}\"\ndst = \"{dst}\"\nencryption = \"{}\"\nintegrity = \"{}\"\nselector = {sel}\n",
                s.protocol, s.mode, s.encryption, s.integrity
            );
            if s.encryption_key_len > 0 {
                t += &format!(
                    "encryption_key = \"{}\"\n",
                    key_hex(s.encryption_key_len, key)
                );
            }
            if s.integrity_key_len > 0 {
                t += &format!(
                    "integrity_key = \"{}\"\n",
                    key_hex(s.integrity_key_len, key + 7)
                );
            }
            if s.udp_encap {
                t += "udp_encap = { src_port = 4500, dst_port = 4500 }\n";
            }
            t
        };
        format!(
            "log_level = \"info\"\ncontrol_socket = \"{socket}\"\nesp_sa_export = \"{export}\"\n\
             [tun]\nname = \"realm0\"\nmtu = 1400\n{tun}\n\
             [underlay]\naddress = \"{addr}\"\ndevice = \"eth0\"\n\n{out}\n{inb}\n\
             [[policy]]\ndirection = \"outbound\"\nselector = {sel_out}\naction = \"apply\"\nsa = [\"{spi_out:#010x}\"]\n\n\
             [[policy]]\ndirection = \"inbound\"\nselector = {sel_in}\naction = \"apply\"\nsa = [\"{spi_in:#010x}\"]\n",
            socket = self.socket(side).display(),
            export = self.export(side).display(),
            addr = UNDERLAY[me],
            out = sa(
                SPI[me],
                "outbound",
                UNDERLAY[me],
                UNDERLAY[other],
                &sel_out,
                keys[me]
            ),
            inb = sa(
                SPI[other],
                "inbound",
                UNDERLAY[other],
                UNDERLAY[me],
                &sel_in,
                keys[other]
            ),
            spi_out = SPI[me],
            spi_in = SPI[other],
        )
    }

    /// Starts `realm peer` on `side` and waits until its control socket answers.
    fn start(&mut self, side: usize, config: &str) {
        let path = self.dir.join(format!("peer-{side}.toml"));
        std::fs::write(&path, config).unwrap();
        let log = self.dir.join(format!("peer-{side}.log"));
        let script = r#"exec "$0" peer --config "$1" 2>"$2""#;
        let args = [script, REALM, path.to_str().unwrap(), log.to_str().unwrap()];
        let id = self
            .lab
            .spawn(
                &self.ns[side].clone(),
                "sh",
                &[&["-c"][..], &args[..]].concat(),
                LabStdio::Null,
            )
            .unwrap();
        self.peers[side] = Some(id);
        let deadline = realm_io::now() + WAIT;
        loop {
            if ctl(&self.socket(side), "status").is_ok() {
                return;
            }
            if let Some(Some(status)) = self.lab.child_mut(id).map(|c| c.try_wait().unwrap()) {
                panic!(
                    "realm peer {side} exited with {status}:\n{}",
                    self.log(side)
                );
            }
            assert!(
                realm_io::now() < deadline,
                "realm peer {side} did not come up:\n{}",
                self.log(side)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`Pair::config`] with `underlay` (lines) added to `[underlay]`.
    fn config_with(&self, side: usize, s: Suite, underlay: &str) -> String {
        self.config(side, s, SPI).replace(
            "device = \"eth0\"\n",
            &format!("device = \"eth0\"\n{underlay}"),
        )
    }

    /// Starts both peers, `underlay` (lines) added to their `[underlay]`.
    fn start_both(&mut self, s: Suite, underlay: &str) {
        for side in 0..2 {
            let c = self.config_with(side, s, underlay);
            self.start(side, &c);
        }
    }

    fn sas(&self, side: usize) -> Vec<Value> {
        match ctl(&self.socket(side), "sas") {
            Ok(Value::Array(v)) => v,
            other => panic!("ctl sas on {side}: {other:?}\n{}", self.log(side)),
        }
    }

    /// SIGTERM to a peer: it must exit 0 and remove its socket file and TUN.
    fn stop(&mut self, side: usize) {
        let id = self.peers[side].take().unwrap();
        let pid = self.lab.child_mut(id).unwrap().id();
        signal(pid, "TERM");
        let out = self.lab.wait(id).unwrap();
        assert!(
            out.status.success(),
            "peer {side} exit {}:\n{}",
            out.status,
            self.log(side)
        );
        assert!(!self.socket(side).exists(), "control socket left behind");
        let links = self
            .lab
            .run(&self.ns[side], "ip", &["link", "show", "realm0"])
            .unwrap();
        assert!(!links.status.success(), "TUN left behind");
        assert!(
            self.log(side).contains("realm peer stopping"),
            "{}",
            self.log(side)
        );
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for side in 0..2 {
                eprintln!("--- realm peer {side} log ---\n{}", self.log(side));
            }
        }
        // REALM_TEST_KEEP=1 keeps configs, logs, captures and key files for a look.
        if std::env::var_os("REALM_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// `realm ctl --socket S COMMAND --json`, parsed.
fn ctl(socket: &Path, command: &str) -> Result<Value, String> {
    let out = Command::new(REALM)
        .args(["ctl", "--socket"])
        .arg(socket)
        .args([command, "--json"])
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// 1 MiB of recognisable data: MARKER and a counter, repeated.
fn payload() -> Vec<u8> {
    let mut d = Vec::with_capacity(1 << 20);
    let mut i = 0u32;
    while d.len() < 1 << 20 {
        d.extend_from_slice(MARKER);
        d.extend_from_slice(format!("{i:08}\n").as_bytes());
        i += 1;
    }
    d.truncate(1 << 20);
    d
}

/// A TCP echo server in `server_ns` on `addr`; a client in `client_ns` sends
/// the payload, the server sends it all back after EOF, the client compares.
fn tcp_echo(server_ns: &str, addr: Ipv4Addr, client_ns: &str) -> SocketAddr {
    let listener = netns::in_namespace(server_ns, || TcpListener::bind((addr, PORT)))
        .unwrap()
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, from) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&got).unwrap();
        from
    });
    let data = payload();
    let mut c = netns::in_namespace(client_ns, || {
        TcpStream::connect_timeout(&SocketAddr::from((addr, PORT)), WAIT)
    })
    .unwrap()
    .expect("TCP connect through the peers");
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.set_write_timeout(Some(WAIT)).unwrap();
    c.write_all(&data).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back.len(), data.len(), "echoed length");
    assert!(back == data, "echoed bytes differ");
    server.join().unwrap()
}

/// dumpcap writing everything on `ns`'s eth0 to a pcap file, until [`Capture::stop`].
struct Capture {
    id: ChildId,
    file: PathBuf,
    stderr: std::thread::JoinHandle<String>,
}

impl Capture {
    fn start(pair: &mut Pair, side: usize) -> Capture {
        let file = pair.dir.join(format!("underlay-{side}.pcap"));
        let ns = pair.ns[side].clone();
        let id = pair
            .lab
            .spawn(
                &ns,
                "dumpcap",
                &["-i", "eth0", "-B", "64", "-P", "-w", file.to_str().unwrap()],
                LabStdio::Capture,
            )
            .expect("dumpcap (tshark's capture engine) is required (scripts/install-deps)");
        // dumpcap prints "Capturing on 'eth0'" BEFORE it opens the device, and
        // "File: ..." once the device and the file are open.
        let stderr = pair.lab.child_mut(id).unwrap().stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut said = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("File:") {
                    let _ = tx.send(());
                }
                said += &line;
                said.push('\n');
            }
            said
        });
        if rx.recv_timeout(WAIT).is_err() {
            pair.lab.kill(id).ok();
            panic!(
                "dumpcap did not start capturing: {}",
                stderr.join().unwrap()
            );
        }
        Capture { id, file, stderr }
    }

    /// Stops dumpcap; returns the file and what dumpcap said (its counts).
    fn stop(self, pair: &mut Pair) -> (PathBuf, String) {
        // Let the kernel hand over its last ring-buffer block (retired on a
        // timeout); what is still in it when dumpcap stops is lost.
        std::thread::sleep(Duration::from_millis(500));
        let pid = pair.lab.child_mut(self.id).unwrap().id();
        signal(pid, "INT");
        let status = pair.lab.child_mut(self.id).unwrap().wait().unwrap();
        let said = self.stderr.join().unwrap();
        assert!(status.success(), "dumpcap: {said}");
        (self.file, said)
    }
}

/// `frame.protocols` of every frame, as tshark sees them (optionally with a
/// Wireshark profile directory holding `esp_sa`).
fn protocols(file: &Path, home: Option<&Path>) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(file);
    cmd.args(["-T", "fields", "-e", "frame.protocols", "-e", "tcp.port"]);
    match home {
        Some(h) => {
            cmd.env("HOME", h);
            cmd.args(["-o", "esp.enable_encryption_decode:TRUE"]);
        }
        None => {
            cmd.env("HOME", file.parent().unwrap());
        }
    }
    let out = cmd.output().expect("tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn count(sa: &Value, field: &str) -> u64 {
    sa[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {sa}"))
}

/// The whole scenario for one suite; returns the TCP client's address as the
/// server saw it.
fn carry_tcp(s: Suite) -> (Pair, SocketAddr) {
    carry_tcp_with(s, "")
}

/// [`carry_tcp`] with `underlay` lines added to both peers' `[underlay]`.
fn carry_tcp_with(s: Suite, underlay: &str) -> (Pair, SocketAddr) {
    let mut pair = Pair::new();
    pair.start_both(s, underlay);
    let capture = Capture::start(&mut pair, 1);
    let server = if s.mode == "transport" {
        UNDERLAY[1]
    } else {
        INNER[1]
    };
    let (a, b) = (pair.ns[0].clone(), pair.ns[1].clone());
    let from = tcp_echo(&b, server, &a);
    let (file, said) = capture.stop(&mut pair);

    // Counters on both sides: the outbound SA of each carried >= 1 MiB of
    // TCP (plus headers), the inbound SA of each the same; nothing dropped.
    for side in 0..2 {
        let sas = pair.sas(side);
        assert_eq!(sas.len(), 2, "{sas:?}");
        for sa in &sas {
            assert_eq!(sa["protocol"], s.protocol);
            assert_eq!(sa["mode"], s.mode);
            assert!(count(sa, "packets") > 700, "side {side}: {sa}");
            assert!(count(sa, "bytes") > 1 << 20, "side {side}: {sa}");
            for (reason, n) in sa["drops"].as_object().unwrap() {
                assert_eq!(n, 0, "side {side} {reason}: {sa}");
            }
        }
        let out = sas.iter().find(|x| x["direction"] == "outbound").unwrap();
        assert_eq!(out["spi"], format!("{:#010x}", SPI[side]));
        assert_eq!(count(out, "sequence"), count(out, "packets"));
    }

    // The capture: traffic was there, and only ESP (or AH) carried it.
    let bytes = std::fs::read(&file).unwrap();
    let frames = protocols(&file, None);
    let ip: Vec<&String> = frames.iter().filter(|f| f.contains(":ip:")).collect();
    // 1 MiB each way is at least 2 x 771 full-sized segments (MSS 1360) and
    // some ACKs; the capture may lose some on a loaded machine, but never most.
    // ESP-in-UDP leaves in UDP GSO superpackets, which cross the veth whole:
    // fewer, larger frames (up to 64 KiB), so count bytes too.
    assert!(
        bytes.len() > 2 << 20,
        "captured {} bytes; dumpcap: {said}",
        bytes.len()
    );
    let min_frames = if s.udp_encap { 10 } else { 1000 };
    assert!(
        ip.len() > min_frames,
        "captured {} IPv4 frames; dumpcap: {said}",
        ip.len()
    );
    let outer = match (s.protocol, s.udp_encap) {
        ("ah", _) => "eth:ethertype:ip:ah",
        (_, true) => "eth:ethertype:ip:udp:udpencap:esp",
        _ => "eth:ethertype:ip:esp",
    };
    for f in &ip {
        assert!(
            f.starts_with(outer),
            "unexpected frame {f:?} (want {outer})"
        );
        if s.protocol == "esp" {
            assert!(!f.contains("tcp"), "TCP visible without keys: {f:?}");
        }
    }
    if s.protocol == "esp" {
        assert!(!contains(&bytes, MARKER), "plaintext on the wire");
        // With the exported keys, tshark finds our TCP stream inside.
        let home = pair.dir.join("home");
        let uat = home.join(".config/wireshark");
        std::fs::create_dir_all(&uat).unwrap();
        let keys = std::fs::read_to_string(pair.export(0)).unwrap()
            + &std::fs::read_to_string(pair.export(1)).unwrap();
        assert_eq!(keys.lines().count(), 4, "{keys}");
        std::fs::write(uat.join("esp_sa"), keys).unwrap();
        let decrypted = protocols(&file, Some(&home));
        let tcp = decrypted
            .iter()
            .filter(|f| f.contains(":esp:") && f.contains(":tcp") && f.contains(&PORT.to_string()))
            .count();
        // A GSO superpacket is many ESP datagrams in one frame, which tshark
        // reads as one ESP packet: only single-datagram frames decrypt.
        let min_tcp = if s.udp_encap { 1 } else { 1000 };
        assert!(tcp >= min_tcp, "tshark decrypted only {tcp} TCP frames");
    } else {
        // AH authenticates, it does not hide: the payload is there in clear.
        assert!(contains(&bytes, MARKER));
        assert!(ip.iter().filter(|f| f.contains(":ah:tcp")).count() > 1000);
    }
    (pair, from)
}

#[test]
fn tcp_over_esp_transport_mode() {
    let s = Suite {
        protocol: "esp",
        mode: "transport",
        encryption: "aes-gcm-128",
        encryption_key_len: 20,
        integrity: "none",
        integrity_key_len: 0,
        udp_encap: false,
    };
    let (mut pair, from) = carry_tcp(s);
    // Transport mode: the hosts' own addresses end to end.
    assert_eq!(from.ip(), UNDERLAY[0]);
    pair.stop(0);
    pair.stop(1);
}

#[test]
fn tcp_over_esp_tunnel_mode() {
    let s = Suite {
        protocol: "esp",
        mode: "tunnel",
        encryption: "aes-cbc-256",
        encryption_key_len: 32,
        integrity: "hmac-sha256-128",
        integrity_key_len: 32,
        udp_encap: false,
    };
    let (_pair, from) = carry_tcp(s);
    // Tunnel mode: the inner addresses, on the TUNs.
    assert_eq!(from.ip(), INNER[0]);
}

const GCM_TUNNEL: Suite = Suite {
    protocol: "esp",
    mode: "tunnel",
    encryption: "aes-gcm-128",
    encryption_key_len: 20,
    integrity: "none",
    integrity_key_len: 0,
    udp_encap: false,
};

/// Plain ESP on an Ethernet underlay with a device: both peers send and
/// receive it through their AF_PACKET sockets (the raw ESP socket sees none
/// of it: the nftables ingress rule keeps it from the IP stack), and only the
/// first packet, sent before the next hop was looked up, takes the raw socket.
#[test]
fn plain_esp_goes_through_af_packet() {
    let (mut pair, from) = carry_tcp(GCM_TUNNEL);
    assert_eq!(from.ip(), INNER[0]);
    for side in 0..2 {
        let status = ctl(&pair.socket(side), "status").unwrap();
        let sockets = status["config"]["sockets"].to_string();
        assert!(
            sockets.contains("af_packet (ESP send)")
                && sockets.contains("af_packet (ESP receive on eth0, ring)"),
            "{status}"
        );
        let c = &status["counters"];
        let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{k} in {status}"));
        assert!(n("af_packet_tx_packets") > 700, "{status}");
        assert!(n("af_packet_rx_packets") > 700, "{status}");
        assert_eq!(
            n("underlay_rx_packets"),
            n("af_packet_rx_packets"),
            "{status}"
        );
        assert_eq!(
            n("underlay_tx_packets"),
            n("af_packet_tx_packets") + n("af_packet_tx_fallbacks"),
            "{status}"
        );
        assert!(n("af_packet_tx_fallbacks") <= 2, "{status}");
        assert_eq!(n("af_packet_rx_drops"), 0, "{status}");
        assert!(
            pair.log(side)
                .contains("plain ESP to this peer goes through AF_PACKET"),
            "{}",
            pair.log(side)
        );
        // The ingress rule is there while the daemon runs, and goes with it.
        let table = format!("realm_peer_esp_{}", u32::from(UNDERLAY[side]));
        let list = |pair: &Pair| {
            pair.lab
                .run(&pair.ns[side], "nft", &["list", "table", "netdev", &table])
                .unwrap()
        };
        assert!(list(&pair).status.success());
        pair.stop(side);
        assert!(!list(&pair).status.success(), "{table} left behind");
    }
}

/// A peer killed (SIGKILL) leaves its ingress rule, which drops plain ESP
/// for the IP stack; restarted with `af_packet = false` it removes the rule
/// and receives ESP on its raw socket again.
#[test]
fn restart_removes_a_killed_peers_ingress_rule() {
    let mut pair = Pair::new();
    pair.start_both(GCM_TUNNEL, "");
    let table = format!("realm_peer_esp_{}", u32::from(UNDERLAY[0]));
    let listed = |pair: &Pair| {
        pair.lab
            .run(&pair.ns[0], "nft", &["list", "table", "netdev", &table])
            .unwrap()
            .status
            .success()
    };
    assert!(listed(&pair));
    let id = pair.peers[0].take().unwrap();
    pair.lab.kill(id).unwrap();
    assert!(listed(&pair), "SIGKILL cannot remove the rule");
    let c = pair.config_with(0, GCM_TUNNEL, "af_packet = false\n");
    pair.start(0, &c);
    assert!(!listed(&pair), "stale {table} still there");
    let (a, b) = (pair.ns[0].clone(), pair.ns[1].clone());
    assert_eq!(tcp_echo(&b, INNER[1], &a).ip(), INNER[0]);
    let status = ctl(&pair.socket(0), "status").unwrap();
    assert!(
        status["counters"]["underlay_rx_packets"].as_u64().unwrap() > 700,
        "{status}"
    );
    assert_eq!(status["counters"]["af_packet_rx_packets"], 0, "{status}");
}

/// `af_packet = false`: plain ESP through the raw sockets only, as before.
#[test]
fn plain_esp_through_raw_sockets_when_af_packet_is_off() {
    let (pair, _) = carry_tcp_with(GCM_TUNNEL, "af_packet = false\n");
    for side in 0..2 {
        let status = ctl(&pair.socket(side), "status").unwrap();
        assert!(
            !status["config"]["sockets"]
                .to_string()
                .contains("af_packet"),
            "{status}"
        );
        let c = &status["counters"];
        assert_eq!(c["af_packet_tx_packets"], 0, "{status}");
        assert_eq!(c["af_packet_rx_packets"], 0, "{status}");
        assert_eq!(c["af_packet_tx_fallbacks"], 0, "{status}");
        assert!(c["underlay_rx_packets"].as_u64().unwrap() > 700, "{status}");
    }
}

#[test]
fn tcp_over_udp_encapsulated_esp() {
    let s = Suite {
        protocol: "esp",
        mode: "tunnel",
        encryption: "aes-gcm-256",
        encryption_key_len: 36,
        integrity: "none",
        integrity_key_len: 0,
        udp_encap: true,
    };
    let (pair, _) = carry_tcp(s);
    let status = ctl(&pair.socket(1), "status").unwrap();
    let sockets = status["config"]["sockets"].to_string();
    assert!(
        sockets.contains("udp 4500") && !sockets.contains("raw 50"),
        "{status}"
    );
}

#[test]
fn tcp_over_ah_transport_mode() {
    let s = Suite {
        protocol: "ah",
        mode: "transport",
        encryption: "null",
        encryption_key_len: 0,
        integrity: "hmac-sha256-128",
        integrity_key_len: 32,
        udp_encap: false,
    };
    carry_tcp(s);
}

/// B was given another key for A's SA: every packet from A fails the ICV
/// check, is counted under `icv_mismatch`, and nothing reaches B's TUN.
#[test]
fn wrong_key_is_dropped_and_counted() {
    let s = GCM_TUNNEL;
    let mut pair = Pair::new();
    let a = pair.config(0, s, SPI);
    let b = pair.config(1, s, [SPI[0] + 1, SPI[1]]);
    pair.start(0, &a);
    pair.start(1, &b);
    let receiver = netns::in_namespace(&pair.ns[1].clone(), || UdpSocket::bind((INNER[1], 7000)))
        .unwrap()
        .unwrap();
    receiver.set_nonblocking(true).unwrap();
    let sender = netns::in_namespace(&pair.ns[0].clone(), || UdpSocket::bind((INNER[0], 0)))
        .unwrap()
        .unwrap();
    for _ in 0..5 {
        sender.send_to(b"hello", (INNER[1], 7000)).unwrap();
    }
    // B has handled all five once it has counted five drops (a delivered
    // packet is not counted as one); then nothing may be waiting.
    let inbound = || {
        let sas = pair.sas(1);
        sas.into_iter()
            .find(|x| x["direction"] == "inbound")
            .unwrap()
    };
    let start = realm_io::clock::now();
    while inbound()["drops"]["icv_mismatch"].as_u64() < Some(5) {
        assert!(start.elapsed() < WAIT, "B did not drop five: {}", inbound());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut buf = [0u8; 64];
    assert!(
        receiver.recv_from(&mut buf).is_err(),
        "a forged packet was delivered"
    );
    let inbound = inbound();
    assert_eq!(inbound["drops"]["icv_mismatch"], 5, "{inbound}");
    assert_eq!(inbound["packets"], 0);
    let status = ctl(&pair.socket(1), "status").unwrap();
    assert_eq!(status["counters"]["inbound_dropped"], 5, "{status}");
    assert_eq!(status["counters"]["tun_tx_packets"], 0, "{status}");
}
