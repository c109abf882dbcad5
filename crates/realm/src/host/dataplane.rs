//! The host's data plane: a TUN device carrying the leased public
//! address(es), routes sending public destinations through it, the leased
//! port block as the ephemeral port range, and IP-in-IP (RFC 2003) or GRE
//! (RFC 2784), per binding as granted, to and from the gateway over raw
//! protocol-4 and protocol-47 sockets. Packets from the TUN whose source is
//! not leased are dropped and counted; tunnelled packets whose outer source
//! is not the gateway's endpoint are dropped and counted.
//!
//! Bulk TCP: the TUN has offloads, so a read may be a superpacket (up to 64
//! KiB of one flow). Under IP-in-IP, one whose segments are full-sized for the
//! TUN MTU is checked once (one source port) and leaves whole, as one tunnel
//! packet the kernel fragments ([`DataPlane::outbound_whole`]); the gateway
//! reassembles it and forwards it as a GSO packet, cut into the same segments.
//! Others are split into MTU packets (docs/deviations.md, "Host data plane").
//!
//! Limits: IPv4 only; IP-in-IP and GRE (an L2TP grant is logged and its
//! packets dropped); routes are the two halves 0.0.0.0/1 and 128.0.0.0/1 via
//! the TUN, so anything reached by a more specific route (the gateway's and
//! other local networks, when connected or routed explicitly) stays direct.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;

use anyhow::Context as _;
use realm_io::offload::IpipOffload;
use realm_io::raw::{RawIpOptions, proto};
use realm_io::{Ipv4Prefix, Netlink, RawIp, RouteVia, Tun, TunConfig};
use realm_rsip::host::Binding;
use realm_wire::gre;
use realm_wire::ipip::{self, DontFragment, Tunnel};
use realm_wire::rsip::{Address, BindId, RsipMethod, TunnelType};
use tracing::{debug, info, warn};

use super::config::DaemonSettings;

/// Counters of the data plane's drops and forwards.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counters {
    pub(super) outbound: u64,
    pub(super) inbound: u64,
    pub(super) drop_not_leased: u64,
    pub(super) drop_bad_outer: u64,
    pub(super) drop_malformed: u64,
}

/// The IKE port (RFC 2409 s5) and the NAT-T port (RFC 3948 s2), which RSIP
/// hosts with RSIPSEC bindings share on one public address (RFC 3104 s6.1).
const SHARED_IKE_PORTS: [u16; 2] = [500, 4500];

/// Bytes GRE adds in front of the inner packet beyond IP-in-IP's outer
/// header: the 4-byte base header, no checksum, key or sequence number
/// (RFC 2784 s2.1).
const GRE_EXTRA: u16 = 4;

#[derive(Debug)]
struct Lease {
    address: Ipv4Addr,
    /// None: the whole address (RSA-IP).
    ports: Option<Vec<u16>>,
    /// An RSIPSEC binding (RFC 3104 s6.2): its holder may send IKE from the
    /// shared ports 500 and 4500 of the address.
    ipsec: bool,
    endpoint: Ipv4Addr,
    tunnel: TunnelType,
}

impl Lease {
    /// Whether a packet from `address`, source port `sport` (TCP/UDP;
    /// `None` for other protocols) may leave under this lease.
    fn allows(&self, address: Ipv4Addr, protocol: u8, sport: Option<u16>) -> bool {
        if self.address != address {
            return false;
        }
        match (&self.ports, sport) {
            (None, _) => true,
            (Some(ports), Some(p)) if ports.contains(&p) => true,
            // RFC 3104 s6.1: hosts holding RSIPSEC bindings share UDP 500
            // (and, for NAT-T, 4500) on the address; the gateway tells their
            // IKE traffic apart by the initiator cookie ("N allows the use of
            // this cookie [...] If the cookie is not unique, N drops the
            // packet"), so the host need not lease the port itself.
            (Some(_), Some(p)) => {
                self.ipsec && protocol == proto::UDP && SHARED_IKE_PORTS.contains(&p)
            }
            // Protocols without ports (ICMP, ESP, AH): the address suffices.
            (Some(_), None) => true,
        }
    }
}

