//! IKEv1 Main Mode with pre-shared keys (RFC 2409 5, 5.4): in-memory handshakes between the two
//! roles on aws-lc-rs (groups 14 and 19, aes128-sha256 and aes256-sha1) checked against the wire
//! (every message re-parsed and checked, message 5 and 6 decrypted and HASH_I recomputed from
//! what was on the wire), a wrong pre-shared key, a tampered message 5, a refused offer, wrong
//! message order, and property tests feeding arbitrary and mutated bytes to every receiving state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::UNIX_EPOCH;

use proptest::prelude::*;
use realm_ike::ikev1::keys::Iv;
use realm_ike::ikev1::main_mode::{
    Initiator, IsakmpSa, MainModeConfig, MainModeError, Phase1Credentials, RepliedKe, Responder,
    SentId,
};
use realm_ike::ikev1::nat_t::{Endpoints, NatTConfig};
use realm_ike::isakmp::checks::{self, Context, SaState, Verdict};
use realm_ike::proposal::{IkeProposal, Preference};
use realm_ike::{CipherAlgorithm, Crypto, DhGroup, HashAlgorithm, PrfAlgorithm};
use realm_wire::isakmp::{
    Body, ExchangeType, Identification, Message, NotifyMessageType, Packet, Padding, PayloadBody,
    PayloadType, RawPayloads,
};

mod common;
use common::SeededCrypto;

const AES128_SHA256: (CipherAlgorithm, HashAlgorithm) =
    (CipherAlgorithm::Aes128Cbc, HashAlgorithm::Sha256);
const AES256_SHA1: (CipherAlgorithm, HashAlgorithm) =
    (CipherAlgorithm::Aes256Cbc, HashAlgorithm::Sha1);
const PSK: &[u8] = b"correct horse battery staple";

fn config(proposals: &[IkeProposal], id: Identification) -> MainModeConfig {
    MainModeConfig {
        proposals: proposals.to_vec(),
        lifetime: NonZeroU32::new(10_800).unwrap(),
        preference: Preference::Ours,
        local_id: id,
        auth: Phase1Credentials::PreSharedKey,
        nat_t: NatTConfig::default(),
        vendor_ids: Vec::new(),
    }
}

/// Messages 1 to 4 between two addresses, no NAT: each side's (local, remote).
fn endpoints() -> (Endpoints, Endpoints) {
    let i: SocketAddr = "192.0.2.1:500".parse().unwrap();
    let r: SocketAddr = "198.51.100.2:500".parse().unwrap();
    (
        Endpoints {
            local: i,
            remote: r,
        },
        Endpoints {
            local: r,
            remote: i,
        },
    )
}

fn initiator_id() -> Identification {
    Identification::ipv4(Ipv4Addr::new(192, 0, 2, 1))
}

fn responder_id() -> Identification {
    Identification::fqdn("gw.example.net")
}

fn context(sa: SaState) -> Context<'static> {
    Context::new(sa, &checks::IKEV1_EXCHANGES)
}

fn phase1(keyed: bool) -> SaState {
    SaState::Phase1 {
        exchange: ExchangeType::IdentityProtection,
        keyed,
    }
}

/// Asserts that `bytes` re-parse with realm-wire and pass the RFC 2408 5.1-5.3 checks in `sa`,
/// and returns the parsed message.
fn checked(bytes: &[u8], sa: SaState) -> Message {
    let parsed = Message::parse(bytes).expect("re-parses");
    assert_eq!(
        parsed.header.exchange_type,
        ExchangeType::IdentityProtection
    );
    assert_eq!(parsed.header.message_id, 0);
    match checks::check(bytes, &context(sa)) {
        Verdict::Accept(m) => {
            assert_eq!(m, parsed);
            m
        }
        Verdict::Reject(r) => panic!("checks refused our own message: {r:?}"),
    }
}

/// The raw body of the first payload of `wanted` type in a plaintext message.
fn raw_body(bytes: &[u8], wanted: PayloadType) -> Vec<u8> {
    Packet::new_checked(bytes)
        .unwrap()
        .payloads(Padding::Forbidden)
        .map(Result::unwrap)
        .find(|p| p.payload_type == wanted)
        .unwrap()
        .body
        .to_vec()
}

