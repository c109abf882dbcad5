//! The SPIs of one public address: leased and quarantined runs in a B-tree.
//!
//! The SPI space is 2^32 wide, so there is no bitmap: a run map
//! (`first -> (last, owner)`, owner [`HELD`] for quarantine) and a next-fit
//! cursor. The cursor only moves forward, so a freed SPI is offered again only
//! after the cursor has swept the whole range: never-used SPIs go first.

use std::collections::BTreeMap;

use crate::BindId;

/// The owner of a quarantined run (bind ID 0 is never allocated).
pub(crate) const HELD: BindId = BindId(0);

/// One address's SPI state.
#[derive(Debug, Default)]
pub(crate) struct SpiPool {
    runs: BTreeMap<u32, (u32, BindId)>,
    cursor: u32,
    /// SPIs leased or held.
    used: u64,
}

impl SpiPool {
    /// SPIs leased or held on this address.
    pub(crate) fn used(&self) -> u64 {
        self.used
    }

    /// The run overlapping `[a, b]`, if any: (first, last, owner).
    pub(crate) fn overlap(&self, a: u32, b: u32) -> Option<(u32, u32, BindId)> {
        let (&first, &(last, owner)) = self.runs.range(..=b).next_back()?;
        (last >= a).then_some((first, last, owner))
    }

    /// The binding leasing `spi`, if any.
    pub(crate) fn owner(&self, spi: u32) -> Option<BindId> {
        self.overlap(spi, spi)
            .map(|(_, _, o)| o)
            .filter(|&o| o != HELD)
    }

    /// The first SPI of a free gap of `n` within `[from, hi]`.
    fn find_gap(&self, from: u64, hi: u64, n: u64) -> Option<u64> {
        let mut s = from;
        if let Some((_, &(last, _))) = self.runs.range(..=u32::try_from(s).ok()?).next_back()
            && u64::from(last) >= s
        {
            s = u64::from(last) + 1;
        }
        loop {
            let end = s + n - 1;
            if end > hi {
                return None;
            }
            let (s32, end32) = (u32::try_from(s).ok()?, u32::try_from(end).ok()?);
            match self.runs.range(s32..=end32).next() {
                None => return Some(s),
                Some((_, &(last, _))) => s = u64::from(last) + 1,
            }
        }
    }

    /// The first SPI of `n` contiguous free SPIs in `[lo, hi]`, next-fit from
    /// the cursor. Does not take them.
    pub(crate) fn find_contiguous(&self, lo: u32, hi: u32, n: u32) -> Option<u32> {
        if n == 0 {
            return None;
        }
        let (lo, hi, n) = (u64::from(lo), u64::from(hi), u64::from(n));
        let start = u64::from(self.cursor).clamp(lo, hi);
        let s = self
            .find_gap(start, hi, n)
            .or_else(|| self.find_gap(lo, hi, n))?;
        u32::try_from(s).ok()
    }

    /// `n` free SPIs in `[lo, hi]`, ascending, not necessarily contiguous.
    pub(crate) fn find_scattered(&self, lo: u32, hi: u32, n: u32) -> Option<Vec<u32>> {
        let mut out = Vec::new();
        let mut s = u64::from(lo);
        let mut gaps: Vec<(u64, u64)> = Vec::new();
        for (&first, &(last, _)) in self.runs.range(lo..=hi) {
            if u64::from(first) > s {
                gaps.push((s, u64::from(first) - 1));
            }
            s = u64::from(last) + 1;
        }
        gaps.push((s, u64::from(hi)));
        for (a, b) in gaps {
            let mut v = a;
            while v <= b && out.len() < n as usize {
                out.push(u32::try_from(v).ok()?);
                v += 1;
            }
        }
        (out.len() == n as usize).then_some(out)
    }

    /// Marks `[first, last]` (free) as leased to `bind`, or held if `bind` is
    /// [`HELD`].
    pub(crate) fn take(&mut self, first: u32, last: u32, bind: BindId) {
        self.runs.insert(first, (last, bind));
        self.used += u64::from(last - first) + 1;
        if bind != HELD {
            self.cursor = last.saturating_add(1);
        }
    }

    /// Moves the leased run starting at `first` to quarantine.
    pub(crate) fn disown(&mut self, first: u32) {
        if let Some(run) = self.runs.get_mut(&first) {
            run.1 = HELD;
        }
    }

    /// Ends the quarantine of the run starting at `first`.
    pub(crate) fn release(&mut self, first: u32) {
        if let Some((last, _)) = self.runs.remove(&first) {
            self.used -= u64::from(last - first) + 1;
        }
    }

    /// Heap bytes, roughly (B-tree entries of 4 + 8 bytes, ~2/3 full nodes).
    pub(crate) fn heap_estimate(&self) -> usize {
        self.runs.len() * (12 + 16 / 7) * 3 / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_fit_skips_held_and_wraps() {
        let mut pool = SpiPool::default();
        assert_eq!(pool.find_contiguous(256, 265, 4), Some(256));
        pool.take(256, 259, BindId(1));
        assert_eq!(pool.owner(258), Some(BindId(1)));
        assert_eq!(pool.find_contiguous(256, 265, 4), Some(260));
        pool.take(260, 263, BindId(2));
        pool.disown(256);
        assert_eq!(pool.owner(257), None);
        assert_eq!(pool.overlap(257, 257), Some((256, 259, HELD)));
        // Two left at the top; a block of 3 only after the hold ends.
        assert_eq!(pool.find_contiguous(256, 265, 3), None);
        assert_eq!(pool.find_contiguous(256, 265, 2), Some(264));
        pool.release(256);
        assert_eq!(pool.used(), 4);
        assert_eq!(pool.find_contiguous(256, 265, 3), Some(256));
        assert_eq!(
            pool.find_scattered(256, 265, 6),
            Some(vec![256, 257, 258, 259, 264, 265])
        );
        assert_eq!(pool.find_scattered(256, 265, 7), None);
    }

    #[test]
    fn top_of_space() {
        let mut pool = SpiPool::default();
        let hi = u32::MAX;
        assert_eq!(pool.find_contiguous(hi - 1, hi, 2), Some(hi - 1));
        pool.take(hi - 1, hi, BindId(3));
        assert_eq!(pool.find_contiguous(hi - 1, hi, 1), None);
        assert_eq!(pool.owner(hi), Some(BindId(3)));
        assert_eq!(pool.find_scattered(hi - 1, hi, 1), None);
    }
}
