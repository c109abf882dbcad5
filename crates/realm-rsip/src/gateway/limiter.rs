//! The rate limit on UDP signalling, kept per source **address**
//! (docs/gateway-config.md `[limits]`), with a per-port share inside it.
//!
//! Every address has one token bucket (`per_sec`, `burst`); each of its
//! source ports draws from a bucket of its own holding `port_share_percent`
//! of that, and from the address's bucket: a datagram passes when both have
//! a token. So one address gets its documented rate however many ports it
//! uses, and one noisy port (a host's address and port spoofed, or a runaway
//! process) leaves the rest of the address's rate to its other ports. An
//! address tracks at most `ports_per_source` ports; the others share one
//! overflow bucket of the same size.
//!
//! The table is bounded: at most `max_sources` addresses, one entry each
//! however many ports they use (one address cannot fill it). A new address in
//! a full table evicts the one seen least recently.
//!
//! Sans-IO: time is passed in. The daemon's UDP receive task holds one.

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// The limits of a [`SourceLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Datagrams per second from one source address (at least 1).
    pub per_sec: u32,
    /// Datagrams accepted in a burst above `per_sec` (at least 1).
    pub burst: u32,
    /// What one source port may take of its address's rate and burst,
    /// percent (1..=100).
    pub port_share_percent: u8,
    /// Source ports tracked per address; more share one bucket.
    pub ports_per_source: usize,
    /// Source addresses tracked at once (the least recently seen goes).
    pub max_sources: usize,
}

impl RateLimit {
    /// A port's rate and burst: its share of the address's, at least 1.
    fn port(&self) -> (u32, u32) {
        let share = |v: u32| {
            let s = u64::from(v) * u64::from(self.port_share_percent.clamp(1, 100)) / 100;
            u32::try_from(s).unwrap_or(u32::MAX).max(1)
        };
        (share(self.per_sec), share(self.burst))
    }
}

/// A token bucket: `rate` tokens per second, at most `burst`. The one
/// bucket of the gateway's limits: per source address and port here, per
/// TCP connection in the daemon.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(burst: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: f64::from(burst),
            last: now,
        }
    }

    fn refill(&mut self, rate: u32, burst: u32, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * f64::from(rate)).min(f64::from(burst));
        self.last = self.last.max(now);
    }

    /// Takes a token if there is one at `now`.
    pub fn take(&mut self, rate: u32, burst: u32, now: Instant) -> bool {
        self.refill(rate, burst, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until a token is there (at `rate` tokens a second).
    pub fn wait(&self, rate: u32) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens) / f64::from(rate)).max(0.0))
    }
}

#[derive(Debug)]
struct Source {
    bucket: TokenBucket,
    ports: Vec<(u16, TokenBucket)>,
    /// The ports past `ports_per_source`.
    overflow: TokenBucket,
    last_seen: Instant,
}

/// What [`SourceLimiter::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Pass the datagram on.
    Pass,
    /// Over the address's rate.
    AddressLimit,
    /// Over the port's share of it.
    PortLimit,
}

/// Per-source-address token buckets with per-port shares; see the module
/// documentation.
#[derive(Debug)]
pub struct SourceLimiter {
    limit: RateLimit,
    sources: HashMap<Ipv4Addr, Source>,
    /// (last seen, address): eviction order.
    order: BTreeSet<(Instant, Ipv4Addr)>,
    evicted: u64,
}

impl SourceLimiter {
    /// An empty limiter. Zero limits are taken as 1.
    pub fn new(limit: RateLimit) -> SourceLimiter {
        SourceLimiter {
            limit: RateLimit {
                per_sec: limit.per_sec.max(1),
                burst: limit.burst.max(1),
                port_share_percent: limit.port_share_percent.clamp(1, 100),
                ports_per_source: limit.ports_per_source.max(1),
                max_sources: limit.max_sources.max(1),
            },
            sources: HashMap::new(),
            order: BTreeSet::new(),
            evicted: 0,
        }
    }

