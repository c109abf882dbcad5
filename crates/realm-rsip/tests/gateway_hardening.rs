//! What an unauthenticated datagram may change at the gateway engine
//! (docs/signalling-auth.md, issue 11): refusals move no UDP counter or
//! "last message" buffer; UDP registrations under pressure are sent to TCP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_util;

use gateway_util::*;
use realm_rsip::auth::{self, SharedKey};
use realm_rsip::gateway::*;
use realm_wire::rsip::*;
use serde_json::json;

const SECRET: &str = "000102030405060708090a0b0c0d0e0f";

fn keyed() -> GatewayConfig {
    cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }],
        "auth": { "keys": [{ "host": "10.0.0.2", "key_id": 5, "secret_hex": SECRET }] },
    }))
}

fn signed(m: &Message, counter: u64) -> Vec<u8> {
    auth::sign(m, &SharedKey::new(5, &h(SECRET)), counter)
        .unwrap()
        .to_bytes()
}

/// Every kind of refusal a forger can provoke from a host's endpoint, each
/// with a counter far above the host's.
fn forgeries(c: ClientId) -> Vec<Vec<u8>> {
    let far = 0x7fff_0000;
    let mut junk = rsap(ClientId(0xdead_beef), Ports::DONT_CARE_ONE, Some(far)).to_bytes();
    junk.truncate(junk.len() - 3);
    let len = u16::try_from(junk.len()).unwrap().to_be_bytes();
    junk[2..4].copy_from_slice(&len);
    vec![
        // A client ID nobody holds.
        rsap(ClientId(0xdead_beef), Ports::DONT_CARE_ONE, Some(far)).to_bytes(),
        // The host's own client ID, unsigned (refused where it has a key;
        // without one it names a client the forger cannot know off-path).
        Message::free_request(c, BindId(0x0bad), Some(far + 1)).to_bytes(),
        // A REGISTER from the registered endpoint: ALREADY_REGISTERED.
        Message::register_request(Some(far + 2)).to_bytes(),
        // A gateway message sent to the gateway.
        Message::deregister_response(c, Some(far + 3)).to_bytes(),
        // Malformed (cut short).
        junk,
    ]
}

fn lockout(config: GatewayConfig, sign: bool) {
    let mut h = Harness::new(config);
    let from = udp_from(2);
    let mut auth_counter = 0;
    let mut send = |h: &mut Harness, m: &Message| {
        auth_counter += 1;
        let bytes = if sign {
            signed(m, auth_counter)
        } else {
            m.to_bytes()
        };
        let t = h.udp_bytes(from, &bytes);
        assert_eq!(t.len(), 1, "one answer");
        Message::parse(&t[0].bytes).unwrap()
    };
    let r = send(&mut h, &Message::register_request(Some(1)));
    let c = r.client_id().unwrap();
    assert!(
        send(&mut h, &rsap(c, Ports::DONT_CARE_ONE, Some(2)))
            .bind_id()
            .is_some()
    );
    for (next, forged) in (3..).zip(forgeries(c)) {
        let t = h.udp_bytes(from, &forged);
        assert_eq!(t.len(), 1, "a refusal is answered");
        assert_eq!(
            Message::parse(&t[0].bytes).unwrap().msg_type(),
            MessageType::ErrorResponse
        );
        // The host's next request is executed, not dropped as stale.
        let a = send(&mut h, &rsap(c, Ports::DONT_CARE_ONE, Some(next)));
        assert_eq!(a.message_counter(), Some(next));
        assert!(a.bind_id().is_some(), "{:?}", a.view());
    }
    assert_eq!(h.gw.counters().stale_dropped, 0);
}

#[test]
fn refusals_move_no_udp_counter() {
    lockout(soho(), false);
}

#[test]
fn refusals_move_no_udp_counter_with_keys() {
    lockout(keyed(), true);
}

#[test]
fn accepted_requests_still_make_older_copies_stale() {
    // RFC 3103 10.1 stays: a delayed copy older than what was accepted is
    // dropped, and a duplicate is answered byte for byte.
    let mut h = Harness::new(soho());
    let from = udp_from(2);
    let c = h.register_udp(from);
    let first = h.udp(from, &rsap(c, Ports::DONT_CARE_ONE, Some(2)));
    assert_eq!(h.udp(from, &rsap(c, Ports::DONT_CARE_ONE, Some(2))), first);
    let _ = h.udp1(from, &rsap(c, Ports::DONT_CARE_ONE, Some(3)));
    assert!(
        h.udp(from, &rsap(c, Ports::DontCare { count: 2 }, Some(2)))
            .is_empty()
    );
    assert_eq!(h.gw.counters().stale_dropped, 1);
}

fn pressure_config(extra: serde_json::Value) -> GatewayConfig {
    let mut v = json!({ "pool": [{ "addresses": "192.0.2.1" }], "max_hosts": 8 });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    cfg(v)
}

#[test]
fn a_full_host_table_sends_new_udp_registrations_to_tcp() {
    let mut h = Harness::new(pressure_config(
        json!({ "udp": { "use_tcp_above_hosts_percent": 50 } }),
    ));
    for last in 2..6 {
        h.register_udp(udp_from(last));
    }
    // 4 of 8: half full. A new UDP address is sent to TCP...
    let r = h.udp1(udp_from(20), &Message::register_request(Some(1)));
    assert_eq!(error_of(&r), ErrorCode::UseTcp);
    assert_eq!(r.message_counter(), Some(1));
    assert_eq!(h.gw.counters().use_tcp_pressure, 1);
    // ...and registers there.
    h.register_tcp(1, host(20));
    // A registered address keeps UDP: a second registration from it is
    // refused only by the per-address cap, not sent to TCP.
    let r = h.udp1(
        std::net::SocketAddrV4::new(host(2), 1),
        &Message::register_request(Some(1)),
    );
    assert_eq!(error_of(&r), ErrorCode::AlreadyRegistered);
}

#[test]
fn a_registration_burst_sends_new_udp_registrations_to_tcp() {
    let mut h = Harness::new(pressure_config(json!({
        "max_hosts": 100,
        "udp": { "use_tcp_above_registrations_per_sec": 3, "use_tcp_above_hosts_percent": 0 }
    })));
    for last in 2..5 {
        h.register_udp(udp_from(last));
    }
    let r = h.udp1(udp_from(9), &Message::register_request(Some(1)));
    assert_eq!(error_of(&r), ErrorCode::UseTcp);
    // A second later the burst is over.
    h.advance(secs(1));
    h.register_udp(udp_from(9));
}

#[test]
fn keyed_hosts_are_not_sent_to_tcp() {
    let mut c = keyed();
    c.max_hosts = 2;
    c.udp.use_tcp_above_hosts_percent = 50;
    let mut h = Harness::new(c);
    h.register_udp(udp_from(3));
    // Its signed REGISTER proves it.
    let t = h.udp_bytes(udp_from(2), &signed(&Message::register_request(Some(1)), 1));
    let r = Message::parse(&t[0].bytes).unwrap();
    assert_eq!(r.msg_type(), MessageType::RegisterResponse);
}
