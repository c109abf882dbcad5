//! A UDP host told USE_TCP (RFC 3103 Appendix A, 102) moves to TCP: the
//! gateway sends it there under registration pressure, when a UDP REGISTER
//! cannot prove the host's address (docs/signalling-auth.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host_util;

use host_util::*;
use realm_rsip::host::{BindingConfig, HostEvent, Transport};
use realm_wire::rsip::{ErrorCode, Message};

#[test]
fn udp_host_told_use_tcp_registers_over_tcp() {
    let mut c = config(Transport::Udp);
    c.bindings = vec![BindingConfig::rsap_ip(4)];
    let mut s = Script::new(c);
    s.expect_sent(&Message::register_request(Some(1)));
    s.deliver(&Message::error_response(
        ErrorCode::UseTcp,
        Some(1),
        None,
        None,
    ));
    assert_eq!(s.events(), vec![HostEvent::UseTcp]);
    assert_eq!(s.host.config().transport, Transport::Tcp);
    // Nothing goes out until the TCP connection is up...
    s.expect_silent();
    // ...then the REGISTER, over the stream (no message counter).
    s.host.handle_connected(s.now);
    s.expect_sent(&Message::register_request(None));
    s.deliver(&register_response(7, 600, None));
    assert!(matches!(s.events().as_slice(), [HostEvent::Registered(_)]));
}

#[test]
fn use_tcp_over_tcp_is_a_refusal() {
    let mut s = Script::new(config(Transport::Tcp));
    s.host.handle_connected(s.now);
    s.expect_sent(&Message::register_request(None));
    s.deliver(&Message::error_response(
        ErrorCode::UseTcp,
        None,
        None,
        None,
    ));
    assert_eq!(
        s.events(),
        vec![HostEvent::RegistrationFailed(ErrorCode::UseTcp)]
    );
    assert_eq!(s.host.config().transport, Transport::Tcp);
}
