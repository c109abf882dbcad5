//! ICMP for IPv4 (RFC 792, RFC 1191 next-hop MTU): the checked view
//! [`Packet`], the owned message [`Repr`] and the quoted invoking packet [`Invoking`].
//!
//! Owns the ICMPv4 message formats, under the crate's no-panic contract
//! ([crate docs](crate)). It parses the quoted packet of an error leniently
//! but never acts on it: deciding whom an error belongs to (RFC 3102 s6.2) is
//! the data plane's job.
//!
//! [`Packet::new_checked`] checks that the 8-byte header is there. The buffer must be exactly the ICMP message (the IPv4 payload): the
//! checksum covers all of it.
//!
//! **Unused fields.** The bytes 4–7 that RFC 792 marks unused (and the
//! upper half for "fragmentation needed", RFC 1191) are ignored on parse and
//! emitted as zero; an RFC 4884 length there is not interpreted, and any
//! extension structure stays part of [`Invoking::data`]. A known type with a
//! code RFC 792 does not define for it (echo, source quench) is kept whole
//! as [`Repr::Other`].

use crate::Error;
use crate::checksum::{self, Verification};
use crate::codec::{check_header, get_u16, set_u16};
use crate::ipv4::{self, IpProtocol};
use serde::Serialize;
use std::net::Ipv4Addr;

/// Length of the ICMP header (type, code, checksum, and the 4-byte field
/// whose meaning depends on the type).
pub const HEADER_LEN: usize = 8;

/// RFC 792 quotes "the internet header plus the first 64 bits of the
/// original datagram's data".
pub const RFC792_QUOTED_DATA: usize = 8;

mod field {
    use core::ops::Range;

    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    pub(super) const CHECKSUM: Range<usize> = 2..4;
    pub(super) const REST: Range<usize> = 4..8;
    pub(super) const ECHO_IDENT: Range<usize> = 4..6;
    pub(super) const ECHO_SEQ_NO: Range<usize> = 6..8;
    pub(super) const POINTER: usize = 4;
    pub(super) const GATEWAY: Range<usize> = 4..8;
    pub(super) const NEXT_HOP_MTU: Range<usize> = 6..8;
}

enum_with_unknown! {
    /// ICMP message types (RFC 792, RFC 950, RFC 1256).
    pub enum Message(u8) {
        /// Echo Reply.
        EchoReply = 0,
        /// Destination Unreachable.
        DstUnreachable = 3,
        /// Source Quench (deprecated by RFC 6633, still parsed).
        SourceQuench = 4,
        /// Redirect.
        Redirect = 5,
        /// Echo Request.
        EchoRequest = 8,
        /// Router Advertisement (RFC 1256).
        RouterAdvert = 9,
        /// Router Solicitation (RFC 1256).
        RouterSolicit = 10,
        /// Time Exceeded.
        TimeExceeded = 11,
        /// Parameter Problem.
        ParamProblem = 12,
        /// Timestamp.
        Timestamp = 13,
        /// Timestamp Reply.
        TimestampReply = 14,
        /// Information Request.
        InfoRequest = 15,
        /// Information Reply.
        InfoReply = 16,
    }
}

impl Message {
    /// True for the error messages that quote an invoking packet (RFC 792):
    /// Destination Unreachable, Source Quench, Redirect, Time Exceeded and
    /// Parameter Problem.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Message::DstUnreachable
                | Message::SourceQuench
                | Message::Redirect
                | Message::TimeExceeded
                | Message::ParamProblem
        )
    }
}

enum_with_unknown! {
    /// Destination Unreachable codes (RFC 792, RFC 1122 s3.2.2.1, RFC 1812 s5.2.7.1).
    pub enum DstUnreachable(u8) {
        /// Net unreachable.
        NetUnreachable = 0,
        /// Host unreachable.
        HostUnreachable = 1,
        /// Protocol unreachable.
        ProtoUnreachable = 2,
        /// Port unreachable.
        PortUnreachable = 3,
        /// Fragmentation needed and DF set; carries the next-hop MTU (RFC 1191 s4).
        FragRequired = 4,
        /// Source route failed.
        SrcRouteFailed = 5,
        /// Destination network unknown.
        DstNetUnknown = 6,
        /// Destination host unknown.
        DstHostUnknown = 7,
        /// Source host isolated.
        SrcHostIsolated = 8,
        /// Communication with destination network administratively prohibited.
        NetProhibited = 9,
        /// Communication with destination host administratively prohibited.
        HostProhibited = 10,
        /// Network unreachable for type of service.
        NetUnreachToS = 11,
        /// Host unreachable for type of service.
        HostUnreachToS = 12,
        /// Communication administratively prohibited (RFC 1812).
        CommProhibited = 13,
        /// Host precedence violation (RFC 1812).
        HostPrecedenceViolation = 14,
        /// Precedence cutoff in effect (RFC 1812).
        PrecedenceCutoff = 15,
    }
}

