//! Raw IPv4 sockets, one per IP protocol: how Realm tunnels (IP-in-IP 4, GRE 47) and sees ESP 50
//! and AH 51 in userspace, since it must not rely on the kernel's ipip/gre/esp modules.
//!
//! Kernel behaviour relied on (Linux `net/ipv4/raw.c`, `ip_input.c`; verified by `tests/raw.rs`):
//! - A `SOCK_RAW` socket for protocol P gets a copy of every IPv4 packet of protocol P addressed
//!   to a local address of its namespace, after reassembly, *with* the IP header.
//!   `raw_local_deliver` runs before the protocol handler, so this holds whether or not a kernel
//!   module (ipip, ip_gre, esp4) handles P.
//! - When no module handles P and no raw socket took the packet, the kernel answers ICMP
//!   protocol-unreachable (type 3 code 2); when a raw socket took it, it stays silent. So a host
//!   or gateway without the modules tunnels cleanly as long as its raw socket is open.
//! - With `IP_HDRINCL` the caller's header goes out as given, except that the kernel always fills
//!   in the header checksum and total length, fills in a zero source address, and fills in a
//!   zero ID only when DF is clear (a DF packet keeps ID 0, as RFC 6864 allows).
//!   No fragmentation: a packet larger than the route MTU fails with `EMSGSIZE`.
//! - Protocol 255 (`IPPROTO_RAW`) implies `IP_HDRINCL` and can send any protocol, but receives
//!   nothing.
//!
//! No protocol logic here: callers build and parse the headers (realm-wire).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::MAX_BATCH;
use crate::error::{IoContext, Result};
use crate::sys;

/// IP protocol numbers Realm opens raw sockets for.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IP-in-IP (RFC 2003), Realm's default tunnel.
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// GRE (RFC 2784).
    pub const GRE: u8 = 47;
    /// ESP (RFC 4303).
    pub const ESP: u8 = 50;
    /// AH (RFC 4302).
    pub const AH: u8 = 51;
    /// `IPPROTO_RAW`: send-only, any protocol, header always included.
    pub const RAW: u8 = 255;
}

/// Options for [`RawIp::open`]. The default binds nothing and keeps the kernel's buffer sizes.
#[derive(Debug, Clone, Default)]
pub struct RawIpOptions {
    /// Receive only packets addressed to this local address (`bind`).
    pub bind: Option<Ipv4Addr>,
    /// Receive only packets that arrived on, and send only out of, this device
    /// (`SO_BINDTODEVICE`).
    pub device: Option<String>,
    /// Receive buffer in bytes. Set with `SO_RCVBUFFORCE` (root may exceed
    /// `net.core.rmem_max`), falling back to `SO_RCVBUF`. A gateway wants several MB so bursts
    /// are not dropped while it is busy.
    pub recv_buffer: Option<usize>,
    /// Send buffer in bytes, as `recv_buffer` (`SO_SNDBUFFORCE`, then `SO_SNDBUF`).
    pub send_buffer: Option<usize>,
}

/// A raw IPv4 socket for one IP protocol, with `IP_HDRINCL`: [`RawIp::send`] takes complete IPv4
/// packets and [`RawIp::recv`] returns complete IPv4 packets (header included).
///
/// All methods take `&self`, so one socket can be shared (`Arc`) by a reader and a writer task.
#[derive(Debug)]
pub struct RawIp {
    fd: AsyncFd<Socket>,
    protocol: u8,
}

