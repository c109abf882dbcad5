//! RFC 3103 Appendix C transactions 16.1, 16.2 and 16.3 as literal bytes, built
//! by hand from the parameter layouts of section 8 (one parameter per group:
//! type, length, value). Appendix C omits version, type and length; "don't
//! care" values, written "0" there, are the length-1 forms (IPv4 addrtype for
//! addresses, number 1 for a single port), per the wire notes.

use std::net::Ipv4Addr;

use super::appendix_c::*;
use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("fixture is hex")
}

/// Parses the fixture, checks emit reproduces it byte for byte, and that the
/// typed constructor (when given) builds the same message.
#[track_caller]
fn fixture(hex: &str, built: Option<Message>) -> Message {
    let bytes = h(hex);
    let m = Message::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.to_bytes(), bytes, "emit(parse(x)) == x");
    assert_eq!(m.buffer_len(), bytes.len());
    if let Some(built) = built {
        assert_eq!(built, m, "typed constructor");
        assert_eq!(built.to_bytes(), bytes);
    }
    m
}

const GW_ADDR: Address = Address::Ipv4(Ipv4Addr::new(149, 112, 240, 156));
const FTP_SERVER: Address = Address::Ipv4(Ipv4Addr::new(38, 196, 73, 6));
const DC: Address = Address::DONT_CARE_V4;

fn any_flow(local_ports: Ports) -> Flow {
    Flow {
        local_address: DC,
        local_ports,
        remote_address: DC,
        remote_ports: Ports::DONT_CARE_ONE,
    }
}

fn grant(lease_time: u32) -> Grant {
    Grant {
        lease_time,
        tunnel_type: TunnelType::IpIp,
        tunnel_endpoint: None,
        message_counter: None,
    }
}

// ---- 16.1 RSAP-IP, local macro-flow policy, no remote flow policy ------------

