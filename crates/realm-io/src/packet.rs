//! AF_PACKET sockets for plain ESP on an Ethernet underlay: the fast path of `realm peer`, which
//! leaves the kernel's IP stack out of each packet's trip (no output route or netfilter on the way
//! out; no `ip_rcv`, input route or raw-socket delivery on the way in).
//!
//! - [`PacketSender`]: cooked (`SOCK_DGRAM`) IPv4 frames to a given next-hop MAC on a given
//!   interface, `sendmmsg` batches. The kernel writes the Ethernet header;
//!   the IPv4 header goes out exactly as given (checksum, length and ID included: nothing is
//!   filled in, unlike [`crate::RawIp`]), and nothing is fragmented (`EMSGSIZE` above the MTU).
//! - [`EspReceiver`]: bound to one interface with `ETH_P_ALL`, which Linux delivers to before the
//!   netdev ingress hook, so an nftables `netdev` rule can then drop the packets for the IP stack
//!   ([`esp_ingress_drop_rule`]). A classic BPF filter keeps exactly what that rule drops:
//!   unfragmented IPv4 ESP without options, addressed to one local address, for this host
//!   (`PACKET_HOST`); `PACKET_IGNORE_OUTGOING` leaves out our own sends. Fragments still go to
//!   the IP stack, which reassembles them for the raw ESP socket.
//!
//! Packets handed out are the IPv4 packet as it came off the wire: unlike the IP stack, nothing
//! here checks the header checksum or trims Ethernet padding after the IPv4 total length; callers
//! do ([`crate::raw`] sockets get that from `ip_rcv`).
//!
//! No protocol logic beyond the filter. The one unsafe block here (`bind` with a `sockaddr_ll`)
//! carries its `// SAFETY:` note; `sendmmsg` is `sys::send_many_to`.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};

