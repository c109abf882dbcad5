//! The crate's `unsafe`, kept in one short file so it can be audited at a glance (the `bpf(2)`
//! wrapper's two blocks live beside their attribute structs in `bpf.rs`). Each block says why it is
//! sound. Nothing here knows about protocols.

use std::io;
use std::mem::MaybeUninit;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::MAX_BATCH;

use tokio::io::unix::AsyncFd;

/// Views an initialised byte buffer as the `MaybeUninit` buffer socket2's receive calls take.
pub(crate) fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the same size, alignment and layout as `u8`, so the cast
    // slice covers exactly the same memory. The only writer through it is the kernel (via
    // socket2's `recv*`), which stores initialised bytes and never de-initialises any, so the
    // original `&mut [u8]` is still fully initialised when the borrow ends.
    unsafe { &mut *(std::ptr::from_mut::<[u8]>(buf) as *mut [MaybeUninit<u8>]) }
}

/// Registers a socket with the current tokio reactor (tokio 1.54 made `AsyncFd::new` unsafe to
/// call as `AsyncFd::register`, because a wrapper could hand out a different fd later).
pub(crate) fn register_socket(socket: socket2::Socket) -> io::Result<AsyncFd<socket2::Socket>> {
    // SAFETY: `socket2::Socket` owns its fd: `as_raw_fd` always returns the one fd it was created
    // with, and that fd stays open until the `Socket` is dropped, which happens only when the
    // `AsyncFd` is dropped or `into_inner` is called, as `register` requires.
    unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)
}

/// Sets `SO_RCVBUFFORCE` / `SO_SNDBUFFORCE` (root only: beyond `net.core.{r,w}mem_max`).
pub(crate) fn set_buffer_force(fd: BorrowedFd<'_>, receive: bool, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let opt = if receive {
        libc::SO_RCVBUFFORCE
    } else {
        libc::SO_SNDBUFFORCE
    };
    // SAFETY: `fd` is a live socket borrowed for the duration of the call; `optval` points to a
    // `c_int` on our stack that outlives the call, and `optlen` is exactly its size, which is
    // what the kernel reads for SO_{RCV,SND}BUFFORCE. setsockopt does not retain the pointer.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `malloc_trim(0)` (glibc): returns the free memory at the top of the heap and in free pages of
/// every arena to the system.
pub(crate) fn malloc_trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and only walks the allocator's own free lists under
    // its locks; calling it at any time from any thread is allowed.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The socket's `sk_drops` (`SO_MEMINFO`, `SK_MEMINFO_DROPS`).
pub(crate) fn socket_drops(fd: BorrowedFd<'_>) -> io::Result<u32> {
    // SK_MEMINFO_VARS is 9 today; room for more, the kernel copies what it has.
    let mut info = [0u32; 16];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `fd` is a live socket borrowed for the call; `optval` points to a `u32` array on our
    // stack that outlives the call and `optlen` holds its exact size, which the kernel never
    // exceeds (it copies at most `optlen` bytes and writes back how many); no pointer is kept.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            std::ptr::from_mut(&mut info).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let filled = usize::try_from(len).unwrap_or(0) / std::mem::size_of::<u32>();
    match info.get(libc::SK_MEMINFO_DROPS as usize) {
        Some(&drops) if (libc::SK_MEMINFO_DROPS as usize) < filled => Ok(drops),
        _ => Err(io::Error::from(io::ErrorKind::Unsupported)),
    }
}

/// One `recvmmsg(2)` call, non-blocking: receives up to `min(bufs.len(), lens.len(),
/// truncated.len(), MAX_BATCH)` datagrams, one per buffer. Fills `lens[i]` with the bytes stored
/// in `bufs[i]` and `truncated[i]` with whether the datagram was longer than the buffer.
/// `WouldBlock` when nothing is queued.
pub(crate) fn recv_many<B: AsMut<[u8]>>(
    fd: BorrowedFd<'_>,
    bufs: &mut [B],
    lens: &mut [usize],
    truncated: &mut [bool],
) -> io::Result<usize> {
    let n = bufs
        .len()
        .min(lens.len())
        .min(truncated.len())
        .min(MAX_BATCH);
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_BATCH];
    // SAFETY: `mmsghdr` is a plain C struct of integers and raw pointers, for which all-zero
    // bytes are a valid value (null pointers, zero lengths, no flags).
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..n {
        let b = bufs[i].as_mut();
        iov[i] = libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        };
        hdrs[i].msg_hdr.msg_iov = &raw mut iov[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `hdrs[..n]` are valid `mmsghdr`s whose single iovec points into `bufs[i]`, which we
    // borrow mutably for the whole call, with its true length, so the kernel writes only inside
    // them; `iov` and `hdrs` live on this frame until after the call and are not moved. No name,
    // control buffer or timeout pointers are passed. `n <= MAX_BATCH` fits `c_uint`.
    let rc = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    let Ok(got) = usize::try_from(rc) else {
        return Err(io::Error::last_os_error());
    };
    for i in 0..got {
        lens[i] = hdrs[i].msg_len as usize;
        truncated[i] = hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
    }
    Ok(got)
}

