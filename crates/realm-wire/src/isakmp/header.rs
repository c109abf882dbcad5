//! The fixed ISAKMP header (RFC 2408 3.1): checked view and owned repr.

use serde::Serialize;
use serde::ser::SerializeStruct;

use super::payload::{Padding, PayloadType, RawPayloads};
use crate::Error;
use crate::codec::{Reader, Writer};

/// Length of the fixed ISAKMP header (RFC 2408 3.1).
pub const HEADER_LEN: usize = 28;

/// An ISAKMP cookie: 8 octets chosen by one party (RFC 2408 2.5.3). The pair
/// (initiator, responder) names the ISAKMP SA.
pub type Cookie = [u8; 8];

/// Byte offsets of the header fields (RFC 2408 3.1, Figure 2).
mod field {
    use core::ops::Range;
    pub(super) const INITIATOR_COOKIE: Range<usize> = 0..8;
    pub(super) const RESPONDER_COOKIE: Range<usize> = 8..16;
    pub(super) const NEXT_PAYLOAD: usize = 16;
    pub(super) const VERSION: usize = 17;
    pub(super) const EXCHANGE_TYPE: usize = 18;
    pub(super) const FLAGS: usize = 19;
    pub(super) const MESSAGE_ID: Range<usize> = 20..24;
    pub(super) const LENGTH: Range<usize> = 24..28;
}

enum_with_unknown! {
    /// Exchange type (RFC 2408 3.1 and 4.1; RFC 2409 for 32 and 33).
    pub enum ExchangeType(u8) {
        /// NONE (0).
        None = 0,
        /// Base exchange (RFC 2408 4.4).
        Base = 1,
        /// Identity Protection exchange (RFC 2408 4.5): IKE Main Mode.
        #[doc(alias = "MainMode")]
        IdentityProtection = 2,
        /// Authentication Only exchange (RFC 2408 4.6).
        AuthenticationOnly = 3,
        /// Aggressive exchange (RFC 2408 4.7): IKE Aggressive Mode.
        Aggressive = 4,
        /// Informational exchange (RFC 2408 4.8).
        Informational = 5,
        /// IKE Quick Mode (RFC 2409 5.5).
        QuickMode = 32,
        /// IKE New Group Mode (RFC 2409 6).
        NewGroupMode = 33,
    }
}

/// ISAKMP version: major and minor, 4 bits each, in one octet (RFC 2408 3.1).
/// Kept as the received octet; IKEv1 is 1.0. A major version other than 1 is
/// reported, not refused: the IKE engine must answer it with
/// INVALID-MAJOR-VERSION (RFC 2408 5.2 step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(pub u8);

impl Version {
    /// Version 1.0, which RFC 2408 3.1 says implementations MUST send.
    pub const IKEV1: Version = Version(0x10);

    /// Version from its two nibbles; only the low 4 bits of each are used.
    pub const fn new(major: u8, minor: u8) -> Version {
        Version(((major & 0x0f) << 4) | (minor & 0x0f))
    }

    /// Major version (high nibble).
    pub const fn major(self) -> u8 {
        self.0 >> 4
    }

    /// Minor version (low nibble).
    pub const fn minor(self) -> u8 {
        self.0 & 0x0f
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Version", 2)?;
        st.serialize_field("major", &self.major())?;
        st.serialize_field("minor", &self.minor())?;
        st.end()
    }
}

/// Header flags (RFC 2408 3.1). Bits other than E, C and A MUST be sent as
/// zero; received ones are kept and shown by [`Flags::unknown_bits`] so the
/// engine can answer INVALID-FLAGS (RFC 2408 5.2 step 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// E(ncryption), bit 0: all payloads after the header are encrypted.
    pub const ENCRYPTION: u8 = 0x01;
    /// C(ommit), bit 1: key exchange synchronisation.
    pub const COMMIT: u8 = 0x02;
    /// A(uthentication only), bit 2: Informational with integrity only.
    pub const AUTHENTICATION_ONLY: u8 = 0x04;
    const KNOWN: u8 = Self::ENCRYPTION | Self::COMMIT | Self::AUTHENTICATION_ONLY;

    /// No flag set.
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// True when the E bit is set.
    pub const fn encryption(self) -> bool {
        self.0 & Self::ENCRYPTION != 0
    }

    /// True when the C bit is set.
    pub const fn commit(self) -> bool {
        self.0 & Self::COMMIT != 0
    }

    /// True when the A bit is set.
    pub const fn authentication_only(self) -> bool {
        self.0 & Self::AUTHENTICATION_ONLY != 0
    }

    /// The bits RFC 2408 does not define (non-zero means INVALID-FLAGS).
    pub const fn unknown_bits(self) -> u8 {
        self.0 & !Self::KNOWN
    }

    /// These flags with `bit` set or cleared.
    pub const fn with(self, bit: u8, on: bool) -> Flags {
        if on {
            Flags(self.0 | bit)
        } else {
            Flags(self.0 & !bit)
        }
    }
}

impl Serialize for Flags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Flags", 4)?;
        st.serialize_field("encryption", &self.encryption())?;
        st.serialize_field("commit", &self.commit())?;
        st.serialize_field("authentication_only", &self.authentication_only())?;
        st.serialize_field("unknown_bits", &self.unknown_bits())?;
        st.end()
    }
}