/// The raw sockets the tunnels arrive on: one per tunnel protocol, since a
/// raw socket receives only its own protocol.
#[derive(Debug)]
pub(super) struct TunnelSockets {
    ipip: RawIp,
    gre: RawIp,
}

impl TunnelSockets {
    fn open(underlay: Ipv4Addr) -> anyhow::Result<TunnelSockets> {
        let options = RawIpOptions {
            bind: Some(underlay),
            // Room for a few superpackets in fragments (`outbound_whole`).
            send_buffer: Some(1 << 20),
            ..RawIpOptions::default()
        };
        Ok(TunnelSockets {
            ipip: RawIp::open(proto::IPIP, &options).context("raw IP-in-IP socket")?,
            gre: RawIp::open(proto::GRE, &options).context("raw GRE socket")?,
        })
    }

    /// Waits for tunnelled packets on either socket and receives a batch
    /// (one `recvmmsg`) into `bufs` (IP-in-IP) or `gre_bufs` (GRE). Returns
    /// which socket and how many. Cancel-safe: a socket's batch read only
    /// happens when it completes.
    pub(super) async fn recv_batch(
        &self,
        bufs: &mut [Vec<u8>],
        gre_bufs: &mut [Vec<u8>],
        lens: &mut [usize],
    ) -> std::io::Result<(TunnelType, usize)> {
        let (ipip_lens, gre_lens) = lens.split_at_mut(lens.len() / 2);
        tokio::select! {
            r = self.ipip.recv_batch(bufs, ipip_lens) => r.map(|n| (TunnelType::IpIp, n)),
            r = self.gre.recv_batch(gre_bufs, gre_lens) => r.map(|n| (TunnelType::Gre, n)),
        }
    }

    fn for_tunnel(&self, tunnel: TunnelType) -> &RawIp {
        if tunnel == TunnelType::Gre {
            &self.gre
        } else {
            &self.ipip
        }
    }
}

#[derive(Debug)]
pub(super) struct DataPlane {
    pub(super) tun: Tun,
    pub(super) raw: TunnelSockets,
    netlink: Netlink,
    tun_name: String,
    /// The configured TUN MTU (for IP-in-IP); lowered by [`GRE_EXTRA`] while
    /// a GRE binding is held.
    tun_mtu: u16,
    /// `whole_superpackets`: TCP superpackets may leave whole.
    whole_superpackets: bool,
    gre_mtu_set: bool,
    underlay: Ipv4Addr,
    gateway: Ipv4Addr,
    manage_routes: bool,
    manage_port_range: bool,
    original_range: Option<RangeInclusive<u16>>,
    routes_up: bool,
    leases: BTreeMap<BindId, Lease>,
    ident: u16,
    pub(super) counters: Counters,
    /// The kernel's IP-in-IP encapsulation of whole superpackets
    /// (`kernel_offload`), and the (address, port) sources it may take.
    offload: Option<IpipOffload>,
    offloaded: BTreeMap<(Ipv4Addr, Option<u16>), Ipv4Addr>,
    out: Vec<u8>,
    /// Encapsulated packets of one batch, per tunnel type (buffers reused).
    out_ipip: Vec<Vec<u8>>,
    out_gre: Vec<Vec<u8>>,
    /// Decapsulated packets of one batch, each after [`TUN_HEADROOM`] bytes
    /// (room for the TUN's virtio-net header when it coalesces them).
    to_tun: Vec<Vec<u8>>,
}

/// Bytes in front of each packet written to the TUN in a batch: at least
/// the virtio-net header `Tun::send_coalesced` puts there.
const TUN_HEADROOM: usize = 16;

