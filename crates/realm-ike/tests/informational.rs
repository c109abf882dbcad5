//! The protected Informational exchange (RFC 2409 5.7) between two ISAKMP SAs that Main Mode
//! established in memory, and the RFC 3706 DPD state machine on a fake clock.
//!
//! What is sealed on one side opens on the other to exactly the payloads sent; the datagram is
//! checked by `checks::check` in the receiver's context, decrypted here with an independently
//! derived IV (RFC 2409 Appendix B: SHA-256(last phase 1 block | M-ID)), and HASH(1) is
//! recomputed with aws-lc-rs's `hmac` over `M-ID | N/D` as on the wire. Messages forged here
//! with that formula open; every single-byte change of a sealed datagram, another SA, an
//! unprotected Informational, a missing HASH and a payload other than N/D are refused with the
//! error and Notify named. A replay opens again: RFC 2409 5.7 names no receiver check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use aws_lc_rs::{digest, hmac};
use realm_ike::ikev1::dpd::{Dpd, DpdAction, FIRST_RETRANSMIT};
use realm_ike::ikev1::informational::{
    self, DpdMessage, Informational, InformationalError, delete_esp, delete_isakmp_sa, dpd_message,
    initial_contact, ru_there, ru_there_ack,
};
use realm_ike::ikev1::main_mode::IsakmpSa;
use realm_ike::ikev1::quick_mode::QuickModeError;
use realm_ike::isakmp::checks::{self, Check, Context, SaState, Verdict};
use realm_ike::isakmp::notify;
use realm_ike::{CipherAlgorithm, Crypto};
use realm_wire::isakmp::{
    Body, DOI_IPSEC, Delete, ExchangeType, Flags, Hash, Header, Message, Notification,
    NotifyMessageType, Padding, Payload, PayloadBody, PayloadChain, PayloadType, ProtocolId,
    RawPayloads, VendorId,
};

mod common;
use common::{SeededCrypto, phase1};

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign().as_ref().to_vec()
}

/// RFC 2409 Appendix B with SHA-256 and AES (16-byte blocks): hash(last phase 1 block | M-ID).
fn iv(sa: &IsakmpSa, message_id: u32) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(sa.last_phase1_block.as_bytes());
    ctx.update(&message_id.to_be_bytes());
    ctx.finish().as_ref()[..16].to_vec()
}

/// Checks `bytes` as the receiver would, decrypts with the independently derived IV, and
/// returns the Message ID, the HASH data and the payloads after HASH as on the wire.
fn decrypt_here(sa: &IsakmpSa, crypto: &SeededCrypto, bytes: &[u8]) -> (u32, Vec<u8>, Vec<u8>) {
    let ctx = Context::new(SaState::Established, &checks::IKEV1_EXCHANGES);
    let Verdict::Accept(m) = checks::check(bytes, &ctx) else {
        panic!("checks refused our own message")
    };
    assert_eq!(m.header.exchange_type, ExchangeType::Informational);
    assert!(m.header.flags.encryption());
    assert_ne!(m.header.message_id, 0, "RFC 2408 3.1: zero is phase 1's");
    assert_eq!(
        [m.header.initiator_cookie, m.header.responder_cookie],
        [sa.initiator_cookie, sa.responder_cookie]
    );
    let Body::Encrypted {
        next_payload,
        ciphertext,
    } = &m.body
    else {
        panic!("not encrypted")
    };
    assert_eq!(*next_payload, PayloadType::Hash, "HASH(1) first");
    let mut plain = ciphertext.clone();
    crypto
        .decrypt_cbc(
            CipherAlgorithm::Aes128Cbc,
            sa.encryption_key.expose(),
            &iv(sa, m.header.message_id),
            &mut plain,
        )
        .unwrap();
    let Verdict::Accept(_) =
        checks::check_decrypted(&m.header, *next_payload, &plain, Padding::Zeros, &ctx)
    else {
        panic!("plaintext refused")
    };
    let raws: Vec<_> = RawPayloads::new(*next_payload, &plain, Padding::Zeros)
        .map(Result::unwrap)
        .collect();
    let end = raws.last().map(|r| r.offset + 4 + r.body.len()).unwrap();
    let hash_end = 4 + raws[0].body.len();
    (
        m.header.message_id,
        raws[0].body.to_vec(),
        plain[hash_end..end].to_vec(),
    )
}

