//! Two-party simulations: the real gateway engine and several host engines
//! exchanging RSIP over a simulated UDP network with seeded loss, duplication
//! and delay (reordering), on one fake clock (after quinn's `tests/util.rs`
//! `Pair` and smoltcp's `netsim`). At the end of each run the gateway's view
//! and every host's view must agree exactly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use realm_lease::{PortSet, Timestamp};
use realm_rsip::gateway::{
    ConnectionId, Destination, Event, Gateway, GatewayConfig, HostKey, PersistedState, PoolEntry,
    PortRange, Prefix,
};
use realm_rsip::host::{
    AuthConfig, BindingConfig, Host, HostConfig, HostEvent, RequestId, RevokeReason, Transport,
};
use realm_wire::rsip::{BindId, ClientId};

const GATEWAY: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 4555);
const PUBLIC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The gateway's wall clock at the start of every run.
const EPOCH_MS: u64 = 1_700_000_000_000;

/// splitmix64: a small seeded generator, so runs are reproducible.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// What the network does to each datagram.
#[derive(Debug, Clone, Copy)]
struct Link {
    loss: f64,
    duplication: f64,
    min_delay: Duration,
    max_delay: Duration,
}

impl Link {
    const PERFECT: Link = Link {
        loss: 0.0,
        duplication: 0.0,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
    };
    /// Loses and duplicates datagrams with these probabilities; delays each
    /// by 1 ms to `max_delay_ms`.
    fn lossy(loss: f64, duplication: f64, max_delay_ms: u64) -> Link {
        Link {
            loss,
            duplication,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(max_delay_ms),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Hop {
    ToGateway(SocketAddrV4),
    ToHost(SocketAddrV4),
    /// TCP: reliable and in order, as long as the connection lasts.
    TcpToGateway(ConnectionId, SocketAddrV4),
    TcpToHost(ConnectionId),
}

struct SimHost {
    addr: SocketAddrV4,
    host: Host,
    events: Vec<HostEvent>,
    /// The library requests `poke` made (ports and queries), each of which
    /// must end in exactly one outcome event.
    issued: Vec<RequestId>,
    /// False: the host is unplugged (its datagrams vanish both ways).
    online: bool,
    /// TCP hosts: the connection, while up.
    conn: Option<ConnectionId>,
}

/// A datagram on the wire: arrival time, sequence (FIFO among equal
/// times), where, bytes.
type InFlight = (Duration, u64, Hop, Vec<u8>);

/// A gateway, its hosts and the network between them, on one fake clock.
struct Network {
    start: Instant,
    now: Duration,
    rng: Rng,
    link: Link,
    gateway: Gateway,
    gateway_config: GatewayConfig,
    /// The gateway's store: every event folded in (for `Gateway::restore`).
    store: PersistedState,
    gateway_events: Vec<Event>,
    hosts: Vec<SimHost>,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    next_conn: u64,
}

fn gateway_config() -> GatewayConfig {
    GatewayConfig {
        pool: vec![PoolEntry {
            addresses: Prefix::new(IpAddr::V4(PUBLIC), 32),
            shared: true,
            ports: vec![PortRange::new(1024, 2047)],
            exclude: Vec::new(),
        }],
        default_binding_lease_secs: 60,
        max_binding_lease_secs: 60,
        registration_lease_secs: 120,
        time_wait_secs: 10,
        ..GatewayConfig::default()
    }
}

fn host_config(bindings: Vec<BindingConfig>) -> HostConfig {
    let mut c = HostConfig::new(SocketAddr::V4(GATEWAY));
    c.transport = Transport::Udp;
    c.bindings = bindings;
    c
}

impl Network {
    fn new(seed: u64, link: Link, hosts: usize, config: impl Fn(usize) -> HostConfig) -> Network {
        Network::with_gateway(seed, link, gateway_config(), hosts, config)
    }

    fn with_gateway(
        seed: u64,
        link: Link,
        gateway_config: GatewayConfig,
        hosts: usize,
        config: impl Fn(usize) -> HostConfig,
    ) -> Network {
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let gateway = Gateway::new(gateway_config.clone(), [seed as u8; 32]).unwrap();
        let mut net = Network {
            start,
            now: Duration::ZERO,
            rng: Rng(seed),
            link,
            gateway,
            gateway_config,
            store: PersistedState::default(),
            gateway_events: Vec::new(),
            hosts: Vec::new(),
            in_flight: BinaryHeap::new(),
            seq: 0,
            next_conn: 1,
        };
        for i in 0..hosts {
            let addr = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2 + i as u8), 40_000);
            // Replay counters above anything a previous run could have sent.
            let floor = realm_rsip::auth::next_send_counter(0, EPOCH_MS);
            let host = Host::with_replay_floor(config(i), start, floor).unwrap();
            let tcp = host.config().transport == Transport::Tcp;
            net.hosts.push(SimHost {
                addr,
                host,
                events: Vec::new(),
                issued: Vec::new(),
                online: true,
                conn: None,
            });
            if tcp {
                net.connect(i);
            }
        }
        net.flush();
        net
    }

    fn instant(&self) -> Instant {
        self.start + self.now
    }

    fn timestamp(&self) -> Timestamp {
        Timestamp::from_millis(EPOCH_MS + self.now.as_millis() as u64)
    }

    fn send(&mut self, hop: Hop, bytes: Vec<u8>) {
        let link = self.link;
        if self.rng.chance(link.loss) {
            return;
        }
        let copies = if self.rng.chance(link.duplication) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let span = (link.max_delay - link.min_delay).as_micros() as u64;
            let delay = link.min_delay + Duration::from_micros(self.rng.below(span + 1));
            self.seq += 1;
            self.in_flight.push(Reverse((
                self.now + delay,
                self.seq,
                hop.clone(),
                bytes.clone(),
            )));
        }
    }

