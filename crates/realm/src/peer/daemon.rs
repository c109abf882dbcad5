//! The `realm peer` loop: a thin driver around the sans-IO [`Ipsec`] engine
//! (STYLE.md s5). One task, one thread:
//!
//! ```text
//! select! { tun.recv_batch, esp.recv_batch, ah.recv_batch, udp readable,
//!           sleep_until(engine.poll_timeout()), control request, SIGTERM/SIGINT }
//! ```
//!
//! Each wake-up handles one bounded batch ([`MAX_BATCH`] packets) and reads
//! the clock once. Packets are never copied on the way through: TUN reads
//! land [`MAX_HEADROOM`] bytes into their buffer so the engine seals them in
//! place; underlay reads are opened in place and written to the TUN from the
//! same buffer. Protected output leaves through one `IPPROTO_RAW` socket in
//! `sendmmsg` batches, except ESP-in-UDP from our NAT-T port, which leaves
//! through the UDP socket, a flow's consecutive datagrams in one UDP GSO call
//! (and arrives coalesced by `UDP_GRO`). With TUN offloads, reads and writes
//! of the TUN carry up to 64 KiB of a TCP flow each.
//!
//! Plain ESP on an Ethernet underlay takes a shorter way through the kernel
//! (`[underlay] af_packet`, on by default):
//! - out: an AF_PACKET socket straight to the next
//!   hop's MAC, which [`Netlink::next_hop`] looks up (route, then neighbour
//!   table) and which is looked up again every [`NEXT_HOP_REFRESH`]. While
//!   there is none (no route out of an Ethernet device, neighbour not yet
//!   resolved, a send failed), and once per refresh while the neighbour entry
//!   is only `STALE`, `DELAY` or `PROBE` (so the kernel's own output path
//!   confirms it), plain ESP leaves through the raw socket, which resolves
//!   the neighbour: counted as `af_packet_tx_fallbacks`. An ESP packet whose
//!   header the raw socket would complete (ID 0 without DF, source 0) always
//!   takes the raw socket.
//! - in (needs `[underlay] device` and `nft`): an AF_PACKET socket on that
//!   device takes unfragmented IPv4 ESP to our address before the IP stack,
//!   and an nftables `netdev` ingress rule then drops those packets for the
//!   stack (table `realm_peer_esp_<address>`, removed on exit). Fragments
//!   still reach the raw ESP socket, reassembled. Without a device or `nft`,
//!   plain ESP is received through the raw socket only (logged at start).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::Context;
use realm_io::netlink::NextHop;
use realm_io::nft::NftTable;
use realm_io::packet::{EspReceiver, PacketSender, esp_ingress_drop_rule};
use realm_io::raw::{RawIpOptions, proto};
use realm_io::socket::{
    SocketOptions, UDP_MAX_SEGMENTS, udp_send_segments, udp_set_gro, udp_try_recv_segments,
};
use realm_io::tun::OFFLOAD_HEADROOM;
use realm_io::{MAX_BATCH, Netlink, RawIp, RouteVia, Tun, TunConfig};
use realm_ipsec::{
    EngineConfig, Event, Inbound, Ipsec, IpsecProtocol, MAX_HEADROOM, OutboundInPlace, SealError,
};
use realm_wire::{ipv4, udp};
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};

use super::config::PeerConfig;
use crate::ctl::server::{CtlServer, Incoming};
use crate::ike::IkeRuntime;

/// Room after a packet for what sealing appends: ESP padding (at most 15),
/// pad length and next header (2), ICV (at most 16).
const TAILROOM: usize = 64;

/// IPv4 and UDP headers the UDP socket strips and the engine wants back.
const IP_UDP_HEADERS: usize = 28;

/// Smallest underlay receive buffer. Larger protected packets (reassembled
/// fragments) are dropped as truncated; a peer whose TUN MTU matches ours
/// never sends them.
const MIN_UNDERLAY_BUFFER: usize = 2048;

/// How long a next hop looked up for the AF_PACKET send path is used before
/// it is looked up again (a changed MAC or route is noticed this late at most).
pub(crate) const NEXT_HOP_REFRESH: Duration = Duration::from_secs(1);

/// The AF_PACKET send path's view of one destination.
#[derive(Debug, Clone, Copy)]
struct NextHopEntry {
    dst: Ipv4Addr,
    hop: Option<NextHop>,
    looked_up: Instant,
    /// Send the next packet through the raw socket (the neighbour entry
    /// wants confirming, or the last AF_PACKET send failed).
    via_kernel: bool,
}

/// The size of an underlay receive buffer for a TUN MTU.
fn underlay_buffer_size(tun_mtu: u16) -> usize {
    (usize::from(tun_mtu) + 2 * MAX_HEADROOM + TAILROOM).max(MIN_UNDERLAY_BUFFER)
}

/// Where a run of ESP-in-UDP datagrams goes: which of our UDP sockets, to
/// whom, with which TOS byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UdpFlow {
    socket: usize,
    dst: SocketAddrV4,
    tos: u8,
}

/// Packet counters of the daemon (the engine counts per SA).
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct Counters {
    /// Packets and bytes read from the TUN.
    pub(crate) tun_rx_packets: u64,
    pub(crate) tun_rx_bytes: u64,
    /// Packets and bytes written to the TUN (decapsulated).
    pub(crate) tun_tx_packets: u64,
    pub(crate) tun_tx_bytes: u64,
    /// Protected packets received on the underlay (raw ESP/AH, UDP).
    pub(crate) underlay_rx_packets: u64,
    /// Packets sent on the underlay (protected, bypassed, keepalives).
    pub(crate) underlay_tx_packets: u64,
    pub(crate) underlay_tx_bytes: u64,
    /// Outbound: sealed, sent in clear under BYPASS, dropped by DISCARD (or
    /// no policy), dropped for want of an SA, too big with DF (ICMP sent back),
    /// other seal failures, not IPv4.
    pub(crate) protected: u64,
    pub(crate) bypassed: u64,
    pub(crate) discarded: u64,
    pub(crate) no_sa: u64,
    pub(crate) fragmentation_needed: u64,
    pub(crate) seal_errors: u64,
    pub(crate) not_ipv4: u64,
    /// Inbound: dropped by the engine (reasons per SA in `sas`, engine-wide
    /// in `status`), IKE datagrams ignored (no IKE yet), NAT keepalives.
    pub(crate) inbound_dropped: u64,
    pub(crate) ike_ignored: u64,
    pub(crate) keepalives_rx: u64,
    pub(crate) keepalives_tx: u64,
    /// Plain ESP sent and received through the AF_PACKET sockets, and plain
    /// ESP that could have been sent that way but went through the raw
    /// socket (next hop unresolved or unconfirmed, an AF_PACKET send failed).
    pub(crate) af_packet_tx_packets: u64,
    pub(crate) af_packet_rx_packets: u64,
    pub(crate) af_packet_tx_fallbacks: u64,
    /// Plain ESP the kernel dropped because the AF_PACKET receive ring was
    /// full (read when `status` is asked for).
    pub(crate) af_packet_rx_drops: u64,
    /// Socket errors (each loses one packet).
    pub(crate) underlay_send_errors: u64,
    pub(crate) tun_write_errors: u64,
}

