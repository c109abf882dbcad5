//! Every parameter form of RFC 3103 8 and RFC 3104 6.2, read from literal
//! bytes inside a message where it is allowed, and emitted back identically;
//! and the RSIPSEC messages (22, 23) with every SPI form.

// Test helpers outside #[test] functions may panic too (clippy.toml allows it in tests only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, Ipv6Addr};

use realm_wire::codec::Reader;
use realm_wire::rsip::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("hex")
}

fn msg(t: u8, params: &str) -> Vec<u8> {
    let body = h(params);
    let len = u16::try_from(4 + body.len()).unwrap();
    let mut out = vec![1, t];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Parses, checks the exact round trip, returns the message.
#[track_caller]
fn round_trip(bytes: &[u8]) -> Message {
    let m = Message::parse(bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.to_bytes(), bytes);
    assert_eq!(
        Message::new(m.msg_type(), m.params().to_vec()),
        Ok(m.clone())
    );
    m
}

/// Reads one parameter on its own and checks it emits back identically.
#[track_caller]
fn param(hex: &str) -> Parameter {
    let bytes = h(hex);
    let mut r = Reader::new(&bytes);
    let p = Parameter::read(&mut r).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.is_empty());
    let mut out = Vec::new();
    p.emit(&mut out);
    assert_eq!(out, bytes);
    assert_eq!(p.buffer_len(), bytes.len());
    assert_eq!(p.check(), Ok(()));
    p
}

const CID7: &str = "04 0004 00000007";
const DC: &str = "01 0001 01";
const PORT_DC: &str = "02 0001 01";

#[test]
fn address_forms() {
    assert_eq!(
        param("01 0005 01 c0000201"),
        Parameter::Address(Address::Ipv4(Ipv4Addr::new(192, 0, 2, 1)))
    );
    assert_eq!(
        param("01 0005 02 ffffff00"),
        Parameter::Address(Address::Ipv4Netmask(Ipv4Addr::new(255, 255, 255, 0)))
    );
    let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    assert_eq!(
        param("01 0011 03 20010db8000000000000000000000001"),
        Parameter::Address(Address::Ipv6(v6))
    );
    assert_eq!(
        param("01 000c 04 7777772e666f6f2e636f6d"),
        Parameter::Address(Address::Fqdn("www.foo.com".into()))
    );
    // "Don't care": length 1, the Addrtype only, for each Addrtype.
    for (code, t) in [
        (1, AddrType::Ipv4),
        (2, AddrType::Ipv4Netmask),
        (3, AddrType::Ipv6),
        (4, AddrType::Fqdn),
    ] {
        let p = param(&format!("01 0001 {code:02x}"));
        assert_eq!(p, Parameter::Address(Address::DontCare(t)));
        assert_eq!(t.code(), code);
        assert_eq!(AddrType::from_code(code), Some(t));
    }
    assert_eq!(AddrType::from_code(0), None);

    // RFC 3103 9.8.3 "all 0's" are accepted as don't care, and kept as sent.
    let zeros = Address::Ipv4(Ipv4Addr::UNSPECIFIED);
    assert!(zeros.is_dont_care() && Address::Ipv6(Ipv6Addr::UNSPECIFIED).is_dont_care());
    assert!(!Address::Ipv4(Ipv4Addr::new(192, 0, 2, 1)).is_dont_care());
    let m = round_trip(&msg(
        8,
        &format!("{CID7} 01 0005 0100000000 02 0003 010000 {DC} {PORT_DC}"),
    ));
    let View::AssignRequestRsapIp { flow, .. } = m.view() else {
        panic!()
    };
    assert_eq!(flow.local_address, &zeros);
    assert!(flow.local_address.is_dont_care() && flow.local_ports.is_dont_care());

    // IPv6 and FQDN in their places in a message.
    let m = round_trip(&msg(
        6,
        &format!(
            "{CID7} 01 0011 0320010db8000000000000000000000001 01 000c 047777772e666f6f2e636f6d {PORT_DC}"
        ),
    ));
    assert_eq!(
        m.addresses().map(Address::addr_type).collect::<Vec<_>>(),
        [AddrType::Ipv6, AddrType::Fqdn]
    );
    assert_eq!(m.addresses().next().unwrap().ip(), Some(v6.into()));
}

