//! Shared by the integration tests: building IPv4/UDP/TCP packets around
//! payloads with realm-wire's emitters, writing them to a pcap, and running
//! the built `realm` binary.
#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use realm_wire::ipv4::{self, IpProtocol};
use realm_wire::{tcp, udp};

/// A private RSIP host and its gateway's private address (RFC 1918 space, as the lab uses).
pub const HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// An IPv4 packet around `payload` with the given protocol.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: payload.len(),
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        options: Vec::new(),
    };
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    buf[repr.buffer_len()..].copy_from_slice(payload);
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut buf[..]));
    buf
}

/// An IPv4/UDP packet carrying `payload`.
pub fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let repr = udp::Repr {
        src_port: sport,
        dst_port: dport,
        has_checksum: true,
        payload_len: payload.len(),
    };
    let mut seg = vec![0u8; repr.buffer_len()];
    seg[8..].copy_from_slice(payload);
    repr.emit(&mut udp::Packet::new_unchecked(&mut seg[..]), src, dst);
    ipv4(src, dst, IpProtocol::Udp, &seg)
}

/// An IPv4/TCP segment (PSH+ACK) carrying `payload` at sequence number `seq`.
pub fn ipv4_tcp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let repr = tcp::Repr {
        src_port: sport,
        dst_port: dport,
        seq_number: seq,
        ack_number: 1,
        flags: tcp::Flags::PSH | tcp::Flags::ACK,
        window_len: 65535,
        urgent_pointer: 0,
        options: Vec::new(),
        payload_len: payload.len(),
    };
    let mut seg = vec![0u8; repr.buffer_len()];
    let hl = repr.header_len();
    seg[hl..].copy_from_slice(payload);
    repr.emit(&mut tcp::Packet::new_unchecked(&mut seg[..]), src, dst);
    ipv4(src, dst, IpProtocol::Tcp, &seg)
}

/// Writes raw IPv4 packets (link type RAW) to a pcap file, one per frame, a millisecond apart.
pub fn write_pcap(path: &Path, packets: &[Vec<u8>]) {
    let file = std::fs::File::create(path).expect("create pcap");
    let header = PcapHeader {
        datalink: DataLink::RAW,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(file, header).expect("pcap header");
    for (i, p) in packets.iter().enumerate() {
        let len = u32::try_from(p.len()).expect("packet fits a pcap record");
        w.write_packet(&PcapPacket::new(Duration::from_millis(i as u64), len, p))
            .expect("pcap write");
    }
}

/// Runs the `realm` binary built for this test run.
pub fn realm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_realm"))
        .args(args)
        .output()
        .expect("run realm")
}

/// A fresh directory under the target dir for one test's files.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}