fn ke_value(bytes: &[u8]) -> Vec<u8> {
    raw_body(bytes, PayloadType::KeyExchange)
}

/// Everything a full exchange produced.
struct Run {
    messages: Vec<Vec<u8>>,
    initiator: IsakmpSa,
    responder: IsakmpSa,
}

fn handshake(group: DhGroup, (cipher, hash): (CipherAlgorithm, HashAlgorithm), seed: u64) -> Run {
    let proposal = [IkeProposal::new(cipher, hash, group)];
    let ci = SeededCrypto::new(seed);
    let cr = SeededCrypto::new(seed.wrapping_add(0x9e37_79b9));
    let cky_r = [0xc0, 0x0c, 0x1e, 2, 3, 4, 5, 6];

    let (i, m1) = Initiator::start(&ci, config(&proposal, initiator_id()), endpoints().0).unwrap();
    assert_eq!(i.last_sent(), m1);
    let (r, m2) =
        Responder::handle_sa(config(&proposal, responder_id()), cky_r, endpoints().1, &m1).unwrap();
    assert_eq!(r.last_sent(), m2);
    let (i, m3) = i.handle_sa(&ci, &m2).map_err(|f| f.error).unwrap();
    assert_eq!(i.last_sent(), m3);
    let (r, m4) = r.handle_ke(&cr, &m3, PSK).map_err(|f| f.error).unwrap();
    assert_eq!(r.last_sent(), m4);
    let (i, m5) = i.handle_ke(&ci, &m4, PSK).map_err(|f| f.error).unwrap();
    assert_eq!(i.last_sent(), m5);
    let (responder, m6) = r
        .handle_id(&cr, &m5, UNIX_EPOCH)
        .map_err(|f| f.error)
        .unwrap();
    let initiator = i
        .handle_id(&ci, &m6, UNIX_EPOCH)
        .map_err(|f| f.error)
        .unwrap();
    Run {
        messages: vec![m1, m2, m3, m4, m5, m6],
        initiator,
        responder,
    }
}

fn assert_same_keys(a: &IsakmpSa, b: &IsakmpSa) {
    assert_eq!(a.initiator_cookie, b.initiator_cookie);
    assert_eq!(a.responder_cookie, b.responder_cookie);
    assert_eq!(a.choice, b.choice);
    assert_eq!(a.keys.skeyid().expose(), b.keys.skeyid().expose());
    assert_eq!(a.keys.skeyid_d().expose(), b.keys.skeyid_d().expose());
    assert_eq!(a.keys.skeyid_a().expose(), b.keys.skeyid_a().expose());
    assert_eq!(a.keys.skeyid_e().expose(), b.keys.skeyid_e().expose());
    assert_eq!(a.encryption_key.expose(), b.encryption_key.expose());
    assert_eq!(a.encryption_key.cipher(), b.encryption_key.cipher());
    assert_eq!(a.last_phase1_block, b.last_phase1_block);
}

/// Decrypts message 5 or 6 with `sa`'s key and `iv`, checks the plaintext, and returns its
/// payloads and the raw ID body.
fn decrypt(
    crypto: &SeededCrypto,
    sa: &IsakmpSa,
    bytes: &[u8],
    iv: &Iv,
) -> (Vec<PayloadBody>, Vec<u8>) {
    let message = checked(bytes, phase1(true));
    assert!(message.header.flags.encryption());
    let Body::Encrypted {
        next_payload,
        ciphertext,
    } = &message.body
    else {
        panic!("not encrypted")
    };
    assert_eq!(*next_payload, PayloadType::Identification);
    assert_eq!(ciphertext.len() % 16, 0);
    let mut plain = ciphertext.clone();
    sa.encryption_key.decrypt(crypto, iv, &mut plain).unwrap();
    let Verdict::Accept(m) = checks::check_decrypted(
        &message.header,
        *next_payload,
        &plain,
        Padding::Zeros,
        &context(phase1(true)),
    ) else {
        panic!("plaintext refused")
    };
    let id_b = RawPayloads::new(*next_payload, &plain, Padding::Zeros)
        .map(Result::unwrap)
        .find(|p| p.payload_type == PayloadType::Identification)
        .unwrap()
        .body
        .to_vec();
    (m.payloads().iter().map(|p| p.body.clone()).collect(), id_b)
}

