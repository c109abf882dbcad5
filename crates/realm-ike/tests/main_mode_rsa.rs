//! IKEv1 Main Mode with RSA signatures (RFC 2409 sections 5 and 5.1), both roles in memory, on
//! certificates made at test time with rcgen (RSA-2048 keys from aws-lc-rs): the exchange
//! completes with equal keys and SKEYID = prf(Ni_b | Nr_b, g^xy) recomputed from the wire;
//! messages 3 and 4 carry a CERTREQ naming the trusted CA; messages 5 and 6, decrypted here,
//! carry the subject DN as ID, the certificate, and a SIG that verifies with it over HASH_I /
//! HASH_R recomputed independently (aws-lc-rs `hmac`). Refusals, each with its Notify and the
//! state kept: a certificate from an unknown CA (INVALID-CERT-AUTHORITY), one whose names do not
//! include the ID sent or the configured peer identity (AUTHENTICATION-FAILED), a tampered SIG
//! (INVALID-SIGNATURE), an expired certificate (INVALID-CERTIFICATE), a PSK offer to an RSA
//! responder (NO-PROPOSAL-CHOSEN); message 5 with a byte flipped anywhere never accepted.
//! Then Quick Mode over the RSA-established ISAKMP SA. No test
//! reads the clock: "now" is 2030-01-01.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::SystemTime;

use aws_lc_rs::hmac;
use realm_ike::auth::{PrivateKey, TrustAnchors};
use realm_ike::config::Identity;
use realm_ike::ikev1::keys::Iv;
use realm_ike::ikev1::main_mode::{
    Initiator, IsakmpSa, MainModeConfig, MainModeError, Phase1Credentials, RepliedKe, Responder,
    RsaCredentials, SentId,
};
use realm_ike::ikev1::nat_t::{Endpoints, NatTConfig};
use realm_ike::ikev1::quick_mode;
use realm_ike::isakmp::checks::{self, Context, SaState, Verdict};
use realm_ike::proposal::{
    AesKeySize, EspCipher, EspProposal, IkeProposal, IpsecMode, Preference, UdpEncapsulation,
};
use realm_ike::{AwsLcKeyPair, CipherAlgorithm, DhGroup, HashAlgorithm};
use realm_wire::isakmp::{
    Body, CertEncoding, ExchangeType, IdType, Identification, Message, NotifyMessageType, Packet,
    Padding, PayloadBody, PayloadType, RawPayloads,
};

mod common;
use common::SeededCrypto;
use common::certs::{Ca, Host, MOON_IP, SUN_IP, VALID, at_year, credentials, host, now, root_ca};

const CKY_R: [u8; 8] = [0xc0, 0x0c, 0x1e, 2, 3, 4, 5, 6];

fn proposal() -> IkeProposal {
    IkeProposal::new(
        CipherAlgorithm::Aes128Cbc,
        HashAlgorithm::Sha256,
        DhGroup::Ecp256,
    )
}

/// The configuration with RSA `creds`, sending `local_id` or, by default, the certificate's
/// subject DN.
fn config(creds: Arc<RsaCredentials>, local_id: Option<Identification>) -> MainModeConfig {
    MainModeConfig {
        proposals: vec![proposal()],
        lifetime: NonZeroU32::new(10_800).unwrap(),
        preference: Preference::Ours,
        local_id: local_id.unwrap_or_else(|| creds.default_id()),
        auth: Phase1Credentials::RsaSignature(creds),
        nat_t: NatTConfig::default(),
        vendor_ids: Vec::new(),
    }
}

