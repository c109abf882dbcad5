//! Dead Peer Detection (RFC 3706) for one ISAKMP SA, as a sans-IO state machine: time comes in
//! as `now`, actions come out. Nothing here reads a clock, sends or builds messages (the
//! R-U-THERE itself is [`super::informational::ru_there`], sealed with
//! [`super::informational::seal`]).
//!
//! Idle-based, as RFC 3706 5.3 and 5.4 describe it: traffic from the peer proves it alive, so
//! an R-U-THERE is sent only after `delay` without any ([`Dpd::on_inbound`] restarts the wait).
//! Then R-U-THERE is retransmitted, 2 s after the first and each wait twice the one before
//! (capped at 32 s), each time with the next sequence number, until an R-U-THERE-ACK or other
//! traffic arrives, or until `timeout` has passed since the first R-U-THERE: then the peer is
//! declared dead, once ([`DpdAction::PeerDead`]), and the machine stops.
//!
//! Sequence numbers (RFC 3706 5.5): 32 bits, the first one random (the caller draws it, for
//! example with [`crate::Crypto::fill_random`]), incremented by one (wrapping) for each
//! R-U-THERE sent, retransmissions included. An R-U-THERE-ACK counts only when its number is
//! one this probe sent ([`Dpd::handle_ack`]); any other, such as a replayed ACK of an earlier
//! probe, is ignored. A received R-U-THERE is answered with its own number ([`Dpd::answer`]),
//! and counts as traffic only when its number is newer than the peer's last one.
//!
//! **What counts as traffic.** Only what cannot be replayed: ESP packets that passed the
//! anti-replay check and authenticated IKE messages that advance an exchange. Not a protected
//! Informational as such: [`super::informational::open`] accepts a replayed one (RFC 2409 5.7
//! names no receiver check), which is why DPD carries sequence numbers at all.
//!
//! `delay` zero disables DPD: no timeout, no action, ever.

use std::time::{Duration, Instant};

/// The wait before the first retransmission of an R-U-THERE.
pub const FIRST_RETRANSMIT: Duration = Duration::from_secs(2);
/// The longest wait between two R-U-THEREs of one probe.
pub const MAX_RETRANSMIT: Duration = Duration::from_secs(32);

/// What [`Dpd::handle_timeout`] asks the engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpdAction {
    /// Send an R-U-THERE with this sequence number in a protected Informational.
    SendRuThere {
        /// The sequence number (RFC 3706 5.5).
        sequence: u32,
    },
    /// No answer within the timeout: the peer is dead (RFC 3706 5.4); delete its SAs.
    PeerDead,
}

/// One probe: the R-U-THEREs sent since the peer last proved alive.
#[derive(Debug, Clone, Copy)]
struct Probe {
    first_sequence: u32,
    last_sequence: u32,
    deadline: Option<Instant>,
    retransmit_at: Option<Instant>,
    interval: Duration,
}

impl Probe {
    /// True when this probe sent `sequence` (the range may wrap past `u32::MAX`).
    fn sent(&self, sequence: u32) -> bool {
        sequence.wrapping_sub(self.first_sequence)
            <= self.last_sequence.wrapping_sub(self.first_sequence)
    }
}

/// DPD for one ISAKMP SA.
#[derive(Debug, Clone)]
pub struct Dpd {
    delay: Duration,
    timeout: Duration,
    last_inbound: Instant,
    next_sequence: u32,
    probe: Option<Probe>,
    dead: bool,
    peer_sequence: Option<u32>,
}

impl Dpd {
    /// DPD that sends an R-U-THERE after `delay` without traffic from the peer and declares it
    /// dead `timeout` after the first unanswered one; `delay` zero disables it. `now` counts
    /// as traffic (the SA was just established); `initial_sequence` is the first R-U-THERE's
    /// number, random (RFC 3706 5.5).
    pub fn new(delay: Duration, timeout: Duration, now: Instant, initial_sequence: u32) -> Dpd {
        Dpd {
            delay,
            timeout,
            last_inbound: now,
            next_sequence: initial_sequence,
            probe: None,
            dead: false,
            peer_sequence: None,
        }
    }

