//! The protected Informational exchange under an ISAKMP SA (RFC 2409 section 5.7), one message
//! with no answer:
//!
//! ```text
//! HDR*, HASH(1), N/D          HASH(1) = prf(SKEYID_a, M-ID | N/D)
//! ```
//!
//! `N/D` is the Notification and Delete payloads after the HASH payload exactly as on the wire
//! (generic headers included, padding excluded), as in Quick Mode. [`seal`] draws a fresh random
//! non-zero Message ID (RFC 2408 3.1, 4.8; RFC 2409 5.7: the M-ID is this exchange's own) and
//! encrypts under the ISAKMP SA with the IV RFC 2409 Appendix B derives for that Message ID,
//! `hash(last phase 1 CBC block | M-ID)` ([`Iv::phase2`], as for a Quick Mode's first message).
//! [`open`] runs [`checks::check`] and [`checks::check_decrypted`] with the ISAKMP SA
//! established and Informational the only exchange accepted, decrypts, requires HASH first,
//! verifies HASH(1) in constant time (INVALID-HASH-INFORMATION, RFC 2408 5.12, on mismatch) and
//! then accepts only Notification and Delete payloads, at least one.
//!
//! The HDR*/HASH layer is Quick Mode's ([`super::quick_mode`]'s `encrypt_message` and
//! `receive`, called with the exchange type), so its failures arrive as
//! [`InformationalError::Protected`] carrying the [`QuickModeError`] and its Notify.
//!
//! **No unprotected form.** Once the ISAKMP SA exists an Informational MUST be sent under its
//! protection (RFC 2408 4.8, 5.14; RFC 2409 5.7): [`checks::check`] refuses an unencrypted one
//! ([`checks::Check::Flags`]), and one with only the A (authentication only) flag, which
//! [`checks`] lets through, is refused here as not encrypted: Realm neither sends nor accepts it.
//! Before keys exist, [`crate::isakmp::notify`] builds the unprotected answer.
//!
//! **Replays.** RFC 2409 5.7 has the sender pick a Message ID unique to the exchange, but names
//! no receiver check, and [`open`] keeps no state: a replayed Informational opens again with
//! the same Message ID. Replaying one does little (a Delete names an SA already gone; an
//! INITIAL-CONTACT is processed again), and DPD is protected by its own sequence numbers
//! (RFC 3706 5.5, [`super::dpd`]). An engine that wants to drop replays remembers the Message
//! IDs of recent Informationals per ISAKMP SA.
//!
//! **No answers.** [`InformationalError::notify`] names the Notify an error maps to, for the
//! log: an Informational is never answered with a Notify ([`checks`] policy, against notify
//! loops between peers).
//!
//! Builders: [`delete_isakmp_sa`] and [`delete_esp`] (RFC 2408 3.15), [`initial_contact`]
//! (RFC 2407 4.6.3.3), and DPD's R-U-THERE / R-U-THERE-ACK ([`ru_there`], [`ru_there_ack`],
//! recognised by [`dpd_message`], RFC 3706 5.3) with its Vendor ID ([`dpd_vendor_id`], 5.1).

use realm_wire::isakmp::{
    DOI_IPSEC, Delete, ExchangeType, Notification, NotifyMessageType, Payload, PayloadBody,
    PayloadChain, PayloadType, ProtocolId, VendorId,
};

use super::keys::Iv;
use super::main_mode::IsakmpSa;
use super::quick_mode::{
    QuickModeError, checks_message_id, encrypt_message, prf_a, random_message_id, receive, verify,
};
use crate::crypto::Crypto;
use crate::isakmp::checks;

/// A received protected Informational exchange, authenticated by HASH(1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Informational {
    /// Its Message ID.
    pub message_id: u32,
    /// The Notification payloads, in order.
    pub notifications: Vec<Notification>,
    /// The Delete payloads, in order.
    pub deletes: Vec<Delete>,
}

/// Why a protected Informational was not accepted, or ours could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InformationalError {
    /// The HDR*, HASH layer shared with Quick Mode refused it: the RFC 2408 5.1-5.3 checks,
    /// cookies not the SA's, no E flag, decryption, HASH not first, HASH(1) not verifying
    /// ([`QuickModeError::HashMismatch`]), or on our side crypto or emitting.
    #[error("{0}")]
    Protected(QuickModeError),
    /// Neither a Notification nor a Delete after HASH(1) (RFC 2409 5.7: `HDR*, HASH(1), N/D`).
    #[error("no Notification or Delete payload")]
    Empty,
    /// A payload other than Notification or Delete after HASH(1).
    #[error("payload {0:?} not accepted in an Informational exchange")]
    UnexpectedPayload(PayloadType),
}

impl InformationalError {
    /// The Notify message type this error maps to, or `None` when there is none. For the log
    /// only: an Informational is never answered (see the module docs).
    pub fn notify(&self) -> Option<NotifyMessageType> {
        match self {
            Self::Protected(e) => e.notify(),
            Self::Empty => Some(NotifyMessageType::PayloadMalformed),
            Self::UnexpectedPayload(_) => Some(NotifyMessageType::InvalidPayloadType),
        }
    }
}

