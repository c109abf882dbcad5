//! The ports of one public address: who holds which, and which are free.
//!
//! A 65,536-bit bitmap (8 KiB) marks every port that may not be granted now:
//! not leasable by policy, leased, or in TIME_WAIT quarantine. Leased ports are
//! also indexed by run in a B-tree (`first -> (last, bind)`) for the data
//! plane's (address, port) lookup. Free ports are handed out first-in
//! first-out: the reuse queue starts with the leasable ranges in ascending
//! order (never-used ports first) and gets each run of ports back at the end
//! when its quarantine ends, so the port that has been free longest is reused
//! first (RFC 3102 6.1). Queue entries are hints: the bitmap is the truth, and
//! stale parts are skipped, trimmed and compacted away.

use std::collections::{BTreeMap, VecDeque};

use crate::BindId;

const WORDS: usize = 1 << 10;

/// How many queue entries a contiguous-block search looks at before falling
/// back to a bitmap sweep.
const QUEUE_SCAN: usize = 64;

/// One address's port state. Created on the address's first port lease.
pub(crate) struct PortPool {
    /// Bit set: not grantable now (policy, leased or held).
    busy: Box<[u64; WORDS]>,
    /// Leased runs: first port -> (last port, binding).
    owners: BTreeMap<u16, (u16, BindId)>,
    /// Free-port hints, oldest first: (first, count); count 0 is a tombstone.
    reuse: VecDeque<(u16, u16)>,
    /// Compact `reuse` when it grows past this.
    compact_at: usize,
    /// Grantable ports.
    free: u32,
    /// Where the fallback sweep for a contiguous block resumes.
    cursor: u32,
}

impl std::fmt::Debug for PortPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortPool")
            .field("free", &self.free)
            .field("leased_runs", &self.owners.len())
            .field("reuse_entries", &self.reuse.len())
            .finish_non_exhaustive()
    }
}

fn bit(p: u32) -> (usize, u64) {
    ((p >> 6) as usize, 1u64 << (p & 63))
}

impl PortPool {
    /// A pool where exactly the ports of `leasable` (sorted, disjoint,
    /// inclusive, no port 0) are free.
    pub(crate) fn new(leasable: &[(u16, u16)]) -> PortPool {
        let mut pool = PortPool {
            busy: Box::new([u64::MAX; WORDS]),
            owners: BTreeMap::new(),
            reuse: VecDeque::new(),
            compact_at: 64,
            free: 0,
            cursor: 1,
        };
        for &(first, last) in leasable {
            pool.clear_range(u32::from(first), u32::from(last));
            pool.free += u32::from(last) - u32::from(first) + 1;
            pool.push_reuse(first, last);
        }
        pool.compact_at = pool.compact_at.max(2 * pool.reuse.len());
        pool
    }

    /// Grantable ports.
    pub(crate) fn free(&self) -> u32 {
        self.free
    }

    fn is_busy(&self, p: u32) -> bool {
        let (w, m) = bit(p);
        self.busy[w] & m != 0
    }

    fn set_range(&mut self, first: u32, last: u32) {
        self.fill_range(first, last, true);
    }

    fn clear_range(&mut self, first: u32, last: u32) {
        self.fill_range(first, last, false);
    }

    /// Sets (`busy`) or clears the bits of `first..=last`, a word at a time:
    /// a fresh address's pool clears up to 65,535 bits, a large block sets
    /// thousands.
    fn fill_range(&mut self, first: u32, last: u32, busy: bool) {
        let mut p = first;
        while p <= last {
            let (w, low) = bit(p);
            let n = (64 - (p & 63)).min(last - p + 1);
            // `n` bits from `low` up: all ones above `low`, cut to `n`.
            let mask = if n == 64 {
                u64::MAX
            } else {
                low.wrapping_mul((1u64 << n) - 1)
            };
            if busy {
                self.busy[w] |= mask;
            } else {
                self.busy[w] &= !mask;
            }
            p += n;
        }
    }

