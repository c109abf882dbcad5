//! NAT traversal in IKEv1 (RFC 3947, and the draft-ietf-ipsec-nat-t-ike-02/03 variant): Main
//! Mode between the two roles with the endpoints each side would see, with and without a NAT in
//! between, forced encapsulation on either side, a peer without NAT-T, a draft-only initiator;
//! every NAT-D hash recomputed here with aws-lc-rs's `digest` from the cookies on the wire; then
//! Quick Mode UDP-encapsulated in tunnel mode and in transport mode with NAT-OA, in both
//! spellings, decrypting message 1 to see the NAT-OA payloads on the wire, a peer's NAT-OA in
//! tunnel mode (accepted, ignored) and without NAT-T (refused); and a property test over
//! arbitrary endpoints and forcing that both sides agree on who is behind a NAT.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use aws_lc_rs::{digest, hmac};
use realm_ike::ikev1::main_mode::{
    self, IsakmpSa, MainModeConfig, MainModeError, Phase1Credentials,
};
use realm_ike::ikev1::nat_t::{
    DRAFT_NAT_D_PAYLOAD_TYPE, DRAFT_NAT_OA_PAYLOAD_TYPE, Endpoints, NAT_T_VENDOR_IDS, NatDetection,
    NatTConfig, NatTVersion, VENDOR_ID_DRAFT_02, VENDOR_ID_DRAFT_02_N, VENDOR_ID_DRAFT_03,
    VENDOR_ID_RFC3947,
};
use realm_ike::ikev1::quick_mode::{self, ChildSaPair, QuickModeConfig};
use realm_ike::isakmp::checks::{self, Context, MessageIdState, SaState, Verdict};
use realm_ike::proposal::{
    AesKeySize, Encapsulation, EspCipher, EspProposal, IkeProposal, IpsecMode, Preference,
    UdpEncapsulation,
};
use realm_ike::{CipherAlgorithm, Crypto, DhGroup, HashAlgorithm};
use realm_wire::isakmp::{
    Body, ExchangeType, Hash, Identification, Message, NatDiscovery, NatOriginalAddress,
    NotifyMessageType, Padding, Payload, PayloadBody, PayloadChain, PayloadType, RawPayloads,
};
use std::time::UNIX_EPOCH;

mod common;
use common::SeededCrypto;

const PSK: &[u8] = b"correct horse battery staple";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The initiator's public address, the responder's, and a NAT's.
fn initiator_public() -> SocketAddr {
    addr("192.0.2.1:500")
}
fn responder_public() -> SocketAddr {
    addr("198.51.100.2:500")
}

fn ends(local: SocketAddr, remote: SocketAddr) -> Endpoints {
    Endpoints { local, remote }
}

/// No NAT: each side sees the other's real address.
fn direct() -> (Endpoints, Endpoints) {
    (
        ends(initiator_public(), responder_public()),
        ends(responder_public(), initiator_public()),
    )
}

/// The initiator at 10.0.0.2:500 behind a NAT that maps it to 203.0.113.7:40123.
fn initiator_behind_nat() -> (Endpoints, Endpoints) {
    (
        ends(addr("10.0.0.2:500"), responder_public()),
        ends(responder_public(), addr("203.0.113.7:40123")),
    )
}

/// The responder at 172.16.0.9:500 behind a NAT forwarding 198.51.100.2:500 to it.
fn responder_behind_nat() -> (Endpoints, Endpoints) {
    (
        ends(initiator_public(), responder_public()),
        ends(addr("172.16.0.9:500"), initiator_public()),
    )
}

