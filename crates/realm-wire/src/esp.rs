//! ESP framing (RFC 4303): the SPI / sequence-number header, the split of what follows into
//! IV | ciphertext | ICV for a given SA, and the plaintext trailer seen after decryption.
//! Owns byte layout only (no keys, no cipher, no replay window), under the crate's no-panic
//! contract ([crate docs](crate)).
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ----
//! |               Security Parameters Index (SPI)                 |  ^ header
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  v (8 bytes)
//! |                      Sequence Number                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ----
//! |                    IV (SA-defined length, may be 0)           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ----
//! ~     Payload Data | [TFC padding] | Padding (0-255 bytes)      ~  ^ ciphertext
//! +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  |
//! |               |  Pad Length   | Next Header   |                  v
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ----
//! ~         Integrity Check Value (SA-defined length, may be 0)   ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The packet carries no length for the IV or the ICV: both are properties of the SA (RFC 4303
//! s2.3, s2.8). So [`Packet::new_checked`] checks only the 8-byte header, and
//! [`Packet::split`] takes the SA's [`Layout`] and checks the rest.
//!
//! After decryption, [`Trailer::parse`] takes the plaintext apart; [`TrailerRepr`] builds the
//! padding, pad length and next header a sender appends before encrypting.
//!
//! Sequence numbers: only the 32 bits on the wire live here. With Extended Sequence Numbers the
//! high-order 32 bits are never transmitted (RFC 4303 s2.2.1); they are kept by `realm-ipsec`,
//! which also appends them to the integrity input.
//!
//! Error offsets are relative to the first byte of the ESP header ([`Packet`]) or of the
//! plaintext ([`Trailer::parse`]); a caller holding an outer packet adds its own base.

use serde::Serialize;

use crate::Error;
use crate::codec::{check_header, get_u32, set_u32};

mod field {
    use core::ops::{Range, RangeFrom};

    pub(super) const SPI: Range<usize> = 0..4;
    pub(super) const SEQUENCE_NUMBER: Range<usize> = 4..8;
    pub(super) const PAYLOAD: RangeFrom<usize> = 8..;
}

/// Length of the ESP header: SPI and sequence number.
pub const HEADER_LEN: usize = 8;

/// Length of the fixed part of the trailer: pad length and next header.
pub const TRAILER_FIXED_LEN: usize = 2;

/// Largest pad length the one-byte field can express (RFC 4303 s2.4: 0 to 255 bytes).
pub const MAX_PAD_LEN: usize = 255;

/// IP protocol number of ESP.
pub const IP_PROTOCOL: u8 = 50;

/// Next header value 59, "no next header": marks a dummy packet (RFC 4303 s2.6).
pub const NEXT_HEADER_NONE: u8 = 59;

/// True for the SPIs no SA may use: 0 is reserved for local use and MUST NOT be sent on the
/// wire; 1 to 255 are reserved by IANA (RFC 4303 s2.1). An SPI allocator must skip them.
pub fn is_reserved_spi(spi: u32) -> bool {
    spi <= 255
}

