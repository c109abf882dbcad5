//! AH framing (RFC 4302): the header view and `Repr`, and the IPv4 ICV input, that is the packet
//! image with every mutable field zeroed, over which `realm-ipsec` computes or checks the ICV.
//! Owns byte layout only (no keys, no MAC, no replay window), under the crate's no-panic
//! contract ([crate docs](crate)).
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Header   |  Payload Len  |          RESERVED             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Security Parameters Index (SPI)               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Sequence Number Field                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                Integrity Check Value-ICV (variable)           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Payload Len is the AH length in 32-bit words minus 2 (RFC 4302 s2.2), so the ICV field is
//! `(payload_len + 2) * 4 - 12` bytes: always a whole number of 32-bit words, which is the IPv4
//! alignment (s2.6). The ICV field may hold padding after the algorithm's ICV; only the SA knows
//! the ICV length, so [`Packet::icv_for`] and [`ipv4_icv_input`] take it from the caller.
//!
//! Sequence numbers are the 32 transmitted bits; ESN high-order bits are not sent (s2.5.1) and
//! the caller appends them to the ICV input. Error offsets are relative to the first byte of the
//! AH ([`Packet`]) or of the IPv4 header ([`ipv4_icv_input`]).

use serde::Serialize;

use crate::Error;
use crate::codec::{check_header, get_u16, get_u32, set_bytes, set_u16, set_u32};

mod field {
    use core::ops::Range;

    pub(super) const NEXT_HEADER: usize = 0;
    pub(super) const PAYLOAD_LEN: usize = 1;
    pub(super) const RESERVED: Range<usize> = 2..4;
    pub(super) const SPI: Range<usize> = 4..8;
    pub(super) const SEQUENCE_NUMBER: Range<usize> = 8..12;
    pub(super) const ICV_START: usize = 12;
}

/// Length of the fixed part of the AH (everything before the ICV).
pub const HEADER_LEN: usize = 12;

/// IP protocol number of AH.
pub const IP_PROTOCOL: u8 = 51;

/// Largest ICV field the one-byte Payload Len can describe: (255 + 2) * 4 - 12.
pub const MAX_ICV_FIELD_LEN: usize = (255 + 2) * 4 - HEADER_LEN;

/// The ICV field length for an algorithm ICV of `icv_len` bytes on IPv4: rounded up to whole
/// 32-bit words, "only enough padding to satisfy the IPv4/IPv6 alignment" (RFC 4302 s2.6).
pub fn icv_field_len(icv_len: usize) -> Option<usize> {
    icv_len.checked_next_multiple_of(4)
}