impl DataPlane {
    pub(super) async fn open(gateway: SocketAddr, d: &DaemonSettings) -> anyhow::Result<DataPlane> {
        let IpAddr::V4(gateway) = gateway.ip() else {
            anyhow::bail!("the data plane is IPv4 only");
        };
        let underlay = match d.underlay_source {
            Some(a) => a,
            None => underlay_source(gateway)?,
        };
        let netlink = Netlink::new().context("netlink")?;
        // Offloads: one read hands over up to 64 KiB of a TCP flow (split
        // into MTU-sized packets by realm-io) and one write takes a batch
        // merged back into superpackets, instead of a system call per packet.
        let tun = Tun::create_with(
            &TunConfig::new(d.tun_name.clone())
                .mtu(d.tun_mtu)
                .offload(true),
            &netlink,
        )
        .await
        .with_context(|| format!("creating TUN {}", d.tun_name))?;
        let raw = TunnelSockets::open(underlay)?;
        let offload = if d.kernel_offload && d.whole_superpackets && tun.offload() {
            match attach_offload(&netlink, &d.tun_name, d.tun_mtu, underlay).await {
                Ok(o) => Some(o),
                Err(e) => {
                    warn!(error = %e, "kernel offload unavailable: superpackets are tunnelled by this process (kernel_offload = false silences this)");
                    None
                }
            }
        } else {
            None
        };
        let original_range = realm_io::sysctl::ip_local_port_range().ok();
        info!(tun = %d.tun_name, %underlay, %gateway, offload = tun.offload(), kernel_offload = offload.is_some(), "data plane ready");
        Ok(DataPlane {
            tun,
            raw,
            netlink,
            tun_name: d.tun_name.clone(),
            tun_mtu: d.tun_mtu,
            whole_superpackets: d.whole_superpackets,
            gre_mtu_set: false,
            underlay,
            gateway,
            manage_routes: d.manage_routes,
            manage_port_range: d.manage_port_range,
            original_range,
            routes_up: false,
            leases: BTreeMap::new(),
            ident: 0,
            counters: Counters::default(),
            offload,
            offloaded: BTreeMap::new(),
            out: Vec::with_capacity(realm_io::MAX_IPV4_PACKET),
            out_ipip: Vec::new(),
            out_gre: Vec::new(),
            to_tun: Vec::new(),
        })
    }

    /// A binding was granted: carry its address, route, set the port range.
    pub(super) async fn granted(&mut self, b: &Binding) {
        let Some(IpAddr::V4(address)) = b.public_address() else {
            warn!(
                bind_id = b.bind_id.0,
                "data plane: binding without an IPv4 address ignored"
            );
            return;
        };
        if !matches!(b.tunnel_type, TunnelType::IpIp | TunnelType::Gre) {
            warn!(bind_id = b.bind_id.0, tunnel = ?b.tunnel_type, "data plane: only IP-in-IP and GRE are implemented; packets of this binding are dropped");
        }
        let endpoint = match &b.tunnel_endpoint {
            Some(Address::Ipv4(a)) => *a,
            _ => self.gateway,
        };
        let ports = match b.method {
            realm_wire::rsip::RsipMethod::RsaIp => None,
            _ => Some(b.ports()),
        };
        if !self.leases.values().any(|l| l.address == address)
            && let Err(e) = self
                .netlink
                .add_address(&self.tun_name, Ipv4Prefix::host(address))
                .await
        {
            warn!(error = %e, %address, "data plane: adding the leased address");
        }
        self.leases.insert(
            b.bind_id,
            Lease {
                address,
                ports,
                ipsec: b.method == RsipMethod::Rsipsec,
                endpoint,
                tunnel: b.tunnel_type,
            },
        );
        self.update_mtu().await;
        self.sync_offload();
        if self.manage_routes && !self.routes_up {
            for half in [Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(128, 0, 0, 0)] {
                if let Ok(p) = Ipv4Prefix::new(half, 1)
                    && let Err(e) = self
                        .netlink
                        .add_route(p, &RouteVia::Device(self.tun_name.clone()))
                        .await
                {
                    warn!(error = %e, "data plane: adding a route via the TUN");
                }
            }
            self.routes_up = true;
        }
        self.update_port_range();
    }

