//! IPv4 headers (RFC 791): the checked view [`Packet`], the owned header
//! [`Repr`], the protocol number [`IpProtocol`] and the option walker [`TlvOptions`].
//!
//! Owns the IPv4 header format only, under the crate's no-panic contract
//! ([crate docs](crate)), and never rewrites a packet unless a caller asks
//! through a setter.
//!
//! [`Packet::new_checked`] checks that the buffer holds the whole header
//! (options included) and the total-length part.
//! [`Packet::new_checked_partial`] checks only the header, for the invoking
//! packet quoted in an ICMP error; on such a view [`Packet::payload`] returns
//! what is there.
//!
//! **Reserved bits.** The reserved flag (bit 0 of the flags, RFC 791 s3.1
//! "must be zero") is ignored on parse and emitted as zero, like the unused
//! bits of TCP and ICMP: a [`Repr`] round-trips every header that follows the
//! RFC, byte for byte.

use crate::Error;
use crate::checksum::{self, Verification};
use crate::codec::{Reader, check_header, get_u16, set_u16};
use serde::Serialize;
use std::net::Ipv4Addr;

/// An IPv4 address.
pub type Address = Ipv4Addr;

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// Largest IPv4 header: IHL is 4 bits of 32-bit words.
pub const MAX_HEADER_LEN: usize = 60;
/// Largest options field.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

/// The IPv4 Protocol field (IANA "Assigned Internet Protocol Numbers").
/// Numbers Realm does not name are kept in `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum IpProtocol {
    /// ICMP (RFC 792): 1.
    Icmp,
    /// IGMP (RFC 1112): 2.
    Igmp,
    /// IP in IP (RFC 2003): 4.
    IpIp,
    /// TCP (RFC 9293): 6.
    Tcp,
    /// UDP (RFC 768): 17.
    Udp,
    /// GRE (RFC 2784): 47.
    Gre,
    /// ESP (RFC 4303): 50.
    Esp,
    /// AH (RFC 4302): 51.
    Ah,
    /// Any other number, kept as it was.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(value: u8) -> Self {
        match value {
            1 => IpProtocol::Icmp,
            2 => IpProtocol::Igmp,
            4 => IpProtocol::IpIp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            47 => IpProtocol::Gre,
            50 => IpProtocol::Esp,
            51 => IpProtocol::Ah,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(value: IpProtocol) -> Self {
        match value {
            IpProtocol::Icmp => 1,
            IpProtocol::Igmp => 2,
            IpProtocol::IpIp => 4,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Gre => 47,
            IpProtocol::Esp => 50,
            IpProtocol::Ah => 51,
            IpProtocol::Unknown(other) => other,
        }
    }
}

mod field {
    use core::ops::Range;

    pub(super) const VER_IHL: usize = 0;
    pub(super) const DSCP_ECN: usize = 1;
    pub(super) const LENGTH: Range<usize> = 2..4;
    pub(super) const IDENT: Range<usize> = 4..6;
    pub(super) const FLG_OFF: Range<usize> = 6..8;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: Range<usize> = 10..12;
    pub(super) const SRC_ADDR: Range<usize> = 12..16;
    pub(super) const DST_ADDR: Range<usize> = 16..20;
}

const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

