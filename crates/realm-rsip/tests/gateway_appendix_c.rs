//! RFC 3103 Appendix C transactions 16.1, 16.2 and 16.3 as gateway-side
//! conversations, over "TCP" (connection IDs, no counters) and "UDP"
//! (message counters), with configurations matching each example. Client IDs
//! are random here (RFC 3103 9.3.3 + unpredictability): the fixtures' Client
//! ID is replaced by the one the gateway assigned, everything else is compared
//! byte for byte. Fixtures follow the wire tests (BNF order, slips fixed per
//! shared/specs/rsip-wire-notes.md).

// Test helpers outside #[test] functions may panic too (clippy.toml allows it in tests only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_util;

use gateway_util::*;
use realm_rsip::gateway::*;
use realm_wire::rsip::appendix_c::*;
use realm_wire::rsip::*;
use serde_json::json;

// Appendix C answers 8-1305 (0x0519) to a request for the free ports 8-1238;
// RFC 3103 10.5 makes a specific request a request for those ports (or
// LOCAL_ADDRPORT_INUSE), so Realm grants 8-1238 (0x04d6): docs/deviations.md.
const C1_ASSIGN_RESPONSE_2: &str = "01 09 0033  04 0004 00000001  05 0004 00000002  01 0005 019570f09c  02 0003 0804d6  01 0001 01  02 0001 01  03 0004 00000708  06 0001 01";

const C_REGISTER_REQUEST: &str = "01 02 0004";

fn config_16_1() -> GatewayConfig {
    cfg(json!({
        "pool": [{ "addresses": "149.112.240.156", "ports": ["1234-65535"] }],
        "methods": ["rsap-ip"],
        "tunnel_types": ["ip-ip"],
        "registration_lease_secs": 600,
        "max_binding_lease_secs": 1800,
        "local_networks": ["10.20.60.0/24"],
    }))
}

fn config_16_2(host: std::net::Ipv4Addr) -> GatewayConfig {
    cfg(json!({
        "pool": [{ "addresses": "149.112.240.156", "ports": ["2049-65535"] }],
        "methods": ["rsap-ip", "rsa-ip"],
        "tunnel_types": ["ip-ip", "gre"],
        "local_flow_policy": "micro",
        "remote_flow_policy": "micro",
        "registration_lease_secs": 600,
        "default_binding_lease_secs": 600,
        "listen": { "admin_override": [host.to_string()] },
    }))
}

fn config_16_3() -> GatewayConfig {
    cfg(json!({
        "pool": [{ "addresses": "149.112.240.17", "shared": false }],
        "methods": ["rsap-ip", "rsa-ip"],
        "tunnel_types": ["ip-ip", "l2tp"],
        "remote_flow_policy": "macro",
        "registration_lease_secs": 600,
        "remote_rules": [{ "action": "deny", "name": "www.foo.com" }],
    }))
}

/// One side of the conversation: TCP (conn 1, no counters) or UDP (counters
/// from 1; answers compared with the counter stripped, and checked to echo it).
struct Side {
    h: Harness,
    udp: bool,
    counter: u32,
}

impl Side {
    fn new(config: GatewayConfig, udp: bool) -> Side {
        Side {
            h: Harness::new(config),
            udp,
            counter: 0,
        }
    }

    /// Sends `req` (no counter in it), expects exactly `expected` back.
    fn exchange(&mut self, req: &Message, expected: &Message) {
        if self.udp {
            self.counter += 1;
            let got = self.h.udp1(udp_from(2), &with_counter(req, self.counter));
            assert_eq!(got.message_counter(), Some(self.counter));
            assert_eq!(strip_counter(&got), *expected);
        } else {
            let got = self.h.tcp1(1, host(2), req);
            assert_eq!(got.to_bytes(), expected.to_bytes());
        }
    }

    fn register(&mut self) -> ClientId {
        let req = Message::parse(&h(C_REGISTER_REQUEST)).unwrap();
        if self.udp {
            self.counter += 1;
            let r = self.h.udp1(udp_from(2), &with_counter(&req, self.counter));
            assert_eq!(r.message_counter(), Some(self.counter));
            match r.view() {
                View::RegisterResponse { client_id, .. } => client_id,
                other => panic!("{other:?}"),
            }
        } else {
            self.h.register_tcp(1, host(2))
        }
    }

    /// An asynchronous message: counter 0 over UDP, none over TCP.
    fn expect_async(&mut self, t: Vec<Transmit>, expected: &Message) {
        assert_eq!(t.len(), 1);
        let got = Message::parse(&t[0].bytes).unwrap();
        if self.udp {
            assert_eq!(t[0].to, Destination::Udp(udp_from(2)));
            assert_eq!(got.message_counter(), Some(0));
            assert_eq!(strip_counter(&got), *expected);
        } else {
            assert_eq!(t[0].to, Destination::Tcp(ConnectionId(1)));
            assert_eq!(got.to_bytes(), expected.to_bytes());
        }
    }
}

