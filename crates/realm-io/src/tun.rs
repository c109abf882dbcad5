//! Layer-3 TUN devices (`IFF_TUN | IFF_NO_PI`): the host daemon's window onto its own IP stack.
//! Applications' packets, already public (RSIP), come out of [`Tun::recv`]; packets the gateway
//! tunnels back go in through [`Tun::send`]. Each read or write is exactly one IPv4 packet.
//!
//! The device lives in the namespace of the thread that creates it and disappears when the
//! [`Tun`] is dropped (it is not persistent).
//!
//! # Throughput: offloads (opt-in, [`TunConfig::offload`])
//! Without offloads every packet costs one `read`/`write` system call, and the kernel's TCP
//! stack handles every MTU-sized segment on its own. With `offload(true)` the device is opened
//! with `IFF_VNET_HDR` and `TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 [| TUN_F_USO*])`
//! (tun-rs, whose code follows wireguard-go's `tun_linux.go`):
//! - [`Tun::recv_batch`] reads ONE "superpacket" (a 10-byte `virtio_net_hdr` and up to 64 KiB of
//!   one TCP/UDP flow) per call and splits it into MTU-sized packets with complete checksums, one
//!   per buffer. A superpacket needs up to `65535 / (mtu - 40)` buffers (48 at MTU 1400); the
//!   64-per-call cap does not apply, and one that does not fit is an error (and lost).
//! - [`Tun::send_coalesced`] merges consecutive segments of a flow into superpackets (GRO) and
//!   writes each with one system call; the receiving stack then sees few large segments.
//! - [`Tun::send`], [`Tun::send_batch`] still write one packet per call (a zero `virtio_net_hdr`
//!   is gathered in front, no copy). [`Tun::recv`] and [`Tun::try_recv`] refuse to work: a read
//!   may hold many packets, use [`Tun::recv_batch`].
//!
//! Without offloads the same calls behave as before, so a caller written for offloads runs on
//! either kind of device.

use std::io;
use std::io::IoSlice;
use std::sync::Mutex;

use tun_rs::{AsyncDevice, DeviceBuilder, GROTable, VirtioNetHdr};

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
    /// Open with `IFF_VNET_HDR` and TSO/USO/checksum offloads (module doc, "Throughput").
    pub offload: bool,
}

