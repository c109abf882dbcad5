//! Literal-byte tests. The messages were laid out by hand from RFC 2408
//! Figures 2-17, RFC 2407 4.5/4.6 and RFC 3706 5.3, and decode the same way
//! in Wireshark's ISAKMP dissector.

use super::*;
use crate::Error;

fn bytes(hex_str: &str) -> Vec<u8> {
    let clean: String = hex_str.split_whitespace().collect();
    hex::decode(clean).unwrap()
}

const ICOOKIE: Cookie = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
const RCOOKIE: Cookie = [0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00];

/// IKEv1 Main Mode message 1: SA (one ISAKMP proposal, two KEY_IKE
/// transforms mixing TV and TLV attributes) + DPD Vendor ID.
const MAIN_MODE_1: &str = "
    1122334455667788 0000000000000000 01 10 02 00 00000000 00000090
    0d 00 0060 00000001 00000001
      00 00 0054 01 01 00 02
        03 00 0028 01 01 0000
          800b0001 000c000400007080 80010007 800e0080 80020002 80030001 8004000e
        00 00 0024 02 01 0000
          80010005 80020001 80030001 80040002 800b0001 000c000400015180
    00 00 0014 afcad71368a1f1c96b8696fc77570100";

/// Informational: DPD R-U-THERE Notify then a Delete of two ESP SPIs.
const INFORMATIONAL: &str = "
    1122334455667788 99aabbccddeeff00 0b 10 05 00 5ab0c0d0 00000050
    0c 00 0020 00000001 01 10 8d28
      1122334455667788 99aabbccddeeff00 0000abcd
    00 00 0014 00000001 03 04 0002 deadbeef 01020304";

/// Quick Mode shape (unencrypted here): HASH(1), SA, Ni, IDci, IDcr.
const QUICK_MODE: &str = "
    1122334455667788 99aabbccddeeff00 08 10 20 00 a1b2c3d4 0000009c
    01 00 0018 1111111111111111111111111111111111111111
    0a 00 0038 00000001 00000001
      00 00 002c 01 03 04 01 12345678
        00 00 0020 01 0c 0000
          80040001 80050002 80060100 80010001 0002000400000e10
    05 00 0014 22222222222222222222222222222222
    05 00 0010 04 00 0000 0a010000 ffff0000
    00 00 000c 01 11 01f4 c0a80001";

fn roundtrip(wire: &[u8]) -> Message {
    let msg = Message::parse(wire).unwrap();
    assert_eq!(
        msg.to_bytes().unwrap(),
        wire,
        "emit must reproduce the input"
    );
    msg
}

