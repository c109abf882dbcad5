//! TCP over IPv4 (RFC 9293): the checked view [`Packet`], the owned header
//! [`Repr`] and the control bits [`Flags`].
//!
//! Owns the TCP header and its pseudo-header checksum, under the crate's
//! no-panic contract ([crate docs](crate)). It does no TCP processing (no
//! state, no sequence arithmetic).
//!
//! [`Packet::new_checked`] checks that the buffer holds the whole header,
//! options included. TCP has no length field: the buffer must be exactly the segment (the IPv4
//! payload), because the checksum covers all of it.
//!
//! **Reserved bits.** RFC 9293 s3.1: the reserved bits "must be zero in
//! generated segments and must be ignored in received segments": [`Repr`]
//! ignores them on parse and emits zeros. The nine control bits, NS (RFC 3540,
//! historic since RFC 8311) included, are all kept.

use crate::Error;
use crate::checksum::{self, Verification};
use crate::codec::{check_header, get_u16, get_u32, set_u16, set_u32};
use crate::ipv4::IpProtocol;
/// TCP options share the RFC 791 layout (RFC 9293 s3.1); the walker lives in [`crate::ipv4`].
pub use crate::ipv4::{TlvOption, TlvOptions};
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::{BitOr, BitOrAssign};

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;
/// Largest TCP header: Data Offset is 4 bits of 32-bit words.
pub const MAX_HEADER_LEN: usize = 60;
/// Largest options field.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

mod field {
    use core::ops::Range;

    pub(super) const SRC_PORT: Range<usize> = 0..2;
    pub(super) const DST_PORT: Range<usize> = 2..4;
    pub(super) const SEQ_NUM: Range<usize> = 4..8;
    pub(super) const ACK_NUM: Range<usize> = 8..12;
    /// Data offset (4 bits), reserved (3 bits), NS, then the eight flags of byte 13.
    pub(super) const OFF_FLAGS: Range<usize> = 12..14;
    pub(super) const WINDOW: Range<usize> = 14..16;
    pub(super) const CHECKSUM: Range<usize> = 16..18;
    pub(super) const URGENT: Range<usize> = 18..20;
}

const FLAGS_MASK: u16 = 0x01ff;

/// The nine TCP control bits (RFC 9293 s3.1, RFC 3168 for ECE and CWR,
/// RFC 3540 for NS), as the low nine bits of header bytes 12–13.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u16);

impl Flags {
    /// No more data from sender.
    pub const FIN: Flags = Flags(0x001);
    /// Synchronize sequence numbers.
    pub const SYN: Flags = Flags(0x002);
    /// Reset the connection.
    pub const RST: Flags = Flags(0x004);
    /// Push function.
    pub const PSH: Flags = Flags(0x008);
    /// Acknowledgment field is significant.
    pub const ACK: Flags = Flags(0x010);
    /// Urgent pointer field is significant.
    pub const URG: Flags = Flags(0x020);
    /// ECN-Echo (RFC 3168).
    pub const ECE: Flags = Flags(0x040);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: Flags = Flags(0x080);
    /// ECN nonce sum (RFC 3540, historic).
    pub const NS: Flags = Flags(0x100);

    const NAMES: [(Flags, &'static str); 9] = [
        (Flags::FIN, "FIN"),
        (Flags::SYN, "SYN"),
        (Flags::RST, "RST"),
        (Flags::PSH, "PSH"),
        (Flags::ACK, "ACK"),
        (Flags::URG, "URG"),
        (Flags::ECE, "ECE"),
        (Flags::CWR, "CWR"),
        (Flags::NS, "NS"),
    ];

    /// No flag set.
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// The flags in the low nine bits of `bits`; other bits are dropped.
    pub const fn from_bits_truncate(bits: u16) -> Flags {
        Flags(bits & FLAGS_MASK)
    }

    /// The flags as the low nine bits of a `u16`.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// True when every flag of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The names of the set flags, FIN first.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags(")?;
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                write!(f, "|")?;
            }
            write!(f, "{name}")?;
        }
        write!(f, ")")
    }
}