/// A checked, zero-copy view of an ISAKMP message.
///
/// [`Packet::new_checked`] is the only constructor: afterwards the buffer
/// holds the whole header and exactly the number of bytes the Length field
/// says, so no accessor can fail.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the header and the Length field against the buffer.
    ///
    /// RFC 2408 5.1: a message whose length differs from the header's Length
    /// field MUST be rejected. A shorter buffer is [`Error::Truncated`], a
    /// longer one [`Error::Trailing`] (the engine may answer
    /// UNEQUAL-PAYLOAD-LENGTHS), a Length below 28 [`Error::Malformed`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let buf = buffer.as_ref();
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated {
                what: "ISAKMP header",
                offset: 0,
                need: HEADER_LEN,
                have: buf.len(),
            });
        }
        let packet = Packet { buffer };
        let length = usize::try_from(packet.length()).unwrap_or(usize::MAX);
        let have = packet.buffer.as_ref().len();
        if length < HEADER_LEN {
            return Err(Error::Malformed {
                what: "ISAKMP header",
                offset: field::LENGTH.start,
                reason: "Length field below the 28-byte header",
            });
        }
        if length > have {
            return Err(Error::Truncated {
                what: "ISAKMP message",
                offset: 0,
                need: length,
                have,
            });
        }
        if length < have {
            return Err(Error::Trailing {
                what: "ISAKMP message",
                offset: length,
                count: have - length,
            });
        }
        Ok(packet)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn array<const N: usize>(&self, start: usize) -> [u8; N] {
        self.buffer
            .as_ref()
            .get(start..start + N)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; N])
    }

    fn byte(&self, at: usize) -> u8 {
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
    }

    /// Initiator cookie.
    pub fn initiator_cookie(&self) -> Cookie {
        self.array(field::INITIATOR_COOKIE.start)
    }

    /// Responder cookie (all zero in the first message of phase 1).
    pub fn responder_cookie(&self) -> Cookie {
        self.array(field::RESPONDER_COOKIE.start)
    }

    /// Type of the first payload (of the plaintext, when encrypted).
    pub fn next_payload(&self) -> PayloadType {
        PayloadType::from(self.byte(field::NEXT_PAYLOAD))
    }

    /// Major and minor version.
    pub fn version(&self) -> Version {
        Version(self.byte(field::VERSION))
    }

    /// Exchange type.
    pub fn exchange_type(&self) -> ExchangeType {
        ExchangeType::from(self.byte(field::EXCHANGE_TYPE))
    }

    /// Flags.
    pub fn flags(&self) -> Flags {
        Flags(self.byte(field::FLAGS))
    }

    /// Message ID (0 in phase 1, RFC 2408 3.1).
    pub fn message_id(&self) -> u32 {
        u32::from_be_bytes(self.array(field::MESSAGE_ID.start))
    }

    /// Length of the whole message, header included.
    pub fn length(&self) -> u32 {
        u32::from_be_bytes(self.array(field::LENGTH.start))
    }

    /// Everything after the header: the payload chain, or the ciphertext when
    /// the E flag is set.
    pub fn body(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Walks the plaintext payload chain without copying, with offsets from
    /// the start of the message (meaningless when the E flag is set: walk the
    /// decrypted plaintext with [`RawPayloads::new`] instead). Each item's
    /// `body` is the received "_b" bytes that RFC 2409 hashes.
    pub fn payloads(&self, padding: Padding) -> RawPayloads<'_> {
        let mut reader = Reader::new(self.buffer.as_ref());
        // Cannot fail: the buffer holds at least the header.
        let _ = reader.take(HEADER_LEN, "ISAKMP header");
        RawPayloads::from_reader(self.next_payload(), reader, padding)
    }
}

/// The ISAKMP header as owned values (RFC 2408 3.1).
///
/// The Next Payload and Length fields are not here: emit computes them from
/// the body (see [`super::Message`]), and a parsed encrypted message keeps
/// its first payload type in [`super::Body::Encrypted`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Header {
    /// Initiator cookie.
    #[serde(serialize_with = "super::hex_serde::bytes")]
    pub initiator_cookie: Cookie,
    /// Responder cookie.
    #[serde(serialize_with = "super::hex_serde::bytes")]
    pub responder_cookie: Cookie,
    /// Version, as received.
    pub version: Version,
    /// Exchange type.
    pub exchange_type: ExchangeType,
    /// Flags. On emit the E bit is written from the body variant.
    pub flags: Flags,
    /// Message ID.
    pub message_id: u32,
}

impl Header {
    /// A version 1.0 header with no flags.
    pub fn new(
        exchange_type: ExchangeType,
        initiator_cookie: Cookie,
        responder_cookie: Cookie,
        message_id: u32,
    ) -> Header {
        Header {
            initiator_cookie,
            responder_cookie,
            version: Version::IKEV1,
            exchange_type,
            flags: Flags::empty(),
            message_id,
        }
    }

    /// Reads the header fields of a checked packet. Never fails once the
    /// packet is checked; the `Result` keeps the parse/emit shape uniform.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Header, Error> {
        Ok(Header {
            initiator_cookie: packet.initiator_cookie(),
            responder_cookie: packet.responder_cookie(),
            version: packet.version(),
            exchange_type: packet.exchange_type(),
            flags: packet.flags(),
            message_id: packet.message_id(),
        })
    }

    /// Appends the 28 header bytes with the given Next Payload and Length.
    pub fn emit(&self, next_payload: PayloadType, length: u32, out: &mut Vec<u8>) {
        out.put_slice(&self.initiator_cookie);
        out.put_slice(&self.responder_cookie);
        out.put_u8(next_payload.into());
        out.put_u8(self.version.0);
        out.put_u8(self.exchange_type.into());
        out.put_u8(self.flags.0);
        out.put_u32(self.message_id);
        out.put_u32(length);
    }
}
