//! The lease manager against a simple model, over random sequences of
//! register, assign (every kind, "don't care" and specific), extend, free,
//! de-register, advance-time and crash-restore.
//!
//! The model keeps plain lists of bindings and quarantine entries and answers
//! every question by brute force. After each operation it checks that:
//! - the manager's answer is the one the RFC rules (as documented on
//!   `AssignError`) give: a refusal exactly when the model finds no way to
//!   grant, with the same error (the same payload too for a specific address);
//!   a grant only of allowed resources held by nobody and not in quarantine;
//! - no (address, port), (address, SPI) or whole address has two holders, and
//!   every lookup names the model's holder;
//! - quotas hold, lease times are clamped, R = max(R, Bi);
//! - expiry happens exactly at lease end (never a millisecond earlier);
//! - a manager restored from another's records is the same state.
// Test helpers outside `#[test]` functions unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use proptest::prelude::*;
use realm_lease::{
    AddressConfig, AddressRequest, AssignError, BindId, BindingError, BindingRecord, ClientId,
    Config, Grant, Holder, HostUsage, LeaseManager, Method, PoolUsage, PortRequest, PortSet,
    QuarantineRecord, RegisterError, RegistrationRecord, Shortage, Spi, SpiRequest, SpiSet,
    Timestamp,
};

const POOL: [Ipv4Addr; 3] = [
    Ipv4Addr::new(203, 0, 113, 1),
    Ipv4Addr::new(203, 0, 113, 2),
    Ipv4Addr::new(203, 0, 113, 3),
];
const FOREIGN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 9);
const CLIENTS: [ClientId; 4] = [
    ClientId(0xa1),
    ClientId(0xb2),
    ClientId(0xc3),
    ClientId(0xd4),
];
const SPI_LO: u32 = 256;
const SPI_HI: u32 = 267;
const HOLD: Duration = Duration::from_secs(3);
/// Ports and SPIs the lookups are checked on: a margin around what is leasable.
const PORTS: std::ops::RangeInclusive<u16> = 997..=1013;
const SPIS: std::ops::RangeInclusive<u32> = 250..=270;

fn config() -> Config {
    let mut c = Config::new(vec![
        // Shared: 10 leasable ports.
        AddressConfig {
            address: POOL[0],
            whole_lease: false,
            ports: vec![1000..=1011],
            excluded: vec![1004..=1005],
        },
        // Whole or 8 ports.
        AddressConfig {
            address: POOL[1],
            whole_lease: true,
            ports: vec![1000..=1007],
            excluded: vec![],
        },
        // Whole only.
        AddressConfig {
            address: POOL[2],
            whole_lease: true,
            ports: vec![],
            excluded: vec![],
        },
    ]);
    c.spis = SPI_LO..=SPI_HI;
    c.quota.ports = 5;
    c.quota.addresses = 1;
    c.quota.spis = 4;
    c.quota.bindings = 4;
    c.max_hosts = 3;
    c.registration_lease = Duration::from_secs(15);
    c.default_lease = Duration::from_secs(4);
    c.max_lease = Duration::from_secs(8);
    c.time_wait = HOLD;
    c
}

// ---- operations -----------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Addr {
    Any,
    Pool(usize),
    Foreign,
}

#[derive(Clone, Debug)]
enum Op {
    Register(usize),
    Deregister(usize),
    RsaIp(usize, Addr, Option<u64>),
    RsapIp(usize, Addr, PortRequest, Option<u64>),
    Rsipsec(usize, Addr, PortRequest, SpiRequest, Option<u64>),
    /// Client, which binding (own or anyone's, by index), lease.
    Extend(usize, bool, usize, Option<u64>),
    Free(usize, bool, usize),
    Advance(u64),
    /// To one millisecond before the next timeout, then to it.
    ToNextTimeout,
    Restore,
}

fn addr() -> impl Strategy<Value = Addr> {
    prop_oneof![4 => Just(Addr::Any), 4 => (0..3usize).prop_map(Addr::Pool), 1 => Just(Addr::Foreign)]
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![12 => 999..=1008u16, 2 => 998..=1012u16, 1 => Just(0u16), 1 => Just(u16::MAX)]
}

fn ports() -> impl Strategy<Value = PortRequest> {
    prop_oneof![
        4 => (0..=6u16).prop_map(|count| PortRequest::DontCare { count }),
        3 => (port(), 0..=4u16).prop_map(|(first, count)| PortRequest::Range { first, count }),
        3 => proptest::collection::vec(port(), 0..=4).prop_map(PortRequest::List),
        1 => Just(PortRequest::DontNeed),
    ]
}