/// Logs the 1st, 2nd, 4th, 8th... occurrence of a recurring problem.
fn sampled(count: u64) -> bool {
    count.is_power_of_two()
}

/// A packet buffer with headroom: reads land at `v[head..]`; the engine may
/// grow the packet into the headroom and the tailroom without reallocating.
#[derive(Debug)]
struct PacketBuf {
    v: Vec<u8>,
    head: usize,
    size: usize,
}

impl PacketBuf {
    fn new(head: usize, size: usize, capacity: usize) -> Self {
        let mut v = Vec::with_capacity(capacity.max(head + size + TAILROOM));
        v.resize(head + size, 0);
        PacketBuf { v, head, size }
    }
}

impl AsRef<[u8]> for PacketBuf {
    fn as_ref(&self) -> &[u8] {
        self.v.get(self.head..).unwrap_or(&[])
    }
}

impl AsMut<[u8]> for PacketBuf {
    /// The receive window; restores the full length after the last packet
    /// shortened (or took and returned) the vector.
    fn as_mut(&mut self) -> &mut [u8] {
        self.v.resize(self.head + self.size, 0);
        &mut self.v[self.head..]
    }
}

/// One batch's buffers and lengths.
#[derive(Debug)]
struct Pool {
    bufs: Vec<PacketBuf>,
    lens: Vec<usize>,
}

impl Pool {
    fn new(count: usize, head: usize, size: usize, capacity: usize) -> Self {
        Pool {
            bufs: (0..count)
                .map(|_| PacketBuf::new(head, size, capacity))
                .collect(),
            lens: vec![0; count],
        }
    }

    /// Gives the first `n` buffers their whole receive window back (readers
    /// look at `as_ref().len()` before writing): between batches every
    /// buffer is full length. Only the bytes a packet did not use are set.
    fn restore(&mut self, n: usize) {
        for b in &mut self.bufs[..n] {
            b.v.resize(b.head + b.size, 0);
        }
    }
}

/// The running daemon: engine, devices, sockets, counters.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) engine: Ipsec,
    pub(crate) counters: Counters,
    pub(crate) started: Instant,
    pub(crate) config_summary: ConfigSummary,
    tun: Tun,
    netlink: Netlink,
    send: RawIp,
    /// The AF_PACKET send path and the destinations it has looked up.
    packet_tx: Option<PacketSender>,
    next_hops: Vec<NextHopEntry>,
    /// The ingress drop rule goes before the socket it feeds (fields drop in
    /// order): no packet is lost to both.
    _esp_drop: Option<NftTable>,
    packet_rx: Option<EspReceiver>,
    esp: Option<RawIp>,
    ah: Option<RawIp>,
    udp: Vec<(u16, UdpSocket)>,
    /// A UDP_GRO read (up to 64 KiB of datagrams).
    udp_scratch: Vec<u8>,
    /// The payloads of one UDP GSO send.
    gso_scratch: Vec<u8>,
    /// UDP GSO works (cleared at the first failure).
    udp_gso: bool,
    underlay: Ipv4Addr,
    control_socket: PathBuf,
    /// The IKE runtime, when the file has `[connections]`.
    pub(crate) ike: Option<IkeRuntime>,
}

/// What `status` reports about the configuration.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConfigSummary {
    pub(crate) tun: String,
    pub(crate) tun_mtu: u16,
    pub(crate) underlay: Ipv4Addr,
    pub(crate) device: Option<String>,
    #[serde(skip)]
    pub(crate) device_ifindex: Option<u32>,
    pub(crate) sockets: Vec<String>,
}

enum Wake {
    Tun(io::Result<usize>),
    Esp(io::Result<usize>),
    PacketEsp(io::Result<usize>),
    Ah(io::Result<usize>),
    Udp(usize),
    Ike(usize),
    Timer,
    Control(Option<Incoming>),
    Stop(&'static str),
}

async fn recv_raw(socket: Option<&RawIp>, pool: &mut Pool) -> io::Result<usize> {
    match socket {
        Some(s) => s.recv_batch(&mut pool.bufs, &mut pool.lens).await,
        None => std::future::pending().await,
    }
}

async fn recv_packet(socket: Option<&mut EspReceiver>, pool: &mut Pool) -> io::Result<usize> {
    match socket {
        Some(s) => s.recv_batch(&mut pool.bufs, &mut pool.lens).await,
        None => std::future::pending().await,
    }
}

/// Index of a UDP socket with something to read.
async fn udp_readable(sockets: &[(u16, UdpSocket)]) -> usize {
    if sockets.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        for (i, (_, s)) in sockets.iter().enumerate() {
            if s.poll_recv_ready(cx).is_ready() {
                return Poll::Ready(i);
            }
        }
        Poll::Pending
    })
    .await
}