packet_view! {
    /// A zero-copy view of an Authentication Header and what follows it.
    ///
    /// After [`Packet::new_checked`] every accessor is meaningful. On a buffer that did not pass
    /// [`Packet::check_len`], accessors return 0 or an empty slice and setters do nothing.
    checks: [check_len],
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks that the fixed part is there, that Payload Len is at least 1 (the fixed part alone
    /// is 3 words) and that the whole AH it announces fits in the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        check_header(self.buffer.as_ref(), HEADER_LEN, "AH header")?;
        let have = self.buffer.as_ref().len();
        if self.payload_len() == 0 {
            return Err(Error::Malformed {
                what: "AH payload length",
                offset: field::PAYLOAD_LEN,
                reason: "must be at least 1: the fixed part alone is 3 words (RFC 4302 2.2)",
            });
        }
        let header_len = self.header_len();
        if have < header_len {
            return Err(Error::Truncated {
                what: "AH ICV",
                offset: HEADER_LEN,
                need: header_len - HEADER_LEN,
                have: have - HEADER_LEN,
            });
        }
        Ok(())
    }

    /// The protocol of what follows the AH.
    pub fn next_header(&self) -> u8 {
        self.buffer
            .as_ref()
            .get(field::NEXT_HEADER)
            .copied()
            .unwrap_or(0)
    }

    /// The raw Payload Len field: AH length in 32-bit words, minus 2.
    pub fn payload_len(&self) -> u8 {
        self.buffer
            .as_ref()
            .get(field::PAYLOAD_LEN)
            .copied()
            .unwrap_or(0)
    }

    /// Length of the whole AH in bytes, from Payload Len: `(payload_len + 2) * 4`.
    pub fn header_len(&self) -> usize {
        (usize::from(self.payload_len()) + 2) * 4
    }

    /// The reserved field. Senders set it to 0; receivers ignore it, but it is covered by the
    /// ICV (RFC 4302 s2.3).
    pub fn reserved(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::RESERVED.start)
    }

    /// The Security Parameters Index.
    pub fn spi(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SPI.start)
    }

    /// The 32-bit sequence number as sent.
    pub fn sequence_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQUENCE_NUMBER.start)
    }

    /// The whole ICV field (ICV and any alignment padding).
    pub fn icv(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(field::ICV_START..self.header_len())
            .unwrap_or(&[])
    }

    /// The ICV of an algorithm producing `icv_len` bytes, after checking that the ICV field is
    /// exactly that, padded to 32 bits (RFC 4302 s2.6: "only enough padding").
    pub fn icv_for(&self, icv_len: usize) -> Result<&[u8], Error> {
        self.check_icv_len(icv_len, 0)?;
        Ok(self.icv().get(..icv_len).unwrap_or(&[]))
    }

    fn check_icv_len(&self, icv_len: usize, base: usize) -> Result<(), Error> {
        self.check_len().map_err(|e| e.shifted(base))?;
        if icv_field_len(icv_len) != Some(self.icv().len()) {
            return Err(Error::Malformed {
                what: "AH payload length",
                offset: base + field::PAYLOAD_LEN,
                reason: "ICV field does not match the SA's ICV length padded to 32 bits \
                         (RFC 4302 2.6)",
            });
        }
        Ok(())
    }

    /// What follows the AH (the protected upper-layer data or inner packet).
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the next header.
    pub fn set_next_header(&mut self, value: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::NEXT_HEADER) {
            *b = value;
        }
    }

    /// Sets the raw Payload Len field.
    pub fn set_payload_len(&mut self, value: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::PAYLOAD_LEN) {
            *b = value;
        }
    }

    /// Sets the reserved field (0 for anything Realm sends).
    pub fn set_reserved(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::RESERVED.start, value);
    }

    /// Sets the SPI.
    pub fn set_spi(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::SPI.start, value);
    }

    /// Sets the sequence number.
    pub fn set_sequence_number(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::SEQUENCE_NUMBER.start, value);
    }

    /// The ICV field, writable (where a sender stores the computed ICV).
    pub fn icv_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(field::ICV_START..end)
            .unwrap_or(&mut [])
    }

    /// What follows the AH, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        self.buffer.as_mut().get_mut(start..).unwrap_or(&mut [])
    }
}

/// The fields of an Authentication Header, owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Repr {
    /// Protocol of what follows the AH (4 IPv4 in tunnel mode, 6 TCP, 17 UDP, ...).
    pub next_header: u8,
    /// Security Parameters Index; never 0 on the wire.
    pub spi: u32,
    /// The 32 transmitted bits of the sequence number.
    pub sequence_number: u32,
    /// The whole ICV field (ICV and any alignment padding): a multiple of 4 bytes, at most
    /// [`MAX_ICV_FIELD_LEN`].
    pub icv: Vec<u8>,
}