fn spi() -> impl Strategy<Value = Spi> {
    prop_oneof![12 => (255..=262u32).prop_map(Spi), 2 => (250..=270u32).prop_map(Spi), 1 => Just(Spi(u32::MAX))]
}

fn spis() -> impl Strategy<Value = SpiRequest> {
    prop_oneof![
        4 => (0..=5u16).prop_map(|count| SpiRequest::DontCare { count }),
        3 => (spi(), 0..=3u16).prop_map(|(first, count)| SpiRequest::Range { first, count }),
        3 => proptest::collection::vec(spi(), 0..=3).prop_map(SpiRequest::List),
    ]
}

fn lease() -> impl Strategy<Value = Option<u64>> {
    proptest::option::of(0..=12u64)
}

fn op() -> impl Strategy<Value = Op> {
    // Mostly a registered host (resolved when the op runs), sometimes any.
    let c = prop_oneof![4 => (0..8usize).prop_map(|i| i + 100), 1 => 0..CLIENTS.len()];
    prop_oneof![
        5 => (0..CLIENTS.len()).prop_map(Op::Register),
        1 => c.clone().prop_map(Op::Deregister),
        3 => (c.clone(), addr(), lease()).prop_map(|(c, a, l)| Op::RsaIp(c, a, l)),
        6 => (c.clone(), addr(), ports(), lease()).prop_map(|(c, a, p, l)| Op::RsapIp(c, a, p, l)),
        5 => (c.clone(), addr(), ports(), spis(), lease())
            .prop_map(|(c, a, p, s, l)| Op::Rsipsec(c, a, p, s, l)),
        3 => (c.clone(), any::<bool>(), 0..8usize, lease()).prop_map(|(c, o, i, l)| Op::Extend(c, o, i, l)),
        3 => (c, any::<bool>(), 0..8usize).prop_map(|(c, o, i)| Op::Free(c, o, i)),
        4 => prop_oneof![Just(0u64), Just(500), Just(1000), Just(2000), Just(3000), Just(4500)]
            .prop_map(Op::Advance),
        2 => Just(Op::ToNextTimeout),
        1 => Just(Op::Restore),
    ]
}

// ---- the model --------------------------------------------------------------------------

struct Model {
    config: Config,
    /// Each address's leasable ports, from the config by brute force.
    allowed: Vec<Vec<u16>>,
    now: Timestamp,
    hosts: BTreeMap<ClientId, Timestamp>,
    bindings: BTreeMap<BindId, BindingRecord>,
    held: Vec<QuarantineRecord>,
}

/// What the rules say about an ASSIGN.
enum Expect {
    /// This exact error.
    Err(AssignError),
    /// An error with this code (a "don't care" address: which candidate's
    /// port or SPI is named is the manager's choice).
    Code(u16),
    /// A grant on one of these addresses.
    Ok(Vec<usize>),
}

fn lease_of(config: &Config, l: Option<u64>) -> Duration {
    l.map(Duration::from_secs)
        .unwrap_or(config.default_lease)
        .clamp(Duration::from_secs(1), config.max_lease)
}

impl Model {
    fn new() -> Model {
        let config = config();
        let allowed = config
            .pool
            .iter()
            .map(|c| {
                (1..=u16::MAX)
                    .filter(|p| {
                        c.ports.iter().any(|r| r.contains(p))
                            && !c.excluded.iter().any(|r| r.contains(p))
                    })
                    .collect()
            })
            .collect();
        Model {
            config,
            allowed,
            now: Timestamp::from_secs(1_000),
            hosts: BTreeMap::new(),
            bindings: BTreeMap::new(),
            held: Vec::new(),
        }
    }

    fn idx(&self, a: Ipv4Addr) -> Option<usize> {
        POOL.iter().position(|&p| p == a)
    }

    fn port_allowed(&self, a: usize, p: u16) -> bool {
        self.allowed[a].contains(&p)
    }

    fn leasable(&self, a: usize) -> usize {
        self.allowed[a].len()
    }

    fn live_held(&self) -> impl Iterator<Item = &QuarantineRecord> {
        self.held.iter().filter(|h| h.until > self.now)
    }

    fn on(&self, a: usize) -> impl Iterator<Item = &BindingRecord> {
        self.bindings.values().filter(move |b| b.address == POOL[a])
    }

