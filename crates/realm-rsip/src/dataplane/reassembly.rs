//! Reassembly of inbound fragments (RFC 3102 s3.1: "The RSIP gateway MUST
//! reassemble all incoming packet fragments from the public network in order
//! to be able to route and tunnel them to the proper host. [...] an RSIP
//! gateway MUST timeout fragments that are never fully reassembled.").
//!
//! Datagrams are keyed by (source, destination, protocol, identification)
//! (RFC 791 s3.2). Rules:
//! - A fragment other than the last must carry a non-zero multiple of 8
//!   bytes, and no datagram may exceed 65535 bytes (RFC 791 s3.2).
//! - An exact duplicate (same offset and length) is ignored and counted. Any
//!   other overlap drops the whole datagram: overlapping fragments are an
//!   attack (evasion, RFC 1858 s4) and no correct sender makes them. Linux
//!   does the same for IPv4 since 4.19, after RFC 5722 for IPv6.
//! - A datagram that is not complete `timeout` after its first fragment
//!   arrived is dropped (and counted).
//! - Memory: each datagram is charged its highest fragment end plus a fixed
//!   overhead; a fragment that would take one source address past
//!   `max_per_source` bytes, or all sources past `max_total`, drops its
//!   datagram. At most `max_fragments` fragments per datagram.
//! - The reassembled datagram takes the header of the first fragment with MF
//!   and offset cleared, total length and checksum rewritten (RFC 791 s3.2).
//!
//! Work per fragment is bounded by `max_fragments`; expiry runs in bounded steps.

use std::collections::VecDeque;
use std::time::Duration;

use realm_lease::Timestamp;
use realm_wire::ipv4;
use rustc_hash::FxHashMap;

use super::buffer::{MAX_PACKET, PacketBuf};
use super::counters::{DropReason, ReassemblyCounters};

/// Bytes charged per datagram on top of its data (the bookkeeping).
const OVERHEAD: usize = 256;
/// Spare buffers kept for reuse.
const POOL: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: u32,
    dst: u32,
    ident: u16,
    protocol: u8,
}

#[derive(Debug)]
struct Datagram {
    data: Vec<u8>,
    /// Received [start, end) byte ranges, sorted, disjoint.
    ranges: Vec<(u32, u32)>,
    received: u32,
    /// Payload length, once the last fragment is in.
    total: Option<u32>,
    header: [u8; ipv4::MAX_HEADER_LEN],
    /// Length of `header`; 0 until the first fragment is in.
    header_len: usize,
    deadline: Timestamp,
    charged: usize,
}

/// What became of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Kept; the datagram is not complete.
    Buffered,
    /// The buffer now holds the whole datagram.
    Complete,
    /// Dropped, with its datagram for every reason but an invalid lone fragment.
    Dropped(DropReason),
}

/// Reassembly limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) timeout: Duration,
    pub(crate) max_total: usize,
    pub(crate) max_per_source: usize,
    pub(crate) max_fragments: usize,
}

#[derive(Debug)]
pub(crate) struct Reassembler {
    map: FxHashMap<Key, Datagram>,
    queue: VecDeque<(Timestamp, Key)>,
    per_source: FxHashMap<u32, usize>,
    total: usize,
    pool: Vec<Vec<u8>>,
    limits: Limits,
}

impl Reassembler {
    pub(crate) fn new(limits: Limits) -> Reassembler {
        Reassembler {
            map: FxHashMap::default(),
            queue: VecDeque::new(),
            per_source: FxHashMap::default(),
            total: 0,
            pool: Vec::new(),
            limits,
        }
    }

    fn discard(&mut self, key: &Key) {
        if let Some(mut d) = self.map.remove(key) {
            self.total -= d.charged;
            if let Some(n) = self.per_source.get_mut(&key.src) {
                *n -= d.charged;
                if *n == 0 {
                    self.per_source.remove(&key.src);
                }
            }
            if self.pool.len() < POOL {
                d.data.clear();
                self.pool.push(d.data);
            }
        }
    }

    fn gauges(&self, counters: &mut ReassemblyCounters) {
        counters.datagrams = self.map.len() as u64;
        counters.bytes = self.total as u64;
    }

    /// Takes the fragment in `buf` (a checked IPv4 packet, truncated to its
    /// total length). On [`Outcome::Complete`] `buf` holds the datagram.
    pub(crate) fn push(
        &mut self,
        now: Timestamp,
        buf: &mut PacketBuf,
        counters: &mut ReassemblyCounters,
    ) -> Outcome {
        counters.fragments += 1;
        let outcome = self.push_inner(now, buf, counters);
        self.gauges(counters);
        outcome
    }

