//! Gateway behaviour on a fake clock, one RFC rule per test: registration,
//! identity, every ASSIGN error condition, EXTEND/FREE/QUERY/LISTEN, expiry to
//! the millisecond, UDP reliability, TIME_WAIT reuse, floods, admin, and the
//! durability contract.

// Test helpers outside #[test] functions may panic too (clippy.toml allows it in tests only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_util;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use gateway_util::*;
use realm_rsip::gateway::*;
use realm_wire::rsip::*;
use serde_json::json;

const PUB: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn opts(counter: Option<u32>, lease: Option<u32>, tunnel: Option<TunnelType>) -> RequestOptions {
    RequestOptions {
        message_counter: counter,
        lease_time: lease,
        tunnel_type: tunnel,
    }
}

fn bind_of(m: &Message) -> BindId {
    m.bind_id().unwrap_or_else(|| panic!("no bind ID in {m:?}"))
}

// ---- REGISTER / DE-REGISTER ------------------------------------------------------

#[test]
fn register_assigns_unpredictable_distinct_ids_and_offers_config() {
    let mut h = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }],
        "tunnel_types": ["ip-ip", "gre"],
        "max_registrations_per_address": 1,
    })));
    let r = h.udp1(udp_from(2), &Message::register_request(Some(1)));
    let View::RegisterResponse {
        client_id,
        lease_time,
        flow_policy,
    } = r.view()
    else {
        panic!("{r:?}")
    };
    assert_ne!(client_id.0, 0);
    assert_ne!(client_id.0, 1, "not a counter");
    assert_eq!(lease_time, 3600);
    assert_eq!(flow_policy.local, LocalFlowPolicy::Macro);
    assert_eq!(flow_policy.remote, RemoteFlowPolicy::None);
    assert_eq!(
        r.methods().collect::<Vec<_>>(),
        [RsipMethod::RsapIp, RsipMethod::RsaIp, RsipMethod::Rsipsec]
    );
    assert_eq!(
        r.tunnel_types().collect::<Vec<_>>(),
        [TunnelType::IpIp, TunnelType::Gre]
    );
    let ids: std::collections::BTreeSet<u32> = (3..40)
        .map(|i| h.register_udp(udp_from(i)).0)
        .chain([client_id.0])
        .collect();
    assert_eq!(ids.len(), 38);
    // Another seed, other IDs.
    let mut other = Harness::with_gateway(Gateway::new(soho(), [9; 32]).unwrap(), T0);
    assert_ne!(other.register_udp(udp_from(2)), client_id);
}

#[test]
fn already_registered_carries_the_client_id() {
    let mut h = Harness::new(soho());
    let c = h.register_tcp(1, host(2));
    // RFC 3103 9.2.3, on the same connection...
    let e = h.tcp1(1, host(2), &Message::register_request(None));
    assert_eq!(
        e,
        Message::error_response(ErrorCode::AlreadyRegistered, None, Some(c), None)
    );
    // ... and from the same address after a reboot (10.2.1), which then
    // de-registers the old ID once the old connection is gone.
    let e = h.tcp1(2, host(2), &Message::register_request(Some(9)));
    assert_eq!(
        e,
        Message::error_response(ErrorCode::AlreadyRegistered, Some(9), Some(c), None)
    );
    let bad = h.tcp1(2, host(2), &Message::deregister_request(c, None));
    assert_eq!(
        error_of(&bad),
        ErrorCode::BadClientId,
        "old connection still open"
    );
    h.gw.handle_connection_closed(h.now, ConnectionId(1), tcp_source(host(2)));
    let ok = h.tcp1(2, host(2), &Message::deregister_request(c, None));
    assert_eq!(ok, Message::deregister_response(c, None));
    let again = h.register_tcp(2, host(2));
    assert_ne!(again, c);
}

#[test]
fn registration_denied_by_policy_cap_and_capacity() {
    let mut h = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }],
        "clients": ["10.0.0.0/28"],
        "max_hosts": 3,
        // Capacity itself is under test: no USE_TCP under pressure.
        "udp": { "use_tcp_above_hosts_percent": 0, "use_tcp_above_registrations_per_sec": 0 },
        "max_registrations_per_address": 2,
    })));
    let outsider = SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, 1), 5000);
    let e = h.udp1(outsider, &Message::register_request(Some(1)));
    assert_eq!(
        e,
        Message::error_response(ErrorCode::RegistrationDenied, Some(1), None, None)
    );
    // Two per address (from different ports), a third is denied.
    let a = SocketAddrV4::new(host(2), 1000);
    let b = SocketAddrV4::new(host(2), 1001);
    h.register_udp(a);
    h.register_udp(b);
    let e = h.udp1(
        SocketAddrV4::new(host(2), 1002),
        &Message::register_request(Some(1)),
    );
    assert_eq!(error_of(&e), ErrorCode::RegistrationDenied);
    h.register_udp(udp_from(3));
    // max_hosts reached: the lease manager refuses.
    let e = h.udp1(udp_from(4), &Message::register_request(Some(1)));
    assert_eq!(error_of(&e), ErrorCode::RegistrationDenied);
    assert_eq!(h.gw.status().hosts, 3);
}

#[test]
fn deregister_frees_everything_and_checks_ids() {
    let mut h = Harness::new(soho());
    // Not registered: REGISTER_FIRST, with the client ID it named.
    let e = h.udp1(
        udp_from(2),
        &Message::deregister_request(ClientId(5), Some(1)),
    );
    assert_eq!(
        e,
        Message::error_response(ErrorCode::RegisterFirst, Some(1), Some(ClientId(5)), None)
    );
    let c = h.register_udp(udp_from(2));
    // A wrong client ID from a registered host: BAD_CLIENT_ID.
    let e = h.udp1(
        udp_from(2),
        &Message::deregister_request(ClientId(c.0 ^ 1), Some(2)),
    );
    assert_eq!(error_of(&e), ErrorCode::BadClientId);
    for n in 3..6 {
        let r = h.udp1(udp_from(2), &rsap(c, Ports::DontCare { count: 2 }, Some(n)));
        assert_eq!(r.msg_type(), MessageType::AssignResponseRsapIp);
    }
    assert_eq!(h.gw.leases().usage().ports_leased, 6);
    let r = h.udp1(udp_from(2), &Message::deregister_request(c, Some(6)));
    assert_eq!(r, Message::deregister_response(c, Some(6)));
    let u = h.gw.leases().usage();
    assert_eq!(
        (u.ports_leased, u.ports_held, u.hosts, u.bindings),
        (0, 6, 0, 0)
    );
    let frees = h
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::BindingFreed {
                    reason: FreeReason::Deregistered,
                    ..
                }
            )
        })
        .count();
    assert_eq!(frees, 3);
    // Then nothing works without registering again.
    let e = h.udp1(udp_from(2), &rsap(c, Ports::DONT_CARE_ONE, Some(7)));
    assert_eq!(error_of(&e), ErrorCode::RegisterFirst);
}