impl Repr {
    /// Parses an AH. The reserved field is ignored (RFC 4302 s2.3: it "SHOULD be ignored by the
    /// recipient"); an SPI of 0 is rejected (s2.4: it "MUST NOT be sent on the wire").
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        packet.check_len()?;
        let spi = packet.spi();
        check_spi(spi)?;
        Ok(Repr {
            next_header: packet.next_header(),
            spi,
            sequence_number: packet.sequence_number(),
            icv: packet.icv().to_vec(),
        })
    }

    /// A header with an all-zero ICV field sized for an algorithm ICV of `icv_len` bytes: what a
    /// sender emits before computing the ICV over [`ipv4_icv_input`].
    pub fn with_zero_icv(
        next_header: u8,
        spi: u32,
        sequence_number: u32,
        icv_len: usize,
    ) -> Result<Repr, Error> {
        let len = icv_field_len(icv_len)
            .filter(|&len| len <= MAX_ICV_FIELD_LEN)
            .ok_or(Error::Malformed {
                what: "AH ICV",
                offset: HEADER_LEN,
                reason: "ICV longer than Payload Len can describe",
            })?;
        Ok(Repr {
            next_header,
            spi,
            sequence_number,
            icv: vec![0; len],
        })
    }

    /// Length of the AH this emits.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.icv.len())
    }

    /// The Payload Len field this emits, or an error if the ICV is not a whole number of 32-bit
    /// words (RFC 4302 s2.6) or too long.
    pub fn payload_len(&self) -> Result<u8, Error> {
        let not_words = Error::Malformed {
            what: "AH ICV",
            offset: HEADER_LEN,
            reason: "ICV field must be a whole number of 32-bit words (RFC 4302 2.6)",
        };
        if !self.icv.len().is_multiple_of(4) {
            return Err(not_words);
        }
        u8::try_from(self.buffer_len() / 4 - 2).map_err(|_| Error::Malformed {
            what: "AH ICV",
            offset: HEADER_LEN,
            reason: "ICV longer than Payload Len can describe",
        })
    }

    /// Writes the AH into the first [`Repr::buffer_len`] bytes of `packet`, with the reserved
    /// field 0 (RFC 4302 s2.3: "MUST be set to zero by the sender").
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<(), Error> {
        let payload_len = self.payload_len()?;
        check_spi(self.spi)?;
        let need = self.buffer_len();
        let have = packet.buffer.as_ref().len();
        if have < need {
            return Err(Error::Truncated {
                what: "AH buffer",
                offset: 0,
                need,
                have,
            });
        }
        packet.set_next_header(self.next_header);
        packet.set_payload_len(payload_len);
        packet.set_reserved(0);
        packet.set_spi(self.spi);
        packet.set_sequence_number(self.sequence_number);
        packet.icv_mut().copy_from_slice(&self.icv);
        Ok(())
    }
}