/// Seals `payloads` with the initiator's SA, checks the datagram independently (IV, HASH(1))
/// and opens it with the responder's.
fn round_trip(
    payloads: impl FnOnce(&IsakmpSa) -> Vec<PayloadBody>,
) -> (Informational, IsakmpSa, IsakmpSa) {
    let (isa, rsa, ci, cr) = phase1(11);
    let payloads = payloads(&isa);
    let (mid, bytes) = informational::seal(&ci, &isa, payloads.clone()).unwrap();
    let (wire_mid, hash, after_hash) = decrypt_here(&rsa, &cr, &bytes);
    assert_eq!(wire_mid, mid);
    let wanted = PayloadChain::new(payloads.into_iter().map(Payload::new).collect())
        .to_bytes()
        .unwrap();
    assert_eq!(after_hash, wanted, "N/D as given, generic headers included");
    // RFC 2409 5.7: HASH(1) = prf(SKEYID_a, M-ID | N/D).
    assert_eq!(
        hash,
        hmac_sha256(
            rsa.keys.skeyid_a().expose(),
            &[&mid.to_be_bytes(), &after_hash]
        )
    );
    let info = informational::open(&cr, &rsa, &bytes).unwrap();
    assert_eq!(info.message_id, mid);
    (info, isa, rsa)
}

/// `HDR*, [HASH(1),] rest` forged here: IV and HASH(1) by the RFC formulas, not by realm-ike.
fn forge(
    sa: &IsakmpSa,
    crypto: &SeededCrypto,
    mid: u32,
    with_hash: bool,
    rest: Vec<Payload>,
) -> Vec<u8> {
    let rest_bytes = PayloadChain::new(rest.clone()).to_bytes().unwrap();
    let mut payloads = Vec::new();
    if with_hash {
        let h = hmac_sha256(
            sa.keys.skeyid_a().expose(),
            &[&mid.to_be_bytes(), &rest_bytes],
        );
        payloads.push(Payload::new(PayloadBody::Hash(Hash::new(h))));
    }
    payloads.extend(rest);
    let first = payloads[0].payload_type();
    let mut plain = PayloadChain::new(payloads).to_bytes().unwrap();
    plain.resize(plain.len().div_ceil(16) * 16, 0);
    crypto
        .encrypt_cbc(
            CipherAlgorithm::Aes128Cbc,
            sa.encryption_key.expose(),
            &iv(sa, mid),
            &mut plain,
        )
        .unwrap();
    let mut header = Header::new(
        ExchangeType::Informational,
        sa.initiator_cookie,
        sa.responder_cookie,
        mid,
    );
    header.flags = Flags::empty().with(Flags::ENCRYPTION, true);
    Message::encrypted(header, first, plain).to_bytes().unwrap()
}

#[test]
fn delete_of_esp_sas_and_the_isakmp_sa_opens_to_exactly_it() {
    let (info, isa, rsa) = round_trip(|isa| {
        vec![
            delete_esp(&[0xc1c1_0001, 0xc1c1_0002, 0x0000_0100]),
            delete_isakmp_sa(isa),
        ]
    });
    assert!(info.notifications.is_empty());
    assert_eq!(
        info.deletes,
        vec![
            Delete::new(
                DOI_IPSEC,
                ProtocolId::IpsecEsp,
                4,
                vec![
                    vec![0xc1, 0xc1, 0, 1],
                    vec![0xc1, 0xc1, 0, 2],
                    vec![0, 0, 1, 0]
                ]
            ),
            // RFC 2408 3.15: protocol ISAKMP, SPI Size 16, the cookie pair.
            Delete::new(
                DOI_IPSEC,
                ProtocolId::Isakmp,
                16,
                vec![[isa.initiator_cookie, isa.responder_cookie].concat()]
            ),
        ]
    );
    assert_eq!(
        [isa.initiator_cookie, isa.responder_cookie],
        [rsa.initiator_cookie, rsa.responder_cookie]
    );
}