#[test]
fn appendix_c_16_1_rsap_ip_macro_no_remote_policy() {
    let m = fixture(C1_REGISTER_REQUEST, Some(Message::register_request(None)));
    assert_eq!(m.msg_type(), MessageType::RegisterRequest);
    assert!(m.params().is_empty());

    let fp = FlowPolicy {
        local: LocalFlowPolicy::Macro,
        remote: RemoteFlowPolicy::None,
    };
    let built = Message::register_response(ClientId(1), 600, fp, None, &[], &[]).unwrap();
    let m = fixture(C1_REGISTER_RESPONSE, Some(built));
    assert_eq!(
        m.view(),
        View::RegisterResponse {
            client_id: ClientId(1),
            lease_time: 600,
            flow_policy: fp
        }
    );
    // 9.3.3: no method means RSAP-IP, no tunnel type means IP-IP.
    assert_eq!(m.methods().count(), 0);
    assert_eq!(m.tunnel_types().count(), 0);

    let options = RequestOptions {
        lease_time: Some(3600),
        ..Default::default()
    };
    let built = Message::assign_request_rsap_ip(
        ClientId(1),
        any_flow(Ports::DontCare { count: 4 }),
        options,
    )
    .unwrap();
    let m = fixture(C1_ASSIGN_REQUEST_1, Some(built));
    let View::AssignRequestRsapIp {
        client_id,
        flow,
        lease_time,
        tunnel_type,
    } = m.view()
    else {
        panic!("{:?}", m.view())
    };
    assert_eq!(client_id, ClientId(1));
    assert_eq!(flow.local_address, &DC);
    assert!(flow.local_address.is_dont_care());
    assert_eq!(flow.local_ports, &Ports::DontCare { count: 4 });
    assert_eq!(flow.local_ports.count(), 4);
    assert_eq!(flow.remote_address, &DC);
    assert_eq!(flow.remote_ports, &Ports::DontCare { count: 1 });
    assert_eq!((lease_time, tunnel_type), (Some(3600), None));

    let flow = Flow {
        local_address: GW_ADDR,
        local_ports: Ports::Range {
            first: 1234,
            count: 4,
        },
        remote_address: DC,
        remote_ports: Ports::DONT_CARE_ONE,
    };
    let built =
        Message::assign_response_rsap_ip(ClientId(1), BindId(1), flow, grant(1800)).unwrap();
    let m = fixture(C1_ASSIGN_RESPONSE_1, Some(built));
    let View::AssignResponseRsapIp {
        client_id,
        bind_id,
        flow,
        lease_time,
        tunnel_type,
        tunnel_endpoint,
    } = m.view()
    else {
        panic!("{:?}", m.view())
    };
    assert_eq!(
        (client_id, bind_id, lease_time),
        (ClientId(1), BindId(1), 1800)
    );
    assert_eq!((tunnel_type, tunnel_endpoint), (TunnelType::IpIp, None));
    assert_eq!(
        flow.local_address.ip(),
        Some("149.112.240.156".parse().unwrap())
    );
    assert_eq!(flow.local_ports.to_vec(), [1234, 1235, 1236, 1237]);
    assert!(flow.remote_address.is_dont_care() && flow.remote_ports.is_dont_care());

    let net = Address::Ipv4(Ipv4Addr::new(10, 20, 60, 0));
    let mask = Address::Ipv4Netmask(Ipv4Addr::new(255, 255, 255, 0));
    let tuple = QueryTuple::network(net.clone(), mask.clone());
    let built = Message::query_request(ClientId(1), None, std::slice::from_ref(&tuple)).unwrap();
    let m = fixture(C1_QUERY_REQUEST, Some(built));
    assert_eq!(
        m.view(),
        View::QueryRequest {
            client_id: ClientId(1)
        }
    );
    assert_eq!(m.query_tuples(), [tuple]);

    let tuple = QueryTuple::local_network(net, mask);
    let built = Message::query_response(ClientId(1), None, std::slice::from_ref(&tuple)).unwrap();
    let m = fixture(C1_QUERY_RESPONSE, Some(built));
    assert_eq!(m.query_tuples(), [tuple]);

    let flow = Flow {
        local_address: GW_ADDR,
        local_ports: Ports::Range {
            first: 1238,
            count: 8,
        },
        remote_address: DC,
        remote_ports: Ports::DONT_CARE_ONE,
    };
    let options = RequestOptions {
        lease_time: Some(1800),
        ..Default::default()
    };
    let built = Message::assign_request_rsap_ip(ClientId(1), flow, options).unwrap();
    let m = fixture(C1_ASSIGN_REQUEST_2, Some(built));
    assert_eq!(
        m.ports().next().unwrap().to_vec(),
        (1238..1246).collect::<Vec<u16>>()
    );

    let flow = Flow {
        local_address: GW_ADDR,
        local_ports: Ports::Range {
            first: 1305,
            count: 8,
        },
        remote_address: DC,
        remote_ports: Ports::DONT_CARE_ONE,
    };
    let built =
        Message::assign_response_rsap_ip(ClientId(1), BindId(2), flow, grant(1800)).unwrap();
    let m = fixture(C1_ASSIGN_RESPONSE_2, Some(built));
    let local_ports = m.ports().next().unwrap();
    assert!(local_ports.contains(1305) && local_ports.contains(1312));
    assert!(!local_ports.contains(1313) && !local_ports.contains(1304));

    let m = fixture(
        C1_FREE_REQUEST,
        Some(Message::free_request(ClientId(1), BindId(1), None)),
    );
    assert_eq!(
        m.view(),
        View::FreeRequest {
            client_id: ClientId(1),
            bind_id: BindId(1)
        }
    );
    let m = fixture(
        C1_FREE_RESPONSE_1,
        Some(Message::free_response(ClientId(1), BindId(1), None)),
    );
    assert_eq!(
        m.view(),
        View::FreeResponse {
            client_id: ClientId(1),
            bind_id: BindId(1)
        }
    );

    let built = Message::extend_request(ClientId(1), BindId(2), Some(1800), None);
    let m = fixture(C1_EXTEND_REQUEST, Some(built));
    assert_eq!(
        m.view(),
        View::ExtendRequest {
            client_id: ClientId(1),
            bind_id: BindId(2),
            lease_time: Some(1800)
        }
    );
    let built = Message::extend_response(ClientId(1), BindId(2), 1800, None);
    let m = fixture(C1_EXTEND_RESPONSE, Some(built));
    assert_eq!(
        m.view(),
        View::ExtendResponse {
            client_id: ClientId(1),
            bind_id: BindId(2),
            lease_time: 1800
        }
    );

    let m = fixture(
        C1_FREE_RESPONSE_2,
        Some(Message::free_response(ClientId(1), BindId(2), None)),
    );
    assert_eq!(m.bind_id(), Some(BindId(2)));
    let m = fixture(
        C1_DEREGISTER_REQUEST,
        Some(Message::deregister_request(ClientId(1), None)),
    );
    assert_eq!(
        m.view(),
        View::DeregisterRequest {
            client_id: ClientId(1)
        }
    );
    let m = fixture(
        C1_DEREGISTER_RESPONSE,
        Some(Message::deregister_response(ClientId(1), None)),
    );
    assert_eq!(
        m.view(),
        View::DeregisterResponse {
            client_id: ClientId(1)
        }
    );
}