#[test]
fn main_mode_message_1_parses_field_by_field_and_round_trips() {
    let wire = bytes(MAIN_MODE_1);
    let packet = Packet::new_checked(&wire[..]).unwrap();
    assert_eq!(packet.initiator_cookie(), ICOOKIE);
    assert_eq!(packet.responder_cookie(), [0; 8]);
    assert_eq!(packet.next_payload(), PayloadType::SecurityAssociation);
    assert_eq!((packet.version().major(), packet.version().minor()), (1, 0));
    assert_eq!(packet.exchange_type(), ExchangeType::IdentityProtection);
    assert_eq!(packet.flags(), Flags::empty());
    assert_eq!(packet.message_id(), 0);
    assert_eq!(packet.length(), 144);

    let msg = roundtrip(&wire);
    assert_eq!(
        msg.header,
        Header::new(ExchangeType::IdentityProtection, ICOOKIE, [0; 8], 0)
    );
    assert!(!msg.has_nonzero_reserved());
    let [sa, vid] = msg.payloads() else {
        panic!("two payloads")
    };
    let PayloadBody::SecurityAssociation(sa) = &sa.body else {
        panic!("SA first")
    };
    assert_eq!(sa.doi, DOI_IPSEC);
    assert_eq!(sa.situation_bits(), Some(SIT_IDENTITY_ONLY));
    let [proposal] = &sa.proposals[..] else {
        panic!("one proposal")
    };
    assert_eq!(
        (proposal.number, proposal.protocol_id),
        (1, ProtocolId::Isakmp)
    );
    assert!(proposal.spi.is_empty());
    let [t1, t2] = &proposal.transforms[..] else {
        panic!("two transforms")
    };
    assert_eq!((t1.number, t1.transform_id, t1.reserved2), (1, KEY_IKE, 0));
    assert_eq!(t2.number, 2);
    // TV and TLV kept exactly as sent.
    assert_eq!(t1.attributes[0], DataAttribute::basic(11, 1));
    assert_eq!(
        t1.attributes[1],
        DataAttribute::variable(12, vec![0, 0, 0x70, 0x80])
    );
    let decoded: Vec<IkeAttribute> = t1
        .attributes
        .iter()
        .map(IkeAttribute::from_attribute)
        .collect();
    assert_eq!(
        decoded,
        [
            IkeAttribute::LifeType(LifeType::Seconds),
            IkeAttribute::LifeDuration(28800),
            IkeAttribute::EncryptionAlgorithm(EncryptionAlgorithm::AesCbc),
            IkeAttribute::KeyLength(128),
            IkeAttribute::HashAlgorithm(HashAlgorithm::Sha1),
            IkeAttribute::AuthenticationMethod(AuthenticationMethod::PreSharedKey),
            IkeAttribute::GroupDescription(GroupDescription::Modp2048),
        ]
    );
    let decoded: Vec<IkeAttribute> = t2
        .attributes
        .iter()
        .map(IkeAttribute::from_attribute)
        .collect();
    assert_eq!(
        decoded[0],
        IkeAttribute::EncryptionAlgorithm(EncryptionAlgorithm::TripleDesCbc)
    );
    assert_eq!(decoded[1], IkeAttribute::HashAlgorithm(HashAlgorithm::Md5));
    assert_eq!(
        decoded[3],
        IkeAttribute::GroupDescription(GroupDescription::Modp1024)
    );
    assert_eq!(decoded[5], IkeAttribute::LifeDuration(86400));
    let PayloadBody::VendorId(vid) = &vid.body else {
        panic!("VID second")
    };
    assert!(vid.is_dpd());
}

#[test]
fn main_mode_message_1_is_built_by_the_builders() {
    use IkeAttribute as A;
    let t1 = Transform::new(
        1,
        KEY_IKE,
        vec![
            A::LifeType(LifeType::Seconds).to_attribute(),
            // A peer's 4-octet TLV life is kept as such, not shortened.
            DataAttribute::variable(12, 28800u32.to_be_bytes().to_vec()),
            A::EncryptionAlgorithm(EncryptionAlgorithm::AesCbc).to_attribute(),
            A::KeyLength(128).to_attribute(),
            A::HashAlgorithm(HashAlgorithm::Sha1).to_attribute(),
            A::AuthenticationMethod(AuthenticationMethod::PreSharedKey).to_attribute(),
            A::GroupDescription(GroupDescription::Modp2048).to_attribute(),
        ],
    );
    let t2 = Transform::new(
        2,
        KEY_IKE,
        vec![
            A::EncryptionAlgorithm(EncryptionAlgorithm::TripleDesCbc).to_attribute(),
            A::HashAlgorithm(HashAlgorithm::Md5).to_attribute(),
            A::AuthenticationMethod(AuthenticationMethod::PreSharedKey).to_attribute(),
            A::GroupDescription(GroupDescription::Modp1024).to_attribute(),
            A::LifeType(LifeType::Seconds).to_attribute(),
            A::LifeDuration(86400).to_attribute(),
        ],
    );
    let sa = SecurityAssociation::ipsec(vec![Proposal::new(
        1,
        ProtocolId::Isakmp,
        vec![],
        vec![t1, t2],
    )]);
    let msg = Message::new(
        Header::new(ExchangeType::IdentityProtection, ICOOKIE, [0; 8], 0),
        vec![sa.into(), VendorId::dpd().into()],
    );
    assert_eq!(msg.to_bytes().unwrap(), bytes(MAIN_MODE_1));
}

