//! The RSIP gateway engine (RFC 3103 s9-10) fed arbitrary and mutated
//! messages over both transports, with time advancing.
//!
//! The input is a program of operations: an arbitrary datagram or stream
//! message from one of four hosts; an RFC 3103 Appendix C request, its Client
//! ID replaced by one the gateway handed out and one fuzz-chosen byte changed,
//! over either transport; time moving on (with `handle_timeout` when due); a
//! connection closing. After each, events and transmits are drained.
//! Asserted: the engine never panics; every transmit parses as an RSIP
//! message, goes over UDP only to an address that sent a datagram and over
//! TCP only to a connection that sent a message; `poll_timeout` is never in
//! the past after `handle_timeout`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realm_lease::Timestamp;
use realm_rsip::gateway::{
    ConnectionId, Destination, Gateway, GatewayConfig, PoolEntry, PortRange, Prefix,
};
use realm_wire::rsip::{ClientId, Message, Parameter};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// RFC 3103 Appendix C requests (crates/realm-wire/src/rsip/appendix_c.rs).
const REQUESTS: [&str; 8] = [
    "010200 04",
    "010800 22 04000400000001 01000101 02000104 01000101 02000101 03000400000e10",
    "010800 28 04000400000001 010005019570f09c 0200030804d6 01000101 02000101 03000400000708",
    "010c00 12 04000400000001 05000400000001",
    "010400 0b 04000400000001",
    "010800 2c 04000400000005 01000101 02000101 0100050126c44906 020003010015 03000400000258 06000101",
    "011000 27 04000400000005 010005019570f09c 020003010802 0100050126c44906 020003010014",
    "010600 2d 04000400000003 01000101 01000c047777772e666f6f2e636f6d 02000101 03000400000e10 06000101",
];

/// Operations per input.
const MAX_OPS: usize = 64;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn from(b: u8) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(10, 0, 0, 1 + (b & 3)),
        40000 + u16::from(b & 4),
    )
}

fn config() -> GatewayConfig {
    GatewayConfig {
        pool: vec![PoolEntry {
            addresses: Prefix::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 32),
            shared: true,
            ports: vec![PortRange::new(1024, u16::MAX)],
            exclude: Vec::new(),
        }],
        ..GatewayConfig::default()
    }
}

/// The request `bytes` with its Client ID replaced by `client` (when both
/// parse), so it names a registration the gateway knows.
fn with_client(bytes: &[u8], client: Option<ClientId>) -> Vec<u8> {
    let (Some(c), Ok(m)) = (client, Message::parse(bytes)) else {
        return bytes.to_vec();
    };
    let params = m
        .params()
        .iter()
        .map(|p| match p {
            Parameter::ClientId(_) => Parameter::ClientId(c),
            other => other.clone(),
        })
        .collect();
    Message::new(m.msg_type(), params)
        .ok()
        .map(|m| m.to_bytes())
        .unwrap_or_else(|| bytes.to_vec())
}

struct Harness {
    gw: Gateway,
    now: Timestamp,
    udp_peers: HashSet<SocketAddrV4>,
    conns: HashSet<ConnectionId>,
    clients: Vec<ClientId>,
}

impl Harness {
    fn drain(&mut self) {
        while self.gw.poll_event().is_some() {}
        while let Some(t) = self.gw.poll_transmit() {
            let m = Message::parse(&t.bytes).expect("every transmit is an RSIP message");
            match t.to {
                Destination::Udp(a) => assert!(self.udp_peers.contains(&a), "UDP only to a sender"),
                Destination::Tcp(c) => assert!(self.conns.contains(&c), "TCP only to a connection"),
            }
            for p in m.params() {
                if let Parameter::ClientId(c) = p
                    && !self.clients.contains(c)
                    && self.clients.len() < 8
                {
                    self.clients.push(*c);
                }
            }
        }
    }

    fn send(&mut self, who: u8, tcp: bool, bytes: &[u8]) {
        let src = from(who);
        if tcp {
            let conn = ConnectionId(u64::from(who & 7));
            self.conns.insert(conn);
            self.gw.handle_stream_message(self.now, conn, src, bytes);
        } else {
            self.udp_peers.insert(src);
            self.gw.handle_datagram(self.now, src, bytes);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(gw) = Gateway::new(config(), [7; 32]) else {
        return;
    };
    let mut h = Harness {
        gw,
        now: Timestamp::from_secs(1_700_000_000),
        udp_peers: HashSet::new(),
        conns: HashSet::new(),
        clients: Vec::new(),
    };
    let mut rest = data;
    let mut ops = 0;
    while let Some((&op, tail)) = rest.split_first() {
        // A program longer than this reaches nothing new; it only slows
        // every execution down.
        ops += 1;
        if ops > MAX_OPS {
            break;
        }
        rest = tail;
        let Some((&arg, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        let tcp = op & 0x10 != 0;
        match op & 0x0f {
            0..=3 => {
                // Arbitrary bytes: a length, then that many.
                let n = usize::from(arg).min(rest.len());
                let (bytes, tail) = rest.split_at(n);
                rest = tail;
                h.send(op >> 5, tcp, bytes);
            }
            4..=9 => {
                // A known request, pointed at a registration and mutated.
                let Some((edit, tail)) = rest.split_first_chunk::<2>() else {
                    break;
                };
                rest = tail;
                let template = hex(REQUESTS[usize::from(arg) % REQUESTS.len()]);
                let client = h.clients.get(usize::from(op >> 5) % 8).copied();
                let mut bytes = with_client(&template, client);
                if edit[0] != 0 && !bytes.is_empty() {
                    let at = usize::from(edit[0]) % bytes.len();
                    bytes[at] = edit[1];
                }
                h.send(arg >> 5, tcp, &bytes);
            }
            10..=12 => {
                h.now = h
                    .now
                    .saturating_add(Duration::from_secs(u64::from(arg) * 7));
                if h.gw.poll_timeout().is_some_and(|t| t <= h.now) {
                    h.gw.handle_timeout(h.now);
                    if let Some(t) = h.gw.poll_timeout() {
                        assert!(t > h.now, "a handled timeout is not due again at once");
                    }
                }
            }
            _ => {
                let conn = ConnectionId(u64::from(arg & 7));
                h.gw.handle_connection_closed(h.now, conn, from(arg));
            }
        }
        h.drain();
    }
});
