//! The packet buffer of the inbound path: room for the largest IPv4 packet
//! with headroom in front, so that tunnelling a packet to its host writes the
//! outer header in place instead of copying the packet.

use std::fmt;

/// Bytes kept free in front of a received packet: an outer IPv4 header (20)
/// and a GRE header (4), rounded up.
pub const HEADROOM: usize = 32;

/// The largest IPv4 packet.
pub const MAX_PACKET: usize = 65_535;

/// A packet with headroom. The daemon receives into [`PacketBuf::receive_buffer`]
/// and calls [`PacketBuf::set_len`]; after [`super::DataPlane::inbound`],
/// [`PacketBuf::packet`] is what to send (the encapsulated packet for
/// [`super::Inbound::Tunnel`], the reassembled datagram for
/// [`super::Inbound::Local`]). One allocation of 64 KiB, reused.
pub struct PacketBuf {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

impl fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketBuf")
            .field("start", &self.start)
            .field("len", &self.len())
            .finish()
    }
}

impl Default for PacketBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketBuf {
    /// An empty buffer.
    pub fn new() -> PacketBuf {
        PacketBuf {
            data: vec![0; HEADROOM + MAX_PACKET].into_boxed_slice(),
            start: HEADROOM,
            end: HEADROOM,
        }
    }

    /// A buffer holding a copy of `packet` (at most [`MAX_PACKET`] bytes).
    pub fn from_packet(packet: &[u8]) -> PacketBuf {
        let mut buf = PacketBuf::new();
        buf.set_packet(packet);
        buf
    }

    /// Empties the buffer and returns the space to receive a packet into
    /// ([`MAX_PACKET`] bytes after the headroom).
    pub fn receive_buffer(&mut self) -> &mut [u8] {
        self.start = HEADROOM;
        self.end = HEADROOM;
        &mut self.data[HEADROOM..]
    }

    /// Sets the length of the packet just received (clamped to [`MAX_PACKET`]).
    pub fn set_len(&mut self, len: usize) {
        self.start = HEADROOM;
        self.end = HEADROOM + len.min(MAX_PACKET);
    }

    /// Sets the packet just received to `receive_buffer()[skip..len]`: the
    /// first `skip` bytes (a link-layer header the device prepended) are
    /// left out without a copy, and join the headroom. `skip > len` leaves
    /// the buffer empty.
    pub fn set_received(&mut self, skip: usize, len: usize) {
        let len = len.min(MAX_PACKET);
        self.start = HEADROOM + skip.min(len);
        self.end = HEADROOM + len;
    }

    /// Copies `packet` in (truncated to [`MAX_PACKET`] bytes).
    pub fn set_packet(&mut self, packet: &[u8]) {
        let n = packet.len().min(MAX_PACKET);
        self.receive_buffer()[..n].copy_from_slice(&packet[..n]);
        self.set_len(n);
    }

    /// The packet.
    pub fn packet(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// The packet, mutable.
    pub fn packet_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.end]
    }

    /// Length of the packet.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when there is no packet.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Drops bytes past `len` (link-layer padding).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.end = self.end.min(self.start + len);
    }

    /// Grows the packet by `n` bytes at the front, into the headroom, and
    /// returns them; `None` when the headroom is used up.
    pub(crate) fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        let start = self.start.checked_sub(n)?;
        self.start = start;
        Some(&mut self.data[start..start + n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_received_skips_a_link_header_and_keeps_the_headroom() {
        let mut b = PacketBuf::new();
        let rx = b.receive_buffer();
        rx[..14].fill(0xee);
        rx[14..18].copy_from_slice(&[0x45, 0, 0, 4]);
        b.set_received(14, 18);
        assert_eq!(b.packet(), &[0x45, 0, 0, 4]);
        // The skipped bytes became headroom: an outer header still fits.
        assert_eq!(
            b.push_front(HEADROOM + 14).map(|h| h.len()),
            Some(HEADROOM + 14)
        );
        b.set_received(20, 10);
        assert!(b.is_empty());
    }
}