#[test]
fn ports_forms() {
    // One field, number 1: a single port.
    assert_eq!(
        param("02 0003 01 0015"),
        Parameter::Ports(Ports::single(21))
    );
    // One field, number N: N contiguous ports; up to 65535 exactly.
    let p = param("02 0003 10 2710");
    assert_eq!(
        p,
        Parameter::Ports(Ports::Range {
            first: 10000,
            count: 16
        })
    );
    let Parameter::Ports(range) = p else { panic!() };
    assert_eq!(range.to_vec(), (10000..10016).collect::<Vec<u16>>());
    assert_eq!(range.count(), 16);
    let top = param("02 0003 02 fffe");
    assert_eq!(
        top,
        Parameter::Ports(Ports::Range {
            first: 65534,
            count: 2
        })
    );
    // N fields, number N: a list.
    let p = param("02 0005 02 03f4 03f5");
    assert_eq!(p, Parameter::Ports(Ports::List(vec![1012, 1013])));
    let Parameter::Ports(list) = p else { panic!() };
    assert!(list.contains(1013) && !list.contains(1014) && !list.is_dont_care());
    // "Don't care": length 1, the number only.
    let p = param("02 0001 04");
    assert_eq!(p, Parameter::Ports(Ports::DontCare { count: 4 }));
    let Parameter::Ports(dc) = p else { panic!() };
    assert!(dc.is_dont_care() && dc.to_vec().is_empty() && dc.count() == 4);
    // RFC 3104 "don't need": length 0.
    let p = param("02 0000");
    assert_eq!(p, Parameter::Ports(Ports::DontNeed));
    let Parameter::Ports(dn) = p else { panic!() };
    assert_eq!(dn.count(), 0);

    // In a LISTEN_REQUEST: a list locally, a range remotely.
    let m = round_trip(&msg(
        16,
        &format!("{CID7} {DC} 02 0007 03 0050 01bb 1f90 {DC} 02 0003 0a 0400"),
    ));
    let mut ports = m.ports();
    assert_eq!(ports.next().unwrap().to_vec(), [80, 443, 8080]);
    assert_eq!(
        ports.next().unwrap().to_vec(),
        (1024..1034).collect::<Vec<u16>>()
    );
}