fn check_run(run: &Run, group: DhGroup, (cipher, hash): (CipherAlgorithm, HashAlgorithm)) {
    let (i, r) = (&run.initiator, &run.responder);
    assert!(i.is_initiator && !r.is_initiator);
    assert_same_keys(i, r);
    assert_eq!(i.choice.proposal, IkeProposal::new(cipher, hash, group));
    assert_eq!(i.encryption_key.cipher(), cipher);
    assert_eq!(i.encryption_key.expose().len(), cipher.key_len());
    assert_eq!(
        i.keys.skeyid_d().len(),
        PrfAlgorithm::hmac(hash).output_len()
    );
    assert_eq!(i.peer_id, responder_id());
    assert_eq!(r.peer_id, initiator_id());
    assert_ne!(i.initiator_cookie, [0; 8]);
    assert_eq!(i.responder_cookie, [0xc0, 0x0c, 0x1e, 2, 3, 4, 5, 6]);

    // Every message passes the checks in the receiver's context.
    let m = &run.messages;
    let m1 = checked(&m[0], SaState::None);
    assert_eq!(m1.header.responder_cookie, [0; 8]);
    checked(&m[1], phase1(false));
    checked(&m[2], phase1(false));
    checked(&m[3], phase1(false));
    for msg in m {
        let p = Message::parse(msg).unwrap();
        assert_eq!(p.header.initiator_cookie, i.initiator_cookie);
    }
    for msg in &m[1..] {
        let p = Message::parse(msg).unwrap();
        assert_eq!(p.header.responder_cookie, i.responder_cookie);
    }
    let (g_xi, g_xr) = (ke_value(&m[2]), ke_value(&m[3]));
    assert_eq!(g_xi.len(), group.public_value_len());
    assert_eq!(g_xr.len(), group.public_value_len());
    let (ni, nr) = (
        raw_body(&m[2], PayloadType::Nonce),
        raw_body(&m[3], PayloadType::Nonce),
    );
    assert!((16..=32).contains(&ni.len()) && (16..=32).contains(&nr.len()));
    assert_ne!(ni, nr);

    // SKEYID = prf(PSK, Ni_b | Nr_b), from the wire.
    let crypto = SeededCrypto::new(1);
    let prf = PrfAlgorithm::hmac(hash);
    let skeyid = crypto.prf(prf, PSK, &[&ni, &nr]).unwrap();
    assert_eq!(i.keys.skeyid().expose(), skeyid.expose());

    // Message 5 under IV0 = hash(g^xi | g^xr); message 6 under message 5's last block; the
    // SA's last block is message 6's.
    let iv0 = Iv::phase1(&crypto, hash, cipher, &g_xi, &g_xr).unwrap();
    let (p5, idii_b) = decrypt(&crypto, i, &m[4], &iv0);
    let ct5 = Packet::new_checked(&m[4][..]).unwrap().body().to_vec();
    let iv5 = Iv::last_block_of(&ct5).unwrap();
    let (p6, idir_b) = decrypt(&crypto, i, &m[5], &iv5);
    let ct6 = Packet::new_checked(&m[5][..]).unwrap().body().to_vec();
    assert_eq!(Iv::last_block_of(&ct6).unwrap(), i.last_phase1_block);

    // HASH_I and HASH_R recomputed from the wire (RFC 2409 section 5).
    let sai_b = raw_body(&m[0], PayloadType::SecurityAssociation);
    let (cky_i, cky_r) = (i.initiator_cookie, i.responder_cookie);
    let hash_i = crypto
        .prf(
            prf,
            skeyid.expose(),
            &[&g_xi, &g_xr, &cky_i, &cky_r, &sai_b, &idii_b],
        )
        .unwrap();
    let hash_r = crypto
        .prf(
            prf,
            skeyid.expose(),
            &[&g_xr, &g_xi, &cky_r, &cky_i, &sai_b, &idir_b],
        )
        .unwrap();
    assert_eq!(
        p5,
        vec![
            PayloadBody::Identification(initiator_id()),
            PayloadBody::Hash(realm_wire::isakmp::Hash::new(hash_i.expose().to_vec())),
        ]
    );
    assert_eq!(
        p6,
        vec![
            PayloadBody::Identification(responder_id()),
            PayloadBody::Hash(realm_wire::isakmp::Hash::new(hash_r.expose().to_vec())),
        ]
    );
}