#[test]
fn informational_with_notify_and_delete() {
    let wire = bytes(INFORMATIONAL);
    let msg = roundtrip(&wire);
    assert_eq!(msg.header.exchange_type, ExchangeType::Informational);
    assert_eq!(msg.header.message_id, 0x5ab0_c0d0);
    let [n, d] = msg.payloads() else {
        panic!("two payloads")
    };
    let PayloadBody::Notification(n) = &n.body else {
        panic!("Notify first")
    };
    assert_eq!(n, &Notification::dpd(false, ICOOKIE, RCOOKIE, 0xabcd));
    assert_eq!(n.message_type, NotifyMessageType::RUThere);
    assert!(!n.message_type.is_error());
    assert_eq!(n.dpd_sequence(), Some(0xabcd));
    let PayloadBody::Delete(d) = &d.body else {
        panic!("Delete second")
    };
    assert_eq!(
        (d.doi, d.protocol_id, d.spi_size),
        (1, ProtocolId::IpsecEsp, 4)
    );
    assert_eq!(d.spis, [vec![0xde, 0xad, 0xbe, 0xef], vec![1, 2, 3, 4]]);

    let mut header = Header::new(ExchangeType::Informational, ICOOKIE, RCOOKIE, 0x5ab0_c0d0);
    header.flags = Flags::empty();
    let built = Message::new(
        header,
        vec![
            Notification::dpd(false, ICOOKIE, RCOOKIE, 0xabcd).into(),
            Delete::new(1, ProtocolId::IpsecEsp, 4, d.spis.clone()).into(),
        ],
    );
    assert_eq!(built.to_bytes().unwrap(), wire);
}

#[test]
fn quick_mode_shape() {
    let wire = bytes(QUICK_MODE);
    let msg = roundtrip(&wire);
    assert_eq!(msg.header.exchange_type, ExchangeType::QuickMode);
    let types: Vec<PayloadType> = msg.payloads().iter().map(Payload::payload_type).collect();
    assert_eq!(
        types,
        [
            PayloadType::Hash,
            PayloadType::SecurityAssociation,
            PayloadType::Nonce,
            PayloadType::Identification,
            PayloadType::Identification,
        ]
    );
    let PayloadBody::SecurityAssociation(sa) = &msg.payloads()[1].body else {
        panic!()
    };
    let proposal = &sa.proposals[0];
    assert_eq!(proposal.protocol_id, ProtocolId::IpsecEsp);
    assert_eq!(proposal.spi, [0x12, 0x34, 0x56, 0x78]);
    let t = &proposal.transforms[0];
    assert_eq!(EspTransformId::from(t.transform_id), EspTransformId::Aes);
    let decoded: Vec<IpsecAttribute> = t
        .attributes
        .iter()
        .map(IpsecAttribute::from_attribute)
        .collect();
    assert_eq!(
        decoded,
        [
            IpsecAttribute::EncapsulationMode(EncapsulationMode::Tunnel),
            IpsecAttribute::AuthenticationAlgorithm(AuthenticationAlgorithm::HmacSha),
            IpsecAttribute::KeyLength(256),
            IpsecAttribute::SaLifeType(LifeType::Seconds),
            IpsecAttribute::SaLifeDuration(3600),
        ]
    );
    let PayloadBody::Identification(idci) = &msg.payloads()[3].body else {
        panic!()
    };
    assert_eq!(
        idci.value(),
        Some(IdValue::Ipv4Subnet {
            addr: [10, 1, 0, 0].into(),
            mask: [255, 255, 0, 0].into()
        })
    );
    let PayloadBody::Identification(idcr) = &msg.payloads()[4].body else {
        panic!()
    };
    assert_eq!((idcr.protocol_id, idcr.port), (17, 500));
    assert_eq!(
        idcr,
        &Identification::ipv4([192, 168, 0, 1].into()).with_port(17, 500)
    );
}

