//! The gateway's data plane I/O: it drives the sans-IO
//! [`realm_rsip::dataplane::DataPlane`] with real packets.
//!
//! ```text
//!  private side                         gateway                        public side
//!  host --IP-in-IP/GRE--> raw socket 4/47 --outbound()--> raw socket 255 --> peer
//!  host <--IP-in-IP/GRE-- raw socket 255 <--inbound()--  TUN <--nft fwd-- peer
//!                                        (Local: written back into the TUN: the gateway's stack)
//! ```
//!
//! * **From hosts**: raw sockets for protocols 4 (IP-in-IP) and 47 (GRE),
//!   bound to the tunnel address, receive whole tunnelled packets (this kernel
//!   has no ipip/gre module, and stays silent while a raw socket listens).
//!   After the checks of `DataPlane::outbound` the inner packet leaves,
//!   unchanged, through an `IPPROTO_RAW` socket: the kernel routes it by its
//!   destination and writes nothing of its own. A violation goes to the engine
//!   task, which answers the host with the ERROR_RESPONSE of RFC 3103 s10.4.
//! * **From the public side**: the local stack must not see packets that
//!   belong to hosts (it would answer a SYN to a leased port with a RST). An
//!   nftables `netdev` table on the public interface's ingress hook
//!   ([`ruleset`]) forwards, before the stack, everything the data plane may
//!   own to a TUN device the daemon reads: on the gateway's own (shared)
//!   addresses the leasable TCP/UDP ports, UDP 500 and 4500, ESP, AH, ICMP and
//!   fragments; on pool addresses the gateway does not use, everything. The
//!   rules are static (from the pool); which host gets what is the table's
//!   business. `DataPlane::inbound` reassembles and demultiplexes; packets for
//!   hosts leave encapsulated through the `IPPROTO_RAW` socket; packets for the
//!   gateway itself (ICMP requests, unmatched packets to its own addresses)
//!   are written back into the TUN, i.e. handed to the local stack as if they
//!   had arrived on it, so the gateway's own services keep working on a shared
//!   address. nftables' `fwd` at ingress hands the frame over with its
//!   link-layer header, which the reader strips (Ethernet only).
//!
//! * **Superpackets from hosts**: a host with TUN offloads sends a whole
//!   TCP superpacket (up to 64 KiB of one flow) as one IP-in-IP packet,
//!   fragmented on the wire and reassembled by this kernel before the raw
//!   socket sees it. `DataPlane::outbound` checks it as the one packet it is
//!   (one source port). `IPPROTO_RAW` cannot send more than the MTU, so an
//!   inner TCP packet larger than the public MTU is written into a second
//!   TUN (`gso_tun_name`, with offloads) with a `virtio_net_hdr` asking for
//!   TCP segmentation, segments of the tunnel MTU less 20 (what the host's
//!   TUN allowed it) at most the public MTU; its TCP checksum, still partial,
//!   is completed per segment. The stack forwards it (that TUN alone has
//!   `forwarding`, `accept_local` for the gateway's own source address and no
//!   `rp_filter`): it leaves the public interface as one GSO packet, and the
//!   TTL goes down by one, as through any router (docs/deviations.md).
//!
//! The binding table is shared with the engine task, which mirrors every
//! grant, free and de-registration into it ([`Shared::apply`]) before the
//! host hears of the grant. The packet tasks run on a thread (and runtime) of
//! their own so that signalling and forwarding do not wait for each other;
//! they take the table's lock once per batch.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context as _, bail};
use realm_io::nft::NftTable;
use realm_io::raw::{RawIpOptions, proto};
use realm_io::{Netlink, RawIp, Tun, TunConfig};
use realm_lease::{AddressConfig, Timestamp};
use realm_rsip::dataplane::{self, Counters, DataPlane, Inbound, Outbound, PacketBuf, Violation};
use realm_rsip::gateway::{BindingRecord, Event, GatewayConfig, Prefix};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::clock::Clock;
use super::net::Input;

