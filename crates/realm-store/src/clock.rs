//! The only place this crate reads clocks. It is not a sans-IO engine: it owns
//! a file and a thread, and needs the wall clock to name moved-aside files and
//! stamp clean shutdowns, and the monotonic clock to measure commit latency.
//! Lease times never come from here: callers pass them in every record.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use realm_lease::Timestamp;

/// Milliseconds since the UNIX epoch (the epoch itself if the clock is set
/// before 1970).
#[allow(clippy::disallowed_methods)] // I/O crate, not an engine: see the module doc.
pub(crate) fn unix_now() -> Timestamp {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(Timestamp::from_duration_since_epoch)
        .unwrap_or(Timestamp::ZERO)
}

/// The monotonic clock, for latency only.
#[allow(clippy::disallowed_methods)] // I/O crate, not an engine: see the module doc.
pub(crate) fn monotonic_now() -> Instant {
    Instant::now()
}