fn config(hash: HashAlgorithm, id: &str, nat_t: NatTConfig) -> MainModeConfig {
    MainModeConfig {
        proposals: vec![IkeProposal::new(
            CipherAlgorithm::Aes128Cbc,
            hash,
            DhGroup::Ecp256,
        )],
        lifetime: NonZeroU32::new(10_800).unwrap(),
        preference: Preference::Ours,
        local_id: Identification::fqdn(id),
        auth: Phase1Credentials::PreSharedKey,
        nat_t,
        vendor_ids: Vec::new(),
    }
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

/// A Main Mode run: the six messages, what each side detected before message 5, and the SAs.
struct Run {
    messages: Vec<Vec<u8>>,
    i_nat: NatDetection,
    r_nat: NatDetection,
    isa: IsakmpSa,
    rsa: IsakmpSa,
    ci: SeededCrypto,
    cr: SeededCrypto,
}

fn main_mode_run(
    hash: HashAlgorithm,
    (i_nat_t, r_nat_t): (NatTConfig, NatTConfig),
    (i_ends, r_ends): (Endpoints, Endpoints),
    edit_m1: impl Fn(Vec<u8>) -> Vec<u8>,
) -> Run {
    let ci = SeededCrypto::new(0x5eed_0001);
    let cr = SeededCrypto::new(0x5eed_0002);
    let (i, m1) = main_mode::Initiator::start(&ci, config(hash, "left", i_nat_t), i_ends).unwrap();
    let m1 = edit_m1(m1);
    let (r, m2) =
        main_mode::Responder::handle_sa(config(hash, "right", r_nat_t), [9; 8], r_ends, &m1)
            .unwrap();
    let (i, m3) = i.handle_sa(&ci, &m2).map_err(|f| f.error).unwrap();
    let (r, m4) = r.handle_ke(&cr, &m3, PSK).map_err(|f| f.error).unwrap();
    let r_nat = r.nat();
    let (i, m5) = i.handle_ke(&ci, &m4, PSK).map_err(|f| f.error).unwrap();
    let i_nat = i.nat();
    let (rsa, m6) = r
        .handle_id(&cr, &m5, UNIX_EPOCH)
        .map_err(|f| f.error)
        .unwrap();
    let isa = i
        .handle_id(&ci, &m6, UNIX_EPOCH)
        .map_err(|f| f.error)
        .unwrap();
    assert_eq!(isa.nat, i_nat);
    assert_eq!(rsa.nat, r_nat);
    Run {
        messages: vec![m1, m2, m3, m4, m5, m6],
        i_nat,
        r_nat,
        isa,
        rsa,
        ci,
        cr,
    }
}

fn payloads(bytes: &[u8]) -> Vec<Payload> {
    Message::parse(bytes).unwrap().payloads().to_vec()
}

fn vendor_ids(bytes: &[u8]) -> Vec<Vec<u8>> {
    payloads(bytes)
        .into_iter()
        .filter_map(|p| match p.body {
            PayloadBody::VendorId(v) => Some(v.data),
            _ => None,
        })
        .collect()
}

/// The NAT-D hashes of a message, in order, of payload type `wanted` (20 or 130).
fn nat_d(bytes: &[u8], wanted: PayloadType) -> Vec<Vec<u8>> {
    payloads(bytes)
        .into_iter()
        .filter_map(|p| match p.body {
            PayloadBody::NatDiscovery(d) if wanted == PayloadType::NatDiscovery => Some(d.hash),
            PayloadBody::Raw { payload_type, data } if payload_type == wanted => Some(data),
            _ => None,
        })
        .collect()
}

/// HASH(CKY-I | CKY-R | IP | Port), computed here with aws-lc-rs.
fn expected_nat_d(hash: HashAlgorithm, m: &[u8], at: SocketAddr) -> Vec<u8> {
    let header = Message::parse(m).unwrap().header;
    let alg = match hash {
        HashAlgorithm::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlgorithm::Sha256 => &digest::SHA256,
        other => panic!("no test hash for {other:?}"),
    };
    let ip = match at.ip() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let data = [
        header.initiator_cookie.as_slice(),
        &header.responder_cookie,
        &ip,
        &at.port().to_be_bytes(),
    ]
    .concat();
    digest::digest(alg, &data).as_ref().to_vec()
}

#[test]
fn no_nat_rfc3947_is_negotiated_and_nothing_is_encapsulated() {
    for hash in [HashAlgorithm::Sha256, HashAlgorithm::Sha1] {
        let nat_t = (NatTConfig::default(), NatTConfig::default());
        let run = main_mode_run(hash, nat_t, direct(), |m| m);
        let m = &run.messages;
        // Message 1 announces every version, message 2 answers the best one.
        assert_eq!(
            vendor_ids(&m[0]),
            NAT_T_VENDOR_IDS.map(|v| v.to_vec()).to_vec()
        );
        assert_eq!(vendor_ids(&m[1]), vec![VENDOR_ID_RFC3947.to_vec()]);
        // RFC 3947 3.2: the remote end's hash first, then the sender's own.
        let (i_ends, r_ends) = direct();
        assert_eq!(
            nat_d(&m[2], PayloadType::NatDiscovery),
            vec![
                expected_nat_d(hash, &m[2], i_ends.remote),
                expected_nat_d(hash, &m[2], i_ends.local),
            ]
        );
        assert_eq!(
            nat_d(&m[3], PayloadType::NatDiscovery),
            vec![
                expected_nat_d(hash, &m[3], r_ends.remote),
                expected_nat_d(hash, &m[3], r_ends.local),
            ]
        );
        assert_eq!(
            nat_d(&m[2], PayloadType::NatDiscovery)[0].len(),
            hash.output_len()
        );
        for nat in [run.i_nat, run.r_nat] {
            assert_eq!(nat.version, Some(NatTVersion::Rfc3947));
            assert!(!nat.local_behind_nat && !nat.remote_behind_nat);
            assert!(!nat.encapsulate());
            assert_eq!(nat.udp_encapsulation(), UdpEncapsulation::None);
        }
    }
}

#[test]
fn a_nat_in_front_of_the_initiator_is_detected_by_both() {
    let run = main_mode_run(
        HashAlgorithm::Sha256,
        (NatTConfig::default(), NatTConfig::default()),
        initiator_behind_nat(),
        |m| m,
    );
    assert_eq!(
        run.i_nat,
        NatDetection {
            version: Some(NatTVersion::Rfc3947),
            local_behind_nat: true,
            remote_behind_nat: false,
        }
    );
    assert_eq!(
        run.r_nat,
        NatDetection {
            version: Some(NatTVersion::Rfc3947),
            local_behind_nat: false,
            remote_behind_nat: true,
        }
    );
    for nat in [run.i_nat, run.r_nat] {
        assert!(nat.encapsulate());
        assert_eq!(nat.udp_encapsulation(), UdpEncapsulation::Rfc3947);
    }
    // The initiator hashed its private address; the responder the NAT's.
    let m = &run.messages;
    assert_eq!(
        nat_d(&m[2], PayloadType::NatDiscovery)[1],
        expected_nat_d(HashAlgorithm::Sha256, &m[2], addr("10.0.0.2:500"))
    );
    assert_eq!(
        nat_d(&m[3], PayloadType::NatDiscovery)[0],
        expected_nat_d(HashAlgorithm::Sha256, &m[3], addr("203.0.113.7:40123"))
    );
}

#[test]
fn a_nat_in_front_of_the_responder_is_detected_by_both() {
    let run = main_mode_run(
        HashAlgorithm::Sha256,
        (NatTConfig::default(), NatTConfig::default()),
        responder_behind_nat(),
        |m| m,
    );
    assert!(!run.i_nat.local_behind_nat && run.i_nat.remote_behind_nat);
    assert!(run.r_nat.local_behind_nat && !run.r_nat.remote_behind_nat);
    assert!(run.i_nat.encapsulate() && run.r_nat.encapsulate());
}

#[test]
fn force_encap_on_either_side_makes_both_encapsulate() {
    // Initiator forces: it claims to be behind a NAT, the responder believes it.
    let run = main_mode_run(
        HashAlgorithm::Sha256,
        (forced(), NatTConfig::default()),
        direct(),
        |m| m,
    );
    assert!(run.i_nat.local_behind_nat && !run.i_nat.remote_behind_nat);
    assert!(!run.r_nat.local_behind_nat && run.r_nat.remote_behind_nat);
    assert!(run.i_nat.encapsulate() && run.r_nat.encapsulate());
    // The forced hash is not the hash of the initiator's address (nor of anything addressable).
    let m = &run.messages;
    let sent = nat_d(&m[2], PayloadType::NatDiscovery);
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0],
        expected_nat_d(HashAlgorithm::Sha256, &m[2], responder_public())
    );
    assert_ne!(
        sent[1],
        expected_nat_d(HashAlgorithm::Sha256, &m[2], initiator_public())
    );
    assert_eq!(sent[1].len(), 32);

    // Responder forces.
    let run = main_mode_run(
        HashAlgorithm::Sha256,
        (NatTConfig::default(), forced()),
        direct(),
        |m| m,
    );
    assert!(!run.i_nat.local_behind_nat && run.i_nat.remote_behind_nat);
    assert!(run.r_nat.local_behind_nat && !run.r_nat.remote_behind_nat);
    assert!(run.i_nat.encapsulate() && run.r_nat.encapsulate());
}