#[test]
fn encrypted_body_is_kept_raw_and_plaintext_parses_with_padding() {
    // The Quick Mode chain, "encrypted" by the identity cipher, padded to 16
    // bytes per RFC 2409 Appendix B / 5.3 (zeros, last octet = count).
    let qm = bytes(QUICK_MODE);
    let mut plaintext = qm[HEADER_LEN..].to_vec();
    let pad = 16 - plaintext.len() % 16;
    plaintext.extend(std::iter::repeat_n(0u8, pad - 1));
    plaintext.push(u8::try_from(pad - 1).unwrap());
    let mut header = Message::parse(&qm).unwrap().header;
    header.flags = Flags(Flags::ENCRYPTION);
    let msg = Message::encrypted(header.clone(), PayloadType::Hash, plaintext.clone());
    let wire = msg.to_bytes().unwrap();
    assert_eq!(wire[19], 0x01, "E flag");
    assert_eq!(wire[16], 8, "Next Payload: HASH");

    let parsed = roundtrip(&wire);
    let Body::Encrypted {
        next_payload,
        ciphertext,
    } = &parsed.body
    else {
        panic!()
    };
    assert_eq!((*next_payload, ciphertext), (PayloadType::Hash, &plaintext));
    assert_eq!(
        Packet::new_checked(&wire[..]).unwrap().body(),
        &plaintext[..]
    );

    // Strict parsing refuses the padding; the explicit option accepts it.
    let err = PayloadChain::parse(PayloadType::Hash, &plaintext, Padding::Forbidden).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Trailing {
                what: "payload chain",
                ..
            }
        ),
        "{err:?}"
    );
    let chain = PayloadChain::parse(PayloadType::Hash, &plaintext, Padding::Zeros).unwrap();
    assert_eq!(chain.payloads, Message::parse(&qm).unwrap().payloads());
    assert_eq!(chain.padding.len(), pad);
    assert_eq!(chain.to_bytes().unwrap(), plaintext);
    // Non-zero padding (other than the count octet) is refused by Zeros.
    let mut bad = plaintext.clone();
    let at = bad.len() - 2;
    bad[at] = 0xff;
    assert!(matches!(
        PayloadChain::parse(PayloadType::Hash, &bad, Padding::Zeros),
        Err(Error::Malformed {
            what: "padding",
            ..
        })
    ));
    assert!(PayloadChain::parse(PayloadType::Hash, &bad, Padding::Any).is_ok());
}

#[test]
fn length_field_must_match_the_buffer() {
    let wire = bytes(MAIN_MODE_1);
    // Shorter buffer than Length.
    assert_eq!(
        Message::parse(&wire[..100]).unwrap_err(),
        Error::Truncated {
            what: "ISAKMP message",
            offset: 0,
            need: 144,
            have: 100
        }
    );
    // Longer buffer than Length.
    let mut longer = wire.clone();
    longer.extend_from_slice(&[0; 5]);
    assert_eq!(
        Message::parse(&longer).unwrap_err(),
        Error::Trailing {
            what: "ISAKMP message",
            offset: 144,
            count: 5
        }
    );
    // Length below the header.
    let mut small = wire.clone();
    small[24..28].copy_from_slice(&20u32.to_be_bytes());
    assert!(matches!(
        Message::parse(&small),
        Err(Error::Malformed { offset: 24, .. })
    ));
    // Shorter than a header.
    assert!(matches!(
        Packet::new_checked(&wire[..27]),
        Err(Error::Truncated { need: 28, .. })
    ));
}

#[test]
fn payload_length_below_four_is_malformed() {
    let mut wire = bytes(MAIN_MODE_1);
    wire[28 + 96 + 2..28 + 96 + 4].copy_from_slice(&3u16.to_be_bytes());
    assert_eq!(
        Message::parse(&wire).unwrap_err(),
        Error::Malformed {
            what: "Vendor ID payload",
            offset: 28 + 96 + 2,
            reason: "Payload Length below the 4-byte generic header",
        }
    );
}