fn check_spi(spi: u32) -> Result<(), Error> {
    // RFC 4302 2.4: "The SPI value of zero (0) is reserved for local, implementation-specific
    // use and MUST NOT be sent on the wire."
    if spi == 0 {
        return Err(Error::Malformed {
            what: "AH SPI",
            offset: field::SPI.start,
            reason: "SPI 0 is reserved and MUST NOT be sent (RFC 4302 2.4)",
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ICV input for IPv4 (RFC 4302 s3.3.3.1.1)
// ---------------------------------------------------------------------------------------------

/// Which end computes the ICV input. It matters for one field only: the destination address of
/// a source-routed packet, "mutable but predictable" (RFC 4302 s3.3.3.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Direction {
    /// The sender: with a loose or strict source route, the destination address in the image
    /// is replaced by the final destination, the last address of the route (what the receiver
    /// will see).
    Outbound,
    /// The receiver: the packet has arrived, its destination address is already the final one
    /// and is kept as is.
    Inbound,
}

/// Where the AH and its ICV sit in an IPv4 packet, as found by [`ipv4_icv_input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct IcvInput {
    /// Offset of the AH: the IPv4 header length.
    pub ah_offset: usize,
    /// Offset of the ICV (zeroed in the image).
    pub icv_offset: usize,
    /// Length of the ICV (the SA's, without the field's alignment padding).
    pub icv_len: usize,
}

/// Option-type octets (copied flag, class and number together) that RFC 4302 Appendix A1
/// classifies IMMUTABLE, included in the ICV: End of Options List, No Operation, Security,
/// Extended Security, Commercial Security, Router Alert, Sender Directed Multi-Destination
/// Delivery. Every other option, those the table lists as MUTABLE or EXPERIMENTAL, SUPERSEDED
/// and those it does not list, is zeroed whole.
const IMMUTABLE_IPV4_OPTIONS: [u8; 7] = [0x00, 0x01, 0x82, 0x85, 0x86, 0x94, 0x95];

const IPV4_OPTION_END: u8 = 0x00;
const IPV4_OPTION_NOP: u8 = 0x01;
const IPV4_OPTION_LSRR: u8 = 0x83;
const IPV4_OPTION_SSRR: u8 = 0x89;
const IPV4_MIN_HEADER_LEN: usize = 20;
/// Enough for 40 option bytes cut into two-byte options.
const MAX_IPV4_OPTIONS: usize = 20;

/// True if an IPv4 option of this type is included unchanged in the AH ICV (RFC 4302
/// Appendix A1, IMMUTABLE), false if it is zeroed.
///
/// The table names each option by its whole type octet (copied flag, class and number), and
/// so does this function: `0x94` (Router Alert, copied) is immutable, `0x14` is not a listed
/// option and is zeroed. Options the table does not list are treated as mutable, as Linux does:
/// zeroing an option that did not change costs nothing, while including one that did breaks
/// every packet.
pub fn is_immutable_ipv4_option(option_type: u8) -> bool {
    IMMUTABLE_IPV4_OPTIONS.contains(&option_type)
}

/// What to zero, found in a read-only pass so that nothing is written when the packet is bad.
#[derive(Debug)]
struct Ipv4IcvPlan {
    /// Mutable options: (offset, length), absolute.
    zero: [(usize, usize); MAX_IPV4_OPTIONS],
    zero_count: usize,
    final_destination: Option<[u8; 4]>,
    input: IcvInput,
}

/// Builds the byte image over which the AH ICV of an IPv4 packet is computed (RFC 4302
/// s3.3.3.1, s3.3.3.1.1): `packet` is a whole IPv4 datagram with the AH right after the IPv4
/// header; `icv_len` is the SA's ICV length. `out` is cleared and receives the image (same
/// length as the packet); on error it is left empty.
///
/// The exact rule, field by field:
/// - Version, IHL, Total Length, Identification, Protocol, Source Address: kept (immutable).
/// - Type of Service (DSCP and ECN), Flags, Fragment Offset, Time to Live, Header Checksum:
///   zeroed (mutable, s3.3.3.1.1.1).
/// - Destination Address: kept, except on [`Direction::Outbound`] with a loose or strict source
///   route, where it becomes the last address of the route (mutable but predictable).
/// - Options (s3.3.3.1.1.2, Appendix A1): an option is a unit; one [`is_immutable_ipv4_option`]
///   says is immutable is kept, any other is zeroed whole, type and length included. End of
///   Options List stops the walk; the padding after it is kept.
/// - AH: everything kept (the reserved field too, s2.3) except the first `icv_len` bytes of the
///   ICV field, zeroed; ICV padding after them is kept (s3.4.4: "replacing it (but not any ICV
///   field padding) with zero").
/// - What follows the AH: kept.
///
/// Not done here: appending ESN high-order bits and any implicit padding the integrity
/// algorithm needs (s3.3.3.2.2, s3.4.4); those are `realm-ipsec`'s.
///
/// Rejected: a header that is not IPv4, a Total Length different from the buffer length
/// (`Truncated` or `Trailing`), a protocol other than 51, a fragment (AH is computed over whole
/// datagrams, s3.4.1), a malformed option list (length below 2 or past the header, more than
/// one source route, a source route without a whole address), an AH that does not fit, and an
/// ICV field that is not `icv_len` padded to 32 bits.
///
pub fn ipv4_icv_input(
    packet: &[u8],
    icv_len: usize,
    direction: Direction,
    out: &mut Vec<u8>,
) -> Result<IcvInput, Error> {
    out.clear();
    let plan = plan_ipv4_icv_input(packet, icv_len, direction)?;
    out.extend_from_slice(packet);
    apply_ipv4_icv_plan(&plan, out);
    Ok(plan.input)
}

/// [`ipv4_icv_input`] in place: turns `packet` itself into the ICV input. On error the buffer
/// is left unchanged.
pub fn ipv4_icv_input_in_place(
    packet: &mut [u8],
    icv_len: usize,
    direction: Direction,
) -> Result<IcvInput, Error> {
    let plan = plan_ipv4_icv_input(packet, icv_len, direction)?;
    apply_ipv4_icv_plan(&plan, packet);
    Ok(plan.input)
}

fn plan_ipv4_icv_input(
    packet: &[u8],
    icv_len: usize,
    direction: Direction,
) -> Result<Ipv4IcvPlan, Error> {
    // Version, IHL, header and total length: the IPv4 view's own checks.
    let ip = crate::ipv4::Packet::new_checked(packet)?;
    let len = packet.len();
    let header_len = usize::from(ip.header_len());
    let total_len = usize::from(ip.total_len());
    // The view accepts link-layer padding; the ICV covers exactly the datagram.
    if total_len < len {
        return Err(Error::Trailing {
            what: "IPv4 packet",
            offset: total_len,
            count: len - total_len,
        });
    }
    if ip.is_fragment() {
        return Err(Error::Malformed {
            what: "IPv4 fragment",
            offset: 6,
            reason: "AH is computed over whole datagrams: reassemble first (RFC 4302 3.4.1)",
        });
    }
    if ip.protocol() != crate::ipv4::IpProtocol::Ah {
        return Err(Error::Malformed {
            what: "IPv4 protocol",
            offset: 9,
            reason: "not AH (51): the AH must follow the IPv4 header",
        });
    }

    let mut plan = Ipv4IcvPlan {
        zero: [(0, 0); MAX_IPV4_OPTIONS],
        zero_count: 0,
        final_destination: None,
        input: IcvInput {
            ah_offset: header_len,
            icv_offset: 0,
            icv_len,
        },
    };
    let options = packet.get(IPV4_MIN_HEADER_LEN..header_len).unwrap_or(&[]);
    plan_ipv4_options(options, direction, &mut plan)?;

    let ah = Packet::new_unchecked(packet.get(header_len..).unwrap_or(&[]));
    ah.check_icv_len(icv_len, header_len)?;
    plan.input.icv_offset = header_len + field::ICV_START;
    Ok(plan)
}

/// Walks the option list (RFC 791 s3.1 format) and records what to zero.
fn plan_ipv4_options(
    options: &[u8],
    direction: Direction,
    plan: &mut Ipv4IcvPlan,
) -> Result<(), Error> {
    let base = IPV4_MIN_HEADER_LEN;
    let mut seen_source_route = false;
    let mut i = 0;
    while let Some(&option_type) = options.get(i) {
        match option_type {
            IPV4_OPTION_END => break,
            IPV4_OPTION_NOP => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let Some(&option_len) = options.get(i + 1) else {
            return Err(Error::Malformed {
                what: "IPv4 option",
                offset: base + i,
                reason: "option length octet missing",
            });
        };
        let option_len = usize::from(option_len);
        if option_len < 2 {
            return Err(Error::Malformed {
                what: "IPv4 option",
                offset: base + i + 1,
                reason: "option length below 2",
            });
        }
        let Some(option) = options.get(i..i + option_len) else {
            return Err(Error::Malformed {
                what: "IPv4 option",
                offset: base + i + 1,
                reason: "option runs past the end of the IPv4 header",
            });
        };
        if option_type == IPV4_OPTION_LSRR || option_type == IPV4_OPTION_SSRR {
            // RFC 791: type, length, pointer, then whole 4-byte addresses; at most one route.
            if seen_source_route {
                return Err(Error::Malformed {
                    what: "IPv4 source route",
                    offset: base + i,
                    reason: "more than one source route option",
                });
            }
            seen_source_route = true;
            if option_len < 7 || (option_len - 3) % 4 != 0 {
                return Err(Error::Malformed {
                    what: "IPv4 source route",
                    offset: base + i + 1,
                    reason: "route data is not a whole number of addresses",
                });
            }
            // RFC 4302 3.3.3.1.1.1: the destination address of a source-routed packet is
            // "mutable but predictable": the sender uses the final destination, the route's
            // last address.
            if direction == Direction::Outbound {
                plan.final_destination = option
                    .get(option_len - 4..)
                    .and_then(|a| <[u8; 4]>::try_from(a).ok());
            }
        }
        // RFC 4302 3.3.3.1.1.2: "if an option is classified as mutable, the entire option is
        // zeroed for ICV computation purposes."
        if !is_immutable_ipv4_option(option_type) {
            let slot = plan.zero.get_mut(plan.zero_count).ok_or(Error::Malformed {
                what: "IPv4 option",
                offset: base + i,
                reason: "too many options",
            })?;
            *slot = (base + i, option_len);
            plan.zero_count += 1;
        }
        i += option_len;
    }
    Ok(())
}

fn zero(image: &mut [u8], start: usize, len: usize) {
    if let Some(bytes) = start
        .checked_add(len)
        .and_then(|end| image.get_mut(start..end))
    {
        bytes.fill(0);
    }
}

fn apply_ipv4_icv_plan(plan: &Ipv4IcvPlan, image: &mut [u8]) {
    // RFC 4302 3.3.3.1.1.1, mutable base header fields: DSCP and ECN (the old TOS octet),
    // Flags and Fragment Offset, Time to Live, Header Checksum.
    zero(image, 1, 1);
    zero(image, 6, 2);
    zero(image, 8, 1);
    zero(image, 10, 2);
    for &(start, len) in plan.zero.iter().take(plan.zero_count) {
        zero(image, start, len);
    }
    if let Some(destination) = plan.final_destination {
        set_bytes(image, 16, &destination);
    }
    // RFC 4302 3.3.3.1: the ICV itself is zeroed; its padding is not (3.4.4).
    zero(image, plan.input.icv_offset, plan.input.icv_len);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    // HMAC-SHA1-96: a 96-bit ICV, so Payload Len 4 (RFC 4302 2.2's own example).
    const AH_12: &str = "06 04 0000 00001000 00000001 0102030405060708090a0b0c  c0ffee";
    // HMAC-SHA-256-128: a 128-bit ICV, Payload Len 5.
    const AH_16: &str = "04 05 0000 12345678 fffffffe 000102030405060708090a0b0c0d0e0f";

    #[test]
    fn parses_ah_with_12_byte_icv() {
        let bytes = unhex(AH_12);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.payload(), &[0xc0, 0xff, 0xee]);
        assert_eq!(packet.icv_for(12).unwrap(), &bytes[12..24]);
        assert_eq!(
            Repr::parse(&packet).unwrap(),
            Repr {
                next_header: 6,
                spi: 0x1000,
                sequence_number: 1,
                icv: unhex("0102030405060708090a0b0c")
            }
        );
        // The SA says 16: the field is 12, so this is not that SA's packet.
        assert!(matches!(
            packet.icv_for(16),
            Err(Error::Malformed {
                what: "AH payload length",
                offset: 1,
                ..
            })
        ));
        // An ICV of 10 would be padded to 12: the first 10 bytes are the ICV.
        assert_eq!(packet.icv_for(10).unwrap(), &bytes[12..22]);
    }

    #[test]
    fn parses_ah_with_16_byte_icv() {
        let bytes = unhex(AH_16);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(
            (repr.next_header, repr.spi, repr.sequence_number),
            (4, 0x1234_5678, !1)
        );
        assert_eq!(repr.icv.len(), 16);
        assert!(packet.payload().is_empty());
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn reserved_is_ignored_on_receive_and_zero_on_send() {
        let mut bytes = unhex(AH_12);
        bytes[2] = 0xab;
        bytes[3] = 0xcd;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.reserved(), 0xabcd);
        let repr = Repr::parse(&packet).unwrap();
        let mut out = [0xffu8; 24];
        repr.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out[2..4], [0, 0]);
        assert_eq!(out[4..], bytes[4..24]);
    }

    #[test]
    fn malformed_headers() {
        assert_eq!(
            Packet::new_checked(&[0u8; 11][..]),
            Err(Error::Truncated {
                what: "AH header",
                offset: 0,
                need: 12,
                have: 11
            })
        );
        let zero_len = unhex("06 00 0000 00001000 00000001");
        assert!(matches!(
            Packet::new_checked(&zero_len[..]),
            Err(Error::Malformed {
                what: "AH payload length",
                offset: 1,
                ..
            })
        ));
        let short_icv = unhex("06 04 0000 00001000 00000001 01020304");
        assert_eq!(
            Packet::new_checked(&short_icv[..]),
            Err(Error::Truncated {
                what: "AH ICV",
                offset: 12,
                need: 12,
                have: 4
            })
        );
        let zero_spi = unhex("06 01 0000 00000000 00000001");
        let packet = Packet::new_checked(&zero_spi[..]).unwrap();
        assert!(packet.icv().is_empty());
        assert!(matches!(
            Repr::parse(&packet),
            Err(Error::Malformed { what: "AH SPI", .. })
        ));
        // Accessors on an unchecked short buffer do not panic.
        let short = Packet::new_unchecked(&[1u8][..]);
        assert_eq!(
            (
                short.spi(),
                short.payload_len(),
                short.icv(),
                short.payload()
            ),
            (0, 0, &[][..], &[][..])
        );
    }

    #[test]
    fn repr_rejects_what_it_cannot_emit() {
        let mut buf = [0u8; 64];
        let odd = Repr {
            next_header: 6,
            spi: 1,
            sequence_number: 1,
            icv: vec![0; 10],
        };
        assert!(odd.emit(&mut Packet::new_unchecked(&mut buf[..])).is_err());
        let long = Repr {
            next_header: 6,
            spi: 1,
            sequence_number: 1,
            icv: vec![0; 1020],
        };
        assert!(long.payload_len().is_err());
        let max = Repr {
            next_header: 6,
            spi: 1,
            sequence_number: 1,
            icv: vec![0; 1016],
        };
        assert_eq!(max.payload_len(), Ok(255));
        let repr = Repr::with_zero_icv(6, 1, 1, 12).unwrap();
        assert!(
            repr.emit(&mut Packet::new_unchecked(&mut buf[..20]))
                .is_err()
        );
        let zero_spi = Repr {
            spi: 0,
            ..repr.clone()
        };
        assert!(
            zero_spi
                .emit(&mut Packet::new_unchecked(&mut buf[..]))
                .is_err()
        );
        assert_eq!(Repr::with_zero_icv(6, 1, 1, 10).unwrap().icv.len(), 12);
        assert!(Repr::with_zero_icv(6, 1, 1, 1017).is_err());
        assert!(Repr::with_zero_icv(6, 1, 1, usize::MAX).is_err());
    }

    #[test]
    fn option_classification_follows_appendix_a1() {
        for immutable in [0x00, 0x01, 0x82, 0x85, 0x86, 0x94, 0x95] {
            assert!(is_immutable_ipv4_option(immutable), "{immutable:#x}");
        }
        // Mutable: LSRR, Time Stamp, Record Route, SSRR, Traceroute; experimental: Stream ID,
        // MTU Probe/Reply, Extended IP, Address Extension; and unlisted values.
        for mutable in [
            0x83, 0x44, 0x07, 0x89, 0x52, 0x88, 0x0b, 0x0c, 0x91, 0x93, 0x14, 0xff,
        ] {
            assert!(!is_immutable_ipv4_option(mutable), "{mutable:#x}");
        }
    }

    /// An IPv4 packet with a Record Route option (mutable), a Router Alert (immutable) and an
    /// AH with a 12-byte ICV, then 4 bytes of payload.
    fn record_route_packet() -> Vec<u8> {
        unhex(
            "49 b8 0040 1234 4000 40 33 abcd c0000201 c6336402
             07 0b 08 0a000001 00000000
             94 04 0000
             00
             11 04 0000 00000100 0000002a 1111111111111111 11111111
             deadbeef",
        )
    }

    #[test]
    fn icv_input_zeroes_mutable_fields_by_hand() {
        let packet = record_route_packet();
        assert_eq!(packet.len(), 0x40);
        let mut image = Vec::new();
        let input = ipv4_icv_input(&packet, 12, Direction::Inbound, &mut image).unwrap();
        assert_eq!(
            input,
            IcvInput {
                ah_offset: 36,
                icv_offset: 48,
                icv_len: 12
            }
        );
        let expected = unhex(
            // version/IHL kept, TOS 0xb8 -> 0, total length and ID kept, flags (DF) -> 0,
            // TTL 0x40 -> 0, protocol kept, checksum -> 0, addresses kept.
            "49 00 0040 1234 0000 00 33 0000 c0000201 c6336402
             00 00 00 00000000 00000000
             94 04 0000
             00
             11 04 0000 00000100 0000002a 0000000000000000 00000000
             deadbeef",
        );
        assert_eq!(hex::encode(&image), hex::encode(&expected));
        // In place gives the same image.
        let mut in_place = packet.clone();
        assert_eq!(
            ipv4_icv_input_in_place(&mut in_place, 12, Direction::Inbound),
            Ok(input)
        );
        assert_eq!(in_place, expected);
        // Outbound is the same here: there is no source route.
        ipv4_icv_input(&packet, 12, Direction::Outbound, &mut image).unwrap();
        assert_eq!(image, expected);
    }

    #[test]
    fn icv_input_predicts_the_destination_of_a_source_route_on_send() {
        // LSRR with two addresses (10.0.0.1 then 203.0.113.9, the final destination), then NOP.
        let packet = unhex(
            "48 00 0038 0001 0000 40 33 0000 c0000201 0a000001
             83 0b 04 0a000001 cb007109 01
             06 04 0000 00000100 00000001 aaaaaaaaaaaaaaaaaaaaaaaa",
        );
        let mut image = Vec::new();
        ipv4_icv_input(&packet, 12, Direction::Outbound, &mut image).unwrap();
        assert_eq!(image[16..20], [203, 0, 113, 9]);
        assert_eq!(image[20..31], [0; 11]);
        assert_eq!(image[31..32], [1], "NOP is immutable");
        assert_eq!(image[44..56], [0; 12]);
        ipv4_icv_input(&packet, 12, Direction::Inbound, &mut image).unwrap();
        assert_eq!(
            image[16..20],
            [10, 0, 0, 1],
            "the receiver keeps the address it got"
        );
        assert_eq!(image[20..31], [0; 11]);
    }

    #[test]
    fn icv_padding_is_kept() {
        // A 10-byte ICV in a 12-byte field: the last two bytes are padding.
        let mut packet = record_route_packet();
        let mut image = Vec::new();
        ipv4_icv_input(&packet, 10, Direction::Inbound, &mut image).unwrap();
        assert_eq!(image[48..60], unhex("00000000000000000000 1111"));
        // 16 does not fit a 12-byte field.
        assert!(matches!(
            ipv4_icv_input(&packet, 16, Direction::Inbound, &mut image),
            Err(Error::Malformed {
                what: "AH payload length",
                offset: 37,
                ..
            })
        ));
        assert!(image.is_empty());
        // And the in-place form leaves a bad packet untouched.
        let before = packet.clone();
        assert!(ipv4_icv_input_in_place(&mut packet, 16, Direction::Inbound).is_err());
        assert_eq!(packet, before);
    }

    #[test]
    fn icv_input_rejects_bad_packets() {
        let good = record_route_packet();
        let mut out = Vec::new();
        let mut check = |bytes: &[u8], what: &str| {
            let err = ipv4_icv_input(bytes, 12, Direction::Inbound, &mut out).unwrap_err();
            let got = match err {
                Error::Truncated { what, .. }
                | Error::Trailing { what, .. }
                | Error::Malformed { what, .. }
                | Error::Checksum { what } => what,
            };
            assert_eq!(got, what, "{err}");
            assert!(out.is_empty());
        };
        check(&[], "IPv4 header");
        check(&good[..19], "IPv4 header");
        check(&good[..30], "IPv4 options");
        check(&good[..0x3f], "IPv4 packet");
        let mut longer = good.clone();
        longer.push(0);
        check(&longer, "IPv4 packet");
        let mut v6 = good.clone();
        v6[0] = 0x69;
        check(&v6, "IPv4 version");
        let mut ihl = good.clone();
        ihl[0] = 0x44;
        check(&ihl, "IPv4 IHL");
        let mut total = good.clone();
        total[2..4].copy_from_slice(&[0, 20]);
        check(&total, "IPv4 total length");
        let mut frag = good.clone();
        frag[6] = 0x20; // More Fragments
        check(&frag, "IPv4 fragment");
        let mut offset = good.clone();
        offset[7] = 1;
        check(&offset, "IPv4 fragment");
        let mut esp = good.clone();
        esp[9] = 50;
        check(&esp, "IPv4 protocol");
        let mut option_len = good.clone();
        option_len[21] = 1;
        check(&option_len, "IPv4 option");
        let mut option_long = good.clone();
        option_long[21] = 17;
        check(&option_long, "IPv4 option");
        let mut lone_type = good.clone();
        lone_type[31..36].copy_from_slice(&[1, 1, 1, 1, 0x07]);
        check(&lone_type, "IPv4 option");
        let mut ah_short = good.clone();
        ah_short[37] = 6;
        check(&ah_short, "AH ICV");
        let mut ah_zero = good.clone();
        ah_zero[37] = 0;
        check(&ah_zero, "AH payload length");
        // Two source routes; a source route with a partial address.
        let two_routes = unhex(
            "48 00 002c 0001 0000 40 33 0000 c0000201 0a000001
             83 07 04 0a000001 89 03 04 00 00
             06 01 0000 00000100 00000001",
        );
        check(&two_routes, "IPv4 source route");
        let partial = unhex(
            "47 00 0028 0001 0000 40 33 0000 c0000201 0a000001
             83 06 04 0a0000 00 00
             06 01 0000 00000100 00000001",
        );
        check(&partial, "IPv4 source route");
    }

    #[test]
    fn padding_after_end_of_options_is_kept() {
        // EOL, then non-zero bytes the walk does not look at.
        let packet = unhex(
            "46 00 0024 0001 0000 40 33 0000 c0000201 0a000001
             00 07 07 07
             06 01 0000 00000100 00000001 ",
        );
        let mut image = Vec::new();
        ipv4_icv_input(&packet, 0, Direction::Inbound, &mut image).unwrap();
        assert_eq!(image[20..24], [0, 7, 7, 7]);
    }
}
