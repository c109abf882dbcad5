//! UDP over IPv4 (RFC 768): the checked view [`Packet`] and the owned header [`Repr`].
//!
//! Owns the UDP header and its pseudo-header checksum, under the crate's
//! no-panic contract ([crate docs](crate)). [`Packet::new_checked`] checks that
//! the buffer holds the 8-byte header and the whole Length-field part. A
//! buffer longer than the Length field is accepted; the datagram is the
//! Length-field part (what the checksum covers).
//!
//! **Checksum zero.** RFC 768: a transmitted checksum of zero means the sender
//! computed none (allowed over IPv4 only); a computed zero is sent as `0xffff`.

use crate::Error;
use crate::checksum::{self, Verification};
use crate::codec::{check_header, get_u16, set_u16};
use crate::ipv4::IpProtocol;
use serde::Serialize;
use std::net::Ipv4Addr;

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;

    pub(super) const SRC_PORT: Range<usize> = 0..2;
    pub(super) const DST_PORT: Range<usize> = 2..4;
    pub(super) const LENGTH: Range<usize> = 4..6;
    pub(super) const CHECKSUM: Range<usize> = 6..8;
}

packet_view! {
    /// A zero-copy view of a UDP datagram (header and data).
    checks: [check_len],
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks that the header is there, that the Length field counts at least
    /// the header (RFC 768: "the minimum value of the length is eight") and
    /// that the buffer holds that many bytes.
    pub fn check_len(&self) -> Result<(), Error> {
        check_header(self.buffer.as_ref(), HEADER_LEN, "UDP header")?;
        let have = self.buffer.as_ref().len();
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(Error::Malformed {
                what: "UDP length",
                offset: field::LENGTH.start,
                reason: "below 8",
            });
        }
        if len > have {
            return Err(Error::Truncated {
                what: "UDP datagram",
                offset: 0,
                need: len,
                have,
            });
        }
        Ok(())
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// Length field: header and data, in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Checksum field (0: none was computed).
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The datagram as the Length field bounds it (clamped to the buffer).
    fn datagram(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[..usize::from(self.len()).min(data.len())]
    }

    /// The data after the header, up to the Length field.
    pub fn payload(&self) -> &[u8] {
        let datagram = self.datagram();
        datagram.get(HEADER_LEN..).unwrap_or(&[])
    }

    fn sum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> u16 {
        let datagram = self.datagram();
        let length = u32::try_from(datagram.len()).unwrap_or(u32::MAX);
        checksum::combine(&[
            checksum::pseudo_header(src_addr, dst_addr, IpProtocol::Udp.into(), length),
            checksum::data(datagram),
        ])
    }

    /// True when the checksum verifies over the pseudo-header, header and
    /// data, or when there is none (field zero, RFC 768).
    pub fn verify_checksum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> bool {
        self.checksum() == 0 || self.sum(src_addr, dst_addr) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port (checksum untouched).
    pub fn set_src_port(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT.start, value);
    }

    /// Sets the destination port (checksum untouched).
    pub fn set_dst_port(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT.start, value);
    }

    /// Sets the Length field.
    pub fn set_len(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH.start, value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }

    /// Computes and writes the checksum; a computed zero is written as
    /// `0xffff` (RFC 768). The data must already be in place.
    pub fn fill_checksum(&mut self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) {
        self.set_checksum(0);
        let value = !self.sum(src_addr, dst_addr);
        self.set_checksum(if value == 0 { 0xffff } else { value });
    }

    /// The data after the header, mutable (same bounds as [`Packet::payload`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len()).min(self.buffer.as_ref().len());
        let start = HEADER_LEN.min(end);
        &mut self.buffer.as_mut()[start..end]
    }

    /// Applies an RFC 1624 eqn. 3 update to the checksum, keeping zero as
    /// "no checksum" and a computed zero as `0xffff`.
    fn update_checksum(&mut self, update: impl FnOnce(u16) -> u16) {
        let old = self.checksum();
        if old == 0 {
            return;
        }
        let new = update(old);
        self.set_checksum(if new == 0 { 0xffff } else { new });
    }

    /// Sets the source port and updates the checksum incrementally (RFC 1624).
    pub fn rewrite_src_port(&mut self, value: u16) {
        let old = self.src_port();
        self.set_src_port(value);
        self.update_checksum(|c| checksum::update_u16(c, old, value));
    }

    /// Sets the destination port and updates the checksum incrementally (RFC 1624).
    pub fn rewrite_dst_port(&mut self, value: u16) {
        let old = self.dst_port();
        self.set_dst_port(value);
        self.update_checksum(|c| checksum::update_u16(c, old, value));
    }

    /// Updates the checksum for an address of the pseudo-header that the
    /// caller rewrote in the IPv4 header from `old` to `new` (RFC 1624).
    pub fn rewrite_checksum_for_address(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        self.update_checksum(|c| checksum::update_u32(c, old.to_bits(), new.to_bits()));
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An owned UDP header. The data is not owned: [`Repr::emit`] expects it
/// already in the buffer after the header, and checksums it there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// False when the checksum field is zero: the sender computed none (RFC 768).
    pub has_checksum: bool,
    /// Bytes of data after the header (Length − 8).
    pub payload_len: usize,
}

