//! IKEv1 Aggressive Mode with pre-shared keys (RFC 2409 5, 5.4; RFC 2408 4.7): in-memory
//! handshakes between the two roles on aws-lc-rs, checked against the wire (HASH_R and HASH_I
//! recomputed with aws-lc-rs's `hmac` from the bytes sent, message 3 decrypted with the first
//! IV hash(g^xi | g^xr) computed here), Quick Mode over the result (the phase 2 IVs derive
//! from the last phase 1 block), message 3 in plaintext, a wrong or unknown pre-shared key,
//! group rules, NAT detection and forced encapsulation with message 3 on the NAT-T port, and
//! property tests feeding mutated messages to every receiving state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use aws_lc_rs::{digest, hmac};
use proptest::prelude::*;
use realm_ike::ikev1::aggressive_mode::{
    AggrReplied, AggrSentFirst, FirstMessageError, Initiator, Responder,
};
use realm_ike::ikev1::keys::Iv;
use realm_ike::ikev1::main_mode::{IsakmpSa, MainModeConfig, MainModeError};
use realm_ike::ikev1::nat_t::{Endpoints, NatTConfig, NatTVersion};
use realm_ike::ikev1::quick_mode::{self, QuickModeConfig};
use realm_ike::isakmp::checks::{self, Context, SaState, Verdict};
use realm_ike::proposal::{
    AesKeySize, BuildError, EspCipher, EspProposal, IkeProposal, IpsecMode, Preference,
};
use realm_ike::{AwsLcKeyPair, CipherAlgorithm, DhGroup, HashAlgorithm};
use realm_wire::isakmp::{
    Body, ExchangeType, Flags, Header, Identification, KeyExchange, Message, NotifyMessageType,
    Packet, Padding, Payload, PayloadBody, PayloadChain, PayloadType,
};

mod common;
use common::SeededCrypto;

const PSK: &[u8] = b"correct horse battery staple";
const NAT_T_PORT: u16 = 4500;

fn ecp256() -> IkeProposal {
    IkeProposal::new(
        CipherAlgorithm::Aes128Cbc,
        HashAlgorithm::Sha256,
        DhGroup::Ecp256,
    )
}

fn modp2048() -> IkeProposal {
    IkeProposal::new(
        CipherAlgorithm::Aes256Cbc,
        HashAlgorithm::Sha256,
        DhGroup::Modp2048,
    )
}