#[test]
fn a_peer_without_nat_t_gets_no_nat_d() {
    for nat_t in [
        (NatTConfig::default(), disabled()),
        (disabled(), NatTConfig::default()),
        (disabled(), disabled()),
    ] {
        let run = main_mode_run(HashAlgorithm::Sha256, nat_t, initiator_behind_nat(), |m| m);
        let m = &run.messages;
        assert_eq!(vendor_ids(&m[0]).is_empty(), !nat_t.0.enabled);
        assert!(vendor_ids(&m[1]).is_empty());
        for msg in &m[2..4] {
            assert!(nat_d(msg, PayloadType::NatDiscovery).is_empty());
            assert_eq!(payloads(msg).len(), 2, "KE and Nonce only");
        }
        for nat in [run.i_nat, run.r_nat] {
            assert_eq!(nat, NatDetection::default());
            assert!(!nat.encapsulate());
        }
    }
}

#[test]
fn nat_d_without_nat_t_vendor_ids_is_refused() {
    let ci = SeededCrypto::new(3);
    let cr = SeededCrypto::new(4);
    let hash = HashAlgorithm::Sha256;
    let (i_ends, r_ends) = direct();
    let (i, m1) =
        main_mode::Initiator::start(&ci, config(hash, "left", disabled()), i_ends).unwrap();
    let (r, m2) = main_mode::Responder::handle_sa(
        config(hash, "right", NatTConfig::default()),
        [9; 8],
        r_ends,
        &m1,
    )
    .unwrap();
    let (_i, m3) = i.handle_sa(&ci, &m2).map_err(|f| f.error).unwrap();
    let mut msg = Message::parse(&m3).unwrap();
    let Body::Payloads(chain) = &mut msg.body else {
        panic!("plaintext message 3")
    };
    chain
        .payloads
        .push(Payload::new(PayloadBody::NatDiscovery(NatDiscovery::new(
            vec![7; 32],
        ))));
    let forged = msg.to_bytes().unwrap();
    let f = r
        .handle_ke(&cr, &forged, PSK)
        .expect_err("NAT-D without NAT-T");
    assert_eq!(
        f.error,
        MainModeError::UnexpectedPayload(PayloadType::NatDiscovery)
    );
    assert_eq!(
        f.error.notify(),
        Some(NotifyMessageType::InvalidPayloadType)
    );
    // The state is intact: the real message 3 still works.
    assert!(f.state.handle_ke(&cr, &m3, PSK).is_ok());
}

