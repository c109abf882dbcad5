//! The host engine, one behaviour per test, against a scripted gateway on a
//! fake clock: the test builds the gateway's exact messages with realm-wire
//! and checks byte for byte what the host sends back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host_util;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use host_util::*;
use realm_rsip::host::{
    BindingConfig, BindingKind, BindingRequest, HostConfig, HostError, HostEvent, Method,
    RequestError, RequestId, RevokeReason, Transport, UnregisterReason,
};
use realm_wire::rsip::{
    Address, BindId, ClientId, ErrorCode, Flow, Message, Ports, QueryTuple, RequestOptions, Spi,
    Spis, TunnelType,
};

const MS: Duration = Duration::from_millis(1);

fn ms(n: f64) -> Duration {
    Duration::from_secs_f64(n / 1000.0)
}

/// A UDP host registered as client 7 (REGISTER carried counter 1).
fn udp_registered(config: HostConfig) -> Script {
    let mut s = Script::new(config);
    s.expect_sent(&Message::register_request(Some(1)));
    s.deliver(&register_response(7, 600, Some(1)));
    s
}

/// A TCP host, connected and registered as client 7.
fn tcp_registered(config: HostConfig) -> Script {
    let mut s = Script::new(config);
    s.host.handle_connected(s.now);
    s.expect_sent(&Message::register_request(None));
    s.deliver(&register_response(7, 600, None));
    s.events();
    s
}

fn assign_any(client: u32, count: u8, counter: Option<u32>) -> Message {
    let options = RequestOptions {
        message_counter: counter,
        ..RequestOptions::default()
    };
    Message::assign_request_rsap_ip(ClientId(client), any_ports(count), options).unwrap()
}

// ---- registration, assignment, extension, free, de-registration ---------------

#[test]
fn udp_lifecycle_register_assign_extend_free_deregister() {
    let mut c = config(Transport::Udp);
    c.bindings = vec![BindingConfig::rsap_ip(4)];
    let mut s = udp_registered(c);
    assert!(
        matches!(s.events().as_slice(), [HostEvent::Registered(r)] if r.client_id == ClientId(7))
    );

    // The configured binding is asked for right after registering, counter 2.
    s.expect_sent(&assign_any(7, 4, Some(2)));
    s.deliver(&ports_grant(7, 1, 40_000, 4, 30, Some(2)));
    let b = s.host.binding(BindId(1)).cloned().unwrap();
    assert_eq!(b.request, RequestId(1), "configured binding 0 is request 1");
    assert_eq!(b.ports(), vec![40_000, 40_001, 40_002, 40_003]);
    assert_eq!(s.events(), vec![HostEvent::BindingGranted(b)]);
    // Registration held up by the binding: R = max(R, B1) (RFC 3103 6).
    assert_eq!(
        s.host.registration().unwrap().expires,
        s.start + Duration::from_secs(600)
    );

    // Extended at 2/3 of the 30 s lease (20.01 s with extend_at = 0.667).
    s.advance(Duration::from_millis(20_009));
    s.expect_silent();
    s.advance(MS);
    s.expect_sent(&Message::extend_request(
        ClientId(7),
        BindId(1),
        None,
        Some(3),
    ));
    s.deliver(&Message::extend_response(
        ClientId(7),
        BindId(1),
        900,
        Some(3),
    ));
    let expires = s.now + Duration::from_secs(900);
    assert_eq!(
        s.events(),
        vec![HostEvent::BindingExtended {
            bind_id: BindId(1),
            expires
        }]
    );
    assert_eq!(s.host.binding(BindId(1)).unwrap().expires, expires);
    assert_eq!(s.host.registration().unwrap().expires, expires);

    // Extended again at 2/3 of 900 s.
    s.advance(Duration::from_millis(600_300));
    s.expect_sent(&Message::extend_request(
        ClientId(7),
        BindId(1),
        None,
        Some(4),
    ));
    s.deliver(&Message::extend_response(
        ClientId(7),
        BindId(1),
        900,
        Some(4),
    ));
    s.events();

    s.host.free(s.now, BindId(1)).unwrap();
    assert_eq!(
        s.host.free(s.now, BindId(1)),
        Err(HostError::UnknownBinding(BindId(1))),
        "already being freed"
    );
    s.expect_sent(&Message::free_request(ClientId(7), BindId(1), Some(5)));
    s.deliver(&Message::free_response(ClientId(7), BindId(1), Some(5)));
    assert!(matches!(
        s.events().as_slice(),
        [HostEvent::BindingRevoked {
            reason: RevokeReason::Freed,
            ..
        }]
    ));
    // A freed configured binding is not asked for again.
    s.advance(Duration::from_secs(60));
    s.expect_silent();

    s.host.shutdown(s.now);
    s.expect_sent(&Message::deregister_request(ClientId(7), Some(6)));
    s.deliver(&Message::deregister_response(ClientId(7), Some(6)));
    assert_eq!(
        s.events(),
        vec![
            HostEvent::Unregistered {
                client_id: ClientId(7),
                reason: UnregisterReason::Shutdown
            },
            HostEvent::Closed
        ]
    );
    assert_eq!(s.host.stats().retransmissions, 0);
}

