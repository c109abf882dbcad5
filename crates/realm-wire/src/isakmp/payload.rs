//! The generic payload header (RFC 2408 3.2) and the payload chain.

use serde::Serialize;

use super::bodies::{
    Certificate, CertificateRequest, Delete, Hash, Identification, KeyExchange, NatDiscovery,
    NatOriginalAddress, Nonce, Notification, Signature, VendorId,
};
use super::sa::SecurityAssociation;
use crate::Error;
use crate::codec::{Reader, Writer};

/// Length of the generic payload header (RFC 2408 3.2).
pub const GENERIC_HEADER_LEN: usize = 4;

enum_with_unknown! {
    /// Next Payload type (RFC 2408 3.1; 20 and 21 from RFC 3947 3.2 and 5.2).
    /// The pre-RFC NAT-T draft numbers 130 (NAT-D) and 131 (NAT-OA) and the
    /// private range 128-255 stay `Unknown`.
    pub enum PayloadType(u8) {
        /// NONE: end of the chain.
        None = 0,
        /// Security Association (3.4).
        SecurityAssociation = 1,
        /// Proposal (3.5), only inside an SA.
        Proposal = 2,
        /// Transform (3.6), only inside a Proposal.
        Transform = 3,
        /// Key Exchange (3.7).
        KeyExchange = 4,
        /// Identification (3.8).
        Identification = 5,
        /// Certificate (3.9).
        Certificate = 6,
        /// Certificate Request (3.10).
        CertificateRequest = 7,
        /// Hash (3.11).
        Hash = 8,
        /// Signature (3.12).
        Signature = 9,
        /// Nonce (3.13).
        Nonce = 10,
        /// Notification (3.14).
        Notification = 11,
        /// Delete (3.15).
        Delete = 12,
        /// Vendor ID (3.16).
        VendorId = 13,
        /// NAT Discovery (RFC 3947 3.2).
        NatDiscovery = 20,
        /// NAT Original Address (RFC 3947 5.2).
        NatOriginalAddress = 21,
    }
}

impl PayloadType {
    /// A short name for error messages.
    pub(crate) fn what(self) -> &'static str {
        match self {
            PayloadType::None => "payload",
            PayloadType::SecurityAssociation => "SA payload",
            PayloadType::Proposal => "Proposal payload",
            PayloadType::Transform => "Transform payload",
            PayloadType::KeyExchange => "KE payload",
            PayloadType::Identification => "ID payload",
            PayloadType::Certificate => "CERT payload",
            PayloadType::CertificateRequest => "CR payload",
            PayloadType::Hash => "HASH payload",
            PayloadType::Signature => "SIG payload",
            PayloadType::Nonce => "NONCE payload",
            PayloadType::Notification => "Notification payload",
            PayloadType::Delete => "Delete payload",
            PayloadType::VendorId => "Vendor ID payload",
            PayloadType::NatDiscovery => "NAT-D payload",
            PayloadType::NatOriginalAddress => "NAT-OA payload",
            PayloadType::Unknown(_) => "unknown payload",
        }
    }
}

/// What may follow the last payload of a chain (the one whose Next Payload
/// is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// Nothing: the chain must end exactly at the end of the buffer. Right
    /// for plaintext messages (RFC 2408 5.1 length check).
    #[default]
    Forbidden,
    /// Padding to the cipher block size in decrypted plaintext: bytes of
    /// 0x00 (RFC 2409 Appendix B), except that the last byte may hold the
    /// pad count (RFC 2409 5.3).
    Zeros,
    /// Any bytes, unchecked (what some peers send; racoon can randomise its
    /// padding).
    Any,
}

/// One payload as it sits in the buffer: its type (from the previous Next
/// Payload field), its generic header and its body, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPayload<'a> {
    /// Payload type.
    pub payload_type: PayloadType,
    /// The RESERVED octet of the generic header, as received.
    pub reserved: u8,
    /// Absolute offset of the generic header.
    pub offset: usize,
    /// The body after the generic header (Payload Length - 4 bytes). This is
    /// the "_b" of RFC 2409 (for example SAi_b in HASH_I).
    pub body: &'a [u8],
}