#[test]
fn handshake_group14_aes128_sha256() {
    let run = handshake(DhGroup::Modp2048, AES128_SHA256, 1);
    check_run(&run, DhGroup::Modp2048, AES128_SHA256);
}

#[test]
fn handshake_group14_aes256_sha1() {
    let run = handshake(DhGroup::Modp2048, AES256_SHA1, 2);
    check_run(&run, DhGroup::Modp2048, AES256_SHA1);
}

#[test]
fn handshake_group19_aes128_sha256() {
    let run = handshake(DhGroup::Ecp256, AES128_SHA256, 3);
    check_run(&run, DhGroup::Ecp256, AES128_SHA256);
}

#[test]
fn handshake_group19_aes256_sha1() {
    let run = handshake(DhGroup::Ecp256, AES256_SHA1, 4);
    check_run(&run, DhGroup::Ecp256, AES256_SHA1);
}

#[test]
fn different_runs_give_different_keys() {
    let a = handshake(DhGroup::Ecp256, AES128_SHA256, 5);
    let b = handshake(DhGroup::Ecp256, AES128_SHA256, 6);
    assert_ne!(
        a.initiator.keys.skeyid_d().expose(),
        b.initiator.keys.skeyid_d().expose()
    );
}

/// Runs messages 1-4 and returns the states awaiting messages 5 and 6, and message 5.
fn up_to_message_5(
    ci: &SeededCrypto,
    cr: &SeededCrypto,
    psk_i: &[u8],
    psk_r: &[u8],
) -> (Initiator<SentId>, Responder<RepliedKe>, Vec<u8>) {
    let proposal = [IkeProposal::new(
        CipherAlgorithm::Aes128Cbc,
        HashAlgorithm::Sha256,
        DhGroup::Ecp256,
    )];
    let (i, m1) = Initiator::start(ci, config(&proposal, initiator_id()), endpoints().0).unwrap();
    let (r, m2) = Responder::handle_sa(
        config(&proposal, responder_id()),
        [7; 8],
        endpoints().1,
        &m1,
    )
    .unwrap();
    let (i, m3) = i.handle_sa(ci, &m2).map_err(|f| f.error).unwrap();
    let (r, m4) = r.handle_ke(cr, &m3, psk_r).map_err(|f| f.error).unwrap();
    let (i, m5) = i.handle_ke(ci, &m4, psk_i).map_err(|f| f.error).unwrap();
    (i, r, m5)
}

fn is_authentication_failure(e: &MainModeError) -> bool {
    match e {
        MainModeError::HashMismatch => {
            e.notify() == Some(NotifyMessageType::InvalidHashInformation)
        }
        MainModeError::Undecryptable(_) => e.notify() == Some(NotifyMessageType::PayloadMalformed),
        _ => false,
    }
}

#[test]
fn wrong_psk_fails_on_the_receiver_and_keeps_its_state() {
    for seed in 0..16 {
        let (ci, cr) = (SeededCrypto::new(seed), SeededCrypto::new(seed + 100));
        let (_i, r, m5) = up_to_message_5(&ci, &cr, b"initiator's idea", PSK);
        let sent = r.last_sent().to_vec();
        let failure = r
            .handle_id(&cr, &m5, UNIX_EPOCH)
            .expect_err("wrong PSK accepted");
        assert!(
            is_authentication_failure(&failure.error),
            "seed {seed}: {:?}",
            failure.error
        );
        // The state is handed back unchanged (message 4 still there to resend).
        assert_eq!(failure.state.last_sent(), sent);
    }
}