packet_view! {
    /// A zero-copy view of an IPv4 packet. `new_checked` takes a buffer
    /// holding a whole IPv4 packet: [`Packet::check_len`], then version 4. A
    /// buffer longer than the total length (link-layer padding) is accepted;
    /// the packet is the total-length part.
    checks: [check_len, check_version],
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer that holds a whole IPv4 header but possibly only the
    /// start of its payload: the invoking packet quoted in an ICMP error
    /// (RFC 792, RFC 1812 s4.3.2.3), whose total length says more than is there.
    pub fn new_checked_partial(buffer: T) -> Result<Packet<T>, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_header_len()?;
        packet.check_version()?;
        Ok(packet)
    }

    /// Checks that the header (options included) and the total-length part
    /// are in the buffer, and that IHL >= 5 and total length >= header length.
    pub fn check_len(&self) -> Result<(), Error> {
        self.check_header_len()?;
        let have = self.buffer.as_ref().len();
        let total = usize::from(self.total_len());
        if total < usize::from(self.header_len()) {
            return Err(Error::Malformed {
                what: "IPv4 total length",
                offset: field::LENGTH.start,
                reason: "shorter than the header",
            });
        }
        if total > have {
            return Err(Error::Truncated {
                what: "IPv4 packet",
                offset: 0,
                need: total,
                have,
            });
        }
        Ok(())
    }

    fn check_header_len(&self) -> Result<(), Error> {
        check_header(self.buffer.as_ref(), HEADER_LEN, "IPv4 header")?;
        let have = self.buffer.as_ref().len();
        let header_len = usize::from(self.header_len());
        // RFC 791 s3.1: "the minimum value for a correct header is 5".
        if header_len < HEADER_LEN {
            return Err(Error::Malformed {
                what: "IPv4 IHL",
                offset: field::VER_IHL,
                reason: "below 5 words",
            });
        }
        if header_len > have {
            return Err(Error::Truncated {
                what: "IPv4 options",
                offset: HEADER_LEN,
                need: header_len - HEADER_LEN,
                have: have - HEADER_LEN,
            });
        }
        Ok(())
    }

    fn check_version(&self) -> Result<(), Error> {
        if self.version() != 4 {
            return Err(Error::Malformed {
                what: "IPv4 version",
                offset: field::VER_IHL,
                reason: "not 4",
            });
        }
        Ok(())
    }

    /// Version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated Services Code Point (RFC 2474, the upper 6 bits of the
    /// old Type of Service).
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit Congestion Notification (RFC 3168, the lower 2 bits).
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// The whole former Type of Service byte (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length of the datagram (header and data) in bytes.
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT.start)
    }

    fn flags_offset(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLG_OFF.start)
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// The reserved flag (bit 0), which RFC 791 says must be zero.
    pub fn reserved_flag(&self) -> bool {
        self.flags_offset() & FLAG_RESERVED != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// True for any fragment of a fragmented datagram: MF set or a non-zero
    /// offset (RFC 791 s3.2). Only an unfragmented datagram has neither.
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to Live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let d = self.buffer.as_ref();
        Ipv4Addr::new(d[12], d[13], d[14], d[15])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let d = self.buffer.as_ref();
        Ipv4Addr::new(d[16], d[17], d[18], d[19])
    }

    /// True when the header checksum verifies (RFC 791 s3.1: the ones'
    /// complement sum over the header, checksum included, is all ones).
    pub fn verify_checksum(&self) -> bool {
        let header_len = usize::from(self.header_len());
        checksum::data(&self.buffer.as_ref()[..header_len]) == 0xffff
    }

    /// The options bytes as they are on the wire (padding included).
    pub fn options(&self) -> &[u8] {
        let header_len = usize::from(self.header_len());
        &self.buffer.as_ref()[HEADER_LEN..header_len]
    }

    /// The options, walked as type-length-value entries.
    pub fn options_iter(&self) -> TlvOptions<'_> {
        let header_len = usize::from(self.header_len());
        TlvOptions::new(
            &self.buffer.as_ref()[..header_len],
            HEADER_LEN,
            "IPv4 option",
        )
    }

    /// The payload: the bytes from the end of the header to the total
    /// length, or to the end of the buffer if that comes first (a partial view).
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(data.len());
        let start = usize::from(self.header_len()).min(end);
        &data[start..end]
    }

    /// The header and payload, without any link-layer padding beyond the
    /// total length.
    pub fn datagram(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(data.len());
        &data[..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version field.
    pub fn set_version(&mut self, value: u8) {
        let d = self.buffer.as_mut();
        d[field::VER_IHL] = (d[field::VER_IHL] & 0x0f) | (value << 4);
    }

    /// Sets the header length in bytes (rounded down to 4-byte words).
    pub fn set_header_len(&mut self, bytes: u8) {
        let d = self.buffer.as_mut();
        d[field::VER_IHL] = (d[field::VER_IHL] & 0xf0) | ((bytes / 4) & 0x0f);
    }

    /// Sets the DSCP (6 bits).
    pub fn set_dscp(&mut self, value: u8) {
        let d = self.buffer.as_mut();
        d[field::DSCP_ECN] = (d[field::DSCP_ECN] & 0x03) | (value << 2);
    }

    /// Sets the ECN (2 bits).
    pub fn set_ecn(&mut self, value: u8) {
        let d = self.buffer.as_mut();
        d[field::DSCP_ECN] = (d[field::DSCP_ECN] & 0xfc) | (value & 0x03);
    }

    /// Sets the whole Type of Service byte.
    pub fn set_tos(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH.start, value);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT.start, value);
    }

    fn set_flags_offset(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::FLG_OFF.start, value);
    }

    /// Clears all three flags.
    pub fn clear_flags(&mut self) {
        let v = self.flags_offset() & OFFSET_MASK;
        self.set_flags_offset(v);
    }

    /// Sets or clears Don't Fragment.
    pub fn set_dont_frag(&mut self, value: bool) {
        let v = self.flags_offset();
        self.set_flags_offset(if value { v | FLAG_DF } else { v & !FLAG_DF });
    }

    /// Sets or clears More Fragments.
    pub fn set_more_frags(&mut self, value: bool) {
        let v = self.flags_offset();
        self.set_flags_offset(if value { v | FLAG_MF } else { v & !FLAG_MF });
    }

    /// Sets the fragment offset in bytes; the low three bits are dropped
    /// (the field counts 8-byte units).
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let v = self.flags_offset() & !OFFSET_MASK;
        self.set_flags_offset(v | (bytes >> 3));
    }

    /// Sets the Time to Live.
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = u8::from(value);
    }

    /// Sets the header checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Computes and writes the header checksum (RFC 791 s3.1).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = usize::from(self.header_len());
        let value = checksum::checksum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(value);
    }

    /// The options bytes, mutable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let header_len = usize::from(self.header_len());
        &mut self.buffer.as_mut()[HEADER_LEN..header_len]
    }

    /// The payload, mutable (same bounds as [`Packet::payload`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.total_len()).min(self.buffer.as_ref().len());
        let start = usize::from(self.header_len()).min(end);
        &mut self.buffer.as_mut()[start..end]
    }

    /// Sets the TTL and updates the header checksum incrementally (RFC 1624
    /// eqn. 3), as a forwarder does when it decrements the TTL.
    pub fn rewrite_ttl(&mut self, value: u8) {
        let old = get_u16(self.buffer.as_ref(), field::TTL);
        self.set_ttl(value);
        let new = get_u16(self.buffer.as_ref(), field::TTL);
        self.set_checksum(checksum::update_u16(self.checksum(), old, new));
    }

    /// Sets the source address and updates the header checksum
    /// incrementally (RFC 1624 eqn. 3). Transport checksums that cover the
    /// address through their pseudo-header are the caller's to update.
    pub fn rewrite_src_addr(&mut self, value: Ipv4Addr) {
        let old = self.src_addr();
        self.set_src_addr(value);
        self.set_checksum(checksum::update_u32(
            self.checksum(),
            old.to_bits(),
            value.to_bits(),
        ));
    }

    /// Sets the destination address and updates the header checksum
    /// incrementally (RFC 1624 eqn. 3).
    pub fn rewrite_dst_addr(&mut self, value: Ipv4Addr) {
        let old = self.dst_addr();
        self.set_dst_addr(value);
        self.set_checksum(checksum::update_u32(
            self.checksum(),
            old.to_bits(),
            value.to_bits(),
        ));
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// One option of an IPv4 header or TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TlvOption<'a> {
    /// The option type (IPv4: copied flag, class and number in one byte;
    /// TCP: the kind).
    pub kind: u8,
    /// The option data, without the type and length bytes.
    pub data: &'a [u8],
}

