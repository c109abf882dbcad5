//! ISAKMP (RFC 2408) messages as IKEv1 (RFC 2409) uses them, with the IPsec
//! DOI (RFC 2407), NAT traversal (RFC 3947) and dead peer detection (RFC 3706).
//!
//! This module owns the bytes of an ISAKMP message: the fixed header
//! ([`Packet`] view, [`Header`] repr), the generic payload chain
//! ([`PayloadChain`], [`RawPayloads`]) and a typed body for every payload of
//! RFC 2408 3.4-3.16 plus NAT-D and NAT-OA, down to the data attributes of
//! transforms ([`DataAttribute`]), with value helpers for the IKE phase 1 and
//! IPsec DOI phase 2 attribute classes. It does no cryptography: when the
//! E(ncryption) flag is set the body is handed over as ciphertext
//! ([`Body::Encrypted`]), and the IKE engine parses the decrypted plaintext
//! with [`PayloadChain::parse`].
//!
//! Under the crate's no-panic contract ([crate docs](crate)), every code this module
//! does not name is kept (`Unknown(..)`), reserved fields are kept as received
//! and reported through [`Payload::has_nonzero_reserved`], so parse-then-emit
//! reproduces the input byte for byte. Emitting computes every next-payload,
//! count and length field; it fails only when a value does not fit its field
//! (for example a payload longer than 65535 bytes), and then writes nothing.
//!
//! The RSIP gateway demultiplexes IKE by initiator cookie (RFC 3104 section 4)
//! with [`initiator_cookie`], which reads nothing else.
//!
//! ```
//! use realm_wire::isakmp::*;
//!
//! // An initiator's first Main Mode message: one ISAKMP proposal, one transform.
//! let transform = Transform::new(1, KEY_IKE, vec![
//!     IkeAttribute::EncryptionAlgorithm(EncryptionAlgorithm::AesCbc).to_attribute(),
//!     IkeAttribute::KeyLength(128).to_attribute(),
//!     IkeAttribute::HashAlgorithm(HashAlgorithm::Sha1).to_attribute(),
//!     IkeAttribute::AuthenticationMethod(AuthenticationMethod::PreSharedKey).to_attribute(),
//!     IkeAttribute::GroupDescription(GroupDescription::Modp2048).to_attribute(),
//! ]);
//! let sa = SecurityAssociation::ipsec(vec![
//!     Proposal::new(1, ProtocolId::Isakmp, vec![], vec![transform]),
//! ]);
//! let cookie = [1, 2, 3, 4, 5, 6, 7, 8];
//! let header = Header::new(ExchangeType::IdentityProtection, cookie, [0; 8], 0);
//! let msg = Message::new(header, vec![sa.into(), VendorId::dpd().into()]);
//! let wire = msg.to_bytes()?;
//!
//! // The gateway only needs the cookie; the IKE engine parses everything.
//! assert_eq!(initiator_cookie(&wire), Some(cookie));
//! let parsed = Message::parse(&wire)?;
//! assert_eq!(parsed, msg);
//! assert_eq!(parsed.payloads()[1].payload_type(), PayloadType::VendorId);
//! # Ok::<(), realm_wire::Error>(())
//! ```

mod attribute;
mod bodies;
mod header;
mod message;
mod payload;
mod sa;
#[cfg(test)]
mod tests;

pub use attribute::{
    AttributeValue, AuthenticationAlgorithm, AuthenticationMethod, DataAttribute,
    EncapsulationMode, EncryptionAlgorithm, GroupDescription, GroupType, HashAlgorithm,
    IkeAttribute, IkeAttributeType, IpsecAttribute, IpsecAttributeType, LifeType,
};
pub use bodies::{
    CertEncoding, Certificate, CertificateRequest, DPD_VENDOR_ID, Delete, Hash, IdType, IdValue,
    Identification, KeyExchange, NAT_T_RFC3947_VENDOR_ID, NatDiscovery, NatOriginalAddress, Nonce,
    Notification, NotifyMessageType, Signature, VendorId,
};
pub use header::{Cookie, ExchangeType, Flags, HEADER_LEN, Header, Packet, Version};
pub use message::{Body, Message};
pub use payload::{
    GENERIC_HEADER_LEN, Padding, Payload, PayloadBody, PayloadChain, PayloadType, RawPayload,
    RawPayloads,
};
pub use sa::{
    AhTransformId, DOI_IPSEC, DOI_ISAKMP, EspTransformId, IpcompTransformId, KEY_IKE, Proposal,
    ProtocolId, SIT_IDENTITY_ONLY, SIT_INTEGRITY, SIT_SECRECY, SecurityAssociation, Transform,
};

/// The initiator cookie of an ISAKMP message, for the gateway's demultiplexer
/// (RFC 3104 section 4: the initiator cookie is in the clear in every IKE
/// message of both phases, in both directions).
///
/// `isakmp` is the UDP payload on port 500; on port 4500 strip the four-byte
/// non-ESP marker first (RFC 3948 2.2). Returns `None` when the bytes are
/// shorter than the 28-byte ISAKMP header; nothing else is checked, so this
/// costs one length test and one copy.
///
/// IKEv1 has no initiator/responder flag in its header (IKEv2 does). A reply
/// from the responder is recognised by its initiator cookie, which is the
/// cookie the initiator chose, unchanged in both directions (RFC 2408 3.1,
/// 2.5.3). The responder cookie is all zero only in the initiator's first
/// message of a phase 1 exchange; see [`responder_cookie`].
pub fn initiator_cookie(isakmp: &[u8]) -> Option<Cookie> {
    cookie_at(isakmp, 0)
}

/// The responder cookie of an ISAKMP message, under the same rules as
/// [`initiator_cookie`]. All zero in the first message of a phase 1 exchange,
/// before the responder has chosen its cookie (RFC 2408 3.1).
pub fn responder_cookie(isakmp: &[u8]) -> Option<Cookie> {
    cookie_at(isakmp, 8)
}

fn cookie_at(isakmp: &[u8], at: usize) -> Option<Cookie> {
    if isakmp.len() < HEADER_LEN {
        return None;
    }
    isakmp.get(at..at + 8)?.try_into().ok()
}

/// Lower-case hex, for JSON output of byte strings.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// `serialize_with` helpers: byte strings as hex.
pub(crate) mod hex_serde {
    use serde::Serializer;

    pub(crate) fn bytes<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_hex(v))
    }

    pub(crate) fn list<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|b| super::to_hex(b)))
    }
}
