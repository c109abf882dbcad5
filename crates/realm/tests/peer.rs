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

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use realm_io::netns;

mod peer_util;
use peer_util::*;

/// Tunnel mode: the network behind each peer and its own address in it (on its TUN).
const NETS: [&str; 2] = ["203.0.113.0/24", "198.51.100.0/24"];
const INNER: [Ipv4Addr; 2] = [
    Ipv4Addr::new(203, 0, 113, 1),
    Ipv4Addr::new(198, 51, 100, 1),
];
/// SPI of the SA each side sends with (A->B, B->A).
const SPI: [u32; 2] = [0x0000_1001, 0x0000_2001];

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

/// Manual keying: the mirror-image SA pair and policies of each side.
trait Manual {
    fn config(&self, side: usize, s: Suite, keys: [u32; 2]) -> String;
    fn config_with(&self, side: usize, s: Suite, underlay: &str) -> String;
    fn start_both(&mut self, s: Suite, underlay: &str);
}

impl Manual for Pair {
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