impl From<QuickModeError> for InformationalError {
    fn from(e: QuickModeError) -> Self {
        Self::Protected(e)
    }
}

/// `HDR*, HASH(1), N/D` under `sa` carrying `payloads` (Notification and Delete payloads, at
/// least one): a fresh random non-zero Message ID and the datagram to send.
pub fn seal<C: Crypto>(
    crypto: &C,
    sa: &IsakmpSa,
    payloads: Vec<PayloadBody>,
) -> Result<(u32, Vec<u8>), InformationalError> {
    check_payloads(payloads.iter())?;
    let rest: Vec<Payload> = payloads.into_iter().map(Payload::new).collect();
    // RFC 2408 4.8, RFC 2409 5.7: a Message ID of its own, random; zero is phase 1's.
    let message_id = random_message_id(crypto)?;
    let rest_bytes = PayloadChain::new(rest.clone())
        .to_bytes()
        .map_err(QuickModeError::from)?;
    let hash1 = prf_a(crypto, &sa.keys, &[&message_id.to_be_bytes(), &rest_bytes])?;
    let iv = phase2_iv(crypto, sa, message_id)?;
    let (bytes, _) = encrypt_message(
        crypto,
        sa,
        ExchangeType::Informational,
        message_id,
        &iv,
        hash1,
        rest,
    )?;
    Ok((message_id, bytes))
}

/// Checks, decrypts and authenticates a protected Informational received under `sa`.
pub fn open<C: Crypto>(
    crypto: &C,
    sa: &IsakmpSa,
    datagram: &[u8],
) -> Result<Informational, InformationalError> {
    let message_id = checks_message_id(datagram)?;
    let iv = phase2_iv(crypto, sa, message_id)?;
    // RFC 2408 5.2 step 6 accepts any Message ID in an Informational ([`checks`]).
    let received = receive(
        crypto,
        sa,
        ExchangeType::Informational,
        datagram,
        message_id,
        checks::MessageIdState::Unused,
        &iv,
    )?;
    // RFC 2409 5.7: HASH(1) = prf(SKEYID_a, M-ID | N/D).
    let expected = prf_a(
        crypto,
        &sa.keys,
        &[&message_id.to_be_bytes(), &received.hashed],
    )?;
    verify(&expected, &received.hash)?;
    check_payloads(received.payloads.iter().map(|p| &p.body))?;
    let mut info = Informational {
        message_id,
        notifications: Vec::new(),
        deletes: Vec::new(),
    };
    for p in received.payloads {
        match p.body {
            PayloadBody::Notification(n) => info.notifications.push(n),
            PayloadBody::Delete(d) => info.deletes.push(d),
            other => return Err(InformationalError::UnexpectedPayload(other.payload_type())),
        }
    }
    Ok(info)
}

/// Notification and Delete payloads only, at least one.
fn check_payloads<'a>(
    mut payloads: impl Iterator<Item = &'a PayloadBody>,
) -> Result<(), InformationalError> {
    let mut any = false;
    payloads.try_for_each(|p| match p {
        PayloadBody::Notification(_) | PayloadBody::Delete(_) => {
            any = true;
            Ok(())
        }
        other => Err(InformationalError::UnexpectedPayload(other.payload_type())),
    })?;
    if any {
        Ok(())
    } else {
        Err(InformationalError::Empty)
    }
}

/// RFC 2409 Appendix B: the IV of a phase 2 exchange's first message, here the only one.
fn phase2_iv<C: Crypto>(
    crypto: &C,
    sa: &IsakmpSa,
    message_id: u32,
) -> Result<Iv, InformationalError> {
    Iv::phase2(
        crypto,
        sa.choice.proposal.hash,
        sa.choice.proposal.cipher,
        &sa.last_phase1_block,
        message_id,
    )
    .map_err(|e| InformationalError::Protected(QuickModeError::Crypto(e)))
}

/// CKY-I | CKY-R, the 16-octet SPI naming an ISAKMP SA (RFC 2408 3.15; RFC 3706 5.3).
fn cookie_pair(sa: &IsakmpSa) -> Vec<u8> {
    [sa.initiator_cookie, sa.responder_cookie].concat()
}

/// The Delete of the ISAKMP SA `sa` itself: protocol ISAKMP, SPI Size 16, the one SPI
/// CKY-I | CKY-R (RFC 2408 3.15: "the Initiator and Responder cookie pair"). Send it under
/// `sa`, then forget `sa`.
pub fn delete_isakmp_sa(sa: &IsakmpSa) -> PayloadBody {
    PayloadBody::Delete(Delete::isakmp_sa(sa.initiator_cookie, sa.responder_cookie))
}