#[test]
fn chain_overrunning_the_message_is_truncated() {
    let mut wire = bytes(MAIN_MODE_1);
    // Vendor ID claims 21 bytes; only 20 are there.
    wire[28 + 96 + 3] = 21;
    assert_eq!(
        Message::parse(&wire).unwrap_err(),
        Error::Truncated {
            what: "Vendor ID payload",
            offset: 28 + 96 + 4,
            need: 17,
            have: 16
        }
    );
    // The last payload points to another one that is not there.
    let mut wire = bytes(MAIN_MODE_1);
    wire[28 + 96] = PayloadType::Nonce.into();
    assert!(matches!(
        Message::parse(&wire),
        Err(Error::Truncated {
            what: "NONCE payload",
            offset: 144,
            need: 4,
            have: 0
        })
    ));
}

#[test]
fn bytes_after_the_chain_are_trailing() {
    // Chain ends after the SA (Next Payload 0) but the VID bytes remain.
    let mut wire = bytes(MAIN_MODE_1);
    wire[28] = 0;
    assert_eq!(
        Message::parse(&wire).unwrap_err(),
        Error::Trailing {
            what: "payload chain",
            offset: 28 + 96,
            count: 20
        }
    );
    // Zero bytes are accepted only on request, and kept.
    let mut wire = bytes(MAIN_MODE_1);
    wire[28] = 0;
    wire[28 + 96..].fill(0);
    let msg = Message::parse_with(&wire, Padding::Zeros).unwrap();
    let Body::Payloads(chain) = &msg.body else {
        panic!()
    };
    assert_eq!(chain.padding, [0; 20]);
    assert_eq!(msg.to_bytes().unwrap(), wire);
}

#[test]
fn unknown_payload_type_is_kept_raw() {
    // Draft NAT-D number 130, then RFC 3947 NAT-D (20) and NAT-OA (21).
    let wire = bytes(
        "1122334455667788 99aabbccddeeff00 82 10 20 00 00000001 0000004c
         14 00 000c 0102030405060708
         15 00 0018 a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4
         00 00 000c 01 000000 c0000201",
    );
    let msg = roundtrip(&wire);
    assert_eq!(
        msg.payloads()[0].body,
        PayloadBody::Raw {
            payload_type: PayloadType::Unknown(130),
            data: vec![1, 2, 3, 4, 5, 6, 7, 8]
        }
    );
    let PayloadBody::NatDiscovery(natd) = &msg.payloads()[1].body else {
        panic!()
    };
    assert_eq!(natd.hash.len(), 20);
    let PayloadBody::NatOriginalAddress(oa) = &msg.payloads()[2].body else {
        panic!()
    };
    assert_eq!(oa.ip(), Some([192, 0, 2, 1].into()));
    assert_eq!(oa, &NatOriginalAddress::new([192, 0, 2, 1].into()));
    // Building a raw payload under a type that would parse typed is refused.
    let bad = Message::new(
        msg.header.clone(),
        vec![Payload::new(PayloadBody::Raw {
            payload_type: PayloadType::Nonce,
            data: vec![],
        })],
    );
    assert!(bad.to_bytes().is_err());
}

