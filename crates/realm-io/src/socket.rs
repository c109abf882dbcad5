//! UDP and TCP sockets with the few options tokio does not set: `SO_REUSEPORT`,
//! `SO_BINDTODEVICE`, `IP_FREEBIND` and buffer sizes. The gateway binds its signalling port
//! (4555, RFC 3103 s6) on each private address it serves, one socket per address, so replies
//! leave from the address the host used without needing `IP_PKTINFO`.
//!
//! Everything else about these sockets is plain tokio.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::error::{IoContext, Result};
use crate::sys;

/// Socket options for [`udp_bind`] and [`tcp_listen`]. The default sets only `SO_REUSEADDR`
/// for TCP listeners (so a restarted gateway can rebind at once despite TIME_WAIT).
#[derive(Debug, Clone, Default)]
pub struct SocketOptions {
    /// `SO_REUSEPORT`: several sockets (processes) on the same address and port.
    pub reuse_port: bool,
    /// `SO_BINDTODEVICE`.
    pub device: Option<String>,
    /// `IP_FREEBIND`: bind an address that is not (yet) configured on any interface.
    pub freebind: bool,
    /// The receive buffer in bytes: `SO_RCVBUFFORCE` where permitted (root, `CAP_NET_ADMIN`: past
    /// `net.core.rmem_max`), else `SO_RCVBUF` (the kernel caps it at `rmem_max`). Either way the
    /// kernel doubles the value for its bookkeeping; [`recv_buffer_size`] reports what it granted.
    pub recv_buffer: Option<usize>,
    /// `SO_SNDBUF` in bytes.
    pub send_buffer: Option<usize>,
}

fn socket(addr: SocketAddr, ty: Type, protocol: Protocol, o: &SocketOptions) -> Result<Socket> {
    let what = || format!("{ty:?} socket for {addr}");
    let s = Socket::new(
        Domain::for_address(addr),
        ty.nonblocking().cloexec(),
        Some(protocol),
    )
    .ctx(|| format!("open {}", what()))?;
    if o.reuse_port {
        s.set_reuse_port(true)
            .ctx(|| format!("set SO_REUSEPORT on {}", what()))?;
    }
    if let Some(dev) = &o.device {
        s.bind_device(Some(dev.as_bytes()))
            .ctx(|| format!("bind {} to device {dev}", what()))?;
    }
    if o.freebind {
        match addr {
            SocketAddr::V4(_) => s.set_freebind_v4(true),
            SocketAddr::V6(_) => s.set_freebind_v6(true),
        }
        .ctx(|| format!("set IP_FREEBIND on {}", what()))?;
    }
    if let Some(bytes) = o.recv_buffer
        && sys::set_buffer_force(s.as_fd(), true, bytes).is_err()
    {
        s.set_recv_buffer_size(bytes)
            .ctx(|| format!("set SO_RCVBUF on {}", what()))?;
    }
    if let Some(bytes) = o.send_buffer {
        s.set_send_buffer_size(bytes)
            .ctx(|| format!("set SO_SNDBUF on {}", what()))?;
    }
    Ok(s)
}

/// A tokio UDP socket bound to `addr` with `options`. Needs a tokio runtime.
pub fn udp_bind(addr: SocketAddr, options: &SocketOptions) -> Result<tokio::net::UdpSocket> {
    let s = socket(addr, Type::DGRAM, Protocol::UDP, options)?;
    s.bind(&addr.into()).ctx(|| format!("bind UDP {addr}"))?;
    tokio::net::UdpSocket::from_std(s.into()).ctx(|| format!("register UDP {addr} with tokio"))
}

/// A tokio TCP listener on `addr` with `options` and `SO_REUSEADDR`. Needs a tokio runtime.
pub fn tcp_listen(
    addr: SocketAddr,
    options: &SocketOptions,
    backlog: i32,
) -> Result<tokio::net::TcpListener> {
    let s = socket(addr, Type::STREAM, Protocol::TCP, options)?;
    s.set_reuse_address(true)
        .ctx(|| format!("set SO_REUSEADDR on TCP {addr}"))?;
    s.bind(&addr.into()).ctx(|| format!("bind TCP {addr}"))?;
    s.listen(backlog).ctx(|| format!("listen on TCP {addr}"))?;
    tokio::net::TcpListener::from_std(s.into()).ctx(|| format!("register TCP {addr} with tokio"))
}

/// The receive buffer the kernel granted a socket (`SO_RCVBUF` read back: twice what was asked,
/// within the limits of [`SocketOptions::recv_buffer`]).
pub fn recv_buffer_size(socket: &impl AsFd) -> io::Result<usize> {
    socket2::SockRef::from(socket).recv_buffer_size()
}

/// Datagrams the kernel dropped at a socket since it was opened: its receive queue was full
/// (or the socket filter refused them). The socket's `sk_drops`, read with `SO_MEMINFO`
/// (`SK_MEMINFO_DROPS`): the counter `SO_RXQ_OVFL` reports per datagram, read on demand
/// instead, so the receive path stays a plain `recv_from`.
pub fn socket_drops(socket: &impl AsFd) -> io::Result<u64> {
    sys::socket_drops(socket.as_fd()).map(u64::from)
}

/// Most datagrams one [`udp_send_segments`] call may carry (the kernel's `UDP_MAX_SEGMENTS`
/// on older kernels) and one `UDP_GRO` read may hold.
pub const UDP_MAX_SEGMENTS: usize = 64;