#[test]
fn a_single_nat_d_is_refused() {
    let ci = SeededCrypto::new(5);
    let cr = SeededCrypto::new(6);
    let hash = HashAlgorithm::Sha256;
    let (i_ends, r_ends) = direct();
    let (i, m1) =
        main_mode::Initiator::start(&ci, config(hash, "left", NatTConfig::default()), i_ends)
            .unwrap();
    let (r, m2) = main_mode::Responder::handle_sa(
        config(hash, "right", NatTConfig::default()),
        [9; 8],
        r_ends,
        &m1,
    )
    .unwrap();
    let (_i, m3) = i.handle_sa(&ci, &m2).map_err(|f| f.error).unwrap();
    let mut msg = Message::parse(&m3).unwrap();
    let Body::Payloads(chain) = &mut msg.body else {
        panic!("plaintext message 3")
    };
    assert_eq!(chain.payloads.len(), 4);
    chain.payloads.pop();
    let f = r
        .handle_ke(&cr, &msg.to_bytes().unwrap(), PSK)
        .expect_err("one NAT-D");
    assert_eq!(f.error.notify(), Some(NotifyMessageType::PayloadMalformed));
}

/// Message 1 with only `vid` among its Vendor IDs.
fn only_vendor_id(vid: [u8; 16]) -> impl Fn(Vec<u8>) -> Vec<u8> {
    move |m1| {
        let mut msg = Message::parse(&m1).unwrap();
        let Body::Payloads(chain) = &mut msg.body else {
            panic!("plaintext message 1")
        };
        chain.payloads.retain(|p| match &p.body {
            PayloadBody::VendorId(v) => v.data == vid,
            _ => true,
        });
        assert_eq!(chain.payloads.len(), 2);
        msg.to_bytes().unwrap()
    }
}

#[test]
fn a_draft_only_initiator_gets_the_draft() {
    for vid in [VENDOR_ID_DRAFT_02, VENDOR_ID_DRAFT_02_N, VENDOR_ID_DRAFT_03] {
        let run = main_mode_run(
            HashAlgorithm::Sha256,
            (NatTConfig::default(), NatTConfig::default()),
            initiator_behind_nat(),
            only_vendor_id(vid),
        );
        let m = &run.messages;
        assert_eq!(vendor_ids(&m[1]), vec![vid.to_vec()]);
        let draft = PayloadType::Unknown(DRAFT_NAT_D_PAYLOAD_TYPE);
        let (i_ends, r_ends) = initiator_behind_nat();
        assert!(nat_d(&m[2], PayloadType::NatDiscovery).is_empty());
        assert_eq!(
            nat_d(&m[2], draft),
            vec![
                expected_nat_d(HashAlgorithm::Sha256, &m[2], i_ends.remote),
                expected_nat_d(HashAlgorithm::Sha256, &m[2], i_ends.local),
            ]
        );
        assert_eq!(
            nat_d(&m[3], draft),
            vec![
                expected_nat_d(HashAlgorithm::Sha256, &m[3], r_ends.remote),
                expected_nat_d(HashAlgorithm::Sha256, &m[3], r_ends.local),
            ]
        );
        for nat in [run.i_nat, run.r_nat] {
            assert_eq!(nat.version, Some(NatTVersion::Draft02));
            assert!(nat.encapsulate());
            assert_eq!(nat.udp_encapsulation(), UdpEncapsulation::Draft);
        }
        assert!(run.i_nat.local_behind_nat && run.r_nat.remote_behind_nat);
    }
}