enum_with_unknown! {
    /// Redirect codes (RFC 792).
    pub enum Redirect(u8) {
        /// Redirect datagrams for the network.
        Net = 0,
        /// Redirect datagrams for the host.
        Host = 1,
        /// Redirect datagrams for the type of service and network.
        NetToS = 2,
        /// Redirect datagrams for the type of service and host.
        HostToS = 3,
    }
}

enum_with_unknown! {
    /// Time Exceeded codes (RFC 792).
    pub enum TimeExceeded(u8) {
        /// Time to live exceeded in transit.
        TtlExpired = 0,
        /// Fragment reassembly time exceeded.
        FragExpired = 1,
    }
}

enum_with_unknown! {
    /// Parameter Problem codes (RFC 792, RFC 1812 s5.2.7.3).
    pub enum ParamProblem(u8) {
        /// The pointer indicates the error.
        AtPointer = 0,
        /// Missing a required option.
        MissingOption = 1,
        /// Bad length.
        BadLength = 2,
    }
}

packet_view! {
    /// A zero-copy view of an ICMPv4 message.
    checks: [check_len],
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks that the 8-byte header is there.
    pub fn check_len(&self) -> Result<(), Error> {
        check_header(self.buffer.as_ref(), HEADER_LEN, "ICMP header")?;
        Ok(())
    }

    /// Message type.
    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Bytes 4–7 as one number, whatever the type makes of them.
    pub fn rest_of_header(&self) -> u32 {
        let d = self.buffer.as_ref();
        u32::from_be_bytes([d[4], d[5], d[6], d[7]])
    }

    /// Echo identifier (echo request and reply).
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// Echo sequence number (echo request and reply).
    pub fn echo_seq_no(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_SEQ_NO.start)
    }

    /// Next-hop MTU of "fragmentation needed" (RFC 1191 s4: the low 16 bits
    /// of bytes 4–7; zero from routers that predate RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU.start)
    }

    /// Parameter Problem pointer: the octet of the invoking header in error.
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// Redirect gateway address.
    pub fn gateway(&self) -> Ipv4Addr {
        let d = self.buffer.as_ref();
        Ipv4Addr::new(d[4], d[5], d[6], d[7])
    }

    /// Everything after the 8-byte header: echo data, or the invoking packet.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// The invoking packet quoted by an error, as a partial IPv4 view
    /// ([`ipv4::Packet::new_checked_partial`]: whole header, truncated payload).
    /// Error offsets count from the start of the ICMP message.
    pub fn invoking_packet(&self) -> Result<ipv4::Packet<&[u8]>, Error> {
        ipv4::Packet::new_checked_partial(self.data()).map_err(|e| e.shifted(HEADER_LEN))
    }

    /// True when the checksum verifies over the whole message (RFC 792).
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }

    /// Sets bytes 4–7.
    pub fn set_rest_of_header(&mut self, value: u32) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::ECHO_IDENT.start, value);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::ECHO_SEQ_NO.start, value);
    }

    /// Sets the next-hop MTU (low 16 bits of bytes 4–7).
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::NEXT_HOP_MTU.start, value);
    }

    /// Sets the Parameter Problem pointer.
    pub fn set_pointer(&mut self, value: u8) {
        self.buffer.as_mut()[field::POINTER] = value;
    }

    /// Sets the Redirect gateway address.
    pub fn set_gateway(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::GATEWAY].copy_from_slice(&value.octets());
    }

    /// Everything after the header, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes and writes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(value);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The invoking packet quoted in an ICMP error: its IPv4 header and the
