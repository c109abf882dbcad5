//! Refusals. Each variant of [`RegisterError`], [`AssignError`] and
//! [`BindingError`] is exactly one RFC 3103 Appendix A / RFC 3104 Appendix B
//! error; `code()` gives its number and `name()` its RFC name, and the engine
//! puts that in the ERROR_RESPONSE.

use thiserror::Error;

use crate::{BindId, ClientId, Spi};

/// Why an `..._UNAVAILABLE` refusal happened (for logs and metrics; the wire
/// code is the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shortage {
    /// The pool has nothing left that fits (now: TIME_WAIT may free more).
    Exhausted,
    /// The host's [`crate::Quota`] would be exceeded.
    Quota,
    /// A suggested SPI lies outside the configured SPI range (SPIs only:
    /// RFC 3104 has no `SPI_UNALLOWED`).
    Policy,
}

/// A refused registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RegisterError {
    /// ALREADY_REGISTERED (302): this client ID is already registered. (The
    /// engine detects a re-registering *host* by its address before calling.)
    #[error("client ID already registered (ALREADY_REGISTERED)")]
    AlreadyRegistered,
    /// REGISTRATION_DENIED (304): [`crate::Config::max_hosts`] reached.
    #[error("too many registrations (REGISTRATION_DENIED)")]
    RegistrationDenied,
}

impl RegisterError {
    /// The RFC 3103 Appendix A error number.
    pub fn code(&self) -> u16 {
        match self {
            RegisterError::AlreadyRegistered => 302,
            RegisterError::RegistrationDenied => 304,
        }
    }

    /// The RFC name of the error.
    pub fn name(&self) -> &'static str {
        match self {
            RegisterError::AlreadyRegistered => "ALREADY_REGISTERED",
            RegisterError::RegistrationDenied => "REGISTRATION_DENIED",
        }
    }
}

/// A refused EXTEND, FREE or DE-REGISTER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BindingError {
    /// REGISTER_FIRST (301): no live registration under this client ID (never
    /// registered, de-registered or lapsed). RFC 3103 9.4.3 answers a
    /// DE-REGISTER from an unregistered host with this too, not with
    /// ALREADY_UNREGISTERED (303).
    #[error("no registration for this client ID (REGISTER_FIRST)")]
    RegisterFirst,
    /// BAD_BIND_ID (306): no live binding with this ID for this host.
    #[error("no such binding for this host (BAD_BIND_ID)")]
    BadBindId,
}

impl BindingError {
    /// The RFC 3103 Appendix A error number.
    pub fn code(&self) -> u16 {
        match self {
            BindingError::RegisterFirst => 301,
            BindingError::BadBindId => 306,
        }
    }

    /// The RFC name of the error.
    pub fn name(&self) -> &'static str {
        match self {
            BindingError::RegisterFirst => "REGISTER_FIRST",
            BindingError::BadBindId => "BAD_BIND_ID",
        }
    }
}

