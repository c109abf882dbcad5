//! GRE (RFC 2784, with the RFC 2890 Key and Sequence Number extensions):
//! the checked view [`Packet`], the owned header [`Repr`], and IPv4-over-GRE
//! [`encapsulate`] / [`decapsulate`].
//!
//! Owns the GRE header format, under the crate's no-panic contract
//! ([crate docs](crate)), and keeps no tunnel state (RFC 2890 s2.2
//! sequence-number processing is the data plane's).
//!
//! [`Packet::new_checked`] checks that the buffer holds the whole header the
//! C, K and S bits call for. The buffer must be exactly the GRE packet (the IPv4
//! payload): the checksum covers all of it.
//!
//! **Reserved bits** (RFC 2784 s2.5.1, bits numbered from 0 at the top):
//! bits 1–5 make a receiver that does not implement RFC 1701 discard the
//! packet. Bits 2 (K) and 3 (S) are RFC 2890's and implemented here, so
//! [`Repr::parse`] rejects bit 1 (RFC 1701 Routing Present), bit 4 (Strict
//! Source Route) and bit 5 (top bit of Recursion Control). Bits 6–12 "MUST
//! be sent as zero and MUST be ignored on receipt"; so is Reserved1
//! (s2.5.2). The Version (bits 13–15) "MUST contain the value zero" (s2.3.1).

use crate::Error;
use crate::checksum::{self, Verification};
use crate::codec::{check_header, get_u16, get_u32, set_u16, set_u32};
use crate::ipip::{self, Tunnel};
use crate::ipv4::{self, IpProtocol};
use serde::Serialize;

/// Length of the GRE header without optional fields.
pub const BASE_HEADER_LEN: usize = 4;

mod field {
    use core::ops::Range;

    pub(super) const FLAGS_VERSION: Range<usize> = 0..2;
    pub(super) const PROTOCOL: Range<usize> = 2..4;
}

/// Checksum Present (bit 0, RFC 2784 s2.5).
const FLAG_C: u16 = 0x8000;
/// Routing Present (bit 1, RFC 1701).
const FLAG_R: u16 = 0x4000;
/// Key Present (bit 2, RFC 2890 s2).
const FLAG_K: u16 = 0x2000;
/// Sequence Number Present (bit 3, RFC 2890 s2).
const FLAG_S: u16 = 0x1000;
/// Strict Source Route (bit 4, RFC 1701).
const FLAG_STRICT: u16 = 0x0800;
/// Top bit of Recursion Control (bit 5, RFC 1701).
const FLAG_RECUR_TOP: u16 = 0x0400;
/// Bits 1–5 that this receiver does not implement (RFC 2784 s2.5.1).
const UNSUPPORTED: u16 = FLAG_R | FLAG_STRICT | FLAG_RECUR_TOP;
/// Version (bits 13–15).
const VERSION_MASK: u16 = 0x0007;

/// The GRE Protocol Type: an EtherType (RFC 2784 s2.4). Values Realm does
/// not name are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum EtherType {
    /// IPv4, 0x0800.
    Ipv4,
    /// Any other EtherType, kept as it was.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(value: u16) -> Self {
        match value {
            0x0800 => EtherType::Ipv4,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(value: EtherType) -> Self {
        match value {
            EtherType::Ipv4 => 0x0800,
            EtherType::Unknown(other) => other,
        }
    }
}