#[test]
fn fixed_size_parameters() {
    assert_eq!(param("03 0004 00000e10"), Parameter::LeaseTime(3600));
    assert_eq!(
        param("04 0004 deadbeef"),
        Parameter::ClientId(ClientId(0xdead_beef))
    );
    assert_eq!(param("05 0004 00000001"), Parameter::BindId(BindId(1)));
    assert_eq!(
        param("0b 0004 ffffffff"),
        Parameter::MessageCounter(u32::MAX)
    );
    // Tunnel types, RSIP methods, error codes and flow policies keep unknown codes.
    assert_eq!(param("06 0001 01"), Parameter::TunnelType(TunnelType::IpIp));
    assert_eq!(param("06 0001 02"), Parameter::TunnelType(TunnelType::Gre));
    assert_eq!(param("06 0001 03"), Parameter::TunnelType(TunnelType::L2tp));
    assert_eq!(
        param("06 0001 00"),
        Parameter::TunnelType(TunnelType::Unknown(0))
    );
    assert_eq!(
        param("06 0001 f1"),
        Parameter::TunnelType(TunnelType::Unknown(241))
    );
    assert_eq!(
        param("07 0001 01"),
        Parameter::RsipMethod(RsipMethod::RsaIp)
    );
    assert_eq!(
        param("07 0001 02"),
        Parameter::RsipMethod(RsipMethod::RsapIp)
    );
    assert_eq!(
        param("07 0001 03"),
        Parameter::RsipMethod(RsipMethod::Rsipsec)
    );
    assert_eq!(
        param("07 0001 09"),
        Parameter::RsipMethod(RsipMethod::Unknown(9))
    );
    assert_eq!(
        param("08 0002 0191"),
        Parameter::Error(ErrorCode::IpsecUnallowed)
    );
    assert_eq!(
        param("08 0002 0193"),
        Parameter::Error(ErrorCode::IpsecSpiInuse)
    );
    assert_eq!(
        param("08 0002 0400"),
        Parameter::Error(ErrorCode::Unknown(1024))
    );
    let fp = |l, r| {
        Parameter::FlowPolicy(FlowPolicy {
            local: l,
            remote: r,
        })
    };
    assert_eq!(
        param("09 0002 0103"),
        fp(LocalFlowPolicy::Macro, RemoteFlowPolicy::None)
    );
    assert_eq!(
        param("09 0002 0202"),
        fp(LocalFlowPolicy::Micro, RemoteFlowPolicy::Micro)
    );
    assert_eq!(
        param("09 0002 0301"),
        fp(LocalFlowPolicy::Unknown(3), RemoteFlowPolicy::Macro)
    );
    assert_eq!(
        param("09 0002 0104"),
        fp(LocalFlowPolicy::Macro, RemoteFlowPolicy::Unknown(4))
    );

    // Unknown tunnel types and methods are valid in messages (the gateway
    // answers BAD_TUNNEL_TYPE, RFC 3103 9.6.3, not a decoding error).
    let m = round_trip(&msg(
        3,
        &format!("{CID7} 03 0004 00000258 09 0002 0101 07 0001 09 06 0001 f1 06 0001 01"),
    ));
    assert_eq!(m.methods().collect::<Vec<_>>(), [RsipMethod::Unknown(9)]);
    assert_eq!(
        m.tunnel_types().collect::<Vec<_>>(),
        [TunnelType::Unknown(241), TunnelType::IpIp]
    );
    let m = round_trip(&msg(1, "08 0002 0400"));
    assert_eq!(m.error(), Some(ErrorCode::Unknown(1024)));
}

#[test]
fn indicator_one_and_two_bytes() {
    assert_eq!(
        param("0a 0002 0004"),
        Parameter::Indicator(Indicator::new(4))
    );
    assert_eq!(
        param("0a 0001 04"),
        Parameter::Indicator(Indicator {
            value: 4,
            one_byte: true
        })
    );
    // Both forms in one QUERY_RESPONSE, each kept as received.
    let m = round_trip(&msg(
        15,
        &format!(
            "{CID7} 0a 0001 01 01 0005 01c0000201  0a 0002 0004 01 0005 010a000000 01 0005 02ff000000"
        ),
    ));
    let tuples = m.query_tuples();
    assert_eq!(tuples.len(), 2);
    assert_eq!(
        tuples[0],
        QueryTuple {
            indicator: Indicator {
                value: 1,
                one_byte: true
            },
            address: Address::Ipv4(Ipv4Addr::new(192, 0, 2, 1)),
            netmask: None
        }
    );
    assert_eq!(
        tuples[1],
        QueryTuple::remote_network(
            Address::Ipv4(Ipv4Addr::new(10, 0, 0, 0)),
            Address::Ipv4Netmask(Ipv4Addr::new(255, 0, 0, 0))
        )
    );
    // A built 1-byte indicator over 255 is refused.
    let bad = Parameter::Indicator(Indicator {
        value: 256,
        one_byte: true,
    });
    assert_eq!(bad.check().unwrap_err().code(), ErrorCode::BadParam);
}

