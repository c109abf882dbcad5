//! The Notify answer to a rejected message: one Notification payload (RFC 2408 3.14, built as
//! 5.14 says) in an Informational exchange (RFC 2408 4.8), emitted with `realm-wire`'s types.
//!
//! This module only builds values; it never decides whether to answer (that is
//! [`Rejection::response`], see the [`checks`](super::checks) policy table) and never sends.
//! [`reply`] builds the unprotected Informational only when the policy says
//! `Notify(Unprotected)`; under an ISAKMP SA the engine wraps [`notification`] in HDR*, HASH(1)
//! (RFC 2409 5.7) itself.
//!
//! The payload, field by field (RFC 2408 5.14 "when creating a Notification Payload"):
//! - DOI 1, the IPsec DOI (RFC 2407 4.6.3), as IKE peers (strongSwan, racoon) send it;
//! - Protocol-ID ISAKMP: these are errors about the ISAKMP message itself (RFC 2408 3.14:
//!   "The Protocol Identifier, in this case, is ISAKMP");
//! - SPI: the offending message's cookie pair, 16 octets (RFC 2408 3.14: for ISAKMP the SPI Size
//!   "MAY be from zero (0) to sixteen (16)" and a receiver ignores the content; the pair is what
//!   RFC 3706 DPD and the ISAKMP Delete (3.15) carry, and lets a log line name the SA);
//! - Notification Data: RFC 2408 3.14 leaves it DOI-specific and RFC 2407 defines none for the
//!   error types, so it is empty, except the one octet of the offending payload type for
//!   INVALID-PAYLOAD-TYPE and the four octets of the offending Message ID for
//!   INVALID-MESSAGE-ID: Realm's choice, after IKEv2's UNSUPPORTED_CRITICAL_PAYLOAD and
//!   INVALID_MESSAGE_ID (RFC 7296 3.10.1). Receivers that do not expect data ignore it.
//!
//! The Informational's header carries the offending message's cookies unchanged (RFC 2408 3.14:
//! a phase 1 notification "is identified by the Initiator and Responder cookie pair in the
//! ISAKMP Header"), version 1.0, no flags, and a Message ID the caller draws from its RNG
//! (RFC 2408 4.8: "independent of IVs of other on-going communication").

use realm_wire::isakmp::{
    Cookie, DOI_IPSEC, ExchangeType, Header, Message, Notification, NotifyMessageType, ProtocolId,
};

use super::checks::{Protection, Rejection, Response};

/// The Notification payload for `rejection`, or `None` when the check names no Notify type or
/// there was no header to take the cookies from. Built whatever the policy says.
pub fn notification(rejection: &Rejection) -> Option<Notification> {
    let header = rejection.header.as_ref()?;
    let message_type = rejection.notify_type()?;
    let data = match message_type {
        NotifyMessageType::InvalidPayloadType => rejection
            .payload_type
            .map(|t| vec![u8::from(t)])
            .unwrap_or_default(),
        NotifyMessageType::InvalidMessageId => header.message_id.to_be_bytes().to_vec(),
        _ => Vec::new(),
    };
    Some(about_sa(
        header.initiator_cookie,
        header.responder_cookie,
        message_type,
        data,
    ))
}

/// A Notification of `message_type` about the ISAKMP SA (or phase 1 exchange) with this cookie
/// pair, laid out as the module doc says.
pub fn about_sa(
    initiator_cookie: Cookie,
    responder_cookie: Cookie,
    message_type: NotifyMessageType,
    data: Vec<u8>,
) -> Notification {
    Notification::new(
        DOI_IPSEC,
        ProtocolId::Isakmp,
        message_type,
        [initiator_cookie, responder_cookie].concat(),
        data,
    )
}

/// An unprotected Informational (RFC 2408 4.8) carrying `message_type` about this cookie pair,
/// for refusals the engine makes itself (no connection, no acceptable proposal) rather than
/// the s5 checks (see [`reply`]).
pub fn unprotected(
    initiator_cookie: Cookie,
    responder_cookie: Cookie,
    message_type: NotifyMessageType,
    message_id: u32,
) -> Message {
    let header = Header::new(
        ExchangeType::Informational,
        initiator_cookie,
        responder_cookie,
        message_id,
    );
    let notification = about_sa(initiator_cookie, responder_cookie, message_type, Vec::new());
    informational(&header, notification, message_id)
}

/// An unprotected Informational exchange (RFC 2408 4.8) answering a message with header
/// `offending`, carrying `notification`, with Message ID `message_id`.
pub fn informational(offending: &Header, notification: Notification, message_id: u32) -> Message {
    let header = Header::new(
        ExchangeType::Informational,
        offending.initiator_cookie,
        offending.responder_cookie,
        message_id,
    );
    Message::new(header, vec![notification.into()])
}

/// The unprotected answer the policy asks for, or `None` when it says drop or asks for a
/// protected answer (which the engine builds under the ISAKMP SA from [`notification`]).
/// Emit it with [`Message::to_bytes`] and send it to the address and port the offending
/// message came from.
pub fn reply(rejection: &Rejection, message_id: u32) -> Option<Message> {
    if rejection.response != Response::Notify(Protection::Unprotected) {
        return None;
    }
    let header = rejection.header.as_ref()?;
    Some(informational(header, notification(rejection)?, message_id))
}
