//! Signalling authentication on the host side (RFC 3102 3.3,
//! `docs/signalling-auth.md`): every message signed, retransmissions byte
//! for byte, re-sends after a TCP reconnection signed afresh, and gateway
//! messages accepted only with a valid signature and a fresh replay counter.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host_util;

use std::time::Duration;

use host_util::*;
use realm_rsip::auth::{self, SharedKey};
use realm_rsip::host::{AuthConfig, ConfigError, Host, HostConfig, HostEvent, Transport};
use realm_wire::rsip::{BindId, ClientId, Message};

const SECRET: &str = "000102030405060708090a0b0c0d0e0f1011121314151617";

fn key() -> SharedKey {
    SharedKey::new(9, &h(SECRET))
}

fn signed_config(transport: Transport) -> HostConfig {
    let mut c = config(transport);
    c.auth = Some(AuthConfig {
        key_id: 9,
        secret_hex: SECRET.into(),
    });
    c
}

/// Checks `bytes` are `expected` signed with `key()` and returns the replay counter.
#[track_caller]
fn verify_signed(bytes: &[u8], expected: &Message) -> u64 {
    let m = Message::parse(bytes).unwrap();
    let a = auth::verify(bytes, &m, &key()).expect("signed with the host's key");
    assert_eq!(auth::sign(expected, &key(), a.counter).unwrap(), m);
    a.counter
}

fn gw_signed(m: &Message, counter: u64) -> Vec<u8> {
    auth::sign(m, &key(), counter).unwrap().to_bytes()
}

#[test]
fn requests_are_signed_and_retransmitted_byte_for_byte() {
    let mut s = Script::with(|now| {
        Host::with_replay_floor(signed_config(Transport::Udp), now, 5000).unwrap()
    });
    let first = s.sent_bytes();
    assert_eq!(first.len(), 1);
    assert_eq!(
        verify_signed(&first[0], &Message::register_request(Some(1))),
        5001
    );
    s.advance(Duration::from_micros(12_500));
    assert_eq!(s.sent_bytes(), first, "the last-message buffer, unchanged");
    s.deliver_bytes(&gw_signed(&register_response(7, 600, Some(1)), 77));
    assert!(s.host.registration().is_some());
    s.host.request_ports(s.now, 2).unwrap();
    let sent = s.sent_bytes();
    let assign = Message::assign_request_rsap_ip(
        ClientId(7),
        any_ports(2),
        realm_wire::rsip::RequestOptions {
            message_counter: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(verify_signed(&sent[0], &assign), 5002);
}

#[test]
fn unsigned_forged_and_replayed_gateway_messages_are_discarded() {
    let mut s = Script::new(signed_config(Transport::Udp));
    s.sent();
    let answer = register_response(7, 600, Some(1));
    // Unsigned.
    s.deliver(&answer);
    // Signed with another key.
    let other = SharedKey::new(9, &[0x55; 16]);
    s.deliver_bytes(&auth::sign(&answer, &other, 10).unwrap().to_bytes());
    // Tampered after signing.
    let mut tampered = gw_signed(&answer, 10);
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    s.deliver_bytes(&tampered);
    assert!(s.host.registration().is_none());
    assert_eq!(s.host.stats().unauthenticated, 3);
    s.deliver_bytes(&gw_signed(&answer, 10));
    assert!(s.host.registration().is_some());
    s.host.request_ports(s.now, 1).unwrap();
    s.deliver_bytes(&gw_signed(&ports_grant(7, 1, 5000, 1, 600, Some(2)), 11));
    s.events();
    // A forged revocation, then a replay of an old signed one.
    s.deliver(&Message::free_response(ClientId(7), BindId(1), Some(0)));
    s.deliver_bytes(&gw_signed(
        &Message::free_response(ClientId(7), BindId(1), Some(0)),
        11,
    ));
    assert_eq!(s.host.stats().unauthenticated, 5);
    assert!(s.host.binding(BindId(1)).is_some());
    assert!(s.events().is_empty());
    s.deliver_bytes(&gw_signed(
        &Message::free_response(ClientId(7), BindId(1), Some(0)),
        12,
    ));
    assert!(matches!(
        s.events().as_slice(),
        [HostEvent::BindingRevoked { .. }]
    ));
}

#[test]
fn tcp_resend_after_reconnection_is_signed_afresh() {
    let mut s = Script::new(signed_config(Transport::Tcp));
    s.host.handle_connected(s.now);
    let first = s.sent_bytes();
    let c1 = verify_signed(&first[0], &Message::register_request(None));
    s.host.handle_disconnected(s.now);
    s.host.handle_connected(s.now);
    let again = s.sent_bytes();
    let c2 = verify_signed(&again[0], &Message::register_request(None));
    assert!(c2 > c1);
}

#[test]
fn a_bad_secret_is_refused() {
    let mut c = config(Transport::Tcp);
    c.auth = Some(AuthConfig {
        key_id: 1,
        secret_hex: "0011".into(),
    });
    assert_eq!(c.validate(), Err(ConfigError::AuthKey));
    c.auth = Some(AuthConfig {
        key_id: 1,
        secret_hex: "zz".repeat(16),
    });
    assert_eq!(c.validate(), Err(ConfigError::AuthKey));
    assert!(
        !format!("{c:?}").contains("zz"),
        "the secret is never printed"
    );
}
