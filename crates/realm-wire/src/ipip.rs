//! IP in IP encapsulation (RFC 2003): building the outer IPv4 header around
//! an inner IPv4 packet, and taking it off again.
//!
//! Owns the RFC 2003 header rules only (no-panic contract: [crate docs](crate));
//! it does no routing, no tunnel state (RFC 2003 s5 soft state) and no ICMP
//! relaying (RFC 2003 s4): those are the data plane's.
//!
//! The RFC 2003 rules implemented here, applied by [`encapsulate`] (and by
//! [`crate::gre::encapsulate`], since RFC 2784 leaves the outer header open):
//! - s3.1: the outer header is version 4, IHL 5 (inner options are "NOT
//!   copied"), Protocol 4, with the given TTL "appropriate for delivery of
//!   the encapsulated datagram to the tunnel exit point", the given
//!   Identification, MF clear and offset 0, and a filled checksum.
//! - s3.1: the Type of Service is "copied from the inner IP header" (the
//!   whole byte: DSCP and ECN, which is also RFC 6040 "normal mode").
//! - s3.1: "If the Don't Fragment bit is set in the inner IP header, it MUST
//!   be set in the outer IP header; if the Don't Fragment bit is not set in
//!   the inner IP header, it MAY be set" ([`DontFragment`]).
//! - s3.1: "An encapsulator MUST NOT encapsulate a datagram with TTL = 0."
//!   Decrementing the inner TTL when forwarding is the caller's
//!   ([`crate::ipv4::Packet::rewrite_ttl`]).
//! - s3.2: a datagram whose source is the tunnel exit "MUST NOT" be tunnelled.
//!   The other s3.2 check (source is one of the encapsulator's own
//!   addresses) needs the interface list and is the caller's.
//!
//! And by [`decapsulate`]:
//! - the outer header must verify and carry Protocol 4, and must not be a
//!   fragment (reassemble first); outer options are allowed (s3.1 "new
//!   options specific to the tunnel path MAY be added").
//! - s3.1: "If, after decapsulation, the inner datagram has TTL = 0, the
//!   decapsulator MUST discard the datagram."
//! - the inner packet must be a whole IPv4 packet that fills the outer
//!   payload exactly; its checksum is not checked here (the inner header is
//!   the forwarder's to verify).

use crate::Error;
use crate::ipv4::{self, IpProtocol};
use serde::Serialize;
use std::net::Ipv4Addr;

/// Bytes an outer IPv4 header without options adds.
pub const OVERHEAD: usize = ipv4::HEADER_LEN;

/// How the outer Don't Fragment bit is chosen (RFC 2003 s3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum DontFragment {
    /// The outer DF is the inner DF.
    #[default]
    CopyInner,
    /// The outer DF is always set (RFC 2003 s5.1: the encapsulator does path
    /// MTU discovery on the tunnel).
    Set,
}

/// The tunnel endpoints and outer-header choices of one tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Tunnel {
    /// Outer source: the encapsulator (tunnel entry).
    pub src_addr: Ipv4Addr,
    /// Outer destination: the decapsulator (tunnel exit).
    pub dst_addr: Ipv4Addr,
    /// Outer TTL.
    pub ttl: u8,
    /// Outer DF choice.
    pub dont_frag: DontFragment,
}

impl Tunnel {
    /// The outer header for `inner` under the RFC 2003 s3.1 rules, carrying
    /// `payload_len` bytes of `protocol` (the inner datagram for IP in IP;
    /// GRE header and inner datagram for GRE).
    pub fn outer_repr<T: AsRef<[u8]>>(
        &self,
        inner: &ipv4::Packet<T>,
        ident: u16,
        protocol: IpProtocol,
        payload_len: usize,
    ) -> ipv4::Repr {
        ipv4::Repr::new(self.src_addr, self.dst_addr, protocol, payload_len)
            .with_ttl(self.ttl)
            // RFC 2003 s3.1: Type of Service copied from the inner header.
            .with_tos(inner.tos())
            .with_ident(ident)
            // RFC 2003 s3.1: inner DF set => outer DF MUST be set.
            .with_dont_frag(inner.dont_frag() || self.dont_frag == DontFragment::Set)
    }

    /// Checks an inner packet before encapsulation (RFC 2003 s3.1 TTL, s3.2
    /// loop) and returns it as a checked view of its datagram.
    pub(crate) fn check_inner<'a>(
        &self,
        inner: &'a [u8],
        overhead: usize,
    ) -> Result<ipv4::Packet<&'a [u8]>, Error> {
        let packet = ipv4::Packet::new_checked(inner)?;
        // RFC 2003 s3.1: "An encapsulator MUST NOT encapsulate a datagram with TTL = 0."
        if packet.ttl() == 0 {
            return Err(Error::Malformed {
                what: "inner IPv4 TTL",
                offset: 8,
                reason: "zero: must not be encapsulated (RFC 2003 s3.1)",
            });
        }
        // RFC 2003 s3.2: source equal to the tunnel exit "MUST NOT" be tunnelled.
        if packet.src_addr() == self.dst_addr {
            return Err(Error::Malformed {
                what: "inner IPv4 source",
                offset: 12,
                reason: "is the tunnel exit: must not be tunnelled (RFC 2003 s3.2)",
            });
        }
        // new_checked guaranteed the total length is within the buffer.
        let datagram = inner
            .get(..usize::from(packet.total_len()))
            .unwrap_or(inner);
        if datagram.len() + overhead > usize::from(u16::MAX) {
            return Err(Error::Malformed {
                what: "inner IPv4 total length",
                offset: 2,
                reason: "too long to encapsulate",
            });
        }
        Ok(ipv4::Packet::new_unchecked(datagram))
    }
}