// ---- identity ----------------------------------------------------------------------

#[test]
fn another_hosts_client_id_is_refused_and_changes_nothing() {
    let mut h = Harness::new(soho());
    let a = h.register_udp(udp_from(2));
    let _b = h.register_udp(udp_from(3));
    let r = h.udp1(udp_from(2), &rsap(a, Ports::DONT_CARE_ONE, Some(2)));
    let bind = bind_of(&r);
    let before = (h.gw.bindings(), h.gw.hosts(), h.events.len());
    for m in [
        Message::deregister_request(a, Some(5)),
        Message::free_request(a, bind, Some(6)),
        Message::extend_request(a, bind, Some(10), Some(7)),
        rsap(a, Ports::DONT_CARE_ONE, Some(8)),
    ] {
        let e = h.udp1(udp_from(3), &m);
        assert_eq!(error_of(&e), ErrorCode::BadClientId, "{m:?}");
        assert_eq!(e.client_id(), Some(a));
    }
    // Over TCP from the right address but not its transport: refused too.
    let e = h.tcp1(9, host(2), &Message::deregister_request(a, None));
    assert_eq!(error_of(&e), ErrorCode::BadClientId);
    let after = (h.gw.bindings(), h.gw.hosts());
    assert_eq!((before.0, before.1), after);
    assert!(
        h.events[before.2..]
            .iter()
            .all(|e| matches!(e, Event::ErrorSent { .. }))
    );
}

#[test]
fn a_tcp_host_cannot_switch_to_udp() {
    let mut h = Harness::new(soho());
    let c = h.register_tcp(1, host(2));
    let e = h.udp1(udp_from(2), &Message::deregister_request(c, Some(1)));
    assert_eq!(error_of(&e), ErrorCode::UseTcp);
    // Another TCP connection from the same address while the first is open.
    let e = h.tcp1(2, host(2), &rsap(c, Ports::DONT_CARE_ONE, None));
    assert_eq!(error_of(&e), ErrorCode::BadClientId);
    assert_eq!(h.gw.hosts().len(), 1);
}

// ---- malformed messages and UDP counters ----------------------------------------------

#[test]
fn malformed_messages_get_the_decode_code_with_salvaged_ids() {
    let mut h = Harness::new(soho());
    let c = h.register_udp(udp_from(2));
    // EXTEND with an unknown parameter (204) after client, bind and counter.
    let mut m = Message::extend_request(c, BindId(77), None, Some(42)).to_bytes();
    m.extend_from_slice(&[0x63, 0, 0]);
    let len = u16::try_from(m.len()).unwrap().to_be_bytes();
    m[2..4].copy_from_slice(&len);
    let t = h.udp_bytes(udp_from(2), &m);
    let e = Message::parse(&t[0].bytes).unwrap();
    assert_eq!(
        e,
        Message::error_response(ErrorCode::IllegalParam, Some(42), Some(c), Some(BindId(77)))
    );
    // Version 2: 106. Truncated: 207.
    let t = h.tcp_bytes(1, host(3), &[2, 2, 0, 4]);
    assert_eq!(
        error_of(&Message::parse(&t[0].bytes).unwrap()),
        ErrorCode::UnsupportedRsipVersion
    );
    let t = h.tcp_bytes(1, host(3), &[1, 2, 0]);
    assert_eq!(
        error_of(&Message::parse(&t[0].bytes).unwrap()),
        ErrorCode::BadMessage
    );
    // A gateway never answers an ERROR_RESPONSE, well-formed or not.
    let err = Message::error_response(ErrorCode::UnknownError, Some(3), None, None);
    assert!(h.udp(udp_from(2), &err).is_empty());
    assert!(h.udp_bytes(udp_from(2), &[1, 1, 0, 9, 8]).is_empty());
    // Other gateway-to-host messages: ILLEGAL_MESSAGE.
    let e = h.udp1(udp_from(2), &Message::free_response(c, BindId(1), Some(43)));
    assert_eq!(error_of(&e), ErrorCode::IllegalMessage);
    assert_eq!(h.gw.counters().errors.get(&206), Some(&1));
}

/// RFC 3103 10.1: a host does not move to counter n+1 before it has the
/// answer to n, so a counter older than the last answered is a copy the
/// network delayed: dropped silently, neither executed nor allowed to evict
/// the "last message" buffer the host's current retransmissions need.
#[test]
fn udp_stale_copies_are_dropped_and_keep_the_buffer() {
    let mut h = Harness::new(soho());
    let c = h.register_udp(udp_from(2));
    let first = rsap(c, Ports::DontCare { count: 2 }, Some(2)).to_bytes();
    let second = rsap(c, Ports::DontCare { count: 3 }, Some(3)).to_bytes();
    h.udp_bytes(udp_from(2), &first);
    let answer = h.udp_bytes(udp_from(2), &second);
    assert_eq!(h.gw.bindings().len(), 2);
    // The delayed copy of counter 2 arrives after 3 was answered.
    assert!(
        h.udp_bytes(udp_from(2), &first).is_empty(),
        "stale: no answer"
    );
    assert_eq!(h.gw.bindings().len(), 2, "stale: not executed");
    assert_eq!(h.gw.counters().stale_dropped, 1);
    // The retransmission of 3 still finds its answer in the buffer.
    assert_eq!(h.udp_bytes(udp_from(2), &second), answer);
    assert_eq!(h.gw.bindings().len(), 2);
    assert_eq!(h.gw.counters().duplicates_answered, 1);
}

#[test]
fn udp_needs_a_counter_tcp_echoes_one_if_present() {
    let mut h = Harness::new(soho());
    let e = h.udp1(udp_from(2), &Message::register_request(None));
    assert_eq!(
        e,
        Message::error_response(ErrorCode::MessageCounterRequired, None, None, None)
    );
    let e = h.udp1(udp_from(2), &Message::register_request(Some(0)));
    assert_eq!(error_of(&e), ErrorCode::MessageCounterRequired);
    let c = h.register_udp(udp_from(2));
    let e = h.udp1(udp_from(2), &Message::deregister_request(c, None));
    assert_eq!(
        e,
        Message::error_response(ErrorCode::MessageCounterRequired, None, Some(c), None)
    );
    let r = h.tcp1(1, host(3), &Message::register_request(Some(77)));
    assert_eq!(r.message_counter(), Some(77));
    let c3 = r.client_id().unwrap();
    let r = h.tcp1(1, host(3), &Message::deregister_request(c3, None));
    assert_eq!(r.message_counter(), None);
}