#[test]
fn proposal_and_transform_chains_are_checked() {
    // Transform 1 says "last" (0) though Transform 2 follows.
    let mut wire = bytes(MAIN_MODE_1);
    wire[28 + 12 + 8] = 0;
    assert!(matches!(
        Message::parse(&wire),
        Err(Error::Trailing {
            what: "Transform payload",
            ..
        })
    ));
    // A Transform's Next Payload must be 3 or 0.
    let mut wire = bytes(MAIN_MODE_1);
    wire[28 + 12 + 8] = 5;
    assert!(matches!(
        Message::parse(&wire),
        Err(Error::Malformed {
            what: "Transform payload",
            ..
        })
    ));
    // # of Transforms must match.
    let mut wire = bytes(MAIN_MODE_1);
    wire[28 + 12 + 7] = 3;
    assert!(matches!(
        Message::parse(&wire),
        Err(Error::Malformed {
            what: "Proposal payload",
            offset: 47,
            ..
        })
    ));
    // Non-zero reserved fields are kept and reported.
    let mut wire = bytes(MAIN_MODE_1);
    wire[28 + 12 + 8 + 6] = 0x01; // RESERVED2 of transform 1
    let msg = roundtrip(&wire);
    assert!(msg.has_nonzero_reserved());
    let mut wire = bytes(MAIN_MODE_1);
    wire[28 + 96 + 1] = 0x7f; // generic RESERVED of the VID
    let msg = roundtrip(&wire);
    assert!(msg.payloads()[1].has_nonzero_reserved());
    assert!(!msg.payloads()[0].has_nonzero_reserved());
}

#[test]
fn version_and_flags_are_reported_not_refused() {
    let mut wire = bytes(MAIN_MODE_1);
    wire[17] = 0x21; // IKE 2.1: the engine must answer INVALID-MAJOR-VERSION
    wire[19] = 0x0a; // C flag plus an undefined bit
    let msg = roundtrip(&wire);
    assert_eq!(
        (msg.header.version.major(), msg.header.version.minor()),
        (2, 1)
    );
    assert!(msg.header.flags.commit());
    assert!(!msg.header.flags.encryption());
    assert_eq!(msg.header.flags.unknown_bits(), 0x08);
    wire[18] = 0x77;
    assert_eq!(
        roundtrip(&wire).header.exchange_type,
        ExchangeType::Unknown(0x77)
    );
}

#[test]
fn delete_with_spi_size_zero_and_spis_is_refused() {
    let wire = bytes(
        "1122334455667788 99aabbccddeeff00 0c 10 05 00 00000001 00000028
         00 00 000c 00000001 03 00 ffff",
    );
    assert!(matches!(
        Message::parse(&wire),
        Err(Error::Malformed {
            what: "Delete payload",
            ..
        })
    ));
}

#[test]
fn non_ipsec_doi_keeps_the_situation_raw() {
    let wire = bytes(
        "1122334455667788 0000000000000000 01 10 02 00 00000000 00000029
         00 00 000d 00000007 0102030405",
    );
    let msg = roundtrip(&wire);
    let PayloadBody::SecurityAssociation(sa) = &msg.payloads()[0].body else {
        panic!()
    };
    assert_eq!(
        (sa.doi, &sa.situation[..], sa.proposals.len()),
        (7, &[1, 2, 3, 4, 5][..], 0)
    );
}

#[test]
fn labelled_ipsec_situation_is_measured() {
    // SIT_SECRECY: LDI, secrecy length 3 (+1 pad), category bitmap of 9 bits
    // (2 octets + 2 pad), then one proposal with no transforms.
    let sa_body = bytes(
        "00000001 00000002 0000abcd 0003 0000 aabbcc00 0009 0000 ff800000
         00 00 0008 01 03 00 00",
    );
    let sa = SecurityAssociation::read(&mut crate::codec::Reader::new(&sa_body)).unwrap();
    assert_eq!(sa.situation.len(), 24);
    assert_eq!(sa.proposals.len(), 1);
    assert_eq!(PayloadBody::from(sa).to_bytes().unwrap(), sa_body);
}

#[test]
fn cookie_helpers_read_only_the_header() {
    let wire = bytes(INFORMATIONAL);
    assert_eq!(initiator_cookie(&wire), Some(ICOOKIE));
    assert_eq!(responder_cookie(&wire), Some(RCOOKIE));
    assert_eq!(initiator_cookie(&wire[..28]), Some(ICOOKIE));
    assert_eq!(initiator_cookie(&wire[..27]), None);
    assert_eq!(initiator_cookie(&[0xff]), None); // NAT-keepalive
}

