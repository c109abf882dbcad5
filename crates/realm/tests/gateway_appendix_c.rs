//! RFC 3103 Appendix C transactions 16.1, 16.2 and 16.3 against a real
//! `realm gateway` process, over TCP and over UDP, with configurations
//! matching each example. Client IDs are random (RFC 3103 9.3.3), so the
//! fixtures' Client ID is replaced by the one the gateway assigned; all else
//! is compared byte for byte (UDP: with the Message Counter stripped after
//! checking it is echoed). Fixtures are the engine test's
//! (`realm-rsip/tests/gateway_appendix_c.rs`: BNF order, RFC slips fixed).
//! The gateway's forced FREE in 16.1 is `realm ctl free 2`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_util;

use gateway_util::*;
use realm_wire::rsip::appendix_c::*;
use realm_wire::rsip::{ClientId, Message, Parameter, View};

const C1_ASSIGN_RESPONSE_2: &str = "01 09 0033  04 0004 00000001  05 0004 00000002  01 0005 019570f09c  02 0003 0804d6  01 0001 01  02 0001 01  03 0004 00000708  06 0001 01";

/// The fixture with its Client ID replaced by `c`.
fn fx(hex_str: &str, c: ClientId) -> Message {
    let m = Message::parse(&hex(hex_str)).unwrap();
    let params = m
        .params()
        .iter()
        .map(|p| match p {
            Parameter::ClientId(_) => Parameter::ClientId(c),
            other => other.clone(),
        })
        .collect();
    Message::new(m.msg_type(), params).unwrap()
}

fn with_counter(m: &Message, n: u32) -> Message {
    m.with_param(Parameter::MessageCounter(n)).unwrap()
}

fn strip_counter(m: &Message) -> Message {
    let params = m
        .params()
        .iter()
        .filter(|p| !matches!(p, Parameter::MessageCounter(_)))
        .cloned()
        .collect();
    Message::new(m.msg_type(), params).unwrap()
}

/// One host, over TCP or UDP.
enum Side {
    Tcp(TcpHost),
    Udp(UdpHost, u32),
}

impl Side {
    fn new(g: &GatewayProc, udp: bool) -> Side {
        let from = g.net.addr(2);
        if udp {
            Side::Udp(UdpHost::bind(from, g.tcp_addr()), 0)
        } else {
            Side::Tcp(TcpHost::connect(from, g.tcp_addr()))
        }
    }

    /// Sends `req` (UDP: with the next counter) and returns the answer
    /// (UDP: checked to echo the counter, then stripped of it).
    fn ask(&mut self, req: &Message) -> Message {
        match self {
            Side::Tcp(t) => t.exchange(req),
            Side::Udp(u, counter) => {
                *counter += 1;
                let got = u.exchange(&with_counter(req, *counter));
                assert_eq!(got.message_counter(), Some(*counter), "{got:?}");
                strip_counter(&got)
            }
        }
    }

    /// An asynchronous message: counter 0 over UDP, none over TCP.
    fn expect_async(&mut self, expected: &Message) {
        let got = match self {
            Side::Tcp(t) => t.recv(),
            Side::Udp(u, _) => {
                let m = u.recv();
                assert_eq!(m.message_counter(), Some(0));
                strip_counter(&m)
            }
        };
        assert_eq!(got.to_bytes(), expected.to_bytes(), "{:?}", got.view());
    }

    /// REGISTER; checks the answer against `fixture` and returns the client ID.
    fn register(&mut self, fixture: &str) -> ClientId {
        let r = self.ask(&Message::parse(&hex("01 02 0004")).unwrap());
        let c = match r.view() {
            View::RegisterResponse { client_id, .. } => client_id,
            other => panic!("{other:?}"),
        };
        assert_eq!(r.to_bytes(), fx(fixture, c).to_bytes());
        c
    }

    fn exchange(&mut self, req: &Message, expected: &Message) {
        let got = self.ask(req);
        assert_eq!(got.to_bytes(), expected.to_bytes(), "{:?}", got.view());
    }
}

