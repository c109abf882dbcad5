//! Property tests of the RSIP codec: valid messages of every type round-trip
//! exactly, arbitrary bytes never panic, and TCP framing survives any chopping.

// Test helpers outside #[test] functions may panic too (clippy.toml allows it in tests only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::prelude::*;
use realm_wire::rsip::*;

// ---- parameter strategies, per place in the BNF ---------------------------------

fn ipv4() -> impl Strategy<Value = Address> {
    any::<[u8; 4]>().prop_map(|b| Address::Ipv4(Ipv4Addr::from(b)))
}
fn ipv6() -> impl Strategy<Value = Address> {
    any::<[u8; 16]>().prop_map(|b| Address::Ipv6(Ipv6Addr::from(b)))
}
fn fqdn() -> impl Strategy<Value = Address> {
    "[a-z0-9][a-z0-9.-]{0,30}".prop_map(Address::Fqdn)
}
fn dont_care(types: &'static [AddrType]) -> impl Strategy<Value = Address> {
    proptest::sample::select(types).prop_map(Address::DontCare)
}
const IP_TYPES: &[AddrType] = &[AddrType::Ipv4, AddrType::Ipv6];
const REMOTE_TYPES: &[AddrType] = &[AddrType::Ipv4, AddrType::Ipv6, AddrType::Fqdn];

fn local_address() -> BoxedStrategy<Address> {
    prop_oneof![ipv4(), ipv6(), dont_care(IP_TYPES)].boxed()
}
fn remote_address() -> BoxedStrategy<Address> {
    prop_oneof![ipv4(), ipv6(), fqdn(), dont_care(REMOTE_TYPES)].boxed()
}
fn endpoint() -> BoxedStrategy<Address> {
    prop_oneof![ipv4(), ipv6(), fqdn()].boxed()
}

fn ports(dont_need: bool) -> BoxedStrategy<Ports> {
    let range = (any::<u16>(), 1u8..=255).prop_map(|(first, count)| {
        let first = first.min(u16::MAX - (u16::from(count) - 1));
        Ports::Range { first, count }
    });
    let forms = prop_oneof![
        (1u8..=255).prop_map(|count| Ports::DontCare { count }),
        range,
        vec(any::<u16>(), 2..8).prop_map(Ports::List),
    ];
    if dont_need {
        prop_oneof![1 => Just(Ports::DontNeed), 3 => forms].boxed()
    } else {
        forms.boxed()
    }
}

fn spis() -> BoxedStrategy<Spis> {
    prop_oneof![
        (1u16..).prop_map(|count| Spis::DontCare { count }),
        (any::<u32>(), 1u16..).prop_map(|(first, count)| {
            let first = first.min(u32::MAX - (u32::from(count) - 1));
            Spis::Range {
                first: Spi(first),
                count,
            }
        }),
        vec(any::<u32>().prop_map(Spi), 2..6).prop_map(Spis::List),
    ]
    .boxed()
}

fn p_client() -> BoxedStrategy<Parameter> {
    any::<u32>()
        .prop_map(|v| Parameter::ClientId(ClientId(v)))
        .boxed()
}
fn p_bind() -> BoxedStrategy<Parameter> {
    any::<u32>()
        .prop_map(|v| Parameter::BindId(BindId(v)))
        .boxed()
}
fn p_lease() -> BoxedStrategy<Parameter> {
    any::<u32>().prop_map(Parameter::LeaseTime).boxed()
}
fn p_counter() -> BoxedStrategy<Parameter> {
    any::<u32>().prop_map(Parameter::MessageCounter).boxed()
}
fn p_tunnel() -> BoxedStrategy<Parameter> {
    any::<u8>()
        .prop_map(|v| Parameter::TunnelType(TunnelType::from(v)))
        .boxed()
}
fn p_method() -> BoxedStrategy<Parameter> {
    any::<u8>()
        .prop_map(|v| Parameter::RsipMethod(RsipMethod::from(v)))
        .boxed()
}
fn p_error() -> BoxedStrategy<Parameter> {
    any::<u16>()
        .prop_map(|v| Parameter::Error(ErrorCode::from(v)))
        .boxed()
}
fn p_flow_policy() -> BoxedStrategy<Parameter> {
    (any::<u8>(), any::<u8>())
        .prop_map(|(l, r)| {
            Parameter::FlowPolicy(FlowPolicy {
                local: LocalFlowPolicy::from(l),
                remote: RemoteFlowPolicy::from(r),
            })
        })
        .boxed()
}
fn p_local() -> BoxedStrategy<Parameter> {
    local_address().prop_map(Parameter::Address).boxed()
}
fn p_remote() -> BoxedStrategy<Parameter> {
    remote_address().prop_map(Parameter::Address).boxed()
}
fn p_endpoint() -> BoxedStrategy<Parameter> {
    endpoint().prop_map(Parameter::Address).boxed()
}
fn p_ports(dont_need: bool) -> BoxedStrategy<Parameter> {
    ports(dont_need).prop_map(Parameter::Ports).boxed()
}
fn p_spi() -> BoxedStrategy<Parameter> {
    spis().prop_map(Parameter::Spi).boxed()
}
fn p_vendor() -> BoxedStrategy<Parameter> {
    (any::<u16>(), any::<u16>(), vec(any::<u8>(), 0..8))
        .prop_map(|(vendor_id, subtype, value)| {
            Parameter::VendorSpecific(VendorSpecific {
                vendor_id,
                subtype,
                value,
            })
        })
        .boxed()
}