#[test]
fn wrong_psk_on_the_responder_fails_on_message_5_too() {
    // Whichever side holds the wrong key, the first message under the keys is message 5, and
    // the responder is its receiver.
    for seed in 20..28 {
        let (ci, cr) = (SeededCrypto::new(seed), SeededCrypto::new(seed + 100));
        let (_i, r, m5) = up_to_message_5(&ci, &cr, PSK, b"responder's idea");
        let failure = r
            .handle_id(&cr, &m5, UNIX_EPOCH)
            .expect_err("wrong PSK accepted");
        assert!(
            is_authentication_failure(&failure.error),
            "seed {seed}: {:?}",
            failure.error
        );
    }
}

#[test]
fn tampered_message_5_fails_without_panicking() {
    let (ci, cr) = (SeededCrypto::new(7), SeededCrypto::new(8));
    let (_i, r, m5) = up_to_message_5(&ci, &cr, PSK, PSK);
    let mut r = r;
    let (mut hash_mismatches, mut undecryptable) = (0, 0);
    for at in 28..m5.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = m5.clone();
            bad[at] ^= flip;
            let failure = r
                .handle_id(&cr, &bad, UNIX_EPOCH)
                .expect_err("tampered message accepted");
            assert!(
                is_authentication_failure(&failure.error),
                "byte {at}: {:?}",
                failure.error
            );
            match failure.error {
                MainModeError::HashMismatch => hash_mismatches += 1,
                _ => undecryptable += 1,
            }
            r = failure.state;
        }
    }
    // Both paths are exercised: a flip that garbles only HASH data reaches the hash check.
    assert!(hash_mismatches > 0 && undecryptable > 0);
    // The untampered message still completes the exchange afterwards.
    let (sa, _m6) = r
        .handle_id(&cr, &m5, UNIX_EPOCH)
        .map_err(|f| f.error)
        .unwrap();
    assert_eq!(sa.peer_id, initiator_id());
}

#[test]
fn responder_refuses_an_offer_with_no_acceptable_proposal() {
    let ci = SeededCrypto::new(9);
    let offer = [IkeProposal::new(
        CipherAlgorithm::Aes128Cbc,
        HashAlgorithm::Sha256,
        DhGroup::Modp2048,
    )];
    let ours = [IkeProposal::new(
        CipherAlgorithm::Aes256Cbc,
        HashAlgorithm::Sha1,
        DhGroup::Ecp256,
    )];
    let (_i, m1) = Initiator::start(&ci, config(&offer, initiator_id()), endpoints().0).unwrap();
    let err = Responder::handle_sa(config(&ours, responder_id()), [7; 8], endpoints().1, &m1)
        .unwrap_err();
    assert!(matches!(err, MainModeError::Proposal(_)), "{err:?}");
    assert_eq!(err.notify(), Some(NotifyMessageType::NoProposalChosen));
}

#[test]
fn out_of_order_messages_are_refused() {
    let (ci, cr) = (SeededCrypto::new(11), SeededCrypto::new(12));
    let proposal = [IkeProposal::new(
        CipherAlgorithm::Aes128Cbc,
        HashAlgorithm::Sha256,
        DhGroup::Ecp256,
    )];
    let (i, m1) = Initiator::start(&ci, config(&proposal, initiator_id()), endpoints().0).unwrap();
    let (r, m2) = Responder::handle_sa(
        config(&proposal, responder_id()),
        [7; 8],
        endpoints().1,
        &m1,
    )
    .unwrap();
    // The responder given message 1 again where it expects message 3.
    let f = r
        .handle_ke(&cr, &m1, PSK)
        .expect_err("message 1 as message 3");
    assert_eq!(f.error, MainModeError::WrongCookies);
    assert_eq!(f.error.notify(), None);
    let r = f.state;
    // The initiator given its own message 1 back (responder cookie zero).
    let f = i.handle_sa(&ci, &m1).expect_err("own message 1");
    assert_eq!(f.error, MainModeError::WrongCookies);
    let (i, m3) = f.state.handle_sa(&ci, &m2).map_err(|f| f.error).unwrap();
    // A message 4 carrying another exchange's responder cookie.
    let mut foreign = m3.clone();
    foreign[8] ^= 0xff;
    let f = i.handle_ke(&ci, &foreign, PSK).expect_err("foreign cookie");
    assert!(matches!(
        f.error,
        MainModeError::WrongCookies | MainModeError::Rejected(_)
    ));
    let (r, _m4) = r.handle_ke(&cr, &m3, PSK).map_err(|f| f.error).unwrap();
    // A plaintext message where encrypted message 5 is expected.
    let f = r
        .handle_id(&cr, &m3, UNIX_EPOCH)
        .expect_err("plaintext as message 5");
    assert_eq!(f.error, MainModeError::NotEncrypted);
    assert_eq!(f.error.notify(), Some(NotifyMessageType::InvalidFlags));
}