#[test]
fn initial_contact_opens_to_exactly_it() {
    let (info, _, rsa) = round_trip(|isa| vec![initial_contact(isa)]);
    assert!(info.deletes.is_empty());
    assert_eq!(
        info.notifications,
        vec![Notification::new(
            DOI_IPSEC,
            ProtocolId::Isakmp,
            NotifyMessageType::InitialContact,
            [rsa.initiator_cookie, rsa.responder_cookie].concat(),
            vec![],
        )]
    );
    assert_eq!(u16::from(info.notifications[0].message_type), 24578);
}

#[test]
fn r_u_there_and_its_ack_go_both_ways_and_drive_dpd() {
    let (isa, rsa, ci, cr) = phase1(12);
    let t0 = test_clock();
    let mut dpd = Dpd::new(
        Duration::from_secs(10),
        Duration::from_secs(30),
        t0,
        0x0bad_cafe,
    );
    let t = t0 + Duration::from_secs(10);
    let Some(DpdAction::SendRuThere { sequence }) = dpd.handle_timeout(t) else {
        panic!("no R-U-THERE after the delay")
    };
    assert_eq!(sequence, 0x0bad_cafe);

    // Initiator -> responder: R-U-THERE.
    let (_, bytes) = informational::seal(&ci, &isa, vec![ru_there(&isa, sequence)]).unwrap();
    let info = informational::open(&cr, &rsa, &bytes).unwrap();
    assert_eq!(info.notifications.len(), 1);
    let n = &info.notifications[0];
    assert_eq!(u16::from(n.message_type), 36136);
    assert_eq!(n.protocol_id, ProtocolId::Isakmp);
    assert_eq!(n.spi, [rsa.initiator_cookie, rsa.responder_cookie].concat());
    assert_eq!(n.data, 0x0bad_cafe_u32.to_be_bytes());
    let Some(DpdMessage::RuThere(seq)) = dpd_message(&rsa, n) else {
        panic!("not recognised as R-U-THERE")
    };
    let mut peer = Dpd::new(Duration::from_secs(10), Duration::from_secs(30), t0, 7);
    let echo = peer.answer(t, seq);
    assert_eq!(echo, sequence);

    // Responder -> initiator: R-U-THERE-ACK, same sequence number.
    let (_, bytes) = informational::seal(&cr, &rsa, vec![ru_there_ack(&rsa, echo)]).unwrap();
    let info = informational::open(&ci, &isa, &bytes).unwrap();
    let n = &info.notifications[0];
    assert_eq!(u16::from(n.message_type), 36137);
    assert_eq!(dpd_message(&isa, n), Some(DpdMessage::RuThereAck(sequence)));
    assert!(dpd.handle_ack(t + Duration::from_secs(1), sequence));
    assert!(!dpd.probing());
    assert_eq!(dpd.poll_timeout(), Some(t + Duration::from_secs(11)));
}