/// One `sendmmsg(2)` call, non-blocking: sends `packets[i]` to `dests[i]` (port 0: raw socket)
/// for up to `min(packets.len(), dests.len(), MAX_BATCH)` packets. Returns how many the kernel
/// took; an error only if it took none (`WouldBlock` when the send buffer is full).
pub(crate) fn send_many<B: AsRef<[u8]>>(
    fd: BorrowedFd<'_>,
    packets: &[B],
    dests: &[Ipv4Addr],
) -> io::Result<usize> {
    let mut names = [libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: 0 },
        sin_zero: [0; 8],
    }; MAX_BATCH];
    for (name, dst) in names.iter_mut().zip(dests) {
        name.sin_addr.s_addr = u32::from_ne_bytes(dst.octets());
    }
    let n = packets.len().min(dests.len()).min(MAX_BATCH);
    send_many_to(fd, &packets[..n], &names[..n])
}

/// A C socket address type `sendmmsg` can take as a message name.
pub(crate) trait CSockAddr: Copy {}
impl CSockAddr for libc::sockaddr_in {}
impl CSockAddr for libc::sockaddr_ll {}

/// One `sendmmsg(2)` call, non-blocking: sends `packets[i]` to `names[i]` for up to
/// `min(packets.len(), names.len(), MAX_BATCH)` packets. Returns how many the kernel took; an
/// error only if it took none.
pub(crate) fn send_many_to<B: AsRef<[u8]>, A: CSockAddr>(
    fd: BorrowedFd<'_>,
    packets: &[B],
    names: &[A],
) -> io::Result<usize> {
    let n = packets.len().min(names.len()).min(MAX_BATCH);
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_BATCH];
    // SAFETY: as in `recv_many`, all-zero bytes are a valid `mmsghdr`.
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..n {
        let p = packets[i].as_ref();
        iov[i] = libc::iovec {
            // The kernel only reads from a send iovec; the `*mut` is C's signature, not a write.
            iov_base: p.as_ptr().cast_mut().cast(),
            iov_len: p.len(),
        };
        // Likewise the kernel only reads a send's name.
        hdrs[i].msg_hdr.msg_name = std::ptr::from_ref(&names[i]).cast_mut().cast();
        hdrs[i].msg_hdr.msg_namelen = std::mem::size_of::<A>() as libc::socklen_t;
        hdrs[i].msg_hdr.msg_iov = &raw mut iov[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `hdrs[..n]` are valid `mmsghdr`s: each names `names[i]`, a C socket address
    // (`CSockAddr`: `sockaddr_in` or `sockaddr_ll`, whose size is what the kernel reads for
    // that family) borrowed for the whole call, and one iovec over `packets[i]`, also borrowed;
    // the kernel only reads them. `iov` and `hdrs` stay on this frame, unmoved, until after the
    // call. `n <= MAX_BATCH` fits `c_uint`.
    let rc = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(rc).map_err(|_| io::Error::last_os_error())
}

/// Linux `UDP_SEGMENT` and `UDP_GRO` (`include/uapi/linux/udp.h`; not in the libc crate for
/// glibc targets).
pub(crate) const UDP_SEGMENT: libc::c_int = 103;
pub(crate) const UDP_GRO: libc::c_int = 104;

/// Sets an `int` socket option.
pub(crate) fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `fd` is a live socket borrowed for the call; `optval` points to a `c_int` on our
    // stack that outlives the call and `optlen` is its exact size; the kernel copies the value
    // and keeps no pointer.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn sockaddr_v4(addr: std::net::SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

/// One non-blocking `sendmsg(2)` of `payload` to `dst` with a `UDP_SEGMENT` control message:
/// the kernel sends it as datagrams of `segment` bytes (the last may be shorter), with an
/// `IP_TOS` control message setting the whole TOS byte (DSCP and ECN) of every datagram.
pub(crate) fn send_segments(
    fd: BorrowedFd<'_>,
    payload: &[u8],
    segment: u16,
    tos: u8,
    dst: std::net::SocketAddrV4,
) -> io::Result<usize> {
    let mut name = sockaddr_v4(dst);
    let mut iov = libc::iovec {
        // The kernel only reads from a send iovec; `*mut` is C's signature, not a write.
        iov_base: payload.as_ptr().cast_mut().cast(),
        iov_len: payload.len(),
    };
    // u64s: aligned for `cmsghdr`; 64 bytes >= CMSG_SPACE(2) + CMSG_SPACE(4) (24 + 24 on
    // 64-bit Linux).
    let mut control = [0u64; 8];
    // SAFETY: all-zero bytes are a valid `msghdr` (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&raw mut name).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(2) + libc::CMSG_SPACE(4) } as _;
    // SAFETY: `msg.msg_control` points to `control`, zeroed, aligned for `cmsghdr` and larger
    // than `msg_controllen`, which covers exactly two messages: CMSG_FIRSTHDR returns its start
    // (non-null) and CMSG_NXTHDR the second header, which lies inside `msg_controllen` (it
    // checks that) and so is non-null; CMSG_DATA points inside each message, where unaligned
    // writes of 2 and 4 bytes fit.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&raw const msg);
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(2) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), segment);
        let c = libc::CMSG_NXTHDR(&raw const msg, c);
        if c.is_null() {
            return Err(io::Error::other("no room for the IP_TOS control message"));
        }
        (*c).cmsg_level = libc::IPPROTO_IP;
        (*c).cmsg_type = libc::IP_TOS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(
            libc::CMSG_DATA(c).cast::<libc::c_int>(),
            libc::c_int::from(tos),
        );
    }
    // SAFETY: `msg` and everything it points to (`name`, `iov` over `payload`, `control`) live
    // on this frame, unmoved, until the call returns; the kernel only reads them.
    let rc = unsafe { libc::sendmsg(fd.as_raw_fd(), &raw const msg, libc::MSG_DONTWAIT) };
    usize::try_from(rc).map_err(|_| io::Error::last_os_error())
}

