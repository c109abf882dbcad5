//! RFC 3103 Appendix C transactions 16.1, 16.2 and 16.3 as literal bytes, built
//! by hand from the parameter layouts of section 8 (one parameter per group:
//! type, length, value). Appendix C omits version, type and length; "don't
//! care" values, written "0" there, are the length-1 forms (IPv4 addrtype for
//! addresses, number 1 for a single port), per the wire notes.

use std::net::Ipv4Addr;

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

// C --> S: REGISTER_REQUEST ()
const C1_REGISTER_REQUEST: &str = "01 02 0004";
// S --> C: REGISTER_RESPONSE (Client ID = 1, Local Flow Policy = Macro, Remote
// Flow policy = None, Lease Time = 600). Appendix C lists the lease last; the
// 9.3.2 BNF order (Client ID, Lease time, Flow Policy) wins.
const C1_REGISTER_RESPONSE: &str = "01 03 0017  04 0004 00000001  03 0004 00000258  09 0002 0103";
// C --> S: ASSIGN_REQUEST_RSAP-IP (Client ID = 1, Address (local) = 0, Ports
// (local) = 4-0, Address (remote) = 0, Ports (remote) = 0, Lease Time = 3600)
const C1_ASSIGN_REQUEST_1: &str = "01 08 0022  04 0004 00000001  01 0001 01  02 0001 04  01 0001 01  02 0001 01  03 0004 00000e10";
// S --> C: ASSIGN_RESPONSE_RSAP-IP (Client ID = 1, Bind ID = 1, Address (local)
// = 149.112.240.156, Ports (local) = 4-1234, Address (remote) = 0, Ports
// (remote) = 0, Lease Time = 1800, Tunnel Type = IP-IP)
const C1_ASSIGN_RESPONSE_1: &str = "01 09 0033  04 0004 00000001  05 0004 00000001  01 0005 019570f09c  02 0003 0404d2  01 0001 01  02 0001 01  03 0004 00000708  06 0001 01";
// C --> S: QUERY_REQUEST (Client ID = 1, Indicator = network, Address (network)
// = 10.20.60.0, Address (netmask) = 255.255.255.0)
const C1_QUERY_REQUEST: &str =
    "01 0e 0020  04 0004 00000001  0a 0002 0002  01 0005 010a143c00  01 0005 02ffffff00";
// S --> C: QUERY_RESPONSE (same tuple; "indicating that the network in question
// is local": indicator 2, local network, in 9.15.1's numbering)
const C1_QUERY_RESPONSE: &str =
    "01 0f 0020  04 0004 00000001  0a 0002 0002  01 0005 010a143c00  01 0005 02ffffff00";
// C --> S: ASSIGN_REQUEST_RSAP-IP (Client ID = 1, Address (local) =
// 149.112.240.156, Ports (local) = 8-1238, Address (remote) = 0, Ports (remote)
// = 0, Lease Time = 1800)
const C1_ASSIGN_REQUEST_2: &str = "01 08 0028  04 0004 00000001  01 0005 019570f09c  02 0003 0804d6  01 0001 01  02 0001 01  03 0004 00000708";
// S --> C: ASSIGN_RESPONSE_RSAP-IP (Client ID = 1, Bind ID = 2, Address (local)
// = 149.112.240.156, Ports (local) = 8-1305, Address (remote) = 0, Ports
// (remote) = 0, Lease Time = 1800). Slips: the required Tunnel Type is
// missing (9.9.2): we send IP-IP, "implied by default"; 8-1305 is the eight
// ports 1305-1312 (the prose's 1305-1314 would be ten).
const C1_ASSIGN_RESPONSE_2: &str = "01 09 0033  04 0004 00000001  05 0004 00000002  01 0005 019570f09c  02 0003 080519  01 0001 01  02 0001 01  03 0004 00000708  06 0001 01";
// C --> S: FREE_REQUEST (Client ID = 1, Bind ID = 1)
const C1_FREE_REQUEST: &str = "01 0c 0012  04 0004 00000001  05 0004 00000001";
// S --> C: FREE_RESPONSE (Client ID = 1, Bind ID = 1)
const C1_FREE_RESPONSE_1: &str = "01 0d 0012  04 0004 00000001  05 0004 00000001";
// C --> S: EXTEND_REQUEST (Client ID = 1, Bind ID = 2, Lease Time = 1800). The
// prose says bind ID 1 (just freed); the parameters say 2: they win.
const C1_EXTEND_REQUEST: &str = "01 0a 0019  04 0004 00000001  05 0004 00000002  03 0004 00000708";
// S --> C: EXTEND_RESPONSE (Client ID = 1, Bind ID = 2, Lease Time = 1800)
const C1_EXTEND_RESPONSE: &str = "01 0b 0019  04 0004 00000001  05 0004 00000002  03 0004 00000708";
// S --> C: FREE_RESPONSE (Client ID = 1, Bind ID = 2), unsolicited
const C1_FREE_RESPONSE_2: &str = "01 0d 0012  04 0004 00000001  05 0004 00000002";
// C --> S: DE-REGISTER_REQUEST (Client ID = 1)
const C1_DEREGISTER_REQUEST: &str = "01 04 000b  04 0004 00000001";
// S --> C: DE-REGISTER_RESPONSE (Client ID = 1)
const C1_DEREGISTER_RESPONSE: &str = "01 05 000b  04 0004 00000001";

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