#[test]
fn udp_duplicates_are_answered_byte_identically_and_executed_once() {
    let mut h = Harness::new(soho());
    let reg = Message::register_request(Some(1)).to_bytes();
    let first = h.udp_bytes(udp_from(2), &reg);
    let again = h.udp_bytes(udp_from(2), &reg);
    assert_eq!(
        first, again,
        "REGISTER retransmitted: same answer, no ALREADY_REGISTERED"
    );
    assert_eq!(h.gw.status().hosts, 1);
    let c = Message::parse(&first[0].bytes)
        .unwrap()
        .client_id()
        .unwrap();
    let req = rsap(c, Ports::DontCare { count: 4 }, Some(2)).to_bytes();
    let a = h.udp_bytes(udp_from(2), &req);
    let events = h.events.len();
    let b = h.udp_bytes(udp_from(2), &req);
    assert_eq!(a, b);
    assert_eq!(h.events.len(), events, "no new event");
    assert_eq!(h.gw.bindings().len(), 1, "executed once");
    assert_eq!(h.gw.counters().duplicates_answered, 2);
    // Same counter, other bytes: a new message, executed.
    let other = rsap(c, Ports::DontCare { count: 2 }, Some(2));
    let r = h.udp1(udp_from(2), &other);
    assert_eq!(r.msg_type(), MessageType::AssignResponseRsapIp);
    // Counters wrap to 1, not 0: u32::MAX then 1 are both fresh. (A host
    // moves its counter one step at a time, RFC 3103 10.1, so the jump to
    // u32::MAX is made from another UDP port of the same host: a fresh
    // session, where no older counter is known.)
    let other_port = SocketAddrV4::new(*udp_from(2).ip(), 50_002);
    let x = h.udp1(other_port, &rsap(c, Ports::DONT_CARE_ONE, Some(u32::MAX)));
    let y = h.udp1(
        other_port,
        &rsap(
            c,
            Ports::DONT_CARE_ONE,
            Some(realm_rsip::next_message_counter(u32::MAX)),
        ),
    );
    assert_eq!(
        (x.message_counter(), y.message_counter()),
        (Some(u32::MAX), Some(1))
    );
    assert_eq!(h.gw.bindings().len(), 4);
    // The DE-REGISTER answer survives the registration for duplicates.
    let dereg = Message::deregister_request(c, Some(2)).to_bytes();
    let a = h.udp_bytes(udp_from(2), &dereg);
    let b = h.udp_bytes(udp_from(2), &dereg);
    assert_eq!(a, b);
    assert_eq!(
        Message::parse(&a[0].bytes).unwrap().msg_type(),
        MessageType::DeregisterResponse
    );
    // Buffers go once idle (udp.session_idle_secs, 60 s). Two endpoints
    // hold one: the host's port (now the DE-REGISTER answer) and the other.
    assert_eq!(h.gw.status().udp_sessions, 2);
    assert!(
        h.gw.timers()
            .iter()
            .any(|&(t, d)| t == Timer::UdpSessionIdle && d == Some(h.now + secs(60)))
    );
    h.advance(secs(60));
    assert_eq!(h.gw.status().udp_sessions, 0);
}

#[test]
fn unregistered_sources_leave_no_state() {
    let mut h = Harness::new(soho());
    for i in 0..2000u32 {
        let from = SocketAddrV4::new(Ipv4Addr::from(0x0a01_0000 + i), 4000);
        let garbage = Message::extend_request(ClientId(i), BindId(i), None, Some(i + 1));
        let e = h.udp1(from, &garbage);
        assert_eq!(error_of(&e), ErrorCode::RegisterFirst);
        h.udp_bytes(from, &[1, 8, 0, 4 + (i % 7) as u8]);
    }
    let s = h.gw.status();
    assert_eq!((s.hosts, s.udp_sessions), (0, 0));
}

#[test]
fn registration_flood_from_one_source_is_capped_without_hurting_others() {
    let mut h = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }],
        "max_hosts": 10,
        // Capacity itself is under test: no USE_TCP under pressure.
        "udp": { "max_sessions": 16, "use_tcp_above_hosts_percent": 0, "use_tcp_above_registrations_per_sec": 0 },
    })));
    let mut denied = 0;
    for port in 1..=500u16 {
        let e = h.udp1(
            SocketAddrV4::new(host(66), port),
            &Message::register_request(Some(1)),
        );
        if e.msg_type() == MessageType::ErrorResponse {
            denied += 1;
        }
    }
    assert_eq!(denied, 499, "one registration per address");
    assert!(h.gw.status().udp_sessions <= 16, "bounded buffers");
    for i in 2..11 {
        h.register_udp(udp_from(i));
    }
    assert_eq!(h.gw.status().hosts, 10);
}

// ---- ASSIGN_REQUEST_RSAP-IP -------------------------------------------------------------