    fn push_inner(
        &mut self,
        now: Timestamp,
        buf: &mut PacketBuf,
        counters: &mut ReassemblyCounters,
    ) -> Outcome {
        let Ok(ip) = ipv4::Packet::new_checked(buf.packet()) else {
            return Outcome::Dropped(DropReason::Malformed);
        };
        let key = Key {
            src: ip.src_addr().to_bits(),
            dst: ip.dst_addr().to_bits(),
            ident: ip.ident(),
            protocol: u8::from(ip.protocol()),
        };
        let header_len = usize::from(ip.header_len());
        let payload = ip.payload();
        let len = payload.len() as u32;
        let start = u32::from(ip.frag_offset());
        let end = start + len;
        let more = ip.more_frags();
        // RFC 791 s3.2: every fragment but the last carries a multiple of 8
        // bytes; the datagram fits in 65535 bytes.
        if (more && (len == 0 || !len.is_multiple_of(8))) || header_len + end as usize > MAX_PACKET
        {
            self.discard(&key);
            return Outcome::Dropped(DropReason::FragmentInvalid);
        }
        if !self.map.contains_key(&key) {
            let data = self.pool.pop().unwrap_or_default();
            self.map.insert(
                key,
                Datagram {
                    data,
                    ranges: Vec::new(),
                    received: 0,
                    total: None,
                    header: [0; ipv4::MAX_HEADER_LEN],
                    header_len: 0,
                    deadline: now + self.limits.timeout,
                    charged: 0,
                },
            );
            self.queue.push_back((now + self.limits.timeout, key));
            // Completed and dropped datagrams leave their queue entry until
            // its deadline; keep the queue within a small multiple of the live set.
            if self.queue.len() > 2 * self.map.len() + 1024 {
                let map = &self.map;
                self.queue
                    .retain(|(t, k)| map.get(k).is_some_and(|d| d.deadline == *t));
            }
        }
        let limits = self.limits;
        let Some(d) = self.map.get_mut(&key) else {
            return Outcome::Dropped(DropReason::Malformed);
        };
        // The last fragment fixes the length; nothing may lie beyond it.
        let mut invalid = match d.total {
            Some(total) => end > total || (!more && end != total),
            None => !more && d.ranges.last().is_some_and(|&(_, e)| e > end),
        };
        invalid |= d.ranges.len() >= limits.max_fragments;
        if invalid {
            self.discard(&key);
            return Outcome::Dropped(DropReason::FragmentInvalid);
        }
        let at = d.ranges.partition_point(|&(_, e)| e <= start);
        if let Some(&(s, e)) = d.ranges.get(at)
            && s < end
        {
            if s == start && e == end {
                counters.duplicates += 1;
                return Outcome::Buffered;
            }
            counters.overlaps += 1;
            self.discard(&key);
            return Outcome::Dropped(DropReason::FragmentOverlap);
        }
        let charge = (end as usize).max(d.data.len()) + OVERHEAD;
        let delta = charge - d.charged;
        let source = self.per_source.get(&key.src).copied().unwrap_or(0);
        if source + delta > limits.max_per_source || self.total + delta > limits.max_total {
            counters.memory_drops += 1;
            self.discard(&key);
            return Outcome::Dropped(DropReason::FragmentMemory);
        }
        d.charged = charge;
        self.total += delta;
        *self.per_source.entry(key.src).or_insert(0) += delta;
        if d.data.len() < end as usize {
            d.data.resize(end as usize, 0);
        }
        d.data[start as usize..end as usize].copy_from_slice(payload);
        d.ranges.insert(at, (start, end));
        d.received += len;
        if !more {
            d.total = Some(end);
        }
        if start == 0 {
            d.header[..header_len].copy_from_slice(&buf.packet()[..header_len]);
            d.header_len = header_len;
        }
        let Some(total) = d.total else {
            return Outcome::Buffered;
        };
        if d.received != total || d.header_len == 0 {
            return Outcome::Buffered;
        }
        // Complete: no overlaps and every end within `total`, so the ranges
        // cover [0, total).
        let hl = d.header_len;
        let total = total as usize;
        let out = buf.receive_buffer();
        out[..hl].copy_from_slice(&d.header[..hl]);
        out[hl..hl + total].copy_from_slice(&d.data[..total]);
        buf.set_len(hl + total);
        let mut header = ipv4::Packet::new_unchecked(buf.packet_mut());
        header.set_total_len((hl + total) as u16);
        header.set_more_frags(false);
        header.set_frag_offset(0);
        header.fill_checksum();
        counters.reassembled += 1;
        self.discard(&key);
        Outcome::Complete
    }

    /// Drops datagrams whose time is up, at most `budget` queue entries.
    pub(crate) fn expire(
        &mut self,
        now: Timestamp,
        budget: usize,
        counters: &mut ReassemblyCounters,
    ) {
        for _ in 0..budget {
            match self.queue.front() {
                Some(&(deadline, key)) if deadline <= now => {
                    self.queue.pop_front();
                    if self.map.get(&key).is_some_and(|d| d.deadline == deadline) {
                        counters.timeouts += 1;
                        self.discard(&key);
                    }
                }
                _ => break,
            }
        }
        self.gauges(counters);
    }

    /// When the oldest datagram times out.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        self.queue.front().map(|&(t, _)| t)
    }
}