impl Repr {
    /// Parses a UDP header, verifying a non-zero checksum against the
    /// pseudo-header built from the enclosing IPv4 addresses.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
    ) -> Result<Repr, Error> {
        Self::parse_with(packet, src_addr, dst_addr, Verification::Verify)
    }

    /// Parses a UDP header, verifying the checksum or not.
    pub fn parse_with<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        verification: Verification,
    ) -> Result<Repr, Error> {
        packet.check_len()?;
        if verification == Verification::Verify && !packet.verify_checksum(src_addr, dst_addr) {
            return Err(Error::Checksum {
                what: "UDP datagram",
            });
        }
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            has_checksum: packet.checksum() != 0,
            payload_len: usize::from(packet.len()) - HEADER_LEN,
        })
    }

    /// The header of a datagram of `payload_len` data bytes sent without a
    /// checksum (zero), as ESP in UDP is (RFC 3948 s2.1): the only kind of
    /// header [`Repr::emit_header`] can complete before the data is in place.
    pub fn without_checksum(src_port: u16, dst_port: u16, payload_len: usize) -> Repr {
        Repr {
            src_port,
            dst_port,
            has_checksum: false,
            payload_len,
        }
    }

    /// Length of the header alone.
    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 8-byte header into `buf[..8]` with a zero checksum, or fails
    /// with [`Error::Truncated`] if `buf` is shorter. The data need not be
    /// there yet; a caller whose `has_checksum` is set fills the checksum with
    /// [`Packet::fill_checksum`] once it is. A length above 65535 is written
    /// as 65535.
    pub fn emit_header(&self, buf: &mut [u8]) -> Result<(), Error> {
        check_header(buf, HEADER_LEN, "UDP header buffer")?;
        let mut packet = Packet::new_unchecked(buf);
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(u16::try_from(self.buffer_len()).unwrap_or(u16::MAX));
        packet.set_checksum(0);
        Ok(())
    }

    /// Appends the header with a zero checksum to `out` ([`Repr::emit_header`]).
    pub fn push_header(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        let _ = self.emit_header(out.get_mut(start..).unwrap_or_default());
    }

    /// Length of the whole datagram: header and data (the Length field).
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header and then the checksum (or zero) over the header and
    /// the `payload_len` data bytes already in the buffer. A length above
    /// 65535 is written as 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut Packet<&mut T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(u16::try_from(self.buffer_len()).unwrap_or(u16::MAX));
        if self.has_checksum {
            packet.fill_checksum(src_addr, dst_addr);
        } else {
            packet.set_checksum(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipv4;

    // An IPv4/UDP DNS query for example.com, made with scapy (checksums by scapy).
    const PACKET: &str = "45000039a3b040004011c541c0a8010a08080808d43100350025d42c\
        b5e001000001000000000000076578616d706c6503636f6d0000010001";

    fn parts() -> (Ipv4Addr, Ipv4Addr, Vec<u8>) {
        let bytes = hex::decode(PACKET).unwrap();
        let ip = ipv4::Packet::new_checked(&bytes[..]).unwrap();
        (ip.src_addr(), ip.dst_addr(), ip.payload().to_vec())
    }

    #[test]
    fn parses_and_verifies_a_real_datagram() {
        let (src, dst, bytes) = parts();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.src_port(), 54321);
        assert_eq!(packet.dst_port(), 53);
        assert_eq!(packet.len(), 37);
        assert_eq!(packet.checksum(), 0xd42c);
        assert!(packet.verify_checksum(src, dst));
        assert!(!packet.verify_checksum(src, Ipv4Addr::new(8, 8, 4, 4)));
        let repr = Repr::parse(&packet, src, dst).unwrap();
        assert_eq!(
            repr,
            Repr {
                src_port: 54321,
                dst_port: 53,
                has_checksum: true,
                payload_len: 29
            }
        );

        let mut out = vec![0u8; repr.buffer_len()];
        out[HEADER_LEN..].copy_from_slice(packet.payload());
        repr.emit(&mut Packet::new_unchecked(&mut out[..]), src, dst);
        assert_eq!(out, bytes);
    }

    #[test]
    fn zero_checksum_means_none() {
        let (src, dst, mut bytes) = parts();
        bytes[6] = 0;
        bytes[7] = 0;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum(src, dst));
        let repr = Repr::parse(&packet, src, dst).unwrap();
        assert!(!repr.has_checksum);
        let mut out = bytes.clone();
        out[6] = 0xaa;
        repr.emit(&mut Packet::new_unchecked(&mut out[..]), src, dst);
        assert_eq!(out, bytes);
        // Incremental updates leave "no checksum" alone.
        let mut packet = Packet::new_unchecked(&mut out[..]);
        packet.rewrite_src_port(1);
        assert_eq!(packet.checksum(), 0);
    }

    #[test]
    fn computed_zero_is_sent_as_all_ones() {
        // Find a source port that makes the computed checksum zero.
        let (src, dst, mut bytes) = parts();
        for port in 0..=u16::MAX {
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.set_src_port(port);
            packet.fill_checksum(src, dst);
            if packet.checksum() == 0xffff {
                assert!(packet.verify_checksum(src, dst));
                let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap(), src, dst);
                assert!(repr.unwrap().has_checksum);
                return;
            }
        }
        panic!("no port gives a zero checksum");
    }

    #[test]
    fn length_field_is_checked() {
        let (_, _, bytes) = parts();
        assert!(matches!(
            Packet::new_checked(&bytes[..7]),
            Err(Error::Truncated {
                what: "UDP header",
                ..
            })
        ));
        assert!(matches!(
            Packet::new_checked(&bytes[..36]),
            Err(Error::Truncated {
                what: "UDP datagram",
                need: 37,
                have: 36,
                ..
            })
        ));
        let mut short = bytes.clone();
        short[5] = 7;
        assert!(matches!(
            Packet::new_checked(&short[..]),
            Err(Error::Malformed { offset: 4, .. })
        ));
        // A longer buffer is fine; the datagram is the Length part.
        let mut long = bytes.clone();
        long.extend_from_slice(&[1, 2, 3]);
        let packet = Packet::new_checked(&long[..]).unwrap();
        assert_eq!(packet.payload().len(), 29);
    }

    #[test]
    fn incremental_rewrites_match_fill_checksum() {
        let (src, dst, mut bytes) = parts();
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.rewrite_src_port(4500);
        packet.rewrite_dst_port(500);
        let new_src = Ipv4Addr::new(203, 0, 113, 77);
        packet.rewrite_checksum_for_address(src, new_src);
        assert!(packet.verify_checksum(new_src, dst));
        let incremental = packet.checksum();
        packet.fill_checksum(new_src, dst);
        assert_eq!(packet.checksum(), incremental);
    }
}