#[test]
fn rsap_ip_errors_each_condition() {
    let mut h = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1", "ports": ["1024-1100"], "exclude": ["1050"] }],
        "tunnel_types": ["ip-ip"],
        "quota": { "ports": 40 },
    })));
    let c = h.register_tcp(1, host(2));
    let d = h.register_tcp(2, host(3));
    let ask = |addr: Address, ports: Ports, o: RequestOptions| {
        Message::assign_request_rsap_ip(
            c,
            Flow {
                local_address: addr,
                local_ports: ports,
                remote_address: Address::DONT_CARE_V4,
                remote_ports: Ports::DONT_CARE_ONE,
            },
            o,
        )
        .unwrap()
    };
    let dc = Address::DONT_CARE_V4;
    let code = |h: &mut Harness, m: Message| error_of(&h.tcp1(1, host(2), &m));
    let none = RequestOptions::default();
    // Not in the pool / an IPv6 address: LOCAL_ADDR_UNALLOWED.
    assert_eq!(
        code(
            &mut h,
            ask(
                Address::Ipv4("192.0.2.9".parse().unwrap()),
                Ports::single(1030),
                none
            )
        ),
        ErrorCode::LocalAddrUnallowed
    );
    assert_eq!(
        code(
            &mut h,
            ask(
                Address::Ipv6("2001:db8::1".parse().unwrap()),
                Ports::single(1030),
                none
            )
        ),
        ErrorCode::LocalAddrUnallowed
    );
    // Excluded or outside the ranges: LOCAL_ADDRPORT_UNALLOWED (4555 never).
    assert_eq!(
        code(&mut h, ask(dc.clone(), Ports::single(1050), none)),
        ErrorCode::LocalAddrportUnallowed
    );
    assert_eq!(
        code(&mut h, ask(Address::Ipv4(PUB), Ports::single(4555), none)),
        ErrorCode::LocalAddrportUnallowed
    );
    // Tunnel type not offered: BAD_TUNNEL_TYPE.
    assert_eq!(
        code(
            &mut h,
            ask(
                dc.clone(),
                Ports::DONT_CARE_ONE,
                opts(None, None, Some(TunnelType::Gre))
            )
        ),
        ErrorCode::BadTunnelType
    );
    assert_eq!(
        code(
            &mut h,
            ask(
                dc.clone(),
                Ports::DONT_CARE_ONE,
                opts(None, None, Some(TunnelType::Unknown(9)))
            )
        ),
        ErrorCode::BadTunnelType
    );
    // Quota: 41 ports: LOCAL_ADDRPORT_UNAVAILABLE.
    assert_eq!(
        code(&mut h, ask(dc.clone(), Ports::DontCare { count: 41 }, none)),
        ErrorCode::LocalAddrportUnavailable
    );
    // A specific port: granted; asked again (by another host): INUSE.
    let r = h.tcp1(
        1,
        host(2),
        &ask(Address::Ipv4(PUB), Ports::single(1030), none),
    );
    assert_eq!(
        r.view(),
        View::AssignResponseRsapIp {
            client_id: c,
            bind_id: bind_of(&r),
            flow: FlowView {
                local_address: &Address::Ipv4(PUB),
                local_ports: &Ports::single(1030),
                remote_address: &Address::DONT_CARE_V4,
                remote_ports: &Ports::DONT_CARE_ONE,
            },
            lease_time: 600,
            tunnel_type: TunnelType::IpIp,
            tunnel_endpoint: None,
        }
    );
    let other = Message::assign_request_rsap_ip(
        d,
        Flow {
            local_address: Address::Ipv4(PUB),
            local_ports: Ports::Range {
                first: 1029,
                count: 3,
            },
            remote_address: dc.clone(),
            remote_ports: Ports::DONT_CARE_ONE,
        },
        none,
    )
    .unwrap();
    assert_eq!(
        error_of(&h.tcp1(2, host(3), &other)),
        ErrorCode::LocalAddrportInuse
    );
    // "All 0's" (RFC 3103 9.8.3) is don't care.
    let zeros = ask(
        Address::Ipv4(Ipv4Addr::UNSPECIFIED),
        Ports::Range { first: 0, count: 2 },
        none,
    );
    assert_eq!(
        h.tcp1(1, host(2), &zeros).msg_type(),
        MessageType::AssignResponseRsapIp
    );
    // The pool runs dry: 76 leasable ports, 3 taken, host 3 asks 40 twice.
    let big = |n| {
        Message::assign_request_rsap_ip(d, any_flow(Ports::DontCare { count: n }), none).unwrap()
    };
    assert_eq!(
        h.tcp1(2, host(3), &big(40)).msg_type(),
        MessageType::AssignResponseRsapIp
    );
    assert_eq!(
        error_of(&h.tcp1(2, host(3), &big(40))),
        ErrorCode::LocalAddrportUnavailable
    );
}

#[test]
fn rsap_ip_no_address_at_all_and_address_in_use() {
    let mut h = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.8/31", "shared": false }],
    })));
    let c = h.register_tcp(1, host(2));
    let d = h.register_tcp(2, host(3));
    let whole = |cid, a: Address| {
        Message::assign_request_rsa_ip(
            cid,
            a,
            Address::DONT_CARE_V4,
            Ports::DONT_CARE_ONE,
            RequestOptions::default(),
        )
        .unwrap()
    };
    let a8 = Address::Ipv4("192.0.2.8".parse().unwrap());
    assert_eq!(
        h.tcp1(1, host(2), &whole(c, a8.clone())).msg_type(),
        MessageType::AssignResponseRsaIp
    );
    // Leased whole: RSAP-IP on it is LOCAL_ADDR_INUSE; RSA-IP of it too.
    let on8 = Message::assign_request_rsap_ip(
        d,
        Flow {
            local_address: a8.clone(),
            local_ports: Ports::DONT_CARE_ONE,
            remote_address: Address::DONT_CARE_V4,
            remote_ports: Ports::DONT_CARE_ONE,
        },
        RequestOptions::default(),
    )
    .unwrap();
    assert_eq!(
        error_of(&h.tcp1(2, host(3), &on8)),
        ErrorCode::LocalAddrInuse
    );
    assert_eq!(
        error_of(&h.tcp1(2, host(3), &whole(d, a8.clone()))),
        ErrorCode::LocalAddrInuse
    );
    assert_eq!(
        h.tcp1(2, host(3), &whole(d, Address::DONT_CARE_V4))
            .msg_type(),
        MessageType::AssignResponseRsaIp
    );
    // Both leased: "don't care" gets LOCAL_ADDR_UNAVAILABLE (quota 1 each, so a third host).
    let e = h.register_tcp(3, host(4));
    assert_eq!(
        error_of(&h.tcp1(3, host(4), &whole(e, Address::DONT_CARE_V4))),
        ErrorCode::LocalAddrUnavailable
    );
    assert_eq!(
        error_of(&h.tcp1(3, host(4), &whole(e, a8))),
        ErrorCode::LocalAddrUnavailable
    );
}

// ---- flow policy ----------------------------------------------------------------------