#[test]
fn configured_listen_binding_is_held_and_reacquired() {
    // RFC 3103 9.16: LISTEN_REQUEST for one specific port, remote "don't care".
    let mut c = config(Transport::Tcp);
    c.bindings = vec![BindingConfig {
        lease_time: Some(60),
        ..BindingConfig::listen(8080)
    }];
    let mut s = tcp_registered(c);
    let asked = Flow {
        local_address: Address::DONT_CARE_V4,
        local_ports: Ports::single(8080),
        remote_address: Address::DONT_CARE_V4,
        remote_ports: Ports::DONT_CARE_ONE,
    };
    let listen = Message::listen_request(ClientId(7), asked.clone(), None, Some(60), &[]).unwrap();
    s.expect_sent(&listen);
    let granted = Flow {
        local_address: Address::Ipv4(PUBLIC),
        ..asked.clone()
    };
    s.deliver(
        &Message::listen_response(ClientId(7), BindId(3), granted.clone(), grant(60, None))
            .unwrap(),
    );
    let b = s.host.binding(BindId(3)).cloned().unwrap();
    assert!(b.listen);
    assert_eq!(b.request, RequestId(1));
    assert_eq!(b.ports(), vec![8080]);
    assert_eq!(s.events(), vec![HostEvent::BindingGranted(b)]);
    // Extended like any binding, with the configured lease suggested.
    s.advance(Duration::from_millis(40_020));
    s.expect_sent(&Message::extend_request(
        ClientId(7),
        BindId(3),
        Some(60),
        None,
    ));
    // Revoked by the gateway: asked for again (the same LISTEN) after the pause.
    s.deliver(&Message::free_response(ClientId(7), BindId(3), None));
    s.events();
    s.advance(Duration::from_millis(4999));
    s.expect_silent();
    s.advance(MS);
    s.expect_sent(&listen);

    // Config checks: a listen binding is RSAP-IP, one port or a count.
    let ok = BindingConfig::listen(8080);
    assert_eq!(ok.kind, BindingKind::Listen);
    assert!(ok.check().is_ok());
    assert!(ok.to_request().is_err(), "not an assign binding");
    let rsa = BindingConfig {
        method: Method::RsaIp,
        ..BindingConfig::listen(8080)
    };
    assert!(rsa.check().is_err());
    let both = BindingConfig {
        ports: Some(2),
        ..BindingConfig::listen(8080)
    };
    assert!(both.check().is_err());
    let c: HostConfig = serde_json::from_str(
        r#"{ "gateway": "10.0.0.1:4555",
             "bindings": [ { "kind": "listen", "local_port": 2050, "tunnel_type": "gre",
                             "remote_address": "38.196.73.6", "remote_port": 20 } ] }"#,
    )
    .unwrap();
    let l = c.bindings[0].to_listen().unwrap();
    assert_eq!(l.local_ports, Ports::single(2050));
    assert_eq!(l.remote_ports, Ports::single(20));
    assert_eq!(l.tunnel_types, vec![TunnelType::Gre]);
}

#[test]
fn library_extend_asks_now_with_the_new_lease() {
    let mut c = config(Transport::Udp);
    c.bindings = vec![BindingConfig::rsap_ip(4)];
    let mut s = udp_registered(c);
    s.expect_sent(&assign_any(7, 4, Some(2)));
    s.deliver(&ports_grant(7, 1, 40_000, 4, 30, Some(2)));
    s.events();
    assert_eq!(
        s.host.extend(s.now, BindId(9), None),
        Err(HostError::UnknownBinding(BindId(9)))
    );
    // RFC 3103 9.10: EXTEND_REQUEST with the suggested lease, at once.
    s.host.extend(s.now, BindId(1), Some(1800)).unwrap();
    s.expect_sent(&Message::extend_request(
        ClientId(7),
        BindId(1),
        Some(1800),
        Some(3),
    ));
    s.deliver(&Message::extend_response(
        ClientId(7),
        BindId(1),
        1800,
        Some(3),
    ));
    let expires = s.now + Duration::from_secs(1800);
    assert_eq!(
        s.events(),
        vec![HostEvent::BindingExtended {
            bind_id: BindId(1),
            expires
        }]
    );
    // The automatic extension at 2/3 of the new lease suggests it again.
    s.advance(Duration::from_millis(1_200_600));
    s.expect_sent(&Message::extend_request(
        ClientId(7),
        BindId(1),
        Some(1800),
        Some(4),
    ));
    // A refusal that keeps the binding is a GatewayError naming it.
    s.deliver(&Message::error_response(
        ErrorCode::LocalAddrUnavailable,
        Some(4),
        Some(ClientId(7)),
        Some(BindId(1)),
    ));
    assert_eq!(
        s.events(),
        vec![HostEvent::GatewayError {
            code: ErrorCode::LocalAddrUnavailable,
            bind_id: Some(BindId(1))
        }]
    );
    assert!(s.host.binding(BindId(1)).is_some());
}