    fn whole_leased(&self, a: usize) -> Option<&BindingRecord> {
        self.on(a).find(|b| b.method == Method::RsaIp)
    }

    fn whole_held(&self, a: usize) -> bool {
        self.live_held()
            .any(|h| h.address == POOL[a] && h.method == Method::RsaIp)
    }

    fn whole_eligible(&self, a: usize) -> bool {
        self.config.pool[a].whole_lease
            && self.on(a).next().is_none()
            && !self.live_held().any(|h| h.address == POOL[a])
    }

    fn shared_eligible(&self, a: usize, needs_ports: bool) -> bool {
        self.whole_leased(a).is_none()
            && !self.whole_held(a)
            && (!needs_ports || self.leasable(a) > 0)
    }

    fn port_taken(&self, a: usize, p: u16) -> bool {
        self.on(a).any(|b| b.ports.contains(p))
            || self
                .live_held()
                .any(|h| h.address == POOL[a] && h.ports.contains(p))
    }

    fn port_free(&self, a: usize, p: u16) -> bool {
        self.port_allowed(a, p) && !self.port_taken(a, p)
    }

    fn free_ports(&self, a: usize) -> Vec<u16> {
        self.allowed[a]
            .iter()
            .copied()
            .filter(|&p| !self.port_taken(a, p))
            .collect()
    }

    fn has_port_block(&self, a: usize, n: u32) -> bool {
        let free: BTreeSet<u16> = self.free_ports(a).into_iter().collect();
        free.iter().any(|&p| {
            (0..n).all(|k| u16::try_from(u32::from(p) + k).is_ok_and(|q| free.contains(&q)))
        })
    }

    fn spi_taken(&self, a: usize, s: Spi) -> bool {
        self.on(a).any(|b| b.spis.contains(s))
            || self
                .live_held()
                .any(|h| h.address == POOL[a] && h.spis.contains(s))
    }

    fn free_spis(&self, a: usize) -> Vec<u32> {
        (SPI_LO..=SPI_HI)
            .filter(|&s| !self.spi_taken(a, Spi(s)))
            .collect()
    }

    fn has_spi_block(&self, a: usize, n: u32) -> bool {
        let free: BTreeSet<u32> = self.free_spis(a).into_iter().collect();
        free.iter()
            .any(|&s| (0..n).all(|k| free.contains(&(s + k))))
    }

    fn usage(&self, c: ClientId) -> HostUsage {
        let mut u = HostUsage::default();
        for b in self.bindings.values().filter(|b| b.client == c) {
            u.bindings += 1;
            u.ports += b.ports.len();
            u.spis += b.spis.len();
            u.addresses += u32::from(b.method == Method::RsaIp);
        }
        u
    }