fn run_16_1(udp: bool) {
    let mut s = Side::new(config_16_1(), udp);
    let c = s.register();
    let fx = |hex| fixture(hex, c);
    // The REGISTER_RESPONSE itself, byte for byte (client ID substituted).
    let reg = s.h.events.iter().find_map(|e| match e {
        Event::Registered { host } => Some(host.clone()),
        _ => None,
    });
    assert_eq!(reg.map(|r| r.client.0), Some(c.0));
    let cid = realm_lease::ClientId(c.0);
    s.exchange(&fx(C1_ASSIGN_REQUEST_1), &fx(C1_ASSIGN_RESPONSE_1));
    s.exchange(&fx(C1_QUERY_REQUEST), &fx(C1_QUERY_RESPONSE));
    s.exchange(&fx(C1_ASSIGN_REQUEST_2), &fx(C1_ASSIGN_RESPONSE_2));
    s.exchange(&fx(C1_FREE_REQUEST), &fx(C1_FREE_RESPONSE_1));
    s.exchange(&fx(C1_EXTEND_REQUEST), &fx(C1_EXTEND_RESPONSE));
    // "The gateway forces the host to free the resources of bind ID 2."
    let now = s.h.now;
    s.h.gw.admin_free(now, realm_lease::BindId(2)).unwrap();
    let t = s.h.drain();
    s.expect_async(t, &fx(C1_FREE_RESPONSE_2));
    s.exchange(&fx(C1_DEREGISTER_REQUEST), &fx(C1_DEREGISTER_RESPONSE));
    assert!(s.h.gw.hosts().is_empty());
    assert!(s.h.gw.bindings().is_empty());
    assert!(matches!(
        s.h.events.last(),
        Some(Event::Deregistered { host, reason: DeregisterReason::Requested }) if host.client == cid
    ));
}

#[test]
fn appendix_c_16_1_over_tcp() {
    let mut s = Side::new(config_16_1(), false);
    // The REGISTER_RESPONSE bytes themselves.
    let t = s.h.tcp_bytes(1, host(2), &h(C_REGISTER_REQUEST));
    let got = Message::parse(&t[0].bytes).unwrap();
    let c = got.client_id().unwrap();
    assert_eq!(t[0].bytes, fixture(C1_REGISTER_RESPONSE, c).to_bytes());
    run_16_1(false);
}

#[test]
fn appendix_c_16_1_over_udp() {
    let mut s = Side::new(config_16_1(), true);
    let r = s.h.udp1(
        udp_from(2),
        &with_counter(&Message::register_request(None), 1),
    );
    let c = r.client_id().unwrap();
    assert_eq!(r, with_counter(&fixture(C1_REGISTER_RESPONSE, c), 1));
    run_16_1(true);
}

fn run_16_2(udp: bool) {
    let mut s = Side::new(config_16_2(host(2)), udp);
    let req = Message::parse(&h(C_REGISTER_REQUEST)).unwrap();
    let c = if udp {
        s.counter = 1;
        let r = s.h.udp1(udp_from(2), &with_counter(&req, 1));
        let c = r.client_id().unwrap();
        assert_eq!(strip_counter(&r), fixture(C2_REGISTER_RESPONSE, c));
        c
    } else {
        let r = s.h.tcp1(1, host(2), &req);
        let c = r.client_id().unwrap();
        assert_eq!(r.to_bytes(), fixture(C2_REGISTER_RESPONSE, c).to_bytes());
        c
    };
    let fx = |hex| fixture(hex, c);
    s.exchange(&fx(C2_ASSIGN_REQUEST), &fx(C2_ASSIGN_RESPONSE));
    s.exchange(&fx(C2_LISTEN_REQUEST), &fx(C2_LISTEN_RESPONSE));
    let listen =
        s.h.gw
            .bindings()
            .into_iter()
            .find(|b| b.kind == BindingKind::Listen);
    assert_eq!(
        listen.map(|b| b.ports),
        Some(realm_lease::PortSet::Range {
            first: 2050,
            count: 1
        })
    );
    s.exchange(&fx(C2_DEREGISTER_REQUEST), &fx(C2_DEREGISTER_RESPONSE));
    // "All of the host's bindings have been implicitly revoked."
    let freed =
        s.h.events
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
    assert_eq!(freed, 2);
}

#[test]
fn appendix_c_16_2_over_tcp() {
    run_16_2(false);
}

#[test]
fn appendix_c_16_2_over_udp() {
    run_16_2(true);
}

fn run_16_3(udp: bool) {
    let mut s = Side::new(config_16_3(), udp);
    let req = Message::parse(&h(C_REGISTER_REQUEST)).unwrap();
    let c = if udp {
        s.counter = 1;
        let r = s.h.udp1(udp_from(2), &with_counter(&req, 1));
        let c = r.client_id().unwrap();
        assert_eq!(strip_counter(&r), fixture(C3_REGISTER_RESPONSE, c));
        c
    } else {
        let r = s.h.tcp1(1, host(2), &req);
        let c = r.client_id().unwrap();
        assert_eq!(r.to_bytes(), fixture(C3_REGISTER_RESPONSE, c).to_bytes());
        c
    };
    let fx = |hex| fixture(hex, c);
    s.exchange(&fx(C3_ASSIGN_REQUEST_FOO), &fx(C3_ERROR_RESPONSE));
    s.exchange(&fx(C3_ASSIGN_REQUEST_BAR), &fx(C3_ASSIGN_RESPONSE));
    let b = &s.h.gw.bindings()[0];
    assert_eq!(b.remote.address, RemoteAddress::Fqdn("www.bar.com".into()));
    assert_eq!(b.method, realm_lease::Method::RsaIp);
    s.exchange(&fx(C3_DEREGISTER_REQUEST), &fx(C3_DEREGISTER_RESPONSE));
}

#[test]
fn appendix_c_16_3_over_tcp() {
    run_16_3(false);
}

#[test]
fn appendix_c_16_3_over_udp() {
    run_16_3(true);
}