/// Appends `inner` (a whole IPv4 packet; link padding past its total length
/// is dropped) to `out`, encapsulated in an outer IPv4 header with Protocol
/// 4 and Identification `ident`, following RFC 2003 (see the module doc).
/// On error nothing is appended.
pub fn encapsulate(
    tunnel: &Tunnel,
    ident: u16,
    inner: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let inner = tunnel.check_inner(inner, OVERHEAD)?;
    let datagram = inner.datagram();
    let outer = tunnel.outer_repr(&inner, ident, IpProtocol::IpIp, datagram.len());
    let start = out.len();
    out.resize(start + outer.buffer_len(), 0);
    outer.emit(&mut ipv4::Packet::new_unchecked(&mut out[start..]));
    out.extend_from_slice(datagram);
    Ok(())
}

/// A decapsulated packet: the outer header and the inner packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decapsulated<'a> {
    /// The outer header (verified).
    pub outer: ipv4::Repr,
    /// The inner packet, a checked view of exactly its datagram.
    pub inner: ipv4::Packet<&'a [u8]>,
}

/// Checks a decapsulated inner packet that starts at `base` in the outer
/// buffer: a whole IPv4 packet that fills `bytes` exactly, with TTL above 0.
pub(crate) fn check_decapsulated(bytes: &[u8], base: usize) -> Result<ipv4::Packet<&[u8]>, Error> {
    let inner = ipv4::Packet::new_checked(bytes).map_err(|e| e.shifted(base))?;
    let total = usize::from(inner.total_len());
    if total < bytes.len() {
        return Err(Error::Trailing {
            what: "inner IPv4 packet",
            offset: base + total,
            count: bytes.len() - total,
        });
    }
    // RFC 2003 s3.1: "If, after decapsulation, the inner datagram has TTL = 0,
    // the decapsulator MUST discard the datagram."
    if inner.ttl() == 0 {
        return Err(Error::Malformed {
            what: "inner IPv4 TTL",
            offset: base + 8,
            reason: "zero after decapsulation (RFC 2003 s3.1)",
        });
    }
    Ok(inner)
}

/// Parses and verifies an outer header carrying `protocol` and returns it
/// with the outer payload and its offset.
pub(crate) fn check_outer(
    packet: &[u8],
    protocol: IpProtocol,
) -> Result<(ipv4::Repr, &[u8], usize), Error> {
    let outer = ipv4::Packet::new_checked(packet)?;
    let repr = ipv4::Repr::parse(&outer)?;
    if repr.protocol != protocol {
        return Err(Error::Malformed {
            what: "outer IPv4 protocol",
            offset: 9,
            reason: "not the tunnel protocol",
        });
    }
    if repr.is_fragment() {
        return Err(Error::Malformed {
            what: "outer IPv4 header",
            offset: 6,
            reason: "a fragment: reassemble before decapsulating",
        });
    }
    let base = usize::from(outer.header_len());
    let payload = packet.get(base..base + repr.payload_len).unwrap_or(&[]);
    Ok((repr, payload, base))
}