#[test]
fn query_tuples_in_any_order_with_the_counter_anywhere() {
    let v6net = "01 0011 0320010db8000000000000000000000000";
    let v6mask = "01 0011 03ffffffffffffffff0000000000000000";
    let m = round_trip(&msg(
        14,
        &format!(
            "{CID7} 0a 0002 0002 {v6net} {v6mask} 0b 0004 00000005 0a 0002 0001 01 000c 047777772e666f6f2e636f6d"
        ),
    ));
    assert_eq!(m.message_counter(), Some(5));
    let tuples = m.query_tuples();
    assert_eq!(tuples.len(), 2);
    assert!(tuples[0].netmask.is_some() && tuples[1].netmask.is_none());
    assert_eq!(
        tuples[1],
        QueryTuple::address(Address::Fqdn("www.foo.com".into()))
    );
    // No tuple at all: "a request for all tuples" (9.14.3).
    let m = round_trip(&msg(14, CID7));
    assert!(m.query_tuples().is_empty());
    let built = Message::query_response(
        ClientId(7),
        Some(1),
        &[
            QueryTuple::local_address(Address::Ipv4(Ipv4Addr::new(10, 1, 1, 1))),
            QueryTuple::remote_address(Address::Ipv4(Ipv4Addr::new(192, 0, 2, 9))),
        ],
    )
    .unwrap();
    assert_eq!(Message::parse(&built.to_bytes()), Ok(built.clone()));
    assert_eq!(built.query_tuples().len(), 2);
}

#[test]
fn vendor_specific_anywhere_after_the_required_parameters() {
    let p = param("0c 0007 0009 0001 aabbcc");
    assert_eq!(
        p,
        Parameter::VendorSpecific(VendorSpecific {
            vendor_id: 9,
            subtype: 1,
            value: vec![0xaa, 0xbb, 0xcc]
        })
    );
    assert_eq!(
        param("0c 0004 0009 0002"),
        Parameter::VendorSpecific(VendorSpecific {
            vendor_id: 9,
            subtype: 2,
            value: vec![]
        })
    );
    let m = round_trip(&msg(
        4,
        &format!("{CID7} 0c 0004 00090002 0b 0004 00000001 0c 0005 0009000301"),
    ));
    assert_eq!(m.vendor_specific().count(), 2);
    assert_eq!(m.message_counter(), Some(1));
    round_trip(&msg(2, "0c 0004 00090002"));
}

#[test]
fn message_counter_anywhere_after_the_required_parameters() {
    // RSAP-IP request: [Message Counter] [Lease Time] [Tunnel Type] in any order.
    let req = format!("{CID7} {DC} {PORT_DC} {DC} {PORT_DC}");
    let (mc, lt, tt) = ("0b 0004 00000001", "03 0004 00000258", "06 0001 01");
    for order in [[mc, lt, tt], [lt, mc, tt], [tt, lt, mc], [lt, tt, mc]] {
        let m = round_trip(&msg(8, &format!("{req} {}", order.join(" "))));
        assert_eq!((m.message_counter(), m.lease_time()), (Some(1), Some(600)));
    }
    // ERROR_RESPONSE: [Message Counter] [Client ID] [Bind ID] in any order.
    let m = round_trip(&msg(
        1,
        &format!("08 0002 0132 05 0004 00000002 {CID7} {mc}"),
    ));
    assert_eq!(
        m.view(),
        View::ErrorResponse {
            error: ErrorCode::BadBindId,
            client_id: Some(ClientId(7)),
            bind_id: Some(BindId(2))
        }
    );
}

#[test]
fn tunnel_endpoint_in_responses() {
    let ep = Address::Ipv4(Ipv4Addr::new(192, 0, 2, 254));
    let flow = Flow {
        local_address: Address::Ipv4(Ipv4Addr::new(198, 51, 100, 1)),
        local_ports: Ports::Range {
            first: 40000,
            count: 8,
        },
        remote_address: Address::DONT_CARE_V4,
        remote_ports: Ports::DONT_CARE_ONE,
    };
    let grant = Grant {
        lease_time: 600,
        tunnel_type: TunnelType::Gre,
        tunnel_endpoint: Some(ep.clone()),
        message_counter: Some(77),
    };
    let m = Message::assign_response_rsap_ip(ClientId(1), BindId(2), flow.clone(), grant.clone())
        .unwrap();
    let bytes = m.to_bytes();
    let back = round_trip(&bytes);
    let View::AssignResponseRsapIp {
        tunnel_endpoint,
        tunnel_type,
        ..
    } = back.view()
    else {
        panic!()
    };
    assert_eq!((tunnel_endpoint, tunnel_type), (Some(&ep), TunnelType::Gre));
    assert_eq!(back.message_counter(), Some(77));
    // The counter may also come first.
    let mut params = m.params().to_vec();
    params.swap(8, 9);
    assert!(Message::new(MessageType::AssignResponseRsapIp, params).is_ok());
    let m = Message::listen_response(ClientId(1), BindId(3), flow, grant).unwrap();
    let back = round_trip(&m.to_bytes());
    let View::ListenResponse {
        tunnel_endpoint, ..
    } = back.view()
    else {
        panic!()
    };
    assert_eq!(tunnel_endpoint, Some(&ep));
}