#[test]
fn emit_refuses_values_that_do_not_fit() {
    let header = Header::new(ExchangeType::Informational, ICOOKIE, RCOOKIE, 1);
    let big = Message::new(header.clone(), vec![Nonce::new(vec![0; 65532]).into()]);
    let mut out = vec![0xee];
    assert!(matches!(
        big.emit(&mut out),
        Err(Error::Malformed {
            what: "NONCE payload",
            ..
        })
    ));
    assert_eq!(out, [0xee], "nothing written on error");
    let ok = Message::new(header.clone(), vec![Nonce::new(vec![0; 65531]).into()]);
    assert_eq!(ok.to_bytes().unwrap().len(), 28 + 65535);
    let attr = DataAttribute::basic(0x8001, 1);
    assert!(attr.emit(&mut Vec::new()).is_err());
    let no_situation = SecurityAssociation {
        doi: 1,
        situation: vec![],
        proposals: vec![],
    };
    assert!(
        Message::new(header, vec![no_situation.into()])
            .to_bytes()
            .is_err()
    );
}

#[test]
fn hex_for_json() {
    assert_eq!(to_hex(&[0x00, 0xab, 0x10, 0xff]), "00ab10ff");
    assert_eq!(to_hex(&[]), "");
}

#[test]
fn attribute_helpers() {
    assert_eq!(
        DataAttribute::integer(12, 28800),
        DataAttribute::basic(12, 28800)
    );
    assert_eq!(
        DataAttribute::integer(12, 86400),
        DataAttribute::variable(12, vec![0, 1, 0x51, 0x80])
    );
    assert_eq!(DataAttribute::integer(12, 1 << 40).as_u64(), Some(1 << 40));
    assert_eq!(DataAttribute::variable(12, vec![1; 9]).as_u64(), None);
    // A basic class sent as TLV is not decoded (RFC 2409 Appendix A).
    let tlv_enc = DataAttribute::variable(1, vec![0, 7]);
    assert_eq!(
        IkeAttribute::from_attribute(&tlv_enc),
        IkeAttribute::Other(tlv_enc.clone())
    );
    assert_eq!(
        IkeAttribute::from_attribute(&DataAttribute::basic(1, 99)),
        IkeAttribute::EncryptionAlgorithm(EncryptionAlgorithm::Unknown(99))
    );
    assert_eq!(u16::from(EncapsulationMode::UdpEncapsulatedTunnel), 3);
    assert_eq!(
        NotifyMessageType::from(24578),
        NotifyMessageType::InitialContact
    );
    assert!(NotifyMessageType::NoProposalChosen.is_error());
}

#[test]
fn raw_walk_gives_absolute_offsets_and_the_bytes_ike_hashes() {
    let wire = bytes(MAIN_MODE_1);
    let packet = Packet::new_checked(&wire[..]).unwrap();
    let raw: Vec<RawPayload<'_>> = packet
        .payloads(Padding::Forbidden)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(raw.len(), 2);
    assert_eq!(
        (raw[0].payload_type, raw[0].offset),
        (PayloadType::SecurityAssociation, 28)
    );
    assert_eq!(
        (raw[1].payload_type, raw[1].offset),
        (PayloadType::VendorId, 124)
    );
    // SAi_b of RFC 2409 5: the SA body without its generic header.
    assert_eq!(raw[0].body, &wire[32..124]);
    let msg = Message::parse(&wire).unwrap();
    assert_eq!(msg.payloads()[0].body.to_bytes().unwrap(), raw[0].body);
    assert_eq!(msg.buffer_len(), wire.len());
    assert_eq!(msg.payloads()[0].buffer_len(), 96);
    // A bad payload stops the walk with one error.
    let mut bad = wire.clone();
    bad[28 + 96 + 3] = 2;
    let packet = Packet::new_checked(&bad[..]).unwrap();
    let items: Vec<_> = packet.payloads(Padding::Forbidden).collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok() && items[1].is_err());
}
