//! What a host asks for, as the engine decoded it from an ASSIGN_REQUEST.

use std::net::Ipv4Addr;

use crate::Spi;

/// The local address parameter of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressRequest {
    /// "Don't care": any address of the pool.
    DontCare,
    /// This address.
    Specific(Ipv4Addr),
}

/// The local ports parameter of a request (RFC 3103 8.2, RFC 3104 6.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PortRequest {
    /// "Don't care" with a number: that many ports, any; contiguous if possible.
    DontCare {
        /// How many ports (>= 1).
        count: u16,
    },
    /// `count` contiguous ports from `first`.
    Range {
        /// The first port.
        first: u16,
        /// How many ports (>= 1).
        count: u16,
    },
    /// These ports (non-empty, no duplicates).
    List(Vec<u16>),
    /// "Don't need" (RFC 3104 6.2): no port; only for RSIPSEC.
    DontNeed,
}

/// The SPI parameter of an ASSIGN_REQUEST_RSIPSEC (RFC 3104 6.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SpiRequest {
    /// "Don't care" with a number: that many SPIs, any; contiguous if possible.
    DontCare {
        /// How many SPIs (>= 1).
        count: u16,
    },
    /// Suggested: `count` contiguous SPIs from `first`.
    Range {
        /// The first SPI.
        first: Spi,
        /// How many SPIs (>= 1).
        count: u16,
    },
    /// Suggested: these SPIs (non-empty, no duplicates).
    List(Vec<Spi>),
}

impl PortRequest {
    /// How many ports the request asks for.
    pub fn count(&self) -> u32 {
        match self {
            PortRequest::DontCare { count } | PortRequest::Range { count, .. } => u32::from(*count),
            PortRequest::List(l) => u32::try_from(l.len()).unwrap_or(u32::MAX),
            PortRequest::DontNeed => 0,
        }
    }
}

impl SpiRequest {
    /// How many SPIs the request asks for.
    pub fn count(&self) -> u32 {
        match self {
            SpiRequest::DontCare { count } | SpiRequest::Range { count, .. } => u32::from(*count),
            SpiRequest::List(l) => u32::try_from(l.len()).unwrap_or(u32::MAX),
        }
    }
}