/// `[data_plane]` of the configuration file (docs/gateway-config.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DataPlaneSettings {
    /// The public interface (Ethernet). Setting it turns the data plane on;
    /// without it the gateway only signals.
    pub(crate) public_interface: Option<String>,
    /// The TUN device public packets are steered into.
    pub(crate) tun_name: String,
    /// The gateway's end of the host tunnels: outer source of packets to
    /// hosts, and the address tunnelled packets are received on. Default:
    /// the first `listen.addresses` entry that is not 0.0.0.0.
    pub(crate) tunnel_source: Option<Ipv4Addr>,
    /// MTU towards hosts: larger tunnelled packets are fragmented (outer DF
    /// clear) or answered with ICMP "fragmentation needed" (RFC 2003 5.1).
    /// 0: the MTU of the interface that carries `tunnel_source`.
    pub(crate) tunnel_mtu: u16,
    /// Receive buffer of the raw sockets and bound of their send buffer, bytes.
    pub(crate) socket_buffer: usize,
    /// ERROR_RESPONSEs for misused leases, per host per second (RFC 3103 10.4).
    pub(crate) violations_per_second: u32,
    /// Time a fragmented datagram may take to arrive whole, seconds.
    pub(crate) reassembly_timeout_secs: u64,
    /// Reassembly memory over all sources, bytes.
    pub(crate) reassembly_memory: usize,
    /// Reassembly memory per source address, bytes.
    pub(crate) reassembly_memory_per_source: usize,
    /// Install the nftables steering table (`netdev realm_gw_<tun>`). Turn off
    /// only to write equivalent rules yourself.
    pub(crate) steer: bool,
    /// Private networks of hosts that do not speak RSIP: the kernel gives
    /// them plain NAT (masquerade behind the public interface's address, on
    /// the gateway's `ephemeral_ports` only, which RSIP never leases).
    /// Default none.
    pub(crate) nat_sources: Vec<Prefix>,
    /// A second TUN, with offloads, that TCP superpackets from hosts (larger
    /// than the public MTU) are written into as GSO packets: the gateway's
    /// stack forwards them out of the public interface whole, cut into
    /// segments by the driver or the peer's stack (module doc). Empty: off,
    /// superpackets are cut into segments here and leave through
    /// `IPPROTO_RAW` like every other packet.
    pub(crate) gso_tun_name: String,
}

impl Default for DataPlaneSettings {
    fn default() -> DataPlaneSettings {
        let d = dataplane::Config::new(Ipv4Addr::UNSPECIFIED);
        DataPlaneSettings {
            public_interface: None,
            tun_name: "realm-gw0".into(),
            tunnel_source: None,
            tunnel_mtu: 0,
            socket_buffer: 4 << 20,
            violations_per_second: d.violations_per_second,
            reassembly_timeout_secs: d.reassembly_timeout.as_secs(),
            reassembly_memory: d.reassembly_memory,
            reassembly_memory_per_source: d.reassembly_memory_per_source,
            steer: true,
            nat_sources: Vec::new(),
            gso_tun_name: "realm-gso0".into(),
        }
    }
}

impl DataPlaneSettings {
    /// Checks what can be checked without the system.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        if let Some(i) = &self.public_interface
            && (i.is_empty() || i.len() > 15)
        {
            bail!("data_plane.public_interface {i:?}: 1-15 bytes");
        }
        if self.tun_name.is_empty() || self.tun_name.len() > 15 {
            bail!("data_plane.tun_name {:?}: 1-15 bytes", self.tun_name);
        }
        if self.gso_tun_name.len() > 15 || self.gso_tun_name == self.tun_name {
            bail!(
                "data_plane.gso_tun_name {:?}: 0-15 bytes, not tun_name",
                self.gso_tun_name
            );
        }
        if self.violations_per_second == 0 {
            bail!("data_plane.violations_per_second must be at least 1");
        }
        if self.tunnel_mtu != 0 && self.tunnel_mtu < 576 {
            bail!("data_plane.tunnel_mtu must be 0 (discover) or at least 576");
        }
        if self.nat_sources.iter().any(|p| !p.addr.is_ipv4()) {
            bail!("data_plane.nat_sources: IPv4 prefixes only");
        }
        if self.reassembly_timeout_secs == 0 {
            bail!("data_plane.reassembly_timeout_secs must be at least 1");
        }
        Ok(())
    }
}

/// Packet I/O counters (the engine's [`Counters`] count decisions).
#[derive(Debug, Default)]
pub(crate) struct IoCounters {
    /// Public frames without the expected link-layer header.
    pub(crate) bad_frames: AtomicU64,
    /// Sends refused by the kernel (no route, too big, buffer full).
    pub(crate) send_errors: AtomicU64,
    /// Packets written back into the local stack.
    pub(crate) to_local: AtomicU64,
    /// Tunnelled packets split to fit `tunnel_mtu`.
    pub(crate) fragmented: AtomicU64,
    /// ICMP "fragmentation needed" sent for packets with DF that did not fit.
    pub(crate) frag_needed_sent: AtomicU64,
    /// Violations not passed on because the engine's queue was full.
    pub(crate) violations_dropped: AtomicU64,
    /// Hosts' TCP superpackets forwarded as GSO packets (`gso_tun_name`).
    pub(crate) gso_forwarded: AtomicU64,
}