fn p_auth() -> BoxedStrategy<Parameter> {
    (any::<u32>(), any::<u64>(), any::<[u8; 16]>())
        .prop_map(|(key_id, counter, mac)| {
            Parameter::Authentication(Authentication {
                key_id,
                counter,
                mac,
            })
        })
        .boxed()
}

// ---- optional parameters: chunks shuffled into any order ---------------------------

/// Optional parameters as chunks (a QUERY tuple is one chunk of 2 or 3).
type Chunks = Vec<Vec<Parameter>>;

fn once(s: BoxedStrategy<Parameter>) -> BoxedStrategy<Chunks> {
    proptest::option::of(s)
        .prop_map(|o| o.into_iter().map(|p| vec![p]).collect())
        .boxed()
}
fn many(s: BoxedStrategy<Parameter>, max: usize) -> BoxedStrategy<Chunks> {
    vec(s, 0..=max)
        .prop_map(|v| v.into_iter().map(|p| vec![p]).collect())
        .boxed()
}
fn vendors() -> BoxedStrategy<Chunks> {
    prop_oneof![4 => Just(vec![]), 1 => many(p_vendor(), 2)].boxed()
}

fn indicator(value: u16) -> impl Strategy<Value = Indicator> {
    any::<bool>().prop_map(move |one_byte| Indicator { value, one_byte })
}

fn tuples(response: bool) -> BoxedStrategy<Chunks> {
    let values: &'static [u16] = if response { &[1, 2, 3, 4] } else { &[1, 2] };
    let tuple = proptest::sample::select(values).prop_flat_map(|value| {
        let network = value % 2 == 0;
        let addr = if network {
            prop_oneof![
                (ipv4(), any::<[u8; 4]>())
                    .prop_map(|(n, m)| { vec![n, Address::Ipv4Netmask(Ipv4Addr::from(m))] }),
                (ipv6(), ipv6()).prop_map(|(n, m)| vec![n, m]),
            ]
            .boxed()
        } else {
            prop_oneof![ipv4(), ipv6(), fqdn()]
                .prop_map(|a| vec![a])
                .boxed()
        };
        (indicator(value), addr).prop_map(|(i, addrs)| {
            let mut chunk = vec![Parameter::Indicator(i)];
            chunk.extend(addrs.into_iter().map(Parameter::Address));
            chunk
        })
    });
    vec(tuple, 0..4).boxed()
}

/// A valid message: the required parameters in order, then the optional
/// chunks (and any vendor-specific ones) shuffled.
fn build(
    msg_type: MessageType,
    required: Vec<BoxedStrategy<Parameter>>,
    mut optional: Vec<BoxedStrategy<Chunks>>,
) -> BoxedStrategy<Message> {
    optional.push(vendors());
    optional.push(once(p_auth()));
    (required, optional)
        .prop_flat_map(move |(required, optional)| {
            let chunks: Chunks = optional.into_iter().flatten().collect();
            Just(chunks).prop_shuffle().prop_map(move |chunks| {
                let mut params = required.clone();
                params.extend(chunks.into_iter().flatten());
                Message::new(msg_type, params).unwrap_or_else(|e| panic!("{msg_type}: {e}"))
            })
        })
        .boxed()
}

