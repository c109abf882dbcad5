//! Proposals: strongSwan spelling (round trips and errors), conversion to SA payloads against
//! hand-written attribute lists and bytes, responder selection (match, refusal with its log
//! line, order rule, every syntax check, lifetime rule, NAT-T modes, group 2 opt-in), the
//! initiator's check of the answer, and property tests (arbitrary SA payloads never panic;
//! an offer of one proposal is always answered with that proposal).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::num::NonZeroU32;

use proptest::prelude::*;
use realm_ike::proposal::spell::SpellError;
use realm_ike::proposal::{
    AesKeySize, AuthMethod, BuildError, Encapsulation, EspCipher, EspIntegrity, EspProposal,
    EspProposals, IkeProposal, IkeProposals, IpsecMode, Phase1Policy, Phase2Policy, Preference,
    RefusalKind, SpellOptions, UdpEncapsulation, check_phase1_reply, check_phase2_reply,
    decode_esp_transform, decode_phase1_transform, phase1_sa, phase2_sa, select_phase1,
    select_phase2,
};
use realm_ike::{CipherAlgorithm, DhGroup, HashAlgorithm};
use realm_wire::codec::Reader;
use realm_wire::isakmp::{
    DataAttribute, NotifyMessageType, Proposal, ProtocolId, SecurityAssociation, Transform,
};

fn secs(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn ike(s: &str) -> IkeProposals {
    IkeProposals::parse(s, SpellOptions::allowing_modp1024()).unwrap()
}

fn esp(s: &str) -> EspProposals {
    EspProposals::parse(s, SpellOptions::allowing_modp1024()).unwrap()
}

fn b(t: u16, v: u16) -> DataAttribute {
    DataAttribute::basic(t, v)
}

const SPI: [u8; 4] = [0xc0, 0xff, 0xee, 0x01];

// ---------------------------------------------------------------------------------------------
// Spelling

#[test]
fn canonical_spellings_round_trip() {
    for s in [
        "aes128-sha256-modp2048",
        "aes256-sha384-ecp384",
        "aes128-sha1-modp1024",
        "aes256-sha384-ecp384,aes128-sha256-modp2048,aes256-sha1-ecp256",
    ] {
        assert_eq!(ike(s).to_string(), s);
    }
    for s in [
        "aes128gcm16-modp2048",
        "aes128gcm16",
        "aes256gcm16",
        "aes128-sha256-ecp256",
        "aes256-sha384",
        "aes128gcm16-ecp384,aes256-sha1-modp1024,aes128-sha256",
    ] {
        assert_eq!(esp(s).to_string(), s);
    }
}

#[test]
fn aliases_case_and_spaces_print_canonically() {
    let cases = [
        ("aes-sha-modp2048", "aes128-sha1-modp2048"),
        ("AES256-SHA2_384-ECP384", "aes256-sha384-ecp384"),
        ("aes128-sha256-prfsha256-modp2048", "aes128-sha256-modp2048"),
        (
            " aes128-sha256-modp2048 ,  aes256-sha384-ecp384 ",
            "aes128-sha256-modp2048,aes256-sha384-ecp384",
        ),
        // Duplicates are dropped, the first kept.
        (
            "aes128-sha256-modp2048,aes256-sha384-ecp384,aes-sha2_256-modp2048",
            "aes128-sha256-modp2048,aes256-sha384-ecp384",
        ),
        // The order of keywords within a proposal does not matter.
        ("modp2048-sha256-aes128", "aes128-sha256-modp2048"),
    ];
    for (input, canonical) in cases {
        assert_eq!(ike(input).to_string(), canonical, "{input}");
        assert_eq!(ike(canonical).to_string(), canonical);
    }
    let cases = [
        ("aes256gcm16-noesn", "aes256gcm16"),
        ("aes128gcm128-ecp256", "aes128gcm16-ecp256"),
        ("aes128gcm", "aes128gcm16"),
        ("aes-sha2_256-noesn-modp2048", "aes128-sha256-modp2048"),
    ];
    for (input, canonical) in cases {
        assert_eq!(esp(input).to_string(), canonical, "{input}");
    }
}

#[test]
fn parsed_values_are_the_algorithms_named() {
    let list = ike("aes256-sha384-ecp384,aes128-sha1-modp1024");
    assert_eq!(
        list.as_slice(),
        [
            IkeProposal::new(
                CipherAlgorithm::Aes256Cbc,
                HashAlgorithm::Sha384,
                DhGroup::Ecp384
            ),
            IkeProposal::new(
                CipherAlgorithm::Aes128Cbc,
                HashAlgorithm::Sha1,
                DhGroup::Modp1024
            ),
        ]
    );
    assert_eq!(
        list.as_slice()[0].prf(),
        realm_ike::PrfAlgorithm::HmacSha384
    );
    let list = esp("aes128gcm16-modp2048,aes256-sha256,aes128-sha1-ecp256");
    assert_eq!(
        list.as_slice(),
        [
            EspProposal::new(
                EspCipher::AesGcm16(AesKeySize::Bits128),
                Some(DhGroup::Modp2048)
            ),
            EspProposal::new(
                EspCipher::AesCbc(AesKeySize::Bits256, EspIntegrity::HmacSha256_128),
                None
            ),
            EspProposal::new(
                EspCipher::AesCbc(AesKeySize::Bits128, EspIntegrity::HmacSha1_96),
                Some(DhGroup::Ecp256)
            ),
        ]
    );
}

#[test]
fn default_expands_to_the_documented_sets() {
    let ike_default = "aes128-sha256-ecp256,aes128-sha256-modp2048,aes128-sha256-ecp384,\
                       aes128-sha384-ecp256,aes128-sha384-modp2048,aes128-sha384-ecp384,\
                       aes256-sha256-ecp256,aes256-sha256-modp2048,aes256-sha256-ecp384,\
                       aes256-sha384-ecp256,aes256-sha384-modp2048,aes256-sha384-ecp384";
    assert_eq!(
        "default".parse::<IkeProposals>().unwrap().to_string(),
        ike_default
    );
    assert_eq!(IkeProposals::default_set().to_string(), ike_default);
    let esp_default =
        "aes128gcm16,aes256gcm16,aes128-sha256,aes128-sha384,aes256-sha256,aes256-sha384";
    assert_eq!(
        "default".parse::<EspProposals>().unwrap().to_string(),
        esp_default
    );
    // Neither holds group 2 or SHA-1.
    assert!(!ike_default.contains("modp1024") && !ike_default.contains("sha1"));
    // `default` among other proposals expands in place; duplicates collapse.
    assert_eq!(
        ike("aes256-sha1-modp2048,default,aes128-sha256-ecp256").to_string(),
        format!("aes256-sha1-modp2048,{ike_default}")
    );
}

#[test]
fn group_2_needs_an_explicit_opt_in() {
    let err = "aes128-sha1-modp1024".parse::<IkeProposals>().unwrap_err();
    assert_eq!(
        err,
        SpellError::Modp1024NotAllowed {
            keyword: "modp1024".into(),
            proposal: "aes128-sha1-modp1024".into(),
            offset: 12,
        }
    );
    assert_eq!(
        err.to_string(),
        "'modp1024' (DH group 2) in proposal 'aes128-sha1-modp1024' is weak and refused unless the configuration allows it explicitly"
    );
    assert!(matches!(
        "aes128gcm16-modp1024".parse::<EspProposals>(),
        Err(SpellError::Modp1024NotAllowed { offset: 12, .. })
    ));
    let allowed = IkeProposals::parse("aes128-sha1-modp1024", SpellOptions::allowing_modp1024());
    assert_eq!(allowed.unwrap().as_slice()[0].group, DhGroup::Modp1024);
}

#[test]
fn unknown_keyword_names_keyword_proposal_and_offset() {
    let err = "aes129-sha256-modp2048"
        .parse::<IkeProposals>()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown algorithm 'aes129' in proposal 'aes129-sha256-modp2048'"
    );
    assert_eq!(err.offset(), Some(0));
    let err = "aes128-sha256-modp2048, aes256-sha384-ecp385"
        .parse::<IkeProposals>()
        .unwrap_err();
    assert_eq!(
        err,
        SpellError::UnknownAlgorithm {
            keyword: "ecp385".into(),
            proposal: "aes256-sha384-ecp385".into(),
            offset: 38,
        }
    );
    assert_eq!(
        &"aes128-sha256-modp2048, aes256-sha384-ecp385"[38..],
        "ecp385"
    );
}