/// A copy of the data plane's counters.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DataPlaneSnapshot {
    /// Bindings in the table.
    pub(crate) bindings: usize,
    /// Decisions per direction and drop reason, reassembly, violations.
    pub(crate) counters: Counters,
    /// IKE initiator cookies claimed (RFC 3104 6.1).
    pub(crate) learned_cookies: usize,
    /// ICMP query identifiers mapped (RFC 3102 6.2).
    pub(crate) learned_queries: usize,
    /// Outbound ESP/AH flows learned for ICMP errors.
    pub(crate) learned_esp_flows: usize,
    /// Public frames without the expected link-layer header.
    pub(crate) bad_frames: u64,
    /// Sends the kernel refused.
    pub(crate) send_errors: u64,
    /// Packets written back into the gateway's own stack.
    pub(crate) to_local: u64,
    /// Tunnelled packets fragmented to fit the tunnel MTU.
    pub(crate) fragmented: u64,
    /// ICMP "fragmentation needed" sent to public senders.
    pub(crate) frag_needed_sent: u64,
    /// Violation reports lost to a full engine queue.
    pub(crate) violations_dropped: u64,
    /// Hosts' TCP superpackets forwarded whole as GSO packets.
    pub(crate) gso_forwarded: u64,
}

/// What the engine task and the metrics see of the data plane.
#[derive(Debug)]
pub(crate) struct Shared {
    table: Mutex<DataPlane>,
    pub(crate) io: IoCounters,
}

fn lock(m: &Mutex<DataPlane>) -> MutexGuard<'_, DataPlane> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Mirrors one engine event into the binding table.
    pub(crate) fn apply(&self, event: &Event) {
        match event {
            Event::BindingGranted { binding, .. } => self.insert(binding),
            Event::BindingFreed { binding, .. } => {
                lock(&self.table).remove(binding.bind);
            }
            Event::Deregistered { host, .. } => {
                lock(&self.table).remove_host(host.client);
            }
            _ => {}
        }
    }

    /// Puts a binding (granted now, or restored from the store) in the table.
    pub(crate) fn insert(&self, record: &BindingRecord) {
        match record.to_data_plane() {
            Ok(b) => {
                if let Err(e) = lock(&self.table).insert(b) {
                    warn!(bind = record.bind.0, client = record.client.0, error = %e, "data plane: binding not carried");
                }
            }
            Err(e) => {
                warn!(bind = record.bind.0, client = record.client.0, error = %e, "data plane: binding not carried");
            }
        }
    }

    /// Everything the metrics and `realm ctl dataplane` show.
    pub(crate) fn snapshot(&self) -> DataPlaneSnapshot {
        let t = lock(&self.table);
        let (cookies, queries, esp_flows) = t.learned();
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DataPlaneSnapshot {
            bindings: t.len(),
            counters: t.counters().clone(),
            learned_cookies: cookies,
            learned_queries: queries,
            learned_esp_flows: esp_flows,
            bad_frames: n(&self.io.bad_frames),
            send_errors: n(&self.io.send_errors),
            to_local: n(&self.io.to_local),
            fragmented: n(&self.io.fragmented),
            frag_needed_sent: n(&self.io.frag_needed_sent),
            violations_dropped: n(&self.io.violations_dropped),
            gso_forwarded: n(&self.io.gso_forwarded),
        }
    }

    /// Bindings in the table.
    pub(crate) fn len(&self) -> usize {
        lock(&self.table).len()
    }
}

/// The running data plane: dropping it stops the packet thread and removes
/// the steering table and the TUN.
pub(crate) struct Running {
    pub(crate) shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").finish_non_exhaustive()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn port_set(ranges: &[(u16, u16)]) -> String {
    let mut s = String::from("{ ");
    for (i, &(first, last)) in ranges.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        if first == last {
            let _ = write!(s, "{first}");
        } else {
            let _ = write!(s, "{first}-{last}");
        }
    }
    s.push_str(" }");
    s
}

fn addr_set(addrs: &[Ipv4Addr]) -> String {
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    format!("{{ {} }}", list.join(", "))
}

/// The body of the steering table: one ingress chain on `public` forwarding
/// to `tun` what the data plane may own (see the module doc). Addresses the
/// gateway uses (`local`) keep everything else for its own stack. Addresses
/// with the same leasable ports share rules.
pub(crate) fn ruleset(
    public: &str,
    tun: &str,
    pool: &[AddressConfig],
    local: &[Ipv4Addr],
) -> String {
    let mut whole = Vec::new();
    let mut shared: BTreeMap<Vec<(u16, u16)>, Vec<Ipv4Addr>> = BTreeMap::new();
    for a in pool {
        if local.contains(&a.address) {
            // The leasable ports are realm-lease's to compute.
            let key = a.leasable_runs();
            shared.entry(key).or_default().push(a.address);
        } else {
            whole.push(a.address);
        }
    }
    let mut s = String::new();
    let _ = writeln!(s, "  chain ingress {{");
    let _ = writeln!(
        s,
        "    type filter hook ingress device \"{public}\" priority -100; policy accept;"
    );
    if !whole.is_empty() {
        let _ = writeln!(s, "    ip daddr {} fwd to \"{tun}\"", addr_set(&whole));
    }
    for (ports, addrs) in &shared {
        let d = addr_set(addrs);
        let _ = writeln!(
            s,
            "    ip daddr {d} ip frag-off & 0x3fff != 0 fwd to \"{tun}\""
        );
        let _ = writeln!(
            s,
            "    ip daddr {d} ip protocol {{ icmp, esp, ah }} fwd to \"{tun}\""
        );
        let _ = writeln!(
            s,
            "    ip daddr {d} udp dport {{ 500, 4500 }} fwd to \"{tun}\""
        );
        if !ports.is_empty() {
            let p = port_set(ports);
            let _ = writeln!(s, "    ip daddr {d} tcp dport {p} fwd to \"{tun}\"");
            let _ = writeln!(s, "    ip daddr {d} udp dport {p} fwd to \"{tun}\"");
        }
    }
    let _ = writeln!(s, "  }}");
    s
}

