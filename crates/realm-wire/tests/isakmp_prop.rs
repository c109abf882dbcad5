//! Property tests for the ISAKMP codec: generated messages round-trip, and
//! no input makes the parser panic; whatever parses re-emits byte for byte.

// Test helpers outside `#[test]` fns; `allow-unwrap-in-tests` does not reach them.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use realm_wire::isakmp::{
    Body, Certificate, CertificateRequest, DataAttribute, Delete, ExchangeType, Flags, HEADER_LEN,
    Hash, Header, IdType, Identification, KeyExchange, Message, NatDiscovery, NatOriginalAddress,
    Nonce, Notification, Packet, Padding, Payload, PayloadBody, PayloadChain, PayloadType,
    Proposal, ProtocolId, RawPayloads, SIT_INTEGRITY, SIT_SECRECY, SecurityAssociation, Signature,
    Transform, VendorId, Version, initiator_cookie, responder_cookie,
};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn attribute() -> impl Strategy<Value = DataAttribute> {
    prop_oneof![
        (0u16..0x8000, any::<u16>()).prop_map(|(t, v)| DataAttribute::basic(t, v)),
        (0u16..0x8000, bytes(12)).prop_map(|(t, v)| DataAttribute::variable(t, v)),
    ]
}

fn transform() -> impl Strategy<Value = Transform> {
    (
        any::<[u8; 3]>(),
        any::<u16>(),
        prop::collection::vec(attribute(), 0..5),
    )
        .prop_map(
            |([reserved, number, transform_id], reserved2, attributes)| Transform {
                reserved,
                number,
                transform_id,
                reserved2,
                attributes,
            },
        )
}

fn proposal() -> impl Strategy<Value = Proposal> {
    (
        any::<[u8; 3]>(),
        bytes(16),
        prop::collection::vec(transform(), 0..4),
    )
        .prop_map(|([reserved, number, protocol], spi, transforms)| Proposal {
            reserved,
            number,
            protocol_id: ProtocolId::from(protocol),
            spi,
            transforms,
        })
}

fn padded(mut v: Vec<u8>) -> Vec<u8> {
    v.resize(v.len().next_multiple_of(4), 0);
    v
}

/// One secrecy or integrity label of RFC 2407 4.6.1.
fn label() -> impl Strategy<Value = Vec<u8>> {
    (bytes(7), 0u16..40).prop_map(|(level, category_bits)| {
        let mut out = u16::try_from(level.len()).unwrap().to_be_bytes().to_vec();
        out.extend([0, 0]);
        out.extend(padded(level));
        out.extend(category_bits.to_be_bytes());
        out.extend([0, 0]);
        out.extend(padded(vec![0xa5; usize::from(category_bits).div_ceil(8)]));
        out
    })
}

/// An IPsec DOI situation with the RFC 2407 4.6.1 layout.
fn ipsec_situation() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => any::<u32>().prop_map(|b| (b & !(SIT_SECRECY | SIT_INTEGRITY)).to_be_bytes().to_vec()),
        1 => (any::<u32>(), any::<[u8; 4]>(), label(), label()).prop_map(
            |(bits, ldi, secrecy, integrity)| {
                let bits = bits | SIT_SECRECY;
                let mut out = bits.to_be_bytes().to_vec();
                out.extend(ldi);
                out.extend(secrecy);
                if bits & SIT_INTEGRITY != 0 {
                    out.extend(integrity);
                }
                out
            }
        ),
    ]
}

fn security_association() -> impl Strategy<Value = SecurityAssociation> {
    prop_oneof![
        3 => (ipsec_situation(), prop::collection::vec(proposal(), 0..3))
            .prop_map(|(situation, proposals)| SecurityAssociation { doi: 1, situation, proposals }),
        1 => (any::<u32>().prop_filter("not IPsec", |d| *d != 1), bytes(12))
            .prop_map(|(doi, situation)| SecurityAssociation { doi, situation, proposals: vec![] }),
    ]
}

fn raw_type() -> impl Strategy<Value = PayloadType> {
    any::<u8>()
        .prop_map(PayloadType::from)
        .prop_filter("parses back as raw", |t| {
            matches!(
                t,
                PayloadType::Proposal | PayloadType::Transform | PayloadType::Unknown(_)
            )
        })
}