impl TunConfig {
    /// A config with `name`, MTU 1480 (1500 minus IP-in-IP), no addresses, up.
    pub fn new(name: impl Into<String>) -> Self {
        TunConfig {
            name: name.into(),
            mtu: 1480,
            addresses: Vec::new(),
            up: true,
            offload: false,
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

    /// Whether to enable offloads (module doc, "Throughput"). Default off.
    #[must_use]
    pub fn offload(mut self, offload: bool) -> Self {
        self.offload = offload;
        self
    }
}

/// Bytes a buffer handed to [`Tun::send_coalesced`] must keep free in front of its packet (the
/// `virtio_net_hdr` written there when offloads are on).
pub const OFFLOAD_HEADROOM: usize = tun_rs::VIRTIO_NET_HDR_LEN;

/// `virtio_net_hdr` values tun-rs does not export (`include/uapi/linux/virtio_net.h`).
const GSO_NONE: u8 = 0;
const F_NEEDS_CSUM: u8 = 1;

/// Largest read with offloads: the `virtio_net_hdr` and a 64 KiB superpacket.
const SUPERPACKET: usize = OFFLOAD_HEADROOM + 65_535;

/// A TUN device carrying whole IPv4 (and, if the stack sends them, IPv6) packets.
///
/// All I/O methods take `&self`: share it with an `Arc` between a reader and a writer task.
pub struct Tun {
    dev: AsyncDevice,
    name: String,
    mtu: u16,
    /// Offloads on (the device really has `IFF_VNET_HDR`).
    offload: bool,
    /// Offloads: the superpacket read buffer (taken out while a read is pending).
    scratch: Mutex<Vec<u8>>,
    /// Offloads: the GRO bookkeeping of [`Tun::send_coalesced`].
    gro: Mutex<Option<GROTable>>,
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .field("mtu", &self.mtu)
            .field("offload", &self.offload)
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
            .offload(config.offload)
            .build_async()
            .ctx(|| format!("create TUN {name} (IFF_TUN|IFF_NO_PI)"))?;
        let offload = config.offload && dev.tcp_gso();
        for addr in &config.addresses {
            netlink.add_address(name, *addr).await?;
        }
        if config.up {
            netlink.set_link_up(name).await?;
        }
        tracing::debug!(tun = %name, mtu = config.mtu, offload, addresses = ?config.addresses, "TUN up");
        Ok(Tun {
            dev,
            name: name.clone(),
            mtu: config.mtu,
            offload,
            scratch: Mutex::new(Vec::new()),
            gro: Mutex::new(None),
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

    /// Whether offloads are on ([`TunConfig::offload`], and the kernel accepted them).
    #[must_use]
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// With offloads: the buffers one full-sized superpacket needs at most (64 KiB in segments
    /// of the largest TCP payload the MTU allows); pass [`Tun::recv_batch`] at least this many,
    /// better a few times as many. A flow with a smaller MSS makes more segments: a superpacket
    /// that does not fit the buffers is an error and lost.
    #[must_use]
    pub fn segments_per_superpacket(&self) -> usize {
        65_535 / usize::from(self.mtu.saturating_sub(40).max(1)) + 1
    }

    fn no_single_reads(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "TUN {} has offloads on: one read may hold many packets, use recv_batch",
                self.name
            ),
        )
    }

    /// Reads one packet the stack routed into the device. `buf` should hold the MTU; a longer
    /// packet cannot occur on a TUN without offloads.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.offload {
            return Err(self.no_single_reads());
        }
        self.dev.recv(buf).await
    }