/// Serialized as the list of set flag names, e.g. `["SYN", "ACK"]`.
impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

packet_view! {
    /// A zero-copy view of a TCP segment (header and data).
    checks: [check_len],
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks that the fixed header is there, that Data Offset is at least 5
    /// (RFC 9293 s3.1) and that the options fit in the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        check_header(self.buffer.as_ref(), HEADER_LEN, "TCP header")?;
        let have = self.buffer.as_ref().len();
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            return Err(Error::Malformed {
                what: "TCP data offset",
                offset: field::OFF_FLAGS.start,
                reason: "below 5 words",
            });
        }
        if header_len > have {
            return Err(Error::Truncated {
                what: "TCP options",
                offset: HEADER_LEN,
                need: header_len - HEADER_LEN,
                have: have - HEADER_LEN,
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

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ_NUM.start)
    }

    /// Acknowledgment number (meaningful when ACK is set; kept either way).
    pub fn ack_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK_NUM.start)
    }

    /// Header length in bytes (Data Offset × 4).
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::OFF_FLAGS.start] >> 4) * 4
    }

    /// The nine control bits.
    pub fn flags(&self) -> Flags {
        Flags::from_bits_truncate(get_u16(self.buffer.as_ref(), field::OFF_FLAGS.start))
    }

    /// The three reserved bits between Data Offset and NS.
    pub fn reserved(&self) -> u8 {
        (self.buffer.as_ref()[field::OFF_FLAGS.start] >> 1) & 0x07
    }

    /// Window.
    pub fn window_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WINDOW.start)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Urgent pointer (meaningful when URG is set; kept either way).
    pub fn urgent_pointer(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::URGENT.start)
    }

    /// The options bytes as on the wire (padding included).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// The options, walked as kind-length-value entries (RFC 9293 s3.1).
    pub fn options_iter(&self) -> TlvOptions<'_> {
        let header_len = usize::from(self.header_len());
        TlvOptions::new(
            &self.buffer.as_ref()[..header_len],
            HEADER_LEN,
            "TCP option",
        )
    }

    /// The data after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..]
    }

    fn sum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> u16 {
        let segment = self.buffer.as_ref();
        let length = u32::try_from(segment.len()).unwrap_or(u32::MAX);
        checksum::combine(&[
            checksum::pseudo_header(src_addr, dst_addr, IpProtocol::Tcp.into(), length),
            checksum::data(segment),
        ])
    }

    /// True when the checksum verifies over the pseudo-header and the whole
    /// buffer (RFC 9293 s3.1).
    pub fn verify_checksum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> bool {
        self.sum(src_addr, dst_addr) == 0xffff
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

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::SEQ_NUM.start, value);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::ACK_NUM.start, value);
    }

    /// Sets the header length in bytes (rounded down to 4-byte words).
    pub fn set_header_len(&mut self, bytes: u8) {
        let d = self.buffer.as_mut();
        d[field::OFF_FLAGS.start] = (d[field::OFF_FLAGS.start] & 0x0f) | ((bytes / 4) << 4);
    }

    /// Sets the nine control bits and clears the reserved bits.
    pub fn set_flags(&mut self, flags: Flags) {
        let d = self.buffer.as_mut();
        let offset = u16::from(d[field::OFF_FLAGS.start] & 0xf0) << 8;
        set_u16(d, field::OFF_FLAGS.start, offset | flags.bits());
    }

    /// Sets the window.
    pub fn set_window_len(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::WINDOW.start, value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_pointer(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::URGENT.start, value);
    }

    /// Computes and writes the checksum over the pseudo-header and the whole
    /// buffer. The data must already be in place.
    pub fn fill_checksum(&mut self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) {
        self.set_checksum(0);
        let value = !self.sum(src_addr, dst_addr);
        self.set_checksum(value);
    }

    /// The options bytes, mutable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let header_len = usize::from(self.header_len());
        &mut self.buffer.as_mut()[HEADER_LEN..header_len]
    }

    /// The data after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header_len = usize::from(self.header_len());
        &mut self.buffer.as_mut()[header_len..]
    }

    /// Sets the source port and updates the checksum incrementally (RFC 1624
    /// eqn. 3). A host or a test may rewrite ports; the RSIP gateway never does.
    pub fn rewrite_src_port(&mut self, value: u16) {
        let old = self.src_port();
        self.set_src_port(value);
        self.set_checksum(checksum::update_u16(self.checksum(), old, value));
    }

    /// Sets the destination port and updates the checksum incrementally (RFC 1624).
    pub fn rewrite_dst_port(&mut self, value: u16) {
        let old = self.dst_port();
        self.set_dst_port(value);
        self.set_checksum(checksum::update_u16(self.checksum(), old, value));
    }

    /// Updates the checksum for an address of the pseudo-header that the
    /// caller rewrote in the IPv4 header from `old` to `new` (RFC 1624).
    pub fn rewrite_checksum_for_address(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let value = checksum::update_u32(self.checksum(), old.to_bits(), new.to_bits());
        self.set_checksum(value);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An owned TCP header. The data is not owned: [`Repr::emit`] expects it
/// already in the buffer after the header, and checksums it there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgment number (kept whether or not ACK is set).
    pub ack_number: u32,
    /// The nine control bits.
    pub flags: Flags,
    /// Window.
    pub window_len: u16,
    /// Urgent pointer (kept whether or not URG is set).
    pub urgent_pointer: u16,
    /// Options as on the wire, padding included; at most 40 bytes, a
    /// multiple of 4 (emit pads with zeros, End of Option List, and drops
    /// anything past 40).
    pub options: Vec<u8>,
    /// Bytes of data after the header.
    pub payload_len: usize,
}

