//! Property tests of the IKEv1 engine as a responder under hostile input: programs of
//! arbitrary datagrams (raw bytes and ISAKMP-shaped ones, on 500 and 4500, from several
//! sources), mutated copies of a real initiator's messages (a byte set, a bit flipped, a byte
//! inserted, a truncation, the responder's cookie spliced in), time steps and `initiate` calls
//! never panic; the responder keeps at most `max_half_open` exchanges before the cookie echo
//! (RFC 2408 section 2.5.3), no more SAs in all than that plus the datagrams that echoed a
//! cookie, and sends only to addresses it heard from; and a valid handshake between two
//! engines still completes after arbitrary garbage reached both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::SeededCrypto;
use proptest::prelude::*;
use realm_ike::config::IkeConfig;
use realm_ike::engine::{EngineConfig, Event, Ike, NON_ESP_MARKER, Transmit};

const I: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const R: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Where garbage comes from: the initiator's address, and three strangers.
const SOURCES: [Ipv4Addr; 4] = [
    I,
    Ipv4Addr::new(198, 51, 100, 7),
    Ipv4Addr::new(203, 0, 113, 9),
    Ipv4Addr::new(192, 0, 2, 3),
];
const MAX_HALF_OPEN: usize = 4;

fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn config(me: Ipv4Addr, remote: &str, local_ts: &str, remote_ts: &str, extra: &str) -> IkeConfig {
    let text = format!(
        r#"
[connections.site]
version = 1
local_addrs = "{me}"
remote_addrs = "{remote}"
proposals = "aes128-sha256-ecp256"
dpd_delay = "10s"
dpd_timeout = "30s"
{extra}
local.auth = "psk"
remote.auth = "psk"

[connections.site.children.net]
local_ts = "{local_ts}"
remote_ts = "{remote_ts}"
esp_proposals = "aes128gcm16"
rekey_time = "60s"
life_time = "70s"
rand_time = "5s"

[secrets.ike-site]
secret = "a shared secret"
"#
    );
    IkeConfig::parse(&text, "test.toml").unwrap()
}

#[allow(clippy::disallowed_methods)] // the test's arbitrary epoch
fn epoch() -> Instant {
    Instant::now()
}

/// One step of a hostile program.
#[derive(Debug, Clone)]
enum Op {
    /// `bytes` to the responder from `SOURCES[source]`, on 4500 (after the marker when
    /// `marker`) or 500.
    Datagram {
        source: usize,
        nat_t: bool,
        marker: bool,
        bytes: Vec<u8>,
    },
    /// The same to the initiator, from the responder's address.
    ToInitiator { nat_t: bool, bytes: Vec<u8> },
    /// A copy of one of the initiator's messages, changed by `mutation`, to the responder
    /// from `SOURCES[source]`.
    Mutated {
        pick: usize,
        source: usize,
        mutation: Mutation,
    },
    /// Carry up to this many queued datagrams each way.
    Pump(usize),
    /// Time moves on this many seconds (timers handled).
    Advance(u64),
    /// The initiator negotiates its child.
    Initiate,
}

#[derive(Debug, Clone, Copy)]
enum Mutation {
    None,
    Set(u8, u8),
    Flip(u8, u8),
    Insert(u8, u8),
    Truncate(u8),
    /// CKY-R replaced by the responder's latest.
    EchoCookie,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::None),
        (any::<u8>(), any::<u8>()).prop_map(|(a, v)| Mutation::Set(a, v)),
        (any::<u8>(), 0u8..8).prop_map(|(a, b)| Mutation::Flip(a, b)),
        (any::<u8>(), any::<u8>()).prop_map(|(a, v)| Mutation::Insert(a, v)),
        any::<u8>().prop_map(Mutation::Truncate),
        Just(Mutation::EchoCookie),
    ]
}

/// An ISAKMP header (RFC 2408 section 3.1) with arbitrary cookies, an IKEv1 exchange type,
/// flags and a Length that matches, then arbitrary payload bytes: past the first length
/// checks.
fn isakmp_shaped() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 8]>(),
        prop_oneof![Just([0u8; 8]), any::<[u8; 8]>()],
        prop_oneof![Just(0u8), 1u8..14],
        prop_oneof![Just(2u8), Just(5), Just(32), any::<u8>()],
        0u8..8,
        prop_oneof![Just(0u32), any::<u32>()],
        proptest::collection::vec(any::<u8>(), 0..120),
    )
        .prop_map(|(ci, cr, next, exchange, flags, id, body)| {
            let mut m = Vec::with_capacity(28 + body.len());
            m.extend_from_slice(&ci);
            m.extend_from_slice(&cr);
            m.extend_from_slice(&[next, 0x10, exchange, flags]);
            m.extend_from_slice(&id.to_be_bytes());
            m.extend_from_slice(&u32::try_from(28 + body.len()).unwrap().to_be_bytes());
            m.extend_from_slice(&body);
            m
        })
}