    /// Non-blocking [`Tun::recv`]: `WouldBlock` when nothing is queued.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.offload {
            return Err(self.no_single_reads());
        }
        self.dev.try_recv(buf)
    }

    /// Waits for at least one packet, then reads as many as are queued, up to `bufs.len()` and
    /// [`MAX_BATCH`], storing lengths in `lens`. Returns the count (at least 1).
    ///
    /// With offloads: one superpacket per call, split into up to `bufs.len()` packets (no
    /// [`MAX_BATCH`] cap); see the module doc.
    pub async fn recv_batch<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        lens: &mut [usize],
    ) -> io::Result<usize> {
        if self.offload {
            let n = bufs.len().min(lens.len());
            // The scratch buffer is taken out for the await (no lock held across it); a
            // concurrent reader, which the daemons never have, would just allocate its own.
            let mut scratch = std::mem::take(&mut *lock(&self.scratch));
            scratch.resize(SUPERPACKET, 0);
            let r = self
                .dev
                .recv_multiple(&mut scratch, &mut bufs[..n], &mut lens[..n], 0)
                .await;
            // Then more reads without waiting (small packets such as ACKs come one per read),
            // while a whole superpacket still fits and at most MAX_BATCH reads per call.
            let r = r.map(|mut got| {
                let per = self.segments_per_superpacket();
                let mut reads = 1;
                while reads < MAX_BATCH && n - got >= per {
                    match self.dev.try_recv_multiple(
                        &mut scratch,
                        &mut bufs[got..n],
                        &mut lens[got..n],
                        0,
                    ) {
                        Ok(k) => {
                            got += k;
                            reads += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::debug!(tun = %self.name, error = %e, "TUN read in batch");
                            break;
                        }
                    }
                }
                got
            });
            *lock(&self.scratch) = scratch;
            return r;
        }
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

    /// As [`Tun::recv_batch`], except that a TCP/IPv4 superpacket (offloads on) for which
    /// `keep(packet, gso_size)` holds is not split: it is moved whole into `whole` (its TCP
    /// checksum still partial: the pseudo-header sum, as the kernel left it for segmentation)
    /// and the call returns with it, after the packets split before it, so that order is kept.
    /// Returns the split packets' count (in `bufs`, possibly 0) and the kept superpacket's
    /// [`Gso`] if there is one (`whole` then holds exactly the packet). Without offloads it is
    /// [`Tun::recv_batch`] and never keeps anything.
    pub async fn recv_batch_whole<B, F>(
        &self,
        bufs: &mut [B],
        lens: &mut [usize],
        whole: &mut Vec<u8>,
        keep: F,
    ) -> io::Result<(usize, Option<Gso>)>
    where
        B: AsRef<[u8]> + AsMut<[u8]>,
        F: Fn(&[u8], u16) -> bool,
    {
        if !self.offload {
            return self.recv_batch(bufs, lens).await.map(|n| (n, None));
        }
        let n = bufs.len().min(lens.len());
        let mut scratch = std::mem::take(&mut *lock(&self.scratch));
        scratch.resize(SUPERPACKET, 0);
        let result = match self.dev.recv(&mut scratch).await {
            Ok(len) => self.read_on(
                &mut scratch,
                len,
                &mut bufs[..n],
                &mut lens[..n],
                whole,
                &keep,
            ),
            Err(e) => Err(e),
        };
        *lock(&self.scratch) = scratch;
        result
    }

    /// [`Tun::recv_batch_whole`] after its first read (`len` bytes in `scratch`): that read,
    /// then more without waiting while a whole superpacket still fits, until one is kept whole.
    fn read_on<B, F>(
        &self,
        scratch: &mut [u8],
        mut len: usize,
        bufs: &mut [B],
        lens: &mut [usize],
        whole: &mut Vec<u8>,
        keep: &F,
    ) -> io::Result<(usize, Option<Gso>)>
    where
        B: AsRef<[u8]> + AsMut<[u8]>,
        F: Fn(&[u8], u16) -> bool,
    {
        let n = bufs.len().min(lens.len());
        let per = self.segments_per_superpacket();
        let mut got = 0;
        let mut reads = 1;
        loop {
            match self.one_read(
                scratch,
                len,
                &mut bufs[got..n],
                &mut lens[got..n],
                whole,
                keep,
            ) {
                Ok(Read::Split(k)) => got += k,
                Ok(Read::Whole(gso)) => return Ok((got, Some(gso))),
                Err(e) if got == 0 && reads == 1 => return Err(e),
                Err(e) => {
                    tracing::debug!(tun = %self.name, error = %e, "TUN read in batch");
                    return Ok((got, None));
                }
            }
            if reads >= MAX_BATCH || n - got < per {
                return Ok((got, None));
            }
            match self.dev.try_recv(scratch) {
                Ok(l) => {
                    len = l;
                    reads += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((got, None)),
                Err(e) => {
                    tracing::debug!(tun = %self.name, error = %e, "TUN read in batch");
                    return Ok((got, None));
                }
            }
        }
    }

    /// One offload read of `len` bytes in `scratch`: kept whole, or split into `bufs`.
    fn one_read<B, F>(
        &self,
        scratch: &mut [u8],
        len: usize,
        bufs: &mut [B],
        lens: &mut [usize],
        whole: &mut Vec<u8>,
        keep: &F,
    ) -> io::Result<Read>
    where
        B: AsRef<[u8]> + AsMut<[u8]>,
        F: Fn(&[u8], u16) -> bool,
    {
        if len <= OFFLOAD_HEADROOM {
            return Err(io::Error::other(format!("TUN read of {len} bytes")));
        }
        let hdr = VirtioNetHdr::decode(&scratch[..OFFLOAD_HEADROOM])?;
        let packet = &scratch[OFFLOAD_HEADROOM..len];
        if hdr.gso_type == tun_rs::VIRTIO_NET_HDR_GSO_TCPV4
            && hdr.gso_size > 0
            && packet.first().is_some_and(|b| b >> 4 == 4)
            && keep(packet, hdr.gso_size)
        {
            whole.clear();
            whole.extend_from_slice(packet);
            return Ok(Read::Whole(Gso {
                gso_size: hdr.gso_size,
                csum_start: hdr.csum_start,
                csum_offset: hdr.csum_offset,
            }));
        }
        split(hdr, &mut scratch[OFFLOAD_HEADROOM..len], bufs, lens).map(Read::Split)
    }

    /// Writes one TCP/IPv4 superpacket (offloads on): the stack takes it as one GSO packet of
    /// segments of `gso.gso_size` payload bytes, and completes the TCP checksum from the partial
    /// one in the packet (`csum_start`/`csum_offset`, as [`Tun::recv_batch_whole`] reports them,
    /// or the IP header length and 16 with the pseudo-header sum in place). Forwarded, it leaves
    /// as one GSO packet where the output device can take it (veth), else in segments.
    pub async fn send_gso(&self, packet: &[u8], gso: Gso) -> io::Result<usize> {
        if !self.offload {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("TUN {} has no offloads: no GSO writes", self.name),
            ));
        }
        let ihl = usize::from(packet.first().copied().unwrap_or(0) & 0x0f) * 4;
        let thl = packet.get(ihl + 12).map_or(20, |b| usize::from(b >> 4) * 4);
        let hdr = VirtioNetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: tun_rs::VIRTIO_NET_HDR_GSO_TCPV4,
            hdr_len: u16::try_from(ihl + thl).unwrap_or(0),
            gso_size: gso.gso_size,
            csum_start: gso.csum_start,
            csum_offset: gso.csum_offset,
        };
        let mut raw = [0u8; OFFLOAD_HEADROOM];
        hdr.encode(&mut raw)?;
        let n = self
            .dev
            .send_vectored(&[IoSlice::new(&raw), IoSlice::new(packet)])
            .await?;
        Ok(n.saturating_sub(OFFLOAD_HEADROOM))
    }

    /// Writes one IP packet into the stack, as if it had arrived on this interface. Returns the
    /// packet's length.
    pub async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        if self.offload {
            // A zero virtio_net_hdr: GSO_NONE, checksums complete.
            let hdr = [0u8; OFFLOAD_HEADROOM];
            let n = self
                .dev
                .send_vectored(&[IoSlice::new(&hdr), IoSlice::new(packet)])
                .await?;
            return Ok(n.saturating_sub(OFFLOAD_HEADROOM));
        }
        self.dev.send(packet).await
    }

    /// Non-blocking [`Tun::send`].
    pub fn try_send(&self, packet: &[u8]) -> io::Result<usize> {
        if self.offload {
            let hdr = [0u8; OFFLOAD_HEADROOM];
            let n = self
                .dev
                .try_send_vectored(&[IoSlice::new(&hdr), IoSlice::new(packet)])?;
            return Ok(n.saturating_sub(OFFLOAD_HEADROOM));
        }
        self.dev.try_send(packet)
    }

    /// Writes the packets `bufs[i][offset..]` (whole buffers: a packet ends where its vector
    /// ends), in order. With offloads, consecutive TCP (and, on Linux 6.2+, UDP) segments of one
    /// flow are first merged into superpackets (GRO), so the stack gets fewer, larger writes;
    /// this rewrites the buffers (the first of a merged run grows) and needs `offset` >=
    /// [`OFFLOAD_HEADROOM`]. Without offloads it is [`Tun::send_batch`] on the same packets.
    /// Returns how many packets were written (a merged run counts as one write but all its
    /// packets); stops at the first failing write after at least one succeeded.
    pub async fn send_coalesced(&self, bufs: &mut [Vec<u8>], offset: usize) -> io::Result<usize> {
        if !self.offload {
            let packets: Vec<&[u8]> = bufs
                .iter()
                .map(|b| b.get(offset..).unwrap_or(&[]))
                .collect();
            return self.send_batch(&packets).await;
        }
        if offset < OFFLOAD_HEADROOM {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("send_coalesced needs {OFFLOAD_HEADROOM} bytes of headroom, got {offset}"),
            ));
        }
        #[allow(clippy::unwrap_or_default)] // new() preallocates its tables, default() does not.
        let mut table = lock(&self.gro).take().unwrap_or_else(GROTable::new);
        let r = self.dev.send_multiple(&mut table, bufs, offset).await;
        *lock(&self.gro) = Some(table);
        r.map(|_| bufs.len())
    }

    /// Writes `packets` in order; returns how many were written. Stops at the first error after
    /// at least one was written.
    pub async fn send_batch<B: AsRef<[u8]>>(&self, packets: &[B]) -> io::Result<usize> {
        let mut sent = 0;
        for p in packets {
            match self.send(p.as_ref()).await {
                Ok(_) => sent += 1,
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(sent)
    }
}

/// A TCP/IPv4 superpacket's segmentation: [`Tun::recv_batch_whole`] reports it, [`Tun::send_gso`]
/// takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gso {
    /// TCP payload bytes per segment (the sender's MSS).
    pub gso_size: u16,
    /// Where the TCP checksum's coverage starts (the IP header length).
    pub csum_start: u16,
    /// Offset of the checksum field from `csum_start` (16 for TCP).
    pub csum_offset: u16,
}

