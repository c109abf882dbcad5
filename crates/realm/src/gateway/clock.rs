//! The daemon's clock: wall-clock milliseconds (what the store keeps, so
//! leases survive a restart) advanced by the monotonic clock (so a wall-clock
//! step while running moves no deadline). Read once per wake-up and passed
//! into the engine as `now`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use realm_lease::Timestamp;

/// Wall-clock time at start plus monotonic time since.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    unix_base: Timestamp,
    mono_base: Instant,
}

impl Clock {
    /// Reads both clocks once.
    pub(crate) fn start() -> Clock {
        // The wall clock is read here once, at start: it anchors lease times
        // to the UNIX epoch so they mean the same after a restart. Engines
        // never read clocks (clippy.toml); the daemon is their I/O driver.
        #[allow(clippy::disallowed_methods)]
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Clock {
            unix_base: Timestamp::from_duration_since_epoch(wall),
            mono_base: realm_io::clock::now(),
        }
    }

    /// Now, for the engine.
    pub(crate) fn now(&self) -> Timestamp {
        self.at(realm_io::clock::now())
    }

    /// The engine time of a monotonic instant.
    pub(crate) fn at(&self, instant: Instant) -> Timestamp {
        self.unix_base
            .saturating_add(instant.saturating_duration_since(self.mono_base))
    }

    /// The tokio deadline of an engine time.
    pub(crate) fn deadline(&self, t: Timestamp) -> tokio::time::Instant {
        let since = t.saturating_duration_since(self.unix_base);
        tokio::time::Instant::from_std(self.mono_base + since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_trip() {
        let c = Clock::start();
        let now = c.now();
        let later = now + Duration::from_secs(5);
        let d = c.deadline(later);
        assert_eq!(c.at(d.into_std()), later);
    }
}