fn garbage_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80),
        isakmp_shaped(),
    ]
}

/// Garbage only: datagrams and mutations, no pumping of the real exchange.
fn garbage_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SOURCES.len(), any::<bool>(), any::<bool>(), garbage_bytes()).prop_map(
            |(source, nat_t, marker, bytes)| Op::Datagram { source, nat_t, marker, bytes }
        ),
        1 => (any::<bool>(), garbage_bytes())
            .prop_map(|(nat_t, bytes)| Op::ToInitiator { nat_t, bytes }),
        3 => (any::<usize>(), 0..SOURCES.len(), mutation())
            .prop_map(|(pick, source, mutation)| Op::Mutated { pick, source, mutation }),
    ]
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => garbage_op(),
        3 => (1usize..8).prop_map(Op::Pump),
        1 => prop_oneof![0u64..5, 0u64..100].prop_map(Op::Advance),
        1 => Just(Op::Initiate),
    ]
}

struct Net {
    now: Instant,
    i: Ike<SeededCrypto>,
    r: Ike<SeededCrypto>,
    to_r: VecDeque<Transmit>,
    to_i: VecDeque<Transmit>,
    /// Everything the initiator sent, to replay.
    sent_by_i: Vec<Transmit>,
    heard_by_r: HashSet<SocketAddr>,
    /// Datagrams given to the responder whose CKY-R was not zero.
    with_cky_r: usize,
    /// CKY-R of the responder's latest message.
    cky_r: [u8; 8],
    events_i: Vec<Event>,
    events_r: Vec<Event>,
}

fn ike_message(local: SocketAddr, bytes: &[u8]) -> &[u8] {
    if local.port() == 4500 {
        bytes.strip_prefix(&NON_ESP_MARKER).unwrap_or(&[])
    } else {
        bytes
    }
}

fn mutate(bytes: &mut Vec<u8>, m: Mutation, cky_r: [u8; 8]) {
    let at = |a: u8, len: usize| usize::from(a) * len / 256;
    match m {
        Mutation::None => {}
        Mutation::Set(a, v) if !bytes.is_empty() => {
            let i = at(a, bytes.len());
            bytes[i] = v;
        }
        Mutation::Flip(a, b) if !bytes.is_empty() => {
            let i = at(a, bytes.len());
            bytes[i] ^= 1 << b;
        }
        Mutation::Insert(a, v) => {
            let i = at(a, bytes.len());
            bytes.insert(i, v);
        }
        Mutation::Truncate(a) => bytes.truncate(at(a, bytes.len())),
        Mutation::EchoCookie => {
            let off = if bytes.starts_with(&NON_ESP_MARKER) {
                4
            } else {
                0
            };
            if let Some(c) = bytes.get_mut(off + 8..off + 16) {
                c.copy_from_slice(&cky_r);
            }
        }
        Mutation::Set(..) | Mutation::Flip(..) => {}
    }
}

impl Net {
    fn new(seed: u64) -> Net {
        Net::with(seed, "")
    }

    /// `extra`: lines added to the initiator's connection.
    fn with(seed: u64, extra: &str) -> Net {
        let now = epoch();
        let mut er = EngineConfig::new(R);
        er.max_half_open = MAX_HALF_OPEN;
        let i = Ike::new(
            SeededCrypto::new(seed),
            EngineConfig::new(I),
            config(I, &R.to_string(), "10.1.0.0/16", "10.2.0.0/16", extra),
            now,
            std::time::UNIX_EPOCH,
        )
        .unwrap();
        // The responder takes anyone: strangers reach its exchanges.
        let r = Ike::new(
            SeededCrypto::new(seed.wrapping_add(0x9e37_79b9)),
            er,
            config(R, "%any", "10.2.0.0/16", "10.1.0.0/16", ""),
            now,
            std::time::UNIX_EPOCH,
        )
        .unwrap();
        Net {
            now,
            i,
            r,
            to_r: VecDeque::new(),
            to_i: VecDeque::new(),
            sent_by_i: Vec::new(),
            heard_by_r: HashSet::new(),
            with_cky_r: 0,
            cky_r: [0; 8],
            events_i: Vec::new(),
            events_r: Vec::new(),
        }
    }