fn endpoints() -> (Endpoints, Endpoints) {
    let i = SocketAddr::from((MOON_IP, 500));
    let r = SocketAddr::from((SUN_IP, 500));
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

/// Messages 1 to 5: the initiator waiting for message 6, the responder for message 5, and
/// messages 1 to 5.
fn up_to_message_5(
    ci: &SeededCrypto,
    cr: &SeededCrypto,
    i_cfg: MainModeConfig,
    r_cfg: MainModeConfig,
) -> (Initiator<SentId>, Responder<RepliedKe>, Vec<Vec<u8>>) {
    let (i, m1) = Initiator::start(ci, i_cfg, endpoints().0).unwrap();
    let (r, m2) = Responder::handle_sa(r_cfg, CKY_R, endpoints().1, &m1).unwrap();
    let (i, m3) = i.handle_sa(ci, &m2).map_err(|f| f.error).unwrap();
    // The PSK argument is not used with RSA signatures.
    let (r, m4) = r.handle_ke(cr, &m3, &[]).map_err(|f| f.error).unwrap();
    let (i, m5) = i.handle_ke(ci, &m4, &[]).map_err(|f| f.error).unwrap();
    (i, r, vec![m1, m2, m3, m4, m5])
}

/// The usual pair: moon initiates, sun responds, both trusting one CA.
struct World {
    ca: Ca,
    moon: Host,
    sun: Host,
}

fn world() -> World {
    let ca = root_ca("strongSwan Root CA");
    let moon = host("moon.strongswan.org", MOON_IP, &ca, VALID);
    let sun = host("sun.strongswan.org", SUN_IP, &ca, VALID);
    World { ca, moon, sun }
}

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

fn context(keyed: bool) -> Context<'static> {
    Context::new(
        SaState::Phase1 {
            exchange: ExchangeType::IdentityProtection,
            keyed,
        },
        &checks::IKEV1_EXCHANGES,
    )
}