impl Gso {
    /// Segments of `gso_size` bytes of `packet`'s TCP payload, checksum partial in place.
    #[must_use]
    pub fn tcp(packet: &[u8], gso_size: u16) -> Gso {
        let ihl = u16::from(packet.first().copied().unwrap_or(0x45) & 0x0f) * 4;
        Gso {
            gso_size,
            csum_start: ihl,
            csum_offset: 16,
        }
    }
}

/// Cuts a TCP/IPv4 superpacket (as [`Tun::recv_batch_whole`] keeps them, checksum partial)
/// into segments of `gso.gso_size` payload bytes with complete checksums, one per buffer, as the
/// stack would after [`Tun::send_gso`]; returns the count. For a sender without a GSO path.
/// `packet` is used as scratch.
pub fn segment_tcp<B: AsRef<[u8]> + AsMut<[u8]>>(
    packet: &mut [u8],
    gso: Gso,
    bufs: &mut [B],
    lens: &mut [usize],
) -> io::Result<usize> {
    let hdr = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: tun_rs::VIRTIO_NET_HDR_GSO_TCPV4,
        hdr_len: 0,
        gso_size: gso.gso_size,
        csum_start: gso.csum_start,
        csum_offset: gso.csum_offset,
    };
    split(hdr, packet, bufs, lens)
}