/// Walks a payload chain by its Next Payload fields without interpreting the
/// bodies (RFC 2408 3.2). Yields each payload or the first error, then stops.
#[derive(Debug, Clone)]
pub struct RawPayloads<'a> {
    reader: Reader<'a>,
    next: PayloadType,
    padding_rule: Padding,
    padding: &'a [u8],
    done: bool,
}

impl<'a> RawPayloads<'a> {
    /// A walker over `bytes` (offsets relative to `bytes`), starting with a
    /// payload of type `first` (from the ISAKMP header).
    pub fn new(first: PayloadType, bytes: &'a [u8], padding: Padding) -> RawPayloads<'a> {
        RawPayloads::from_reader(first, Reader::new(bytes), padding)
    }

    /// A walker over the rest of `reader`, keeping its absolute offsets.
    pub fn from_reader(
        first: PayloadType,
        reader: Reader<'a>,
        padding: Padding,
    ) -> RawPayloads<'a> {
        RawPayloads {
            reader,
            next: first,
            padding_rule: padding,
            padding: &[],
            done: false,
        }
    }

    /// The padding after the last payload, once the walk has ended cleanly.
    pub fn padding(&self) -> &'a [u8] {
        self.padding
    }

    fn step(&mut self) -> Result<Option<RawPayload<'a>>, Error> {
        if self.next == PayloadType::None {
            self.finish()?;
            return Ok(None);
        }
        let payload_type = self.next;
        let what = payload_type.what();
        let offset = self.reader.offset();
        let [next, reserved, len_hi, len_lo] = self.reader.array::<4>(what)?;
        let length = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        // RFC 2408 3.2: Payload Length includes the generic payload header.
        let body_len = length
            .checked_sub(GENERIC_HEADER_LEN)
            .ok_or(Error::Malformed {
                what,
                offset: offset + 2,
                reason: "Payload Length below the 4-byte generic header",
            })?;
        let mut body = self.reader.sub(body_len, what)?;
        self.next = PayloadType::from(next);
        Ok(Some(RawPayload {
            payload_type,
            reserved,
            offset,
            body: body.rest(),
        }))
    }

    fn finish(&mut self) -> Result<(), Error> {
        let offset = self.reader.offset();
        let rest = self.reader.rest();
        match self.padding_rule {
            Padding::Forbidden if !rest.is_empty() => {
                return Err(Error::Trailing {
                    what: "payload chain",
                    offset,
                    count: rest.len(),
                });
            }
            Padding::Zeros => {
                let body = rest.split_last().map(|(_, body)| body).unwrap_or(&[]);
                if let Some(bad) = body.iter().position(|&b| b != 0) {
                    return Err(Error::Malformed {
                        what: "padding",
                        offset: offset + bad,
                        reason: "padding must be 0x00 bytes (RFC 2409 Appendix B)",
                    });
                }
            }
            _ => {}
        }
        self.padding = rest;
        Ok(())
    }
}