/// Index of an IKE socket with something to read.
async fn ike_readable(ike: Option<&IkeRuntime>) -> usize {
    match ike {
        Some(r) => r.readable().await,
        None => std::future::pending().await,
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub(crate) async fn run(config: PeerConfig) -> anyhow::Result<()> {
    let mut peer = Peer::start(&config).await?;
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    // Bound last: a control socket that answers means the data path is up.
    let (control_tx, mut control) = tokio::sync::mpsc::channel::<Incoming>(16);
    let control_server = CtlServer::bind(&peer.control_socket, control_tx)
        .with_context(|| format!("control socket {}", peer.control_socket.display()))?;
    tracing::info!(
        tun = %peer.tun.name(),
        underlay = %peer.underlay,
        sas = peer.engine.sas().count(),
        control = %peer.control_socket.display(),
        "realm peer running"
    );

    let tun_size = usize::from(peer.tun.mtu());
    let underlay_size = underlay_buffer_size(peer.tun.mtu());
    // With offloads one TUN read is a superpacket of up to 64 KiB: room for
    // a few of them (and many small packets, one per read) per wake-up.
    let tun_batch = if peer.tun.offload() {
        (4 * peer.tun.segments_per_superpacket()).max(MAX_BATCH)
    } else {
        MAX_BATCH
    };
    // GRO on the TUN appends a flow's following segments to the first one's
    // buffer, in place only: give underlay buffers room for a superpacket.
    // (Pages are touched only when used: at most 64 x 64 KiB per socket.)
    let deliver_capacity = if peer.tun.offload() {
        2 * OFFLOAD_HEADROOM + 65_535
    } else {
        0
    };
    let mut tun_pool = Pool::new(tun_batch, MAX_HEADROOM, tun_size, 0);
    let mut esp_pool = Pool::new(MAX_BATCH, 0, underlay_size, deliver_capacity);
    let mut packet_pool = Pool::new(MAX_BATCH, 0, underlay_size, deliver_capacity);
    let mut ah_pool = Pool::new(MAX_BATCH, 0, underlay_size, deliver_capacity);
    let mut udp_pool = Pool::new(
        4 * UDP_MAX_SEGMENTS,
        IP_UDP_HEADERS,
        underlay_size - IP_UDP_HEADERS,
        deliver_capacity,
    );
    let far = Duration::from_secs(3600);

    loop {
        let timeout = [
            peer.engine.poll_timeout(),
            peer.ike.as_ref().and_then(IkeRuntime::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min();
        let deadline = tokio::time::Instant::from_std(timeout.unwrap_or(peer.started + far));
        let wake = tokio::select! {
            r = peer.tun.recv_batch(&mut tun_pool.bufs, &mut tun_pool.lens) => Wake::Tun(r),
            r = recv_raw(peer.esp.as_ref(), &mut esp_pool) => Wake::Esp(r),
            r = recv_packet(peer.packet_rx.as_mut(), &mut packet_pool) => Wake::PacketEsp(r),
            r = recv_raw(peer.ah.as_ref(), &mut ah_pool) => Wake::Ah(r),
            i = udp_readable(&peer.udp) => Wake::Udp(i),
            i = ike_readable(peer.ike.as_ref()) => Wake::Ike(i),
            () = tokio::time::sleep_until(deadline), if timeout.is_some() => Wake::Timer,
            p = control.recv() => Wake::Control(p),
            _ = sigterm.recv() => Wake::Stop("SIGTERM"),
            _ = sigint.recv() => Wake::Stop("SIGINT"),
        };
        match wake {
            Wake::Tun(Ok(n)) => {
                peer.handle_tun_batch(&mut tun_pool, n).await;
                tun_pool.restore(n);
            }
            Wake::Esp(Ok(n)) => {
                peer.handle_underlay_batch(&mut esp_pool, n).await;
                esp_pool.restore(n);
            }
            Wake::PacketEsp(Ok(n)) => {
                peer.counters.af_packet_rx_packets += n as u64;
                for i in 0..n {
                    packet_pool.lens[i] =
                        checked_ipv4_len(&packet_pool.bufs[i].v[..packet_pool.lens[i]]);
                }
                peer.handle_underlay_batch(&mut packet_pool, n).await;
                packet_pool.restore(n);
            }
            Wake::Ah(Ok(n)) => {
                peer.handle_underlay_batch(&mut ah_pool, n).await;
                ah_pool.restore(n);
            }
            Wake::Tun(Err(e)) | Wake::Esp(Err(e)) | Wake::PacketEsp(Err(e)) | Wake::Ah(Err(e)) => {
                // Truncated raw packets (InvalidData) and transient errors:
                // keep going; a dead device shows up in the counters.
                tracing::debug!(error = %e, "receive");
            }
            Wake::Udp(i) => {
                let n = peer.recv_udp(i, &mut udp_pool);
                if n > 0 {
                    peer.handle_underlay_batch(&mut udp_pool, n).await;
                    udp_pool.restore(n);
                }
            }
            Wake::Ike(i) => {
                if let Some(ike) = &mut peer.ike {
                    ike.recv(i, realm_io::now());
                }
            }
            Wake::Timer => {
                let now = realm_io::now();
                peer.engine.handle_timeout(now);
                if let Some(ike) = &mut peer.ike {
                    ike.handle_timeout(now);
                }
            }
            Wake::Control(Some(p)) => {
                peer.read_af_packet_drops();
                crate::ctl::answer(&mut peer, p);
            }
            Wake::Control(None) => {}
            Wake::Stop(signal) => {
                tracing::info!(signal, "realm peer stopping");
                if let Some(ike) = &mut peer.ike {
                    // Deletes to the peers (RFC 2408 section 4.8 Informational).
                    ike.shutdown(&mut peer.engine, realm_io::now(), &peer.udp);
                }
                break;
            }
        }
        peer.drive_ike();
        peer.drain_engine().await;
    }
    // Dropping `control` removes the socket file; dropping the TUN removes
    // the device and its routes.
    drop(control_server);
    drop(control);
    Ok(())
}

impl Peer {
    /// Installs the SAs and policies, creates the TUN and its routes, opens
    /// the sockets.
    async fn start(config: &PeerConfig) -> anyhow::Result<Peer> {
        let now = realm_io::now();
        let keepalive = (config.nat_t.keepalive_seconds > 0)
            .then(|| Duration::from_secs(config.nat_t.keepalive_seconds));
        let udp_ports = config.udp_ports();
        let mut engine = Ipsec::new(EngineConfig {
            keepalive_interval: keepalive,
            nat_t_port: udp_ports.first().copied().unwrap_or(4500),
        });
        config
            .manual_keying()
            .install(&mut engine, now)
            .context("install SAs and policies")?;
        if let Some(path) = &config.esp_sa_export {
            crate::ike::write_secret(path, &realm_ipsec::wireshark::esp_sa_file(&engine))
                .with_context(|| format!("esp_sa_export {}", path.display()))?;
            tracing::warn!(file = %path.display(), "ESP keys exported for debugging (esp_sa_export)");
        }

        let netlink = Netlink::new().context("netlink")?;
        let t = &config.tun;
        let mut tun_config = TunConfig::new(t.name.clone()).mtu(t.mtu).offload(t.offload);
        for a in &t.addresses {
            tun_config = tun_config.address(*a);
        }
        let tun = Tun::create_with(&tun_config, &netlink)
            .await
            .with_context(|| format!("create TUN {}", t.name))?;
        for r in &t.routes {
            netlink
                .add_route(*r, &RouteVia::Device(t.name.clone()))
                .await
                .with_context(|| format!("route {r} into {}", t.name))?;
        }

        let u = &config.underlay;
        let mut sockets = vec!["raw 255 (send)".to_string()];
        let send = RawIp::open(
            proto::RAW,
            &RawIpOptions {
                device: u.device.clone(),
                send_buffer: Some(u.send_buffer),
                ..RawIpOptions::default()
            },
        )
        .context("raw socket for sending")?;
        let recv_options = RawIpOptions {
            bind: Some(u.address),
            device: u.device.clone(),
            recv_buffer: Some(u.recv_buffer),
            send_buffer: None,
        };
        let esp = if config.needs_raw(IpsecProtocol::Esp) {
            sockets.push("raw 50 (ESP)".into());
            Some(RawIp::open(proto::ESP, &recv_options).context("raw ESP socket")?)
        } else {
            None
        };
        let ah = if config.needs_raw(IpsecProtocol::Ah) {
            sockets.push("raw 51 (AH)".into());
            Some(RawIp::open(proto::AH, &recv_options).context("raw AH socket")?)
        } else {
            None
        };
        let device_ifindex = match &u.device {
            Some(d) => Some(
                netlink
                    .ifindex(d)
                    .await
                    .with_context(|| format!("underlay device {d}"))?,
            ),
            None => None,
        };
        // A daemon killed before it could remove its ingress rule left the
        // ESP to this address dropped: gone now, whatever this run does.
        remove_stale_esp_drop(u.address);
        let (packet_tx, _esp_drop, packet_rx) =
            if u.af_packet && config.needs_raw(IpsecProtocol::Esp) {
                open_af_packet(config, &netlink, &mut sockets).await
            } else {
                (None, None, None)
            };
        let mut udp = Vec::new();
        for port in udp_ports {
            let addr = SocketAddr::V4(SocketAddrV4::new(u.address, port));
            let s = realm_io::socket::udp_bind(
                addr,
                &SocketOptions {
                    device: u.device.clone(),
                    recv_buffer: Some(u.recv_buffer),
                    ..SocketOptions::default()
                },
            )
            .with_context(|| format!("UDP {addr} (NAT-T)"))?;
            // Many datagrams per read when the kernel can (Linux 5.0+).
            if let Err(e) = udp_set_gro(&s, true) {
                tracing::debug!(port, error = %e, "UDP_GRO unavailable: one datagram per read");
            }
            sockets.push(format!("udp {port} (ESP-in-UDP)"));
            udp.push((port, s));
        }
        let mut ike = match &config.connections {
            Some(connections) => Some(IkeRuntime::start(
                connections.clone(),
                &config.ike,
                u.address,
                u.device.clone(),
                config.esp_sa_export.clone(),
                &config.dir,
            )?),
            None => None,
        };
        if let Some(ike) = &mut ike {
            ike.install_traps(&mut engine);
        }
        Ok(Peer {
            engine,
            counters: Counters::default(),
            started: now,
            config_summary: ConfigSummary {
                tun: t.name.clone(),
                tun_mtu: t.mtu,
                underlay: u.address,
                device: u.device.clone(),
                device_ifindex,
                sockets,
            },
            tun,
            netlink,
            send,
            packet_tx,
            next_hops: Vec::new(),
            _esp_drop,
            packet_rx,
            esp,
            ah,
            udp,
            udp_scratch: vec![0; 65_535],
            gso_scratch: Vec::with_capacity(65_535),
            udp_gso: true,
            underlay: u.address,
            control_socket: config.control_socket.clone(),
            ike,
        })
    }

    /// TUN -> SPD -> seal in place -> underlay, for one batch.
    async fn handle_tun_batch(&mut self, pool: &mut Pool, n: usize) {
        let now = realm_io::now();
        let mut out = Vec::with_capacity(n);
        let mut icmp = Vec::new();
        for i in 0..n {
            let len = pool.lens[i];
            let b = &mut pool.bufs[i];
            b.v.truncate(MAX_HEADROOM + len);
            self.counters.tun_rx_packets += 1;
            self.counters.tun_rx_bytes += len as u64;
            if len < 20 || b.v[MAX_HEADROOM] >> 4 != 4 {
                self.counters.not_ipv4 += 1;
                continue;
            }
            match self.engine.outbound_in_place(now, &mut b.v, MAX_HEADROOM) {
                Ok(OutboundInPlace::Protected { start }) => {
                    self.counters.protected += 1;
                    out.push((i, start));
                }
                Ok(OutboundInPlace::Bypass) => {
                    self.counters.bypassed += 1;
                    out.push((i, MAX_HEADROOM));
                }
                Ok(OutboundInPlace::Discard) => {
                    self.counters.discarded += 1;
                    if sampled(self.counters.discarded) {
                        tracing::debug!(
                            count = self.counters.discarded,
                            "outbound packet discarded by policy"
                        );
                    }
                }
                Ok(OutboundInPlace::Acquire(_)) => self.counters.no_sa += 1,
                Err(SealError::FragmentationNeeded { mtu, icmp: message }) => {
                    // RFC 2401 s6.1.2.1: tell the source the effective MTU.
                    self.counters.fragmentation_needed += 1;
                    tracing::debug!(mtu, "too big with DF: ICMP fragmentation needed sent back");
                    icmp.push(message);
                }
                Err(e) => {
                    self.counters.seal_errors += 1;
                    if sampled(self.counters.seal_errors) {
                        tracing::warn!(error = %e, count = self.counters.seal_errors, "cannot protect packet");
                    }
                }
            }
        }
        let packets: Vec<&[u8]> = out
            .iter()
            .map(|&(i, start)| &pool.bufs[i].v[start..])
            .collect();
        self.send_underlay(&packets).await;
        for m in icmp {
            self.write_tun(&[m.as_slice()]).await;
        }
    }

    /// Reads from UDP socket `idx` into `pool`, rebuilding the IPv4 and UDP
    /// headers the socket API strips (the engine opens whole datagrams).
    /// With `UDP_GRO` one read may hold many datagrams of a flow: they are
    /// split into the pool's buffers. Reads go on while a whole GRO read
    /// still fits, at most [`MAX_BATCH`] reads. Returns the packet count.
    fn recv_udp(&mut self, idx: usize, pool: &mut Pool) -> usize {
        let (port, socket) = &self.udp[idx];
        let mut n = 0;
        let mut reads = 0;
        while reads < MAX_BATCH && pool.bufs.len() - n >= UDP_MAX_SEGMENTS {
            reads += 1;
            let (len, from, segment) = match udp_try_recv_segments(socket, &mut self.udp_scratch) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(port, error = %e, "UDP receive");
                    continue;
                }
            };
            let step = if segment == 0 { len.max(1) } else { segment };
            for datagram in self.udp_scratch[..len].chunks(step) {
                // A GRO read holds at most 64 datagrams from Linux, but a
                // foreign GSO sender may pack more (128 on recent kernels).
                let Some(b) = pool.bufs.get_mut(n) else {
                    self.counters.inbound_dropped += 1;
                    continue;
                };
                let window = b.as_mut();
                let Some(dst) = window.get_mut(..datagram.len()) else {
                    continue; // larger than any packet we could open: dropped
                };
                dst.copy_from_slice(datagram);
                write_ip_udp_headers(
                    &mut b.v[..IP_UDP_HEADERS],
                    from,
                    self.underlay,
                    *port,
                    datagram.len(),
                );
                pool.lens[n] = IP_UDP_HEADERS + datagram.len();
                n += 1;
            }
        }
        n
    }

    /// Underlay -> open in place -> SPD inbound check -> TUN, for one batch
    /// whose packets are `pool.bufs[i].v[..pool.lens[i]]`.
    async fn handle_underlay_batch(&mut self, pool: &mut Pool, n: usize) {
        let now = realm_io::now();
        let mut deliver: Vec<Vec<u8>> = Vec::with_capacity(n);
        let mut slots = Vec::with_capacity(n);
        for i in 0..n {
            let b = &mut pool.bufs[i];
            b.v.truncate(pool.lens[i]);
            self.counters.underlay_rx_packets += 1;
            match self.engine.inbound_in_place(now, &mut b.v) {
                Ok(Inbound::Packet(p)) => {
                    // The engine hands our own buffer back, decapsulated at
                    // its start; the TUN write wants room in front of it
                    // (virtio_net_hdr with offloads).
                    let mut v = p.packet;
                    v.splice(0..0, [0u8; OFFLOAD_HEADROOM]);
                    slots.push(i);
                    deliver.push(v);
                }
                Ok(Inbound::NatKeepalive) => self.counters.keepalives_rx += 1,
                Ok(Inbound::Ike(d)) => match &mut self.ike {
                    Some(ike) => ike.handle_nat_t(now, &d),
                    None => {
                        self.counters.ike_ignored += 1;
                        tracing::debug!(src = %d.src, port = d.src_port, "IKE on the NAT-T port ignored (no IKE connections)");
                    }
                },
                // Cleartext cannot arrive on an ESP, AH or NAT-T socket.
                Ok(Inbound::Bypass) => {}
                Err(reason) => {
                    self.counters.inbound_dropped += 1;
                    if sampled(self.counters.inbound_dropped) {
                        tracing::debug!(%reason, count = self.counters.inbound_dropped, "inbound packet dropped");
                    }
                }
            }
        }
        if deliver.is_empty() {
            return;
        }
        let bytes: u64 = deliver
            .iter()
            .map(|v| (v.len() - OFFLOAD_HEADROOM) as u64)
            .sum();
        // Consecutive segments of a flow become one write (GRO) when the
        // TUN has offloads.
        match self
            .tun
            .send_coalesced(&mut deliver, OFFLOAD_HEADROOM)
            .await
        {
            Ok(k) => {
                self.counters.tun_tx_packets += k as u64;
                self.counters.tun_tx_bytes += bytes;
            }
            Err(e) => {
                self.counters.tun_write_errors += 1;
                if sampled(self.counters.tun_write_errors) {
                    tracing::warn!(error = %e, count = self.counters.tun_write_errors, "TUN write");
                }
            }
        }
        // The buffers go back to the pool (possibly grown by GRO).
        for (v, &i) in deliver.into_iter().zip(&slots) {
            pool.bufs[i].v = v;
        }
    }

    /// Sends protected packets: ESP-in-UDP whose source port is one of our
    /// NAT-T sockets goes through that socket, consecutive datagrams of a
    /// flow in one UDP GSO call; everything else through the raw socket, in
    /// `sendmmsg` batches. Order is kept.
    async fn send_underlay(&mut self, packets: &[&[u8]]) {
        let mut raw_from = 0;
        let mut i = 0;
        while i < packets.len() {
            let Some(flow) = self.udp_flow(packets[i]) else {
                i += 1;
                continue;
            };
            // A run of the same flow, equal lengths but for a shorter last one.
            let size = packets[i].len();
            let mut j = i + 1;
            let mut total = size - IP_UDP_HEADERS;
            while j < packets.len()
                && j - i < UDP_MAX_SEGMENTS
                && packets[j].len() <= size
                && total + packets[j].len() <= 65_000
                && self.udp_flow(packets[j]) == Some(flow)
            {
                total += packets[j].len() - IP_UDP_HEADERS;
                j += 1;
                if packets[j - 1].len() < size {
                    break;
                }
            }
            self.send_raw(&packets[raw_from..i]).await;
            self.send_udp_run(flow, &packets[i..j]).await;
            raw_from = j;
            i = j;
        }
        self.send_raw(&packets[raw_from..]).await;
    }

    /// Socket, destination and TOS of an ESP-in-UDP packet we can send
    /// through one of our UDP sockets: IPv4 without options, UDP, source
    /// port bound by us. The TOS byte (DSCP and ECN, which the engine copied
    /// from the inner header: RFC 2401 s5.1.2.1, RFC 6040) goes along.
    fn udp_flow(&self, p: &[u8]) -> Option<UdpFlow> {
        if p.len() < IP_UDP_HEADERS || p[0] != 0x45 || p[9] != proto::UDP {
            return None;
        }
        let sport = u16::from_be_bytes([p[20], p[21]]);
        let socket = self.udp.iter().position(|(port, _)| *port == sport)?;
        let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
        Some(UdpFlow {
            socket,
            dst: SocketAddrV4::new(dst, u16::from_be_bytes([p[22], p[23]])),
            tos: p[1],
        })
    }

    /// One UDP GSO send of a run of datagrams (their UDP payloads, copied
    /// into one buffer; the kernel rebuilds the IPv4 and UDP headers).
    async fn send_udp_run(&mut self, flow: UdpFlow, run: &[&[u8]]) {
        let (idx, dst) = (flow.socket, flow.dst);
        self.gso_scratch.clear();
        for p in run {
            self.gso_scratch.extend_from_slice(&p[IP_UDP_HEADERS..]);
        }
        let segment = (run[0].len() - IP_UDP_HEADERS) as u16;
        let socket = &self.udp[idx].1;
        let sent = if self.udp_gso {
            udp_send_segments(socket, &self.gso_scratch, segment, flow.tos, dst).await
        } else {
            Err(io::Error::from(io::ErrorKind::Unsupported))
        };
        let sent = match sent {
            Err(e) if run.len() > 1 || !self.udp_gso => {
                // No UDP GSO on this path (old kernel, device without checksum
                // offload): one datagram per call from now on.
                if self.udp_gso {
                    self.udp_gso = false;
                    tracing::info!(error = %e, "UDP GSO unavailable: one datagram per send");
                }
                let mut result = Ok(0);
                for p in run {
                    result = socket.send_to(&p[IP_UDP_HEADERS..], dst).await;
                    if result.is_err() {
                        break;
                    }
                }
                result
            }
            other => other,
        };
        match sent {
            Ok(_) => {
                self.counters.underlay_tx_packets += run.len() as u64;
                self.counters.underlay_tx_bytes += run.iter().map(|p| p.len() as u64).sum::<u64>();
            }
            Err(e) => {
                self.counters.underlay_send_errors += run.len() as u64;
                if sampled(self.counters.underlay_send_errors) {
                    tracing::warn!(error = %e, %dst, count = self.counters.underlay_send_errors, "UDP send");
                }
            }
        }
    }

    /// Sends packets that do not go through a UDP socket: runs of plain ESP
    /// to a destination with a known next hop through the AF_PACKET socket,
    /// the rest through the raw socket. Order is kept.
    async fn send_raw(&mut self, packets: &[&[u8]]) {
        if self.packet_tx.is_none() {
            return self.send_ip(packets).await;
        }
        let now = realm_io::now();
        let mut lookups = Vec::new();
        let mut ip_from = 0;
        let mut i = 0;
        while i < packets.len() {
            let Some(dst) = af_packet_destination(packets[i]) else {
                i += 1;
                continue;
            };
            let Some(hop) = self.fast_next_hop(dst, now, &mut lookups) else {
                self.counters.af_packet_tx_fallbacks += 1;
                i += 1;
                continue;
            };
            let mut j = i + 1;
            while j < packets.len() && af_packet_destination(packets[j]) == Some(dst) {
                j += 1;
            }
            self.send_ip(&packets[ip_from..i]).await;
            let sent = self.send_packet(&packets[i..j], dst, hop).await;
            // What the AF_PACKET socket did not take goes the kernel's way.
            self.counters.af_packet_tx_fallbacks += (j - i - sent) as u64;
            ip_from = i + sent;
            i = j;
        }
        self.send_ip(&packets[ip_from..]).await;
        for dst in lookups {
            self.look_up_next_hop(dst, now).await;
        }
    }

    /// The next hop to send plain ESP for `dst` to through the AF_PACKET
    /// socket, or `None` for this packet (then it goes the kernel's way). A
    /// destination not looked up for [`NEXT_HOP_REFRESH`] is added to
    /// `lookups` (done after the batch).
    fn fast_next_hop(
        &mut self,
        dst: Ipv4Addr,
        now: Instant,
        lookups: &mut Vec<Ipv4Addr>,
    ) -> Option<NextHop> {
        let Some(e) = self.next_hops.iter_mut().find(|e| e.dst == dst) else {
            if !lookups.contains(&dst) {
                lookups.push(dst);
            }
            return None;
        };
        if now.duration_since(e.looked_up) >= NEXT_HOP_REFRESH && !lookups.contains(&dst) {
            lookups.push(dst);
        }
        if e.via_kernel {
            e.via_kernel = false;
            return None;
        }
        e.hop
    }

    /// Looks up `dst`'s next hop again, logs a change.
    async fn look_up_next_hop(&mut self, dst: Ipv4Addr, now: Instant) {
        let device = self.config_summary.device_ifindex;
        let hop = match self.netlink.next_hop(dst, device).await {
            Ok(hop) => hop,
            Err(e) => {
                tracing::debug!(%dst, error = %e, "next hop lookup");
                None
            }
        };
        let entry = NextHopEntry {
            dst,
            hop,
            looked_up: now,
            via_kernel: hop.is_some_and(|h| !h.confirmed),
        };
        let Some(e) = self.next_hops.iter_mut().find(|e| e.dst == dst) else {
            log_next_hop(dst, None, hop);
            self.next_hops.push(entry);
            return;
        };
        let before = e.hop.map(|h| (h.ifindex, h.mac));
        if before != hop.map(|h| (h.ifindex, h.mac)) {
            log_next_hop(dst, e.hop, hop);
        }
        // A pending kick (failed send) stays pending.
        let via_kernel = e.via_kernel || entry.via_kernel;
        *e = NextHopEntry {
            via_kernel,
            ..entry
        };
    }

    /// Sends a run of plain ESP packets to `dst` through the AF_PACKET
    /// socket; returns how many it took. On a failure the rest of the run is
    /// left to the caller, and the next packet for `dst` goes the kernel's
    /// way (which reports or resolves the problem) while the next hop is
    /// looked up again.
    async fn send_packet(&mut self, run: &[&[u8]], dst: Ipv4Addr, hop: NextHop) -> usize {
        let Some(socket) = &self.packet_tx else {
            return 0;
        };
        let result = socket.send_batch(run, hop.ifindex, hop.mac).await;
        let sent = *result.as_ref().unwrap_or(&0);
        self.counters.af_packet_tx_packets += sent as u64;
        self.counters.underlay_tx_packets += sent as u64;
        self.counters.underlay_tx_bytes += run[..sent].iter().map(|p| p.len() as u64).sum::<u64>();
        if sent < run.len() {
            if let Some(e) = self.next_hops.iter_mut().find(|e| e.dst == dst) {
                e.via_kernel = true;
                e.looked_up = self.started; // look it up after this batch
            }
            if sampled(self.counters.af_packet_tx_fallbacks + 1) {
                tracing::info!(%dst, error = ?result.err(), "AF_PACKET send stopped: the rest goes through the raw socket");
            }
        }
        sent
    }

    /// Adds what the AF_PACKET receiver dropped since the last look.
    fn read_af_packet_drops(&mut self) {
        if let Some(rx) = &self.packet_rx {
            match rx.take_drops() {
                Ok(n) => self.counters.af_packet_rx_drops += u64::from(n),
                Err(e) => tracing::debug!(error = %e, "AF_PACKET statistics"),
            }
        }
    }

    /// Sends through the raw socket, in `sendmmsg` batches.
    async fn send_ip(&mut self, packets: &[&[u8]]) {
        let mut done = 0;
        while done < packets.len() {
            match self.send.send_batch(&packets[done..]).await {
                Ok(k) => {
                    self.counters.underlay_tx_packets += k as u64;
                    self.counters.underlay_tx_bytes += packets[done..done + k]
                        .iter()
                        .map(|p| p.len() as u64)
                        .sum::<u64>();
                    done += k;
                    if done < packets.len() {
                        // packets[done] failed; the batch call reports no error for it.
                        self.counters.underlay_send_errors += 1;
                        done += 1;
                    }
                }
                Err(e) => {
                    self.counters.underlay_send_errors += 1;
                    if sampled(self.counters.underlay_send_errors) {
                        tracing::warn!(error = %e, count = self.counters.underlay_send_errors, "underlay send");
                    }
                    done += 1;
                }
            }
        }
    }

    async fn write_tun(&mut self, packets: &[&[u8]]) {
        let mut done = 0;
        while done < packets.len() {
            match self.tun.send_batch(&packets[done..]).await {
                Ok(k) => {
                    self.counters.tun_tx_packets += k as u64;
                    self.counters.tun_tx_bytes += packets[done..done + k]
                        .iter()
                        .map(|p| p.len() as u64)
                        .sum::<u64>();
                    done += k;
                    if done < packets.len() {
                        self.counters.tun_write_errors += 1;
                        done += 1;
                    }
                }
                Err(e) => {
                    self.counters.tun_write_errors += 1;
                    if sampled(self.counters.tun_write_errors) {
                        tracing::warn!(error = %e, count = self.counters.tun_write_errors, "TUN write");
                    }
                    done += 1;
                }
            }
        }
    }

    /// Applies the IKE runtime's events to the IPsec engine and sends its datagrams.
    fn drive_ike(&mut self) {
        if let Some(ike) = &mut self.ike {
            ike.drive(&mut self.engine, realm_io::now(), &self.udp);
        }
    }

    /// Sends what the engine wants sent (NAT keepalives) and logs its events.
    async fn drain_engine(&mut self) {
        while let Some(t) = self.engine.poll_transmit() {
            self.counters.keepalives_tx += 1;
            self.send_underlay(&[t.packet.as_slice()]).await;
        }
        while let Some(e) = self.engine.poll_event() {
            match e {
                Event::SoftLifetimeExpired { key, kind, .. } => tracing::warn!(
                    spi = format_args!("{:#010x}", key.spi.0),
                    ?kind,
                    "SA soft lifetime reached: manual keys cannot be renewed, replace them before the hard lifetime"
                ),
                Event::HardLifetimeExpired { key, kind, .. } => tracing::error!(
                    spi = format_args!("{:#010x}", key.spi.0),
                    ?kind,
                    "SA hard lifetime reached: SA deleted, its traffic is now dropped"
                ),
                Event::SequenceExhausted { key, .. } => tracing::error!(
                    spi = format_args!("{:#010x}", key.spi.0),
                    "SA sequence numbers exhausted (RFC 4303 s3.3.3): it sends no more"
                ),
                Event::Acquire { policy, .. }
                    if self
                        .ike
                        .as_mut()
                        .is_some_and(|ike| ike.acquire(realm_io::now(), policy)) => {}
                Event::Acquire { selector, .. } => {
                    if sampled(self.counters.no_sa) {
                        tracing::warn!(
                            src = %selector.src,
                            dst = %selector.dst,
                            count = self.counters.no_sa,
                            "policy requires IPsec but no SA is configured: dropped"
                        );
                    }
                }
            }
        }
        // A trap's Acquire may have begun a negotiation: its first message goes now.
        self.drive_ike();
    }
}

/// The destination of a plain ESP packet the AF_PACKET socket may send as
/// it is: IPv4 without options, protocol 50, source set, and an ID or DF
/// (the raw socket would fill in those; AF_PACKET sends the header as given).
fn af_packet_destination(p: &[u8]) -> Option<Ipv4Addr> {
    let h = p.get(..20)?;
    let ident = u16::from_be_bytes([h[4], h[5]]);
    let df = h[6] & 0x40 != 0;
    (h[0] == 0x45 && h[9] == proto::ESP && h[12..16] != [0; 4] && (ident != 0 || df))
        .then(|| Ipv4Addr::new(h[16], h[17], h[18], h[19]))
}

fn log_next_hop(dst: Ipv4Addr, before: Option<NextHop>, after: Option<NextHop>) {
    match after {
        Some(h) => tracing::info!(
            %dst,
            ifindex = h.ifindex,
            mac = %format_mac(h.mac),
            "plain ESP to this peer goes through AF_PACKET"
        ),
        None if before.is_some() => {
            tracing::info!(%dst, "next hop lost: plain ESP to this peer goes through the raw socket")
        }
        None => {
            tracing::info!(%dst, "no Ethernet next hop yet: plain ESP to this peer goes through the raw socket")
        }
    }
}

fn format_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// What the IP stack checks before a raw socket sees a packet, for one
/// taken off the wire by the AF_PACKET receiver: the header checksum and the
/// total length, which also drops any Ethernet padding. Returns the length
/// to keep, 0 (dropped by the engine as malformed) for a bad header.
fn checked_ipv4_len(p: &[u8]) -> usize {
    let Ok(ip) = realm_wire::ipv4::Packet::new_checked(p) else {
        return 0;
    };
    let total = usize::from(ip.total_len());
    if !ip.verify_checksum() || total > p.len() {
        return 0;
    }
    total
}

/// The nftables table of the ingress rule for ESP to `address`.
fn esp_drop_table(address: Ipv4Addr) -> String {
    format!("realm_peer_esp_{}", u32::from(address))
}

/// Deletes the ingress rule table a killed daemon for `address` may have
/// left (nothing to do without `nft`, or when there is none).
fn remove_stale_esp_drop(address: Ipv4Addr) {
    if !realm_io::nft::available() {
        return;
    }
    let name = esp_drop_table(address);
    // Declaring the table first makes the delete succeed when it is absent.
    match realm_io::nft::apply(&format!(
        "table netdev {name}\ndelete table netdev {name}\n"
    )) {
        Ok(()) => tracing::debug!(table = %name, "no stale ESP ingress rule left"),
        Err(e) => {
            tracing::warn!(table = %name, error = %e, "could not remove a stale ESP ingress rule")
        }
    }
}

/// Opens the AF_PACKET send path and, with a device and `nft`, the receive
/// path with its ingress drop rule. Each part that cannot be had is logged
/// and left out: the raw sockets do its work.
async fn open_af_packet(
    config: &PeerConfig,
    netlink: &Netlink,
    sockets: &mut Vec<String>,
) -> (Option<PacketSender>, Option<NftTable>, Option<EspReceiver>) {
    let u = &config.underlay;
    let tx = match PacketSender::open(Some(u.send_buffer)) {
        Ok(s) => {
            sockets.push("af_packet (ESP send)".into());
            Some(s)
        }
        Err(e) => {
            tracing::warn!(error = %e, "no AF_PACKET send path: plain ESP leaves through the raw socket");
            None
        }
    };
    let Some(device) = &u.device else {
        tracing::info!("no underlay.device: plain ESP is received through the raw socket");
        return (tx, None, None);
    };
    let rx = async {
        let ifindex = netlink.ifindex(device).await?;
        // Frames for the device's largest packet; the ring as large as the
        // socket buffer it replaces (the kernel doubles SO_RCVBUF).
        let max_packet = netlink.mtu(device).await? as usize;
        let ring = 2 * u.recv_buffer;
        let rx = match EspReceiver::open_with_ring(ifindex, u.address, ring, max_packet) {
            Ok(rx) => rx,
            Err(e) => {
                tracing::info!(error = %e, "no TPACKET receive ring: recvmmsg on the AF_PACKET socket");
                EspReceiver::open(ifindex, u.address, Some(u.recv_buffer))?
            }
        };
        let name = esp_drop_table(u.address);
        let body = format!(
            "chain ingress {{
type filter hook ingress device \"{device}\" priority 0; policy accept;
{}
}}",
            esp_ingress_drop_rule(u.address)
        );
        let table = NftTable::install("netdev", &name, &body)?;
        anyhow::Ok((table, rx))
    }
    .await;
    match rx {
        Ok((table, rx)) => {
            let how = if rx.has_ring() { ", ring" } else { "" };
            sockets.push(format!("af_packet (ESP receive on {device}{how})"));
            (tx, Some(table), Some(rx))
        }
        Err(e) => {
            tracing::warn!(error = %e, "no AF_PACKET receive path: plain ESP is received through the raw socket");
            (tx, None, None)
        }
    }
}