fn any_message() -> BoxedStrategy<Message> {
    use MessageType as M;
    let flow = |dont_need| {
        vec![
            p_local(),
            p_ports(dont_need),
            p_remote(),
            p_ports(dont_need),
        ]
    };
    let cat = |parts: Vec<Vec<BoxedStrategy<Parameter>>>| parts.concat();
    let request_opts = || vec![once(p_counter()), once(p_lease()), once(p_tunnel())];
    let response_opts = || vec![once(p_endpoint()), once(p_counter())];
    prop_oneof![
        build(
            M::ErrorResponse,
            vec![p_error()],
            vec![once(p_counter()), once(p_client()), once(p_bind())]
        ),
        build(M::RegisterRequest, vec![], vec![once(p_counter())]),
        build(
            M::RegisterResponse,
            vec![p_client(), p_lease(), p_flow_policy()],
            vec![once(p_counter()), many(p_method(), 3), many(p_tunnel(), 3)],
        ),
        build(
            M::DeregisterRequest,
            vec![p_client()],
            vec![once(p_counter())]
        ),
        build(
            M::DeregisterResponse,
            vec![p_client()],
            vec![once(p_counter())]
        ),
        build(
            M::AssignRequestRsaIp,
            vec![p_client(), p_local(), p_remote(), p_ports(false)],
            request_opts(),
        ),
        build(
            M::AssignResponseRsaIp,
            vec![
                p_client(),
                p_bind(),
                p_local(),
                p_remote(),
                p_ports(false),
                p_lease(),
                p_tunnel()
            ],
            response_opts(),
        ),
        build(
            M::AssignRequestRsapIp,
            cat(vec![vec![p_client()], flow(false)]),
            request_opts()
        ),
        build(
            M::AssignResponseRsapIp,
            cat(vec![
                vec![p_client(), p_bind()],
                flow(false),
                vec![p_lease(), p_tunnel()]
            ]),
            response_opts(),
        ),
        build(
            M::ExtendRequest,
            vec![p_client(), p_bind()],
            vec![once(p_lease()), once(p_counter())]
        ),
        build(
            M::ExtendResponse,
            vec![p_client(), p_bind(), p_lease()],
            vec![once(p_counter())]
        ),
        build(
            M::FreeRequest,
            vec![p_client(), p_bind()],
            vec![once(p_counter())]
        ),
        build(
            M::FreeResponse,
            vec![p_client(), p_bind()],
            vec![once(p_counter())]
        ),
        build(
            M::QueryRequest,
            vec![p_client()],
            vec![once(p_counter()), tuples(false)]
        ),
        build(
            M::QueryResponse,
            vec![p_client()],
            vec![once(p_counter()), tuples(true)]
        ),
        build(
            M::ListenRequest,
            cat(vec![vec![p_client()], flow(false)]),
            vec![once(p_counter()), once(p_lease()), many(p_tunnel(), 3)],
        ),
        build(
            M::ListenResponse,
            cat(vec![
                vec![p_client(), p_bind()],
                flow(false),
                vec![p_tunnel(), p_lease()]
            ]),
            response_opts(),
        ),
        build(
            M::AssignRequestRsipsec,
            cat(vec![vec![p_client()], flow(true), vec![p_spi()]]),
            request_opts(),
        ),
        build(
            M::AssignResponseRsipsec,
            cat(vec![
                vec![p_client(), p_bind()],
                flow(true),
                vec![p_spi(), p_lease(), p_tunnel()]
            ]),
            response_opts(),
        ),
    ]
    .boxed()
}

// ---- arbitrary input ------------------------------------------------------------------

const TYPES: &[u8] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 22, 23, 18, 0, 255,
];
const PARAM_TYPES: &[u8] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 22, 0, 13, 99];

/// Parameter-shaped bytes: mostly plausible types with a right length, sometimes not.
fn tlv_body() -> impl Strategy<Value = Vec<u8>> {
    let tlv = (
        proptest::sample::select(PARAM_TYPES),
        vec(any::<u8>(), 0..20),
        0u8..8,
    )
        .prop_map(|(t, value, skew)| {
            let mut len = u16::try_from(value.len()).unwrap_or(0);
            if skew == 0 {
                len = len.wrapping_add(1); // a lie now and then
            }
            let mut out = vec![t];
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&value);
            out
        });
    vec(tlv, 0..12).prop_map(|v| v.concat())
}

