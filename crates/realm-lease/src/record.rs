//! What the crash-safe store persists, and what operations hand back.
//!
//! A store that keeps the [`RegistrationRecord`]s, [`BindingRecord`]s and
//! [`QuarantineRecord`]s up to date (write what every operation returns; drop
//! a quarantine record once its `until` has passed) can rebuild the exact
//! lease state with [`crate::LeaseManager::from_records`].

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{BindId, ClientId, Method, PortSet, SpiSet, Timestamp};

/// A registration: a client ID and when it lapses (R, RFC 3103 6).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RegistrationRecord {
    /// The host's client ID.
    pub client: ClientId,
    /// When the registration lapses unless a binding pushes it later.
    pub expires_at: Timestamp,
}

/// A live binding: what it holds and until when.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BindingRecord {
    /// The binding.
    pub bind: BindId,
    /// Its host.
    pub client: ClientId,
    /// RSA-IP (whole address), RSAP-IP or RSIPSEC.
    pub method: Method,
    /// The public address.
    pub address: Ipv4Addr,
    /// The ports ([`PortSet::None`] for RSA-IP and "don't need").
    pub ports: PortSet,
    /// The SPIs ([`SpiSet::None`] unless RSIPSEC).
    pub spis: SpiSet,
    /// When the lease ends (Bi, RFC 3103 6).
    pub expires_at: Timestamp,
}

/// Resources of an ended binding held in TIME_WAIT quarantine until `until`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// The ended binding (its ID is not reused while held).
    pub bind: BindId,
    /// Its method: for RSA-IP the whole address is held.
    pub method: Method,
    /// The public address.
    pub address: Ipv4Addr,
    /// The held ports.
    pub ports: PortSet,
    /// The held SPIs.
    pub spis: SpiSet,
    /// When the resources may be leased again.
    pub until: Timestamp,
}

/// Everything the store needs to rebuild the state, sorted by ID (quarantine
/// by `until`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Records {
    /// Registrations.
    pub registrations: Vec<RegistrationRecord>,
    /// Live bindings.
    pub bindings: Vec<BindingRecord>,
    /// Quarantined resources.
    pub quarantine: Vec<QuarantineRecord>,
}

/// A granted ASSIGN: what to put in the ASSIGN_RESPONSE and to persist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The new binding.
    pub binding: BindingRecord,
    /// The lease granted (the response's Lease Time).
    pub lease: Duration,
    /// The host's registration after R = max(R, Bi).
    pub registration: RegistrationRecord,
}

/// A granted EXTEND: what to put in the EXTEND_RESPONSE and to persist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extended {
    /// The binding with its new expiry.
    pub binding: BindingRecord,
    /// The lease granted, counted from `now` (RFC 3103 9.11.3).
    pub lease: Duration,
    /// The host's registration after R = max(R, Bi).
    pub registration: RegistrationRecord,
}

/// An ended binding (freed, expired or de-registered): the engine drops its
/// data-plane state (and, if it expired, sends a FREE_RESPONSE); the store
/// deletes the binding record and writes [`Released::quarantine`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    /// The binding as it was.
    pub binding: BindingRecord,
    /// When its resources leave quarantine.
    pub held_until: Timestamp,
}

impl Released {
    /// The quarantine record to persist.
    pub fn quarantine(&self) -> QuarantineRecord {
        QuarantineRecord {
            bind: self.binding.bind,
            method: self.binding.method,
            address: self.binding.address,
            ports: self.binding.ports.clone(),
            spis: self.binding.spis.clone(),
            until: self.held_until,
        }
    }
}

/// A de-registered host and the bindings that ended with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deregistered {
    /// The host.
    pub client: ClientId,
    /// Its bindings, now in quarantine.
    pub released: Vec<Released>,
}

/// What [`crate::LeaseManager::expire`] found lapsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// Bindings whose lease ended: send each host a FREE_RESPONSE.
    pub bindings: Vec<Released>,
    /// Registrations that lapsed: send each a DE-REGISTER_RESPONSE.
    pub registrations: Vec<ClientId>,
}

impl Expired {
    /// Whether nothing lapsed.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty() && self.registrations.is_empty()
    }
}

/// Who holds a resource (the data plane's demultiplexing answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Holder {
    /// The host.
    pub client: ClientId,
    /// The binding.
    pub bind: BindId,
}

/// What one host holds, against its [`crate::Quota`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostUsage {
    /// Ports.
    pub ports: u32,
    /// Whole addresses.
    pub addresses: u32,
    /// SPIs.
    pub spis: u32,
    /// Bindings.
    pub bindings: u32,
}

/// Pool counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolUsage {
    /// Registered hosts.
    pub hosts: u32,
    /// Live bindings.
    pub bindings: u32,
    /// Addresses in the pool.
    pub addresses: u32,
    /// Addresses leased whole (RSA-IP).
    pub addresses_leased: u32,
    /// Addresses held whole in quarantine.
    pub addresses_held: u32,
    /// Leasable (address, port) tuples in the pool.
    pub ports_leasable: u64,
    /// Leased (address, port) tuples (RSAP-IP, RSIPSEC).
    pub ports_leased: u64,
    /// (address, port) tuples in quarantine.
    pub ports_held: u64,
    /// Leased (address, SPI) tuples.
    pub spis_leased: u64,
    /// (address, SPI) tuples in quarantine.
    pub spis_held: u64,
}
