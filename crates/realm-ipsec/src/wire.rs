//! The engine's glue to `realm_wire`: a copyable summary of a checked IPv4
//! header, and small builders for the headers the engine emits. All parsing
//! is `realm_wire`'s (`ipv4`, `udp`, `tcp`, `icmp`, `esp`, `ah`,
//! `udp_encap`); nothing here re-parses a header. Never panics on any input.

use std::net::Ipv4Addr;

use realm_wire::{ipv4, tcp, udp};

pub(crate) const PROTO_ICMP: u8 = 1;
pub(crate) const PROTO_IPIP: u8 = 4;
pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;
pub(crate) const PROTO_ESP: u8 = realm_wire::esp::IP_PROTOCOL;
pub(crate) const PROTO_AH: u8 = realm_wire::ah::IP_PROTOCOL;

pub(crate) const IPV4_MIN_HEADER: usize = ipv4::HEADER_LEN;
pub(crate) const UDP_HEADER: usize = 8;
pub(crate) const ESP_HEADER: usize = realm_wire::esp::HEADER_LEN;
pub(crate) const AH_FIXED: usize = realm_wire::ah::HEADER_LEN;

/// The fields of a checked IPv4 header the engine uses. After
/// [`Ipv4::parse`], `header_len <= total_len <= buf.len()`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ipv4 {
    pub(crate) header_len: usize,
    pub(crate) total_len: usize,
    pub(crate) tos: u8,
    pub(crate) df: bool,
    pub(crate) more_fragments: bool,
    pub(crate) frag_offset: u16,
    pub(crate) protocol: u8,
    pub(crate) src: Ipv4Addr,
    pub(crate) dst: Ipv4Addr,
}

impl Ipv4 {
    /// Checks `buf` with `realm_wire::ipv4::Packet::new_checked` (trailing
    /// link padding allowed; callers use `total_len`).
    pub(crate) fn parse(buf: &[u8]) -> Option<Ipv4> {
        let p = ipv4::Packet::new_checked(buf).ok()?;
        Some(Ipv4 {
            header_len: usize::from(p.header_len()),
            total_len: usize::from(p.total_len()),
            tos: p.tos(),
            df: p.dont_frag(),
            more_fragments: p.more_frags(),
            frag_offset: p.frag_offset(),
            protocol: u8::from(p.protocol()),
            src: p.src_addr(),
            dst: p.dst_addr(),
        })
    }

    pub(crate) fn is_fragment(&self) -> bool {
        self.more_fragments || self.frag_offset != 0
    }
}

/// Fields of a new option-less IPv4 header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ipv4Header {
    pub(crate) tos: u8,
    pub(crate) ident: u16,
    pub(crate) df: bool,
    pub(crate) ttl: u8,
    pub(crate) protocol: u8,
    pub(crate) src: Ipv4Addr,
    pub(crate) dst: Ipv4Addr,
}

impl Ipv4Header {
    /// Appends a 20-byte header with `total_len` and a correct checksum.
    pub(crate) fn emit(&self, total_len: u16, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + IPV4_MIN_HEADER, 0);
        self.write(total_len, &mut out[start..]);
    }

    /// Writes the 20-byte header into `buf` (at least 20 bytes long).
    pub(crate) fn write(&self, total_len: u16, buf: &mut [u8]) {
        if buf.len() < IPV4_MIN_HEADER {
            return;
        }
        // Headroom may hold anything: start from zero (fragment offset, ...).
        buf[..IPV4_MIN_HEADER].fill(0);
        let mut p = ipv4::Packet::new_unchecked(buf);
        p.set_version(4);
        p.set_header_len(IPV4_MIN_HEADER as u8);
        p.set_tos(self.tos);
        p.set_total_len(total_len);
        p.set_ident(self.ident);
        p.clear_flags();
        p.set_dont_frag(self.df);
        p.set_ttl(self.ttl);
        p.set_protocol(ipv4::IpProtocol::from(self.protocol));
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        p.fill_checksum();
    }
}

/// Recomputes the header checksum of the IPv4 packet at the start of `buf`.
pub(crate) fn set_ipv4_checksum(buf: &mut [u8]) {
    if let Ok(mut p) = ipv4::Packet::new_checked(buf) {
        p.fill_checksum();
    }
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

/// Transport ports of a non-fragment (or first fragment) TCP/UDP packet.
pub(crate) fn ports(ip: &Ipv4, packet: &[u8]) -> Option<(u16, u16)> {
    if ip.frag_offset != 0 {
        return None;
    }
    let seg = packet.get(ip.header_len..ip.total_len)?;
    match ip.protocol {
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

/// Appends a UDP header (RFC 3948 s2.1: checksum zero for ESP-in-UDP).
pub(crate) fn emit_udp(src_port: u16, dst_port: u16, payload_len: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + UDP_HEADER, 0);
    write_udp(src_port, dst_port, payload_len, &mut out[start..]);
}

/// Writes a UDP header (checksum zero) into `buf` (at least 8 bytes long).
pub(crate) fn write_udp(src_port: u16, dst_port: u16, payload_len: usize, buf: &mut [u8]) {
    if buf.len() < UDP_HEADER {
        return;
    }
    buf[..UDP_HEADER].fill(0);
    let mut u = udp::Packet::new_unchecked(buf);
    u.set_src_port(src_port);
    u.set_dst_port(dst_port);
    u.set_len((payload_len + UDP_HEADER) as u16);
    u.set_checksum(0);
}

/// Recomputes the TCP or UDP checksum of a whole unfragmented IPv4 packet
/// (RFC 3948 s3.1.2: transport-mode decapsulation behind a NAT).
pub(crate) fn fix_transport_checksum(packet: &mut [u8]) {
    let Some(ip) = Ipv4::parse(packet) else {
        return;
    };
    if ip.is_fragment() {
        return;
    }
    let Some(seg) = packet.get_mut(ip.header_len..ip.total_len) else {
        return;
    };
    match ip.protocol {
        PROTO_UDP => {
            if let Ok(mut u) = udp::Packet::new_checked(seg) {
                // RFC 768: a zero checksum means none is in use.
                if u.checksum() != 0 {
                    u.fill_checksum(ip.src, ip.dst);
                }
            }
        }
        PROTO_TCP => {
            if let Ok(mut t) = tcp::Packet::new_checked(seg) {
                t.fill_checksum(ip.src, ip.dst);
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
    fn header_emit_is_checked_by_realm_wire() {
        let mut out = Vec::new();
        Ipv4Header {
            tos: 0xb8,
            ident: 7,
            df: true,
            ttl: 64,
            protocol: PROTO_UDP,
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
        }
        .emit(28, &mut out);
        emit_udp(1, 2, 0, &mut out);
        let ip = Ipv4::parse(&out).unwrap();
        assert!(ip.df && ip.tos == 0xb8 && ip.total_len == 28 && ip.protocol == PROTO_UDP);
        assert!(
            ipv4::Packet::new_checked(&out[..])
                .unwrap()
                .verify_checksum()
        );
        assert_eq!(ports(&ip, &out), Some((1, 2)));
        assert!(Ipv4::parse(&out[..27]).is_none());
    }
}
