//! The binding table: which host holds which demultiplexing fields (RFC 3102
//! s3.2, RFC 3103 s7.3, RFC 3104 s5), kept in sync by the gateway engine.
//!
//! Owns the lookup structures the packet path reads: per public address a
//! whole-address (RSA-IP) owner and a two-level port array (RSAP-IP, LISTEN and
//! RSIPSEC ports), a hash of (address, SPI), the tunnel endpoints and the
//! bindings of each host. It never allocates on lookup, and inserts are
//! all-or-nothing: a conflicting binding changes nothing.

use std::net::Ipv4Addr;

use realm_lease::{BindId, ClientId, PortSet, Spi, SpiSet};
use realm_wire::rsip::TunnelType;
use rustc_hash::FxHashMap;

/// What a binding leases on its public address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resources {
    /// RSA-IP: the whole address, every protocol and port (RFC 3103 s7.3.1).
    WholeAddress,
    /// RSAP-IP: these ports of the address, for TCP and UDP alike (RSIP ports
    /// carry no protocol, RFC 3103 s8.2).
    Ports(PortSet),
    /// LISTEN_RESPONSE (RFC 3103 s9.16): these ports, open to inbound
    /// connections from any remote the remote flow policy allows.
    Listen(PortSet),
    /// RSIPSEC (RFC 3104 s6.2): SPIs on the address for inbound ESP and AH
    /// (the SPI parameter carries no protocol, so both), and optionally ports
    /// (`PortSet::None` for the "don't need" form).
    Ipsec {
        /// The SPIs the host's peers use towards it.
        spis: SpiSet,
        /// Ports, or `PortSet::None`.
        ports: PortSet,
    },
}

/// Remote flow policy of a binding (RFC 3103 s7.2): which remote hosts the
/// leased parameters may be used with, checked in both directions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum RemoteFlow {
    /// No remote policy: any remote host.
    #[default]
    Any,
    /// Macro-flow: only this remote address, any port.
    Address(Ipv4Addr),
    /// Micro-flow (or macro-flow with ports): this remote address and these
    /// remote ports (checked for TCP and UDP; other protocols have no port).
    AddressPorts {
        /// The remote address.
        address: Ipv4Addr,
        /// The remote ports.
        ports: PortSet,
    },
}

/// The tunnel between the gateway and the host of a binding (RFC 3103 s8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tunnel {
    /// The host's end of the tunnel: its private address.
    pub endpoint: Ipv4Addr,
    /// IP-in-IP or GRE (L2TP is not supported by this data plane).
    pub kind: TunnelType,
}

/// One binding, as the gateway engine granted it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Binding {
    /// The bind ID (RFC 3103 s8.5), unique in the table.
    pub bind: BindId,
    /// The host (its client ID).
    pub host: ClientId,
    /// The tunnel the host's packets come through and its packets go back in.
    pub tunnel: Tunnel,
    /// The public address.
    pub address: Ipv4Addr,
    /// What is leased on it.
    pub resources: Resources,
    /// Remote flow policy.
    pub remote: RemoteFlow,
}

/// Why a binding was not inserted. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The bind ID is already in the table.
    #[error("{0} is already in the table")]
    DuplicateBind(BindId),
    /// Only IP-in-IP and GRE tunnels are supported.
    #[error("tunnel type {0:?} is not supported by the data plane")]
    UnsupportedTunnel(TunnelType),
    /// The tunnel endpoint is another host's.
    #[error("tunnel endpoint {endpoint} belongs to {host}")]
    EndpointInUse {
        /// The endpoint.
        endpoint: Ipv4Addr,
        /// Its host.
        host: ClientId,
    },
    /// RSA-IP on an address that has other bindings or is the gateway's own,
    /// or a binding on an address leased whole.
    #[error("address {0} is leased whole or already shared")]
    AddressInUse(Ipv4Addr),
    /// A port is already leased on the address.
    #[error("port {port} of {address} is already leased")]
    PortInUse {
        /// The address.
        address: Ipv4Addr,
        /// The port.
        port: u16,
    },
    /// An SPI is already leased on the address.
    #[error("SPI {:#010x} on {address} is already leased", .spi.0)]
    SpiInUse {
        /// The address.
        address: Ipv4Addr,
        /// The SPI.
        spi: Spi,
    },
    /// An empty port set for RSAP-IP or LISTEN, or no SPI for RSIPSEC.
    #[error("the binding leases nothing")]
    Empty,
    /// More SPIs than [`super::Config::max_spis_per_binding`].
    #[error("{0} SPIs: above the per-binding limit")]
    TooManySpis(u32),
    /// The host already has [`super::Config::max_bindings_per_host`] bindings.
    #[error("client {:#010x} has too many bindings", .0.0)]
    HostFull(ClientId),
}

