//! The lease manager: registrations, bindings, quotas, expiry, quarantine.

use std::collections::{BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::config::MIN_LEASE;
use crate::hash::{IdMap, IdSet};
use crate::ports::PortPool;
use crate::set::{checked_list, port_range, spi_range};
use crate::spis::{HELD, SpiPool};
use crate::{
    AddressRequest, AssignError, BindId, BindingError, BindingRecord, ClientId, Config,
    ConfigError, Deregistered, Expired, Extended, Grant, Holder, HostUsage, Method, PoolUsage,
    PortRequest, PortSet, QuarantineRecord, Records, RegisterError, RegistrationRecord, Released,
    RestoreError, Shortage, Spi, SpiRequest, SpiSet, Timestamp,
};

/// Whether an address is leased whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Whole {
    Free,
    Leased(BindId),
    /// In quarantine after an RSA-IP binding ended.
    Held,
}

/// One pool address.
#[derive(Debug)]
struct Address {
    address: Ipv4Addr,
    whole_lease: bool,
    /// Leasable ports: sorted, disjoint, inclusive runs, never port 0.
    leasable: Box<[(u16, u16)]>,
    leasable_count: u32,
    whole: Whole,
    /// In the whole-address FIFO.
    queued: bool,
    /// Live RSAP-IP and RSIPSEC bindings on it.
    shared: u32,
    /// Quarantine entries on it.
    held: u32,
    /// Created on the first port lease.
    ports: Option<Box<PortPool>>,
    spis: SpiPool,
}

impl Address {
    fn port_allowed(&self, port: u16) -> bool {
        let i = self.leasable.partition_point(|&(_, last)| last < port);
        self.leasable
            .get(i)
            .is_some_and(|&(first, _)| first <= port)
    }

    fn free_ports(&self) -> u32 {
        self.ports
            .as_ref()
            .map_or(self.leasable_count, |p| p.free())
    }

    /// Whether `port` may be granted now (allowed and not leased or held).
    fn port_free(&self, port: u16) -> bool {
        match &self.ports {
            Some(p) => p.port_free(port),
            None => self.port_allowed(port),
        }
    }

    fn port_pool(&mut self) -> &mut PortPool {
        let leasable = &self.leasable;
        self.ports
            .get_or_insert_with(|| Box::new(PortPool::new(leasable)))
    }

    /// Whether the whole address may be leased now (RSA-IP).
    fn whole_eligible(&self) -> bool {
        self.whole_lease && self.whole == Whole::Free && self.shared == 0 && self.held == 0
    }

    /// Whether ports or SPIs of it may be leased now.
    fn shared_eligible(&self, needs_ports: bool) -> bool {
        self.whole == Whole::Free && (!needs_ports || self.leasable_count > 0)
    }

    fn spi_free(&self, spi: u32) -> bool {
        self.spis.overlap(spi, spi).is_none()
    }
}

/// A registered host.
#[derive(Debug)]
struct Host {
    expires_at: Timestamp,
    usage: HostUsage,
    /// Addresses it shares, with how many of its bindings are on each.
    addresses: Vec<(u32, u32)>,
}

/// A live binding, compact: 24 bytes, 4-aligned, so that a table entry with
/// its bind ID is 28 (it was 40 with a `Timestamp` and a boxed tail). The
/// address is an index into the pool, the expiry two 32-bit halves, and the
/// common case, no SPI and at most one port range, is inline; port lists and
/// SPIs live in [`LeaseManager`]'s `extras`, keyed by bind ID.
#[derive(Debug)]
struct Binding {
    /// `expires_at` in milliseconds: high and low 32 bits.
    expires: [u32; 2],
    client: ClientId,
    addr: u32,
    /// (first, count) of the ports when they are one range and `extra` is
    /// false; (0, 0) for none.
    ports: (u16, u16),
    method: Method,
    /// Ports and SPIs are in `extras`.
    extra: bool,
}

impl Binding {
    /// The binding, and what must go to `extras`.
    fn new(
        client: ClientId,
        addr: u32,
        method: Method,
        expires_at: Timestamp,
        ports: PortSet,
        spis: SpiSet,
    ) -> (Binding, Option<(PortSet, SpiSet)>) {
        let (ports, extra) = match (ports, spis) {
            (PortSet::None, SpiSet::None) => ((0, 0), None),
            (PortSet::Range { first, count }, SpiSet::None) => ((first, count), None),
            (p, s) => ((0, 0), Some((p, s))),
        };
        let mut b = Binding {
            expires: [0; 2],
            client,
            addr,
            ports,
            method,
            extra: extra.is_some(),
        };
        b.set_expires_at(expires_at);
        (b, extra)
    }

    fn expires_at(&self) -> Timestamp {
        let [hi, lo] = self.expires;
        Timestamp::from_millis(u64::from(hi) << 32 | u64::from(lo))
    }

    fn set_expires_at(&mut self, t: Timestamp) {
        let ms = t.as_millis();
        // Truncation is the point: the two halves.
        #[allow(clippy::cast_possible_truncation)]
        let halves = [(ms >> 32) as u32, ms as u32];
        self.expires = halves;
    }
}

/// Resources of an ended binding in quarantine.
#[derive(Debug)]
struct Held {
    until: Timestamp,
    bind: BindId,
    addr: u32,
    method: Method,
    ports: PortSet,
    spis: SpiSet,
}

/// A resolved allocation, before it is committed.
#[derive(Debug)]
struct Plan {
    addr: u32,
    ports: PortSet,
    spis: SpiSet,
}

/// The gateway's lease state: who holds which public address, (address, port)
/// and (address, SPI), until when, and what is in TIME_WAIT quarantine.
///
/// Every operation takes `now` and never reads a clock. Lapsed leases are
/// collected only by [`LeaseManager::expire`]: the engine calls it when
/// [`LeaseManager::next_timeout`] is due, and before handling a request at a
/// later `now`. Quarantine ends lazily: any operation at `now` first returns
/// to the pool what was held until `now` or earlier.
#[derive(Debug)]
pub struct LeaseManager {
    config: Config,
    addresses: Vec<Address>,
    /// (address, index into `addresses`), sorted by address.
    index: Vec<(Ipv4Addr, u32)>,
    hosts: IdMap<ClientId, Host>,
    bindings: IdMap<BindId, Binding>,
    /// Ports and SPIs of the bindings that cannot hold them inline (a port
    /// list, SPIs: RSIPSEC and rare RSAP-IP requests).
    extras: IdMap<BindId, (PortSet, SpiSet)>,
    by_host: BTreeSet<(ClientId, BindId)>,
    binding_expiry: BTreeSet<(Timestamp, BindId)>,
    host_expiry: BTreeSet<(Timestamp, ClientId)>,
    /// Quarantine, sorted by `until` (FIFO: the hold is the same for all).
    held: VecDeque<Held>,
    /// The bind IDs in `held`.
    held_binds: IdSet<BindId>,
    /// Addresses that may be leased whole, longest-free first (hints: an
    /// entry is checked when popped).
    whole_queue: VecDeque<u32>,
    next_bind: u32,
    /// The bind ID counter has wrapped: check IDs for reuse.
    wrapped: bool,
    usage: PoolUsage,
}