fn run_16_1(udp: bool) {
    let g = GatewayProc::start(CONFIG_16_1);
    let mut s = Side::new(&g, udp);
    let c = s.register(C1_REGISTER_RESPONSE);
    s.exchange(&fx(C1_ASSIGN_REQUEST_1, c), &fx(C1_ASSIGN_RESPONSE_1, c));
    s.exchange(&fx(C1_QUERY_REQUEST, c), &fx(C1_QUERY_RESPONSE, c));
    s.exchange(&fx(C1_ASSIGN_REQUEST_2, c), &fx(C1_ASSIGN_RESPONSE_2, c));
    s.exchange(&fx(C1_FREE_REQUEST, c), &fx(C1_FREE_RESPONSE_1, c));
    s.exchange(&fx(C1_EXTEND_REQUEST, c), &fx(C1_EXTEND_RESPONSE, c));
    // "The gateway forces the host to free the resources of bind ID 2."
    assert_eq!(g.ctl(&["free", "2"])["freed"], 2);
    s.expect_async(&fx(C1_FREE_RESPONSE_2, c));
    s.exchange(
        &fx(C1_DEREGISTER_REQUEST, c),
        &fx(C1_DEREGISTER_RESPONSE, c),
    );
    assert_eq!(g.ctl(&["hosts"]), serde_json::json!([]));
    assert_eq!(g.ctl(&["bindings"]), serde_json::json!([]));
    // Every grant, extension and free is in the allocation log.
    let log = g.alloc_log();
    assert_eq!(log.matches("event=grant").count(), 2, "{log}");
    assert_eq!(log.matches("event=extend").count(), 1, "{log}");
    assert_eq!(log.matches("event=free").count(), 2, "{log}");
}

#[test]
fn appendix_c_16_1_over_tcp() {
    run_16_1(false);
}

#[test]
fn appendix_c_16_1_over_udp() {
    run_16_1(true);
}

fn run_16_2(udp: bool) {
    // The admin override names the host (LISTEN under remote micro policy).
    let net = Net::new();
    let g = GatewayProc::start_on(net, &Sections::default(), &config_16_2(net.addr(2)));
    let mut s = Side::new(&g, udp);
    let c = s.register(C2_REGISTER_RESPONSE);
    s.exchange(&fx(C2_ASSIGN_REQUEST, c), &fx(C2_ASSIGN_RESPONSE, c));
    s.exchange(&fx(C2_LISTEN_REQUEST, c), &fx(C2_LISTEN_RESPONSE, c));
    let bindings = g.ctl(&["bindings"]);
    assert_eq!(bindings.as_array().unwrap().len(), 2);
    assert!(
        bindings
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["kind"] == "listen")
    );
    s.exchange(
        &fx(C2_DEREGISTER_REQUEST, c),
        &fx(C2_DEREGISTER_RESPONSE, c),
    );
    // "All of the host's bindings have been implicitly revoked."
    assert_eq!(g.ctl(&["bindings"]), serde_json::json!([]));
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
    let g = GatewayProc::start(CONFIG_16_3);
    let mut s = Side::new(&g, udp);
    let c = s.register(C3_REGISTER_RESPONSE);
    s.exchange(&fx(C3_ASSIGN_REQUEST_FOO, c), &fx(C3_ERROR_RESPONSE, c));
    s.exchange(&fx(C3_ASSIGN_REQUEST_BAR, c), &fx(C3_ASSIGN_RESPONSE, c));
    let b = &g.ctl(&["bindings"])[0];
    assert_eq!(b["method"], "rsa-ip");
    assert_eq!(b["public_address"], "149.112.240.17");
    s.exchange(
        &fx(C3_DEREGISTER_REQUEST, c),
        &fx(C3_DEREGISTER_RESPONSE, c),
    );
    let m = g.metrics();
    assert_eq!(
        metric_in(
            &m,
            r#"realm_gateway_errors_total{code="314",name="REMOTE_ADDR_UNALLOWED"}"#
        ),
        Some(1.0),
        "{m}"
    );
}

#[test]
fn appendix_c_16_3_over_tcp() {
    run_16_3(false);
}

#[test]
fn appendix_c_16_3_over_udp() {
    run_16_3(true);
}