#[test]
fn the_responder_prefers_rfc3947_then_the_newest_draft() {
    let offered = [VENDOR_ID_DRAFT_02, VENDOR_ID_DRAFT_03, VENDOR_ID_DRAFT_02_N];
    assert_eq!(
        NatTVersion::select(offered.iter().map(|v| v.as_slice())),
        Some(VENDOR_ID_DRAFT_03)
    );
    let with_rfc = [VENDOR_ID_DRAFT_02, VENDOR_ID_RFC3947];
    assert_eq!(
        NatTVersion::select(with_rfc.iter().map(|v| v.as_slice())),
        Some(VENDOR_ID_RFC3947)
    );
    assert_eq!(NatTVersion::select([&[1u8; 16][..]]), None);
}

const I_SPI: u32 = 0xc1c1_0001;
const R_SPI: u32 = 0xc2c2_0002;

fn qm_config(mode: IpsecMode, udp: UdpEncapsulation, oa: (IpAddr, IpAddr)) -> QuickModeConfig {
    QuickModeConfig {
        proposals: vec![EspProposal::new(
            EspCipher::AesGcm16(AesKeySize::Bits128),
            None,
        )],
        mode,
        udp,
        original_addresses: Some(oa),
        lifetime: NonZeroU32::new(3_600).unwrap(),
        preference: Preference::Ours,
        client_ids: None,
    }
}

/// The payload types of a Quick Mode message, decrypted here with the phase 2 IV.
fn quick_mode_types(sa: &IsakmpSa, crypto: &SeededCrypto, bytes: &[u8]) -> Vec<PayloadType> {
    let mut ctx = Context::new(SaState::Established, &checks::IKEV1_EXCHANGES);
    ctx.message_id = MessageIdState::Unused;
    ctx.draft_nat_t = true;
    let Verdict::Accept(m) = checks::check(bytes, &ctx) else {
        panic!("checks refused our own message")
    };
    assert_eq!(m.header.exchange_type, ExchangeType::QuickMode);
    let Body::Encrypted {
        next_payload,
        ciphertext,
    } = &m.body
    else {
        panic!("not encrypted")
    };
    let mut iv = digest::digest(
        &digest::SHA256,
        &[
            sa.last_phase1_block.as_bytes(),
            &m.header.message_id.to_be_bytes(),
        ]
        .concat(),
    )
    .as_ref()
    .to_vec();
    iv.truncate(16);
    let mut plain = ciphertext.clone();
    crypto
        .decrypt_cbc(
            CipherAlgorithm::Aes128Cbc,
            sa.encryption_key.expose(),
            &iv,
            &mut plain,
        )
        .unwrap();
    RawPayloads::new(*next_payload, &plain, Padding::Zeros)
        .map(|r| r.unwrap().payload_type)
        .collect()
}