fn with_header(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(4 + body.len()).unwrap_or(u16::MAX);
    let mut out = vec![1, msg_type];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Whatever `parse` says about `bytes`, it says it without panicking, and an
/// accepted message emits back to the same bytes.
fn check_any(bytes: &[u8]) -> Result<(), TestCaseError> {
    match Message::parse(bytes) {
        Ok(m) => {
            prop_assert_eq!(m.to_bytes(), bytes);
            prop_assert!(!matches!(m.view(), View::Unknown(_)));
        }
        Err(e) => {
            prop_assert!(e.offset <= bytes.len(), "{} beyond {}", e, bytes.len());
            let code = u16::from(e.code());
            prop_assert!(code == 106 || (201..=207).contains(&code), "{}", e);
            let reply = e.error_response();
            prop_assert_eq!(Message::parse(&reply.to_bytes()), Ok(reply));
        }
    }
    if let Ok((_, params)) = Message::parse_lenient(bytes) {
        let mut out = bytes.get(..4).unwrap_or(&[]).to_vec();
        params.iter().for_each(|p| p.emit(&mut out));
        prop_assert_eq!(out, bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn valid_messages_round_trip(m in any_message()) {
        let bytes = m.to_bytes();
        prop_assert_eq!(bytes.len(), m.buffer_len());
        let parsed = Message::parse(&bytes);
        prop_assert_eq!(parsed.as_ref(), Ok(&m));
        prop_assert_eq!(parsed.map(|p| p.to_bytes()), Ok(bytes));
        prop_assert_eq!(Message::new(m.msg_type(), m.params().to_vec()), Ok(m.clone()));
        prop_assert!(!matches!(m.view(), View::Unknown(_)));
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        m in any_message(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        how in 0u8..3,
    ) {
        let mut bytes = m.to_bytes();
        let i = at.index(bytes.len());
        match how {
            0 => bytes[i] = byte,
            1 => bytes.insert(i, byte),
            _ => { bytes.remove(i); }
        }
        // Keep the overall length right half the time so the parameters are judged.
        if byte % 2 == 0 && bytes.len() >= 4 {
            let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes();
            bytes[2] = len[0];
            bytes[3] = len[1];
        }
        check_any(&bytes)?;
    }

    #[test]
    fn message_streams_survive_any_chopping(
        msgs in vec(any_message(), 1..8),
        cuts in vec(any::<prop::sample::Index>(), 0..10),
        max_extra in 0usize..64,
    ) {
        let frames: Vec<Vec<u8>> = msgs.iter().map(Message::to_bytes).collect();
        let stream = frames.concat();
        let max = frames.iter().map(Vec::len).max().unwrap_or(4) + max_extra;
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut dec = StreamDecoder::new(max);
        let mut got = Vec::new();
        for w in points.windows(2) {
            let mut read = &stream[w[0]..w[1]];
            while !read.is_empty() {
                let n = dec.push(read);
                read = &read[n..];
                prop_assert!(dec.buffered() <= max);
                while let Some(frame) = dec.next_frame().map_err(|e| TestCaseError::fail(e.to_string()))? {
                    got.push(Message::parse(frame).map_err(|e| TestCaseError::fail(e.to_string()))?);
                }
            }
        }
        prop_assert_eq!(dec.buffered(), 0);
        prop_assert_eq!(got, msgs);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..96)) {
        check_any(&bytes)?;
        let mut dec = StreamDecoder::new(64);
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let n = dec.push(rest);
            rest = &rest[n..];
            match dec.next_frame() {
                Ok(Some(frame)) => { let _ = Message::parse(frame); }
                Ok(None) if n == 0 => prop_assert!(false, "stalled"),
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(
        t in proptest::sample::select(TYPES),
        body in vec(any::<u8>(), 0..80),
    ) {
        check_any(&with_header(t, &body))?;
    }

    #[test]
    fn parameter_shaped_bodies_never_panic(
        t in proptest::sample::select(TYPES),
        body in tlv_body(),
    ) {
        check_any(&with_header(t, &body))?;
    }
}
