//! The RSIP host's data plane, sans-IO: what this host may send through its
//! gateway, which binding (tunnel type, endpoint) a packet leaves under, and
//! what a tunnel packet arriving from the gateway is. The `realm host` daemon
//! keeps the TUN, the raw sockets, the kernel offload and the batching, and
//! asks [`HostDataPlane`] for every decision; nothing here touches a socket
//! or a clock.
//!
//! The host engine's `BindingGranted` / `BindingRevoked` events feed
//! [`HostDataPlane::granted`] / [`HostDataPlane::revoked`]; packets read from
//! the TUN go to [`HostDataPlane::outbound`] (or, for a TCP superpacket that
//! [`HostDataPlane::keeps_whole`] accepts, [`HostDataPlane::outbound_whole`]),
//! packets read from the tunnel sockets to [`HostDataPlane::inbound`].
//!
//! # Outbound (TUN → gateway)
//! 1. The packet must be a whole IPv4 packet (`realm_wire::ipv4`); TCP and
//!    UDP that are not a later fragment must carry their header (UDP's header
//!    alone in a first fragment), else [`DropReason::Malformed`].
//! 2. Its source must be leased ([`Lease::allows`]), else
//!    [`DropReason::NotLeased`]:
//!    - an RSA-IP address: anything goes;
//!    - TCP/UDP (not a later fragment): the source port must be leased on the
//!      address, except that a holder of an RSIPSEC binding may send UDP from
//!      the shared IKE ports 500 and 4500 of its address (RFC 3104 s6.1);
//!    - any other protocol (ICMP, ESP, AH, ...) and later fragments: the
//!      address suffices (the gateway applies its own, finer rules).
//! 3. Among the bindings that allow it, the first (by bind ID) whose tunnel
//!    this data plane speaks (IP-in-IP, RFC 2003; GRE, RFC 2784) is used; a
//!    packet only an L2TP binding allows is [`DropReason::NotLeased`].
//! 4. It is encapsulated towards the binding's tunnel endpoint (RFC 3103
//!    s9.9.3: the gateway unless the grant names another), outer TTL 64, DF
//!    copied from the inner packet (RFC 2003 s3.1); a packet the tunnel
//!    refuses (TTL 0, source equal to the endpoint, too long) is
//!    [`DropReason::Malformed`].
//!
//! # Inbound (gateway → TUN)
//! The packet must be IP-in-IP or GRE and decapsulate cleanly (outer header
//! checksum, not a fragment, GRE version 0 and reserved bits clear, inner
//! packet whole with TTL above 0), else [`DropReason::Malformed`]; its outer
//! source must be the endpoint of a binding of that tunnel type, else
//! [`DropReason::BadOuter`]. The inner packet is delivered.
//!
//! # Whole superpackets
//! A TCP superpacket (one read from a TUN with offloads) whose segments are
//! full-sized for the TUN's MTU may leave whole under IP-in-IP: one tunnel
//! packet the kernel fragments and the gateway reassembles
//! (`docs/deviations.md`, "Host data plane"). It is checked as one packet
//! (one source port); GRE superpackets are split.
//!
//! Limits: IPv4 only; IP-in-IP and GRE.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;

use realm_wire::ipip::{self, DontFragment, Tunnel};
use realm_wire::ipv4::{self, IpProtocol};
use realm_wire::rsip::{Address, BindId, RsipMethod, TunnelType};
use realm_wire::{gre, tcp};

use super::Binding;
use crate::dataplane::{is_shared_ike_port, transport_ports};

/// Bytes GRE adds in front of the inner packet beyond IP-in-IP's outer
/// header: the 4-byte base header, no checksum, key or sequence number
/// (RFC 2784 s2.1). While a GRE binding is held the TUN MTU is this much
/// lower than configured ([`HostDataPlane::holds_gre`]).
pub const GRE_EXTRA: u16 = 4;

/// The largest IPv4 packet (RFC 791 s3.1: a 16-bit total length).
const MAX_PACKET: usize = 65_535;

/// Outer TTL of tunnel packets.
const TUNNEL_TTL: u8 = 64;