    /// The rules of `AssignError`, by brute force.
    fn expect_assign(
        &self,
        c: ClientId,
        method: Method,
        address: Option<Option<usize>>,
        ports: &PortRequest,
        spis: Option<&SpiRequest>,
    ) -> Expect {
        use AssignError as E;
        if !self.hosts.contains_key(&c) {
            return Expect::Err(E::RegisterFirst);
        }
        // Shape.
        let port_list: Vec<u16> = match ports {
            PortRequest::DontNeed if method == Method::RsapIp => return Expect::Code(205),
            PortRequest::DontCare { count: 0 } | PortRequest::Range { count: 0, .. } => {
                return Expect::Code(205);
            }
            PortRequest::Range { first, count } => {
                if u32::from(*first) + u32::from(*count) - 1 > 65535 {
                    return Expect::Code(205);
                }
                (0..*count).map(|k| first + k).collect()
            }
            PortRequest::List(l) => {
                let set: BTreeSet<u16> = l.iter().copied().collect();
                if l.is_empty() || set.len() != l.len() {
                    return Expect::Code(205);
                }
                l.clone()
            }
            _ => vec![],
        };
        let spi_list: Vec<Spi> = match spis {
            Some(SpiRequest::DontCare { count: 0 }) | Some(SpiRequest::Range { count: 0, .. }) => {
                return Expect::Code(205);
            }
            Some(SpiRequest::Range { first, count }) => {
                if u64::from(first.0) + u64::from(*count) - 1 > u64::from(u32::MAX) {
                    return Expect::Code(205);
                }
                (0..u32::from(*count)).map(|k| Spi(first.0 + k)).collect()
            }
            Some(SpiRequest::List(l)) => {
                let set: BTreeSet<Spi> = l.iter().copied().collect();
                if l.is_empty() || set.len() != l.len() {
                    return Expect::Code(205);
                }
                l.clone()
            }
            _ => vec![],
        };
        let nports = match ports {
            PortRequest::DontCare { count } => u32::from(*count),
            _ => port_list.len() as u32,
        };
        let nspis = match spis {
            Some(SpiRequest::DontCare { count }) => u32::from(*count),
            _ => spi_list.len() as u32,
        };
        // Quotas.
        let (q, u) = (self.config.quota, self.usage(c));
        if u.bindings >= q.bindings {
            return Expect::Err(if method == Method::RsaIp {
                E::LocalAddrUnavailable {
                    reason: Shortage::Quota,
                }
            } else {
                E::LocalAddrPortUnavailable {
                    reason: Shortage::Quota,
                }
            });
        }
        if method == Method::RsaIp && u.addresses >= q.addresses {
            return Expect::Err(E::LocalAddrUnavailable {
                reason: Shortage::Quota,
            });
        }
        if u.ports + nports > q.ports {
            return Expect::Err(E::LocalAddrPortUnavailable {
                reason: Shortage::Quota,
            });
        }
        if u.spis + nspis > q.spis {
            return Expect::Err(E::IpsecSpiUnavailable {
                reason: Shortage::Quota,
            });
        }
        let all: Vec<usize> = (0..POOL.len()).collect();
        if method == Method::RsaIp {
            return match address {
                Some(None) => Expect::Err(E::LocalAddrUnallowed),
                Some(Some(a)) if !self.config.pool[a].whole_lease => {
                    Expect::Err(E::LocalAddrUnallowed)
                }
                Some(Some(a)) if self.whole_eligible(a) => Expect::Ok(vec![a]),
                Some(Some(_)) if all.iter().any(|&a| self.whole_eligible(a)) => {
                    Expect::Err(E::LocalAddrInUse)
                }
                Some(Some(_)) => Expect::Err(E::LocalAddrUnavailable {
                    reason: Shortage::Exhausted,
                }),
                None => {
                    let ok: Vec<usize> = all
                        .into_iter()
                        .filter(|&a| self.whole_eligible(a))
                        .collect();
                    if ok.is_empty() {
                        Expect::Err(E::LocalAddrUnavailable {
                            reason: Shortage::Exhausted,
                        })
                    } else {
                        Expect::Ok(ok)
                    }
                }
            };
        }
        let needs_ports = !matches!(ports, PortRequest::DontNeed);
        let out_of_range = spi_list.iter().any(|s| s.0 < SPI_LO || s.0 > SPI_HI);
        let specific = address.is_some();
        let mut cands = match address {
            Some(None) => return Expect::Err(E::LocalAddrUnallowed),
            Some(Some(a)) => {
                if needs_ports && self.leasable(a) == 0 {
                    return Expect::Err(E::LocalAddrUnallowed);
                }
                if let Some(&port) = port_list.iter().find(|&&p| !self.port_allowed(a, p)) {
                    return Expect::Err(E::LocalAddrPortUnallowed { port });
                }
                if out_of_range {
                    return Expect::Err(E::IpsecSpiUnavailable {
                        reason: Shortage::Policy,
                    });
                }
                if !self.shared_eligible(a, needs_ports) {
                    return Expect::Err(
                        if all.iter().any(|&b| self.shared_eligible(b, needs_ports)) {
                            E::LocalAddrInUse
                        } else {
                            E::LocalAddrUnavailable {
                                reason: Shortage::Exhausted,
                            }
                        },
                    );
                }
                vec![a]
            }
            None => {
                let c: Vec<usize> = all
                    .iter()
                    .copied()
                    .filter(|&a| self.shared_eligible(a, needs_ports))
                    .collect();
                if c.is_empty() {
                    return Expect::Err(E::LocalAddrUnavailable {
                        reason: Shortage::Exhausted,
                    });
                }
                let c: Vec<usize> = c
                    .into_iter()
                    .filter(|&a| port_list.iter().all(|&p| self.port_allowed(a, p)))
                    .collect();
                if c.is_empty() {
                    return Expect::Code(313);
                }
                if out_of_range {
                    return Expect::Err(E::IpsecSpiUnavailable {
                        reason: Shortage::Policy,
                    });
                }
                c
            }
        };
        let first = cands[0];
        match ports {
            PortRequest::DontNeed => {}
            PortRequest::DontCare { count } => {
                cands.retain(|&a| self.free_ports(a).len() >= usize::from(*count));
                if cands.is_empty() {
                    return Expect::Err(E::LocalAddrPortUnavailable {
                        reason: Shortage::Exhausted,
                    });
                }
            }
            _ => {
                cands.retain(|&a| port_list.iter().all(|&p| self.port_free(a, p)));
                if cands.is_empty() {
                    if !specific {
                        return Expect::Code(311);
                    }
                    let port = *port_list
                        .iter()
                        .find(|&&p| !self.port_free(first, p))
                        .unwrap();
                    return Expect::Err(E::LocalAddrPortInUse { port });
                }
            }
        }
        let first = cands[0];
        match spis {
            None => {}
            Some(SpiRequest::DontCare { count }) => {
                cands.retain(|&a| self.free_spis(a).len() >= usize::from(*count));
                if cands.is_empty() {
                    return Expect::Err(E::IpsecSpiUnavailable {
                        reason: Shortage::Exhausted,
                    });
                }
            }
            Some(_) => {
                cands.retain(|&a| spi_list.iter().all(|&s| !self.spi_taken(a, s)));
                if cands.is_empty() {
                    if !specific {
                        return Expect::Code(403);
                    }
                    let spi = *spi_list
                        .iter()
                        .find(|&&s| self.spi_taken(first, s))
                        .unwrap();
                    return Expect::Err(E::IpsecSpiInUse { spi });
                }
            }
        }
        Expect::Ok(cands)
    }