/// Slot index 0 is never used: 0 means "no binding" in the lookup arrays.
pub(crate) const NONE: u32 = 0;

/// Tunnel encapsulation, as the packet path sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encap {
    IpIp,
    Gre,
}

impl Encap {
    pub(crate) fn tunnel_type(self) -> TunnelType {
        match self {
            Encap::IpIp => TunnelType::IpIp,
            Encap::Gre => TunnelType::Gre,
        }
    }
}

/// Kind of binding, as the packet path sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    RsaIp,
    RsapIp,
    Listen,
    Ipsec,
}

/// Remote flow mode, the address inline (the ports stay in the cold copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Remote {
    Any,
    Address(u32),
    AddressPorts(u32),
}

/// The hot part of a binding: what the packet path reads, 28 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub(crate) generation: u32,
    pub(crate) live: bool,
    pub(crate) host: ClientId,
    pub(crate) bind: BindId,
    pub(crate) endpoint: u32,
    pub(crate) address: u32,
    pub(crate) encap: Encap,
    pub(crate) kind: Kind,
    pub(crate) remote: Remote,
}

const EMPTY_SLOT: Slot = Slot {
    generation: 0,
    live: false,
    host: ClientId(0),
    bind: BindId(0),
    endpoint: 0,
    address: 0,
    encap: Encap::IpIp,
    kind: Kind::RsaIp,
    remote: Remote::Any,
};

/// A demultiplexing cell: the binding's slot index and a copy of what the
/// fast paths need (host, bind ID, endpoint, tunnel type, "no remote
/// policy"), so that a packet costs one table read, not two dependent ones.
/// 16 bytes; kept in step with the slot by insert and remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cell {
    /// Slot index << 2 | GRE bit | no-remote-policy bit; 0 for none.
    tag: u32,
    pub(crate) host: ClientId,
    pub(crate) bind: BindId,
    pub(crate) endpoint: u32,
}

const CELL_GRE: u32 = 1;
const CELL_ANY_REMOTE: u32 = 2;

pub(crate) const EMPTY_CELL: Cell = Cell {
    tag: 0,
    host: ClientId(0),
    bind: BindId(0),
    endpoint: 0,
};

impl Cell {
    fn new(index: u32, slot: &Slot) -> Cell {
        let mut tag = index << 2;
        if slot.encap == Encap::Gre {
            tag |= CELL_GRE;
        }
        if slot.remote == Remote::Any {
            tag |= CELL_ANY_REMOTE;
        }
        Cell {
            tag,
            host: slot.host,
            bind: slot.bind,
            endpoint: slot.endpoint,
        }
    }

    /// The slot index, or [`NONE`].
    #[inline]
    pub(crate) fn index(&self) -> u32 {
        self.tag >> 2
    }

    #[inline]
    pub(crate) fn encap(&self) -> Encap {
        if self.tag & CELL_GRE != 0 {
            Encap::Gre
        } else {
            Encap::IpIp
        }
    }

    /// True when the binding has no remote flow policy.
    #[inline]
    pub(crate) fn any_remote(&self) -> bool {
        self.tag & CELL_ANY_REMOTE != 0
    }
}

/// Port to cell on one address: 256 pages of 256 ports, a page (4 KiB)
/// allocated on its first port, so a lookup is two array reads and no hash.
#[derive(Debug)]
pub(crate) struct PortMap {
    pages: Box<[Option<Box<[Cell; 256]>>; 256]>,
    count: u32,
}

impl PortMap {
    fn new() -> PortMap {
        PortMap {
            pages: Box::new([const { None }; 256]),
            count: 0,
        }
    }

    #[inline]
    pub(crate) fn get(&self, port: u16) -> Cell {
        match &self.pages[usize::from(port >> 8)] {
            Some(page) => page[usize::from(port & 0xff)],
            None => EMPTY_CELL,
        }
    }