/// What one binding lets this host send, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The public address leased.
    pub address: Ipv4Addr,
    /// The ports leased on it, sorted; `None`: the whole address (RSA-IP).
    pub ports: Option<Vec<u16>>,
    /// An RSIPSEC binding (RFC 3104 s6.2): its holder may send IKE from the
    /// shared ports 500 and 4500 of the address (s6.1).
    pub ipsec: bool,
    /// The tunnel endpoint at the gateway.
    pub endpoint: Ipv4Addr,
    /// The tunnel type granted.
    pub tunnel: TunnelType,
}

impl Lease {
    /// The lease a granted binding gives: its IPv4 address (`None` for an
    /// FQDN or IPv6 one, which this data plane cannot carry), its ports
    /// (none listed for RSA-IP: the whole address), its tunnel type and
    /// endpoint (RFC 3103 s9.9.3: the gateway's own address, `gateway`,
    /// unless the grant names another).
    pub fn of_binding(binding: &Binding, gateway: Ipv4Addr) -> Option<Lease> {
        let Some(IpAddr::V4(address)) = binding.public_address() else {
            return None;
        };
        let endpoint = match &binding.tunnel_endpoint {
            Some(Address::Ipv4(a)) => *a,
            _ => gateway,
        };
        let ports = match binding.method {
            RsipMethod::RsaIp => None,
            _ => {
                let mut ports = binding.ports();
                ports.sort_unstable();
                ports.dedup();
                Some(ports)
            }
        };
        Some(Lease {
            address,
            ports,
            ipsec: binding.method == RsipMethod::Rsipsec,
            endpoint,
            tunnel: binding.tunnel_type,
        })
    }

    /// Whether a packet from `address` with `protocol` and source port
    /// `sport` (TCP/UDP; `None` for other protocols and later fragments)
    /// may leave under this lease.
    pub fn allows(&self, address: Ipv4Addr, protocol: IpProtocol, sport: Option<u16>) -> bool {
        if self.address != address {
            return false;
        }
        match (&self.ports, sport) {
            (None, _) => true,
            (Some(ports), Some(p)) if ports.binary_search(&p).is_ok() => true,
            // RFC 3104 s6.1: hosts holding RSIPSEC bindings share UDP 500
            // (and, for NAT-T, 4500) on the address; the gateway tells their
            // IKE traffic apart by the initiator cookie ("N allows the use of
            // this cookie [...] If the cookie is not unique, N drops the
            // packet"), so the host need not lease the port itself.
            (Some(_), Some(p)) => {
                self.ipsec && protocol == IpProtocol::Udp && is_shared_ike_port(p)
            }
            // Protocols without ports (ICMP, ESP, AH): the address suffices.
            (Some(_), None) => true,
        }
    }

    /// Whether this data plane speaks the lease's tunnel.
    pub fn tunnel_supported(&self) -> bool {
        matches!(self.tunnel, TunnelType::IpIp | TunnelType::Gre)
    }
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Outbound: no binding lets this host send it (source address or port
    /// not leased, or only under a tunnel this data plane does not speak).
    NotLeased,
    /// Inbound: the outer source is not the endpoint of a binding of the
    /// packet's tunnel type.
    BadOuter,
    /// Not a whole, well-formed packet (either way), or one the tunnel
    /// refuses to carry (outbound).
    Malformed,
}

impl DropReason {
    /// A stable snake_case label (`realm ctl status`).
    pub fn label(self) -> &'static str {
        match self {
            DropReason::NotLeased => "not_leased",
            DropReason::BadOuter => "bad_outer",
            DropReason::Malformed => "malformed",
        }
    }
}

/// The decision on a packet from the TUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// Send it through this tunnel to this endpoint.
    Tunnel {
        /// IP-in-IP or GRE.
        tunnel: TunnelType,
        /// The tunnel endpoint at the gateway.
        endpoint: Ipv4Addr,
    },
    /// Drop it.
    Drop(DropReason),
}

/// The decision on a packet from a tunnel socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// Deliver the inner packet (exactly its datagram) to the TUN.
    Deliver {
        /// The tunnel it came through.
        tunnel: TunnelType,
        /// The inner packet.
        inner: &'a [u8],
    },
    /// Drop it.
    Drop(DropReason),
}

