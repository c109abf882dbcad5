//! Retransmission of a message that awaits an answer, with exponential backoff, as strongSwan
//! schedules it (`charon.retransmit_timeout` 4 s, `retransmit_base` 1.8, `retransmit_tries` 5:
//! resent after 4, 7.2, 13, 23.3 and 42 s, given up 75.6 s after the first send).
//!
//! RFC 2408 section 5 leaves the schedule to the implementation; RFC 2409 section 5 asks that a
//! lost message be retransmitted. Nothing here reads a clock: time comes in.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetransmitConfig {
    /// The wait before the first retransmission.
    pub timeout: Duration,
    /// Each following wait is the previous one times this (at least 1).
    pub base: f64,
    /// How many times a message is resent before the exchange is given up.
    pub tries: u32,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        RetransmitConfig {
            timeout: Duration::from_secs(4),
            base: 1.8,
            tries: 5,
        }
    }
}

impl RetransmitConfig {
    /// The wait after send number `sent` (1 for the first send).
    fn wait(&self, sent: u32) -> Duration {
        let exponent = i32::try_from(sent.saturating_sub(1)).unwrap_or(i32::MAX);
        let factor = self.base.max(1.0).powi(exponent);
        let secs = (self.timeout.as_secs_f64() * factor).min(86_400.0);
        Duration::from_secs_f64(secs)
    }
}

/// A sent message and when to send it again.
#[derive(Debug, Clone)]
pub(crate) struct Retransmit {
    /// The bytes as sent on the wire (with the non-ESP marker on the NAT-T port).
    pub(crate) bytes: Vec<u8>,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    /// Sends so far (1 after the first).
    sent: u32,
    /// When to act next.
    pub(crate) next: Instant,
}

/// What a due retransmission timer asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Send the bytes again.
    Resend,
    /// The tries are used up: give the exchange up.
    GiveUp,
}

impl Retransmit {
    /// A message first sent at `now`.
    pub(crate) fn new(
        config: &RetransmitConfig,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: Vec<u8>,
    ) -> Retransmit {
        Retransmit {
            bytes,
            local,
            remote,
            sent: 1,
            next: now + config.wait(1),
        }
    }

    /// At `now` (at or after [`Retransmit::next`]): resend, or give up after `config.tries`
    /// retransmissions once the last one's wait has passed too.
    pub(crate) fn due(&mut self, config: &RetransmitConfig, now: Instant) -> Due {
        if self.sent > config.tries {
            return Due::GiveUp;
        }
        self.sent += 1;
        self.next = now + config.wait(self.sent);
        Due::Resend
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // a test's arbitrary starting instant
    fn strongswans_schedule() {
        let c = RetransmitConfig::default();
        let t0 = Instant::now();
        let a: SocketAddr = "192.0.2.1:500".parse().unwrap();
        let mut r = Retransmit::new(&c, t0, a, a, vec![1]);
        let mut now = t0;
        let mut waits = Vec::new();
        loop {
            waits.push((r.next - now).as_millis());
            now = r.next;
            if r.due(&c, now) == Due::GiveUp {
                break;
            }
        }
        assert_eq!(waits, [4000, 7200, 12960, 23328, 41990, 75582]);
        assert_eq!((now - t0).as_secs(), 165);
    }
}