    /// A binding ended: stop carrying what no other binding holds.
    pub(super) async fn revoked(&mut self, bind_id: BindId) {
        let Some(lease) = self.leases.remove(&bind_id) else {
            return;
        };
        if !self.leases.values().any(|l| l.address == lease.address) {
            let _ = self
                .netlink
                .del_address(&self.tun_name, Ipv4Prefix::host(lease.address))
                .await;
        }
        if self.leases.is_empty() && self.routes_up {
            for half in [Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(128, 0, 0, 0)] {
                if let Ok(p) = Ipv4Prefix::new(half, 1) {
                    let _ = self
                        .netlink
                        .del_route(p, &RouteVia::Device(self.tun_name.clone()))
                        .await;
                }
            }
            self.routes_up = false;
        }
        self.update_mtu().await;
        self.sync_offload();
        self.update_port_range();
    }

    /// Tells the kernel offload which sources it may encapsulate: the TCP
    /// ports of IP-in-IP leases (port 0 for a whole address), each towards its
    /// lease's endpoint. Nothing while a GRE binding lowers the TUN MTU.
    fn sync_offload(&mut self) {
        let Some(offload) = &self.offload else {
            return;
        };
        let mut want: BTreeMap<(Ipv4Addr, Option<u16>), Ipv4Addr> = BTreeMap::new();
        if !self.gre_mtu_set {
            for l in self
                .leases
                .values()
                .filter(|l| l.tunnel == TunnelType::IpIp)
            {
                match &l.ports {
                    None => {
                        want.insert((l.address, None), l.endpoint);
                    }
                    Some(ports) => {
                        for &p in ports {
                            want.insert((l.address, Some(p)), l.endpoint);
                        }
                    }
                }
            }
        }
        // Only what changed: a binding's ports are many map entries.
        self.offloaded.retain(|&(address, port), _| {
            if want.contains_key(&(address, port)) {
                return true;
            }
            if let Err(e) = offload.revoke(address, port) {
                warn!(error = %e, %address, ?port, "kernel offload: revoking a source");
            }
            false
        });
        for ((address, port), endpoint) in want {
            if self.offloaded.get(&(address, port)) == Some(&endpoint) {
                continue;
            }
            match offload.allow(address, port, self.underlay, endpoint) {
                Ok(()) => {
                    self.offloaded.insert((address, port), endpoint);
                }
                Err(e) => warn!(error = %e, %address, ?port, "kernel offload: allowing a source"),
            }
        }
        debug!(sources = self.offloaded.len(), "kernel offload sources");
    }

    /// The data plane's counters for `realm ctl status`.
    pub(super) fn status_json(&self) -> serde_json::Value {
        let c = &self.counters;
        let offload = self.offload.as_ref().map(|o| match o.stats() {
            Ok(s) => serde_json::json!({
                "sources": self.offloaded.len(),
                "superpackets": s.packets,
                "bytes": s.bytes,
            }),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        });
        serde_json::json!({
            "tun": self.tun_name,
            "underlay": self.underlay.to_string(),
            "outbound": c.outbound,
            "inbound": c.inbound,
            "drops": {
                "not_leased": c.drop_not_leased,
                "bad_outer": c.drop_bad_outer,
                "malformed": c.drop_malformed,
            },
            "kernel_offload": offload,
        })
    }

    /// GRE's header makes tunnelled packets 4 bytes longer than IP-in-IP's:
    /// while a GRE binding is held the TUN MTU is `tun_mtu` less those 4, so
    /// that tunnel packets stay unfragmented (the gateway drops outer
    /// fragments).
    async fn update_mtu(&mut self) {
        let want_gre = self.leases.values().any(|l| l.tunnel == TunnelType::Gre);
        if want_gre == self.gre_mtu_set {
            return;
        }
        let mtu = if want_gre {
            self.tun_mtu.saturating_sub(GRE_EXTRA)
        } else {
            self.tun_mtu
        };
        match self.netlink.set_mtu(&self.tun_name, u32::from(mtu)).await {
            Ok(()) => {
                self.gre_mtu_set = want_gre;
                info!(mtu, "TUN MTU set");
            }
            Err(e) => warn!(error = %e, mtu, "data plane: setting the TUN MTU"),
        }
    }