/// The data plane's decisions, counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Outbound packets (superpackets counting one) given a tunnel.
    pub tunnelled: u64,
    /// Inbound packets whose inner packet is to be delivered.
    pub delivered: u64,
    /// Outbound drops: [`DropReason::NotLeased`].
    pub drop_not_leased: u64,
    /// Inbound drops: [`DropReason::BadOuter`].
    pub drop_bad_outer: u64,
    /// Drops either way: [`DropReason::Malformed`].
    pub drop_malformed: u64,
}

impl Counters {
    fn count(&mut self, reason: DropReason) {
        let c = match reason {
            DropReason::NotLeased => &mut self.drop_not_leased,
            DropReason::BadOuter => &mut self.drop_bad_outer,
            DropReason::Malformed => &mut self.drop_malformed,
        };
        *c += 1;
    }

    /// The drops for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::NotLeased => self.drop_not_leased,
            DropReason::BadOuter => self.drop_bad_outer,
            DropReason::Malformed => self.drop_malformed,
        }
    }
}

/// A binding taken in by [`HostDataPlane::granted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// Its public address.
    pub address: Ipv4Addr,
    /// No other binding held the address: the host starts carrying it.
    pub new_address: bool,
    /// Whether its tunnel type is one this data plane speaks (IP-in-IP or
    /// GRE); if not, the packets only it allows are dropped.
    pub tunnel_supported: bool,
}

/// A binding let go by [`HostDataPlane::revoked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revoked {
    /// Its public address.
    pub address: Ipv4Addr,
    /// No other binding holds the address: the host stops carrying it.
    pub address_released: bool,
    /// It was the last binding.
    pub last: bool,
}

/// The host's data plane decisions. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct HostDataPlane {
    /// The host's underlay address: the outer source of its tunnel packets.
    tunnel_source: Ipv4Addr,
    /// The gateway's address: the tunnel endpoint unless a grant names one.
    gateway: Ipv4Addr,
    leases: BTreeMap<BindId, Lease>,
    ident: u16,
    counters: Counters,
}

impl HostDataPlane {
    /// A data plane with no binding: it sends nothing and delivers nothing.
    pub fn new(tunnel_source: Ipv4Addr, gateway: Ipv4Addr) -> HostDataPlane {
        HostDataPlane {
            tunnel_source,
            gateway,
            leases: BTreeMap::new(),
            ident: 0,
            counters: Counters::default(),
        }
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A binding was granted (or granted again): its lease applies from now.
    /// `None`, and nothing changes, for a binding without an IPv4 address.
    pub fn granted(&mut self, binding: &Binding) -> Option<Granted> {
        let lease = Lease::of_binding(binding, self.gateway)?;
        Some(self.grant(binding.bind_id, lease))
    }

    /// Puts `lease` under `bind_id` (replacing what it held).
    pub fn grant(&mut self, bind_id: BindId, lease: Lease) -> Granted {
        let granted = Granted {
            address: lease.address,
            new_address: !self.holds_address(lease.address),
            tunnel_supported: lease.tunnel_supported(),
        };
        self.leases.insert(bind_id, lease);
        granted
    }

    /// A binding ended: its lease no longer applies. `None` if it held none.
    pub fn revoked(&mut self, bind_id: BindId) -> Option<Revoked> {
        let lease = self.leases.remove(&bind_id)?;
        Some(Revoked {
            address: lease.address,
            address_released: !self.holds_address(lease.address),
            last: self.leases.is_empty(),
        })
    }

    /// The leases held, by bind ID.
    pub fn leases(&self) -> &BTreeMap<BindId, Lease> {
        &self.leases
    }

    /// Whether some binding holds `address`.
    pub fn holds_address(&self, address: Ipv4Addr) -> bool {
        self.leases.values().any(|l| l.address == address)
    }

    /// Whether a GRE binding is held: the TUN MTU must then be
    /// [`GRE_EXTRA`] below IP-in-IP's so that tunnel packets stay
    /// unfragmented (the gateway drops outer fragments).
    pub fn holds_gre(&self) -> bool {
        self.leases.values().any(|l| l.tunnel == TunnelType::Gre)
    }

    /// RSAP-IP: the ephemeral port range the host's stack should use, the
    /// largest contiguous run of leased ports (a non-contiguous block is
    /// used only in part). `None` without leased ports.
    pub fn ephemeral_range(&self) -> Option<RangeInclusive<u16>> {
        let mut ports: Vec<u16> = self
            .leases
            .values()
            .filter_map(|l| l.ports.as_ref())
            .flatten()
            .copied()
            .collect();
        ports.sort_unstable();
        ports.dedup();
        largest_run(&ports)
    }

    /// The sources the kernel may encapsulate itself (IP-in-IP offload of
    /// whole TCP superpackets): each (address, TCP source port) of an
    /// IP-in-IP lease (port `None` for a whole address), with its endpoint.
    pub fn ipip_sources(&self) -> BTreeMap<(Ipv4Addr, Option<u16>), Ipv4Addr> {
        let mut sources = BTreeMap::new();
        for l in self
            .leases
            .values()
            .filter(|l| l.tunnel == TunnelType::IpIp)
        {
            match &l.ports {
                None => {
                    sources.insert((l.address, None), l.endpoint);
                }
                Some(ports) => {
                    for &p in ports {
                        sources.insert((l.address, Some(p)), l.endpoint);
                    }
                }
            }
        }
        sources
    }

    /// The lease a packet from (`src`, `protocol`, `sport`) leaves under:
    /// the first allowing it whose tunnel is supported, else the first
    /// allowing it.
    fn lease_for(&self, src: Ipv4Addr, protocol: IpProtocol, sport: Option<u16>) -> Option<&Lease> {
        self.leases
            .values()
            .filter(|l| l.allows(src, protocol, sport))
            .min_by_key(|l| !l.tunnel_supported())
    }

    /// The lease `packet` leaves under, or why it may not leave.
    fn check<'p>(&self, packet: &'p [u8]) -> Result<(ipv4::Packet<&'p [u8]>, &Lease), DropReason> {
        let (ip, sport) = source(packet).ok_or(DropReason::Malformed)?;
        let lease = self
            .lease_for(ip.src_addr(), ip.protocol(), sport)
            .filter(|l| l.tunnel_supported())
            .ok_or(DropReason::NotLeased)?;
        Ok((ip, lease))
    }