// C --> S: REGISTER_REQUEST () is C1_REGISTER_REQUEST.
// S --> C: REGISTER_RESPONSE (Client ID = 5, Local Flow Policy = Micro, Remote
// Flow policy = Micro, RSIP Method = RSAP-IP, RSIP Method = RSA-IP, Tunnel Type
// = IP-IP, Tunnel Type = GRE, Lease Time = 600): BNF order, lease third.
const C2_REGISTER_RESPONSE: &str = "01 03 0027  04 0004 00000005  03 0004 00000258  09 0002 0202  07 0001 02  07 0001 01  06 0001 01  06 0001 02";
// C --> S: ASSIGN_REQUEST_RSAP-IP (Client ID = 5, Address (local) = 0, Ports
// (local) = 0, Address (remote) = 38.196.73.6, Ports (remote) = 21, Lease Time
// = 600, Tunnel Type = IP-IP)
const C2_ASSIGN_REQUEST: &str = "01 08 002c  04 0004 00000005  01 0001 01  02 0001 01  01 0005 0126c44906  02 0003 010015  03 0004 00000258  06 0001 01";
// S --> C: ASSIGN_RESPONSE_RSAP-IP (Client ID = 5, Bind ID = 1, Address (local)
// = 149.112.240.156, Ports (local) = 2049, Address (remote) = 38.196.73.6,
// Ports (remote) = 21, Lease Time = 600, Tunnel Type = IP-IP)
const C2_ASSIGN_RESPONSE: &str = "01 09 0039  04 0004 00000005  05 0004 00000001  01 0005 019570f09c  02 0003 010801  01 0005 0126c44906  02 0003 010015  03 0004 00000258  06 0001 01";
// C --> S: LISTEN_REQUEST (Client ID = 5, Address (local) = 149.112.240.156,
// Ports (local) = 2050, Address (remote) = 38.196.73.6, Ports (remote) = 20)
const C2_LISTEN_REQUEST: &str = "01 10 0027  04 0004 00000005  01 0005 019570f09c  02 0003 010802  01 0005 0126c44906  02 0003 010014";
// S --> C: LISTEN_RESPONSE (Client ID = 5, Address (local) = 149.112.240.156,
// Ports (local) = 2050, Address (remote) = 38.196.73.6, Ports (remote) = 20,
// Lease Time = 600, Tunnel Type = IP-IP). Slip: the required Bind ID is
// missing (9.17.2); we send 2, the client's second binding. BNF order: Tunnel
// Type before Lease Time.
const C2_LISTEN_RESPONSE: &str = "01 11 0039  04 0004 00000005  05 0004 00000002  01 0005 019570f09c  02 0003 010802  01 0005 0126c44906  02 0003 010014  06 0001 01  03 0004 00000258";
// C --> S: DE-REGISTER_REQUEST (Client ID = 5)
const C2_DEREGISTER_REQUEST: &str = "01 04 000b  04 0004 00000005";
// S --> C: DE-REGISTER_RESPONSE (Client ID = 5)
const C2_DEREGISTER_RESPONSE: &str = "01 05 000b  04 0004 00000005";

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

// S --> C: REGISTER_RESPONSE (Client ID = 3, Local Flow Policy = Macro, Remote
// Flow policy = Macro, RSIP Method = RSAP-IP, RSIP Method = RSA-IP, Tunnel Type
// = IP-IP, Tunnel Type = L2TP, Lease Time = 600): BNF order.
const C3_REGISTER_RESPONSE: &str = "01 03 0027  04 0004 00000003  03 0004 00000258  09 0002 0101  07 0001 02  07 0001 01  06 0001 01  06 0001 03";
// C --> S: ASSIGN_REQUEST_RSA-IP (Client ID = 3, Address (local) = 0, Address
// (remote) = www.foo.com, Ports (remote) = 0, Lease Time = 3600, Tunnel Type =
// IP-IP)
const C3_ASSIGN_REQUEST_FOO: &str = "01 06 002d  04 0004 00000003  01 0001 01  01 000c 047777772e666f6f2e636f6d  02 0001 01  03 0004 00000e10  06 0001 01";
// S --> C: ERROR_RESPONSE (Error = REMOTE_ADDR_UNALLOWED, Client ID = 3)
const C3_ERROR_RESPONSE: &str = "01 01 0010  08 0002 013a  04 0004 00000003";
// C --> S: ASSIGN_REQUEST_RSA-IP (same, www.bar.com)
const C3_ASSIGN_REQUEST_BAR: &str = "01 06 002d  04 0004 00000003  01 0001 01  01 000c 047777772e6261722e636f6d  02 0001 01  03 0004 00000e10  06 0001 01";
// S --> C: ASSIGN_RESPONSE_RSA-IP (Client ID = 3, Bind ID = 1, Address (local)
// = 149.112.240.17, Address (remote) = www.bar.com, Ports (remote) = 0, Lease
// Time = 3600, Tunnel Type = IP-IP)
const C3_ASSIGN_RESPONSE: &str = "01 07 0038  04 0004 00000003  05 0004 00000001  01 0005 019570f011  01 000c 047777772e6261722e636f6d  02 0001 01  03 0004 00000e10  06 0001 01";
// C --> S / S --> C: DE-REGISTER_REQUEST / RESPONSE (Client ID = 3)
const C3_DEREGISTER_REQUEST: &str = "01 04 000b  04 0004 00000003";
const C3_DEREGISTER_RESPONSE: &str = "01 05 000b  04 0004 00000003";

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