#[test]
fn bad_ke_and_nonce_lengths_are_refused() {
    let (ci, cr) = (SeededCrypto::new(13), SeededCrypto::new(14));
    let proposal = [IkeProposal::new(
        CipherAlgorithm::Aes128Cbc,
        HashAlgorithm::Sha256,
        DhGroup::Ecp256,
    )];
    let (i, m1) = Initiator::start(&ci, config(&proposal, initiator_id()), endpoints().0).unwrap();
    let (r, m2) = Responder::handle_sa(
        config(&proposal, responder_id()),
        [7; 8],
        endpoints().1,
        &m1,
    )
    .unwrap();
    let (_i, m3) = i.handle_sa(&ci, &m2).map_err(|f| f.error).unwrap();
    let mut msg = Message::parse(&m3).unwrap();
    let Body::Payloads(chain) = &mut msg.body else {
        panic!()
    };
    // A KE one byte short: INVALID-KEY-INFORMATION.
    let mut short_ke = chain.clone();
    if let PayloadBody::KeyExchange(k) = &mut short_ke.payloads[0].body {
        k.data.pop();
    }
    let bytes = Message {
        header: msg.header.clone(),
        body: Body::Payloads(short_ke),
    }
    .to_bytes()
    .unwrap();
    let f = r.handle_ke(&cr, &bytes, PSK).expect_err("short KE");
    assert_eq!(
        f.error.notify(),
        Some(NotifyMessageType::InvalidKeyInformation)
    );
    // A point not on the curve: INVALID-KEY-INFORMATION.
    let mut off_curve = chain.clone();
    if let PayloadBody::KeyExchange(k) = &mut off_curve.payloads[0].body {
        k.data.fill(0x11);
    }
    let bytes = Message {
        header: msg.header.clone(),
        body: Body::Payloads(off_curve),
    }
    .to_bytes()
    .unwrap();
    let f = f.state.handle_ke(&cr, &bytes, PSK).expect_err("bad point");
    assert_eq!(
        f.error.notify(),
        Some(NotifyMessageType::InvalidKeyInformation)
    );
    // A 7-byte nonce: PAYLOAD-MALFORMED.
    let mut short_nonce = chain.clone();
    if let PayloadBody::Nonce(n) = &mut short_nonce.payloads[1].body {
        n.data.truncate(7);
    }
    let bytes = Message {
        header: msg.header.clone(),
        body: Body::Payloads(short_nonce),
    }
    .to_bytes()
    .unwrap();
    let f = f
        .state
        .handle_ke(&cr, &bytes, PSK)
        .expect_err("short nonce");
    assert_eq!(f.error, MainModeError::NonceLength(7));
    assert_eq!(f.error.notify(), Some(NotifyMessageType::PayloadMalformed));
    // And the real message 3 still works.
    f.state
        .handle_ke(&cr, &m3, PSK)
        .map_err(|f| f.error)
        .unwrap();
}