fn config(proposals: &[IkeProposal], id: &str, nat_t: NatTConfig) -> MainModeConfig {
    MainModeConfig {
        proposals: proposals.to_vec(),
        lifetime: NonZeroU32::new(10_800).unwrap(),
        preference: Preference::Ours,
        local_id: Identification::fqdn(id),
        auth: realm_ike::ikev1::main_mode::Phase1Credentials::PreSharedKey,
        nat_t,
        vendor_ids: Vec::new(),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ends(local: &str, remote: &str) -> Endpoints {
    Endpoints {
        local: addr(local),
        remote: addr(remote),
    }
}

/// The addresses of messages 1 and 2 on each side, and of message 3 at the responder.
struct Path {
    initiator: Endpoints,
    responder: Endpoints,
    responder_m3: Endpoints,
}

/// No NAT; message 3 on port 500 (no NAT is detected, nobody floats).
fn direct() -> Path {
    Path {
        initiator: ends("192.0.2.1:500", "198.51.100.2:500"),
        responder: ends("198.51.100.2:500", "192.0.2.1:500"),
        responder_m3: ends("198.51.100.2:500", "192.0.2.1:500"),
    }
}

/// No NAT, but message 3 on the NAT-T port (forced encapsulation floats).
fn direct_floated() -> Path {
    Path {
        responder_m3: ends("198.51.100.2:4500", "192.0.2.1:4500"),
        ..direct()
    }
}

/// The initiator at 10.0.0.2 behind a NAT mapping port 500 to 203.0.113.7:40123 and port 4500
/// to 203.0.113.7:40124.
fn initiator_behind_nat() -> Path {
    Path {
        initiator: ends("10.0.0.2:500", "198.51.100.2:500"),
        responder: ends("198.51.100.2:500", "203.0.113.7:40123"),
        responder_m3: ends("198.51.100.2:4500", "203.0.113.7:40124"),
    }
}

/// The responder at 172.16.0.9 behind a NAT forwarding 198.51.100.2:500 and :4500 to it.
fn responder_behind_nat() -> Path {
    Path {
        initiator: ends("192.0.2.1:500", "198.51.100.2:500"),
        responder: ends("172.16.0.9:500", "192.0.2.1:500"),
        responder_m3: ends("172.16.0.9:4500", "192.0.2.1:4500"),
    }
}

fn left() -> Identification {
    Identification::fqdn("left")
}

/// The responder's PSK lookup: `psk` for the identity "left", none for anyone else.
fn lookup(psk: &'static [u8]) -> impl FnOnce(&Identification) -> Option<Vec<u8>> {
    move |id| (*id == left()).then(|| psk.to_vec())
}

struct Run {
    m1: Vec<u8>,
    m2: Vec<u8>,
    m3: Vec<u8>,
    isa: IsakmpSa,
    rsa: IsakmpSa,
    ci: SeededCrypto,
    cr: SeededCrypto,
}

/// Messages 1 to 3: the initiator's SA, the messages and the responder awaiting message 3.
struct Exchange {
    m1: Vec<u8>,
    m2: Vec<u8>,
    m3: Vec<u8>,
    isa: IsakmpSa,
    r: Responder<AggrReplied>,
    ci: SeededCrypto,
    cr: SeededCrypto,
}

fn exchange(seed: u64, (i_cfg, r_cfg): (MainModeConfig, MainModeConfig), path: &Path) -> Exchange {
    let ci = SeededCrypto::new(seed);
    let cr = SeededCrypto::new(seed ^ 0x5555_aaaa);
    let (i, m1) = Initiator::start(&ci, i_cfg, path.initiator).unwrap();
    assert_eq!(i.last_sent(), m1);
    let (r, m2) =
        Responder::handle_first(r_cfg, [9; 8], path.responder, &cr, &m1, lookup(PSK)).unwrap();
    assert_eq!(r.last_sent(), m2);
    assert_eq!(*r.peer_id(), left());
    let (isa, m3) = i
        .handle_second(&ci, &m2, PSK, NAT_T_PORT)
        .map_err(|f| f.error)
        .unwrap();
    Exchange {
        m1,
        m2,
        m3,
        isa,
        r,
        ci,
        cr,
    }
}

fn run_with(seed: u64, configs: (MainModeConfig, MainModeConfig), path: &Path) -> Run {
    let x = exchange(seed, configs, path);
    let rsa =
        x.r.handle_third(&x.cr, &x.m3, path.responder_m3)
            .map_err(|f| f.error)
            .unwrap();
    Run {
        m1: x.m1,
        m2: x.m2,
        m3: x.m3,
        isa: x.isa,
        rsa,
        ci: x.ci,
        cr: x.cr,
    }
}

fn configs() -> (MainModeConfig, MainModeConfig) {
    (
        config(&[ecp256()], "left", nat_t_on()),
        config(&[ecp256()], "right", nat_t_on()),
    )
}

fn run(seed: u64, nat_t: (NatTConfig, NatTConfig), path: &Path) -> Run {
    run_with(
        seed,
        (
            config(&[ecp256()], "left", nat_t.0),
            config(&[ecp256()], "right", nat_t.1),
        ),
        path,
    )
}

fn nat_t_on() -> NatTConfig {
    NatTConfig::default()
}

fn forced() -> NatTConfig {
    NatTConfig {
        enabled: true,
        force_encap: true,
    }
}

fn disabled() -> NatTConfig {
    NatTConfig {
        enabled: false,
        force_encap: false,
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

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign().as_ref().to_vec()
}

/// The first phase 1 IV, hash(g^xi | g^xr) truncated to the AES block (RFC 2409 Appendix B),
/// from the KE payloads on the wire.
fn first_iv(m1: &[u8], m2: &[u8]) -> Iv {
    let g_xi = raw_body(m1, PayloadType::KeyExchange);
    let g_xr = raw_body(m2, PayloadType::KeyExchange);
    let d = digest::digest(&digest::SHA256, &[g_xi, g_xr].concat());
    Iv::new(&d.as_ref()[..16]).unwrap()
}

fn checked(bytes: &[u8], sa: SaState) -> Message {
    match checks::check(bytes, &Context::new(sa, &checks::IKEV1_EXCHANGES)) {
        Verdict::Accept(m) => {
            assert_eq!(m.header.exchange_type, ExchangeType::Aggressive);
            assert_eq!(m.header.message_id, 0);
            m
        }
        Verdict::Reject(r) => panic!("checks refused our own message: {r:?}"),
    }
}

fn aggressive(keyed: bool) -> SaState {
    SaState::Phase1 {
        exchange: ExchangeType::Aggressive,
        keyed,
    }
}

/// Message 3 decrypted with `sa`'s key and `iv`: its header and the plaintext payloads.
fn decrypt_m3(sa: &IsakmpSa, crypto: &SeededCrypto, m3: &[u8], iv: &Iv) -> (Header, Vec<Payload>) {
    let m = checked(m3, aggressive(true));
    let Body::Encrypted {
        next_payload,
        ciphertext,
    } = m.body
    else {
        panic!("message 3 is not encrypted");
    };
    let mut plain = ciphertext.clone();
    sa.encryption_key.decrypt(crypto, iv, &mut plain).unwrap();
    let chain = PayloadChain::parse(next_payload, &plain, Padding::Zeros).unwrap();
    (m.header, chain.payloads)
}

#[test]
fn both_roles_complete_and_agree_with_the_wire() {
    let run = run(1, (nat_t_on(), nat_t_on()), &direct());
    let (isa, rsa) = (&run.isa, &run.rsa);
    assert!(isa.is_initiator && !rsa.is_initiator);
    assert_eq!(isa.peer_id, Identification::fqdn("right"));
    assert_eq!(rsa.peer_id, left());
    assert_eq!(
        (isa.initiator_cookie, isa.responder_cookie),
        (rsa.initiator_cookie, rsa.responder_cookie)
    );
    assert_eq!(isa.responder_cookie, [9; 8]);
    assert_eq!(isa.keys.skeyid_d().expose(), rsa.keys.skeyid_d().expose());
    assert_eq!(isa.keys.skeyid_a().expose(), rsa.keys.skeyid_a().expose());
    assert_eq!(isa.keys.skeyid_e().expose(), rsa.keys.skeyid_e().expose());
    assert_eq!(isa.encryption_key.expose(), rsa.encryption_key.expose());
    assert_eq!(isa.choice.proposal, ecp256());
    assert_eq!(rsa.choice.proposal, ecp256());

    // The messages: plaintext 1 and 2, encrypted 3, all Aggressive with Message ID 0.
    let m1 = checked(&run.m1, SaState::None);
    let m2 = checked(&run.m2, aggressive(false));
    assert!(!m1.header.flags.encryption() && !m2.header.flags.encryption());
    assert_eq!(m1.header.responder_cookie, [0; 8]);
    let types = |m: &Message| {
        m.payloads()
            .iter()
            .map(|p| p.payload_type())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        types(&m1)[..4],
        [
            PayloadType::SecurityAssociation,
            PayloadType::KeyExchange,
            PayloadType::Nonce,
            PayloadType::Identification
        ]
    );
    for t in [
        PayloadType::SecurityAssociation,
        PayloadType::KeyExchange,
        PayloadType::Nonce,
        PayloadType::Identification,
        PayloadType::Hash,
    ] {
        assert_eq!(types(&m2).iter().filter(|x| **x == t).count(), 1, "{t:?}");
    }

    // SKEYID = prf(psk, Ni_b | Nr_b); HASH_R and HASH_I recomputed from the wire.
    let ni = raw_body(&run.m1, PayloadType::Nonce);
    let nr = raw_body(&run.m2, PayloadType::Nonce);
    let skeyid = hmac_sha256(PSK, &[&ni, &nr]);
    assert_eq!(skeyid, isa.keys.skeyid().expose());
    let g_xi = raw_body(&run.m1, PayloadType::KeyExchange);
    let g_xr = raw_body(&run.m2, PayloadType::KeyExchange);
    let sa_i_b = raw_body(&run.m1, PayloadType::SecurityAssociation);
    let id_i_b = raw_body(&run.m1, PayloadType::Identification);
    let id_r_b = raw_body(&run.m2, PayloadType::Identification);
    let (cky_i, cky_r) = (isa.initiator_cookie, isa.responder_cookie);
    let hash_r = hmac_sha256(&skeyid, &[&g_xr, &g_xi, &cky_r, &cky_i, &sa_i_b, &id_r_b]);
    assert_eq!(raw_body(&run.m2, PayloadType::Hash), hash_r);
    let hash_i = hmac_sha256(&skeyid, &[&g_xi, &g_xr, &cky_i, &cky_r, &sa_i_b, &id_i_b]);

    // Message 3 decrypts under the first IV, HASH first; its last block ends phase 1.
    let iv = first_iv(&run.m1, &run.m2);
    let (header, payloads) = decrypt_m3(isa, &run.ci, &run.m3, &iv);
    assert!(header.flags.encryption());
    match &payloads[0].body {
        PayloadBody::Hash(h) => assert_eq!(h.data, hash_i),
        other => panic!("message 3 starts with {other:?}"),
    }
    assert_eq!(payloads.len(), 3, "HASH_I and two NAT-D");
    let last = Iv::last_block_of(&run.m3).unwrap();
    assert_eq!(isa.last_phase1_block, last);
    assert_eq!(rsa.last_phase1_block, last);
    assert_ne!(last, iv);
}

#[test]
fn aes256_modp2048_and_a_responder_with_several_groups() {
    let run = run_with(
        2,
        (
            config(&[modp2048()], "left", nat_t_on()),
            config(&[ecp256(), modp2048()], "right", nat_t_on()),
        ),
        &direct(),
    );
    assert_eq!(run.isa.choice.proposal, modp2048());
    assert_eq!(run.rsa.choice.proposal, modp2048());
    assert_eq!(run.isa.encryption_key.expose().len(), 32);
    assert_eq!(
        run.isa.encryption_key.expose(),
        run.rsa.encryption_key.expose()
    );
    assert_eq!(raw_body(&run.m1, PayloadType::KeyExchange).len(), 256);
}

fn qm_config(run_sa: &IsakmpSa) -> QuickModeConfig {
    QuickModeConfig {
        proposals: vec![EspProposal::new(
            EspCipher::AesGcm16(AesKeySize::Bits128),
            Some(DhGroup::Ecp256),
        )],
        mode: IpsecMode::Tunnel,
        udp: run_sa.nat.udp_encapsulation(),
        original_addresses: None,
        lifetime: NonZeroU32::new(3_600).unwrap(),
        preference: Preference::Ours,
        client_ids: None,
    }
}

/// Quick Mode from the initiator's SA to the responder's; `Err` when a message is refused.
fn quick_mode(
    isa: &IsakmpSa,
    ci: &SeededCrypto,
    rsa: &IsakmpSa,
    cr: &SeededCrypto,
) -> Result<(), String> {
    let (i, m1) = quick_mode::Initiator::start(ci, isa, qm_config(isa), 0xc1c1_0001).unwrap();
    let (r, m2) = quick_mode::Responder::handle_offer(cr, rsa, &qm_config(rsa), 0xc2c2_0002, &m1)
        .map_err(|e| format!("{e:?}"))?;
    let (ipair, m3) = i
        .handle_reply(ci, &m2)
        .map_err(|f| format!("{:?}", f.error))?;
    let rpair = r
        .handle_hash3(cr, &m3)
        .map_err(|f| format!("{:?}", f.error))?;
    assert_eq!(
        ipair.outbound.encryption_key.expose(),
        rpair.inbound.encryption_key.expose()
    );
    assert_eq!(
        ipair.inbound.encryption_key.expose(),
        rpair.outbound.encryption_key.expose()
    );
    Ok(())
}

#[test]
fn quick_mode_runs_over_the_aggressive_mode_sa() {
    let run = run(3, (nat_t_on(), nat_t_on()), &direct());
    quick_mode(&run.isa, &run.ci, &run.rsa, &run.cr).unwrap();
    // And the other way round: the responder starts phase 2.
    quick_mode(&run.rsa, &run.cr, &run.isa, &run.ci).unwrap();
}

#[test]
fn a_plaintext_message_3_is_accepted_and_phase_2_chains_from_the_first_iv() {
    let x = exchange(4, configs(), &direct());
    let first = first_iv(&x.m1, &x.m2);
    let (mut header, payloads) = decrypt_m3(&x.isa, &x.ci, &x.m3, &first);
    header.flags = Flags::empty();
    let plain = Message::new(header, payloads).to_bytes().unwrap();
    let m = checked(&plain, aggressive(true));
    assert!(!m.header.flags.encryption());
    let rsa =
        x.r.handle_third(&x.cr, &plain, direct().responder_m3)
            .map_err(|f| f.error)
            .unwrap();
    assert_eq!(rsa.last_phase1_block, first);
    assert_eq!(rsa.keys.skeyid_d().expose(), x.isa.keys.skeyid_d().expose());

    // The initiator's SA still ends at message 3's ciphertext: Quick Mode's IVs differ, and
    // the responder cannot read its first message.
    assert!(quick_mode(&x.isa, &x.ci, &rsa, &x.cr).is_err());
    // A peer that sent message 3 in plaintext ends phase 1 at the first IV: Quick Mode works.
    let mut isa = x.isa.clone();
    isa.last_phase1_block = first;
    quick_mode(&isa, &x.ci, &rsa, &x.cr).unwrap();
}

#[test]
fn a_wrong_psk_is_refused_by_the_initiator_and_the_state_survives() {
    let ci = SeededCrypto::new(5);
    let cr = SeededCrypto::new(6);
    let path = direct();
    let (i, m1) =
        Initiator::start(&ci, config(&[ecp256()], "left", nat_t_on()), path.initiator).unwrap();
    let r_cfg = config(&[ecp256()], "right", nat_t_on());
    let (_, m2) = Responder::handle_first(
        r_cfg.clone(),
        [9; 8],
        path.responder,
        &cr,
        &m1,
        lookup(b"not the key"),
    )
    .unwrap();
    let failure = i.handle_second(&ci, &m2, PSK, NAT_T_PORT).unwrap_err();
    assert_eq!(failure.error, MainModeError::HashMismatch);
    assert_eq!(
        failure.error.notify(),
        Some(NotifyMessageType::InvalidHashInformation)
    );
    // The initiator with the wrong key refuses the right message 2 the same way.
    let i = failure.state;
    let (r, m2) =
        Responder::handle_first(r_cfg, [8; 8], path.responder, &cr, &m1, lookup(PSK)).unwrap();
    let failure = i
        .handle_second(&ci, &m2, b"not the key", NAT_T_PORT)
        .unwrap_err();
    assert_eq!(failure.error, MainModeError::HashMismatch);
    // The state is unchanged: with the right key it completes.
    let (_isa, m3) = failure
        .state
        .handle_second(&ci, &m2, PSK, NAT_T_PORT)
        .map_err(|f| f.error)
        .unwrap();
    r.handle_third(&cr, &m3, path.responder_m3)
        .map_err(|f| f.error)
        .unwrap();
}

#[test]
fn a_tampered_message_3_is_refused_and_the_responder_state_survives() {
    let path = direct();
    let Exchange { m2, m3, r, cr, .. } = exchange(7, configs(), &path);
    let mut r = r;
    for at in [28, 40, m3.len() - 1] {
        let mut bad = m3.clone();
        bad[at] ^= 0x41;
        let f = r.handle_third(&cr, &bad, path.responder_m3).unwrap_err();
        assert!(
            matches!(
                f.error,
                MainModeError::HashMismatch | MainModeError::Undecryptable(_)
            ),
            "{:?}",
            f.error
        );
        assert!(matches!(
            f.error.notify(),
            Some(NotifyMessageType::InvalidHashInformation | NotifyMessageType::PayloadMalformed)
        ));
        r = f.state;
    }
    // Message 2 sent back is not message 3.
    let f = r.handle_third(&cr, &m2, path.responder_m3).unwrap_err();
    assert!(f.error.notify().is_some());
    f.state
        .handle_third(&cr, &m3, path.responder_m3)
        .map_err(|f| f.error)
        .unwrap();
}

#[test]
fn an_unknown_initiator_identity_is_refused_with_invalid_id_information() {
    let ci = SeededCrypto::new(9);
    let cr = SeededCrypto::new(10);
    let path = direct();
    let (_, m1) = Initiator::start(
        &ci,
        config(&[ecp256()], "mallory", nat_t_on()),
        path.initiator,
    )
    .unwrap();
    let mut asked = None;
    let e = Responder::handle_first(
        config(&[ecp256()], "right", nat_t_on()),
        [9; 8],
        path.responder,
        &cr,
        &m1,
        |id| {
            asked = Some(id.clone());
            lookup(PSK)(id)
        },
    )
    .unwrap_err();
    assert_eq!(asked, Some(Identification::fqdn("mallory")));
    assert_eq!(
        e,
        FirstMessageError::UnknownPeer(Identification::fqdn("mallory"))
    );
    assert_eq!(e.notify(), Some(NotifyMessageType::InvalidIdInformation));
}

#[test]
fn proposals_of_different_groups_cannot_be_offered() {
    let ci = SeededCrypto::new(11);
    let e = Initiator::start(
        &ci,
        config(&[ecp256(), modp2048()], "left", nat_t_on()),
        direct().initiator,
    )
    .unwrap_err();
    assert_eq!(e, MainModeError::Build(BuildError::MixedPhase1Groups));
    assert_eq!(e.notify(), None);
    let e = Initiator::start(&ci, config(&[], "left", nat_t_on()), direct().initiator).unwrap_err();
    assert_eq!(e, MainModeError::Build(BuildError::NoProposals));
}

#[test]
fn a_responder_without_the_initiators_group_refuses() {
    let ci = SeededCrypto::new(12);
    let cr = SeededCrypto::new(13);
    let path = direct();
    let (_, m1) =
        Initiator::start(&ci, config(&[ecp256()], "left", nat_t_on()), path.initiator).unwrap();
    let e = Responder::handle_first(
        config(&[modp2048()], "right", nat_t_on()),
        [9; 8],
        path.responder,
        &cr,
        &m1,
        lookup(PSK),
    )
    .unwrap_err();
    assert!(
        matches!(e, FirstMessageError::Refused(MainModeError::Proposal(_))),
        "{e:?}"
    );
    assert_eq!(e.notify(), Some(NotifyMessageType::NoProposalChosen));
}

#[test]
fn a_ke_outside_the_offered_group_is_invalid_key_information() {
    let ci = SeededCrypto::new(14);
    let cr = SeededCrypto::new(15);
    let path = direct();
    // An offer of modp2048 whose KE is an ecp256 value (64 octets).
    let (_, m1) = Initiator::start(
        &ci,
        config(&[modp2048()], "left", nat_t_on()),
        path.initiator,
    )
    .unwrap();
    let mut m = Message::parse(&m1).unwrap();
    let Body::Payloads(chain) = &mut m.body else {
        panic!("plaintext");
    };
    for p in chain.payloads.iter_mut() {
        if let PayloadBody::KeyExchange(_) = p.body {
            *p = Payload::new(PayloadBody::KeyExchange(KeyExchange::new(vec![7; 64])));
        }
    }
    let e = Responder::handle_first(
        config(&[modp2048(), ecp256()], "right", nat_t_on()),
        [9; 8],
        path.responder,
        &cr,
        &m.to_bytes().unwrap(),
        lookup(PSK),
    )
    .unwrap_err();
    assert!(
        matches!(e, FirstMessageError::Refused(MainModeError::KeyExchange(_))),
        "{e:?}"
    );
    assert_eq!(e.notify(), Some(NotifyMessageType::InvalidKeyInformation));
}

/// HASH(CKY-I | CKY-R | IP | Port) with SHA-256, computed here.
fn nat_d_hash(sa: &IsakmpSa, at: SocketAddr) -> Vec<u8> {
    let ip = match at.ip() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let data = [
        sa.initiator_cookie.as_slice(),
        &sa.responder_cookie,
        &ip,
        &at.port().to_be_bytes(),
    ]
    .concat();
    digest::digest(&digest::SHA256, &data).as_ref().to_vec()
}

fn nat_d_of(payloads: &[Payload]) -> Vec<Vec<u8>> {
    payloads
        .iter()
        .filter_map(|p| match &p.body {
            PayloadBody::NatDiscovery(d) => Some(d.hash.clone()),
            _ => None,
        })
        .collect()
}

fn vendor_ids(bytes: &[u8]) -> Vec<Vec<u8>> {
    Message::parse(bytes)
        .unwrap()
        .payloads()
        .iter()
        .filter_map(|p| match &p.body {
            PayloadBody::VendorId(v) => Some(v.data.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn without_a_nat_nothing_is_encapsulated_and_the_nat_d_hashes_are_the_addresses() {
    let path = direct();
    let run = run(16, (nat_t_on(), nat_t_on()), &path);
    assert_eq!(run.isa.nat.version, Some(NatTVersion::Rfc3947));
    assert_eq!(run.rsa.nat.version, Some(NatTVersion::Rfc3947));
    assert!(!run.isa.nat.encapsulate() && !run.rsa.nat.encapsulate());
    // Message 2: the initiator's address (the destination), then the responder's.
    let m2 = Message::parse(&run.m2).unwrap();
    assert_eq!(
        nat_d_of(m2.payloads()),
        [
            nat_d_hash(&run.isa, path.initiator.local),
            nat_d_hash(&run.isa, path.initiator.remote)
        ]
    );
    // Message 3 on port 500.
    let iv = first_iv(&run.m1, &run.m2);
    let (_, p3) = decrypt_m3(&run.isa, &run.ci, &run.m3, &iv);
    assert_eq!(
        nat_d_of(&p3),
        [
            nat_d_hash(&run.isa, path.initiator.remote),
            nat_d_hash(&run.isa, path.initiator.local)
        ]
    );
}

#[test]
fn a_nat_in_front_of_the_initiator_floats_message_3_and_both_detect_it() {
    let path = initiator_behind_nat();
    let run = run(17, (nat_t_on(), nat_t_on()), &path);
    assert!(run.isa.nat.local_behind_nat && !run.isa.nat.remote_behind_nat);
    assert!(!run.rsa.nat.local_behind_nat && run.rsa.nat.remote_behind_nat);
    assert!(run.isa.nat.encapsulate() && run.rsa.nat.encapsulate());
    // Message 3's NAT-D hashes are of the floated datagram's addresses (port 4500).
    let iv = first_iv(&run.m1, &run.m2);
    let (_, p3) = decrypt_m3(&run.isa, &run.ci, &run.m3, &iv);
    assert_eq!(
        nat_d_of(&p3),
        [
            nat_d_hash(&run.isa, addr("198.51.100.2:4500")),
            nat_d_hash(&run.isa, addr("10.0.0.2:4500"))
        ]
    );
    quick_mode(&run.isa, &run.ci, &run.rsa, &run.cr).unwrap();
}

#[test]
fn a_nat_in_front_of_the_responder_is_detected_by_both() {
    let path = responder_behind_nat();
    let run = run(18, (nat_t_on(), nat_t_on()), &path);
    assert!(!run.isa.nat.local_behind_nat && run.isa.nat.remote_behind_nat);
    assert!(run.rsa.nat.local_behind_nat && !run.rsa.nat.remote_behind_nat);
    assert!(run.isa.nat.encapsulate() && run.rsa.nat.encapsulate());
}

#[test]
fn force_encap_on_either_side_makes_both_encapsulate() {
    for (i, r) in [(forced(), nat_t_on()), (nat_t_on(), forced())] {
        let run = run(19, (i, r), &direct_floated());
        assert!(run.isa.nat.encapsulate(), "initiator with {i:?} / {r:?}");
        assert!(run.rsa.nat.encapsulate(), "responder with {i:?} / {r:?}");
        assert_eq!(run.isa.nat.local_behind_nat, i.force_encap);
        assert_eq!(run.rsa.nat.local_behind_nat, r.force_encap);
        assert_eq!(run.isa.nat.remote_behind_nat, r.force_encap);
        assert_eq!(run.rsa.nat.remote_behind_nat, i.force_encap);
    }
}

#[test]
fn without_nat_t_on_one_side_there_are_no_nat_d_payloads() {
    for nat_t in [(disabled(), nat_t_on()), (nat_t_on(), disabled())] {
        let run = run(20, nat_t, &direct());
        assert_eq!(run.isa.nat.version, None);
        assert_eq!(run.rsa.nat.version, None);
        assert!(nat_d_of(Message::parse(&run.m2).unwrap().payloads()).is_empty());
        let iv = first_iv(&run.m1, &run.m2);
        let (_, p3) = decrypt_m3(&run.isa, &run.ci, &run.m3, &iv);
        assert_eq!(p3.len(), 1, "HASH_I alone");
        assert!(vendor_ids(&run.m2).is_empty());
    }
}

#[test]
fn a_draft_only_initiator_gets_the_draft_nat_d_in_messages_2_and_3() {
    let path = initiator_behind_nat();
    let ci = SeededCrypto::new(22);
    let cr = SeededCrypto::new(23);
    let (i_cfg, r_cfg) = configs();
    let (i, m1) = Initiator::start(&ci, i_cfg, path.initiator).unwrap();
    // Message 1 without the RFC 3947 Vendor ID (HASH_I does not cover Vendor IDs).
    let mut m = Message::parse(&m1).unwrap();
    let Body::Payloads(chain) = &mut m.body else {
        panic!("plaintext");
    };
    chain.payloads.retain(|p| {
        !matches!(&p.body, PayloadBody::VendorId(v) if v.data == realm_ike::ikev1::nat_t::VENDOR_ID_RFC3947)
    });
    let m1 = m.to_bytes().unwrap();
    let (r, m2) =
        Responder::handle_first(r_cfg, [9; 8], path.responder, &cr, &m1, lookup(PSK)).unwrap();
    assert_eq!(r.nat_version(), Some(NatTVersion::Draft02));
    let draft = PayloadType::Unknown(130);
    let count = |payloads: &[Payload]| {
        payloads
            .iter()
            .filter(|p| p.payload_type() == draft)
            .count()
    };
    assert_eq!(count(Message::parse(&m2).unwrap().payloads()), 2);
    let (isa, m3) = i
        .handle_second(&ci, &m2, PSK, NAT_T_PORT)
        .map_err(|f| f.error)
        .unwrap();
    assert_eq!(isa.nat.version, Some(NatTVersion::Draft02));
    assert!(isa.nat.local_behind_nat);
    let iv = first_iv(&m1, &m2);
    let m3_checked = {
        let mut ctx = Context::new(aggressive(true), &checks::IKEV1_EXCHANGES);
        ctx.draft_nat_t = true;
        match checks::check(&m3, &ctx) {
            Verdict::Accept(m) => m,
            Verdict::Reject(r) => panic!("{r:?}"),
        }
    };
    let Body::Encrypted {
        next_payload,
        ciphertext,
    } = m3_checked.body
    else {
        panic!("message 3 is not encrypted");
    };
    let mut plain = ciphertext.clone();
    isa.encryption_key.decrypt(&ci, &iv, &mut plain).unwrap();
    let p3 = PayloadChain::parse(next_payload, &plain, Padding::Zeros).unwrap();
    assert_eq!(count(&p3.payloads), 2);
    let rsa = r
        .handle_third(&cr, &m3, path.responder_m3)
        .map_err(|f| f.error)
        .unwrap();
    assert_eq!(rsa.nat.version, Some(NatTVersion::Draft02));
    assert!(rsa.nat.remote_behind_nat && !rsa.nat.local_behind_nat);
}

#[test]
fn a_main_mode_message_is_not_an_aggressive_mode_message_1() {
    let ci = SeededCrypto::new(24);
    let cr = SeededCrypto::new(25);
    let (_, mm1) = realm_ike::ikev1::main_mode::Initiator::start(
        &ci,
        config(&[ecp256()], "left", nat_t_on()),
        direct().initiator,
    )
    .unwrap();
    let e = Responder::handle_first(
        config(&[ecp256()], "right", nat_t_on()),
        [9; 8],
        direct().responder,
        &cr,
        &mm1,
        lookup(PSK),
    )
    .unwrap_err();
    assert!(
        matches!(e, FirstMessageError::Refused(MainModeError::Rejected(_))),
        "{e:?}"
    );
}

#[test]
fn extra_vendor_ids_go_in_messages_1_and_2() {
    let dpd = vec![0xaf, 0xca, 0xd7, 0x13];
    let mut i_cfg = config(&[ecp256()], "left", nat_t_on());
    i_cfg.vendor_ids = vec![dpd.clone()];
    let mut r_cfg = config(&[ecp256()], "right", nat_t_on());
    r_cfg.vendor_ids = vec![dpd.clone()];
    let run = run_with(21, (i_cfg, r_cfg), &direct());
    assert!(vendor_ids(&run.m1).contains(&dpd));
    assert!(vendor_ids(&run.m2).contains(&dpd));
    assert!(vendor_ids(&run.m2).contains(&realm_ike::ikev1::nat_t::VENDOR_ID_RFC3947.to_vec()));
}

/// The initiator awaiting message 2, with messages 1 and 2.
fn awaiting_second(
    seed: u64,
) -> (
    Initiator<AggrSentFirst<AwsLcKeyPair>>,
    Vec<u8>,
    Vec<u8>,
    SeededCrypto,
) {
    let ci = SeededCrypto::new(seed);
    let cr = SeededCrypto::new(seed + 1);
    let (i_cfg, r_cfg) = configs();
    let (i, m1) = Initiator::start(&ci, i_cfg, direct().initiator).unwrap();
    let (_, m2) =
        Responder::handle_first(r_cfg, [9; 8], direct().responder, &cr, &m1, lookup(PSK)).unwrap();
    (i, m1, m2, ci)
}

fn mutate(bytes: &[u8], edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for &(at, x) in edits {
        if !out.is_empty() {
            let n = out.len();
            out[at % n] ^= x;
        }
    }
    if let Some(c) = cut {
        out.truncate(c % (bytes.len() + 1));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn mutated_messages_never_panic_and_leave_the_states_usable(
        edits in proptest::collection::vec((any::<usize>(), 1u8..=255), 0..4),
        cut in proptest::option::of(any::<usize>()),
        which in 0usize..3,
    ) {
        let path = direct();
        match which {
            0 => {
                let (_, m1, _, _) = awaiting_second(0x00a9_9e55);
                let bad = mutate(&m1, &edits, cut);
                let cr = SeededCrypto::new(99);
                let result = Responder::handle_first(
                    config(&[ecp256()], "right", nat_t_on()),
                    [9; 8],
                    path.responder,
                    &cr,
                    &bad,
                    lookup(PSK),
                );
                if bad == m1 {
                    prop_assert!(result.is_ok());
                }
                if let Err(e) = result {
                    let _ = e.notify();
                }
            }
            1 => {
                let (i, _, m2, ci) = awaiting_second(0x00a9_9e57);
                let bad = mutate(&m2, &edits, cut);
                if let Err(f) = i.handle_second(&ci, &bad, PSK, NAT_T_PORT) {
                    let _ = f.error.notify();
                    // A refused message leaves the state as it was.
                    prop_assert!(f.state.handle_second(&ci, &m2, PSK, NAT_T_PORT).is_ok());
                }
            }
            _ => {
                let x = exchange(0x00a9_9e59, configs(), &path);
                let bad = mutate(&x.m3, &edits, cut);
                if let Err(f) = x.r.handle_third(&x.cr, &bad, path.responder_m3) {
                    let _ = f.error.notify();
                    prop_assert!(f.state.handle_third(&x.cr, &x.m3, path.responder_m3).is_ok());
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let cr = SeededCrypto::new(98);
        let _ = Responder::handle_first(
            config(&[ecp256()], "right", nat_t_on()),
            [9; 8],
            direct().responder,
            &cr,
            &bytes,
            lookup(PSK),
        );
        let (i, _, _, ci) = awaiting_second(0x000b_17e5);
        prop_assert!(i.handle_second(&ci, &bytes, PSK, NAT_T_PORT).is_err());
        let x = exchange(0x000b_17e7, configs(), &direct());
        prop_assert!(x.r.handle_third(&x.cr, &bytes, direct().responder_m3).is_err());
    }
}
