//! A whole ISAKMP message: header plus payload chain or ciphertext.

use serde::Serialize;

use super::header::{Flags, HEADER_LEN, Header, Packet};
use super::payload::{Padding, Payload, PayloadChain, PayloadType};
use crate::Error;
use crate::codec::{Reader, Writer};

/// What follows the header.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Body {
    /// E flag clear: the payloads, parsed.
    Payloads(PayloadChain),
    /// E flag set: the ciphertext, untouched (RFC 2408 3.1). The IKE engine
    /// decrypts it and calls [`PayloadChain::parse`] with `next_payload` and
    /// [`Padding::Zeros`] (RFC 2409 Appendix B pads to the block size).
    Encrypted {
        /// The header's Next Payload: type of the first encrypted payload.
        next_payload: PayloadType,
        /// Everything after the header.
        #[serde(serialize_with = "super::hex_serde::bytes")]
        ciphertext: Vec<u8>,
    },
}

/// An ISAKMP message (RFC 2408 3.1-3.2) as owned values.
///
/// Emit writes the header's Next Payload from the body, its Length from the
/// total, and its E flag from the body variant (set for
/// [`Body::Encrypted`], clear for [`Body::Payloads`]); so `parse(emit(m))`
/// equals `m` once `m.header.flags` agrees with the body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Message {
    /// Header fields.
    pub header: Header,
    /// Payloads or ciphertext.
    pub body: Body,
}

impl Message {
    /// A plaintext message.
    pub fn new(header: Header, payloads: Vec<Payload>) -> Message {
        Message {
            header,
            body: Body::Payloads(PayloadChain::new(payloads)),
        }
    }

    /// An encrypted message: `next_payload` is the type of the first payload
    /// inside `ciphertext` ([`PayloadChain::first_type`] of the plaintext).
    pub fn encrypted(header: Header, next_payload: PayloadType, ciphertext: Vec<u8>) -> Message {
        Message {
            header,
            body: Body::Encrypted {
                next_payload,
                ciphertext,
            },
        }
    }

    /// Parses a message that must fill `bytes` exactly, with no padding after
    /// the last payload (RFC 2408 5.1).
    pub fn parse(bytes: &[u8]) -> Result<Message, Error> {
        Message::parse_with(bytes, Padding::Forbidden)
    }

    /// Parses a message, accepting what `padding` allows after the last
    /// payload of a plaintext chain (RFC 2408 3.6 lets senders pad the
    /// message to 4 octets). Offsets in errors are from the start of `bytes`.
    pub fn parse_with(bytes: &[u8], padding: Padding) -> Result<Message, Error> {
        let packet = Packet::new_checked(bytes)?;
        let header = Header::parse(&packet)?;
        let next_payload = packet.next_payload();
        let mut r = Reader::new(bytes);
        r.take(HEADER_LEN, "ISAKMP header")?;
        let body = if header.flags.encryption() {
            Body::Encrypted {
                next_payload,
                ciphertext: r.rest().to_vec(),
            }
        } else {
            Body::Payloads(PayloadChain::read(next_payload, r, padding)?)
        };
        Ok(Message { header, body })
    }

    /// The payloads of a plaintext message (empty when encrypted).
    pub fn payloads(&self) -> &[Payload] {
        match &self.body {
            Body::Payloads(chain) => &chain.payloads,
            Body::Encrypted { .. } => &[],
        }
    }

    /// True when any RESERVED field of a plaintext payload is non-zero
    /// (RFC 2408 5.3 step 2).
    pub fn has_nonzero_reserved(&self) -> bool {
        match &self.body {
            Body::Payloads(chain) => chain.has_nonzero_reserved(),
            Body::Encrypted { .. } => false,
        }
    }

    /// Bytes the message takes on the wire (the value of its Length field).
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match &self.body {
                Body::Payloads(chain) => chain.buffer_len(),
                Body::Encrypted { ciphertext, .. } => ciphertext.len(),
            }
    }

    /// Appends the message. On error `out` is left as it was.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        let mut header = self.header.clone();
        let (next_payload, encrypted) = match &self.body {
            Body::Payloads(chain) => (chain.first_type(), false),
            Body::Encrypted { next_payload, .. } => (*next_payload, true),
        };
        header.flags = header.flags.with(Flags::ENCRYPTION, encrypted);
        header.emit(next_payload, 0, out);
        let body = match &self.body {
            Body::Payloads(chain) => chain.emit(out),
            Body::Encrypted { ciphertext, .. } => {
                out.put_slice(ciphertext);
                Ok(())
            }
        };
        let length = body.and_then(|()| {
            u32::try_from(out.len() - start).map_err(|_| Error::Malformed {
                what: "ISAKMP message",
                offset: start,
                reason: "message longer than 2^32-1 bytes",
            })
        });
        match length {
            Ok(length) => {
                if let Some(field) = out.get_mut(start + 24..start + HEADER_LEN) {
                    field.copy_from_slice(&length.to_be_bytes());
                }
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// The message as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.emit(&mut out)?;
        Ok(out)
    }
}
