//! Lookups: who holds an address, port or SPI, binding and registration
//! records, usage.

use std::net::Ipv4Addr;

use super::{Address, Binding, Held, Host, LeaseManager, Whole};
use crate::{
    BindId, BindingRecord, ClientId, Holder, HostUsage, PoolUsage, PortSet, RegistrationRecord,
    Spi, SpiSet, Timestamp,
};

impl LeaseManager {
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

    pub(super) fn record(&self, bind: BindId) -> Option<BindingRecord> {
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
}