#[test]
fn strongswan_keywords_realm_lacks_are_unsupported_not_unknown() {
    for (s, keyword) in [
        ("3des-sha1-modp2048", "3des"),
        ("aes192-sha256-modp2048", "aes192"),
        ("aes128-sha512-modp2048", "sha512"),
        ("aes128-md5-modp2048", "md5"),
        ("aes128-sha256-modp3072", "modp3072"),
        ("aes128-sha256-x25519", "x25519"),
        ("camellia256-sha256-ecp256", "camellia256"),
        ("aes256ctr-sha256-ecp256", "aes256ctr"),
    ] {
        match s.parse::<IkeProposals>() {
            Err(SpellError::UnsupportedAlgorithm {
                keyword: k,
                proposal,
                ..
            }) => {
                assert_eq!((k.as_str(), proposal.as_str()), (keyword, s));
            }
            other => panic!("{s}: {other:?}"),
        }
    }
    for (s, keyword) in [
        ("aes128gcm8", "aes128gcm8"),
        ("aes128gcm16-esn", "esn"),
        ("aes128-sha256-modpnone", "modpnone"),
    ] {
        assert!(
            matches!(s.parse::<EspProposals>(), Err(SpellError::UnsupportedAlgorithm { keyword: k, .. }) if k == keyword),
            "{s}"
        );
    }
    let err = "3des-sha1-modp2048".parse::<IkeProposals>().unwrap_err();
    assert!(err.to_string().starts_with(
        "algorithm '3des' in proposal '3des-sha1-modp2048' is not supported by Realm (encryption: aes128"
    ));
}