    /// RSAP-IP: the ephemeral port range becomes the largest contiguous run
    /// of leased ports (a non-contiguous block is used only in part).
    fn update_port_range(&self) {
        if !self.manage_port_range {
            return;
        }
        let mut ports: Vec<u16> = self
            .leases
            .values()
            .filter_map(|l| l.ports.as_ref())
            .flatten()
            .copied()
            .collect();
        ports.sort_unstable();
        ports.dedup();
        let range = largest_run(&ports).or_else(|| self.original_range.clone());
        if let Some(range) = range {
            match realm_io::sysctl::set_ip_local_port_range(range.clone()) {
                Ok(()) => info!(?range, "ephemeral port range set"),
                Err(e) => warn!(error = %e, "setting ip_local_port_range"),
            }
        }
    }

    /// Packets read from the TUN: each is tunnelled if its source is leased;
    /// the batch leaves in one `sendmmsg` per tunnel type.
    pub(super) async fn outbound_batch(&mut self, packets: &[&[u8]]) {
        let (mut n_ipip, mut n_gre) = (0, 0);
        for packet in packets {
            let Some(tunnel_type) = self.encapsulate(packet) else {
                continue;
            };
            let (list, n) = match tunnel_type {
                TunnelType::Gre => (&mut self.out_gre, &mut n_gre),
                _ => (&mut self.out_ipip, &mut n_ipip),
            };
            if list.len() <= *n {
                list.push(Vec::with_capacity(2048));
            }
            list[*n].clear();
            list[*n].extend_from_slice(&self.out);
            *n += 1;
        }
        for (tunnel, n) in [(TunnelType::IpIp, n_ipip), (TunnelType::Gre, n_gre)] {
            if n == 0 {
                continue;
            }
            let list = if tunnel == TunnelType::Gre {
                &self.out_gre
            } else {
                &self.out_ipip
            };
            let socket = self.raw.for_tunnel(tunnel);
            let mut sent = 0;
            while sent < n {
                match socket.send_batch(&list[sent..n]).await {
                    Ok(k) if k > 0 => sent += k,
                    Ok(_) => break,
                    Err(e) => {
                        debug!(error = %e, "data plane: tunnel send");
                        sent += 1;
                    }
                }
            }
            self.counters.outbound += sent as u64;
        }
    }

    /// Whether a TCP superpacket read from the TUN may leave whole (one
    /// IP-in-IP packet, fragmented by the kernel; see [`Self::outbound_whole`])
    /// instead of split: its segments are full-sized for the TUN's MTU (the
    /// size the gateway cuts it back into: its tunnel MTU less IP-in-IP), it
    /// fits one tunnel packet, and its source is leased under IP-in-IP (GRE
    /// superpackets are split).
    pub(super) fn keep_whole(&self, packet: &[u8], gso_size: u16) -> bool {
        if !self.whole_superpackets
            || self.gre_mtu_set
            || packet.len() + ipip::OVERHEAD > realm_io::MAX_IPV4_PACKET
        {
            return false;
        }
        let Some((src, protocol, sport)) = source_of(packet) else {
            return false;
        };
        let ihl = usize::from(packet[0] & 0x0f) * 4;
        let Some(thl) = packet.get(ihl + 12).map(|b| usize::from(b >> 4) * 4) else {
            return false;
        };
        protocol == proto::TCP
            && usize::from(gso_size) + ihl + thl == usize::from(self.tun_mtu)
            && self
                .leases
                .values()
                .filter(|l| l.allows(src, protocol, sport))
                .min_by_key(|l| !matches!(l.tunnel, TunnelType::IpIp | TunnelType::Gre))
                .is_some_and(|l| l.tunnel == TunnelType::IpIp)
    }

