//! Every clock of the host engine in one typed table (STYLE 6, after quinn's
//! `connection/timer.rs`).

use std::collections::BTreeMap;
use std::time::Instant;

use realm_wire::rsip::BindId;

/// One deadline of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// UDP: the outstanding message's retransmission timeout.
    Retransmit,
    /// TCP: no answer to the outstanding message yet.
    ResponseTimeout,
    /// End of a pause (gateway unreachable, registration refused or revoked):
    /// the host may send again.
    RetryPause,
    /// The registration lapses (RFC 3103 6).
    RegistrationExpiry,
    /// Time to extend this binding.
    Extend(BindId),
    /// This binding's lease ends.
    BindingExpiry(BindId),
    /// Re-acquire configured binding number `n` (after a refusal or revocation).
    Reacquire(usize),
    /// `shutdown` gives up waiting.
    ShutdownDeadline,
}

/// The armed timers. Bounded by the bindings held and configured (a few
/// dozen): finding the next deadline is a linear scan.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    armed: BTreeMap<Timer, Instant>,
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.armed.insert(timer, at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.armed.remove(&timer);
    }

    pub(crate) fn is_armed(&self, timer: Timer) -> bool {
        self.armed.contains_key(&timer)
    }

    /// Stops every timer that `keep` refuses.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(Timer) -> bool) {
        self.armed.retain(|t, _| keep(*t));
    }

    pub(crate) fn clear(&mut self) {
        self.armed.clear();
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.armed.values().min().copied()
    }

    /// Disarms and returns the earliest timer due at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let (timer, _) = self
            .armed
            .iter()
            .filter(|(_, at)| **at <= now)
            .min_by_key(|(_, at)| **at)?;
        let timer = *timer;
        self.armed.remove(&timer);
        Some(timer)
    }
}
