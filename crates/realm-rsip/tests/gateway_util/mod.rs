//! A fake-clock harness for the gateway engine: drives it with bytes, drains
//! events (checking the durability contract) and transmits, and folds the
//! events into a `PersistedState` as a store would.
#![allow(
    dead_code,
    unreachable_pub,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use realm_lease::Timestamp;
use realm_rsip::gateway::*;
use realm_wire::rsip::*;

pub const T0: Timestamp = Timestamp::from_secs(1_700_000_000);
pub const SEED: [u8; 32] = [7; 32];

pub fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("hex")
}

pub fn host(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, last)
}

pub fn udp_from(last: u8) -> SocketAddrV4 {
    SocketAddrV4::new(host(last), 40000 + u16::from(last))
}

/// The source of the harness's TCP connections from `host`.
pub fn tcp_source(host: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(host, 33000)
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn cfg(toml_like: serde_json::Value) -> GatewayConfig {
    serde_json::from_value(toml_like).expect("config")
}

/// A one-address SOHO config: 192.0.2.1, ports 1024-65535 minus the defaults.
pub fn soho() -> GatewayConfig {
    cfg(serde_json::json!({ "pool": [{ "addresses": "192.0.2.1" }] }))
}

/// The message `m` with every Client ID replaced by `c`.
pub fn with_client(m: &Message, c: ClientId) -> Message {
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

/// A fixture (hex) with its Client ID replaced.
pub fn fixture(hex: &str, c: ClientId) -> Message {
    with_client(&Message::parse(&h(hex)).unwrap(), c)
}

/// `m` with a Message Counter appended.
pub fn with_counter(m: &Message, n: u32) -> Message {
    m.with_param(Parameter::MessageCounter(n)).unwrap()
}

/// `m` without its Message Counter (for comparing UDP answers with fixtures).
pub fn strip_counter(m: &Message) -> Message {
    let params = m
        .params()
        .iter()
        .filter(|p| !matches!(p, Parameter::MessageCounter(_)))
        .cloned()
        .collect();
    Message::new(m.msg_type(), params).unwrap()
}

pub struct Harness {
    pub gw: Gateway,
    pub now: Timestamp,
    pub events: Vec<Event>,
    pub state: PersistedState,
}

impl Harness {
    pub fn new(config: GatewayConfig) -> Harness {
        Harness::with_gateway(Gateway::new(config, SEED).unwrap(), T0)
    }

    pub fn with_gateway(gw: Gateway, now: Timestamp) -> Harness {
        let mut h = Harness {
            gw,
            now,
            events: Vec::new(),
            state: PersistedState::default(),
        };
        h.drain();
        h
    }

    /// Drains events (into `events` and `state`), then transmits.
    pub fn drain(&mut self) -> Vec<Transmit> {
        while let Some(e) = self.gw.poll_event() {
            self.state.apply(&e);
            self.events.push(e);
        }
        let mut out = Vec::new();
        while let Some(t) = self.gw.poll_transmit() {
            out.push(t);
        }
        out
    }

    pub fn udp_bytes(&mut self, from: SocketAddrV4, bytes: &[u8]) -> Vec<Transmit> {
        self.gw.handle_datagram(self.now, from, bytes);
        self.drain()
    }

    pub fn tcp_bytes(&mut self, conn: u64, from: Ipv4Addr, bytes: &[u8]) -> Vec<Transmit> {
        let src = tcp_source(from);
        self.gw
            .handle_stream_message(self.now, ConnectionId(conn), src, bytes);
        self.drain()
    }

    pub fn udp(&mut self, from: SocketAddrV4, m: &Message) -> Vec<Transmit> {
        self.udp_bytes(from, &m.to_bytes())
    }

    pub fn tcp(&mut self, conn: u64, from: Ipv4Addr, m: &Message) -> Vec<Transmit> {
        self.tcp_bytes(conn, from, &m.to_bytes())
    }

    /// Exactly one answer, parsed.
    pub fn udp1(&mut self, from: SocketAddrV4, m: &Message) -> Message {
        let t = self.udp(from, m);
        assert_eq!(t.len(), 1, "one answer: {t:?}");
        assert_eq!(t[0].to, Destination::Udp(from));
        Message::parse(&t[0].bytes).unwrap()
    }

    pub fn tcp1(&mut self, conn: u64, from: Ipv4Addr, m: &Message) -> Message {
        let t = self.tcp(conn, from, m);
        assert_eq!(t.len(), 1, "one answer: {t:?}");
        assert_eq!(t[0].to, Destination::Tcp(ConnectionId(conn)));
        Message::parse(&t[0].bytes).unwrap()
    }

    /// Advances the clock and serves timers.
    pub fn advance(&mut self, d: Duration) -> Vec<Transmit> {
        self.now = self.now + d;
        self.gw.handle_timeout(self.now);
        self.drain()
    }

    pub fn set_time(&mut self, t: Timestamp) -> Vec<Transmit> {
        self.now = t;
        self.gw.handle_timeout(self.now);
        self.drain()
    }

    /// Registers over UDP from `from` with counter 1; returns the client ID.
    pub fn register_udp(&mut self, from: SocketAddrV4) -> ClientId {
        let r = self.udp1(from, &Message::register_request(Some(1)));
        match r.view() {
            View::RegisterResponse { client_id, .. } => client_id,
            other => panic!("not registered: {other:?}"),
        }
    }

    pub fn register_tcp(&mut self, conn: u64, from: Ipv4Addr) -> ClientId {
        let r = self.tcp1(conn, from, &Message::register_request(None));
        match r.view() {
            View::RegisterResponse { client_id, .. } => client_id,
            other => panic!("not registered: {other:?}"),
        }
    }
}

/// The error code of an ERROR_RESPONSE.
pub fn error_of(m: &Message) -> ErrorCode {
    match m.view() {
        View::ErrorResponse { error, .. } => error,
        other => panic!("not an error: {other:?}"),
    }
}

pub fn any_flow(ports: Ports) -> Flow {
    Flow {
        local_address: Address::DONT_CARE_V4,
        local_ports: ports,
        remote_address: Address::DONT_CARE_V4,
        remote_ports: Ports::DONT_CARE_ONE,
    }
}

pub fn rsap(c: ClientId, ports: Ports, counter: Option<u32>) -> Message {
    Message::assign_request_rsap_ip(
        c,
        any_flow(ports),
        RequestOptions {
            message_counter: counter,
            ..RequestOptions::default()
        },
    )
    .unwrap()
}