    /// A packet read from the TUN: where it may go. On
    /// [`Outbound::Tunnel`], `out` holds the tunnel packet (cleared first).
    pub fn outbound(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Outbound {
        out.clear();
        let (ip, lease) = match self.check(packet) {
            Ok(v) => v,
            Err(reason) => return self.drop(reason),
        };
        let (tunnel, endpoint) = (lease.tunnel, lease.endpoint);
        let outer = Tunnel {
            src_addr: self.tunnel_source,
            dst_addr: endpoint,
            ttl: TUNNEL_TTL,
            dont_frag: DontFragment::CopyInner,
        };
        self.ident = self.ident.wrapping_add(1);
        let inner = ip.datagram();
        let encapsulated = if tunnel == TunnelType::Gre {
            // RFC 2784 s2: the plain 4-byte header, protocol type 0x0800; no
            // checksum, key or sequence number (the gateway needs none).
            gre::encapsulate(&outer, self.ident, &gre::Options::default(), inner, out)
        } else {
            ipip::encapsulate(&outer, self.ident, inner, out)
        };
        if encapsulated.is_err() {
            return self.drop(DropReason::Malformed);
        }
        self.counters.tunnelled += 1;
        Outbound::Tunnel { tunnel, endpoint }
    }

    /// Whether a TCP superpacket read from the TUN, of segments of
    /// `gso_size` bytes, may leave whole ([`Self::outbound_whole`]) rather
    /// than split: its segments are full-sized for `mtu` (the size the
    /// gateway cuts it back into: its tunnel MTU less IP-in-IP), it fits one
    /// tunnel packet, and it leaves under IP-in-IP.
    pub fn keeps_whole(&self, packet: &[u8], gso_size: u16, mtu: u16) -> bool {
        if packet.len() + ipip::OVERHEAD > MAX_PACKET {
            return false;
        }
        let Ok((ip, lease)) = self.check(packet) else {
            return false;
        };
        if ip.protocol() != IpProtocol::Tcp || ip.is_fragment() {
            return false;
        }
        let Ok(tcp) = tcp::Packet::new_checked(ip.payload()) else {
            return false;
        };
        usize::from(gso_size) + usize::from(ip.header_len()) + usize::from(tcp.header_len())
            == usize::from(mtu)
            && lease.tunnel == TunnelType::IpIp
    }

    /// A superpacket [`Self::keeps_whole`] accepted, checked as one packet
    /// (one source port). On [`Outbound::Tunnel`] it leaves as ONE IP-in-IP
    /// packet the daemon's raw socket writes (the kernel writes the outer
    /// header, DF clear, and fragments it); the gateway reassembles it.
    pub fn outbound_whole(&mut self, packet: &[u8]) -> Outbound {
        match self.check(packet) {
            Ok((_, lease)) if lease.tunnel == TunnelType::IpIp => {
                let endpoint = lease.endpoint;
                self.counters.tunnelled += 1;
                Outbound::Tunnel {
                    tunnel: TunnelType::IpIp,
                    endpoint,
                }
            }
            Ok(_) => self.drop(DropReason::NotLeased),
            Err(reason) => self.drop(reason),
        }
    }

    fn drop(&mut self, reason: DropReason) -> Outbound {
        self.counters.count(reason);
        Outbound::Drop(reason)
    }

    /// A packet read from a tunnel socket (IP-in-IP or GRE, told apart by the
    /// outer protocol): its inner packet if it came from the endpoint of a
    /// binding of that tunnel type.
    pub fn inbound<'a>(&mut self, packet: &'a [u8]) -> Inbound<'a> {
        let Some((tunnel, outer_src, inner)) = decapsulate(packet) else {
            self.counters.count(DropReason::Malformed);
            return Inbound::Drop(DropReason::Malformed);
        };
        if !self
            .leases
            .values()
            .any(|l| l.endpoint == outer_src && l.tunnel == tunnel)
        {
            self.counters.count(DropReason::BadOuter);
            return Inbound::Drop(DropReason::BadOuter);
        }
        self.counters.delivered += 1;
        Inbound::Deliver { tunnel, inner }
    }
}