    /// The first port in `[from, to]` whose bit in `busy` equals `want_busy`.
    fn next_with(&self, from: u32, to: u32, want_busy: bool) -> Option<u32> {
        if from > to || to > u32::from(u16::MAX) {
            return None;
        }
        let mut w = (from >> 6) as usize;
        let word = |w: usize| {
            if want_busy {
                self.busy[w]
            } else {
                !self.busy[w]
            }
        };
        let mut bits = word(w) & (u64::MAX << (from & 63));
        loop {
            if bits != 0 {
                let p = ((w as u32) << 6) | bits.trailing_zeros();
                return (p <= to).then_some(p);
            }
            w += 1;
            if w >= WORDS || ((w as u32) << 6) > to {
                return None;
            }
            bits = word(w);
        }
    }

    /// The first free port in `[from, to]`.
    fn next_free(&self, from: u32, to: u32) -> Option<u32> {
        self.next_with(from, to, false)
    }

    /// The first port of `n` contiguous free ports within `[from, to]`.
    fn find_run(&self, from: u32, to: u32, n: u32) -> Option<u32> {
        let mut p = from;
        loop {
            let s = self.next_free(p, to)?;
            let end = s + n - 1;
            if end > to {
                return None;
            }
            match self.next_with(s, end, true) {
                None => return Some(s),
                Some(b) => p = b + 1,
            }
        }
    }

    /// Whether every port of `[first, last]` is free.
    #[cfg(test)]
    pub(crate) fn range_free(&self, first: u16, last: u16) -> bool {
        self.next_with(u32::from(first), u32::from(last), true)
            .is_none()
    }

    /// Whether `port` is free.
    pub(crate) fn port_free(&self, port: u16) -> bool {
        !self.is_busy(u32::from(port))
    }

    /// The binding holding `port`, if it is leased.
    pub(crate) fn owner(&self, port: u16) -> Option<BindId> {
        let (_, &(last, bind)) = self.owners.range(..=port).next_back()?;
        (port <= last).then_some(bind)
    }

    fn push_reuse(&mut self, first: u16, last: u16) {
        // A run of 65,536 ports cannot occur (port 0 is never leasable), so
        // the count fits a u16; split defensively anyway.
        let mut f = u32::from(first);
        while f <= u32::from(last) {
            let count = (u32::from(last) - f + 1).min(u32::from(u16::MAX));
            if let (Ok(f16), Ok(c16)) = (u16::try_from(f), u16::try_from(count)) {
                self.reuse.push_back((f16, c16));
            }
            f += count;
        }
    }

    fn entry_bounds(entry: (u16, u16)) -> Option<(u32, u32)> {
        let (first, count) = entry;
        (count > 0).then(|| (u32::from(first), u32::from(first) + u32::from(count) - 1))
    }

    /// Drops busy ports from the head of the reuse queue.
    fn trim_front(&mut self) {
        while let Some(&entry) = self.reuse.front() {
            let Some((first, last)) = Self::entry_bounds(entry) else {
                self.reuse.pop_front();
                continue;
            };
            match self.next_free(first, last) {
                None => {
                    self.reuse.pop_front();
                }
                Some(s) => {
                    if let (Some(front), Ok(s16), Ok(c16)) = (
                        self.reuse.front_mut(),
                        u16::try_from(s),
                        u16::try_from(last - s + 1),
                    ) {
                        *front = (s16, c16);
                    }
                    return;
                }
            }
        }
    }

    /// The first port of `n` contiguous free ports, preferring the ports free
    /// longest. Does not take them.
    pub(crate) fn find_contiguous(&mut self, n: u32) -> Option<u16> {
        if n == 0 || n > self.free {
            return None;
        }
        self.trim_front();
        for &entry in self.reuse.iter().take(QUEUE_SCAN) {
            if let Some((first, last)) = Self::entry_bounds(entry)
                && let Some(p) = self.find_run(first, last, n)
            {
                return u16::try_from(p).ok();
            }
        }
        // Fragmented queue head: sweep the bitmap from the cursor, then from 1.
        let max = u32::from(u16::MAX);
        let p = self
            .find_run(self.cursor, max, n)
            .or_else(|| self.find_run(1, max, n))?;
        u16::try_from(p).ok()
    }