#[test]
fn requests_go_one_at_a_time_in_order() {
    let mut s = tcp_registered(config(Transport::Tcp));
    let a = s.host.request_ports(s.now, 1).unwrap();
    let b = s.host.request_ports(s.now, 2).unwrap();
    let q = s.host.query(s.now, IpAddr::from([10, 0, 0, 9])).unwrap();
    assert!(a < b && b < q);
    s.expect_sent(&assign_any(7, 1, None));
    s.advance(Duration::from_secs(1));
    s.expect_silent();
    s.deliver(&ports_grant(7, 1, 5000, 1, 600, None));
    s.expect_sent(&assign_any(7, 2, None));
    s.deliver(&ports_grant(7, 2, 5002, 2, 600, None));
    let tuples = [QueryTuple::address(Address::Ipv4(Ipv4Addr::new(
        10, 0, 0, 9,
    )))];
    s.expect_sent(&Message::query_request(ClientId(7), None, &tuples).unwrap());
    let answer = [QueryTuple::local_address(Address::Ipv4(Ipv4Addr::new(
        10, 0, 0, 9,
    )))];
    s.deliver(&Message::query_response(ClientId(7), None, &answer).unwrap());
    let ev = s.events();
    assert!(matches!(&ev[0], HostEvent::BindingGranted(x) if x.request == a));
    assert!(matches!(&ev[1], HostEvent::BindingGranted(x) if x.request == b));
    match &ev[2] {
        HostEvent::QueryAnswered { request, answer } => {
            assert_eq!(*request, q);
            assert!(answer.is_local(IpAddr::from([10, 0, 0, 9])));
            assert!(!answer.is_local(IpAddr::from([10, 0, 0, 10])));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rsipsec_spis_dont_care_and_suggested() {
    let mut s = tcp_registered(config(Transport::Tcp));
    let r = s
        .host
        .request_spis(s.now, Spis::DontCare { count: 2 })
        .unwrap();
    let flow = Flow {
        local_address: Address::DONT_CARE_V4,
        local_ports: Ports::DontNeed,
        remote_address: Address::DONT_CARE_V4,
        remote_ports: Ports::DONT_CARE_ONE,
    };
    s.expect_sent(
        &Message::assign_request_rsipsec(
            ClientId(7),
            flow.clone(),
            Spis::DontCare { count: 2 },
            RequestOptions::default(),
        )
        .unwrap(),
    );
    let granted = Flow {
        local_address: Address::Ipv4(PUBLIC),
        ..flow.clone()
    };
    let spis = Spis::Range {
        first: Spi(0x1000),
        count: 2,
    };
    s.deliver(
        &Message::assign_response_rsipsec(
            ClientId(7),
            BindId(3),
            granted.clone(),
            spis,
            grant(600, None),
        )
        .unwrap(),
    );
    let b = s.host.binding(BindId(3)).cloned().unwrap();
    assert_eq!(b.request, r);
    assert_eq!(b.spis, vec![Spi(0x1000), Spi(0x1001)]);
    assert_eq!(
        s.host.binding_for_spi(Spi(0x1001)).map(|b| b.bind_id),
        Some(BindId(3))
    );

    // A suggested SPI the gateway refuses.
    let r2 = s
        .host
        .request_spis(s.now, Spis::single(Spi(0x2000)))
        .unwrap();
    s.expect_sent(
        &Message::assign_request_rsipsec(
            ClientId(7),
            flow,
            Spis::single(Spi(0x2000)),
            RequestOptions::default(),
        )
        .unwrap(),
    );
    s.deliver(&Message::error_response(
        ErrorCode::IpsecSpiInuse,
        None,
        Some(ClientId(7)),
        None,
    ));
    assert_eq!(
        s.events().last(),
        Some(&HostEvent::RequestFailed {
            request: r2,
            error: RequestError::Gateway(ErrorCode::IpsecSpiInuse)
        })
    );
}

#[test]
fn invalid_requests_are_refused_at_the_call() {
    let mut s = tcp_registered(config(Transport::Tcp));
    assert!(matches!(
        s.host.request_ports(s.now, 0),
        Err(HostError::InvalidRequest(_))
    ));
    // "don't need" ports exist only in RSIPSEC.
    assert!(matches!(
        s.host.request_specific_ports(s.now, Ports::DontNeed),
        Err(HostError::InvalidRequest(_))
    ));
    s.expect_silent();
}

#[test]
fn queue_is_bounded() {
    let mut c = config(Transport::Tcp);
    c.max_queued_requests = 2;
    let mut s = Script::new(c); // not connected: everything waits
    s.host.request_ports(s.now, 1).unwrap();
    s.host.request_ports(s.now, 1).unwrap();
    assert_eq!(s.host.request_ports(s.now, 1), Err(HostError::QueueFull));
}

// ---- UDP: retransmission and counters (RFC 3103 5, 10.1) ---------------------

#[test]
fn udp_retransmission_schedule_is_exact() {
    let mut s = Script::new(config(Transport::Udp));
    let register = Message::register_request(Some(1)).to_bytes();
    assert_eq!(s.sent_bytes(), vec![register.clone()]);
    // 12.5 ms first, doubling: sends at 12.5, 37.5, 87.5, 187.5, 387.5, 787.5.
    let mut sends = Vec::new();
    let mut t = 0.0;
    let mut timeout = 12.5;
    for _ in 0..6 {
        t += timeout;
        timeout *= 2.0;
        sends.push(ms(t));
    }
    for at in &sends {
        assert_eq!(s.host.poll_timeout(), Some(s.start + *at));
        s.advance_to(*at - Duration::from_micros(1));
        s.expect_silent();
        s.advance_to(*at);
        assert_eq!(s.sent_bytes(), vec![register.clone()], "at {at:?}");
    }
    assert!(s.events().is_empty());
    // The 7th transmission's timeout (800 ms) ends the round: 1587.5 ms.
    let fail = ms(787.5 + 800.0);
    s.advance_to(fail - Duration::from_micros(1));
    assert!(s.events().is_empty());
    s.advance_to(fail);
    assert_eq!(
        s.events(),
        vec![HostEvent::GatewayUnreachable { attempts: 7 }]
    );
    s.expect_silent();
    // After the 5 s pause, the same message (same counter) starts a new round.
    s.advance_to(fail + Duration::from_millis(4999));
    s.expect_silent();
    s.advance_to(fail + Duration::from_secs(5));
    assert_eq!(s.sent_bytes(), vec![register.clone()]);
    s.advance_to(fail + Duration::from_secs(5) + ms(12.5));
    assert_eq!(s.sent_bytes(), vec![register]);
    // A late answer completes it.
    s.deliver(&register_response(7, 600, Some(1)));
    assert!(s.host.registration().is_some());
    assert_eq!(s.host.stats().retransmissions, 8);
    assert_eq!(
        s.host.poll_timeout(),
        Some(s.start + Duration::from_secs(600) + ms(1587.5 + 5000.0 + 12.5))
    );
}

#[test]
fn retransmission_parameters_are_configurable() {
    let mut c = config(Transport::Udp);
    c.retransmit.initial_timeout_us = 100_000;
    c.retransmit.max_attempts = 2;
    c.retry_pause_ms = 1000;
    let mut s = Script::new(c);
    s.sent();
    assert_eq!(s.next_timer(), Some(ms(100.0)));
    assert_eq!(s.sent().len(), 1);
    assert_eq!(s.next_timer(), Some(ms(300.0)));
    assert_eq!(
        s.events(),
        vec![HostEvent::GatewayUnreachable { attempts: 2 }]
    );
    assert_eq!(s.next_timer(), Some(ms(1300.0)));
    assert_eq!(s.sent().len(), 1);
}

#[test]
fn udp_duplicate_and_stale_responses_are_ignored() {
    let mut s = udp_registered(config(Transport::Udp));
    s.events();
    // A duplicate REGISTER_RESPONSE (counter 1, already answered).
    s.deliver(&register_response(7, 600, Some(1)));
    assert_eq!(s.host.stats().ignored, 1);
    assert!(s.events().is_empty());

    let r = s.host.request_ports(s.now, 1).unwrap();
    s.expect_sent(&assign_any(7, 1, Some(2)));
    // Answers with the wrong counter, or none, do not complete it.
    s.deliver(&ports_grant(7, 1, 5000, 1, 600, Some(1)));
    s.deliver(&ports_grant(7, 1, 5000, 1, 600, Some(3)));
    s.deliver(&ports_grant(7, 1, 5000, 1, 600, None));
    assert_eq!(s.host.stats().ignored, 4);
    assert_eq!(s.host.bindings().count(), 0);
    // Retransmitted with the same counter; the echo completes it once.
    s.advance(ms(12.5));
    s.expect_sent(&assign_any(7, 1, Some(2)));
    s.deliver(&ports_grant(7, 1, 5000, 1, 600, Some(2)));
    s.deliver(&ports_grant(7, 1, 5000, 1, 600, Some(2))); // the duplicate
    assert_eq!(s.host.stats().ignored, 5);
    let ev = s.events();
    assert_eq!(ev.len(), 1);
    assert!(matches!(&ev[0], HostEvent::BindingGranted(b) if b.request == r));
    // The next request uses counter 3.
    s.host.request_ports(s.now, 1).unwrap();
    s.expect_sent(&assign_any(7, 1, Some(3)));
}

#[test]
fn udp_echo_of_another_type_releases_the_counter() {
    // A rebooted host reuses counter 1; the gateway replays its old "last
    // message" (an EXTEND_RESPONSE with counter 1): the host moves to 2.
    let mut s = Script::new(config(Transport::Udp));
    s.expect_sent(&Message::register_request(Some(1)));
    s.deliver(&Message::extend_response(
        ClientId(3),
        BindId(9),
        600,
        Some(1),
    ));
    s.expect_sent(&Message::register_request(Some(2)));
    s.deliver(&register_response(8, 600, Some(2)));
    assert_eq!(s.host.registration().unwrap().client_id, ClientId(8));
}

#[test]
fn udp_async_messages_carry_counter_zero() {
    let mut s = udp_registered(config(Transport::Udp));
    s.host.request_ports(s.now, 1).unwrap();
    s.expect_sent(&assign_any(7, 1, Some(2)));
    s.deliver(&ports_grant(7, 1, 5000, 1, 600, Some(2)));
    s.host.request_ports(s.now, 2).unwrap();
    s.expect_sent(&assign_any(7, 2, Some(3)));
    s.events();
    // While the second is outstanding the gateway revokes the first.
    s.deliver(&Message::free_response(ClientId(7), BindId(1), Some(0)));
    assert!(matches!(
        s.events().as_slice(),
        [HostEvent::BindingRevoked {
            reason: RevokeReason::RevokedByGateway,
            ..
        }]
    ));
    // A stale FREE_RESPONSE (non-zero counter not ours) is ignored.
    s.deliver(&Message::free_response(ClientId(7), BindId(1), Some(1)));
    assert_eq!(s.host.stats().ignored, 1);
    // The outstanding request is unaffected.
    s.deliver(&ports_grant(7, 2, 6000, 2, 600, Some(3)));
    assert!(s.host.binding(BindId(2)).is_some());
}

// ---- asynchronous FREE_RESPONSE and DE-REGISTER_RESPONSE ---------------------

#[test]
fn async_free_revokes_and_configured_binding_is_reacquired_after_a_pause() {
    let mut c = config(Transport::Tcp);
    c.bindings = vec![BindingConfig::rsap_ip(2)];
    let mut s = tcp_registered(c);
    s.expect_sent(&assign_any(7, 2, None));
    s.deliver(&ports_grant(7, 1, 5000, 2, 600, None));
    s.events();
    // Unknown binding or other client: ignored.
    s.deliver(&Message::free_response(ClientId(7), BindId(99), None));
    s.deliver(&Message::free_response(ClientId(8), BindId(1), None));
    assert_eq!(s.host.stats().ignored, 2);
    s.deliver(&Message::free_response(ClientId(7), BindId(1), None));
    match s.events().as_slice() {
        [HostEvent::BindingRevoked { binding, reason }] => {
            assert_eq!(binding.bind_id, BindId(1));
            assert_eq!(*reason, RevokeReason::RevokedByGateway);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.host.bindings().count(), 0);
    s.advance(Duration::from_millis(4999));
    s.expect_silent();
    s.advance(MS);
    s.expect_sent(&assign_any(7, 2, None));
    s.deliver(&ports_grant(7, 2, 5010, 2, 600, None));
    assert!(
        matches!(s.events().as_slice(), [HostEvent::BindingGranted(b)] if b.request == RequestId(1))
    );
}

#[test]
fn async_deregister_revokes_everything_and_host_registers_again() {
    let mut c = config(Transport::Tcp);
    c.bindings = vec![BindingConfig::rsap_ip(1)];
    let mut s = tcp_registered(c);
    s.expect_sent(&assign_any(7, 1, None));
    s.deliver(&ports_grant(7, 1, 5000, 1, 600, None));
    let app = s.host.request_ports(s.now, 3).unwrap();
    s.expect_sent(&assign_any(7, 3, None));
    s.deliver(&ports_grant(7, 2, 6000, 3, 600, None));
    s.events();
    // A stale client ID means nothing (RFC 3103 10.2.1).
    s.deliver(&Message::deregister_response(ClientId(6), None));
    assert!(s.events().is_empty());
    s.deliver(&Message::deregister_response(ClientId(7), None));
    let ev = s.events();
    assert_eq!(ev.len(), 3);
    assert!(ev[..2].iter().all(|e| matches!(
        e,
        HostEvent::BindingRevoked {
            reason: RevokeReason::Deregistered,
            ..
        }
    )));
    assert_eq!(
        ev[2],
        HostEvent::Unregistered {
            client_id: ClientId(7),
            reason: UnregisterReason::DeregisteredByGateway
        }
    );
    assert!(s.host.registration().is_none());
    assert_eq!(s.host.bindings().count(), 0);
    // After the pause: register, then the configured binding only (the
    // library's binding was revoked; asking again is the library's call).
    s.advance(Duration::from_secs(5));
    s.expect_sent(&Message::register_request(None));
    s.deliver(&register_response(9, 600, None));
    s.expect_sent(&assign_any(9, 1, None));
    s.deliver(&ports_grant(9, 1, 5000, 1, 600, None));
    s.expect_silent();
    let ev = s.events();
    assert!(matches!(&ev[1], HostEvent::BindingGranted(b) if b.request == RequestId(1)));
    assert!(s.host.bindings().all(|b| b.request != app));
}

#[test]
fn async_deregister_of_an_idle_host_registers_again_only_when_needed() {
    let mut s = tcp_registered(config(Transport::Tcp));
    s.deliver(&Message::deregister_response(ClientId(7), None));
    s.events();
    s.advance(Duration::from_secs(600));
    s.expect_silent();
    // A request during the pause waits for it to end.
    s.host.request_ports(s.now, 1).unwrap();
    s.expect_sent(&Message::register_request(None));
    s.deliver(&register_response(8, 600, None));
    s.expect_sent(&assign_any(8, 1, None));
}

#[test]
fn binding_expires_when_extensions_go_unanswered() {
    let mut s = udp_registered(config(Transport::Udp));
    s.host.request_ports(s.now, 1).unwrap();
    s.expect_sent(&assign_any(7, 1, Some(2)));
    s.deliver(&ports_grant(7, 1, 5000, 1, 3, Some(2)));
    s.events();
    // Extension at 2.001 s; the gateway is gone.
    s.advance(Duration::from_millis(2001));
    s.expect_sent(&Message::extend_request(
        ClientId(7),
        BindId(1),
        None,
        Some(3),
    ));
    s.advance(Duration::from_millis(999));
    s.sent();
    assert!(matches!(
        s.events().as_slice(),
        [HostEvent::BindingRevoked {
            reason: RevokeReason::Expired,
            ..
        }]
    ));
    assert_eq!(s.host.bindings().count(), 0);
    // Too late: the gateway extended it after all. The host gives it back.
    s.deliver(&Message::extend_response(
        ClientId(7),
        BindId(1),
        600,
        Some(3),
    ));
    s.expect_sent(&Message::free_request(ClientId(7), BindId(1), Some(4)));
    s.deliver(&Message::free_response(ClientId(7), BindId(1), Some(4)));
    assert!(s.events().is_empty());
}

#[test]
fn extend_refused_with_bad_bind_id_drops_the_binding() {
    let mut s = tcp_registered(config(Transport::Tcp));
    s.host.request_ports(s.now, 1).unwrap();
    s.expect_sent(&assign_any(7, 1, None));
    s.deliver(&ports_grant(7, 4, 5000, 1, 30, None));
    s.events();
    s.advance(Duration::from_millis(20_010));
    s.expect_sent(&Message::extend_request(ClientId(7), BindId(4), None, None));
    s.deliver(&Message::error_response(
        ErrorCode::BadBindId,
        None,
        Some(ClientId(7)),
        Some(BindId(4)),
    ));
    assert!(matches!(
        s.events().as_slice(),
        [HostEvent::BindingRevoked {
            reason: RevokeReason::ExtendRefused(ErrorCode::BadBindId),
            ..
        }]
    ));
}

#[test]
fn idle_registration_lapses_and_the_next_request_registers_again() {
    let mut s = tcp_registered(config(Transport::Tcp));
    s.advance(Duration::from_secs(600));
    assert_eq!(
        s.events(),
        vec![HostEvent::Unregistered {
            client_id: ClientId(7),
            reason: UnregisterReason::Expired
        }]
    );
    s.advance(Duration::from_secs(3600));
    s.expect_silent();
    s.host.request_ports(s.now, 1).unwrap();
    s.expect_sent(&Message::register_request(None));
    s.deliver(&register_response(8, 600, None));
    s.expect_sent(&assign_any(8, 1, None));
}

// ---- resynchronisation (RFC 3103 10.2) ---------------------------------------

#[test]
fn already_registered_deregisters_the_old_id_and_registers_again() {
    let mut s = Script::new(config(Transport::Udp));
    s.expect_sent(&Message::register_request(Some(1)));
    s.deliver(&Message::error_response(
        ErrorCode::AlreadyRegistered,
        Some(1),
        Some(ClientId(41)),
        None,
    ));
    s.expect_sent(&Message::deregister_request(ClientId(41), Some(2)));
    s.deliver(&Message::deregister_response(ClientId(41), Some(2)));
    s.expect_sent(&Message::register_request(Some(3)));
    s.deliver(&register_response(42, 600, Some(3)));
    assert_eq!(s.host.registration().unwrap().client_id, ClientId(42));
    assert!(matches!(s.events().as_slice(), [HostEvent::Registered(_)]));
    assert_eq!(s.host.stats().resyncs, 1);
}

#[test]
fn register_first_deregisters_registers_and_reacquires_the_same_resources() {
    let mut c = config(Transport::Tcp);
    c.bindings = vec![BindingConfig::rsap_ip(2)];
    let mut s = tcp_registered(c);
    s.expect_sent(&assign_any(7, 2, None));
    s.deliver(&ports_grant(7, 1, 5000, 2, 30, None));
    let app = s
        .host
        .request_spis(s.now, Spis::DontCare { count: 1 })
        .unwrap();
    s.sent();
    let ipsec_flow = Flow {
        local_address: Address::Ipv4(PUBLIC),
        local_ports: Ports::DontNeed,
        remote_address: Address::DONT_CARE_V4,
        remote_ports: Ports::DONT_CARE_ONE,
    };
    s.deliver(
        &Message::assign_response_rsipsec(
            ClientId(7),
            BindId(2),
            ipsec_flow.clone(),
            Spis::single(Spi(777)),
            grant(600, None),
        )
        .unwrap(),
    );
    s.events();

    // The gateway rebooted: the extension gets REGISTER_FIRST.
    s.advance(Duration::from_millis(20_010));
    s.expect_sent(&Message::extend_request(ClientId(7), BindId(1), None, None));
    s.deliver(&Message::error_response(
        ErrorCode::RegisterFirst,
        None,
        None,
        None,
    ));
    let ev = s.events();
    assert_eq!(ev.len(), 3);
    assert!(ev[..2].iter().all(|e| matches!(
        e,
        HostEvent::BindingRevoked {
            reason: RevokeReason::Resync,
            ..
        }
    )));
    assert_eq!(
        ev[2],
        HostEvent::Unregistered {
            client_id: ClientId(7),
            reason: UnregisterReason::Resync
        }
    );
    // De-register the old ID; its error is ignored.
    s.expect_sent(&Message::deregister_request(ClientId(7), None));
    s.deliver(&Message::error_response(
        ErrorCode::RegisterFirst,
        None,
        None,
        None,
    ));
    s.expect_sent(&Message::register_request(None));
    s.deliver(&register_response(1, 600, None));
    s.events();
    // Re-acquire both, asking for the very ports and SPI held before.
    let same_ports = Flow {
        local_address: Address::Ipv4(PUBLIC),
        local_ports: Ports::Range {
            first: 5000,
            count: 2,
        },
        remote_address: Address::DONT_CARE_V4,
        remote_ports: Ports::DONT_CARE_ONE,
    };
    s.expect_sent(
        &Message::assign_request_rsap_ip(ClientId(1), same_ports, RequestOptions::default())
            .unwrap(),
    );
    s.deliver(&ports_grant(1, 1, 5000, 2, 600, None));
    s.expect_sent(
        &Message::assign_request_rsipsec(
            ClientId(1),
            ipsec_flow.clone(),
            Spis::single(Spi(777)),
            RequestOptions::default(),
        )
        .unwrap(),
    );
    // The SPI went to someone else: fall back to what was asked at first.
    s.deliver(&Message::error_response(
        ErrorCode::IpsecSpiInuse,
        None,
        Some(ClientId(1)),
        None,
    ));
    s.expect_sent(
        &Message::assign_request_rsipsec(
            ClientId(1),
            Flow {
                local_address: Address::DONT_CARE_V4,
                ..ipsec_flow.clone()
            },
            Spis::DontCare { count: 1 },
            RequestOptions::default(),
        )
        .unwrap(),
    );
    s.deliver(
        &Message::assign_response_rsipsec(
            ClientId(1),
            BindId(2),
            ipsec_flow,
            Spis::single(Spi(900)),
            grant(600, None),
        )
        .unwrap(),
    );
    let ev = s.events();
    assert!(
        matches!(&ev[0], HostEvent::BindingGranted(b) if b.request == RequestId(1) && b.ports() == [5000, 5001])
    );
    assert!(
        matches!(&ev[1], HostEvent::BindingGranted(b) if b.request == app && b.spis == [Spi(900)])
    );
    assert_eq!(ev.len(), 2, "the refused preference raises no event");
    assert_eq!(s.host.stats().resyncs, 1);
}

#[test]
fn register_first_to_a_library_request_retries_it_after_resync() {
    let mut s = tcp_registered(config(Transport::Tcp));
    let r = s.host.request_ports(s.now, 1).unwrap();
    s.expect_sent(&assign_any(7, 1, None));
    s.deliver(&Message::error_response(
        ErrorCode::BadClientId,
        None,
        Some(ClientId(7)),
        None,
    ));
    s.expect_sent(&Message::deregister_request(ClientId(7), None));
    s.deliver(&Message::deregister_response(ClientId(7), None));
    s.expect_sent(&Message::register_request(None));
    s.deliver(&register_response(2, 600, None));
    s.expect_sent(&assign_any(2, 1, None));
    s.deliver(&ports_grant(2, 1, 5000, 1, 600, None));
    assert!(
        s.events()
            .iter()
            .any(|e| matches!(e, HostEvent::BindingGranted(b) if b.request == r))
    );
}

#[test]
fn async_register_first_resyncs() {
    let mut s = tcp_registered(config(Transport::Tcp));
    s.deliver(&Message::error_response(
        ErrorCode::RegisterFirst,
        None,
        Some(ClientId(7)),
        None,
    ));
    s.expect_sent(&Message::deregister_request(ClientId(7), None));
    // Another data-plane error names a binding: reported, nothing else.
    s.deliver(&Message::error_response(
        ErrorCode::LocalAddrportUnallowed,
        None,
        None,
        Some(BindId(3)),
    ));
    assert_eq!(
        s.events().last(),
        Some(&HostEvent::GatewayError {
            code: ErrorCode::LocalAddrportUnallowed,
            bind_id: Some(BindId(3))
        })
    );
}

#[test]
fn resync_loops_are_broken_by_a_pause() {
    let mut s = Script::new(config(Transport::Tcp));
    s.host.handle_connected(s.now);
    let already =
        Message::error_response(ErrorCode::AlreadyRegistered, None, Some(ClientId(5)), None);
    for _ in 0..2 {
        s.expect_sent(&Message::register_request(None));
        s.deliver(&already);
        s.expect_sent(&Message::deregister_request(ClientId(5), None));
        s.deliver(&Message::deregister_response(ClientId(5), None));
    }
    s.expect_sent(&Message::register_request(None));
    s.deliver(&already);
    // The third in a row: pause before going on.
    s.advance(Duration::from_millis(4999));
    s.expect_silent();
    s.advance(MS);
    s.expect_sent(&Message::deregister_request(ClientId(5), None));
}

#[test]
fn registration_denied_is_retried_after_a_pause() {
    let mut s = Script::new(config(Transport::Tcp));
    s.host.handle_connected(s.now);
    s.expect_sent(&Message::register_request(None));
    s.deliver(&Message::error_response(
        ErrorCode::RegistrationDenied,
        None,
        None,
        None,
    ));
    assert_eq!(
        s.events(),
        vec![HostEvent::RegistrationFailed(ErrorCode::RegistrationDenied)]
    );
    s.advance(Duration::from_millis(4999));
    s.expect_silent();
    s.advance(MS);
    s.expect_sent(&Message::register_request(None));
}

#[test]
fn configured_binding_refused_is_asked_again_after_a_pause() {
    let mut c = config(Transport::Tcp);
    c.bindings = vec![BindingConfig {
        kind: BindingKind::Assign,
        method: Method::RsapIp,
        ports: Some(8),
        spis: None,
        local_address: None,
        local_port: None,
        remote_address: Some(IpAddr::from([203, 0, 113, 9])),
        remote_port: Some(443),
        lease_time: Some(120),
        tunnel_type: None,
    }];
    let mut s = tcp_registered(c);
    let flow = Flow {
        local_address: Address::DONT_CARE_V4,
        local_ports: Ports::DontCare { count: 8 },
        remote_address: Address::Ipv4(Ipv4Addr::new(203, 0, 113, 9)),
        remote_ports: Ports::single(443),
    };
    let options = RequestOptions {
        lease_time: Some(120),
        ..RequestOptions::default()
    };
    let req = Message::assign_request_rsap_ip(ClientId(7), flow, options).unwrap();
    s.expect_sent(&req);
    s.deliver(&Message::error_response(
        ErrorCode::LocalAddrportUnavailable,
        None,
        Some(ClientId(7)),
        None,
    ));
    assert_eq!(
        s.events(),
        vec![HostEvent::RequestFailed {
            request: RequestId(1),
            error: RequestError::Gateway(ErrorCode::LocalAddrportUnavailable)
        }]
    );
    s.advance(Duration::from_secs(5));
    s.expect_sent(&req);
}

// ---- malformed gateway messages (RFC 3103 9.1.3) ------------------------------

#[test]
fn malformed_gateway_messages_are_discarded_and_counted() {
    let mut s = udp_registered(config(Transport::Udp));
    s.events();
    s.host.request_ports(s.now, 1).unwrap();
    s.expect_sent(&assign_any(7, 1, Some(2)));
    let good = ports_grant(7, 1, 5000, 1, 600, Some(2)).to_bytes();
    let mut bad_version = good.clone();
    bad_version[0] = 2;
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 1);
    let mut trailing = good.clone();
    trailing.push(0);
    let mut bad_type = good.clone();
    bad_type[1] = 99;
    let garbage: &[u8] = &[0xff; 3];
    for bytes in [
        &bad_version[..],
        &truncated,
        &trailing,
        &bad_type,
        garbage,
        &[],
        // A message only a host sends.
        &Message::register_request(Some(2)).to_bytes(),
    ] {
        s.deliver_bytes(bytes);
    }
    assert_eq!(s.host.stats().malformed, 7);
    s.expect_silent(); // silently: no answer, no FREE
    assert!(s.events().is_empty());
    assert_eq!(s.host.bindings().count(), 0);
    s.deliver_bytes(&good);
    assert_eq!(s.host.bindings().count(), 1);
}

#[test]
fn a_grant_the_host_cannot_use_is_freed() {
    let mut s = tcp_registered(config(Transport::Tcp));
    let r = s.host.request_ports(s.now, 1).unwrap();
    s.expect_sent(&assign_any(7, 1, None));
    // "Don't care" where the gateway must name a port (RFC 3103 9.9.3).
    let flow = Flow {
        local_address: Address::Ipv4(PUBLIC),
        ..any_ports(1)
    };
    s.deliver(
        &Message::assign_response_rsap_ip(ClientId(7), BindId(5), flow, grant(600, None)).unwrap(),
    );
    assert_eq!(
        s.events(),
        vec![HostEvent::RequestFailed {
            request: r,
            error: RequestError::BadResponse
        }]
    );
    s.expect_sent(&Message::free_request(ClientId(7), BindId(5), None));
}

// ---- TCP specifics ------------------------------------------------------------

#[test]
fn tcp_reconnect_resends_the_outstanding_request() {
    let mut s = tcp_registered(config(Transport::Tcp));
    s.host.request_ports(s.now, 1).unwrap();
    s.expect_sent(&assign_any(7, 1, None));
    s.host.handle_disconnected(s.now);
    s.host.request_ports(s.now, 2).unwrap();
    s.expect_silent();
    s.advance(Duration::from_secs(1));
    s.host.handle_connected(s.now);
    s.expect_sent(&assign_any(7, 1, None));
    s.deliver(&ports_grant(7, 1, 5000, 1, 600, None));
    s.expect_sent(&assign_any(7, 2, None));
}

/// The re-attach request: a QUERY_REQUEST about the gateway's own address.
fn reattach_query(client: u32) -> Message {
    let gateway = QueryTuple::address(Address::Ipv4(Ipv4Addr::new(10, 0, 0, 1)));
    Message::query_request(ClientId(client), None, &[gateway]).unwrap()
}

/// A TCP host registered as client 7 holding binding 1 (lease 600 s).
fn tcp_holding_a_binding() -> Script {
    let mut s = tcp_registered(config(Transport::Tcp));
    s.host.request_ports(s.now, 1).unwrap();
    s.expect_sent(&assign_any(7, 1, None));
    s.deliver(&ports_grant(7, 1, 5000, 1, 600, None));
    s.events();
    s
}

/// [`tcp_holding_a_binding`], reconnected: its re-attach query just sent.
fn tcp_reattaching() -> Script {
    let mut s = tcp_holding_a_binding();
    s.host.handle_disconnected(s.now);
    s.host.handle_connected(s.now);
    s.expect_sent(&reattach_query(7));
    s
}

#[test]
fn tcp_reconnect_reattaches_at_once_and_absorbs_the_answer() {
    let mut s = tcp_holding_a_binding();
    s.advance(Duration::from_secs(5));
    s.host.handle_disconnected(s.now);
    s.expect_silent();
    s.advance(Duration::from_secs(1));
    s.host.handle_connected(s.now);
    // At once, naming the client ID (not 400 s later with the extension).
    s.expect_sent(&reattach_query(7));
    let answer = Message::query_response(ClientId(7), None, &[]).unwrap();
    let before = s.host.stats();
    s.deliver(&answer);
    assert_eq!(s.events(), vec![], "the answer raises no event");
    assert_eq!(s.host.stats(), before, "nor counts as ignored");
    s.expect_silent();
    assert_eq!(s.host.bindings().count(), 1);
    assert!(s.host.registration().is_some());
    assert_eq!(s.host.queued_requests(), 0);
    // Once: nothing more goes out before the extension (at 400 s).
    s.advance(Duration::from_secs(300));
    s.expect_silent();
    // An asynchronous FREE_RESPONSE now reaches a host that knows it.
    s.deliver(&Message::free_response(ClientId(7), BindId(1), None));
    assert!(matches!(
        s.events().as_slice(),
        [HostEvent::BindingRevoked {
            reason: RevokeReason::RevokedByGateway,
            ..
        }]
    ));
}

#[test]
fn tcp_first_connection_sends_only_the_register() {
    let mut s = Script::new(config(Transport::Tcp));
    s.host.handle_connected(s.now);
    s.expect_sent(&Message::register_request(None));
    s.deliver(&register_response(7, 600, None));
    s.events();
    // Registered on this connection: nothing to re-attach.
    s.expect_silent();
}

#[test]
fn tcp_reconnect_with_a_request_waiting_sends_that_request_instead() {
    let mut s = tcp_holding_a_binding();
    s.host.handle_disconnected(s.now);
    s.host.request_ports(s.now, 2).unwrap();
    s.expect_silent();
    s.host.handle_connected(s.now);
    // It names the client ID already.
    s.expect_sent(&assign_any(7, 2, None));
}

#[test]
fn tcp_reconnect_when_unregistered_registers_without_a_query() {
    let mut s = tcp_registered(config(Transport::Tcp));
    s.host.handle_disconnected(s.now);
    // The idle registration lapses while the connection is down.
    s.advance(Duration::from_secs(601));
    assert!(s.host.registration().is_none());
    s.events();
    s.host.handle_connected(s.now);
    s.expect_silent();
}

#[test]
fn tcp_reattach_lost_with_the_connection_is_sent_once_again() {
    let mut s = tcp_reattaching();
    s.host.handle_disconnected(s.now);
    s.host.handle_connected(s.now);
    s.expect_sent(&reattach_query(7));
    s.deliver(&Message::query_response(ClientId(7), None, &[]).unwrap());
    assert_eq!(s.events(), vec![]);
    s.expect_silent();
}

#[test]
fn tcp_reattach_taking_an_error_for_its_answer_still_reports_it() {
    let mut s = tcp_reattaching();
    // An asynchronous violation report with no bind ID, indistinguishable
    // over TCP from a refusal of the query (RFC 3103 10.4).
    s.deliver(&Message::error_response(
        ErrorCode::LocalAddrUnallowed,
        None,
        Some(ClientId(7)),
        None,
    ));
    assert_eq!(
        s.events(),
        vec![HostEvent::GatewayError {
            code: ErrorCode::LocalAddrUnallowed,
            bind_id: None,
        }]
    );
    assert_eq!(s.host.bindings().count(), 1);
    s.expect_silent();
}

#[test]
fn tcp_reattach_answered_register_first_resyncs_at_once() {
    let mut s = tcp_reattaching();
    // The restarted gateway lost the host.
    s.deliver(&Message::error_response(
        ErrorCode::RegisterFirst,
        None,
        Some(ClientId(7)),
        None,
    ));
    let events = s.events();
    assert!(
        matches!(
            events.as_slice(),
            [
                HostEvent::BindingRevoked {
                    reason: RevokeReason::Resync,
                    ..
                },
                HostEvent::Unregistered {
                    reason: UnregisterReason::Resync,
                    ..
                },
            ]
        ),
        "{events:?}"
    );
    s.expect_sent(&Message::deregister_request(ClientId(7), None));
}

#[test]
fn tcp_async_error_about_a_binding_does_not_answer_an_assign() {
    let mut s = tcp_registered(config(Transport::Tcp));
    s.host.request_ports(s.now, 1).unwrap();
    s.sent();
    s.deliver(&Message::error_response(
        ErrorCode::LocalAddrUnallowed,
        None,
        Some(ClientId(7)),
        Some(BindId(9)),
    ));
    assert!(matches!(
        s.events().as_slice(),
        [HostEvent::GatewayError {
            code: ErrorCode::LocalAddrUnallowed,
            ..
        }]
    ));
    s.deliver(&ports_grant(7, 1, 5000, 1, 600, None));
    assert_eq!(s.host.bindings().count(), 1);
}

#[test]
fn tcp_silence_raises_unreachable() {
    let mut s = Script::new(config(Transport::Tcp));
    s.host.handle_connected(s.now);
    s.sent();
    s.advance(Duration::from_secs(10));
    assert_eq!(
        s.events(),
        vec![HostEvent::GatewayUnreachable { attempts: 1 }]
    );
    s.expect_silent();
}

// ---- shutdown -------------------------------------------------------------------

#[test]
fn shutdown_times_out_without_an_answer() {
    let mut s = udp_registered(config(Transport::Udp));
    let queued = s.host.request_ports(s.now, 1).unwrap();
    s.sent();
    let waiting = s.host.request_ports(s.now, 1).unwrap();
    s.events();
    s.host.shutdown(s.now);
    assert_eq!(
        s.events(),
        vec![HostEvent::RequestFailed {
            request: waiting,
            error: RequestError::Shutdown
        }]
    );
    assert_eq!(s.host.request_ports(s.now, 1), Err(HostError::ShuttingDown));
    // The outstanding ASSIGN must finish first (RFC 3103 10.1); nobody answers.
    s.advance(Duration::from_millis(1999));
    assert!(!s.host.is_closed());
    s.advance(MS);
    assert!(s.host.is_closed());
    let ev = s.events();
    assert!(ev.contains(&HostEvent::RequestFailed {
        request: queued,
        error: RequestError::Shutdown
    }));
    assert_eq!(ev.last(), Some(&HostEvent::Closed));
    assert_eq!(s.host.poll_timeout(), None);
    s.deliver(&register_response(7, 600, Some(2)));
    s.expect_silent();
}

#[test]
fn shutdown_when_unregistered_closes_at_once() {
    let mut s = Script::new(config(Transport::Tcp));
    s.host.shutdown(s.now);
    assert_eq!(s.events(), vec![HostEvent::Closed]);
}

// ---- configuration -------------------------------------------------------------

#[test]
fn config_defaults_and_unknown_fields() {
    let c: HostConfig = serde_json::from_str(r#"{ "gateway": "10.0.0.1:4555" }"#).unwrap();
    assert_eq!(c, HostConfig::new(GW));
    assert_eq!(c.transport, Transport::Tcp);
    assert_eq!(c.retransmit.initial_timeout_us, 12_500);
    assert_eq!(c.retransmit.max_attempts, 7);
    assert!(
        serde_json::from_str::<HostConfig>(r#"{ "gateway": "10.0.0.1:4555", "x": 1 }"#).is_err()
    );
    assert!(serde_json::from_str::<HostConfig>(r#"{ "transport": "udp" }"#).is_err());

    let c: HostConfig = serde_json::from_str(
        r#"{ "gateway": "10.0.0.1:4555", "transport": "udp",
             "bindings": [ { "method": "rsap-ip", "ports": 16, "lease_time": 600 },
                           { "method": "rsipsec", "spis": 4, "tunnel_type": "gre" },
                           { "method": "rsa-ip", "remote_address": "203.0.113.1" } ] }"#,
    )
    .unwrap();
    assert!(c.validate().is_ok());
    let req = c.bindings[1].to_request().unwrap();
    assert_eq!(req, {
        let mut r = BindingRequest::spis(Spis::DontCare { count: 4 });
        r.tunnel_type = Some(realm_wire::rsip::TunnelType::Gre);
        r
    });

    let mut bad = HostConfig::new(GW);
    bad.retry_pause_ms = u64::MAX;
    assert!(bad.validate().is_err());
    bad.retry_pause_ms = 1;
    bad.retransmit.max_attempts = 17;
    assert!(bad.validate().is_err());
    bad.retransmit.max_attempts = 7;
    bad.extend_at = 1.0;
    assert!(bad.validate().is_err());
    bad.extend_at = 0.5;
    bad.bindings = vec![BindingConfig {
        method: Method::RsaIp,
        ports: Some(2),
        ..BindingConfig::rsap_ip(1)
    }];
    assert!(bad.validate().is_err());
    #[allow(clippy::disallowed_methods)]
    let now = std::time::Instant::now();
    assert!(realm_rsip::host::Host::new(bad, now).is_err());
}
