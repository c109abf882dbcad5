//! The clock. Engines are sans-IO and take `now` as an argument; the daemons read it here (or from
//! tokio's timers), and nowhere else (`clippy.toml` disallows `Instant::now` outside this crate).

use std::time::{Instant, SystemTime};

/// The current monotonic time, for passing into engines as `now`.
#[must_use]
#[allow(clippy::disallowed_methods)] // The one sanctioned clock read (clippy.toml, STYLE.md 5 and 8).
pub fn now() -> Instant {
    Instant::now()
}

/// The current wall-clock time, for what is valid between dates (certificates): engines take
/// it once with a matching `now` and derive later wall times from their `now`.
#[must_use]
#[allow(clippy::disallowed_methods)] // The sanctioned wall-clock read (clippy.toml).
pub fn wall() -> SystemTime {
    SystemTime::now()
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_monotonic() {
        let a = super::now();
        let b = super::now();
        assert!(b >= a);
    }
}