/// Sends `payload` to `dst` as datagrams of `segment` bytes each, the last possibly shorter,
/// with ONE system call (UDP GSO, `UDP_SEGMENT`, Linux 4.18+): the stack handles one large
/// packet and cuts it as late as possible. At most [`UDP_MAX_SEGMENTS`] segments and 64 KiB.
/// `tos` is the whole TOS byte of every datagram, DSCP and ECN (`IP_TOS`).
pub async fn udp_send_segments(
    socket: &UdpSocket,
    payload: &[u8],
    segment: u16,
    tos: u8,
    dst: SocketAddrV4,
) -> io::Result<usize> {
    socket
        .async_io(Interest::WRITABLE, || {
            sys::send_segments(socket.as_fd(), payload, segment, tos, dst)
        })
        .await
}

/// Turns on `UDP_GRO` (Linux 5.0+): datagrams of one flow arriving together may then be read
/// with one [`udp_try_recv_segments`] call.
pub fn udp_set_gro(socket: &UdpSocket, on: bool) -> io::Result<()> {
    sys::set_int_option(socket.as_fd(), libc::SOL_UDP, sys::UDP_GRO, i32::from(on))
}

/// One read of a socket that may have `UDP_GRO` on: `(len, source, segment)`, where `buf[..len]`
/// holds one datagram (`segment` 0) or several consecutive datagrams of `segment` bytes each,
/// the last possibly shorter. Non-blocking (`WouldBlock` clears tokio's readiness). Use a
/// 64 KiB buffer: a longer read is `InvalidData`.
pub fn udp_try_recv_segments(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddrV4, usize)> {
    socket.try_io(Interest::READABLE, || {
        sys::recv_segments(socket.as_fd(), buf)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn udp_reuseport_pair_on_loopback() {
        let o = SocketOptions {
            reuse_port: true,
            ..SocketOptions::default()
        };
        let a = udp_bind("127.0.0.1:0".parse().unwrap(), &o).unwrap();
        let port = a.local_addr().unwrap().port();
        let b = udp_bind(SocketAddr::from(([127, 0, 0, 1], port)), &o).unwrap();
        assert_eq!(b.local_addr().unwrap().port(), port);
    }

    #[tokio::test]
    async fn udp_segments_sent_as_datagrams_and_read_back_split() {
        let rx = udp_bind("127.0.0.1:0".parse().unwrap(), &SocketOptions::default()).unwrap();
        udp_set_gro(&rx, true).unwrap();
        let tx = udp_bind("127.0.0.1:0".parse().unwrap(), &SocketOptions::default()).unwrap();
        let SocketAddr::V4(dst) = rx.local_addr().unwrap() else {
            panic!()
        };
        // Ten 100-byte datagrams and a 50-byte one, each byte telling its datagram.
        let payload: Vec<u8> = (0..1050u32).map(|i| (i / 100) as u8).collect();
        assert_eq!(
            udp_send_segments(&tx, &payload, 100, 0x2e << 2 | 1, dst)
                .await
                .unwrap(),
            1050
        );
        let mut datagrams: Vec<Vec<u8>> = Vec::new();
        let mut buf = vec![0u8; 65_535];
        while datagrams.len() < 11 {
            rx.readable().await.unwrap();
            let (len, from, segment) = match udp_try_recv_segments(&rx, &mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            };
            assert_eq!(SocketAddr::V4(from), tx.local_addr().unwrap());
            let step = if segment == 0 { len } else { segment };
            datagrams.extend(buf[..len].chunks(step).map(<[u8]>::to_vec));
        }
        assert_eq!(datagrams.len(), 11);
        for (i, d) in datagrams.iter().enumerate() {
            assert_eq!(d.len(), if i == 10 { 50 } else { 100 });
            assert!(d.iter().all(|&b| usize::from(b) == i));
        }
    }

    #[tokio::test]
    async fn receive_buffer_is_granted_and_drops_are_counted() {
        let o = SocketOptions {
            recv_buffer: Some(64 * 1024),
            ..SocketOptions::default()
        };
        let rx = udp_bind("127.0.0.1:0".parse().unwrap(), &o).unwrap();
        // The kernel doubles what it was asked (SO_RCVBUFFORCE as root; else
        // at most rmem_max, which is above 64 KiB by default).
        assert!(recv_buffer_size(&rx).unwrap() >= 64 * 1024);
        assert_eq!(socket_drops(&rx).unwrap(), 0);
        let dst = rx.local_addr().unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // Nobody reads: once the queue is full the kernel drops the rest.
        let datagram = [0u8; 1400];
        let mut sent = 0u64;
        while socket_drops(&rx).unwrap() == 0 {
            tx.send_to(&datagram, dst).unwrap();
            sent += 1;
            assert!(sent < 100_000, "no drop counted after {sent} datagrams");
        }
        assert!(socket_drops(&rx).unwrap() >= 1);
    }

    #[tokio::test]
    async fn tcp_listener_accepts_on_loopback() {
        let l = tcp_listen(
            "127.0.0.1:0".parse().unwrap(),
            &SocketOptions::default(),
            16,
        )
        .unwrap();
        let addr = l.local_addr().unwrap();
        let (c, s) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
        assert_eq!(c.unwrap().peer_addr().unwrap(), addr);
        assert!(s.is_ok());
    }
}