    /// Checks a grant against the rules, then records it.
    #[allow(clippy::too_many_arguments)]
    fn check_grant(
        &mut self,
        g: &Grant,
        cands: &[usize],
        c: ClientId,
        method: Method,
        ports: &PortRequest,
        spis: Option<&SpiRequest>,
        lease: Option<u64>,
    ) {
        let b = &g.binding;
        assert_eq!((b.client, b.method), (c, method));
        let a = self.idx(b.address).unwrap();
        assert!(cands.contains(&a), "granted on {a}, candidates {cands:?}");
        assert_ne!(b.bind, BindId(0));
        assert!(
            !self.bindings.contains_key(&b.bind),
            "bind ID {:?} reused while live",
            b.bind
        );
        assert!(
            !self.held.iter().any(|h| h.bind == b.bind),
            "bind ID {:?} reused while held",
            b.bind
        );
        // Ports.
        match ports {
            PortRequest::DontNeed => assert_eq!(b.ports, PortSet::None),
            PortRequest::DontCare { count } => {
                assert_eq!(b.ports.len(), u32::from(*count));
                if let PortSet::List(_) = b.ports {
                    for &other in cands {
                        assert!(
                            !self.has_port_block(other, u32::from(*count)),
                            "list though {other} has a block"
                        );
                    }
                }
            }
            PortRequest::Range { first, count } => {
                assert_eq!(
                    b.ports,
                    PortSet::Range {
                        first: *first,
                        count: *count
                    }
                )
            }
            PortRequest::List(l) => {
                let mut l = l.clone();
                l.sort_unstable();
                assert_eq!(b.ports, PortSet::List(l));
            }
        }
        for p in b.ports.iter() {
            assert!(self.port_allowed(a, p), "port {p} not allowed on {a}");
            assert!(!self.port_taken(a, p), "port {p} on {a} held or leased");
        }
        // SPIs.
        match spis {
            None => assert_eq!(b.spis, SpiSet::None),
            Some(SpiRequest::DontCare { count }) => {
                assert_eq!(b.spis.len(), u32::from(*count));
                if let SpiSet::List(_) = b.spis {
                    assert!(!self.has_spi_block(a, u32::from(*count)));
                }
            }
            Some(SpiRequest::Range { first, count }) => {
                assert_eq!(
                    b.spis,
                    SpiSet::Range {
                        first: *first,
                        count: u32::from(*count)
                    }
                )
            }
            Some(SpiRequest::List(l)) => {
                let mut l = l.clone();
                l.sort_unstable();
                assert_eq!(b.spis, SpiSet::List(l));
            }
        }
        for s in b.spis.iter() {
            assert!((SPI_LO..=SPI_HI).contains(&s.0));
            assert!(!self.spi_taken(a, s), "{s} on {a} held or leased");
        }
        if method == Method::RsaIp {
            assert!(self.whole_eligible(a));
        }
        // Lease and R = max(R, Bi).
        let l = lease_of(&self.config, lease);
        assert_eq!((g.lease, b.expires_at), (l, self.now + l));
        let r = self.hosts[&c].max(b.expires_at);
        assert_eq!(
            g.registration,
            RegistrationRecord {
                client: c,
                expires_at: r
            }
        );
        self.hosts.insert(c, r);
        self.bindings.insert(b.bind, b.clone());
        // Quotas.
        let (u, q) = (self.usage(c), self.config.quota);
        assert!(
            u.ports <= q.ports
                && u.spis <= q.spis
                && u.addresses <= q.addresses
                && u.bindings <= q.bindings
        );
    }