/// One non-blocking `recvmsg(2)` into `buf`: returns the length, the source, and the segment
/// size of a `UDP_GRO`-coalesced read (0 when the read is one datagram). A datagram longer
/// than `buf` is consumed and reported as `InvalidData`.
pub(crate) fn recv_segments(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<(usize, std::net::SocketAddrV4, usize)> {
    let mut name = sockaddr_v4(std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: all-zero bytes are a valid `msghdr`.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&raw mut name).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points to `name`, one iovec over `buf` (borrowed mutably for the call, with
    // its true length) and `control` with its true size, all on this frame and unmoved; the
    // kernel writes only inside them.
    let rc = unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT) };
    let len = usize::try_from(rc).map_err(|_| io::Error::last_os_error())?;
    if msg.msg_flags & libc::MSG_TRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "UDP datagram truncated: buffer too small",
        ));
    }
    let mut segment = 0;
    // SAFETY: after recvmsg, `msg_control`/`msg_controllen` describe the control messages the
    // kernel wrote into `control`; CMSG_FIRSTHDR/CMSG_NXTHDR walk them within that length and
    // return null at the end; a UDP_GRO message carries an `int`, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == UDP_GRO {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                segment = usize::try_from(v).unwrap_or(0);
            }
            c = libc::CMSG_NXTHDR(&raw const msg, c);
        }
    }
    let from = std::net::SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(name.sin_addr.s_addr)),
        u16::from_be(name.sin_port),
    );
    Ok((len, from, segment))
}

#[cfg(test)]
mod tests {
    #[test]
    fn as_uninit_keeps_length_and_address() {
        let mut buf = [1u8, 2, 3];
        let p = buf.as_ptr();
        let u = super::as_uninit(&mut buf);
        assert_eq!(u.len(), 3);
        assert_eq!(u.as_ptr().cast::<u8>(), p);
    }
}