packet_view! {
    /// A zero-copy view of an ESP packet (header and everything after it).
    ///
    /// After [`Packet::new_checked`] every accessor is meaningful. On a buffer that did not pass
    /// [`Packet::check_len`], accessors return 0 or an empty slice and setters do nothing.
    checks: [check_len],
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Fails with [`Error::Truncated`] if the buffer is shorter than the header.
    pub fn check_len(&self) -> Result<(), Error> {
        check_header(self.buffer.as_ref(), HEADER_LEN, "ESP header")?;
        Ok(())
    }

    /// The Security Parameters Index.
    pub fn spi(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SPI.start)
    }

    /// The 32-bit sequence number as sent (the low half of an ESN; RFC 4303 s2.2.1).
    pub fn sequence_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQUENCE_NUMBER.start)
    }

    /// Everything after the header: IV, ciphertext and ICV, not yet told apart.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(field::PAYLOAD).unwrap_or(&[])
    }

    /// Checks the bytes after the header against the SA's `layout`, as [`Packet::split`] does,
    /// and returns the ciphertext length.
    ///
    /// Checks that the IV, the two fixed trailer bytes and the ICV fit, and that the ciphertext
    /// length is a multiple of the cipher block size and of 4 (RFC 4303 s2.4: the pad length and
    /// next header are right-aligned in a 4-byte word so that the ICV is 4-byte aligned).
    pub fn check_layout(&self, layout: &Layout) -> Result<usize, Error> {
        let alignment = layout.alignment()?;
        self.check_len()?;
        let have = self.payload().len();
        let need = layout
            .iv_len
            .checked_add(TRAILER_FIXED_LEN)
            .and_then(|n| n.checked_add(layout.icv_len))
            .unwrap_or(usize::MAX);
        if have < need {
            return Err(Error::Truncated {
                what: "ESP payload (IV, trailer, ICV)",
                offset: HEADER_LEN,
                need,
                have,
            });
        }
        // Cannot underflow: have >= iv_len + 2 + icv_len.
        let ciphertext_len = have - layout.iv_len - layout.icv_len;
        if !ciphertext_len.is_multiple_of(alignment) {
            return Err(Error::Malformed {
                what: "ESP ciphertext",
                offset: HEADER_LEN + layout.iv_len,
                reason: "length is not a multiple of the cipher block size and of 4 \
                         (RFC 4303 2.4)",
            });
        }
        Ok(ciphertext_len)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// Splits the bytes after the header into IV, ciphertext and ICV for an SA with `layout`,
    /// after [`Packet::check_layout`]. The parts borrow the underlying buffer, not the view, so
    /// `Packet::new_checked(bytes)?.split(&layout)?` can be kept.
    pub fn split(&self, layout: &Layout) -> Result<Parts<'a>, Error> {
        let ciphertext_len = self.check_layout(layout)?;
        let buf: &'a [u8] = self.buffer.as_ref();
        let payload = buf.get(field::PAYLOAD).unwrap_or(&[]);
        let (iv, rest) = payload.split_at(layout.iv_len.min(payload.len()));
        let (ciphertext, icv) = rest.split_at(ciphertext_len.min(rest.len()));
        let authenticated_len = HEADER_LEN + iv.len() + ciphertext.len();
        let authenticated = buf.get(..authenticated_len).unwrap_or(&[]);
        Ok(Parts {
            iv,
            ciphertext,
            icv,
            authenticated,
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the SPI.
    pub fn set_spi(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::SPI.start, value);
    }

    /// Sets the 32-bit sequence number.
    pub fn set_sequence_number(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::SEQUENCE_NUMBER.start, value);
    }

    /// Everything after the header, writable (IV, ciphertext and ICV go here).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::PAYLOAD)
            .unwrap_or(&mut [])
    }

    /// [`Packet::split`], writable: for decrypting in place, or for a sender filling in the IV,
    /// the ciphertext and the ICV of a buffer of [`Layout::packet_len`] bytes.
    pub fn split_mut(&mut self, layout: &Layout) -> Result<PartsMut<'_>, Error> {
        let ciphertext_len = self.check_layout(layout)?;
        let payload = self.payload_mut();
        let (iv, rest) = payload.split_at_mut(layout.iv_len.min(payload.len()));
        let (ciphertext, icv) = rest.split_at_mut(ciphertext_len.min(rest.len()));
        Ok(PartsMut {
            iv,
            ciphertext,
            icv,
        })
    }
}

/// The per-SA lengths that give an ESP packet its shape (RFC 4303 s2.3, s2.4, s2.8).
///
/// Examples: AES-GCM-16 (RFC 4106) has an 8-byte IV, a 16-byte ICV and needs 4-byte alignment
/// only (`block_size` 4, or 1: the 4-byte rule applies anyway); AES-CBC with HMAC-SHA1-96 has a
/// 16-byte IV, a 12-byte ICV and a 16-byte block. IV lengths in use are multiples of 4, which
/// keeps the ICV aligned; this type does not require it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Layout {
    /// Length of the explicit IV carried at the start of the payload (0 if none).
    pub iv_len: usize,
    /// Length of the ICV at the end of the packet (0 for an SA without integrity).
    pub icv_len: usize,
    /// The cipher's block size in bytes (1 for a stream cipher or NULL encryption).
    pub block_size: usize,
}

impl Layout {
    /// A layout from the SA's IV length, ICV length and cipher block size.
    pub const fn new(iv_len: usize, icv_len: usize, block_size: usize) -> Layout {
        Layout {
            iv_len,
            icv_len,
            block_size,
        }
    }

    /// What the ciphertext length must be a multiple of: the least common multiple of the
    /// block size and 4 (RFC 4303 s2.4). Fails for a block size of 0.
    pub fn alignment(&self) -> Result<usize, Error> {
        alignment(self.block_size)
    }

    /// The trailer a sender appends to a payload of `payload_len` bytes under this SA.
    pub fn trailer(&self, payload_len: usize, next_header: u8) -> Result<TrailerRepr, Error> {
        TrailerRepr::new(payload_len, self.block_size, next_header)
    }

    /// Length of the whole ESP packet for a plaintext (payload and trailer) of `plaintext_len`
    /// bytes, assuming ciphertext and plaintext have the same length (true of CBC, CTR and GCM).
    /// `None` on overflow.
    pub fn packet_len(&self, plaintext_len: usize) -> Option<usize> {
        HEADER_LEN
            .checked_add(self.iv_len)?
            .checked_add(plaintext_len)?
            .checked_add(self.icv_len)
    }
}