#[test]
fn dpd_message_wants_this_sas_cookies_and_four_octets() {
    let (isa, _, _, _) = phase1(13);
    let (other, _, _, _) = phase1(14);
    let PayloadBody::Notification(n) = ru_there(&other, 5) else {
        panic!()
    };
    assert_eq!(dpd_message(&isa, &n), None, "another SA's cookies");
    let PayloadBody::Notification(mut n) = ru_there(&isa, 5) else {
        panic!()
    };
    assert_eq!(dpd_message(&isa, &n), Some(DpdMessage::RuThere(5)));
    n.data.push(0);
    assert_eq!(dpd_message(&isa, &n), None, "five data octets");
    let PayloadBody::Notification(ic) = initial_contact(&isa) else {
        panic!()
    };
    assert_eq!(dpd_message(&isa, &ic), None);
}

#[test]
fn a_message_forged_with_the_rfc_formulas_opens() {
    let (_, rsa, _, cr) = phase1(15);
    let n = Notification::dpd(false, rsa.initiator_cookie, rsa.responder_cookie, 99);
    let bytes = forge(&rsa, &cr, 0x1234_5678, true, vec![n.clone().into()]);
    let info = informational::open(&cr, &rsa, &bytes).unwrap();
    assert_eq!(info.message_id, 0x1234_5678);
    assert_eq!(info.notifications, vec![n]);
}

fn protected(e: &InformationalError) -> &QuickModeError {
    match e {
        InformationalError::Protected(q) => q,
        other => panic!("not a Protected error: {other:?}"),
    }
}

#[test]
fn a_flipped_ciphertext_byte_is_an_invalid_hash() {
    let (isa, rsa, ci, cr) = phase1(16);
    let (_, mut bytes) = informational::seal(&ci, &isa, vec![initial_contact(&isa)]).unwrap();
    // Ciphertext byte 16 (block 1): CBC garbles plaintext block 1 and flips byte 32 (block 2),
    // all inside the 32-byte HASH(1) data (plaintext 4..36); the payload chain is intact.
    bytes[28 + 16] ^= 0x01;
    let e = informational::open(&cr, &rsa, &bytes).unwrap_err();
    assert_eq!(protected(&e), &QuickModeError::HashMismatch);
    assert_eq!(e.notify(), Some(NotifyMessageType::InvalidHashInformation));
}

#[test]
fn every_single_byte_change_is_refused() {
    let (isa, rsa, ci, cr) = phase1(17);
    let (_, bytes) =
        informational::seal(&ci, &isa, vec![delete_esp(&[1, 2]), initial_contact(&isa)]).unwrap();
    assert!(informational::open(&cr, &rsa, &bytes).is_ok());
    for at in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut b = bytes.clone();
            b[at] ^= bit;
            assert!(
                informational::open(&cr, &rsa, &b).is_err(),
                "byte {at} ^ {bit:#x} opened"
            );
        }
    }
}

#[test]
fn another_sa_is_refused() {
    let (isa, _, ci, _) = phase1(18);
    let (other_i, other_r, _, co) = phase1(40); // not 19: the seed is used as `seed | 1`
    let (_, bytes) = informational::seal(&ci, &isa, vec![initial_contact(&isa)]).unwrap();
    // Other cookies: not this SA's exchange; nothing to answer.
    let e = informational::open(&co, &other_r, &bytes).unwrap_err();
    assert_eq!(protected(&e), &QuickModeError::WrongExchange);
    assert_eq!(e.notify(), None);
    // Same cookies, other keys: the plaintext is garbage, or at best HASH(1) fails.
    let mut impostor = other_i.clone();
    impostor.initiator_cookie = isa.initiator_cookie;
    impostor.responder_cookie = isa.responder_cookie;
    let e = informational::open(&co, &impostor, &bytes).unwrap_err();
    assert!(
        matches!(
            protected(&e),
            QuickModeError::Undecryptable(_) | QuickModeError::HashMismatch
        ),
        "{e:?}"
    );
    assert!(matches!(
        e.notify(),
        Some(NotifyMessageType::PayloadMalformed | NotifyMessageType::InvalidHashInformation)
    ));
}

