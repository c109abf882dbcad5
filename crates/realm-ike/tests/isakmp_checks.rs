//! RFC 2408 5.1-5.3 checks, cookies (2.5.3) and the Notify answer (3.14, 4.8).
//!
//! Each check has a test that takes a valid message built with `realm-wire`, changes exactly the
//! field the check looks at, and asserts the check, the Notify type the RFC names and Realm's
//! answer-or-drop policy. Property tests feed arbitrary bytes and mutated valid messages.
// Test code: unwrap/panic report failures; `Instant::now` only starts the fake clock handed to
// the cookie jar (which itself never reads a clock).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use realm_ike::AwsLcCrypto;
use realm_ike::isakmp::checks::{
    self, AnswerWhen, Check, Context, IKEV1_EXCHANGES, MessageIdState, Protection, Rejection,
    Response, SaState, Verdict,
};
use realm_ike::isakmp::cookie::{CookieError, CookieJar, CookieSecret};
use realm_ike::isakmp::notify;
use realm_wire::isakmp::{
    AuthenticationMethod, Body, Cookie, DOI_IPSEC, Delete, EncryptionAlgorithm, ExchangeType,
    Flags, GroupDescription, HashAlgorithm, Header, IkeAttribute, KEY_IKE, KeyExchange, Message,
    Nonce, Notification, NotifyMessageType, Padding, PayloadBody, PayloadType, Proposal,
    ProtocolId, SecurityAssociation, Transform, VendorId, Version,
};

const ICOOKIE: Cookie = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
const RCOOKIE: Cookie = [0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01];

// Header field offsets (RFC 2408 3.1, Figure 2).
const NEXT_PAYLOAD: usize = 16;
const VERSION: usize = 17;
const EXCHANGE: usize = 18;
const FLAGS: usize = 19;
const MESSAGE_ID: usize = 20;
const LENGTH: usize = 24;
/// The first payload's generic header, right after the 28-byte header.
const FIRST: usize = 28;

// ---------------------------------------------------------------------------------------------
// Valid messages, built with realm-wire.

fn sa_payload() -> SecurityAssociation {
    let transform = Transform::new(
        1,
        KEY_IKE,
        vec![
            IkeAttribute::EncryptionAlgorithm(EncryptionAlgorithm::AesCbc).to_attribute(),
            IkeAttribute::KeyLength(128).to_attribute(),
            IkeAttribute::HashAlgorithm(HashAlgorithm::Sha1).to_attribute(),
            IkeAttribute::AuthenticationMethod(AuthenticationMethod::PreSharedKey).to_attribute(),
            IkeAttribute::GroupDescription(GroupDescription::Modp2048).to_attribute(),
        ],
    );
    SecurityAssociation::ipsec(vec![Proposal::new(
        1,
        ProtocolId::Isakmp,
        vec![],
        vec![transform],
    )])
}

/// Main Mode message 1: SA + DPD vendor ID, responder cookie zero, Message ID 0.
fn main_mode_1() -> Message {
    let header = Header::new(ExchangeType::IdentityProtection, ICOOKIE, [0; 8], 0);
    Message::new(header, vec![sa_payload().into(), VendorId::dpd().into()])
}

/// Main Mode message 3: KE + Nonce, both cookies.
fn main_mode_3() -> Message {
    let header = Header::new(ExchangeType::IdentityProtection, ICOOKIE, RCOOKIE, 0);
    Message::new(
        header,
        vec![
            KeyExchange::new(vec![0x42; 256]).into(),
            Nonce::new(vec![0x17; 32]).into(),
        ],
    )
}

/// Main Mode message 5: encrypted (HDR*, IDii, HASH_I).
fn main_mode_5() -> Message {
    let header = Header::new(ExchangeType::IdentityProtection, ICOOKIE, RCOOKIE, 0);
    Message::encrypted(header, PayloadType::Identification, vec![0x5a; 48])
}

/// A Quick Mode message: HDR*, HASH(1), ... as ciphertext.
fn quick_mode(message_id: u32) -> Message {
    let header = Header::new(ExchangeType::QuickMode, ICOOKIE, RCOOKIE, message_id);
    Message::encrypted(header, PayloadType::Hash, vec![0xa5; 64])
}

/// An unprotected Informational during phase 1 (a peer's NO-PROPOSAL-CHOSEN).
fn informational_plain() -> Message {
    let header = Header::new(ExchangeType::Informational, ICOOKIE, RCOOKIE, 0x0bad_cafe);
    let n = Notification::new(
        DOI_IPSEC,
        ProtocolId::Isakmp,
        NotifyMessageType::NoProposalChosen,
        vec![],
        vec![],
    );
    Message::new(header, vec![n.into()])
}

/// A protected Informational under the ISAKMP SA.
fn informational_encrypted() -> Message {
    let header = Header::new(ExchangeType::Informational, ICOOKIE, RCOOKIE, 0x0bad_cafe);
    Message::encrypted(header, PayloadType::Hash, vec![0x3c; 32])
}

fn wire(msg: &Message) -> Vec<u8> {
    msg.to_bytes().unwrap()
}

fn ctx(sa: SaState) -> Context<'static> {
    Context::new(sa, &IKEV1_EXCHANGES)
}

const PHASE1_MAIN: SaState = SaState::Phase1 {
    exchange: ExchangeType::IdentityProtection,
    keyed: false,
};
const PHASE1_MAIN_KEYED: SaState = SaState::Phase1 {
    exchange: ExchangeType::IdentityProtection,
    keyed: true,
};

fn rejected(bytes: &[u8], ctx: &Context<'_>) -> Rejection {
    match checks::check(bytes, ctx) {
        Verdict::Reject(r) => r,
        Verdict::Accept(m) => panic!("accepted {m:?}"),
    }
}

