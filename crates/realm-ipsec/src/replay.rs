//! Anti-replay window (RFC 2401 Appendix C semantics, RFC 4303 s3.4.3 and
//! Appendix A for extended sequence numbers).
//!
//! Use in two steps, as RFC 4303 s3.4.3 requires: [`ReplayWindow::check`]
//! BEFORE the ICV is verified (cheap rejection, no state change), then
//! [`ReplayWindow::update`] only AFTER the ICV verified.
//!
//! Limit: at most [`MAX_WINDOW`] packets (a bitmap of 64 words).

/// The largest window Realm accepts, in packets.
pub const MAX_WINDOW: u32 = 4096;
/// The smallest non-zero window (RFC 4303 s3.4.3: 32 MUST be supported).
pub const MIN_WINDOW: u32 = 32;

/// Sliding window over the highest authenticated sequence number.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// Window size W in packets (a multiple of 64 internally: `bits`).
    size: u64,
    /// Bitmap, ring-indexed by `seq % bits`.
    bitmap: Vec<u64>,
    bits: u64,
    /// Highest authenticated sequence number T (64-bit, full ESN value).
    top: u64,
    esn: bool,
}

impl ReplayWindow {
    /// A window of `size` packets (`MIN_WINDOW..=MAX_WINDOW`; the caller checks).
    pub fn new(size: u32, esn: bool) -> Self {
        let size = u64::from(size.clamp(MIN_WINDOW, MAX_WINDOW));
        let words = size.div_ceil(64);
        Self {
            size,
            bitmap: vec![0; words as usize],
            bits: words * 64,
            top: 0,
            esn,
        }
    }

    /// Window size in packets.
    pub fn size(&self) -> u32 {
        self.size as u32
    }

    /// Highest sequence number authenticated so far.
    pub fn top(&self) -> u64 {
        self.top
    }

    /// RFC 4303 Appendix A2.2: infers the full 64-bit sequence number from
    /// the low 32 bits received (ESN), or widens it (no ESN). `None` when the
    /// inferred value would be negative, which can only be a replay.
    pub fn infer(&self, seq_low: u32) -> Option<u64> {
        if !self.esn {
            return Some(u64::from(seq_low));
        }
        let w = self.size as u32;
        let tl = self.top as u32;
        let th = (self.top >> 32) as u32;
        let seq_hi = if tl >= w - 1 {
            // Case A: window within one sequence number subspace.
            if seq_low >= tl - (w - 1) {
                Some(th)
            } else {
                th.checked_add(1)
            }
        } else {
            // Case B: window spans two subspaces.
            if seq_low >= tl.wrapping_sub(w - 1) {
                th.checked_sub(1)
            } else {
                Some(th)
            }
        };
        seq_hi.map(|h| (u64::from(h) << 32) | u64::from(seq_low))
    }

    /// Pre-check before the ICV (no state change). Returns the full sequence
    /// number to use for the ICV (ESN high bits) and for [`Self::update`].
    pub fn check(&self, seq_low: u32) -> Option<u64> {
        let seq = self.infer(seq_low)?;
        // RFC 4303 s3.3.3: the first packet sent has sequence number 1; 0 never is.
        if seq == 0 {
            return None;
        }
        if seq > self.top {
            return Some(seq);
        }
        if self.top - seq >= self.size {
            return None; // left of the window
        }
        if self.bit(seq) { None } else { Some(seq) }
    }

    /// Records `seq` after its ICV verified (RFC 4303 s3.4.3: only then).
    /// Re-checks, so a racing duplicate still fails. Returns false on replay.
    pub fn update(&mut self, seq: u64) -> bool {
        if seq == 0 {
            return false;
        }
        if seq > self.top {
            let advance = seq - self.top;
            if advance >= self.bits {
                self.bitmap.iter_mut().for_each(|w| *w = 0);
            } else {
                // Clear the slots of top+1 ..= seq-1 (and seq itself, set below).
                for s in self.top + 1..=seq {
                    self.clear_bit(s);
                }
            }
            self.top = seq;
            self.set_bit(seq);
            return true;
        }
        if self.top - seq >= self.size || self.bit(seq) {
            return false;
        }
        self.set_bit(seq);
        true
    }