/// The body of the plain-NAT table for hosts that do not speak RSIP:
/// masquerade `sources` leaving `public`, on `ports` (the gateway's own
/// ephemeral range, never leased, so NAT and RSIP never pick the same
/// public port).
pub(crate) fn nat_ruleset(public: &str, sources: &[Prefix], ports: (u16, u16)) -> String {
    let list: Vec<String> = sources.iter().map(ToString::to_string).collect();
    let from = format!("ip saddr {{ {} }} oifname \"{public}\"", list.join(", "));
    format!(
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         {from} meta l4proto {{ tcp, udp }} masquerade to :{}-{}\n    {from} masquerade\n  }}\n",
        ports.0, ports.1
    )
}

/// Starts the data plane: a thread of its own creates the TUN, the
/// steering table and the raw sockets (in the process's namespace, on its
/// own runtime, so its I/O is driven there), loads the bindings already
/// granted (restored from the store), and forwards until the returned
/// [`Running`] is dropped.
pub(crate) async fn start(
    settings: &DataPlaneSettings,
    public: &str,
    listen: &[Ipv4Addr],
    gateway: &GatewayConfig,
    restored: Vec<BindingRecord>,
    clock: Clock,
    violations: mpsc::Sender<Input>,
) -> anyhow::Result<Running> {
    let tunnel_source = settings
        .tunnel_source
        .or_else(|| listen.iter().copied().find(|a| !a.is_unspecified()))
        .context(
            "data_plane.tunnel_source is needed when listen.addresses is 0.0.0.0 \
             (the gateway's private address, outer source of tunnelled packets)",
        )?;
    let link_header = link_header_len(public)?;
    let pool = gateway.lease_config().context("gateway pool")?.pool;
    let ephemeral = (gateway.ephemeral_ports.first, gateway.ephemeral_ports.last);
    let settings = settings.clone();
    let public = public.to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<anyhow::Result<Arc<Shared>>>();
    let thread = std::thread::Builder::new()
        .name("realm-dp".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
            };
            runtime.block_on(async move {
                let setup = Setup {
                    settings: &settings,
                    nat_sources: &settings.nat_sources,
                    ephemeral,
                    public: &public,
                    tunnel_source,
                    pool: &pool,
                    restored: &restored,
                };
                let (io, steering, sockets) = match setup.run(clock, violations, link_header).await
                {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(Arc::clone(&io.shared)));
                let (ipip, gre) = sockets;
                tokio::select! {
                    _ = stop_rx => {}
                    () = io.serve_hosts(&ipip) => {}
                    () = io.serve_hosts(&gre) => {}
                    () = io.serve_public() => {}
                    () = io.timers() => {}
                }
                // The rules go before the TUN they point at.
                drop(steering);
                drop(io);
            });
        })
        .context("start the data plane thread")?;
    let shared = match ready_rx.await {
        Ok(r) => r?,
        Err(_) => bail!("data plane thread died at start"),
    };
    Ok(Running {
        shared,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

struct Setup<'a> {
    settings: &'a DataPlaneSettings,
    nat_sources: &'a [Prefix],
    ephemeral: (u16, u16),
    public: &'a str,
    tunnel_source: Ipv4Addr,
    pool: &'a [AddressConfig],
    restored: &'a [BindingRecord],
}

impl Setup<'_> {
    async fn run(
        &self,
        clock: Clock,
        violations: mpsc::Sender<Input>,
        link_header: usize,
    ) -> anyhow::Result<(Io, (Option<NftTable>, Option<NftTable>), (RawIp, RawIp))> {
        let (settings, public) = (self.settings, self.public);
        let netlink = Netlink::new().context("netlink")?;
        let local: Vec<Ipv4Addr> = netlink
            .addresses(public)
            .await
            .with_context(|| format!("addresses of data_plane.public_interface {public}"))?
            .iter()
            .map(realm_io::Ipv4Prefix::addr)
            .collect();
        for a in self.pool {
            if local.contains(&a.address) && a.whole_lease {
                warn!(address = %a.address, "pool address is the gateway's own but not `shared`: the data plane refuses RSA-IP on it");
            }
        }
        let tunnel_mtu = match settings.tunnel_mtu {
            0 => discover_mtu(&netlink, self.tunnel_source).await?,
            m => usize::from(m),
        };
        let mut config = dataplane::Config::new(self.tunnel_source);
        config.local_addresses.clone_from(&local);
        config.violations_per_second = settings.violations_per_second;
        config.reassembly_timeout = Duration::from_secs(settings.reassembly_timeout_secs);
        config.reassembly_memory = settings.reassembly_memory;
        config.reassembly_memory_per_source = settings.reassembly_memory_per_source;
        let mut table = DataPlane::new(config);
        let mut seed = [0u8; 2];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("OS random generator: {e}"))?;
        table.set_ident(u16::from_be_bytes(seed));
        let shared = Arc::new(Shared {
            table: Mutex::new(table),
            io: IoCounters::default(),
        });
        for r in self.restored {
            shared.insert(r);
        }

        // The TUN first: the steering rules name it. Large MTU: reassembled
        // datagrams for the gateway itself are written back whole.
        let tun = Tun::create_with(
            &TunConfig::new(settings.tun_name.clone()).mtu(u16::MAX),
            &netlink,
        )
        .await
        .with_context(|| format!("creating TUN {}", settings.tun_name))?;
        // Packets written back arrive "on" the TUN from public sources, and
        // the TUN has no address: reverse-path filtering (strict or loose)
        // rejects every packet on an address-less device, so it must be off
        // there; the kernel applies max(all, device).
        use realm_io::sysctl::{RpFilter, rp_filter, set_rp_filter};
        set_rp_filter(&settings.tun_name, RpFilter::Off)
            .with_context(|| format!("set rp_filter of {}", settings.tun_name))?;
        if rp_filter("all").is_ok_and(|m| m != RpFilter::Off) {
            warn!(
                "net.ipv4.conf.all.rp_filter is on: packets for the gateway's own stack \
                 (ICMP requests, its services on a shared address) will be dropped; set it to 0 \
                 and rp_filter per interface instead"
            );
        }
        let _ = realm_io::sysctl::write(
            &format!("net.ipv6.conf.{}.disable_ipv6", settings.tun_name),
            "1",
        );
        let steering = if settings.steer {
            let name = format!("realm_gw_{}", settings.tun_name.replace('-', "_"));
            let body = ruleset(public, &settings.tun_name, self.pool, &local);
            debug!(table = %name, %body, "nftables steering");
            Some(NftTable::install("netdev", &name, &body).with_context(|| {
                format!(
                    "installing nftables table netdev {name} on {public} \
                         (is `nft` installed? scripts/install-deps installs it)"
                )
            })?)
        } else {
            None
        };
        let nat = if self.nat_sources.is_empty() {
            None
        } else {
            realm_io::sysctl::set_ip_forward(true).context("net.ipv4.ip_forward")?;
            let name = format!("realm_gw_nat_{}", settings.tun_name.replace('-', "_"));
            let body = nat_ruleset(public, self.nat_sources, self.ephemeral);
            Some(
                NftTable::install("ip", &name, &body)
                    .with_context(|| format!("installing nftables table ip {name}"))?,
            )
        };
        let opts = |bind| RawIpOptions {
            bind,
            recv_buffer: Some(settings.socket_buffer),
            send_buffer: Some(settings.socket_buffer),
            ..RawIpOptions::default()
        };
        let ipip = RawIp::open(proto::IPIP, &opts(Some(self.tunnel_source)))
            .context("raw IP-in-IP socket")?;
        let gre =
            RawIp::open(proto::GRE, &opts(Some(self.tunnel_source))).context("raw GRE socket")?;
        let out = RawIp::open(proto::RAW, &opts(None)).context("raw send socket")?;
        let public_mtu = usize::try_from(netlink.mtu(public).await?).unwrap_or(1500);
        let gso_tun = if settings.gso_tun_name.is_empty() {
            None
        } else {
            Some(open_gso_tun(&settings.gso_tun_name, &netlink).await?)
        };
        info!(public, tun = %settings.tun_name, tunnel_source = %self.tunnel_source, tunnel_mtu, ?local, bindings = shared.len(), "data plane ready");
        let io = Io {
            tunnel_mtu,
            public_mtu,
            gso_tun,
            shared,
            out,
            tun,
            clock,
            violations,
            link_header,
        };
        Ok((io, (steering, nat), (ipip, gre)))
    }
}