use socket2::{Domain, Protocol, SockFilter, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::MAX_BATCH;
use crate::error::{IoContext, Result};
use crate::raw::recv_batch_on;
use crate::sys;

/// Sends whole IPv4 packets as Ethernet frames to a next hop's MAC address.
#[derive(Debug)]
pub struct PacketSender {
    fd: AsyncFd<Socket>,
}

/// Receives unfragmented IPv4 ESP packets for one local address off one interface.
#[derive(Debug)]
pub struct EspReceiver {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    /// With [`EspReceiver::open_with_ring`]: packets are read from this ring, not `recvmmsg`.
    ring: Option<RxRing>,
}

/// `TPACKET_V2` (`enum tpacket_versions`).
const TPACKET_V2: libc::c_int = 1;

/// A `TPACKET_V2` receive ring (`PACKET_RX_RING`, `packet_mmap.rst`) mapped from its socket:
/// `frames` frames of `frame_size` bytes, back to back. The kernel copies each packet the filter
/// accepts into the next free frame and flips its status to `TP_STATUS_USER`; we copy it out
/// and hand the frame back (`TP_STATUS_KERNEL`), in ring order.
#[derive(Debug)]
struct RxRing {
    base: std::ptr::NonNull<u8>,
    size: usize,
    frame_size: usize,
    frames: usize,
    next: usize,
}

// SAFETY: the mapping belongs to this value alone (no pointer into it is handed out), so moving
// it to another thread is as sound as moving a `Vec`; shared references allow no access to it.
unsafe impl Send for RxRing {}
// SAFETY: as above: `&RxRing` gives no access to the mapping (`take` needs `&mut`).
unsafe impl Sync for RxRing {}

impl RxRing {
    /// Sets `TPACKET_V2` and maps a ring of about `bytes` (at least one 64 KiB block) whose
    /// frames hold packets of up to `max_packet` bytes. Before the socket is bound.
    fn map(socket: &Socket, bytes: usize, max_packet: usize) -> io::Result<RxRing> {
        sys::set_int_option(
            socket.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            TPACKET_V2,
        )?;
        // A cooked packet starts TPACKET_ALIGN(TPACKET2_HDRLEN + 16) into its frame.
        let frame_size = (max_packet + 128).next_power_of_two().max(2048);
        let block_size = frame_size.max(1 << 16);
        let blocks = bytes.div_ceil(block_size).max(1);
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "receive ring too large");
        let frames = blocks * (block_size / frame_size);
        let req = libc::tpacket_req {
            tp_block_size: u32::try_from(block_size).map_err(|_| too_big())?,
            tp_block_nr: u32::try_from(blocks).map_err(|_| too_big())?,
            tp_frame_size: u32::try_from(frame_size).map_err(|_| too_big())?,
            tp_frame_nr: u32::try_from(frames).map_err(|_| too_big())?,
        };
        // SAFETY: `req` is a `tpacket_req` on our stack passed with its exact size; the kernel
        // copies it and keeps no pointer. The fd is a live socket borrowed for the call.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_RX_RING,
                std::ptr::from_ref(&req).cast(),
                std::mem::size_of::<libc::tpacket_req>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let size = block_size * blocks;
        // SAFETY: a fresh shared mapping of the ring the kernel just set up for this socket,
        // exactly its size, at an address the kernel picks: it aliases no Rust memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                socket.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base =
            std::ptr::NonNull::new(base.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(RxRing {
            base,
            size,
            frame_size,
            frames,
            next: 0,
        })
    }

    /// Copies the ready packets, in ring order, into `bufs` (at most `bufs.len()`, `lens.len()`
    /// and [`MAX_BATCH`]); returns how many. A packet larger than its frame or its buffer is
    /// dropped (logged at debug level).
    fn take<B: AsMut<[u8]>>(&mut self, bufs: &mut [B], lens: &mut [usize]) -> usize {
        let max = bufs.len().min(lens.len()).min(MAX_BATCH);
        let mut n = 0;
        while n < max {
            // SAFETY: `next < frames`, so the frame lies inside the mapping, which lives as
            // long as `self`; frames start at multiples of `frame_size` (a power of two >= 2048)
            // from a page-aligned base, so the header is aligned for `tpacket2_hdr` and its
            // leading `u32` status for `AtomicU32`. The kernel and we access the status only
            // atomically (the kernel with WRITE_ONCE and barriers, per packet_mmap.rst).
            let (status, frame) = unsafe {
                let frame = self.base.as_ptr().add(self.next * self.frame_size);
                let status = std::sync::atomic::AtomicU32::from_ptr(frame.cast::<u32>());
                (status, frame)
            };
            if status.load(std::sync::atomic::Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                break;
            }
            // SAFETY: the status said TP_STATUS_USER (acquire): the kernel has finished writing
            // this frame and will not touch it until we hand it back below. The header is
            // inside the frame and aligned (see above).
            let hdr = unsafe { std::ptr::read(frame.cast::<libc::tpacket2_hdr>()) };
            let (net, snap, len) = (
                usize::from(hdr.tp_net),
                hdr.tp_snaplen as usize,
                hdr.tp_len as usize,
            );
            let dst = bufs[n].as_mut();
            if snap == len && net + len <= self.frame_size && len <= dst.len() {
                // SAFETY: `frame + net .. + len` lies inside this frame (checked just above),
                // which the kernel does not write while it is ours; `dst` is a distinct Rust
                // buffer of at least `len` bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(frame.add(net), dst.as_mut_ptr(), len);
                }
                lens[n] = len;
                n += 1;
            } else {
                tracing::debug!(
                    len,
                    snap,
                    buffer = dst.len(),
                    "ESP packet larger than its ring frame or buffer, dropped"
                );
            }
            status.store(libc::TP_STATUS_KERNEL, std::sync::atomic::Ordering::Release);
            self.next = (self.next + 1) % self.frames;
        }
        n
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: `base` and `size` are exactly the mapping made in `map`, unmapped once, here;
        // nothing points into it any more (`take` copies packets out).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.size);
        }
    }
}

/// A `sockaddr_ll` for IPv4 on `ifindex`, to `mac` (zero for a bind).
fn link_address(ifindex: u32, protocol: u16, mac: [u8; 6]) -> libc::sockaddr_ll {
    let mut addr = [0u8; 8];
    addr[..6].copy_from_slice(&mac);
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex as libc::c_int,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: addr,
    }
}

fn open(what: &str, protocol: u16) -> Result<Socket> {
    Socket::new(
        Domain::PACKET,
        Type::DGRAM.nonblocking().cloexec(),
        Some(Protocol::from(i32::from(protocol.to_be()))),
    )
    .ctx(|| format!("open {what} (AF_PACKET)"))
}

