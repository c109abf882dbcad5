//! Minimal, bounds-checked IPv4 / UDP / ICMP / ESP / AH framing used by the
//! IPsec engine.
//!
//! TODO(realm-wire): this module MUST move to `realm_wire::{ipv4, udp, icmp,
//! checksum, esp, ah, udp_encap}` once those modules land on main (they were
//! placeholders when this crate was written). It holds only what the engine
//! needs, never panics on any input, and is private to the crate.

use std::net::Ipv4Addr;

pub(crate) const PROTO_ICMP: u8 = 1;
pub(crate) const PROTO_IPIP: u8 = 4;
pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;
pub(crate) const PROTO_ESP: u8 = 50;
pub(crate) const PROTO_AH: u8 = 51;
/// RFC 4303 s2.6: "no next header", marks a dummy packet.
pub(crate) const PROTO_NONE: u8 = 59;

pub(crate) const IPV4_MIN_HEADER: usize = 20;
pub(crate) const UDP_HEADER: usize = 8;
pub(crate) const ESP_HEADER: usize = 8;
pub(crate) const AH_FIXED: usize = 12;

/// RFC 1071 one's-complement sum, folded (not yet complemented).
pub(crate) fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

/// Completes a one's-complement checksum.
pub(crate) fn finish(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// A checked view of an IPv4 header. After [`Ipv4::parse`] every accessor is
/// in bounds: `header_len <= total_len <= buf.len()`.
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
    /// Parses the header of `buf`; trailing bytes beyond Total Length are
    /// allowed (link padding) and ignored by callers through `total_len`.
    pub(crate) fn parse(buf: &[u8]) -> Option<Ipv4> {
        let h = buf.get(..IPV4_MIN_HEADER)?;
        if h[0] >> 4 != 4 {
            return None;
        }
        let header_len = usize::from(h[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if header_len < IPV4_MIN_HEADER || total_len < header_len || total_len > buf.len() {
            return None;
        }
        let flags = u16::from_be_bytes([h[6], h[7]]);
        Some(Ipv4 {
            header_len,
            total_len,
            tos: h[1],
            df: flags & 0x4000 != 0,
            more_fragments: flags & 0x2000 != 0,
            frag_offset: flags & 0x1fff,
            protocol: h[9],
            src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
            dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
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
        out.extend_from_slice(&[0x45, self.tos]);
        out.extend_from_slice(&total_len.to_be_bytes());
        out.extend_from_slice(&self.ident.to_be_bytes());
        out.extend_from_slice(&(if self.df { 0x4000u16 } else { 0 }).to_be_bytes());
        out.extend_from_slice(&[self.ttl, self.protocol, 0, 0]);
        out.extend_from_slice(&self.src.octets());
        out.extend_from_slice(&self.dst.octets());
        set_ipv4_checksum(&mut out[start..]);
    }
}

/// Recomputes the header checksum of the IPv4 header at the start of `buf`.
pub(crate) fn set_ipv4_checksum(buf: &mut [u8]) {
    let Some(&b0) = buf.first() else { return };
    let hl = usize::from(b0 & 0x0f) * 4;
    if buf.len() < hl || hl < IPV4_MIN_HEADER {
        return;
    }
    buf[10] = 0;
    buf[11] = 0;
    let c = finish(sum16(&buf[..hl], 0));
    buf[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Sets Total Length and Protocol of the IPv4 header at the start of `buf`,
/// then its checksum. `buf` must hold a parsed header.
pub(crate) fn rewrite_ipv4(buf: &mut [u8], total_len: u16, protocol: u8) {
    if buf.len() < IPV4_MIN_HEADER {
        return;
    }
    buf[2..4].copy_from_slice(&total_len.to_be_bytes());
    buf[9] = protocol;
    set_ipv4_checksum(buf);
}

/// Transport ports of a non-fragment (or first fragment) TCP/UDP packet.
pub(crate) fn ports(ip: &Ipv4, packet: &[u8]) -> Option<(u16, u16)> {
    if ip.frag_offset != 0 || !matches!(ip.protocol, PROTO_TCP | PROTO_UDP) {
        return None;
    }
    let p = packet.get(ip.header_len..ip.total_len)?.get(..4)?;
    Some((
        u16::from_be_bytes([p[0], p[1]]),
        u16::from_be_bytes([p[2], p[3]]),
    ))
}

/// Appends a UDP header (RFC 3948 s2.1: checksum zero for ESP-in-UDP).
pub(crate) fn emit_udp(src_port: u16, dst_port: u16, payload_len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&src_port.to_be_bytes());
    out.extend_from_slice(&dst_port.to_be_bytes());
    out.extend_from_slice(&((payload_len + UDP_HEADER) as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
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
    let off = match ip.protocol {
        PROTO_TCP => 16,
        PROTO_UDP => 6,
        _ => return,
    };
    let seg_len = ip.total_len - ip.header_len;
    let Some(seg) = packet.get_mut(ip.header_len..ip.total_len) else {
        return;
    };
    if seg.len() < off + 2 {
        return;
    }
    if ip.protocol == PROTO_UDP && seg[off] == 0 && seg[off + 1] == 0 {
        return; // RFC 768: no checksum in use
    }
    seg[off] = 0;
    seg[off + 1] = 0;
    let mut acc = sum16(&ip.src.octets(), 0);
    acc = sum16(&ip.dst.octets(), acc);
    acc += u32::from(ip.protocol) + seg_len as u32;
    let mut c = finish(sum16(seg, acc));
    if ip.protocol == PROTO_UDP && c == 0 {
        c = 0xffff;
    }
    seg[off..off + 2].copy_from_slice(&c.to_be_bytes());
}

/// RFC 792 / RFC 1191: ICMP Destination Unreachable, Fragmentation Needed
/// (type 3 code 4) carrying `mtu`, from `from` to the source of `original`,
/// quoting its IP header and first 8 payload bytes.
pub(crate) fn icmp_frag_needed(from: Ipv4Addr, original: &[u8], mtu: u16) -> Vec<u8> {
    let Some(ip) = Ipv4::parse(original) else {
        return Vec::new();
    };
    let quote = &original[..(ip.header_len + 8).min(ip.total_len)];
    let icmp_len = 8 + quote.len();
    let mut out = Vec::with_capacity(IPV4_MIN_HEADER + icmp_len);
    Ipv4Header {
        tos: 0,
        ident: 0,
        df: false,
        ttl: 64,
        protocol: PROTO_ICMP,
        src: from,
        dst: ip.src,
    }
    .emit((IPV4_MIN_HEADER + icmp_len) as u16, &mut out);
    let start = out.len();
    out.extend_from_slice(&[3, 4, 0, 0, 0, 0]);
    out.extend_from_slice(&mtu.to_be_bytes());
    out.extend_from_slice(quote);
    let c = finish(sum16(&out[start..], 0));
    out[start + 2..start + 4].copy_from_slice(&c.to_be_bytes());
    out
}

/// RFC 4302 s3.3.3.1.1: copies an IPv4 header with the mutable fields
/// (TOS, flags and fragment offset, TTL, checksum) and mutable options
/// zeroed, for the AH ICV input.
pub(crate) fn ah_zero_mutable(header: &[u8], out: &mut [u8]) {
    let n = header.len().min(out.len());
    out[..n].copy_from_slice(&header[..n]);
    if n < IPV4_MIN_HEADER {
        return;
    }
    out[1] = 0; // TOS (DSCP, ECN)
    out[6] = 0; // flags, fragment offset
    out[7] = 0;
    out[8] = 0; // TTL
    out[10] = 0; // checksum
    out[11] = 0;
    // RFC 4302 Appendix A.1: options. Immutable: EOL (0), NOP (1), Security
    // (130), Extended Security (133), Commercial Security (134), Router Alert
    // (148), SDMDD (149). Every other option is zeroed as a unit.
    let mut i = IPV4_MIN_HEADER;
    while i < n {
        let kind = out[i];
        match kind {
            0 => break,
            1 => i += 1,
            _ => {
                let len = usize::from(out.get(i + 1).copied().unwrap_or(0));
                if len < 2 || i + len > n {
                    // Malformed option list: zero the rest (fails ICV safely).
                    out[i..n].iter_mut().for_each(|b| *b = 0);
                    break;
                }
                if !matches!(kind, 130 | 133 | 134 | 148 | 149) {
                    out[i..i + len].iter_mut().for_each(|b| *b = 0);
                }
                i += len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_checksum() {
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
        out.extend_from_slice(&[0; 8]);
        let ip = Ipv4::parse(&out).unwrap();
        assert!(ip.df && ip.tos == 0xb8 && ip.total_len == 28);
        assert_eq!(finish(sum16(&out[..20], 0)), 0);
        assert!(Ipv4::parse(&out[..27]).is_none());
    }

    #[test]
    fn ah_zeroing_of_options() {
        // IHL 7: Router Alert (kept) + Record Route-ish option 7 (zeroed) + EOL.
        let mut h = vec![
            0x47, 0xff, 0, 28, 1, 2, 0x40, 0, 9, 51, 0xaa, 0xbb, 1, 1, 1, 1, 2, 2, 2, 2,
        ];
        h.extend_from_slice(&[148, 4, 0, 0, 7, 3, 9, 0]);
        let mut out = vec![0; 28];
        ah_zero_mutable(&h, &mut out);
        assert_eq!(&out[..12], &[0x47, 0, 0, 28, 1, 2, 0, 0, 0, 51, 0, 0]);
        assert_eq!(&out[20..], &[148, 4, 0, 0, 0, 0, 0, 0]);
    }
}
