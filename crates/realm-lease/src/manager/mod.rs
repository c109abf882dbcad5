//! The lease manager: registrations, bindings, quotas, expiry, quarantine.

mod assign;
mod lookup;
mod release;
mod restore;

use std::collections::{BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::config::MIN_LEASE;
use crate::hash::{IdMap, IdSet};
use crate::ports::PortPool;
use crate::spis::SpiPool;
use crate::{
    BindId, BindingError, ClientId, Config, ConfigError, Deregistered, HostUsage, Method,
    PoolUsage, PortSet, RegisterError, RegistrationRecord, Released, SpiSet, Timestamp,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Spi;

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