/// The IPv4 and UDP headers of a datagram that arrived on a UDP socket,
/// into `h` (`IP_UDP_HEADERS` bytes). No UDP checksum: the ICV protects the
/// payload (RFC 3948 s2.1).
fn write_ip_udp_headers(h: &mut [u8], from: SocketAddrV4, to: Ipv4Addr, port: u16, payload: usize) {
    let udp = udp::Repr::without_checksum(from.port(), port, payload);
    let ip = ipv4::Repr::new(*from.ip(), to, ipv4::IpProtocol::Udp, udp.buffer_len());
    let (ip_header, udp_header) = h.split_at_mut(ip.buffer_len().min(h.len()));
    // Both fit in IP_UDP_HEADERS bytes; a shorter `h` is left as it is.
    let _ = ip.emit_header(ip_header);
    let _ = udp.emit_header(udp_header);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilt_udp_headers_are_valid() {
        let mut h = [0xffu8; IP_UDP_HEADERS];
        let from = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 4500);
        write_ip_udp_headers(&mut h, from, Ipv4Addr::new(192, 0, 2, 1), 4501, 100);
        let ip = realm_wire::ipv4::Packet::new_unchecked(&h[..20]);
        assert!(ip.verify_checksum());
        assert_eq!(ip.total_len(), 128);
        assert_eq!(ip.src_addr(), Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(&h[20..28], &[0x11, 0x94, 0x11, 0x95, 0, 108, 0, 0]);
    }

    #[test]
    fn packet_buffers_restore_their_window() {
        let mut b = PacketBuf::new(MAX_HEADROOM, 1400, 0);
        assert_eq!(b.as_mut().len(), 1400);
        b.v.truncate(MAX_HEADROOM + 10);
        b.v.extend_from_slice(&[0; TAILROOM]);
        let cap = b.v.capacity();
        assert_eq!(b.as_mut().len(), 1400);
        std::mem::take(&mut b.v);
        assert_eq!(b.as_mut().len(), 1400);
        assert!(cap >= MAX_HEADROOM + 1400 + TAILROOM);
    }
}