impl Repr {
    /// Parses a TCP header, verifying the checksum against the
    /// pseudo-header built from the enclosing IPv4 addresses, and the option layout.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
    ) -> Result<Repr, Error> {
        Self::parse_with(packet, src_addr, dst_addr, Verification::Verify)
    }

    /// Parses a TCP header, verifying the checksum or not.
    pub fn parse_with<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        verification: Verification,
    ) -> Result<Repr, Error> {
        packet.check_len()?;
        if verification == Verification::Verify && !packet.verify_checksum(src_addr, dst_addr) {
            return Err(Error::Checksum {
                what: "TCP segment",
            });
        }
        packet.options_iter().check()?;
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_pointer: packet.urgent_pointer(),
            options: packet.options().to_vec(),
            payload_len: packet.payload().len(),
        })
    }

    /// Length of the emitted header (options padded to 4 bytes, at most 60).
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len().min(MAX_OPTIONS_LEN).next_multiple_of(4)
    }

    /// Length of the whole segment: header and data.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Writes the header, then the checksum over the pseudo-header and the
    /// whole buffer, whose data part must already be in place. The buffer
    /// must be exactly [`Repr::buffer_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut Packet<&mut T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_header_len(u8::try_from(self.header_len()).unwrap_or(60));
        packet.set_flags(self.flags);
        packet.set_window_len(self.window_len);
        packet.set_urgent_pointer(self.urgent_pointer);
        let options = packet.options_mut();
        let n = self.options.len().min(options.len());
        options[..n].copy_from_slice(&self.options[..n]);
        options[n..].fill(0);
        packet.fill_checksum(src_addr, dst_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipv4;

    // Made with scapy: a SYN with MSS, SACK-permitted, timestamps, NOP,
    // window scale; and a PSH|ACK carrying an HTTP request.
    const SYN: &str = "4500003c1c4640004006de990a0000025db8d8229c4000501234567800000000\
        a002faf025b40000020405b40402080a0001e2400000000001030307";
    const DATA: &str = "450000461c4740004006de8e0a0000025db8d8229c40005012345679abcdef01\
        801801f6c1c800000101080a0001e244000f1206474554202f20485454502f312e300d0a0d0a";

    fn parts(hex_packet: &str) -> (Ipv4Addr, Ipv4Addr, Vec<u8>) {
        let bytes = hex::decode(hex_packet).unwrap();
        let ip = ipv4::Packet::new_checked(&bytes[..]).unwrap();
        (ip.src_addr(), ip.dst_addr(), ip.payload().to_vec())
    }

    fn reemit(repr: &Repr, payload: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut out = vec![0u8; repr.buffer_len()];
        out[repr.header_len()..].copy_from_slice(payload);
        repr.emit(&mut Packet::new_unchecked(&mut out[..]), src, dst);
        out
    }

    #[test]
    fn parses_a_syn_with_options() {
        let (src, dst, bytes) = parts(SYN);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.src_port(), 40000);
        assert_eq!(packet.dst_port(), 80);
        assert_eq!(packet.seq_number(), 0x1234_5678);
        assert_eq!(packet.header_len(), 40);
        assert_eq!(packet.flags(), Flags::SYN);
        assert_eq!(packet.window_len(), 64240);
        assert!(packet.verify_checksum(src, dst));
        let options: Vec<_> = packet.options_iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            options,
            [
                TlvOption {
                    kind: 2,
                    data: &[0x05, 0xb4]
                },
                TlvOption { kind: 4, data: &[] },
                TlvOption {
                    kind: 8,
                    data: &hex::decode("0001e24000000000").unwrap()
                },
                TlvOption {
                    kind: 3,
                    data: &[7]
                },
            ]
        );
        let repr = Repr::parse(&packet, src, dst).unwrap();
        assert_eq!(repr.options.len(), 20);
        assert_eq!(repr.payload_len, 0);
        assert_eq!(reemit(&repr, &[], src, dst), bytes);
    }

    #[test]
    fn parses_a_data_segment() {
        let (src, dst, bytes) = parts(DATA);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.flags(), Flags::PSH | Flags::ACK);
        assert_eq!(packet.ack_number(), 0xabcd_ef01);
        assert_eq!(packet.payload(), b"GET / HTTP/1.0\r\n\r\n");
        let repr = Repr::parse(&packet, src, dst).unwrap();
        assert_eq!(repr.payload_len, 18);
        assert_eq!(reemit(&repr, packet.payload(), src, dst), bytes);
        let mut bad = bytes.clone();
        bad[30] ^= 0x20;
        let packet = Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(
            Repr::parse(&packet, src, dst),
            Err(Error::Checksum {
                what: "TCP segment"
            })
        );
    }

    #[test]
    fn all_nine_flags_and_reserved_bits() {
        let (src, dst, mut bytes) = parts(DATA);
        bytes[12] |= 0x0f; // three reserved bits and NS
        bytes[13] = 0xff;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.fill_checksum(src, dst);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.flags().bits(), 0x1ff);
        assert_eq!(packet.reserved(), 7);
        let repr = Repr::parse(&packet, src, dst).unwrap();
        assert_eq!(repr.flags.names().count(), 9);
        let out = reemit(&repr, packet.payload(), src, dst);
        assert_eq!(out[12], bytes[12] & 0xf1);
        assert_eq!(format!("{:?}", Flags::SYN | Flags::ACK), "Flags(SYN|ACK)");
    }

    #[test]
    fn length_checks() {
        let (_, _, bytes) = parts(SYN);
        assert!(matches!(
            Packet::new_checked(&bytes[..19]),
            Err(Error::Truncated {
                what: "TCP header",
                ..
            })
        ));
        assert!(matches!(
            Packet::new_checked(&bytes[..39]),
            Err(Error::Truncated {
                what: "TCP options",
                ..
            })
        ));
        let mut low = bytes.clone();
        low[12] = 0x40;
        assert!(matches!(
            Packet::new_checked(&low[..]),
            Err(Error::Malformed { offset: 12, .. })
        ));
    }

    #[test]
    fn incremental_rewrites_match_fill_checksum() {
        let (src, dst, mut bytes) = parts(DATA);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.rewrite_src_port(1024);
        packet.rewrite_dst_port(8080);
        let new_dst = Ipv4Addr::new(192, 0, 2, 99);
        packet.rewrite_checksum_for_address(dst, new_dst);
        assert!(packet.verify_checksum(src, new_dst));
        let incremental = packet.checksum();
        packet.fill_checksum(src, new_dst);
        assert_eq!(packet.checksum(), incremental);
    }
}