packet_view! {
    /// A zero-copy view of a GRE packet (header and payload).
    checks: [check_len],
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks that the base header and the optional fields that the C, K
    /// and S bits announce are in the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        check_header(self.buffer.as_ref(), BASE_HEADER_LEN, "GRE header")?;
        let have = self.buffer.as_ref().len();
        let header_len = self.header_len();
        if header_len > have {
            return Err(Error::Truncated {
                what: "GRE optional fields",
                offset: BASE_HEADER_LEN,
                need: header_len - BASE_HEADER_LEN,
                have: have - BASE_HEADER_LEN,
            });
        }
        Ok(())
    }

    /// The first 16 bits: flags, reserved bits and version.
    pub fn flags_version(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLAGS_VERSION.start)
    }

    /// C: Checksum and Reserved1 present.
    pub fn checksum_present(&self) -> bool {
        self.flags_version() & FLAG_C != 0
    }

    /// K: Key present (RFC 2890).
    pub fn key_present(&self) -> bool {
        self.flags_version() & FLAG_K != 0
    }

    /// S: Sequence Number present (RFC 2890).
    pub fn seq_present(&self) -> bool {
        self.flags_version() & FLAG_S != 0
    }

    /// Version (bits 13–15).
    pub fn version(&self) -> u8 {
        (self.flags_version() & VERSION_MASK) as u8
    }

    /// Protocol Type of the payload.
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(get_u16(self.buffer.as_ref(), field::PROTOCOL.start))
    }

    fn key_offset(&self) -> usize {
        BASE_HEADER_LEN + if self.checksum_present() { 4 } else { 0 }
    }

    fn seq_offset(&self) -> usize {
        self.key_offset() + if self.key_present() { 4 } else { 0 }
    }

    /// Header length implied by the C, K and S bits.
    pub fn header_len(&self) -> usize {
        self.seq_offset() + if self.seq_present() { 4 } else { 0 }
    }

    /// Checksum field, if C is set.
    pub fn checksum(&self) -> Option<u16> {
        self.checksum_present()
            .then(|| get_u16(self.buffer.as_ref(), BASE_HEADER_LEN))
    }

    /// Reserved1 field, if C is set.
    pub fn reserved1(&self) -> Option<u16> {
        self.checksum_present()
            .then(|| get_u16(self.buffer.as_ref(), BASE_HEADER_LEN + 2))
    }

    /// Key, if K is set (RFC 2890 s2.1).
    pub fn key(&self) -> Option<u32> {
        self.key_present()
            .then(|| get_u32(self.buffer.as_ref(), self.key_offset()))
    }

    /// Sequence Number, if S is set (RFC 2890 s2.2).
    pub fn sequence_number(&self) -> Option<u32> {
        self.seq_present()
            .then(|| get_u32(self.buffer.as_ref(), self.seq_offset()))
    }

    /// The payload after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// True when C is clear, or when the checksum verifies over the GRE
    /// header and payload (RFC 2784 s2.5).
    pub fn verify_checksum(&self) -> bool {
        !self.checksum_present() || checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the first 16 bits (flags, reserved bits and version) at once.
    /// The header length follows C, K and S.
    pub fn set_flags_version(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::FLAGS_VERSION.start, value);
    }

    /// Sets the Protocol Type.
    pub fn set_protocol_type(&mut self, value: EtherType) {
        set_u16(self.buffer.as_mut(), field::PROTOCOL.start, value.into());
    }

    /// Sets the checksum field; does nothing if C is clear.
    pub fn set_checksum(&mut self, value: u16) {
        if self.checksum_present() {
            set_u16(self.buffer.as_mut(), BASE_HEADER_LEN, value);
        }
    }

    /// Sets Reserved1; does nothing if C is clear.
    pub fn set_reserved1(&mut self, value: u16) {
        if self.checksum_present() {
            set_u16(self.buffer.as_mut(), BASE_HEADER_LEN + 2, value);
        }
    }

    /// Sets the key; does nothing if K is clear.
    pub fn set_key(&mut self, value: u32) {
        if self.key_present() {
            let at = self.key_offset();
            set_u32(self.buffer.as_mut(), at, value);
        }
    }

    /// Sets the sequence number; does nothing if S is clear.
    pub fn set_sequence_number(&mut self, value: u32) {
        if self.seq_present() {
            let at = self.seq_offset();
            set_u32(self.buffer.as_mut(), at, value);
        }
    }

    /// The payload after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        &mut self.buffer.as_mut()[header_len..]
    }

    /// Computes and writes the checksum over the whole buffer (RFC 2784
    /// s2.5); does nothing if C is clear. The payload must be in place.
    pub fn fill_checksum(&mut self) {
        if self.checksum_present() {
            self.set_checksum(0);
            let value = checksum::checksum(self.buffer.as_ref());
            self.set_checksum(value);
        }
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An owned GRE header. The payload is not owned: [`Repr::emit`] expects it
/// already in the buffer after the header, and checksums it there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Repr {
    /// C: a checksum over header and payload is present.
    pub checksum_present: bool,
    /// Protocol Type of the payload.
    pub protocol_type: EtherType,
    /// RFC 2890 Key, if present.
    pub key: Option<u32>,
    /// RFC 2890 Sequence Number, if present.
    pub sequence_number: Option<u32>,
    /// Bytes of payload after the header.
    pub payload_len: usize,
}

