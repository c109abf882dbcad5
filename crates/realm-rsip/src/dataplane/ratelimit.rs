//! Per-host token buckets for violation reports: RFC 3103 s10.4 makes the
//! gateway "send the host an ERROR_RESPONSE" for every misused packet; a host
//! that floods bad packets must not make the gateway flood answers, so at most
//! `rate` reports per second per host (burst `rate`) leave the data plane.
//! Buckets exist only for hosts in the binding table (forgotten with them).

use realm_lease::{ClientId, Timestamp};
use rustc_hash::FxHashMap;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens in thousandths.
    milli_tokens: u64,
    last: Timestamp,
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// Tokens per second, which is also the burst.
    rate: u64,
    buckets: FxHashMap<ClientId, Bucket>,
}

impl RateLimiter {
    pub(crate) fn new(rate: u32) -> RateLimiter {
        RateLimiter {
            rate: u64::from(rate),
            buckets: FxHashMap::default(),
        }
    }

    /// Takes a token for `host`; false when its bucket is empty.
    pub(crate) fn allow(&mut self, host: ClientId, now: Timestamp) -> bool {
        let cap = self.rate * 1000;
        let bucket = self.buckets.entry(host).or_insert(Bucket {
            milli_tokens: cap,
            last: now,
        });
        // One token per 1000/rate ms: rate milli-tokens per ms.
        let elapsed = now.as_millis().saturating_sub(bucket.last.as_millis());
        bucket.milli_tokens = bucket
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(cap);
        bucket.last = bucket.last.max(now);
        if bucket.milli_tokens >= 1000 {
            bucket.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }

    pub(crate) fn forget(&mut self, host: ClientId) {
        self.buckets.remove(&host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_rate() {
        let mut rl = RateLimiter::new(4);
        let h = ClientId(1);
        let t = Timestamp::from_secs(100);
        assert_eq!((0..6).filter(|_| rl.allow(h, t)).count(), 4);
        // 250 ms later: one token back.
        let t2 = Timestamp::from_millis(100_250);
        assert!(rl.allow(h, t2));
        assert!(!rl.allow(h, t2));
        // Another host has its own bucket.
        assert!(rl.allow(ClientId(2), t2));
        // Time going backwards never adds tokens.
        assert!(!rl.allow(h, t));
        // A second later the bucket is full again, not more.
        let t3 = Timestamp::from_secs(105);
        assert_eq!((0..6).filter(|_| rl.allow(h, t3)).count(), 4);
    }
}