// ---- RFC 3104: SPI parameter and ASSIGN_*_RSIPSEC ----------------------------------

#[test]
fn spi_forms() {
    assert_eq!(
        param("16 0006 0001 00001000"),
        Parameter::Spi(Spis::single(Spi(0x1000)))
    );
    let p = param("16 0006 0004 00001000");
    assert_eq!(
        p,
        Parameter::Spi(Spis::Range {
            first: Spi(0x1000),
            count: 4
        })
    );
    let Parameter::Spi(range) = p else { panic!() };
    assert_eq!(
        range.to_vec(),
        [Spi(0x1000), Spi(0x1001), Spi(0x1002), Spi(0x1003)]
    );
    assert_eq!(
        param("16 0006 0002 fffffffe"),
        Parameter::Spi(Spis::Range {
            first: Spi(u32::MAX - 1),
            count: 2
        })
    );
    let p = param("16 000a 0002 00000100 00000200");
    assert_eq!(p, Parameter::Spi(Spis::List(vec![Spi(0x100), Spi(0x200)])));
    let p = param("16 0002 0003");
    assert_eq!(p, Parameter::Spi(Spis::DontCare { count: 3 }));
    let Parameter::Spi(dc) = p else { panic!() };
    assert!(dc.is_dont_care() && dc.count() == 3 && dc.to_vec().is_empty());
}