impl Repr {
    /// Parses a GRE header, checking the reserved bits and version (see the
    /// module doc) and verifying the checksum if present.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr, Error> {
        Self::parse_with(packet, Verification::Verify)
    }

    /// Parses a GRE header, verifying the checksum or not.
    pub fn parse_with<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        verification: Verification,
    ) -> Result<Repr, Error> {
        packet.check_len()?;
        let flags = packet.flags_version();
        // RFC 2784 s2.5.1: "A receiver MUST discard a packet where any of bits
        // 1-5 are non-zero, unless that receiver implements RFC 1701." Bits 2
        // and 3 are RFC 2890's K and S, implemented here.
        if flags & UNSUPPORTED != 0 {
            return Err(Error::Malformed {
                what: "GRE flags",
                offset: 0,
                reason: "RFC 1701 routing, strict route or recursion bits set (RFC 2784 s2.5.1)",
            });
        }
        // RFC 2784 s2.3.1: "The Version field MUST contain the value zero."
        if flags & VERSION_MASK != 0 {
            return Err(Error::Malformed {
                what: "GRE version",
                offset: 1,
                reason: "not 0 (RFC 2784 s2.3.1)",
            });
        }
        if verification == Verification::Verify && !packet.verify_checksum() {
            return Err(Error::Checksum { what: "GRE packet" });
        }
        Ok(Repr {
            checksum_present: packet.checksum_present(),
            protocol_type: packet.protocol_type(),
            key: packet.key(),
            sequence_number: packet.sequence_number(),
            payload_len: packet.payload().len(),
        })
    }

    /// Length of the emitted header.
    pub fn header_len(&self) -> usize {
        BASE_HEADER_LEN
            + if self.checksum_present { 4 } else { 0 }
            + if self.key.is_some() { 4 } else { 0 }
            + if self.sequence_number.is_some() { 4 } else { 0 }
    }

    /// Length of the whole GRE packet: header and payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Writes the header (reserved bits, Reserved1 and version zero), then
    /// the checksum if present over the whole buffer, whose payload part
    /// must already be in place. The buffer must be exactly
    /// [`Repr::buffer_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) {
        let mut flags = 0;
        if self.checksum_present {
            flags |= FLAG_C;
        }
        if self.key.is_some() {
            flags |= FLAG_K;
        }
        if self.sequence_number.is_some() {
            flags |= FLAG_S;
        }
        packet.set_flags_version(flags);
        packet.set_protocol_type(self.protocol_type);
        packet.set_reserved1(0);
        if let Some(key) = self.key {
            packet.set_key(key);
        }
        if let Some(seq) = self.sequence_number {
            packet.set_sequence_number(seq);
        }
        packet.fill_checksum();
    }
}

/// The GRE fields an encapsulator chooses for each packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Options {
    /// Send a checksum (RFC 2784 C bit).
    pub checksum: bool,
    /// RFC 2890 Key.
    pub key: Option<u32>,
    /// RFC 2890 Sequence Number.
    pub sequence_number: Option<u32>,
}

/// Appends `inner` (a whole IPv4 packet; link padding past its total length
/// is dropped) to `out`, in a GRE header with Protocol Type 0x0800 and the
/// chosen `options`, in an outer IPv4 header with Protocol 47. The outer
/// header follows the RFC 2003 s3.1 and s3.2 rules listed in [`crate::ipip`]
/// (RFC 2784 says nothing of them). On error nothing is appended.
pub fn encapsulate(
    tunnel: &Tunnel,
    ident: u16,
    options: &Options,
    inner: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let gre = Repr {
        checksum_present: options.checksum,
        protocol_type: EtherType::Ipv4,
        key: options.key,
        sequence_number: options.sequence_number,
        payload_len: 0,
    };
    let inner = tunnel.check_inner(inner, ipip::OVERHEAD + gre.header_len())?;
    let datagram = inner.datagram();
    let gre = Repr {
        payload_len: datagram.len(),
        ..gre
    };
    let outer = tunnel.outer_repr(&inner, ident, IpProtocol::Gre, gre.buffer_len());
    let start = out.len();
    let gre_start = start + outer.buffer_len();
    let payload_start = gre_start + gre.header_len();
    out.resize(payload_start, 0);
    out.extend_from_slice(datagram);
    outer.emit(&mut ipv4::Packet::new_unchecked(&mut out[start..gre_start]));
    gre.emit(&mut Packet::new_unchecked(&mut out[gre_start..]));
    Ok(())
}