impl RawIp {
    /// Opens a raw socket for `protocol` (see [`proto`]) in the calling thread's namespace.
    /// Needs CAP_NET_RAW and a tokio runtime with I/O enabled.
    pub fn open(protocol: u8, options: &RawIpOptions) -> Result<RawIp> {
        let what = || format!("raw IPv4 socket for protocol {protocol}");
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::from(i32::from(protocol))),
        )
        .ctx(|| format!("open {}", what()))?;
        if protocol != proto::RAW {
            // IPPROTO_RAW implies it (and rejects nothing), others need it to send whole packets.
            socket
                .set_header_included_v4(true)
                .ctx(|| format!("set IP_HDRINCL on {}", what()))?;
        }
        if let Some(dev) = &options.device {
            socket
                .bind_device(Some(dev.as_bytes()))
                .ctx(|| format!("bind {} to device {dev}", what()))?;
        }
        if let Some(addr) = options.bind {
            socket
                .bind(&SockAddr::from(SocketAddrV4::new(addr, 0)))
                .ctx(|| format!("bind {} to {addr}", what()))?;
        }
        if let Some(bytes) = options.recv_buffer
            && sys::set_buffer_force(socket.as_fd(), true, bytes).is_err()
        {
            socket
                .set_recv_buffer_size(bytes)
                .ctx(|| format!("set receive buffer of {}", what()))?;
        }
        if let Some(bytes) = options.send_buffer
            && sys::set_buffer_force(socket.as_fd(), false, bytes).is_err()
        {
            socket
                .set_send_buffer_size(bytes)
                .ctx(|| format!("set send buffer of {}", what()))?;
        }
        let fd = sys::register_socket(socket).ctx(|| format!("register {} with tokio", what()))?;
        Ok(RawIp { fd, protocol })
    }

    /// The IP protocol this socket was opened for.
    #[must_use]
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    /// The kernel's receive buffer size (after doubling; see `socket(7)`).
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        self.fd.get_ref().recv_buffer_size()
    }

    /// The underlying socket, for options this type does not wrap.
    #[must_use]
    pub fn socket(&self) -> &Socket {
        self.fd.get_ref()
    }

    /// Receives one whole IPv4 packet (header included) into `buf`; returns its length.
    ///
    /// A packet longer than `buf` is consumed and reported as `InvalidData` ("truncated"): use
    /// buffers of [`crate::MAX_IPV4_PACKET`] bytes, or at least the largest MTU in play.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |s| recv_one(s, buf))
            .await
    }

    /// Non-blocking [`RawIp::recv`]: `WouldBlock` when nothing is queued.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        recv_one(self.fd.get_ref(), buf)
    }

    /// Waits until at least one packet is queued, then receives as many as are queued, up to
    /// `bufs.len()` and [`MAX_BATCH`], with ONE `recvmmsg(2)` call. Returns the count `n` (at
    /// least 1): `bufs[..n]` hold the packets and `lens[..n]` their lengths.
    ///
    /// A packet longer than its buffer is dropped (logged at debug level) and the buffers after
    /// it are moved up (`bufs.swap`), so `bufs[..n]` only ever hold whole packets; if every
    /// packet of a call was truncated the result is `InvalidData`, as for [`RawIp::recv`].
    pub async fn recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        lens: &mut [usize],
    ) -> io::Result<usize> {
        recv_batch_on(&self.fd, bufs, lens, &self.protocol).await
    }

    /// Sends one complete IPv4 packet (header included) to `dst`, which the kernel uses for the
    /// route lookup; the header's own destination is what goes on the wire, so keep them equal.
    pub async fn send_to(&self, packet: &[u8], dst: Ipv4Addr) -> io::Result<usize> {
        let addr = SockAddr::from(SocketAddrV4::new(dst, 0));
        self.fd
            .async_io(Interest::WRITABLE, |s| s.send_to(packet, &addr))
            .await
    }

    /// Sends one complete IPv4 packet to the destination in its own header (bytes 16..20).
    pub async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        let dst = header_destination(packet)?;
        self.send_to(packet, dst).await
    }

    /// Non-blocking [`RawIp::send`].
    pub fn try_send(&self, packet: &[u8]) -> io::Result<usize> {
        let dst = header_destination(packet)?;
        let addr = SockAddr::from(SocketAddrV4::new(dst, 0));
        self.fd.get_ref().send_to(packet, &addr)
    }

    /// Sends `payload` to `dst` behind an IPv4 header the kernel writes (`IP_HDRINCL` is turned
    /// off for this one call): source the bound address, this socket's protocol, the default
    /// TTL, DF clear (`IP_PMTUDISC_DONT`), so a payload larger than the route MTU leaves as
    /// fragments, cut by the kernel in one call. The way to send a tunnel packet of up to 64 KiB
    /// (a whole superpacket, see `Tun::recv_batch_whole`); the receiver's kernel reassembles it
    /// before its raw socket sees it.
    pub async fn send_fragmented(&self, payload: &[u8], dst: Ipv4Addr) -> io::Result<usize> {
        let addr = SockAddr::from(SocketAddrV4::new(dst, 0));
        self.fd
            .async_io(Interest::WRITABLE, |s| {
                sys::set_int_option(
                    s.as_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_MTU_DISCOVER,
                    libc::IP_PMTUDISC_DONT,
                )?;
                s.set_header_included_v4(false)?;
                let r = s.send_to(payload, &addr);
                // Back to whole packets whatever happened: the other sends rely on it.
                s.set_header_included_v4(true)?;
                r
            })
            .await
    }

    /// Sends `packets` in order, each to the destination in its own header, [`MAX_BATCH`] per
    /// `sendmmsg(2)` call; returns how many were sent. An error is returned only if none was
    /// sent; otherwise sending stops at the first failing packet and the count tells the caller
    /// where (a malformed packet, or e.g. `EMSGSIZE` or `ENETUNREACH` for that destination).
    pub async fn send_batch<B: AsRef<[u8]>>(&self, packets: &[B]) -> io::Result<usize> {
        let mut dests = [Ipv4Addr::UNSPECIFIED; MAX_BATCH];
        let mut sent = 0;
        while sent < packets.len() {
            let chunk = &packets[sent..packets.len().min(sent + MAX_BATCH)];
            let mut valid = 0;
            for (d, p) in dests.iter_mut().zip(chunk) {
                match header_destination(p.as_ref()) {
                    Ok(dst) => *d = dst,
                    Err(e) if sent + valid == 0 => return Err(e),
                    Err(_) => break,
                }
                valid += 1;
            }
            if valid == 0 {
                break;
            }
            let result = self
                .fd
                .async_io(Interest::WRITABLE, |s| {
                    sys::send_many(s.as_fd(), &chunk[..valid], &dests[..valid])
                })
                .await;
            match result {
                Ok(k) => sent += k,
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
            if valid < chunk.len() {
                break;
            }
        }
        Ok(sent)
    }
}