/// The TUN superpackets from hosts are written into (module doc): offloads
/// on; forwarding on for packets that arrive on it, the gateway's own source
/// address accepted, no reverse-path filter (it has no address).
async fn open_gso_tun(name: &str, netlink: &Netlink) -> anyhow::Result<Tun> {
    use realm_io::sysctl::{RpFilter, set_rp_filter, write};
    let tun = Tun::create_with(&TunConfig::new(name).mtu(u16::MAX).offload(true), netlink)
        .await
        .with_context(|| format!("creating TUN {name} (data_plane.gso_tun_name)"))?;
    if !tun.offload() {
        bail!("TUN {name}: the kernel refused offloads (set data_plane.gso_tun_name = \"\")");
    }
    let _ = write(&format!("net.ipv6.conf.{name}.disable_ipv6"), "1");
    set_rp_filter(name, RpFilter::Off).with_context(|| format!("set rp_filter of {name}"))?;
    for key in ["forwarding", "accept_local"] {
        write(&format!("net.ipv4.conf.{name}.{key}"), "1")
            .with_context(|| format!("set net.ipv4.conf.{name}.{key}"))?;
    }
    Ok(tun)
}

/// The MTU of the interface that carries `address`.
async fn discover_mtu(netlink: &Netlink, address: Ipv4Addr) -> anyhow::Result<usize> {
    let dir = std::fs::read_dir("/sys/class/net").context("list /sys/class/net")?;
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(addrs) = netlink.addresses(&name).await else {
            continue;
        };
        if addrs.iter().any(|p| p.addr() == address) {
            let mtu = netlink.mtu(&name).await?;
            return Ok(usize::try_from(mtu).unwrap_or(1500));
        }
    }
    bail!(
        "data_plane.tunnel_source {address} is on no interface (set it, or data_plane.tunnel_mtu)"
    )
}