    /// TCP: one message, 2 ms later, after everything sent before it.
    fn send_reliable(&mut self, hop: Hop, bytes: Vec<u8>) {
        self.seq += 1;
        let at = self.now + Duration::from_millis(2);
        self.in_flight.push(Reverse((at, self.seq, hop, bytes)));
    }

    /// TCP host `i` connects (a new connection).
    fn connect(&mut self, i: usize) {
        let conn = ConnectionId(self.next_conn);
        self.next_conn += 1;
        self.hosts[i].conn = Some(conn);
        let now = self.instant();
        self.hosts[i].host.handle_connected(now);
        self.flush();
    }

    /// TCP host `i`'s connection breaks: what was in flight on it is lost.
    fn disconnect(&mut self, i: usize) {
        let Some(conn) = self.hosts[i].conn.take() else {
            return;
        };
        let in_flight = std::mem::take(&mut self.in_flight);
        self.in_flight = in_flight
            .into_iter()
            .filter(|Reverse((_, _, hop, _))| {
                !matches!(hop, Hop::TcpToGateway(c, _) | Hop::TcpToHost(c) if *c == conn)
            })
            .collect();
        let (now, ts) = (self.instant(), self.timestamp());
        self.hosts[i].host.handle_disconnected(now);
        let from = self.hosts[i].addr;
        self.gateway.handle_connection_closed(ts, conn, from);
        self.flush();
    }