/// Quick Mode under `run`'s SAs with the NAT-T the phase 1 detected; returns both pairs and the
/// payload types of messages 1 and 2.
fn quick_mode_run(
    run: &Run,
    mode: IpsecMode,
    i_oa: (IpAddr, IpAddr),
    r_oa: (IpAddr, IpAddr),
) -> (ChildSaPair, ChildSaPair, Vec<PayloadType>) {
    let i_cfg = qm_config(mode, run.isa.nat.udp_encapsulation(), i_oa);
    let r_cfg = qm_config(mode, run.rsa.nat.udp_encapsulation(), r_oa);
    let (i, m1) = quick_mode::Initiator::start(&run.ci, &run.isa, i_cfg, I_SPI).unwrap();
    let types = quick_mode_types(&run.rsa, &run.cr, &m1);
    let (r, m2) =
        quick_mode::Responder::handle_offer(&run.cr, &run.rsa, &r_cfg, R_SPI, &m1).unwrap();
    let (i_pair, m3) = i.handle_reply(&run.ci, &m2).map_err(|f| f.error).unwrap();
    let r_pair = r.handle_hash3(&run.cr, &m3).map_err(|f| f.error).unwrap();
    assert_eq!(i_pair.inbound.spi, r_pair.outbound.spi);
    assert_eq!(
        i_pair.inbound.encryption_key.expose(),
        r_pair.outbound.encryption_key.expose()
    );
    (i_pair, r_pair, types)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn quick_mode_udp_encapsulated_tunnel_mode_sends_no_nat_oa() {
    let run = main_mode_run(
        HashAlgorithm::Sha256,
        (NatTConfig::default(), NatTConfig::default()),
        initiator_behind_nat(),
        |m| m,
    );
    let (i_pair, r_pair, types) = quick_mode_run(
        &run,
        IpsecMode::Tunnel,
        (ip("10.0.0.2"), ip("198.51.100.2")),
        (ip("198.51.100.2"), ip("203.0.113.7")),
    );
    let encap = Encapsulation::new(IpsecMode::Tunnel, UdpEncapsulation::Rfc3947);
    assert_eq!(encap.value(), 3);
    for pair in [&i_pair, &r_pair] {
        assert_eq!(pair.encapsulation, encap);
        assert_eq!(pair.nat_oa, None);
    }
    assert!(!types.contains(&PayloadType::NatOriginalAddress));
}

#[test]
fn quick_mode_transport_mode_exchanges_nat_oa_both_ways() {
    let run = main_mode_run(
        HashAlgorithm::Sha256,
        (NatTConfig::default(), NatTConfig::default()),
        initiator_behind_nat(),
        |m| m,
    );
    // Each side's own address and the peer's, as it sees them.
    let i_oa = (ip("10.0.0.2"), ip("198.51.100.2"));
    let r_oa = (ip("198.51.100.2"), ip("203.0.113.7"));
    let (i_pair, r_pair, types) = quick_mode_run(&run, IpsecMode::Transport, i_oa, r_oa);
    let encap = Encapsulation::new(IpsecMode::Transport, UdpEncapsulation::Rfc3947);
    assert_eq!(encap.value(), 4);
    assert_eq!(i_pair.encapsulation, encap);
    assert_eq!(r_pair.encapsulation, encap);
    // NAT-OAi is the initiator's address, NAT-OAr the responder's, as the sender sees them.
    assert_eq!(r_pair.nat_oa, Some((ip("10.0.0.2"), ip("198.51.100.2"))));
    assert_eq!(i_pair.nat_oa, Some((ip("203.0.113.7"), ip("198.51.100.2"))));
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == PayloadType::NatOriginalAddress)
            .count(),
        2
    );
}

#[test]
fn quick_mode_with_the_draft_uses_draft_values_and_payload_131() {
    let run = main_mode_run(
        HashAlgorithm::Sha256,
        (NatTConfig::default(), NatTConfig::default()),
        initiator_behind_nat(),
        only_vendor_id(VENDOR_ID_DRAFT_02_N),
    );
    let i_oa = (ip("10.0.0.2"), ip("198.51.100.2"));
    let r_oa = (ip("198.51.100.2"), ip("203.0.113.7"));
    let (i_pair, r_pair, types) = quick_mode_run(&run, IpsecMode::Transport, i_oa, r_oa);
    for pair in [&i_pair, &r_pair] {
        assert_eq!(pair.encapsulation.udp, UdpEncapsulation::Draft);
        assert_eq!(pair.encapsulation.value(), 61444);
    }
    assert_eq!(r_pair.nat_oa, Some(i_oa));
    assert_eq!(i_pair.nat_oa, Some((ip("203.0.113.7"), ip("198.51.100.2"))));
    let draft_oa = PayloadType::Unknown(DRAFT_NAT_OA_PAYLOAD_TYPE);
    assert_eq!(types.iter().filter(|t| **t == draft_oa).count(), 2);
    assert!(!types.contains(&PayloadType::NatOriginalAddress));

    let (i_pair, _, _) = quick_mode_run(&run, IpsecMode::Tunnel, i_oa, r_oa);
    assert_eq!(i_pair.encapsulation.value(), 61443);
}

#[test]
fn quick_mode_refuses_plain_esp_when_a_nat_was_detected() {
    let run = main_mode_run(
        HashAlgorithm::Sha256,
        (NatTConfig::default(), NatTConfig::default()),
        initiator_behind_nat(),
        |m| m,
    );
    let oa = (ip("10.0.0.2"), ip("198.51.100.2"));
    let plain = qm_config(IpsecMode::Tunnel, UdpEncapsulation::None, oa);
    let (_, m1) = quick_mode::Initiator::start(&run.ci, &run.isa, plain, I_SPI).unwrap();
    let r_cfg = qm_config(IpsecMode::Tunnel, run.rsa.nat.udp_encapsulation(), oa);
    let err = quick_mode::Responder::handle_offer(&run.cr, &run.rsa, &r_cfg, R_SPI, &m1)
        .expect_err("plain ESP through a NAT");
    assert_eq!(err.notify(), Some(NotifyMessageType::NoProposalChosen));
}

