//! Property test: random sequences of host requests (several UDP and TCP
//! hosts, valid and invalid messages, garbage, duplicates, closed connections,
//! random time advances) never panic the engine, never grant one resource to
//! two hosts, and every request gets exactly one answer (an ERROR_RESPONSE
//! none).

// Test helpers outside #[test] functions may panic too (clippy.toml allows it in tests only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_util;

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use gateway_util::*;
use proptest::collection::vec;
use proptest::prelude::*;
use realm_lease::PortSet;
use realm_rsip::gateway::*;
use realm_wire::rsip::*;
use serde_json::json;

#[derive(Debug, Clone)]
enum Op {
    Register,
    Deregister {
        other: bool,
    },
    Rsap {
        ports: u8,
        specific: Option<u16>,
        lease: Option<u32>,
    },
    RsaIp {
        specific: bool,
    },
    Rsipsec {
        spis: u16,
        dont_need: bool,
        specific: Option<u32>,
    },
    Listen {
        port: u16,
    },
    Extend {
        pick: usize,
        lease: Option<u32>,
    },
    Free {
        pick: usize,
    },
    Query,
    Garbage(Vec<u8>),
    ErrorResponse,
    Duplicate,
    NoCounter,
    Close,
    Advance(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Register),
        1 => any::<bool>().prop_map(|other| Op::Deregister { other }),
        4 => (1u8..6, proptest::option::of(1020u16..1060), proptest::option::of(0u32..500))
            .prop_map(|(ports, specific, lease)| Op::Rsap { ports, specific, lease }),
        1 => any::<bool>().prop_map(|specific| Op::RsaIp { specific }),
        2 => (1u16..4, any::<bool>(), proptest::option::of(256u32..270))
            .prop_map(|(spis, dont_need, specific)| Op::Rsipsec { spis, dont_need, specific }),
        1 => (1020u16..1060).prop_map(|port| Op::Listen { port }),
        2 => (any::<usize>(), proptest::option::of(0u32..900)).prop_map(|(pick, lease)| Op::Extend { pick, lease }),
        2 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        1 => Just(Op::Query),
        1 => vec(any::<u8>(), 0..24).prop_map(|mut v| {
            if v.len() >= 4 { v[0] = 1; let l = v.len() as u16; v[2..4].copy_from_slice(&l.to_be_bytes()); }
            Op::Garbage(v)
        }),
        1 => Just(Op::ErrorResponse),
        1 => Just(Op::Duplicate),
        1 => Just(Op::NoCounter),
        1 => Just(Op::Close),
        2 => (0u32..400_000).prop_map(Op::Advance),
    ]
}

/// Which host acts: 0-2 over UDP, 3-4 over TCP.
const HOSTS: u8 = 5;

struct Sim {
    h: Harness,
    ids: BTreeMap<u8, ClientId>,
    counters: BTreeMap<u8, u32>,
    conns: BTreeMap<u8, u64>,
    last: BTreeMap<u8, Vec<u8>>,
    next_conn: u64,
}

impl Sim {
    fn from(&self, who: u8) -> SocketAddrV4 {
        udp_from(2 + who)
    }

    fn is_udp(who: u8) -> bool {
        who < 3
    }

    fn client(&self, who: u8) -> ClientId {
        self.ids.get(&who).copied().unwrap_or(ClientId(0xdead_beef))
    }

    fn counter(&mut self, who: u8) -> Option<u32> {
        if !Self::is_udp(who) {
            return None;
        }
        let c = self.counters.entry(who).or_insert(0);
        *c = realm_rsip::next_message_counter(*c);
        Some(*c)
    }

    /// Sends bytes; returns the transmits.
    fn send(&mut self, who: u8, bytes: &[u8]) -> Vec<Transmit> {
        // Expiry first, so the request's own answer stands alone.
        self.h.gw.handle_timeout(self.h.now);
        self.h.drain();
        self.last.insert(who, bytes.to_vec());
        if Self::is_udp(who) {
            let from = self.from(who);
            self.h.udp_bytes(from, bytes)
        } else {
            let conn = *self.conns.entry(who).or_insert(self.next_conn);
            self.next_conn += 1;
            self.h.tcp_bytes(conn, host(2 + who), bytes)
        }
    }

    fn learn(&mut self, who: u8, answer: &Message) {
        if let View::RegisterResponse { client_id, .. } = answer.view() {
            self.ids.insert(who, client_id);
        }
        if let View::ErrorResponse {
            error: ErrorCode::AlreadyRegistered,
            client_id: Some(c),
            ..
        } = answer.view()
        {
            self.ids.insert(who, c);
        }
    }