    /// Moves every pending output onto the network and collects events.
    fn flush(&mut self) {
        loop {
            let mut moved = false;
            while let Some(e) = self.gateway.poll_event() {
                self.store.apply(&e);
                self.gateway_events.push(e);
                moved = true;
            }
            while let Some(t) = self.gateway.poll_transmit() {
                match t.to {
                    Destination::Udp(to) => self.send(Hop::ToHost(to), t.bytes),
                    Destination::Tcp(conn) => self.send_reliable(Hop::TcpToHost(conn), t.bytes),
                }
                moved = true;
            }
            for i in 0..self.hosts.len() {
                while let Some(bytes) = self.hosts[i].host.poll_transmit() {
                    let from = self.hosts[i].addr;
                    match self.hosts[i].conn {
                        Some(conn) => self.send_reliable(Hop::TcpToGateway(conn, from), bytes),
                        None if self.hosts[i].online => self.send(Hop::ToGateway(from), bytes),
                        None => {}
                    }
                    moved = true;
                }
                while let Some(e) = self.hosts[i].host.poll_event() {
                    self.hosts[i].events.push(e);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn next_deadline(&self) -> Option<Duration> {
        let hosts = self
            .hosts
            .iter()
            .filter_map(|h| h.host.poll_timeout())
            .map(|t| t.saturating_duration_since(self.start));
        let gateway = self
            .gateway
            .poll_timeout()
            .map(|t| Duration::from_millis(t.as_millis().saturating_sub(EPOCH_MS)));
        let packet = self.in_flight.peek().map(|Reverse((t, ..))| *t);
        hosts.chain(gateway).chain(packet).min()
    }

    /// Runs until `until` (time since the start).
    fn run_until(&mut self, until: Duration) {
        while let Some(t) = self.next_deadline() {
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            self.step();
        }
        self.now = self.now.max(until);
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn step(&mut self) {
        let (now, ts) = (self.instant(), self.timestamp());
        while let Some(Reverse((t, ..))) = self.in_flight.peek() {
            if *t > self.now {
                break;
            }
            let Some(Reverse((_, _, hop, bytes))) = self.in_flight.pop() else {
                break;
            };
            // SIM_TRACE=1: every datagram as it arrives.
            if std::env::var_os("SIM_TRACE").is_some() {
                let m = realm_wire::rsip::Message::parse(&bytes);
                let desc = match &m {
                    Ok(m) => format!(
                        "{} n={:?} auth={:?} bind={:?}",
                        m.msg_type(),
                        m.message_counter(),
                        m.authentication().map(|a| a.counter % 100000),
                        m.bind_id()
                    ),
                    Err(e) => format!("{e}"),
                };
                eprintln!(
                    "{:>8.3} {:?} {}",
                    self.now.as_secs_f64() * 1000.0,
                    hop,
                    desc
                );
            }
            match hop {
                Hop::ToGateway(from) => self.gateway.handle_datagram(ts, from, &bytes),
                Hop::ToHost(to) => {
                    if let Some(h) = self.hosts.iter_mut().find(|h| h.addr == to && h.online) {
                        h.host.handle_message(now, &bytes);
                    }
                }
                Hop::TcpToGateway(conn, from) => {
                    self.gateway.handle_stream_message(ts, conn, from, &bytes)
                }
                Hop::TcpToHost(conn) => {
                    if let Some(h) = self.hosts.iter_mut().find(|h| h.conn == Some(conn)) {
                        h.host.handle_message(now, &bytes);
                    }
                }
            }
            self.flush();
        }
        for h in &mut self.hosts {
            if h.host.poll_timeout().is_some_and(|t| t <= now) {
                h.host.handle_timeout(now);
            }
        }
        if self.gateway.poll_timeout().is_some_and(|t| t <= ts) {
            self.gateway.handle_timeout(ts);
        }
        self.flush();
    }

    /// Lets every transaction finish on a perfect network.
    fn settle(&mut self) {
        self.link = Link::PERFECT;
        self.run_for(Duration::from_secs(10));
    }

    /// The gateway's bindings of `client`: bind ID -> (address, ports).
    fn gateway_view(&self, client: ClientId) -> BTreeMap<u32, (Ipv4Addr, Vec<u16>)> {
        self.gateway
            .bindings()
            .into_iter()
            .filter(|b| b.client.0 == client.0)
            .map(|b| (b.bind.0, (b.public_address, ports_of(&b.ports))))
            .collect()
    }

    /// Host `i`'s bindings: bind ID -> (address, ports).
    fn host_view(&self, i: usize) -> BTreeMap<u32, (Ipv4Addr, Vec<u16>)> {
        self.hosts[i]
            .host
            .bindings()
            .map(|b| {
                let ip = match b.public_address() {
                    Some(IpAddr::V4(a)) => a,
                    other => panic!("{other:?}"),
                };
                (b.bind_id.0, (ip, b.ports()))
            })
            .collect()
    }

    /// Every host's view equals the gateway's, and the gateway holds nothing
    /// for a client no host knows.
    #[track_caller]
    fn assert_views_agree(&self) {
        let mut known = BTreeSet::new();
        for (i, h) in self.hosts.iter().enumerate() {
            let Some(reg) = h.host.registration() else {
                continue;
            };
            known.insert(reg.client_id.0);
            assert_eq!(
                self.host_view(i),
                self.gateway_view(reg.client_id),
                "host {i} (client {}) and the gateway disagree",
                reg.client_id
            );
        }
        for b in self.gateway.bindings() {
            assert!(
                known.contains(&b.client.0),
                "the gateway holds {:?} for client {} that no host knows",
                b.bind,
                b.client
            );
        }
    }
}

fn ports_of(set: &PortSet) -> Vec<u16> {
    match set {
        PortSet::None => Vec::new(),
        PortSet::Range { first, count } => (0..*count).map(|i| first + i).collect(),
        PortSet::List(v) => v.clone(),
    }
}

fn count<T>(items: &[T], f: impl Fn(&T) -> bool) -> usize {
    items.iter().filter(|x| f(x)).count()
}

impl Network {
    fn host_grants(&self) -> usize {
        self.hosts
            .iter()
            .map(|h| count(&h.events, |e| matches!(e, HostEvent::BindingGranted(_))))
            .sum()
    }

    fn gateway_grants(&self) -> usize {
        count(&self.gateway_events, |e| {
            matches!(e, Event::BindingGranted { .. })
        })
    }

    /// Random library activity on host `i`: ask for ports, free one, query.
    fn poke(&mut self, i: usize) {
        let now = self.instant();
        let roll = self.rng.below(10);
        let h = &mut self.hosts[i].host;
        if h.registration().is_none() {
            return;
        }
        match roll {
            0..=3 => {
                let n = 1 + self.rng.below(4) as u8;
                if let Ok(id) = h.request_ports(now, n) {
                    self.hosts[i].issued.push(id);
                }
            }
            4..=6 => {
                let ids: Vec<BindId> = h.bindings().map(|b| b.bind_id).collect();
                if !ids.is_empty() {
                    let pick = ids[self.rng.below(ids.len() as u64) as usize];
                    let _ = h.free(now, pick);
                }
            }
            _ => {
                if let Ok(id) = h.query(now, IpAddr::from([10, 0, 0, 99])) {
                    self.hosts[i].issued.push(id);
                }
            }
        }
        self.flush();
    }
}

const SECRET: &str = "000102030405060708090a0b0c0d0e0f";

/// A gateway that requires signatures and knows the keys of `hosts` hosts.
fn signed_gateway_config(hosts: u32) -> GatewayConfig {
    let mut gw = gateway_config();
    gw.auth.keys = (0..hosts)
        .map(|i| HostKey {
            host: Ipv4Addr::new(10, 0, 0, 2 + i as u8),
            key_id: 100 + i,
            secret_hex: SECRET.into(),
        })
        .collect();
    gw.auth.require = true;
    gw
}

fn signed_host_config(i: usize) -> HostConfig {
    let mut c = host_config(vec![BindingConfig::rsap_ip(4)]);
    c.auth = Some(AuthConfig {
        key_id: 100 + i as u32,
        secret_hex: SECRET.into(),
    });
    c
}

/// 4 hosts each holding a configured block and making 200 random requests
/// (ports, frees, queries) over 10 minutes of leases of 60 s extended at
/// 40 s, on `link`: every transaction completes exactly once (as many
/// grants and registrations at the gateway as at the hosts) and both sides
/// agree at the end.
fn exactly_once(seed: u64, link: Link, signed: bool) {
    let mut net = if signed {
        Network::with_gateway(seed, link, signed_gateway_config(4), 4, signed_host_config)
    } else {
        Network::new(seed, link, 4, |_| {
            host_config(vec![BindingConfig::rsap_ip(4)])
        })
    };
    for _ in 0..200 {
        let pause = Duration::from_millis(1 + net.rng.below(6_000));
        net.run_for(pause);
        let i = net.rng.below(4) as usize;
        net.poke(i);
    }
    net.settle();
    net.assert_views_agree();
    if net.gateway_grants() != net.host_grants() {
        let host_ids: BTreeSet<u32> = net
            .hosts
            .iter()
            .flat_map(|h| &h.events)
            .filter_map(|e| match e {
                HostEvent::BindingGranted(b) => Some(b.bind_id.0),
                _ => None,
            })
            .collect();
        for e in &net.gateway_events {
            if let Event::BindingGranted { binding, .. } = e
                && !host_ids.contains(&binding.bind.0)
            {
                eprintln!("seed {seed}: granted, never learnt by its host: {binding:?}");
            }
        }
    }
    assert_eq!(
        net.gateway_grants(),
        net.host_grants(),
        "seed {seed}: grants"
    );
    let host_regs: usize = net
        .hosts
        .iter()
        .map(|h| count(&h.events, |e| matches!(e, HostEvent::Registered(_))))
        .sum();
    let gw_regs = count(&net.gateway_events, |e| {
        matches!(e, Event::Registered { .. })
    });
    assert_eq!(host_regs, gw_regs, "seed {seed}: registrations");
    // Progress, not only agreement (zero grants on both sides would agree):
    // every host registered, and every library request `poke` made ended in
    // exactly one outcome, most of them grants.
    assert!(host_regs >= 4, "seed {seed}: every host registered");
    let mut asked = 0;
    let mut granted_on_request = 0;
    for (i, h) in net.hosts.iter().enumerate() {
        // A host that freed everything lets its registration lapse (RFC 3103
        // 6; the host engine's doc), so "registered at the end" is not asked.
        assert!(
            h.events
                .iter()
                .any(|e| matches!(e, HostEvent::Registered(_))),
            "seed {seed}: host {i} registered"
        );
        for id in &h.issued {
            let outcomes = count(&h.events, |e| match e {
                HostEvent::BindingGranted(b) => b.request == *id,
                HostEvent::QueryAnswered { request, .. }
                | HostEvent::RequestFailed { request, .. } => request == id,
                _ => false,
            });
            assert_eq!(outcomes, 1, "seed {seed}: host {i} request {id:?} outcomes");
            granted_on_request += count(
                &h.events,
                |e| matches!(e, HostEvent::BindingGranted(b) if b.request == *id),
            );
        }
        asked += h.issued.len();
    }
    assert!(asked >= 40, "seed {seed}: {asked} library requests made");
    assert!(
        granted_on_request >= 10,
        "seed {seed}: only {granted_on_request} of {asked} requests granted ports"
    );
    assert!(
        net.gateway_grants() >= 4 + granted_on_request,
        "seed {seed}: the configured blocks and the requested ports were granted"
    );
    for h in &net.hosts {
        let stats = h.host.stats();
        assert_eq!(stats.resyncs, 0, "seed {seed}");
        assert_eq!(stats.malformed, 0, "seed {seed}");
        assert!(stats.retransmissions > 0, "seed {seed}: the loss was felt");
        if !signed {
            assert_eq!(stats.unauthenticated, 0, "seed {seed}");
        }
    }
}

/// 20% loss and 20% duplication of every datagram, 1-10 ms of delay (copies
/// of one message may overtake each other).
#[test]
fn lossy_udp_every_transaction_completes_exactly_once() {
    for seed in 1..=8 {
        exactly_once(seed, Link::lossy(0.2, 0.2, 10), false);
    }
}

/// The same, signed.
#[test]
fn signed_lossy_udp_every_transaction_completes_exactly_once() {
    for seed in 1..=8 {
        exactly_once(seed, Link::lossy(0.2, 0.2, 10), true);
    }
}

/// The same with 1-40 ms of delay: a duplicate of an answered request can
/// now reach the gateway after the host's next request.
///
/// A gateway that executed that stale copy (an older counter) as a new
/// request would let its answer replace the "last message" buffer, so the
/// host's next retransmission would be processed afresh too: a second grant
/// (seed 3 caught it). The gateway drops counters older than the last answered.
#[test]
fn lossy_udp_with_reordering_across_transactions() {
    for seed in 1..=8 {
        exactly_once(seed, Link::lossy(0.2, 0.2, 40), false);
    }
}

/// Signed signalling on the reordering network.
///
/// A stale copy of the host's own request, refused (replay counter) with
/// BAD_CLIENT_ID, must not replace the "last message" buffer, or the host's
/// next retransmission of its current request misses the buffer, is refused
/// as a replay too and the host resynchronises (seed 6 caught it).
#[test]
fn signed_lossy_udp_with_reordering() {
    for seed in 1..=8 {
        exactly_once(seed, Link::lossy(0.2, 0.2, 40), true);
    }
}

/// A host whose key the gateway does not share gets nothing, and the host
/// accepts nothing unsigned.
#[test]
fn wrong_key_registers_nothing() {
    let mut gw = gateway_config();
    gw.auth.keys = vec![HostKey {
        host: Ipv4Addr::new(10, 0, 0, 2),
        key_id: 100,
        secret_hex: "ff".repeat(16),
    }];
    gw.auth.require = true;
    let mut net = Network::with_gateway(51, Link::PERFECT, gw, 1, signed_host_config);
    net.run_for(Duration::from_secs(30));
    assert!(net.gateway.hosts().is_empty());
    assert!(net.hosts[0].host.registration().is_none());
}

/// A host that vanishes: the gateway ends its binding and then its
/// registration; the host drops them too. Back online, it resynchronises.
#[test]
fn binding_and_registration_expire_on_both_sides() {
    let mut net = Network::new(11, Link::PERFECT, 1, |_| {
        host_config(vec![BindingConfig::rsap_ip(2)])
    });
    net.run_for(Duration::from_secs(5));
    net.assert_views_agree();
    let client = net.hosts[0].host.registration().unwrap().client_id;
    assert_eq!(net.gateway_view(client).len(), 1);

    net.hosts[0].online = false;
    net.run_for(Duration::from_secs(300));
    assert!(net.gateway.bindings().is_empty(), "binding lease ended");
    assert!(net.gateway.hosts().is_empty(), "registration lease ended");
    let ev = &net.hosts[0].events;
    assert!(ev.iter().any(|e| matches!(
        e,
        HostEvent::BindingRevoked {
            reason: RevokeReason::Expired,
            ..
        }
    )));
    assert!(
        ev.iter()
            .any(|e| matches!(e, HostEvent::GatewayUnreachable { .. }))
    );
    assert_eq!(net.hosts[0].host.bindings().count(), 0);

    net.hosts[0].online = true;
    net.run_for(Duration::from_secs(30));
    net.settle();
    net.assert_views_agree();
    assert_eq!(net.hosts[0].host.bindings().count(), 1, "re-acquired");
    assert_eq!(net.gateway.bindings().len(), 1);
}

/// RFC 3103 10.2.1: a host reboots (a new engine, same private address): the
/// gateway answers ALREADY_REGISTERED, the host de-registers the old client
/// ID and registers again.
#[test]
fn host_reboot_resyncs() {
    for seed in 21..=24u64 {
        host_reboot(seed, false);
    }
}

/// The same with signed signalling: the rebooted host's replay counters
/// start from its wall clock (`Host::with_replay_floor`), above those the
/// gateway remembers from before the reboot.
#[test]
fn signed_host_reboot_resyncs() {
    for seed in 25..=28u64 {
        host_reboot(seed, true);
    }
}

fn host_reboot(seed: u64, signed: bool) {
    let mut net = if signed {
        Network::with_gateway(
            seed,
            Link::lossy(0.1, 0.1, 10),
            signed_gateway_config(2),
            2,
            signed_host_config,
        )
    } else {
        Network::new(seed, Link::lossy(0.1, 0.1, 10), 2, |_| {
            host_config(vec![BindingConfig::rsap_ip(4)])
        })
    };
    net.run_for(Duration::from_secs(90));
    let old = net.hosts[0].host.registration().unwrap().client_id;
    let config = if signed {
        signed_host_config(0)
    } else {
        host_config(vec![BindingConfig::rsap_ip(4)])
    };
    let wall_clock_ms = EPOCH_MS + net.now.as_millis() as u64;
    let floor = realm_rsip::auth::next_send_counter(0, wall_clock_ms);
    net.hosts[0].host = Host::with_replay_floor(config, net.instant(), floor).unwrap();
    net.hosts[0].events.clear();
    net.flush();
    net.run_for(Duration::from_secs(90));
    net.settle();
    net.assert_views_agree();
    let new = net.hosts[0].host.registration().unwrap().client_id;
    assert_ne!(old, new, "seed {seed}");
    assert!(
        net.gateway_view(old).is_empty(),
        "seed {seed}: old bindings freed"
    );
    assert_eq!(net.gateway.hosts().len(), 2, "seed {seed}");
    assert_eq!(net.hosts[0].host.stats().resyncs, 1, "seed {seed}");
}

/// RFC 3103 10.2.2: the gateway reboots with no state: the next extension
/// gets REGISTER_FIRST; the host de-registers its old ID, registers again and
/// re-acquires its bindings, the same ports when still free.
#[test]
fn empty_gateway_reboot_resyncs() {
    let mut net = Network::new(31, Link::lossy(0.1, 0.1, 10), 3, |_| {
        host_config(vec![BindingConfig::rsap_ip(4)])
    });
    net.run_for(Duration::from_secs(30));
    net.settle();
    let before: Vec<_> = (0..3).map(|i| net.host_view(i)).collect();
    net.gateway = Gateway::new(net.gateway_config.clone(), [99; 32]).unwrap();
    net.store = PersistedState::default();
    net.link = Link::lossy(0.1, 0.1, 10);
    net.run_for(Duration::from_secs(120));
    net.settle();
    net.assert_views_agree();
    for (i, before) in before.iter().enumerate() {
        assert_eq!(net.hosts[i].host.stats().resyncs, 1);
        let ports_before: Vec<_> = before.values().cloned().collect();
        let ports_after: Vec<_> = net.host_view(i).values().cloned().collect();
        assert_eq!(ports_before, ports_after, "host {i} kept its ports");
    }
}

/// The gateway reboots and restores its store: nothing to resynchronise.
#[test]
fn restored_gateway_reboot_keeps_everything() {
    let mut net = Network::new(41, Link::lossy(0.1, 0.1, 10), 3, |_| {
        host_config(vec![BindingConfig::rsap_ip(4)])
    });
    net.run_for(Duration::from_secs(30));
    net.settle();
    let before: Vec<_> = (0..3).map(|i| net.host_view(i)).collect();
    let (gw, _report) = Gateway::restore(
        net.gateway_config.clone(),
        [98; 32],
        &net.store,
        net.timestamp(),
    )
    .unwrap();
    net.gateway = gw;
    net.link = Link::lossy(0.1, 0.1, 10);
    net.run_for(Duration::from_secs(300));
    net.settle();
    net.assert_views_agree();
    for (i, before) in before.iter().enumerate() {
        assert_eq!(net.hosts[i].host.stats().resyncs, 0);
        assert_eq!(net.host_view(i), *before, "host {i}: same bindings");
    }
}

/// Two TCP hosts whose connections break now and then (what was in flight
/// on them is lost) and a UDP host, with random requests: each reconnection
/// resumes the outstanding request. An ASSIGN whose answer died with its
/// connection leaves a binding the host never learnt of until its lease
/// ends at the gateway (TCP RSIP has no transaction IDs): after that, both
/// sides agree.
#[test]
fn tcp_connection_drops_resume() {
    for seed in 61..=66 {
        let mut net = Network::new(seed, Link::PERFECT, 3, |i| {
            let mut c = host_config(vec![BindingConfig::rsap_ip(4)]);
            if i < 2 {
                c.transport = Transport::Tcp;
            }
            c
        });
        for _ in 0..150 {
            let pause = Duration::from_millis(1 + net.rng.below(6_000));
            net.run_for(pause);
            let i = net.rng.below(3) as usize;
            net.poke(i);
            if net.rng.chance(0.15) {
                let i = net.rng.below(2) as usize;
                let down = Duration::from_millis(net.rng.below(3_000));
                let jitter = Duration::from_micros(net.rng.below(3_000));
                net.run_for(jitter);
                net.disconnect(i);
                net.run_for(down);
                net.connect(i);
            }
        }
        net.settle();
        net.run_for(Duration::from_secs(70));
        net.assert_views_agree();
        for h in &net.hosts {
            assert_eq!(h.host.stats().malformed, 0, "seed {seed}");
        }
    }
}
