//! Time as the lease manager sees it: a [`Timestamp`] the caller passes in.
//!
//! The manager never reads a clock. Leases must survive a gateway restart (the
//! store persists expiry times), so time is not a `std::time::Instant`, which
//! means nothing across processes, but a count of milliseconds since an epoch
//! the caller chooses. The daemon uses the UNIX epoch (its `realm-io` clock);
//! tests start anywhere and advance by `Duration`s.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A point in time: milliseconds since a caller-chosen epoch (the UNIX epoch
/// in the daemon). Arithmetic saturates; it never panics or wraps.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch itself.
    pub const ZERO: Timestamp = Timestamp(0);
    /// The latest representable time.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Timestamp {
        Timestamp(ms)
    }

    /// `secs` seconds after the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Timestamp {
        Timestamp(secs.saturating_mul(1000))
    }

    /// `since_epoch` after the epoch, truncated to whole milliseconds
    /// (saturating), e.g. `SystemTime::duration_since(UNIX_EPOCH)` in `realm-io`.
    pub fn from_duration_since_epoch(since_epoch: Duration) -> Timestamp {
        Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The time since the epoch.
    pub const fn duration_since_epoch(self) -> Duration {
        Duration::from_millis(self.0)
    }

    /// `self + d`, truncated to whole milliseconds, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    /// `self - d`, truncated to whole milliseconds, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_sub(ms))
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturating, like [`Timestamp::saturating_add`].
    fn add(self, d: Duration) -> Timestamp {
        self.saturating_add(d)
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturating, like [`Timestamp::saturating_sub`].
    fn sub(self, d: Duration) -> Timestamp {
        self.saturating_sub(d)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_secs(10);
        assert_eq!(
            t + Duration::from_millis(1500),
            Timestamp::from_millis(11_500)
        );
        assert_eq!(Timestamp::MAX + Duration::from_secs(1), Timestamp::MAX);
        assert_eq!(t - Duration::from_secs(11), Timestamp::ZERO);
        assert_eq!(t - Duration::from_secs(1), Timestamp::from_secs(9));
        assert_eq!(
            t.saturating_duration_since(Timestamp::from_secs(4)),
            Duration::from_secs(6)
        );
        assert_eq!(
            t.saturating_duration_since(Timestamp::from_secs(40)),
            Duration::ZERO
        );
        assert_eq!(Timestamp::from_secs(u64::MAX), Timestamp::MAX);
        assert_eq!(
            Timestamp::from_duration_since_epoch(Duration::MAX),
            Timestamp::MAX
        );
        assert_eq!(t.duration_since_epoch(), Duration::from_secs(10));
        assert_eq!(t.to_string(), "10.000s");
    }

    #[test]
    fn serializes_as_plain_millis() {
        let json = serde_json::to_string(&Timestamp::from_millis(1234)).unwrap();
        assert_eq!(json, "1234");
    }
}