    fn binds(&self, pick: usize) -> BindId {
        let all = self.h.gw.bindings();
        if all.is_empty() {
            return BindId(pick as u32);
        }
        BindId(all[pick % all.len()].bind.0)
    }
}

fn check_invariants(gw: &Gateway) -> Result<(), TestCaseError> {
    let bindings = gw.bindings();
    let hosts: HashSet<u32> = gw.hosts().iter().map(|h| h.record.client.0).collect();
    let mut ports = HashSet::new();
    let mut spis = HashSet::new();
    let mut whole = HashSet::new();
    let mut shared_addrs = HashSet::new();
    for b in &bindings {
        prop_assert!(
            hosts.contains(&b.client.0),
            "binding of an unregistered host"
        );
        match b.method {
            realm_lease::Method::RsaIp => {
                prop_assert!(whole.insert(b.public_address), "address leased twice")
            }
            _ => {
                shared_addrs.insert(b.public_address);
            }
        }
        let list: Vec<u16> = match &b.ports {
            PortSet::None => vec![],
            PortSet::Range { first, count } => (0..*count).map(|i| first + i).collect(),
            PortSet::List(l) => l.clone(),
        };
        for p in list {
            prop_assert!(p != 4555 && p != 0, "excluded port leased");
            prop_assert!(ports.insert((b.public_address, p)), "port {p} leased twice");
        }
        let spi_list: Vec<u32> = match &b.spis {
            realm_lease::SpiSet::None => vec![],
            realm_lease::SpiSet::Range { first, count } => {
                (0..*count).map(|i| first.0 + i).collect()
            }
            realm_lease::SpiSet::List(l) => l.iter().map(|s| s.0).collect(),
        };
        for s in spi_list {
            prop_assert!(spis.insert((b.public_address, s)), "SPI {s} leased twice");
        }
    }
    prop_assert!(
        whole.is_disjoint(&shared_addrs),
        "whole address also shared"
    );
    Ok(())
}