#[test]
fn assign_rsipsec_messages_with_every_spi_form() {
    let host = "01 0005 01c0a80001";
    let peer = "01 0005 01cb007107";
    let spi_forms = [
        ("16 0002 0001", Spis::DontCare { count: 1 }),
        ("16 0002 0002", Spis::DontCare { count: 2 }),
        ("16 0006 0001 0000abcd", Spis::single(Spi(0xabcd))),
        (
            "16 0006 0008 0000abcd",
            Spis::Range {
                first: Spi(0xabcd),
                count: 8,
            },
        ),
        (
            "16 000e 0003 00000101 00000202 00000303",
            Spis::List(vec![Spi(0x101), Spi(0x202), Spi(0x303)]),
        ),
    ];
    for (spi_hex, spis) in spi_forms {
        // ASSIGN_REQUEST_RSIPSEC (22): no ports needed ("don't need", length 0).
        let req = msg(
            22,
            &format!("{CID7} {DC} 02 0000 {peer} 02 0000 {spi_hex} 0b 0004 00000003"),
        );
        let m = round_trip(&req);
        let View::AssignRequestRsipsec {
            client_id,
            flow,
            spis: seen,
            lease_time,
            tunnel_type,
        } = m.view()
        else {
            panic!("{:?}", m.view())
        };
        assert_eq!(
            (client_id, seen, lease_time, tunnel_type),
            (ClientId(7), &spis, None, None)
        );
        assert_eq!(
            (flow.local_ports, flow.remote_ports),
            (&Ports::DontNeed, &Ports::DontNeed)
        );
        assert_eq!(m.spis(), Some(&spis));
        let flow = flow.to_owned();
        let built = Message::assign_request_rsipsec(
            ClientId(7),
            flow.clone(),
            spis.clone(),
            RequestOptions {
                message_counter: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(built.to_bytes(), req);

        // ASSIGN_RESPONSE_RSIPSEC (23): "don't need" echoed; SPI before Lease and Tunnel.
        let resp = msg(
            23,
            &format!(
                "{CID7} 05 0004 00000004 {host} 02 0000 {peer} 02 0000 {spi_hex} 03 0004 00000258 06 0001 01 0b 0004 00000003"
            ),
        );
        let m = round_trip(&resp);
        let View::AssignResponseRsipsec {
            bind_id,
            spis: seen,
            lease_time,
            tunnel_type,
            tunnel_endpoint,
            ..
        } = m.view()
        else {
            panic!("{:?}", m.view())
        };
        assert_eq!(
            (bind_id, seen, lease_time, tunnel_type, tunnel_endpoint),
            (BindId(4), &spis, 600, TunnelType::IpIp, None)
        );
        let flow = Flow {
            local_address: Address::Ipv4(Ipv4Addr::new(192, 168, 0, 1)),
            ..flow
        };
        let grant = Grant {
            lease_time: 600,
            tunnel_type: TunnelType::IpIp,
            tunnel_endpoint: None,
            message_counter: Some(3),
        };
        let built =
            Message::assign_response_rsipsec(ClientId(7), BindId(4), flow, spis, grant).unwrap();
        assert_eq!(built.to_bytes(), resp);
    }
    // With ports for a TCP/UDP application (RFC 3104 Appendix A).
    round_trip(&msg(
        22,
        &format!(
            "{CID7} {DC} 02 0001 04 {peer} 02 0003 0101bb 16 0002 0001 03 0004 00000258 06 0001 02"
        ),
    ));
    // The SPI is required, after the four flow parameters.
    let err = Message::parse(&msg(22, &format!("{CID7} {DC} 02 0000 {peer} 02 0000"))).unwrap_err();
    assert_eq!((err.code(), err.offset), (ErrorCode::MissingParam, 29));
    // RFC 3104 error codes in an ERROR_RESPONSE.
    for code in [401, 402, 403] {
        let m = round_trip(&msg(1, &format!("08 0002 {code:04x} {CID7}")));
        assert!(m.error().unwrap().as_str().starts_with("IPSEC_"));
    }
}

// ---- 241 Authentication (Realm's private-use parameter) ------------------------------

#[test]
fn authentication_parameter_round_trips_and_sits_among_optionals() {
    let auth = Authentication {
        key_id: 7,
        counter: 0x0102_0304_0506_0708,
        mac: [0xaa; 16],
    };
    let reg = Message::register_request(Some(1))
        .with_param(Parameter::Authentication(auth))
        .unwrap();
    let bytes = reg.to_bytes();
    let mut expected = hex::decode("0102002a0b000400000001f1001c00000007").unwrap();
    expected.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
    expected.extend_from_slice(&[0xaa; 16]);
    assert_eq!(bytes, expected);
    let back = Message::parse(&bytes).unwrap();
    assert_eq!(back, reg);
    assert_eq!(back.authentication(), Some(auth));
    assert_eq!(ParamType::from(241), ParamType::Authentication);

    // Anywhere among the optional parameters: before the counter too.
    let m = Message::new(
        MessageType::DeregisterRequest,
        vec![
            Parameter::ClientId(ClientId(9)),
            Parameter::Authentication(auth),
            Parameter::MessageCounter(3),
        ],
    )
    .unwrap();
    assert_eq!(Message::parse(&m.to_bytes()).unwrap(), m);

    // Twice: DUPLICATE_PARAM; in the place of a required one: MISSING_PARAM.
    let twice = Message::new(
        MessageType::RegisterRequest,
        vec![
            Parameter::Authentication(auth),
            Parameter::Authentication(auth),
        ],
    )
    .unwrap_err();
    assert_eq!(twice.code(), ErrorCode::DuplicateParam);
    let misplaced = Message::new(
        MessageType::DeregisterRequest,
        vec![Parameter::Authentication(auth)],
    )
    .unwrap_err();
    assert_eq!(misplaced.code(), ErrorCode::MissingParam);

    // A wrong length is BAD_PARAM.
    let bad = hex::decode("01020011f1000a00000007000000000000").unwrap();
    assert_eq!(
        Message::parse(&bad).unwrap_err().code(),
        ErrorCode::BadParam
    );
}