/// Bytes of link-layer header nftables' ingress `fwd` leaves in front of
/// each packet: 14 on Ethernet. Other link types are refused rather than
/// guessed.
fn link_header_len(public: &str) -> anyhow::Result<usize> {
    let path = format!("/sys/class/net/{public}/type");
    let t = std::fs::read_to_string(&path)
        .with_context(|| format!("data_plane.public_interface {public}: reading {path}"))?;
    match t.trim() {
        "1" => Ok(14),
        other => bail!(
            "data_plane.public_interface {public}: link type {other} (ARPHRD); only Ethernet (1) is supported"
        ),
    }
}

struct Io {
    tunnel_mtu: usize,
    /// MTU of the public interface: larger TCP packets go out as GSO.
    public_mtu: usize,
    /// The TUN superpackets are forwarded through (`gso_tun_name`).
    gso_tun: Option<Tun>,
    shared: Arc<Shared>,
    out: RawIp,
    tun: Tun,
    clock: Clock,
    violations: mpsc::Sender<Input>,
    link_header: usize,
}

const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];

impl Io {
    fn report(&self, v: Violation) {
        if self
            .violations
            .try_send(Input::Violation {
                client: v.host,
                code: v.code,
            })
            .is_err()
        {
            self.shared
                .io
                .violations_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends every packet, skipping (and counting) the ones the kernel refuses.
    async fn send_all(&self, packets: &[&[u8]]) {
        let mut i = 0;
        while i < packets.len() {
            match self.out.send_batch(&packets[i..]).await {
                Ok(0) => break,
                Ok(k) => i += k,
                Err(e) => {
                    debug!(error = %e, "data plane send");
                    self.shared.io.send_errors.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            }
        }
    }

    /// Tunnelled packets from hosts → checks → the public network.
    async fn serve_hosts(&self, socket: &RawIp) {
        let mut bufs = vec![vec![0u8; realm_io::MAX_IPV4_PACKET]; realm_io::MAX_BATCH];
        let mut lens = vec![0usize; realm_io::MAX_BATCH];
        let mut results = Vec::with_capacity(realm_io::MAX_BATCH);
        loop {
            let n = match socket.recv_batch(&mut bufs, &mut lens).await {
                Ok(n) => n,
                Err(e) => {
                    debug!(error = %e, protocol = socket.protocol(), "data plane receive");
                    continue;
                }
            };
            let packets: Vec<&[u8]> = bufs[..n]
                .iter()
                .zip(&lens[..n])
                .map(|(b, &l)| &b[..l])
                .collect();
            let now = self.clock.now();
            lock(&self.shared.table).outbound_batch(now, &packets, &mut results);
            let mut send: Vec<&[u8]> = Vec::with_capacity(n);
            let mut gso: Vec<&[u8]> = Vec::new();
            for (p, r) in packets.iter().zip(&results) {
                match r {
                    Outbound::Forward { range, .. } if range.len() > self.public_mtu => {
                        gso.push(&p[range.clone()]);
                    }
                    Outbound::Forward { range, .. } => send.push(&p[range.clone()]),
                    Outbound::Drop {
                        violation: Some(v), ..
                    } => self.report(*v),
                    Outbound::Drop { .. } => {}
                }
            }
            self.send_all(&send).await;
            for p in gso {
                self.send_gso(p).await;
            }
        }
    }

    /// An inner packet larger than the public MTU (a host's superpacket):
    /// TCP goes into the GSO TUN, cut into segments of the tunnel MTU less
    /// IP-in-IP's 20 bytes (the host's TUN MTU, hence its segment size), at
    /// most the public MTU; without that TUN (or when the write fails) it is
    /// cut here and the segments go through `IPPROTO_RAW`. Anything else goes
    /// to `IPPROTO_RAW` as it is (which refuses it: counted).
    async fn send_gso(&self, packet: &[u8]) {
        let ihl = usize::from(packet[0] & 0x0f) * 4;
        let tcp = packet.get(9) == Some(&proto::TCP);
        let thl = packet.get(ihl + 12).map(|b| usize::from(b >> 4) * 4);
        let frag = packet
            .get(6..8)
            .is_some_and(|f| f[0] & 0x3f != 0 || f[1] != 0);
        let segment =
            (self.tunnel_mtu.saturating_sub(realm_wire::ipip::OVERHEAD)).min(self.public_mtu);
        let gso_size = thl.and_then(|thl| segment.checked_sub(ihl + thl));
        let Some(gso_size) = gso_size
            .filter(|&g| tcp && !frag && g > 0)
            .and_then(|g| u16::try_from(g).ok())
        else {
            self.send_all(&[packet]).await;
            return;
        };
        let gso = realm_io::Gso::tcp(packet, gso_size);
        if let Some(tun) = &self.gso_tun {
            match tun.send_gso(packet, gso).await {
                Ok(_) => {
                    self.shared.io.gso_forwarded.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    debug!(error = %e, len = packet.len(), "data plane: GSO write; segmenting here");
                }
            }
        }
        let mut scratch = packet.to_vec();
        let count = packet.len() / usize::from(gso_size) + 1;
        let mut bufs = vec![vec![0u8; self.public_mtu.max(segment)]; count];
        let mut lens = vec![0usize; count];
        match realm_io::segment_tcp(&mut scratch, gso, &mut bufs, &mut lens) {
            Ok(n) => {
                let segments: Vec<&[u8]> = bufs
                    .iter()
                    .zip(&lens)
                    .take(n)
                    .map(|(b, &l)| &b[..l])
                    .collect();
                self.send_all(&segments).await;
            }
            Err(e) => {
                debug!(error = %e, len = packet.len(), "data plane: cannot segment");
                self.shared.io.send_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Public packets steered into the TUN → demultiplexing → hosts (or the
    /// gateway's own stack).
    async fn serve_public(&self) {
        let mut bufs: Vec<PacketBuf> = (0..dataplane::BATCH).map(|_| PacketBuf::new()).collect();
        let mut results = Vec::with_capacity(dataplane::BATCH);
        loop {
            let mut n = 0;
            match self.tun.recv(bufs[0].receive_buffer()).await {
                Ok(len) => {
                    if self.frame(&mut bufs[0], len) {
                        n = 1;
                    }
                }
                Err(e) => {
                    warn!(error = %e, tun = self.tun.name(), "data plane TUN read");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
            while n < bufs.len() {
                match self.tun.try_recv(bufs[n].receive_buffer()) {
                    Ok(len) => {
                        if self.frame(&mut bufs[n], len) {
                            n += 1;
                        }
                    }
                    Err(_) => break,
                }
            }
            if n == 0 {
                continue;
            }
            let now = self.clock.now();
            lock(&self.shared.table).inbound_batch(now, &mut bufs[..n], &mut results);
            let mut send: Vec<&[u8]> = Vec::with_capacity(n);
            let mut local: Vec<usize> = Vec::new();
            let mut too_big: Vec<usize> = Vec::new();
            for (i, r) in results.iter().enumerate() {
                match r {
                    Inbound::Tunnel { .. } if bufs[i].len() > self.tunnel_mtu => too_big.push(i),
                    Inbound::Tunnel { .. } => send.push(bufs[i].packet()),
                    Inbound::Local => local.push(i),
                    Inbound::Buffered | Inbound::Drop { .. } => {}
                }
            }
            self.send_all(&send).await;
            for i in too_big {
                self.send_too_big(bufs[i].packet()).await;
            }
            for i in local {
                self.shared.io.to_local.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = self.tun.send(bufs[i].packet()).await {
                    debug!(error = %e, "data plane: write to the local stack");
                    self.shared.io.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// A tunnelled packet above the tunnel MTU (a datagram reassembled from
    /// public fragments, say): split when its outer DF is clear; else the
    /// public sender learns the MTU it may use (RFC 2003 5.1, RFC 1191).
    async fn send_too_big(&self, packet: &[u8]) {
        use realm_wire::fragment::{FragmentError, frag_needed, fragment};
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        match fragment(packet, self.tunnel_mtu, &mut out, &mut ranges) {
            Ok(()) => {
                self.shared.io.fragmented.fetch_add(1, Ordering::Relaxed);
                let frags: Vec<&[u8]> = ranges.iter().map(|r| &out[r.clone()]).collect();
                self.send_all(&frags).await;
            }
            Err(FragmentError::DontFragment) => {
                // The packet was just encapsulated here: take it apart again
                // to reach the inner packet the sender must be told about.
                let inner =
                    match realm_wire::ipv4::Packet::new_checked(packet).map(|p| p.protocol()) {
                        Ok(realm_wire::ipv4::IpProtocol::Gre) => {
                            realm_wire::gre::decapsulate(packet).map(|d| d.inner.into_inner())
                        }
                        _ => realm_wire::ipip::decapsulate(packet).map(|d| d.inner.into_inner()),
                    };
                let Ok(inner) = inner else {
                    return;
                };
                let Ok(ip) = realm_wire::ipv4::Packet::new_checked(inner) else {
                    return;
                };
                let start = packet.len() - inner.len();
                let mtu = u16::try_from(self.tunnel_mtu.saturating_sub(start)).unwrap_or(u16::MAX);
                if let Some(icmp) = frag_needed(ip.dst_addr(), inner, mtu) {
                    self.shared
                        .io
                        .frag_needed_sent
                        .fetch_add(1, Ordering::Relaxed);
                    self.send_all(&[&icmp]).await;
                }
            }
            Err(e) => {
                debug!(error = %e, "data plane: cannot fragment");
                self.shared.io.send_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Strips the link-layer header `fwd` left; false (counted) when the
    /// frame is not IPv4 behind the expected header.
    fn frame(&self, buf: &mut PacketBuf, len: usize) -> bool {
        let h = self.link_header;
        let ok = len > h + 20 && (h == 0 || buf.receive_buffer()[h - 2..h] == ETHERTYPE_IPV4);
        if ok {
            buf.set_received(h, len);
        } else {
            self.shared.io.bad_frames.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Reassembly and learned-state expiry.
    async fn timers(&self) {
        loop {
            let next: Option<Timestamp> = lock(&self.shared.table).poll_timeout();
            let wait = next.map_or(Duration::from_secs(1), |t| {
                t.saturating_duration_since(self.clock.now())
                    .clamp(Duration::from_millis(10), Duration::from_secs(1))
            });
            tokio::time::sleep(wait).await;
            let now = self.clock.now();
            lock(&self.shared.table).handle_timeout(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(a: &str, whole: bool, ports: &[(u16, u16)], excl: &[(u16, u16)]) -> AddressConfig {
        AddressConfig {
            address: a.parse().unwrap(),
            whole_lease: whole,
            ports: ports.iter().map(|&(a, b)| a..=b).collect(),
            excluded: excl.iter().map(|&(a, b)| a..=b).collect(),
        }
    }

    #[test]
    fn plain_nat_masquerades_only_on_the_gateways_own_ports() {
        let sources = vec![Prefix::new("10.0.1.0".parse().unwrap(), 24)];
        let r = nat_ruleset("pub0", &sources, (49152, 65535));
        assert!(r.contains("type nat hook postrouting"), "{r}");
        assert!(
            r.contains(
                "ip saddr { 10.0.1.0/24 } oifname \"pub0\" meta l4proto { tcp, udp } masquerade to :49152-65535"
            ),
            "{r}"
        );
    }

    #[test]
    fn ruleset_steers_leased_ports_on_own_addresses_and_everything_else_on_others() {
        let pool = vec![
            addr(
                "192.0.2.1",
                false,
                &[(1024, 65535)],
                &[(4555, 4555), (49152, 65535)],
            ),
            addr("203.0.113.9", true, &[(1024, 65535)], &[]),
        ];
        let local = ["192.0.2.1".parse().unwrap()];
        let r = ruleset("pub0", "realm-gw0", &pool, &local);
        assert!(r.contains("device \"pub0\""));
        assert!(
            r.contains("ip daddr { 203.0.113.9 } fwd to \"realm-gw0\""),
            "{r}"
        );
        assert!(
            r.contains(
                "ip daddr { 192.0.2.1 } tcp dport { 1024-4554, 4556-49151 } fwd to \"realm-gw0\""
            ),
            "{r}"
        );
        assert!(r.contains("udp dport { 500, 4500 }"), "{r}");
        assert!(r.contains("frag-off & 0x3fff != 0"), "{r}");
        assert!(r.contains("ip protocol { icmp, esp, ah }"), "{r}");
        // The gateway's own address is never steered whole.
        assert!(!r.contains("ip daddr { 192.0.2.1 } fwd"), "{r}");
    }
}
