//! Counters for metrics: the writer updates them after each commit, anyone
//! reads a [`StatsSnapshot`] with [`crate::Store::stats`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (microseconds, inclusive) of the commit latency histogram
/// buckets; a last, implicit bucket holds everything slower (Prometheus
/// `+Inf`).
pub const LATENCY_BUCKETS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
];

#[derive(Debug, Default)]
pub(crate) struct Stats {
    commits: AtomicU64,
    failed_commits: AtomicU64,
    batches: AtomicU64,
    rows: AtomicU64,
    bytes: AtomicU64,
    latency_us_sum: AtomicU64,
    latency_us_max: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    largest_commit: AtomicU64,
    log_lines: AtomicU64,
    log_errors: AtomicU64,
}

impl Stats {
    pub(crate) fn record_commit(&self, batches: u64, rows: u64, bytes: u64, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.commits.fetch_add(1, Relaxed);
        self.batches.fetch_add(batches, Relaxed);
        self.rows.fetch_add(rows, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        self.latency_us_sum.fetch_add(us, Relaxed);
        self.latency_us_max.fetch_max(us, Relaxed);
        self.largest_commit.fetch_max(batches, Relaxed);
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        if let Some(b) = self.latency_buckets.get(bucket) {
            b.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn record_failure(&self) {
        self.failed_commits.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_log(&self, lines: u64, ok: bool) {
        self.log_lines.fetch_add(lines, Relaxed);
        if !ok {
            self.log_errors.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            commits: self.commits.load(Relaxed),
            failed_commits: self.failed_commits.load(Relaxed),
            batches: self.batches.load(Relaxed),
            rows: self.rows.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            commit_latency_sum: Duration::from_micros(self.latency_us_sum.load(Relaxed)),
            commit_latency_max: Duration::from_micros(self.latency_us_max.load(Relaxed)),
            commit_latency_buckets: self.latency_buckets.each_ref().map(|b| b.load(Relaxed)),
            largest_commit: self.largest_commit.load(Relaxed),
            log_lines: self.log_lines.load(Relaxed),
            log_errors: self.log_errors.load(Relaxed),
        }
    }
}

/// The store's counters since it was opened (monotonic, Prometheus
/// counters except `commit_latency_max` and `largest_commit`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Transactions committed.
    pub commits: u64,
    /// Transactions that failed (their batches got [`crate::CommitError`]).
    pub failed_commits: u64,
    /// Batches committed.
    pub batches: u64,
    /// Rows put or deleted in committed batches.
    pub rows: u64,
    /// Value bytes put in committed batches.
    pub bytes: u64,
    /// Sum of commit latencies (BEGIN to COMMIT returning, sync included).
    pub commit_latency_sum: Duration,
    /// The slowest commit.
    pub commit_latency_max: Duration,
    /// Commits per latency bucket: `[i]` counts commits of at most
    /// [`LATENCY_BUCKETS_US`]`[i]` µs and more than the previous bound; the
    /// last counts the rest (not cumulative: sum them for Prometheus `le`).
    pub commit_latency_buckets: [u64; LATENCY_BUCKETS_US.len() + 1],
    /// The most batches one transaction committed.
    pub largest_commit: u64,
    /// Allocation log lines written.
    pub log_lines: u64,
    /// Allocation log write, flush or sync failures.
    pub log_errors: u64,
}

impl StatsSnapshot {
    /// Mean batches per commit (the group commit factor).
    pub fn mean_commit_size(&self) -> f64 {
        if self.commits == 0 {
            0.0
        } else {
            self.batches as f64 / self.commits as f64
        }
    }

    /// Mean commit latency.
    pub fn mean_commit_latency(&self) -> Duration {
        match u32::try_from(self.commits) {
            Ok(0) => Duration::ZERO,
            Ok(n) => self.commit_latency_sum / n,
            Err(_) => {
                Duration::from_secs_f64(self.commit_latency_sum.as_secs_f64() / self.commits as f64)
            }
        }
    }
}