/// bytes of its payload that were quoted.
///
/// Parsed leniently, as the gateway must to demultiplex inbound errors by the
/// quoted header (RFC 3102 s6.2): the header must be whole and well formed,
/// but its total length may exceed what is quoted (it does by definition),
/// and its checksum is not checked (kept in `header_checksum` so that
/// emitting reproduces the quote exactly).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Invoking {
    /// The quoted IPv4 header; `payload_len` is the original one, from the
    /// quoted total length, not the quoted length.
    pub header: ipv4::Repr,
    /// The quoted header checksum, as found.
    pub header_checksum: u16,
    /// The quoted payload bytes: normally the first 8 (RFC 792), which hold
    /// the ports of TCP and UDP and the SPI of ESP; more from routers that
    /// follow RFC 1812 s4.3.2.3; fewer only from a short original.
    pub data: Vec<u8>,
}

impl Invoking {
    /// Parses a quoted packet (the data of an ICMP error).
    /// Error offsets count from the start of `quoted`.
    pub fn parse(quoted: &[u8]) -> Result<Invoking, Error> {
        let packet = ipv4::Packet::new_checked_partial(quoted)?;
        let header = ipv4::Repr::parse_with(&packet, Verification::Skip)?;
        let data = quoted
            .get(usize::from(packet.header_len())..)
            .unwrap_or(&[])
            .to_vec();
        Ok(Invoking {
            header,
            header_checksum: packet.checksum(),
            data,
        })
    }

    /// Quotes a packet for an error Realm sends: its header and up to
    /// `max_data` bytes of its payload (RFC 792: 8; RFC 1812 s4.3.2.3 allows
    /// up to 576 bytes for the whole ICMP datagram). The packet must be a
    /// whole IPv4 packet; its checksum is not checked.
    pub fn quote(packet: &[u8], max_data: usize) -> Result<Invoking, Error> {
        let packet = ipv4::Packet::new_checked(packet)?;
        let header = ipv4::Repr::parse_with(&packet, Verification::Skip)?;
        let payload = packet.payload();
        let data = payload[..max_data.min(payload.len())].to_vec();
        Ok(Invoking {
            header,
            header_checksum: packet.checksum(),
            data,
        })
    }

    /// Length of the quote: header and data.
    pub fn buffer_len(&self) -> usize {
        self.header.buffer_len() + self.data.len()
    }

    /// Writes the quote into the first [`Invoking::buffer_len`] bytes of `buffer`.
    pub fn emit(&self, buffer: &mut [u8]) {
        let header_len = self.header.buffer_len();
        let mut packet = ipv4::Packet::new_unchecked(&mut buffer[..header_len]);
        self.header.emit(&mut packet);
        packet.set_checksum(self.header_checksum);
        buffer[header_len..header_len + self.data.len()].copy_from_slice(&self.data);
    }

    /// True when the quoted data starts at the start of the original payload
    /// (the quoted header is not a later fragment), so transport fields are there.
    fn is_first_fragment(&self) -> bool {
        self.header.frag_offset == 0
    }

    /// Source and destination port of a quoted TCP or UDP packet (the first
    /// four bytes of both headers), if quoted and not a later fragment.
    pub fn ports(&self) -> Option<(u16, u16)> {
        if !self.is_first_fragment()
            || !matches!(self.header.protocol, IpProtocol::Tcp | IpProtocol::Udp)
        {
            return None;
        }
        match self.data.get(..4)? {
            &[a, b, c, d] => Some((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]))),
            _ => None,
        }
    }

    /// SPI of a quoted ESP packet (RFC 4303 s2: bytes 0–3) or AH packet
    /// (RFC 4302 s2: bytes 4–7), if quoted and not a later fragment.
    pub fn spi(&self) -> Option<u32> {
        if !self.is_first_fragment() {
            return None;
        }
        let at = match self.header.protocol {
            IpProtocol::Esp => 0,
            IpProtocol::Ah => 4,
            _ => return None,
        };
        match self.data.get(at..at + 4)? {
            &[a, b, c, d] => Some(u32::from_be_bytes([a, b, c, d])),
            _ => None,
        }
    }

    /// Identifier of a quoted ICMP echo request or reply, if quoted.
    pub fn echo_ident(&self) -> Option<u16> {
        if !self.is_first_fragment() || self.header.protocol != IpProtocol::Icmp {
            return None;
        }
        match self.data.get(..6)? {
            &[0 | 8, 0, _, _, a, b] => Some(u16::from_be_bytes([a, b])),
            _ => None,
        }
    }
}