// ---- 16.2 RSAP-IP, local micro-flow policy, remote micro-flow policy ---------

#[test]
fn appendix_c_16_2_rsap_ip_micro_micro() {
    fixture(C1_REGISTER_REQUEST, Some(Message::register_request(None)));

    let fp = FlowPolicy {
        local: LocalFlowPolicy::Micro,
        remote: RemoteFlowPolicy::Micro,
    };
    let built = Message::register_response(
        ClientId(5),
        600,
        fp,
        None,
        &[RsipMethod::RsapIp, RsipMethod::RsaIp],
        &[TunnelType::IpIp, TunnelType::Gre],
    )
    .unwrap();
    let m = fixture(C2_REGISTER_RESPONSE, Some(built));
    assert_eq!(m.client_id(), Some(ClientId(5)));
    assert_eq!(m.lease_time(), Some(600));
    assert_eq!(m.flow_policy(), Some(fp));
    assert_eq!(
        m.methods().collect::<Vec<_>>(),
        [RsipMethod::RsapIp, RsipMethod::RsaIp]
    );
    assert_eq!(
        m.tunnel_types().collect::<Vec<_>>(),
        [TunnelType::IpIp, TunnelType::Gre]
    );

    let flow = Flow {
        local_address: DC,
        local_ports: Ports::DONT_CARE_ONE,
        remote_address: FTP_SERVER,
        remote_ports: Ports::single(21),
    };
    let options = RequestOptions {
        message_counter: None,
        lease_time: Some(600),
        tunnel_type: Some(TunnelType::IpIp),
    };
    let built = Message::assign_request_rsap_ip(ClientId(5), flow.clone(), options).unwrap();
    let m = fixture(C2_ASSIGN_REQUEST, Some(built));
    let View::AssignRequestRsapIp {
        flow: seen,
        lease_time,
        tunnel_type,
        ..
    } = m.view()
    else {
        panic!("{:?}", m.view())
    };
    assert_eq!(seen.to_owned(), flow);
    assert_eq!(
        (lease_time, tunnel_type),
        (Some(600), Some(TunnelType::IpIp))
    );

    let flow = Flow {
        local_address: GW_ADDR,
        local_ports: Ports::single(2049),
        remote_address: FTP_SERVER,
        remote_ports: Ports::single(21),
    };
    let built =
        Message::assign_response_rsap_ip(ClientId(5), BindId(1), flow.clone(), grant(600)).unwrap();
    let m = fixture(C2_ASSIGN_RESPONSE, Some(built));
    let View::AssignResponseRsapIp {
        flow: seen,
        bind_id,
        ..
    } = m.view()
    else {
        panic!("{:?}", m.view())
    };
    assert_eq!((seen.to_owned(), bind_id), (flow, BindId(1)));
    assert_eq!(seen.local_ports.to_vec(), [2049]);

    let flow = Flow {
        local_address: GW_ADDR,
        local_ports: Ports::single(2050),
        remote_address: FTP_SERVER,
        remote_ports: Ports::single(20),
    };
    let built = Message::listen_request(ClientId(5), flow.clone(), None, None, &[]).unwrap();
    let m = fixture(C2_LISTEN_REQUEST, Some(built));
    assert_eq!(
        m.view(),
        View::ListenRequest {
            client_id: ClientId(5),
            flow: FlowView {
                local_address: &flow.local_address,
                local_ports: &flow.local_ports,
                remote_address: &flow.remote_address,
                remote_ports: &flow.remote_ports,
            },
            lease_time: None,
        }
    );

    let built = Message::listen_response(ClientId(5), BindId(2), flow.clone(), grant(600)).unwrap();
    let m = fixture(C2_LISTEN_RESPONSE, Some(built));
    let View::ListenResponse {
        client_id,
        bind_id,
        flow: seen,
        tunnel_type,
        lease_time,
        tunnel_endpoint,
    } = m.view()
    else {
        panic!("{:?}", m.view())
    };
    assert_eq!(
        (client_id, bind_id, seen.to_owned()),
        (ClientId(5), BindId(2), flow)
    );
    assert_eq!(
        (tunnel_type, lease_time, tunnel_endpoint),
        (TunnelType::IpIp, 600, None)
    );

    fixture(
        C2_DEREGISTER_REQUEST,
        Some(Message::deregister_request(ClientId(5), None)),
    );
    fixture(
        C2_DEREGISTER_RESPONSE,
        Some(Message::deregister_response(ClientId(5), None)),
    );
}