    /// `n` free ports, not necessarily contiguous, oldest-free first,
    /// ascending. Does not take them.
    pub(crate) fn find_scattered(&mut self, n: u32) -> Option<Vec<u16>> {
        if n == 0 || n > self.free {
            return None;
        }
        self.trim_front();
        let mut picked = vec![0u64; WORDS];
        let mut out = Vec::with_capacity(n as usize);
        let sources = self.reuse.iter().filter_map(|&e| Self::entry_bounds(e));
        // Every free port is in some queue entry; the sweep from 1 is a
        // belt-and-braces fallback.
        for (first, last) in sources.chain(std::iter::once((1, u32::from(u16::MAX)))) {
            let mut p = first;
            while out.len() < n as usize {
                let Some(s) = self.next_free(p, last) else {
                    break;
                };
                let (w, m) = bit(s);
                if picked[w] & m == 0 {
                    picked[w] |= m;
                    out.push(u16::try_from(s).ok()?);
                }
                p = s + 1;
            }
            if out.len() == n as usize {
                out.sort_unstable();
                return Some(out);
            }
        }
        None
    }

    /// Leases the free ports `[first, last]` to `bind`.
    pub(crate) fn take(&mut self, first: u16, last: u16, bind: BindId) {
        self.set_range(u32::from(first), u32::from(last));
        self.owners.insert(first, (last, bind));
        self.free -= u32::from(last) - u32::from(first) + 1;
        self.cursor = (u32::from(last) + 1).min(u32::from(u16::MAX));
        self.trim_front();
    }

    /// Marks the ports `[first, last]` as held (quarantined, no owner).
    pub(crate) fn hold(&mut self, first: u16, last: u16) {
        self.set_range(u32::from(first), u32::from(last));
        self.free -= u32::from(last) - u32::from(first) + 1;
    }

    /// Moves the leased run starting at `first` to quarantine: no owner, still
    /// busy.
    pub(crate) fn disown(&mut self, first: u16) {
        self.owners.remove(&first);
    }

    /// Ends the quarantine of `[first, last]`: free again, queued last.
    pub(crate) fn release(&mut self, first: u16, last: u16) {
        self.clear_range(u32::from(first), u32::from(last));
        self.free += u32::from(last) - u32::from(first) + 1;
        self.push_reuse(first, last);
        if self.reuse.len() > self.compact_at {
            self.compact();
        }
    }

    /// Rebuilds the reuse queue: drops busy ports and duplicates, keeps order.
    fn compact(&mut self) {
        let mut seen = vec![0u64; WORDS];
        let old = std::mem::take(&mut self.reuse);
        let mut runs: Vec<(u16, u16)> = Vec::new();
        for (first, last) in old.into_iter().filter_map(Self::entry_bounds) {
            let mut p = first;
            while let Some(s) = self.next_free(p, last) {
                let (w, m) = bit(s);
                if seen[w] & m == 0 {
                    seen[w] |= m;
                    if let Ok(s16) = u16::try_from(s) {
                        match runs.last_mut() {
                            Some((_, l)) if u32::from(*l) + 1 == s => *l = s16,
                            _ => runs.push((s16, s16)),
                        }
                    }
                }
                p = s + 1;
            }
        }
        for (first, last) in runs {
            self.push_reuse(first, last);
        }
        self.compact_at = 64.max(2 * self.reuse.len());
    }