    fn set(&mut self, port: u16, cell: Cell) {
        let page =
            self.pages[usize::from(port >> 8)].get_or_insert_with(|| Box::new([EMPTY_CELL; 256]));
        let old = &mut page[usize::from(port & 0xff)];
        match (old.index() == NONE, cell.index() == NONE) {
            (true, false) => self.count += 1,
            (false, true) => self.count -= 1,
            _ => {}
        }
        *old = cell;
    }
}

/// One public address the table knows.
#[derive(Debug)]
pub(crate) struct AddrEntry {
    /// The RSA-IP binding holding the whole address, or an empty cell.
    pub(crate) whole: Cell,
    /// Port owners, once a port binding exists on the address.
    pub(crate) ports: Option<Box<PortMap>>,
    /// Bindings on the address.
    bindings: u32,
    /// One of the gateway's own addresses ([`super::Config::local_addresses`]).
    pub(crate) local: bool,
}

impl AddrEntry {
    /// The slot of the RSA-IP binding on the address, or [`NONE`].
    #[inline]
    pub(crate) fn whole_owner(&self) -> u32 {
        self.whole.index()
    }

    /// The cell of `port`: the RSA-IP binding's for an address leased whole.
    #[inline]
    pub(crate) fn port_cell(&self, port: u16) -> Cell {
        if self.whole.index() != NONE {
            return self.whole;
        }
        match &self.ports {
            Some(map) => map.get(port),
            None => EMPTY_CELL,
        }
    }

    /// The slot of the binding leasing `port`, or [`NONE`].
    #[inline]
    pub(crate) fn port_owner(&self, port: u16) -> u32 {
        match &self.ports {
            Some(map) => map.get(port).index(),
            None => NONE,
        }
    }
}

/// A host's tunnel endpoint: whose it is and which tunnel types its
/// bindings were granted (reference counts).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EndpointEntry {
    pub(crate) host: ClientId,
    ipip: u32,
    gre: u32,
}

impl EndpointEntry {
    pub(crate) fn allows(&self, encap: Encap) -> bool {
        match encap {
            Encap::IpIp => self.ipip > 0,
            Encap::Gre => self.gre > 0,
        }
    }
}

fn spi_key(address: u32, spi: u32) -> u64 {
    (u64::from(address) << 32) | u64::from(spi)
}

fn port_list(resources: &Resources) -> &PortSet {
    const NO_PORTS: &PortSet = &PortSet::None;
    match resources {
        Resources::WholeAddress => NO_PORTS,
        Resources::Ports(p) | Resources::Listen(p) => p,
        Resources::Ipsec { ports, .. } => ports,
    }
}

/// The binding table.
#[derive(Debug)]
pub(crate) struct Table {
    slots: Vec<Slot>,
    cold: Vec<Option<Binding>>,
    free: Vec<u32>,
    by_bind: FxHashMap<BindId, u32>,
    addrs: FxHashMap<u32, AddrEntry>,
    spis: FxHashMap<u64, u32>,
    endpoints: FxHashMap<u32, EndpointEntry>,
    hosts: FxHashMap<ClientId, Vec<u32>>,
    max_bindings_per_host: usize,
    max_spis_per_binding: u32,
}

impl Table {
    pub(crate) fn new(
        local: &[Ipv4Addr],
        max_bindings_per_host: usize,
        max_spis_per_binding: u32,
    ) -> Table {
        let mut addrs = FxHashMap::default();
        for a in local {
            addrs.insert(
                a.to_bits(),
                AddrEntry {
                    whole: EMPTY_CELL,
                    ports: None,
                    bindings: 0,
                    local: true,
                },
            );
        }
        Table {
            slots: vec![EMPTY_SLOT],
            cold: vec![None],
            free: Vec::new(),
            by_bind: FxHashMap::default(),
            addrs,
            spis: FxHashMap::default(),
            endpoints: FxHashMap::default(),
            hosts: FxHashMap::default(),
            max_bindings_per_host,
            max_spis_per_binding,
        }
    }