#[test]
fn remote_macro_and_micro_policy() {
    let rules = json!([
        { "action": "deny", "prefix": "203.0.113.0/24" },
        { "action": "allow", "prefix": "198.51.100.0/24", "ports": ["80"] },
        { "action": "deny", "prefix": "198.51.100.0/24" },
    ]);
    let mut macro_ = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }],
        "remote_flow_policy": "macro",
        "remote_rules": rules.clone(),
    })));
    let c = macro_.register_tcp(1, host(2));
    let ask = |remote: Address, rp: Ports| {
        Message::assign_request_rsap_ip(
            c,
            Flow {
                local_address: Address::DONT_CARE_V4,
                local_ports: Ports::DONT_CARE_ONE,
                remote_address: remote,
                remote_ports: rp,
            },
            RequestOptions::default(),
        )
        .unwrap()
    };
    let code = |h: &mut Harness, m: Message| h.tcp1(1, host(2), &m);
    // No remote address: FLOW_POLICY_VIOLATION.
    assert_eq!(
        error_of(&code(
            &mut macro_,
            ask(Address::DONT_CARE_V4, Ports::DONT_CARE_ONE)
        )),
        ErrorCode::FlowPolicyViolation
    );
    let denied = Address::Ipv4("203.0.113.5".parse().unwrap());
    let e = code(&mut macro_, ask(denied, Ports::single(80)));
    assert_eq!(
        e,
        Message::error_response(ErrorCode::RemoteAddrUnallowed, None, Some(c), None)
    );
    // Granted: the remote address echoed, the remote ports "don't care" (9.9.3).
    let peer = Address::Ipv4("192.0.2.200".parse().unwrap());
    let r = code(&mut macro_, ask(peer.clone(), Ports::single(443)));
    let View::AssignResponseRsapIp { flow, .. } = r.view() else {
        panic!("{r:?}")
    };
    assert_eq!(
        (flow.remote_address, flow.remote_ports),
        (&peer, &Ports::DONT_CARE_ONE)
    );

    let mut micro = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }],
        "remote_flow_policy": "micro",
        "remote_rules": rules,
    })));
    let c2 = micro.register_tcp(1, host(2));
    let ask2 = |remote: Address, rp: Ports| {
        Message::assign_request_rsap_ip(
            c2,
            Flow {
                local_address: Address::DONT_CARE_V4,
                local_ports: Ports::DONT_CARE_ONE,
                remote_address: remote,
                remote_ports: rp,
            },
            RequestOptions::default(),
        )
        .unwrap()
    };
    let web = Address::Ipv4("198.51.100.7".parse().unwrap());
    assert_eq!(
        error_of(&code(&mut micro, ask2(web.clone(), Ports::DONT_CARE_ONE))),
        ErrorCode::FlowPolicyViolation
    );
    assert_eq!(
        error_of(&code(&mut micro, ask2(web.clone(), Ports::single(22)))),
        ErrorCode::RemoteAddrportUnallowed
    );
    let r = code(&mut micro, ask2(web.clone(), Ports::single(80)));
    let View::AssignResponseRsapIp { flow, .. } = r.view() else {
        panic!("{r:?}")
    };
    assert_eq!(
        (flow.remote_address, flow.remote_ports),
        (&web, &Ports::single(80))
    );
    let b = &micro.gw.bindings()[0];
    assert_eq!(
        b.remote,
        RemoteSpec {
            address: RemoteAddress::Ipv4("198.51.100.7".parse().unwrap()),
            ports: RemotePorts::Range {
                first: 80,
                count: 1
            }
        }
    );
}

#[test]
fn local_micro_policy_one_port_and_no_rsa_ip() {
    let mut h = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }, { "addresses": "192.0.2.2", "shared": false }],
        "local_flow_policy": "micro",
    })));
    let c = h.register_tcp(1, host(2));
    let e = h.tcp1(1, host(2), &rsap(c, Ports::DontCare { count: 2 }, None));
    assert_eq!(error_of(&e), ErrorCode::FlowPolicyViolation);
    let whole = Message::assign_request_rsa_ip(
        c,
        Address::DONT_CARE_V4,
        Address::DONT_CARE_V4,
        Ports::DONT_CARE_ONE,
        RequestOptions::default(),
    )
    .unwrap();
    assert_eq!(
        error_of(&h.tcp1(1, host(2), &whole)),
        ErrorCode::FlowPolicyViolation
    );
    assert_eq!(
        h.tcp1(1, host(2), &rsap(c, Ports::DONT_CARE_ONE, None))
            .msg_type(),
        MessageType::AssignResponseRsapIp
    );
}

#[test]
fn methods_not_offered() {
    let mut h = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }],
        "methods": ["rsa-ip"],
        "listen": { "enabled": false },
    })));
    let c = h.register_tcp(1, host(2));
    assert_eq!(
        error_of(&h.tcp1(1, host(2), &rsap(c, Ports::DONT_CARE_ONE, None))),
        ErrorCode::UnsupportedMessage
    );
    let sec = Message::assign_request_rsipsec(
        c,
        any_flow(Ports::DontNeed),
        Spis::DontCare { count: 1 },
        RequestOptions::default(),
    )
    .unwrap();
    assert_eq!(
        error_of(&h.tcp1(1, host(2), &sec)),
        ErrorCode::IpsecUnallowed
    );
    let listen =
        Message::listen_request(c, any_flow(Ports::DONT_CARE_ONE), None, None, &[]).unwrap();
    assert_eq!(
        error_of(&h.tcp1(1, host(2), &listen)),
        ErrorCode::UnsupportedMessage
    );
}

// ---- RSIPSEC (RFC 3104 6.2) -------------------------------------------------------------

#[test]
fn rsipsec_grants_spis_dont_need_and_errors() {
    let mut h = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }],
        "spi_range": [256, 259],
        "ipsec_clients": ["10.0.0.2"],
    })));
    let c = h.register_tcp(1, host(2));
    let d = h.register_tcp(2, host(3));
    let sec = |cid, ports: Ports, spis: Spis| {
        Message::assign_request_rsipsec(
            cid,
            Flow {
                local_address: Address::DONT_CARE_V4,
                local_ports: ports,
                remote_address: Address::DONT_CARE_V4,
                remote_ports: Ports::DontNeed,
            },
            spis,
            RequestOptions::default(),
        )
        .unwrap()
    };
    // Not allowed for host 3.
    assert_eq!(
        error_of(&h.tcp1(
            2,
            host(3),
            &sec(d, Ports::DontNeed, Spis::DontCare { count: 1 })
        )),
        ErrorCode::IpsecUnallowed
    );
    // "Don't need" ports come back as "don't need", local and remote.
    let r = h.tcp1(
        1,
        host(2),
        &sec(c, Ports::DontNeed, Spis::DontCare { count: 2 }),
    );
    let View::AssignResponseRsipsec { flow, spis, .. } = r.view() else {
        panic!("{r:?}")
    };
    assert_eq!(
        (flow.local_ports, flow.remote_ports),
        (&Ports::DontNeed, &Ports::DontNeed)
    );
    assert_eq!(
        spis,
        &Spis::Range {
            first: Spi(256),
            count: 2
        }
    );
    // A suggested SPI in use: IPSEC_SPI_INUSE; none left: IPSEC_SPI_UNAVAILABLE.
    assert_eq!(
        error_of(&h.tcp1(
            1,
            host(2),
            &sec(c, Ports::single(2000), Spis::single(Spi(257)))
        )),
        ErrorCode::IpsecSpiInuse
    );
    let r = h.tcp1(
        1,
        host(2),
        &sec(c, Ports::single(2000), Spis::single(Spi(258))),
    );
    assert_eq!(r.spis(), Some(&Spis::single(Spi(258))));
    assert_eq!(
        error_of(&h.tcp1(
            1,
            host(2),
            &sec(c, Ports::DontNeed, Spis::DontCare { count: 2 })
        )),
        ErrorCode::IpsecSpiUnavailable
    );
    let b = h.gw.bindings();
    assert_eq!(
        b[1].ports,
        realm_lease::PortSet::Range {
            first: 2000,
            count: 1
        }
    );
    assert_eq!(
        b[1].spis,
        realm_lease::SpiSet::Range {
            first: realm_lease::Spi(258),
            count: 1
        }
    );
}