    /// Whether a datagram from `from` at `now` passes; takes its tokens if so.
    pub fn admit(&mut self, now: Instant, from: SocketAddrV4) -> Admission {
        let l = self.limit;
        let ip = *from.ip();
        if !self.sources.contains_key(&ip) {
            while self.sources.len() >= l.max_sources {
                let Some((seen, oldest)) = self.order.pop_first() else {
                    break;
                };
                let _ = seen;
                self.sources.remove(&oldest);
                self.evicted += 1;
            }
            let (_, port_burst) = l.port();
            self.sources.insert(
                ip,
                Source {
                    bucket: TokenBucket::new(l.burst, now),
                    ports: Vec::new(),
                    overflow: TokenBucket::new(port_burst, now),
                    last_seen: now,
                },
            );
            self.order.insert((now, ip));
        }
        let Some(s) = self.sources.get_mut(&ip) else {
            return Admission::AddressLimit;
        };
        if s.last_seen < now {
            self.order.remove(&(s.last_seen, ip));
            s.last_seen = now;
            self.order.insert((now, ip));
        }
        let (port_rate, port_burst) = l.port();
        let port = from.port();
        let at = match s.ports.iter().position(|&(p, _)| p == port) {
            Some(i) => Some(i),
            None if s.ports.len() < l.ports_per_source => {
                s.ports.push((port, TokenBucket::new(port_burst, now)));
                Some(s.ports.len() - 1)
            }
            None => None,
        };
        let port_bucket = match at.and_then(|i| s.ports.get_mut(i)) {
            Some((_, b)) => b,
            None => &mut s.overflow,
        };
        port_bucket.refill(port_rate, port_burst, now);
        s.bucket.refill(l.per_sec, l.burst, now);
        if port_bucket.tokens < 1.0 {
            return Admission::PortLimit;
        }
        if s.bucket.tokens < 1.0 {
            return Admission::AddressLimit;
        }
        port_bucket.tokens -= 1.0;
        s.bucket.tokens -= 1.0;
        Admission::Pass
    }

    /// Addresses tracked.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Addresses evicted to make room, since the start.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// How long a source must stay quiet for its buckets to be full again
    /// (evicting it then loses nothing).
    pub fn refill_time(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.limit.burst) / f64::from(self.limit.per_sec))
    }
}

#[cfg(test)]
// `Instant::now` only starts the fake clock the tests hand the limiter.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2, t0);
        assert!(b.take(10, 2, t0));
        assert!(b.take(10, 2, t0));
        assert!(!b.take(10, 2, t0));
        assert!(b.wait(10) <= Duration::from_millis(100));
        assert!(b.take(10, 2, t0 + Duration::from_millis(100)));
        assert!(!b.take(10, 2, t0 + Duration::from_millis(100)));
    }

    fn limit() -> RateLimit {
        RateLimit {
            per_sec: 10,
            burst: 20,
            port_share_percent: 50,
            ports_per_source: 4,
            max_sources: 3,
        }
    }

    fn ep(last: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, last), port)
    }

    #[test]
    fn many_ports_share_one_address_rate() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::new(limit());
        let passed = (0..30u16)
            .flat_map(|p| std::iter::repeat_n(p, 50))
            .filter(|&p| l.admit(t0, ep(1, 1000 + p)) == Admission::Pass)
            .count();
        // The address's burst, however many ports.
        assert_eq!(passed, 20);
        assert_eq!(l.len(), 1);
        // A second later: its rate.
        let t1 = t0 + Duration::from_secs(1);
        let passed = (0..30u16)
            .filter(|&p| l.admit(t1, ep(1, 1000 + p)) == Admission::Pass)
            .count();
        assert_eq!(passed, 10);
    }

    #[test]
    fn one_port_gets_its_share_and_leaves_the_rest() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::new(limit());
        let noisy = (0..100)
            .filter(|_| l.admit(t0, ep(1, 5000)) == Admission::Pass)
            .count();
        assert_eq!(noisy, 10, "half the burst");
        assert_eq!(l.admit(t0, ep(1, 5000)), Admission::PortLimit);
        // The host's own port still gets through.
        assert_eq!(l.admit(t0, ep(1, 4555)), Admission::Pass);
    }

    #[test]
    fn the_table_is_bounded_and_one_address_is_one_entry() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::new(limit());
        for p in 0..1000u16 {
            let _ = l.admit(t0, ep(1, p));
        }
        assert_eq!(l.len(), 1);
        for (i, last) in [2u8, 3, 4, 5].into_iter().enumerate() {
            let t = t0 + Duration::from_millis(10 * (i as u64 + 1));
            assert_eq!(l.admit(t, ep(last, 1)), Admission::Pass);
        }
        assert_eq!(l.len(), 3);
        assert_eq!(l.evicted(), 2);
        // The least recently seen went first (10.0.0.1, then .2).
        assert_eq!(
            l.admit(t0 + Duration::from_millis(60), ep(5, 1)),
            Admission::Pass
        );
        assert_eq!(l.len(), 3);
        assert_eq!(l.refill_time(), Duration::from_secs(2));
    }
}
