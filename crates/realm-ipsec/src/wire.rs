//! The engine's glue to `realm_wire`: protocol numbers and header lengths,
//! and small in-place rewrites. All parsing and header building is
//! `realm_wire`'s (`ipv4`, `udp`, `tcp`, `icmp`, `esp`, `ah`, `udp_encap`):
//! an inbound packet's IPv4 header is parsed once into an `ipv4::Repr`
//! ([`parse_ipv4`]) that the engine passes along. Never panics on any input.

use std::net::Ipv4Addr;

use realm_wire::{ipv4, tcp, udp};

pub(crate) const PROTO_ICMP: u8 = 1;
pub(crate) const PROTO_IPIP: u8 = 4;
pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;
pub(crate) const PROTO_ESP: u8 = realm_wire::esp::IP_PROTOCOL;
pub(crate) const PROTO_AH: u8 = realm_wire::ah::IP_PROTOCOL;

pub(crate) const IPV4_MIN_HEADER: usize = ipv4::HEADER_LEN;
pub(crate) const UDP_HEADER: usize = udp::HEADER_LEN;
pub(crate) const ESP_HEADER: usize = realm_wire::esp::HEADER_LEN;
pub(crate) const AH_FIXED: usize = realm_wire::ah::HEADER_LEN;

/// Checks `buf` as a whole IPv4 packet and parses its header, once, with
/// `realm_wire` (trailing link padding allowed: callers use `total_len()`;
/// the checksum is the kernel's business). The engine passes the result
/// along instead of parsing the header again.
pub(crate) fn parse_ipv4(buf: &[u8]) -> Option<ipv4::Repr> {
    ipv4::Repr::parse_packet(buf).ok()
}

/// Sets Total Length and Protocol of the IPv4 header at the start of `buf`
/// (whose length must then be `total_len`), then its checksum.
pub(crate) fn rewrite_ipv4(buf: &mut [u8], total_len: u16, protocol: u8) {
    if buf.len() < IPV4_MIN_HEADER {
        return;
    }
    let mut p = ipv4::Packet::new_unchecked(buf);
    p.set_total_len(total_len);
    p.set_protocol(ipv4::IpProtocol::from(protocol));
    p.fill_checksum();
}

/// Transport ports of a non-fragment (or first fragment) TCP/UDP packet
/// whose header `ip` is.
pub(crate) fn ports(ip: &ipv4::Repr, packet: &[u8]) -> Option<(u16, u16)> {
    if ip.frag_offset != 0 {
        return None;
    }
    let seg = packet.get(ip.buffer_len()..ip.total_len())?;
    match u8::from(ip.protocol) {
        PROTO_UDP => {
            let u = udp::Packet::new_checked(seg).ok()?;
            Some((u.src_port(), u.dst_port()))
        }
        PROTO_TCP => {
            let t = tcp::Packet::new_checked(seg).ok()?;
            Some((t.src_port(), t.dst_port()))
        }
        _ => None,
    }
}

/// Recomputes the TCP or UDP checksum of a whole unfragmented IPv4 packet
/// (RFC 3948 s3.1.2: transport-mode decapsulation behind a NAT): `packet`
/// is `header_len` bytes of IPv4 header from `src` to `dst`, then the
/// `protocol` segment.
pub(crate) fn fix_transport_checksum(
    packet: &mut [u8],
    header_len: usize,
    protocol: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) {
    let Some(seg) = packet.get_mut(header_len..) else {
        return;
    };
    match protocol {
        PROTO_UDP => {
            if let Ok(mut u) = udp::Packet::new_checked(seg) {
                // RFC 768: a zero checksum means none is in use.
                if u.checksum() != 0 {
                    u.fill_checksum(src, dst);
                }
            }
        }
        PROTO_TCP => {
            if let Ok(mut t) = tcp::Packet::new_checked(seg) {
                t.fill_checksum(src, dst);
            }
        }
        _ => {}
    }
}

/// RFC 792 / RFC 1191: ICMP Destination Unreachable, Fragmentation Needed
/// (type 3 code 4) carrying `mtu`, from `from` to the source of `original`,
/// quoting its IP header and first 8 payload bytes (`realm_wire::fragment`).
/// Empty if `original` cannot be quoted or is itself an ICMP error.
pub(crate) fn icmp_frag_needed(from: Ipv4Addr, original: &[u8], mtu: u16) -> Vec<u8> {
    realm_wire::fragment::frag_needed(from, original, mtu).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_built_with_realm_wire_parse_back() {
        let mut out = Vec::new();
        ipv4::Repr::new(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            ipv4::IpProtocol::Udp,
            UDP_HEADER,
        )
        .with_tos(0xb8)
        .with_ident(7)
        .with_dont_frag(true)
        .push_header(&mut out);
        udp::Repr::without_checksum(1, 2, 0).push_header(&mut out);
        let ip = parse_ipv4(&out).unwrap();
        assert!(ip.dont_frag && ip.tos() == 0xb8 && ip.total_len() == 28);
        assert_eq!(u8::from(ip.protocol), PROTO_UDP);
        assert!(
            ipv4::Packet::new_checked(&out[..])
                .unwrap()
                .verify_checksum()
        );
        assert_eq!(ports(&ip, &out), Some((1, 2)));
        assert!(parse_ipv4(&out[..27]).is_none());
    }
}