    /// False when `delay` is zero or the peer was declared dead.
    pub fn is_active(&self) -> bool {
        !self.delay.is_zero() && !self.dead
    }

    /// True once [`DpdAction::PeerDead`] was returned.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// True while R-U-THEREs are outstanding.
    pub fn probing(&self) -> bool {
        self.probe.is_some()
    }

    /// Traffic from the peer (see the module docs for what counts): it is alive (RFC 3706
    /// 5.3), so the idle wait restarts and an outstanding probe ends.
    pub fn on_inbound(&mut self, now: Instant) {
        if now > self.last_inbound {
            self.last_inbound = now;
        }
        self.probe = None;
    }

    /// When [`Dpd::handle_timeout`] should next be called, or `None` when never.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.is_active() {
            return None;
        }
        match &self.probe {
            None => self.last_inbound.checked_add(self.delay),
            Some(p) => match (p.retransmit_at, p.deadline) {
                (Some(r), Some(d)) => Some(r.min(d)),
                (r, d) => r.or(d),
            },
        }
    }

    /// The clock reached `now`: an R-U-THERE to send, the peer dead, or nothing.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<DpdAction> {
        if !self.is_active() {
            return None;
        }
        let Some(mut probe) = self.probe else {
            // RFC 3706 5.4: idle for `delay`, ask.
            let idle_until = self.last_inbound.checked_add(self.delay)?;
            if now < idle_until {
                return None;
            }
            let sequence = self.take_sequence();
            self.probe = Some(Probe {
                first_sequence: sequence,
                last_sequence: sequence,
                deadline: now.checked_add(self.timeout),
                retransmit_at: now.checked_add(FIRST_RETRANSMIT),
                interval: FIRST_RETRANSMIT,
            });
            return Some(DpdAction::SendRuThere { sequence });
        };
        if probe.deadline.is_some_and(|d| now >= d) {
            self.dead = true;
            self.probe = None;
            return Some(DpdAction::PeerDead);
        }
        if probe.retransmit_at.is_some_and(|r| now >= r) {
            let sequence = self.take_sequence();
            probe.last_sequence = sequence;
            probe.interval = probe.interval.saturating_mul(2).min(MAX_RETRANSMIT);
            probe.retransmit_at = now.checked_add(probe.interval);
            self.probe = Some(probe);
            return Some(DpdAction::SendRuThere { sequence });
        }
        None
    }

    /// An authenticated R-U-THERE-ACK with `sequence`: true when it answers an R-U-THERE of
    /// the current probe, which ends (the peer is alive); false, and ignored, otherwise: no
    /// probe outstanding, or a number this probe did not send (RFC 3706 5.5).
    pub fn handle_ack(&mut self, now: Instant, sequence: u32) -> bool {
        match self.probe {
            Some(p) if p.sent(sequence) => {
                self.on_inbound(now);
                true
            }
            _ => false,
        }
    }

    /// An authenticated R-U-THERE with `sequence` from the peer. The R-U-THERE-ACK to send
    /// ([`super::informational::ru_there_ack`]) carries the same number, which this returns
    /// (RFC 3706 5.3, 5.5): every one is answered, replays too (an ACK costs one message and
    /// proves nothing to a sender that checks its numbers). It counts as traffic only when its
    /// number is newer than the last R-U-THERE's from this peer (the peer increments them,
    /// RFC 3706 5.5), so a replayed R-U-THERE is no proof of liveness.
    pub fn answer(&mut self, now: Instant, sequence: u32) -> u32 {
        let fresh = self
            .peer_sequence
            .is_none_or(|last| (1..=i32::MAX as u32).contains(&sequence.wrapping_sub(last)));
        if fresh {
            self.peer_sequence = Some(sequence);
            self.on_inbound(now);
        }
        sequence
    }

    fn take_sequence(&mut self) -> u32 {
        let s = self.next_sequence;
        self.next_sequence = s.wrapping_add(1);
        s
    }
}
