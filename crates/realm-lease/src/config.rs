//! What the gateway may lease: the public address pool, the leasable ports of
//! each address, the SPI range, per-host quotas and lease times.
//!
//! Every limit here is a DoS bound (STYLE 9): a host can never hold more than
//! its [`Quota`], and there are never more than [`Config::max_hosts`]
//! registrations.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The RSIP port (RFC 3103 12). Never leasable on an address the gateway
/// itself answers RSIP on: the caller lists it in [`AddressConfig::excluded`]
/// (see [`AddressConfig::shared`]).
pub const RSIP_PORT: u16 = 4555;

/// The SPIs a gateway may lease by default: 1-255 are reserved by IANA and 0
/// is never sent on the wire (RFC 4303 2.1).
pub const DEFAULT_SPIS: RangeInclusive<u32> = 256..=u32::MAX;

/// One public address of the pool and what may be leased on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressConfig {
    /// The public address.
    pub address: Ipv4Addr,
    /// Whether the whole address may be leased to one host (RSA-IP). False for
    /// an address the gateway itself uses (the SOHO case).
    pub whole_lease: bool,
    /// Ports that may be leased (RSAP-IP), before [`AddressConfig::excluded`]
    /// is taken out. Port 0 is never leasable, whatever is listed.
    pub ports: Vec<RangeInclusive<u16>>,
    /// Ports that must never be leased: on an address the gateway uses, at
    /// least [`RSIP_PORT`] and the gateway's own ephemeral port range.
    pub excluded: Vec<RangeInclusive<u16>>,
}

impl AddressConfig {
    /// An address shared by the gateway and its hosts (the SOHO case): ports
    /// 1024-65535 leasable except [`RSIP_PORT`] and the gateway's own
    /// `ephemeral` range; never leased whole.
    pub fn shared(address: Ipv4Addr, ephemeral: RangeInclusive<u16>) -> AddressConfig {
        AddressConfig {
            address,
            whole_lease: false,
            ports: vec![1024..=u16::MAX],
            excluded: vec![RSIP_PORT..=RSIP_PORT, ephemeral],
        }
    }

    /// An address the gateway does not use itself: leasable whole (RSA-IP) or
    /// by ports 1024-65535 (RSAP-IP).
    pub fn dedicated(address: Ipv4Addr) -> AddressConfig {
        AddressConfig {
            address,
            whole_lease: true,
            ports: vec![1024..=u16::MAX],
            excluded: Vec::new(),
        }
    }

    /// Adds an exclusion.
    pub fn exclude(mut self, ports: RangeInclusive<u16>) -> AddressConfig {
        self.excluded.push(ports);
        self
    }

    /// The leasable ports as sorted, disjoint, inclusive `(first, last)`
    /// runs, adjacent runs merged: `ports` minus `excluded` minus port 0. The
    /// one computation of what may be leased on an address: the port pool
    /// and the gateway's packet steering both use it.
    ///
    /// Computed on the ranges, not port by port: a gateway with a large pool
    /// calls it for every address at start and on every reload.
    pub fn leasable_runs(&self) -> Vec<(u16, u16)> {
        let holes = merged(self.excluded.iter().chain(std::iter::once(&(0..=0))));
        let mut runs = Vec::new();
        for (first, last) in merged(self.ports.iter()) {
            let mut from = first;
            for &(hole_first, hole_last) in &holes {
                if hole_last < from || hole_first > last {
                    continue;
                }
                if hole_first > from {
                    runs.push((from, hole_first - 1));
                }
                from = hole_last + 1;
            }
            if from <= last {
                runs.push((from, last));
            }
        }
        runs.into_iter()
            .filter_map(|(f, l)| Some((u16::try_from(f).ok()?, u16::try_from(l).ok()?)))
            .collect()
    }
}

/// `ranges` as sorted, disjoint runs with adjacent ones merged (empty ranges
/// dropped); `u32` so `last + 1` cannot overflow.
fn merged<'a>(ranges: impl Iterator<Item = &'a RangeInclusive<u16>>) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = ranges
        .filter(|r| r.start() <= r.end())
        .map(|r| (u32::from(*r.start()), u32::from(*r.end())))
        .collect();
    v.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len());
    for (first, last) in v {
        match out.last_mut() {
            Some((_, end)) if first <= *end + 1 => *end = (*end).max(last),
            _ => out.push((first, last)),
        }
    }
    out
}

/// What one host may hold at once. Requests past a quota are refused with the
/// matching `..._UNAVAILABLE` error ([`crate::Shortage::Quota`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Ports, over all the host's RSAP-IP and RSIPSEC bindings.
    pub ports: u32,
    /// Whole addresses (RSA-IP bindings).
    pub addresses: u32,
    /// SPIs. Zero means the host may not use RSIPSEC (IPSEC_UNALLOWED).
    pub spis: u32,
    /// Bindings of any kind.
    pub bindings: u32,
}