    /// A superpacket [`Self::keep_whole`] accepted, checked as one packet
    /// (one source port), leaves as ONE IP-in-IP packet whose outer header the
    /// kernel writes with DF clear: it cuts it into fragments of the private
    /// MTU in one system call, and the gateway's kernel reassembles it before
    /// its raw socket sees it. Its TCP checksum stays partial: the gateway
    /// hands it to its stack as a GSO packet, which completes it per segment.
    pub(super) async fn outbound_whole(&mut self, packet: &[u8]) {
        let Some((src, protocol, sport)) = source_of(packet) else {
            self.counters.drop_malformed += 1;
            return;
        };
        let lease = self
            .leases
            .values()
            .filter(|l| l.allows(src, protocol, sport))
            .min_by_key(|l| !matches!(l.tunnel, TunnelType::IpIp | TunnelType::Gre));
        let Some(lease) = lease.filter(|l| l.tunnel == TunnelType::IpIp) else {
            self.counters.drop_not_leased += 1;
            debug!(%src, ?sport, "data plane: source not leased, dropped");
            return;
        };
        match self.raw.ipip.send_fragmented(packet, lease.endpoint).await {
            Ok(_) => self.counters.outbound += 1,
            Err(e) => {
                debug!(error = %e, len = packet.len(), "data plane: tunnel send (superpacket)")
            }
        }
    }

    /// Encapsulates one packet from the TUN into `self.out` if its source is
    /// leased; returns the tunnel to send it on.
    fn encapsulate(&mut self, packet: &[u8]) -> Option<TunnelType> {
        let Some((src, protocol, sport)) = source_of(packet) else {
            self.counters.drop_malformed += 1;
            return None;
        };
        // A lease whose tunnel this data plane speaks, by preference.
        let lease = self
            .leases
            .values()
            .filter(|l| l.allows(src, protocol, sport))
            .min_by_key(|l| !matches!(l.tunnel, TunnelType::IpIp | TunnelType::Gre));
        let Some(lease) = lease else {
            self.counters.drop_not_leased += 1;
            debug!(%src, ?sport, "data plane: source not leased, dropped");
            return None;
        };
        let tunnel_type = lease.tunnel;
        let tunnel = Tunnel {
            src_addr: self.underlay,
            dst_addr: lease.endpoint,
            ttl: 64,
            dont_frag: DontFragment::CopyInner,
        };
        self.ident = self.ident.wrapping_add(1);
        self.out.clear();
        let encapsulated = match tunnel_type {
            TunnelType::IpIp => ipip::encapsulate(&tunnel, self.ident, packet, &mut self.out),
            // RFC 2784 s2: the plain 4-byte header, protocol type 0x0800;
            // no checksum, key or sequence number (the gateway needs none).
            TunnelType::Gre => gre::encapsulate(
                &tunnel,
                self.ident,
                &gre::Options::default(),
                packet,
                &mut self.out,
            ),
            _ => {
                self.counters.drop_not_leased += 1;
                return None;
            }
        };
        if encapsulated.is_err() {
            self.counters.drop_malformed += 1;
            return None;
        }
        Some(tunnel_type)
    }

    /// Packets from a tunnel socket (IP-in-IP or GRE, told apart by the
    /// outer protocol): each is decapsulated if it came from the endpoint of
    /// a binding of that tunnel type; the inner packets go to the TUN in one
    /// coalesced write where the TUN has offloads.
    pub(super) async fn inbound_batch(&mut self, packets: &[&[u8]]) {
        let mut n = 0;
        for packet in packets {
            let Some((tunnel, outer_src, inner)) = decapsulate(packet) else {
                self.counters.drop_malformed += 1;
                continue;
            };
            if !self
                .leases
                .values()
                .any(|l| l.endpoint == outer_src && l.tunnel == tunnel)
            {
                self.counters.drop_bad_outer += 1;
                debug!(src = %outer_src, ?tunnel, "data plane: tunnel packet not from the gateway, dropped");
                continue;
            }
            if self.to_tun.len() <= n {
                self.to_tun.push(Vec::with_capacity(TUN_HEADROOM + 2048));
            }
            let b = &mut self.to_tun[n];
            b.clear();
            b.resize(TUN_HEADROOM, 0);
            b.extend_from_slice(inner);
            n += 1;
        }
        if n == 0 {
            return;
        }
        match self
            .tun
            .send_coalesced(&mut self.to_tun[..n], TUN_HEADROOM)
            .await
        {
            Ok(k) => self.counters.inbound += k as u64,
            Err(e) => debug!(error = %e, "data plane: TUN write"),
        }
    }