fn run(ops: Vec<(u8, Op)>) -> Result<(), TestCaseError> {
    let config = cfg(json!({
        "pool": [
            { "addresses": "192.0.2.1", "ports": ["1024-1063"] },
            { "addresses": "192.0.2.8/31", "shared": false, "ports": ["1024-1031"] },
        ],
        "registration_lease_secs": 300,
        "max_binding_lease_secs": 600,
        "spi_range": [256, 271],
        "time_wait_secs": 120,
        "tunnel_types": ["ip-ip", "gre"],
        "quota": { "ports": 12, "spis": 6, "bindings": 6 },
    }));
    let mut sim = Sim {
        h: Harness::new(config),
        ids: BTreeMap::new(),
        counters: BTreeMap::new(),
        conns: BTreeMap::new(),
        last: BTreeMap::new(),
        next_conn: 1,
    };
    for (who, op) in ops {
        let who = who % HOSTS;
        let c = sim.client(who);
        let flow = |ports: Ports| Flow {
            local_address: Address::DONT_CARE_V4,
            local_ports: ports,
            remote_address: Address::DONT_CARE_V4,
            remote_ports: Ports::DONT_CARE_ONE,
        };
        let msg: Option<Message> = match &op {
            Op::Register => Some(Message::register_request(sim.counter(who))),
            Op::Deregister { other } => {
                let target = if *other {
                    sim.client((who + 1) % HOSTS)
                } else {
                    c
                };
                Some(Message::deregister_request(target, sim.counter(who)))
            }
            Op::Rsap {
                ports,
                specific,
                lease,
            } => {
                let p = match specific {
                    Some(first) => Ports::Range {
                        first: *first,
                        count: *ports,
                    },
                    None => Ports::DontCare { count: *ports },
                };
                let o = RequestOptions {
                    message_counter: sim.counter(who),
                    lease_time: *lease,
                    tunnel_type: None,
                };
                Some(Message::assign_request_rsap_ip(c, flow(p), o).unwrap())
            }
            Op::RsaIp { specific } => {
                let a = if *specific {
                    Address::Ipv4(Ipv4Addr::new(192, 0, 2, 9))
                } else {
                    Address::DONT_CARE_V4
                };
                let o = RequestOptions {
                    message_counter: sim.counter(who),
                    ..Default::default()
                };
                Some(
                    Message::assign_request_rsa_ip(
                        c,
                        a,
                        Address::DONT_CARE_V4,
                        Ports::DONT_CARE_ONE,
                        o,
                    )
                    .unwrap(),
                )
            }
            Op::Rsipsec {
                spis,
                dont_need,
                specific,
            } => {
                let ports = if *dont_need {
                    Ports::DontNeed
                } else {
                    Ports::DONT_CARE_ONE
                };
                let s = match specific {
                    Some(first) => Spis::Range {
                        first: Spi(*first),
                        count: *spis,
                    },
                    None => Spis::DontCare { count: *spis },
                };
                let o = RequestOptions {
                    message_counter: sim.counter(who),
                    ..Default::default()
                };
                Some(Message::assign_request_rsipsec(c, flow(ports), s, o).unwrap())
            }
            Op::Listen { port } => Some(
                Message::listen_request(
                    c,
                    flow(Ports::single(*port)),
                    sim.counter(who),
                    None,
                    &[TunnelType::Gre],
                )
                .unwrap(),
            ),
            Op::Extend { pick, lease } => Some(Message::extend_request(
                c,
                sim.binds(*pick),
                *lease,
                sim.counter(who),
            )),
            Op::Free { pick } => Some(Message::free_request(c, sim.binds(*pick), sim.counter(who))),
            Op::Query => Some(
                Message::query_request(
                    c,
                    sim.counter(who),
                    &[QueryTuple::address(Address::Ipv4(Ipv4Addr::new(
                        10, 0, 0, 1,
                    )))],
                )
                .unwrap(),
            ),
            Op::NoCounter => Some(Message::deregister_request(c, None)),
            Op::ErrorResponse => Some(Message::error_response(
                ErrorCode::UnknownError,
                sim.counter(who),
                Some(c),
                None,
            )),
            Op::Garbage(_) | Op::Duplicate | Op::Close | Op::Advance(_) => None,
        };
        match (&op, msg) {
            (Op::ErrorResponse, Some(m)) => {
                let t = sim.send(who, &m.to_bytes());
                prop_assert!(t.is_empty(), "an ERROR_RESPONSE was answered");
            }
            (_, Some(m)) => {
                let t = sim.send(who, &m.to_bytes());
                prop_assert_eq!(t.len(), 1, "one answer to {:?}", m);
                let answer = Message::parse(&t[0].bytes).unwrap();
                prop_assert_eq!(answer.message_counter(), m.message_counter());
                sim.learn(who, &answer);
            }
            (Op::Garbage(bytes), None) => {
                let t = sim.send(who, bytes);
                let is_error_response = bytes.get(1) == Some(&1);
                prop_assert!(
                    t.len() == 1 || (t.is_empty() && is_error_response),
                    "garbage: {} answers",
                    t.len()
                );
            }
            (Op::Duplicate, None) => {
                if let Some(last) = sim.last.get(&who).cloned() {
                    let t = sim.send(who, &last);
                    prop_assert!(t.len() <= 1);
                }
            }
            (Op::Close, None) => {
                if let Some(conn) = sim.conns.remove(&who) {
                    let now = sim.h.now;
                    sim.h.gw.handle_connection_closed(
                        now,
                        ConnectionId(conn),
                        tcp_source(host(2 + who)),
                    );
                    sim.h.drain();
                }
            }
            (Op::Advance(ms), None) => {
                sim.h.advance(Duration::from_millis(u64::from(*ms)));
            }
            _ => {}
        }
        check_invariants(&sim.h.gw)?;
        // The event fold stays equal to the engine's own state.
        let mut folded = sim.h.state.clone();
        folded.prune(sim.h.now);
        let mut own = sim.h.gw.persisted_state();
        own.prune(sim.h.now);
        folded.hosts.sort_by_key(|h| h.client);
        folded.bindings.sort_by_key(|b| b.bind);
        let mut fq: Vec<_> = folded
            .quarantine
            .iter()
            .map(|q| (q.bind, q.until))
            .collect();
        let mut oq: Vec<_> = own.quarantine.iter().map(|q| (q.bind, q.until)).collect();
        fq.sort();
        oq.sort();
        prop_assert_eq!(&folded.hosts, &own.hosts);
        prop_assert_eq!(&folded.bindings, &own.bindings);
        prop_assert_eq!(fq, oq);
    }
    if std::env::var("GW_PROP_DEBUG").is_ok() {
        eprintln!(
            "grants {:?} errors {:?}",
            sim.h.gw.counters().grants,
            sim.h.gw.counters().errors
        );
    }
    // A restore from the fold rebuilds the same state.
    let (gw, report) =
        Gateway::restore(sim.h.gw.config().clone(), SEED, &sim.h.state, sim.h.now).unwrap();
    prop_assert!(report.dropped.is_empty(), "{:?}", report);
    prop_assert_eq!(gw.bindings(), sim.h.gw.bindings());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_request_sequences_keep_the_invariants(ops in vec((0u8..HOSTS, op()), 1..120)) {
        run(ops)?;
    }
}