/// An owned ICMPv4 message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Repr {
    /// Echo Request (type 8, code 0).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data, echoed back.
        data: Vec<u8>,
    },
    /// Echo Reply (type 0, code 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: Vec<u8>,
    },
    /// Destination Unreachable (type 3).
    DstUnreachable {
        /// The code.
        reason: DstUnreachable,
        /// RFC 1191 next-hop MTU: `Some` exactly when `reason` is
        /// [`DstUnreachable::FragRequired`] (zero from a pre-RFC 1191 router).
        next_hop_mtu: Option<u16>,
        /// The quoted packet.
        invoking: Invoking,
    },
    /// Source Quench (type 4, code 0).
    SourceQuench {
        /// The quoted packet.
        invoking: Invoking,
    },
    /// Redirect (type 5).
    Redirect {
        /// The code.
        reason: Redirect,
        /// The gateway to use instead.
        gateway: Ipv4Addr,
        /// The quoted packet.
        invoking: Invoking,
    },
    /// Time Exceeded (type 11).
    TimeExceeded {
        /// The code.
        reason: TimeExceeded,
        /// The quoted packet.
        invoking: Invoking,
    },
    /// Parameter Problem (type 12).
    ParamProblem {
        /// The code.
        reason: ParamProblem,
        /// The octet of the quoted header in error (code 0).
        pointer: u8,
        /// The quoted packet.
        invoking: Invoking,
    },
    /// Any other message, kept raw: other and unknown types, and known
    /// types with a code they do not define.
    Other {
        /// Type.
        msg_type: Message,
        /// Code.
        code: u8,
        /// Bytes 4–7.
        rest_of_header: u32,
        /// Everything after the header.
        data: Vec<u8>,
    },
}