#[test]
fn an_unprotected_informational_under_the_sa_is_dropped() {
    // RFC 2408 4.8: once the ISAKMP SA exists, Informationals go under its protection.
    let (isa, rsa, _, cr) = phase1(20);
    let header = Header::new(
        ExchangeType::Informational,
        isa.initiator_cookie,
        isa.responder_cookie,
        0x4242,
    );
    let PayloadBody::Notification(n) = initial_contact(&isa) else {
        panic!()
    };
    let bytes = notify::informational(&header, n, 0x4242)
        .to_bytes()
        .unwrap();
    let e = informational::open(&cr, &rsa, &bytes).unwrap_err();
    let QuickModeError::Rejected(r) = protected(&e) else {
        panic!("{e:?}")
    };
    assert_eq!(r.check, Check::Flags);
    assert_eq!(e.notify(), Some(NotifyMessageType::InvalidFlags));
}

#[test]
fn an_authentication_only_informational_is_refused() {
    // RFC 2408 3.1's A flag (HASH but no encryption) passes the header checks for a keyed
    // Informational; Realm neither sends nor accepts it.
    let (isa, rsa, _, cr) = phase1(24);
    let mid: u32 = 0x5151_5151;
    let n = Notification::dpd(true, isa.initiator_cookie, isa.responder_cookie, 3);
    let rest = PayloadChain::new(vec![n.clone().into()])
        .to_bytes()
        .unwrap();
    let h = hmac_sha256(rsa.keys.skeyid_a().expose(), &[&mid.to_be_bytes(), &rest]);
    let mut header = Header::new(
        ExchangeType::Informational,
        isa.initiator_cookie,
        isa.responder_cookie,
        mid,
    );
    header.flags = Flags::empty().with(Flags::AUTHENTICATION_ONLY, true);
    let bytes = Message::new(
        header,
        vec![Payload::new(PayloadBody::Hash(Hash::new(h))), n.into()],
    )
    .to_bytes()
    .unwrap();
    let ctx = Context::new(SaState::Established, &checks::IKEV1_EXCHANGES);
    assert!(matches!(checks::check(&bytes, &ctx), Verdict::Accept(_)));
    let e = informational::open(&cr, &rsa, &bytes).unwrap_err();
    assert_eq!(protected(&e), &QuickModeError::NotEncrypted);
    assert_eq!(e.notify(), Some(NotifyMessageType::InvalidFlags));
}

#[test]
fn a_missing_hash_is_refused() {
    let (_, rsa, _, cr) = phase1(21);
    let n = Notification::dpd(true, rsa.initiator_cookie, rsa.responder_cookie, 1);
    let bytes = forge(&rsa, &cr, 0x0101_0101, false, vec![n.into()]);
    let e = informational::open(&cr, &rsa, &bytes).unwrap_err();
    assert!(matches!(protected(&e), QuickModeError::Grammar(_)), "{e:?}");
    assert_eq!(e.notify(), Some(NotifyMessageType::PayloadMalformed));
}

#[test]
fn only_notification_and_delete_follow_the_hash() {
    let (isa, rsa, ci, cr) = phase1(22);
    // Sealing refuses them ...
    assert_eq!(
        informational::seal(&ci, &isa, vec![VendorId::dpd().into()]).unwrap_err(),
        InformationalError::UnexpectedPayload(PayloadType::VendorId)
    );
    assert_eq!(
        informational::seal(&ci, &isa, vec![]).unwrap_err(),
        InformationalError::Empty
    );
    // ... and opening refuses them with a valid HASH(1).
    let bytes = forge(&rsa, &cr, 0x0202_0202, true, vec![VendorId::dpd().into()]);
    let e = informational::open(&cr, &rsa, &bytes).unwrap_err();
    assert_eq!(
        e,
        InformationalError::UnexpectedPayload(PayloadType::VendorId)
    );
    assert_eq!(e.notify(), Some(NotifyMessageType::InvalidPayloadType));
    let bytes = forge(&rsa, &cr, 0x0303_0303, true, vec![]);
    assert_eq!(
        informational::open(&cr, &rsa, &bytes).unwrap_err(),
        InformationalError::Empty
    );
}

