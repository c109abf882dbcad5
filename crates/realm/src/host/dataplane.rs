//! The host's data plane: a TUN device carrying the leased public
//! address(es), routes sending public destinations through it, the leased
//! port block as the ephemeral port range, and IP-in-IP (RFC 2003) or GRE
//! (RFC 2784), per binding as granted, to and from the gateway over raw
//! protocol-4 and protocol-47 sockets. This module is the I/O: every
//! decision (whether a packet from the TUN may leave and under which
//! binding, its encapsulation, whether a tunnel packet comes from the
//! gateway's endpoint, what the leases make of the port range and the kernel
//! offload's map) is `realm_rsip::host::dataplane::HostDataPlane`'s, whose
//! drops (not leased, bad outer source, malformed) are counted there.
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
use realm_rsip::host::dataplane::{GRE_EXTRA, HostDataPlane, Inbound, Outbound};
use realm_wire::rsip::{BindId, TunnelType};
use tracing::{debug, info, warn};

use super::config::DaemonSettings;

/// What the daemon sent and wrote (the engine counts its decisions and drops).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counters {
    /// Tunnel packets the raw sockets took.
    pub(super) outbound: u64,
    /// Inner packets the TUN took.
    pub(super) inbound: u64,
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
    manage_routes: bool,
    manage_port_range: bool,
    original_range: Option<RangeInclusive<u16>>,
    routes_up: bool,
    /// Every decision: what may leave, under which binding, what may come in.
    engine: HostDataPlane,
    pub(super) counters: Counters,
    /// The kernel's IP-in-IP encapsulation of whole superpackets
    /// (`kernel_offload`), and the (address, port) sources it may take.
    offload: Option<IpipOffload>,
    offloaded: BTreeMap<(Ipv4Addr, Option<u16>), Ipv4Addr>,
    /// The tunnel packet the engine writes.
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
            manage_routes: d.manage_routes,
            manage_port_range: d.manage_port_range,
            original_range,
            routes_up: false,
            engine: HostDataPlane::new(underlay, gateway),
            counters: Counters::default(),
            offload,
            offloaded: BTreeMap::new(),
            out: Vec::with_capacity(2048),
            out_ipip: Vec::new(),
            out_gre: Vec::new(),
            to_tun: Vec::new(),
        })
    }

    /// A binding was granted: carry its address, route, set the port range.
    pub(super) async fn granted(&mut self, b: &Binding) {
        let Some(granted) = self.engine.granted(b) else {
            warn!(
                bind_id = b.bind_id.0,
                "data plane: binding without an IPv4 address ignored"
            );
            return;
        };
        if !granted.tunnel_supported {
            warn!(bind_id = b.bind_id.0, tunnel = ?b.tunnel_type, "data plane: only IP-in-IP and GRE are implemented; packets of this binding are dropped");
        }
        let address = granted.address;
        if granted.new_address
            && let Err(e) = self
                .netlink
                .add_address(&self.tun_name, Ipv4Prefix::host(address))
                .await
        {
            warn!(error = %e, %address, "data plane: adding the leased address");
        }
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
        let Some(revoked) = self.engine.revoked(bind_id) else {
            return;
        };
        if revoked.address_released {
            let _ = self
                .netlink
                .del_address(&self.tun_name, Ipv4Prefix::host(revoked.address))
                .await;
        }
        if revoked.last && self.routes_up {
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

    /// Tells the kernel offload which sources it may encapsulate (the
    /// engine's [`HostDataPlane::ipip_sources`]). Nothing while a GRE binding
    /// lowers the TUN MTU.
    fn sync_offload(&mut self) {
        let Some(offload) = &self.offload else {
            return;
        };
        let want = if self.gre_mtu_set {
            BTreeMap::new()
        } else {
            self.engine.ipip_sources()
        };
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
        let e = self.engine.counters();
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
                "not_leased": e.drop_not_leased,
                "bad_outer": e.drop_bad_outer,
                "malformed": e.drop_malformed,
            },
            "kernel_offload": offload,
        })
    }

    /// GRE's header makes tunnelled packets 4 bytes longer than IP-in-IP's:
    /// while a GRE binding is held ([`HostDataPlane::holds_gre`]) the TUN MTU
    /// is `tun_mtu` less those 4.
    async fn update_mtu(&mut self) {
        let want_gre = self.engine.holds_gre();
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

    /// RSAP-IP: the ephemeral port range becomes the engine's
    /// [`HostDataPlane::ephemeral_range`], or the original one without
    /// leased ports.
    fn update_port_range(&self) {
        if !self.manage_port_range {
            return;
        }
        let range = self
            .engine
            .ephemeral_range()
            .or_else(|| self.original_range.clone());
        if let Some(range) = range {
            match realm_io::sysctl::set_ip_local_port_range(range.clone()) {
                Ok(()) => info!(?range, "ephemeral port range set"),
                Err(e) => warn!(error = %e, "setting ip_local_port_range"),
            }
        }
    }

    /// Packets read from the TUN: each is tunnelled if the engine lets it
    /// leave; the batch leaves in one `sendmmsg` per tunnel type.
    pub(super) async fn outbound_batch(&mut self, packets: &[&[u8]]) {
        let (mut n_ipip, mut n_gre) = (0, 0);
        for packet in packets {
            let tunnel = match self.engine.outbound(packet, &mut self.out) {
                Outbound::Tunnel { tunnel, .. } => tunnel,
                Outbound::Drop(reason) => {
                    debug!(?reason, "data plane: packet from the TUN dropped");
                    continue;
                }
            };
            let (list, n) = match tunnel {
                TunnelType::Gre => (&mut self.out_gre, &mut n_gre),
                _ => (&mut self.out_ipip, &mut n_ipip),
            };
            if list.len() <= *n {
                list.push(Vec::with_capacity(2048));
            }
            // The tunnel packet moves into the batch; its old buffer is reused.
            std::mem::swap(&mut list[*n], &mut self.out);
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
    /// instead of split: `whole_superpackets` is on, no GRE binding lowers
    /// the TUN MTU, and the engine accepts it for this MTU
    /// ([`HostDataPlane::keeps_whole`]).
    pub(super) fn keep_whole(&self, packet: &[u8], gso_size: u16) -> bool {
        self.whole_superpackets
            && !self.gre_mtu_set
            && self.engine.keeps_whole(packet, gso_size, self.tun_mtu)
    }

    /// A superpacket [`Self::keep_whole`] accepted, checked as one packet
    /// (one source port), leaves as ONE IP-in-IP packet whose outer header the
    /// kernel writes with DF clear: it cuts it into fragments of the private
    /// MTU in one system call, and the gateway's kernel reassembles it before
    /// its raw socket sees it. Its TCP checksum stays partial: the gateway
    /// hands it to its stack as a GSO packet, which completes it per segment.
    pub(super) async fn outbound_whole(&mut self, packet: &[u8]) {
        let endpoint = match self.engine.outbound_whole(packet) {
            Outbound::Tunnel { endpoint, .. } => endpoint,
            Outbound::Drop(reason) => {
                debug!(?reason, "data plane: superpacket dropped");
                return;
            }
        };
        match self.raw.ipip.send_fragmented(packet, endpoint).await {
            Ok(_) => self.counters.outbound += 1,
            Err(e) => {
                debug!(error = %e, len = packet.len(), "data plane: tunnel send (superpacket)")
            }
        }
    }

    /// Packets from a tunnel socket: the inner packets the engine lets in go
    /// to the TUN in one coalesced write where the TUN has offloads.
    pub(super) async fn inbound_batch(&mut self, packets: &[&[u8]]) {
        let mut n = 0;
        for packet in packets {
            let inner = match self.engine.inbound(packet) {
                Inbound::Deliver { inner, .. } => inner,
                Inbound::Drop(reason) => {
                    debug!(?reason, "data plane: tunnel packet dropped");
                    continue;
                }
            };
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
        info!(counters = ?self.counters, engine = ?self.engine.counters(), ?offload, "data plane closed");
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