    fn deliver_to_responder(&mut self, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        let m = ike_message(local, bytes);
        if m.len() >= 16 && m[8..16] != [0; 8] {
            self.with_cky_r += 1;
        }
        self.heard_by_r.insert(remote);
        self.r.handle_datagram(self.now, local, remote, bytes);
    }

    /// Drains both engines and checks the responder's bounds.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        self.events_i
            .extend(std::iter::from_fn(|| self.i.poll_event()));
        self.events_r
            .extend(std::iter::from_fn(|| self.r.poll_event()));
        while let Some(t) = self.i.poll_transmit() {
            prop_assert_eq!(t.remote.ip(), IpAddr::V4(R));
            if self.sent_by_i.len() < 64 {
                self.sent_by_i.push(t.clone());
            }
            self.to_r.push_back(t);
        }
        while let Some(t) = self.r.poll_transmit() {
            prop_assert_eq!(t.local.ip(), IpAddr::V4(R));
            prop_assert!(matches!(t.local.port(), 500 | 4500));
            prop_assert!(
                self.heard_by_r.contains(&t.remote),
                "sent to {} which never sent anything",
                t.remote
            );
            let m = ike_message(t.local, &t.bytes);
            prop_assert!(m.len() >= 28, "a transmit of {} bytes: {:?}", m.len(), t);
            self.cky_r.copy_from_slice(&m[8..16]);
            // What goes to the strangers is lost.
            if t.remote.ip() == IpAddr::V4(I) {
                self.to_i.push_back(t);
            }
        }
        let views = self.r.ike_sas(self.now);
        let half_open = views
            .iter()
            .filter(|v| !v.initiator && v.state == "MM_SA_R")
            .count();
        prop_assert!(half_open <= MAX_HALF_OPEN, "{} half-open", half_open);
        prop_assert!(
            views.len() <= MAX_HALF_OPEN + self.with_cky_r,
            "{} SAs after {} cookie echoes",
            views.len(),
            self.with_cky_r
        );
        Ok(())
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Datagram {
                source,
                nat_t,
                marker,
                bytes,
            } => {
                let port = if *nat_t { 4500 } else { 500 };
                let mut b = Vec::new();
                if *nat_t && *marker {
                    b.extend_from_slice(&NON_ESP_MARKER);
                }
                b.extend_from_slice(bytes);
                self.deliver_to_responder(
                    SocketAddr::new(IpAddr::V4(R), port),
                    SocketAddr::new(IpAddr::V4(SOURCES[*source]), port),
                    &b,
                );
            }
            Op::ToInitiator { nat_t, bytes } => {
                let port = if *nat_t { 4500 } else { 500 };
                self.i.handle_datagram(
                    self.now,
                    SocketAddr::new(IpAddr::V4(I), port),
                    SocketAddr::new(IpAddr::V4(R), port),
                    bytes,
                );
            }
            Op::Mutated {
                pick,
                source,
                mutation,
            } => {
                if !self.sent_by_i.is_empty() {
                    let t = self.sent_by_i[pick % self.sent_by_i.len()].clone();
                    let mut b = t.bytes;
                    mutate(&mut b, *mutation, self.cky_r);
                    let from = SocketAddr::new(IpAddr::V4(SOURCES[*source]), t.local.port());
                    self.deliver_to_responder(t.remote, from, &b);
                }
            }
            Op::Pump(n) => {
                for _ in 0..*n {
                    let (a, b) = (self.to_r.pop_front(), self.to_i.pop_front());
                    if a.is_none() && b.is_none() {
                        break;
                    }
                    if let Some(t) = a {
                        self.deliver_to_responder(t.remote, t.local, &t.bytes);
                    }
                    if let Some(t) = b {
                        self.i
                            .handle_datagram(self.now, t.remote, t.local, &t.bytes);
                    }
                    self.drain()?;
                }
            }
            Op::Advance(secs) => {
                self.now += Duration::from_secs(*secs);
                for ike in [&mut self.i, &mut self.r] {
                    if ike.poll_timeout().is_some_and(|t| t <= self.now) {
                        ike.handle_timeout(self.now);
                        if let Some(t) = ike.poll_timeout() {
                            prop_assert!(t > self.now, "a handled timeout is due again");
                        }
                    }
                }
            }
            Op::Initiate => {
                let _ = self.i.initiate(self.now, "net");
            }
        }
        self.drain()
    }

    /// Carries everything queued until both engines go quiet.
    fn pump_all(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..100 {
            if self.to_r.is_empty() && self.to_i.is_empty() {
                return Ok(());
            }
            self.run(&Op::Pump(64))?;
        }
        Err(TestCaseError::fail("the engines never went quiet"))
    }
}