/// Walks options laid out as in RFC 791 s3.1 and RFC 9293 s3.1 (the layout
/// is the same): type 0 (End of Option List) ends the list and what follows
/// is padding, type 1 (No Operation) is a single byte, and every other type
/// is followed by a length byte that counts the type and length bytes
/// themselves. End of List and No Operation are not yielded.
///
/// Yields `Err` once, for the first malformed entry, then stops.
#[derive(Debug, Clone)]
pub struct TlvOptions<'a> {
    reader: Reader<'a>,
    what: &'static str,
    done: bool,
}

impl<'a> TlvOptions<'a> {
    /// Walks `header[fixed_len..]`; error offsets count from the start of `header`.
    pub fn new(header: &'a [u8], fixed_len: usize, what: &'static str) -> Self {
        let mut reader = Reader::new(header);
        let done = reader.take(fixed_len, what).is_err();
        TlvOptions { reader, what, done }
    }

    /// Checks the whole list; returns the first error.
    pub fn check(self) -> Result<(), Error> {
        for option in self {
            option?;
        }
        Ok(())
    }

    fn next_option(&mut self) -> Result<Option<TlvOption<'a>>, Error> {
        loop {
            if self.reader.is_empty() {
                return Ok(None);
            }
            let kind_offset = self.reader.offset();
            let kind = self.reader.u8(self.what)?;
            match kind {
                0 => return Ok(None),
                1 => continue,
                _ => {}
            }
            let len = self.reader.u8(self.what)?;
            if len < 2 {
                return Err(Error::Malformed {
                    what: self.what,
                    offset: kind_offset + 1,
                    reason: "length below 2",
                });
            }
            let data = self.reader.take(usize::from(len) - 2, self.what)?;
            return Ok(Some(TlvOption { kind, data }));
        }
    }
}