/// The Delete of ESP SAs: protocol ESP, SPI Size 4, one SPI each (RFC 2408 3.15; RFC 2407
/// 4.6.3: IPsec DOI). Name the SAs by the SPIs of the SAs **we receive on** (our inbound
/// SPIs): RFC 2408 3.15 has the sender delete the SAs it holds, and the peer finds its
/// outbound SA by that SPI.
pub fn delete_esp(spis: &[u32]) -> PayloadBody {
    PayloadBody::Delete(Delete::new(
        DOI_IPSEC,
        ProtocolId::IpsecEsp,
        4,
        spis.iter().map(|s| s.to_be_bytes().to_vec()).collect(),
    ))
}

/// INITIAL-CONTACT (RFC 2407 4.6.3.3, status 24578): sent under the first ISAKMP SA with a
/// peer to say we hold no older SAs with it (the peer may delete its old ones). Protocol
/// ISAKMP and the SA's cookie pair as the SPI (RFC 2407 4.6.3.3: "the SPI is the ISAKMP
/// cookie pair"); no data.
pub fn initial_contact(sa: &IsakmpSa) -> PayloadBody {
    PayloadBody::Notification(Notification::new(
        DOI_IPSEC,
        ProtocolId::Isakmp,
        NotifyMessageType::InitialContact,
        cookie_pair(sa),
        Vec::new(),
    ))
}

/// The DPD Vendor ID (RFC 3706 5.1: `AFCAD71368A1F1C96B8696FC77570100`, version 1.0) to send
/// in Main Mode; a peer that sends it back ([`VendorId::is_dpd`]) may be sent R-U-THERE.
pub fn dpd_vendor_id() -> PayloadBody {
    PayloadBody::VendorId(VendorId::dpd())
}

/// An R-U-THERE (RFC 3706 5.3, notify 36136): protocol ISAKMP, SPI = CKY-I | CKY-R,
/// `sequence` as the four data octets. Sent in a protected Informational ([`seal`]).
pub fn ru_there(sa: &IsakmpSa, sequence: u32) -> PayloadBody {
    PayloadBody::Notification(Notification::dpd(
        false,
        sa.initiator_cookie,
        sa.responder_cookie,
        sequence,
    ))
}

/// The R-U-THERE-ACK (RFC 3706 5.3, notify 36137) answering an R-U-THERE with `sequence`: the
/// same sequence number (RFC 3706 5.5).
pub fn ru_there_ack(sa: &IsakmpSa, sequence: u32) -> PayloadBody {
    PayloadBody::Notification(Notification::dpd(
        true,
        sa.initiator_cookie,
        sa.responder_cookie,
        sequence,
    ))
}

/// A DPD notify, recognised by [`dpd_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpdMessage {
    /// R-U-THERE with its sequence number: answer with [`ru_there_ack`].
    RuThere(u32),
    /// R-U-THERE-ACK with its sequence number: hand to [`super::dpd::Dpd::handle_ack`].
    RuThereAck(u32),
}

/// `n` as an R-U-THERE or R-U-THERE-ACK for `sa`, or `None` when it is not one: another notify
/// type, a protocol other than ISAKMP, an SPI other than this SA's CKY-I | CKY-R, or data other
/// than the four octets of a sequence number (RFC 3706 5.3).
pub fn dpd_message(sa: &IsakmpSa, n: &Notification) -> Option<DpdMessage> {
    if n.protocol_id != ProtocolId::Isakmp || n.spi != cookie_pair(sa) {
        return None;
    }
    let sequence = n.dpd_sequence()?;
    match n.message_type {
        NotifyMessageType::RUThere => Some(DpdMessage::RuThere(sequence)),
        NotifyMessageType::RUThereAck => Some(DpdMessage::RuThereAck(sequence)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_payloads_wants_notify_or_delete() {
        let n = delete_esp(&[1]);
        assert_eq!(check_payloads([&n].into_iter()), Ok(()));
        assert_eq!(
            check_payloads(std::iter::empty()),
            Err(InformationalError::Empty)
        );
        let v = dpd_vendor_id();
        assert_eq!(
            check_payloads([&n, &v].into_iter()),
            Err(InformationalError::UnexpectedPayload(PayloadType::VendorId))
        );
    }

    #[test]
    fn delete_esp_has_four_octet_spis() {
        let PayloadBody::Delete(d) = delete_esp(&[0x0102_0304, 0xa0b0_c0d0]) else {
            panic!("not a Delete");
        };
        assert_eq!(d.protocol_id, ProtocolId::IpsecEsp);
        assert_eq!(d.spi_size, 4);
        assert_eq!(d.spis, vec![vec![1, 2, 3, 4], vec![0xa0, 0xb0, 0xc0, 0xd0]]);
    }

    #[test]
    fn dpd_vendor_id_is_rfc_3706() {
        let PayloadBody::VendorId(v) = dpd_vendor_id() else {
            panic!("not a Vendor ID");
        };
        assert_eq!(
            hex::encode(&v.data),
            "afcad71368a1f1c96b8696fc77570100",
            "RFC 3706 5.1"
        );
        assert!(v.is_dpd());
    }
}
