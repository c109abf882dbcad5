//! The crate's `unsafe`, kept in one short file so it can be audited at a glance. Each block says
//! why it is sound. Nothing here knows about protocols.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};

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