/// What tun-rs does with one offload read (its `handle_virtio_read`, which is not public):
/// complete a partial checksum, or split a superpacket into segments.
fn split<B: AsRef<[u8]> + AsMut<[u8]>>(
    mut hdr: VirtioNetHdr,
    input: &mut [u8],
    bufs: &mut [B],
    lens: &mut [usize],
) -> io::Result<usize> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let len = input.len();
    if hdr.gso_type == GSO_NONE {
        if hdr.flags & F_NEEDS_CSUM != 0 {
            let start = usize::from(hdr.csum_start);
            let at = start + usize::from(hdr.csum_offset);
            if at + 2 > len {
                return Err(invalid("checksum field beyond the packet"));
            }
            let initial = u16::from_be_bytes([input[at], input[at + 1]]);
            input[at..at + 2].fill(0);
            let sum = tun_rs::checksum(&input[start..], u64::from(initial));
            input[at..at + 2].copy_from_slice(&(!sum).to_be_bytes());
        }
        let (Some(buf), Some(l)) = (bufs.first_mut(), lens.first_mut()) else {
            return Err(invalid("no buffer"));
        };
        let Some(dst) = buf.as_mut().get_mut(..len) else {
            return Err(invalid("packet longer than the buffer"));
        };
        dst.copy_from_slice(input);
        *l = len;
        return Ok(1);
    }
    let is_v6 = match input.first().map(|b| b >> 4) {
        Some(4) => false,
        Some(6) => true,
        _ => return Err(invalid("GSO packet neither IPv4 nor IPv6")),
    };
    // As tun-rs: hdr_len is the transport header's end, parsed rather than trusted.
    let start = usize::from(hdr.csum_start);
    let l4 = if hdr.gso_type == tun_rs::VIRTIO_NET_HDR_GSO_UDP_L4 {
        8
    } else {
        let b = *input
            .get(start + 12)
            .ok_or_else(|| invalid("short TCP header"))?;
        usize::from(b >> 4) * 4
    };
    if !(8..=60).contains(&l4) || start + l4 > len || start + usize::from(hdr.csum_offset) + 2 > len
    {
        return Err(invalid("bad GSO headers"));
    }
    hdr.hdr_len = u16::try_from(start + l4).map_err(|_| invalid("bad GSO headers"))?;
    tun_rs::gso_split(input, hdr, bufs, lens, 0, is_v6)
}