impl<'a> Iterator for RawPayloads<'a> {
    type Item = Result<RawPayload<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(p)) => Some(Ok(p)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A typed payload body, one variant per payload type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type")]
pub enum PayloadBody {
    /// Security Association (RFC 2408 3.4) with its proposals and transforms.
    SecurityAssociation(SecurityAssociation),
    /// Key Exchange (3.7).
    KeyExchange(KeyExchange),
    /// Identification (3.8, RFC 2407 4.6.2).
    Identification(Identification),
    /// Certificate (3.9).
    Certificate(Certificate),
    /// Certificate Request (3.10).
    CertificateRequest(CertificateRequest),
    /// Hash (3.11).
    Hash(Hash),
    /// Signature (3.12).
    Signature(Signature),
    /// Nonce (3.13).
    Nonce(Nonce),
    /// Notification (3.14).
    Notification(Notification),
    /// Delete (3.15).
    Delete(Delete),
    /// Vendor ID (3.16).
    VendorId(VendorId),
    /// NAT-D (RFC 3947 3.2).
    NatDiscovery(NatDiscovery),
    /// NAT-OA (RFC 3947 5.2).
    NatOriginalAddress(NatOriginalAddress),
    /// A payload this module does not interpret, kept raw: an `Unknown`
    /// type, or a Proposal or Transform found outside an SA (RFC 2408 3.4
    /// forbids it; the engine answers INVALID-PAYLOAD-TYPE).
    Raw {
        /// The payload type.
        payload_type: PayloadType,
        /// The body after the generic header.
        #[serde(serialize_with = "super::hex_serde::bytes")]
        data: Vec<u8>,
    },
}

impl PayloadBody {
    /// The payload type that announces this body.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            PayloadBody::SecurityAssociation(_) => PayloadType::SecurityAssociation,
            PayloadBody::KeyExchange(_) => PayloadType::KeyExchange,
            PayloadBody::Identification(_) => PayloadType::Identification,
            PayloadBody::Certificate(_) => PayloadType::Certificate,
            PayloadBody::CertificateRequest(_) => PayloadType::CertificateRequest,
            PayloadBody::Hash(_) => PayloadType::Hash,
            PayloadBody::Signature(_) => PayloadType::Signature,
            PayloadBody::Nonce(_) => PayloadType::Nonce,
            PayloadBody::Notification(_) => PayloadType::Notification,
            PayloadBody::Delete(_) => PayloadType::Delete,
            PayloadBody::VendorId(_) => PayloadType::VendorId,
            PayloadBody::NatDiscovery(_) => PayloadType::NatDiscovery,
            PayloadBody::NatOriginalAddress(_) => PayloadType::NatOriginalAddress,
            PayloadBody::Raw { payload_type, .. } => *payload_type,
        }
    }

    /// Parses the body of a payload of type `payload_type`; `r` holds exactly
    /// the body (`r.sub(len)`), and must be consumed entirely.
    pub fn read(payload_type: PayloadType, r: &mut Reader<'_>) -> Result<PayloadBody, Error> {
        let body = match payload_type {
            PayloadType::SecurityAssociation => {
                PayloadBody::SecurityAssociation(SecurityAssociation::read(r)?)
            }
            PayloadType::KeyExchange => PayloadBody::KeyExchange(KeyExchange::read(r)),
            PayloadType::Identification => PayloadBody::Identification(Identification::read(r)?),
            PayloadType::Certificate => PayloadBody::Certificate(Certificate::read(r)?),
            PayloadType::CertificateRequest => {
                PayloadBody::CertificateRequest(CertificateRequest::read(r)?)
            }
            PayloadType::Hash => PayloadBody::Hash(Hash::read(r)),
            PayloadType::Signature => PayloadBody::Signature(Signature::read(r)),
            PayloadType::Nonce => PayloadBody::Nonce(Nonce::read(r)),
            PayloadType::Notification => PayloadBody::Notification(Notification::read(r)?),
            PayloadType::Delete => PayloadBody::Delete(Delete::read(r)?),
            PayloadType::VendorId => PayloadBody::VendorId(VendorId::read(r)),
            PayloadType::NatDiscovery => PayloadBody::NatDiscovery(NatDiscovery::read(r)),
            PayloadType::NatOriginalAddress => {
                PayloadBody::NatOriginalAddress(NatOriginalAddress::read(r)?)
            }
            PayloadType::None
            | PayloadType::Proposal
            | PayloadType::Transform
            | PayloadType::Unknown(_) => PayloadBody::Raw {
                payload_type,
                data: r.rest().to_vec(),
            },
        };
        r.expect_end(payload_type.what())?;
        Ok(body)
    }

    /// Appends the body (without generic header): the bytes RFC 2409 hashes
    /// as "SAi_b", "IDii_b" and so on.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            PayloadBody::SecurityAssociation(b) => b.emit(out)?,
            PayloadBody::KeyExchange(b) => out.put_slice(&b.data),
            PayloadBody::Identification(b) => b.emit(out),
            PayloadBody::Certificate(b) => b.emit(out),
            PayloadBody::CertificateRequest(b) => b.emit(out),
            PayloadBody::Hash(b) => out.put_slice(&b.data),
            PayloadBody::Signature(b) => out.put_slice(&b.data),
            PayloadBody::Nonce(b) => out.put_slice(&b.data),
            PayloadBody::Notification(b) => b.emit(out)?,
            PayloadBody::Delete(b) => b.emit(out)?,
            PayloadBody::VendorId(b) => out.put_slice(&b.data),
            PayloadBody::NatDiscovery(b) => out.put_slice(&b.hash),
            PayloadBody::NatOriginalAddress(b) => b.emit(out),
            PayloadBody::Raw { payload_type, data } => {
                // Only types that parse back as `Raw` may be emitted raw.
                let code = u8::from(*payload_type);
                match PayloadType::from(code) {
                    PayloadType::Proposal | PayloadType::Transform | PayloadType::Unknown(_) => {
                        out.put_slice(data)
                    }
                    _ => {
                        return Err(Error::Malformed {
                            what: "raw payload",
                            offset: out.len(),
                            reason: "raw payload type must be unknown, Proposal or Transform",
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Bytes the body takes on the wire, without the generic header.
    pub fn buffer_len(&self) -> usize {
        match self {
            PayloadBody::SecurityAssociation(b) => b.buffer_len(),
            PayloadBody::KeyExchange(b) => b.data.len(),
            PayloadBody::Identification(b) => 4 + b.data.len(),
            PayloadBody::Certificate(b) => 1 + b.data.len(),
            PayloadBody::CertificateRequest(b) => 1 + b.authority.len(),
            PayloadBody::Hash(b) => b.data.len(),
            PayloadBody::Signature(b) => b.data.len(),
            PayloadBody::Nonce(b) => b.data.len(),
            PayloadBody::Notification(b) => 8 + b.spi.len() + b.data.len(),
            PayloadBody::Delete(b) => 8 + b.spis.iter().map(Vec::len).sum::<usize>(),
            PayloadBody::VendorId(b) => b.data.len(),
            PayloadBody::NatDiscovery(b) => b.hash.len(),
            PayloadBody::NatOriginalAddress(b) => 4 + b.address.len(),
            PayloadBody::Raw { data, .. } => data.len(),
        }
    }

    /// The body as bytes (see [`PayloadBody::emit`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.emit(&mut out)?;
        Ok(out)
    }

    fn has_nonzero_reserved(&self) -> bool {
        match self {
            PayloadBody::SecurityAssociation(sa) => sa.has_nonzero_reserved(),
            PayloadBody::NatOriginalAddress(oa) => oa.reserved != [0; 3],
            _ => false,
        }
    }
}

/// One payload of a chain: its body and the RESERVED octet of its generic
/// header, kept as received so round-trips are exact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Payload {
    /// The generic header's RESERVED octet (sent as 0; RFC 2408 3.2).
    pub reserved: u8,
    /// The typed body.
    #[serde(flatten)]
    pub body: PayloadBody,
}

impl Payload {
    /// A payload with a zero RESERVED octet.
    pub fn new(body: PayloadBody) -> Payload {
        Payload { reserved: 0, body }
    }

    /// The payload type.
    pub fn payload_type(&self) -> PayloadType {
        self.body.payload_type()
    }

    /// True when any RESERVED field of this payload is non-zero: the generic
    /// header's, and those of nested Proposal and Transform payloads and of
    /// NAT-OA. RFC 2408 5.3 step 2: such a message is discarded (the engine
    /// may answer PAYLOAD-MALFORMED or BAD-PROPOSAL-SYNTAX).
    pub fn has_nonzero_reserved(&self) -> bool {
        self.reserved != 0 || self.body.has_nonzero_reserved()
    }

    /// Parses a raw payload into a typed one.
    pub fn from_raw(raw: &RawPayload<'_>) -> Result<Payload, Error> {
        // The body parser counts from 0; shift its errors to absolute offsets.
        let body = PayloadBody::read(raw.payload_type, &mut Reader::new(raw.body))
            .map_err(|e| e.shifted(raw.offset + GENERIC_HEADER_LEN))?;
        Ok(Payload {
            reserved: raw.reserved,
            body,
        })
    }

    /// Bytes on the wire, generic header included.
    pub fn buffer_len(&self) -> usize {
        GENERIC_HEADER_LEN + self.body.buffer_len()
    }

    /// Appends generic header and body; `next` is the type of the following
    /// payload (or None).
    pub fn emit(&self, next: PayloadType, out: &mut Vec<u8>) -> Result<(), Error> {
        let what = self.payload_type().what();
        emit_with_header(out, next.into(), self.reserved, what, |out| {
            self.body.emit(out)
        })
    }
}

/// Writes a generic payload header, the body from `body`, then patches the
/// Payload Length. On error `out` is left as it was.
pub(crate) fn emit_with_header(
    out: &mut Vec<u8>,
    next: u8,
    reserved: u8,
    what: &'static str,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<(), Error> {
    let start = out.len();
    out.put_u8(next);
    out.put_u8(reserved);
    out.put_u16(0);
    let result = body(out).and_then(|()| {
        u16::try_from(out.len() - start).map_err(|_| Error::Malformed {
            what,
            offset: start,
            reason: "payload longer than 65535 bytes",
        })
    });
    match result {
        Ok(len) => {
            if let Some(field) = out.get_mut(start + 2..start + 4) {
                field.copy_from_slice(&len.to_be_bytes());
            }
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// A typed payload chain (RFC 2408 3.2) and any padding after it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct PayloadChain {
    /// The payloads in order. Emit writes each Next Payload field from the
    /// following payload.
    pub payloads: Vec<Payload>,
    /// Bytes after the last payload (empty unless parsed with a [`Padding`]
    /// rule that allows them, or added before encryption).
    #[serde(serialize_with = "super::hex_serde::bytes")]
    pub padding: Vec<u8>,
}

impl PayloadChain {
    /// A chain without padding.
    pub fn new(payloads: Vec<Payload>) -> PayloadChain {
        PayloadChain {
            payloads,
            padding: Vec::new(),
        }
    }

    /// Parses a whole chain from `bytes` (for example decrypted plaintext),
    /// starting with a payload of type `first` (the header's Next Payload).
    /// Error offsets are relative to `bytes`.
    pub fn parse(
        first: PayloadType,
        bytes: &[u8],
        padding: Padding,
    ) -> Result<PayloadChain, Error> {
        PayloadChain::read(first, Reader::new(bytes), padding)
    }

    /// Parses the rest of `reader` as a chain.
    pub fn read(
        first: PayloadType,
        reader: Reader<'_>,
        padding: Padding,
    ) -> Result<PayloadChain, Error> {
        let mut walk = RawPayloads::from_reader(first, reader, padding);
        let mut payloads = Vec::new();
        for raw in walk.by_ref() {
            payloads.push(Payload::from_raw(&raw?)?);
        }
        Ok(PayloadChain {
            payloads,
            padding: walk.padding().to_vec(),
        })
    }

    /// Type of the first payload, for the header's Next Payload field.
    pub fn first_type(&self) -> PayloadType {
        self.payloads
            .first()
            .map_or(PayloadType::None, Payload::payload_type)
    }

    /// True when any payload has a non-zero RESERVED field.
    pub fn has_nonzero_reserved(&self) -> bool {
        self.payloads.iter().any(Payload::has_nonzero_reserved)
    }

    /// Bytes the chain and its padding take on the wire.
    pub fn buffer_len(&self) -> usize {
        self.payloads.iter().map(Payload::buffer_len).sum::<usize>() + self.padding.len()
    }

    /// Appends the chain and its padding. On error `out` is left as it was.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        let mut types = self.payloads.iter().map(Payload::payload_type).skip(1);
        for payload in &self.payloads {
            let next = types.next().unwrap_or(PayloadType::None);
            if let Err(e) = payload.emit(next, out) {
                out.truncate(start);
                return Err(e);
            }
        }
        out.put_slice(&self.padding);
        Ok(())
    }

    /// The chain as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.emit(&mut out)?;
        Ok(out)
    }
}

macro_rules! impl_from_body {
    ($($variant:ident),+) => {$(
        impl From<$variant> for PayloadBody {
            fn from(body: $variant) -> PayloadBody {
                PayloadBody::$variant(body)
            }
        }
        impl From<$variant> for Payload {
            fn from(body: $variant) -> Payload {
                Payload::new(PayloadBody::$variant(body))
            }
        }
    )+};
}

impl_from_body!(
    SecurityAssociation,
    KeyExchange,
    Identification,
    Certificate,
    CertificateRequest,
    Hash,
    Signature,
    Nonce,
    Notification,
    Delete,
    VendorId,
    NatDiscovery,
    NatOriginalAddress
);

impl From<PayloadBody> for Payload {
    fn from(body: PayloadBody) -> Payload {
        Payload::new(body)
    }
}