/// A refused ASSIGN_REQUEST_RSA-IP, ASSIGN_REQUEST_RSAP-IP or
/// ASSIGN_REQUEST_RSIPSEC (RFC 3103 9.6.3, 9.8.3; RFC 3104 6.2).
///
/// Checks run in a fixed order, so each request has one answer: registration;
/// request shape (BAD_PARAM); IPsec permission; quotas (bindings, addresses,
/// ports, SPIs); address policy (UNALLOWED: not in the pool, not leasable
/// whole for RSA-IP, no leasable port for a port request); port policy
/// (LOCAL_ADDRPORT_UNALLOWED); SPI range; address availability
/// (LOCAL_ADDR_UNAVAILABLE if no address at all could serve the method, else
/// LOCAL_ADDR_INUSE); ports (INUSE or UNAVAILABLE); SPIs (INUSE or
/// UNAVAILABLE). For a "don't care" address, a refusal is given only when no
/// pool address fits, and names the first stage at which all of them failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AssignError {
    /// REGISTER_FIRST (301): no live registration under this client ID.
    #[error("no registration for this client ID (REGISTER_FIRST)")]
    RegisterFirst,
    /// BAD_PARAM (205): a malformed request: zero count, empty list, duplicate
    /// values, a range past the top of its space, or "don't need" ports
    /// outside RSIPSEC.
    #[error("malformed request: {what} (BAD_PARAM)")]
    BadParam {
        /// What is wrong.
        what: &'static str,
    },
    /// LOCAL_ADDR_UNAVAILABLE (308): no address at all can be allocated for
    /// this method now, or the host's address or binding quota is full.
    #[error("no local address available ({reason:?}) (LOCAL_ADDR_UNAVAILABLE)")]
    LocalAddrUnavailable {
        /// Pool exhausted or quota.
        reason: Shortage,
    },
    /// LOCAL_ADDRPORT_UNAVAILABLE (309): no address has that many ports free,
    /// or the host's port or binding quota is full.
    #[error("not enough local ports available ({reason:?}) (LOCAL_ADDRPORT_UNAVAILABLE)")]
    LocalAddrPortUnavailable {
        /// Pool exhausted or quota.
        reason: Shortage,
    },
    /// LOCAL_ADDR_INUSE (310): the requested address is leased whole, held in
    /// quarantine, or (for RSA-IP) has ports or SPIs leased or held.
    #[error("local address in use (LOCAL_ADDR_INUSE)")]
    LocalAddrInUse,
    /// LOCAL_ADDRPORT_INUSE (311): a requested port is leased or in
    /// TIME_WAIT quarantine.
    #[error("local port {port} in use (LOCAL_ADDRPORT_INUSE)")]
    LocalAddrPortInUse {
        /// The first requested port found in use.
        port: u16,
    },
    /// LOCAL_ADDR_UNALLOWED (312): the requested address is not in the pool,
    /// may not be leased whole (RSA-IP), or has no leasable port (RSAP-IP).
    #[error("local address not allowed (LOCAL_ADDR_UNALLOWED)")]
    LocalAddrUnallowed,
    /// LOCAL_ADDRPORT_UNALLOWED (313): a requested port is 0, excluded, or
    /// outside the address's leasable ranges.
    #[error("local port {port} not allowed (LOCAL_ADDRPORT_UNALLOWED)")]
    LocalAddrPortUnallowed {
        /// The first requested port found not allowed.
        port: u16,
    },
    /// IPSEC_UNALLOWED (401, RFC 3104): the host's SPI quota is zero.
    #[error("IPsec not allowed (IPSEC_UNALLOWED)")]
    IpsecUnallowed,
    /// IPSEC_SPI_UNAVAILABLE (402, RFC 3104): not enough SPIs free, SPI quota
    /// full, or a suggested SPI outside the leasable range.
    #[error("no SPI available ({reason:?}) (IPSEC_SPI_UNAVAILABLE)")]
    IpsecSpiUnavailable {
        /// Exhausted, quota, or policy (out of range).
        reason: Shortage,
    },
    /// IPSEC_SPI_INUSE (403, RFC 3104): a suggested (address, SPI) is leased
    /// or in quarantine.
    #[error("SPI {:#010x} in use (IPSEC_SPI_INUSE)", .spi.0)]
    IpsecSpiInUse {
        /// The first suggested SPI found in use.
        spi: Spi,
    },
}

impl AssignError {
    /// The RFC 3103 Appendix A / RFC 3104 Appendix B error number.
    pub fn code(&self) -> u16 {
        match self {
            AssignError::RegisterFirst => 301,
            AssignError::BadParam { .. } => 205,
            AssignError::LocalAddrUnavailable { .. } => 308,
            AssignError::LocalAddrPortUnavailable { .. } => 309,
            AssignError::LocalAddrInUse => 310,
            AssignError::LocalAddrPortInUse { .. } => 311,
            AssignError::LocalAddrUnallowed => 312,
            AssignError::LocalAddrPortUnallowed { .. } => 313,
            AssignError::IpsecUnallowed => 401,
            AssignError::IpsecSpiUnavailable { .. } => 402,
            AssignError::IpsecSpiInUse { .. } => 403,
        }
    }