    fn release(&mut self, bind: BindId) -> QuarantineRecord {
        let b = self.bindings.remove(&bind).unwrap();
        let q = QuarantineRecord {
            bind,
            method: b.method,
            address: b.address,
            ports: b.ports,
            spis: b.spis,
            until: self.now + HOLD,
        };
        self.held.push(q.clone());
        q
    }

    fn prune(&mut self) {
        let now = self.now;
        self.held.retain(|h| h.until > now);
    }

    fn next_timeout(&self) -> Option<Timestamp> {
        self.bindings
            .values()
            .map(|b| b.expires_at)
            .chain(self.hosts.values().copied())
            .min()
    }

    fn holder(&self, a: usize, matches: impl Fn(&BindingRecord) -> bool) -> Option<Holder> {
        let holders: Vec<Holder> = self
            .on(a)
            .filter(|b| b.method == Method::RsaIp || matches(b))
            .map(|b| Holder {
                client: b.client,
                bind: b.bind,
            })
            .collect();
        assert!(holders.len() <= 1, "two holders: {holders:?}");
        holders.first().copied()
    }

    fn pool_usage(&self) -> PoolUsage {
        let mut u = PoolUsage {
            hosts: self.hosts.len() as u32,
            bindings: self.bindings.len() as u32,
            addresses: POOL.len() as u32,
            ports_leasable: (0..POOL.len()).map(|a| self.leasable(a) as u64).sum(),
            ..PoolUsage::default()
        };
        for b in self.bindings.values() {
            u.addresses_leased += u32::from(b.method == Method::RsaIp);
            u.ports_leased += u64::from(b.ports.len());
            u.spis_leased += u64::from(b.spis.len());
        }
        for h in &self.held {
            u.addresses_held += u32::from(h.method == Method::RsaIp);
            u.ports_held += u64::from(h.ports.len());
            u.spis_held += u64::from(h.spis.len());
        }
        u
    }

    /// The manager's whole observable state equals the model's.
    fn check_state(&self, m: &LeaseManager) {
        let r = m.records();
        let regs: Vec<RegistrationRecord> = self
            .hosts
            .iter()
            .map(|(&client, &expires_at)| RegistrationRecord { client, expires_at })
            .collect();
        assert_eq!(r.registrations, regs);
        assert_eq!(
            r.bindings,
            self.bindings.values().cloned().collect::<Vec<_>>()
        );
        let mut got = r.quarantine.clone();
        let mut want = self.held.clone();
        got.sort_by_key(|q| (q.until, q.bind));
        want.sort_by_key(|q| (q.until, q.bind));
        assert_eq!(got, want);
        assert_eq!(m.usage(), self.pool_usage());
        assert_eq!(m.next_timeout(), self.next_timeout());
        for &c in &CLIENTS {
            assert_eq!(
                m.host_usage(c),
                self.hosts.contains_key(&c).then(|| self.usage(c))
            );
            let mine: Vec<BindingRecord> = self
                .bindings
                .values()
                .filter(|b| b.client == c)
                .cloned()
                .collect();
            assert_eq!(m.bindings_of(c).collect::<Vec<_>>(), mine);
        }
        for (a, &address) in POOL.iter().enumerate() {
            let whole = self.whole_leased(a).map(|b| Holder {
                client: b.client,
                bind: b.bind,
            });
            assert_eq!(m.holder_of_address(address), whole);
            for p in PORTS {
                assert_eq!(
                    m.holder_of_port(address, p),
                    self.holder(a, |b| b.ports.contains(p)),
                    "port {p}"
                );
            }
            for s in SPIS {
                assert_eq!(
                    m.holder_of_spi(address, Spi(s)),
                    self.holder(a, |b| b.spis.contains(Spi(s))),
                    "SPI {s}"
                );
            }
        }
        assert_eq!(m.holder_of_port(FOREIGN, 1000), None);
    }
}