// ---- EXTEND, FREE, QUERY, LISTEN ---------------------------------------------------------

#[test]
fn extend_is_bounded_and_free_checks_the_bind_id() {
    let mut h = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }],
        "max_binding_lease_secs": 900,
        "registration_lease_secs": 60,
    })));
    let c = h.register_tcp(1, host(2));
    let d = h.register_tcp(2, host(3));
    let r = h.tcp1(
        1,
        host(2),
        &Message::assign_request_rsap_ip(
            c,
            any_flow(Ports::DONT_CARE_ONE),
            opts(None, Some(100_000), None),
        )
        .unwrap(),
    );
    assert_eq!(r.lease_time(), Some(900));
    let b = bind_of(&r);
    // R = max(R, Bi): the registration now lasts as long as the binding.
    assert_eq!(
        h.gw.hosts()[if h.gw.hosts()[0].record.client.0 == c.0 {
            0
        } else {
            1
        }]
        .record
        .expires_at,
        h.now + secs(900)
    );
    h.advance(secs(10));
    let r = h.tcp1(1, host(2), &Message::extend_request(c, b, Some(5000), None));
    assert_eq!(r, Message::extend_response(c, b, 900, None));
    assert_eq!(h.gw.bindings()[0].expires_at, h.now + secs(900));
    let r = h.tcp1(1, host(2), &Message::extend_request(c, b, None, Some(4)));
    assert_eq!(r, Message::extend_response(c, b, 600, Some(4)));
    // Another host's bind ID, an unknown one: BAD_BIND_ID with both IDs.
    let e = h.tcp1(2, host(3), &Message::extend_request(d, b, None, None));
    assert_eq!(
        e,
        Message::error_response(ErrorCode::BadBindId, None, Some(d), Some(b))
    );
    let e = h.tcp1(2, host(3), &Message::free_request(d, b, None));
    assert_eq!(
        e,
        Message::error_response(ErrorCode::BadBindId, None, Some(d), Some(b))
    );
    let r = h.tcp1(1, host(2), &Message::free_request(c, b, None));
    assert_eq!(r, Message::free_response(c, b, None));
    let e = h.tcp1(1, host(2), &Message::free_request(c, b, None));
    assert_eq!(error_of(&e), ErrorCode::BadBindId);
}

#[test]
fn query_answers_local_addresses_and_networks_only() {
    let mut h = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }],
        "local_addresses": ["10.9.9.9"],
        "local_networks": ["10.20.0.0/16", "2001:db8::/32"],
    })));
    let c = h.register_tcp(1, host(2));
    let v4 = |s: &str| Address::Ipv4(s.parse().unwrap());
    let mask = |s: &str| Address::Ipv4Netmask(s.parse().unwrap());
    let asked = [
        QueryTuple::address(v4("10.20.1.1")),
        QueryTuple::address(v4("8.8.8.8")),
        QueryTuple::address(Address::Fqdn("example.com".into())),
        QueryTuple::address(v4("10.9.9.9")),
        QueryTuple::network(v4("10.20.60.0"), mask("255.255.255.0")),
        QueryTuple::network(v4("10.0.0.0"), mask("255.0.0.0")),
    ];
    let r = h.tcp1(
        1,
        host(2),
        &Message::query_request(c, Some(3), &asked).unwrap(),
    );
    let want = Message::query_response(
        c,
        Some(3),
        &[
            QueryTuple::address(v4("10.20.1.1")),
            QueryTuple::address(v4("10.9.9.9")),
            QueryTuple::network(v4("10.20.60.0"), mask("255.255.255.0")),
        ],
    )
    .unwrap();
    assert_eq!(r, want);
    // No tuple: everything the gateway knows.
    let r = h.tcp1(1, host(2), &Message::query_request(c, None, &[]).unwrap());
    assert_eq!(
        r.query_tuples(),
        vec![
            QueryTuple::local_address(v4("10.9.9.9")),
            QueryTuple::local_network(v4("10.20.0.0"), mask("255.255.0.0")),
            QueryTuple::local_network(
                Address::Ipv6("2001:db8::".parse().unwrap()),
                Address::Ipv6("ffff:ffff::".parse().unwrap())
            ),
        ]
    );
}

#[test]
fn listen_under_remote_micro_needs_admin_override() {
    let mut h = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }],
        "remote_flow_policy": "micro",
        "listen": { "admin_override": ["10.0.0.2"] },
        "tunnel_types": ["ip-ip", "gre"],
        "tunnel_endpoint": "192.0.2.254",
    })));
    let c = h.register_tcp(1, host(2));
    let d = h.register_tcp(2, host(3));
    let flow = Flow {
        local_address: Address::Ipv4(PUB),
        local_ports: Ports::single(8080),
        remote_address: Address::Ipv4("198.51.100.1".parse().unwrap()),
        remote_ports: Ports::single(20),
    };
    let e = h.tcp1(
        2,
        host(3),
        &Message::listen_request(d, flow.clone(), None, None, &[]).unwrap(),
    );
    assert_eq!(error_of(&e), ErrorCode::LocalAddrportUnallowed);
    let r = h.tcp1(
        1,
        host(2),
        &Message::listen_request(
            c,
            flow.clone(),
            None,
            Some(30),
            &[TunnelType::L2tp, TunnelType::Gre],
        )
        .unwrap(),
    );
    let View::ListenResponse {
        tunnel_type,
        lease_time,
        tunnel_endpoint,
        flow: f,
        ..
    } = r.view()
    else {
        panic!("{r:?}")
    };
    assert_eq!((tunnel_type, lease_time), (TunnelType::Gre, 30));
    assert_eq!(
        tunnel_endpoint,
        Some(&Address::Ipv4("192.0.2.254".parse().unwrap()))
    );
    assert_eq!(f.to_owned(), flow);
    assert_eq!(h.gw.bindings()[0].tunnel, TunnelKind::Gre);
    assert_eq!(
        h.gw.leases().holder_of_port(PUB, 8080).map(|x| x.client.0),
        Some(c.0)
    );
}

// ---- expiry -----------------------------------------------------------------------------