fn count32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A validated port request.
enum PortNeed<'a> {
    DontNeed,
    Any(u32),
    /// The exact set, and the ports in request order (for error reports).
    Exact(PortSet, &'a PortRequest),
}

/// A validated SPI request.
enum SpiNeed<'a> {
    None,
    Any(u32),
    Exact(SpiSet, &'a SpiRequest),
}

impl PortNeed<'_> {
    fn count(&self) -> u32 {
        match self {
            PortNeed::DontNeed => 0,
            PortNeed::Any(n) => *n,
            PortNeed::Exact(set, _) => set.len(),
        }
    }

    /// The requested ports in request order.
    fn in_order(&self) -> Box<dyn Iterator<Item = u16> + '_> {
        match self {
            PortNeed::Exact(_, PortRequest::List(l)) => Box::new(l.iter().copied()),
            PortNeed::Exact(set, _) => Box::new(set.iter()),
            _ => Box::new(std::iter::empty()),
        }
    }
}

impl SpiNeed<'_> {
    fn count(&self) -> u32 {
        match self {
            SpiNeed::None => 0,
            SpiNeed::Any(n) => *n,
            SpiNeed::Exact(set, _) => set.len(),
        }
    }

    fn in_order(&self) -> Box<dyn Iterator<Item = Spi> + '_> {
        match self {
            SpiNeed::Exact(_, SpiRequest::List(l)) => Box::new(l.iter().copied()),
            SpiNeed::Exact(set, _) => Box::new(set.iter()),
            _ => Box::new(std::iter::empty()),
        }
    }
}

fn bad(what: &'static str) -> AssignError {
    AssignError::BadParam { what }
}

fn port_need(method: Method, req: &PortRequest) -> Result<PortNeed<'_>, AssignError> {
    Ok(match req {
        PortRequest::DontNeed if method != Method::RsapIp => PortNeed::DontNeed,
        PortRequest::DontNeed => return Err(bad("ports \"don't need\" outside RSIPSEC")),
        PortRequest::DontCare { count: 0 } => return Err(bad("zero port count")),
        PortRequest::DontCare { count } => PortNeed::Any(u32::from(*count)),
        PortRequest::Range { first, count } => {
            port_range(*first, *count).map_err(bad)?;
            PortNeed::Exact(
                PortSet::Range {
                    first: *first,
                    count: *count,
                },
                req,
            )
        }
        PortRequest::List(l) => PortNeed::Exact(PortSet::List(checked_list(l).map_err(bad)?), req),
    })
}

fn spi_need(req: Option<&SpiRequest>) -> Result<SpiNeed<'_>, AssignError> {
    Ok(match req {
        None => SpiNeed::None,
        Some(SpiRequest::DontCare { count: 0 }) => return Err(bad("zero SPI count")),
        Some(SpiRequest::DontCare { count }) => SpiNeed::Any(u32::from(*count)),
        Some(r @ SpiRequest::Range { first, count }) => {
            spi_range(first.0, u32::from(*count)).map_err(bad)?;
            SpiNeed::Exact(
                SpiSet::Range {
                    first: *first,
                    count: u32::from(*count),
                },
                r,
            )
        }
        Some(r @ SpiRequest::List(l)) => {
            SpiNeed::Exact(SpiSet::List(checked_list(l).map_err(bad)?), r)
        }
    })
}