/// Feeds `input(k, real)` to each receiving state in turn (k = which message it expects, real =
/// that message), then the real message, so every state of one exchange sees the input. Panics
/// only if the engine does; a refused input must hand the state back unchanged.
fn feed_every_state(seed: u64, input: impl Fn(usize, &[u8]) -> Vec<u8>) {
    let (ci, cr) = (SeededCrypto::new(seed), SeededCrypto::new(seed + 1));
    let proposal = [IkeProposal::new(
        CipherAlgorithm::Aes128Cbc,
        HashAlgorithm::Sha256,
        DhGroup::Ecp256,
    )];
    let (i, m1) = Initiator::start(&ci, config(&proposal, initiator_id()), endpoints().0).unwrap();
    // Message 1 to the (stateless) responder.
    let _ = Responder::handle_sa(
        config(&proposal, responder_id()),
        [7; 8],
        endpoints().1,
        &input(1, &m1),
    );
    let (r, m2) = Responder::handle_sa(
        config(&proposal, responder_id()),
        [7; 8],
        endpoints().1,
        &m1,
    )
    .unwrap();

    macro_rules! try_state {
        ($state:expr, $k:expr, $real:expr, |$s:ident, $bytes:ident| $call:expr) => {{
            let $s = $state;
            let sent = $s.last_sent().to_vec();
            let $bytes = input($k, $real);
            match $call {
                Ok(_) => return, // a mutation that left the message valid: nothing more to see
                Err(f) => {
                    assert_eq!(f.state.last_sent(), sent);
                    f.state
                }
            }
        }};
    }

    let i = try_state!(i, 2, &m2, |s, b| s.handle_sa(&ci, &b));
    let (i, m3) = i.handle_sa(&ci, &m2).map_err(|f| f.error).unwrap();
    let r = try_state!(r, 3, &m3, |s, b| s.handle_ke(&cr, &b, PSK));
    let (r, m4) = r.handle_ke(&cr, &m3, PSK).map_err(|f| f.error).unwrap();
    let i = try_state!(i, 4, &m4, |s, b| s.handle_ke(&ci, &b, PSK));
    let (i, m5) = i.handle_ke(&ci, &m4, PSK).map_err(|f| f.error).unwrap();
    let r = try_state!(r, 5, &m5, |s, b| s.handle_id(&cr, &b, UNIX_EPOCH));
    let (_sa, m6) = r
        .handle_id(&cr, &m5, UNIX_EPOCH)
        .map_err(|f| f.error)
        .unwrap();
    let i = try_state!(i, 6, &m6, |s, b| s.handle_id(&ci, &b, UNIX_EPOCH));
    let sa = i
        .handle_id(&ci, &m6, UNIX_EPOCH)
        .map_err(|f| f.error)
        .unwrap();
    assert_eq!(sa.peer_id, responder_id());
}

fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(proptest_config(64))]

    /// Arbitrary bytes never panic any receiving state, and are refused with the state intact.
    #[test]
    fn arbitrary_bytes_never_panic(
        seed in any::<u64>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        feed_every_state(seed, |_, _| bytes.clone());
    }

    /// The expected message's header (so the checks pass) followed by arbitrary bytes, with the
    /// Length fixed up: reaches the grammar, KE, decryption and hash code.
    #[test]
    fn real_header_arbitrary_body_never_panics(
        seed in any::<u64>(),
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        feed_every_state(seed, |_, real| {
            let mut out = real[..28].to_vec();
            out.extend_from_slice(&body);
            let len = u32::try_from(out.len()).unwrap().to_be_bytes();
            out[24..28].copy_from_slice(&len);
            out
        });
    }

    /// The expected message with one byte changed never panics.
    #[test]
    fn mutated_real_messages_never_panic(
        seed in any::<u64>(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        feed_every_state(seed, |_, real| {
            let mut out = real.to_vec();
            let i = at.index(out.len());
            out[i] ^= xor;
            out
        });
    }

    /// The expected message cut short never panics.
    #[test]
    fn truncated_real_messages_never_panic(
        seed in any::<u64>(),
        at in any::<prop::sample::Index>(),
    ) {
        feed_every_state(seed, |_, real| real[..at.index(real.len())].to_vec());
    }
}