fn alignment(block_size: usize) -> Result<usize, Error> {
    if block_size == 0 {
        return Err(Error::Malformed {
            what: "ESP layout",
            offset: 0,
            reason: "cipher block size must be at least 1",
        });
    }
    // lcm(block_size, 4) = block_size * 4 / gcd(block_size, 4).
    let gcd = match block_size % 4 {
        0 => 4,
        2 => 2,
        _ => 1,
    };
    (block_size / gcd).checked_mul(4).ok_or(Error::Malformed {
        what: "ESP layout",
        offset: 0,
        reason: "cipher block size is too large",
    })
}

/// An ESP packet taken apart by [`Packet::split`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Parts<'a> {
    /// The explicit IV.
    pub iv: &'a [u8],
    /// The encrypted payload, padding, pad length and next header.
    pub ciphertext: &'a [u8],
    /// The Integrity Check Value.
    pub icv: &'a [u8],
    /// Header, IV and ciphertext: the bytes a separate integrity algorithm covers
    /// (RFC 4303 s2.8; with ESN the caller appends the high-order 32 bits). Combined-mode
    /// algorithms define their own AAD instead (RFC 4106: SPI and sequence number).
    pub authenticated: &'a [u8],
}

/// An ESP packet taken apart by [`Packet::split_mut`], writable.
#[derive(Debug, PartialEq, Eq)]
pub struct PartsMut<'a> {
    /// The explicit IV.
    pub iv: &'a mut [u8],
    /// The encrypted payload, padding, pad length and next header.
    pub ciphertext: &'a mut [u8],
    /// The Integrity Check Value.
    pub icv: &'a mut [u8],
}

/// The header fields of an ESP packet, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Repr {
    /// Security Parameters Index; never 0 on the wire.
    pub spi: u32,
    /// The 32 bits of the sequence number that are transmitted (RFC 4303 s2.2, s2.2.1).
    pub sequence_number: u32,
}

impl Repr {
    /// Parses the header of a packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        packet.check_len()?;
        let spi = packet.spi();
        check_spi(spi)?;
        Ok(Repr {
            spi,
            sequence_number: packet.sequence_number(),
        })
    }

    /// Length of the header this emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first [`Repr::buffer_len`] bytes of `packet`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<(), Error> {
        packet.check_len()?;
        check_spi(self.spi)?;
        packet.set_spi(self.spi);
        packet.set_sequence_number(self.sequence_number);
        Ok(())
    }
}

fn check_spi(spi: u32) -> Result<(), Error> {
    // RFC 4303 2.1: "The SPI value of zero (0) is reserved for local, implementation-specific
    // use and MUST NOT be sent on the wire."
    if spi == 0 {
        return Err(Error::Malformed {
            what: "ESP SPI",
            offset: field::SPI.start,
            reason: "SPI 0 is reserved and MUST NOT be sent (RFC 4303 2.1)",
        });
    }
    Ok(())
}

/// Which padding contents [`Trailer::parse_with`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PaddingCheck {
    /// The default padding 1, 2, 3, ... (RFC 4303 s2.4: used unless the cipher specifies its
    /// padding; "the receiver SHOULD inspect the Padding field").
    Default,
    /// Padding contents are defined by the algorithm and not inspected here.
    AlgorithmDefined,
}

/// A decrypted ESP plaintext taken apart (RFC 4303 s2.3 to s2.6).
///
/// `payload` includes any TFC padding (RFC 4303 s2.7): only the next layer's own length field
/// (the inner IP total length, say) tells the two apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Trailer<'a> {
    /// Payload data (and TFC padding, if the sender added any).
    pub payload: &'a [u8],
    /// The padding bytes.
    pub padding: &'a [u8],
    /// The pad length field.
    pub pad_len: u8,
    /// The next header field: an IP protocol number (4 IPv4 in tunnel mode, 6 TCP, 17 UDP, ...).
    pub next_header: u8,
}