// ---- 16.3 RSA-IP, local macro-flow policy, remote macro-flow policy ----------

#[test]
fn appendix_c_16_3_rsa_ip_macro_macro() {
    fixture(C1_REGISTER_REQUEST, Some(Message::register_request(None)));

    let fp = FlowPolicy {
        local: LocalFlowPolicy::Macro,
        remote: RemoteFlowPolicy::Macro,
    };
    let built = Message::register_response(
        ClientId(3),
        600,
        fp,
        None,
        &[RsipMethod::RsapIp, RsipMethod::RsaIp],
        &[TunnelType::IpIp, TunnelType::L2tp],
    )
    .unwrap();
    let m = fixture(C3_REGISTER_RESPONSE, Some(built));
    assert_eq!(
        m.tunnel_types().collect::<Vec<_>>(),
        [TunnelType::IpIp, TunnelType::L2tp]
    );

    let options = RequestOptions {
        message_counter: None,
        lease_time: Some(3600),
        tunnel_type: Some(TunnelType::IpIp),
    };
    let foo = Address::Fqdn("www.foo.com".into());
    let built =
        Message::assign_request_rsa_ip(ClientId(3), DC, foo.clone(), Ports::DONT_CARE_ONE, options)
            .unwrap();
    let m = fixture(C3_ASSIGN_REQUEST_FOO, Some(built));
    assert_eq!(
        m.view(),
        View::AssignRequestRsaIp {
            client_id: ClientId(3),
            local_address: &DC,
            remote_address: &foo,
            remote_ports: &Ports::DONT_CARE_ONE,
            lease_time: Some(3600),
            tunnel_type: Some(TunnelType::IpIp),
        }
    );

    let built = Message::error_response(
        ErrorCode::RemoteAddrUnallowed,
        None,
        Some(ClientId(3)),
        None,
    );
    let m = fixture(C3_ERROR_RESPONSE, Some(built));
    assert_eq!(
        m.view(),
        View::ErrorResponse {
            error: ErrorCode::RemoteAddrUnallowed,
            client_id: Some(ClientId(3)),
            bind_id: None
        }
    );
    assert_eq!(
        m.error().map(ErrorCode::as_str),
        Some("REMOTE_ADDR_UNALLOWED")
    );

    let bar = Address::Fqdn("www.bar.com".into());
    let built =
        Message::assign_request_rsa_ip(ClientId(3), DC, bar.clone(), Ports::DONT_CARE_ONE, options)
            .unwrap();
    fixture(C3_ASSIGN_REQUEST_BAR, Some(built));

    let local = Address::Ipv4(Ipv4Addr::new(149, 112, 240, 17));
    let built = Message::assign_response_rsa_ip(
        ClientId(3),
        BindId(1),
        local.clone(),
        bar.clone(),
        Ports::DONT_CARE_ONE,
        grant(3600),
    )
    .unwrap();
    let m = fixture(C3_ASSIGN_RESPONSE, Some(built));
    assert_eq!(
        m.view(),
        View::AssignResponseRsaIp {
            client_id: ClientId(3),
            bind_id: BindId(1),
            local_address: &local,
            remote_address: &bar,
            remote_ports: &Ports::DONT_CARE_ONE,
            lease_time: 3600,
            tunnel_type: TunnelType::IpIp,
            tunnel_endpoint: None,
        }
    );

    fixture(
        C3_DEREGISTER_REQUEST,
        Some(Message::deregister_request(ClientId(3), None)),
    );
    fixture(
        C3_DEREGISTER_RESPONSE,
        Some(Message::deregister_response(ClientId(3), None)),
    );
}