impl Default for Quota {
    /// 256 ports, 1 address, 64 SPIs, 64 bindings.
    fn default() -> Quota {
        Quota {
            ports: 256,
            addresses: 1,
            spis: 64,
            bindings: 64,
        }
    }
}

/// The lease manager's configuration. [`Config::new`] gives the defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The public addresses: one shared address (SOHO) or a block or list.
    pub pool: Vec<AddressConfig>,
    /// The SPIs that may be leased, on every address (default [`DEFAULT_SPIS`]).
    pub spis: RangeInclusive<u32>,
    /// What one host may hold.
    pub quota: Quota,
    /// Most registrations at once (REGISTRATION_DENIED past it). Default 4096.
    pub max_hosts: u32,
    /// A registration's initial lease (R, RFC 3103 6). Default 3600 s.
    pub registration_lease: Duration,
    /// A binding's lease when the host suggests none. Default 600 s.
    pub default_lease: Duration,
    /// The longest binding lease granted, whatever the host asks. Default 3600 s.
    pub max_lease: Duration,
    /// How long a freed (address, port), address or (address, SPI) is held
    /// before it is leased again (RFC 3102 6.1: at least two minutes, the
    /// longest common TCP TIME_WAIT). Default 120 s.
    pub time_wait: Duration,
}

/// The shortest binding lease granted: a host asking for 0 s gets this.
pub const MIN_LEASE: Duration = Duration::from_secs(1);

impl Config {
    /// The defaults over `pool`.
    pub fn new(pool: Vec<AddressConfig>) -> Config {
        Config {
            pool,
            spis: DEFAULT_SPIS,
            quota: Quota::default(),
            max_hosts: 4096,
            registration_lease: Duration::from_secs(3600),
            default_lease: Duration::from_secs(600),
            max_lease: Duration::from_secs(3600),
            time_wait: Duration::from_secs(120),
        }
    }

    /// Checks the configuration; [`crate::LeaseManager::new`] calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.pool.is_empty() {
            return Err(ConfigError::EmptyPool);
        }
        if u32::try_from(self.pool.len()).is_err() {
            return Err(ConfigError::PoolTooLarge);
        }
        let mut seen: Vec<Ipv4Addr> = self.pool.iter().map(|a| a.address).collect();
        seen.sort_unstable();
        if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigError::DuplicateAddress(w[0]));
        }
        for a in &self.pool {
            if a.ports.iter().chain(&a.excluded).any(|r| r.is_empty()) {
                return Err(ConfigError::EmptyPortRange(a.address));
            }
            if !a.whole_lease && a.leasable_runs().is_empty() {
                return Err(ConfigError::NothingLeasable(a.address));
            }
        }
        if self.spis.is_empty() || *self.spis.start() < *DEFAULT_SPIS.start() {
            return Err(ConfigError::BadSpiRange);
        }
        if self.max_lease < MIN_LEASE
            || self.default_lease < MIN_LEASE
            || self.default_lease > self.max_lease
        {
            return Err(ConfigError::BadLeaseTimes);
        }
        if self.registration_lease.is_zero() {
            return Err(ConfigError::BadLeaseTimes);
        }
        Ok(())
    }
}