    /// The RFC name of the error.
    pub fn name(&self) -> &'static str {
        match self {
            AssignError::RegisterFirst => "REGISTER_FIRST",
            AssignError::BadParam { .. } => "BAD_PARAM",
            AssignError::LocalAddrUnavailable { .. } => "LOCAL_ADDR_UNAVAILABLE",
            AssignError::LocalAddrPortUnavailable { .. } => "LOCAL_ADDRPORT_UNAVAILABLE",
            AssignError::LocalAddrInUse => "LOCAL_ADDR_INUSE",
            AssignError::LocalAddrPortInUse { .. } => "LOCAL_ADDRPORT_INUSE",
            AssignError::LocalAddrUnallowed => "LOCAL_ADDR_UNALLOWED",
            AssignError::LocalAddrPortUnallowed { .. } => "LOCAL_ADDRPORT_UNALLOWED",
            AssignError::IpsecUnallowed => "IPSEC_UNALLOWED",
            AssignError::IpsecSpiUnavailable { .. } => "IPSEC_SPI_UNAVAILABLE",
            AssignError::IpsecSpiInUse { .. } => "IPSEC_SPI_INUSE",
        }
    }
}

/// A record [`crate::LeaseManager`] refused to restore. Not an RFC error: the
/// store logs it and drops the record (and the engine may tell the host with a
/// FREE_RESPONSE).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A registration for this client ID is already restored.
    #[error("client {:#010x} restored twice", .0.0)]
    DuplicateClient(ClientId),
    /// A binding names a client with no restored registration.
    #[error("bind {bind} belongs to unknown client {:#010x}", .client.0)]
    UnknownClient {
        /// The binding.
        bind: BindId,
        /// Its missing client.
        client: ClientId,
    },
    /// This bind ID is already live or quarantined (or is 0).
    #[error("bind {0} restored twice or invalid")]
    DuplicateBind(BindId),
    /// The record is malformed or inconsistent with its method.
    #[error("bind {bind}: bad record: {what}")]
    BadRecord {
        /// The binding.
        bind: BindId,
        /// What is wrong.
        what: &'static str,
    },
    /// The record holds an address, port or SPI the current config does not
    /// allow (the config changed across the restart).
    #[error("bind {0}: resource not allowed by the current configuration")]
    Unallowed(BindId),
    /// The record's resources overlap a restored binding or quarantine.
    #[error("bind {0}: resource already held")]
    Conflict(BindId),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_rfcs() {
        let all = [
            (AssignError::RegisterFirst, 301, "REGISTER_FIRST"),
            (AssignError::BadParam { what: "x" }, 205, "BAD_PARAM"),
            (
                AssignError::LocalAddrUnavailable {
                    reason: Shortage::Quota,
                },
                308,
                "LOCAL_ADDR_UNAVAILABLE",
            ),
            (
                AssignError::LocalAddrPortUnavailable {
                    reason: Shortage::Exhausted,
                },
                309,
                "LOCAL_ADDRPORT_UNAVAILABLE",
            ),
            (AssignError::LocalAddrInUse, 310, "LOCAL_ADDR_INUSE"),
            (
                AssignError::LocalAddrPortInUse { port: 1 },
                311,
                "LOCAL_ADDRPORT_INUSE",
            ),
            (AssignError::LocalAddrUnallowed, 312, "LOCAL_ADDR_UNALLOWED"),
            (
                AssignError::LocalAddrPortUnallowed { port: 0 },
                313,
                "LOCAL_ADDRPORT_UNALLOWED",
            ),
            (AssignError::IpsecUnallowed, 401, "IPSEC_UNALLOWED"),
            (
                AssignError::IpsecSpiUnavailable {
                    reason: Shortage::Policy,
                },
                402,
                "IPSEC_SPI_UNAVAILABLE",
            ),
            (
                AssignError::IpsecSpiInUse { spi: Spi(300) },
                403,
                "IPSEC_SPI_INUSE",
            ),
        ];
        for (e, code, name) in all {
            assert_eq!((e.code(), e.name()), (code, name));
            assert!(e.to_string().contains(name), "{e}");
        }
        assert_eq!(RegisterError::AlreadyRegistered.code(), 302);
        assert_eq!(RegisterError::RegistrationDenied.code(), 304);
        assert_eq!(
            RegisterError::RegistrationDenied.name(),
            "REGISTRATION_DENIED"
        );
        assert_eq!(BindingError::RegisterFirst.code(), 301);
        assert_eq!(BindingError::BadBindId.code(), 306);
        assert_eq!(BindingError::BadBindId.name(), "BAD_BIND_ID");
    }
}