impl PacketSender {
    /// A send-only cooked packet socket (protocol 0: it receives nothing). Frames go through
    /// the device's qdisc, as the IP stack's would: `PACKET_QDISC_BYPASS` would also hide them
    /// from captures (`tcpdump`) on this host, since the bypass skips the taps on the way out.
    /// Needs CAP_NET_RAW and a tokio runtime.
    pub fn open(send_buffer: Option<usize>) -> Result<PacketSender> {
        let what = "packet socket for sending";
        let socket = open(what, 0)?;
        if let Some(bytes) = send_buffer
            && sys::set_buffer_force(socket.as_fd(), false, bytes).is_err()
        {
            socket
                .set_send_buffer_size(bytes)
                .ctx(|| format!("set send buffer of {what}"))?;
        }
        let fd = sys::register_socket(socket).ctx(|| format!("register {what} with tokio"))?;
        Ok(PacketSender { fd })
    }

    /// Sends `packets` (whole IPv4 packets) in order out of `ifindex` to `mac`, [`MAX_BATCH`] per
    /// `sendmmsg(2)` call; returns how many were sent. As [`crate::RawIp::send_batch`]: an error
    /// only if none was sent, otherwise the count says where sending stopped (e.g. `EMSGSIZE`
    /// for a packet larger than the interface MTU, `ENETDOWN`).
    pub async fn send_batch<B: AsRef<[u8]>>(
        &self,
        packets: &[B],
        ifindex: u32,
        mac: [u8; 6],
    ) -> io::Result<usize> {
        let names = [link_address(ifindex, libc::ETH_P_IP as u16, mac); MAX_BATCH];
        let mut sent = 0;
        while sent < packets.len() {
            let chunk = &packets[sent..packets.len().min(sent + MAX_BATCH)];
            let result = self
                .fd
                .async_io(Interest::WRITABLE, |s| {
                    sys::send_many_to(s.as_fd(), chunk, &names)
                })
                .await;
            match result {
                Ok(k) => sent += k,
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
            if sent < packets.len() && sent % MAX_BATCH != 0 {
                break; // the kernel stopped at a failing packet
            }
        }
        Ok(sent)
    }
}

/// Classic BPF over a cooked packet (offset 0 is the network header): accept unfragmented IPv4
/// ESP without options, for this host, to `addr`; reject everything else. Keep it in step with
/// [`esp_ingress_drop_rule`].
fn esp_filter(addr: Ipv4Addr) -> [SockFilter; 14] {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
    const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    const AD: u32 = libc::SKF_AD_OFF as u32;
    // Jump offsets count instructions after the current one; REJECT is the last.
    [
        SockFilter::new(LD_W_ABS, 0, 0, AD + libc::SKF_AD_PKTTYPE as u32),
        SockFilter::new(JEQ, 0, 11, u32::from(libc::PACKET_HOST)),
        SockFilter::new(LD_H_ABS, 0, 0, AD + libc::SKF_AD_PROTOCOL as u32),
        SockFilter::new(JEQ, 0, 9, libc::ETH_P_IP as u32),
        SockFilter::new(LD_B_ABS, 0, 0, 0), // version and IHL
        SockFilter::new(JEQ, 0, 7, 0x45),
        SockFilter::new(LD_B_ABS, 0, 0, 9), // protocol
        SockFilter::new(JEQ, 0, 5, u32::from(crate::raw::proto::ESP)),
        SockFilter::new(LD_H_ABS, 0, 0, 6), // flags and fragment offset
        SockFilter::new(JSET, 3, 0, 0x3fff), // MF or an offset: a fragment
        SockFilter::new(LD_W_ABS, 0, 0, 16), // destination
        SockFilter::new(JEQ, 0, 1, u32::from(addr)),
        SockFilter::new(RET, 0, 0, u32::MAX),
        SockFilter::new(RET, 0, 0, 0),
    ]
}

/// The nftables `netdev` ingress rule that keeps from the IP stack what an [`EspReceiver`] for
/// `addr` takes: install it (in a chain hooked at ingress on the receiver's interface) only
/// while the receiver is open, or those packets are lost.
#[must_use]
pub fn esp_ingress_drop_rule(addr: Ipv4Addr) -> String {
    format!(
        "meta pkttype host ip version 4 ip hdrlength 5 ip protocol esp ip frag-off & 0x3fff == 0 \
         ip daddr {addr} drop"
    )
}

impl EspReceiver {
    /// Opens a cooked packet socket on `ifindex` that receives unfragmented IPv4 ESP packets to
    /// `addr` (see the module doc). The filter is attached before the socket is bound to
    /// `ETH_P_ALL`, so nothing else is ever queued. Needs CAP_NET_RAW and a tokio runtime.
    pub fn open(ifindex: u32, addr: Ipv4Addr, recv_buffer: Option<usize>) -> Result<EspReceiver> {
        Self::open_inner(ifindex, addr, recv_buffer, None)
    }