/// Why a [`Config`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The pool has no address.
    #[error("the address pool is empty")]
    EmptyPool,
    /// The pool has more than 2^32 addresses.
    #[error("the address pool is too large")]
    PoolTooLarge,
    /// An address is listed twice.
    #[error("{0} is listed twice in the pool")]
    DuplicateAddress(Ipv4Addr),
    /// A port range has its start after its end.
    #[error("{0}: empty port range")]
    EmptyPortRange(Ipv4Addr),
    /// An address can be leased neither whole nor by ports.
    #[error("{0}: no leasable port and not leasable whole")]
    NothingLeasable(Ipv4Addr),
    /// The SPI range is empty or includes a reserved SPI (0-255).
    #[error("the SPI range is empty or includes reserved SPIs 0-255")]
    BadSpiRange,
    /// Lease times out of order: need 1 s <= default <= max, registration > 0.
    #[error("lease times must satisfy 1 s <= default <= max and registration > 0")]
    BadLeaseTimes,
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    #[test]
    fn leasable_runs_drop_exclusions_and_port_zero() {
        let a = AddressConfig {
            address: A,
            whole_lease: false,
            ports: vec![0..=10, 20..=30],
            excluded: vec![5..=6, 30..=40],
        };
        assert_eq!(a.leasable_runs(), vec![(1, 4), (7, 10), (20, 29)]);
        let soho = AddressConfig::shared(A, 49152..=65535);
        assert_eq!(soho.leasable_runs(), vec![(1024, 4554), (4556, 49151)]);
        assert_eq!(
            AddressConfig::dedicated(A).leasable_runs(),
            vec![(1024, 65535)]
        );
    }

    #[test]
    fn leasable_ranges_take_out_exclusions_and_port_zero() {
        let addr = |ports: &[(u16, u16)], excl: &[(u16, u16)]| AddressConfig {
            address: A,
            whole_lease: false,
            ports: ports.iter().map(|&(a, b)| a..=b).collect(),
            excluded: excl.iter().map(|&(a, b)| a..=b).collect(),
        };
        let a = addr(&[(0, 100), (90, 200)], &[(4555, 4555), (50, 60)]);
        assert_eq!(a.leasable_runs(), vec![(1, 49), (61, 200)]);
        let b = addr(&[(1024, 65535)], &[(4555, 4555), (49152, 65535)]);
        assert_eq!(b.leasable_runs(), vec![(1024, 4554), (4556, 49151)]);
        let c = addr(&[(1000, 2000)], &[(0, 65535)]);
        assert!(c.leasable_runs().is_empty());
    }

    /// The port-by-port definition: `ports` minus `excluded` minus 0.
    fn leasable_by_port(a: &AddressConfig) -> Vec<(u16, u16)> {
        let mut bits = vec![false; 1 << 16];
        for r in &a.ports {
            for p in r.clone() {
                bits[usize::from(p)] = true;
            }
        }
        for r in &a.excluded {
            for p in r.clone() {
                bits[usize::from(p)] = false;
            }
        }
        bits[0] = false;
        let mut runs: Vec<(u16, u16)> = Vec::new();
        for p in 1..=u16::MAX {
            if !bits[usize::from(p)] {
                continue;
            }
            match runs.last_mut() {
                Some((_, last)) if u32::from(*last) + 1 == u32::from(p) => *last = p,
                _ => runs.push((p, p)),
            }
        }
        runs
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// The range arithmetic agrees with the port-by-port definition,
        /// including overlapping, adjacent, empty (start > end) and edge
        /// (0, 65535) ranges.
        #[test]
        fn leasable_runs_agree_with_the_port_by_port_definition(
            ports in proptest::collection::vec((0u16..=u16::MAX, 0u16..=u16::MAX), 0..6),
            excluded in proptest::collection::vec((0u16..=u16::MAX, 0u16..=u16::MAX), 0..6),
            near in proptest::collection::vec((0u16..64, 0u16..64), 0..6),
        ) {
            let a = AddressConfig {
                address: A,
                whole_lease: false,
                ports: ports.iter().chain(&near).map(|&(f, l)| f..=l).collect(),
                excluded: excluded
                    .iter()
                    .map(|&(f, l)| f..=l)
                    .chain(near.iter().map(|&(f, l)| f / 2..=l / 2))
                    .collect(),
            };
            proptest::prop_assert_eq!(a.leasable_runs(), leasable_by_port(&a));
        }
    }

    #[test]
    fn validate_catches_each_error() {
        assert_eq!(Config::new(vec![]).validate(), Err(ConfigError::EmptyPool));
        let ok = Config::new(vec![AddressConfig::dedicated(A)]);
        assert_eq!(ok.validate(), Ok(()));
        let mut c = Config::new(vec![
            AddressConfig::dedicated(A),
            AddressConfig::dedicated(A),
        ]);
        assert_eq!(c.validate(), Err(ConfigError::DuplicateAddress(A)));
        #[allow(clippy::reversed_empty_ranges)]
        let empty = 10..=5;
        c = Config::new(vec![AddressConfig::dedicated(A).exclude(empty)]);
        assert_eq!(c.validate(), Err(ConfigError::EmptyPortRange(A)));
        let mut none = AddressConfig::shared(A, 1..=2);
        none.ports = vec![0..=0];
        c = Config::new(vec![none]);
        assert_eq!(c.validate(), Err(ConfigError::NothingLeasable(A)));
        c = ok.clone();
        c.spis = 255..=300;
        assert_eq!(c.validate(), Err(ConfigError::BadSpiRange));
        c = ok.clone();
        c.default_lease = Duration::from_secs(7200);
        assert_eq!(c.validate(), Err(ConfigError::BadLeaseTimes));
        c = ok.clone();
        c.default_lease = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::BadLeaseTimes));
        c = ok;
        c.registration_lease = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::BadLeaseTimes));
    }
}