fn accepted(bytes: &[u8], ctx: &Context<'_>) -> Message {
    match checks::check(bytes, ctx) {
        Verdict::Accept(m) => m,
        Verdict::Reject(r) => panic!("rejected {r:?}"),
    }
}

/// Sets the header's Length field to the buffer's length (after a mutation changed it).
fn fix_length(bytes: &mut [u8]) {
    let len = u32::try_from(bytes.len()).unwrap();
    bytes[LENGTH..LENGTH + 4].copy_from_slice(&len.to_be_bytes());
}

/// A plaintext message whose single payload has type `first` and body `body`, framed by hand.
fn one_payload(header: &Header, first: PayloadType, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    header.emit(first, 0, &mut out);
    out.push(0); // next payload: none
    out.push(0); // reserved
    out.extend_from_slice(&u16::try_from(4 + body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    fix_length(&mut out);
    out
}

fn assert_rejection(
    r: &Rejection,
    check: Check,
    notify: Option<NotifyMessageType>,
    response: Response,
) {
    assert_eq!(r.check, check, "{r:?}");
    assert_eq!(r.notify_type(), notify, "{r:?}");
    assert_eq!(r.response, response, "{r:?}");
}

const ANSWER: Response = Response::Notify(Protection::Unprotected);
const ANSWER_PROTECTED: Response = Response::Notify(Protection::IsakmpSa);

// ---------------------------------------------------------------------------------------------
// Valid messages are accepted.

#[test]
fn valid_plaintext_messages_are_accepted_with_their_parsed_payloads() {
    for (msg, sa) in [
        (main_mode_1(), SaState::None),
        (main_mode_1(), PHASE1_MAIN), // a retransmitted first message
        (main_mode_3(), PHASE1_MAIN),
        (informational_plain(), PHASE1_MAIN),
        (informational_plain(), PHASE1_MAIN_KEYED),
    ] {
        let bytes = wire(&msg);
        let got = accepted(&bytes, &ctx(sa));
        assert_eq!(got, msg, "{sa:?}");
        assert_eq!(got, Message::parse(&bytes).unwrap());
    }
}

#[test]
fn valid_encrypted_messages_are_accepted_as_ciphertext() {
    let mut in_progress = ctx(SaState::Established);
    in_progress.message_id = MessageIdState::InProgress(ExchangeType::QuickMode);
    let mut auth_only = informational_plain();
    auth_only.header.flags = Flags(Flags::AUTHENTICATION_ONLY);
    for (msg, c) in [
        (main_mode_5(), ctx(PHASE1_MAIN_KEYED)),
        (quick_mode(0x1234_5678), ctx(SaState::Established)),
        (quick_mode(0x1234_5678), in_progress),
        (informational_encrypted(), ctx(SaState::Established)),
        (informational_encrypted(), ctx(PHASE1_MAIN_KEYED)),
        (auth_only, ctx(SaState::Established)),
    ] {
        let bytes = wire(&msg);
        let got = accepted(&bytes, &c);
        // `Message::encrypted` leaves the E flag to emit; compare with the parse of the bytes.
        assert_eq!(got, Message::parse(&bytes).unwrap());
        assert_eq!(got.body, msg.body);
        assert_eq!(
            got.header.flags.encryption(),
            matches!(msg.body, Body::Encrypted { .. })
        );
    }
}

#[test]
fn decrypted_plaintext_is_checked_with_zero_padding() {
    let header = quick_mode(9).header;
    let chain = realm_wire::isakmp::PayloadChain::new(vec![
        realm_wire::isakmp::Hash::new(vec![1; 20]).into(),
        Nonce::new(vec![2; 16]).into(),
    ]);
    let mut plaintext = chain.to_bytes().unwrap();
    plaintext.extend_from_slice(&[0, 0, 0, 3]); // pad, count in the last byte (RFC 2409 5.3)
    let c = ctx(SaState::Established);
    let got =
        match checks::check_decrypted(&header, PayloadType::Hash, &plaintext, Padding::Zeros, &c) {
            Verdict::Accept(m) => m,
            Verdict::Reject(r) => panic!("{r:?}"),
        };
    assert_eq!(got.header, header);
    assert_eq!(got.payloads(), chain.payloads.as_slice());
}

// ---------------------------------------------------------------------------------------------
// One test per check: a valid message changed in exactly that field.

#[test]
fn header_truncated_is_dropped_without_a_header() {
    let bytes = wire(&main_mode_1());
    for len in [0, 1, 27] {
        let r = rejected(&bytes[..len], &ctx(SaState::None));
        assert_rejection(&r, Check::HeaderTruncated, None, Response::Drop);
        assert_eq!(r.header, None);
        assert!(notify::notification(&r).is_none());
    }
}

#[test]
fn length_mismatch_is_unequal_payload_lengths_and_dropped() {
    let good = wire(&main_mode_1());
    // A datagram longer than the Length field, one shorter, and a Length below 28.
    let mut longer = good.clone();
    longer.push(0);
    let shorter = good[..good.len() - 1].to_vec();
    let mut tiny = good.clone();
    tiny[LENGTH..LENGTH + 4].copy_from_slice(&27u32.to_be_bytes());
    for bytes in [longer, shorter, tiny] {
        let r = rejected(&bytes, &ctx(SaState::None));
        assert_rejection(
            &r,
            Check::Length,
            Some(NotifyMessageType::UnequalPayloadLengths),
            Response::Drop,
        );
        assert_eq!(r.offset, LENGTH);
        assert_eq!(r.header.as_ref().unwrap().initiator_cookie, ICOOKIE);
    }
}

#[test]
fn cookie_failures_are_invalid_cookie_and_always_dropped() {
    let invalid_cookie = Some(NotifyMessageType::InvalidCookie);
    // Zero initiator cookie.
    let mut m = main_mode_1();
    m.header.initiator_cookie = [0; 8];
    let r = rejected(&wire(&m), &ctx(SaState::None));
    assert_rejection(&r, Check::Cookie, invalid_cookie, Response::Drop);
    assert_eq!(r.offset, 0);
    // A responder cookie for no known SA, in phase 1, phase 2 and Informational.
    let mut m = main_mode_1();
    m.header.responder_cookie = RCOOKIE;
    for bytes in [
        wire(&m),
        wire(&quick_mode(5)),
        wire(&informational_plain()),
        wire(&informational_encrypted()),
    ] {
        let r = rejected(&bytes, &ctx(SaState::None));
        assert_rejection(&r, Check::Cookie, invalid_cookie, Response::Drop);
        assert_eq!(r.offset, 8);
    }
}

#[test]
fn major_version_is_answered_for_an_initial_message_only() {
    let mut bytes = wire(&main_mode_1());
    bytes[VERSION] = 0x20;
    let r = rejected(&bytes, &ctx(SaState::None));
    assert_rejection(
        &r,
        Check::MajorVersion,
        Some(NotifyMessageType::InvalidMajorVersion),
        ANSWER,
    );
    assert_eq!(r.offset, VERSION);
    // Version 0.1 (pre-RFC drafts) too.
    bytes[VERSION] = 0x01;
    assert_eq!(
        rejected(&bytes, &ctx(SaState::None)).check,
        Check::MajorVersion
    );
    // Within a known exchange: dropped.
    let mut bytes = wire(&main_mode_3());
    bytes[VERSION] = 0x20;
    let r = rejected(&bytes, &ctx(PHASE1_MAIN));
    assert_rejection(
        &r,
        Check::MajorVersion,
        Some(NotifyMessageType::InvalidMajorVersion),
        Response::Drop,
    );
}

#[test]
fn an_ikev2_initiator_hears_invalid_major_version_not_invalid_payload_type() {
    // IKE_SA_INIT: version 2.0, exchange 34, Next Payload 33 (SA), flag I (0x08). Step 3 is
    // checked before step 2 (documented deviation).
    let mut bytes = wire(&main_mode_1());
    bytes[NEXT_PAYLOAD] = 33;
    bytes[VERSION] = 0x20;
    bytes[EXCHANGE] = 34;
    bytes[FLAGS] = 0x08;
    let r = rejected(&bytes, &ctx(SaState::None));
    assert_rejection(
        &r,
        Check::MajorVersion,
        Some(NotifyMessageType::InvalidMajorVersion),
        ANSWER,
    );
}

#[test]
fn minor_version_is_invalid_minor_version() {
    let mut bytes = wire(&main_mode_1());
    bytes[VERSION] = 0x11;
    let r = rejected(&bytes, &ctx(SaState::None));
    assert_rejection(
        &r,
        Check::MinorVersion,
        Some(NotifyMessageType::InvalidMinorVersion),
        ANSWER,
    );
    assert_eq!(r.offset, VERSION);
}

#[test]
fn header_next_payload_is_invalid_payload_type_naming_the_type() {
    // Reserved (14), private use (200), Proposal (2, only inside an SA), NONE (0).
    for code in [14u8, 200, 2, 0] {
        let mut bytes = wire(&main_mode_1());
        bytes[NEXT_PAYLOAD] = code;
        let r = rejected(&bytes, &ctx(SaState::None));
        assert_rejection(
            &r,
            Check::NextPayload,
            Some(NotifyMessageType::InvalidPayloadType),
            ANSWER,
        );
        assert_eq!(r.offset, NEXT_PAYLOAD);
        assert_eq!(r.payload_type, Some(PayloadType::from(code)));
    }
}

#[test]
fn exchange_type_is_checked_against_support_and_sa_state() {
    let n = Some(NotifyMessageType::InvalidExchangeType);
    // Unknown cookies: only Main or Aggressive Mode may begin; the answer is a drop.
    for code in [7u8, 1, 3, 32, 255] {
        let mut bytes = wire(&main_mode_1());
        bytes[EXCHANGE] = code;
        let r = rejected(&bytes, &ctx(SaState::None));
        assert_rejection(&r, Check::ExchangeType, n, Response::Drop);
        assert_eq!(r.offset, EXCHANGE);
    }
    // Known exchange: Aggressive Mode inside a Main Mode exchange is answered.
    let mut bytes = wire(&main_mode_3());
    bytes[EXCHANGE] = u8::from(ExchangeType::Aggressive);
    assert_rejection(
        &rejected(&bytes, &ctx(PHASE1_MAIN)),
        Check::ExchangeType,
        n,
        ANSWER,
    );
    // Quick Mode before phase 1 is done.
    let r = rejected(&wire(&quick_mode(5)), &ctx(PHASE1_MAIN_KEYED));
    assert_rejection(&r, Check::ExchangeType, n, ANSWER_PROTECTED);
    // Main Mode on an established SA (retransmissions are answered before the checks).
    let r = rejected(&wire(&main_mode_5()), &ctx(SaState::Established));
    assert_rejection(&r, Check::ExchangeType, n, ANSWER_PROTECTED);
    // An exchange the context does not accept.
    let only_main = [ExchangeType::IdentityProtection];
    let aggressive = {
        let mut m = main_mode_1();
        m.header.exchange_type = ExchangeType::Aggressive;
        wire(&m)
    };
    let r = rejected(&aggressive, &Context::new(SaState::None, &only_main));
    assert_rejection(&r, Check::ExchangeType, n, Response::Drop);
}

#[test]
fn flags_are_invalid_flags() {
    let n = Some(NotifyMessageType::InvalidFlags);
    // Undefined bits.
    for bits in [0x08u8, 0x80, 0x10] {
        let mut bytes = wire(&main_mode_1());
        bytes[FLAGS] = bits;
        let r = rejected(&bytes, &ctx(SaState::None));
        assert_rejection(&r, Check::Flags, n, ANSWER);
        assert_eq!(r.offset, FLAGS);
    }
    // E without keys.
    let mut bytes = wire(&main_mode_3());
    bytes[FLAGS] = Flags::ENCRYPTION;
    assert_rejection(
        &rejected(&bytes, &ctx(PHASE1_MAIN)),
        Check::Flags,
        n,
        ANSWER,
    );
    // A outside an Informational.
    let mut bytes = wire(&main_mode_5());
    bytes[FLAGS] = Flags::AUTHENTICATION_ONLY;
    let r = rejected(&bytes, &ctx(PHASE1_MAIN_KEYED));
    assert_rejection(&r, Check::Flags, n, ANSWER_PROTECTED);
    // Quick Mode without E.
    let mut bytes = wire(&quick_mode(5));
    bytes[FLAGS] = 0;
    let r = rejected(&bytes, &ctx(SaState::Established));
    assert_rejection(&r, Check::Flags, n, ANSWER_PROTECTED);
    // An unprotected Informational once the SA is established: never answered.
    let r = rejected(&wire(&informational_plain()), &ctx(SaState::Established));
    assert_rejection(&r, Check::Flags, n, Response::Drop);
}

#[test]
fn message_id_is_invalid_message_id() {
    let n = Some(NotifyMessageType::InvalidMessageId);
    // Phase 1 with a Message ID.
    let mut bytes = wire(&main_mode_1());
    bytes[MESSAGE_ID..MESSAGE_ID + 4].copy_from_slice(&7u32.to_be_bytes());
    let r = rejected(&bytes, &ctx(SaState::None));
    assert_rejection(&r, Check::MessageId, n, ANSWER);
    assert_eq!(r.offset, MESSAGE_ID);
    // Quick Mode: zero, finished, or in use by another exchange.
    let established = ctx(SaState::Established);
    let r = rejected(&wire(&quick_mode(0)), &established);
    assert_rejection(&r, Check::MessageId, n, ANSWER_PROTECTED);
    for state in [
        MessageIdState::Completed,
        MessageIdState::InProgress(ExchangeType::NewGroupMode),
    ] {
        let mut c = established;
        c.message_id = state;
        let r = rejected(&wire(&quick_mode(0x1234_5678)), &c);
        assert_rejection(&r, Check::MessageId, n, ANSWER_PROTECTED);
    }
}

#[test]
fn payload_next_payload_is_invalid_payload_type_naming_the_type() {
    for code in [14u8, 3, 131] {
        let mut bytes = wire(&main_mode_1());
        bytes[FIRST] = code; // the SA payload's Next Payload (was Vendor ID)
        let r = rejected(&bytes, &ctx(SaState::None));
        assert_rejection(
            &r,
            Check::PayloadType,
            Some(NotifyMessageType::InvalidPayloadType),
            ANSWER,
        );
        assert_eq!(r.offset, FIRST);
        assert_eq!(r.payload_type, Some(PayloadType::from(code)));
    }
}

#[test]
fn draft_nat_t_payload_types_are_accepted_only_when_enabled() {
    let header = main_mode_3().header;
    let bytes = one_payload(&header, PayloadType::Unknown(130), &[9; 20]);
    let mut c = ctx(PHASE1_MAIN);
    assert_eq!(rejected(&bytes, &c).check, Check::NextPayload);
    c.draft_nat_t = true;
    let msg = accepted(&bytes, &c);
    assert!(matches!(
        msg.payloads()[0].body,
        PayloadBody::Raw {
            payload_type: PayloadType::Unknown(130),
            ..
        }
    ));
}

#[test]
fn payload_reserved_is_payload_malformed() {
    let mut bytes = wire(&main_mode_1());
    bytes[FIRST + 1] = 1;
    let r = rejected(&bytes, &ctx(SaState::None));
    assert_rejection(
        &r,
        Check::PayloadReserved,
        Some(NotifyMessageType::PayloadMalformed),
        ANSWER,
    );
    assert_eq!(r.offset, FIRST + 1);
    assert_eq!(r.payload_type, Some(PayloadType::SecurityAssociation));
}

#[test]
fn proposal_reserved_is_bad_proposal_syntax() {
    // SA body: DOI (4), situation (4), then the Proposal's generic header: next, RESERVED.
    let mut bytes = wire(&main_mode_1());
    let proposal_reserved = FIRST + 4 + 8 + 1;
    assert_eq!(bytes[proposal_reserved], 0);
    bytes[proposal_reserved] = 0x40;
    let r = rejected(&bytes, &ctx(SaState::None));
    assert_rejection(
        &r,
        Check::ProposalReserved,
        Some(NotifyMessageType::BadProposalSyntax),
        ANSWER,
    );
}

#[test]
fn payload_length_is_payload_malformed() {
    let good = wire(&main_mode_1());
    for length in [0u16, 3, u16::try_from(good.len()).unwrap()] {
        let mut bytes = good.clone();
        bytes[FIRST + 2..FIRST + 4].copy_from_slice(&length.to_be_bytes());
        let r = rejected(&bytes, &ctx(SaState::None));
        assert_rejection(
            &r,
            Check::PayloadLength,
            Some(NotifyMessageType::PayloadMalformed),
            ANSWER,
        );
        assert_eq!(r.offset, FIRST + 2, "length {length}");
    }
    // A message that ends inside a generic header.
    let header = main_mode_3().header;
    let mut bytes = Vec::new();
    header.emit(PayloadType::Nonce, 0, &mut bytes);
    bytes.extend_from_slice(&[0, 0]);
    fix_length(&mut bytes);
    let r = rejected(&bytes, &ctx(PHASE1_MAIN));
    assert_eq!(r.check, Check::PayloadLength);
    assert_eq!(r.offset, FIRST);
}

#[test]
fn payload_body_layout_is_payload_malformed() {
    let header = main_mode_3().header;
    // A Notification body shorter than its 8 fixed octets; a Delete naming SPIs of size 0.
    let delete_zero_spi = [0, 0, 0, 1, 3, 0, 0, 1];
    for (t, body) in [
        (PayloadType::Notification, &[0u8; 5][..]),
        (PayloadType::Delete, &delete_zero_spi[..]),
    ] {
        let bytes = one_payload(&header, t, body);
        let r = rejected(&bytes, &ctx(PHASE1_MAIN));
        assert_rejection(
            &r,
            Check::PayloadBody,
            Some(NotifyMessageType::PayloadMalformed),
            ANSWER,
        );
        assert_eq!(r.payload_type, Some(t));
    }
}

#[test]
fn bytes_after_the_last_payload_are_unequal_payload_lengths() {
    let mut bytes = wire(&main_mode_1());
    bytes.extend_from_slice(&[0; 4]);
    fix_length(&mut bytes);
    let r = rejected(&bytes, &ctx(SaState::None));
    assert_rejection(
        &r,
        Check::ChainLength,
        Some(NotifyMessageType::UnequalPayloadLengths),
        ANSWER,
    );
    assert_eq!(r.offset, bytes.len() - 4);
    // A context that tolerates padding accepts it and keeps it.
    let mut c = ctx(SaState::None);
    c.padding = Padding::Any;
    let msg = accepted(&bytes, &c);
    assert_eq!(msg.to_bytes().unwrap(), bytes);
}

#[test]
fn nonzero_padding_in_decrypted_plaintext_is_payload_malformed() {
    let header = quick_mode(9).header;
    let mut plaintext = realm_wire::isakmp::PayloadChain::new(vec![
        realm_wire::isakmp::Hash::new(vec![1; 20]).into(),
    ])
    .to_bytes()
    .unwrap();
    let end = plaintext.len();
    plaintext.extend_from_slice(&[0, 7, 0, 3]);
    let c = ctx(SaState::Established);
    let Verdict::Reject(r) =
        checks::check_decrypted(&header, PayloadType::Hash, &plaintext, Padding::Zeros, &c)
    else {
        panic!("accepted");
    };
    assert_rejection(
        &r,
        Check::Padding,
        Some(NotifyMessageType::PayloadMalformed),
        ANSWER_PROTECTED,
    );
    assert_eq!(r.offset, end + 1);
}

#[test]
fn the_first_failure_in_rfc_order_decides() {
    // Each case breaks two fields; the earlier check (5.1, then 5.2 steps 1, 3, 2, 4, 5, 6, then
    // 5.3 per payload: Next Payload before RESERVED before length) names the rejection.
    let good = wire(&main_mode_1());
    type Mutation = fn(&mut Vec<u8>);
    let cases: [(Mutation, Check); 8] = [
        (
            |b: &mut Vec<u8>| {
                b.push(0);
                b[0..8].fill(0);
            },
            Check::Length,
        ),
        (
            |b: &mut Vec<u8>| {
                b[0..8].fill(0);
                b[VERSION] = 0x20;
            },
            Check::Cookie,
        ),
        (
            |b: &mut Vec<u8>| {
                b[VERSION] = 0x11;
                b[NEXT_PAYLOAD] = 14;
            },
            Check::MinorVersion,
        ),
        (
            |b: &mut Vec<u8>| {
                b[NEXT_PAYLOAD] = 14;
                b[EXCHANGE] = 7;
            },
            Check::NextPayload,
        ),
        (
            |b: &mut Vec<u8>| {
                b[EXCHANGE] = 7;
                b[FLAGS] = 0x80;
            },
            Check::ExchangeType,
        ),
        (
            |b: &mut Vec<u8>| {
                b[FLAGS] = 0x80;
                b[MESSAGE_ID + 3] = 1;
            },
            Check::Flags,
        ),
        (
            |b: &mut Vec<u8>| {
                b[MESSAGE_ID + 3] = 1;
                b[FIRST] = 14;
            },
            Check::MessageId,
        ),
        (
            |b: &mut Vec<u8>| {
                b[FIRST] = 14;
                b[FIRST + 1] = 1;
                b[FIRST + 2..FIRST + 4].fill(0);
            },
            Check::PayloadType,
        ),
    ];
    for (mutate, expected) in cases {
        let mut bytes = good.clone();
        mutate(&mut bytes);
        assert_eq!(rejected(&bytes, &ctx(SaState::None)).check, expected);
    }
    // Within one payload, RESERVED (step 2) before the length.
    let mut bytes = good.clone();
    bytes[FIRST + 1] = 1;
    bytes[FIRST + 2..FIRST + 4].fill(0);
    assert_eq!(
        rejected(&bytes, &ctx(SaState::None)).check,
        Check::PayloadReserved
    );
    // And an earlier payload's fault before a later one's.
    let mut bytes = good;
    let vid = bytes.len() - 20; // the Vendor ID payload's generic header
    bytes[vid + 1] = 1;
    bytes[FIRST + 1] = 1;
    let r = rejected(&bytes, &ctx(SaState::None));
    assert_eq!((r.check, r.offset), (Check::PayloadReserved, FIRST + 1));
}

// ---------------------------------------------------------------------------------------------
// Policy: the overrides over the table.

#[test]
fn an_informational_is_never_answered_whatever_failed() {
    let known = ctx(PHASE1_MAIN);
    let good = wire(&informational_plain());
    let mutations: [(usize, u8, Check); 4] = [
        (NEXT_PAYLOAD, 14, Check::NextPayload),
        (FLAGS, 0x40, Check::Flags),
        (FIRST, 2, Check::PayloadType),
        (FIRST + 1, 9, Check::PayloadReserved),
    ];
    for (at, value, check) in mutations {
        let mut bytes = good.clone();
        bytes[at] = value;
        let r = rejected(&bytes, &known);
        assert_eq!(r.check, check);
        assert_eq!(r.response, Response::Drop, "{check:?}");
    }
    // The same fault in a Main Mode message is answered.
    let mut mm = wire(&main_mode_3());
    mm[FLAGS] = 0x40;
    assert_eq!(rejected(&mm, &known).response, ANSWER);
}

#[test]
fn the_policy_table_names_a_section_and_never_answers_before_the_cookies() {
    for check in Check::ALL {
        let rule = check.rule();
        assert!(rule.section.starts_with("RFC 240"), "{check:?}");
        let before_cookies = matches!(
            check,
            Check::HeaderTruncated | Check::Length | Check::Cookie
        );
        assert_eq!(
            rule.answer == AnswerWhen::Never,
            before_cookies,
            "{check:?}"
        );
        assert_eq!(rule.notify.is_none(), check == Check::HeaderTruncated);
    }
}

#[test]
fn answers_are_protected_once_keys_exist() {
    let mut bytes = wire(&main_mode_3());
    bytes[FIRST + 1] = 1;
    assert_eq!(rejected(&bytes, &ctx(PHASE1_MAIN)).response, ANSWER);
    assert_eq!(
        rejected(&bytes, &ctx(PHASE1_MAIN_KEYED)).response,
        ANSWER_PROTECTED
    );
}

// ---------------------------------------------------------------------------------------------
// The Notify answer.

#[test]
fn the_unprotected_reply_round_trips_and_names_the_offending_message() {
    let mut bytes = wire(&main_mode_1());
    bytes[MESSAGE_ID..MESSAGE_ID + 4].copy_from_slice(&7u32.to_be_bytes());
    let r = rejected(&bytes, &ctx(SaState::None));
    let reply = notify::reply(&r, 0xfeed_f00d).expect("answered");
    let out = reply.to_bytes().unwrap();
    let parsed = Message::parse(&out).unwrap();
    assert_eq!(parsed, reply);
    assert_eq!(parsed.header.exchange_type, ExchangeType::Informational);
    assert_eq!(parsed.header.initiator_cookie, ICOOKIE);
    assert_eq!(parsed.header.responder_cookie, [0; 8]);
    assert_eq!(parsed.header.version, Version::IKEV1);
    assert_eq!(parsed.header.flags, Flags::empty());
    assert_eq!(parsed.header.message_id, 0xfeed_f00d);
    let [payload] = parsed.payloads() else {
        panic!("one payload")
    };
    let PayloadBody::Notification(n) = &payload.body else {
        panic!("{payload:?}")
    };
    assert_eq!(n.doi, DOI_IPSEC);
    assert_eq!(n.protocol_id, ProtocolId::Isakmp);
    assert_eq!(n.message_type, NotifyMessageType::InvalidMessageId);
    assert_eq!(n.spi, [ICOOKIE, [0; 8]].concat());
    assert_eq!(n.data, 7u32.to_be_bytes());
    // The initiator that sent the bad message checks the reply as a phase 1 Informational.
    let seen_by_initiator = accepted(&out, &ctx(PHASE1_MAIN));
    assert_eq!(seen_by_initiator, parsed);
}

#[test]
fn invalid_payload_type_carries_the_offending_type() {
    let mut bytes = wire(&main_mode_3());
    bytes[FIRST] = 99;
    let r = rejected(&bytes, &ctx(PHASE1_MAIN));
    let reply = Message::parse(&notify::reply(&r, 1).unwrap().to_bytes().unwrap()).unwrap();
    assert_eq!(reply.header.responder_cookie, RCOOKIE);
    let PayloadBody::Notification(n) = &reply.payloads()[0].body else {
        panic!()
    };
    assert_eq!(n.message_type, NotifyMessageType::InvalidPayloadType);
    assert_eq!(n.data, [99]);
    assert_eq!(n.spi, [ICOOKIE, RCOOKIE].concat());
}

#[test]
fn no_unprotected_reply_for_drops_or_protected_answers() {
    // Dropped: a cookie failure.
    let r = rejected(&wire(&quick_mode(5)), &ctx(SaState::None));
    assert_eq!(r.response, Response::Drop);
    assert!(notify::reply(&r, 1).is_none());
    assert_eq!(
        notify::notification(&r).unwrap().message_type,
        NotifyMessageType::InvalidCookie
    );
    // Protected: the engine builds it from the notification.
    let r = rejected(&wire(&quick_mode(0)), &ctx(SaState::Established));
    assert_eq!(r.response, ANSWER_PROTECTED);
    assert!(notify::reply(&r, 1).is_none());
    let n = notify::notification(&r).unwrap();
    assert_eq!(n.message_type, NotifyMessageType::InvalidMessageId);
    // And informational() still builds an unprotected message on request.
    let m = notify::informational(r.header.as_ref().unwrap(), n.clone(), 3);
    assert_eq!(
        Message::parse(&m.to_bytes().unwrap()).unwrap().payloads()[0],
        n.into()
    );
}

#[test]
fn a_plaintext_delete_in_phase_1_is_left_to_the_engine() {
    // RFC 2408 5.15 wants a Delete under an ISAKMP SA; that is the Informational handler's
    // judgement, not a header or generic payload check, so the checks accept it.
    let header = Header::new(ExchangeType::Informational, ICOOKIE, RCOOKIE, 44);
    let bytes = wire(&Message::new(
        header,
        vec![Delete::isakmp_sa(ICOOKIE, RCOOKIE).into()],
    ));
    accepted(&bytes, &ctx(PHASE1_MAIN));
}

// ---------------------------------------------------------------------------------------------
// Cookies (RFC 2408 2.5.3).

const PERIOD: Duration = Duration::from_secs(60);

fn jar(t0: Instant) -> CookieJar {
    CookieJar::new(CookieSecret::from_bytes([0x5e; 32]), PERIOD, t0).unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn same_inputs_give_the_same_cookie() {
    let t0 = Instant::now();
    let peer = addr("192.0.2.7:500");
    let a = jar(t0).cookie(t0, peer, ICOOKIE);
    let b = jar(t0).cookie(t0 + Duration::from_secs(59), peer, ICOOKIE);
    assert_eq!(a, b);
    assert_ne!(a, [0; 8]);
}

#[test]
fn cookies_depend_on_address_port_slot_initiator_cookie_and_secret() {
    let t0 = Instant::now();
    let j = jar(t0);
    let base = j.cookie(t0, addr("192.0.2.7:500"), ICOOKIE);
    let others = [
        j.cookie(t0, addr("192.0.2.7:4500"), ICOOKIE),
        j.cookie(t0, addr("192.0.2.8:500"), ICOOKIE),
        j.cookie(t0, addr("[2001:db8::7]:500"), ICOOKIE),
        j.cookie(t0 + PERIOD, addr("192.0.2.7:500"), ICOOKIE),
        j.cookie(t0, addr("192.0.2.7:500"), RCOOKIE),
        CookieJar::new(CookieSecret::from_bytes([0x5f; 32]), PERIOD, t0)
            .unwrap()
            .cookie(t0, addr("192.0.2.7:500"), ICOOKIE),
    ];
    for (i, other) in others.iter().enumerate() {
        assert_ne!(&base, other, "variant {i}");
    }
    // An IPv4-mapped IPv6 peer is the IPv4 peer.
    assert_eq!(base, j.cookie(t0, addr("[::ffff:192.0.2.7]:500"), ICOOKIE));
    // Two IPv6 peers differ.
    assert_ne!(
        j.cookie(t0, addr("[2001:db8::7]:500"), ICOOKIE),
        j.cookie(t0, addr("[2001:db8::8]:500"), ICOOKIE)
    );
}

#[test]
fn the_previous_secret_is_accepted_for_one_period_and_not_after() {
    let t0 = Instant::now();
    let peer = addr("198.51.100.1:500");
    let mut j = jar(t0);
    let made = t0 + Duration::from_secs(50);
    let cookie = j.cookie(made, peer, ICOOKIE);
    assert!(j.verify(made, peer, ICOOKIE, &cookie));
    // Rotation at the slot boundary: the old secret still verifies during the next period.
    assert_eq!(j.next_rotation(), t0 + PERIOD);
    j.rotate(t0 + PERIOD, CookieSecret::from_bytes([0x77; 32]));
    assert!(j.verify(t0 + PERIOD, peer, ICOOKIE, &cookie));
    assert!(j.verify(
        t0 + PERIOD * 2 - Duration::from_secs(1),
        peer,
        ICOOKIE,
        &cookie
    ));
    // New cookies use the new secret.
    assert_ne!(j.cookie(t0 + PERIOD, peer, ICOOKIE), cookie);
    assert!(j.verify(
        t0 + PERIOD,
        peer,
        ICOOKIE,
        &j.cookie(t0 + PERIOD, peer, ICOOKIE)
    ));
    // One period later it is gone, rotated or not.
    assert!(!j.verify(t0 + PERIOD * 2, peer, ICOOKIE, &cookie));
    j.rotate(t0 + PERIOD * 2, CookieSecret::from_bytes([0x78; 32]));
    assert!(!j.verify(t0 + PERIOD * 2, peer, ICOOKIE, &cookie));
}

#[test]
fn a_cookie_expires_after_two_slots_even_without_rotation() {
    let t0 = Instant::now();
    let peer = addr("198.51.100.1:500");
    let j = jar(t0);
    let cookie = j.cookie(t0, peer, ICOOKIE);
    assert!(j.verify(t0 + PERIOD, peer, ICOOKIE, &cookie));
    assert!(!j.verify(t0 + PERIOD * 2, peer, ICOOKIE, &cookie));
}

#[test]
fn verification_refuses_other_peers_and_other_lengths() {
    let t0 = Instant::now();
    let peer = addr("198.51.100.1:500");
    let j = jar(t0);
    let cookie = j.cookie(t0, peer, ICOOKIE);
    assert!(!j.verify(t0, addr("198.51.100.1:501"), ICOOKIE, &cookie));
    assert!(!j.verify(t0, addr("198.51.100.2:500"), ICOOKIE, &cookie));
    assert!(!j.verify(t0, peer, RCOOKIE, &cookie));
    assert!(!j.verify(t0, peer, ICOOKIE, &cookie[..7]));
    assert!(!j.verify(t0, peer, ICOOKIE, &[cookie.as_slice(), &[0]].concat()));
    assert!(!j.verify(t0, peer, ICOOKIE, &[]));
    let mut flipped = cookie;
    flipped[7] ^= 1;
    assert!(!j.verify(t0, peer, ICOOKIE, &flipped));
}

#[test]
fn verification_uses_the_constant_time_comparison() {
    // A source-level check: `verify` must compare with aws-lc-rs's constant-time comparison and
    // must not return early on the first candidate.
    let src = include_str!("../src/isakmp/cookie.rs");
    let verify = src
        .split("pub fn verify(")
        .nth(1)
        .and_then(|rest| rest.split("\n    }\n").next())
        .expect("CookieJar::verify");
    assert!(verify.contains("constant_time::verify_slices_are_equal"));
    assert!(!verify.contains("return"), "verify must not exit early");
    assert!(!verify.contains("== cookie"));
}

#[test]
fn periods_below_one_second_are_refused_and_secrets_are_not_printed() {
    let t0 = Instant::now();
    let err = CookieJar::new(
        CookieSecret::from_bytes([1; 32]),
        Duration::from_millis(999),
        t0,
    )
    .unwrap_err();
    assert_eq!(err, CookieError::PeriodTooShort(Duration::from_millis(999)));
    let s = CookieSecret::from_bytes([0xab; 32]);
    assert!(!format!("{s:?}").contains("ab"));
    assert!(!format!("{:?}", jar(t0)).contains("5e"));
    // Generated secrets differ.
    let c = AwsLcCrypto::new();
    let peer = addr("192.0.2.1:500");
    let a = CookieJar::new(CookieSecret::generate(&c).unwrap(), PERIOD, t0).unwrap();
    let b = CookieJar::new(CookieSecret::generate(&c).unwrap(), PERIOD, t0).unwrap();
    assert_ne!(a.cookie(t0, peer, ICOOKIE), b.cookie(t0, peer, ICOOKIE));
}

// ---------------------------------------------------------------------------------------------
// Property tests: no input panics, every input gets a verdict, and verdicts are consistent.

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn sa_state() -> impl Strategy<Value = SaState> {
    prop_oneof![
        Just(SaState::None),
        Just(PHASE1_MAIN),
        Just(PHASE1_MAIN_KEYED),
        Just(SaState::Phase1 {
            exchange: ExchangeType::Aggressive,
            keyed: true
        }),
        Just(SaState::Established),
    ]
}

fn message_id_state() -> impl Strategy<Value = MessageIdState> {
    prop_oneof![
        Just(MessageIdState::Unused),
        Just(MessageIdState::Completed),
        Just(MessageIdState::InProgress(ExchangeType::QuickMode)),
    ]
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![
        Just(Padding::Forbidden),
        Just(Padding::Zeros),
        Just(Padding::Any)
    ]
}

fn context() -> impl Strategy<Value = Context<'static>> {
    (sa_state(), message_id_state(), padding(), any::<bool>()).prop_map(
        |(sa, message_id, padding, draft_nat_t)| Context {
            sa,
            exchanges: &IKEV1_EXCHANGES,
            message_id,
            padding,
            draft_nat_t,
        },
    )
}

fn valid_messages() -> Vec<Vec<u8>> {
    vec![
        wire(&main_mode_1()),
        wire(&main_mode_3()),
        wire(&main_mode_5()),
        wire(&quick_mode(0x1234_5678)),
        wire(&informational_plain()),
        wire(&informational_encrypted()),
    ]
}

/// What must hold of every verdict.
fn verdict_is_consistent(bytes: &[u8], c: &Context<'_>) -> Result<(), TestCaseError> {
    match checks::check(bytes, c) {
        Verdict::Accept(msg) => {
            // Accepted bytes re-emit exactly (padding kept in the chain).
            prop_assert_eq!(msg.to_bytes().unwrap(), bytes);
            prop_assert_eq!(msg.header.version, Version::IKEV1);
            prop_assert!(msg.header.initiator_cookie != [0; 8]);
        }
        Verdict::Reject(r) => {
            prop_assert_eq!(r.header.is_none(), bytes.len() < 28);
            let informational = r
                .header
                .as_ref()
                .is_some_and(|h| h.exchange_type == ExchangeType::Informational);
            if informational || r.check.rule().answer == AnswerWhen::Never {
                prop_assert_eq!(r.response, Response::Drop);
            }
            if let Response::Notify(p) = r.response {
                prop_assert_eq!(p == Protection::IsakmpSa, c.sa.keyed());
                let n = notify::notification(&r).unwrap();
                let reply = notify::informational(r.header.as_ref().unwrap(), n, 1);
                let out = reply.to_bytes().unwrap();
                prop_assert_eq!(Message::parse(&out).unwrap(), reply);
            }
            prop_assert_eq!(
                notify::reply(&r, 1).is_some(),
                r.response == Response::Notify(Protection::Unprotected)
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn arbitrary_bytes_get_a_verdict(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        c in context(),
    ) {
        verdict_is_consistent(&bytes, &c)?;
    }

    #[test]
    fn arbitrary_bytes_with_a_valid_length_field_get_a_verdict(
        mut bytes in proptest::collection::vec(any::<u8>(), 28..400),
        c in context(),
    ) {
        fix_length(&mut bytes);
        verdict_is_consistent(&bytes, &c)?;
    }

    #[test]
    fn mutated_valid_messages_get_a_verdict(
        which in 0usize..6,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..5),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        fix in any::<bool>(),
        c in context(),
    ) {
        let mut bytes = valid_messages().swap_remove(which);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        if fix && bytes.len() >= 28 {
            fix_length(&mut bytes);
        }
        verdict_is_consistent(&bytes, &c)?;
    }

    #[test]
    fn arbitrary_decrypted_plaintext_gets_a_verdict(
        first in any::<u8>(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..300),
        padding in padding(),
        c in context(),
    ) {
        let header = quick_mode(9).header;
        let _ = checks::check_decrypted(
            &header,
            PayloadType::from(first),
            &plaintext,
            padding,
            &c,
        );
    }
}

#[test]
fn the_valid_messages_pass_in_some_context() {
    // Guards the property tests' seeds: each is accepted where it belongs.
    let mut qm = ctx(SaState::Established);
    qm.message_id = MessageIdState::Unused;
    let contexts = [
        ctx(SaState::None),
        ctx(PHASE1_MAIN),
        ctx(PHASE1_MAIN_KEYED),
        qm,
        ctx(PHASE1_MAIN),
        ctx(SaState::Established),
    ];
    for (bytes, c) in valid_messages().iter().zip(contexts) {
        accepted(bytes, &c);
    }
}
