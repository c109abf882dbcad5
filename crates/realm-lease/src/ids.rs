//! Small identifiers. They mirror RSIP parameters but are defined here so that
//! this crate does not depend on `realm-wire`; the engine maps them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An RSIP client ID (RFC 3103 8.4). The engine generates it (unpredictably)
/// and passes it to [`crate::LeaseManager::register`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub u32);

/// An RSIP bind ID (RFC 3103 8.5). The lease manager allocates it: unique per
/// gateway, never 0, and never reused while a binding that had it is live or
/// in TIME_WAIT quarantine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BindId(pub u32);

/// An IPsec Security Parameter Index (RFC 4303 2.1, RFC 3104 6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Spi(pub u32);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {:#010x}", self.0)
    }
}

impl fmt::Display for BindId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bind {}", self.0)
    }
}

impl fmt::Display for Spi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SPI {:#010x}", self.0)
    }
}