    fn slot(&self, seq: u64) -> (usize, u64) {
        let i = seq % self.bits;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn bit(&self, seq: u64) -> bool {
        let (w, m) = self.slot(seq);
        self.bitmap.get(w).is_some_and(|x| x & m != 0)
    }

    fn set_bit(&mut self, seq: u64) {
        let (w, m) = self.slot(seq);
        if let Some(x) = self.bitmap.get_mut(w) {
            *x |= m;
        }
    }

    fn clear_bit(&mut self, seq: u64) {
        let (w, m) = self.slot(seq);
        if let Some(x) = self.bitmap.get_mut(w) {
            *x &= !m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(w: &mut ReplayWindow, low: u32) -> bool {
        match w.check(low) {
            Some(s) => w.update(s),
            None => false,
        }
    }

    #[test]
    fn duplicates_and_old_dropped_out_of_order_accepted() {
        let mut w = ReplayWindow::new(64, false);
        assert!(!accept(&mut w, 0));
        assert!(accept(&mut w, 1));
        assert!(!accept(&mut w, 1));
        assert!(accept(&mut w, 100));
        assert!(accept(&mut w, 50)); // inside window (100-63 ..= 100)
        assert!(!accept(&mut w, 50));
        assert!(accept(&mut w, 37));
        assert!(!accept(&mut w, 36)); // left of the window
        assert!(!accept(&mut w, 100));
        assert!(accept(&mut w, 99));
        assert_eq!(w.top(), 100);
    }

    #[test]
    fn check_does_not_change_state() {
        let w = ReplayWindow::new(32, false);
        assert_eq!(w.check(5), Some(5));
        assert_eq!(w.check(5), Some(5));
        assert_eq!(w.top(), 0);
    }

    #[test]
    fn big_window_and_jumps() {
        let mut w = ReplayWindow::new(4096, false);
        for s in (1..5000u32).rev().step_by(3) {
            let _ = accept(&mut w, s);
        }
        assert!(accept(&mut w, 10_000));
        assert!(accept(&mut w, 10_000 - 4095));
        assert!(!accept(&mut w, 10_000 - 4096));
        // A jump larger than the bitmap clears it entirely.
        assert!(accept(&mut w, 1_000_000));
        assert!(accept(&mut w, 999_999));
        assert!(accept(&mut w, 996_000));
    }

    #[test]
    fn ring_slots_reused_correctly() {
        let mut w = ReplayWindow::new(64, false);
        for s in 1..=1000u32 {
            assert!(accept(&mut w, s), "{s}");
            assert!(!accept(&mut w, s));
        }
        assert!(!accept(&mut w, 936));
        assert!(!accept(&mut w, 937));
    }

    #[test]
    fn esn_inference_appendix_a() {
        let mut w = ReplayWindow::new(64, true);
        // Walk across the 2^32 boundary.
        assert!(w.update(u64::from(u32::MAX) - 10));
        assert_eq!(w.check(u32::MAX - 5), Some(u64::from(u32::MAX) - 5));
        // Case A: low seq far below the window means the next subspace.
        assert_eq!(w.check(3), Some((1u64 << 32) | 3));
        assert!(accept(&mut w, 3));
        assert_eq!(w.top(), (1u64 << 32) | 3);
        // Case B: a late packet from the previous subspace, inside the window.
        assert_eq!(w.check(u32::MAX - 20), Some(u64::from(u32::MAX) - 20));
        assert!(accept(&mut w, u32::MAX - 20));
        assert!(!accept(&mut w, u32::MAX - 20));
        // Left of the window in the previous subspace: Appendix A infers the
        // current subspace, and the ICV (computed with that seq-hi) rejects it.
        assert_eq!(
            w.check(u32::MAX - 100),
            Some((1u64 << 32) | u64::from(u32::MAX - 100))
        );
        // At the very start, case B with Th = 0: a huge low value is a replay.
        let fresh = ReplayWindow::new(64, true);
        assert_eq!(fresh.check(u32::MAX), None);
        assert_eq!(fresh.check(1), Some(1));
    }
}