impl Repr {
    /// Parses a message, verifying its checksum.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr, Error> {
        Self::parse_with(packet, Verification::Verify)
    }

    /// Parses a message, verifying the checksum or not. The quoted packet of
    /// an error must have a whole, well-formed IPv4 header.
    pub fn parse_with<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        verification: Verification,
    ) -> Result<Repr, Error> {
        packet.check_len()?;
        if verification == Verification::Verify && !packet.verify_checksum() {
            return Err(Error::Checksum {
                what: "ICMP message",
            });
        }
        let invoking = || Invoking::parse(packet.data()).map_err(|e| e.shifted(HEADER_LEN));
        let code = packet.msg_code();
        Ok(match (packet.msg_type(), code) {
            (Message::EchoRequest, 0) => Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: packet.data().to_vec(),
            },
            (Message::EchoReply, 0) => Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: packet.data().to_vec(),
            },
            (Message::DstUnreachable, _) => {
                let reason = DstUnreachable::from(code);
                Repr::DstUnreachable {
                    reason,
                    next_hop_mtu: (reason == DstUnreachable::FragRequired)
                        .then(|| packet.next_hop_mtu()),
                    invoking: invoking()?,
                }
            }
            (Message::SourceQuench, 0) => Repr::SourceQuench {
                invoking: invoking()?,
            },
            (Message::Redirect, _) => Repr::Redirect {
                reason: Redirect::from(code),
                gateway: packet.gateway(),
                invoking: invoking()?,
            },
            (Message::TimeExceeded, _) => Repr::TimeExceeded {
                reason: TimeExceeded::from(code),
                invoking: invoking()?,
            },
            (Message::ParamProblem, _) => Repr::ParamProblem {
                reason: ParamProblem::from(code),
                pointer: packet.pointer(),
                invoking: invoking()?,
            },
            (msg_type, _) => Repr::Other {
                msg_type,
                code,
                rest_of_header: packet.rest_of_header(),
                data: packet.data().to_vec(),
            },
        })
    }

    /// The quoted packet, for the error messages.
    pub fn invoking(&self) -> Option<&Invoking> {
        match self {
            Repr::DstUnreachable { invoking, .. }
            | Repr::SourceQuench { invoking }
            | Repr::Redirect { invoking, .. }
            | Repr::TimeExceeded { invoking, .. }
            | Repr::ParamProblem { invoking, .. } => Some(invoking),
            _ => None,
        }
    }

    /// Length of the whole message.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Repr::EchoRequest { data, .. }
                | Repr::EchoReply { data, .. }
                | Repr::Other { data, .. } => data.len(),
                _ => self.invoking().map_or(0, Invoking::buffer_len),
            }
    }

    /// Writes the whole message into a buffer of [`Repr::buffer_len`] bytes
    /// and fills the checksum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) {
        packet.set_rest_of_header(0);
        let (msg_type, code) = match self {
            Repr::EchoRequest { ident, seq_no, .. } | Repr::EchoReply { ident, seq_no, .. } => {
                packet.set_echo_ident(*ident);
                packet.set_echo_seq_no(*seq_no);
                let msg_type = if matches!(self, Repr::EchoRequest { .. }) {
                    Message::EchoRequest
                } else {
                    Message::EchoReply
                };
                (msg_type, 0)
            }
            Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                ..
            } => {
                packet.set_next_hop_mtu(next_hop_mtu.unwrap_or(0));
                (Message::DstUnreachable, u8::from(*reason))
            }
            Repr::SourceQuench { .. } => (Message::SourceQuench, 0),
            Repr::Redirect {
                reason, gateway, ..
            } => {
                packet.set_gateway(*gateway);
                (Message::Redirect, u8::from(*reason))
            }
            Repr::TimeExceeded { reason, .. } => (Message::TimeExceeded, u8::from(*reason)),
            Repr::ParamProblem {
                reason, pointer, ..
            } => {
                packet.set_pointer(*pointer);
                (Message::ParamProblem, u8::from(*reason))
            }
            Repr::Other {
                msg_type,
                code,
                rest_of_header,
                ..
            } => {
                packet.set_rest_of_header(*rest_of_header);
                (*msg_type, *code)
            }
        };
        packet.set_msg_type(msg_type);
        packet.set_msg_code(code);
        match self {
            Repr::EchoRequest { data, .. }
            | Repr::EchoReply { data, .. }
            | Repr::Other { data, .. } => {
                packet.data_mut()[..data.len()].copy_from_slice(data);
            }
            _ => {
                if let Some(invoking) = self.invoking() {
                    invoking.emit(packet.data_mut());
                }
            }
        }
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with scapy: an echo request with 32 bytes of data, and a
    // "fragmentation needed" (next-hop MTU 1400) quoting a 1480-byte
    // UDP 4500 -> 4500 packet (UDP-encapsulated ESP, RFC 3948).
    const ECHO: &str = "4500003c0001000040018e8ac0000201c633640108003b27123400016162636465666768\
        696a6b6c6d6e6f7071727374757677616263646566676869";
    const FRAG_NEEDED: &str = "4500003800770000ff015416c63364fecb0071050304638c00000578\
        450005c8424240003f118da0cb007105c63364091194119405b46b1b";

    fn icmp_of(hex_packet: &str) -> Vec<u8> {
        let bytes = hex::decode(hex_packet).unwrap();
        ipv4::Packet::new_checked(&bytes[..])
            .unwrap()
            .payload()
            .to_vec()
    }

    fn reemit(repr: &Repr) -> Vec<u8> {
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        out
    }

    #[test]
    fn echo_request() {
        let bytes = icmp_of(ECHO);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::EchoRequest);
        assert!(packet.verify_checksum());
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(
            repr,
            Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"abcdefghijklmnopqrstuvwabcdefghi".to_vec()
            }
        );
        assert_eq!(reemit(&repr), bytes);
        let mut bad = bytes.clone();
        bad[9] ^= 1;
        let packet = Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(
            Repr::parse(&packet),
            Err(Error::Checksum {
                what: "ICMP message"
            })
        );
    }

    #[test]
    fn frag_needed_quotes_a_udp_header() {
        let bytes = icmp_of(FRAG_NEEDED);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.next_hop_mtu(), 1400);
        let quoted = packet.invoking_packet().unwrap();
        assert_eq!(quoted.total_len(), 1480);
        assert_eq!(quoted.payload().len(), 8);
        assert!(ipv4::Packet::new_checked(packet.data()).is_err());

        let repr = Repr::parse(&packet).unwrap();
        let Repr::DstUnreachable {
            reason,
            next_hop_mtu,
            invoking,
        } = &repr
        else {
            panic!("{repr:?}");
        };
        assert_eq!(*reason, DstUnreachable::FragRequired);
        assert_eq!(*next_hop_mtu, Some(1400));
        assert_eq!(invoking.header.src_addr, Ipv4Addr::new(203, 0, 113, 5));
        assert_eq!(invoking.header.dst_addr, Ipv4Addr::new(198, 51, 100, 9));
        assert_eq!(invoking.header.protocol, IpProtocol::Udp);
        assert_eq!(invoking.header.payload_len, 1460);
        assert!(invoking.header.dont_frag);
        assert_eq!(invoking.ports(), Some((4500, 4500)));
        assert_eq!(invoking.spi(), None);
        assert_eq!(reemit(&repr), bytes);
    }

    #[test]
    fn quoted_header_checksum_is_not_checked_but_kept() {
        let mut bytes = icmp_of(FRAG_NEEDED);
        bytes[8 + 10] ^= 0xff; // corrupt the quoted header checksum
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.fill_checksum();
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(reemit(&repr), bytes);
    }

    #[test]
    fn port_unreachable_has_no_mtu_and_short_quotes_are_fine() {
        let mut bytes = icmp_of(FRAG_NEEDED);
        bytes[1] = 3;
        bytes.truncate(8 + 20 + 2); // only two bytes of the UDP header quoted
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_rest_of_header(0);
        packet.fill_checksum();
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        let Repr::DstUnreachable {
            reason,
            next_hop_mtu,
            invoking,
        } = &repr
        else {
            panic!("{repr:?}");
        };
        assert_eq!(*reason, DstUnreachable::PortUnreachable);
        assert_eq!(*next_hop_mtu, None);
        assert_eq!(invoking.ports(), None);
        assert_eq!(reemit(&repr), bytes);
    }

    #[test]
    fn quoted_esp_ah_and_echo_identifiers() {
        let header = ipv4::Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::Esp,
            payload_len: 100,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 7,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            options: vec![],
        };
        let esp = Invoking {
            header: header.clone(),
            header_checksum: 0,
            data: vec![0, 0, 1, 2, 0, 0, 0, 1],
        };
        assert_eq!(esp.spi(), Some(0x0102));
        let ah = Invoking {
            header: ipv4::Repr {
                protocol: IpProtocol::Ah,
                ..header.clone()
            },
            header_checksum: 0,
            data: vec![6, 4, 0, 0, 0xde, 0xad, 0xbe, 0xef],
        };
        assert_eq!(ah.spi(), Some(0xdead_beef));
        let later = Invoking {
            header: ipv4::Repr {
                frag_offset: 8,
                ..header.clone()
            },
            header_checksum: 0,
            data: vec![0, 0, 1, 2, 0, 0, 0, 1],
        };
        assert_eq!(later.spi(), None);
        let echo = Invoking {
            header: ipv4::Repr {
                protocol: IpProtocol::Icmp,
                ..header
            },
            header_checksum: 0,
            data: vec![8, 0, 0x12, 0x34, 0xbe, 0xef, 0, 1],
        };
        assert_eq!(echo.echo_ident(), Some(0xbeef));
    }

    #[test]
    fn quote_builds_an_rfc792_quote() {
        let original = hex::decode(ECHO).unwrap();
        let invoking = Invoking::quote(&original, RFC792_QUOTED_DATA).unwrap();
        assert_eq!(invoking.data, original[20..28]);
        let repr = Repr::TimeExceeded {
            reason: TimeExceeded::TtlExpired,
            invoking,
        };
        let bytes = reemit(&repr);
        assert_eq!(bytes.len(), 8 + 28);
        assert_eq!(&bytes[8..], &original[..28]);
        let parsed = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(parsed, repr);
        assert_eq!(parsed.invoking().unwrap().echo_ident(), Some(0x1234));
    }

    #[test]
    fn unknown_and_odd_messages_are_kept_raw() {
        for (msg_type, code) in [(13u8, 0u8), (42, 7), (8, 1), (4, 9)] {
            let mut bytes = vec![msg_type, code, 0, 0, 1, 2, 3, 4, 9, 9];
            Packet::new_unchecked(&mut bytes[..]).fill_checksum();
            let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
            assert!(
                matches!(
                    repr,
                    Repr::Other {
                        rest_of_header: 0x0102_0304,
                        ..
                    }
                ),
                "{repr:?}"
            );
            assert_eq!(reemit(&repr), bytes);
        }
    }

    #[test]
    fn bad_quotes_are_errors_with_absolute_offsets() {
        let mut bytes = icmp_of(FRAG_NEEDED);
        bytes.truncate(8 + 19);
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        let err = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap_err();
        assert_eq!(err.offset(), Some(8));
        let mut bytes = icmp_of(FRAG_NEEDED);
        bytes[8] = 0x65;
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        let err = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap_err();
        assert!(matches!(err, Error::Malformed { offset: 8, .. }));
        assert!(Packet::new_checked(&[3u8, 0, 0][..]).is_err());
    }
}
