//! Restore: the fold of the events rebuilds a gateway that answers as before;
//! what lapsed while it was down ends at once; TIME_WAIT survives.

// Test helpers outside #[test] functions may panic too (clippy.toml allows it in tests only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_util;

use gateway_util::*;
use realm_rsip::gateway::*;
use realm_wire::rsip::*;
use serde_json::json;

fn config() -> GatewayConfig {
    cfg(json!({
        "pool": [{ "addresses": "192.0.2.1", "ports": ["2000-2999"] }, { "addresses": "192.0.2.2", "shared": false }],
        "remote_flow_policy": "macro",
        "registration_lease_secs": 100,
        "tunnel_types": ["ip-ip", "gre"],
    }))
}

fn peer() -> Address {
    Address::Ipv4("198.51.100.1".parse().unwrap())
}

fn ask(c: ClientId, ports: Ports, counter: Option<u32>) -> Message {
    Message::assign_request_rsap_ip(
        c,
        Flow {
            local_address: Address::DONT_CARE_V4,
            local_ports: ports,
            remote_address: peer(),
            remote_ports: Ports::DONT_CARE_ONE,
        },
        RequestOptions {
            message_counter: counter,
            lease_time: Some(300),
            tunnel_type: Some(TunnelType::Gre),
        },
    )
    .unwrap()
}

fn populated() -> (Harness, ClientId, ClientId) {
    let mut h = Harness::new(config());
    let u = h.register_udp(udp_from(2));
    let t = h.register_tcp(1, host(3));
    h.udp1(udp_from(2), &ask(u, Ports::DontCare { count: 4 }, Some(2)));
    let freed = h
        .udp1(udp_from(2), &ask(u, Ports::DontCare { count: 2 }, Some(3)))
        .bind_id()
        .unwrap();
    h.udp1(udp_from(2), &Message::free_request(u, freed, Some(4)));
    let r = h.tcp1(
        1,
        host(3),
        &Message::assign_request_rsa_ip(
            t,
            Address::DONT_CARE_V4,
            peer(),
            Ports::DONT_CARE_ONE,
            RequestOptions::default(),
        )
        .unwrap(),
    );
    assert_eq!(r.msg_type(), MessageType::AssignResponseRsaIp);
    h.advance(secs(20));
    let b = h.gw.bindings()[0].bind;
    h.udp1(
        udp_from(2),
        &Message::extend_request(u, BindId(b.0), Some(200), Some(5)),
    );
    (h, u, t)
}

fn sorted(mut s: PersistedState) -> PersistedState {
    s.hosts.sort_by_key(|h| h.client);
    s.bindings.sort_by_key(|b| b.bind);
    s.quarantine.sort_by_key(|q| (q.until, q.bind));
    s
}

#[test]
fn events_fold_into_the_state_and_restore_answers_as_before() {
    let (mut h, u, t) = populated();
    assert_eq!(sorted(h.state.clone()), sorted(h.gw.persisted_state()));
    // Through serde, as a store would keep it.
    let json = serde_json::to_string(&h.state).unwrap();
    let state: PersistedState = serde_json::from_str(&json).unwrap();
    let (gw, report) = Gateway::restore(config(), [1; 32], &state, h.now).unwrap();
    assert_eq!(
        (report.hosts, report.bindings, report.quarantine),
        (2, 2, 1)
    );
    assert!(report.dropped.is_empty() && report.expired_bindings.is_empty());
    let mut r = Harness::with_gateway(gw, h.now);
    assert_eq!(r.gw.bindings(), h.gw.bindings());
    assert_eq!(
        sorted(r.gw.persisted_state()),
        sorted(h.gw.persisted_state())
    );
    // The same requests get the same answers, byte for byte.
    let same = |h: &mut Harness, r: &mut Harness, m: Message| {
        assert_eq!(h.udp(udp_from(2), &m), r.udp(udp_from(2), &m));
    };
    same(
        &mut h,
        &mut r,
        ask(u, Ports::DontCare { count: 3 }, Some(6)),
    );
    same(
        &mut h,
        &mut r,
        ask(
            u,
            Ports::Range {
                first: 2004,
                count: 2,
            },
            Some(7),
        ),
    ); // held: INUSE
    same(&mut h, &mut r, Message::register_request(Some(8))); // ALREADY_REGISTERED
    same(
        &mut h,
        &mut r,
        Message::extend_request(u, BindId(1), None, Some(9)),
    );
    // The TCP host, on a new connection after the restart, is adopted.
    let m = Message::free_request(t, BindId(3), None);
    assert_eq!(
        h.tcp(1, host(3), &m),
        r.tcp(7, host(3), &m)
            .into_iter()
            .map(|x| Transmit {
                to: Destination::Tcp(ConnectionId(1)),
                ..x
            })
            .collect::<Vec<_>>()
    );
    // Leases end at the same moments.
    assert_eq!(
        h.gw.poll_timeout().map(|_| ()),
        r.gw.poll_timeout().map(|_| ())
    );
    let later = h.now + secs(400);
    assert_eq!(h.set_time(later), r.set_time(later));
}

#[test]
fn what_lapsed_while_down_ends_at_restore() {
    let (h, u, _t) = populated();
    let later = h.now + secs(250);
    // At T0 + 270 s: the binding extended to T0 + 220 s has lapsed; the others
    // (T0 + 300 s) and both registrations (pushed to T0 + 300 s) live on; the
    // quarantine of the freed ports (T0 + 120 s) has ended.
    let (gw, report) = Gateway::restore(config(), SEED, &h.state, later).unwrap();
    assert_eq!(report.expired_bindings.len(), 1, "{report:?}");
    assert_eq!(report.quarantine_ended, 1);
    assert!(report.expired_hosts.is_empty());
    let mut r = Harness::with_gateway(gw, later);
    assert!(r.events.iter().any(|e| matches!(
        e,
        Event::BindingFreed {
            reason: FreeReason::Expired,
            ..
        }
    )));
    // The UDP host is told (counter 0).
    let b = report.expired_bindings[0];
    let t = r.drain();
    let _ = t;
    let told = r.gw.counters().binding_expiries;
    assert_eq!(told, 1);
    let again = Harness::with_gateway(
        Gateway::restore(config(), SEED, &h.state, later).unwrap().0,
        later,
    );
    let _ = again;
    let mut gw2 = Gateway::restore(config(), SEED, &h.state, later).unwrap().0;
    while gw2.poll_event().is_some() {}
    let sent = gw2.poll_transmit().unwrap();
    assert_eq!(sent.to, Destination::Udp(udp_from(2)));
    assert_eq!(
        Message::parse(&sent.bytes).unwrap(),
        Message::free_response(u, BindId(b.0), Some(0))
    );
}

#[test]
fn records_the_config_refuses_are_dropped_with_resync_events() {
    let (h, _u, _t) = populated();
    // The whole-address entry is gone from the pool.
    let smaller = cfg(json!({
        "pool": [{ "addresses": "192.0.2.1", "ports": ["2000-2999"] }],
        "remote_flow_policy": "macro",
        "registration_lease_secs": 100,
        "tunnel_types": ["ip-ip", "gre"],
    }));
    let (gw, report) = Gateway::restore(smaller, SEED, &h.state, h.now).unwrap();
    assert_eq!(report.dropped.len(), 1, "{report:?}");
    let r = Harness::with_gateway(gw, h.now);
    assert!(r.events.iter().any(|e| matches!(
        e,
        Event::BindingFreed {
            reason: FreeReason::Resync,
            ..
        }
    )));
    assert_eq!(r.gw.bindings().len(), 1);
}