fn address_of(a: &Addr) -> (AddressRequest, Option<Option<usize>>) {
    match a {
        Addr::Any => (AddressRequest::DontCare, None),
        Addr::Pool(i) => (AddressRequest::Specific(POOL[*i]), Some(Some(*i))),
        Addr::Foreign => (AddressRequest::Specific(FOREIGN), Some(None)),
    }
}

fn pick(model: &Model, c: ClientId, own: bool, i: usize) -> BindId {
    let pool: Vec<BindId> = model
        .bindings
        .values()
        .filter(|b| !own || b.client == c)
        .map(|b| b.bind)
        .collect();
    if pool.is_empty() {
        BindId(10_000 + i as u32)
    } else {
        pool[i % pool.len()]
    }
}

fn expire_and_check(m: &mut LeaseManager, model: &mut Model) {
    let now = model.now;
    let got = m.expire(now);
    let due: Vec<BindId> = model
        .bindings
        .values()
        .filter(|b| b.expires_at <= now)
        .map(|b| b.bind)
        .collect();
    let lapsed: Vec<ClientId> = model
        .hosts
        .iter()
        .filter(|&(_, &r)| r <= now)
        .map(|(&c, _)| c)
        .collect();
    // R >= every Bi: a lapsed host has no binding left.
    for c in &lapsed {
        assert!(
            model
                .bindings
                .values()
                .filter(|b| b.client == *c)
                .all(|b| b.expires_at <= now)
        );
    }
    let mut got_binds: Vec<BindId> = got.bindings.iter().map(|r| r.binding.bind).collect();
    got_binds.sort();
    assert_eq!(got_binds, due, "expired bindings at {now}");
    let mut got_hosts = got.registrations.clone();
    got_hosts.sort();
    assert_eq!(got_hosts, lapsed, "lapsed registrations at {now}");
    for r in &got.bindings {
        assert_eq!(&r.binding, &model.bindings[&r.binding.bind]);
        assert_eq!(r.held_until, now + HOLD);
        assert_eq!(r.quarantine(), model.release(r.binding.bind));
    }
    for c in lapsed {
        model.hosts.remove(&c);
    }
}

/// `i < 100`: that client; else the `(i - 100)`th registered one, if any.
fn who(model: &Model, i: usize) -> ClientId {
    let registered: Vec<ClientId> = model.hosts.keys().copied().collect();
    match i.checked_sub(100) {
        Some(k) if !registered.is_empty() => registered[k % registered.len()],
        _ => CLIENTS[i % CLIENTS.len()],
    }
}