impl<'a> Iterator for TlvOptions<'a> {
    type Item = Result<TlvOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_option() {
            Ok(Some(option)) => Some(Ok(option)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

/// TTL of a header built with [`Repr::new`]: RFC 1700's recommended default,
/// Linux's `net.ipv4.ip_default_ttl`.
pub const DEFAULT_TTL: u8 = 64;

/// An owned IPv4 header. The payload is not owned: [`Repr::emit`] writes the
/// header only, and `payload_len` sets the total length.
///
/// A new header is built with [`Repr::new`] and the `with_*` methods:
///
/// ```
/// use realm_wire::ipv4::{IpProtocol, Repr};
/// use std::net::Ipv4Addr;
///
/// let header = Repr::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), IpProtocol::Udp, 8)
///     .with_ttl(32)
///     .with_dont_frag(true);
/// let mut out = Vec::new();
/// header.push_header(&mut out);
/// assert_eq!(out.len(), 20);
/// assert_eq!(Repr::parse(&realm_wire::ipv4::Packet::new_checked_partial(&out[..])?)?, header);
/// # Ok::<(), realm_wire::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: IpProtocol,
    /// Bytes after the header (total length − header length).
    pub payload_len: usize,
    /// Time to Live.
    pub ttl: u8,
    /// DSCP, 6 bits (RFC 2474).
    pub dscp: u8,
    /// ECN, 2 bits (RFC 3168).
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// More Fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes, a multiple of 8.
    pub frag_offset: u16,
    /// Options as on the wire, padding included; at most 40 bytes, a
    /// multiple of 4 (emit pads with zeros, End of Option List, and drops
    /// anything past 40).
    pub options: Vec<u8>,
}

impl Repr {
    /// The header of a new datagram carrying `payload_len` bytes of
    /// `protocol`: no options, TTL [`DEFAULT_TTL`], TOS 0, Identification 0,
    /// DF clear, not a fragment.
    pub fn new(
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        protocol: IpProtocol,
        payload_len: usize,
    ) -> Repr {
        Repr {
            src_addr,
            dst_addr,
            protocol,
            payload_len,
            ttl: DEFAULT_TTL,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            options: Vec::new(),
        }
    }

    /// This header with Time to Live `ttl`.
    #[must_use]
    pub fn with_ttl(mut self, ttl: u8) -> Repr {
        self.ttl = ttl;
        self
    }

    /// This header with the whole former Type of Service byte (DSCP and ECN).
    #[must_use]
    pub fn with_tos(mut self, tos: u8) -> Repr {
        self.dscp = tos >> 2;
        self.ecn = tos & 0x03;
        self
    }

    /// This header with Identification `ident`.
    #[must_use]
    pub fn with_ident(mut self, ident: u16) -> Repr {
        self.ident = ident;
        self
    }

    /// This header with Don't Fragment set or clear.
    #[must_use]
    pub fn with_dont_frag(mut self, dont_frag: bool) -> Repr {
        self.dont_frag = dont_frag;
        self
    }

    /// The whole former Type of Service byte (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        (self.dscp << 2) | (self.ecn & 0x03)
    }

    /// Checks `bytes` as a whole IPv4 packet ([`Packet::new_checked`]: trailing
    /// link padding allowed) and parses its header without looking at the
    /// checksum: for packets the kernel has already checked, or is about to
    /// fill. The header is at `bytes[..buffer_len()]`, the packet at
    /// `bytes[..total_len()]`.
    pub fn parse_packet(bytes: &[u8]) -> Result<Repr, Error> {
        Self::parse_with(&Packet::new_checked(bytes)?, Verification::Skip)
    }

    /// Parses a header, verifying its checksum, version and option layout.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr, Error> {
        Self::parse_with(packet, Verification::Verify)
    }