    /// Heap bytes, roughly: the bitmap, the owner B-tree and the queue.
    pub(crate) fn heap_estimate(&self) -> usize {
        // A B-tree leaf holds up to 11 entries and is on average about 2/3
        // full; each entry here is 2 + 8 bytes, plus ~16 bytes per node.
        let btree = self.owners.len() * (10 + 16 / 7) * 3 / 2;
        WORDS * 8 + btree + self.reuse.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Word-at-a-time filling sets exactly the bits a port-by-port loop
        /// would, whatever the range's alignment.
        #[test]
        fn fill_range_matches_bit_by_bit(
            first in 0u32..=65535,
            len in 0u32..300,
            busy: bool,
            start_busy: bool,
        ) {
            let last = (first + len).min(65535);
            let leasable: &[(u16, u16)] = if start_busy { &[] } else { &[(1, 65535)] };
            let mut pool = PortPool::new(leasable);
            let mut expect = pool.busy.clone();
            for p in first..=last {
                let (w, m) = bit(p);
                if busy { expect[w] |= m } else { expect[w] &= !m }
            }
            pool.fill_range(first, last, busy);
            proptest::prop_assert!(pool.busy == expect);
        }
    }

    const B: BindId = BindId(7);

    #[test]
    fn fresh_pool_grants_ascending_and_reuses_oldest_first() {
        let mut pool = PortPool::new(&[(10, 19)]);
        assert_eq!(pool.free(), 10);
        assert!(pool.port_free(10) && !pool.port_free(9) && !pool.port_free(20));
        let a = pool.find_contiguous(3).unwrap();
        assert_eq!(a, 10);
        pool.take(10, 12, B);
        assert_eq!(pool.owner(11), Some(B));
        assert_eq!(pool.owner(13), None);
        pool.take(13, 13, BindId(8));
        // Free 11..=12's run (quarantine, then release): reused only after
        // the never-used 14..=19.
        pool.disown(10);
        assert_eq!(pool.owner(10), None);
        assert!(!pool.port_free(10));
        pool.release(10, 12);
        let mut order = Vec::new();
        while let Some(p) = pool.find_contiguous(1) {
            pool.take(p, p, B);
            order.push(p);
        }
        assert_eq!(order, vec![14, 15, 16, 17, 18, 19, 10, 11, 12]);
        assert_eq!(pool.free(), 0);
    }

    #[test]
    fn contiguous_block_found_past_fragmentation() {
        let mut pool = PortPool::new(&[(1, 100)]);
        // Take every other port of 1..=20, then ask for 5 contiguous.
        for p in (1..=20).step_by(2) {
            pool.take(p, p, B);
        }
        assert_eq!(pool.find_contiguous(2), Some(20));
        assert!(pool.range_free(20, 25));
        assert!(!pool.range_free(19, 25));
        pool.take(20, 100, B);
        assert_eq!(pool.find_contiguous(2), None);
        assert_eq!(pool.find_scattered(3), Some(vec![2, 4, 6]));
        assert_eq!(pool.find_scattered(11), None);
    }

    #[test]
    fn compaction_keeps_order_and_drops_duplicates() {
        let mut pool = PortPool::new(&[(1, 2000)]);
        for p in 1..=2000 {
            pool.take(p, p, B);
        }
        for p in (1..=2000).rev() {
            pool.disown(p);
            pool.release(p, p);
        }
        assert!(pool.reuse.len() <= 2000);
        assert_eq!(pool.free(), 2000);
        // Oldest first: 2000 was released first.
        assert_eq!(pool.find_contiguous(1), Some(2000));
        assert_eq!(pool.find_scattered(2), Some(vec![1999, 2000]));
    }

    #[test]
    fn top_port_and_full_range() {
        let mut pool = PortPool::new(&[(1, u16::MAX)]);
        assert_eq!(pool.free(), 65535);
        pool.take(1, 65534, B);
        assert_eq!(pool.find_contiguous(1), Some(65535));
        assert_eq!(pool.find_contiguous(2), None);
        pool.take(65535, 65535, B);
        assert_eq!(pool.owner(65535), Some(B));
        assert_eq!(pool.find_contiguous(1), None);
    }
}