/// Decrypts message 5 or 6 with `sa`'s key and `iv` and checks the plaintext as a receiver
/// would: its payloads and the raw ID body.
fn decrypt(
    crypto: &SeededCrypto,
    sa: &IsakmpSa,
    bytes: &[u8],
    iv: &Iv,
) -> (Vec<PayloadBody>, Vec<u8>) {
    let Verdict::Accept(message) = checks::check(bytes, &context(true)) else {
        panic!("checks refused message 5/6")
    };
    let Body::Encrypted {
        next_payload,
        ciphertext,
    } = &message.body
    else {
        panic!("not encrypted")
    };
    let mut plain = ciphertext.clone();
    sa.encryption_key.decrypt(crypto, iv, &mut plain).unwrap();
    let Verdict::Accept(m) = checks::check_decrypted(
        &message.header,
        *next_payload,
        &plain,
        Padding::Zeros,
        &context(true),
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

#[test]
fn both_roles_complete_with_rsa_signatures() {
    let w = world();
    let (ci, cr) = (SeededCrypto::new(1), SeededCrypto::new(2));
    let i_cfg = config(credentials(&w.moon, &w.ca, None), None);
    let r_cfg = config(
        credentials(
            &w.sun,
            &w.ca,
            Some(Identity::Fqdn("moon.strongswan.org".into())),
        ),
        None,
    );
    let (i, r, mut m) = up_to_message_5(&ci, &cr, i_cfg, r_cfg);
    let (rsa, m6) = r.handle_id(&cr, &m[4], now()).map_err(|f| f.error).unwrap();
    let isa = i.handle_id(&ci, &m6, now()).map_err(|f| f.error).unwrap();
    m.push(m6);

    // Each side has the other's certificate and subject DN.
    assert_eq!(isa.peer_id, w.sun.cert.dn_identification());
    assert_eq!(isa.peer_id.id_type, IdType::DerAsn1Dn);
    assert_eq!(rsa.peer_id, w.moon.cert.dn_identification());
    assert_eq!(isa.peer_cert.as_ref().unwrap().der(), w.sun.cert.der());
    assert_eq!(rsa.peer_cert.as_ref().unwrap().der(), w.moon.cert.der());
    assert!(
        isa.peer_cert
            .as_ref()
            .unwrap()
            .matches(&Identity::Fqdn("sun.strongswan.org".into()))
    );

    // Both sides' keys are equal.
    assert_eq!(isa.keys.skeyid().expose(), rsa.keys.skeyid().expose());
    assert_eq!(isa.keys.skeyid_d().expose(), rsa.keys.skeyid_d().expose());
    assert_eq!(isa.keys.skeyid_a().expose(), rsa.keys.skeyid_a().expose());
    assert_eq!(isa.keys.skeyid_e().expose(), rsa.keys.skeyid_e().expose());
    assert_eq!(isa.encryption_key.expose(), rsa.encryption_key.expose());
    assert_eq!(isa.last_phase1_block, rsa.last_phase1_block);

    // Messages 1 and 2 offer and choose RSA signatures (RFC 2409 Appendix A: 3).
    for msg in &m[..2] {
        let sa = Message::parse(msg).unwrap();
        let PayloadBody::SecurityAssociation(sa) = &sa.payloads()[0].body else {
            panic!("no SA")
        };
        let auth = sa.proposals[0].transforms[0]
            .attributes
            .iter()
            .find(|a| a.attribute_type == 3)
            .unwrap();
        assert_eq!(auth.basic_value(), Some(3), "{msg:02x?}");
    }

    // Messages 3 and 4 ask for a certificate from the trusted CA.
    for msg in &m[2..4] {
        let p = Message::parse(msg).unwrap();
        let requests: Vec<_> = p
            .payloads()
            .iter()
            .filter_map(|p| match &p.body {
                PayloadBody::CertificateRequest(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].cert_type, CertEncoding::X509Signature);
        assert_eq!(requests[0].authority, w.ca.cert.subject_der());
    }

    // SKEYID = prf(Ni_b | Nr_b, g^xy) (RFC 2409 section 5), from the wire.
    let (g_xi, g_xr) = (
        raw_body(&m[2], PayloadType::KeyExchange),
        raw_body(&m[3], PayloadType::KeyExchange),
    );
    let (ni, nr) = (
        raw_body(&m[2], PayloadType::Nonce),
        raw_body(&m[3], PayloadType::Nonce),
    );
    let g_xy = ci.agreed.borrow()[0].clone();
    assert_eq!(g_xy, cr.agreed.borrow()[0]);
    let skeyid = hmac_sha256(&[ni.as_slice(), &nr].concat(), &[&g_xy]);
    assert_eq!(isa.keys.skeyid().expose(), skeyid.as_slice());

    // Messages 5 and 6: ID (subject DN), CERT (encoding 4), SIG over HASH_I / HASH_R.
    let crypto = SeededCrypto::new(3);
    let iv0 = Iv::phase1(
        &crypto,
        HashAlgorithm::Sha256,
        CipherAlgorithm::Aes128Cbc,
        &g_xi,
        &g_xr,
    )
    .unwrap();
    let (p5, idii_b) = decrypt(&crypto, &isa, &m[4], &iv0);
    let ct5 = Packet::new_checked(&m[4][..]).unwrap().body().to_vec();
    let (p6, idir_b) = decrypt(&crypto, &isa, &m[5], &Iv::last_block_of(&ct5).unwrap());
    let sai_b = raw_body(&m[0], PayloadType::SecurityAssociation);
    let (cky_i, cky_r) = (isa.initiator_cookie, isa.responder_cookie);
    let hash_i = hmac_sha256(&skeyid, &[&g_xi, &g_xr, &cky_i, &cky_r, &sai_b, &idii_b]);
    let hash_r = hmac_sha256(&skeyid, &[&g_xr, &g_xi, &cky_r, &cky_i, &sai_b, &idir_b]);
    for (payloads, host, hash) in [(&p5, &w.moon, &hash_i), (&p6, &w.sun, &hash_r)] {
        let [
            PayloadBody::Identification(id),
            PayloadBody::Certificate(cert),
            PayloadBody::Signature(sig),
        ] = payloads.as_slice()
        else {
            panic!("message 5/6 is not ID, CERT, SIG: {payloads:?}")
        };
        assert_eq!(*id, host.cert.dn_identification());
        assert_eq!(cert.encoding, CertEncoding::X509Signature);
        assert_eq!(cert.data, host.cert.der());
        assert_eq!(sig.data.len(), 256);
        host.cert.verify_hash(hash, &sig.data).unwrap();
    }
    // The same SIG does not verify over the other hash (the check can fail).
    let PayloadBody::Signature(sig5) = &p5[2] else {
        unreachable!()
    };
    assert!(w.moon.cert.verify_hash(&hash_r, &sig5.data).is_err());

    // Quick Mode over the RSA-established SA.
    let qm = quick_mode::QuickModeConfig {
        proposals: vec![EspProposal::new(
            EspCipher::AesGcm16(AesKeySize::Bits128),
            Some(DhGroup::Ecp256),
        )],
        mode: IpsecMode::Tunnel,
        udp: UdpEncapsulation::None,
        original_addresses: None,
        lifetime: NonZeroU32::new(3_600).unwrap(),
        preference: Preference::Ours,
        client_ids: None,
    };
    let (qi, q1) =
        quick_mode::Initiator::<AwsLcKeyPair>::start(&ci, &isa, qm.clone(), 0xc1c1_0001).unwrap();
    let (qr, q2) = quick_mode::Responder::handle_offer(&cr, &rsa, &qm, 0xc2c2_0002, &q1).unwrap();
    let (ipair, q3) = qi.handle_reply(&ci, &q2).map_err(|f| f.error).unwrap();
    let rpair = qr.handle_hash3(&cr, &q3).map_err(|f| f.error).unwrap();
    assert_eq!(ipair.outbound.spi, 0xc2c2_0002);
    assert_eq!(rpair.outbound.spi, 0xc1c1_0001);
    assert_eq!(
        ipair.outbound.encryption_key.expose(),
        rpair.inbound.encryption_key.expose()
    );
    assert_eq!(
        ipair.inbound.encryption_key.expose(),
        rpair.outbound.encryption_key.expose()
    );
    assert_ne!(
        ipair.inbound.encryption_key.expose(),
        ipair.outbound.encryption_key.expose()
    );
}

#[test]
fn configured_id_is_sent_and_checked_against_the_certificate() {
    // An FQDN among the certificate's dNSNames, and an IPv4 address among its iPAddresses.
    let w = world();
    let (ci, cr) = (SeededCrypto::new(4), SeededCrypto::new(5));
    let i_cfg = config(
        credentials(&w.moon, &w.ca, None),
        Some(Identification::fqdn("moon.strongswan.org")),
    );
    let r_cfg = config(
        credentials(&w.sun, &w.ca, None),
        Some(Identification::ipv4(SUN_IP)),
    );
    let (i, r, m) = up_to_message_5(&ci, &cr, i_cfg, r_cfg);
    let (rsa, m6) = r.handle_id(&cr, &m[4], now()).map_err(|f| f.error).unwrap();
    let isa = i.handle_id(&ci, &m6, now()).map_err(|f| f.error).unwrap();
    assert_eq!(rsa.peer_id, Identification::fqdn("moon.strongswan.org"));
    assert_eq!(isa.peer_id, Identification::ipv4(SUN_IP));
}

/// Runs messages 1 to 5 and gives message 5 to the responder at `at`; returns the error and
/// checks the responder kept its state (message 4 to resend).
fn refused_at_responder(
    i_cfg: MainModeConfig,
    r_cfg: MainModeConfig,
    at: SystemTime,
) -> MainModeError {
    let (ci, cr) = (SeededCrypto::new(6), SeededCrypto::new(7));
    let (_i, r, m) = up_to_message_5(&ci, &cr, i_cfg, r_cfg);
    let failure = r.handle_id(&cr, &m[4], at).expect_err("accepted");
    assert_eq!(failure.state.last_sent(), m[3]);
    failure.error
}

#[test]
fn certificate_from_an_unknown_ca_is_refused() {
    let w = world();
    let other = root_ca("Another Root CA");
    // The responder trusts another CA: moon's certificate has no path.
    let e = refused_at_responder(
        config(credentials(&w.moon, &w.ca, None), None),
        config(credentials(&w.sun, &other, None), None),
        now(),
    );
    assert!(
        matches!(
            e,
            MainModeError::Auth(realm_ike::auth::AuthError::UnknownIssuer)
        ),
        "{e:?}"
    );
    assert_eq!(e.notify(), Some(NotifyMessageType::InvalidCertAuthority));

    // And the initiator refuses message 6 from a responder whose CA it does not trust.
    let (ci, cr) = (SeededCrypto::new(8), SeededCrypto::new(9));
    let (i, r, m) = up_to_message_5(
        &ci,
        &cr,
        config(credentials(&w.moon, &other, None), None),
        config(credentials(&w.sun, &w.ca, None), None),
    );
    let (_, m6) = r.handle_id(&cr, &m[4], now()).map_err(|f| f.error).unwrap();
    let f = i.handle_id(&ci, &m6, now()).expect_err("accepted");
    assert_eq!(
        f.error.notify(),
        Some(NotifyMessageType::InvalidCertAuthority)
    );
    assert_eq!(f.state.last_sent(), m[4]);
}

#[test]
fn certificate_not_naming_the_id_is_refused() {
    let w = world();
    // moon claims to be sun.strongswan.org, a name its certificate does not carry.
    let e = refused_at_responder(
        config(
            credentials(&w.moon, &w.ca, None),
            Some(Identification::fqdn("sun.strongswan.org")),
        ),
        config(credentials(&w.sun, &w.ca, None), None),
        now(),
    );
    assert!(matches!(e, MainModeError::AuthenticationFailed(_)), "{e:?}");
    assert_eq!(e.notify(), Some(NotifyMessageType::AuthenticationFailed));

    // moon sends sun's subject DN: not its certificate's subject.
    let e = refused_at_responder(
        config(
            credentials(&w.moon, &w.ca, None),
            Some(w.sun.cert.dn_identification()),
        ),
        config(credentials(&w.sun, &w.ca, None), None),
        now(),
    );
    assert_eq!(e.notify(), Some(NotifyMessageType::AuthenticationFailed));

    // A peer's FQDN pattern is not a wildcard: "*.strongswan.org" is no name of moon's.
    let e = refused_at_responder(
        config(
            credentials(&w.moon, &w.ca, None),
            Some(Identification::fqdn("*.strongswan.org")),
        ),
        config(credentials(&w.sun, &w.ca, None), None),
        now(),
    );
    assert_eq!(e.notify(), Some(NotifyMessageType::AuthenticationFailed));
}

#[test]
fn certificate_not_matching_the_configured_peer_is_refused() {
    let w = world();
    // A valid certificate naming its ID, but the responder expects carol.
    let e = refused_at_responder(
        config(credentials(&w.moon, &w.ca, None), None),
        config(
            credentials(
                &w.sun,
                &w.ca,
                Some(Identity::Fqdn("carol.strongswan.org".into())),
            ),
            None,
        ),
        now(),
    );
    assert!(matches!(e, MainModeError::AuthenticationFailed(_)), "{e:?}");
    assert_eq!(e.notify(), Some(NotifyMessageType::AuthenticationFailed));
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused() {
    let w = world();
    let old = host("moon.strongswan.org", MOON_IP, &w.ca, (2021, 2024));
    let e = refused_at_responder(
        config(credentials(&old, &w.ca, None), None),
        config(credentials(&w.sun, &w.ca, None), None),
        now(),
    );
    assert!(
        matches!(e, MainModeError::Auth(realm_ike::auth::AuthError::Expired)),
        "{e:?}"
    );
    assert_eq!(e.notify(), Some(NotifyMessageType::InvalidCertificate));

    // The time is the caller's: the same valid certificates, checked in 2024, are not valid yet.
    let e = refused_at_responder(
        config(credentials(&w.moon, &w.ca, None), None),
        config(credentials(&w.sun, &w.ca, None), None),
        at_year(2024),
    );
    assert!(
        matches!(
            e,
            MainModeError::Auth(realm_ike::auth::AuthError::NotYetValid)
        ),
        "{e:?}"
    );
}

#[test]
fn tampered_signature_is_refused_and_the_state_kept() {
    let w = world();
    let (ci, cr) = (SeededCrypto::new(10), SeededCrypto::new(11));
    let (_i, r, m) = up_to_message_5(
        &ci,
        &cr,
        config(credentials(&w.moon, &w.ca, None), None),
        config(credentials(&w.sun, &w.ca, None), None),
    );
    // SIG is the last payload (256 bytes) and the zero padding under 16 bytes, so the last 48
    // bytes of plaintext but the final block are SIG data. Flipping a ciphertext byte in the
    // third block from the end garbles that block's plaintext and flips the same byte of the
    // next one: both inside SIG.
    let mut r = r;
    let len = m[4].len();
    for at in [len - 48, len - 40, len - 33] {
        let mut bad = m[4].clone();
        bad[at] ^= 0x01;
        let failure = r.handle_id(&cr, &bad, now()).expect_err("tampered SIG");
        assert_eq!(
            failure.error,
            MainModeError::Auth(realm_ike::auth::AuthError::BadSignature),
            "byte {at}"
        );
        assert_eq!(
            failure.error.notify(),
            Some(NotifyMessageType::InvalidSignature)
        );
        r = failure.state;
    }
    // The untampered message still completes the exchange.
    let (sa, _) = r.handle_id(&cr, &m[4], now()).map_err(|f| f.error).unwrap();
    assert_eq!(sa.peer_id, w.moon.cert.dn_identification());
}

#[test]
fn signature_by_another_key_is_refused() {
    // moon's configuration pairs its certificate with the key of another certificate by the
    // same CA: RsaCredentials refuses it up front.
    let w = world();
    let mallory = host("mallory.strongswan.org", MOON_IP, &w.ca, VALID);
    let e = RsaCredentials::new(
        PrivateKey::from_der(&mallory.key_der).unwrap(),
        vec![w.moon.cert.clone()],
        TrustAnchors::new(),
        None,
    )
    .unwrap_err();
    assert!(matches!(e, realm_ike::auth::AuthError::UnsupportedKey(_)));
}

#[test]
fn psk_offer_to_an_rsa_responder_is_refused() {
    let w = world();
    let ci = SeededCrypto::new(12);
    let mut i_cfg = config(credentials(&w.moon, &w.ca, None), None);
    i_cfg.auth = Phase1Credentials::PreSharedKey;
    let (_, m1) = Initiator::start(&ci, i_cfg, endpoints().0).unwrap();
    let r_cfg = config(credentials(&w.sun, &w.ca, None), None);
    let e = Responder::handle_sa(r_cfg, CKY_R, endpoints().1, &m1).unwrap_err();
    assert_eq!(e.notify(), Some(NotifyMessageType::NoProposalChosen));

    // And the other way round.
    let i_cfg = config(credentials(&w.moon, &w.ca, None), None);
    let (_, m1) = Initiator::start(&ci, i_cfg, endpoints().0).unwrap();
    let mut r_cfg = config(credentials(&w.sun, &w.ca, None), None);
    r_cfg.auth = Phase1Credentials::PreSharedKey;
    let e = Responder::handle_sa(r_cfg, CKY_R, endpoints().1, &m1).unwrap_err();
    assert_eq!(e.notify(), Some(NotifyMessageType::NoProposalChosen));
}

#[test]
fn message_5_tampered_anywhere_is_refused_without_panicking() {
    let w = world();
    let (ci, cr) = (SeededCrypto::new(13), SeededCrypto::new(14));
    let (_i, r, m) = up_to_message_5(
        &ci,
        &cr,
        config(credentials(&w.moon, &w.ca, None), None),
        config(credentials(&w.sun, &w.ca, None), None),
    );
    let mut r = r;
    let mut bad_signatures = 0;
    // Every third byte after the header (each flip garbles a block of the ID, CERT or SIG).
    for at in (28..m[4].len()).step_by(3) {
        let mut bad = m[4].clone();
        bad[at] ^= 0x40;
        let failure = r
            .handle_id(&cr, &bad, now())
            .expect_err("tampered message 5");
        assert!(
            failure.error.notify().is_some(),
            "byte {at}: {:?}",
            failure.error
        );
        if failure.error == MainModeError::Auth(realm_ike::auth::AuthError::BadSignature) {
            bad_signatures += 1;
        }
        r = failure.state;
    }
    assert!(bad_signatures > 0);
    let (sa, _) = r.handle_id(&cr, &m[4], now()).map_err(|f| f.error).unwrap();
    assert_eq!(sa.peer_cert.unwrap().der(), w.moon.cert.der());
}