#[test]
fn structural_errors() {
    let ike_err = |s: &str| s.parse::<IkeProposals>().unwrap_err();
    let esp_err = |s: &str| s.parse::<EspProposals>().unwrap_err();
    assert_eq!(ike_err(""), SpellError::Empty);
    assert_eq!(ike_err("  "), SpellError::Empty);
    assert_eq!(
        ike_err("aes128-sha256-modp2048,,aes256-sha384-ecp384"),
        SpellError::EmptyProposal { offset: 23 }
    );
    assert_eq!(
        ike_err("aes128-sha256-modp2048,"),
        SpellError::EmptyProposal { offset: 23 }
    );
    assert_eq!(
        ike_err("aes128--sha256-modp2048"),
        SpellError::EmptyKeyword {
            proposal: "aes128--sha256-modp2048".into(),
            offset: 7
        }
    );
    assert!(matches!(
        ike_err("aes128-aes256-sha256-modp2048"),
        SpellError::TwoOfAKind { kind: "encryption", ref first, ref keyword, offset: 7, .. }
            if first == "aes128" && keyword == "aes256"
    ));
    assert!(matches!(
        ike_err("aes128-sha256-ecp256-modp2048"),
        SpellError::TwoOfAKind {
            kind: "DH group",
            offset: 21,
            ..
        }
    ));
    assert!(matches!(
        esp_err("aes128-sha256-sha1"),
        SpellError::TwoOfAKind {
            kind: "integrity",
            ..
        }
    ));
    assert!(matches!(
        ike_err("aes128-sha256"),
        SpellError::Missing {
            kind: "DH group",
            ..
        }
    ));
    assert!(matches!(
        ike_err("aes128-modp2048"),
        SpellError::Missing {
            kind: "integrity",
            ..
        }
    ));
    assert!(matches!(
        ike_err("sha256-modp2048"),
        SpellError::Missing {
            kind: "encryption",
            ..
        }
    ));
    assert!(matches!(
        esp_err("aes128"),
        SpellError::Missing {
            kind: "integrity",
            ..
        }
    ));
    assert!(matches!(
        esp_err("modp2048"),
        SpellError::Missing {
            kind: "encryption",
            ..
        }
    ));
    assert!(matches!(
        ike_err("aes128gcm16-sha256-modp2048"),
        SpellError::NotAllowedHere {
            context: "an IKE proposal",
            offset: 0,
            ..
        }
    ));
    assert!(matches!(
        ike_err("aes128-sha256-modp2048-noesn"),
        SpellError::NotAllowedHere {
            context: "an IKE proposal",
            ..
        }
    ));
    assert!(matches!(
        esp_err("aes128-sha256-prfsha256"),
        SpellError::NotAllowedHere {
            context: "an ESP proposal",
            offset: 14,
            ..
        }
    ));
    assert_eq!(
        esp_err("aes128gcm16-sha256"),
        SpellError::IntegrityWithAead {
            keyword: "sha256".into(),
            aead: "aes128gcm16".into(),
            proposal: "aes128gcm16-sha256".into(),
            offset: 12,
        }
    );
    assert!(matches!(
        ike_err("aes128-sha256-prfsha384-modp2048"),
        SpellError::PrfMismatch { offset: 14, .. }
    ));
    assert!(matches!(
        ike_err("aes128-sha256-modp2048,default-modp2048"),
        SpellError::DefaultNotAlone { offset: 23, .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// Conversion to and from SA payloads

#[test]
fn phase1_offer_has_the_rfc_2409_attributes() {
    let list = ike("aes128-sha256-modp2048,aes256-sha384-ecp384,aes128-sha1-modp1024");
    let sa = phase1_sa(list.as_slice(), AuthMethod::PreSharedKey, secs(28800)).unwrap();
    // Classes (RFC 2409 Appendix A): 1 encryption (AES-CBC 7), 14 key length, 2 hash
    // (SHA1 2, SHA2-256 4, SHA2-384 5), 4 group, 3 auth (PSK 1), 11 life type (seconds 1),
    // 12 life duration.
    let expected = SecurityAssociation::ipsec(vec![Proposal::new(
        1,
        ProtocolId::Isakmp,
        vec![],
        vec![
            Transform::new(
                1,
                1,
                vec![
                    b(1, 7),
                    b(14, 128),
                    b(2, 4),
                    b(4, 14),
                    b(3, 1),
                    b(11, 1),
                    b(12, 28800),
                ],
            ),
            Transform::new(
                2,
                1,
                vec![
                    b(1, 7),
                    b(14, 256),
                    b(2, 5),
                    b(4, 20),
                    b(3, 1),
                    b(11, 1),
                    b(12, 28800),
                ],
            ),
            Transform::new(
                3,
                1,
                vec![
                    b(1, 7),
                    b(14, 128),
                    b(2, 2),
                    b(4, 2),
                    b(3, 1),
                    b(11, 1),
                    b(12, 28800),
                ],
            ),
        ],
    )]);
    assert_eq!(sa, expected);
    assert_eq!(sa.doi, 1);
    assert_eq!(sa.situation, [0, 0, 0, 1]);

    // RSA signatures (3); a lifetime above 65535 s is sent variable (4 octets).
    let sa = phase1_sa(
        ike("aes256-sha256-ecp256").as_slice(),
        AuthMethod::RsaSignatures,
        secs(86400),
    )
    .unwrap();
    assert_eq!(
        sa.proposals[0].transforms[0].attributes,
        [
            b(1, 7),
            b(14, 256),
            b(2, 4),
            b(4, 19),
            b(3, 3),
            b(11, 1),
            DataAttribute::variable(12, 86400u32.to_be_bytes().to_vec()),
        ]
    );
}

#[test]
fn phase1_offer_bytes() {
    let sa = phase1_sa(
        ike("aes128-sha256-modp2048").as_slice(),
        AuthMethod::PreSharedKey,
        secs(28800),
    )
    .unwrap();
    let mut body = Vec::new();
    sa.emit(&mut body).unwrap();
    let expected = hex::decode(concat!(
        "00000001", "00000001", // DOI IPsec, SIT_IDENTITY_ONLY
        "0000002c",
        "01010001", // proposal: last, length 44; #1 ISAKMP, SPI size 0, 1 transform
        "00000024", "01010000", // transform: last, length 36; #1 KEY_IKE
        "80010007", "800e0080", "80020004", "8004000e", "80030001", "800b0001", "800c7080",
    ))
    .unwrap();
    assert_eq!(body, expected);
    let parsed = SecurityAssociation::read(&mut Reader::new(&body)).unwrap();
    assert_eq!(parsed, sa);
}

#[test]
fn phase2_offer_has_the_rfc_2407_attributes() {
    let list = esp(
        "aes128gcm16-modp2048,aes256-sha256-modp2048,aes128-sha1-modp2048,aes128-sha384-modp2048",
    );
    let encap = Encapsulation::new(IpsecMode::Tunnel, UdpEncapsulation::Rfc3947);
    let sa = phase2_sa(list.as_slice(), SPI, encap, secs(3600)).unwrap();
    // Classes (RFC 2407 section 4.5): 6 key length, 5 auth algorithm (HMAC-SHA 2,
    // HMAC-SHA2-256 5, HMAC-SHA2-384 6), 3 group, 4 encapsulation (UDP tunnel 3), 1 life type,
    // 2 life duration. Transform IDs: ESP_AES_GCM_16 20, ESP_AES 12.
    let expected = SecurityAssociation::ipsec(vec![Proposal::new(
        1,
        ProtocolId::IpsecEsp,
        SPI.to_vec(),
        vec![
            Transform::new(
                1,
                20,
                vec![b(6, 128), b(3, 14), b(4, 3), b(1, 1), b(2, 3600)],
            ),
            Transform::new(
                2,
                12,
                vec![b(6, 256), b(5, 5), b(3, 14), b(4, 3), b(1, 1), b(2, 3600)],
            ),
            Transform::new(
                3,
                12,
                vec![b(6, 128), b(5, 2), b(3, 14), b(4, 3), b(1, 1), b(2, 3600)],
            ),
            Transform::new(
                4,
                12,
                vec![b(6, 128), b(5, 6), b(3, 14), b(4, 3), b(1, 1), b(2, 3600)],
            ),
        ],
    )]);
    assert_eq!(sa, expected);

    // No PFS: no Group Description.
    let sa = phase2_sa(
        esp("aes256gcm16").as_slice(),
        SPI,
        Encapsulation::new(IpsecMode::Transport, UdpEncapsulation::None),
        secs(3600),
    )
    .unwrap();
    assert_eq!(
        sa.proposals[0].transforms[0].attributes,
        [b(6, 256), b(4, 2), b(1, 1), b(2, 3600)]
    );
}

#[test]
fn encapsulation_mode_values() {
    use IpsecMode::{Transport, Tunnel};
    use UdpEncapsulation::{Draft, None, Rfc3947};
    let table = [
        (Tunnel, None, 1),
        (Transport, None, 2),
        (Tunnel, Rfc3947, 3),
        (Transport, Rfc3947, 4),
        (Tunnel, Draft, 61443),
        (Transport, Draft, 61444),
    ];
    for (mode, udp, value) in table {
        let e = Encapsulation::new(mode, udp);
        assert_eq!(e.value(), value);
        assert_eq!(Encapsulation::from_value(value), Some(e));
        let sa = phase2_sa(esp("aes128gcm16").as_slice(), SPI, e, secs(60)).unwrap();
        assert!(
            sa.proposals[0].transforms[0]
                .attributes
                .contains(&b(4, value))
        );
    }
    for value in [0, 5, 61442, 61445, u16::MAX] {
        assert_eq!(Encapsulation::from_value(value), Option::None);
    }
}

#[test]
fn offer_building_errors() {
    let both = [
        EspProposal::new(
            EspCipher::AesGcm16(AesKeySize::Bits128),
            Some(DhGroup::Ecp256),
        ),
        EspProposal::new(EspCipher::AesGcm16(AesKeySize::Bits128), None),
    ];
    assert_eq!(
        phase2_sa(&both, SPI, Encapsulation::TUNNEL, secs(60)),
        Err(BuildError::MixedPfsGroups)
    );
    assert_eq!(
        phase1_sa(&[], AuthMethod::PreSharedKey, secs(60)),
        Err(BuildError::NoProposals)
    );
    let many = vec![IkeProposals::default_set().as_slice()[0]; 256];
    assert_eq!(
        phase1_sa(&many, AuthMethod::PreSharedKey, secs(60)),
        Err(BuildError::TooManyProposals { count: 256 })
    );
    assert!(phase1_sa(&many[..255], AuthMethod::PreSharedKey, secs(60)).is_ok());
}

#[test]
fn decoding_reads_back_what_was_built_and_is_lenient_like_strongswan() {
    let p = ike("aes256-sha384-ecp384").as_slice()[0];
    let t = p.transform(7, AuthMethod::RsaSignatures, secs(86400));
    let d = decode_phase1_transform(&t).unwrap();
    assert_eq!(d.proposal, p);
    assert_eq!(d.auth, AuthMethod::RsaSignatures);
    assert_eq!(d.life.seconds, Some(86400));
    assert_eq!(d.life.kilobytes, None);

    // AES-CBC without Key Length is AES-128; kilobytes lifetimes are read too.
    let t = Transform::new(
        1,
        1,
        vec![
            b(1, 7),
            b(2, 2),
            b(3, 1),
            b(4, 14),
            b(11, 2),
            DataAttribute::variable(12, vec![0, 0x46, 0x50, 0]),
            b(11, 1),
            b(12, 3600),
        ],
    );
    let d = decode_phase1_transform(&t).unwrap();
    assert_eq!(d.proposal, ike("aes128-sha1-modp2048").as_slice()[0]);
    assert_eq!(d.life.kilobytes, Some(0x0046_5000));
    assert_eq!(d.life.seconds, Some(3600));

    // ESP: no Encapsulation Mode is tunnel; no Key Length for AES-CBC is 128.
    let t = Transform::new(1, 12, vec![b(5, 5)]);
    let d = decode_esp_transform(&t).unwrap();
    assert_eq!(d.encapsulation, Encapsulation::TUNNEL);
    assert_eq!(d.proposal, esp("aes128-sha256").as_slice()[0]);
    // ...but AES-GCM needs its Key Length, takes no integrity, and AES-CBC needs integrity.
    for t in [
        Transform::new(1, 20, vec![b(4, 1)]),
        Transform::new(1, 20, vec![b(6, 128), b(5, 5)]),
        Transform::new(1, 12, vec![b(6, 128)]),
        Transform::new(1, 12, vec![b(6, 192), b(5, 5)]),
    ] {
        assert!(matches!(
            decode_esp_transform(&t),
            Err(realm_ike::proposal::TransformError::Unsupported(_))
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Selection

fn offer1(list: &str, auth: AuthMethod, lifetime: u32) -> SecurityAssociation {
    phase1_sa(ike(list).as_slice(), auth, secs(lifetime)).unwrap()
}

fn offer2(list: &str, encap: Encapsulation, lifetime: u32) -> SecurityAssociation {
    phase2_sa(esp(list).as_slice(), SPI, encap, secs(lifetime)).unwrap()
}

#[test]
fn responder_chooses_and_echoes_the_exact_transform() {
    let offer = offer1(
        "aes128-sha1-modp2048,aes128-sha256-modp2048",
        AuthMethod::PreSharedKey,
        28800,
    );
    let ours = ike("aes256-sha384-ecp384,aes128-sha256-modp2048");
    let policy = Phase1Policy::new(ours.as_slice(), AuthMethod::PreSharedKey, secs(28800));
    let choice = select_phase1(&offer, &policy).unwrap();
    assert_eq!(choice.proposal, ours.as_slice()[1]);
    assert_eq!(choice.configured_index, 1);
    assert_eq!(choice.auth, AuthMethod::PreSharedKey);
    assert_eq!(choice.proposal_number, 1);
    assert_eq!(choice.transform, offer.proposals[0].transforms[1]);
    let reply = choice.reply();
    assert_eq!(reply.doi, 1);
    assert_eq!(reply.situation, offer.situation);
    assert_eq!(reply.proposals.len(), 1);
    assert_eq!(reply.proposals[0].number, 1);
    assert_eq!(reply.proposals[0].protocol_id, ProtocolId::Isakmp);
    assert_eq!(
        reply.proposals[0].transforms,
        [offer.proposals[0].transforms[1].clone()]
    );
    assert_eq!(reply.proposals[0].transforms[0].number, 2);

    // Quick Mode: the reply carries our SPI, the peer's SPI is reported.
    let encap = Encapsulation::TUNNEL;
    let offer = offer2("aes256gcm16-ecp256,aes128gcm16-ecp256", encap, 3600);
    let ours = esp("aes128gcm16-ecp256");
    let policy = Phase2Policy::new(
        ours.as_slice(),
        IpsecMode::Tunnel,
        UdpEncapsulation::None,
        secs(3600),
    );
    let choice = select_phase2(&offer, &policy).unwrap();
    assert_eq!(choice.proposal, ours.as_slice()[0]);
    assert_eq!(choice.peer_spi, SPI);
    assert_eq!(choice.encapsulation, encap);
    let reply = choice.reply([0, 0, 0x12, 0x34]);
    assert_eq!(reply.proposals[0].spi, [0, 0, 0x12, 0x34]);
    assert_eq!(reply.proposals[0].protocol_id, ProtocolId::IpsecEsp);
    assert_eq!(
        reply.proposals[0].transforms,
        [offer.proposals[0].transforms[1].clone()]
    );
}

#[test]
fn our_order_wins_by_default_and_the_peers_on_request() {
    let offer = offer1(
        "aes128-sha256-modp2048,aes256-sha384-ecp384",
        AuthMethod::PreSharedKey,
        3600,
    );
    let ours = ike("aes256-sha384-ecp384,aes128-sha256-modp2048");
    let mut policy = Phase1Policy::new(ours.as_slice(), AuthMethod::PreSharedKey, secs(3600));
    assert_eq!(policy.preference, Preference::Ours);
    let choice = select_phase1(&offer, &policy).unwrap();
    assert_eq!(choice.proposal.to_string(), "aes256-sha384-ecp384");
    assert_eq!(choice.transform.number, 2);
    policy.preference = Preference::Peer;
    let choice = select_phase1(&offer, &policy).unwrap();
    assert_eq!(choice.proposal.to_string(), "aes128-sha256-modp2048");
    assert_eq!(choice.transform.number, 1);

    // Quick Mode, alternatives as separate proposals (RFC 2408 layout) this time.
    let mut offer = offer2("aes128gcm16,aes256gcm16", Encapsulation::TUNNEL, 3600);
    let second = offer.proposals[0].transforms.pop().unwrap();
    offer.proposals.push(Proposal::new(
        2,
        ProtocolId::IpsecEsp,
        SPI.to_vec(),
        vec![second],
    ));
    let ours = esp("aes256gcm16,aes128gcm16");
    let mut policy = Phase2Policy::new(
        ours.as_slice(),
        IpsecMode::Tunnel,
        UdpEncapsulation::None,
        secs(3600),
    );
    let choice = select_phase2(&offer, &policy).unwrap();
    assert_eq!(
        (choice.proposal.to_string(), choice.proposal_number),
        ("aes256gcm16".into(), 2)
    );
    policy.preference = Preference::Peer;
    let choice = select_phase2(&offer, &policy).unwrap();
    assert_eq!(
        (choice.proposal.to_string(), choice.proposal_number),
        ("aes128gcm16".into(), 1)
    );
}

#[test]
fn no_match_says_what_was_offered_and_why_none_matched() {
    let mut offer = offer1(
        "aes128-sha1-modp2048,aes256-sha384-ecp384",
        AuthMethod::PreSharedKey,
        28800,
    );
    // A 3DES transform strongSwan could send with `3des-sha1-modp2048`.
    offer.proposals[0].transforms.push(Transform::new(
        3,
        1,
        vec![b(1, 5), b(2, 2), b(4, 14), b(3, 1), b(11, 1), b(12, 28800)],
    ));
    let ours = ike("aes256-sha384-ecp384");
    let policy = Phase1Policy::new(ours.as_slice(), AuthMethod::RsaSignatures, secs(3600));
    let refusal = select_phase1(&offer, &policy).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::NoProposalChosen);
    assert_eq!(refusal.notify(), NotifyMessageType::NoProposalChosen);
    assert_eq!(refusal.offered.len(), 3);
    assert_eq!(
        refusal.to_string(),
        "no acceptable proposal; offered: \
         #1.1 aes128-sha1-modp2048 psk 28800s: authentication psk, configured rsasig; \
         #1.2 aes256-sha384-ecp384 psk 28800s: authentication psk, configured rsasig; \
         #1.3 3des-sha1-modp2048 psk 28800s: encryption 3des is not supported; \
         configured: aes256-sha384-ecp384 with rsasig, lifetime 3600s"
    );
    let policy = Phase1Policy::new(ours.as_slice(), AuthMethod::PreSharedKey, secs(3600));
    let chosen = select_phase1(&offer, &policy).unwrap();
    assert_eq!(chosen.transform.number, 2);
    let ours = ike("aes128-sha256-ecp256");
    let policy = Phase1Policy::new(ours.as_slice(), AuthMethod::PreSharedKey, secs(3600));
    let refusal = select_phase1(&offer, &policy).unwrap_err();
    assert_eq!(
        refusal.offered[0].verdict,
        "not among the configured proposals"
    );
    assert_eq!(
        refusal.offered[0].spelled,
        "aes128-sha1-modp2048 psk 28800s"
    );

    // Quick Mode.
    let offer = offer2(
        "aes128-sha1-modp2048",
        Encapsulation::new(IpsecMode::Transport, UdpEncapsulation::None),
        3600,
    );
    let ours = esp("aes128-sha1-modp2048");
    let policy = Phase2Policy::new(
        ours.as_slice(),
        IpsecMode::Tunnel,
        UdpEncapsulation::None,
        secs(3600),
    );
    let refusal = select_phase2(&offer, &policy).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "no acceptable proposal; offered: \
         #1.1 aes128-sha1-modp2048 transport 3600s: transport mode, configured tunnel; \
         configured: aes128-sha1-modp2048 in tunnel mode, lifetime 3600s"
    );
}

#[test]
fn the_list_of_offered_transforms_is_bounded() {
    let transforms = (1..=200)
        .map(|n| Transform::new(n, 1, vec![b(1, 5), b(2, 2), b(3, 1), b(4, 14)]))
        .collect();
    let offer = SecurityAssociation::ipsec(vec![Proposal::new(
        1,
        ProtocolId::Isakmp,
        vec![],
        transforms,
    )]);
    let ours = IkeProposals::default_set();
    let policy = Phase1Policy::new(ours.as_slice(), AuthMethod::PreSharedKey, secs(3600));
    let refusal = select_phase1(&offer, &policy).unwrap_err();
    assert_eq!(
        refusal.offered.len(),
        realm_ike::proposal::select::MAX_LISTED
    );
    assert_eq!(
        refusal.omitted,
        200 - realm_ike::proposal::select::MAX_LISTED
    );
    assert!(refusal.to_string().contains("(and 168 more)"));
}

fn good_phase1_transform() -> Transform {
    ike("aes128-sha256-modp2048").as_slice()[0].transform(1, AuthMethod::PreSharedKey, secs(3600))
}

fn phase1_with(transforms: Vec<Transform>) -> SecurityAssociation {
    SecurityAssociation::ipsec(vec![Proposal::new(
        1,
        ProtocolId::Isakmp,
        vec![],
        transforms,
    )])
}

fn refuse1(sa: &SecurityAssociation) -> RefusalKind {
    let ours = ike("aes128-sha256-modp2048");
    let policy = Phase1Policy::new(ours.as_slice(), AuthMethod::PreSharedKey, secs(3600));
    select_phase1(sa, &policy).unwrap_err().kind
}

fn syntax(kind: &RefusalKind) -> bool {
    matches!(kind, RefusalKind::BadProposalSyntax(_))
        && kind.notify() == NotifyMessageType::BadProposalSyntax
}

#[test]
fn phase1_with_two_proposals_is_bad_syntax() {
    let mut sa = phase1_with(vec![good_phase1_transform()]);
    sa.proposals.push(Proposal::new(
        2,
        ProtocolId::Isakmp,
        vec![],
        vec![good_phase1_transform()],
    ));
    let kind = refuse1(&sa);
    assert!(syntax(&kind), "{kind:?}");
    assert!(kind.to_string().contains("phase 1 SA with 2 proposals"));
    assert!(syntax(&refuse1(&phase1_with(vec![]))));
    let mut none = phase1_with(vec![]);
    none.proposals.clear();
    assert!(syntax(&refuse1(&none)));
}

#[test]
fn each_phase1_syntax_error_gets_its_notify() {
    let good = good_phase1_transform();
    let with_attributes = |attributes: Vec<DataAttribute>| {
        let mut t = good.clone();
        t.attributes = attributes;
        phase1_with(vec![t])
    };
    // Each mandatory attribute missing (RFC 2409 section 4).
    for class in [1, 2, 3, 4] {
        let attributes = good
            .attributes
            .iter()
            .filter(|a| a.attribute_type != class)
            .cloned()
            .collect();
        let kind = refuse1(&with_attributes(attributes));
        assert!(syntax(&kind), "class {class}: {kind:?}");
    }
    // An attribute twice.
    let mut twice = good.attributes.clone();
    twice.push(b(2, 4));
    assert!(syntax(&refuse1(&with_attributes(twice))));
    // A basic attribute encoded as variable.
    let mut variable = good.attributes.clone();
    variable[0] = DataAttribute::variable(1, vec![0, 7]);
    assert!(syntax(&refuse1(&with_attributes(variable))));
    // Life Duration without Life Type, Life Type without Life Duration, a life type twice.
    let no_type: Vec<_> = good
        .attributes
        .iter()
        .filter(|a| a.attribute_type != 11)
        .cloned()
        .collect();
    assert!(syntax(&refuse1(&with_attributes(no_type))));
    let no_duration: Vec<_> = good
        .attributes
        .iter()
        .filter(|a| a.attribute_type != 12)
        .cloned()
        .collect();
    assert!(syntax(&refuse1(&with_attributes(no_duration))));
    let mut type_twice = good.attributes.clone();
    type_twice.extend([b(11, 1), b(12, 60)]);
    assert!(syntax(&refuse1(&with_attributes(type_twice))));
    // Transform numbers twice; a malformed transform is refused even after a good one.
    assert!(syntax(&refuse1(&phase1_with(vec![
        good.clone(),
        good.clone()
    ]))));
    let mut bad = good.clone();
    bad.number = 2;
    bad.attributes.retain(|a| a.attribute_type != 4);
    assert!(syntax(&refuse1(&phase1_with(vec![good.clone(), bad]))));
    // DOI, situation, protocol, SPI.
    let mut sa = phase1_with(vec![good.clone()]);
    sa.doi = 0;
    assert_eq!(refuse1(&sa), RefusalKind::DoiNotSupported { doi: 0 });
    assert_eq!(refuse1(&sa).notify(), NotifyMessageType::DoiNotSupported);
    let mut sa = phase1_with(vec![good.clone()]);
    sa.situation = vec![0, 0, 0, 3];
    assert_eq!(
        refuse1(&sa).notify(),
        NotifyMessageType::SituationNotSupported
    );
    let mut sa = phase1_with(vec![good.clone()]);
    sa.proposals[0].protocol_id = ProtocolId::IpsecEsp;
    assert_eq!(
        refuse1(&sa),
        RefusalKind::InvalidProtocolId(ProtocolId::IpsecEsp)
    );
    assert_eq!(refuse1(&sa).notify(), NotifyMessageType::InvalidProtocolId);
    let mut sa = phase1_with(vec![good.clone()]);
    sa.proposals[0].spi = vec![0; 17];
    assert_eq!(refuse1(&sa).notify(), NotifyMessageType::InvalidSpi);
    // An SPI of 0 to 16 octets is fine and ignored (RFC 2408 section 3.5).
    sa.proposals[0].spi = vec![7; 16];
    let ours = ike("aes128-sha256-modp2048");
    let policy = Phase1Policy::new(ours.as_slice(), AuthMethod::PreSharedKey, secs(3600));
    assert!(select_phase1(&sa, &policy).is_ok());
}

#[test]
fn unsupported_transforms_are_ignored_not_refused() {
    let good = good_phase1_transform();
    // An unknown transform ID is ignored whatever its attributes (RFC 2408 section 5.6), even
    // ones that would be malformed under KEY_IKE.
    let mut other_id = good.clone();
    other_id.number = 2;
    other_id.transform_id = 9;
    other_id.attributes.push(b(1, 7));
    let mut prf = good.clone();
    prf.number = 3;
    prf.attributes.push(b(13, 1));
    let mut custom_group = good.clone();
    custom_group.number = 4;
    custom_group
        .attributes
        .push(DataAttribute::variable(6, vec![0xff; 16]));
    let mut good2 = good.clone();
    good2.number = 5;
    let sa = phase1_with(vec![other_id, prf, custom_group, good2]);
    let ours = ike("aes128-sha256-modp2048");
    let policy = Phase1Policy::new(ours.as_slice(), AuthMethod::PreSharedKey, secs(3600));
    assert_eq!(select_phase1(&sa, &policy).unwrap().transform.number, 5);
    let mut sa = sa;
    sa.proposals[0].transforms.pop();
    let refusal = select_phase1(&sa, &policy).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::NoProposalChosen);
    let verdicts: Vec<_> = refusal.offered.iter().map(|o| o.verdict.as_str()).collect();
    assert_eq!(
        verdicts,
        [
            "transform ID 9 is not KEY_IKE (RFC 2407 section 4.4.2)",
            "PRF attribute 1 is not supported (RFC 2409 defines none)",
            "custom groups (Group Prime) are not supported",
        ]
    );
}

#[test]
fn unsupported_esp_transforms_are_ignored_not_refused() {
    let mut p = good_esp_proposal(1);
    let mut good = p.transforms[0].clone();
    good.number = 3;
    // 3DES (ID 3) with a duplicated attribute: ignored, not a syntax error.
    let mut triple_des = p.transforms[0].clone();
    triple_des.transform_id = 3;
    triple_des.attributes.push(b(6, 128));
    // AES-CBC without integrity: ignored.
    let mut no_integrity = p.transforms[0].clone();
    no_integrity.number = 2;
    no_integrity.transform_id = 12;
    p.transforms = vec![triple_des, no_integrity, good];
    let ours = esp("aes128gcm16,aes128-sha256");
    let policy = Phase2Policy::new(
        ours.as_slice(),
        IpsecMode::Tunnel,
        UdpEncapsulation::None,
        secs(3600),
    );
    let sa = SecurityAssociation::ipsec(vec![p]);
    assert_eq!(select_phase2(&sa, &policy).unwrap().transform.number, 3);
    let mut sa = sa;
    sa.proposals[0].transforms.pop();
    let refusal = select_phase2(&sa, &policy).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::NoProposalChosen);
    let verdicts: Vec<_> = refusal.offered.iter().map(|o| o.verdict.as_str()).collect();
    assert_eq!(
        verdicts,
        [
            "ESP transform 3des is not supported",
            "AES-CBC without an Authentication Algorithm (ESP without integrity) is refused",
        ]
    );
}

fn good_esp_proposal(number: u8) -> Proposal {
    let sa = offer2("aes128gcm16", Encapsulation::TUNNEL, 3600);
    let mut p = sa.proposals[0].clone();
    p.number = number;
    p
}

fn refuse2(proposals: Vec<Proposal>) -> RefusalKind {
    let ours = esp("aes128gcm16");
    let policy = Phase2Policy::new(
        ours.as_slice(),
        IpsecMode::Tunnel,
        UdpEncapsulation::None,
        secs(3600),
    );
    select_phase2(&SecurityAssociation::ipsec(proposals), &policy)
        .unwrap_err()
        .kind
}

#[test]
fn each_phase2_syntax_error_gets_its_notify() {
    assert!(syntax(&refuse2(vec![])));
    assert!(syntax(&refuse2(vec![
        good_esp_proposal(2),
        good_esp_proposal(1)
    ])));
    let mut empty = good_esp_proposal(1);
    empty.transforms.clear();
    assert!(syntax(&refuse2(vec![empty])));
    let mut twice = good_esp_proposal(1);
    twice.transforms.push(twice.transforms[0].clone());
    assert!(syntax(&refuse2(vec![twice])));
    let mut dup_attr = good_esp_proposal(1);
    dup_attr.transforms[0].attributes.push(b(6, 128));
    assert!(syntax(&refuse2(vec![dup_attr])));
    let mut variable = good_esp_proposal(1);
    variable.transforms[0].attributes[0] = DataAttribute::variable(6, vec![0, 128]);
    assert!(syntax(&refuse2(vec![variable])));
    let mut unpaired = good_esp_proposal(1);
    unpaired.transforms[0]
        .attributes
        .retain(|a| a.attribute_type != 1);
    assert!(syntax(&refuse2(vec![unpaired])));
    // A malformed ESP proposal after a good one still refuses the SA.
    let mut bad = good_esp_proposal(2);
    bad.transforms[0].attributes.push(b(4, 1));
    assert!(syntax(&refuse2(vec![good_esp_proposal(1), bad])));
    // SPIs.
    for spi in [vec![1, 2, 3], vec![], vec![0, 0, 0, 255], vec![0, 0, 0, 0]] {
        let mut p = good_esp_proposal(1);
        p.spi = spi.clone();
        let kind = refuse2(vec![p]);
        assert_eq!(kind.notify(), NotifyMessageType::InvalidSpi, "{spi:?}");
    }
    // DOI and situation.
    let ours = esp("aes128gcm16");
    let policy = Phase2Policy::new(
        ours.as_slice(),
        IpsecMode::Tunnel,
        UdpEncapsulation::None,
        secs(3600),
    );
    let mut sa = SecurityAssociation::ipsec(vec![good_esp_proposal(1)]);
    sa.doi = 7;
    assert_eq!(
        select_phase2(&sa, &policy).unwrap_err().notify(),
        NotifyMessageType::DoiNotSupported
    );
    sa.doi = 1;
    sa.situation = vec![0, 0, 0, 1, 0];
    assert_eq!(
        select_phase2(&sa, &policy).unwrap_err().notify(),
        NotifyMessageType::SituationNotSupported
    );
}

#[test]
fn phase2_protocols() {
    // Only an unknown protocol (or ISAKMP) offered: INVALID-PROTOCOL-ID.
    let mut odd = good_esp_proposal(1);
    odd.protocol_id = ProtocolId::Unknown(9);
    assert_eq!(
        refuse2(vec![odd.clone()]),
        RefusalKind::InvalidProtocolId(ProtocolId::Unknown(9))
    );
    let mut isakmp = good_esp_proposal(1);
    isakmp.protocol_id = ProtocolId::Isakmp;
    assert_eq!(
        refuse2(vec![isakmp]).notify(),
        NotifyMessageType::InvalidProtocolId
    );
    // AH alone: a valid protocol Realm does not do: NO-PROPOSAL-CHOSEN.
    let ah = Proposal::new(
        1,
        ProtocolId::IpsecAh,
        SPI.to_vec(),
        vec![Transform::new(1, 5, vec![b(5, 5)])],
    );
    assert_eq!(refuse2(vec![ah.clone()]), RefusalKind::NoProposalChosen);
    // An unknown protocol next to AH: NO-PROPOSAL-CHOSEN, with both explained.
    odd.number = 2;
    let ours = esp("aes128gcm16");
    let policy = Phase2Policy::new(
        ours.as_slice(),
        IpsecMode::Tunnel,
        UdpEncapsulation::None,
        secs(3600),
    );
    let refusal =
        select_phase2(&SecurityAssociation::ipsec(vec![ah.clone(), odd]), &policy).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::NoProposalChosen);
    assert_eq!(refusal.offered[0].verdict, "AH is not supported");
    assert_eq!(
        refusal.offered[1].verdict,
        "protocol 9 cannot be negotiated in Quick Mode"
    );
    // ESP+AH (both #1) is skipped, ESP alone (#2) chosen.
    let sa = SecurityAssociation::ipsec(vec![good_esp_proposal(1), ah, good_esp_proposal(2)]);
    let choice = select_phase2(&sa, &policy).unwrap();
    assert_eq!(choice.proposal_number, 2);
    let mut sa = sa;
    sa.proposals.pop();
    let refusal = select_phase2(&sa, &policy).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::NoProposalChosen);
    assert_eq!(
        refusal.offered[0].verdict,
        "proposal #1 combines ESP+AH: only ESP alone is supported"
    );
}

#[test]
fn nat_t_modes_rfc_and_draft() {
    let ours = esp("aes128gcm16");
    let behind_nat = Phase2Policy::new(
        ours.as_slice(),
        IpsecMode::Tunnel,
        UdpEncapsulation::Rfc3947,
        secs(3600),
    );
    let direct = Phase2Policy::new(
        ours.as_slice(),
        IpsecMode::Tunnel,
        UdpEncapsulation::None,
        secs(3600),
    );
    for udp in [UdpEncapsulation::Rfc3947, UdpEncapsulation::Draft] {
        let encap = Encapsulation::new(IpsecMode::Tunnel, udp);
        let offer = offer2("aes128gcm16", encap, 3600);
        let choice = select_phase2(&offer, &behind_nat).unwrap();
        assert_eq!(choice.encapsulation, encap);
        // The answer echoes the peer's spelling (draft value to a draft peer).
        let value = choice.reply(SPI).proposals[0].transforms[0].attributes[1].clone();
        assert_eq!(value, b(4, encap.value()));
        let refusal = select_phase2(&offer, &direct).unwrap_err();
        assert!(
            refusal.offered[0].verdict.contains("no NAT detected"),
            "{refusal}"
        );
    }
    let plain = offer2("aes128gcm16", Encapsulation::TUNNEL, 3600);
    let refusal = select_phase2(&plain, &behind_nat).unwrap_err();
    assert!(refusal.offered[0].verdict.contains("RFC 3947 section 5.1"));
    let transport = Phase2Policy::new(
        ours.as_slice(),
        IpsecMode::Transport,
        UdpEncapsulation::Rfc3947,
        secs(3600),
    );
    let offer = offer2(
        "aes128gcm16",
        Encapsulation::new(IpsecMode::Transport, UdpEncapsulation::Draft),
        3600,
    );
    assert_eq!(
        select_phase2(&offer, &transport)
            .unwrap()
            .encapsulation
            .value(),
        61444
    );
}

#[test]
fn group_2_is_accepted_only_when_configured() {
    let offer = offer1("aes128-sha1-modp1024", AuthMethod::PreSharedKey, 3600);
    let defaults = IkeProposals::default_set();
    let policy = Phase1Policy::new(defaults.as_slice(), AuthMethod::PreSharedKey, secs(3600));
    assert!(select_phase1(&offer, &policy).is_err());
    let ours = IkeProposals::parse(
        "aes128-sha256-ecp256,aes128-sha1-modp1024",
        SpellOptions::allowing_modp1024(),
    )
    .unwrap();
    let policy = Phase1Policy::new(ours.as_slice(), AuthMethod::PreSharedKey, secs(3600));
    assert_eq!(
        select_phase1(&offer, &policy).unwrap().proposal.group,
        DhGroup::Modp1024
    );
}

#[test]
fn lifetime_rule_peers_if_not_above_ours() {
    let ours = ike("aes128-sha256-modp2048");
    let policy = Phase1Policy::new(ours.as_slice(), AuthMethod::PreSharedKey, secs(28800));
    // Shorter: the peer's.
    let offer = offer1("aes128-sha256-modp2048", AuthMethod::PreSharedKey, 3600);
    let l = select_phase1(&offer, &policy).unwrap().lifetime;
    assert_eq!(
        (l.seconds.get(), l.offered_seconds, l.shortened),
        (3600, Some(3600), false)
    );
    // Equal: the peer's.
    let offer = offer1("aes128-sha256-modp2048", AuthMethod::PreSharedKey, 28800);
    let l = select_phase1(&offer, &policy).unwrap().lifetime;
    assert_eq!((l.seconds.get(), l.shortened), (28800, false));
    // Longer: ours, flagged, and the transform is still echoed unchanged.
    let offer = offer1("aes128-sha256-modp2048", AuthMethod::PreSharedKey, 86400);
    let choice = select_phase1(&offer, &policy).unwrap();
    assert_eq!(
        (
            choice.lifetime.seconds.get(),
            choice.lifetime.offered_seconds,
            choice.lifetime.shortened
        ),
        (28800, Some(86400), true)
    );
    assert_eq!(
        choice.reply().proposals[0].transforms[0],
        offer.proposals[0].transforms[0]
    );
    // None stated in phase 1: ours, not flagged.
    let mut offer = offer1("aes128-sha256-modp2048", AuthMethod::PreSharedKey, 60);
    offer.proposals[0].transforms[0]
        .attributes
        .retain(|a| !matches!(a.attribute_type, 11 | 12));
    let l = select_phase1(&offer, &policy).unwrap().lifetime;
    assert_eq!(
        (l.seconds.get(), l.offered_seconds, l.shortened),
        (28800, None, false)
    );

    // Quick Mode without lifetime: RFC 2407's 28800 s.
    let ours = esp("aes128gcm16");
    let mut offer = offer2("aes128gcm16", Encapsulation::TUNNEL, 60);
    offer.proposals[0].transforms[0]
        .attributes
        .retain(|a| !matches!(a.attribute_type, 1 | 2));
    let short = Phase2Policy::new(
        ours.as_slice(),
        IpsecMode::Tunnel,
        UdpEncapsulation::None,
        secs(3600),
    );
    let l = select_phase2(&offer, &short).unwrap().lifetime;
    assert_eq!((l.seconds.get(), l.shortened), (3600, true));
    let long = Phase2Policy::new(
        ours.as_slice(),
        IpsecMode::Tunnel,
        UdpEncapsulation::None,
        secs(86400),
    );
    let l = select_phase2(&offer, &long).unwrap().lifetime;
    assert_eq!((l.seconds.get(), l.shortened), (28800, false));
    // Kilobytes are taken as offered, next to seconds.
    let mut offer = offer2("aes128gcm16", Encapsulation::TUNNEL, 1200);
    offer.proposals[0].transforms[0]
        .attributes
        .extend([b(1, 2), DataAttribute::variable(2, vec![0, 0x46, 0x50, 0])]);
    let l = select_phase2(&offer, &short).unwrap().lifetime;
    assert_eq!(
        (l.seconds.get(), l.kilobytes, l.shortened),
        (1200, Some(0x0046_5000), false)
    );
    // A zero duration states no limit (strongSwan sends one with `life_time = 0`): like
    // none stated, RFC 2407's 28800 s, then ours when shorter.
    let mut offer = offer2("aes128gcm16", Encapsulation::TUNNEL, 1200);
    offer.proposals[0].transforms[0].attributes.pop();
    offer.proposals[0].transforms[0].attributes.push(b(2, 0));
    let l = select_phase2(&offer, &short).unwrap().lifetime;
    assert_eq!(
        (l.seconds.get(), l.offered_seconds, l.shortened),
        (3600, None, true)
    );
    let l = select_phase2(&offer, &long).unwrap().lifetime;
    assert_eq!((l.seconds.get(), l.shortened), (28800, false));
    // In phase 1 (strongSwan with `rekey_time = 0` and no `reauth_time`): ours.
    let mut offer = offer1("aes128-sha256-modp2048", AuthMethod::PreSharedKey, 60);
    let attributes = &mut offer.proposals[0].transforms[0].attributes;
    attributes.retain(|a| a.attribute_type != 12);
    attributes.push(b(12, 0));
    let l = select_phase1(&offer, &policy).unwrap().lifetime;
    assert_eq!(
        (l.seconds.get(), l.offered_seconds, l.shortened),
        (28800, None, false)
    );
}

// ---------------------------------------------------------------------------------------------
// Initiator check

#[test]
fn initiator_accepts_the_answer_of_realm_and_of_strongswan() {
    let ours = ike("aes256-sha384-ecp384,aes128-sha256-modp2048");
    let policy = Phase1Policy::new(ours.as_slice(), AuthMethod::PreSharedKey, secs(86400));
    let offer = phase1_sa(ours.as_slice(), policy.auth, policy.lifetime).unwrap();
    let theirs = ike("aes128-sha256-modp2048");
    let responder = Phase1Policy::new(theirs.as_slice(), AuthMethod::PreSharedKey, secs(86400));
    let reply = select_phase1(&offer, &responder).unwrap().reply();
    let confirmed = check_phase1_reply(&offer, &reply, &policy).unwrap();
    assert_eq!(confirmed.proposal, ours.as_slice()[1]);
    assert_eq!(confirmed.configured_index, 1);
    assert_eq!(confirmed.lifetime.seconds.get(), 86400);

    // strongSwan rebuilds its answer: transform number 1, its attribute order, and here the
    // duration as basic-then-variable spellings may differ; the meaning is what counts.
    let mut rebuilt = reply.clone();
    let t = &mut rebuilt.proposals[0].transforms[0];
    t.number = 1;
    t.attributes.reverse();
    let (life_type, life_duration) = (t.attributes.remove(1), t.attributes.remove(0));
    t.attributes.extend([life_type, life_duration]);
    assert_ne!(rebuilt, reply);
    assert_eq!(
        check_phase1_reply(&offer, &rebuilt, &policy)
            .unwrap()
            .proposal,
        ours.as_slice()[1]
    );
}

#[test]
fn initiator_rejects_a_changed_or_foreign_answer() {
    let ours = ike("aes256-sha384-ecp384,aes128-sha256-modp2048");
    let policy = Phase1Policy::new(ours.as_slice(), AuthMethod::PreSharedKey, secs(3600));
    let offer = phase1_sa(ours.as_slice(), policy.auth, policy.lifetime).unwrap();
    let good = SecurityAssociation::ipsec(vec![Proposal::new(
        1,
        ProtocolId::Isakmp,
        vec![],
        vec![offer.proposals[0].transforms[1].clone()],
    )]);
    assert!(check_phase1_reply(&offer, &good, &policy).is_ok());
    let not_offered = |reply: &SecurityAssociation| {
        let refusal = check_phase1_reply(&offer, reply, &policy).unwrap_err();
        assert!(
            matches!(refusal.kind, RefusalKind::NotOffered(_)),
            "{refusal}"
        );
        refusal
    };
    // Lifetime changed.
    let mut changed = good.clone();
    changed.proposals[0].transforms[0].attributes[6] = b(12, 1800);
    let refusal = not_offered(&changed);
    assert!(
        refusal
            .to_string()
            .contains("aes128-sha256-modp2048 psk 1800s was not offered, or was changed")
    );
    // Hash changed to one we did not offer.
    let mut changed = good.clone();
    changed.proposals[0].transforms[0].attributes[2] = b(2, 2);
    not_offered(&changed);
    // Group of one transform with the cipher of the other.
    let mut changed = good.clone();
    changed.proposals[0].transforms[0].attributes[3] = b(4, 20);
    not_offered(&changed);
    // Auth method changed.
    let mut changed = good.clone();
    changed.proposals[0].transforms[0].attributes[4] = b(3, 3);
    not_offered(&changed);
    // DOI changed.
    let mut changed = good.clone();
    changed.doi = 2;
    not_offered(&changed);
    // Structure: two transforms, two proposals.
    let mut two = good.clone();
    two.proposals[0]
        .transforms
        .push(offer.proposals[0].transforms[0].clone());
    let refusal = check_phase1_reply(&offer, &two, &policy).unwrap_err();
    assert_eq!(refusal.notify(), NotifyMessageType::BadProposalSyntax);
    let mut two = good.clone();
    two.proposals.push(good.proposals[0].clone());
    assert!(syntax(
        &check_phase1_reply(&offer, &two, &policy).unwrap_err().kind
    ));
}

#[test]
fn initiator_checks_the_quick_mode_answer() {
    let ours = esp("aes128gcm16-ecp256,aes128-sha256-ecp256");
    let encap = Encapsulation::new(IpsecMode::Tunnel, UdpEncapsulation::Rfc3947);
    let policy = Phase2Policy::new(
        ours.as_slice(),
        IpsecMode::Tunnel,
        UdpEncapsulation::Rfc3947,
        secs(3600),
    );
    let offer = phase2_sa(ours.as_slice(), SPI, encap, policy.lifetime).unwrap();
    let theirs = esp("aes128-sha256-ecp256");
    let responder = Phase2Policy::new(
        theirs.as_slice(),
        IpsecMode::Tunnel,
        UdpEncapsulation::Rfc3947,
        secs(3600),
    );
    let reply = select_phase2(&offer, &responder)
        .unwrap()
        .reply([0x0a, 0x0b, 0x0c, 0x0d]);
    let confirmed = check_phase2_reply(&offer, &reply, &policy).unwrap();
    assert_eq!(confirmed.proposal, ours.as_slice()[1]);
    assert_eq!(confirmed.peer_spi, [0x0a, 0x0b, 0x0c, 0x0d]);
    assert_eq!(confirmed.encapsulation, encap);

    let check = |reply: &SecurityAssociation| check_phase2_reply(&offer, reply, &policy);
    // PFS group dropped, mode changed, integrity changed: not what we offered.
    for (index, attribute) in [(2, None), (3, Some(b(4, 1))), (1, Some(b(5, 2)))] {
        let mut changed = reply.clone();
        let attributes = &mut changed.proposals[0].transforms[0].attributes;
        match attribute {
            None => {
                attributes.remove(index);
            }
            Some(a) => attributes[index] = a,
        }
        assert!(matches!(
            check(&changed).unwrap_err().kind,
            RefusalKind::NotOffered(_)
        ));
    }
    // A reserved SPI.
    let mut changed = reply.clone();
    changed.proposals[0].spi = vec![0, 0, 0, 1];
    assert_eq!(
        check(&changed).unwrap_err().notify(),
        NotifyMessageType::InvalidSpi
    );
    // An AH answer.
    let mut changed = reply;
    changed.proposals[0].protocol_id = ProtocolId::IpsecAh;
    assert!(matches!(
        check(&changed).unwrap_err().kind,
        RefusalKind::NotOffered(_)
    ));
}

// ---------------------------------------------------------------------------------------------
// Property tests

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ike_proposal() -> impl Strategy<Value = IkeProposal> {
    (
        prop_oneof![
            Just(CipherAlgorithm::Aes128Cbc),
            Just(CipherAlgorithm::Aes256Cbc)
        ],
        prop_oneof![
            Just(HashAlgorithm::Sha1),
            Just(HashAlgorithm::Sha256),
            Just(HashAlgorithm::Sha384)
        ],
        prop::sample::select(DhGroup::ALL.to_vec()),
    )
        .prop_map(|(c, h, g)| IkeProposal::new(c, h, g))
}

fn esp_proposal() -> impl Strategy<Value = EspProposal> {
    let size = prop_oneof![Just(AesKeySize::Bits128), Just(AesKeySize::Bits256)];
    let integrity = prop_oneof![
        Just(EspIntegrity::HmacSha1_96),
        Just(EspIntegrity::HmacSha256_128),
        Just(EspIntegrity::HmacSha384_192)
    ];
    let cipher = prop_oneof![
        (size.clone(), integrity).prop_map(|(s, i)| EspCipher::AesCbc(s, i)),
        size.prop_map(EspCipher::AesGcm16),
    ];
    (
        cipher,
        prop::option::of(prop::sample::select(DhGroup::ALL.to_vec())),
    )
        .prop_map(|(c, g)| EspProposal::new(c, g))
}

fn encapsulation() -> impl Strategy<Value = Encapsulation> {
    (
        prop_oneof![Just(IpsecMode::Tunnel), Just(IpsecMode::Transport)],
        prop_oneof![
            Just(UdpEncapsulation::None),
            Just(UdpEncapsulation::Rfc3947),
            Just(UdpEncapsulation::Draft)
        ],
    )
        .prop_map(|(m, u)| Encapsulation::new(m, u))
}

/// Attributes biased towards the classes and values that matter, with some anything.
fn attribute() -> impl Strategy<Value = DataAttribute> {
    prop_oneof![
        4 => (0u16..18, 0u16..24).prop_map(|(t, v)| DataAttribute::basic(t, v)),
        1 => (0u16..18, prop_oneof![Just(128u16), Just(256), Just(61443), Just(61444), any::<u16>()])
            .prop_map(|(t, v)| DataAttribute::basic(t, v)),
        1 => (0u16..0x8000, any::<u16>()).prop_map(|(t, v)| DataAttribute::basic(t, v)),
        2 => (0u16..18, prop::collection::vec(any::<u8>(), 0..12))
            .prop_map(|(t, v)| DataAttribute::variable(t, v)),
    ]
}

fn transform() -> impl Strategy<Value = Transform> {
    (
        0u8..6,
        prop_oneof![Just(1u8), Just(12), Just(20), any::<u8>()],
        prop::collection::vec(attribute(), 0..10),
    )
        .prop_map(|(n, id, attributes)| Transform::new(n, id, attributes))
}

/// Drops (`op` 0), duplicates (1) or replaces (2) attribute `i` of `t`.
fn mutate(t: &mut Transform, i: usize, op: u8, a: DataAttribute) {
    if t.attributes.is_empty() {
        t.attributes.push(a);
        return;
    }
    let i = i % t.attributes.len();
    match op {
        0 => {
            t.attributes.remove(i);
        }
        1 => {
            let copy = t.attributes[i].clone();
            t.attributes.push(copy);
        }
        _ => t.attributes[i] = a,
    }
}

/// A valid transform of either kind with one attribute dropped, duplicated or replaced.
fn mutated_transform() -> impl Strategy<Value = Transform> {
    let valid = prop_oneof![
        (ike_proposal(), any::<bool>(), 1u32..100_000).prop_map(|(p, rsa, life)| {
            let auth = if rsa {
                AuthMethod::RsaSignatures
            } else {
                AuthMethod::PreSharedKey
            };
            p.transform(1, auth, secs(life))
        }),
        (esp_proposal(), encapsulation(), 1u32..100_000).prop_map(|(p, e, life)| p.transform(
            1,
            e,
            secs(life)
        )),
    ];
    (valid, 0usize..8, 0u8..3, attribute()).prop_map(|(mut t, i, op, a)| {
        mutate(&mut t, i, op, a);
        t
    })
}

/// Real offers as `phase1_sa` and `phase2_sa` build them, sometimes with the ESP
/// alternatives split into proposals of their own, sometimes with one transform mutated.
fn plausible_sa() -> impl Strategy<Value = SecurityAssociation> {
    let phase1 = (
        prop::collection::vec(ike_proposal(), 1..5),
        any::<bool>(),
        1u32..100_000,
    )
        .prop_map(|(list, rsa, life)| {
            let auth = if rsa {
                AuthMethod::RsaSignatures
            } else {
                AuthMethod::PreSharedKey
            };
            phase1_sa(&list, auth, secs(life)).unwrap()
        });
    let phase2 = (
        prop::collection::vec(esp_proposal(), 1..5),
        encapsulation(),
        1u32..100_000,
        any::<bool>(),
    )
        .prop_map(|(mut list, encap, life, split)| {
            let pfs = list[0].pfs;
            for p in &mut list {
                p.pfs = pfs;
            }
            let mut sa = phase2_sa(&list, SPI, encap, secs(life)).unwrap();
            if split {
                let transforms = std::mem::take(&mut sa.proposals[0].transforms);
                sa.proposals = (1..)
                    .zip(transforms)
                    .map(|(n, t)| Proposal::new(n, ProtocolId::IpsecEsp, SPI.to_vec(), vec![t]))
                    .collect();
            }
            sa
        });
    (
        prop_oneof![phase1, phase2],
        prop::option::weighted(0.3, (0usize..8, 0usize..8, 0u8..3, attribute())),
    )
        .prop_map(|(mut sa, mutation)| {
            if let Some((p, i, op, a)) = mutation {
                let n = sa.proposals.len();
                let proposal = &mut sa.proposals[p % n];
                let t = proposal.transforms.len();
                mutate(&mut proposal.transforms[i % t], i / t, op, a);
            }
            sa
        })
}

fn proposal() -> impl Strategy<Value = Proposal> {
    (
        0u8..4,
        prop_oneof![
            3 => Just(ProtocolId::Isakmp),
            3 => Just(ProtocolId::IpsecEsp),
            1 => Just(ProtocolId::IpsecAh),
            1 => any::<u8>().prop_map(ProtocolId::from),
        ],
        prop_oneof![
            Just(Vec::new()),
            Just(SPI.to_vec()),
            prop::collection::vec(any::<u8>(), 0..20)
        ],
        prop::collection::vec(prop_oneof![transform(), mutated_transform()], 0..6),
    )
        .prop_map(|(n, p, spi, transforms)| Proposal::new(n, p, spi, transforms))
}

fn security_association() -> impl Strategy<Value = SecurityAssociation> {
    (
        prop_oneof![4 => Just(1u32), 1 => any::<u32>()],
        prop_oneof![
            4 => Just(vec![0, 0, 0, 1]),
            1 => prop::collection::vec(any::<u8>(), 0..8)
        ],
        prop::collection::vec(proposal(), 0..4),
    )
        .prop_map(|(doi, situation, proposals)| SecurityAssociation {
            doi,
            situation,
            proposals,
        })
}

proptest! {
    #![proptest_config(config(10_000))]

    /// Arbitrary SA payloads never panic selection or the initiator's check, and whatever is
    /// chosen is one of the offered transforms, answered as one proposal with one transform.
    #[test]
    fn arbitrary_sa_payloads_never_panic(
        sa in prop_oneof![security_association(), plausible_sa()],
        other in prop_oneof![security_association(), plausible_sa()],
        mut ike_ours in prop::collection::vec(ike_proposal(), 0..4),
        mut esp_ours in prop::collection::vec(esp_proposal(), 0..4),
        include_offered in any::<bool>(),
        rsa in any::<bool>(),
        udp in any::<bool>(),
        transport in any::<bool>(),
        peer_order in any::<bool>(),
    ) {
        if include_offered {
            // Configure some of what is offered, so that choices are made too.
            for t in sa.proposals.iter().flat_map(|p| &p.transforms) {
                if let Ok(d) = decode_phase1_transform(t) { ike_ours.push(d.proposal); }
                if let Ok(d) = decode_esp_transform(t) { esp_ours.push(d.proposal); }
            }
        }
        let preference = if peer_order { Preference::Peer } else { Preference::Ours };
        let auth = if rsa { AuthMethod::RsaSignatures } else { AuthMethod::PreSharedKey };
        let mode = if transport { IpsecMode::Transport } else { IpsecMode::Tunnel };
        let mut p1 = Phase1Policy::new(&ike_ours, auth, secs(3600));
        p1.preference = preference;
        let udp_encap = if udp { UdpEncapsulation::Rfc3947 } else { UdpEncapsulation::None };
        let mut p2 = Phase2Policy::new(&esp_ours, mode, udp_encap, secs(3600));
        p2.preference = preference;
        let offered = |t: &Transform| sa.proposals.iter().any(|p| p.transforms.contains(t));
        match select_phase1(&sa, &p1) {
            Ok(choice) => {
                prop_assert!(offered(&choice.transform));
                prop_assert_eq!(ike_ours.get(choice.configured_index), Some(&choice.proposal));
                prop_assert!(choice.lifetime.seconds.get() <= 3600);
                let reply = choice.reply();
                prop_assert_eq!(reply.proposals.len(), 1);
                prop_assert_eq!(reply.proposals[0].transforms.len(), 1);
                prop_assert!(check_phase1_reply(&sa, &reply, &p1).is_ok());
            }
            Err(refusal) => {
                let _ = refusal.to_string();
                prop_assert!(refusal.offered.len() <= realm_ike::proposal::select::MAX_LISTED);
            }
        }
        match select_phase2(&sa, &p2) {
            Ok(choice) => {
                prop_assert!(offered(&choice.transform));
                prop_assert_eq!(esp_ours.get(choice.configured_index), Some(&choice.proposal));
                prop_assert_eq!(choice.encapsulation.mode, mode);
                prop_assert_eq!(choice.encapsulation.udp != UdpEncapsulation::None, udp);
                let reply = choice.reply([1, 2, 3, 4]);
                prop_assert!(check_phase2_reply(&sa, &reply, &p2).is_ok());
            }
            Err(refusal) => {
                let _ = refusal.to_string();
            }
        }
        let _ = check_phase1_reply(&sa, &other, &p1).map_err(|e| e.to_string());
        let _ = check_phase2_reply(&sa, &other, &p2).map_err(|e| e.to_string());
    }

    /// Offering one proposal to a responder configured with it (among others) always gets it,
    /// through the wire encoding, and the initiator accepts the answer.
    #[test]
    fn a_single_ike_proposal_is_always_chosen(
        p in ike_proposal(),
        decoys in prop::collection::vec(ike_proposal(), 0..5),
        rsa in any::<bool>(),
        life in 1u32..=u32::MAX,
        ours_life in 1u32..=u32::MAX,
        peer_order in any::<bool>(),
    ) {
        let auth = if rsa { AuthMethod::RsaSignatures } else { AuthMethod::PreSharedKey };
        let offer = phase1_sa(&[p], auth, secs(life)).unwrap();
        let mut wire = Vec::new();
        offer.emit(&mut wire).unwrap();
        let parsed = SecurityAssociation::read(&mut Reader::new(&wire)).unwrap();
        let mut ours = decoys.clone();
        ours.push(p);
        let mut policy = Phase1Policy::new(&ours, auth, secs(ours_life));
        if peer_order { policy.preference = Preference::Peer; }
        let choice = select_phase1(&parsed, &policy).unwrap();
        prop_assert_eq!(choice.proposal, p);
        prop_assert_eq!(choice.auth, auth);
        prop_assert_eq!(choice.lifetime.seconds.get(), life.min(ours_life));
        prop_assert_eq!(&choice.transform, &offer.proposals[0].transforms[0]);
        let initiator = Phase1Policy::new(std::slice::from_ref(&p), auth, secs(life));
        prop_assert_eq!(check_phase1_reply(&offer, &choice.reply(), &initiator).unwrap().proposal, p);
    }

    #[test]
    fn a_single_esp_proposal_is_always_chosen(
        p in esp_proposal(),
        decoys in prop::collection::vec(esp_proposal(), 0..5),
        encap in encapsulation(),
        life in 1u32..=u32::MAX,
        spi in 256u32..,
    ) {
        let offer = phase2_sa(&[p], spi.to_be_bytes(), encap, secs(life)).unwrap();
        let mut wire = Vec::new();
        offer.emit(&mut wire).unwrap();
        let parsed = SecurityAssociation::read(&mut Reader::new(&wire)).unwrap();
        let mut ours = decoys.clone();
        ours.insert(0, p);
        let udp = encap.udp;
        let policy = Phase2Policy::new(&ours, encap.mode, udp, secs(3600));
        let choice = select_phase2(&parsed, &policy).unwrap();
        prop_assert_eq!(choice.proposal, p);
        prop_assert_eq!(choice.encapsulation, encap);
        prop_assert_eq!(choice.peer_spi, spi.to_be_bytes());
        let initiator = Phase2Policy::new(std::slice::from_ref(&p), encap.mode, udp, secs(life));
        let reply = choice.reply([0, 0, 1, 0]);
        prop_assert_eq!(check_phase2_reply(&offer, &reply, &initiator).unwrap().proposal, p);
    }

    /// Printing then parsing gives the list back.
    #[test]
    fn spelling_round_trips(
        ikes in prop::collection::vec(ike_proposal(), 1..6),
        esps in prop::collection::vec(esp_proposal(), 1..6),
    ) {
        let list = IkeProposals::new(ikes).unwrap();
        let printed = list.to_string();
        prop_assert_eq!(&IkeProposals::parse(&printed, SpellOptions::allowing_modp1024()).unwrap(), &list);
        let list = EspProposals::new(esps).unwrap();
        let printed = list.to_string();
        prop_assert_eq!(&EspProposals::parse(&printed, SpellOptions::allowing_modp1024()).unwrap(), &list);
    }

    /// Arbitrary strings never panic the parser.
    #[test]
    fn arbitrary_spellings_never_panic(s in "[a-z0-9_, -]{0,40}|\\PC{0,20}") {
        let _ = s.parse::<IkeProposals>().map_err(|e| (e.to_string(), e.offset()));
        let _ = s.parse::<EspProposals>().map_err(|e| (e.to_string(), e.offset()));
    }
}