    /// Parses a header, verifying the checksum or not.
    pub fn parse_with<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        verification: Verification,
    ) -> Result<Repr, Error> {
        // Guard views made with new_unchecked too: this is the parse entry point.
        packet.check_header_len()?;
        packet.check_version()?;
        let header_len = usize::from(packet.header_len());
        let total_len = usize::from(packet.total_len());
        if total_len < header_len {
            return Err(Error::Malformed {
                what: "IPv4 total length",
                offset: field::LENGTH.start,
                reason: "shorter than the header",
            });
        }
        if verification == Verification::Verify && !packet.verify_checksum() {
            return Err(Error::Checksum {
                what: "IPv4 header",
            });
        }
        packet.options_iter().check()?;
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: total_len - header_len,
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            options: packet.options().to_vec(),
        })
    }

    /// Length of the emitted header (options padded to 4 bytes, at most 60).
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.options.len().min(MAX_OPTIONS_LEN).next_multiple_of(4)
    }

    /// Length of the whole datagram: header and payload.
    pub fn total_len(&self) -> usize {
        self.buffer_len() + self.payload_len
    }

    /// True for a fragment (MF set or non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    /// Writes the header into the first [`Repr::buffer_len`] bytes of the
    /// packet and fills the header checksum. The payload is left as it is.
    /// A total length above 65535 is written as 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) {
        let header_len = self.buffer_len();
        packet.set_version(4);
        packet.set_header_len(u8::try_from(header_len).unwrap_or(60));
        packet.set_dscp(self.dscp);
        packet.set_ecn(self.ecn);
        packet.set_total_len(u16::try_from(self.total_len()).unwrap_or(u16::MAX));
        packet.set_ident(self.ident);
        packet.set_flags_offset(0);
        packet.set_dont_frag(self.dont_frag);
        packet.set_more_frags(self.more_frags);
        packet.set_frag_offset(self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        let options = packet.options_mut();
        let n = self.options.len().min(options.len());
        options[..n].copy_from_slice(&self.options[..n]);
        options[n..].fill(0);
        packet.fill_checksum();
    }

    /// Writes the header into `buf[..buffer_len()]` (headroom before a payload,
    /// say) like [`Repr::emit`], or fails with [`Error::Truncated`] if `buf`
    /// is shorter.
    pub fn emit_header(&self, buf: &mut [u8]) -> Result<(), Error> {
        let len = self.buffer_len();
        check_header(buf, len, "IPv4 header buffer")?;
        let header = buf.get_mut(..len).unwrap_or_default();
        self.emit(&mut Packet::new_unchecked(header));
        Ok(())
    }

    /// Appends the header to `out` (the payload is to follow).
    pub fn push_header(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.buffer_len(), 0);
        let header = out.get_mut(start..).unwrap_or_default();
        self.emit(&mut Packet::new_unchecked(header));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An IPv4/UDP DNS query for example.com, made with scapy (checksums by scapy).
    const UDP_PACKET: &str = "45000039a3b040004011c541c0a8010a08080808d43100350025d42c\
        b5e001000001000000000000076578616d706c6503636f6d0000010001";

    fn udp_packet() -> Vec<u8> {
        hex::decode(UDP_PACKET).unwrap()
    }

    #[test]
    fn parses_a_real_header() {
        let bytes = udp_packet();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.total_len(), 57);
        assert_eq!(packet.ident(), 0xa3b0);
        assert!(packet.dont_frag());
        assert!(!packet.is_fragment());
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), IpProtocol::Udp);
        assert!(packet.verify_checksum());
        assert_eq!(packet.payload().len(), 37);
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr.src_addr, Ipv4Addr::new(192, 168, 1, 10));
        assert_eq!(repr.dst_addr, Ipv4Addr::new(8, 8, 8, 8));
        assert_eq!(repr.payload_len, 37);
        assert!(repr.options.is_empty());

        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, bytes[..20]);
    }

    #[test]
    fn link_padding_is_not_payload() {
        let mut bytes = udp_packet();
        bytes.extend_from_slice(&[0; 6]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload().len(), 37);
        assert_eq!(packet.datagram().len(), 57);
    }

    #[test]
    fn rejects_bad_headers() {
        let bytes = udp_packet();
        assert!(matches!(
            Packet::new_checked(&bytes[..19]),
            Err(Error::Truncated {
                what: "IPv4 header",
                ..
            })
        ));
        assert!(matches!(
            Packet::new_checked(&bytes[..40]),
            Err(Error::Truncated {
                what: "IPv4 packet",
                need: 57,
                have: 40,
                ..
            })
        ));
        let mut v6 = bytes.clone();
        v6[0] = 0x65;
        assert!(matches!(
            Packet::new_checked(&v6[..]),
            Err(Error::Malformed { offset: 0, .. })
        ));
        let mut ihl = bytes.clone();
        ihl[0] = 0x44;
        assert!(matches!(
            Packet::new_checked(&ihl[..]),
            Err(Error::Malformed { offset: 0, .. })
        ));
        let mut ihl = bytes.clone();
        ihl[0] = 0x4f;
        assert!(matches!(
            Packet::new_checked(&ihl[..40]),
            Err(Error::Truncated {
                what: "IPv4 options",
                ..
            })
        ));
        let mut short = bytes.clone();
        short[3] = 19;
        assert!(matches!(
            Packet::new_checked(&short[..]),
            Err(Error::Malformed { offset: 2, .. })
        ));
        let mut bad = bytes.clone();
        bad[11] ^= 1;
        let packet = Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(
            Repr::parse(&packet),
            Err(Error::Checksum {
                what: "IPv4 header"
            })
        );
        assert!(Repr::parse_with(&packet, Verification::Skip).is_ok());
    }

    #[test]
    fn options_are_kept_and_walked() {
        // Router Alert (RFC 2113: type 148, length 4) then NOP, EOL, padding.
        let mut bytes = hex::decode(concat!(
            "470000200001000001020000c0000201c0000202",
            "9404000001000000",
            "deadbeef"
        ))
        .unwrap();
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.fill_checksum();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let options: Vec<_> = packet.options_iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            options,
            [TlvOption {
                kind: 148,
                data: &[0, 0]
            }]
        );
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr.options, hex::decode("9404000001000000").unwrap());
        assert_eq!(repr.buffer_len(), 28);
    }

    #[test]
    fn malformed_options_are_errors_not_panics() {
        for options in [&[7u8][..], &[7, 1, 0, 0], &[7, 9, 0, 0], &[1, 1, 1, 68]] {
            let mut bytes = [0u8; 24];
            bytes[0] = 0x46;
            bytes[3] = 24;
            bytes[20..20 + options.len()].copy_from_slice(options);
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.fill_checksum();
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            let err = Repr::parse(&packet).unwrap_err();
            assert!(
                err.offset().is_some_and(|o| (20..=24).contains(&o)),
                "{options:?}: {err}"
            );
        }
    }

    #[test]
    fn fragments_and_flags() {
        let mut bytes = udp_packet();
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_dont_frag(false);
        packet.set_more_frags(true);
        packet.set_frag_offset(1480);
        packet.fill_checksum();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.is_fragment());
        assert_eq!(packet.frag_offset(), 1480);
        let repr = Repr::parse(&packet).unwrap();
        assert!(repr.more_frags && !repr.dont_frag && repr.frag_offset == 1480);
        assert!(repr.is_fragment());
    }

    #[test]
    fn reserved_flag_is_ignored_and_emitted_as_zero() {
        let mut bytes = udp_packet();
        bytes[6] |= 0x80;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.fill_checksum();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.reserved_flag());
        let repr = Repr::parse(&packet).unwrap();
        let mut out = [0u8; 20];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out[6], bytes[6] & 0x7f);
    }

    #[test]
    fn incremental_rewrites_match_fill_checksum() {
        let mut bytes = udp_packet();
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.rewrite_ttl(63);
        packet.rewrite_src_addr(Ipv4Addr::new(203, 0, 113, 5));
        packet.rewrite_dst_addr(Ipv4Addr::new(198, 51, 100, 200));
        assert!(packet.verify_checksum());
        let incremental = packet.checksum();
        packet.fill_checksum();
        assert_eq!(packet.checksum(), incremental);
    }

    #[test]
    fn protocol_numbers_round_trip() {
        for n in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(n)), n);
        }
        assert_eq!(IpProtocol::from(4), IpProtocol::IpIp);
        assert_eq!(IpProtocol::from(99), IpProtocol::Unknown(99));
    }
}
