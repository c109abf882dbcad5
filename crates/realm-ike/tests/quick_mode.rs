//! IKEv1 Quick Mode (RFC 2409 5.5): Main Mode to an ISAKMP SA on both sides, then Quick Mode in
//! memory on aws-lc-rs, with and without PFS (groups 14 and 19), aes128gcm16 and aes128-sha256,
//! tunnel mode. Every message is checked by `checks::check` in its receiver's context and
//! decrypted here with independently derived IVs; HASH(1), HASH(2), HASH(3) and both directions'
//! KEYMAT are recomputed with aws-lc-rs's `hmac` from the bytes on the wire. Also: tampered
//! hashes, a refused offer, a PFS offer or answer without KE, and property tests feeding
//! arbitrary bytes to each receiving state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::num::NonZeroU32;

use aws_lc_rs::{digest, hmac};
use proptest::prelude::*;
use realm_ike::ikev1::main_mode::IsakmpSa;
use realm_ike::ikev1::quick_mode::{
    ChildSaPair, EspSaKeys, Initiator, QuickModeConfig, QuickModeError, Responder,
};
use realm_ike::isakmp::checks::{self, Context, MessageIdState, SaState, Verdict};
use realm_ike::proposal::{
    AesKeySize, EspCipher, EspIntegrity, EspProposal, IpsecMode, Preference, UdpEncapsulation,
};
use realm_ike::{AwsLcKeyPair, CipherAlgorithm, Crypto, DhGroup};
use realm_wire::isakmp::{
    Body, ExchangeType, Flags, Hash, Header, Identification, Message, NotifyMessageType, Padding,
    Payload, PayloadBody, PayloadChain, PayloadType, RawPayloads,
};

mod common;
use common::{SeededCrypto, phase1};

const I_SPI: u32 = 0xc1c1_0001;
const R_SPI: u32 = 0xc2c2_0002;

const GCM: EspCipher = EspCipher::AesGcm16(AesKeySize::Bits128);
const CBC_SHA256: EspCipher = EspCipher::AesCbc(AesKeySize::Bits128, EspIntegrity::HmacSha256_128);

fn qm_config(cipher: EspCipher, pfs: Option<DhGroup>, ids: bool) -> QuickModeConfig {
    QuickModeConfig {
        proposals: vec![EspProposal::new(cipher, pfs)],
        mode: IpsecMode::Tunnel,
        udp: UdpEncapsulation::None,
        original_addresses: None,
        lifetime: NonZeroU32::new(3_600).unwrap(),
        preference: Preference::Ours,
        client_ids: ids.then(|| {
            (
                Identification::ipv4_subnet(
                    Ipv4Addr::new(10, 1, 0, 0),
                    Ipv4Addr::new(255, 255, 0, 0),
                ),
                Identification::ipv4_subnet(
                    Ipv4Addr::new(10, 2, 0, 0),
                    Ipv4Addr::new(255, 255, 255, 0),
                ),
            )
        }),
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign().as_ref().to_vec()
}

fn context(message_id: MessageIdState) -> Context<'static> {
    let mut ctx = Context::new(SaState::Established, &checks::IKEV1_EXCHANGES);
    ctx.message_id = message_id;
    ctx
}

fn in_progress() -> MessageIdState {
    MessageIdState::InProgress(ExchangeType::QuickMode)
}

/// Checks `bytes` as the receiver would, decrypts with `iv` and returns the plaintext, the HASH
/// data, the payloads after HASH as on the wire, the payload types, and the next IV.
struct Opened {
    plain: Vec<u8>,
    hash: Vec<u8>,
    after_hash: Vec<u8>,
    types: Vec<PayloadType>,
    next_iv: Vec<u8>,
}