#[test]
fn a_replay_opens_again_with_the_same_message_id() {
    // RFC 2409 5.7: the sender's Message ID is unique to the exchange, but no receiver check is
    // named; `open` is stateless, so dropping replays is the engine's (by Message ID), and DPD
    // relies on its sequence numbers (RFC 3706 5.5).
    let (isa, rsa, ci, cr) = phase1(23);
    let (mid, bytes) = informational::seal(&ci, &isa, vec![delete_esp(&[7])]).unwrap();
    let first = informational::open(&cr, &rsa, &bytes).unwrap();
    let again = informational::open(&cr, &rsa, &bytes).unwrap();
    assert_eq!(first, again);
    assert_eq!(again.message_id, mid);
    // A fresh seal of the same payloads draws another Message ID.
    let (mid2, _) = informational::seal(&ci, &isa, vec![delete_esp(&[7])]).unwrap();
    assert_ne!(mid2, mid);
}

// --- DPD state machine, on a fake clock -----------------------------------------------------

#[allow(clippy::disallowed_methods)] // the fake clock's origin; Dpd never reads a clock
fn test_clock() -> Instant {
    Instant::now()
}

const DELAY: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(30);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn dpd_idle_sends_r_u_there_after_the_delay() {
    let t0 = test_clock();
    let mut dpd = Dpd::new(DELAY, TIMEOUT, t0, 500);
    assert_eq!(dpd.poll_timeout(), Some(t0 + DELAY));
    assert_eq!(dpd.handle_timeout(t0 + secs(9)), None);
    assert_eq!(
        dpd.handle_timeout(t0 + DELAY),
        Some(DpdAction::SendRuThere { sequence: 500 })
    );
    assert!(dpd.probing());
    assert_eq!(dpd.poll_timeout(), Some(t0 + DELAY + FIRST_RETRANSMIT));
}

#[test]
fn dpd_traffic_postpones_the_r_u_there() {
    let t0 = test_clock();
    let mut dpd = Dpd::new(DELAY, TIMEOUT, t0, 1);
    dpd.on_inbound(t0 + secs(6));
    assert_eq!(dpd.poll_timeout(), Some(t0 + secs(16)));
    assert_eq!(dpd.handle_timeout(t0 + DELAY), None);
    // An older timestamp does not move the wait back.
    dpd.on_inbound(t0 + secs(2));
    assert_eq!(dpd.poll_timeout(), Some(t0 + secs(16)));
    assert_eq!(
        dpd.handle_timeout(t0 + secs(16)),
        Some(DpdAction::SendRuThere { sequence: 1 })
    );
    // Traffic during a probe ends it too (RFC 3706 5.3: proof of liveness).
    dpd.on_inbound(t0 + secs(17));
    assert!(!dpd.probing());
    assert_eq!(dpd.poll_timeout(), Some(t0 + secs(27)));
}