fn child_ups(events: &[Event]) -> Vec<(u32, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaUp(up) => Some((up.pair.inbound.spi, up.pair.outbound.spi)),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(proptest_config(256))]

    /// A hostile program (garbage, mutated real messages, the real exchange carried in
    /// pieces, time) never panics and keeps the responder within its bounds.
    #[test]
    fn hostile_programs_never_panic_and_stay_bounded(
        seed in any::<u64>(),
        ops in proptest::collection::vec(any_op(), 1..40),
    ) {
        let mut net = Net::new(seed);
        // Something real to mutate from the start.
        net.run(&Op::Initiate)?;
        for op in &ops {
            net.run(op)?;
        }
        // Everything expires in the end: no SA outlives its lifetime.
        net.run(&Op::Advance(200))?;
        net.run(&Op::Advance(200))?;
        let views = net.r.ike_sas(net.now);
        prop_assert!(
            views.iter().all(|v| v.state == "ESTABLISHED"),
            "{:?}",
            views.iter().map(|v| &v.state).collect::<Vec<_>>()
        );
    }

    /// Garbage sent to both engines first (including mutated copies of an earlier
    /// initiator's messages) does not stop a real handshake: Main Mode and Quick Mode then
    /// complete with matching child SAs.
    #[test]
    fn a_handshake_completes_after_garbage(
        seed in any::<u64>(),
        garbage in proptest::collection::vec(garbage_op(), 0..40),
        advance in 0u64..20,
    ) {
        // A decoy initiator (another seed) whose messages are the ones mutated.
        let mut decoy = Net::new(seed.wrapping_add(0x1234_5678));
        decoy.run(&Op::Initiate)?;
        decoy.run(&Op::Pump(2))?;
        let mut net = Net::new(seed);
        net.sent_by_i = decoy.sent_by_i.clone();
        net.cky_r = decoy.cky_r;
        for op in &garbage {
            net.run(op)?;
        }
        net.run(&Op::Advance(advance))?;
        net.sent_by_i.clear();
        net.run(&Op::Initiate)?;
        net.pump_all()?;
        let (ui, ur) = (child_ups(&net.events_i), child_ups(&net.events_r));
        prop_assert_eq!(ui.len(), 1, "initiator: {:?}", net.events_i);
        prop_assert_eq!(ur.len(), 1, "responder: {:?}", net.events_r);
        prop_assert_eq!(ui[0], (ur[0].1, ur[0].0), "the two halves of one pair");
    }
}

/// Found by these tests: a duplicate of Main Mode message 3 arriving after the exchange moved
/// to the NAT-T port is answered from 4500, so the stored message 4 goes out after the
/// non-ESP marker there (RFC 3948 section 2.2), not as it was first sent on 500.
#[test]
fn a_stored_answer_sent_again_after_the_float_carries_the_marker() {
    let mut net = Net::with(7, "encap = true");
    net.run(&Op::Initiate).unwrap();
    net.pump_all().unwrap();
    assert_eq!(child_ups(&net.events_r).len(), 1, "{:?}", net.events_r);
    // The initiator's messages: 1 and 3 on 500, then 5 and Quick Mode on 4500.
    let m3 = net.sent_by_i[1].clone();
    assert_eq!(m3.remote.port(), 500);
    assert_eq!(m3.bytes[16], 4, "message 3 starts with KE");
    assert_eq!(net.r.ike_sas(net.now)[0].local.port(), 4500);
    let before = net.r.counters().duplicates_answered;
    net.r
        .handle_datagram(net.now, m3.remote, m3.local, &m3.bytes);
    let again = net.r.poll_transmit().expect("the stored message 4 again");
    assert_eq!(net.r.counters().duplicates_answered, before + 1);
    assert_eq!(again.local.port(), 4500);
    assert!(
        again.bytes.starts_with(&NON_ESP_MARKER),
        "{:02x?}",
        &again.bytes[..8]
    );
    assert_eq!(again.bytes[4 + 16], 4, "message 4 starts with KE");
}