impl<'a> Trailer<'a> {
    /// Takes a plaintext apart, requiring the default padding 1, 2, 3, ... (RFC 4303 s2.4).
    pub fn parse(plaintext: &'a [u8]) -> Result<Trailer<'a>, Error> {
        Self::parse_with(plaintext, PaddingCheck::Default)
    }

    /// Takes a plaintext apart with the given padding rule.
    ///
    /// Checks: at least the two fixed bytes; the pad length does not reach before the start of
    /// the plaintext; with [`PaddingCheck::Default`], padding bytes are 1, 2, 3, ...
    ///
    /// A dummy packet (next header 59) is never an error: RFC 4303 s2.6 says the rest of its
    /// plaintext "need not be well-formed" and that a receiver MUST discard it "without
    /// indicating an error". Its padding is not inspected, and a pad length reaching past the
    /// start is clamped (`padding` is then the whole body and `payload` empty). Check
    /// [`Trailer::is_dummy`] before using the payload.
    pub fn parse_with(plaintext: &'a [u8], check: PaddingCheck) -> Result<Trailer<'a>, Error> {
        let len = plaintext.len();
        let Some(body_len) = len.checked_sub(TRAILER_FIXED_LEN) else {
            return Err(Error::Truncated {
                what: "ESP trailer",
                offset: 0,
                need: TRAILER_FIXED_LEN,
                have: len,
            });
        };
        let (body, fixed) = plaintext.split_at(body_len);
        let (pad_len, next_header) = match *fixed {
            [pad_len, next_header] => (pad_len, next_header),
            _ => {
                return Err(Error::Truncated {
                    what: "ESP trailer",
                    offset: 0,
                    need: 2,
                    have: len,
                });
            }
        };
        let pad = usize::from(pad_len);
        if next_header == NEXT_HEADER_NONE {
            let (payload, padding) = body.split_at(body_len.saturating_sub(pad));
            return Ok(Trailer {
                payload,
                padding,
                pad_len,
                next_header,
            });
        }
        let Some(payload_len) = body_len.checked_sub(pad) else {
            return Err(Error::Malformed {
                what: "ESP pad length",
                offset: body_len,
                reason: "pad length reaches before the start of the plaintext",
            });
        };
        let (payload, padding) = body.split_at(payload_len);
        if check == PaddingCheck::Default {
            // RFC 4303 2.4: default padding is 1, 2, 3, ...; "the receiver SHOULD inspect the
            // Padding field".
            if let Some(i) = padding
                .iter()
                .zip(1u8..=u8::MAX)
                .position(|(&b, expected)| b != expected)
            {
                return Err(Error::Malformed {
                    what: "ESP padding",
                    offset: payload_len + i,
                    reason: "padding bytes are not 1, 2, 3, ... (RFC 4303 2.4 default padding)",
                });
            }
        }
        Ok(Trailer {
            payload,
            padding,
            pad_len,
            next_header,
        })
    }

    /// True for a dummy packet (next header 59, RFC 4303 s2.6): discard it silently.
    pub fn is_dummy(&self) -> bool {
        self.next_header == NEXT_HEADER_NONE
    }

    /// The trailer as a sender would describe it (no TFC padding: the parser cannot see it).
    pub fn repr(&self) -> TrailerRepr {
        TrailerRepr {
            tfc_padding_len: 0,
            pad_len: self.pad_len,
            next_header: self.next_header,
        }
    }
}

/// What a sender appends after the payload before encrypting: optional TFC padding (zeros),
/// padding 1, 2, 3, ..., pad length and next header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct TrailerRepr {
    /// Bytes of TFC padding (zeros) placed right after the payload (RFC 4303 s2.7). Only for
    /// payloads that carry their own length (an IP packet in tunnel mode, UDP, ICMP).
    pub tfc_padding_len: usize,
    /// Number of padding bytes (the pad length field).
    pub pad_len: u8,
    /// The next header field.
    pub next_header: u8,
}

impl TrailerRepr {
    /// The trailer for a payload of `payload_len` bytes under a cipher with `block_size`:
    /// the least padding that makes payload, padding and the two fixed bytes a multiple of the
    /// block size and of 4 (RFC 4303 s2.4).
    pub fn new(payload_len: usize, block_size: usize, next_header: u8) -> Result<Self, Error> {
        Self::with_tfc_padding(payload_len, 0, block_size, next_header)
    }

    /// Like [`TrailerRepr::new`], with `tfc_padding_len` bytes of TFC padding after the payload
    /// (RFC 4303 s2.7), counted before the block padding is computed.
    pub fn with_tfc_padding(
        payload_len: usize,
        tfc_padding_len: usize,
        block_size: usize,
        next_header: u8,
    ) -> Result<Self, Error> {
        let alignment = alignment(block_size)?;
        let too_long = || Error::Malformed {
            what: "ESP plaintext",
            offset: 0,
            reason: "payload length overflows",
        };
        let covered = payload_len
            .checked_add(tfc_padding_len)
            .and_then(|n| n.checked_add(TRAILER_FIXED_LEN))
            .ok_or_else(too_long)?;
        let pad = (alignment - covered % alignment) % alignment;
        let pad_len = u8::try_from(pad).map_err(|_| Error::Malformed {
            what: "ESP padding",
            offset: payload_len,
            reason: "block size needs more than 255 bytes of padding (RFC 4303 2.4)",
        })?;
        // The total must also be representable, so buffer_len never overflows.
        covered.checked_add(pad).ok_or_else(too_long)?;
        Ok(TrailerRepr {
            tfc_padding_len,
            pad_len,
            next_header,
        })
    }