fn phase2_iv(isa: &IsakmpSa, mid: u32) -> Vec<u8> {
    let mut iv = digest::digest(
        &digest::SHA256,
        &[isa.last_phase1_block.as_bytes(), &mid.to_be_bytes()].concat(),
    )
    .as_ref()
    .to_vec();
    iv.truncate(16);
    iv
}

/// A Quick Mode message decrypted with `iv`: its header, payloads and last ciphertext block.
fn qm_decrypt(
    isa: &IsakmpSa,
    crypto: &SeededCrypto,
    bytes: &[u8],
    iv: &[u8],
) -> (realm_wire::isakmp::Header, Vec<Payload>, Vec<u8>) {
    let m = Message::parse(bytes).unwrap();
    let Body::Encrypted { ciphertext, .. } = &m.body else {
        panic!("not encrypted")
    };
    let mut plain = ciphertext.clone();
    crypto
        .decrypt_cbc(
            CipherAlgorithm::Aes128Cbc,
            isa.encryption_key.expose(),
            iv,
            &mut plain,
        )
        .unwrap();
    let chain = PayloadChain::parse(PayloadType::Hash, &plain, Padding::Zeros).unwrap();
    let last = ciphertext[ciphertext.len() - 16..].to_vec();
    (m.header, chain.payloads, last)
}

/// HDR*, HASH, `rest`, encrypted with `iv` as a sender would.
fn qm_encrypt(
    isa: &IsakmpSa,
    crypto: &SeededCrypto,
    header: realm_wire::isakmp::Header,
    iv: &[u8],
    hash: Vec<u8>,
    rest: Vec<Payload>,
) -> Vec<u8> {
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
    Message::encrypted(header, PayloadType::Hash, data)
        .to_bytes()
        .unwrap()
}

fn prf_a(isa: &IsakmpSa, parts: &[&[u8]]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, isa.keys.skeyid_a().expose());
    hmac::sign(&key, &parts.concat()).as_ref().to_vec()
}

/// Quick Mode message 1 decrypted, `extra` appended after its payloads, HASH(1) recomputed and
/// encrypted again, as a peer that sends them would.
fn with_extra_payloads(
    isa: &IsakmpSa,
    crypto: &SeededCrypto,
    m1: &[u8],
    extra: Vec<Payload>,
) -> Vec<u8> {
    let mid = Message::parse(m1).unwrap().header.message_id;
    let iv = phase2_iv(isa, mid);
    let (header, payloads, _) = qm_decrypt(isa, crypto, m1, &iv);
    let mut rest: Vec<Payload> = payloads[1..].to_vec();
    rest.extend(extra);
    let rest_bytes = PayloadChain::new(rest.clone()).to_bytes().unwrap();
    let hash = prf_a(isa, &[&mid.to_be_bytes(), &rest_bytes]);
    qm_encrypt(isa, crypto, header, &iv, hash, rest)
}

fn nonce_of(payloads: &[Payload]) -> Vec<u8> {
    payloads
        .iter()
        .find_map(|p| match &p.body {
            PayloadBody::Nonce(n) => Some(n.data.clone()),
            _ => None,
        })
        .unwrap()
}

fn nat_oa(s: &str) -> Payload {
    Payload::new(PayloadBody::NatOriginalAddress(NatOriginalAddress::new(
        ip(s),
    )))
}