/// A decapsulated IPv4-over-GRE packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decapsulated<'a> {
    /// The outer IPv4 header (verified).
    pub outer: ipv4::Repr,
    /// The GRE header (verified, Protocol Type IPv4).
    pub gre: Repr,
    /// The inner packet, a checked view of exactly its datagram.
    pub inner: ipv4::Packet<&'a [u8]>,
}

/// Takes an IPv4-over-GRE packet apart: outer IPv4 header (verified,
/// Protocol 47, not a fragment), GRE header ([`Repr::parse`], Protocol Type
/// 0x0800), inner IPv4 packet (whole, filling the GRE payload exactly, TTL
/// above 0 as RFC 2003 s3.1 asks of a decapsulator). Error offsets count
/// from the start of `packet`.
pub fn decapsulate(packet: &[u8]) -> Result<Decapsulated<'_>, Error> {
    let (outer, payload, base) = ipip::check_outer(packet, IpProtocol::Gre)?;
    let gre_packet = Packet::new_checked(payload).map_err(|e| e.shifted(base))?;
    let gre = Repr::parse(&gre_packet).map_err(|e| e.shifted(base))?;
    if gre.protocol_type != EtherType::Ipv4 {
        return Err(Error::Malformed {
            what: "GRE protocol type",
            offset: base + field::PROTOCOL.start,
            reason: "not IPv4",
        });
    }
    let inner_base = base + gre.header_len();
    let inner_bytes = payload.get(gre.header_len()..).unwrap_or(&[]);
    let inner = ipip::check_decapsulated(inner_bytes, inner_base)?;
    Ok(Decapsulated { outer, gre, inner })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    // Made with scapy: 192.0.2.10 -> 192.0.2.20 GRE with C, K (0x01020304)
    // and S (7), carrying 10.1.1.1 -> 10.2.2.2 ICMP echo "ping".
    const GRE_CKS: &str = "45000044009a0000402ff5d2c000020ac0000214b000080043f20000010203040000\
        00074500002000050000400163d30a0101010a0202020800192d0001000170696e67";
    // Made with scapy: a bare GRE header carrying an ICMP echo.
    const GRE_PLAIN: &str = "000008004500001c00050000400163d70a0101010a0202020800f7fd00010001";

    fn tunnel() -> Tunnel {
        Tunnel {
            src_addr: Ipv4Addr::new(192, 0, 2, 10),
            dst_addr: Ipv4Addr::new(192, 0, 2, 20),
            ttl: 64,
            dont_frag: ipip::DontFragment::CopyInner,
        }
    }

    #[test]
    fn parses_gre_with_checksum_key_and_sequence() {
        let bytes = hex::decode(GRE_CKS).unwrap();
        let gre_bytes = &bytes[20..];
        let packet = Packet::new_checked(gre_bytes).unwrap();
        assert!(packet.checksum_present() && packet.key_present() && packet.seq_present());
        assert_eq!(packet.header_len(), 16);
        assert_eq!(packet.checksum(), Some(0x43f2));
        assert_eq!(packet.reserved1(), Some(0));
        assert_eq!(packet.key(), Some(0x0102_0304));
        assert_eq!(packet.sequence_number(), Some(7));
        assert!(packet.verify_checksum());
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(
            repr,
            Repr {
                checksum_present: true,
                protocol_type: EtherType::Ipv4,
                key: Some(0x0102_0304),
                sequence_number: Some(7),
                payload_len: 32,
            }
        );
        let mut out = vec![0u8; repr.buffer_len()];
        out[16..].copy_from_slice(packet.payload());
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, gre_bytes);

        let mut bad = gre_bytes.to_vec();
        bad[20] ^= 1;
        let packet = Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(
            Repr::parse(&packet),
            Err(Error::Checksum { what: "GRE packet" })
        );
    }

    #[test]
    fn parses_plain_gre() {
        let bytes = hex::decode(GRE_PLAIN).unwrap();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.header_len(), 4);
        assert_eq!(packet.checksum(), None);
        assert_eq!(packet.key(), None);
        let repr = Repr::parse(&packet).unwrap();
        assert!(!repr.checksum_present);
        assert_eq!(repr.payload_len, 28);
    }

    #[test]
    fn reserved_bits_and_version() {
        let bytes = hex::decode(GRE_PLAIN).unwrap();
        for (bit, rejected) in (1..=12).map(|b| (b, b == 1 || b == 4 || b == 5)) {
            if bit == 2 || bit == 3 {
                continue; // K and S: need their fields
            }
            let mut b = bytes.clone();
            let word = 0x8000u16 >> bit;
            b[0..2].copy_from_slice(&word.to_be_bytes());
            let packet = Packet::new_checked(&b[..]).unwrap();
            let result = Repr::parse(&packet);
            assert_eq!(result.is_err(), rejected, "bit {bit}");
            if let Ok(repr) = result {
                // Bits 6-12 are ignored and emitted as zero.
                let mut out = b.clone();
                repr.emit(&mut Packet::new_unchecked(&mut out[..]));
                assert_eq!(out, bytes);
            }
        }
        let mut v1 = bytes.clone();
        v1[1] = 0x01;
        let packet = Packet::new_checked(&v1[..]).unwrap();
        assert!(matches!(
            Repr::parse(&packet),
            Err(Error::Malformed { offset: 1, .. })
        ));
        let mut k = bytes.clone();
        k[0] = 0x20;
        assert!(matches!(
            Packet::new_checked(&k[..6]),
            Err(Error::Truncated {
                what: "GRE optional fields",
                ..
            })
        ));
        assert!(Packet::new_checked(&bytes[..3]).is_err());
    }

    #[test]
    fn encapsulation_reproduces_the_real_packet() {
        let bytes = hex::decode(GRE_CKS).unwrap();
        let options = Options {
            checksum: true,
            key: Some(0x0102_0304),
            sequence_number: Some(7),
        };
        let mut out = Vec::new();
        encapsulate(&tunnel(), 0x9a, &options, &bytes[36..], &mut out).unwrap();
        assert_eq!(out, bytes);

        let d = decapsulate(&bytes).unwrap();
        assert_eq!(d.outer.protocol, IpProtocol::Gre);
        assert_eq!(d.gre.key, Some(0x0102_0304));
        assert_eq!(d.inner.as_ref(), &bytes[36..]);
    }

    #[test]
    fn decapsulation_errors() {
        let bytes = hex::decode(GRE_CKS).unwrap();
        let set_gre = |f: &dyn Fn(&mut [u8])| {
            let mut b = bytes.clone();
            f(&mut b[20..]);
            Packet::new_unchecked(&mut b[20..]).fill_checksum();
            b
        };
        let ipv6 = set_gre(&|g| g[2..4].copy_from_slice(&[0x86, 0xdd]));
        assert!(matches!(
            decapsulate(&ipv6),
            Err(Error::Malformed { offset: 22, .. })
        ));
        let ttl0 = set_gre(&|g| g[16 + 8] = 0);
        assert!(matches!(
            decapsulate(&ttl0),
            Err(Error::Malformed { offset: 44, .. })
        ));
        let mut bad = bytes.clone();
        bad[40] ^= 1;
        assert_eq!(
            decapsulate(&bad),
            Err(Error::Checksum { what: "GRE packet" })
        );
        let ipip = hex::decode(
            "45b80035009940004004b555c000020ac000021445b80021424340003f11928e\
             cb007105c633640913881770000d2ac768656c6c6f",
        )
        .unwrap();
        assert!(matches!(
            decapsulate(&ipip),
            Err(Error::Malformed { offset: 9, .. })
        ));
    }
}