#[test]
fn appendix_c_as_one_tcp_stream() {
    let all = [
        C1_REGISTER_REQUEST,
        C1_REGISTER_RESPONSE,
        C1_ASSIGN_REQUEST_1,
        C1_ASSIGN_RESPONSE_1,
        C1_QUERY_REQUEST,
        C1_QUERY_RESPONSE,
        C1_ASSIGN_REQUEST_2,
        C1_ASSIGN_RESPONSE_2,
        C1_FREE_REQUEST,
        C1_FREE_RESPONSE_1,
        C1_EXTEND_REQUEST,
        C1_EXTEND_RESPONSE,
        C1_FREE_RESPONSE_2,
        C1_DEREGISTER_REQUEST,
        C1_DEREGISTER_RESPONSE,
        C2_REGISTER_RESPONSE,
        C2_ASSIGN_REQUEST,
        C2_ASSIGN_RESPONSE,
        C2_LISTEN_REQUEST,
        C2_LISTEN_RESPONSE,
        C2_DEREGISTER_REQUEST,
        C2_DEREGISTER_RESPONSE,
        C3_REGISTER_RESPONSE,
        C3_ASSIGN_REQUEST_FOO,
        C3_ERROR_RESPONSE,
        C3_ASSIGN_REQUEST_BAR,
        C3_ASSIGN_RESPONSE,
        C3_DEREGISTER_REQUEST,
        C3_DEREGISTER_RESPONSE,
    ];
    let stream: Vec<u8> = all.iter().flat_map(|x| h(x)).collect();
    let mut dec = StreamDecoder::new(64);
    let mut frames = Vec::new();
    let mut input = stream.as_slice();
    while !input.is_empty() {
        let n = dec.push(input);
        input = &input[n..];
        while let Some(frame) = dec.next_frame().unwrap() {
            frames.push(frame.to_vec());
        }
    }
    assert_eq!(dec.buffered(), 0);
    assert_eq!(frames, all.iter().map(|x| h(x)).collect::<Vec<_>>());
}

#[test]
fn error_code_names_and_values() {
    let all = [
        (101, "UNKNOWN_ERROR"),
        (102, "USE_TCP"),
        (103, "FLOW_POLICY_VIOLATION"),
        (104, "INTERNAL_SERVER_ERROR"),
        (105, "MESSAGE_COUNTER_REQUIRED"),
        (106, "UNSUPPORTED_RSIP_VERSION"),
        (201, "MISSING_PARAM"),
        (202, "DUPLICATE_PARAM"),
        (203, "EXTRA_PARAM"),
        (204, "ILLEGAL_PARAM"),
        (205, "BAD_PARAM"),
        (206, "ILLEGAL_MESSAGE"),
        (207, "BAD_MESSAGE"),
        (208, "UNSUPPORTED_MESSAGE"),
        (301, "REGISTER_FIRST"),
        (302, "ALREADY_REGISTERED"),
        (303, "ALREADY_UNREGISTERED"),
        (304, "REGISTRATION_DENIED"),
        (305, "BAD_CLIENT_ID"),
        (306, "BAD_BIND_ID"),
        (307, "BAD_TUNNEL_TYPE"),
        (308, "LOCAL_ADDR_UNAVAILABLE"),
        (309, "LOCAL_ADDRPORT_UNAVAILABLE"),
        (310, "LOCAL_ADDR_INUSE"),
        (311, "LOCAL_ADDRPORT_INUSE"),
        (312, "LOCAL_ADDR_UNALLOWED"),
        (313, "LOCAL_ADDRPORT_UNALLOWED"),
        (314, "REMOTE_ADDR_UNALLOWED"),
        (315, "REMOTE_ADDRPORT_UNALLOWED"),
        (401, "IPSEC_UNALLOWED"),
        (402, "IPSEC_SPI_UNAVAILABLE"),
        (403, "IPSEC_SPI_INUSE"),
    ];
    for (value, name) in all {
        let code = ErrorCode::from(value);
        assert!(!matches!(code, ErrorCode::Unknown(_)), "{value}");
        assert_eq!(code.as_str(), name);
        assert_eq!(u16::from(code), value);
        assert_eq!(code.to_string(), name);
    }
    assert_eq!(ErrorCode::from(999), ErrorCode::Unknown(999));
    assert_eq!(u16::from(ErrorCode::Unknown(999)), 999);
    assert_eq!(ErrorCode::from(101), ErrorCode::UnknownError);
    assert_eq!(ErrorCode::Unknown(400).to_string(), "UNASSIGNED (400)");
    assert_eq!(MessageType::from(9).to_string(), "ASSIGN_RESPONSE_RSAP-IP");
    assert_eq!(MessageType::from(22).as_str(), "ASSIGN_REQUEST_RSIPSEC");
    assert_eq!(MessageType::from(18), MessageType::Unknown(18));
    assert_eq!(ParamType::from(22), ParamType::Spi);
    assert_eq!(ParamType::from(13), ParamType::Unknown(13));
}