fn open(
    sa: &IsakmpSa,
    crypto: &SeededCrypto,
    bytes: &[u8],
    mid: MessageIdState,
    iv: &[u8],
) -> Opened {
    let ctx = context(mid);
    let Verdict::Accept(m) = checks::check(bytes, &ctx) else {
        panic!("checks refused our own message")
    };
    assert_eq!(m.header.exchange_type, ExchangeType::QuickMode);
    assert!(m.header.flags.encryption());
    assert_ne!(m.header.message_id, 0);
    let Body::Encrypted {
        next_payload,
        ciphertext,
    } = &m.body
    else {
        panic!("not encrypted")
    };
    assert_eq!(*next_payload, PayloadType::Hash);
    let mut plain = ciphertext.clone();
    crypto
        .decrypt_cbc(
            CipherAlgorithm::Aes128Cbc,
            sa.encryption_key.expose(),
            iv,
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
    Opened {
        hash: raws[0].body.to_vec(),
        after_hash: plain[hash_end..end].to_vec(),
        types: raws.iter().map(|r| r.payload_type).collect(),
        next_iv: ciphertext[ciphertext.len() - 16..].to_vec(),
        plain,
    }
}

fn body_of(o: &Opened, wanted: PayloadType) -> Vec<u8> {
    RawPayloads::new(PayloadType::Hash, &o.plain, Padding::Zeros)
        .map(Result::unwrap)
        .find(|p| p.payload_type == wanted)
        .unwrap()
        .body
        .to_vec()
}

fn message_id(bytes: &[u8]) -> u32 {
    Message::parse(bytes).unwrap().header.message_id
}

/// KEYMAT per RFC 2409 5.5 with HMAC-SHA256 (the phase 1 PRF).
fn keymat(skeyid_d: &[u8], pfs: &[u8], spi: u32, ni: &[u8], nr: &[u8], len: usize) -> Vec<u8> {
    let spi = spi.to_be_bytes();
    let mut out = Vec::new();
    let mut prev: Vec<u8> = Vec::new();
    while out.len() < len {
        prev = hmac_sha256(skeyid_d, &[&prev, pfs, &[3], &spi, ni, nr]);
        out.extend_from_slice(&prev);
    }
    out.truncate(len);
    out
}

fn assert_keys(k: &EspSaKeys, spi: u32, cipher: EspCipher, km: &[u8]) {
    assert_eq!(k.spi, spi);
    match cipher {
        EspCipher::AesGcm16(_) => {
            assert_eq!(k.encryption_key.expose(), &km[..16]);
            assert_eq!(k.salt.as_ref().unwrap().expose(), &km[16..20]);
            assert!(k.integrity_key.is_none());
        }
        EspCipher::AesCbc(..) => {
            assert_eq!(k.encryption_key.expose(), &km[..16]);
            assert_eq!(k.integrity_key.as_ref().unwrap().expose(), &km[16..48]);
            assert!(k.salt.is_none());
        }
    }
}

fn assert_mirrored(a: &ChildSaPair, b: &ChildSaPair) {
    for (x, y) in [(&a.outbound, &b.inbound), (&a.inbound, &b.outbound)] {
        assert_eq!(x.spi, y.spi);
        assert_eq!(x.encryption_key.expose(), y.encryption_key.expose());
        assert_eq!(
            x.salt.as_ref().map(|s| s.expose().to_vec()),
            y.salt.as_ref().map(|s| s.expose().to_vec())
        );
        assert_eq!(
            x.integrity_key.as_ref().map(|s| s.expose().to_vec()),
            y.integrity_key.as_ref().map(|s| s.expose().to_vec())
        );
    }
    assert_ne!(
        a.inbound.encryption_key.expose(),
        a.outbound.encryption_key.expose()
    );
    assert_eq!(a.proposal, b.proposal);
    assert_eq!(a.encapsulation, b.encapsulation);
    assert_eq!(a.lifetime.seconds, b.lifetime.seconds);
    assert_eq!(a.client_ids, b.client_ids);
    assert_eq!(a.message_id, b.message_id);
}

fn quick_mode(cipher: EspCipher, pfs: Option<DhGroup>, ids: bool, seed: u64) {
    let (isa, rsa, ci, cr) = phase1(seed);
    let config = qm_config(cipher, pfs, ids);
    let (i, m1) = Initiator::start(&ci, &isa, config.clone(), I_SPI).unwrap();
    assert_eq!(i.last_sent(), m1);
    let mid = message_id(&m1);
    assert_eq!(i.message_id(), mid);
    let (r, m2) = Responder::handle_offer(&cr, &rsa, &config, R_SPI, &m1).unwrap();
    assert_eq!(r.last_sent(), m2);
    let (ipair, m3) = i.handle_reply(&ci, &m2).map_err(|f| f.error).unwrap();
    let rpair = r.handle_hash3(&cr, &m3).map_err(|f| f.error).unwrap();

    // IVs (RFC 2409 Appendix B), derived here from the phase 1 block and the messages.
    let mut iv0 = digest::digest(
        &digest::SHA256,
        &[isa.last_phase1_block.as_bytes(), &mid.to_be_bytes()].concat(),
    )
    .as_ref()
    .to_vec();
    iv0.truncate(16);
    assert_eq!(isa.last_phase1_block, rsa.last_phase1_block);
    let o1 = open(&rsa, &cr, &m1, MessageIdState::Unused, &iv0);
    let o2 = open(&isa, &ci, &m2, in_progress(), &o1.next_iv);
    let o3 = open(&rsa, &cr, &m3, in_progress(), &o2.next_iv);

    let mut expected_types = vec![
        PayloadType::Hash,
        PayloadType::SecurityAssociation,
        PayloadType::Nonce,
    ];
    if pfs.is_some() {
        expected_types.push(PayloadType::KeyExchange);
    }
    if ids {
        expected_types.extend([PayloadType::Identification, PayloadType::Identification]);
    }
    assert_eq!(o1.types, expected_types);
    assert_eq!(o2.types, expected_types);
    assert_eq!(o3.types, vec![PayloadType::Hash]);

    let skeyid_a = isa.keys.skeyid_a().expose();
    let m = mid.to_be_bytes();
    let ni = body_of(&o1, PayloadType::Nonce);
    let nr = body_of(&o2, PayloadType::Nonce);
    assert_eq!(o1.hash, hmac_sha256(skeyid_a, &[&m, &o1.after_hash]));
    assert_eq!(o2.hash, hmac_sha256(skeyid_a, &[&m, &ni, &o2.after_hash]));
    assert_eq!(o3.hash, hmac_sha256(skeyid_a, &[&[0], &m, &ni, &nr]));

    // KEYMAT for each direction, with g(qm)^xy as both sides computed it.
    let g_qm = match pfs {
        Some(_) => {
            let a = ci.agreed.borrow().clone();
            let b = cr.agreed.borrow().clone();
            assert_eq!(a.len(), 1);
            assert_eq!(a, b);
            a[0].clone()
        }
        None => {
            assert!(ci.agreed.borrow().is_empty() && cr.agreed.borrow().is_empty());
            Vec::new()
        }
    };
    let len = match cipher {
        EspCipher::AesGcm16(_) => 20,
        EspCipher::AesCbc(..) => 48,
    };
    let d = isa.keys.skeyid_d().expose();
    let km_i_in = keymat(d, &g_qm, I_SPI, &ni, &nr, len);
    let km_r_in = keymat(d, &g_qm, R_SPI, &ni, &nr, len);
    assert_keys(&ipair.inbound, I_SPI, cipher, &km_i_in);
    assert_keys(&ipair.outbound, R_SPI, cipher, &km_r_in);
    assert_keys(&rpair.inbound, R_SPI, cipher, &km_r_in);
    assert_keys(&rpair.outbound, I_SPI, cipher, &km_i_in);
    assert_mirrored(&ipair, &rpair);
    assert_eq!(ipair.proposal, EspProposal::new(cipher, pfs));
    assert_eq!(ipair.encapsulation.mode, IpsecMode::Tunnel);
    assert_eq!(ipair.lifetime.seconds.get(), 3_600);
    assert_eq!(ipair.client_ids, config.client_ids);
}

#[test]
fn gcm_without_pfs() {
    quick_mode(GCM, None, true, 1);
}

#[test]
fn gcm_with_pfs_group14() {
    quick_mode(GCM, Some(DhGroup::Modp2048), true, 2);
}

#[test]
fn cbc_sha256_with_pfs_group19() {
    quick_mode(CBC_SHA256, Some(DhGroup::Ecp256), true, 3);
}

#[test]
fn cbc_sha256_without_pfs_or_ids() {
    quick_mode(CBC_SHA256, None, false, 4);
}

#[test]
fn gcm_with_pfs_group19_without_ids() {
    quick_mode(GCM, Some(DhGroup::Ecp256), false, 5);
}

/// Flips ciphertext byte 16 (the second block): CBC garbles plaintext bytes 16..32 and flips
/// byte 32, all inside the 32-byte HASH data (plaintext bytes 4..36), so only the hash changes.
fn tamper_hash(bytes: &[u8]) -> Vec<u8> {
    let mut t = bytes.to_vec();
    t[28 + 16] ^= 0x01;
    t
}

#[test]
fn tampered_hashes_fail_and_keep_the_state() {
    let (isa, rsa, ci, cr) = phase1(7);
    let config = qm_config(GCM, None, true);
    let (i, m1) = Initiator::start(&ci, &isa, config.clone(), I_SPI).unwrap();
    let e = Responder::handle_offer(&cr, &rsa, &config, R_SPI, &tamper_hash(&m1)).unwrap_err();
    assert_eq!(e, QuickModeError::HashMismatch);
    assert_eq!(e.notify(), Some(NotifyMessageType::InvalidHashInformation));

    let (r, m2) = Responder::handle_offer(&cr, &rsa, &config, R_SPI, &m1).unwrap();
    let f = i.handle_reply(&ci, &tamper_hash(&m2)).unwrap_err();
    assert_eq!(f.error, QuickModeError::HashMismatch);
    let i = f.state;
    // A garbled last block breaks the padding or the payloads instead.
    let mut garbled = m2.clone();
    let n = garbled.len();
    garbled[n - 20] ^= 0xff;
    let f = i.handle_reply(&ci, &garbled).unwrap_err();
    assert!(
        matches!(
            f.error.notify(),
            Some(NotifyMessageType::PayloadMalformed | NotifyMessageType::InvalidHashInformation)
        ),
        "{:?}",
        f.error
    );
    let (ipair, m3) = f.state.handle_reply(&ci, &m2).map_err(|f| f.error).unwrap();

    let f = r.handle_hash3(&cr, &tamper_hash(&m3)).unwrap_err();
    assert_eq!(f.error, QuickModeError::HashMismatch);
    assert_eq!(
        f.error.notify(),
        Some(NotifyMessageType::InvalidHashInformation)
    );
    // A message 1 replayed as message 3 is refused too.
    let f = f.state.handle_hash3(&cr, &m1).unwrap_err();
    let rpair = f.state.handle_hash3(&cr, &m3).map_err(|f| f.error).unwrap();
    assert_mirrored(&ipair, &rpair);
}

#[test]
fn no_acceptable_esp_proposal() {
    let (isa, rsa, ci, cr) = phase1(8);
    let (_, m1) = Initiator::start(&ci, &isa, qm_config(CBC_SHA256, None, true), I_SPI).unwrap();
    let e =
        Responder::handle_offer(&cr, &rsa, &qm_config(GCM, None, true), R_SPI, &m1).unwrap_err();
    assert!(matches!(e, QuickModeError::Proposal(_)), "{e:?}");
    assert_eq!(e.notify(), Some(NotifyMessageType::NoProposalChosen));
    // PFS offered, none configured (or the other way round): no proposal either.
    let (_, m1) = Initiator::start(
        &ci,
        &isa,
        qm_config(GCM, Some(DhGroup::Ecp256), true),
        I_SPI,
    )
    .unwrap();
    let e =
        Responder::handle_offer(&cr, &rsa, &qm_config(GCM, None, true), R_SPI, &m1).unwrap_err();
    assert_eq!(e.notify(), Some(NotifyMessageType::NoProposalChosen));
}

fn first_iv(isa: &IsakmpSa, mid: u32) -> Vec<u8> {
    let mut iv = digest::digest(
        &digest::SHA256,
        &[isa.last_phase1_block.as_bytes(), &mid.to_be_bytes()].concat(),
    )
    .as_ref()
    .to_vec();
    iv.truncate(16);
    iv
}

/// Rebuilds message 1 (`ni` `None`, `state` unused) or 2 (`ni` the initiator's nonce, `state`
/// in progress), without its KE payload if `drop_ke`, with a valid HASH(1) or HASH(2),
/// encrypted with `iv` as its sender would.
fn rebuild(
    isa: &IsakmpSa,
    crypto: &SeededCrypto,
    m1: &[u8],
    (iv, state, ni): (&[u8], MessageIdState, Option<&[u8]>),
    drop_ke: bool,
) -> Vec<u8> {
    let mid = message_id(m1);
    let opened = open(isa, crypto, m1, state, iv);
    let Verdict::Accept(m) = checks::check(m1, &context(state)) else {
        panic!()
    };
    let Verdict::Accept(d) = checks::check_decrypted(
        &m.header,
        PayloadType::Hash,
        &opened.plain,
        Padding::Zeros,
        &context(state),
    ) else {
        panic!()
    };
    let rest: Vec<Payload> = d.payloads()[1..]
        .iter()
        .filter(|p| !drop_ke || p.body.payload_type() != PayloadType::KeyExchange)
        .cloned()
        .collect();
    assert_eq!(rest.len(), d.payloads().len() - 1 - usize::from(drop_ke));
    let rest_bytes = PayloadChain::new(rest.clone()).to_bytes().unwrap();
    let hash = hmac_sha256(
        isa.keys.skeyid_a().expose(),
        &[&mid.to_be_bytes(), ni.unwrap_or_default(), &rest_bytes],
    );
    let mut all = vec![Payload::new(PayloadBody::Hash(Hash::new(hash)))];
    all.extend(rest);
    let mut data = PayloadChain::new(all).to_bytes().unwrap();
    data.resize(data.len().div_ceil(16) * 16, 0);
    crypto
        .encrypt_cbc(
            CipherAlgorithm::Aes128Cbc,
            isa.encryption_key.expose(),
            iv,
            &mut data,
        )
        .unwrap();
    let mut header = Header::new(
        ExchangeType::QuickMode,
        isa.initiator_cookie,
        isa.responder_cookie,
        mid,
    );
    header.flags = Flags::empty().with(Flags::ENCRYPTION, true);
    Message::encrypted(header, PayloadType::Hash, data)
        .to_bytes()
        .unwrap()
}

#[test]
fn pfs_offer_without_ke_is_refused() {
    let (isa, rsa, ci, cr) = phase1(9);
    let config = qm_config(GCM, Some(DhGroup::Modp2048), true);
    let (_, m1) = Initiator::start(&ci, &isa, config.clone(), I_SPI).unwrap();
    let iv = first_iv(&isa, message_id(&m1));
    let forged = rebuild(&isa, &ci, &m1, (&iv, MessageIdState::Unused, None), true);
    // The forged message passes the hash (it is validly built), and fails on the missing KE.
    let e = Responder::handle_offer(&cr, &rsa, &config, R_SPI, &forged).unwrap_err();
    assert_eq!(e, QuickModeError::MissingKe);
    assert_eq!(e.notify(), Some(NotifyMessageType::InvalidKeyInformation));
    // The same construction keeping the KE reproduces the initiator's message byte for byte,
    // which shows the forgery itself is sound.
    let (i, m1) = Initiator::start(&ci, &isa, config.clone(), I_SPI).unwrap();
    let iv = first_iv(&isa, message_id(&m1));
    let rebuilt = rebuild(&isa, &ci, &m1, (&iv, MessageIdState::Unused, None), false);
    assert_eq!(rebuilt, m1);
    let (_, m2) = Responder::handle_offer(&cr, &rsa, &config, R_SPI, &rebuilt).unwrap();

    // The initiator likewise refuses an answer without KE when its offer had PFS.
    let o1 = open(&rsa, &cr, &m1, MessageIdState::Unused, &iv);
    let ni = body_of(&o1, PayloadType::Nonce);
    let key = (&o1.next_iv[..], in_progress(), Some(&ni[..]));
    let same = rebuild(&rsa, &cr, &m2, key, false);
    assert_eq!(same, m2);
    let forged = rebuild(&rsa, &cr, &m2, key, true);
    let f = i.handle_reply(&ci, &forged).unwrap_err();
    assert_eq!(f.error, QuickModeError::MissingKe);
    f.state.handle_reply(&ci, &m2).map_err(|f| f.error).unwrap();
}

struct States {
    crypto: SeededCrypto,
    rsa: IsakmpSa,
    config: QuickModeConfig,
    initiator: Initiator<AwsLcKeyPair>,
    responder: Responder,
    m1: Vec<u8>,
    m2: Vec<u8>,
}

fn states() -> States {
    let (isa, rsa, ci, cr) = phase1(11);
    let config = qm_config(GCM, Some(DhGroup::Ecp256), true);
    let (initiator, m1) = Initiator::start(&ci, &isa, config.clone(), I_SPI).unwrap();
    let (responder, m2) = Responder::handle_offer(&cr, &rsa, &config, R_SPI, &m1).unwrap();
    States {
        crypto: ci,
        rsa,
        config,
        initiator,
        responder,
        m1,
        m2,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let s = states();
        let _ = Responder::handle_offer(&s.crypto, &s.rsa, &s.config, R_SPI, &bytes);
        let _ = s.initiator.handle_reply(&s.crypto, &bytes);
        let _ = s.responder.handle_hash3(&s.crypto, &bytes);
    }

    #[test]
    fn mutated_messages_never_panic(pos in any::<usize>(), val in any::<u8>()) {
        let s = states();
        let mut m1 = s.m1.clone();
        let p = pos % m1.len();
        m1[p] ^= val | 1;
        let _ = Responder::handle_offer(&s.crypto, &s.rsa, &s.config, R_SPI, &m1);
        let mut m2 = s.m2.clone();
        let p = pos % m2.len();
        m2[p] ^= val | 1;
        let _ = s.initiator.handle_reply(&s.crypto, &m2);
        let _ = s.responder.handle_hash3(&s.crypto, &m2);
    }
}