/// An IPv4 packet from the TUN, and for TCP and UDP that is not a later
/// fragment, its source port; `None` if malformed.
fn source(packet: &[u8]) -> Option<(ipv4::Packet<&[u8]>, Option<u16>)> {
    let ip = ipv4::Packet::new_checked(packet).ok()?;
    let protocol = ip.protocol();
    let sport = match protocol {
        IpProtocol::Tcp | IpProtocol::Udp if ip.frag_offset() == 0 => {
            Some(transport_ports(protocol, ip.payload(), ip.more_frags())?.0)
        }
        _ => None,
    };
    Some((ip, sport))
}

/// Takes a tunnel packet apart by its outer protocol: IP-in-IP (RFC 2003) or
/// GRE (RFC 2784; `gre::decapsulate` checks the reserved bits of s2.5.1, the
/// version of s2.3.1 and the checksum when present). Returns the tunnel type,
/// the outer source and the inner packet; `None` for anything malformed.
fn decapsulate(packet: &[u8]) -> Option<(TunnelType, Ipv4Addr, &[u8])> {
    match ipv4::Packet::new_checked(packet).ok()?.protocol() {
        IpProtocol::IpIp => {
            let d = ipip::decapsulate(packet).ok()?;
            Some((TunnelType::IpIp, d.outer.src_addr, d.inner.into_inner()))
        }
        IpProtocol::Gre => {
            let d = gre::decapsulate(packet).ok()?;
            Some((TunnelType::Gre, d.outer.src_addr, d.inner.into_inner()))
        }
        _ => None,
    }
}

/// The longest run of consecutive values in sorted, deduplicated `ports`
/// (the first of equally long ones).
fn largest_run(ports: &[u16]) -> Option<RangeInclusive<u16>> {
    let mut best: Option<(u16, u16)> = None;
    let mut start = *ports.first()?;
    let mut prev = start;
    for &p in ports.iter().skip(1) {
        if Some(p) != prev.checked_add(1) {
            if best.is_none_or(|(a, b)| prev - start > b - a) {
                best = Some((start, prev));
            }
            start = p;
        }
        prev = p;
    }
    if best.is_none_or(|(a, b)| prev - start > b - a) {
        best = Some((start, prev));
    }
    best.map(|(a, b)| a..=b)
}