#[test]
fn nat_oa_in_tunnel_mode_is_accepted_and_ignored() {
    let run = main_mode_run(
        HashAlgorithm::Sha256,
        (NatTConfig::default(), NatTConfig::default()),
        initiator_behind_nat(),
        |m| m,
    );
    let oa = (ip("10.0.0.2"), ip("198.51.100.2"));
    let udp = run.isa.nat.udp_encapsulation();
    let (_, m1) = quick_mode::Initiator::start(
        &run.ci,
        &run.isa,
        qm_config(IpsecMode::Tunnel, udp, oa),
        I_SPI,
    )
    .unwrap();
    let r_cfg = qm_config(IpsecMode::Tunnel, run.rsa.nat.udp_encapsulation(), oa);
    let two = with_extra_payloads(
        &run.isa,
        &run.ci,
        &m1,
        vec![nat_oa("10.0.0.2"), nat_oa("198.51.100.2")],
    );
    let (r, m2) = quick_mode::Responder::handle_offer(&run.cr, &run.rsa, &r_cfg, R_SPI, &two)
        .expect("NAT-OA in tunnel mode is accepted");
    // Finish as the initiator would: message 2 follows the forged message 1's last block,
    // HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b).
    let mid = Message::parse(&two).unwrap().header.message_id;
    let (_, m1_payloads, m1_last) = qm_decrypt(&run.isa, &run.ci, &two, &phase2_iv(&run.isa, mid));
    let (header, m2_payloads, m2_last) = qm_decrypt(&run.isa, &run.ci, &m2, &m1_last);
    assert!(
        !m2_payloads
            .iter()
            .any(|p| p.body.payload_type() == PayloadType::NatOriginalAddress),
        "the responder sends none in tunnel mode"
    );
    let (ni, nr) = (nonce_of(&m1_payloads), nonce_of(&m2_payloads));
    let hash3 = prf_a(&run.isa, &[&[0], &mid.to_be_bytes(), &ni, &nr]);
    let m3 = qm_encrypt(&run.isa, &run.ci, header, &m2_last, hash3, vec![]);
    let r_pair = r.handle_hash3(&run.cr, &m3).map_err(|f| f.error).unwrap();
    assert_eq!(r_pair.encapsulation.mode, IpsecMode::Tunnel);
    assert_eq!(r_pair.nat_oa, None, "ignored in tunnel mode");
    // Three NAT-OA: malformed (the forging itself is sound: two were accepted).
    let three = with_extra_payloads(
        &run.isa,
        &run.ci,
        &m1,
        vec![
            nat_oa("10.0.0.2"),
            nat_oa("198.51.100.2"),
            nat_oa("10.0.0.3"),
        ],
    );
    let e = quick_mode::Responder::handle_offer(&run.cr, &run.rsa, &r_cfg, R_SPI, &three)
        .expect_err("three NAT-OA");
    assert_eq!(e.notify(), Some(NotifyMessageType::PayloadMalformed));
}

#[test]
fn nat_oa_without_nat_t_is_refused() {
    let run = main_mode_run(
        HashAlgorithm::Sha256,
        (disabled(), disabled()),
        direct(),
        |m| m,
    );
    let oa = (ip("192.0.2.1"), ip("198.51.100.2"));
    let cfg = qm_config(IpsecMode::Transport, UdpEncapsulation::None, oa);
    let (_, m1) = quick_mode::Initiator::start(&run.ci, &run.isa, cfg.clone(), I_SPI).unwrap();
    assert!(quick_mode::Responder::handle_offer(&run.cr, &run.rsa, &cfg, R_SPI, &m1).is_ok());
    let forged = with_extra_payloads(
        &run.isa,
        &run.ci,
        &m1,
        vec![nat_oa("192.0.2.1"), nat_oa("198.51.100.2")],
    );
    let e = quick_mode::Responder::handle_offer(&run.cr, &run.rsa, &cfg, R_SPI, &forged)
        .expect_err("NAT-OA without NAT-T");
    assert_eq!(e.notify(), Some(NotifyMessageType::InvalidPayloadType));
}

fn pool() -> Vec<SocketAddr> {
    [
        "192.0.2.1:500",
        "192.0.2.1:4500",
        "198.51.100.2:500",
        "203.0.113.7:40123",
        "[2001:db8::1]:500",
        "[2001:db8::2]:500",
    ]
    .into_iter()
    .map(addr)
    .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Whatever the addresses each side sees, both sides agree on who is behind a NAT, and it is
    /// who the addresses say (RFC 3947 3.2), or who forces it.
    #[test]
    fn both_sides_agree_on_who_is_behind_a_nat(
        i_local in proptest::sample::select(pool()),
        i_remote in proptest::sample::select(pool()),
        r_local in proptest::sample::select(pool()),
        r_remote in proptest::sample::select(pool()),
        i_force in proptest::bool::ANY,
        r_force in proptest::bool::ANY,
    ) {
        let cfg = |force_encap| NatTConfig { enabled: true, force_encap };
        let run = main_mode_run(
            HashAlgorithm::Sha256,
            (cfg(i_force), cfg(r_force)),
            (ends(i_local, i_remote), ends(r_local, r_remote)),
            |m| m,
        );
        let initiator_behind = i_local != r_remote || i_force;
        let responder_behind = r_local != i_remote || r_force;
        proptest::prop_assert_eq!(run.i_nat.local_behind_nat, initiator_behind);
        proptest::prop_assert_eq!(run.r_nat.remote_behind_nat, initiator_behind);
        proptest::prop_assert_eq!(run.r_nat.local_behind_nat, responder_behind);
        proptest::prop_assert_eq!(run.i_nat.remote_behind_nat, responder_behind);
        proptest::prop_assert_eq!(run.i_nat.encapsulate(), initiator_behind || responder_behind);
        proptest::prop_assert_eq!(run.i_nat.encapsulate(), run.r_nat.encapsulate());
    }
}