#[test]
fn dpd_ack_with_the_right_sequence_clears_a_wrong_one_is_ignored() {
    let t0 = test_clock();
    let mut dpd = Dpd::new(DELAY, TIMEOUT, t0, 0xffff_fffe);
    assert!(!dpd.handle_ack(t0, 0xffff_fffe), "nothing outstanding");
    assert_eq!(
        dpd.handle_timeout(t0 + DELAY),
        Some(DpdAction::SendRuThere {
            sequence: 0xffff_fffe
        })
    );
    // Retransmissions: each with the next number (wrapping), the waits doubling.
    let t1 = t0 + DELAY + FIRST_RETRANSMIT;
    assert_eq!(dpd.handle_timeout(t1 - secs(1)), None);
    assert_eq!(
        dpd.handle_timeout(t1),
        Some(DpdAction::SendRuThere {
            sequence: 0xffff_ffff
        })
    );
    let t2 = t1 + FIRST_RETRANSMIT * 2;
    assert_eq!(dpd.poll_timeout(), Some(t2));
    assert_eq!(
        dpd.handle_timeout(t2),
        Some(DpdAction::SendRuThere { sequence: 0 })
    );
    // Numbers this probe did not send are ignored.
    for wrong in [0xffff_fffd, 1, 500, 0x7fff_ffff] {
        assert!(!dpd.handle_ack(t2, wrong), "{wrong:#x} accepted");
        assert!(dpd.probing());
    }
    // An ACK of an earlier R-U-THERE of this probe is as good.
    assert!(dpd.handle_ack(t2 + secs(1), 0xffff_ffff));
    assert!(!dpd.probing());
    assert_eq!(dpd.poll_timeout(), Some(t2 + secs(1) + DELAY));
    // The probe is over: its numbers no longer count (a replayed ACK).
    assert!(!dpd.handle_ack(t2 + secs(2), 0));
    // The next probe continues the numbering.
    assert_eq!(
        dpd.handle_timeout(t2 + secs(1) + DELAY),
        Some(DpdAction::SendRuThere { sequence: 1 })
    );
}

#[test]
fn dpd_without_an_ack_declares_the_peer_dead_at_the_timeout() {
    let t0 = test_clock();
    let mut dpd = Dpd::new(DELAY, TIMEOUT, t0, 10);
    let first = t0 + DELAY;
    assert_eq!(
        dpd.handle_timeout(first),
        Some(DpdAction::SendRuThere { sequence: 10 })
    );
    let mut sent = vec![10];
    let mut now = first;
    loop {
        let next = dpd.poll_timeout().unwrap();
        assert!(next > now && next <= first + TIMEOUT);
        now = next;
        match dpd.handle_timeout(now) {
            Some(DpdAction::SendRuThere { sequence }) => sent.push(sequence),
            Some(DpdAction::PeerDead) => break,
            None => panic!("poll_timeout named a time with nothing to do"),
        }
    }
    assert_eq!(now, first + TIMEOUT);
    // 2, 4, 8, 16 s after each other: sent at +0, +2, +6, +14 (+30 is the deadline).
    assert_eq!(sent, vec![10, 11, 12, 13]);
    assert!(dpd.is_dead());
    assert_eq!(dpd.poll_timeout(), None);
    assert_eq!(dpd.handle_timeout(now + secs(100)), None);
    assert!(!dpd.handle_ack(now, 13), "dead stays dead");
}

#[test]
fn dpd_delay_zero_never_acts() {
    let t0 = test_clock();
    let mut dpd = Dpd::new(Duration::ZERO, TIMEOUT, t0, 1);
    assert!(!dpd.is_active());
    assert_eq!(dpd.poll_timeout(), None);
    for s in [0, 1, 10, 1_000_000] {
        assert_eq!(dpd.handle_timeout(t0 + secs(s)), None);
    }
}

#[test]
fn dpd_answer_echoes_and_only_fresh_r_u_theres_prove_liveness() {
    let t0 = test_clock();
    let mut dpd = Dpd::new(DELAY, TIMEOUT, t0, 1);
    assert_eq!(dpd.answer(t0 + secs(5), 0xffff_ffff), 0xffff_ffff);
    assert_eq!(dpd.poll_timeout(), Some(t0 + secs(15)));
    // A replay (same number) is answered but is no proof of liveness.
    assert_eq!(dpd.answer(t0 + secs(8), 0xffff_ffff), 0xffff_ffff);
    assert_eq!(dpd.poll_timeout(), Some(t0 + secs(15)));
    // The peer's next number (wrapping) is.
    assert_eq!(dpd.answer(t0 + secs(9), 0), 0);
    assert_eq!(dpd.poll_timeout(), Some(t0 + secs(19)));
}