fn body() -> impl Strategy<Value = PayloadBody> {
    prop_oneof![
        security_association().prop_map(PayloadBody::from),
        bytes(40).prop_map(|d| KeyExchange::new(d).into()),
        (any::<u8>(), any::<u8>(), any::<u16>(), bytes(24)).prop_map(
            |(t, protocol_id, port, data)| {
                Identification {
                    id_type: IdType::from(t),
                    protocol_id,
                    port,
                    data,
                }
                .into()
            }
        ),
        (any::<u8>(), bytes(24)).prop_map(|(e, d)| Certificate::new(e.into(), d).into()),
        (any::<u8>(), bytes(24)).prop_map(|(e, d)| CertificateRequest::new(e.into(), d).into()),
        bytes(24).prop_map(|d| Hash::new(d).into()),
        bytes(24).prop_map(|d| Signature::new(d).into()),
        bytes(24).prop_map(|d| Nonce::new(d).into()),
        (
            any::<u32>(),
            any::<u8>(),
            any::<u16>(),
            bytes(16),
            bytes(16)
        )
            .prop_map(|(doi, p, t, spi, data)| Notification::new(
                doi,
                p.into(),
                t.into(),
                spi,
                data
            )
            .into()),
        (any::<u32>(), any::<u8>(), 1u8..=16, 0usize..4, any::<u8>()).prop_map(
            |(doi, p, size, count, fill)| {
                let spis = (0..count)
                    .map(|i| vec![fill ^ (i as u8); usize::from(size)])
                    .collect();
                Delete::new(doi, p.into(), size, spis).into()
            }
        ),
        (any::<u32>(), any::<u8>())
            .prop_map(|(doi, p)| Delete::new(doi, p.into(), 0, vec![]).into()),
        bytes(20).prop_map(|d| VendorId::new(d).into()),
        bytes(20).prop_map(|d| NatDiscovery::new(d).into()),
        (any::<u8>(), any::<[u8; 3]>(), bytes(16)).prop_map(|(t, reserved, address)| {
            NatOriginalAddress {
                id_type: IdType::from(t),
                reserved,
                address,
            }
            .into()
        }),
        (raw_type(), bytes(24))
            .prop_map(|(payload_type, data)| PayloadBody::Raw { payload_type, data }),
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    (prop_oneof![4 => Just(0u8), 1 => any::<u8>()], body())
        .prop_map(|(reserved, body)| Payload { reserved, body })
}

/// Padding that [`Padding::Zeros`] accepts: zeros, last octet free.
fn padding() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(vec![]),
        1 => (0usize..16, any::<u8>()).prop_map(|(zeros, last)| {
            let mut v = vec![0; zeros];
            v.push(last);
            v
        }),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (
        any::<[u8; 8]>(),
        any::<[u8; 8]>(),
        any::<[u8; 3]>(),
        any::<u32>(),
    )
        .prop_map(
            |(initiator_cookie, responder_cookie, [version, exchange, flags], message_id)| Header {
                initiator_cookie,
                responder_cookie,
                version: Version(version),
                exchange_type: ExchangeType::from(exchange),
                flags: Flags(flags),
                message_id,
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    let plain = (prop::collection::vec(payload(), 0..6), padding())
        .prop_map(|(payloads, padding)| Body::Payloads(PayloadChain { payloads, padding }));
    let encrypted = (any::<u8>(), bytes(64)).prop_map(|(t, ciphertext)| Body::Encrypted {
        next_payload: PayloadType::from(t),
        ciphertext,
    });
    (header(), prop_oneof![4 => plain, 1 => encrypted]).prop_map(|(mut header, body)| {
        let e = matches!(body, Body::Encrypted { .. });
        header.flags = header.flags.with(Flags::ENCRYPTION, e);
        Message { header, body }
    })
}

/// Parse must never panic; whatever parses must re-emit exactly.
fn check_lossless(input: &[u8]) {
    for rule in [Padding::Forbidden, Padding::Zeros, Padding::Any] {
        if let Ok(msg) = Message::parse_with(input, rule) {
            assert_eq!(msg.to_bytes().unwrap(), input, "{rule:?}");
        }
    }
    if let Ok(packet) = Packet::new_checked(input) {
        let _ = (
            packet.next_payload(),
            packet.body().len(),
            Header::parse(&packet),
        );
        for rule in [Padding::Forbidden, Padding::Any] {
            for raw in packet.payloads(rule) {
                let _ = raw.map(|r| r.body.len());
            }
        }
    }
    let _ = (initiator_cookie(input), responder_cookie(input));
}

/// An ISAKMP header whose Length matches `body`, so parsing goes past it.
fn with_header(next: u8, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x5a; 16];
    out.extend([next, 0x10, 2, flags, 0, 0, 0, 0]);
    out.extend(
        u32::try_from(HEADER_LEN + body.len())
            .unwrap()
            .to_be_bytes(),
    );
    out.extend_from_slice(body);
    out
}

fn next_payload_code() -> impl Strategy<Value = u8> {
    prop_oneof![8 => 1u8..=13, 1 => 20u8..=21, 1 => any::<u8>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn generated_messages_round_trip(msg in message()) {
        let wire = msg.to_bytes().unwrap();
        prop_assert_eq!(msg.buffer_len(), wire.len());
        let parsed = Message::parse_with(&wire, Padding::Zeros).unwrap();
        prop_assert_eq!(&parsed, &msg);
        prop_assert_eq!(parsed.to_bytes().unwrap(), wire.clone());

        let packet = Packet::new_checked(&wire[..]).unwrap();
        prop_assert_eq!(Header::parse(&packet).unwrap(), msg.header.clone());
        prop_assert_eq!(usize::try_from(packet.length()).unwrap(), wire.len());
        prop_assert_eq!(initiator_cookie(&wire), Some(msg.header.initiator_cookie));
        prop_assert_eq!(responder_cookie(&wire), Some(msg.header.responder_cookie));
        if let Body::Payloads(chain) = &msg.body {
            prop_assert_eq!(packet.next_payload(), chain.first_type());
            // The zero-copy walker sees the same chain.
            let raw: Vec<_> = packet.payloads(Padding::Zeros).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(raw.len(), chain.payloads.len());
            let mut offset = HEADER_LEN;
            for (r, p) in raw.iter().zip(&chain.payloads) {
                prop_assert_eq!(r.payload_type, p.payload_type());
                prop_assert_eq!(r.offset, offset);
                prop_assert_eq!(r.body, &p.body.to_bytes().unwrap()[..]);
                prop_assert_eq!(r.body.len() + 4, p.buffer_len());
                offset += p.buffer_len();
            }
            let relative = RawPayloads::new(packet.next_payload(), packet.body(), Padding::Zeros);
            prop_assert_eq!(relative.count(), chain.payloads.len());
            if chain.padding.is_empty() {
                prop_assert_eq!(Message::parse(&wire).unwrap(), msg);
            } else {
                prop_assert!(Message::parse(&wire).is_err());
            }
        }
    }

    #[test]
    fn mutated_messages_never_panic(msg in message(), at in any::<prop::sample::Index>(),
                                    xor in 1u8..=255, cut in any::<prop::sample::Index>()) {
        let mut wire = msg.to_bytes().unwrap();
        let i = at.index(wire.len());
        wire[i] ^= xor;
        check_lossless(&wire);
        // Keep the header's Length consistent with a truncated body too.
        let mut cut_wire = msg.to_bytes().unwrap();
        let keep = HEADER_LEN + cut.index(cut_wire.len() - HEADER_LEN + 1);
        cut_wire.truncate(keep);
        cut_wire[24..28].copy_from_slice(&u32::try_from(keep).unwrap().to_be_bytes());
        check_lossless(&cut_wire);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100_000))]

    #[test]
    fn arbitrary_bytes_never_panic(input in bytes(1600)) {
        check_lossless(&input);
        for first in [1u8, 5, 11, 12, 21, 200] {
            for rule in [Padding::Forbidden, Padding::Zeros, Padding::Any] {
                if let Ok(chain) = PayloadChain::parse(first.into(), &input, rule) {
                    prop_assert_eq!(chain.to_bytes().unwrap(), input.clone());
                }
            }
        }
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(
        next in next_payload_code(),
        flags in prop_oneof![9 => Just(0u8), 1 => any::<u8>()],
        body in bytes(1600 - HEADER_LEN),
    ) {
        check_lossless(&with_header(next, flags, &body));
    }

    #[test]
    fn chains_of_plausible_generic_headers_never_panic(
        next in next_payload_code(),
        parts in prop::collection::vec((next_payload_code(), bytes(40)), 0..8),
    ) {
        // Well-formed generic headers around arbitrary bodies reach the typed
        // body parsers far more often than raw bytes do.
        let mut body = Vec::new();
        let count = parts.len();
        for (i, (np, data)) in parts.into_iter().enumerate() {
            body.push(if i + 1 == count { 0 } else { np });
            body.push(0);
            body.extend(u16::try_from(data.len() + 4).unwrap().to_be_bytes());
            body.extend(data);
        }
        check_lossless(&with_header(next, 0, &body));
    }
}