enum Read {
    Split(usize),
    Whole(Gso),
}

/// Locks a mutex that only ever guards a buffer: a poisoned one is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(data: &[u8], mut acc: u32) -> u32 {
        for c in data.chunks(2) {
            acc += u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]));
        }
        acc
    }

    fn fold(mut acc: u32) -> u16 {
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        u16::try_from(acc).unwrap()
    }

    /// A checksum over the pseudo-header and the TCP segment verifies.
    fn tcp_checksum_ok(p: &[u8]) -> bool {
        let tcp_len = p.len() - 20;
        let mut acc = sum(&p[12..20], 0);
        acc += 6 + u32::try_from(tcp_len).unwrap();
        fold(sum(&p[20..], acc)) == 0xffff
    }

    /// 192.0.2.1:20000 -> 192.0.2.2:80, 5000 payload bytes, checksum partial
    /// (the pseudo-header sum over the whole length, as a TSO superpacket has it).
    fn superpacket() -> Vec<u8> {
        let payload: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
        let total = 40 + payload.len();
        let mut p = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0];
        p[2..4].copy_from_slice(&u16::try_from(total).unwrap().to_be_bytes());
        p.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
        let ip = !fold(sum(&p[..20], 0));
        p[10..12].copy_from_slice(&ip.to_be_bytes());
        // TCP: ports, seq 1000, ack 1, offset 5, ACK|PSH, window, checksum, urgent.
        p.extend_from_slice(&[0x4e, 0x20, 0, 80, 0, 0, 0x03, 0xe8, 0, 0, 0, 1, 0x50, 0x18]);
        p.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        let pseudo = fold(sum(&p[12..20], 6 + u32::try_from(total - 20).unwrap()));
        p[36..38].copy_from_slice(&pseudo.to_be_bytes());
        p.extend_from_slice(&payload);
        p
    }

    #[test]
    fn a_superpacket_is_cut_into_checksummed_segments_in_order() {
        let mut p = superpacket();
        let original = p.clone();
        let gso = Gso::tcp(&p, 1460);
        assert_eq!((gso.csum_start, gso.csum_offset), (20, 16));
        let mut bufs = vec![vec![0u8; 1500]; 8];
        let mut lens = vec![0usize; 8];
        let n = segment_tcp(&mut p, gso, &mut bufs, &mut lens).unwrap();
        assert_eq!(n, 4, "5000 bytes in segments of 1460");
        let mut payload = Vec::new();
        for (i, (b, &l)) in bufs.iter().zip(&lens).take(n).enumerate() {
            let s = &b[..l];
            assert_eq!(usize::from(u16::from_be_bytes([s[2], s[3]])), l);
            assert_eq!(fold(sum(&s[..20], 0)), 0xffff, "IP checksum of segment {i}");
            assert!(tcp_checksum_ok(s), "TCP checksum of segment {i}");
            let seq = u32::from_be_bytes([s[24], s[25], s[26], s[27]]);
            assert_eq!(seq, 1000 + u32::try_from(payload.len()).unwrap());
            payload.extend_from_slice(&s[40..]);
        }
        assert_eq!(payload, original[40..]);
    }
}