    /// Number of padding bytes.
    pub fn padding_len(&self) -> usize {
        usize::from(self.pad_len)
    }

    /// Bytes this appends: TFC padding, padding and the two fixed bytes.
    pub fn buffer_len(&self) -> usize {
        self.tfc_padding_len
            .saturating_add(self.padding_len())
            .saturating_add(TRAILER_FIXED_LEN)
    }

    /// Writes the trailer into the first [`TrailerRepr::buffer_len`] bytes of `buf` (the bytes
    /// right after the payload).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let need = self.buffer_len();
        let have = buf.len();
        let Some(out) = buf.get_mut(..need) else {
            return Err(Error::Truncated {
                what: "ESP trailer buffer",
                offset: 0,
                need,
                have,
            });
        };
        let (tfc, rest) = out.split_at_mut(self.tfc_padding_len.min(need));
        tfc.fill(0);
        let (padding, fixed) = rest.split_at_mut(self.padding_len().min(rest.len()));
        for (b, value) in padding.iter_mut().zip(1u8..=u8::MAX) {
            *b = value;
        }
        if let [pad_len, next_header] = fixed {
            *pad_len = self.pad_len;
            *next_header = self.next_header;
        }
        Ok(())
    }

    /// Appends the trailer to `plaintext` (which holds the payload).
    pub fn append_to(&self, plaintext: &mut Vec<u8>) {
        let start = plaintext.len();
        plaintext.resize(start.saturating_add(self.buffer_len()), 0);
        if let Some(tail) = plaintext.get_mut(start..) {
            // Cannot fail: the tail is exactly buffer_len() long.
            let _ = self.emit(tail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    // draft-mcgrew-gcm-test-01 (AES-GCM in ESP, the RFC 4106 layout), test case 2: SPI
    // 0x0000a5f8, sequence 10, salt cafebabe, IV facedbaddecaf888, 16-byte ICV. The wire packet
    // is SPI | sequence | IV | ciphertext | ICV.
    const GCM_PACKET: &str = "0000a5f8 0000000a facedbaddecaf888
        deb22cd9b07c72c16e3a65beeb8df304a5a5897d33ae530f1ba76d5d114d2a5c
        3de81827c10e9a4f51330d0eec416642cfbb85a5b47e48a4ec3b9ba95d918bd1
        83b70d3aa8bc6ee4c309e9d85a41ad4a";
    // Its plaintext: a 62-byte IPv4 packet, no padding, pad length 0, next header 1.
    const GCM_PLAINTEXT: &str = "4500003e698f000080114dccc0a80102c0a801010a980035002a2343b2d0
        01000001000000000000037369700963796265726369747902646b00000100010001";

    // RFC 3602 s4, case #5: AES-CBC, SPI 0x4321, sequence 1, 16-byte IV, no ICV; the payload is
    // a 64-byte ICMP echo, padded with 1..14 to 80 bytes.
    const CBC_PACKET: &str = "00004321 00000001 e96e8c08ab465763fd098d45dd3ff893
        f663c25d325c18c6a9453e194e120849a4870b66cc6b9965330013b4898dc856
        a4699e523a55db080b59ec3a8e4b7e52775b07d1db34ed9c538ab50c551b874a
        a269add047ad2d5913ac19b7cfbad4a6";
    const CBC_PAYLOAD: &str = "08000ebda70a00008e9c083db95b0700
        08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
        202122232425262728292a2b2c2d2e2f3031323334353637";

    #[test]
    fn gcm_packet_splits_into_iv_ciphertext_icv() {
        let bytes = unhex(GCM_PACKET);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Repr::parse(&packet).unwrap(),
            Repr {
                spi: 0xa5f8,
                sequence_number: 10
            }
        );
        let parts = packet.split(&Layout::new(8, 16, 4)).unwrap();
        assert_eq!(parts.iv, unhex("facedbaddecaf888"));
        assert_eq!(parts.ciphertext.len(), 64);
        assert_eq!(parts.ciphertext[..4], [0xde, 0xb2, 0x2c, 0xd9]);
        assert_eq!(parts.icv, unhex("83b70d3aa8bc6ee4c309e9d85a41ad4a"));
        assert_eq!(parts.authenticated, &bytes[..8 + 8 + 64]);
        // Block size 1 means the same thing: the 4-byte rule applies anyway.
        assert_eq!(packet.split(&Layout::new(8, 16, 1)).unwrap(), parts);
    }

    #[test]
    fn gcm_plaintext_trailer() {
        let plaintext = unhex(GCM_PLAINTEXT);
        let t = Trailer::parse(&plaintext).unwrap();
        assert_eq!(
            (t.payload.len(), t.padding, t.pad_len, t.next_header),
            (62, &[][..], 0, 1)
        );
        assert!(!t.is_dummy());
        // The builder produces exactly these two bytes for a 62-byte payload.
        let repr = TrailerRepr::new(62, 4, 1).unwrap();
        assert_eq!(repr, t.repr());
        let mut built = plaintext[..62].to_vec();
        repr.append_to(&mut built);
        assert_eq!(built, plaintext);
    }

    #[test]
    fn esn_packet_carries_only_the_low_32_bits() {
        // draft-mcgrew-gcm-test-01 case 1 uses ESN 0x8765432100000000: the AAD is SPI | high |
        // low, but the wire header carries SPI 0x4321 and the low half, 0.
        let mut wire = unhex("00004321 00000000 4956ed7e3b244cfe");
        wire.extend_from_slice(&[0u8; 72 + 16]);
        let packet = Packet::new_checked(&wire[..]).unwrap();
        assert_eq!(
            Repr::parse(&packet).unwrap(),
            Repr {
                spi: 0x4321,
                sequence_number: 0
            }
        );
        assert_eq!(
            packet
                .split(&Layout::new(8, 16, 4))
                .unwrap()
                .ciphertext
                .len(),
            72
        );
    }

    #[test]
    fn cbc_packet_rfc3602_case5() {
        let bytes = unhex(CBC_PACKET);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Repr::parse(&packet).unwrap(),
            Repr {
                spi: 0x4321,
                sequence_number: 1
            }
        );
        let parts = packet.split(&Layout::new(16, 0, 16)).unwrap();
        assert_eq!(parts.iv, unhex("e96e8c08ab465763fd098d45dd3ff893"));
        assert_eq!(parts.ciphertext.len(), 80);
        assert!(parts.icv.is_empty());
        // The same SA with HMAC-SHA1-96 (12-byte ICV) on the end.
        let mut with_icv = bytes.clone();
        with_icv.extend_from_slice(&[0xaa; 12]);
        let with_icv = Packet::new_unchecked(&with_icv[..]);
        let parts = with_icv.split(&Layout::new(16, 12, 16)).unwrap();
        assert_eq!((parts.ciphertext.len(), parts.icv), (80, &[0xaa; 12][..]));
        // An ICV length the SA does not have leaves a ciphertext that is not whole blocks.
        assert!(matches!(
            with_icv.split(&Layout::new(16, 16, 16)),
            Err(Error::Malformed {
                what: "ESP ciphertext",
                offset: 24,
                ..
            })
        ));
    }

    #[test]
    fn cbc_trailer_matches_rfc3602_plaintext() {
        // RFC 3602 case #5 plaintext: payload, padding 01..0e, pad length 0e, next header 01.
        let payload = unhex(CBC_PAYLOAD);
        let repr = TrailerRepr::new(payload.len(), 16, 1).unwrap();
        assert_eq!(repr.pad_len, 14);
        let mut plaintext = payload.clone();
        repr.append_to(&mut plaintext);
        assert_eq!(plaintext.len(), 80);
        assert_eq!(plaintext[64..], unhex("0102030405060708090a0b0c0d0e 0e 01"));
        let t = Trailer::parse(&plaintext).unwrap();
        assert_eq!(
            (t.payload, t.padding.len(), t.next_header),
            (&payload[..], 14, 1)
        );
    }

    #[test]
    fn split_rejects_short_and_misaligned_payloads() {
        let short = unhex("00001000 00000001 0102030405060708 0000");
        assert_eq!(
            Packet::new_unchecked(&short[..]).split(&Layout::new(8, 16, 4)),
            Err(Error::Truncated {
                what: "ESP payload (IV, trailer, ICV)",
                offset: 8,
                need: 26,
                have: 10
            })
        );
        // 6 bytes of ciphertext: not a multiple of 4.
        let odd = unhex("00001000 00000001 000000000000");
        assert!(matches!(
            Packet::new_unchecked(&odd[..]).split(&Layout::new(0, 0, 1)),
            Err(Error::Malformed {
                what: "ESP ciphertext",
                offset: 8,
                ..
            })
        ));
        assert!(matches!(
            Packet::new_unchecked(&odd[..]).split(&Layout::new(0, 0, 0)),
            Err(Error::Malformed {
                what: "ESP layout",
                ..
            })
        ));
        assert!(
            Packet::new_unchecked(&odd[..])
                .split(&Layout::new(usize::MAX, 1, 1))
                .is_err()
        );
        assert!(
            Packet::new_unchecked(&odd[..])
                .split(&Layout::new(0, 0, usize::MAX))
                .is_err()
        );
    }

    #[test]
    fn sender_fills_a_buffer_through_split_mut() {
        let layout = Layout::new(8, 16, 4);
        let mut buf = vec![0u8; layout.packet_len(64).unwrap()];
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        Repr {
            spi: 0xa5f8,
            sequence_number: 10,
        }
        .emit(&mut packet)
        .unwrap();
        let parts = packet.split_mut(&layout).unwrap();
        parts.iv.copy_from_slice(&unhex("facedbaddecaf888"));
        parts.ciphertext.copy_from_slice(&unhex(GCM_PACKET)[16..80]);
        parts
            .icv
            .copy_from_slice(&unhex("83b70d3aa8bc6ee4c309e9d85a41ad4a"));
        assert_eq!(buf, unhex(GCM_PACKET));
        let mut short = [0u8; 9];
        assert!(
            Packet::new_unchecked(&mut short[..])
                .split_mut(&layout)
                .is_err()
        );
    }

    #[test]
    fn header_checks_and_accessors_never_panic() {
        assert_eq!(
            Packet::new_checked(&[0u8; 7][..]),
            Err(Error::Truncated {
                what: "ESP header",
                offset: 0,
                need: 8,
                have: 7
            })
        );
        let short = Packet::new_unchecked(&[1u8, 2][..]);
        assert_eq!(
            (short.spi(), short.sequence_number(), short.payload()),
            (0, 0, &[][..])
        );
        assert!(short.split(&Layout::new(0, 0, 4)).is_err());
        let zero = Packet::new_checked(&[0u8; 8][..]).unwrap();
        assert!(matches!(
            Repr::parse(&zero),
            Err(Error::Malformed {
                what: "ESP SPI",
                ..
            })
        ));
    }

    #[test]
    fn repr_emit_mirrors_parse() {
        let repr = Repr {
            spi: 0xdead_beef,
            sequence_number: 0x0102_0304,
        };
        let mut buf = [0u8; 8];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet).unwrap();
        assert_eq!(buf, [0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(),
            repr
        );
        let mut short = [0u8; 4];
        assert!(
            repr.emit(&mut Packet::new_unchecked(&mut short[..]))
                .is_err()
        );
        let bad = Repr {
            spi: 0,
            sequence_number: 1,
        };
        assert!(bad.emit(&mut Packet::new_unchecked(&mut buf[..])).is_err());
    }

    #[test]
    fn reserved_spis() {
        assert!(is_reserved_spi(0) && is_reserved_spi(1) && is_reserved_spi(255));
        assert!(!is_reserved_spi(256) && !is_reserved_spi(u32::MAX));
    }

    #[test]
    fn trailer_round_trip_for_block_sizes_1_4_8_16() {
        for block_size in [1, 4, 8, 16] {
            for payload_len in [0usize, 1, 2, 3, 5, 14, 15, 16, 17, 62, 64, 1399] {
                let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7) as u8).collect();
                let repr = TrailerRepr::new(payload_len, block_size, 4).unwrap();
                let mut plaintext = payload.clone();
                repr.append_to(&mut plaintext);
                let align = if block_size % 4 == 0 { block_size } else { 4 };
                assert_eq!(
                    plaintext.len() % align,
                    0,
                    "bs {block_size} len {payload_len}"
                );
                assert!(repr.padding_len() < align);
                let t = Trailer::parse(&plaintext).unwrap();
                assert_eq!(t.payload, &payload[..]);
                assert_eq!(t.repr(), repr);
                assert_eq!(t.next_header, 4);
            }
        }
    }

    #[test]
    fn trailer_with_tfc_padding() {
        let repr = TrailerRepr::with_tfc_padding(10, 5, 8, 4).unwrap();
        // 10 + 5 + 2 = 17 -> 24: 7 bytes of padding.
        assert_eq!((repr.pad_len, repr.buffer_len()), (7, 14));
        let mut plaintext = vec![0xee; 10];
        repr.append_to(&mut plaintext);
        assert_eq!(plaintext[10..], unhex("0000000000 01020304050607 07 04"));
        let t = Trailer::parse(&plaintext).unwrap();
        assert_eq!(
            t.payload.len(),
            15,
            "TFC padding is part of the payload as parsed"
        );
    }

    #[test]
    fn bad_trailers_are_rejected() {
        assert_eq!(
            Trailer::parse(&[4]),
            Err(Error::Truncated {
                what: "ESP trailer",
                offset: 0,
                need: 2,
                have: 1
            })
        );
        // Pad length 3 with only 2 bytes before it.
        assert_eq!(
            Trailer::parse(&[1, 2, 3, 4]),
            Err(Error::Malformed {
                what: "ESP pad length",
                offset: 2,
                reason: "pad length reaches before the start of the plaintext"
            })
        );
        // Padding 1, 2, 4 instead of 1, 2, 3: the third padding byte is named.
        let bad = [0xaa, 0xbb, 1, 2, 4, 3, 6];
        assert!(matches!(
            Trailer::parse(&bad),
            Err(Error::Malformed {
                what: "ESP padding",
                offset: 4,
                ..
            })
        ));
        // The same bytes under an algorithm that defines its own padding.
        let t = Trailer::parse_with(&bad, PaddingCheck::AlgorithmDefined).unwrap();
        assert_eq!((t.payload, t.padding), (&[0xaa, 0xbb][..], &[1, 2, 4][..]));
        // Zero padding (a common implementation bug) is not the default padding.
        assert!(Trailer::parse(&[9, 0, 0, 2, 6]).is_err());
    }

    #[test]
    fn dummy_packets_are_recognised_and_never_an_error() {
        // Well-formed dummy.
        let t = Trailer::parse(&[0x11, 0x22, 1, 2, 2, NEXT_HEADER_NONE]).unwrap();
        assert!(t.is_dummy());
        assert_eq!(t.payload, &[0x11, 0x22]);
        // Random bytes with a pad length past the start and bad padding: still a dummy.
        let t = Trailer::parse(&[0x99, 0x42, 200, NEXT_HEADER_NONE]).unwrap();
        assert!(t.is_dummy());
        assert_eq!(
            (t.payload, t.padding, t.pad_len),
            (&[][..], &[0x99, 0x42][..], 200)
        );
    }

    #[test]
    fn trailer_builder_limits() {
        assert!(TrailerRepr::new(1, 0, 4).is_err());
        // lcm(255, 4) = 1020: a payload may need up to 1019 bytes of padding.
        assert!(TrailerRepr::new(0, 255, 4).is_err());
        assert!(TrailerRepr::new(1018, 255, 4).is_ok());
        assert!(TrailerRepr::new(usize::MAX, 1, 4).is_err());
        assert!(TrailerRepr::with_tfc_padding(usize::MAX - 2, 0, 1, 4).is_err());
        let repr = TrailerRepr::new(3, 8, 4).unwrap();
        assert_eq!(
            repr.emit(&mut [0u8; 4]),
            Err(Error::Truncated {
                what: "ESP trailer buffer",
                offset: 0,
                need: 5,
                have: 4
            })
        );
        let mut exact = [0u8; 5];
        repr.emit(&mut exact).unwrap();
        assert_eq!(exact, [1, 2, 3, 3, 4]);
    }

    #[test]
    fn padding_of_255_bytes() {
        // 255 + 2 = 257: a 256-byte block needs the longest padding there is.
        let repr = TrailerRepr::new(255, 256, 6).unwrap();
        assert_eq!(repr.pad_len, 255);
        let mut plaintext = vec![0x42; 255];
        repr.append_to(&mut plaintext);
        assert_eq!(plaintext.len(), 512);
        assert_eq!(plaintext[255..510], (1..=255).collect::<Vec<u8>>());
        let t = Trailer::parse(&plaintext).unwrap();
        assert_eq!(
            (t.payload.len(), t.padding.len(), t.next_header),
            (255, 255, 6)
        );
        // The same with the last padding byte wrong.
        plaintext[509] = 0;
        assert!(matches!(
            Trailer::parse(&plaintext),
            Err(Error::Malformed {
                what: "ESP padding",
                offset: 509,
                ..
            })
        ));
    }

    #[test]
    fn layout_helpers() {
        let gcm = Layout::new(8, 16, 4);
        assert_eq!(gcm.packet_len(64), Some(96));
        assert_eq!(gcm.trailer(62, 4).unwrap().pad_len, 0);
        assert_eq!(Layout::new(16, 12, 16).alignment(), Ok(16));
        assert_eq!(Layout::new(0, 0, 6).alignment(), Ok(12));
        assert_eq!(Layout::new(0, 0, 3).alignment(), Ok(12));
        assert_eq!(Layout::new(usize::MAX, 0, 1).packet_len(1), None);
    }

    #[test]
    fn setters_write_the_header() {
        let mut buf = vec![0u8; 12];
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        packet.set_spi(0x0102_0304);
        packet.set_sequence_number(5);
        packet.payload_mut().copy_from_slice(&[9, 9, 9, 9]);
        assert_eq!(buf, [1, 2, 3, 4, 0, 0, 0, 5, 9, 9, 9, 9]);
        let mut short = [0u8; 3];
        Packet::new_unchecked(&mut short[..]).set_spi(7);
        assert_eq!(short, [0; 3]);
    }
}
