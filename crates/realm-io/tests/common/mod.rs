//! Shared by the namespace tests: a lab that fails loudly without privileges, and hand-built
//! packets (the tests must not depend on the code they check, nor on realm-wire).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::Ipv4Addr;
use std::time::Duration;

use realm_io::netns::{self, Lab};

/// How long any single wait in these tests may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A fresh lab. Panics with a clear message when not root or when `ip` is missing: these tests
/// must fail, never skip, on a machine that cannot run them.
pub fn lab() -> Lab {
    if let Err(e) = netns::require_privileges() {
        panic!(
            "realm-io network tests need root and iproute2's `ip` (they build network \
             namespaces); run them as root: {e}"
        );
    }
    Lab::new().expect("create lab")
}

/// Two new namespaces, `a` and `b`, joined by a veth whose ends are both
/// `eth0`, with `a_addr`/24 and `b_addr`/24 on them.
pub fn two_namespaces(
    lab: &mut Lab,
    (a, a_addr): (&str, Ipv4Addr),
    (b, b_addr): (&str, Ipv4Addr),
) -> (String, String) {
    let a = lab.add_namespace(a).unwrap();
    let b = lab.add_namespace(b).unwrap();
    lab.veth((&a, "eth0"), (&b, "eth0")).unwrap();
    for (ns, addr) in [(&a, a_addr), (&b, b_addr)] {
        lab.add_address(ns, "eth0", realm_io::Ipv4Prefix::new(addr, 24).unwrap())
            .unwrap();
    }
    (a, b)
}

/// The two ends of [`pair`].
pub const A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
pub const B: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);

/// Namespaces `a` and `b` joined by veth `va`/`vb` with 10.1.0.1/24 ([`A`]) and 10.1.0.2/24
/// ([`B`]).
pub fn pair() -> (Lab, String, String) {
    let mut lab = lab();
    let a = lab.add_namespace("a").unwrap();
    let b = lab.add_namespace("b").unwrap();
    lab.veth((&a, "va"), (&b, "vb")).unwrap();
    lab.add_address(&a, "va", realm_io::Ipv4Prefix::new(A, 24).unwrap())
        .unwrap();
    lab.add_address(&b, "vb", realm_io::Ipv4Prefix::new(B, 24).unwrap())
        .unwrap();
    (lab, a, b)
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet: IHL 5, DF, TTL 64, ID 0x1234, correct header checksum.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = protocol;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..].copy_from_slice(payload);
    p
}

/// A UDP datagram inside an IPv4 packet, with the pseudo-header checksum.
pub fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let len = 8 + data.len();
    let mut u = vec![0u8; len];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&(len as u16).to_be_bytes());
    u[8..].copy_from_slice(data);
    let mut pseudo = Vec::with_capacity(12 + len);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(len as u16).to_be_bytes());
    pseudo.extend_from_slice(&u);
    let c = match checksum(&pseudo) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 17, &u)
}

/// An ICMP echo request or reply (`kind` 8 or 0) with a correct checksum, inside IPv4.
pub fn icmp_echo(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    kind: u8,
    id: u16,
    seq: u16,
    data: &[u8],
) -> Vec<u8> {
    let mut m = vec![0u8; 8 + data.len()];
    m[0] = kind;
    m[4..6].copy_from_slice(&id.to_be_bytes());
    m[6..8].copy_from_slice(&seq.to_be_bytes());
    m[8..].copy_from_slice(data);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 1, &m)
}

/// Source, destination and protocol of an IPv4 packet, and its header length.
pub fn ip_fields(p: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8, usize)> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    Some((src, dst, p[9], ihl))
}
