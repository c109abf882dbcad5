//! Realm lease state: what an RSIP gateway has leased to which host, and until
//! when (RFC 3102, RFC 3103, RFC 3104).
//!
//! [`LeaseManager`] owns the public pool (one shared address or a block),
//! registrations, bindings of the three RSIP methods (RSA-IP: a whole address;
//! RSAP-IP: an address and ports; RSIPSEC: an address, SPIs and optionally
//! ports), per-host [`Quota`]s, lease expiry (R = max(R, Bi), RFC 3103 6),
//! TIME_WAIT quarantine of freed resources (RFC 3102 6.1), the data plane's
//! lookups (who holds this address, (address, port), (address, SPI)), pool
//! counters, and the records a crash-safe store persists to rebuild the exact
//! state after a restart.
//!
//! **Contract:** pure data structures. Nothing here does I/O, reads a clock
//! (time comes in as a [`Timestamp`] argument), spawns, or panics on any
//! request. Every refusal is a typed error whose variants are RFC 3103 / RFC
//! 3104 error codes ([`AssignError::code`]); the engine (`realm-rsip`) turns
//! requests into calls and results into messages.
//!
//! ```
//! use std::time::Duration;
//! use realm_lease::*;
//!
//! // SOHO: one public address shared by the gateway and its hosts.
//! let pool = vec![AddressConfig::shared("192.0.2.1".parse()?, 49152..=65535)];
//! let mut leases = LeaseManager::new(Config::new(pool))?;
//! let now = Timestamp::from_secs(1_700_000_000); // from realm-io's clock
//! let host = ClientId(0x5eed_1234); // the engine picks client IDs
//! leases.register(host, now)?;
//! let ports = PortRequest::DontCare { count: 4 };
//! let grant = leases.assign_rsap_ip(host, AddressRequest::DontCare, ports, None, now)?;
//! assert_eq!(grant.binding.ports, PortSet::Range { first: 1024, count: 4 });
//! assert_eq!(leases.holder_of_port("192.0.2.1".parse()?, 1025).map(|h| h.client), Some(host));
//! // At the lease's end the engine's timer fires: FREE_RESPONSE to the host.
//! let due = leases.next_timeout().unwrap_or(now);
//! assert_eq!(due, now + Duration::from_secs(600));
//! let expired = leases.expire(due);
//! assert_eq!(expired.bindings[0].binding.bind, grant.binding.bind);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Decisions worth knowing:
//! - Time is milliseconds since a caller-chosen epoch, not `Instant`, so that
//!   persisted expiries mean something after a restart.
//! - Resources freed, expired or de-registered are held for
//!   [`Config::time_wait`] (default 120 s), then reused oldest-free first;
//!   never-used ports and SPIs go first. A specific request for a held
//!   resource gets the `..._INUSE` error. An ended RSA-IP binding holds the
//!   whole address.
//! - An address leased whole has no ports or SPIs leasable by anyone, and an
//!   address with any port or SPI leased or held cannot be leased whole.
//! - Quotas refuse with the `..._UNAVAILABLE` code of the resource
//!   ([`Shortage::Quota`]); a suggested SPI outside the range gets
//!   IPSEC_SPI_UNAVAILABLE ([`Shortage::Policy`]).
//! - Bind IDs come from a gateway-wide counter from 1; after a wrap, IDs live
//!   or in quarantine are skipped. After a restore the counter goes on above
//!   every restored binding and quarantine record.
//! - Lapsed leases end only in [`LeaseManager::expire`] (the engine calls it
//!   at [`LeaseManager::next_timeout`]); quarantine ends lazily at the next
//!   operation at or after its end.
//!
//! Memory: about 115-150 bytes per binding at 100k RSAP-IP bindings (hash
//! table of 32-byte bindings, expiry and per-host B-trees, per-address port
//! runs, 8 KiB port bitmap per address used for ports); see
//! `benches/lease.rs`.
#![forbid(unsafe_code)]

mod config;
mod error;
mod hash;
mod manager;
mod ports;
mod record;
mod request;
mod set;
mod spis;
mod time;

pub use config::{AddressConfig, Config, ConfigError, DEFAULT_SPIS, MIN_LEASE, Quota, RSIP_PORT};
pub use error::{AssignError, BindingError, RegisterError, RestoreError, Shortage};
pub use manager::LeaseManager;
pub use realm_wire::rsip::{BindId, ClientId, Method, Spi};
pub use record::{
    BindingRecord, Deregistered, Expired, Extended, Grant, Holder, HostUsage, PoolUsage,
    QuarantineRecord, Records, RegistrationRecord, Released,
};
pub use request::{AddressRequest, PortRequest, SpiRequest};
pub use set::{PortSet, SpiSet};
pub use time::Timestamp;