#[test]
fn binding_and_registration_expiry_to_the_millisecond() {
    let mut h = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }],
        "registration_lease_secs": 30,
    })));
    let c = h.register_udp(udp_from(2));
    let r = h.udp1(
        udp_from(2),
        &Message::assign_request_rsap_ip(
            c,
            any_flow(Ports::DONT_CARE_ONE),
            opts(Some(2), Some(10), None),
        )
        .unwrap(),
    );
    let b = bind_of(&r);
    let t0 = h.now;
    assert_eq!(h.gw.poll_timeout(), Some(t0 + secs(10)));
    assert!(h.advance(Duration::from_millis(9_999)).is_empty());
    let t = h.advance(Duration::from_millis(1));
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].to, Destination::Udp(udp_from(2)));
    assert_eq!(
        Message::parse(&t[0].bytes).unwrap(),
        Message::free_response(c, b, Some(0))
    );
    assert!(
        matches!(h.events.last(), Some(Event::BindingFreed { reason: FreeReason::Expired, binding, .. }) if binding.bind.0 == b.0)
    );
    // The registration (R = 30 s, not pushed by the 10 s binding) lapses at 30 s.
    assert_eq!(h.gw.poll_timeout(), Some(t0 + secs(30)));
    assert!(h.set_time(t0 + Duration::from_millis(29_999)).is_empty());
    let t = h.set_time(t0 + secs(30));
    assert_eq!(
        Message::parse(&t[0].bytes).unwrap(),
        Message::deregister_response(c, Some(0))
    );
    assert!(matches!(
        h.events.last(),
        Some(Event::Deregistered {
            reason: DeregisterReason::Expired,
            ..
        })
    ));
    assert_eq!(h.gw.counters().binding_expiries, 1);
    assert_eq!(h.gw.counters().registration_expiries, 1);
    assert_eq!(
        h.gw.poll_timeout(),
        Some(t0 + secs(60)),
        "only the UDP buffer is left"
    );
}

#[test]
fn expiry_over_tcp_without_connection_is_counted_undeliverable() {
    let mut h = Harness::new(cfg(
        json!({ "pool": [{ "addresses": "192.0.2.1" }], "registration_lease_secs": 5 }),
    ));
    h.register_tcp(1, host(2));
    h.gw.handle_connection_closed(h.now, ConnectionId(1), tcp_source(host(2)));
    assert!(h.advance(secs(5)).is_empty());
    assert_eq!(h.gw.counters().undeliverable, 1);
    assert_eq!(h.gw.status().hosts, 0);
}

// ---- TCP connections: framing errors, closes --------------------------------------------

#[test]
fn a_framing_error_is_answered_and_counted_like_any_error() {
    let mut h = Harness::new(soho());
    let c = h.register_tcp(1, host(2));
    let before = h.gw.counters().clone();
    // RFC 3103 Appendix A 207: the stream cannot be resynchronised.
    let e = FrameError::TooLong {
        declared: 0xffff,
        max: 1024,
    };
    h.gw.handle_stream_error(h.now, ConnectionId(1), tcp_source(host(2)), &e);
    let t = h.drain();
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].to, Destination::Tcp(ConnectionId(1)));
    let m = Message::parse(&t[0].bytes).unwrap();
    assert_eq!(
        m,
        Message::error_response(ErrorCode::BadMessage, None, None, None)
    );
    assert!(matches!(
        h.events.last(),
        Some(Event::ErrorSent {
            to: Destination::Tcp(ConnectionId(1)),
            code: ErrorCode::BadMessage,
            client: None,
        })
    ));
    let after = h.gw.counters();
    assert_eq!(after.malformed, before.malformed + 1);
    assert_eq!(after.messages, before.messages + 1);
    assert_eq!(after.errors.get(&207), Some(&1));
    // Nothing else changed: the host stays registered (the daemon closes
    // the connection; what that does is `handle_connection_closed`'s).
    assert_eq!(h.gw.hosts()[0].record.client.0, c.0);
    // A length below the header: the same answer.
    let e = FrameError::LengthTooSmall { declared: 2 };
    h.gw.handle_stream_error(h.now, ConnectionId(9), tcp_source(host(3)), &e);
    let t = h.drain();
    assert_eq!(t[0].to, Destination::Tcp(ConnectionId(9)));
    assert_eq!(
        error_of(&Message::parse(&t[0].bytes).unwrap()),
        ErrorCode::BadMessage
    );
    assert_eq!(h.gw.counters().errors.get(&207), Some(&2));
}

#[test]
fn a_closed_connection_keeps_its_hosts_by_default() {
    let mut h = Harness::new(soho());
    let c = h.register_tcp(1, host(2));
    let b = bind_of(&h.tcp1(1, host(2), &rsap(c, Ports::DONT_CARE_ONE, None)));
    h.gw.handle_connection_closed(h.now, ConnectionId(1), tcp_source(host(2)));
    assert!(h.drain().is_empty());
    assert_eq!(h.gw.status().hosts, 1);
    assert_eq!(h.gw.bindings()[0].bind.0, b.0);
    assert!(!h.gw.hosts()[0].connected);
    // The next connection naming the client adopts it.
    bind_of(&h.tcp1(2, host(2), &rsap(c, Ports::DONT_CARE_ONE, None)));
    assert!(h.gw.hosts()[0].connected);
}

#[test]
fn on_tcp_close_deregister_ends_the_orphans_of_that_address_only() {
    let mut h = Harness::new(soho());
    h.gw.set_on_tcp_close(OnTcpClose::Deregister);
    let gone = h.register_tcp(1, host(2));
    h.tcp1(1, host(2), &rsap(gone, Ports::DONT_CARE_ONE, None));
    let other = h.register_tcp(2, host(3));
    let udp = h.register_udp(udp_from(4));
    assert_eq!(h.gw.status().hosts, 3);
    h.gw.handle_connection_closed(h.now, ConnectionId(1), tcp_source(host(2)));
    // DE-REGISTER_RESPONSE has no connection to go on.
    assert!(h.drain().is_empty());
    let left: Vec<u32> = h.gw.hosts().iter().map(|x| x.record.client.0).collect();
    assert!(!left.contains(&gone.0), "{left:?}");
    assert!(left.contains(&other.0) && left.contains(&udp.0), "{left:?}");
    assert!(h.gw.bindings().iter().all(|b| b.client.0 != gone.0));
    assert_eq!(h.gw.counters().deregistrations.get("admin"), Some(&1));
    assert_eq!(h.gw.counters().undeliverable, 1);
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::Deregistered { host, reason: DeregisterReason::Admin } if host.client.0 == gone.0
    )));
    // A close from an address whose host is still connected elsewhere ends
    // nothing.
    h.gw.handle_connection_closed(h.now, ConnectionId(7), tcp_source(host(3)));
    assert_eq!(h.gw.status().hosts, 2);
}

