//! The host engine under arbitrary gateway input: random sequences of
//! arbitrary bytes, plausible gateway messages (right and wrong client IDs,
//! bind IDs and counters), library calls, TCP connection changes and time
//! advances. It never panics, and after every step:
//! - everything it sent parses and is a host-to-gateway message, with a
//!   counter over UDP and none over TCP;
//! - no timer is left in the past, no binding outlived its lease, and no
//!   binding is held without a registration;
//! - once closed, it is silent and has no deadline.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host_util;

use std::time::Duration;

use host_util::*;
use proptest::prelude::*;
use realm_rsip::host::{BindingConfig, Transport};
use realm_wire::rsip::{BindId, ClientId, ErrorCode, Message, MessageType};

#[derive(Debug, Clone)]
enum Step {
    Bytes(Vec<u8>),
    Gateway(GwMsg, u32, u32, Option<u32>, u32),
    Advance(u64),
    RequestPorts(u8),
    Free(u32),
    Query,
    Shutdown,
    Connected,
    Disconnected,
}

#[derive(Debug, Clone, Copy)]
enum GwMsg {
    Register,
    Grant,
    Extend,
    Free,
    Deregister,
    Error(u16),
    Query,
}

fn gw_msg() -> impl Strategy<Value = GwMsg> {
    prop_oneof![
        Just(GwMsg::Register),
        Just(GwMsg::Grant),
        Just(GwMsg::Extend),
        Just(GwMsg::Free),
        Just(GwMsg::Deregister),
        prop_oneof![Just(301u16), Just(302), Just(305), Just(306), Just(309)]
            .prop_map(GwMsg::Error),
        Just(GwMsg::Query),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..48).prop_map(Step::Bytes),
        6 => (gw_msg(), 6u32..9, 1u32..4, proptest::option::of(0u32..6), 0u32..40)
            .prop_map(|(m, c, b, n, l)| Step::Gateway(m, c, b, n, l)),
        4 => (0u64..30_000).prop_map(Step::Advance),
        1 => (0u8..4).prop_map(Step::RequestPorts),
        1 => (1u32..4).prop_map(Step::Free),
        1 => Just(Step::Query),
        1 => Just(Step::Shutdown),
        1 => Just(Step::Connected),
        1 => Just(Step::Disconnected),
    ]
}

fn message(m: GwMsg, client: u32, bind: u32, counter: Option<u32>, lease: u32) -> Message {
    let (c, b) = (ClientId(client), BindId(bind));
    match m {
        GwMsg::Register => register_response(client, lease, counter),
        GwMsg::Grant => ports_grant(client, bind, 5000 + bind as u16 * 10, 2, lease, counter),
        GwMsg::Extend => Message::extend_response(c, b, lease, counter),
        GwMsg::Free => Message::free_response(c, b, counter),
        GwMsg::Deregister => Message::deregister_response(c, counter),
        GwMsg::Error(code) => {
            let code = ErrorCode::from(code);
            let bind = (code == ErrorCode::BadBindId).then_some(b);
            Message::error_response(code, counter, Some(c), bind)
        }
        GwMsg::Query => Message::query_response(c, counter, &[]).unwrap(),
    }
}

fn run(transport: Transport, steps: Vec<Step>) {
    let mut cfg = config(transport);
    cfg.bindings = vec![BindingConfig::rsap_ip(2)];
    let mut s = Script::new(cfg);
    for step in steps {
        match step {
            Step::Bytes(b) => s.deliver_bytes(&b),
            Step::Gateway(m, c, b, n, l) => s.deliver(&message(m, c, b, n, l)),
            Step::Advance(ms) => s.advance(Duration::from_millis(ms)),
            Step::RequestPorts(n) => {
                let _ = s.host.request_ports(s.now, n);
            }
            Step::Free(b) => {
                let _ = s.host.free(s.now, BindId(b));
            }
            Step::Query => {
                let _ = s.host.query(s.now, [10, 0, 0, 3].into());
            }
            Step::Shutdown => s.host.shutdown(s.now),
            Step::Connected => s.host.handle_connected(s.now),
            Step::Disconnected => s.host.handle_disconnected(s.now),
        }
        s.host.handle_timeout(s.now);
        for bytes in s.sent_bytes() {
            let m = Message::parse(&bytes).expect("the host sends valid messages");
            assert!(matches!(
                m.msg_type(),
                MessageType::RegisterRequest
                    | MessageType::DeregisterRequest
                    | MessageType::AssignRequestRsapIp
                    | MessageType::ExtendRequest
                    | MessageType::FreeRequest
                    | MessageType::QueryRequest
            ));
            assert_eq!(
                m.message_counter().is_some(),
                transport == Transport::Udp,
                "{m:?}"
            );
            assert_ne!(m.message_counter(), Some(0));
        }
        if let Some(t) = s.host.poll_timeout() {
            assert!(t > s.now, "timer left in the past");
        }
        assert!(s.host.bindings().all(|b| b.expires > s.now));
        if s.host.registration().is_none() {
            assert_eq!(
                s.host.bindings().count(),
                0,
                "bindings without a registration"
            );
        }
        if s.host.is_closed() {
            assert_eq!(s.host.poll_timeout(), None);
            assert_eq!(s.host.bindings().count(), 0);
            assert!(s.host.registration().is_none());
        }
        s.events();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn udp_host_survives_anything(steps in proptest::collection::vec(step(), 0..60)) {
        run(Transport::Udp, steps);
    }

    #[test]
    fn tcp_host_survives_anything(steps in proptest::collection::vec(step(), 0..60)) {
        run(Transport::Tcp, steps);
    }
}
