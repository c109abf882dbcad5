//! A scripted gateway for the host engine's tests: the test delivers the exact
//! gateway messages (built with realm-wire's constructors or taken as literal
//! RFC bytes) and checks, byte for byte, what the host sends, on a fake clock.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use realm_rsip::host::{Host, HostConfig, HostEvent, Transport};
use realm_wire::rsip::{
    Address, BindId, ClientId, Flow, FlowPolicy, Grant, LocalFlowPolicy, Message, Ports,
    RemoteFlowPolicy, TunnelType,
};

pub const GW: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    realm_wire::rsip::PORT,
);
pub const PUBLIC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// Hex with spaces, as the realm-wire fixtures write it.
pub fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("fixture is hex")
}

pub fn config(transport: Transport) -> HostConfig {
    let mut c = HostConfig::new(GW);
    c.transport = transport;
    c
}

pub fn no_policy() -> FlowPolicy {
    FlowPolicy {
        local: LocalFlowPolicy::Macro,
        remote: RemoteFlowPolicy::None,
    }
}

pub fn register_response(client: u32, lease: u32, counter: Option<u32>) -> Message {
    Message::register_response(ClientId(client), lease, no_policy(), counter, &[], &[]).unwrap()
}

pub fn grant(lease_time: u32, counter: Option<u32>) -> Grant {
    Grant {
        lease_time,
        tunnel_type: TunnelType::IpIp,
        tunnel_endpoint: None,
        message_counter: counter,
    }
}

/// An RSAP-IP request for `count` "don't care" ports with no flow policy.
pub fn any_ports(count: u8) -> Flow {
    Flow {
        local_address: Address::DONT_CARE_V4,
        local_ports: Ports::DontCare { count },
        remote_address: Address::DONT_CARE_V4,
        remote_ports: Ports::DONT_CARE_ONE,
    }
}

/// The gateway's RSAP-IP grant of `first..first+count` on [`PUBLIC`].
pub fn ports_grant(
    client: u32,
    bind: u32,
    first: u16,
    count: u8,
    lease: u32,
    counter: Option<u32>,
) -> Message {
    let flow = Flow {
        local_address: Address::Ipv4(PUBLIC),
        local_ports: Ports::Range { first, count },
        remote_address: Address::DONT_CARE_V4,
        remote_ports: Ports::DONT_CARE_ONE,
    };
    Message::assign_response_rsap_ip(ClientId(client), BindId(bind), flow, grant(lease, counter))
        .unwrap()
}

/// A host on a fake clock with a scripted gateway.
pub struct Script {
    pub host: Host,
    pub start: Instant,
    pub now: Instant,
}

impl Script {
    pub fn new(config: HostConfig) -> Script {
        Script::with(|start| Host::new(config, start).expect("valid config"))
    }

    /// A script around the host `make` builds at the fake clock's origin.
    pub fn with(make: impl FnOnce(Instant) -> Host) -> Script {
        // The one clock read of the tests: an origin for the fake clock.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        Script {
            host: make(start),
            start,
            now: start,
        }
    }

    /// Time since the script started.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Moves the clock to `start + at`, firing every timer due on the way at
    /// its own deadline.
    pub fn advance_to(&mut self, at: Duration) {
        let target = self.start + at;
        while let Some(due) = self.host.poll_timeout() {
            if due > target {
                break;
            }
            self.now = self.now.max(due);
            self.host.handle_timeout(self.now);
        }
        self.now = self.now.max(target);
    }

    pub fn advance(&mut self, by: Duration) {
        let at = self.elapsed() + by;
        self.advance_to(at);
    }

    /// Fires the next timer, wherever it is; returns its deadline.
    pub fn next_timer(&mut self) -> Option<Duration> {
        let due = self.host.poll_timeout()?;
        self.now = self.now.max(due);
        self.host.handle_timeout(self.now);
        Some(due - self.start)
    }

    /// Everything the host sent since the last call, as bytes.
    pub fn sent_bytes(&mut self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.host.poll_transmit()).collect()
    }

    /// Everything the host sent since the last call, parsed.
    pub fn sent(&mut self) -> Vec<Message> {
        self.sent_bytes()
            .iter()
            .map(|b| Message::parse(b).expect("the host sends valid messages"))
            .collect()
    }

    /// Checks the host sent exactly `expected` (byte for byte) and nothing else.
    #[track_caller]
    pub fn expect_sent(&mut self, expected: &Message) {
        let sent = self.sent_bytes();
        let want = expected.to_bytes();
        assert_eq!(
            sent,
            vec![want],
            "host sent {:?}, expected {:?}",
            sent.iter().map(|b| Message::parse(b)).collect::<Vec<_>>(),
            expected
        );
    }

    /// Checks the host sent exactly these bytes and nothing else.
    #[track_caller]
    pub fn expect_sent_hex(&mut self, hex: &str) {
        let sent = self.sent_bytes();
        assert_eq!(
            sent,
            vec![h(hex)],
            "host sent {:?}",
            sent.iter().map(|b| Message::parse(b)).collect::<Vec<_>>()
        );
    }

    #[track_caller]
    pub fn expect_silent(&mut self) {
        let sent = self.sent();
        assert!(sent.is_empty(), "host sent {sent:?}");
    }

    pub fn deliver(&mut self, msg: &Message) {
        self.host.handle_message(self.now, &msg.to_bytes());
    }

    pub fn deliver_bytes(&mut self, bytes: &[u8]) {
        self.host.handle_message(self.now, bytes);
    }

    pub fn events(&mut self) -> Vec<HostEvent> {
        std::iter::from_fn(|| self.host.poll_event()).collect()
    }
}