// ---- TIME_WAIT --------------------------------------------------------------------------

#[test]
fn freed_ports_are_held_for_time_wait_then_reused_fifo() {
    let mut h = Harness::new(cfg(json!({
        "pool": [{ "addresses": "192.0.2.1", "ports": ["2000-2003"] }],
        "time_wait_secs": 120,
    })));
    let c = h.register_tcp(1, host(2));
    let mut binds = Vec::new();
    for _ in 0..4 {
        let r = h.tcp1(1, host(2), &rsap(c, Ports::DONT_CARE_ONE, None));
        binds.push((bind_of(&r), r.ports().next().cloned().unwrap()));
    }
    assert_eq!(
        error_of(&h.tcp1(1, host(2), &rsap(c, Ports::DONT_CARE_ONE, None))),
        ErrorCode::LocalAddrportUnavailable
    );
    // Free 2002 then 2000.
    h.tcp1(1, host(2), &Message::free_request(c, binds[2].0, None));
    h.advance(secs(1));
    h.tcp1(1, host(2), &Message::free_request(c, binds[0].0, None));
    // Held: a specific request is INUSE, "don't care" is UNAVAILABLE.
    let specific = Message::assign_request_rsap_ip(
        c,
        Flow {
            local_address: Address::DONT_CARE_V4,
            local_ports: Ports::single(2002),
            remote_address: Address::DONT_CARE_V4,
            remote_ports: Ports::DONT_CARE_ONE,
        },
        RequestOptions::default(),
    )
    .unwrap();
    assert_eq!(
        error_of(&h.tcp1(1, host(2), &specific)),
        ErrorCode::LocalAddrportInuse
    );
    h.advance(Duration::from_millis(118_999));
    assert_eq!(
        error_of(&h.tcp1(1, host(2), &rsap(c, Ports::DONT_CARE_ONE, None))),
        ErrorCode::LocalAddrportUnavailable
    );
    h.advance(Duration::from_millis(1));
    // 2002 was freed first: it comes back first.
    let r = h.tcp1(1, host(2), &rsap(c, Ports::DONT_CARE_ONE, None));
    assert_eq!(r.ports().next(), Some(&Ports::single(2002)));
    assert_eq!(
        error_of(&h.tcp1(1, host(2), &rsap(c, Ports::DONT_CARE_ONE, None))),
        ErrorCode::LocalAddrportUnavailable
    );
    h.advance(secs(1));
    let r = h.tcp1(1, host(2), &rsap(c, Ports::DONT_CARE_ONE, None));
    assert_eq!(r.ports().next(), Some(&Ports::single(2000)));
}

// ---- admin, snapshots, durability ----------------------------------------------------------

#[test]
fn admin_operations_and_snapshots() {
    let mut h = Harness::new(soho());
    let c = h.register_udp(udp_from(2));
    let r = h.udp1(udp_from(2), &rsap(c, Ports::DontCare { count: 3 }, Some(2)));
    let b = realm_lease::BindId(bind_of(&r).0);
    let cid = realm_lease::ClientId(c.0);
    assert_eq!(
        h.gw.admin_free(h.now, realm_lease::BindId(999)),
        Err(AdminError::UnknownBinding(realm_lease::BindId(999)))
    );
    let hosts = h.gw.hosts();
    assert_eq!(
        (hosts.len(), hosts[0].bindings.clone(), hosts[0].usage.ports),
        (1, vec![b], 3)
    );
    let status = serde_json::to_value(h.gw.status()).unwrap();
    assert_eq!(status["hosts"], 1);
    assert_eq!(status["pool"]["ports_leased"], 3);
    assert_eq!(status["counters"]["grants"]["rsap-ip"], 1);
    let _ = serde_json::to_string(&h.gw.bindings()).unwrap();
    h.gw.admin_free(h.now, b).unwrap();
    let t = h.drain();
    assert_eq!(
        Message::parse(&t[0].bytes).unwrap(),
        Message::free_response(c, bind_of(&r), Some(0))
    );
    h.gw.admin_deregister(h.now, cid).unwrap();
    let t = h.drain();
    assert_eq!(
        Message::parse(&t[0].bytes).unwrap(),
        Message::deregister_response(c, Some(0))
    );
    assert!(matches!(
        h.events.last(),
        Some(Event::Deregistered {
            reason: DeregisterReason::Admin,
            ..
        })
    ));
    assert_eq!(
        h.gw.admin_deregister(h.now, cid),
        Err(AdminError::UnknownClient(cid))
    );
}

#[test]
fn transmits_wait_for_events_to_be_drained() {
    let mut gw = Gateway::new(soho(), SEED).unwrap();
    gw.handle_datagram(
        T0,
        udp_from(2),
        &Message::register_request(Some(1)).to_bytes(),
    );
    assert!(
        gw.poll_transmit().is_none(),
        "the Registered event must be persisted first"
    );
    assert!(matches!(gw.poll_event(), Some(Event::Registered { .. })));
    assert!(gw.poll_event().is_none());
    assert!(gw.poll_transmit().is_some());
    assert!(gw.poll_transmit().is_none());
}

#[test]
fn config_reads_from_toml_like_data_with_defaults_and_refuses_unknown_fields() {
    let c = soho();
    assert_eq!(c.time_wait_secs, 120);
    assert_eq!(c.ephemeral_ports, PortRange::new(49152, 65535));
    let bad: Result<GatewayConfig, _> =
        serde_json::from_value(json!({ "pool": [], "no_such_field": 1 }));
    assert!(bad.is_err());
    assert!(
        Gateway::new(GatewayConfig::default(), SEED).is_err(),
        "empty pool"
    );
    let bad_key = cfg(
        json!({ "pool": [{ "addresses": "192.0.2.1" }], "auth": { "keys": [{ "host": "10.0.0.2", "key_id": 1, "secret_hex": "abcd" }] } }),
    );
    assert!(matches!(
        Gateway::new(bad_key, SEED),
        Err(ConfigError::BadKey(_))
    ));
    let v6 = cfg(json!({ "pool": [{ "addresses": "2001:db8::1" }] }));
    assert!(matches!(
        Gateway::new(v6, SEED),
        Err(ConfigError::BadPoolEntry(_))
    ));
    let block = cfg(json!({ "pool": [{ "addresses": "192.0.2.16/30", "shared": false }] }));
    let gw = Gateway::new(block, SEED).unwrap();
    assert_eq!(gw.leases().usage().addresses, 4);
}