/// [`RawIp::recv_batch`] on any datagram socket that hands out whole packets (also the AF_PACKET
/// sockets of [`crate::packet`]): waits, one `recvmmsg`, truncated packets dropped and the
/// buffers after them moved up. `what` names the socket (protocol number) in the debug log.
pub(crate) async fn recv_batch_on<B: AsMut<[u8]>>(
    fd: &AsyncFd<Socket>,
    bufs: &mut [B],
    lens: &mut [usize],
    what: &(dyn std::fmt::Display + Sync),
) -> io::Result<usize> {
    let max = bufs.len().min(lens.len()).min(MAX_BATCH);
    if max == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "recv_batch needs at least one buffer",
        ));
    }
    let mut truncated = [false; MAX_BATCH];
    let got = fd
        .async_io(Interest::READABLE, |s| {
            sys::recv_many(s.as_fd(), &mut bufs[..max], lens, &mut truncated)
        })
        .await?;
    let mut kept = 0;
    for i in 0..got {
        if truncated[i] {
            tracing::debug!(
                socket = %what,
                buffer = bufs[i].as_mut().len(),
                "raw packet truncated, dropped"
            );
            continue;
        }
        if kept != i {
            bufs.swap(kept, i);
            lens[kept] = lens[i];
        }
        kept += 1;
    }
    if kept == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "raw packets truncated: buffers too small",
        ));
    }
    Ok(kept)
}

fn header_destination(packet: &[u8]) -> io::Result<Ipv4Addr> {
    match packet.get(16..20) {
        Some(&[a, b, c, d]) if packet[0] >> 4 == 4 => Ok(Ipv4Addr::new(a, b, c, d)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an IPv4 packet (need version 4 and at least 20 bytes)",
        )),
    }
}

fn recv_one(socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    let cap = buf.len();
    // MSG_TRUNC: raw sockets then return the real length, so truncation is visible.
    let n = socket.recv_with_flags(sys::as_uninit(buf), libc::MSG_TRUNC)?;
    if n > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("raw packet truncated: {n} bytes, buffer {cap}"),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_from_header() {
        let mut p = [0u8; 20];
        p[0] = 0x45;
        p[16..20].copy_from_slice(&[198, 51, 100, 7]);
        assert_eq!(
            header_destination(&p).unwrap(),
            Ipv4Addr::new(198, 51, 100, 7)
        );
        assert!(header_destination(&p[..19]).is_err());
        p[0] = 0x60;
        assert!(header_destination(&p).is_err());
    }
}