    /// [`EspReceiver::open`] with a `TPACKET_V2` receive ring of about `ring_bytes` whose frames
    /// hold packets of up to `max_packet` bytes: the kernel copies each packet into the ring
    /// (no socket buffer, no `recvmmsg`), [`EspReceiver::recv_batch`] copies it out.
    pub fn open_with_ring(
        ifindex: u32,
        addr: Ipv4Addr,
        ring_bytes: usize,
        max_packet: usize,
    ) -> Result<EspReceiver> {
        Self::open_inner(ifindex, addr, None, Some((ring_bytes, max_packet)))
    }

    fn open_inner(
        ifindex: u32,
        addr: Ipv4Addr,
        recv_buffer: Option<usize>,
        ring: Option<(usize, usize)>,
    ) -> Result<EspReceiver> {
        let what = format!("ESP packet socket on interface {ifindex}");
        let socket = open(&what, 0)?;
        socket
            .attach_filter(&esp_filter(addr))
            .ctx(|| format!("attach the ESP filter to {what}"))?;
        sys::set_int_option(
            socket.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            1,
        )
        .ctx(|| format!("set PACKET_IGNORE_OUTGOING on {what}"))?;
        if let Some(bytes) = recv_buffer
            && sys::set_buffer_force(socket.as_fd(), true, bytes).is_err()
        {
            socket
                .set_recv_buffer_size(bytes)
                .ctx(|| format!("set receive buffer of {what}"))?;
        }
        let ring = match ring {
            Some((bytes, max_packet)) => Some(
                RxRing::map(&socket, bytes, max_packet)
                    .ctx(|| format!("map a receive ring for {what}"))?,
            ),
            None => None,
        };
        let local = link_address(ifindex, libc::ETH_P_ALL as u16, [0; 6]);
        // SAFETY: `local` is a valid `sockaddr_ll` on our stack, passed with its exact size; the
        // kernel copies it during the call and keeps no pointer. The fd is the live socket we own.
        let rc = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                std::ptr::from_ref(&local).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error()).ctx(|| format!("bind {what}"));
        }
        let fd = sys::register_socket(socket).ctx(|| format!("register {what} with tokio"))?;
        Ok(EspReceiver { fd, ifindex, ring })
    }

    /// The interface this socket receives on.
    #[must_use]
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Packets the kernel dropped for want of room (full ring or socket buffer) since the last
    /// call (`PACKET_STATISTICS`, which resets the count).
    pub fn take_drops(&self) -> io::Result<u32> {
        let mut stats = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `stats` is a `tpacket_stats` on our stack and `len` its exact size; the kernel
        // writes at most `len` bytes into it and updates `len`. The fd is our live socket.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.get_ref().as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                std::ptr::from_mut(&mut stats).cast(),
                &raw mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stats.tp_drops)
    }

    /// Whether packets come through a receive ring ([`EspReceiver::open_with_ring`]).
    #[must_use]
    pub fn has_ring(&self) -> bool {
        self.ring.is_some()
    }

    /// As [`crate::RawIp::recv_batch`]: waits, then takes up to `bufs.len()` and [`MAX_BATCH`]
    /// packets from the ring, or with one `recvmmsg(2)`; truncated ones are dropped. Each is an
    /// IPv4 packet as received (not checked, possibly followed by Ethernet padding).
    pub async fn recv_batch<B: AsMut<[u8]>>(
        &mut self,
        bufs: &mut [B],
        lens: &mut [usize],
    ) -> io::Result<usize> {
        let Some(ring) = &mut self.ring else {
            return recv_batch_on(&self.fd, bufs, lens, &"ESP (AF_PACKET)").await;
        };
        if bufs.is_empty() || lens.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "recv_batch needs at least one buffer",
            ));
        }
        loop {
            let n = ring.take(bufs, lens);
            if n > 0 {
                return Ok(n);
            }
            // The ring is readable (POLLIN) while a frame is the user's. A packet that lands
            // after the look above bumps tokio's readiness tick, so clear_ready keeps it.
            let mut guard = self.fd.readable().await?;
            let n = ring.take(bufs, lens);
            if n > 0 {
                return Ok(n);
            }
            guard.clear_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_rule_names_the_address() {
        assert!(esp_ingress_drop_rule(Ipv4Addr::new(192, 0, 2, 1)).ends_with("192.0.2.1 drop"));
    }
}
