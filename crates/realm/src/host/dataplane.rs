//! The host's data plane: a TUN device carrying the leased public
//! address(es), routes sending public destinations through it, the leased
//! port block as the ephemeral port range, and IP-in-IP to and from the
//! gateway over a raw socket. Packets from the TUN whose source is not
//! leased are dropped and counted; tunnelled packets whose outer source is
//! not the gateway's endpoint are dropped and counted.
//!
//! Limits: IPv4 and IP-in-IP only (a GRE grant is logged and its packets
//! dropped); one gateway endpoint (the first binding's); routes are the two
//! halves 0.0.0.0/1 and 128.0.0.0/1 via the TUN, so anything reached by a
//! more specific route (the gateway's and other local networks, when
//! connected or routed explicitly) stays direct.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;

use anyhow::Context as _;
use realm_io::raw::{RawIpOptions, proto};
use realm_io::{Ipv4Prefix, Netlink, RawIp, RouteVia, Tun, TunConfig};
use realm_rsip::host::Binding;
use realm_wire::ipip::{self, DontFragment, Tunnel};
use realm_wire::rsip::{Address, BindId, TunnelType};
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

#[derive(Debug)]
struct Lease {
    address: Ipv4Addr,
    /// None: the whole address (RSA-IP).
    ports: Option<Vec<u16>>,
    endpoint: Ipv4Addr,
    tunnel: TunnelType,
}

#[derive(Debug)]
pub(super) struct DataPlane {
    pub(super) tun: Tun,
    pub(super) raw: RawIp,
    netlink: Netlink,
    tun_name: String,
    underlay: Ipv4Addr,
    gateway: Ipv4Addr,
    manage_routes: bool,
    manage_port_range: bool,
    original_range: Option<RangeInclusive<u16>>,
    routes_up: bool,
    leases: BTreeMap<BindId, Lease>,
    ident: u16,
    pub(super) counters: Counters,
    out: Vec<u8>,
}

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
        let tun = Tun::create_with(&TunConfig::new(d.tun_name.clone()).mtu(d.tun_mtu), &netlink)
            .await
            .with_context(|| format!("creating TUN {}", d.tun_name))?;
        let raw = RawIp::open(
            proto::IPIP,
            &RawIpOptions {
                bind: Some(underlay),
                ..RawIpOptions::default()
            },
        )
        .context("raw IP-in-IP socket")?;
        let original_range = realm_io::sysctl::ip_local_port_range().ok();
        info!(tun = %d.tun_name, %underlay, %gateway, "data plane ready");
        Ok(DataPlane {
            tun,
            raw,
            netlink,
            tun_name: d.tun_name.clone(),
            underlay,
            gateway,
            manage_routes: d.manage_routes,
            manage_port_range: d.manage_port_range,
            original_range,
            routes_up: false,
            leases: BTreeMap::new(),
            ident: 0,
            counters: Counters::default(),
            out: Vec::with_capacity(realm_io::MAX_IPV4_PACKET),
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
        if b.tunnel_type != TunnelType::IpIp {
            warn!(bind_id = b.bind_id.0, tunnel = ?b.tunnel_type, "data plane: only IP-in-IP is implemented; packets of this binding are dropped");
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
                endpoint,
                tunnel: b.tunnel_type,
            },
        );
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
        self.update_port_range();
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

    /// One packet from the TUN: tunnel it if its source is leased.
    pub(super) async fn outbound(&mut self, packet: &[u8]) {
        let Some((src, sport)) = source_of(packet) else {
            self.counters.drop_malformed += 1;
            return;
        };
        let lease = self.leases.values().find(|l| {
            l.address == src
                && match (&l.ports, sport) {
                    (None, _) => true,
                    (Some(ports), Some(p)) => ports.contains(&p),
                    // Protocols without ports (ICMP): the address suffices.
                    (Some(_), None) => true,
                }
        });
        let Some(lease) = lease else {
            self.counters.drop_not_leased += 1;
            debug!(%src, ?sport, "data plane: source not leased, dropped");
            return;
        };
        if lease.tunnel != TunnelType::IpIp {
            self.counters.drop_not_leased += 1;
            return;
        }
        let tunnel = Tunnel {
            src_addr: self.underlay,
            dst_addr: lease.endpoint,
            ttl: 64,
            dont_frag: DontFragment::CopyInner,
        };
        self.ident = self.ident.wrapping_add(1);
        self.out.clear();
        if ipip::encapsulate(&tunnel, self.ident, packet, &mut self.out).is_err() {
            self.counters.drop_malformed += 1;
            return;
        }
        match self.raw.send(&self.out).await {
            Ok(_) => self.counters.outbound += 1,
            Err(e) => debug!(error = %e, "data plane: tunnel send"),
        }
    }

    /// One packet from the raw socket: decapsulate it if it came from the
    /// gateway's endpoint and write the inner packet to the TUN.
    pub(super) async fn inbound(&mut self, packet: &[u8]) {
        let Ok(d) = ipip::decapsulate(packet) else {
            self.counters.drop_malformed += 1;
            return;
        };
        if !self.leases.values().any(|l| l.endpoint == d.outer.src_addr) {
            self.counters.drop_bad_outer += 1;
            debug!(src = %d.outer.src_addr, "data plane: tunnel packet not from the gateway, dropped");
            return;
        }
        let inner = d.inner.into_inner();
        match self.tun.send(inner).await {
            Ok(_) => self.counters.inbound += 1,
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
        info!(counters = ?self.counters, "data plane closed");
    }
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

/// The source address and, for TCP/UDP, the source port of an IPv4 packet.
fn source_of(packet: &[u8]) -> Option<(Ipv4Addr, Option<u16>)> {
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
    Some((src, port))
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

    #[test]
    fn largest_contiguous_run() {
        assert_eq!(largest_run(&[]), None);
        assert_eq!(largest_run(&[5]), Some(5..=5));
        assert_eq!(largest_run(&[1, 2, 3, 7, 8]), Some(1..=3));
        assert_eq!(largest_run(&[1, 5, 6, 7, 8, 10]), Some(5..=8));
    }
}