fn run(ops: Vec<Op>) {
    let mut m = LeaseManager::new(config()).unwrap();
    let mut model = Model::new();
    for op in ops {
        let now = model.now;
        match op {
            Op::Register(i) => {
                let c = CLIENTS[i];
                let got = m.register(c, now);
                if model.hosts.contains_key(&c) {
                    assert_eq!(got, Err(RegisterError::AlreadyRegistered));
                } else if model.hosts.len() >= 3 {
                    assert_eq!(got, Err(RegisterError::RegistrationDenied));
                } else {
                    let r = now + Duration::from_secs(15);
                    assert_eq!(
                        got,
                        Ok(RegistrationRecord {
                            client: c,
                            expires_at: r
                        })
                    );
                    model.hosts.insert(c, r);
                }
            }
            Op::Deregister(i) => {
                let c = who(&model, i);
                match m.deregister(c, now) {
                    Err(e) => {
                        assert_eq!(e, BindingError::RegisterFirst);
                        assert!(!model.hosts.contains_key(&c));
                    }
                    Ok(d) => {
                        let mine: Vec<BindId> = model
                            .bindings
                            .values()
                            .filter(|b| b.client == c)
                            .map(|b| b.bind)
                            .collect();
                        let mut got: Vec<BindId> =
                            d.released.iter().map(|r| r.binding.bind).collect();
                        got.sort();
                        assert_eq!(got, mine);
                        for r in &d.released {
                            assert_eq!(r.quarantine(), model.release(r.binding.bind));
                        }
                        model.hosts.remove(&c).unwrap();
                    }
                }
            }
            Op::RsaIp(i, ref a, l)
            | Op::RsapIp(i, ref a, _, l)
            | Op::Rsipsec(i, ref a, _, _, l) => {
                let c = who(&model, i);
                let (req, model_addr) = address_of(a);
                let lease = l.map(Duration::from_secs);
                let (method, ports, spis) = match &op {
                    Op::RsaIp(..) => (Method::RsaIp, PortRequest::DontNeed, None),
                    Op::RsapIp(_, _, p, _) => (Method::RsapIp, p.clone(), None),
                    Op::Rsipsec(_, _, p, s, _) => (Method::Rsipsec, p.clone(), Some(s.clone())),
                    _ => unreachable!(),
                };
                let expect = model.expect_assign(c, method, model_addr, &ports, spis.as_ref());
                let got = match method {
                    Method::RsaIp => m.assign_rsa_ip(c, req, lease, now),
                    Method::RsapIp => m.assign_rsap_ip(c, req, ports.clone(), lease, now),
                    Method::Rsipsec => {
                        m.assign_rsipsec(c, req, ports.clone(), spis.clone().unwrap(), lease, now)
                    }
                };
                match (expect, got) {
                    (Expect::Err(e), got) => assert_eq!(got, Err(e), "{op:?}"),
                    (Expect::Code(code), Err(e)) => assert_eq!(e.code(), code, "{op:?}: {e:?}"),
                    (Expect::Ok(cands), Ok(g)) => {
                        model.check_grant(&g, &cands, c, method, &ports, spis.as_ref(), l)
                    }
                    (Expect::Code(code), Ok(g)) => panic!("{op:?}: expected {code}, got {g:?}"),
                    (Expect::Ok(cands), Err(e)) => {
                        panic!("{op:?}: expected a grant on {cands:?}, got {e:?}")
                    }
                }
            }
            Op::Extend(i, own, k, l) => {
                let c = who(&model, i);
                let bind = pick(&model, c, own, k);
                let got = m.extend(c, bind, l.map(Duration::from_secs), now);
                if !model.hosts.contains_key(&c) {
                    assert_eq!(got.unwrap_err(), BindingError::RegisterFirst);
                } else if model.bindings.get(&bind).is_none_or(|b| b.client != c) {
                    assert_eq!(got.unwrap_err(), BindingError::BadBindId);
                } else {
                    let e = got.unwrap();
                    let lease = lease_of(&model.config, l);
                    let b = model.bindings.get_mut(&bind).unwrap();
                    b.expires_at = now + lease;
                    assert_eq!((e.lease, &e.binding), (lease, &*b));
                    let r = model.hosts[&c].max(now + lease);
                    model.hosts.insert(c, r);
                    assert_eq!(
                        e.registration,
                        RegistrationRecord {
                            client: c,
                            expires_at: r
                        }
                    );
                }
            }
            Op::Free(i, own, k) => {
                let c = who(&model, i);
                let bind = pick(&model, c, own, k);
                let got = m.free(c, bind, now);
                if !model.hosts.contains_key(&c) {
                    assert_eq!(got.unwrap_err(), BindingError::RegisterFirst);
                } else if model.bindings.get(&bind).is_none_or(|b| b.client != c) {
                    assert_eq!(got.unwrap_err(), BindingError::BadBindId);
                } else {
                    let r = got.unwrap();
                    assert_eq!(r.binding, model.bindings[&bind]);
                    assert_eq!(r.quarantine(), model.release(bind));
                }
            }
            Op::Advance(ms) => {
                model.now = now + Duration::from_millis(ms);
                expire_and_check(&mut m, &mut model);
            }
            Op::ToNextTimeout => {
                if let Some(t) = model.next_timeout()
                    && t > now
                {
                    model.now = t - Duration::from_millis(1);
                    let early = m.expire(model.now);
                    assert!(early.is_empty(), "expired early: {early:?}");
                    model.prune();
                    model.check_state(&m);
                    model.now = t;
                    expire_and_check(&mut m, &mut model);
                    assert!(!model.hosts.values().any(|&r| r <= t));
                }
            }
            Op::Restore => {
                let records = m.records();
                let mut restored = LeaseManager::new(config()).unwrap();
                restored.restore(&records).unwrap();
                assert_eq!(restored.records(), records);
                assert_eq!(restored.usage(), m.usage());
                assert_eq!(restored.next_timeout(), m.next_timeout());
                m = restored;
            }
        }
        model.prune();
        model.check_state(&m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn lease_manager_matches_model(ops in proptest::collection::vec(op(), 1..200)) {
        run(ops);
    }
}