    /// Puts the port range back and logs the counters.
    pub(super) fn close(&mut self) {
        if self.manage_port_range
            && let Some(r) = self.original_range.clone()
        {
            let _ = realm_io::sysctl::set_ip_local_port_range(r);
        }
        let offload = self.offload.as_ref().and_then(|o| o.stats().ok());
        info!(counters = ?self.counters, ?offload, "data plane closed");
    }
}

/// Attaches the kernel offload to the TUN; encapsulated packets leave by
/// the interface that holds `underlay`.
async fn attach_offload(
    netlink: &Netlink,
    tun: &str,
    tun_mtu: u16,
    underlay: Ipv4Addr,
) -> anyhow::Result<IpipOffload> {
    let tun_index = netlink.ifindex(tun).await?;
    let mut underlay_index = None;
    for entry in std::fs::read_dir("/sys/class/net").context("listing interfaces")? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Ok(addrs) = netlink.addresses(&name).await
            && addrs.iter().any(|a| a.addr() == underlay)
        {
            underlay_index = Some(netlink.ifindex(&name).await?);
            break;
        }
    }
    let underlay_index = underlay_index
        .with_context(|| format!("no interface holds the underlay address {underlay}"))?;
    let offload = IpipOffload::attach(tun_index, tun_mtu, underlay_index)?;
    info!(
        tun_index,
        underlay_index, "kernel offload attached to the TUN's egress"
    );
    Ok(offload)
}

/// The source address the kernel would use towards the gateway (a
/// connected UDP socket sends nothing).
fn underlay_source(gateway: Ipv4Addr) -> anyhow::Result<Ipv4Addr> {
    let s = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    s.connect((gateway, 4555))?;
    match s.local_addr()?.ip() {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => anyhow::bail!("no IPv4 route to the gateway"),
    }
}

/// Takes a tunnel packet apart by its outer protocol: IP-in-IP (RFC 2003) or
/// GRE (RFC 2784; `gre::decapsulate` checks the reserved bits of s2.5.1, the
/// version of s2.3.1 and the checksum when present). Returns the tunnel type,
/// the outer source and the inner packet; `None` for anything malformed.
fn decapsulate(packet: &[u8]) -> Option<(TunnelType, Ipv4Addr, &[u8])> {
    match *packet.get(9)? {
        proto::IPIP => {
            let d = ipip::decapsulate(packet).ok()?;
            Some((TunnelType::IpIp, d.outer.src_addr, d.inner.into_inner()))
        }
        proto::GRE => {
            let d = gre::decapsulate(packet).ok()?;
            Some((TunnelType::Gre, d.outer.src_addr, d.inner.into_inner()))
        }
        _ => None,
    }
}

/// The source address, the protocol and, for TCP/UDP, the source port of an
/// IPv4 packet.
fn source_of(packet: &[u8]) -> Option<(Ipv4Addr, u8, Option<u16>)> {
    let ver_ihl = *packet.first()?;
    if ver_ihl >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ver_ihl & 0x0f) * 4;
    let src = Ipv4Addr::new(
        *packet.get(12)?,
        *packet.get(13)?,
        *packet.get(14)?,
        *packet.get(15)?,
    );
    let proto = *packet.get(9)?;
    let frag_offset = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]) & 0x1fff;
    let port = if (proto == proto::TCP || proto == proto::UDP) && frag_offset == 0 {
        Some(u16::from_be_bytes([
            *packet.get(ihl)?,
            *packet.get(ihl + 1)?,
        ]))
    } else {
        None
    };
    Some((src, proto, port))
}

