//! Signalling authentication at the gateway (RFC 3102 3.3,
//! docs/signalling-auth.md): keyed hosts must sign; unsigned, badly signed and
//! replayed messages are refused and change nothing; answers are signed.

// Test helpers outside #[test] functions may panic too (clippy.toml allows it in tests only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_util;

use gateway_util::*;
use realm_rsip::auth::{self, SharedKey};
use realm_rsip::gateway::*;
use realm_wire::rsip::*;
use serde_json::json;

const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn key() -> SharedKey {
    SharedKey::new(11, &h(SECRET))
}

fn config(require: bool) -> GatewayConfig {
    cfg(json!({
        "pool": [{ "addresses": "192.0.2.1" }],
        "auth": { "require": require, "keys": [{ "host": "10.0.0.2", "key_id": 11, "secret_hex": SECRET }] },
    }))
}

fn signed(m: &Message, counter: u64) -> Vec<u8> {
    auth::sign(m, &key(), counter).unwrap().to_bytes()
}

/// The answer, checked to be signed by the gateway with the host's key.
fn verified(bytes: &[u8]) -> Message {
    let m = Message::parse(bytes).unwrap();
    auth::verify(bytes, &m, &key()).expect("gateway signs answers to keyed hosts");
    m
}

#[test]
fn keyed_host_must_sign_and_gets_signed_answers() {
    let mut h = Harness::new(config(false));
    // Unsigned REGISTER: REGISTRATION_DENIED, nothing registered.
    let t = h.udp(udp_from(2), &Message::register_request(Some(1)));
    assert_eq!(
        error_of(&verified(&t[0].bytes)),
        ErrorCode::RegistrationDenied
    );
    assert_eq!(h.gw.status().hosts, 0);
    // Signed: registered; the answer verifies.
    let t = h.udp_bytes(udp_from(2), &signed(&Message::register_request(Some(2)), 1));
    let r = verified(&t[0].bytes);
    let c = r.client_id().unwrap();
    assert_eq!(r.msg_type(), MessageType::RegisterResponse);
    // A retransmission is answered from the buffer, byte for byte.
    let again = h.udp_bytes(udp_from(2), &signed(&Message::register_request(Some(2)), 1));
    assert_eq!(again, t);
    // Signed ASSIGN with counter 2: granted.
    let t = h.udp_bytes(
        udp_from(2),
        &signed(&rsap(c, Ports::DONT_CARE_ONE, Some(3)), 2),
    );
    let b = verified(&t[0].bytes).bind_id().unwrap();
    let state = (h.gw.bindings(), h.gw.hosts());
    // Replayed counter (2 again, another message): BAD_CLIENT_ID, no change.
    let t = h.udp_bytes(
        udp_from(2),
        &signed(&Message::free_request(c, b, Some(4)), 2),
    );
    assert_eq!(error_of(&verified(&t[0].bytes)), ErrorCode::BadClientId);
    // Bad MAC: flip a MAC byte.
    let mut bad = signed(&Message::free_request(c, b, Some(5)), 3);
    let n = bad.len();
    bad[n - 1] ^= 0x80;
    let t = h.udp_bytes(udp_from(2), &bad);
    assert_eq!(error_of(&verified(&t[0].bytes)), ErrorCode::BadClientId);
    // Unsigned: refused.
    let t = h.udp(udp_from(2), &Message::free_request(c, b, Some(6)));
    assert_eq!(error_of(&verified(&t[0].bytes)), ErrorCode::BadClientId);
    // Wrong key ID.
    let other = SharedKey::new(12, &gateway_util::h(SECRET));
    let t = h.udp_bytes(
        udp_from(2),
        &auth::sign(&Message::free_request(c, b, Some(7)), &other, 9)
            .unwrap()
            .to_bytes(),
    );
    assert_eq!(error_of(&verified(&t[0].bytes)), ErrorCode::BadClientId);
    assert_eq!(state, (h.gw.bindings(), h.gw.hosts()));
    assert_eq!(h.gw.counters().auth_failures, 5);
    // Counter 10: fresh, freed; the counter went to the store.
    let t = h.udp_bytes(
        udp_from(2),
        &signed(&Message::free_request(c, b, Some(8)), 10),
    );
    assert_eq!(verified(&t[0].bytes).msg_type(), MessageType::FreeResponse);
    assert_eq!(h.state.hosts[0].auth_counter, 10);
    // Restored, the counter still refuses replays.
    let (gw, _) = Gateway::restore(config(false), SEED, &h.state, h.now).unwrap();
    let mut r = Harness::with_gateway(gw, h.now);
    let t = r.udp_bytes(
        udp_from(2),
        &signed(&Message::deregister_request(c, Some(9)), 10),
    );
    assert_eq!(error_of(&verified(&t[0].bytes)), ErrorCode::BadClientId);
    let t = r.udp_bytes(
        udp_from(2),
        &signed(&Message::deregister_request(c, Some(9)), 11),
    );
    assert_eq!(
        verified(&t[0].bytes).msg_type(),
        MessageType::DeregisterResponse
    );
}

#[test]
fn unkeyed_hosts_pass_unless_keys_are_required() {
    let mut h = Harness::new(config(false));
    let c = h.register_udp(udp_from(3));
    // A signature from a host without a key is refused (mismatched config).
    let t = h.udp_bytes(
        udp_from(3),
        &signed(&Message::deregister_request(c, Some(2)), 1),
    );
    assert_eq!(
        error_of(&Message::parse(&t[0].bytes).unwrap()),
        ErrorCode::BadClientId
    );
    let mut strict = Harness::new(config(true));
    let e = strict.udp1(udp_from(3), &Message::register_request(Some(1)));
    assert_eq!(error_of(&e), ErrorCode::RegistrationDenied);
    let t = strict.udp_bytes(udp_from(2), &signed(&Message::register_request(Some(1)), 1));
    assert_eq!(
        verified(&t[0].bytes).msg_type(),
        MessageType::RegisterResponse
    );
}

#[test]
fn a_framing_error_answer_is_signed_for_a_keyed_host() {
    let mut h = Harness::new(config(false));
    let e = FrameError::TooLong {
        declared: 0xffff,
        max: 1024,
    };
    h.gw.handle_stream_error(h.now, ConnectionId(1), tcp_source(host(2)), &e);
    let t = h.drain();
    assert_eq!(t.len(), 1);
    assert_eq!(error_of(&verified(&t[0].bytes)), ErrorCode::BadMessage);
    assert_eq!(h.gw.counters().errors.get(&207), Some(&1));
}
