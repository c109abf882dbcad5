//! Layer-3 TUN devices (`IFF_TUN | IFF_NO_PI`): the host daemon's window onto its own IP stack.
//! Applications' packets, already public (RSIP), come out of [`Tun::recv`]; packets the gateway
//! tunnels back go in through [`Tun::send`]. Each read or write is exactly one IPv4 packet.
//!
//! The device lives in the namespace of the thread that creates it and disappears when the
//! [`Tun`] is dropped (it is not persistent).
//!
//! # Throughput: where offloads go (not enabled yet)
//! Without offloads every packet costs one `read`/`write` system call. The batch calls
//! ([`Tun::recv_batch`], [`Tun::send_batch`]) already give callers the shape that offloads need:
//! one wake-up, many packets. To add them:
//! 1. open with `IFF_VNET_HDR` and `TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_USO4)`
//!    (tun-rs: `DeviceBuilder::offload(true)`); each read then returns a 10-byte
//!    `virtio_net_hdr` and up to 64 KiB of one TCP/UDP flow (GSO "superpacket");
//! 2. `recv_batch` splits it into MTU-sized packets (tun-rs `recv_multiple`, which also completes
//!    partial checksums), and `send_batch` coalesces consecutive segments of a flow before one
//!    write (tun-rs `send_multiple` with a `GROTable`);
//! 3. better still for Realm, keep the superpacket whole, wrap it once in the outer header and
//!    hand it to a raw socket with `UDP_SEGMENT`-like segmentation (the way wireguard-go pairs TUN
//!    GSO with UDP GSO); for IP-in-IP, segmentation must happen before encapsulation since raw
//!    sockets have no GSO, so the split in step 2 is the portable path.
//!
//! Since the signatures do not change, the switch is internal to this module.

use std::io;

use tun_rs::{AsyncDevice, DeviceBuilder};

use crate::MAX_BATCH;
use crate::error::{Error, IoContext, Result};
use crate::netlink::{Ipv4Prefix, Netlink};

/// Longest interface name Linux accepts (`IFNAMSIZ - 1`).
pub const MAX_IFNAME: usize = 15;

/// How to create a [`Tun`].
#[derive(Debug, Clone)]
pub struct TunConfig {
    /// Interface name, at most [`MAX_IFNAME`] bytes (e.g. `"realm0"`).
    pub name: String,
    /// MTU. Realm's host uses the path MTU minus the tunnel overhead (20 for IP-in-IP, 24 for
    /// GRE) so that wrapped packets need no fragmentation.
    pub mtu: u16,
    /// IPv4 addresses to assign (the kernel adds their prefix routes).
    pub addresses: Vec<Ipv4Prefix>,
    /// Bring the link up after configuring it.
    pub up: bool,
}

impl TunConfig {
    /// A config with `name`, MTU 1480 (1500 minus IP-in-IP), no addresses, up.
    pub fn new(name: impl Into<String>) -> Self {
        TunConfig {
            name: name.into(),
            mtu: 1480,
            addresses: Vec::new(),
            up: true,
        }
    }

    /// Sets the MTU.
    #[must_use]
    pub fn mtu(mut self, mtu: u16) -> Self {
        self.mtu = mtu;
        self
    }

    /// Adds an address.
    #[must_use]
    pub fn address(mut self, addr: Ipv4Prefix) -> Self {
        self.addresses.push(addr);
        self
    }

    /// Whether to bring the link up.
    #[must_use]
    pub fn up(mut self, up: bool) -> Self {
        self.up = up;
        self
    }
}

/// A TUN device carrying whole IPv4 (and, if the stack sends them, IPv6) packets.
///
/// All I/O methods take `&self`: share it with an `Arc` between a reader and a writer task.
pub struct Tun {
    dev: AsyncDevice,
    name: String,
    mtu: u16,
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .field("mtu", &self.mtu)
            .finish_non_exhaustive()
    }
}

impl Tun {
    /// Creates and configures the device in the calling thread's namespace, using a temporary
    /// [`Netlink`] connection. Needs CAP_NET_ADMIN and a tokio runtime.
    pub async fn create(config: &TunConfig) -> Result<Tun> {
        let netlink = Netlink::new()?;
        Tun::create_with(config, &netlink).await
    }

    /// As [`Tun::create`], with an existing netlink connection (which must be in the same
    /// namespace as the calling thread).
    pub async fn create_with(config: &TunConfig, netlink: &Netlink) -> Result<Tun> {
        let name = &config.name;
        if name.is_empty() || name.len() > MAX_IFNAME || name.contains(['/', ' ', '\0']) {
            return Err(Error::Invalid(format!("interface name {name:?}")));
        }
        let dev = DeviceBuilder::new()
            .name(name.clone())
            .mtu(config.mtu)
            .build_async()
            .ctx(|| format!("create TUN {name} (IFF_TUN|IFF_NO_PI)"))?;
        for addr in &config.addresses {
            netlink.add_address(name, *addr).await?;
        }
        if config.up {
            netlink.set_link_up(name).await?;
        }
        tracing::debug!(tun = %name, mtu = config.mtu, addresses = ?config.addresses, "TUN up");
        Ok(Tun {
            dev,
            name: name.clone(),
            mtu: config.mtu,
        })
    }

    /// The interface name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The MTU it was created with.
    #[must_use]
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// Reads one packet the stack routed into the device. `buf` should hold the MTU; a longer
    /// packet cannot occur on a TUN without offloads.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.dev.recv(buf).await
    }

    /// Non-blocking [`Tun::recv`]: `WouldBlock` when nothing is queued.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.dev.try_recv(buf)
    }

    /// Waits for at least one packet, then reads as many as are queued, up to `bufs.len()` and
    /// [`MAX_BATCH`], storing lengths in `lens`. Returns the count (at least 1).
    pub async fn recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        lens: &mut [usize],
    ) -> io::Result<usize> {
        let max = bufs.len().min(lens.len()).min(MAX_BATCH);
        if max == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "recv_batch needs at least one buffer",
            ));
        }
        lens[0] = self.dev.recv(bufs[0].as_mut()).await?;
        let mut n = 1;
        while n < max {
            match self.dev.try_recv(bufs[n].as_mut()) {
                Ok(len) => {
                    lens[n] = len;
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(tun = %self.name, error = %e, "TUN read in batch");
                    break;
                }
            }
        }
        Ok(n)
    }

    /// Writes one IP packet into the stack, as if it had arrived on this interface.
    pub async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        self.dev.send(packet).await
    }

    /// Non-blocking [`Tun::send`].
    pub fn try_send(&self, packet: &[u8]) -> io::Result<usize> {
        self.dev.try_send(packet)
    }

    /// Writes `packets` in order; returns how many were written. Stops at the first error after
    /// at least one was written.
    pub async fn send_batch<B: AsRef<[u8]>>(&self, packets: &[B]) -> io::Result<usize> {
        let mut sent = 0;
        for p in packets {
            match self.dev.send(p.as_ref()).await {
                Ok(_) => sent += 1,
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(sent)
    }
}