/// The longest run of consecutive values in sorted, deduplicated `ports`.
fn largest_run(ports: &[u16]) -> Option<RangeInclusive<u16>> {
    let mut best: Option<(u16, u16)> = None;
    let mut start = *ports.first()?;
    let mut prev = start;
    for &p in ports.iter().skip(1).chain(std::iter::once(&0)) {
        if p != prev.wrapping_add(1) || p == 0 {
            if best.is_none_or(|(a, b)| prev - start > b - a) {
                best = Some((start, prev));
            }
            start = p;
        }
        prev = p;
    }
    best.map(|(a, b)| a..=b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(ports: Option<Vec<u16>>, ipsec: bool) -> Lease {
        Lease {
            address: Ipv4Addr::new(192, 0, 2, 1),
            ports,
            ipsec,
            endpoint: Ipv4Addr::new(10, 0, 0, 1),
            tunnel: TunnelType::IpIp,
        }
    }

    #[test]
    fn ike_ports_are_shared_under_rsipsec_only() {
        let public = Ipv4Addr::new(192, 0, 2, 1);
        let other = Ipv4Addr::new(192, 0, 2, 9);
        // RSIPSEC without ports (RFC 3104 s6.2 "don't need"): UDP 500 and
        // 4500 may leave, nothing else with a port.
        let ipsec = lease(Some(vec![]), true);
        assert!(ipsec.allows(public, proto::UDP, Some(500)));
        assert!(ipsec.allows(public, proto::UDP, Some(4500)));
        assert!(!ipsec.allows(public, proto::TCP, Some(500)));
        assert!(!ipsec.allows(public, proto::UDP, Some(501)));
        assert!(!ipsec.allows(other, proto::UDP, Some(500)));
        assert!(ipsec.allows(public, proto::ESP, None));
        // RSAP-IP ports alone do not share the IKE ports.
        let ports = lease(Some(vec![20000, 20001]), false);
        assert!(ports.allows(public, proto::UDP, Some(20001)));
        assert!(!ports.allows(public, proto::UDP, Some(500)));
        assert!(!ports.allows(public, proto::UDP, Some(4500)));
        // RSA-IP: the whole address.
        assert!(lease(None, false).allows(public, proto::UDP, Some(500)));
    }

    /// 192.0.2.1 -> 192.0.2.2 UDP 20000 -> 53, four bytes of payload.
    fn inner_udp() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2, 0x4e, 0x20, 0,
            53, 0, 12, 0, 0, 1, 2, 3, 4,
        ];
        let sum = realm_wire::checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p
    }

    #[test]
    fn gre_and_ipip_round_trip() {
        let inner = inner_udp();
        let tunnel = Tunnel {
            src_addr: Ipv4Addr::new(10, 0, 0, 11),
            dst_addr: Ipv4Addr::new(10, 0, 0, 1),
            ttl: 64,
            dont_frag: DontFragment::CopyInner,
        };
        let mut out = Vec::new();
        gre::encapsulate(&tunnel, 1, &gre::Options::default(), &inner, &mut out).unwrap();
        // RFC 2784 s2.1: outer protocol 47, then flags/version 0 and
        // protocol type 0x0800 before the inner packet.
        assert_eq!(out[9], proto::GRE);
        assert_eq!(&out[20..24], &[0, 0, 0x08, 0x00]);
        let (t, src, got) = decapsulate(&out).unwrap();
        assert_eq!(
            (t, src, got),
            (TunnelType::Gre, tunnel.src_addr, &inner[..])
        );

        out.clear();
        ipip::encapsulate(&tunnel, 1, &inner, &mut out).unwrap();
        let (t, _, got) = decapsulate(&out).unwrap();
        assert_eq!((t, got), (TunnelType::IpIp, &inner[..]));

        // A GRE header with version 1 (RFC 2784 s2.3.1: MUST be 0) is refused.
        out.clear();
        gre::encapsulate(&tunnel, 1, &gre::Options::default(), &inner, &mut out).unwrap();
        out[21] |= 1;
        assert!(decapsulate(&out).is_none());
        // Neither tunnel protocol.
        assert!(decapsulate(&inner).is_none());
    }

    #[test]
    fn largest_contiguous_run() {
        assert_eq!(largest_run(&[]), None);
        assert_eq!(largest_run(&[5]), Some(5..=5));
        assert_eq!(largest_run(&[1, 2, 3, 7, 8]), Some(1..=3));
        assert_eq!(largest_run(&[1, 5, 6, 7, 8, 10]), Some(5..=8));
    }
}