    /// Reserves room for `n` more bindings (a restore after restart).
    pub(crate) fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        self.cold.reserve(n);
        self.by_bind.reserve(n);
        self.hosts.reserve(n);
        self.endpoints.reserve(n);
    }

    pub(crate) fn len(&self) -> usize {
        self.by_bind.len()
    }

    #[inline]
    pub(crate) fn addr(&self, address: u32) -> Option<&AddrEntry> {
        self.addrs.get(&address)
    }

    #[inline]
    pub(crate) fn slot(&self, index: u32) -> &Slot {
        // Indexes come from the table's own arrays; an out-of-range one would
        // be a table bug, and reads as the never-live slot 0.
        self.slots.get(index as usize).unwrap_or(&EMPTY_SLOT)
    }

    /// True when `index` still holds the binding generation `generation`.
    #[inline]
    pub(crate) fn is_live(&self, index: u32, generation: u32) -> bool {
        let slot = self.slot(index);
        slot.live && slot.generation == generation
    }

    /// The cell of a slot (for the slow paths, which found the slot otherwise).
    pub(crate) fn cell(&self, index: u32) -> Cell {
        Cell::new(index, self.slot(index))
    }

    #[inline]
    pub(crate) fn spi_owner(&self, address: u32, spi: u32) -> u32 {
        self.spis
            .get(&spi_key(address, spi))
            .copied()
            .unwrap_or(NONE)
    }

    #[inline]
    pub(crate) fn endpoint(&self, endpoint: u32) -> Option<&EndpointEntry> {
        self.endpoints.get(&endpoint)
    }

    pub(crate) fn host_slots(&self, host: ClientId) -> &[u32] {
        self.hosts.get(&host).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn binding(&self, bind: BindId) -> Option<&Binding> {
        let index = *self.by_bind.get(&bind)?;
        self.cold.get(index as usize)?.as_ref()
    }

    /// The remote ports of a micro-flow binding.
    pub(crate) fn remote_ports(&self, index: u32) -> Option<&PortSet> {
        match &self.cold.get(index as usize)?.as_ref()?.remote {
            RemoteFlow::AddressPorts { ports, .. } => Some(ports),
            _ => None,
        }
    }

    fn spi_values(spis: &SpiSet) -> impl Iterator<Item = u32> + '_ {
        spis.iter().map(|s| s.0)
    }

    pub(crate) fn insert(&mut self, binding: Binding) -> Result<(), TableError> {
        let encap = match binding.tunnel.kind {
            TunnelType::IpIp => Encap::IpIp,
            TunnelType::Gre => Encap::Gre,
            other => return Err(TableError::UnsupportedTunnel(other)),
        };
        if self.by_bind.contains_key(&binding.bind) {
            return Err(TableError::DuplicateBind(binding.bind));
        }
        let endpoint = binding.tunnel.endpoint.to_bits();
        if let Some(e) = self.endpoints.get(&endpoint)
            && e.host != binding.host
        {
            return Err(TableError::EndpointInUse {
                endpoint: binding.tunnel.endpoint,
                host: e.host,
            });
        }
        if self.host_slots(binding.host).len() >= self.max_bindings_per_host {
            return Err(TableError::HostFull(binding.host));
        }
        let address = binding.address.to_bits();
        let entry = self.addrs.get(&address);
        let kind = match &binding.resources {
            Resources::WholeAddress => {
                if entry.is_some_and(|e| e.bindings > 0 || e.local) {
                    return Err(TableError::AddressInUse(binding.address));
                }
                Kind::RsaIp
            }
            Resources::Ports(p) | Resources::Listen(p) => {
                if p.is_empty() {
                    return Err(TableError::Empty);
                }
                if matches!(binding.resources, Resources::Listen(_)) {
                    Kind::Listen
                } else {
                    Kind::RsapIp
                }
            }
            Resources::Ipsec { spis, .. } => {
                if spis.is_empty() {
                    return Err(TableError::Empty);
                }
                if spis.len() > self.max_spis_per_binding {
                    return Err(TableError::TooManySpis(spis.len()));
                }
                Kind::Ipsec
            }
        };
        if kind != Kind::RsaIp && entry.is_some_and(|e| e.whole_owner() != NONE) {
            return Err(TableError::AddressInUse(binding.address));
        }
        let ports = port_list(&binding.resources);
        if let Some(map) = entry.and_then(|e| e.ports.as_ref())
            && let Some(port) = ports.iter().find(|&p| map.get(p).index() != NONE)
        {
            return Err(TableError::PortInUse {
                address: binding.address,
                port,
            });
        }
        if let Resources::Ipsec { spis, .. } = &binding.resources
            && let Some(spi) =
                Self::spi_values(spis).find(|&s| self.spis.contains_key(&spi_key(address, s)))
        {
            return Err(TableError::SpiInUse {
                address: binding.address,
                spi: Spi(spi),
            });
        }

        // Checks passed: apply.
        let remote = match binding.remote {
            RemoteFlow::Any => Remote::Any,
            RemoteFlow::Address(a) => Remote::Address(a.to_bits()),
            RemoteFlow::AddressPorts { address, .. } => Remote::AddressPorts(address.to_bits()),
        };
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(EMPTY_SLOT);
                self.cold.push(None);
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let slot = &mut self.slots[index as usize];
        *slot = Slot {
            generation: slot.generation.wrapping_add(1),
            live: true,
            host: binding.host,
            bind: binding.bind,
            endpoint,
            address,
            encap,
            kind,
            remote,
        };
        let slot = *slot;
        let entry = self.addrs.entry(address).or_insert(AddrEntry {
            whole: EMPTY_CELL,
            ports: None,
            bindings: 0,
            local: false,
        });
        entry.bindings += 1;
        let cell = Cell::new(index, &slot);
        if kind == Kind::RsaIp {
            entry.whole = cell;
        }
        if !ports.is_empty() {
            let map = entry.ports.get_or_insert_with(|| Box::new(PortMap::new()));
            for p in ports.iter() {
                map.set(p, cell);
            }
        }
        if let Resources::Ipsec { spis, .. } = &binding.resources {
            for s in Self::spi_values(spis) {
                self.spis.insert(spi_key(address, s), index);
            }
        }
        let e = self.endpoints.entry(endpoint).or_insert(EndpointEntry {
            host: binding.host,
            ipip: 0,
            gre: 0,
        });
        match encap {
            Encap::IpIp => e.ipip += 1,
            Encap::Gre => e.gre += 1,
        }
        self.hosts.entry(binding.host).or_default().push(index);
        self.by_bind.insert(binding.bind, index);
        self.cold[index as usize] = Some(binding);
        Ok(())
    }

    /// Removes a binding. Returns it, and whether its host has no binding left.
    pub(crate) fn remove(&mut self, bind: BindId) -> Option<(Binding, bool)> {
        let index = self.by_bind.remove(&bind)?;
        let binding = self.cold.get_mut(index as usize)?.take()?;
        let slot = self.slots[index as usize];
        self.slots[index as usize].live = false;
        self.free.push(index);
        let address = slot.address;
        if let Some(entry) = self.addrs.get_mut(&address) {
            entry.bindings -= 1;
            if entry.whole.index() == index {
                entry.whole = EMPTY_CELL;
            }
            if let Some(map) = entry.ports.as_mut() {
                for p in port_list(&binding.resources).iter() {
                    if map.get(p).index() == index {
                        map.set(p, EMPTY_CELL);
                    }
                }
                if map.count == 0 {
                    entry.ports = None;
                }
            }
            if entry.bindings == 0 && !entry.local {
                self.addrs.remove(&address);
            }
        }
        if let Resources::Ipsec { spis, .. } = &binding.resources {
            for s in Self::spi_values(spis) {
                self.spis.remove(&spi_key(address, s));
            }
        }
        if let Some(e) = self.endpoints.get_mut(&slot.endpoint) {
            match slot.encap {
                Encap::IpIp => e.ipip -= 1,
                Encap::Gre => e.gre -= 1,
            }
            if e.ipip == 0 && e.gre == 0 {
                self.endpoints.remove(&slot.endpoint);
            }
        }
        let mut host_gone = false;
        if let Some(list) = self.hosts.get_mut(&slot.host) {
            list.retain(|&i| i != index);
            if list.is_empty() {
                self.hosts.remove(&slot.host);
                host_gone = true;
            }
        }
        Some((binding, host_gone))
    }

    /// The bind IDs of a host's bindings.
    pub(crate) fn binds_of(&self, host: ClientId) -> Vec<BindId> {
        self.host_slots(host)
            .iter()
            .map(|&i| self.slot(i).bind)
            .collect()
    }
}