/// Takes an IP-in-IP packet apart (RFC 2003; see the module doc for the
/// checks). Error offsets count from the start of `packet`.
pub fn decapsulate(packet: &[u8]) -> Result<Decapsulated<'_>, Error> {
    let (outer, payload, base) = check_outer(packet, IpProtocol::IpIp)?;
    let inner = check_decapsulated(payload, base)?;
    Ok(Decapsulated { outer, inner })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Verification;

    // Made with scapy: 192.0.2.10 -> 192.0.2.20 (TOS 0xb8, DF, TTL 64, id 0x99)
    // carrying 203.0.113.5 -> 198.51.100.9 UDP 5000 -> 6000 "hello" (TOS 0xb8, DF, TTL 63).
    const IPIP: &str = "45b80035009940004004b555c000020ac000021445b80021424340003f11928e\
        cb007105c633640913881770000d2ac768656c6c6f";

    fn tunnel() -> Tunnel {
        Tunnel {
            src_addr: Ipv4Addr::new(192, 0, 2, 10),
            dst_addr: Ipv4Addr::new(192, 0, 2, 20),
            ttl: 64,
            dont_frag: DontFragment::CopyInner,
        }
    }

    #[test]
    fn decapsulates_a_real_packet() {
        let bytes = hex::decode(IPIP).unwrap();
        let d = decapsulate(&bytes).unwrap();
        assert_eq!(d.outer.protocol, IpProtocol::IpIp);
        assert_eq!(d.outer.src_addr, Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(d.inner.src_addr(), Ipv4Addr::new(203, 0, 113, 5));
        assert_eq!(d.inner.protocol(), IpProtocol::Udp);
        assert_eq!(d.inner.as_ref(), &bytes[20..]);
        assert!(ipv4::Repr::parse(&d.inner).is_ok());
    }

    #[test]
    fn encapsulation_reproduces_the_real_packet() {
        let bytes = hex::decode(IPIP).unwrap();
        let mut out = vec![0xee];
        encapsulate(&tunnel(), 0x99, &bytes[20..], &mut out).unwrap();
        assert_eq!(out[1..], bytes);
    }

    #[test]
    fn outer_df_and_tos_follow_rfc2003() {
        let bytes = hex::decode(IPIP).unwrap();
        let mut inner = bytes[20..].to_vec();
        // Inner DF clear, ECN CE: outer copies TOS; DF per policy.
        let mut p = ipv4::Packet::new_unchecked(&mut inner[..]);
        p.set_dont_frag(false);
        p.set_tos(0x2b);
        p.fill_checksum();
        for (policy, df) in [(DontFragment::CopyInner, false), (DontFragment::Set, true)] {
            let mut out = Vec::new();
            let t = Tunnel {
                dont_frag: policy,
                ..tunnel()
            };
            encapsulate(&t, 1, &inner, &mut out).unwrap();
            let outer = ipv4::Packet::new_checked(&out[..]).unwrap();
            assert_eq!(outer.dont_frag(), df);
            assert_eq!(outer.tos(), 0x2b);
            assert!(outer.verify_checksum());
        }
        // Inner DF set: outer DF set whatever the policy.
        let mut out = Vec::new();
        encapsulate(&tunnel(), 1, &bytes[20..], &mut out).unwrap();
        assert!(ipv4::Packet::new_checked(&out[..]).unwrap().dont_frag());
    }

    #[test]
    fn inner_link_padding_is_dropped() {
        let bytes = hex::decode(IPIP).unwrap();
        let mut inner = bytes[20..].to_vec();
        inner.extend_from_slice(&[0; 7]);
        let mut out = Vec::new();
        encapsulate(&tunnel(), 0x99, &inner, &mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn refuses_what_rfc2003_forbids() {
        let bytes = hex::decode(IPIP).unwrap();
        let mut out = Vec::new();
        let mut zero_ttl = bytes[20..].to_vec();
        zero_ttl[8] = 0;
        assert!(encapsulate(&tunnel(), 1, &zero_ttl, &mut out).is_err());
        let looped = Tunnel {
            dst_addr: Ipv4Addr::new(203, 0, 113, 5),
            ..tunnel()
        };
        assert!(encapsulate(&looped, 1, &bytes[20..], &mut out).is_err());
        assert!(encapsulate(&tunnel(), 1, &bytes[20..30], &mut out).is_err());
        assert!(out.is_empty());

        // Decapsulated TTL 0.
        let mut packet = bytes.clone();
        packet[20 + 8] = 0;
        assert!(matches!(
            decapsulate(&packet),
            Err(Error::Malformed { offset: 28, .. })
        ));
        // Wrong outer protocol.
        let mut packet = bytes.clone();
        let mut p = ipv4::Packet::new_unchecked(&mut packet[..]);
        p.set_protocol(IpProtocol::Udp);
        p.fill_checksum();
        assert!(matches!(
            decapsulate(&packet),
            Err(Error::Malformed { offset: 9, .. })
        ));
        // Outer fragment.
        let mut packet = bytes.clone();
        let mut p = ipv4::Packet::new_unchecked(&mut packet[..]);
        p.set_more_frags(true);
        p.fill_checksum();
        assert!(matches!(
            decapsulate(&packet),
            Err(Error::Malformed { offset: 6, .. })
        ));
        // Bad outer checksum.
        let mut packet = bytes.clone();
        packet[11] ^= 1;
        assert_eq!(
            decapsulate(&packet),
            Err(Error::Checksum {
                what: "IPv4 header"
            })
        );
        // Inner shorter than the outer payload.
        let mut packet = bytes.clone();
        packet[20 + 3] -= 1;
        let mut p = ipv4::Packet::new_unchecked(&mut packet[20..]);
        p.fill_checksum();
        assert!(matches!(
            decapsulate(&packet),
            Err(Error::Trailing {
                offset: 52,
                count: 1,
                ..
            })
        ));
        // Inner truncated: offsets are absolute.
        let mut packet = bytes.clone();
        packet.truncate(30);
        packet[3] = 30;
        ipv4::Packet::new_unchecked(&mut packet[..]).fill_checksum();
        assert!(matches!(
            decapsulate(&packet),
            Err(Error::Truncated {
                what: "IPv4 header",
                offset: 20,
                ..
            })
        ));
        // Outer parse without the verification shortcut still works on good input.
        let good = ipv4::Packet::new_checked(&bytes[..]).unwrap();
        assert!(ipv4::Repr::parse_with(&good, Verification::Skip).is_ok());
    }
}