impl LeaseManager {
    /// An empty manager over `config`'s pool.
    pub fn new(config: Config) -> Result<LeaseManager, ConfigError> {
        config.validate()?;
        let mut addresses = Vec::with_capacity(config.pool.len());
        let mut usage = PoolUsage::default();
        for a in &config.pool {
            let leasable = a.leasable_runs();
            let leasable_count = leasable
                .iter()
                .map(|&(f, l)| u32::from(l) - u32::from(f) + 1)
                .sum::<u32>();
            usage.ports_leasable += u64::from(leasable_count);
            addresses.push(Address {
                address: a.address,
                whole_lease: a.whole_lease,
                leasable: leasable.into_boxed_slice(),
                leasable_count,
                whole: Whole::Free,
                queued: a.whole_lease,
                shared: 0,
                held: 0,
                ports: None,
                spis: SpiPool::default(),
            });
        }
        usage.addresses = count32(addresses.len());
        let mut index: Vec<(Ipv4Addr, u32)> = addresses
            .iter()
            .enumerate()
            .map(|(i, a)| (a.address, count32(i)))
            .collect();
        index.sort_unstable();
        let whole_queue = addresses
            .iter()
            .enumerate()
            .filter(|(_, a)| a.whole_lease)
            .map(|(i, _)| count32(i))
            .collect();
        Ok(LeaseManager {
            config,
            addresses,
            index,
            hosts: IdMap::default(),
            bindings: IdMap::default(),
            extras: IdMap::default(),
            by_host: BTreeSet::new(),
            binding_expiry: BTreeSet::new(),
            host_expiry: BTreeSet::new(),
            held: VecDeque::new(),
            held_binds: IdSet::default(),
            whole_queue,
            next_bind: 1,
            wrapped: false,
            usage,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn lookup(&self, address: Ipv4Addr) -> Option<u32> {
        let i = self
            .index
            .binary_search_by_key(&address, |&(a, _)| a)
            .ok()?;
        self.index.get(i).map(|&(_, idx)| idx)
    }

    fn addr(&self, i: u32) -> &Address {
        &self.addresses[i as usize]
    }

    fn addr_mut(&mut self, i: u32) -> &mut Address {
        &mut self.addresses[i as usize]
    }

    fn lease_for(&self, requested: Option<Duration>) -> Duration {
        requested
            .unwrap_or(self.config.default_lease)
            .clamp(MIN_LEASE, self.config.max_lease)
    }

    fn spi_bounds(&self) -> (u32, u32) {
        (*self.config.spis.start(), *self.config.spis.end())
    }

    // ---- registrations ------------------------------------------------------

    /// Registers a host under `client` (REGISTER_REQUEST, RFC 3103 9.2). Its
    /// registration lapses at `now + registration_lease` unless a binding
    /// pushes it later (R = max(R, Bi), RFC 3103 6).
    pub fn register(
        &mut self,
        client: ClientId,
        now: Timestamp,
    ) -> Result<RegistrationRecord, RegisterError> {
        self.release_held(now);
        // RFC 3103 9.2.3: an already-registered host MUST get ALREADY_REGISTERED.
        if self.hosts.contains_key(&client) {
            return Err(RegisterError::AlreadyRegistered);
        }
        // RFC 3103 9.2.3: REGISTRATION_DENIED if policy will not allow it.
        if count32(self.hosts.len()) >= self.config.max_hosts {
            return Err(RegisterError::RegistrationDenied);
        }
        let expires_at = now + self.config.registration_lease;
        self.insert_host(client, expires_at);
        Ok(RegistrationRecord { client, expires_at })
    }

    fn insert_host(&mut self, client: ClientId, expires_at: Timestamp) {
        self.hosts.insert(
            client,
            Host {
                expires_at,
                usage: HostUsage::default(),
                addresses: Vec::new(),
            },
        );
        self.host_expiry.insert((expires_at, client));
        self.usage.hosts += 1;
    }

    /// De-registers a host (DE-REGISTER_REQUEST, RFC 3103 9.4): every binding
    /// it holds ends and goes to quarantine.
    pub fn deregister(
        &mut self,
        client: ClientId,
        now: Timestamp,
    ) -> Result<Deregistered, BindingError> {
        self.release_held(now);
        // RFC 3103 9.4.3: a host not registered MUST get REGISTER_FIRST.
        if !self.hosts.contains_key(&client) {
            return Err(BindingError::RegisterFirst);
        }
        // RFC 3103 9.4.3: delete all binds of the host and return their
        // resources to the pool (through TIME_WAIT quarantine).
        let released = self.remove_host(client, now);
        self.release_held(now);
        Ok(Deregistered { client, released })
    }

    fn remove_host(&mut self, client: ClientId, now: Timestamp) -> Vec<Released> {
        let binds: Vec<BindId> = self
            .by_host
            .range((client, BindId(0))..=(client, BindId(u32::MAX)))
            .map(|&(_, b)| b)
            .collect();
        let released = binds
            .into_iter()
            .filter_map(|b| self.release_binding(b, now))
            .collect();
        if let Some(host) = self.hosts.remove(&client) {
            self.host_expiry.remove(&(host.expires_at, client));
            self.usage.hosts -= 1;
        }
        released
    }

    // ---- assignment ---------------------------------------------------------

    /// Leases a whole address (ASSIGN_REQUEST_RSA-IP, RFC 3103 9.6): no port
    /// or SPI of it can be leased to anyone else until it is freed and its
    /// quarantine ends. `lease` is the host's suggestion (default
    /// [`Config::default_lease`], clamped to 1 s..=[`Config::max_lease`]).
    pub fn assign_rsa_ip(
        &mut self,
        client: ClientId,
        address: AddressRequest,
        lease: Option<Duration>,
        now: Timestamp,
    ) -> Result<Grant, AssignError> {
        self.assign(
            client,
            Method::RsaIp,
            address,
            &PortRequest::DontNeed,
            None,
            lease,
            now,
        )
    }

    /// Leases ports of a shared address (ASSIGN_REQUEST_RSAP-IP, RFC 3103
    /// 9.8). "Don't care" ports get a contiguous block if one exists, else a
    /// list, oldest-free ports first. [`PortRequest::DontNeed`] is refused
    /// here (BAD_PARAM).
    pub fn assign_rsap_ip(
        &mut self,
        client: ClientId,
        address: AddressRequest,
        ports: PortRequest,
        lease: Option<Duration>,
        now: Timestamp,
    ) -> Result<Grant, AssignError> {
        self.assign(client, Method::RsapIp, address, &ports, None, lease, now)
    }

    /// Leases SPIs (and ports, or none with [`PortRequest::DontNeed`]) of a
    /// shared address (ASSIGN_REQUEST_RSIPSEC, RFC 3104 6.2). (Address, SPI)
    /// tuples are unique at the gateway; the same SPI may be leased on two
    /// addresses.
    pub fn assign_rsipsec(
        &mut self,
        client: ClientId,
        address: AddressRequest,
        ports: PortRequest,
        spis: SpiRequest,
        lease: Option<Duration>,
        now: Timestamp,
    ) -> Result<Grant, AssignError> {
        self.assign(
            client,
            Method::Rsipsec,
            address,
            &ports,
            Some(&spis),
            lease,
            now,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assign(
        &mut self,
        client: ClientId,
        method: Method,
        address: AddressRequest,
        ports: &PortRequest,
        spis: Option<&SpiRequest>,
        lease: Option<Duration>,
        now: Timestamp,
    ) -> Result<Grant, AssignError> {
        self.release_held(now);
        // RFC 3103 9.6.3, 9.8.3: an unregistered host MUST get REGISTER_FIRST.
        let Some(host) = self.hosts.get(&client) else {
            return Err(AssignError::RegisterFirst);
        };
        let port_need = port_need(method, ports)?;
        let spi_need = spi_need(spis)?;
        // RFC 3104 6.2: IPSEC_UNALLOWED if the client may not use IPsec.
        if method == Method::Rsipsec && self.config.quota.spis == 0 {
            return Err(AssignError::IpsecUnallowed);
        }
        let (quota, used) = (self.config.quota, host.usage);
        if used.bindings >= quota.bindings {
            return Err(match method {
                Method::RsaIp => AssignError::LocalAddrUnavailable {
                    reason: Shortage::Quota,
                },
                _ => AssignError::LocalAddrPortUnavailable {
                    reason: Shortage::Quota,
                },
            });
        }
        if method == Method::RsaIp && used.addresses >= quota.addresses {
            return Err(AssignError::LocalAddrUnavailable {
                reason: Shortage::Quota,
            });
        }
        if u64::from(used.ports) + u64::from(port_need.count()) > u64::from(quota.ports) {
            return Err(AssignError::LocalAddrPortUnavailable {
                reason: Shortage::Quota,
            });
        }
        if u64::from(used.spis) + u64::from(spi_need.count()) > u64::from(quota.spis) {
            return Err(AssignError::IpsecSpiUnavailable {
                reason: Shortage::Quota,
            });
        }
        let plan = match method {
            Method::RsaIp => {
                let addr = self.plan_whole(address)?;
                Plan {
                    addr,
                    ports: PortSet::None,
                    spis: SpiSet::None,
                }
            }
            _ => self.plan_shared(client, address, &port_need, &spi_need)?,
        };
        let lease = self.lease_for(lease);
        let expires_at = now + lease;
        let bind = self.alloc_bind();
        let binding = BindingRecord {
            bind,
            client,
            method,
            address: self.addr(plan.addr).address,
            ports: plan.ports.clone(),
            spis: plan.spis.clone(),
            expires_at,
        };
        self.install(bind, client, method, plan, expires_at);
        let registration = self
            .registration(client)
            .ok_or(AssignError::RegisterFirst)?;
        Ok(Grant {
            binding,
            lease,
            registration,
        })
    }

    /// Picks the address for an RSA-IP binding.
    fn plan_whole(&mut self, address: AddressRequest) -> Result<u32, AssignError> {
        match address {
            AddressRequest::Specific(a) => {
                // RFC 3103 9.6.3: an address not allowed by policy MUST get
                // LOCAL_ADDR_UNALLOWED, one in use LOCAL_ADDR_INUSE, and if
                // no address at all can be allocated, LOCAL_ADDR_UNAVAILABLE.
                let i = self.lookup(a).ok_or(AssignError::LocalAddrUnallowed)?;
                if !self.addr(i).whole_lease {
                    return Err(AssignError::LocalAddrUnallowed);
                }
                if self.addr(i).whole_eligible() {
                    Ok(i)
                } else if self.addresses.iter().any(Address::whole_eligible) {
                    Err(AssignError::LocalAddrInUse)
                } else {
                    Err(AssignError::LocalAddrUnavailable {
                        reason: Shortage::Exhausted,
                    })
                }
            }
            AddressRequest::DontCare => {
                while let Some(i) = self.whole_queue.pop_front() {
                    let a = self.addr_mut(i);
                    a.queued = false;
                    if a.whole_eligible() {
                        return Ok(i);
                    }
                }
                Err(AssignError::LocalAddrUnavailable {
                    reason: Shortage::Exhausted,
                })
            }
        }
    }

    /// Candidate addresses for a shared binding of `client`, best first: ones
    /// the host already uses, then ones already shared or never leasable whole
    /// (keeping whole-leasable addresses free for RSA-IP), then most free
    /// ports.
    fn shared_candidates(&self, client: ClientId, needs_ports: bool) -> Vec<u32> {
        let mine: &[(u32, u32)] = self.hosts.get(&client).map_or(&[], |h| &h.addresses);
        let mut c: Vec<u32> = (0..count32(self.addresses.len()))
            .filter(|&i| self.addr(i).shared_eligible(needs_ports))
            .collect();
        c.sort_by_key(|&i| {
            let a = self.addr(i);
            (
                !mine.iter().any(|&(j, _)| j == i),
                a.whole_eligible(),
                std::cmp::Reverse(a.free_ports()),
                i,
            )
        });
        c
    }

    /// Picks the address, ports and SPIs for an RSAP-IP or RSIPSEC binding.
    fn plan_shared(
        &mut self,
        client: ClientId,
        address: AddressRequest,
        ports: &PortNeed<'_>,
        spis: &SpiNeed<'_>,
    ) -> Result<Plan, AssignError> {
        let needs_ports = !matches!(ports, PortNeed::DontNeed);
        let (lo, hi) = self.spi_bounds();
        let first_unallowed = |a: &Address| ports.in_order().find(|&p| !a.port_allowed(p));
        let spi_out_of_range = || spis.in_order().any(|s| s.0 < lo || s.0 > hi);
        let mut cands = match address {
            AddressRequest::Specific(want) => {
                // RFC 3103 9.8.3: LOCAL_ADDR_UNALLOWED, LOCAL_ADDRPORT_UNALLOWED
                // for what policy forbids.
                let i = self.lookup(want).ok_or(AssignError::LocalAddrUnallowed)?;
                let a = self.addr(i);
                if needs_ports && a.leasable_count == 0 {
                    return Err(AssignError::LocalAddrUnallowed);
                }
                if let Some(port) = first_unallowed(a) {
                    return Err(AssignError::LocalAddrPortUnallowed { port });
                }
                if spi_out_of_range() {
                    return Err(AssignError::IpsecSpiUnavailable {
                        reason: Shortage::Policy,
                    });
                }
                // RFC 3103 9.8.3: LOCAL_ADDR_INUSE for an address in use,
                // LOCAL_ADDR_UNAVAILABLE if none at all can be allocated.
                if !a.shared_eligible(needs_ports) {
                    return Err(
                        if self
                            .addresses
                            .iter()
                            .any(|a| a.shared_eligible(needs_ports))
                        {
                            AssignError::LocalAddrInUse
                        } else {
                            AssignError::LocalAddrUnavailable {
                                reason: Shortage::Exhausted,
                            }
                        },
                    );
                }
                vec![i]
            }
            AddressRequest::DontCare => {
                // RFC 3103 9.8.3: "don't care" and no address at all:
                // LOCAL_ADDR_UNAVAILABLE.
                let all = self.shared_candidates(client, needs_ports);
                let Some(&best) = all.first() else {
                    return Err(AssignError::LocalAddrUnavailable {
                        reason: Shortage::Exhausted,
                    });
                };
                let allowed: Vec<u32> = all
                    .iter()
                    .copied()
                    .filter(|&i| first_unallowed(self.addr(i)).is_none())
                    .collect();
                if allowed.is_empty() {
                    let port = first_unallowed(self.addr(best)).unwrap_or(0);
                    return Err(AssignError::LocalAddrPortUnallowed { port });
                }
                if spi_out_of_range() {
                    return Err(AssignError::IpsecSpiUnavailable {
                        reason: Shortage::Policy,
                    });
                }
                allowed
            }
        };
        // Ports: RFC 3103 9.8.3: a requested tuple in use MUST get
        // LOCAL_ADDRPORT_INUSE; a "don't care" number that cannot be granted
        // whole MUST get LOCAL_ADDRPORT_UNAVAILABLE.
        let first = cands.first().copied();
        match ports {
            PortNeed::DontNeed => {}
            PortNeed::Any(n) => {
                cands.retain(|&i| self.addr(i).free_ports() >= *n);
                if cands.is_empty() {
                    return Err(AssignError::LocalAddrPortUnavailable {
                        reason: Shortage::Exhausted,
                    });
                }
            }
            PortNeed::Exact(..) => {
                let busy = |a: &Address| ports.in_order().find(|&p| !a.port_free(p));
                cands.retain(|&i| busy(self.addr(i)).is_none());
                if cands.is_empty() {
                    let port = first.and_then(|i| busy(self.addr(i))).unwrap_or(0);
                    return Err(AssignError::LocalAddrPortInUse { port });
                }
            }
        }
        // SPIs: RFC 3104 6.2: "don't care" and none left: IPSEC_SPI_UNAVAILABLE;
        // a suggested (address, SPI) in use: IPSEC_SPI_INUSE.
        let first = cands.first().copied();
        match spis {
            SpiNeed::None => {}
            SpiNeed::Any(n) => {
                let room = u64::from(hi) - u64::from(lo) + 1;
                cands.retain(|&i| room - self.addr(i).spis.used() >= u64::from(*n));
                if cands.is_empty() {
                    return Err(AssignError::IpsecSpiUnavailable {
                        reason: Shortage::Exhausted,
                    });
                }
            }
            SpiNeed::Exact(..) => {
                let busy = |a: &Address| spis.in_order().find(|s| !a.spi_free(s.0));
                cands.retain(|&i| busy(self.addr(i)).is_none());
                if cands.is_empty() {
                    let spi = first.and_then(|i| busy(self.addr(i))).unwrap_or(Spi(0));
                    return Err(AssignError::IpsecSpiInUse { spi });
                }
            }
        }
        // Choose: the first candidate, or for "don't care" ports the first
        // with a contiguous block.
        let mut chosen = cands.first().copied().unwrap_or(0);
        let mut port_set = PortSet::None;
        match ports {
            PortNeed::DontNeed => {}
            PortNeed::Exact(set, _) => port_set = set.clone(),
            PortNeed::Any(n) => {
                let count = u16::try_from(*n).unwrap_or(u16::MAX);
                let block = cands.iter().find_map(|&i| {
                    self.addr_mut(i)
                        .port_pool()
                        .find_contiguous(*n)
                        .map(|first| (i, first))
                });
                port_set = match block {
                    Some((i, first)) => {
                        chosen = i;
                        PortSet::Range { first, count }
                    }
                    None => self
                        .addr_mut(chosen)
                        .port_pool()
                        .find_scattered(*n)
                        .map(PortSet::List)
                        .ok_or(AssignError::LocalAddrPortUnavailable {
                            reason: Shortage::Exhausted,
                        })?,
                };
            }
        }
        let spi_set = match spis {
            SpiNeed::None => SpiSet::None,
            SpiNeed::Exact(set, _) => set.clone(),
            SpiNeed::Any(n) => {
                let pool = &self.addr(chosen).spis;
                match pool.find_contiguous(lo, hi, *n) {
                    Some(first) => SpiSet::Range {
                        first: Spi(first),
                        count: *n,
                    },
                    None => pool
                        .find_scattered(lo, hi, *n)
                        .map(|v| SpiSet::List(v.into_iter().map(Spi).collect()))
                        .ok_or(AssignError::IpsecSpiUnavailable {
                            reason: Shortage::Exhausted,
                        })?,
                }
            }
        };
        Ok(Plan {
            addr: chosen,
            ports: port_set,
            spis: spi_set,
        })
    }

    /// A bind ID not live and not in quarantine.
    fn alloc_bind(&mut self) -> BindId {
        loop {
            let id = BindId(self.next_bind);
            self.next_bind = self.next_bind.wrapping_add(1);
            if self.next_bind == 0 {
                self.next_bind = 1;
                self.wrapped = true;
            }
            if !self.wrapped || !self.bind_in_use(id) {
                return id;
            }
        }
    }

    fn bind_in_use(&self, id: BindId) -> bool {
        id.0 == 0 || self.bindings.contains_key(&id) || self.held_binds.contains(&id)
    }

    fn note_bind(&mut self, id: BindId) {
        if id.0 >= self.next_bind && !self.wrapped {
            match id.0.checked_add(1) {
                Some(n) => self.next_bind = n,
                None => {
                    self.next_bind = 1;
                    self.wrapped = true;
                }
            }
        }
    }

    /// Records a binding and takes its resources (which must be free).
    fn install(
        &mut self,
        bind: BindId,
        client: ClientId,
        method: Method,
        plan: Plan,
        expires_at: Timestamp,
    ) {
        let Plan { addr, ports, spis } = plan;
        let (nports, nspis) = (ports.len(), spis.len());
        let a = self.addr_mut(addr);
        if method == Method::RsaIp {
            a.whole = Whole::Leased(bind);
        } else {
            a.shared += 1;
        }
        for (first, last) in ports.runs() {
            a.port_pool().take(first, last, bind);
        }
        for (first, last) in spis.runs() {
            a.spis.take(first, last, bind);
        }
        if method == Method::RsaIp {
            self.usage.addresses_leased += 1;
        }
        if let Some(host) = self.hosts.get_mut(&client) {
            host.usage.bindings += 1;
            host.usage.ports += nports;
            host.usage.spis += nspis;
            if method == Method::RsaIp {
                host.usage.addresses += 1;
            } else {
                match host.addresses.iter_mut().find(|(i, _)| *i == addr) {
                    Some((_, n)) => *n += 1,
                    None => host.addresses.push((addr, 1)),
                }
            }
            // RFC 3103 6: when binding Bi is established or extended, R = max(R, Bi).
            if expires_at > host.expires_at {
                self.host_expiry.remove(&(host.expires_at, client));
                self.host_expiry.insert((expires_at, client));
                host.expires_at = expires_at;
            }
        }
        self.by_host.insert((client, bind));
        self.binding_expiry.insert((expires_at, bind));
        let (binding, extra) = Binding::new(client, addr, method, expires_at, ports, spis);
        if let Some(extra) = extra {
            self.extras.insert(bind, extra);
        }
        self.bindings.insert(bind, binding);
        self.usage.bindings += 1;
        self.usage.ports_leased += u64::from(nports);
        self.usage.spis_leased += u64::from(nspis);
    }

    // ---- extend, free, expiry ------------------------------------------------

    /// Extends a binding (EXTEND_REQUEST, RFC 3103 9.10): it now ends at `now`
    /// plus the granted lease (the host's suggestion or the default, clamped
    /// to 1 s..=[`Config::max_lease`]), which may be earlier than before.
    pub fn extend(
        &mut self,
        client: ClientId,
        bind: BindId,
        lease: Option<Duration>,
        now: Timestamp,
    ) -> Result<Extended, BindingError> {
        self.release_held(now);
        self.check_owner(client, bind)?;
        let lease = self.lease_for(lease);
        let expires_at = now + lease;
        if let Some(b) = self.bindings.get_mut(&bind) {
            self.binding_expiry.remove(&(b.expires_at(), bind));
            self.binding_expiry.insert((expires_at, bind));
            b.set_expires_at(expires_at);
        }
        if let Some(host) = self.hosts.get_mut(&client)
            && expires_at > host.expires_at
        {
            // RFC 3103 6: R = max(R, Bi).
            self.host_expiry.remove(&(host.expires_at, client));
            self.host_expiry.insert((expires_at, client));
            host.expires_at = expires_at;
        }
        let binding = self.record(bind).ok_or(BindingError::BadBindId)?;
        let registration = self
            .registration(client)
            .ok_or(BindingError::RegisterFirst)?;
        Ok(Extended {
            binding,
            lease,
            registration,
        })
    }

    /// Frees a binding (FREE_REQUEST, RFC 3103 9.12): its resources go to
    /// quarantine for [`Config::time_wait`].
    pub fn free(
        &mut self,
        client: ClientId,
        bind: BindId,
        now: Timestamp,
    ) -> Result<Released, BindingError> {
        self.release_held(now);
        self.check_owner(client, bind)?;
        let released = self
            .release_binding(bind, now)
            .ok_or(BindingError::BadBindId)?;
        self.release_held(now);
        Ok(released)
    }

    fn check_owner(&self, client: ClientId, bind: BindId) -> Result<(), BindingError> {
        // RFC 3103 9.10.3, 9.12.3: REGISTER_FIRST, then BAD_BIND_ID.
        if !self.hosts.contains_key(&client) {
            return Err(BindingError::RegisterFirst);
        }
        match self.bindings.get(&bind) {
            Some(b) if b.client == client => Ok(()),
            _ => Err(BindingError::BadBindId),
        }
    }

    /// Ends every binding whose lease ends at or before `now`, then every
    /// registration that lapses at or before `now` (a registration outlives
    /// its bindings, RFC 3103 6), and returns them so that the engine can send
    /// FREE_RESPONSEs and DE-REGISTER_RESPONSEs (RFC 3103 9.5.3, 9.13.1).
    pub fn expire(&mut self, now: Timestamp) -> Expired {
        self.release_held(now);
        let mut out = Expired::default();
        let due: Vec<BindId> = self
            .binding_expiry
            .range(..=(now, BindId(u32::MAX)))
            .map(|&(_, b)| b)
            .collect();
        for bind in due {
            out.bindings.extend(self.release_binding(bind, now));
        }
        let lapsed: Vec<ClientId> = self
            .host_expiry
            .range(..=(now, ClientId(u32::MAX)))
            .map(|&(_, c)| c)
            .collect();
        for client in lapsed {
            // Its bindings ended no later than R; any left (a restore that
            // broke R >= Bi) end with it.
            out.bindings.extend(self.remove_host(client, now));
            out.registrations.push(client);
        }
        self.release_held(now);
        out
    }

    /// When [`LeaseManager::expire`] next has something to do: the earliest
    /// binding or registration expiry.
    pub fn next_timeout(&self) -> Option<Timestamp> {
        let b = self.binding_expiry.first().map(|&(t, _)| t);
        let h = self.host_expiry.first().map(|&(t, _)| t);
        b.into_iter().chain(h).min()
    }

    /// The earliest binding lease end (the engine's binding-lease timer).
    pub fn next_binding_expiry(&self) -> Option<Timestamp> {
        self.binding_expiry.first().map(|&(t, _)| t)
    }

    /// The earliest registration lapse (the engine's registration-lease timer).
    pub fn next_registration_expiry(&self) -> Option<Timestamp> {
        self.host_expiry.first().map(|&(t, _)| t)
    }

    /// Ends a binding: its resources go to quarantine until `now + time_wait`.
    fn release_binding(&mut self, bind: BindId, now: Timestamp) -> Option<Released> {
        let record = self.record(bind)?;
        let b = self.bindings.remove(&bind)?;
        self.by_host.remove(&(b.client, bind));
        self.binding_expiry.remove(&(b.expires_at(), bind));
        let (ports, spis) = (record.ports.clone(), record.spis.clone());
        if b.extra {
            self.extras.remove(&bind);
        }
        let (nports, nspis) = (ports.len(), spis.len());
        if let Some(host) = self.hosts.get_mut(&b.client) {
            host.usage.bindings -= 1;
            host.usage.ports -= nports;
            host.usage.spis -= nspis;
            if b.method == Method::RsaIp {
                host.usage.addresses -= 1;
            } else if let Some(pos) = host.addresses.iter().position(|&(i, _)| i == b.addr) {
                host.addresses[pos].1 -= 1;
                if host.addresses[pos].1 == 0 {
                    host.addresses.swap_remove(pos);
                }
            }
        }
        let a = self.addr_mut(b.addr);
        if b.method == Method::RsaIp {
            a.whole = Whole::Held;
        } else {
            a.shared -= 1;
        }
        a.held += 1;
        if let Some(pool) = a.ports.as_mut() {
            for (first, _) in ports.runs() {
                pool.disown(first);
            }
        }
        for (first, _) in spis.runs() {
            a.spis.disown(first);
        }
        self.usage.bindings -= 1;
        self.usage.ports_leased -= u64::from(nports);
        self.usage.ports_held += u64::from(nports);
        self.usage.spis_leased -= u64::from(nspis);
        self.usage.spis_held += u64::from(nspis);
        if b.method == Method::RsaIp {
            self.usage.addresses_leased -= 1;
            self.usage.addresses_held += 1;
        }
        // RFC 3102 6.1: hold recently deallocated tuples for at least two
        // minutes (TCP TIME_WAIT) before leasing them again.
        let until = now + self.config.time_wait;
        self.push_held(Held {
            until,
            bind,
            addr: b.addr,
            method: b.method,
            ports,
            spis,
        });
        Some(Released {
            binding: record,
            held_until: until,
        })
    }

    fn push_held(&mut self, held: Held) {
        self.held_binds.insert(held.bind);
        let pos = self.held.partition_point(|h| h.until <= held.until);
        self.held.insert(pos, held);
    }

    /// Returns to the pool everything held until `now` or earlier, oldest
    /// first (RFC 3102 6.1: FIFO from the pool of recently freed ports).
    fn release_held(&mut self, now: Timestamp) {
        while self.held.front().is_some_and(|h| h.until <= now) {
            let Some(h) = self.held.pop_front() else {
                break;
            };
            self.held_binds.remove(&h.bind);
            let (nports, nspis) = (h.ports.len(), h.spis.len());
            let a = self.addr_mut(h.addr);
            a.held -= 1;
            if h.method == Method::RsaIp {
                a.whole = Whole::Free;
            }
            for (first, last) in h.ports.runs() {
                a.port_pool().release(first, last);
            }
            for (first, _) in h.spis.runs() {
                a.spis.release(first);
            }
            if a.whole_eligible() && !a.queued {
                a.queued = true;
                self.whole_queue.push_back(h.addr);
            }
            self.usage.ports_held -= u64::from(nports);
            self.usage.spis_held -= u64::from(nspis);
            if h.method == Method::RsaIp {
                self.usage.addresses_held -= 1;
            }
        }
    }

    // ---- lookups -------------------------------------------------------------

    fn holder(&self, bind: BindId) -> Option<Holder> {
        self.bindings.get(&bind).map(|b| Holder {
            client: b.client,
            bind,
        })
    }

    /// The host leasing `address` whole (RSA-IP), if any.
    pub fn holder_of_address(&self, address: Ipv4Addr) -> Option<Holder> {
        match self.addr(self.lookup(address)?).whole {
            Whole::Leased(bind) => self.holder(bind),
            _ => None,
        }
    }

    /// The host that may use (`address`, `port`): its RSAP-IP or RSIPSEC
    /// binding, or its RSA-IP lease of the whole address.
    pub fn holder_of_port(&self, address: Ipv4Addr, port: u16) -> Option<Holder> {
        let a = self.addr(self.lookup(address)?);
        match a.whole {
            Whole::Leased(bind) => self.holder(bind),
            _ => self.holder(a.ports.as_ref()?.owner(port)?),
        }
    }

    /// The host that may use (`address`, `spi`): its RSIPSEC binding, or its
    /// RSA-IP lease of the whole address.
    pub fn holder_of_spi(&self, address: Ipv4Addr, spi: Spi) -> Option<Holder> {
        let a = self.addr(self.lookup(address)?);
        match a.whole {
            Whole::Leased(bind) => self.holder(bind),
            _ => self.holder(a.spis.owner(spi.0)?),
        }
    }

    /// A live binding.
    pub fn binding(&self, bind: BindId) -> Option<BindingRecord> {
        self.record(bind)
    }

    fn record(&self, bind: BindId) -> Option<BindingRecord> {
        let b = self.bindings.get(&bind)?;
        let (ports, spis) = match (b.extra, self.extras.get(&bind)) {
            (true, Some((p, s))) => (p.clone(), s.clone()),
            _ if b.ports.1 == 0 => (PortSet::None, SpiSet::None),
            _ => (
                PortSet::Range {
                    first: b.ports.0,
                    count: b.ports.1,
                },
                SpiSet::None,
            ),
        };
        Some(BindingRecord {
            bind,
            client: b.client,
            method: b.method,
            address: self.addr(b.addr).address,
            ports,
            spis,
            expires_at: b.expires_at(),
        })
    }

    /// A host's live bindings, by bind ID.
    pub fn bindings_of(&self, client: ClientId) -> impl Iterator<Item = BindingRecord> + '_ {
        self.by_host
            .range((client, BindId(0))..=(client, BindId(u32::MAX)))
            .filter_map(|&(_, b)| self.record(b))
    }

    /// A host's registration.
    pub fn registration(&self, client: ClientId) -> Option<RegistrationRecord> {
        self.hosts.get(&client).map(|h| RegistrationRecord {
            client,
            expires_at: h.expires_at,
        })
    }

    /// What a host holds, against its quota.
    pub fn host_usage(&self, client: ClientId) -> Option<HostUsage> {
        self.hosts.get(&client).map(|h| h.usage)
    }

    /// Pool counters for metrics.
    pub fn usage(&self) -> PoolUsage {
        self.usage
    }

    /// Approximate heap bytes of the lease state (hash tables by capacity,
    /// B-trees at about 2/3 fill, port bitmaps, quarantine), for metrics.
    pub fn heap_estimate(&self) -> usize {
        use std::mem::size_of;
        // hashbrown: one bucket (key + value) plus one control byte per slot.
        let table = |cap: usize, entry: usize| cap * (entry + 1) * 8 / 7;
        let btree = |len: usize, entry: usize| len * (entry + 16 / 7) * 3 / 2;
        let lists = |p: &PortSet, s: &SpiSet| {
            let pl = if let PortSet::List(l) = p {
                l.capacity() * 2
            } else {
                0
            };
            let sl = if let SpiSet::List(l) = s {
                l.capacity() * 4
            } else {
                0
            };
            pl + sl
        };
        let mut bytes = table(self.hosts.capacity(), size_of::<(ClientId, Host)>())
            + table(self.bindings.capacity(), size_of::<(BindId, Binding)>())
            + table(
                self.extras.capacity(),
                size_of::<(BindId, (PortSet, SpiSet))>(),
            )
            + btree(self.by_host.len(), size_of::<(ClientId, BindId)>())
            + btree(self.binding_expiry.len(), size_of::<(Timestamp, BindId)>())
            + btree(self.host_expiry.len(), size_of::<(Timestamp, ClientId)>())
            + self.held.capacity() * size_of::<Held>()
            + table(self.held_binds.capacity(), size_of::<BindId>())
            + self.whole_queue.capacity() * 4
            + self.addresses.capacity() * size_of::<Address>()
            + self.index.capacity() * size_of::<(Ipv4Addr, u32)>();
        bytes += self
            .extras
            .values()
            .map(|(p, s)| lists(p, s))
            .sum::<usize>();
        bytes += self
            .held
            .iter()
            .map(|h| lists(&h.ports, &h.spis))
            .sum::<usize>();
        bytes += self
            .hosts
            .values()
            .map(|h| h.addresses.capacity() * 8)
            .sum::<usize>();
        for a in &self.addresses {
            bytes += a.leasable.len() * 4 + a.spis.heap_estimate();
            bytes += a.ports.as_ref().map_or(0, |p| p.heap_estimate());
        }
        bytes
    }

    // ---- persistence -----------------------------------------------------------

    /// Everything a store needs to rebuild this state with
    /// [`LeaseManager::restore`].
    pub fn records(&self) -> Records {
        let mut registrations: Vec<RegistrationRecord> = self
            .hosts
            .iter()
            .map(|(&client, h)| RegistrationRecord {
                client,
                expires_at: h.expires_at,
            })
            .collect();
        registrations.sort_by_key(|r| r.client);
        let mut bindings: Vec<BindingRecord> = self
            .bindings
            .keys()
            .filter_map(|&b| self.record(b))
            .collect();
        bindings.sort_by_key(|r| r.bind);
        let quarantine = self
            .held
            .iter()
            .map(|h| QuarantineRecord {
                bind: h.bind,
                method: h.method,
                address: self.addr(h.addr).address,
                ports: h.ports.clone(),
                spis: h.spis.clone(),
                until: h.until,
            })
            .collect();
        Records {
            registrations,
            bindings,
            quarantine,
        }
    }

    /// Restores registrations, then bindings, then quarantine, stopping at the
    /// first refused record. Use the `restore_*` methods to skip bad records
    /// instead.
    pub fn restore(&mut self, records: &Records) -> Result<(), RestoreError> {
        for r in &records.registrations {
            self.restore_registration(r)?;
        }
        for b in &records.bindings {
            self.restore_binding(b)?;
        }
        for q in &records.quarantine {
            self.restore_quarantine(q)?;
        }
        Ok(())
    }

    /// Restores a registration as persisted (quotas and `max_hosts` are not
    /// enforced: the host already holds it).
    pub fn restore_registration(
        &mut self,
        record: &RegistrationRecord,
    ) -> Result<(), RestoreError> {
        if self.hosts.contains_key(&record.client) {
            return Err(RestoreError::DuplicateClient(record.client));
        }
        self.insert_host(record.client, record.expires_at);
        Ok(())
    }

    /// Restores a live binding with its ID, resources and expiry. Its
    /// registration must be restored first. A record that lapsed while the
    /// gateway was down is restored too: the next [`LeaseManager::expire`]
    /// ends it (and the engine tells the host).
    pub fn restore_binding(&mut self, record: &BindingRecord) -> Result<(), RestoreError> {
        let bind = record.bind;
        if self.bind_in_use(bind) {
            return Err(RestoreError::DuplicateBind(bind));
        }
        if !self.hosts.contains_key(&record.client) {
            return Err(RestoreError::UnknownClient {
                bind,
                client: record.client,
            });
        }
        let addr = self.check_restorable(
            bind,
            record.method,
            record.address,
            &record.ports,
            &record.spis,
        )?;
        let plan = Plan {
            addr,
            ports: record.ports.clone(),
            spis: record.spis.clone(),
        };
        self.install(bind, record.client, record.method, plan, record.expires_at);
        self.note_bind(bind);
        Ok(())
    }

    /// Restores quarantined resources with their hold time.
    pub fn restore_quarantine(&mut self, record: &QuarantineRecord) -> Result<(), RestoreError> {
        let bind = record.bind;
        if self.bind_in_use(bind) {
            return Err(RestoreError::DuplicateBind(bind));
        }
        let addr = self.check_restorable(
            bind,
            record.method,
            record.address,
            &record.ports,
            &record.spis,
        )?;
        let (nports, nspis) = (record.ports.len(), record.spis.len());
        let a = self.addr_mut(addr);
        a.held += 1;
        if record.method == Method::RsaIp {
            a.whole = Whole::Held;
        }
        for (first, last) in record.ports.runs() {
            a.port_pool().hold(first, last);
        }
        for (first, last) in record.spis.runs() {
            a.spis.take(first, last, HELD);
        }
        if record.method == Method::RsaIp {
            self.usage.addresses_held += 1;
        }
        self.usage.ports_held += u64::from(nports);
        self.usage.spis_held += u64::from(nspis);
        self.push_held(Held {
            until: record.until,
            bind,
            addr,
            method: record.method,
            ports: record.ports.clone(),
            spis: record.spis.clone(),
        });
        self.note_bind(bind);
        Ok(())
    }

    /// Checks a restored record's shape, policy and conflicts; returns its
    /// address index.
    fn check_restorable(
        &self,
        bind: BindId,
        method: Method,
        address: Ipv4Addr,
        ports: &PortSet,
        spis: &SpiSet,
    ) -> Result<u32, RestoreError> {
        let bad = |what| RestoreError::BadRecord { bind, what };
        ports.check().map_err(bad)?;
        spis.check().map_err(bad)?;
        match method {
            Method::RsaIp if !ports.is_empty() || !spis.is_empty() => {
                return Err(bad("RSA-IP binding with ports or SPIs"));
            }
            Method::RsapIp if ports.is_empty() || !spis.is_empty() => {
                return Err(bad("RSAP-IP binding without ports or with SPIs"));
            }
            Method::Rsipsec if spis.is_empty() => return Err(bad("RSIPSEC binding without SPIs")),
            _ => {}
        }
        let i = self.lookup(address).ok_or(RestoreError::Unallowed(bind))?;
        let a = self.addr(i);
        let (lo, hi) = self.spi_bounds();
        let allowed = match method {
            Method::RsaIp => a.whole_lease,
            _ => {
                ports.iter().all(|p| a.port_allowed(p))
                    && spis.iter().all(|s| (lo..=hi).contains(&s.0))
            }
        };
        if !allowed {
            return Err(RestoreError::Unallowed(bind));
        }
        let free = match method {
            Method::RsaIp => a.whole_eligible(),
            _ => {
                a.whole == Whole::Free
                    && ports.iter().all(|p| a.port_free(p))
                    && spis
                        .runs()
                        .iter()
                        .all(|&(f, l)| a.spis.overlap(f, l).is_none())
            }
        };
        if free {
            Ok(i)
        } else {
            Err(RestoreError::Conflict(bind))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_table_entry_is_compact() {
        // The per-binding cost the gateway_grants bench measures: keep it.
        assert_eq!(std::mem::size_of::<(BindId, Binding)>(), 28);
        let (mut b, extra) = Binding::new(
            ClientId(7),
            0,
            Method::RsapIp,
            Timestamp::from_millis(0x0123_4567_89ab_cdef),
            PortSet::Range {
                first: 1024,
                count: 8,
            },
            SpiSet::None,
        );
        assert!(extra.is_none() && !b.extra);
        assert_eq!(b.expires_at().as_millis(), 0x0123_4567_89ab_cdef);
        b.set_expires_at(Timestamp::MAX);
        assert_eq!(b.expires_at(), Timestamp::MAX);
        let (b, extra) = Binding::new(
            ClientId(7),
            0,
            Method::Rsipsec,
            Timestamp::ZERO,
            PortSet::None,
            SpiSet::Range {
                first: Spi(0x1000),
                count: 2,
            },
        );
        assert!(b.extra && extra.is_some());
    }
}
